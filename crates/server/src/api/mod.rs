//! The API handlers, one module per resource, and the dispatch from an operation to its handler.
//! The dispatch `match` is exhaustive over the model's operations: an operation without a
//! handler does not compile.

mod agent_updates;
mod alarms;
mod applications;
pub mod common;
mod deployment_configs;
mod deployment_groups;
pub mod deployments;
mod host_pools;
pub(crate) mod instances;
pub mod join_tokens;
mod journal;
pub mod keys;
mod revisions;
mod tags;
pub(crate) mod target_groups;
pub(crate) mod targets;

use landfall_api::codec::{decode_input, encode_output};
use landfall_api::landfall::LandfallOperation;
use landfall_api::{ApiResult, Operation};

use std::net::SocketAddr;
use std::sync::Arc;

use common::Ctx;
use landfall_api::landfall::{Access, operation_access};

use crate::auth::{Caller, authorize};
use crate::state::AppState;

use crate::audit;

/// One CodeDeploy operation by an authenticated caller (over the API, or from the console):
/// the role checked, the handler called, and a call that changes something (or was refused
/// one) audited.
pub async fn call_codedeploy(
    state: &Arc<AppState>,
    caller: &Caller,
    peer: SocketAddr,
    operation: Operation,
    body: &[u8],
) -> ApiResult<Vec<u8>> {
    let access = operation_access(operation);
    let ctx = Ctx { state, caller, now: state.clock.now() };
    let result = match authorize(state, caller, access, operation.name()) {
        Ok(()) => codedeploy(&ctx, operation, body).await,
        Err(error) => Err(error),
    };
    if access != Access::Read {
        audit::record(
            &*state.store,
            state.clock.now(),
            caller,
            peer,
            operation.name().to_owned(),
            body,
            result.as_ref().map(|_| ()),
        )
        .await;
    }
    result
}

/// Decodes the body into the handler's input type, calls it, encodes its output.
macro_rules! call {
    ($handler:path, $ctx:expr, $body:expr) => {{
        let input = decode_input($body)?;
        let output = $handler($ctx, input).await?;
        Ok(encode_output(&output))
    }};
}

pub async fn codedeploy(ctx: &Ctx<'_>, operation: Operation, body: &[u8]) -> ApiResult<Vec<u8>> {
    let answer = codedeploy_operation(ctx, operation, body).await;
    // What a group selects may have changed: hosts may have joined (crate::fleet).
    let selection_changed = matches!(
        operation,
        Operation::RegisterOnPremisesInstance
            | Operation::AddTagsToOnPremisesInstances
            | Operation::RemoveTagsFromOnPremisesInstances
            | Operation::CreateDeploymentGroup
            | Operation::UpdateDeploymentGroup
    );
    if selection_changed && answer.is_ok() {
        crate::fleet::nudge(ctx.state).await;
    }
    answer
}

async fn codedeploy_operation(ctx: &Ctx<'_>, operation: Operation, body: &[u8]) -> ApiResult<Vec<u8>> {
    use Operation::*;
    match operation {
        CreateApplication => call!(applications::create, ctx, body),
        GetApplication => call!(applications::get, ctx, body),
        BatchGetApplications => call!(applications::batch_get, ctx, body),
        ListApplications => call!(applications::list, ctx, body),
        UpdateApplication => call!(applications::update, ctx, body),
        DeleteApplication => call!(applications::delete, ctx, body),

        CreateDeploymentConfig => call!(deployment_configs::create, ctx, body),
        GetDeploymentConfig => call!(deployment_configs::get, ctx, body),
        ListDeploymentConfigs => call!(deployment_configs::list, ctx, body),
        DeleteDeploymentConfig => call!(deployment_configs::delete, ctx, body),

        CreateDeploymentGroup => call!(deployment_groups::create, ctx, body),
        GetDeploymentGroup => call!(deployment_groups::get, ctx, body),
        BatchGetDeploymentGroups => call!(deployment_groups::batch_get, ctx, body),
        ListDeploymentGroups => call!(deployment_groups::list, ctx, body),
        UpdateDeploymentGroup => call!(deployment_groups::update, ctx, body),
        DeleteDeploymentGroup => call!(deployment_groups::delete, ctx, body),

        RegisterApplicationRevision => call!(revisions::register, ctx, body),
        GetApplicationRevision => call!(revisions::get, ctx, body),
        BatchGetApplicationRevisions => call!(revisions::batch_get, ctx, body),
        ListApplicationRevisions => call!(revisions::list, ctx, body),

        RegisterOnPremisesInstance => call!(instances::register, ctx, body),
        DeregisterOnPremisesInstance => call!(instances::deregister, ctx, body),
        GetOnPremisesInstance => call!(instances::get, ctx, body),
        BatchGetOnPremisesInstances => call!(instances::batch_get, ctx, body),
        ListOnPremisesInstances => call!(instances::list, ctx, body),
        AddTagsToOnPremisesInstances => call!(instances::add_tags, ctx, body),
        RemoveTagsFromOnPremisesInstances => call!(instances::remove_tags, ctx, body),

        TagResource => call!(tags::tag_resource, ctx, body),
        UntagResource => call!(tags::untag_resource, ctx, body),
        ListTagsForResource => call!(tags::list_tags, ctx, body),
        ListGitHubAccountTokenNames => call!(tags::list_github_tokens, ctx, body),
        DeleteGitHubAccountToken => call!(tags::delete_github_token, ctx, body),
        DeleteResourcesByExternalId => call!(tags::delete_by_external_id, ctx, body),

        CreateDeployment => call!(deployments::create, ctx, body),
        GetDeployment => call!(deployments::get, ctx, body),
        BatchGetDeployments => call!(deployments::batch_get, ctx, body),
        ListDeployments => call!(deployments::list, ctx, body),
        StopDeployment => call!(deployments::stop, ctx, body),
        ContinueDeployment => call!(deployments::continue_deployment, ctx, body),
        SkipWaitTimeForInstanceTermination => call!(deployments::skip_wait, ctx, body),
        PutLifecycleEventHookExecutionStatus => call!(deployments::put_hook_status, ctx, body),

        ListDeploymentTargets => call!(targets::list, ctx, body),
        BatchGetDeploymentTargets => call!(targets::batch_get, ctx, body),
        GetDeploymentTarget => call!(targets::get, ctx, body),
        ListDeploymentInstances => call!(targets::list_instances, ctx, body),
        BatchGetDeploymentInstances => call!(targets::batch_get_instances, ctx, body),
        GetDeploymentInstance => call!(targets::get_instance, ctx, body),
    }
}

