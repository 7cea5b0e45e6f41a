//! Calls in the AWS query protocol (form-encoded `Action=...`, XML answers): what STS and IAM
//! speak. Landfall serves none of IAM and one call of STS, GetCallerIdentity, which many tools
//! make first to see whose credentials they hold. Every other call (the IAM users `aws deploy
//! register` would create, say) gets an error in the protocol the client reads, naming what
//! Landfall serves, rather than a JSON answer an XML client cannot parse. Calls are
//! authenticated first, as every call is.

use std::net::SocketAddr;

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use landfall_api::error::{ApiError, Exception};

use crate::auth::{authenticate, signed_service};
use crate::body::{Body, full};
use crate::s3::xml::Writer;
use crate::state::AppState;

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Whether a request to `POST /` is in the query protocol.
pub fn is_query(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
        && !parts.headers.contains_key("x-amz-target")
}

pub async fn call(state: &AppState, peer: SocketAddr, parts: &Parts, body: &[u8]) -> Response<Body> {
    let service = signed_service(parts).unwrap_or_default();
    let namespace = if service == "iam" { IAM_NAMESPACE } else { STS_NAMESPACE };
    let caller = match authenticate(state, parts, body, &service).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::info!(%peer, %service, error = error.exception.name(), "query-protocol request refused");
            return error_answer(namespace, StatusCode::FORBIDDEN, auth_code(&error), &error.message);
        }
    };
    let form = crate::console::parse_form(&String::from_utf8_lossy(body));
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    if service == "sts" && action == "GetCallerIdentity" {
        let arn = format!("arn:aws:iam::{}:user/{}", state.account_id, caller.access_key_id);
        let mut document = Writer::new().root_in("GetCallerIdentityResponse", STS_NAMESPACE);
        document
            .open("GetCallerIdentityResult")
            .element("Arn", &arn)
            .element("UserId", &caller.access_key_id)
            .element("Account", &state.account_id)
            .close("GetCallerIdentityResult")
            .open("ResponseMetadata")
            .element("RequestId", &uuid::Uuid::new_v4().to_string())
            .close("ResponseMetadata")
            .close("GetCallerIdentityResponse");
        return xml(StatusCode::OK, document.finish());
    }
    let named = if service.is_empty() { String::new() } else { format!("{}'s ", service.to_ascii_uppercase()) };
    tracing::info!(%peer, %service, action, access_key_id = %caller.access_key_id, "a call for another service");
    error_answer(
        namespace,
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        &format!(
            "This is Landfall: it serves CodeDeploy (aws deploy), its bundle store (aws s3) and STS GetCallerIdentity, \
             not {named}{action}. Register hosts with `landfall instance register` (or \
             `aws deploy register-on-premises-instance` with an IAM user ARN of your choosing)."
        ),
    )
}

/// The query protocol's name for an authentication failure.
fn auth_code(error: &ApiError) -> &'static str {
    match error.exception {
        Exception::UnrecognizedClient => "InvalidClientTokenId",
        Exception::MissingAuthenticationToken => "MissingAuthenticationToken",
        Exception::IncompleteSignature => "IncompleteSignature",
        Exception::InternalFailure | Exception::ServiceUnavailable => "ServiceUnavailable",
        _ => "SignatureDoesNotMatch",
    }
}

fn error_answer(namespace: &str, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
    let mut document = Writer::new().root_in("ErrorResponse", namespace);
    document
        .open("Error")
        .element("Type", kind)
        .element("Code", code)
        .element("Message", message)
        .close("Error")
        .element("RequestId", &uuid::Uuid::new_v4().to_string())
        .close("ErrorResponse");
    xml(status, document.finish())
}

fn xml(status: StatusCode, document: String) -> Response<Body> {
    let mut response = Response::new(full(document));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}
