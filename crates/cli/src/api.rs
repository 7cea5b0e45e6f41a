//! Typed CodeDeploy calls, and the reads several commands share.

use landfall_api::shapes::{
    BatchGetDeploymentTargetsInput, BatchGetDeploymentTargetsOutput, BatchGetDeploymentsInput,
    BatchGetDeploymentsOutput, DeploymentInfo, DeploymentStatus, GetDeploymentInput, GetDeploymentOutput,
    InstanceTarget, ListDeploymentTargetsInput, ListDeploymentTargetsOutput,
};
use landfall_client::{Client, ClientError, Exception};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One CodeDeploy operation by name.
pub(crate) async fn call<I: Serialize, O: DeserializeOwned>(
    client: &Client,
    operation: &str,
    input: &I,
) -> Result<O, ClientError> {
    client.call(&format!("CodeDeploy_20141006.{operation}"), input).await
}

/// One of Landfall's extension operations by name.
pub(crate) async fn extension<I: Serialize, O: DeserializeOwned>(
    client: &Client,
    operation: &str,
    input: &I,
) -> Result<O, ClientError> {
    client.call(&format!("{}.{operation}", landfall_api::landfall::TARGET_PREFIX), input).await
}

/// Every item of a paginated list call: `input(token)` makes a page's request, `split(page)`
/// gives the page's items and the next token.
pub(crate) async fn list_all<I: Serialize, O: DeserializeOwned>(
    client: &Client,
    operation: &str,
    input: impl Fn(Option<String>) -> I,
    split: impl Fn(O) -> (Option<Vec<String>>, Option<String>),
) -> Result<Vec<String>, ClientError> {
    let mut items = Vec::new();
    let mut next_token = None;
    loop {
        let (page, token) = split(call(client, operation, &input(next_token.take())).await?);
        items.extend(page.unwrap_or_default());
        next_token = token;
        if next_token.is_none() {
            return Ok(items);
        }
    }
}

/// The deployments of `ids` (in batches of 25), newest first.
pub(crate) async fn deployments_newest_first(
    client: &Client,
    ids: &[String],
) -> Result<Vec<DeploymentInfo>, ClientError> {
    let mut deployments = Vec::with_capacity(ids.len());
    for batch in ids.chunks(25) {
        let input = BatchGetDeploymentsInput { deployment_ids: Some(batch.to_vec()) };
        let got: BatchGetDeploymentsOutput = call(client, "BatchGetDeployments", &input).await?;
        deployments.extend(got.deployments_info.unwrap_or_default());
    }
    deployments.sort_by_key(|d| std::cmp::Reverse(d.create_time.map(|t| t.millis())));
    Ok(deployments)
}

/// A deployment and its instance targets, read together.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub deployment: DeploymentInfo,
    pub targets: Vec<InstanceTarget>,
}

impl Snapshot {
    /// The deployment's status as people read it.
    pub fn status(&self) -> &str {
        self.deployment.status.as_ref().map_or("", |s| s.as_str())
    }

    pub fn succeeded(&self) -> bool {
        self.deployment.status == Some(DeploymentStatus::Succeeded)
    }

    pub fn is_over(&self) -> bool {
        self.deployment.status.as_ref().is_some_and(|s| !s.is_active() && s.is_known())
    }
}

/// Batches of at most this many target ids per BatchGetDeploymentTargets call.
const TARGET_BATCH: usize = 25;

pub(crate) async fn snapshot(client: &Client, deployment_id: &str) -> Result<Snapshot, ClientError> {
    let got: GetDeploymentOutput =
        call(client, "GetDeployment", &GetDeploymentInput { deployment_id: Some(deployment_id.into()) }).await?;
    with_targets(client, deployment_id, got.deployment_info.unwrap_or_default()).await
}

/// Deployment `deployment_id`, already read, with its instance targets.
pub(crate) async fn with_targets(
    client: &Client,
    deployment_id: &str,
    deployment: DeploymentInfo,
) -> Result<Snapshot, ClientError> {
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let input = ListDeploymentTargetsInput {
            deployment_id: Some(deployment_id.into()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let page: ListDeploymentTargetsOutput = match call(client, "ListDeploymentTargets", &input).await {
            Ok(page) => page,
            // A deployment whose targets are not resolved yet has none to list.
            Err(ClientError::Api { exception: Some(Exception::DeploymentNotStarted), .. }) => break,
            Err(error) => return Err(error),
        };
        ids.extend(page.target_ids.unwrap_or_default());
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    let mut targets = Vec::with_capacity(ids.len());
    for batch in ids.chunks(TARGET_BATCH) {
        let input = BatchGetDeploymentTargetsInput {
            deployment_id: Some(deployment_id.into()),
            target_ids: Some(batch.to_vec()),
        };
        let got: BatchGetDeploymentTargetsOutput = call(client, "BatchGetDeploymentTargets", &input).await?;
        targets.extend(got.deployment_targets.unwrap_or_default().into_iter().filter_map(|t| t.instance_target));
    }
    targets.sort_by(|a, b| a.target_id.cmp(&b.target_id));
    Ok(Snapshot { deployment, targets })
}
