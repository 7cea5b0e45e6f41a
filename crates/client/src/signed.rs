//! The one way Landfall sends a SigV4-signed request: its own API and bundle store (this
//! crate), the agent protocol (the agent), and the AWS APIs the server drives (Lambda, ECS,
//! ELBv2). Signed at the system's time, which is what the receiving service checks.

use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};
use landfall_api::Timestamp;
use landfall_sigv4::{Credentials, SigningParams, UNSIGNED_PAYLOAD, sign};

/// Who signs, for which region and service.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
}

/// Why a signed request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request could not be signed (a header the signature cannot cover).
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The endpoint could not be reached, or the exchange failed.
    #[error("{}", crate::describe(.0))]
    Unreachable(#[from] reqwest::Error),
}

/// Signs `headers` for the request and sends it; the answer whatever its status.
pub async fn send_signed(
    http: &reqwest::Client,
    method: Method,
    uri: &Uri,
    mut headers: HeaderMap,
    body: Vec<u8>,
    signing: Signing<'_>,
) -> Result<reqwest::Response, SendError> {
    sign_now(&method, uri, &mut headers, &body, signing)?;
    Ok(http.request(method, uri.to_string()).headers(headers).body(body).send().await?)
}

/// [`send_signed`] for a body streamed rather than held (a bundle on its way to an S3 store):
/// signed as `UNSIGNED-PAYLOAD`, which S3 accepts.
pub async fn send_signed_stream(
    http: &reqwest::Client,
    method: Method,
    uri: &Uri,
    mut headers: HeaderMap,
    body: Option<reqwest::Body>,
    signing: Signing<'_>,
) -> Result<reqwest::Response, SendError> {
    headers.insert("x-amz-content-sha256", http::HeaderValue::from_static(UNSIGNED_PAYLOAD));
    sign_now(&method, uri, &mut headers, &[], signing)?;
    let request = http.request(method, uri.to_string()).headers(headers);
    Ok(match body {
        Some(body) => request.body(body),
        None => request,
    }
    .send()
    .await?)
}

fn sign_now(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    signing: Signing<'_>,
) -> Result<(), SendError> {
    let params = SigningParams {
        credentials: signing.credentials,
        region: signing.region,
        service: signing.service,
        time: Timestamp::from_system(SystemTime::now()).whole_seconds(),
    };
    sign(method, uri, headers, body, &params).map_err(|e| SendError::Sign(format!("{e:?}")))
}
