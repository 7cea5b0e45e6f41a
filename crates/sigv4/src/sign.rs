//! Client side: sign requests (Authorization header) and presign URLs.

use crate::canonical::{self, ALGORITHM, SigningKey, UNSIGNED_PAYLOAD, sha256_hex};
use crate::encode::{self, PathEncoding, uri_encode};
use crate::error::SignError;
use crate::time::format_amz_date;
use crate::verify::MAX_PRESIGNED_EXPIRES_SECS;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::fmt;

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_TARGET: &str = "x-amz-target";

/// AWS credentials. `Debug` shows only the access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (`AKIA...`).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials, sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Who signs, for which scope, and when.
#[derive(Clone, Copy, Debug)]
pub struct SigningParams<'a> {
    /// The credentials to sign with.
    pub credentials: &'a Credentials,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Service of the credential scope; also decides the path encoding (`s3` or not).
    pub service: &'a str,
    /// Signing time, epoch seconds.
    pub time: i64,
}

/// The `Host` value a client sends for `uri`: the authority without a default port.
fn host_from_uri(uri: &Uri) -> Result<String, SignError> {
    let host = uri.host().ok_or(SignError::MissingHost)?;
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Ok(match uri.port_u16() {
        Some(port) if Some(port) != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
}

fn header_value(value: &str, what: &'static str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(value).map_err(|_| SignError::InvalidValue(what))
}

/// Signs a request in place: sets `x-amz-date`, `x-amz-security-token` (with a session token),
/// `host` (from the URI, if absent), `x-amz-content-sha256` (for S3, if absent) and
/// `authorization`. Signed are `host`, `content-type`, `x-amz-target` and every `x-amz-*` header.
///
/// An `x-amz-content-sha256` already present (e.g. `UNSIGNED-PAYLOAD`) is used as the payload
/// hash as is; otherwise the payload hash is the SHA-256 of `body`.
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<(), SignError> {
    let credentials = params.credentials;
    let amz_date = format_amz_date(params.time);
    headers.remove(AUTHORIZATION);
    if !headers.contains_key(HOST) {
        headers.insert(HOST, header_value(&host_from_uri(uri)?, "host")?);
    }
    headers.insert(X_AMZ_DATE, header_value(&amz_date, "date")?);
    if let Some(token) = &credentials.session_token {
        let mut value = header_value(token, "session token")?;
        value.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN, value);
    }
    let payload_hash = match headers.get(X_AMZ_CONTENT_SHA256) {
        Some(value) => value.to_str().map_err(|_| SignError::InvalidValue("x-amz-content-sha256"))?.trim().to_owned(),
        None => {
            let hash = sha256_hex(body);
            // S3 requires the header on every signed request.
            if params.service == "s3" {
                headers.insert(X_AMZ_CONTENT_SHA256, header_value(&hash, "hash")?);
            }
            hash
        }
    };

    // HeaderMap keys are lower case and unique.
    let mut signed: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| *n == HOST || *n == CONTENT_TYPE || *n == X_AMZ_TARGET || n.starts_with("x-amz-"))
        .collect();
    signed.sort_unstable();
    let signed_headers = signed.join(";");
    let canonical_headers = canonical::canonical_headers(&signed, uri, headers).map_err(|_| SignError::MissingHost)?;

    let canonical_request = canonical::canonical_request(
        method.as_str(),
        &encode::canonical_uri(uri.path(), PathEncoding::for_service(params.service)),
        &encode::canonical_query(uri.query(), None),
        &canonical_headers,
        &signed_headers,
        &payload_hash,
    );
    let scope = canonical::scope(&amz_date[..8], params.region, params.service);
    let string_to_sign = canonical::string_to_sign(&amz_date, &scope, &canonical_request);
    let key = SigningKey::derive(&credentials.secret_access_key, &amz_date[..8], params.region, params.service);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        credentials.access_key_id,
        key.sign(string_to_sign.as_bytes())
    );
    headers.insert(AUTHORIZATION, header_value(&authorization, "access key id")?);
    Ok(())
}

/// Returns `uri` with the query parameters of a presigned URL appended (query-string
/// authentication, as for an S3 GET). Only `host` is signed, and the payload is
/// `UNSIGNED-PAYLOAD`. `uri` must be absolute; `expires_secs` at most 604800 (7 days).
pub fn presign(method: &Method, uri: &Uri, params: &SigningParams<'_>, expires_secs: u32) -> Result<Uri, SignError> {
    if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(SignError::ExpiresTooLong(expires_secs));
    }
    let credentials = params.credentials;
    let host = host_from_uri(uri)?;
    let amz_date = format_amz_date(params.time);
    let scope = canonical::scope(&amz_date[..8], params.region, params.service);
    let credential = format!("{}/{scope}", credentials.access_key_id);

    let mut query = uri.query().unwrap_or_default().to_owned();
    let expires = expires_secs.to_string();
    let mut added = vec![
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ];
    if let Some(token) = &credentials.session_token {
        added.push(("X-Amz-Security-Token", token.as_str()));
    }
    for (name, value) in added {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&uri_encode(value, false));
    }

    let canonical_request = canonical::canonical_request(
        method.as_str(),
        &encode::canonical_uri(uri.path(), PathEncoding::for_service(params.service)),
        &encode::canonical_query(Some(&query), None),
        format!("host:{host}\n").as_bytes(),
        "host",
        UNSIGNED_PAYLOAD,
    );
    let string_to_sign = canonical::string_to_sign(&amz_date, &scope, &canonical_request);
    let key = SigningKey::derive(&credentials.secret_access_key, &amz_date[..8], params.region, params.service);
    query.push_str("&X-Amz-Signature=");
    query.push_str(&key.sign(string_to_sign.as_bytes()));

    let path = if uri.path().is_empty() { "/" } else { uri.path() };
    let mut builder = Uri::builder().path_and_query(format!("{path}?{query}"));
    if let Some(scheme) = uri.scheme() {
        builder = builder.scheme(scheme.clone());
    }
    if let Some(authority) = uri.authority() {
        builder = builder.authority(authority.clone());
    }
    builder.build().map_err(|_| SignError::InvalidValue("URI"))
}
