//! Multipart uploads: parts kept in the upload's own directory, assembled by streaming on
//! Complete into a temporary file that is then published like any object.

use hyper::header::{ETAG, HeaderName};
use hyper::{Response, StatusCode};
use landfall_listener::RequestBody;
use md5::Digest as _;

use super::body::{self, Expect, Sink};
use super::error::{S3Error, S3Result};
use super::objects::{ObjectMeta, PartMeta, UploadMeta};
use super::ops::{MAX_XML_BYTES, insert, write_condition};
use super::{Ctx, MAX_UPLOAD_BYTES, empty_response, iso8601, quoted, xml, xml_response};
use crate::body::Body;

const MAX_PARTS: u32 = 10_000;
/// Every part but the last must be at least this large (as S3).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

fn upload_id<'a>(ctx: &'a Ctx<'_>) -> &'a str {
    ctx.query.get("uploadId").unwrap_or("")
}

pub async fn create(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let meta = UploadMeta {
        key: ctx.key.clone(),
        content_type: ctx.content_type(),
        headers: ctx.stored_headers()?,
        initiated: ctx.now,
    };
    let upload_id = ctx.store().create_upload(&ctx.bucket, &meta).await?;
    let mut document = xml::Writer::new().root("InitiateMultipartUploadResult");
    document
        .element("Bucket", &ctx.bucket)
        .element("Key", &ctx.key)
        .element("UploadId", &upload_id)
        .close("InitiateMultipartUploadResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

pub async fn upload_part(ctx: &Ctx<'_>, request_body: RequestBody) -> S3Result<Response<Body>> {
    let number = ctx.query.get("partNumber").unwrap_or("");
    let part_number = number.parse::<u32>().ok().filter(|n| (1..=MAX_PARTS).contains(n)).ok_or_else(|| {
        S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", number)
    })?;
    let expect = Expect::from_headers(&ctx.parts.headers, MAX_UPLOAD_BYTES)?;
    let upload_id = upload_id(ctx);
    ctx.store().upload(&ctx.bucket, &ctx.key, upload_id).await?;
    let mut temp = ctx.store().temp_file().await?;
    let received = body::receive(request_body, &mut Sink::File(&mut temp), &expect).await?;
    let meta = PartMeta {
        part_number,
        size: received.size,
        etag: received.md5_hex(),
        last_modified: ctx.state.clock.now().millis(),
    };
    ctx.store().commit_part(&ctx.bucket, upload_id, temp, &meta).await?;
    let mut response = empty_response(StatusCode::OK);
    insert(response.headers_mut(), ETAG, &quoted(&meta.etag));
    if let Some((algorithm, value)) = &received.checksum {
        insert(response.headers_mut(), HeaderName::from_static(algorithm.header()), value);
    }
    Ok(response)
}

/// The part list of a CompleteMultipartUpload body: (part number, ETag without quotes).
fn requested_parts(document: &[u8]) -> S3Result<Vec<(u32, String)>> {
    let text = std::str::from_utf8(document).map_err(|_| S3Error::malformed_xml())?;
    let root =
        xml::parse(text).filter(|root| root.name == "CompleteMultipartUpload").ok_or_else(S3Error::malformed_xml)?;
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let number = part.child_text("PartNumber").and_then(|n| n.trim().parse::<u32>().ok());
        let etag = part.child_text("ETag").map(|etag| etag.trim().trim_matches('"').to_owned());
        let (Some(number), Some(etag)) = (number, etag) else { return Err(S3Error::malformed_xml()) };
        parts.push((number, etag));
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if parts.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
        ));
    }
    Ok(parts)
}

