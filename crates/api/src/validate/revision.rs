//! Revision locations: which kinds each compute platform takes, and their identity.

use sha2::{Digest, Sha256};

use crate::error::{ApiResult, Exception, err};
use crate::shapes::{BundleType, ComputePlatform, RawString, RevisionLocation, RevisionLocationType};

use super::known;

/// Checks a revision location for the application's compute platform and completes it: the
/// sha256 of inline content is computed (and checked when the caller sent one).
pub fn revision_location(revision: &RevisionLocation, platform: &ComputePlatform) -> ApiResult<RevisionLocation> {
    checked_location(revision, platform, false)
}

/// Checks a revision location that names a registered revision to read it back
/// (GetApplicationRevision, BatchGetApplicationRevisions): as [`revision_location`], except that
/// inline content may be named by its sha256 alone, the one part GetDeployment and the list calls
/// show.
pub fn revision_lookup(revision: &RevisionLocation, platform: &ComputePlatform) -> ApiResult<RevisionLocation> {
    checked_location(revision, platform, true)
}

fn checked_location(
    revision: &RevisionLocation,
    platform: &ComputePlatform,
    digest_names_content: bool,
) -> ApiResult<RevisionLocation> {
    let exception = Exception::InvalidRevision;
    let Some(kind) = &revision.revision_type else {
        return err(exception, "revision.revisionType is required (S3, GitHub, String or AppSpecContent).");
    };
    known(kind, exception, "revision.revisionType")?;
    let allowed = match platform {
        ComputePlatform::Server => matches!(kind, RevisionLocationType::S3 | RevisionLocationType::GitHub),
        ComputePlatform::Lambda => !matches!(kind, RevisionLocationType::GitHub),
        _ => matches!(kind, RevisionLocationType::S3 | RevisionLocationType::AppSpecContent),
    };
    if !allowed {
        return err(exception, format!("revisionType {kind} cannot be deployed to the {platform} compute platform."));
    }
    let mut location = RevisionLocation { revision_type: Some(kind.clone()), ..Default::default() };
    match kind {
        RevisionLocationType::S3 => {
            let Some(s3) = &revision.s3_location else {
                return err(exception, "revision.s3Location is required for revisionType S3.");
            };
            if s3.bucket.as_deref().unwrap_or("").is_empty() {
                return err(exception, "revision.s3Location.bucket is required.");
            }
            if s3.key.as_deref().unwrap_or("").is_empty() {
                return err(exception, "revision.s3Location.key is required.");
            }
            let Some(bundle) = &s3.bundle_type else {
                return err(
                    exception,
                    "revision.s3Location.bundleType is required (tar, tgz or zip; YAML or JSON for Lambda and ECS).",
                );
            };
            known(bundle, exception, "revision.s3Location.bundleType")?;
            let archive = matches!(bundle, BundleType::Tar | BundleType::Tgz | BundleType::Zip);
            if archive != (*platform == ComputePlatform::Server) {
                let wanted = if *platform == ComputePlatform::Server { "tar, tgz or zip" } else { "YAML or JSON" };
                return err(exception, format!("bundleType {bundle} is not valid for {platform}; use {wanted}."));
            }
            location.s3_location = Some(s3.clone());
        }
        RevisionLocationType::GitHub => {
            let Some(github) = &revision.git_hub_location else {
                return err(exception, "revision.gitHubLocation is required for revisionType GitHub.");
            };
            let repository = github.repository.as_deref().unwrap_or("");
            let well_formed = repository.split('/').count() == 2 && repository.split('/').all(|part| !part.is_empty());
            if !well_formed {
                return err(
                    exception,
                    format!("revision.gitHubLocation.repository '{repository}' must have the form owner/repository."),
                );
            }
            if github.commit_id.as_deref().unwrap_or("").is_empty() {
                return err(exception, "revision.gitHubLocation.commitId is required.");
            }
            location.git_hub_location = Some(github.clone());
        }
        RevisionLocationType::String => {
            location.string = Some(raw_string(revision.string.as_ref(), "revision.string", digest_names_content)?);
        }
        _ => {
            location.app_spec_content = Some(
                raw_string(revision.app_spec_content.as_ref(), "revision.appSpecContent", digest_names_content)?.into(),
            );
        }
    }
    Ok(location)
}

impl From<RawString> for crate::shapes::AppSpecContent {
    fn from(raw: RawString) -> Self {
        crate::shapes::AppSpecContent { content: raw.content, sha256: raw.sha256 }
    }
}

/// Inline content with its computed sha256. With `digest_names_content`, a sha256 without content
/// is accepted as the name of content registered before (it must be a SHA-256 in hex).
fn raw_string<T>(value: Option<&T>, field: &str, digest_names_content: bool) -> ApiResult<RawString>
where
    T: Clone + Into<RawString>,
{
    let Some(raw) = value.cloned().map(Into::into) else {
        return err(Exception::InvalidRevision, format!("{field} is required for this revisionType."));
    };
    let content = raw.content.unwrap_or_default();
    if digest_names_content
        && content.is_empty()
        && let Some(given) = raw.sha256.as_deref().filter(|given| !given.is_empty())
    {
        if given.len() != 64 || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
            return err(Exception::InvalidRevision, format!("{field}.sha256 '{given}' is not a SHA-256 in hex."));
        }
        return Ok(RawString { content: None, sha256: Some(given.to_ascii_lowercase()) });
    }
    if content.trim().is_empty() {
        return err(Exception::InvalidRevision, format!("{field}.content is required."));
    }
    let digest = hex::encode(Sha256::digest(content.as_bytes()));
    if let Some(given) = raw.sha256.as_deref()
        && !given.eq_ignore_ascii_case(&digest)
    {
        return err(
            Exception::InvalidRevision,
            format!("{field}.sha256 does not match the SHA-256 of its content ({digest})."),
        );
    }
    Ok(RawString { content: Some(content), sha256: Some(digest) })
}

