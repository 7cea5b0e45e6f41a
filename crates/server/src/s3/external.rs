//! The bundle store of servers that share a PostgreSQL store: the external S3-compatible store.
//! Replicas keep no bundles of their own (a bundle uploaded through one must be readable
//! through all), so each S3 request is authenticated and authorized here as for the built-in
//! store (Landfall keys, roles, the audit log), then forwarded to the external store signed
//! with its credentials, and its answer streamed back as it comes.
//!
//! Request bodies are received (aws-chunked decoded, checksums verified) into a temporary file
//! first and forwarded plain, so clients may use any of the encodings the built-in store takes.

use http_body_util::BodyExt as _;
use hyper::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use landfall_client::signed::{SendError, Signing, send_signed_stream};
use landfall_listener::RequestBody;

use super::body::{self, Expect, Sink};
use super::{Ctx, MAX_UPLOAD_BYTES, Op, S3Error, S3Result};
use crate::body::Body;
use crate::sources::ExternalS3;

/// Largest XML body (bucket configuration, batch delete, upload completion) forwarded.
const MAX_DOCUMENT_BYTES: u64 = 2 * 1024 * 1024;

/// Request headers the external store gets as the client sent them.
const FORWARDED_REQUEST_HEADERS: [&str; 17] = [
    "content-type",
    "content-md5",
    "cache-control",
    "content-disposition",
    "content-language",
    "expires",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "x-amz-copy-source",
    "x-amz-copy-source-range",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-metadata-directive",
    "x-amz-expected-bucket-owner",
];

/// Answer headers the client gets as the external store sent them.
const FORWARDED_RESPONSE_HEADERS: [&str; 13] = [
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "location",
    "x-amz-version-id",
];

/// Carries out `op` on the external store.
pub async fn forward(
    ctx: &Ctx<'_>,
    op: Op,
    request_body: RequestBody,
    external: &ExternalS3,
    client: &reqwest::Client,
) -> S3Result<Response<Body>> {
    let url = object_url(external, &ctx.bucket, &ctx.key, ctx.parts.uri.query())?;
    let mut headers = hyper::HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = ctx.parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    for (name, value) in &ctx.parts.headers {
        let kept = name.as_str().starts_with("x-amz-meta-")
            || (name.as_str().starts_with("x-amz-checksum-") && name.as_str() != "x-amz-checksum-type");
        if kept {
            headers.insert(name.clone(), value.clone());
        }
    }
    // What the client declared about the encoding of its body is not what is forwarded.
    let codings: Vec<&str> = ctx
        .header("content-encoding")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if !codings.is_empty()
        && let Ok(value) = HeaderValue::from_str(&codings.join(","))
    {
        headers.insert("content-encoding", value);
    }

    // The body, received and verified here first.
    let mut temp = None;
    let mut document = None;
    match op {
        Op::PutObject | Op::UploadPart => {
            let expect = Expect::from_headers(&ctx.parts.headers, MAX_UPLOAD_BYTES)?;
            let mut file = ctx.store().temp_file().await?;
            let received = body::receive(request_body, &mut Sink::File(&mut file), &expect).await?;
            file.finish().await?;
            headers.insert(CONTENT_LENGTH, HeaderValue::from(received.size));
            temp = Some(file);
        }
        _ if op.reads_body() => {
            let bytes = body::read_small(request_body, &ctx.parts.headers, MAX_DOCUMENT_BYTES).await?;
            headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            document = Some(bytes);
        }
        _ => {}
    }

    let uri: hyper::Uri = url.parse().map_err(S3Error::internal)?;
    let body = match (&temp, document) {
        (Some(file), _) => Some(reqwest::Body::from(tokio::fs::File::open(file.path()).await?)),
        (None, Some(bytes)) => Some(reqwest::Body::from(bytes)),
        (None, None) => None,
    };
    let signing = Signing { credentials: &external.credentials, region: &external.region, service: "s3" };
    let answer = match send_signed_stream(client, ctx.parts.method.clone(), &uri, headers, body, signing).await {
        Ok(answer) => answer,
        Err(SendError::Sign(why)) => return Err(S3Error::internal(why)),
        Err(SendError::Unreachable(error)) => {
            tracing::warn!(%error, operation = op.name(), "the external bundle store cannot be reached");
            let message = "The bundle store cannot be reached.";
            return Err(S3Error::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message));
        }
    };
    drop(temp);

    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        let name = name.as_str();
        if FORWARDED_RESPONSE_HEADERS.contains(&name)
            || name.starts_with("x-amz-meta-")
            || name.starts_with("x-amz-checksum-")
        {
            response = response.header(name, value.as_bytes());
        }
    }
    let body = hyper::http::Response::from(answer).into_body().map_err(std::io::Error::other).boxed();
    response.body(body).map_err(S3Error::internal)
}

/// The external store's URL of `bucket`/`key`, with the client's query minus its own
/// presigning parameters.
fn object_url(external: &ExternalS3, bucket: &str, key: &str, query: Option<&str>) -> S3Result<String> {
    let mut url = external.url(bucket, key);
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.to_ascii_lowercase().starts_with("x-amz-"))
        .collect();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use landfall_sigv4::Credentials;

    use super::*;
    use crate::sources::Addressing;

    fn store(addressing: Addressing) -> ExternalS3 {
        ExternalS3 {
            endpoint: "http://127.0.0.1:9000".parse().unwrap(),
            region: "us-east-1".into(),
            addressing,
            credentials: Credentials::new("AKIDEXAMPLE", "secret"),
        }
    }

    #[test]
    fn urls_keep_the_query_but_not_the_clients_presigning() {
        let path = store(Addressing::Path);
        assert_eq!(object_url(&path, "", "", None).unwrap(), "http://127.0.0.1:9000/");
        assert_eq!(
            object_url(&path, "releases", "", Some("list-type=2&prefix=a%2F")).unwrap(),
            "http://127.0.0.1:9000/releases?list-type=2&prefix=a%2F"
        );
        assert_eq!(
            object_url(&path, "releases", "app/v 1.tgz", Some("X-Amz-Signature=abc&versionId=3&x-amz-date=1")).unwrap(),
            "http://127.0.0.1:9000/releases/app/v%201.tgz?versionId=3"
        );
        let virtual_host = store(Addressing::VirtualHost);
        assert_eq!(
            object_url(&virtual_host, "releases", "app.tgz", Some("uploads")).unwrap(),
            "http://releases.127.0.0.1:9000/app.tgz?uploads"
        );
    }
}
