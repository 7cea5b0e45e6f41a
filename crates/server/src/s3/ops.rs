//! Bucket operations and single-object operations.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderName, HeaderValue, LAST_MODIFIED};
use hyper::{Response, StatusCode};
use landfall_listener::RequestBody;
use tokio::fs::File;
use tokio::io::{AsyncRead as _, AsyncSeekExt as _, ReadBuf};

use super::body::{self, Expect, Sink};
use super::checksum::Algorithm;
use super::error::{S3Error, S3Result};
use super::objects::{ObjectMeta, precondition_failed};
use super::{Ctx, MAX_KEY_BYTES, MAX_UPLOAD_BYTES, empty_response, http_date, iso8601, quoted, xml, xml_response};
use crate::body::Body;

/// Largest XML document accepted in a request body.
pub const MAX_XML_BYTES: u64 = 2 * 1024 * 1024;

// -- buckets ----------------------------------------------------------------------------------

pub async fn list_buckets(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let prefix = ctx.query.get("prefix").unwrap_or("");
    let after = ctx.query.get("continuation-token").unwrap_or("");
    let max = match ctx.query.get("max-buckets") {
        None => usize::MAX,
        Some(value) => match value.parse::<usize>() {
            Ok(max) if (1..=10_000).contains(&max) => max,
            _ => return Err(S3Error::invalid_argument("Invalid max-buckets", "max-buckets", value)),
        },
    };
    let buckets = ctx.store().list_buckets().await?;
    let mut selected = buckets.iter().filter(|bucket| bucket.name.starts_with(prefix) && bucket.name.as_str() > after);
    let page: Vec<_> = selected.by_ref().take(max).collect();
    let truncated = selected.next().is_some();

    let mut document = xml::Writer::new().root("ListAllMyBucketsResult");
    document.open("Owner").element("ID", &ctx.state.account_id).element("DisplayName", "landfall").close("Owner");
    document.open("Buckets");
    for bucket in &page {
        document
            .open("Bucket")
            .element("Name", &bucket.name)
            .element("CreationDate", &iso8601(bucket.created))
            .element("BucketRegion", &ctx.state.region)
            .close("Bucket");
    }
    document.close("Buckets");
    if truncated && let Some(last) = page.last() {
        document.element("ContinuationToken", &last.name);
    }
    if !prefix.is_empty() {
        document.element("Prefix", prefix);
    }
    document.close("ListAllMyBucketsResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

pub async fn create_bucket(ctx: &Ctx<'_>, request_body: RequestBody) -> S3Result<Response<Body>> {
    // The optional CreateBucketConfiguration names a region; any is accepted (there is one store).
    let document = body::read_small(request_body, &ctx.parts.headers, MAX_XML_BYTES).await?;
    if !document.iter().all(u8::is_ascii_whitespace) {
        let text = std::str::from_utf8(&document).map_err(|_| S3Error::malformed_xml())?;
        xml::parse(text).filter(|root| root.name == "CreateBucketConfiguration").ok_or_else(S3Error::malformed_xml)?;
    }
    match ctx.store().create_bucket(&ctx.bucket, ctx.now).await {
        Ok(()) => tracing::info!(bucket = %ctx.bucket, access_key_id = %ctx.caller.access_key_id, "bucket created"),
        // S3 in us-east-1 answers its owner re-creating a bucket with success (other regions:
        // BucketAlreadyOwnedByYou), and setup scripts run twice rely on it.
        Err(error) if error.code == "BucketAlreadyOwnedByYou" && ctx.state.region == "us-east-1" => {}
        Err(error) => return Err(error),
    }
    let mut response = empty_response(StatusCode::OK);
    if let Ok(location) = HeaderValue::from_str(&format!("/{}", ctx.bucket)) {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

pub async fn head_bucket(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    ctx.store().require_bucket(&ctx.bucket).await?;
    let mut response = empty_response(StatusCode::OK);
    if let Ok(region) = HeaderValue::from_str(&ctx.state.region) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    Ok(response)
}

pub async fn delete_bucket(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    ctx.store().delete_bucket(&ctx.bucket).await?;
    tracing::info!(bucket = %ctx.bucket, access_key_id = %ctx.caller.access_key_id, "bucket deleted");
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_location(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    ctx.store().require_bucket(&ctx.bucket).await?;
    // S3 answers an empty constraint for us-east-1.
    let region = if ctx.state.region == "us-east-1" { "" } else { ctx.state.region.as_str() };
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{region}</LocationConstraint>",
        xml::NAMESPACE
    );
    Ok(xml_response(StatusCode::OK, document))
}

pub async fn get_bucket_versioning(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    ctx.store().require_bucket(&ctx.bucket).await?;
    // Versioning was never enabled: an empty configuration.
    let document =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"{}\"/>", xml::NAMESPACE);
    Ok(xml_response(StatusCode::OK, document))
}

pub async fn delete_objects(ctx: &Ctx<'_>, request_body: RequestBody) -> S3Result<Response<Body>> {
    let document = body::read_small(request_body, &ctx.parts.headers, MAX_XML_BYTES).await?;
    let text = std::str::from_utf8(&document).map_err(|_| S3Error::malformed_xml())?;
    let root = xml::parse(text).filter(|root| root.name == "Delete").ok_or_else(S3Error::malformed_xml)?;
    let quiet = root.child_text("Quiet").is_some_and(|quiet| quiet.trim() == "true");
    let objects: Vec<_> = root.children_named("Object").collect();
    if objects.is_empty() || objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    ctx.store().require_bucket(&ctx.bucket).await?;
    let mut result = xml::Writer::new().root("DeleteResult");
    for object in objects {
        let key = object.child_text("Key").unwrap_or("");
        let version = object.child_text("VersionId").filter(|version| *version != "null");
        let refusal = if key.is_empty() || key.len() > MAX_KEY_BYTES {
            Some(("InvalidArgument", "The key is empty or too long."))
        } else if version.is_some() {
            Some(("NoSuchVersion", "The specified version does not exist."))
        } else {
            None
        };
        match refusal {
            None => {
                ctx.store().delete_object(&ctx.bucket, key).await?;
                if !quiet {
                    result.open("Deleted").element("Key", key).close("Deleted");
                }
            }
            Some((code, message)) => {
                result
                    .open("Error")
                    .element("Key", key)
                    .element("Code", code)
                    .element("Message", message)
                    .close("Error");
            }
        }
    }
    result.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, result.finish()))
}

// -- objects ----------------------------------------------------------------------------------

/// Objects have no versions here: only the "null" version exists.
fn check_version(ctx: &Ctx<'_>) -> S3Result<()> {
    match ctx.query.get("versionId") {
        Some(version) if version != "null" => {
            Err(S3Error::new(StatusCode::NOT_FOUND, "NoSuchVersion", "The specified version does not exist.")
                .with("Key", &ctx.key)
                .with("VersionId", version))
        }
        _ => Ok(()),
    }
}

/// `If-None-Match: *` makes a write conditional on the key being free; other conditions on
/// writes are not supported.
pub fn write_condition(ctx: &Ctx<'_>) -> S3Result<bool> {
    if ctx.header("if-match").is_some() {
        return Err(S3Error::not_implemented("Conditional writes with If-Match are not supported."));
    }
    match ctx.header("if-none-match") {
        None => Ok(false),
        Some("*") => Ok(true),
        Some(_) => Err(S3Error::not_implemented("If-None-Match on a write only accepts '*'.")),
    }
}

pub async fn put_object(ctx: &Ctx<'_>, request_body: RequestBody) -> S3Result<Response<Body>> {
    let headers = ctx.stored_headers()?;
    let if_absent = write_condition(ctx)?;
    let expect = Expect::from_headers(&ctx.parts.headers, MAX_UPLOAD_BYTES)?;
    // Before the body is read, so a client waiting on 100-continue sends nothing in vain.
    ctx.store().require_bucket(&ctx.bucket).await?;
    let mut temp = ctx.store().temp_file().await?;
    let received = body::receive(request_body, &mut Sink::File(&mut temp), &expect).await?;
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        size: received.size,
        etag: received.md5_hex(),
        content_type: ctx.content_type(),
        last_modified: ctx.state.clock.now().millis(),
        headers,
        checksum: received.checksum.as_ref().map(|(algorithm, value)| (algorithm.name().to_owned(), value.clone())),
    };
    ctx.store().commit_object(&ctx.bucket, temp, &meta, if_absent).await?;
    tracing::info!(bucket = %ctx.bucket, key = %ctx.key, size = meta.size, access_key_id = %ctx.caller.access_key_id, "object stored");
    let mut response = empty_response(StatusCode::OK);
    let response_headers = response.headers_mut();
    insert(response_headers, ETAG, &quoted(&meta.etag));
    if let Some((algorithm, value)) = &received.checksum {
        insert(response_headers, HeaderName::from_static(algorithm.header()), value);
    }
    Ok(response)
}

