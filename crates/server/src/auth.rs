//! Authentication of API requests: SigV4 against the stored access keys, and the role check.

use hyper::http::request::Parts;
use landfall_api::error::{ApiError, Exception};
use landfall_api::landfall::{Access, Role};
use landfall_sigv4::{AuthError, RequestParts, VerifyOptions, parse_authorization, verify_with_key};

use crate::api::common::store_error;
use crate::state::AppState;

/// The SigV4 service name of the public API (and of Landfall's extensions).
pub const SERVICE: &str = "codedeploy";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub role: Role,
    /// For an agent's key: its instance.
    pub instance_name: Option<String>,
}

/// Verifies a request's signature for `service` and returns its caller, or the error AWS answers.
pub async fn authenticate(state: &AppState, request: &Parts, body: &[u8], service: &str) -> Result<Caller, ApiError> {
    let auth = parse_authorization(&request.uri, &request.headers).map_err(auth_error)?;
    let options = VerifyOptions::for_service(service);
    if auth.service != service {
        return Err(auth_error(AuthError::WrongService { expected: service.to_owned(), found: auth.service.clone() }));
    }
    let Some(key) = state.keys.active_key(state.store.as_ref(), &auth.access_key_id).await.map_err(store_error)? else {
        tracing::info!(access_key_id = %auth.access_key_id, "request with an unknown or revoked access key");
        return Err(ApiError::new(
            Exception::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ));
    };
    let signing_key = state.keys.signing_key(&key, &auth.date, &auth.region, &auth.service);
    let parts = RequestParts { method: &request.method, uri: &request.uri, headers: &request.headers, body };
    let now = state.clock.now().millis() / 1000;
    if let Err(error) = verify_with_key(&auth, &parts, &signing_key, now, &options) {
        if let AuthError::SignatureMismatch { canonical_request, string_to_sign } = &error {
            tracing::debug!(access_key_id = %auth.access_key_id, %canonical_request, %string_to_sign, "signature mismatch");
        }
        return Err(auth_error(error));
    }
    Ok(Caller { access_key_id: key.access_key_id, role: key.role, instance_name: key.instance_name })
}

fn auth_error(error: AuthError) -> ApiError {
    let exception = match error.exception() {
        "MissingAuthenticationTokenException" => Exception::MissingAuthenticationToken,
        "IncompleteSignatureException" => Exception::IncompleteSignature,
        "UnrecognizedClientException" => Exception::UnrecognizedClient,
        "AccessDeniedException" => Exception::AccessDenied,
        _ => Exception::InvalidSignature,
    };
    ApiError::new(exception, error.message())
}

/// AccessDeniedException unless the caller's role allows `access`.
pub fn authorize(state: &AppState, caller: &Caller, access: Access, operation: &str) -> Result<(), ApiError> {
    if caller.role.allows(access) {
        return Ok(());
    }
    Err(ApiError::new(
        Exception::AccessDenied,
        format!(
            "User: arn:aws:iam::{}:user/landfall/{} (role {}) is not authorized to perform: codedeploy:{operation}",
            state.account_id,
            caller.access_key_id,
            caller.role.as_str()
        ),
    ))
}
