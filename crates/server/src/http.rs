//! Request routing over `landfall_listener` (HTTP/1.1 and HTTP/2, TLS optional, connections within
//! bounds, graceful shutdown).
//!
//! Routing: `POST /` carries the API (the operation in `X-Amz-Target`); `GET /health` (alive)
//! and `GET /ready` (the store answers) answer load balancers without authentication; `GET /metrics` wants the metrics token. Everything
//! else is the S3-compatible bundle store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use landfall_api::Operation;
use landfall_api::error::{ApiError, Exception};
use landfall_api::landfall::{self, Access, LandfallOperation, landfall_operation_access};
use landfall_commands::{self as commands, CommandOperation};
use landfall_listener::{BodyError, RequestBody};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, common::Ctx};
use crate::auth::{self, authenticate, authorize};
pub use crate::body::{Body, full};
use crate::state::AppState;
use crate::{agents, audit, s3};

/// How long `GET /ready` waits for the store.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest request body accepted. AppSpec content is the largest thing a request carries.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Serves connections from `listener` until `shutdown` completes, then stops accepting and
/// waits (up to a bound) for requests in flight, within the connection limits of `landfall_listener`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = state.limits.connections.clone();
    let handler = move |peer, request| handle(state.clone(), peer, request);
    landfall_listener::serve(listener, tls, limits, handler, shutdown).await
}

async fn handle(state: Arc<AppState>, connection: SocketAddr, request: Request<RequestBody>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    // The client's address, through the operator's proxies.
    let peer = state.trusted_proxies.client(connection, &parts.headers);
    match (&parts.method, parts.uri.path()) {
        // The JSON APIs (CodeDeploy, Landfall's extensions, the agent protocol) are all POST /.
        (&Method::POST, "/") => match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) if crate::query::is_query(&parts) => {
                Box::pin(crate::query::call(&state, peer, &parts, &collected.to_bytes())).await
            }
            Ok(collected) => json_call(&state, peer, &parts, &collected.to_bytes()).await,
            Err(error) => api_error(&unreadable_body(&*error)),
        },
        (&Method::GET, "/health") => text(StatusCode::OK, "ok\n"),
        // Ready to take traffic: the store answers (a load balancer's readiness check).
        // Within a second, whatever the store does: a load balancer's check must not hang.
        (&Method::GET, "/ready") => match tokio::time::timeout(READY_WITHIN, state.store.schema_version()).await {
            Ok(Ok(_)) => text(StatusCode::OK, "ready\n"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "not ready: the store does not answer");
                text(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer\n")
            }
            Err(_) => {
                tracing::warn!("not ready: the store did not answer within {READY_WITHIN:?}");
                text(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer\n")
            }
        },
        (&Method::GET, "/metrics") => metrics(&state, &parts).await,
        (_, path) if crate::joining::serves(path) => Box::pin(crate::joining::handle(&state, peer, parts, body)).await,
        (_, path) if path == "/console" || path.starts_with("/console/") => {
            Box::pin(crate::console::handle(&state, peer, parts, body)).await
        }
        // The official agent checks its endpoint with an unsigned GET / before it polls.
        (&Method::GET, "/") if !parts.headers.contains_key(AUTHORIZATION) && parts.uri.query().is_none() => {
            text(StatusCode::OK, "landfall\n")
        }
        // Everything else is the S3-compatible bundle store (path-style /bucket/key).
        _ => Box::pin(s3::handle(&state, peer, parts, body)).await,
    }
}

