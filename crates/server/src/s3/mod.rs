//! The S3-compatible bundle store: path-style `/bucket/key` on the server's one listener, SigV4
//! service `s3`, so that `aws deploy push` and the host agents' downloads need no other service.
//!
//! A request is authenticated (before its body is read), mapped to one [`Op`], checked against
//! the caller's role, then carried out on the [`ObjectStore`]. Answers and errors are S3's XML.

mod body;
mod checksum;
mod chunked;
mod copy;
pub(crate) mod error;
mod external;
mod list;
mod multipart;
pub(crate) mod objects;
pub(crate) mod ops;
pub(crate) mod xml;

pub use xml::iso8601;

use std::net::SocketAddr;
use std::time::Instant;

use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode, Version};
use landfall_api::landfall::Role;
use landfall_listener::RequestBody;

use crate::auth::{Caller, authenticate_s3};
use crate::body::{Body, full};
use crate::state::AppState;

pub use error::{S3Error, S3Result};
pub use objects::ObjectStore;

/// Largest object a single PUT, or part, may carry (as S3).
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Every S3 operation served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::HeadBucket => "HeadBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketVersioning => "GetBucketVersioning",
            Op::ListObjects => "ListObjects",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteObjects => "DeleteObjects",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
        }
    }

    /// Whether the operation reads the request body (all of it, when it succeeds).
    fn reads_body(self) -> bool {
        matches!(
            self,
            Op::CreateBucket | Op::DeleteObjects | Op::PutObject | Op::UploadPart | Op::CompleteMultipartUpload
        )
    }

    fn reads_only(self) -> bool {
        matches!(
            self,
            Op::ListBuckets
                | Op::HeadBucket
                | Op::GetBucketLocation
                | Op::GetBucketVersioning
                | Op::ListObjects
                | Op::ListObjectsV2
                | Op::ListMultipartUploads
                | Op::GetObject
                | Op::HeadObject
                | Op::ListParts
        )
    }
}

/// Admin and deployer keys do everything; read-only keys read; an agent's key only downloads
/// (and only its own deployments' bundles, see [`deployed_to`]); a router's key nothing.
fn allowed(role: Role, op: Op) -> bool {
    match role {
        Role::Admin | Role::Deployer => true,
        Role::ReadOnly => op.reads_only(),
        Role::Instance => matches!(op, Op::GetObject | Op::HeadObject),
        Role::Router => false,
    }
}

/// How many of an instance's newest deployments its key may read the bundles of.
const READABLE_DEPLOYMENTS: usize = 50;

/// Whether `bucket`/`key` is the revision of one of the deployments that gave the caller's
/// instance commands (its newest [`READABLE_DEPLOYMENTS`]): an agent's key reads its own
/// bundles, not every bundle in the store.
async fn deployed_to(state: &AppState, caller: &crate::auth::Caller, bucket: &str, key: &str) -> S3Result<bool> {
    let Some(instance) = caller.instance_name.as_deref() else { return Ok(false) };
    let deployments = state.store.deployments_of_target(instance, READABLE_DEPLOYMENTS).await?;
    Ok(deployments.iter().any(|deployment| {
        deployment
            .info
            .revision
            .as_ref()
            .and_then(|revision| revision.s3_location.as_ref())
            .is_some_and(|location| location.bucket.as_deref() == Some(bucket) && location.key.as_deref() == Some(key))
    }))
}

/// Query parameters that name S3 features this store does not have. A request carrying one is
/// refused rather than served as if the parameter were absent.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataConfiguration",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "versions",
    "website",
];

/// A request's decoded query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| String::from_utf8_lossy(&decode_query_component(s)).into_owned();
                (decode(name), decode(value))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// Decodes a query component: `%XX` escapes and `+` as a space.
pub(crate) fn decode_query_component(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => match bytes.get(index + 1..index + 3).and_then(|pair| hex_pair(pair[0], pair[1])) {
                Some(byte) => {
                    out.push(byte);
                    index += 3;
                    continue;
                }
                // A malformed escape is kept as it is, as the SDKs do.
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        index += 1;
    }
    out
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let value = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(value(high)? << 4 | value(low)?)
}

/// Decodes a path segment: `%XX` escapes only (`+` is itself in a path).
fn decode_path(s: &str) -> S3Result<String> {
    percent_decode(s).ok_or_else(invalid_uri)
}

/// `%XX` escapes decoded; none for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            out.push(bytes.get(index + 1..index + 3).and_then(|pair| hex_pair(pair[0], pair[1]))?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn invalid_uri() -> S3Error {
    S3Error::new(StatusCode::BAD_REQUEST, "InvalidURI", "Couldn't parse the specified URI.")
}