impl From<crate::shapes::AppSpecContent> for RawString {
    fn from(content: crate::shapes::AppSpecContent) -> Self {
        RawString { content: content.content, sha256: content.sha256 }
    }
}

/// The key that identifies a revision within its application: two locations with the same key
/// are the same revision. Inline content is identified by its sha256.
pub fn revision_key(location: &RevisionLocation) -> String {
    let field = |value: &Option<String>| value.clone().unwrap_or_default();
    match (&location.s3_location, &location.git_hub_location, &location.string, &location.app_spec_content) {
        (Some(s3), ..) => format!(
            "S3\n{}\n{}\n{}\n{}\n{}",
            field(&s3.bucket),
            field(&s3.key),
            s3.bundle_type.as_ref().map(|b| b.as_str()).unwrap_or(""),
            field(&s3.version),
            field(&s3.e_tag).trim_matches('"')
        ),
        (None, Some(github), ..) => format!("GitHub\n{}\n{}", field(&github.repository), field(&github.commit_id)),
        (None, None, Some(raw), _) => format!("String\n{}", field(&raw.sha256)),
        (None, None, None, Some(content)) => format!("AppSpecContent\n{}", field(&content.sha256)),
        (None, None, None, None) => String::new(),
    }
}

/// The location as GetDeployment and list calls show it: inline content removed, sha256 kept.
pub fn without_content(location: &RevisionLocation) -> RevisionLocation {
    let mut location = location.clone();
    if let Some(raw) = location.string.as_mut() {
        raw.content = None;
    }
    if let Some(content) = location.app_spec_content.as_mut() {
        content.content = None;
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{AppSpecContent, GitHubLocation, S3Location};

    fn s3(bundle: &str) -> RevisionLocation {
        RevisionLocation {
            revision_type: Some(RevisionLocationType::S3),
            s3_location: Some(S3Location {
                bucket: Some("b".into()),
                key: Some("k.zip".into()),
                bundle_type: Some(bundle.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn platforms_take_their_revision_kinds() {
        assert!(revision_location(&s3("zip"), &ComputePlatform::Server).is_ok());
        assert!(revision_location(&s3("YAML"), &ComputePlatform::Server).is_err());
        assert!(revision_location(&s3("JSON"), &ComputePlatform::Lambda).is_ok());
        assert!(revision_location(&s3("tgz"), &ComputePlatform::Ecs).is_err());
        assert!(revision_location(&s3("rar"), &ComputePlatform::Server).is_err());
        let github = RevisionLocation {
            revision_type: Some(RevisionLocationType::GitHub),
            git_hub_location: Some(GitHubLocation { repository: Some("me/app".into()), commit_id: Some("abc".into()) }),
            ..Default::default()
        };
        assert!(revision_location(&github, &ComputePlatform::Server).is_ok());
        assert!(revision_location(&github, &ComputePlatform::Lambda).is_err());
    }

    #[test]
    fn inline_content_gets_its_sha256_and_a_wrong_one_is_refused() {
        let content = RevisionLocation {
            revision_type: Some(RevisionLocationType::AppSpecContent),
            app_spec_content: Some(AppSpecContent { content: Some("version: 0.0".into()), sha256: None }),
            ..Default::default()
        };
        let checked = revision_location(&content, &ComputePlatform::Ecs).unwrap();
        let sha = checked.app_spec_content.as_ref().unwrap().sha256.clone().unwrap();
        assert_eq!(sha.len(), 64);
        assert_eq!(revision_key(&checked), format!("AppSpecContent\n{sha}"));
        assert!(without_content(&checked).app_spec_content.unwrap().content.is_none());
        let by_digest = RevisionLocation {
            revision_type: Some(RevisionLocationType::AppSpecContent),
            app_spec_content: Some(AppSpecContent { content: None, sha256: Some(sha.to_ascii_uppercase()) }),
            ..Default::default()
        };
        assert_eq!(revision_key(&revision_lookup(&by_digest, &ComputePlatform::Ecs).unwrap()), revision_key(&checked));
        assert!(revision_location(&by_digest, &ComputePlatform::Ecs).is_err());
        let mut bad_digest = by_digest.clone();
        bad_digest.app_spec_content.as_mut().unwrap().sha256 = Some("abc".into());
        assert!(revision_lookup(&bad_digest, &ComputePlatform::Ecs).is_err());
        let mut wrong = content.clone();
        wrong.app_spec_content.as_mut().unwrap().sha256 = Some("0".repeat(64));
        assert_eq!(revision_location(&wrong, &ComputePlatform::Ecs).unwrap_err().exception, Exception::InvalidRevision);
    }

    #[test]
    fn etag_quotes_do_not_change_identity() {
        let mut quoted = s3("zip");
        quoted.s3_location.as_mut().unwrap().e_tag = Some("\"abc\"".into());
        let mut bare = s3("zip");
        bare.s3_location.as_mut().unwrap().e_tag = Some("abc".into());
        assert_eq!(revision_key(&quoted), revision_key(&bare));
    }
}
