//! Errors, named and worded after what AWS services answer so that SDKs and users recognise them.

use crate::time::format_amz_date;
use std::fmt;

/// The largest clock skew AWS tolerates between a request's time and the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a request failed authentication. Never contains the secret or the signing key.
///
/// [`AuthError::exception`] and [`AuthError::message`] give the AWS JSON-protocol error
/// (`__type` and message); [`AuthError::s3_code`] and [`AuthError::s3_message`] the S3 REST/XML
/// equivalent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned-URL query parameters.
    MissingAuthenticationToken,
    /// Both an `Authorization` header and presigned-URL query parameters.
    MultipleAuthMechanisms,
    /// The `Authorization` header (or the presigned query parameters) cannot be used:
    /// missing parts, bad credential scope, no usable date, unsupported algorithm, `host` not
    /// signed. `message` is the complete AWS-style message.
    Malformed {
        /// The AWS-style message.
        message: String,
        /// Whether the request used the presigned-URL (query) form.
        presigned: bool,
    },
    /// The credential scope names another service than the one this endpoint serves.
    WrongService {
        /// The service this endpoint serves.
        expected: String,
        /// The service in the credential scope.
        found: String,
    },
    /// The credential scope names another region than the one this server runs in.
    WrongRegion {
        /// The region this server runs in.
        expected: String,
        /// The region in the credential scope.
        found: String,
    },
    /// The credential scope's date is not the date of the request time.
    ScopeDateMismatch {
        /// `YYYYMMDD` from the credential scope.
        scope_date: String,
        /// The request time in `YYYYMMDDTHHMMSSZ` form.
        amz_date: String,
    },
    /// The request time is more than 15 minutes before the server's clock.
    SignatureExpired {
        /// Request time (epoch seconds).
        request_time: i64,
        /// Server time (epoch seconds).
        now: i64,
    },
    /// The request time is more than 15 minutes after the server's clock.
    SignatureNotYetCurrent {
        /// Request time (epoch seconds).
        request_time: i64,
        /// Server time (epoch seconds).
        now: i64,
    },
    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`.
    PresignedUrlExpired {
        /// Signing time (epoch seconds).
        request_time: i64,
        /// `X-Amz-Expires` (seconds).
        expires: u32,
        /// Server time (epoch seconds).
        now: i64,
    },
    /// A header listed in `SignedHeaders` is absent from the request.
    MissingSignedHeader {
        /// The header name as listed.
        name: String,
    },
    /// `x-amz-content-sha256` is a hash, but not the hash of the body received.
    ContentSha256Mismatch {
        /// The header's value.
        provided: String,
        /// The hex SHA-256 of the body received.
        computed: String,
    },
    /// `x-amz-content-sha256` is neither a hex SHA-256 nor an accepted unsigned-payload marker.
    InvalidContentSha256 {
        /// The header's value.
        value: String,
    },
    /// An unsigned payload (`UNSIGNED-PAYLOAD`, or a presigned URL, whose payload is always
    /// unsigned) sent to a service that requires signed payloads.
    UnsignedPayloadNotAllowed,
    /// The signature does not match. The canonical request (with security-token values redacted)
    /// and the string to sign are kept for debug logging; they are never sent to the client.
    SignatureMismatch {
        /// The canonical request the server computed.
        canonical_request: String,
        /// The string to sign the server computed.
        string_to_sign: String,
    },
}

const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl AuthError {
    /// AWS JSON-protocol exception name (`__type`).
    pub fn exception(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::MultipleAuthMechanisms | AuthError::Malformed { .. } => "IncompleteSignatureException",
            _ => "InvalidSignatureException",
        }
    }

    /// HTTP status for the JSON-protocol error. AWS JSON services answer authentication
    /// failures with 400, except a missing token (403).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingAuthenticationToken => 403,
            _ => 400,
        }
    }

    /// AWS JSON-protocol error message.
    pub fn message(&self) -> String {
        match self {
            AuthError::MissingAuthenticationToken => "Missing Authentication Token".to_owned(),
            AuthError::MultipleAuthMechanisms => "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified".to_owned(),
            AuthError::Malformed { message, .. } => message.clone(),
            AuthError::WrongService { expected, .. } => {
                format!("Credential should be scoped to correct service: '{expected}'. ")
            }
            AuthError::WrongRegion { found, .. } => {
                format!("Credential should be scoped to a valid region, not '{found}'. ")
            }
            AuthError::ScopeDateMismatch {
                scope_date,
                amz_date,
            } => format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                amz_date.get(..8).unwrap_or(amz_date)
            ),
            AuthError::SignatureExpired { request_time, now } => format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                format_amz_date(*request_time),
                format_amz_date(now - MAX_SKEW_SECS),
                format_amz_date(*now)
            ),
            AuthError::SignatureNotYetCurrent { request_time, now } => format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                format_amz_date(*request_time),
                format_amz_date(now + MAX_SKEW_SECS),
                format_amz_date(*now)
            ),
            AuthError::PresignedUrlExpired {
                request_time,
                expires,
                now,
            } => format!(
                "Signature expired: {} is now later than {} ({} + {expires} sec.)",
                format_amz_date(*now),
                format_amz_date(request_time + i64::from(*expires)),
                format_amz_date(*request_time)
            ),
            AuthError::MissingSignedHeader { name } => {
                format!("Header '{name}' is listed in SignedHeaders but is not present in the request.")
            }
            AuthError::ContentSha256Mismatch { .. } => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            }
            AuthError::InvalidContentSha256 { value } => format!(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value, not '{value}'."
            ),
            AuthError::UnsignedPayloadNotAllowed => {
                "This service requires a signed payload: UNSIGNED-PAYLOAD and presigned URLs are not accepted.".to_owned()
            }
            AuthError::SignatureMismatch { .. } => MISMATCH_MESSAGE.to_owned(),
        }
    }

    /// S3 REST error code for the same failure.
    pub fn s3_code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken | AuthError::PresignedUrlExpired { .. } => "AccessDenied",
            AuthError::MultipleAuthMechanisms
            | AuthError::InvalidContentSha256 { .. }
            | AuthError::UnsignedPayloadNotAllowed => "InvalidArgument",
            AuthError::Malformed { presigned: true, .. } => "AuthorizationQueryParametersError",
            AuthError::Malformed { .. }
            | AuthError::WrongService { .. }
            | AuthError::WrongRegion { .. }
            | AuthError::ScopeDateMismatch { .. } => "AuthorizationHeaderMalformed",
            AuthError::SignatureExpired { .. } | AuthError::SignatureNotYetCurrent { .. } => "RequestTimeTooSkewed",
            AuthError::ContentSha256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            AuthError::MissingSignedHeader { .. } | AuthError::SignatureMismatch { .. } => "SignatureDoesNotMatch",
        }
    }

    /// HTTP status S3 answers with for [`AuthError::s3_code`].
    pub fn s3_http_status(&self) -> u16 {
        match self.s3_code() {
            "AccessDenied" | "RequestTimeTooSkewed" | "SignatureDoesNotMatch" => 403,
            _ => 400,
        }
    }

    /// S3 REST error message for the same failure.
    pub fn s3_message(&self) -> String {
        match self {
            AuthError::MissingAuthenticationToken => "Access Denied".to_owned(),
            AuthError::PresignedUrlExpired { .. } => "Request has expired".to_owned(),
            AuthError::WrongRegion { expected, found } => format!(
                "The authorization header is malformed; the region '{found}' is wrong; expecting '{expected}'"
            ),
            AuthError::WrongService { found, expected } => format!(
                "The authorization header is malformed; incorrect service '{found}'. This endpoint belongs to '{expected}'."
            ),
            AuthError::ScopeDateMismatch { .. } => "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.".to_owned(),
            AuthError::SignatureExpired { .. } | AuthError::SignatureNotYetCurrent { .. } => {
                "The difference between the request time and the current time is too large."
                    .to_owned()
            }
            AuthError::MissingSignedHeader { .. } | AuthError::SignatureMismatch { .. } => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.".to_owned()
            }
            _ => self.message(),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exception(), self.message())
    }
}

impl std::error::Error for AuthError {}

/// Why a request could not be signed (a programming or configuration error on the client side).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The request has no `Host` header and its URI no authority to derive one from.
    MissingHost,
    /// A value (access key id, session token, existing header, URI) cannot be put in a header or
    /// URI; the string names which.
    InvalidValue(&'static str),
    /// Presigned URLs can be valid for at most 7 days (604800 seconds).
    ExpiresTooLong(u32),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::MissingHost => f.write_str("cannot sign: no Host header and no authority in the URI"),
            SignError::InvalidValue(what) => write!(f, "cannot sign: invalid {what}"),
            SignError::ExpiresTooLong(secs) => {
                write!(f, "cannot presign: expiry of {secs} s exceeds the maximum of 604800 s (7 days)")
            }
        }
    }
}

impl std::error::Error for SignError {}