pub async fn complete(ctx: &Ctx<'_>, request_body: RequestBody) -> S3Result<Response<Body>> {
    let upload_id = upload_id(ctx);
    let if_absent = write_condition(ctx)?;
    let upload = ctx.store().upload(&ctx.bucket, &ctx.key, upload_id).await?;
    let document = body::read_small(request_body, &ctx.parts.headers, MAX_XML_BYTES).await?;
    let requested = requested_parts(&document)?;

    // Every part checked before any byte is copied.
    let invalid_part = |number: u32, etag: &str| {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPart",
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        )
        .with("UploadId", upload_id)
        .with("PartNumber", number.to_string())
        .with("ETag", etag)
    };
    let mut opened = Vec::with_capacity(requested.len());
    for (index, (number, etag)) in requested.iter().enumerate() {
        let Some((file, part)) = ctx.store().open_part(&ctx.bucket, upload_id, *number).await? else {
            return Err(invalid_part(*number, etag));
        };
        if &part.etag != etag {
            return Err(invalid_part(*number, etag));
        }
        if index + 1 < requested.len() && part.size < MIN_PART_BYTES {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("ProposedSize", part.size.to_string())
            .with("MinSizeAllowed", MIN_PART_BYTES.to_string())
            .with("PartNumber", number.to_string())
            .with("ETag", etag));
        }
        opened.push((file, part));
    }

    // S3's multipart ETag: the MD5 of the parts' binary MD5s, then the number of parts.
    let mut etag_md5 = md5::Md5::new();
    let mut size = 0u64;
    let mut temp = ctx.store().temp_file().await?;
    for (mut file, part) in opened {
        let digest = hex::decode(&part.etag).map_err(S3Error::internal)?;
        etag_md5.update(&digest);
        temp.copy_from(&mut file, part.size).await?;
        size += part.size;
    }
    let etag = format!("{}-{}", hex::encode(etag_md5.finalize()), requested.len());
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        size,
        etag,
        content_type: upload.content_type,
        last_modified: ctx.state.clock.now().millis(),
        headers: upload.headers,
        checksum: None,
    };
    ctx.store().commit_object(&ctx.bucket, temp, &meta, if_absent).await?;
    ctx.store().remove_upload(&ctx.bucket, upload_id).await?;
    tracing::info!(bucket = %ctx.bucket, key = %ctx.key, size, parts = requested.len(), access_key_id = %ctx.caller.access_key_id, "multipart object stored");

    let mut document = xml::Writer::new().root("CompleteMultipartUploadResult");
    document
        .element("Location", &format!("/{}/{}", ctx.bucket, landfall_sigv4::uri_encode(&ctx.key, true)))
        .element("Bucket", &ctx.bucket)
        .element("Key", &ctx.key)
        .element("ETag", &quoted(&meta.etag))
        .close("CompleteMultipartUploadResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

pub async fn abort(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let upload_id = upload_id(ctx);
    ctx.store().upload(&ctx.bucket, &ctx.key, upload_id).await?;
    ctx.store().remove_upload(&ctx.bucket, upload_id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn owner(document: &mut xml::Writer, ctx: &Ctx<'_>, element: &str) {
    document.open(element).element("ID", &ctx.state.account_id).element("DisplayName", "landfall").close(element);
}

fn max_param(ctx: &Ctx<'_>, name: &str) -> S3Result<usize> {
    match ctx.query.get(name) {
        None => Ok(1000),
        Some(value) => match value.parse::<usize>() {
            Ok(max) => Ok(max.min(1000)),
            Err(_) => Err(S3Error::invalid_argument(
                format!("Provided {name} not an integer or within integer range"),
                name,
                value,
            )),
        },
    }
}

pub async fn list_parts(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let upload_id = upload_id(ctx);
    let upload = ctx.store().upload(&ctx.bucket, &ctx.key, upload_id).await?;
    let max = max_param(ctx, "max-parts")?;
    let marker_text = ctx.query.get("part-number-marker").unwrap_or("0");
    let marker: u32 = marker_text.parse().map_err(|_| {
        S3Error::invalid_argument("Provided part-number-marker not an integer", "part-number-marker", marker_text)
    })?;
    let parts = ctx.store().list_parts(&ctx.bucket, upload_id).await?;
    let mut after = parts.iter().filter(|part| part.part_number > marker);
    let page: Vec<&PartMeta> = after.by_ref().take(max).collect();
    let truncated = after.next().is_some();

    let mut document = xml::Writer::new().root("ListPartsResult");
    document
        .element("Bucket", &ctx.bucket)
        .element("Key", &upload.key)
        .element("UploadId", upload_id)
        .element("PartNumberMarker", &marker.to_string())
        .element("NextPartNumberMarker", &page.last().map_or(marker, |part| part.part_number).to_string())
        .element("MaxParts", &max.to_string())
        .element("IsTruncated", if truncated { "true" } else { "false" });
    for part in page {
        document
            .open("Part")
            .element("PartNumber", &part.part_number.to_string())
            .element("LastModified", &iso8601(part.last_modified))
            .element("ETag", &quoted(&part.etag))
            .element("Size", &part.size.to_string())
            .close("Part");
    }
    owner(&mut document, ctx, "Initiator");
    owner(&mut document, ctx, "Owner");
    document.element("StorageClass", "STANDARD").close("ListPartsResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

pub async fn list_uploads(ctx: &Ctx<'_>) -> S3Result<Response<Body>> {
    let prefix = ctx.query.get("prefix").unwrap_or("");
    let key_marker = ctx.query.get("key-marker").unwrap_or("");
    let id_marker = ctx.query.get("upload-id-marker").unwrap_or("");
    let max = max_param(ctx, "max-uploads")?;
    let uploads = ctx.store().list_uploads(&ctx.bucket).await?;
    // After the marker: keys after key-marker, or the same key with a later upload (by listing order).
    let mut passed_id_marker = false;
    let mut selected = uploads.iter().filter(|(id, upload)| {
        if !upload.key.starts_with(prefix) || upload.key.as_str() < key_marker {
            return false;
        }
        if !key_marker.is_empty() && upload.key == key_marker {
            if id_marker.is_empty() {
                return false;
            }
            if passed_id_marker {
                return true;
            }
            passed_id_marker = id == id_marker;
            return false;
        }
        true
    });
    let page: Vec<_> = selected.by_ref().take(max).collect();
    let truncated = selected.next().is_some();

    let mut document = xml::Writer::new().root("ListMultipartUploadsResult");
    document
        .element("Bucket", &ctx.bucket)
        .element("KeyMarker", key_marker)
        .element("UploadIdMarker", id_marker)
        .element("Prefix", prefix)
        .element("MaxUploads", &max.to_string())
        .element("IsTruncated", if truncated { "true" } else { "false" });
    if truncated && let Some((id, upload)) = page.last() {
        document.element("NextKeyMarker", &upload.key).element("NextUploadIdMarker", id);
    }
    for (id, upload) in page {
        document.open("Upload").element("Key", &upload.key).element("UploadId", id);
        owner(&mut document, ctx, "Initiator");
        owner(&mut document, ctx, "Owner");
        document.element("StorageClass", "STANDARD").element("Initiated", &iso8601(upload.initiated)).close("Upload");
    }
    document.close("ListMultipartUploadsResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_lists() {
        let body = br#"<CompleteMultipartUpload><Part><ETag>"aa"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>3</PartNumber><ETag>bb</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(requested_parts(body).unwrap(), [(1, "aa".to_owned()), (3, "bb".to_owned())]);
        let unordered = b"<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>2</PartNumber></Part><Part><ETag>b</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(requested_parts(unordered).unwrap_err().code, "InvalidPartOrder");
        for bad in [
            &b"<CompleteMultipartUpload/>"[..],
            b"<Other/>",
            b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"\xff",
        ] {
            assert_eq!(requested_parts(bad).unwrap_err().code, "MalformedXML");
        }
    }
}