pub async fn landfall(ctx: &Ctx<'_>, operation: LandfallOperation, body: &[u8]) -> ApiResult<Vec<u8>> {
    let answer = landfall_operation(ctx, operation, body).await;
    // Hosts may have joined a group (crate::fleet).
    let selection_changed = matches!(
        operation,
        LandfallOperation::RegisterInstance | LandfallOperation::CreateHostPool | LandfallOperation::AddHostPoolMembers
    );
    if selection_changed && answer.is_ok() {
        crate::fleet::nudge(ctx.state).await;
    }
    answer
}

async fn landfall_operation(ctx: &Ctx<'_>, operation: LandfallOperation, body: &[u8]) -> ApiResult<Vec<u8>> {
    match operation {
        LandfallOperation::CreateAccessKey => call!(keys::create, ctx, body),
        LandfallOperation::ListAccessKeys => call!(keys::list, ctx, body),
        LandfallOperation::RevokeAccessKey => call!(keys::revoke, ctx, body),
        LandfallOperation::RegisterInstance => call!(instances::register_with_key, ctx, body),
        LandfallOperation::DrainInstance => call!(instances::drain, ctx, body),
        LandfallOperation::GetLifecycleEventLog => call!(targets::event_log, ctx, body),
        LandfallOperation::ListAgentStatus => call!(instances::agent_status, ctx, body),
        LandfallOperation::CreateTargetGroup => call!(target_groups::create, ctx, body),
        LandfallOperation::DeleteTargetGroup => call!(target_groups::delete, ctx, body),
        LandfallOperation::ListTargetGroups => call!(target_groups::list, ctx, body),
        LandfallOperation::RegisterTargets => call!(target_groups::register, ctx, body),
        LandfallOperation::DeregisterTargets => call!(target_groups::deregister, ctx, body),
        LandfallOperation::GetRouterState => call!(target_groups::router_state, ctx, body),
        LandfallOperation::ReportTargetHealth => call!(target_groups::report, ctx, body),
        LandfallOperation::PutAlarm => call!(alarms::put, ctx, body),
        LandfallOperation::DeleteAlarm => call!(alarms::delete, ctx, body),
        LandfallOperation::ListAlarms => call!(alarms::list, ctx, body),
        LandfallOperation::ListDeploymentEvents => call!(journal::deployment_events, ctx, body),
        LandfallOperation::ListAuditRecords => call!(journal::audit_records, ctx, body),
        LandfallOperation::CreateHostPool => call!(host_pools::create, ctx, body),
        LandfallOperation::DeleteHostPool => call!(host_pools::delete, ctx, body),
        LandfallOperation::ListHostPools => call!(host_pools::list, ctx, body),
        LandfallOperation::AddHostPoolMembers => call!(host_pools::add, ctx, body),
        LandfallOperation::RemoveHostPoolMembers => call!(host_pools::remove, ctx, body),
        LandfallOperation::CreateJoinToken => call!(join_tokens::create, ctx, body),
        LandfallOperation::ListJoinTokens => call!(join_tokens::list, ctx, body),
        LandfallOperation::StartAgentUpdate => call!(agent_updates::start, ctx, body),
        LandfallOperation::ListAgentUpdates => call!(agent_updates::list, ctx, body),
    }
}
