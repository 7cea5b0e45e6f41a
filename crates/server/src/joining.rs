//! How a host joins in one line (`curl -fsS https://SERVER/agent/install.sh | sh -s -- --token
//! TOKEN`): the server serves the install script, the agent binary it downloads and that
//! binary's SHA-256, and registers the host that presents a join token (`api::join_tokens`).
//!
//! - `GET /agent/install.sh`: the script, with this server's address, the binary's checksum and
//!   machine filled in.
//! - `GET /agent/landfall-agent` and `GET /agent/landfall-agent.sha256`.
//! - `GET /agent/spec-ca.pem`: the CA the server signs deployment specifications and agent
//!   updates under, which the script has the agent check them against.
//! - `POST /agent/join` with `{"token": ..., "instanceName": ...}`: registers the host and answers
//!   its `codedeploy.onpremises.yml` (its key), or a one-line reason with a 4xx status.
//!
//! The binary is a file the operator names (`landfall server --agent-binary`; see
//! `agent_binary`).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use landfall_api::landfall::Role;
use landfall_listener::RequestBody;

use crate::api::common::Ctx;
use crate::api::join_tokens;
use crate::auth::Caller;
use crate::body::{Body, full};
use crate::state::AppState;

/// The most a join request may hold (a token and a host name).
const MAX_JOIN_BODY: usize = 4096;

const INSTALL_SCRIPT: &str = include_str!("install.sh");

/// Whether the request is for one of the paths this module serves.
pub fn serves(path: &str) -> bool {
    matches!(
        path,
        "/agent/install.sh"
            | "/agent/landfall-agent"
            | "/agent/landfall-agent.sha256"
            | "/agent/spec-ca.pem"
            | "/agent/join"
    )
}

pub async fn handle(state: &Arc<AppState>, peer: SocketAddr, parts: Parts, body: RequestBody) -> Response<Body> {
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/agent/install.sh") => install_script(state, &parts).await,
        (&Method::GET, "/agent/landfall-agent") => binary(state).await,
        (&Method::GET, "/agent/landfall-agent.sha256") => match state.agent_binary.describe().await {
            Ok((_, _, described)) => text(StatusCode::OK, format!("{}  landfall-agent\n", described.sha256)),
            Err(why) => text(StatusCode::NOT_FOUND, why),
        },
        (&Method::GET, "/agent/spec-ca.pem") => text(StatusCode::OK, state.spec_signer.ca_certificate_pem().to_owned()),
        (&Method::POST, "/agent/join") => join(state, peer, body).await,
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET the script and the binary; POST to join".into()),
    }
}

async fn install_script(state: &AppState, parts: &Parts) -> Response<Body> {
    // The address the host reached this server at is the one its agent will use.
    let host = parts.headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or("");
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if host.is_empty() || !host.chars().all(safe) {
        return text(StatusCode::BAD_REQUEST, "the request's Host header is not a host name".into());
    }
    let (sha256, machine) = match state.agent_binary.describe().await {
        Ok((_, _, described)) => (described.sha256, described.machine),
        Err(why) => return text(StatusCode::NOT_FOUND, why),
    };
    let scheme = if state.tls { "https" } else { "http" };
    let script = INSTALL_SCRIPT
        .replace("@SERVER@", &format!("{scheme}://{host}"))
        .replace("@SHA256@", &sha256)
        .replace("@MACHINE@", machine);
    let mut response = Response::new(full(script));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/x-shellscript; charset=utf-8"));
    response
}

async fn binary(state: &AppState) -> Response<Body> {
    let (path, length, _) = match state.agent_binary.describe().await {
        Ok(described) => described,
        Err(why) => return text(StatusCode::NOT_FOUND, why),
    };
    match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let mut response = Response::new(crate::s3::ops::FileBody::new(file, length).boxed());
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            response
        }
        Err(error) => text(StatusCode::NOT_FOUND, format!("the agent binary cannot be read: {error}")),
    }
}

#[derive(serde::Deserialize)]
struct JoinRequest {
    token: String,
    #[serde(rename = "instanceName")]
    instance_name: String,
}

async fn join(state: &Arc<AppState>, peer: SocketAddr, body: RequestBody) -> Response<Body> {
    let bytes = match Limited::new(body, MAX_JOIN_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, format!("a join request holds at most {MAX_JOIN_BODY} bytes"));
        }
    };
    let Ok(request) = serde_json::from_slice::<JoinRequest>(&bytes) else {
        return text(StatusCode::BAD_REQUEST, "a join request is {\"token\": ..., \"instanceName\": ...}".into());
    };
    let token_id = request.token.split_once('.').map_or("", |(id, _)| id);
    // The audit log says which token registered which host, from where.
    let caller = Caller { access_key_id: format!("join-token/{token_id}"), role: Role::Instance, instance_name: None };
    let ctx = Ctx { state, caller: &caller, now: state.clock.now() };
    let result = join_tokens::join(&ctx, &request.token, &request.instance_name).await;
    let audited = serde_json::json!({"instanceName": request.instance_name, "tokenId": token_id}).to_string();
    let outcome = match &result {
        Ok(_) => Ok(()),
        Err(refused) => Err(landfall_api::error::ApiError::new(
            landfall_api::error::Exception::AccessDenied,
            refused.message.clone(),
        )),
    };
    crate::audit::record(
        &*state.store,
        ctx.now,
        &caller,
        peer,
        "Landfall.JoinInstance".to_owned(),
        audited.as_bytes(),
        outcome.as_ref().map(|_| ()),
    )
    .await;
    match result {
        Ok(registered) => {
            tracing::info!(instance = %registered.instance_name, token = token_id, %peer, "a host joined");
            crate::fleet::nudge(state).await;
            crate::http::text(StatusCode::OK, registered.on_premises_file())
        }
        Err(refused) => {
            tracing::info!(token = token_id, %peer, reason = %refused.message, "a join was refused");
            let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::FORBIDDEN);
            text(status, refused.message)
        }
    }
}

/// A one-line answer for the script to print.
fn text(status: StatusCode, line: String) -> Response<Body> {
    crate::http::text(status, line + "\n")
}
