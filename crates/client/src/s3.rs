//! The few S3 calls Landfall's own commands make against the server's bundle store: create a
//! bucket, put an object. Path-style, signed for service `s3` with the payload's SHA-256.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method, Uri};
use landfall_sigv4::{SigningParams, sha256_hex, sign, uri_encode};

use crate::{Client, ClientError};

impl Client {
    /// Creates a bucket; one that exists already is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), ClientError> {
        match self.s3(Method::PUT, bucket, "", Vec::new()).await {
            Ok(_) => Ok(()),
            Err(ClientError::Api { exception, .. }) if exception == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Stores an object; returns its ETag without quotes.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<String, ClientError> {
        let headers = self.s3(Method::PUT, bucket, key, body).await?;
        let etag = headers.get("etag").and_then(|value| value.to_str().ok()).unwrap_or_default();
        Ok(etag.trim_matches('"').to_owned())
    }

    async fn s3(&self, method: Method, bucket: &str, key: &str, body: Vec<u8>) -> Result<HeaderMap, ClientError> {
        let endpoint = self.settings.endpoint.trim_end_matches('/');
        let path = if key.is_empty() { format!("/{bucket}") } else { format!("/{bucket}/{}", uri_encode(key, true)) };
        let transport = |message: String| ClientError::Transport { endpoint: endpoint.to_owned(), message };
        let uri: Uri = format!("{endpoint}{path}").parse().map_err(|_| transport(format!("bad object path {path}")))?;
        let mut headers = HeaderMap::new();
        let digest = HeaderValue::from_str(&sha256_hex(&body)).map_err(|e| transport(e.to_string()))?;
        headers.insert("x-amz-content-sha256", digest);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let params = SigningParams {
            credentials: &self.settings.credentials,
            region: &self.settings.region,
            service: "s3",
            time: now,
        };
        sign(&method, &uri, &mut headers, &body, &params).map_err(|e| transport(format!("cannot sign: {e:?}")))?;
        let response = self
            .http
            .request(method, uri.to_string())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(headers);
        }
        let text = response.text().await.unwrap_or_default();
        let element = |name: &str| {
            let open = format!("<{name}>");
            text.split_once(&open)
                .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
                .map(|(value, _)| value.to_owned())
        };
        Err(ClientError::Api {
            exception: element("Code").unwrap_or_else(|| format!("HTTP {status}")),
            message: element("Message").unwrap_or_default(),
        })
    }
}
