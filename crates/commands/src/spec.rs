//! The deployment specification: the JSON the agent reads from the envelope of
//! GetDeploymentSpecification, field names as the official agent reads them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that works as a credential (an access token, a presigned URL): serialized as the
/// plain string, never shown by `Debug`, so a logged specification leaks nothing.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentSpec {
    /// `d-XXXXXXXXX`, or a deployment ARN whose last segment is the id.
    pub deployment_id: String,
    pub deployment_group_id: String,
    pub deployment_group_name: String,
    pub application_name: String,
    /// Default `user`; `codeDeployRollback` changes which install a hook's scripts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_creator: Option<String>,
    /// Default `IN_PLACE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_spec_filename: Option<String>,
    pub revision: SpecRevision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_action_overrides: Option<AgentActionOverrides>,
    #[serde(rename = "GitHubAccessToken", default, skip_serializing_if = "Option::is_none")]
    pub github_access_token: Option<Secret>,
}

impl DeploymentSpec {
    /// The deployment id, also when the spec carries a deployment ARN.
    pub fn deployment_id(&self) -> &str {
        self.deployment_id.rsplit('/').next().unwrap_or(&self.deployment_id)
    }

    pub fn file_exists_behavior(&self) -> Option<&str> {
        self.agent_action_overrides.as_ref()?.agent_overrides.as_ref()?.file_exists_behavior.as_deref()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpecRevision {
    /// `S3`, `GitHub`, `Local File` or `Local Directory`.
    pub revision_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_revision: Option<S3Revision>,
    #[serde(rename = "GitHubRevision", default, skip_serializing_if = "Option::is_none")]
    pub github_revision: Option<GitHubRevision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_revision: Option<LocalRevision>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Revision {
    pub bucket: String,
    pub key: String,
    /// `tar`, `tgz` or `zip`.
    pub bundle_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "ETag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Landfall: a presigned GET URL for the object in an external S3-compatible store (the
    /// official agent ignores it and fetches from its own S3 endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presigned_url: Option<Secret>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GitHubRevision {
    pub account: String,
    pub repository: String,
    pub commit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<String>,
    /// Landfall: the git clone URL of the repository (the official agent ignores it and asks
    /// GitHub's API for an archive). Without it, GitHub's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalRevision {
    pub location: String,
    pub bundle_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentActionOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_overrides: Option<AgentOverrides>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_exists_behavior: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_serialized_but_never_shown() {
        let spec = DeploymentSpec {
            github_access_token: Some(Secret("ghp_token".into())),
            revision: SpecRevision {
                s3_revision: Some(S3Revision {
                    presigned_url: Some(Secret("http://s3/b/k?X-Amz-Signature=abc".into())),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("ghp_token") && !shown.contains("X-Amz-Signature"), "{shown}");
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""GitHubAccessToken":"ghp_token""#) && json.contains("X-Amz-Signature=abc"), "{json}");
    }

    #[test]
    fn reads_the_recorded_specification() {
        let text = include_str!("../tests/data/deployment-spec.json");
        let spec: DeploymentSpec = serde_json::from_str(text).unwrap();
        assert!(!spec.deployment_group_id.is_empty());
        let round_trip: DeploymentSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(round_trip, spec);
    }

    #[test]
    fn deployment_arn_gives_its_id() {
        let spec = DeploymentSpec {
            deployment_id: "arn:aws:codedeploy:us-east-1:123456789012:deployment/d-ABCDEFGHI".into(),
            ..Default::default()
        };
        assert_eq!(spec.deployment_id(), "d-ABCDEFGHI");
    }
}
