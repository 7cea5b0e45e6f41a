//! The DownloadBundle command's pieces: revision retention (`max_revisions`), fetching the
//! bundle (S3-compatible store, git, or a file or directory on the host) to `bundle.tar`.
//! Unpacking is [`crate::archive`].

use std::fs::{self, DirEntry};
use std::io::{self, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Uri};
use landfall_commands::spec::{GitHubRevision, S3Revision, Secret};
use landfall_sigv4::uri_encode;

use crate::client::{Signer, describe};
use crate::disk::{DiskBudget, size_text};

/// Prunes old deployment directories of a group before a new one is downloaded, as the
/// official agent does: of the entries other than the current deployment, if there are
/// `max_revisions` or more, the oldest (by modification time) go until `max_revisions - 1`
/// remain, never the last successful install's. Returns what was removed.
pub fn prune_revisions(
    group_dir: &Path,
    current_deployment: &str,
    last_successful: Option<&Path>,
    max_revisions: usize,
) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(group_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let others: Vec<fs::DirEntry> =
        entries.filter_map(Result::ok).filter(|e| e.file_name() != current_deployment).collect();
    let extra = (others.len() + 1).saturating_sub(max_revisions);
    if extra == 0 {
        return Ok(Vec::new());
    }
    let protected = last_successful.map(|p| fs::canonicalize(p).unwrap_or_else(|_| p.to_owned()));
    let mut candidates: Vec<(SystemTime, PathBuf)> = others
        .iter()
        .map(DirEntry::path)
        .filter(|path| {
            let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            Some(&canonical) != protected.as_ref()
        })
        .map(|path| {
            let modified = fs::symlink_metadata(&path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
            (modified, path)
        })
        .collect();
    candidates.sort();
    let mut removed = Vec::new();
    for (_, path) in candidates.into_iter().take(extra) {
        let result = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        result?;
        removed.push(path);
    }
    Ok(removed)
}

/// How often, and how patiently, a download is tried again after a network error, a cut
/// connection or a busy store (5xx, 429).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over about 15 seconds.
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 5, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    fn delay_before(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Fetches bundles over HTTP: from the server's bundle store with the instance's credentials,
/// or from an external store through the presigned URL the specification carries.
#[derive(Debug, Clone)]
pub struct BundleFetcher {
    http: reqwest::Client,
    s3_endpoint: String,
    signer: Arc<Signer>,
    retry: RetryPolicy,
}

/// Where one S3 object comes from.
struct ObjectSource {
    url: String,
    /// The store's address for messages: never the presigned query, which works as a credential.
    endpoint: String,
    /// Signed with the instance's key (the server's own store); presigned URLs carry their own.
    sign: bool,
}

impl BundleFetcher {
    pub fn new(http: reqwest::Client, s3_endpoint: &str, signer: Arc<Signer>) -> BundleFetcher {
        BundleFetcher {
            http,
            s3_endpoint: s3_endpoint.trim_end_matches('/').to_owned(),
            signer,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(self, retry: RetryPolicy) -> BundleFetcher {
        BundleFetcher { retry, ..self }
    }

    fn source(&self, revision: &S3Revision) -> ObjectSource {
        if let Some(url) = revision.presigned_url.as_ref().map(Secret::expose).filter(|u| !u.is_empty()) {
            let endpoint =
                url.parse::<Uri>().ok().and_then(|uri| Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?)));
            return ObjectSource {
                url: url.to_owned(),
                endpoint: endpoint.unwrap_or_else(|| "the external store".into()),
                sign: false,
            };
        }
        let mut url =
            format!("{}/{}/{}", self.s3_endpoint, uri_encode(&revision.bucket, false), uri_encode(&revision.key, true));
        if let Some(version) = revision.version.as_deref().filter(|v| !v.is_empty()) {
            url.push_str("?versionId=");
            url.push_str(&uri_encode(version, false));
        }
        ObjectSource { url, endpoint: self.s3_endpoint.clone(), sign: true }
    }

    /// `GetObject` streamed to `to`. Network errors, cut connections and busy answers are
    /// retried with backoff, resuming where the last attempt stopped (`Range`, `If-Match` on
    /// the first answer's ETag, so a replaced object is never spliced into the old one). The
    /// ETag is checked against the revision's when it has one.
    pub async fn s3_object(&self, revision: &S3Revision, to: &Path, budget: &DiskBudget) -> Result<(), String> {
        let source = self.source(revision);
        let location = format!("s3://{}/{}", revision.bucket, revision.key);
        let expected_etag = revision.etag.as_deref().map(unquote).filter(|e| !e.is_empty());
        let partial = to.with_extension("part");
        let write_error = |error: io::Error| format!("cannot write {}: {error}", partial.display());
        let mut file = fs::File::create(&partial).map_err(write_error)?;
        let mut written: u64 = 0;
        let mut object_etag: Option<String> = None;
        let mut failures: Vec<String> = Vec::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.retry.delay_before(attempt)).await;
            }
            let resume = written > 0 && object_etag.is_some();
            let response = match self
                .get(&source, resume.then_some((written, object_etag.as_deref().unwrap_or_default())))
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    failures.push(error);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(unquote);
            match status {
                200 => {
                    // The whole object (again): start the file over.
                    file.set_len(0).and_then(|()| file.seek(io::SeekFrom::Start(0))).map_err(write_error)?;
                    written = 0;
                    object_etag = etag.clone();
                }
                206 if resume && content_range_start(response.headers()) == Some(written) && etag == object_etag => {}
                206 => {
                    failures
                        .push(format!("the store answered another range or object than bytes {written}- of the first"));
                    written = 0;
                    object_etag = None;
                    continue;
                }
                412 => {
                    // Replaced since the first attempt: fetch the new object whole.
                    failures.push("the object changed during the download".into());
                    written = 0;
                    object_etag = None;
                    continue;
                }
                429 | 500..=599 => {
                    let body = response.text().await.unwrap_or_default();
                    failures.push(s3_error(status, &body));
                    continue;
                }
                _ => {
                    let body = response.text().await.unwrap_or_default();
                    let _ = fs::remove_file(&partial);
                    return Err(format!(
                        "downloading {location} from {} failed: {}",
                        source.endpoint,
                        s3_error(status, &body)
                    ));
                }
            }
            if let (Some(expected), Some(found)) = (&expected_etag, &object_etag)
                && found != expected
            {
                let _ = fs::remove_file(&partial);
                return Err(format!(
                    "the bundle {location} has ETag {found}, but the deployment names ETag {expected}: the object changed after the deployment was created"
                ));
            }
            let too_large = |size: u64| {
                format!("the bundle {location} is {}, more than the limit of {}", size_text(size), budget.describe())
            };
            if let Some(length) = response.content_length().filter(|length| written + length > budget.bytes) {
                let _ = fs::remove_file(&partial);
                return Err(too_large(written + length));
            }
            match copy_body(response, &mut file, &mut written, budget.bytes).await {
                Ok(()) => {
                    file.sync_all().map_err(write_error)?;
                    return fs::rename(&partial, to).map_err(|error| format!("cannot write {}: {error}", to.display()));
                }
                Err(BodyError::Write(error)) => {
                    let _ = fs::remove_file(&partial);
                    return Err(write_error(error));
                }
                Err(BodyError::TooLarge) => {
                    let _ = fs::remove_file(&partial);
                    return Err(too_large(written));
                }
                Err(BodyError::Cut(error)) => {
                    failures.push(format!("the download was cut short after {written} bytes: {error}"))
                }
            }
        }
        let _ = fs::remove_file(&partial);
        let attempts = self.retry.attempts.max(1);
        Err(format!(
            "cannot download {location} from {} ({attempts} attempt{}): {}",
            source.endpoint,
            if attempts == 1 { "" } else { "s" },
            failures.join("; ")
        ))
    }

    /// One GET, from `resume = (offset, etag)` when resuming.
    async fn get(&self, source: &ObjectSource, resume: Option<(u64, &str)>) -> Result<reqwest::Response, String> {
        let mut headers = HeaderMap::new();
        if let Some((offset, etag)) = resume {
            let range = format!("bytes={offset}-");
            headers.insert("range", range.parse().map_err(|_| "bad range".to_owned())?);
            if let Ok(value) = format!("\"{etag}\"").parse() {
                headers.insert("if-match", value);
            }
        }
        if source.sign {
            let uri: Uri = source.url.parse().map_err(|error| format!("{} is not a URL: {error}", source.url))?;
            let signed = self.signer.send(&self.http, Method::GET, &uri, headers, Vec::new(), "s3").await;
            return signed.map_err(|e| e.to_string());
        }
        // A presigned URL's query is a credential: errors leave it out.
        self.http.get(source.url.as_str()).headers(headers).send().await.map_err(|error| describe(&error.without_url()))
    }

    /// The commit `revision.commit_id` of the repository, as a tar archive (see [`crate::git`]).
    pub async fn git_commit(
        &self,
        revision: &GitHubRevision,
        token: Option<&str>,
        work_dir: &Path,
        to: &Path,
    ) -> Result<(), String> {
        let url = match revision.repository_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => url.to_owned(),
            None => format!("https://github.com/{}/{}.git", revision.account, revision.repository),
        };
        crate::git::fetch_commit(&crate::git::GitFetch { url: &url, commit: &revision.commit_id, token, work_dir }, to)
            .await
    }
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/LENGTH` answer.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("content-range")?.to_str().ok()?;
    value.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

enum BodyError {
    Cut(String),
    Write(io::Error),
    /// Past the disk budget's bytes.
    TooLarge,
}

/// Appends an answer's body to `file`, counting into `written` as it goes, never past `max`.
async fn copy_body(
    mut response: reqwest::Response,
    file: &mut fs::File,
    written: &mut u64,
    max: u64,
) -> Result<(), BodyError> {
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                if *written + bytes.len() as u64 > max {
                    *written += bytes.len() as u64;
                    return Err(BodyError::TooLarge);
                }
                file.write_all(&bytes).map_err(BodyError::Write)?;
                *written += bytes.len() as u64;
            }
            Ok(None) => return Ok(()),
            Err(error) => return Err(BodyError::Cut(describe(&error.without_url()))),
        }
    }
}

/// The code and message of an S3 XML error answer.
fn s3_error(status: u16, body: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].to_owned())
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        _ => format!("HTTP {status}"),
    }
}

/// Copies a directory tree (a `Local Directory` revision) into `to`, links as links.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_are_summarised() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key does not exist.</Message></Error>";
        assert_eq!(s3_error(404, body), "HTTP 404 NoSuchKey: The key does not exist.");
        assert_eq!(s3_error(500, "oops"), "HTTP 500");
    }
}
