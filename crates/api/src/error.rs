//! The error every operation answers with: an AWS exception name and a message.

use std::fmt;

pub use crate::shapes::Exception;

/// An API error as the AWS JSON 1.1 protocol carries it:
/// HTTP status (400 for every modelled exception) and `{"__type": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub exception: Exception,
    pub message: String,
}

impl ApiError {
    pub fn new(exception: Exception, message: impl Into<String>) -> ApiError {
        ApiError { exception, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Exception::InternalFailure, message)
    }

    pub fn http_status(&self) -> u16 {
        match self.exception {
            Exception::InternalFailure => 500,
            Exception::RequestEntityTooLarge => 413,
            Exception::RequestTimeout => 408,
            Exception::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.exception.name(),
            "message": self.message,
        }))
        .unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exception.name(), self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// Shorthand for building an error: `err(Exception::X, format!(..))`.
pub fn err<T>(exception: Exception, message: impl Into<String>) -> ApiResult<T> {
    Err(ApiError::new(exception, message))
}
