//! Server side: parse the authentication data of a request, then verify its signature.

use crate::canonical::{self, ALGORITHM, STREAMING_UNSIGNED_PAYLOAD_TRAILER, SigningKey, UNSIGNED_PAYLOAD, sha256_hex};
use crate::encode::{self, PathEncoding};
use crate::error::{AuthError, MAX_SKEW_SECS};
use crate::time::{format_amz_date, parse_amz_date, parse_http_date};
use http::header::{AUTHORIZATION, DATE};
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

/// Longest validity of a presigned URL (7 days), as AWS enforces.
pub const MAX_PRESIGNED_EXPIRES_SECS: u32 = 604_800;

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// The query parameters of a presigned URL.
mod param {
    pub const ALGORITHM: &str = "X-Amz-Algorithm";
    pub const CREDENTIAL: &str = "X-Amz-Credential";
    pub const DATE: &str = "X-Amz-Date";
    pub const EXPIRES: &str = "X-Amz-Expires";
    pub const SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
    pub const SIGNATURE: &str = "X-Amz-Signature";
}

/// A request as the verifier (and signer) sees it: borrowed parts, body already read.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Request URI as received (origin form `/path?query`, or absolute); the path and query are
    /// used in their wire (percent-encoded) form.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Complete request body.
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// Borrows the parts of an `http::Request` whose body is bytes.
    pub fn from_request<B: AsRef<[u8]>>(request: &'a http::Request<B>) -> Self {
        RequestParts {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            body: request.body().as_ref(),
        }
    }
}

/// The authentication data of a request, parsed but not yet verified. The server uses
/// `access_key_id` to find the secret and `service` to route before calling [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// Credential scope date, `YYYYMMDD` (as sent; checked against the request time by [`verify`]).
    pub date: String,
    /// Credential scope region.
    pub region: String,
    /// Credential scope service (`codedeploy`, `codedeploy-commands`, `s3`, ...).
    pub service: String,
    /// `SignedHeaders`, in the order sent.
    pub signed_headers: Vec<String>,
    /// The hex signature sent by the client.
    pub signature: String,
    /// Request time in epoch seconds, from `X-Amz-Date` (header or presigned parameter), else
    /// from the `Date` header.
    pub request_time: i64,
    /// Whether the request is a presigned URL (query-string authentication).
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL, in seconds.
    pub expires: Option<u32>,
}

impl Authorization {
    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        canonical::scope(&self.date, &self.region, &self.service)
    }

    /// Request time as `YYYYMMDDTHHMMSSZ`, the form used in the string to sign.
    pub fn amz_date(&self) -> String {
        format_amz_date(self.request_time)
    }
}

/// What the server expects of requests to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions<'a> {
    /// Service the credential scope must name; `None` accepts any.
    pub service: Option<&'a str>,
    /// Region the credential scope must name; `None` accepts any.
    pub region: Option<&'a str>,
    /// How the path becomes the canonical URI.
    pub path_encoding: PathEncoding,
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (and `STREAMING-UNSIGNED-PAYLOAD-TRAILER`)
    /// and presigned URLs, whose payload is never signed. Only S3 does.
    pub allow_unsigned_payload: bool,
    /// Take a hex `x-amz-content-sha256` as the payload hash without hashing the body: for
    /// callers that stream the body and compare its hash themselves before using it.
    pub declared_payload_hash: bool,
}

impl Default for VerifyOptions<'_> {
    /// Any service and region, double encoding, signed payloads only.
    fn default() -> Self {
        VerifyOptions {
            service: None,
            region: None,
            path_encoding: PathEncoding::Double,
            allow_unsigned_payload: false,
            declared_payload_hash: false,
        }
    }
}

impl<'a> VerifyOptions<'a> {
    /// What AWS does for `service`: requests must be scoped to it; S3 keeps the path as sent and
    /// accepts unsigned payloads, every other service normalises and double-encodes the path and
    /// requires a signed payload.
    pub fn for_service(service: &'a str) -> Self {
        VerifyOptions {
            service: Some(service),
            region: None,
            path_encoding: PathEncoding::for_service(service),
            allow_unsigned_payload: service == "s3",
            declared_payload_hash: false,
        }
    }

    /// Also require the credential scope to name `region`.
    pub fn with_region(self, region: &'a str) -> Self {
        VerifyOptions { region: Some(region), ..self }
    }