pub async fn delete_object(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    check_version(ctx)?;
    ctx.store().delete_object(&ctx.bucket, &ctx.key).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_object(ctx: &Ctx<'_>, head: bool) -> S3Result<Response<Body>> {
    check_version(ctx)?;
    if ctx.query.has("partNumber") {
        return Err(S3Error::not_implemented("Reading one part of an object (partNumber) is not supported."));
    }
    let (mut file, meta) = ctx.store().open_object(&ctx.bucket, &ctx.key).await?;
    if let Some(not_modified) = check_read_conditions(ctx, &meta)? {
        return Ok(not_modified);
    }
    let range = match ctx.header("range") {
        Some(value) => parse_range(value, meta.size).map_err(|error| error.with("RangeRequested", value))?,
        None => None,
    };
    let (status, start, length) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        None => (StatusCode::OK, 0, meta.size),
    };
    let mut response = if head {
        empty_response(status)
    } else {
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut response = Response::new(FileBody::new(file, length).boxed());
        *response.status_mut() = status;
        response
    };
    let headers = response.headers_mut();
    let overridden = |name: &str| ctx.query.get(&format!("response-{name}")).map(str::to_owned);
    insert(headers, CONTENT_TYPE, &overridden("content-type").unwrap_or_else(|| meta.content_type.clone()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    insert(headers, ETAG, &quoted(&meta.etag));
    insert(headers, LAST_MODIFIED, &http_date(meta.last_modified));
    headers.insert("accept-ranges", HeaderValue::from_static("bytes"));
    if let Some((first, last)) = range {
        insert(headers, hyper::header::CONTENT_RANGE, &format!("bytes {first}-{last}/{}", meta.size));
    }
    for (name, value) in &meta.headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            insert(headers, name, value);
        }
    }
    for name in ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"] {
        if let Some(value) = overridden(name) {
            insert(headers, HeaderName::from_static(name), &value);
        }
    }
    // The stored checksum describes the whole object only.
    let wants_checksum = ctx.header("x-amz-checksum-mode").is_some_and(|mode| mode.eq_ignore_ascii_case("ENABLED"));
    if wants_checksum
        && range.is_none()
        && let Some((name, value)) = &meta.checksum
        && let Some(algorithm) = Algorithm::from_name(name)
    {
        insert(headers, HeaderName::from_static(algorithm.header()), value);
    }
    Ok(response)
}

