//! The S3 download against a small HTTP server on 127.0.0.1 that checks each request's SigV4
//! signature with the instance's secret, as the server's bundle store does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use landfall_agent::client::Signer;
use landfall_agent::config::{CredentialSource, Identity};
use landfall_agent::disk::DiskBudget;
use landfall_agent::download::{BundleFetcher, RetryPolicy};
use landfall_commands::spec::{S3Revision, Secret};
use landfall_sigv4::{Credentials, RequestParts, VerifyOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::TempDir;

const SECRET: &str = "instance-secret";

/// What the fake store saw: the request target, its Range header, and whether its signature
/// verified.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Result<(), String>)>>>;

/// One answer of the fake store.
#[derive(Clone, Copy)]
enum Answer {
    /// `status` with `body` whole (or the requested range of it, as 206).
    Object(u16, &'static str, &'static [u8]),
    /// The headers of the whole object, then only its first `n` bytes, then a closed connection.
    CutAfter(usize, &'static str, &'static [u8]),
}

/// Answers the requests in turn with `script` (the last answer repeating), recording them.
async fn store(script: Vec<Answer>) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        for turn in 0.. {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let mut lines = text.split("\r\n");
            let mut start = lines.next().unwrap_or_default().split(' ');
            let (method, target) =
                (start.next().unwrap_or_default().to_owned(), start.next().unwrap_or_default().to_owned());
            let mut headers = HeaderMap::new();
            for line in lines.take_while(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').unwrap();
                headers.append(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
            let uri: Uri = target.parse().unwrap();
            let method: Method = method.parse().unwrap();
            let parts = RequestParts { method: &method, uri: &uri, headers: &headers, body: b"" };
            let verified = landfall_sigv4::parse_authorization(&uri, &headers)
                .and_then(|auth| {
                    let options = VerifyOptions::for_service("s3").with_region("us-east-1");
                    let now =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
                    landfall_sigv4::verify(&auth, &parts, SECRET, now, &options)
                })
                .map_err(|e| e.to_string());
            let range = headers.get("range").map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push((target, range.clone(), verified));
            let answer = script[turn.min(script.len() - 1)];
            let (head, sent): (String, &[u8]) = match answer {
                Answer::Object(status, etag, body) => {
                    let from = range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok())
                        .filter(|_| status == 200);
                    match from {
                        Some(from) => (
                            format!(
                                "HTTP/1.1 206 X\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nETag: \"{etag}\"\r\nConnection: close\r\n\r\n",
                                body.len() - from,
                                body.len() - 1,
                                body.len()
                            ),
                            &body[from..],
                        ),
                        None => (
                            format!(
                                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nETag: \"{etag}\"\r\nConnection: close\r\n\r\n",
                                body.len()
                            ),
                            body,
                        ),
                    }
                }
                Answer::CutAfter(n, etag, body) => (
                    format!(
                        "HTTP/1.1 200 X\r\nContent-Length: {}\r\nETag: \"{etag}\"\r\nConnection: close\r\n\r\n",
                        body.len()
                    ),
                    &body[..n],
                ),
            };
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(sent).await;
            let _ = socket.shutdown().await;
        }
    });
    (endpoint, seen)
}

fn fetcher(endpoint: &str) -> BundleFetcher {
    let identity = Identity {
        host_identifier: "arn:aws:iam::1:user/web1".into(),
        region: "us-east-1".into(),
        credentials: CredentialSource::Keys(Credentials::new("AKIDINSTANCE", SECRET)),
    };
    let retry =
        RetryPolicy { attempts: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(20) };
    BundleFetcher::new(reqwest::Client::new(), endpoint, Arc::new(Signer::new(identity))).with_retry(retry)
}

fn revision(key: &str, etag: Option<&str>, version: Option<&str>) -> S3Revision {
    S3Revision {
        bucket: "bundles".into(),
        key: key.into(),
        bundle_type: "tgz".into(),
        version: version.map(str::to_owned),
        etag: etag.map(str::to_owned),
        presigned_url: None,
    }
}

#[tokio::test]
async fn get_object_is_signed_and_saved() {
    let (endpoint, seen) = store(vec![Answer::Object(200, "abc123", b"bundle bytes")]).await;
    let dir = TempDir::new("s3");
    let to = dir.join("bundle.tar");
    fetcher(&endpoint)
        .s3_object(&revision("apps/my app.tgz", Some("\"abc123\""), Some("v 1")), &to, &DiskBudget::unlimited())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"bundle bytes");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/bundles/apps/my%20app.tgz?versionId=v%201");
    assert_eq!(seen[0].2, Ok(()), "the store could not verify the signature");
}

