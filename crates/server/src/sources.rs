//! Revision sources beyond the built-in bundle store, configured once on the server and handed
//! to agents in each deployment specification:
//!
//! - an external S3-compatible store, for S3 revisions whose bucket the built-in store does not
//!   have. Agents get a presigned URL for the one object they need, never the store's
//!   credentials: a host can read what it deploys and nothing else, and the credentials are
//!   configured (and rotated) in one place.
//! - a git server, for `GitHub` revisions: the repository URL (base URL plus `owner/repo`) and
//!   the optional access token, which agents send as an HTTP header and never log.

use hyper::http::{Method, Uri};
pub use landfall_commands::spec::Secret;
use landfall_sigv4::{Credentials, SigningParams, presign, uri_encode};

/// How long a presigned bundle URL stays valid: long enough for a slow download and its
/// retries, short enough that a copied URL soon stops working.
pub const PRESIGNED_URL_SECS: u32 = 3600;

/// GitHub, unless configured otherwise.
pub const DEFAULT_GIT_BASE_URL: &str = "https://github.com";

#[derive(Debug, Clone, Default)]
pub struct RevisionSources {
    pub external_s3: Option<ExternalS3>,
    pub git: GitSource,
}

/// Path-style (`https://endpoint/bucket/key`, what MinIO, Ceph and Garage serve by default) or
/// virtual-hosted-style (`https://bucket.endpoint/key`, what AWS prefers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    #[default]
    Path,
    VirtualHost,
}

/// (`Credentials`' own `Debug` shows the access key id only.)
#[derive(Debug, Clone)]
pub struct ExternalS3 {
    /// `scheme://host[:port]`, no path.
    pub endpoint: Uri,
    pub region: String,
    pub addressing: Addressing,
    pub credentials: Credentials,
}

impl ExternalS3 {
    /// The store's URL of a bucket's object (`key`), of a bucket (empty `key`), or of the
    /// store itself (empty `bucket`), addressed as the store wants.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        let scheme = self.endpoint.scheme_str().unwrap_or("https");
        let authority = self.endpoint.authority().map(|a| a.as_str()).unwrap_or_default();
        let key = uri_encode(key, true);
        let bucket_encoded = uri_encode(bucket, false);
        match (self.addressing, bucket.is_empty()) {
            (_, true) => format!("{scheme}://{authority}/"),
            (Addressing::Path, false) if key.is_empty() => format!("{scheme}://{authority}/{bucket_encoded}"),
            (Addressing::Path, false) => format!("{scheme}://{authority}/{bucket_encoded}/{key}"),
            (Addressing::VirtualHost, false) => format!("{scheme}://{bucket}.{authority}/{key}"),
        }
    }

    /// A presigned GetObject URL for one object (and version), valid for
    /// [`PRESIGNED_URL_SECS`] from `now_secs`.
    pub fn presigned_get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        now_secs: i64,
    ) -> Result<String, String> {
        let mut url = self.url(bucket, key);
        if let Some(version) = version.filter(|v| !v.is_empty()) {
            url.push_str("?versionId=");
            url.push_str(&uri_encode(version, false));
        }
        let uri: Uri = url.parse().map_err(|error| format!("{url} is not a URL: {error}"))?;
        let params =
            SigningParams { credentials: &self.credentials, region: &self.region, service: "s3", time: now_secs };
        presign(&Method::GET, &uri, &params, PRESIGNED_URL_SECS).map(|uri| uri.to_string()).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct GitSource {
    /// Repositories are `BASE/owner/repo.git`.
    pub base_url: String,
    /// Handed to agents in the specification as it is (and never shown by `Debug`).
    pub token: Option<Secret>,
}

impl Default for GitSource {
    fn default() -> GitSource {
        GitSource { base_url: DEFAULT_GIT_BASE_URL.to_owned(), token: None }
    }
}

impl GitSource {
    /// The clone URL of `owner/repo` (a `.git` suffix added unless given).
    pub fn repository_url(&self, repository: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        let repository = repository.trim_matches('/');
        if repository.ends_with(".git") { format!("{base}/{repository}") } else { format!("{base}/{repository}.git") }
    }
}

/// Where replicas keep bundles: the external store, and the client that reaches it.
pub struct ExternalBundles {
    pub store: ExternalS3,
    pub client: reqwest::Client,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(addressing: Addressing) -> ExternalS3 {
        ExternalS3 {
            endpoint: "http://127.0.0.1:9000".parse().unwrap(),
            region: "eu-west-1".into(),
            addressing,
            credentials: Credentials::new("AKIDEXAMPLE", "secret"),
        }
    }

    #[test]
    fn presigned_urls_name_the_object_in_either_style() {
        let url = store(Addressing::Path).presigned_get("bundles", "web/v 1.zip", Some("v2"), 1_700_000_000).unwrap();
        assert!(
            url.starts_with(
                "http://127.0.0.1:9000/bundles/web/v%201.zip?versionId=v2&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            ),
            "{url}"
        );
        assert!(url.contains("X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fs3%2Faws4_request"), "{url}");
        assert!(url.contains("X-Amz-Expires=3600") && url.contains("X-Amz-Signature="), "{url}");
        assert!(!url.contains("secret"));
        let url = store(Addressing::VirtualHost).presigned_get("bundles", "web.zip", None, 1_700_000_000).unwrap();
        assert!(url.starts_with("http://bundles.127.0.0.1:9000/web.zip?X-Amz-Algorithm="), "{url}");
    }

    #[test]
    fn repository_urls() {
        let git = GitSource::default();
        assert_eq!(git.repository_url("octo/app"), "https://github.com/octo/app.git");
        let git = GitSource { base_url: "http://127.0.0.1:8080/git/".into(), token: None };
        assert_eq!(git.repository_url("octo/app.git"), "http://127.0.0.1:8080/git/octo/app.git");
    }
}