    /// Also take a declared hex payload hash as given (see `declared_payload_hash`).
    pub fn with_declared_payload_hash(self) -> Self {
        VerifyOptions { declared_payload_hash: true, ..self }
    }
}

fn malformed(message: String, presigned: bool) -> AuthError {
    AuthError::Malformed { message, presigned }
}

/// Whether the query carries presigned-URL parameters (checked without decoding: SDKs never
/// encode these names).
fn has_presign_params(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            matches!(name, param::ALGORITHM | param::CREDENTIAL | param::SIGNATURE)
        })
    })
}

/// Parses the authentication data (header or presigned form) without checking the signature, so
/// that the server can look up the secret and route on the service first.
pub fn parse_authorization(uri: &Uri, headers: &HeaderMap) -> Result<Authorization, AuthError> {
    let header = headers.get(AUTHORIZATION);
    match (header, has_presign_params(uri)) {
        (Some(_), true) => Err(AuthError::MultipleAuthMechanisms),
        (Some(value), false) => parse_header_form(&String::from_utf8_lossy(value.as_bytes()), headers),
        (None, true) => parse_query_form(uri.query().unwrap_or_default()),
        (None, false) => Err(AuthError::MissingAuthenticationToken),
    }
}

/// `AKID/YYYYMMDD/region/service/aws4_request` → (akid, date, region, service).
fn parse_credential(credential: &str, presigned: bool) -> Result<(String, String, String, String), AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(malformed(
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
            presigned,
        ));
    };
    if terminator != "aws4_request" {
        return Err(malformed(
            format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "),
            presigned,
        ));
    }
    Ok((akid.to_owned(), date.to_owned(), region.to_owned(), service.to_owned()))
}

/// Splits `SignedHeaders` and checks that `host` is among them: without it, a request could be
/// replayed against another host.
fn parse_signed_headers(value: &str, presigned: bool) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = value.split(';').map(str::to_owned).collect();
    if !names.iter().any(|n| n.eq_ignore_ascii_case("host")) {
        return Err(malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
            presigned,
        ));
    }
    Ok(names)
}

fn bad_amz_date(value: &str, presigned: bool) -> AuthError {
    malformed(
        format!("Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"),
        presigned,
    )
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<std::borrow::Cow<'h, str>> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()))
}

