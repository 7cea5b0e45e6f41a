//! Store failures as API answers: what a handler did not expect is logged and answered as
//! InternalFailure; an unreachable store is ServiceUnavailable, a full disk says so.

use landfall_api::error::{ApiError, Exception};
use landfall_store::StoreError;

use crate::log_limit::LogLimit;

/// A store failure the handler did not expect: logged, answered as InternalFailure.
pub fn store_error(error: StoreError) -> ApiError {
    if let StoreError::Unavailable(why) = &error {
        static UNAVAILABLE: LogLimit = LogLimit::new();
        if let Some(held_back) = UNAVAILABLE.allow() {
            tracing::warn!(%why, held_back, "a request failed: the store is unavailable");
        }
        return ApiError::new(
            Exception::ServiceUnavailable,
            "The server's store (its database) is unavailable; try again shortly.",
        );
    }
    if let StoreError::Full(why) = &error {
        tracing::error!(%why, "a request failed: the store's disk is full");
        return ApiError::internal(
            "The server's disk is full: nothing was changed. Free space where its data directory (or database) is, \
             then try again.",
        );
    }
    tracing::error!(%error, "store failure");
    ApiError::internal("The server could not complete the request; see its log.")
}
