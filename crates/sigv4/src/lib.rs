//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for Landfall.
//!
//! - Servers: [`parse_authorization`] reads the access key id and credential scope (so the
//!   server can look up the secret and route on the service), then [`verify`] (or
//!   [`verify_with_key`] with a cached [`SigningKey`]) checks scope, clock skew, payload hash and
//!   signature. Failures are [`AuthError`]s that carry the AWS exception name and message.
//! - Clients: [`sign`] adds the `authorization` header; [`presign`] builds a presigned URL.
//!
//! Both sides share one canonicalisation, so what Landfall signs it also accepts. No I/O: the
//! caller supplies the clock (`now`/`time`, epoch seconds) and the whole body.
//!
//! ```
//! use http::{HeaderMap, Method, Uri};
//! use landfall_sigv4::*;
//!
//! // Client.
//! let credentials = Credentials::new("AKIAEXAMPLEEXAMPLE00", "secret");
//! let (method, uri): (Method, Uri) = (Method::POST, "https://127.0.0.1:8443/".parse().unwrap());
//! let mut headers = HeaderMap::new();
//! headers.insert("x-amz-target", "CodeDeploy_20141006.ListApplications".parse().unwrap());
//! let params = SigningParams { credentials: &credentials, region: "us-east-1", service: "codedeploy", time: 1_795_312_687 };
//! sign(&method, &uri, &mut headers, b"{}", &params).unwrap();
//!
//! // Server.
//! let request = RequestParts { method: &method, uri: &uri, headers: &headers, body: b"{}" };
//! let auth = parse_authorization(request.uri, request.headers).unwrap();
//! assert_eq!((auth.access_key_id.as_str(), auth.service.as_str()), ("AKIAEXAMPLEEXAMPLE00", "codedeploy"));
//! let key = SigningKey::derive("secret", &auth.date, &auth.region, &auth.service); // cacheable
//! let options = VerifyOptions::for_service("codedeploy").with_region("us-east-1");
//! verify_with_key(&auth, &request, &key, 1_795_312_687 + 30, &options).unwrap();
//! ```

mod canonical;
mod encode;
mod error;
mod sign;
mod time;
mod verify;

pub use canonical::{ALGORITHM, STREAMING_UNSIGNED_PAYLOAD_TRAILER, SigningKey, UNSIGNED_PAYLOAD, sha256_hex};
pub use encode::{PathEncoding, uri_encode};
pub use error::{AuthError, MAX_SKEW_SECS, SignError};
pub use sign::{Credentials, SigningParams, presign, sign};
pub use time::{format_amz_date, format_http_date, parse_amz_date, parse_http_date};
pub use verify::{
    Authorization, MAX_PRESIGNED_EXPIRES_SECS, RequestParts, VerifyOptions, parse_authorization, verify,
    verify_with_key,
};
