//! The few S3 calls Landfall's own commands make against the server's bundle store: create a
//! bucket, put an object (a file in parts, so a large bundle is never held in memory whole).
//! Path-style, signed for service `s3` with the payload's SHA-256.

use std::io::Read as _;
use std::path::Path;

use http::{HeaderMap, HeaderValue, Method, Uri};
use landfall_sigv4::{sha256_hex, uri_encode};

use crate::signed::{Signing, send_signed};
use crate::{Client, ClientError};

impl Client {
    /// Creates a bucket; one that exists already is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), ClientError> {
        match self.s3_call(Method::PUT, bucket, "", "", Vec::new()).await {
            Ok(_) => Ok(()),
            Err(ClientError::S3 { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Stores an object; returns its ETag without quotes.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<String, ClientError> {
        let (headers, _) = self.s3_call(Method::PUT, bucket, key, "", body).await?;
        Ok(etag_of(&headers))
    }

    /// Stores a file as an object, in [`PART_SIZE`] parts (multipart upload) when it is larger,
    /// calling `progress(sent, total)` as the bytes go. Returns the ETag without quotes.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<String, ClientError> {
        let local = |error: std::io::Error| ClientError::Local(format!("{}: {error}", path.display()));
        let mut file = std::fs::File::open(path).map_err(local)?;
        let total = file.metadata().map_err(local)?.len();
        progress(0, total);
        if total <= PART_SIZE {
            let mut body = Vec::with_capacity(total as usize);
            file.read_to_end(&mut body).map_err(local)?;
            let etag = self.put_object(bucket, key, body).await?;
            progress(total, total);
            return Ok(etag);
        }
        let (_, created) = self.s3_call(Method::POST, bucket, key, "uploads", Vec::new()).await?;
        let upload_id = xml_element(&created, "UploadId")
            .ok_or_else(|| ClientError::Decode("CreateMultipartUpload answered no UploadId".into()))?;
        let result = async {
            let mut parts = String::new();
            let mut sent = 0;
            for number in 1.. {
                let mut part = Vec::with_capacity(PART_SIZE as usize);
                (&mut file).take(PART_SIZE).read_to_end(&mut part).map_err(local)?;
                if part.is_empty() {
                    break;
                }
                let size = part.len() as u64;
                let query = format!("partNumber={number}&uploadId={}", uri_encode(&upload_id, false));
                let (headers, _) = self.s3_call(Method::PUT, bucket, key, &query, part).await?;
                parts.push_str(&format!(
                    "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag></Part>",
                    etag_of(&headers)
                ));
                sent += size;
                progress(sent, total);
            }
            let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>").into_bytes();
            let query = format!("uploadId={}", uri_encode(&upload_id, false));
            let (_, completed) = self.s3_call(Method::POST, bucket, key, &query, body).await?;
            xml_element(&completed, "ETag")
                .map(|etag| etag.replace("&quot;", "").trim_matches('"').to_owned())
                .ok_or_else(|| ClientError::Decode("CompleteMultipartUpload answered no ETag".into()))
        }
        .await;
        if result.is_err() {
            let query = format!("uploadId={}", uri_encode(&upload_id, false));
            let _ = self.s3_call(Method::DELETE, bucket, key, &query, Vec::new()).await;
        }
        result
    }

    /// One S3 request; returns the answer's headers and body.
    async fn s3_call(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &str,
        body: Vec<u8>,
    ) -> Result<(HeaderMap, String), ClientError> {
        let endpoint = self.settings.endpoint.trim_end_matches('/');
        let mut path =
            if key.is_empty() { format!("/{bucket}") } else { format!("/{bucket}/{}", uri_encode(key, true)) };
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        let transport = |message: String| ClientError::Transport { endpoint: endpoint.to_owned(), message };
        let uri: Uri = format!("{endpoint}{path}").parse().map_err(|_| transport(format!("bad object path {path}")))?;
        let mut headers = HeaderMap::new();
        let digest = HeaderValue::from_str(&sha256_hex(&body)).map_err(|e| transport(e.to_string()))?;
        headers.insert("x-amz-content-sha256", digest);
        let signing = Signing { credentials: &self.settings.credentials, region: &self.settings.region, service: "s3" };
        let response = send_signed(&self.http, method, &uri, headers, body, signing)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok((headers, text));
        }
        Err(ClientError::S3 {
            code: xml_element(&text, "Code").unwrap_or_else(|| format!("HTTP {status}")),
            message: xml_element(&text, "Message").unwrap_or_default(),
        })
    }
}

/// Parts of a multipart upload: large enough to keep the request count low, small enough to
/// hold one in memory.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

fn etag_of(headers: &HeaderMap) -> String {
    headers.get("etag").and_then(|value| value.to_str().ok()).unwrap_or_default().trim_matches('"').to_owned()
}

/// The text of the first `<name>` element (the S3 answers here are small and flat).
fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    text.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
        .map(|(value, _)| value.to_owned())
}