fn parse_header_form(value: &str, headers: &HeaderMap) -> Result<Authorization, AuthError> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme != ALGORITHM && scheme.starts_with("AWS4-") {
        return Err(malformed(
            format!("Unsupported AWS 'algorithm': '{scheme}'. Only '{ALGORITHM}' is supported."),
            false,
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // Anything else (another scheme, a bare token) lists every part as missing, as AWS does.
    if scheme == ALGORITHM {
        // Like AWS, split on commas and whitespace: `Credential= AKID/...` is an error about
        // `AKID/...`, and a missing comma between pairs is tolerated.
        let separators = |c: char| c == ',' || c.is_ascii_whitespace();
        for part in rest.split(separators).filter(|p| !p.is_empty()) {
            let Some((key, val)) = part.split_once('=') else {
                return Err(malformed(
                    format!(
                        "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
                    ),
                    false,
                ));
            };
            match key {
                "Credential" => credential = Some(val),
                "SignedHeaders" => signed_headers = Some(val),
                "Signature" => signature = Some(val),
                _ => {}
            }
        }
    }
    let amz_date = header_str(headers, X_AMZ_DATE);
    let date = header_str(headers, DATE.as_str());

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if amz_date.is_none() && date.is_none() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, missing.is_empty())
    else {
        return Err(malformed(format!("{} Authorization={value}", missing.join(" ")), false));
    };

    let (access_key_id, scope_date, region, service) = parse_credential(credential, false)?;
    let signed_headers = parse_signed_headers(signed_headers, false)?;
    // X-Amz-Date wins over Date; at least one is present (checked above).
    let request_time = match (amz_date, date) {
        (Some(v), _) => parse_amz_date(v.trim()).ok_or_else(|| bad_amz_date(&v, false))?,
        (None, v) => {
            let v = v.unwrap_or_default();
            parse_http_date(v.trim()).ok_or_else(|| {
                malformed(
                    format!("Date header must be an HTTP date such as 'Sun, 22 Nov 2026 01:58:07 GMT'. Got '{v}'."),
                    false,
                )
            })?
        }
    };
    Ok(Authorization {
        access_key_id,
        date: scope_date,
        region,
        service,
        signed_headers,
        signature: signature.to_owned(),
        request_time,
        presigned: false,
        expires: None,
    })
}

fn parse_query_form(query: &str) -> Result<Authorization, AuthError> {
    let (mut algorithm, mut credential, mut date, mut expires, mut signed_headers, mut signature) =
        (None, None, None, None, None, None);
    for (name, value) in encode::query_pairs(query) {
        let slot = match name.as_slice() {
            n if n == param::ALGORITHM.as_bytes() => &mut algorithm,
            n if n == param::CREDENTIAL.as_bytes() => &mut credential,
            n if n == param::DATE.as_bytes() => &mut date,
            n if n == param::EXPIRES.as_bytes() => &mut expires,
            n if n == param::SIGNED_HEADERS.as_bytes() => &mut signed_headers,
            n if n == param::SIGNATURE.as_bytes() => &mut signature,
            _ => continue,
        };
        // The first occurrence wins.
        slot.get_or_insert_with(|| String::from_utf8_lossy(&value).into_owned());
    }

    let mut missing = String::new();
    for (name, present) in [
        (param::ALGORITHM, algorithm.is_some()),
        (param::CREDENTIAL, credential.is_some()),
        (param::SIGNATURE, signature.is_some()),
        (param::SIGNED_HEADERS, signed_headers.is_some()),
        (param::DATE, date.is_some()),
    ] {
        if !present {
            missing.push_str(&format!("AWS query-string parameters must include '{name}'. "));
        }
    }
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) =
        (algorithm, credential, signature, signed_headers, date)
    else {
        return Err(malformed(format!("{missing}Re-examine the query-string parameters."), true));
    };
    if algorithm != ALGORITHM {
        return Err(malformed(format!("X-Amz-Algorithm only supports \"{ALGORITHM}\"; got '{algorithm}'."), true));
    }
    let (access_key_id, scope_date, region, service) = parse_credential(&credential, true)?;
    let signed_headers = parse_signed_headers(&signed_headers, true)?;
    let request_time = parse_amz_date(&date).ok_or_else(|| bad_amz_date(&date, true))?;
    let expires = match expires {
        None => None,
        Some(e) => {
            let secs: u32 =
                e.parse().map_err(|_| malformed(format!("X-Amz-Expires should be a number; got '{e}'."), true))?;
            if secs > MAX_PRESIGNED_EXPIRES_SECS {
                return Err(malformed(
                    "X-Amz-Expires must be less than a week (in seconds) that is 604800".to_owned(),
                    true,
                ));
            }
            Some(secs)
        }
    };
    Ok(Authorization {
        access_key_id,
        date: scope_date,
        region,
        service,
        signed_headers,
        signature,
        request_time,
        presigned: true,
        expires,
    })
}

/// Verifies `request` against the parsed `auth` with the secret access key.
/// `now` is the server's clock in epoch seconds.
pub fn verify(
    auth: &Authorization,
    request: &RequestParts<'_>,
    secret_access_key: &str,
    now: i64,
    options: &VerifyOptions<'_>,
) -> Result<(), AuthError> {
    // Derive the key only once the cheap checks have passed.
    let prepared = prepare(auth, request, now, options)?;
    let key = SigningKey::derive(secret_access_key, &auth.date, &auth.region, &auth.service);
    compare(auth, prepared, &key)
}

/// Like [`verify`], with a signing key derived (and cached) by the caller for `auth.date`,
/// `auth.region` and `auth.service`.
pub fn verify_with_key(
    auth: &Authorization,
    request: &RequestParts<'_>,
    key: &SigningKey,
    now: i64,
    options: &VerifyOptions<'_>,
) -> Result<(), AuthError> {
    let prepared = prepare(auth, request, now, options)?;
    compare(auth, prepared, key)
}

/// What remains to be signed once every other check has passed.
struct Prepared {
    canonical_request: Vec<u8>,
    string_to_sign: String,
}

