//! `landfall deploy` (a directory, a pushed revision, or a git commit; optionally waiting with
//! the live view), `landfall stop` and `landfall rollback`.

use anyhow::{Context as _, anyhow, bail};
use landfall_api::shapes::{
    BundleType, CreateDeploymentInput, CreateDeploymentOutput, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus,
    GetDeploymentGroupInput, GetDeploymentGroupOutput, GetDeploymentInput, GetDeploymentOutput, GitHubLocation,
    ListDeploymentsInput, ListDeploymentsOutput, RevisionLocation, RevisionLocationType, S3Location,
    StopDeploymentInput, StopDeploymentOutput,
};
use landfall_client::Client;
use serde::Serialize;

use crate::Outcome;
use crate::api::{Snapshot, call, deployments_newest_first, list_all};
use crate::push::{PushRequest, push};
use crate::term::Output;
use crate::view::{summary, watch};

/// What to deploy.
#[derive(Debug, Clone)]
pub enum RevisionChoice {
    /// A directory, pushed first.
    Directory(std::path::PathBuf),
    /// `s3://BUCKET/KEY` (bundle type from the key's extension) or `github:OWNER/REPO@COMMIT`.
    Location(Box<RevisionLocation>),
}

/// Parses `--revision`: `s3://BUCKET/KEY` or `github:OWNER/REPO@COMMIT`.
pub fn parse_revision(text: &str) -> anyhow::Result<RevisionLocation> {
    if let Some(rest) = text.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| anyhow!("--revision {text}: an S3 revision is s3://BUCKET/KEY"))?;
        let bundle_type = if key.ends_with(".zip") {
            BundleType::Zip
        } else if key.ends_with(".tar") {
            BundleType::Tar
        } else if key.ends_with(".tgz") || key.ends_with(".tar.gz") {
            BundleType::Tgz
        } else {
            bail!("--revision {text}: the key must end in .tar, .tgz, .tar.gz or .zip to tell the bundle type")
        };
        return Ok(RevisionLocation {
            revision_type: Some(RevisionLocationType::S3),
            s3_location: Some(S3Location {
                bucket: Some(bucket.into()),
                key: Some(key.into()),
                bundle_type: Some(bundle_type),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(rest) = text.strip_prefix("github:") {
        let (repository, commit) = rest
            .split_once('@')
            .filter(|(r, c)| r.contains('/') && !c.is_empty())
            .ok_or_else(|| anyhow!("--revision {text}: a git revision is github:OWNER/REPO@COMMIT"))?;
        if !matches!(commit.len(), 40 | 64) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--revision {text}: {commit} is not a full commit hash (git rev-parse {commit} gives it)");
        }
        return Ok(RevisionLocation {
            revision_type: Some(RevisionLocationType::GitHub),
            git_hub_location: Some(GitHubLocation {
                repository: Some(repository.into()),
                commit_id: Some(commit.into()),
            }),
            ..Default::default()
        });
    }
    bail!("--revision {text}: give s3://BUCKET/KEY or github:OWNER/REPO@COMMIT")
}

pub struct DeployRequest {
    pub application: String,
    pub group: String,
    pub revision: RevisionChoice,
    pub config: Option<String>,
    pub description: Option<String>,
    pub wait: bool,
}

#[derive(Serialize)]
struct Created<'a> {
    #[serde(rename = "deploymentId")]
    deployment_id: &'a str,
}

pub async fn deploy(client: &Client, output: &Output, request: DeployRequest) -> anyhow::Result<Outcome> {
    let revision = match request.revision {
        RevisionChoice::Location(location) => *location,
        RevisionChoice::Directory(directory) => {
            let pushed = push(
                client,
                output,
                &PushRequest {
                    application: request.application.clone(),
                    directory,
                    bucket: None,
                    key: None,
                    description: request.description.clone(),
                },
            )
            .await?;
            if !output.json {
                println!("pushed s3://{}/{} ({} files)", pushed.bucket, pushed.key, pushed.files);
            }
            pushed.revision
        }
    };
    let input = CreateDeploymentInput {
        application_name: Some(request.application.clone()),
        deployment_group_name: Some(request.group.clone()),
        revision: Some(revision),
        deployment_config_name: request.config.clone(),
        description: request.description.clone(),
        ..Default::default()
    };
    let created: CreateDeploymentOutput = call(client, "CreateDeployment", &input).await?;
    let id = created.deployment_id.unwrap_or_default();
    start_and_wait(client, output, &id, request.wait).await
}

/// Prints a new deployment's id, then (with `wait`) watches it to its end.
async fn start_and_wait(client: &Client, output: &Output, id: &str, wait: bool) -> anyhow::Result<Outcome> {
    if !wait {
        if output.json {
            output.json(&Created { deployment_id: id })?;
        } else {
            println!("{id}");
        }
        return Ok(Outcome::Succeeded);
    }
    let snapshot = if output.json {
        wait_quietly(client, id).await?
    } else {
        println!("deployment {id} created; following it (Ctrl-C stops watching, not the deployment)");
        return follow(client, output, id).await;
    };
    finish(output, &snapshot)
}

/// Follows a deployment with the live view until it ends, then prints its outcome.
pub async fn follow(client: &Client, output: &Output, id: &str) -> anyhow::Result<Outcome> {
    let snapshot = watch(client, output, id).await?;
    finish(output, &snapshot)
}

/// Prints the end of a deployment and says whether it succeeded.
pub(crate) fn finish(output: &Output, snapshot: &Snapshot) -> anyhow::Result<Outcome> {
    if output.json {
        output.json(snapshot)?;
    } else {
        for line in summary(output, snapshot) {
            println!("{line}");
        }
    }
    Ok(if snapshot.succeeded() { Outcome::Succeeded } else { Outcome::Unsuccessful })
}

/// Waits for the deployment to end (reading only the deployment meanwhile), then reads it with
/// its targets.
async fn wait_quietly(client: &Client, id: &str) -> anyhow::Result<Snapshot> {
    loop {
        let input = GetDeploymentInput { deployment_id: Some(id.into()) };
        let got: GetDeploymentOutput = crate::api::call(client, "GetDeployment", &input).await?;
        let deployment = Snapshot { deployment: got.deployment_info.unwrap_or_default(), targets: Vec::new() };
        if deployment.is_over() {
            return Ok(crate::api::with_targets(client, id, deployment.deployment).await?);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// `landfall stop`: stops a deployment (and rolls it back when asked).
pub async fn stop(client: &Client, output: &Output, id: &str, rollback: bool) -> anyhow::Result<()> {
    let input = StopDeploymentInput { deployment_id: Some(id.into()), auto_rollback_enabled: Some(rollback) };
    let stopped: StopDeploymentOutput = call(client, "StopDeployment", &input).await?;
    if output.json {
        return output.json(&stopped);
    }
    println!(
        "{id}: {}{}",
        stopped.status.as_ref().map_or("", |s| s.as_str()),
        stopped.status_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    );
    Ok(())
}

/// `landfall rollback`: deploys the group's last successful revision that differs from what
/// its latest deployment installed (`to` picks a deployment's revision instead).
pub async fn rollback(
    client: &Client,
    output: &Output,
    application: &str,
    group: &str,
    to: Option<&str>,
    wait: bool,
) -> anyhow::Result<Outcome> {
    let target = match to {
        Some(id) => deployment(client, id).await?,
        None => previous_good(client, application, group).await?,
    };
    let from = target.deployment_id.clone().unwrap_or_default();
    let revision = target.revision.clone().ok_or_else(|| anyhow!("deployment {from} has no revision to redeploy"))?;
    let input = CreateDeploymentInput {
        application_name: Some(application.into()),
        deployment_group_name: Some(group.into()),
        revision: Some(revision),
        description: Some(format!("landfall rollback to the revision of {from}")),
        ..Default::default()
    };
    let created: CreateDeploymentOutput = call(client, "CreateDeployment", &input).await?;
    let id = created.deployment_id.unwrap_or_default();
    if !output.json {
        println!("rolling back {application}/{group} to the revision of {from}");
    }
    start_and_wait(client, output, &id, wait).await
}

async fn deployment(client: &Client, id: &str) -> anyhow::Result<DeploymentInfo> {
    let got: GetDeploymentOutput =
        call(client, "GetDeployment", &GetDeploymentInput { deployment_id: Some(id.into()) }).await?;
    got.deployment_info.ok_or_else(|| anyhow!("no deployment {id}"))
}

/// The newest successful deployment of the group whose revision is not the latest deployment's.
async fn previous_good(client: &Client, application: &str, group: &str) -> anyhow::Result<DeploymentInfo> {
    let input = GetDeploymentGroupInput {
        application_name: Some(application.into()),
        deployment_group_name: Some(group.into()),
    };
    let got: GetDeploymentGroupOutput = call(client, "GetDeploymentGroup", &input).await?;
    let info: DeploymentGroupInfo = got.deployment_group_info.unwrap_or_default();
    let latest = match info.last_attempted_deployment.and_then(|d| d.deployment_id) {
        Some(id) => Some(deployment(client, &id).await?),
        None => None,
    };
    let current = latest.as_ref().and_then(|d| d.revision.clone());
    let candidates = list_all(
        client,
        "ListDeployments",
        |next_token| ListDeploymentsInput {
            application_name: Some(application.into()),
            deployment_group_name: Some(group.into()),
            include_only_statuses: Some(vec![DeploymentStatus::Succeeded]),
            next_token,
            ..Default::default()
        },
        |page: ListDeploymentsOutput| (page.deployments, page.next_token),
    )
    .await?;
    let succeeded = deployments_newest_first(client, &candidates).await?;
    succeeded
        .into_iter()
        .find(|d| d.revision.is_some() && d.revision != current)
        .with_context(|| format!("{application}/{group} has no earlier successful revision to roll back to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_read_from_their_short_forms() {
        let s3 = parse_revision("s3://bundles/shop/v1.tar.gz").unwrap().s3_location.unwrap();
        assert_eq!(
            (s3.bucket.as_deref(), s3.key.as_deref(), s3.bundle_type),
            (Some("bundles"), Some("shop/v1.tar.gz"), Some(BundleType::Tgz))
        );
        assert_eq!(parse_revision("s3://b/app.zip").unwrap().s3_location.unwrap().bundle_type, Some(BundleType::Zip));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let git = parse_revision(&format!("github:team/app@{commit}")).unwrap().git_hub_location.unwrap();
        assert_eq!((git.repository.as_deref(), git.commit_id.as_deref()), (Some("team/app"), Some(commit)));
        for bad in
            ["s3://bucket", "s3://b/app.rar", "github:app@1", "github:team/app", "github:team/app@main", "ftp://x"]
        {
            assert!(parse_revision(bad).is_err(), "{bad}");
        }
    }
}