/// S3's bucket naming rules (general purpose buckets).
fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| edge(b) || b == b'.' || b == b'-')
        && edge(bytes[0])
        && edge(bytes[bytes.len() - 1])
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        // The console's and the install script's paths: such a bucket could not be reached.
        && name != "console"
        && name != "agent"
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}

pub use crate::sources::ExternalBundles;

/// Everything an operation needs about its request.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub parts: &'a Parts,
    pub caller: &'a Caller,
    pub bucket: String,
    pub key: String,
    pub query: Query,
    /// Epoch milliseconds.
    pub now: i64,
}

impl Ctx<'_> {
    pub fn store(&self) -> &ObjectStore {
        &self.state.objects
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim)
    }

    /// The `x-amz-meta-*` and standard headers kept with an object.
    pub fn stored_headers(&self) -> S3Result<std::collections::BTreeMap<String, String>> {
        const KEPT: [&str; 5] =
            ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];
        let mut kept = std::collections::BTreeMap::new();
        let mut metadata_size = 0;
        for (name, value) in &self.parts.headers {
            let name = name.as_str();
            if !name.starts_with("x-amz-meta-") && !KEPT.contains(&name) {
                continue;
            }
            let Ok(value) = value.to_str() else {
                return Err(S3Error::invalid_argument("Header value cannot be represented", name, ""));
            };
            let value = if name == "content-encoding" {
                // aws-chunked describes the transfer, not the object.
                let codings: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.eq_ignore_ascii_case("aws-chunked") && !c.is_empty())
                    .collect();
                if codings.is_empty() {
                    continue;
                }
                codings.join(",")
            } else {
                value.trim().to_owned()
            };
            if name.starts_with("x-amz-meta-") {
                metadata_size += name.len() - "x-amz-meta-".len() + value.len();
            }
            kept.insert(name.to_owned(), value);
        }
        if metadata_size > 2048 {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "MetadataTooLarge",
                "Your metadata headers exceed the maximum allowed metadata size.",
            )
            .with("MaxSizeAllowed", "2048"));
        }
        Ok(kept)
    }

    pub fn content_type(&self) -> String {
        self.header(CONTENT_TYPE.as_str()).filter(|value| !value.is_empty()).unwrap_or("binary/octet-stream").to_owned()
    }
}

pub async fn handle(state: &AppState, peer: SocketAddr, parts: Parts, body: RequestBody) -> Response<Body> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    let mut op = None;
    let mut caller = None;
    let result = serve(state, &parts, body, &mut op, &mut caller).await;
    let micros = started.elapsed().as_micros() as u64;
    let name = op.map_or("unknown", Op::name);
    let access_key_id = caller.as_ref().map_or("-", |c| c.access_key_id.as_str());
    // Writes are audited (an upload's parts through its create and complete calls).
    if let (Some(op), Some(caller)) = (op, &caller)
        && !op.reads_only()
        && !matches!(op, Op::UploadPart)
    {
        let path = parts.uri.path().trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let decoded = |text: &str| decode_path(text).unwrap_or_else(|_| text.to_owned());
        let mut resources = std::collections::BTreeMap::from([("bucket".to_owned(), decoded(bucket))]);
        if !key.is_empty() {
            resources.insert("key".to_owned(), decoded(key));
        }
        let outcome = result.as_ref().map(|_| ()).map_err(|error| (error.code, error.message.as_str()));
        crate::audit::append(
            &*state.store,
            state.clock.now(),
            caller,
            peer,
            format!("S3.{}", op.name()),
            resources,
            outcome,
        )
        .await;
    }
    let mut response = match result {
        Ok(response) => {
            tracing::debug!(operation = name, %access_key_id, path = parts.uri.path(), status = response.status().as_u16(), micros, "s3 ok");
            response
        }
        Err(error) => {
            tracing::info!(%peer, operation = name, %access_key_id, path = parts.uri.path(), error = error.code, message = %error.message, micros, "s3 refused");
            error_response(&error, &parts, &request_id)
        }
    };
    // A body left unread (refused before or while reading it, or sent where none is expected)
    // would be taken for the next request on the connection: with HTTP/1, close it instead. (A
    // client that sent `Expect: 100-continue` may still send the body after a timeout.)
    let declares_body = parts.headers.contains_key(TRANSFER_ENCODING)
        || parts.headers.get(CONTENT_LENGTH).is_some_and(|length| length.as_bytes() != b"0");
    let body_consumed = response.status().is_success() && op.is_some_and(Op::reads_body);
    if declares_body && !body_consumed && parts.version < Version::HTTP_2 {
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", value.clone());
        headers.insert("x-amz-id-2", value);
    }
    headers.insert("server", HeaderValue::from_static("Landfall"));
    response
}

