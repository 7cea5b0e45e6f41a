//! The web console at `/console`: server-rendered pages for watching and steering deployments,
//! with a few lines of script for live updates (server-sent events). No external assets.
//!
//! Sign-in is an access key and its secret. The session is a cookie (HttpOnly, SameSite=Strict,
//! Secure under TLS) carrying the key id, an expiry and a nonce, signed with the server's
//! console secret; every request re-reads the key, so a revoked key or a changed role takes
//! effect at once, and any server sharing the data directory accepts it. Signing out records
//! the nonce in the store as ended, so the cookie is refused from then on by every server. Every POST must come
//! from the console's own origin, and every action also carries the session's CSRF token.
//! Actions go through the same code as the API (role checks, validation, audit log).

mod html;
mod live;
mod pages;
pub(crate) mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use landfall_api::landfall::{Access, Role};
use landfall_listener::RequestBody;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::Caller;
use crate::body::{Body, full};
use crate::s3::percent_decode;
use crate::state::AppState;

use throttle::Turn;

/// How long a sign-in lasts.
const SESSION_SECONDS: i64 = 12 * 3600;
const COOKIE_NAME: &str = "landfall_session";
/// Largest form accepted (a sign-in, an action): a few fields.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A signed-in console user: the key (as the store has it now) and the session's CSRF token.
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    /// The session's own identity and expiry, for signing out.
    nonce: String,
    expiry: i64,
}

impl Session {
    pub fn may(&self, access: Access) -> bool {
        self.caller.role.allows(access)
    }
}

