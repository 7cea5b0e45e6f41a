//! Server-side copies: CopyObject (`PUT` with `x-amz-copy-source`) and UploadPartCopy (the same
//! with `partNumber` and `uploadId`, and an optional `x-amz-copy-source-range`), which `aws s3 cp
//! s3://b/a s3://b/b` uses below and above its multipart threshold. The content streams from
//! the source's file into a temporary one, hashed on the way; nothing reaches the client.

use hyper::header::ETAG;
use hyper::{Response, StatusCode};
use md5::Digest as _;
use tokio::fs::File;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::error::{S3Error, S3Result};
use super::objects::{ObjectMeta, PartMeta, TempFile, precondition_failed};
use super::ops::{etag_matches, insert, parse_range, write_condition};
use super::{Ctx, iso8601, percent_decode, quoted, xml, xml_response};
use crate::body::Body;

/// The object `x-amz-copy-source` names: `bucket/key` or `/bucket/key`, percent-encoded,
/// optionally `?versionId=null` (objects here have only that version).
fn copy_source(ctx: &Ctx<'_>) -> S3Result<(String, String)> {
    let header = ctx.header("x-amz-copy-source").unwrap_or_default();
    let invalid = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            "x-amz-copy-source",
            header,
        )
    };
    let (path, version) = header.split_once("?versionId=").unwrap_or((header, ""));
    if !version.is_empty() && version != "null" {
        return Err(S3Error::new(StatusCode::NOT_FOUND, "NoSuchVersion", "The specified version does not exist.")
            .with("VersionId", version));
    }
    let (bucket, key) = path.trim_start_matches('/').split_once('/').ok_or_else(invalid)?;
    let (bucket, key) = (percent_decode(bucket).ok_or_else(invalid)?, percent_decode(key).ok_or_else(invalid)?);
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket, key))
}

/// `x-amz-copy-source-if-match` and `-if-none-match` against the source (412 either way, as S3).
fn check_source_conditions(ctx: &Ctx<'_>, source: &ObjectMeta) -> S3Result<()> {
    if ctx.header("x-amz-copy-source-if-match").is_some_and(|list| !etag_matches(list, &source.etag)) {
        return Err(precondition_failed("x-amz-copy-source-If-Match"));
    }
    if ctx.header("x-amz-copy-source-if-none-match").is_some_and(|list| etag_matches(list, &source.etag)) {
        return Err(precondition_failed("x-amz-copy-source-If-None-Match"));
    }
    if ctx.header("x-amz-copy-source-if-modified-since").is_some()
        || ctx.header("x-amz-copy-source-if-unmodified-since").is_some()
    {
        return Err(S3Error::not_implemented("Copy conditions on modification times are not supported."));
    }
    Ok(())
}

/// Copies `length` bytes from `source` into a new temporary file; returns it and their MD5.
async fn copy_bytes(ctx: &Ctx<'_>, source: &mut File, length: u64) -> S3Result<(TempFile, String)> {
    let mut temp = ctx.store().temp_file().await?;
    let mut md5 = md5::Md5::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut left = length;
    while left > 0 {
        let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = source.read(&mut buffer[..want]).await?;
        if read == 0 {
            return Err(S3Error::internal("a stored object is shorter than its metadata says"));
        }
        md5.update(&buffer[..read]);
        temp.write(&buffer[..read]).await?;
        left -= read as u64;
    }
    Ok((temp, hex::encode(md5.finalize())))
}

pub async fn copy_object(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let (bucket, key) = copy_source(ctx)?;
    let if_absent = write_condition(ctx)?;
    let replace = match ctx.header("x-amz-metadata-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        other => {
            return Err(S3Error::invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", other));
        }
    };
    if bucket == ctx.bucket && key == ctx.key && !replace {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the \
             object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    ctx.store().require_bucket(&ctx.bucket).await?;
    let (mut file, source) = ctx.store().open_object(&bucket, &key).await?;
    check_source_conditions(ctx, &source)?;
    let (temp, etag) = copy_bytes(ctx, &mut file, source.size).await?;
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        size: source.size,
        etag,
        content_type: if replace { ctx.content_type() } else { source.content_type.clone() },
        last_modified: ctx.state.clock.now().millis(),
        headers: if replace { ctx.stored_headers()? } else { source.headers.clone() },
        checksum: source.checksum.clone(),
    };
    ctx.store().commit_object(&ctx.bucket, temp, &meta, if_absent).await?;
    tracing::info!(bucket = %ctx.bucket, key = %ctx.key, from_bucket = %bucket, from_key = %key, size = meta.size,
        access_key_id = %ctx.caller.access_key_id, "object copied");
    let mut document = xml::Writer::new().root("CopyObjectResult");
    document
        .element("LastModified", &iso8601(meta.last_modified))
        .element("ETag", &quoted(&meta.etag))
        .close("CopyObjectResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

pub async fn upload_part_copy(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let (bucket, key) = copy_source(ctx)?;
    let number = ctx.query.get("partNumber").unwrap_or("");
    let part_number = number.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
        S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", number)
    })?;
    let upload_id = ctx.query.get("uploadId").unwrap_or("");
    ctx.store().upload(&ctx.bucket, &ctx.key, upload_id).await?;
    let (mut file, source) = ctx.store().open_object(&bucket, &key).await?;
    check_source_conditions(ctx, &source)?;
    let (start, length) = match ctx.header("x-amz-copy-source-range") {
        None => (0, source.size),
        Some(value) => match parse_range(value, source.size).map_err(|error| error.with("RangeRequested", value))? {
            Some((first, last)) => (first, last - first + 1),
            None => (0, source.size),
        },
    };
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let (temp, etag) = copy_bytes(ctx, &mut file, length).await?;
    let meta = PartMeta { part_number, size: length, etag, last_modified: ctx.state.clock.now().millis() };
    ctx.store().commit_part(&ctx.bucket, upload_id, temp, &meta).await?;
    let mut document = xml::Writer::new().root("CopyPartResult");
    document
        .element("LastModified", &iso8601(meta.last_modified))
        .element("ETag", &quoted(&meta.etag))
        .close("CopyPartResult");
    let mut response = xml_response(StatusCode::OK, document.finish());
    insert(response.headers_mut(), ETAG, &quoted(&meta.etag));
    Ok(response)
}
