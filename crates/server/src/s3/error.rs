//! S3 errors: the code, HTTP status and message S3 answers, plus the extra elements some carry.

use hyper::StatusCode;
use landfall_sigv4::AuthError;

/// Why an S3 request was refused before its operation was looked at (turned into S3's XML
/// errors by the S3 module).
#[derive(Debug)]
pub enum S3AuthFailure {
    Signature(AuthError),
    UnknownAccessKey(String),
    /// A header-signed request without `x-amz-content-sha256`, which S3 requires.
    MissingContentSha256,
    /// `x-amz-content-sha256` sent but left out of the signature, so the body would be unprotected.
    ContentSha256NotSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` and the like: per-chunk signatures are not verified.
    SignedChunks(String),
    /// Signature version 2 (`Authorization: AWS ...`, or `AWSAccessKeyId` and `Signature` in the query).
    SignatureV2,
    Store(landfall_api::ApiError),
}

#[derive(Debug)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra elements of the error document (`Key`, `BucketName`, `UploadId`...).
    pub details: Vec<(&'static str, String)>,
    /// For InvalidRange: the object's size, for `Content-Range: bytes */size`.
    pub range_size: Option<u64>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error { status, code, message: message.into(), details: Vec::new(), range_size: None }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.details.push((name, value.into()));
        self
    }

    pub fn access_denied() -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied")
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        S3Error::new(StatusCode::NOT_FOUND, "NoSuchBucket", "The specified bucket does not exist")
            .with("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> S3Error {
        S3Error::new(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").with("Key", key)
    }

    pub fn no_such_upload(upload_id: &str) -> S3Error {
        S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }

    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    pub fn not_implemented(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::NOT_IMPLEMENTED, "NotImplemented", message)
    }

    pub fn incomplete_body() -> S3Error {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }

    pub fn entity_too_large(max: u64) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            .with("MaxSizeAllowed", max.to_string())
    }

    /// The store cannot be reached now (clients retry a 503).
    pub fn unavailable() -> S3Error {
        S3Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The server's store (its database) is unavailable; try again shortly.",
        )
    }

    /// A failure of the server's own storage. The cause is logged, not sent.
    pub fn internal(error: impl std::fmt::Display) -> S3Error {
        tracing::error!(%error, "S3 bundle store failure");
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
}

impl From<landfall_store::StoreError> for S3Error {
    fn from(error: landfall_store::StoreError) -> S3Error {
        match error {
            landfall_store::StoreError::Unavailable(why) => {
                tracing::warn!(%why, "an S3 request failed: the store is unavailable");
                S3Error::unavailable()
            }
            landfall_store::StoreError::Full(why) => std::io::Error::new(std::io::ErrorKind::StorageFull, why).into(),
            other => S3Error::internal(other),
        }
    }
}

impl From<std::io::Error> for S3Error {
    fn from(error: std::io::Error) -> S3Error {
        if error.kind() == std::io::ErrorKind::StorageFull {
            tracing::error!(%error, "an S3 request failed: the bundle store's disk is full");
            return S3Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "The server's disk is full: the object was not stored. Free space where its data directory is, \
                 then try again.",
            );
        }
        S3Error::internal(error)
    }
}

impl From<S3AuthFailure> for S3Error {
    fn from(failure: S3AuthFailure) -> S3Error {
        match failure {
            S3AuthFailure::Signature(error) => from_auth_error(&error),
            S3AuthFailure::UnknownAccessKey(access_key_id) => S3Error::new(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
            .with("AWSAccessKeyId", access_key_id),
            S3AuthFailure::MissingContentSha256 => {
                S3Error::invalid_request("Missing required header for this request: x-amz-content-sha256")
            }
            S3AuthFailure::ContentSha256NotSigned => {
                S3Error::invalid_request("header 'x-amz-content-sha256' must be included in signature")
            }
            S3AuthFailure::SignedChunks(value) => S3Error::not_implemented(format!(
                "Signed aws-chunked uploads (x-amz-content-sha256: {value}) are not supported; sign the payload's \
                 SHA-256, or send UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            ))
            .with("Header", "x-amz-content-sha256"),
            S3AuthFailure::SignatureV2 => S3Error::invalid_request(
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            ),
            S3AuthFailure::Store(error) if error.exception == landfall_api::error::Exception::ServiceUnavailable => {
                S3Error::unavailable()
            }
            S3AuthFailure::Store(error) => S3Error::internal(error.message),
        }
    }
}

fn from_auth_error(error: &AuthError) -> S3Error {
    let status = StatusCode::from_u16(error.s3_http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut s3 = S3Error::new(status, error.s3_code(), error.s3_message());
    match error {
        AuthError::ContentSha256Mismatch { provided, computed } => {
            s3 = s3.with("ClientComputedContentSHA256", provided).with("S3ComputedContentSHA256", computed);
        }
        AuthError::SignatureExpired { request_time, now } | AuthError::SignatureNotYetCurrent { request_time, now } => {
            s3 = s3
                .with("RequestTime", landfall_sigv4::format_amz_date(*request_time))
                .with("ServerTime", landfall_sigv4::format_amz_date(*now))
                .with("MaxAllowedSkewMilliseconds", "900000");
        }
        _ => {}
    }
    s3
}