async fn serve(
    state: &AppState,
    parts: &Parts,
    body: RequestBody,
    op_out: &mut Option<Op>,
    caller_out: &mut Option<crate::auth::Caller>,
) -> S3Result<Response<Body>> {
    let caller = authenticate_s3(state, parts).await?;
    *caller_out = Some(caller.clone());

    let path = parts.uri.path().strip_prefix('/').unwrap_or(parts.uri.path());
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (decode_path(bucket)?, decode_path(key)?),
        None => (decode_path(path)?, String::new()),
    };
    let query = Query::parse(parts.uri.query());
    let op = route(&parts.method, &bucket, &key, &query, parts)?;
    *op_out = Some(op);
    if !allowed(caller.role, op) {
        tracing::info!(access_key_id = %caller.access_key_id, role = caller.role.as_str(), operation = op.name(), "S3 operation not allowed for the key's role");
        return Err(S3Error::access_denied());
    }
    if caller.role == Role::Instance && !deployed_to(state, &caller, &bucket, &key).await? {
        tracing::info!(access_key_id = %caller.access_key_id, %bucket, %key, "an instance's key asked for a bundle no deployment gave it");
        return Err(S3Error::access_denied());
    }
    if !bucket.is_empty() && !valid_bucket_name(&bucket) {
        return Err(S3Error::new(StatusCode::BAD_REQUEST, "InvalidBucketName", "The specified bucket is not valid.")
            .with("BucketName", bucket));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(StatusCode::BAD_REQUEST, "KeyTooLongError", "Your key is too long")
            .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string())
            .with("Size", key.len().to_string()));
    }
    let ctx = Ctx { state, parts, caller: &caller, bucket, key, query, now: state.clock.now().millis() };
    if let Some(bundles) = &state.external_bundles {
        return external::forward(&ctx, op, body, &bundles.store, &bundles.client).await;
    }
    match op {
        Op::ListBuckets => ops::list_buckets(&ctx).await,
        Op::CreateBucket => ops::create_bucket(&ctx, body).await,
        Op::HeadBucket => ops::head_bucket(&ctx).await,
        Op::DeleteBucket => ops::delete_bucket(&ctx).await,
        Op::GetBucketLocation => ops::get_bucket_location(&ctx).await,
        Op::GetBucketVersioning => ops::get_bucket_versioning(&ctx).await,
        Op::ListObjects => list::list_objects(&ctx, false).await,
        Op::ListObjectsV2 => list::list_objects(&ctx, true).await,
        Op::ListMultipartUploads => multipart::list_uploads(&ctx).await,
        Op::DeleteObjects => ops::delete_objects(&ctx, body).await,
        Op::PutObject => ops::put_object(&ctx, body).await,
        Op::CopyObject => copy::copy_object(&ctx).await,
        Op::UploadPartCopy => copy::upload_part_copy(&ctx).await,
        Op::GetObject => ops::get_object(&ctx, false).await,
        Op::HeadObject => ops::get_object(&ctx, true).await,
        Op::DeleteObject => ops::delete_object(&ctx).await,
        Op::CreateMultipartUpload => multipart::create(&ctx).await,
        Op::UploadPart => multipart::upload_part(&ctx, body).await,
        Op::CompleteMultipartUpload => multipart::complete(&ctx, body).await,
        Op::AbortMultipartUpload => multipart::abort(&ctx).await,
        Op::ListParts => multipart::list_parts(&ctx).await,
    }
}