#[tokio::test]
async fn a_changed_object_is_refused_by_its_etag() {
    let (endpoint, _) = store(vec![Answer::Object(200, "new-etag", b"other bytes")]).await;
    let dir = TempDir::new("s3");
    let to = dir.join("bundle.tar");
    let error = fetcher(&endpoint)
        .s3_object(&revision("app.tgz", Some("old-etag"), None), &to, &DiskBudget::unlimited())
        .await
        .unwrap_err();
    assert!(error.contains("has ETag new-etag, but the deployment names ETag old-etag"), "{error}");
    assert!(!to.exists());
    // Without an ETag in the revision, any object is taken.
    fetcher(&endpoint).s3_object(&revision("app.tgz", None, None), &to, &DiskBudget::unlimited()).await.unwrap();
}

#[tokio::test]
async fn store_errors_are_reported_with_their_code() {
    const BODY: &[u8] = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    let (endpoint, seen) = store(vec![Answer::Object(404, "x", BODY)]).await;
    let dir = TempDir::new("s3");
    let error = fetcher(&endpoint)
        .s3_object(&revision("missing.tgz", None, None), &dir.join("b"), &DiskBudget::unlimited())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        format!(
            "downloading s3://bundles/missing.tgz from {endpoint} failed: HTTP 404 NoSuchKey: The specified key does not exist."
        )
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "a missing object is not asked for again");
    let error = fetcher("http://127.0.0.1:9")
        .s3_object(&revision("a.tgz", None, None), &dir.join("b"), &DiskBudget::unlimited())
        .await
        .unwrap_err();
    assert!(error.starts_with("cannot download s3://bundles/a.tgz from http://127.0.0.1:9 (3 attempts): "), "{error}");
}

const BIG: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

#[tokio::test]
async fn a_cut_download_resumes_where_it_stopped() {
    let (endpoint, seen) = store(vec![
        Answer::CutAfter(10, "e1", BIG),
        Answer::Object(503, "e1", b"<Error><Code>SlowDown</Code><Message>Busy.</Message></Error>"),
        Answer::Object(200, "e1", BIG),
    ])
    .await;
    let dir = TempDir::new("s3");
    let to = dir.join("bundle.tar");
    fetcher(&endpoint).s3_object(&revision("big.tgz", Some("e1"), None), &to, &DiskBudget::unlimited()).await.unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), BIG);
    let seen = seen.lock().unwrap().clone();
    let ranges: Vec<Option<String>> = seen.iter().map(|(_, range, _)| range.clone()).collect();
    assert_eq!(ranges, vec![None, Some("bytes=10-".into()), Some("bytes=10-".into())]);
    assert!(seen.iter().all(|(_, _, verified)| verified.is_ok()), "every attempt is signed: {seen:?}");
}

#[tokio::test]
async fn a_download_that_keeps_failing_says_why_each_time() {
    let (endpoint, seen) = store(vec![Answer::CutAfter(5, "e1", BIG)]).await;
    let dir = TempDir::new("s3");
    let to = dir.join("bundle.tar");
    let error = fetcher(&endpoint)
        .s3_object(&revision("big.tgz", None, None), &to, &DiskBudget::unlimited())
        .await
        .unwrap_err();
    assert!(error.contains("(3 attempts)") && error.matches("cut short").count() == 3, "{error}");
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(!to.exists() && !to.with_extension("part").exists());
}

#[tokio::test]
async fn a_presigned_url_is_used_as_given_and_never_shown() {
    let (endpoint, seen) = store(vec![Answer::Object(200, "p1", b"external bytes")]).await;
    let dir = TempDir::new("s3");
    let to = dir.join("bundle.tar");
    let mut external = revision("ext.tgz", Some("p1"), None);
    external.bucket = "elsewhere".into();
    external.presigned_url = Some(Secret(format!("{endpoint}/elsewhere/ext.tgz?X-Amz-Signature=feedface")));
    // The instance's own store is not asked: its endpoint here answers nothing.
    fetcher("http://127.0.0.1:9").s3_object(&external, &to, &DiskBudget::unlimited()).await.unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"external bytes");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/elsewhere/ext.tgz?X-Amz-Signature=feedface");
    assert!(seen[0].2.is_err(), "no instance signature is added to a presigned URL");

    external.presigned_url = Some(Secret("http://127.0.0.1:9/elsewhere/ext.tgz?X-Amz-Signature=feedface".into()));
    let error = fetcher(&endpoint).s3_object(&external, &to, &DiskBudget::unlimited()).await.unwrap_err();
    assert!(error.starts_with("cannot download s3://elsewhere/ext.tgz from http://127.0.0.1:9 "), "{error}");
    assert!(!error.contains("feedface"), "the presigned query is a credential: {error}");
}
