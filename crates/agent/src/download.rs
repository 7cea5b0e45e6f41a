//! The DownloadBundle command's pieces: revision retention (`max_revisions`), fetching the
//! bundle (S3-compatible store, GitHub, or a file or directory on the host) to `bundle.tar`.
//! Unpacking is [`crate::archive`].

use std::fs::{self, DirEntry};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};
use landfall_commands::spec::{GitHubRevision, S3Revision};
use landfall_sigv4::uri_encode;

use crate::client::{Signer, describe};

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

/// Fetches bundles over HTTP with the instance's credentials.
#[derive(Debug, Clone)]
pub struct BundleFetcher {
    http: reqwest::Client,
    s3_endpoint: String,
    signer: Arc<Signer>,
}

impl BundleFetcher {
    pub fn new(http: reqwest::Client, s3_endpoint: &str, signer: Arc<Signer>) -> BundleFetcher {
        BundleFetcher { http, s3_endpoint: s3_endpoint.trim_end_matches('/').to_owned(), signer }
    }

    /// `GetObject` (path-style, SigV4 service `s3`), streamed to `to`; the ETag is checked
    /// against the revision's when it has one.
    pub async fn s3_object(&self, revision: &S3Revision, to: &Path) -> Result<(), String> {
        let mut url =
            format!("{}/{}/{}", self.s3_endpoint, uri_encode(&revision.bucket, false), uri_encode(&revision.key, true));
        if let Some(version) = revision.version.as_deref().filter(|v| !v.is_empty()) {
            url.push_str("?versionId=");
            url.push_str(&uri_encode(version, false));
        }
        let location = format!("s3://{}/{}", revision.bucket, revision.key);
        let uri: Uri = url.parse().map_err(|error| format!("{url} is not a URL: {error}"))?;
        let mut headers = HeaderMap::new();
        self.signer.sign(&Method::GET, &uri, &mut headers, b"", "s3").map_err(|e| e.to_string())?;
        let response =
            self.http.get(url.as_str()).headers(headers).send().await.map_err(|error| {
                format!("cannot download {location} from {}: {}", self.s3_endpoint, describe(&error))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "downloading {location} from {} failed: {}",
                self.s3_endpoint,
                s3_error(status.as_u16(), &body)
            ));
        }
        let etag =
            response.headers().get("etag").and_then(|v| v.to_str().ok()).map(|v| v.trim().trim_matches('"').to_owned());
        save_body(response, to, &location).await?;
        if let Some(expected) = revision.etag.as_deref().map(|e| e.trim().trim_matches('"')).filter(|e| !e.is_empty()) {
            let found = etag.unwrap_or_default();
            if found != expected {
                let _ = fs::remove_file(to);
                return Err(format!(
                    "the bundle {location} has ETag {found}, but the deployment names ETag {expected}: the object changed after the deployment was created"
                ));
            }
        }
        Ok(())
    }

    /// A GitHub tarball or zipball of a commit.
    pub async fn github(&self, revision: &GitHubRevision, token: Option<&str>, to: &Path) -> Result<(), String> {
        let kind = match revision.bundle_type.as_deref() {
            Some("zip") => "zipball",
            _ => "tarball",
        };
        let url = format!(
            "https://api.github.com/repos/{}/{}/{kind}/{}",
            uri_encode(&revision.account, false),
            uri_encode(&revision.repository, false),
            uri_encode(&revision.commit_id, false)
        );
        let mut request = self.http.get(&url);
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            request = request.header("authorization", format!("token {token}"));
        }
        let response = request.send().await.map_err(|error| format!("cannot download {url}: {}", describe(&error)))?;
        if !response.status().is_success() {
            return Err(format!("downloading {url} failed with HTTP {}", response.status()));
        }
        save_body(response, to, &url).await
    }
}

/// Streams an answer's body to `to` (through a temporary file, renamed when complete).
async fn save_body(mut response: reqwest::Response, to: &Path, what: &str) -> Result<(), String> {
    let partial = to.with_extension("part");
    let write_error = |error: io::Error| format!("cannot write {}: {error}", partial.display());
    let mut file = fs::File::create(&partial).map_err(write_error)?;
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => file.write_all(&bytes).map_err(write_error)?,
            Ok(None) => break,
            Err(error) => {
                let _ = fs::remove_file(&partial);
                return Err(format!("downloading {what} was cut short: {}", describe(&error)));
            }
        }
    }
    file.sync_all().map_err(write_error)?;
    fs::rename(&partial, to).map_err(|error| format!("cannot write {}: {error}", to.display()))
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