/// Every check except the signature itself, cheapest first, then the string to sign.
fn prepare(
    auth: &Authorization,
    request: &RequestParts<'_>,
    now: i64,
    options: &VerifyOptions<'_>,
) -> Result<Prepared, AuthError> {
    if let Some(expected) = options.service
        && auth.service != expected
    {
        return Err(AuthError::WrongService { expected: expected.to_owned(), found: auth.service.clone() });
    }
    if let Some(expected) = options.region
        && auth.region != expected
    {
        return Err(AuthError::WrongRegion { expected: expected.to_owned(), found: auth.region.clone() });
    }
    let amz_date = auth.amz_date();
    if auth.date != amz_date[..8] {
        return Err(AuthError::ScopeDateMismatch { scope_date: auth.date.clone(), amz_date });
    }
    check_time(auth, now)?;
    if auth.presigned && !options.allow_unsigned_payload {
        return Err(AuthError::UnsignedPayloadNotAllowed);
    }
    let payload_hash = payload_hash(auth, request, options)?;

    let canonical_headers = canonical::canonical_headers(&auth.signed_headers, request.uri, request.headers)
        .map_err(|name| AuthError::MissingSignedHeader { name })?;
    let canonical_uri = encode::canonical_uri(request.uri.path(), options.path_encoding);
    let skip = auth.presigned.then_some(param::SIGNATURE);
    let canonical_query = encode::canonical_query(request.uri.query(), skip);
    let canonical_request = canonical::canonical_request(
        request.method.as_str(),
        &canonical_uri,
        &canonical_query,
        &canonical_headers,
        &auth.signed_headers.join(";"),
        &payload_hash,
    );
    let string_to_sign = canonical::string_to_sign(&amz_date, &auth.scope(), &canonical_request);
    Ok(Prepared { canonical_request, string_to_sign })
}

/// Compares signatures in constant time; a signature that is not 32 bytes of hex cannot match.
fn compare(auth: &Authorization, prepared: Prepared, key: &SigningKey) -> Result<(), AuthError> {
    let expected = key.signature_bytes(prepared.string_to_sign.as_bytes());
    let provided = hex::decode(&auth.signature).unwrap_or_default();
    if bool::from(provided.as_slice().ct_eq(&expected)) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch {
            canonical_request: canonical::redacted(&prepared.canonical_request),
            string_to_sign: prepared.string_to_sign,
        })
    }
}

/// Header form: within 15 minutes of `now` either way. Presigned: not before `X-Amz-Date` (less
/// the same tolerance) and not after `X-Amz-Date + X-Amz-Expires`.
fn check_time(auth: &Authorization, now: i64) -> Result<(), AuthError> {
    let t = auth.request_time;
    if t > now + MAX_SKEW_SECS {
        return Err(AuthError::SignatureNotYetCurrent { request_time: t, now });
    }
    match (auth.presigned, auth.expires) {
        (true, Some(expires)) if now > t + i64::from(expires) => {
            Err(AuthError::PresignedUrlExpired { request_time: t, expires, now })
        }
        (true, Some(_)) => Ok(()),
        _ if t < now - MAX_SKEW_SECS => Err(AuthError::SignatureExpired { request_time: t, now }),
        _ => Ok(()),
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The payload hash to put in the canonical request. A presigned URL signs `UNSIGNED-PAYLOAD`.
/// Otherwise `x-amz-content-sha256`, when sent, is what the client signed: a hash must be the
/// body's, an unsigned marker must be allowed. Without it, the body's hash.
fn payload_hash(
    auth: &Authorization,
    request: &RequestParts<'_>,
    options: &VerifyOptions<'_>,
) -> Result<String, AuthError> {
    if auth.presigned {
        return Ok(UNSIGNED_PAYLOAD.to_owned());
    }
    let Some(value) = request.headers.get(X_AMZ_CONTENT_SHA256) else {
        return Ok(sha256_hex(request.body));
    };
    let value = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if is_sha256_hex(&value) {
        if options.declared_payload_hash {
            return Ok(value);
        }
        let computed = sha256_hex(request.body);
        if !value.eq_ignore_ascii_case(&computed) {
            return Err(AuthError::ContentSha256Mismatch { provided: value, computed });
        }
        Ok(value)
    } else if value == UNSIGNED_PAYLOAD || value == STREAMING_UNSIGNED_PAYLOAD_TRAILER {
        if options.allow_unsigned_payload { Ok(value) } else { Err(AuthError::UnsignedPayloadNotAllowed) }
    } else {
        Err(AuthError::InvalidContentSha256 { value })
    }
}