/// Why a JSON request's body was not read: too large, too slow, or not valid HTTP.
fn unreadable_body(error: &(dyn std::error::Error + 'static)) -> ApiError {
    if error.is::<LengthLimitError>() {
        return ApiError::new(
            Exception::RequestEntityTooLarge,
            format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
        );
    }
    match error.downcast_ref::<BodyError>() {
        Some(BodyError::TimedOut(limit)) => ApiError::new(
            Exception::RequestTimeout,
            format!("The request body stopped arriving for {} s.", limit.as_secs()),
        ),
        _ => ApiError::new(Exception::Serialization, format!("The request body could not be read: {error}.")),
    }
}

/// The operation a request names in `X-Amz-Target`.
enum Target {
    CodeDeploy(Operation),
    Landfall(LandfallOperation),
    Agent(CommandOperation),
}

fn target(parts: &Parts) -> Result<Target, ApiError> {
    let header = parts.headers.get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or("");
    let unknown = || {
        ApiError::new(
            Exception::UnknownOperation,
            format!(
                "Unknown operation: '{header}'. This is Landfall: it serves CodeDeploy ({}.*), its own extensions \
                 ({}.*), the CodeDeploy agent protocol ({}.*), the S3 API of its bundle store, and STS \
                 GetCallerIdentity.",
                "CodeDeploy_20141006",
                landfall::TARGET_PREFIX,
                commands::TARGET_PREFIX
            ),
        )
    };
    let (prefix, name) = header.split_once('.').ok_or_else(unknown)?;
    match prefix {
        "CodeDeploy_20141006" => Operation::from_name(name).map(Target::CodeDeploy).ok_or_else(unknown),
        landfall::TARGET_PREFIX => LandfallOperation::from_name(name).map(Target::Landfall).ok_or_else(unknown),
        commands::TARGET_PREFIX => CommandOperation::from_name(name).map(Target::Agent).ok_or_else(unknown),
        _ => Err(unknown()),
    }
}

async fn json_call(state: &Arc<AppState>, peer: SocketAddr, parts: &Parts, body: &[u8]) -> Response<Body> {
    let started = Instant::now();
    let target = target(parts);
    // Agents sign for `codedeploy-commands`; everything else for `codedeploy`. A call meant for
    // another service is checked against the service it was signed for, to tell its (authenticated)
    // caller that this is not that service.
    let signed_for = auth::signed_service(parts);
    let service = match &target {
        Ok(Target::Agent(_)) => commands::SERVICE,
        Ok(_) => auth::SERVICE,
        Err(_) => signed_for.as_deref().unwrap_or(auth::SERVICE),
    };
    let caller = match authenticate(state, parts, body, service).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::info!(%peer, error = error.exception.name(), "request refused");
            return api_error(&error);
        }
    };
    // An agent update offered to a polling agent (crate::agent_updates).
    let mut update_offer = None;
    let (name, result) = match target {
        Err(error) => ("unknown", Err(error)),
        Ok(Target::CodeDeploy(operation)) => {
            (operation.name(), Box::pin(api::call_codedeploy(state, &caller, peer, operation, body)).await)
        }
        Ok(Target::Landfall(operation)) => {
            let access = landfall_operation_access(operation);
            let ctx = Ctx { state, caller: &caller, now: state.clock.now() };
            let result = match authorize(state, &caller, access, operation.name()) {
                Ok(()) => Box::pin(api::landfall(&ctx, operation, body)).await,
                Err(error) => Err(error),
            };
            if matches!(access, Access::Write | Access::Admin) {
                let operation = format!("Landfall.{}", operation.name());
                audit::record(
                    &*state.store,
                    state.clock.now(),
                    &caller,
                    peer,
                    operation,
                    body,
                    result.as_ref().map(|_| ()),
                )
                .await;
            }
            (operation.name(), result)
        }
        Ok(Target::Agent(operation)) => {
            let ctx = Ctx { state, caller: &caller, now: state.clock.now() };
            // The official agent says its version in a header of its own; otherwise the
            // User-Agent is the best there is.
            let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
            let agent = header("x-amz-codedeploy-agent-version").or_else(|| header(hyper::header::USER_AGENT.as_str()));
            // A poll first moves its host's agent update on (the version it reports may finish
            // it); one answered with an update is not held.
            if operation == CommandOperation::PollHostCommand
                && let Some(instance) = &caller.instance_name
            {
                let refused = header(crate::agent_updates::REFUSED_HEADER);
                update_offer = Box::pin(crate::agent_updates::on_poll(state, instance, agent, refused)).await;
            }
            (operation.name(), agents::call(&ctx, operation, body, agent, update_offer.is_none()).await)
        }
    };
    state.metrics.api_request(name, result.as_ref().err().map(|e| e.exception.name()), started.elapsed());
    let micros = started.elapsed().as_micros() as u64;
    match result {
        Ok(output) => {
            tracing::debug!(operation = name, access_key_id = %caller.access_key_id, micros, "ok");
            let mut response = json(StatusCode::OK, output);
            if let Some(offer) = update_offer {
                response.headers_mut().insert(crate::agent_updates::OFFER_HEADER, offer);
            }
            response
        }
        Err(error) => {
            tracing::info!(operation = name, access_key_id = %caller.access_key_id, micros, error = error.exception.name(), message = %error.message, "refused");
            api_error(&error)
        }
    }
}

/// `GET /metrics` with `Authorization: Bearer <metrics token>`.
async fn metrics(state: &AppState, parts: &Parts) -> Response<Body> {
    let given = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let expected = state.metrics_token.as_bytes();
    let allowed =
        given.is_some_and(|token| bool::from(subtle::ConstantTimeEq::ct_eq(token.trim().as_bytes(), expected)));
    if !allowed {
        let mut response = text(StatusCode::UNAUTHORIZED, "the metrics token (DATA_DIR/metrics-token) is required\n");
        response.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match crate::metrics::render(&state.metrics, state.store.as_ref(), state.clock.now()).await {
        Ok(body) => {
            let mut response = Response::new(full(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            response
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the store for /metrics");
            text(StatusCode::SERVICE_UNAVAILABLE, "the store cannot be read\n")
        }
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn api_error(error: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, error.to_json())
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    /// The size of the future a handler returns, read from its type.
    fn future_size<A, B, C, F: Future>(_handler: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_request_in_flight_holds_a_small_future() {
        // Every long-polling host keeps a request in flight: the large branches (API calls, the
        // console, S3, the agent's calls but the poll) are boxed when taken. It was 23,648
        // bytes before they were.
        let size = future_size(super::handle);
        assert!(size <= 4096, "a request's future is {size} bytes");
    }
}