/// The operation a request names: method, whether it addresses a bucket or an object, and its
/// sub-resource parameters.
fn route(method: &Method, bucket: &str, key: &str, query: &Query, parts: &Parts) -> S3Result<Op> {
    if let Some(name) = UNSUPPORTED_SUBRESOURCES.iter().find(|name| query.has(name)) {
        return Err(S3Error::not_implemented(format!(
            "The '{name}' sub-resource is not supported by Landfall's bundle store."
        )));
    }
    let copy = parts.headers.contains_key("x-amz-copy-source");
    let not_allowed = || {
        S3Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
        .with("Method", method.as_str())
        .with(
            "ResourceType",
            if bucket.is_empty() {
                "SERVICE"
            } else if key.is_empty() {
                "BUCKET"
            } else {
                "OBJECT"
            },
        )
    };
    let op = if bucket.is_empty() {
        match *method {
            Method::GET => Op::ListBuckets,
            _ => return Err(not_allowed()),
        }
    } else if key.is_empty() {
        match *method {
            Method::PUT if query.has("versioning") => {
                return Err(S3Error::not_implemented("Bucket versioning is not supported by Landfall's bundle store."));
            }
            Method::PUT => Op::CreateBucket,
            Method::HEAD => Op::HeadBucket,
            Method::DELETE => Op::DeleteBucket,
            Method::GET if query.has("location") => Op::GetBucketLocation,
            Method::GET if query.has("versioning") => Op::GetBucketVersioning,
            Method::GET if query.has("uploads") => Op::ListMultipartUploads,
            Method::GET if query.get("list-type") == Some("2") => Op::ListObjectsV2,
            Method::GET => Op::ListObjects,
            Method::POST if query.has("delete") => Op::DeleteObjects,
            _ => return Err(not_allowed()),
        }
    } else {
        match *method {
            Method::PUT if copy && query.has("uploadId") => Op::UploadPartCopy,
            Method::PUT if copy => Op::CopyObject,
            Method::PUT if query.has("uploadId") => Op::UploadPart,
            Method::PUT => Op::PutObject,
            Method::GET if query.has("uploadId") => Op::ListParts,
            Method::GET => Op::GetObject,
            Method::HEAD => Op::HeadObject,
            Method::DELETE if query.has("uploadId") => Op::AbortMultipartUpload,
            Method::DELETE => Op::DeleteObject,
            Method::POST if query.has("uploads") => Op::CreateMultipartUpload,
            Method::POST if query.has("uploadId") => Op::CompleteMultipartUpload,
            _ => return Err(not_allowed()),
        }
    };
    if parts.headers.contains_key("x-amz-server-side-encryption-customer-algorithm") {
        return Err(S3Error::not_implemented(
            "Server-side encryption with customer keys is not supported by Landfall's bundle store.",
        ));
    }
    Ok(op)
}

fn error_response(error: &S3Error, parts: &Parts, request_id: &str) -> Response<Body> {
    let mut document = xml::Writer::new();
    document.open("Error").element("Code", error.code).element("Message", &error.message);
    for (name, value) in &error.details {
        document.element(name, value);
    }
    document.element("Resource", parts.uri.path()).element("RequestId", request_id).close("Error");
    let document = document.finish();
    // A HEAD answer has no body: the status says it all.
    let mut response = if parts.method == Method::HEAD {
        let mut response = Response::new(full(Vec::new()));
        response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(0));
        response
    } else {
        Response::new(full(document))
    };
    *response.status_mut() = error.status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    if let Some(size) = error.range_size
        && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
    {
        response.headers_mut().insert("content-range", value);
    }
    response
}

/// An XML answer.
pub fn xml_response(status: StatusCode, document: String) -> Response<Body> {
    let mut response = Response::new(full(document));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

/// An answer without a body.
pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(full(Vec::new()));
    *response.status_mut() = status;
    response
}

pub fn http_date(millis: i64) -> String {
    landfall_sigv4::format_http_date(millis.div_euclid(1000))
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-bucket.v2", "a".repeat(63).as_str(), "1bucket"] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in
            ["ab", "Bucket", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "xn--ab", "..", "a/b", "a b", &"a".repeat(64)]
        {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_path("a%20b+c/%2E%2E").unwrap(), "a b+c/..");
        assert_eq!(decode_path("%zz").unwrap_err().code, "InvalidURI");
        assert_eq!(decode_path("%ff").unwrap_err().code, "InvalidURI");
        assert_eq!(decode_query_component("a+b%2Bc%"), b"a b+c%");
        let query = Query::parse(Some("list-type=2&prefix=a%2Fb&uploads&delimiter=%2F"));
        assert_eq!((query.get("prefix"), query.get("delimiter"), query.has("uploads")), (Some("a/b"), Some("/"), true));
    }

    #[test]
    fn times() {
        assert_eq!(iso8601(1_795_312_687_042), "2026-11-22T01:58:07.042Z");
        assert_eq!(http_date(1_795_312_687_042), "Sun, 22 Nov 2026 01:58:07 GMT");
    }

    #[test]
    fn roles() {
        assert!(allowed(Role::Deployer, Op::PutObject));
        assert!(allowed(Role::ReadOnly, Op::ListObjectsV2) && !allowed(Role::ReadOnly, Op::PutObject));
        assert!(allowed(Role::Instance, Op::GetObject) && allowed(Role::Instance, Op::HeadObject));
        assert!(!allowed(Role::Instance, Op::ListObjectsV2) && !allowed(Role::Instance, Op::PutObject));
    }
}
