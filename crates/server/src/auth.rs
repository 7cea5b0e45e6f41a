//! Authentication of API requests: SigV4 against the stored access keys, and the role check.

use hyper::http::request::Parts;
use landfall_api::error::{ApiError, Exception};
use landfall_api::landfall::{Access, Role};
use landfall_sigv4::{AuthError, RequestParts, VerifyOptions, parse_authorization, verify_with_key};

use crate::errors::store_error;
pub use crate::s3::error::S3AuthFailure;
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

/// The service a request's signature is scoped to (`sts`, `codedeploy`...), if it is signed.
pub fn signed_service(request: &Parts) -> Option<String> {
    parse_authorization(&request.uri, &request.headers).ok().map(|auth| auth.service)
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

/// Verifies an S3 request (SigV4 service `s3`, header or presigned form) before its body is read.
/// A hex `x-amz-content-sha256` is taken as signed; the caller checks the body against it while
/// streaming it, and stores nothing if it differs.
pub async fn authenticate_s3(state: &AppState, request: &Parts) -> Result<Caller, S3AuthFailure> {
    let v2_header =
        request.headers.get(hyper::header::AUTHORIZATION).is_some_and(|value| value.as_bytes().starts_with(b"AWS "));
    let v2_query = request.uri.query().is_some_and(|query| {
        let names: Vec<&str> =
            query.split('&').map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name)).collect();
        names.contains(&"AWSAccessKeyId") && names.contains(&"Signature")
    });
    if v2_header || v2_query {
        return Err(S3AuthFailure::SignatureV2);
    }
    let auth = parse_authorization(&request.uri, &request.headers).map_err(S3AuthFailure::Signature)?;
    if auth.service != "s3" {
        return Err(S3AuthFailure::Signature(AuthError::WrongService {
            expected: "s3".to_owned(),
            found: auth.service.clone(),
        }));
    }
    let declared = request
        .headers
        .get("x-amz-content-sha256")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
    if !auth.presigned {
        match &declared {
            None => return Err(S3AuthFailure::MissingContentSha256),
            Some(_) if !auth.signed_headers.iter().any(|name| name.eq_ignore_ascii_case("x-amz-content-sha256")) => {
                return Err(S3AuthFailure::ContentSha256NotSigned);
            }
            Some(value)
                if value.starts_with("STREAMING-") && value != landfall_sigv4::STREAMING_UNSIGNED_PAYLOAD_TRAILER =>
            {
                return Err(S3AuthFailure::SignedChunks(value.clone()));
            }
            Some(_) => {}
        }
    }
    let Some(key) = state
        .keys
        .active_key(state.store.as_ref(), &auth.access_key_id)
        .await
        .map_err(|error| S3AuthFailure::Store(store_error(error)))?
    else {
        tracing::info!(access_key_id = %auth.access_key_id, "S3 request with an unknown or revoked access key");
        return Err(S3AuthFailure::UnknownAccessKey(auth.access_key_id));
    };
    let signing_key = state.keys.signing_key(&key, &auth.date, &auth.region, &auth.service);
    let now = state.clock.now().millis() / 1000;
    // The body is not read yet: a declared hex payload hash is taken as signed here, and the
    // upload code compares it with the bytes it receives before it stores anything.
    let parts = RequestParts { method: &request.method, uri: &request.uri, headers: &request.headers, body: &[] };
    let options = VerifyOptions::for_service("s3").with_declared_payload_hash();
    let result = verify_with_key(&auth, &parts, &signing_key, now, &options);
    if let Err(error) = result {
        if let AuthError::SignatureMismatch { canonical_request, string_to_sign } = &error {
            tracing::debug!(access_key_id = %auth.access_key_id, %canonical_request, %string_to_sign, "S3 signature mismatch");
        }
        return Err(S3AuthFailure::Signature(error));
    }
    Ok(Caller { access_key_id: key.access_key_id, role: key.role, instance_name: key.instance_name })
}