/// If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304), checked in
/// the order RFC 9110 gives. Returns the 304 answer when one applies.
fn check_read_conditions(ctx: &Ctx<'_>, meta: &ObjectMeta) -> S3Result<Option<Response<Body>>> {
    let modified = meta.last_modified.div_euclid(1000);
    let since = |name: &str| ctx.header(name).and_then(landfall_sigv4::parse_http_date);
    match ctx.header("if-match") {
        Some(tags) if !etag_matches(tags, &meta.etag) => return Err(precondition_failed("If-Match")),
        Some(_) => {}
        None => {
            if since("if-unmodified-since").is_some_and(|date| modified > date) {
                return Err(precondition_failed("If-Unmodified-Since"));
            }
        }
    }
    let not_modified = match ctx.header("if-none-match") {
        Some(tags) => etag_matches(tags, &meta.etag),
        None => since("if-modified-since").is_some_and(|date| modified <= date),
    };
    if !not_modified {
        return Ok(None);
    }
    let mut response = empty_response(StatusCode::NOT_MODIFIED);
    insert(response.headers_mut(), ETAG, &quoted(&meta.etag));
    insert(response.headers_mut(), LAST_MODIFIED, &http_date(meta.last_modified));
    Ok(Some(response))
}

pub(super) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == "*" || tag == etag)
}

/// The byte range a `Range` header asks of an object of `size` bytes: None for no range (a
/// header that is not a single `bytes=` range is ignored, as S3 does), InvalidRange when it cannot
/// be satisfied.
pub(super) fn parse_range(value: &str, size: u64) -> S3Result<Option<(u64, u64)>> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        let mut error =
            S3Error::new(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", "The requested range is not satisfiable")
                .with("ActualObjectSize", size.to_string());
        error.range_size = Some(size);
        error
    };
    if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else { return Ok(None) };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(Some((size.saturating_sub(suffix), size - 1)));
    }
    let Ok(first) = first.parse::<u64>() else { return Ok(None) };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return Ok(None),
        }
    };
    if first >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((first, last.min(size - 1))))
}

pub fn insert(headers: &mut hyper::HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Streams `remaining` bytes of a file as a response body.
pub struct FileBody {
    file: File,
    remaining: u64,
    buffer: Box<[u8]>,
}

impl FileBody {
    pub fn new(file: File, length: u64) -> FileBody {
        FileBody { file, remaining: length, buffer: vec![0; 256 * 1024].into_boxed_slice() }
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = this.remaining.min(this.buffer.len() as u64) as usize;
        let mut buffer = ReadBuf::new(&mut this.buffer[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut buffer) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Ready(Ok(())) if buffer.filled().is_empty() => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a stored object is shorter than its metadata says",
            )))),
            Poll::Ready(Ok(())) => {
                let data = Bytes::copy_from_slice(buffer.filled());
                this.remaining -= data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |value: &str, size: u64| parse_range(value, size).map_err(|error| error.code);
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-500", 100), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-", 100), Err("InvalidRange"));
        assert_eq!(r("bytes=-0", 100), Err("InvalidRange"));
        assert_eq!(r("bytes=0-", 0), Err("InvalidRange"));
        // Not a single valid range: the whole object.
        assert_eq!(r("bytes=5-1", 100), Ok(None));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(r("bytes=x-1", 100), Ok(None));
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("\"x\", W/\"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