/// A console response being built: status, HTML or other body, extra headers.
pub struct Reply {
    pub status: StatusCode,
    content_type: &'static str,
    body: Body,
    headers: Vec<(hyper::header::HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn html(status: StatusCode, html: String) -> Reply {
        Reply { status, content_type: "text/html; charset=utf-8", body: full(html), headers: Vec::new() }
    }

    fn redirect(to: &str) -> Reply {
        let mut reply = Reply::html(StatusCode::SEE_OTHER, String::new());
        if let Ok(location) = HeaderValue::from_str(to) {
            reply.headers.push((LOCATION, location));
        }
        reply
    }

    fn with_cookie(mut self, cookie: String) -> Reply {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            self.headers.push((SET_COOKIE, value));
        }
        self
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Serves everything under `/console`.
pub async fn handle(state: &Arc<AppState>, peer: SocketAddr, parts: Parts, body: RequestBody) -> Response<Body> {
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let query = parse_form(parts.uri.query().unwrap_or_default());
    let segments: Vec<String> =
        path.split('/').skip(2).map(|segment| percent_decode(segment).unwrap_or_default()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();

    // Static assets and the sign-in page need no session.
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["assets", "console.css"]) => return asset("text/css; charset=utf-8", html::STYLE),
        (&Method::GET, ["assets", "console.js"]) => return asset("text/javascript; charset=utf-8", live::SCRIPT),
        (&Method::GET, ["login"]) => return pages::login(None, query.get("next").map(String::as_str)).into_response(),
        _ => {}
    }
    if parts.method == Method::POST && !same_origin(state, &parts) {
        let page = pages::message("Refused", "The form did not come from this console.");
        return Reply::html(StatusCode::FORBIDDEN, page).into_response();
    }
    let form = if parts.method == Method::POST {
        match Limited::new(body, MAX_FORM_BYTES).collect().await {
            Ok(collected) => parse_form(&String::from_utf8_lossy(&collected.to_bytes())),
            Err(_) => return Reply::html(StatusCode::PAYLOAD_TOO_LARGE, String::new()).into_response(),
        }
    } else {
        HashMap::new()
    };
    if parts.method == Method::POST && segments.as_slice() == ["login"] {
        return sign_in(state, peer, &form).await.into_response();
    }

    let Some(session) = session(state, &parts).await else {
        let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console");
        return Reply::redirect(&format!("/console/login?next={}", html::url(next))).into_response();
    };
    if parts.method == Method::POST {
        let given = form.get("csrf").map(String::as_str).unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
            let page =
                pages::message("Refused", "The form's token is missing or stale: reload the page and try again.");
            return Reply::html(StatusCode::FORBIDDEN, page).into_response();
        }
    }
    let reply = match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["logout"]) => sign_out(state, &session).await,
        (&Method::GET, [] | [""]) => Reply::redirect("/console/deployments"),
        (&Method::GET, ["applications"]) => pages::applications(state, &session).await,
        (&Method::GET, ["applications", app, "groups", group]) => pages::group(state, &session, app, group).await,
        (&Method::POST, ["applications", app, "groups", group, "deploy"]) => {
            pages::deploy(state, &session, peer, app, group, &form).await
        }
        (&Method::GET, ["deployments"]) => pages::deployments(state, &session, &query).await,
        (&Method::GET, ["deployments", id]) => pages::deployment(state, &session, id, &query).await,
        (&Method::GET, ["deployments", id, "live"]) => return live::deployment(state.clone(), session, id, &query),
        (&Method::GET, ["deployments", id, "log"]) => pages::log(state, &session, id, &query).await,
        (&Method::GET, ["deployments", id, "log", "live"]) => return live::log(state.clone(), session, id, &query),
        (&Method::POST, ["deployments", id, action]) => pages::act(state, &session, peer, id, action, &form).await,
        (&Method::GET, ["instances"]) => pages::instances(state, &session, &query).await,
        (&Method::GET, ["audit"]) => pages::audit(state, &session, &query).await,
        _ => Reply::html(StatusCode::NOT_FOUND, pages::message("Not found", "There is no such console page.")),
    };
    reply.into_response()
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("cache-control", HeaderValue::from_static("max-age=3600"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// A POST's `Origin` (or, without one, its `Referer`) must be this server: a form on another
/// site cannot act with the user's cookie, nor sign them in as someone else.
fn same_origin(state: &AppState, parts: &Parts) -> bool {
    let host = parts.headers.get("host").and_then(|v| v.to_str().ok()).or(parts.uri.authority().map(|a| a.as_str()));
    let Some(host) = host else { return false };
    let scheme = if state.tls { "https" } else { "http" };
    let expected = format!("{scheme}://{host}");
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    match (header("origin"), header("referer")) {
        (Some(origin), _) => origin == expected,
        (None, Some(referer)) => referer == expected || referer.starts_with(&format!("{expected}/")),
        (None, None) => false,
    }
}

fn mac(state: &AppState, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.console_secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signed-in user of a request: a valid, unexpired cookie whose key is still active and
/// may use the console.
async fn session(state: &AppState, parts: &Parts) -> Option<Session> {
    let cookies = parts.headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("; ");
    let value = cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)?;
    let (claims, signature) = value.rsplit_once('.')?;
    if !bool::from(mac(state, claims).as_bytes().ct_eq(signature.as_bytes())) {
        return None;
    }
    let mut fields = claims.splitn(3, '.');
    let (key_id, expiry, nonce) = (fields.next()?, fields.next()?.parse::<i64>().ok()?, fields.next()?);
    if expiry < state.clock.now().millis() / 1000 {
        return None;
    }
    let record = state.keys.active_key(state.store.as_ref(), key_id).await.ok().flatten()?;
    if !console_role(record.role) {
        return None;
    }
    // Signed out (on any server): the cookie is no session any more. A store that cannot say
    // lets nobody in.
    if state.store.session_ended(nonce).await.unwrap_or(true) {
        return None;
    }
    let csrf = mac(state, &format!("csrf.{nonce}"))[..32].to_owned();
    Some(Session {
        caller: Caller { access_key_id: record.access_key_id, role: record.role, instance_name: None },
        csrf,
        nonce: nonce.to_owned(),
        expiry,
    })
}

/// Ends the session for good, on every server sharing the store, and clears the cookie.
async fn sign_out(state: &AppState, session: &Session) -> Reply {
    let now = state.clock.now();
    if let Err(error) =
        state.store.end_session(&session.nonce, landfall_api::Timestamp(session.expiry * 1000), now).await
    {
        tracing::warn!(%error, "cannot record a console sign-out");
        let page = pages::message("Not signed out", "The store could not record the sign-out: try again.");
        return Reply::html(StatusCode::SERVICE_UNAVAILABLE, page);
    }
    Reply::redirect("/console/login").with_cookie(format!("{COOKIE_NAME}=; Path=/console; Max-Age=0"))
}

/// People's keys, not hosts' or routers'.
fn console_role(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Deployer | Role::ReadOnly)
}

/// Checks an access key and its secret; on success sets the session cookie. Every attempt is
/// in the audit log; attempts with a key that failed often from the same address wait their
/// turn (see [`throttle`]).
async fn sign_in(state: &Arc<AppState>, peer: SocketAddr, form: &HashMap<String, String>) -> Reply {
    let key_id: String = form.get("access_key_id").map(|k| k.trim()).unwrap_or_default().chars().take(128).collect();
    let key_id = key_id.as_str();
    let secret = form.get("secret_access_key").map(|s| s.trim()).unwrap_or_default();
    let next = form.get("next").map(String::as_str).filter(|n| n.starts_with("/console") && !n.starts_with("//"));
    match state.sign_ins.turn(key_id, peer.ip(), std::time::Instant::now()) {
        Turn::After(wait) => tokio::time::sleep(wait).await,
        Turn::TooFar(wait) => {
            let message = format!(
                "Too many failed sign-ins with this access key from this address: try again in {} seconds.",
                wait.as_secs().max(1)
            );
            let mut reply = pages::login(Some(&message), next);
            reply.status = StatusCode::TOO_MANY_REQUESTS;
            return reply;
        }
    }
    let record = state.keys.active_key(state.store.as_ref(), key_id).await.ok().flatten();
    let accepted = record.filter(|record| {
        bool::from(record.secret_access_key.as_bytes().ct_eq(secret.as_bytes())) && console_role(record.role)
    });
    let caller = Caller {
        access_key_id: key_id.to_owned(),
        role: accepted.as_ref().map_or(Role::ReadOnly, |r| r.role),
        instance_name: None,
    };
    let resources = std::collections::BTreeMap::new();
    let Some(record) = accepted else {
        state.sign_ins.failed(key_id, peer.ip(), std::time::Instant::now());
        crate::audit::append(
            &*state.store,
            state.clock.now(),
            &caller,
            peer,
            "Console.SignIn".into(),
            resources,
            Err(("AccessDenied", "wrong key or secret")),
        )
        .await;
        return pages::login(Some("That access key and secret do not match an active key."), next);
    };
    state.sign_ins.succeeded(key_id, peer.ip());
    crate::audit::append(&*state.store, state.clock.now(), &caller, peer, "Console.SignIn".into(), resources, Ok(()))
        .await;
    let expiry = state.clock.now().millis() / 1000 + SESSION_SECONDS;
    let nonce = crate::ids::random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 24);
    let claims = format!("{}.{expiry}.{nonce}", record.access_key_id);
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={claims}.{}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}",
        mac(state, &claims)
    );
    Reply::redirect(next.unwrap_or("/console/deployments")).with_cookie(cookie)
}

/// `a=1&b=two+words` into a map (the last of a repeated name wins).
pub fn parse_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(&name.replace('+', " "))?, percent_decode(&value.replace('+', " "))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        let form = parse_form("csrf=ab%2Fc&note=two+words&empty=&flag");
        assert_eq!(form["csrf"], "ab/c");
        assert_eq!(form["note"], "two words");
        assert_eq!(form["empty"], "");
        assert_eq!(form["flag"], "");
        assert!(parse_form("bad=%zz").is_empty());
    }
}
