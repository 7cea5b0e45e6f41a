//! Deployments: Create, Get, BatchGet, List, Stop, Continue, SkipWaitTimeForInstanceTermination,
//! and the Lambda/ECS hook status call.

use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::landfall::DeploymentEventType;
use landfall_api::shapes::*;
use landfall_api::validate;
use landfall_engine::blue_green::Phase;
use landfall_engine::lifecycle::{ServerTargetRole, lifecycle_events};
use landfall_engine::run::{self, Progress, StopRequest};
use landfall_engine::selection::{self, InstanceHistory, deployment_order};
use landfall_engine::{plan, timeline};
use landfall_store::{CommandState, DeploymentFilter, DeploymentRecord, GroupRecord, StoreError, TargetRecord};

use crate::driver::{self, new_instance_target};

use super::common::{Ctx, default_config_name, new_deployment_id, page_request, page_token, store_error};
use super::revisions::revision_record;

const PAGE: usize = 100;
/// Most instances one deployment may target by default (`landfall server
/// --max-deployment-instances`): what one server on SQLite has been measured to deploy in under
/// a minute (docs/benchmarks.md, "Tens of thousands of hosts"); CodeDeploy's own quota is 1,000.
pub const DEFAULT_MAX_INSTANCES_PER_DEPLOYMENT: usize = 10_000;

/// Loads a deployment by a validated id, or DeploymentDoesNotExistException.
pub async fn load(ctx: &Ctx<'_>, id: &Option<String>) -> ApiResult<DeploymentRecord> {
    let id = validate::deployment_id(id)?;
    match ctx.store().deployment(id).await.map_err(store_error)? {
        Some(record) => Ok(record),
        None => err(Exception::DeploymentDoesNotExist, format!("The deployment {id} could not be found.")),
    }
}

/// The deployment as GetDeployment shows it: inline AppSpec content removed.
fn shown(info: DeploymentInfo) -> DeploymentInfo {
    DeploymentInfo {
        revision: info.revision.as_ref().map(validate::without_content),
        previous_revision: info.previous_revision.as_ref().map(validate::without_content),
        ..info
    }
}

/// The Server targets of a new deployment: the group's instances (in place, or the original
/// fleet of a blue/green deployment) and the replacement fleet named by `targetInstances`.
///
/// Targets are ordered as CodeDeploy takes them (hosts whose last deployment failed first, then
/// new ones, then those on an older revision, then those on this one); with
/// `updateOutdatedInstancesOnly`, hosts already running the revision are left out.
async fn server_targets(
    ctx: &Ctx<'_>,
    deployment_id: &str,
    group: &GroupRecord,
    style: &DeploymentStyle,
    target_instances: Option<&TargetInstances>,
    revision_key: &str,
    outdated_only: bool,
) -> ApiResult<Vec<TargetRecord>> {
    let instances = ctx.store().list_instances().await.map_err(store_error)?;
    let pools = crate::fleet::pool_members(ctx.state).await.map_err(store_error)?;
    let history = ctx.store().instance_history(group.id()).await.map_err(store_error)?;
    let history: std::collections::HashMap<&str, _> = history.iter().map(|h| (h.instance_name.as_str(), h)).collect();
    let history_of = |name: &str| {
        history.get(name).map(|h| InstanceHistory { revision_key: h.revision_key.clone(), healthy: h.healthy })
    };
    let up_to_date = |instance: &InstanceInfo| {
        outdated_only
            && history_of(instance.instance_name.as_deref().unwrap_or_default())
                .is_some_and(|h| h.healthy && h.revision_key.as_deref() == Some(revision_key))
    };
    let target = |instance: &InstanceInfo, events: &[&str], label: Option<TargetLabel>, position: usize| {
        new_instance_target(
            deployment_id,
            instance.instance_name.as_deref().unwrap_or_default(),
            instance.instance_arn.clone(),
            events,
            label,
            position,
            ctx.now,
        )
    };
    let kind = style.deployment_type.clone().unwrap_or(DeploymentType::InPlace);
    let option = style.deployment_option.clone().unwrap_or(DeploymentOption::WithoutTrafficControl);
    let events = |role| lifecycle_events(&ComputePlatform::Server, &kind, &option, &DeploymentCreator::User, role);
    // Only blue/green deployments label their targets: the group's instances are the original
    // (Blue) fleet, those named by targetInstances the replacement (Green) one. In-place targets
    // carry no label, as AWS shows them.
    let (role, label) = if kind == DeploymentType::BlueGreen {
        (ServerTargetRole::Original, Some(TargetLabel::Blue))
    } else {
        (ServerTargetRole::Install, None)
    };
    // The replacement fleet of a blue/green deployment, named by targetInstances; the original
    // fleet is the rest of the group's hosts (so one group selecting both fleets, with
    // targetInstances naming the other one each time, swaps them back and forth).
    let replacement: Vec<&InstanceInfo> = if kind == DeploymentType::BlueGreen {
        let Some(target_instances) = target_instances else {
            return err(
                Exception::InvalidTargetInstances,
                "A blue/green deployment that discovers existing instances needs targetInstances naming the replacement fleet.",
            );
        };
        let replacement = DeploymentGroupInfo {
            ec2_tag_filters: target_instances.tag_filters.clone(),
            ec2_tag_set: target_instances.ec2_tag_set.clone(),
            auto_scaling_groups: target_instances.auto_scaling_groups.as_ref().map(|names| {
                names.iter().map(|name| AutoScalingGroup { name: Some(name.clone()), ..Default::default() }).collect()
            }),
            ..Default::default()
        };
        if let Some(pool) = selection::group_pools(&replacement).find(|pool| !pools.exists(pool)) {
            return err(
                Exception::InvalidAutoScalingGroup,
                format!("targetInstances.autoScalingGroups names '{pool}', which is not a host pool."),
            );
        }
        selection::select_instances(&replacement, &instances, &pools)
    } else {
        Vec::new()
    };
    // A host still in its launch deployment gets this revision from a follow-up once that ends
    // (crate::fleet), rather than two deployments' events at once; a leaving host gets nothing.
    let launching = match kind {
        DeploymentType::BlueGreen => Default::default(),
        _ => crate::fleet::hosts_joining_or_leaving(ctx.state, group.id()).await.map_err(store_error)?,
    };
    let selected: Vec<&InstanceInfo> = selection::select_instances(&group.info, &instances, &pools)
        .into_iter()
        .filter(|i| !up_to_date(i) && !replacement.iter().any(|r| r.instance_name == i.instance_name))
        .filter(|i| !launching.contains(i.instance_name.as_deref().unwrap_or_default()))
        .collect();
    let mut role_events = events(role);
    if kind == DeploymentType::BlueGreen
        && plan::terminates_original_hosts(group.info.blue_green_deployment_configuration.as_ref())
    {
        // Landfall cannot terminate a server it does not own: it takes the original hosts out of
        // service instead, their applications stopped (the event shows how that went).
        role_events.push("ApplicationStop");
    }
    let mut targets: Vec<TargetRecord> = deployment_order(selected, history_of, revision_key)
        .into_iter()
        .enumerate()
        .map(|(position, instance)| target(instance, &role_events, label.clone(), position))
        .collect();
    let install = events(ServerTargetRole::Install);
    for instance in replacement {
        let position = targets.len();
        targets.push(target(instance, &install, Some(TargetLabel::Green), position));
    }
    let limit = ctx.state.max_deployment_instances;
    if targets.len() > limit {
        return err(
            Exception::InvalidTargetInstances,
            format!(
                "The deployment would target {} instances; at most {limit} are allowed (landfall server --max-deployment-instances).",
                targets.len()
            ),
        );
    }
    Ok(targets)
}

pub async fn create(ctx: &Ctx<'_>, input: CreateDeploymentInput) -> ApiResult<CreateDeploymentOutput> {
    let app_name = validate::application_name(&input.application_name)?.to_owned();
    let group_name = validate::deployment_group_name(&input.deployment_group_name, "deploymentGroupName")?.to_owned();
    let revision = validate::required(&input.revision, Exception::RevisionRequired, "revision")?;
    if let Some(name) = input.deployment_config_name.as_deref().filter(|name| !name.is_empty()) {
        validate::resource_name(name, Exception::InvalidDeploymentConfigName, "deploymentConfigName")?;
    }
    let (app, group) = ctx.application_and_group(&app_name, &group_name).await?;
    let platform = app.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    let style = group.info.deployment_style.clone().unwrap_or_default();
    let group_type = style.deployment_type.clone().unwrap_or(DeploymentType::InPlace);
    validate::create_deployment(&input, &platform, &group_type)?;
    let location = validate::revision_location(revision, &platform)?;
    // Configuration precedence: the request's, the group's, the platform default.
    let config_name = input
        .deployment_config_name
        .clone()
        .filter(|name| !name.is_empty())
        .or_else(|| group.info.deployment_config_name.clone())
        .unwrap_or_else(|| default_config_name(&platform).to_owned());
    ctx.deployment_config_for(&config_name, &platform).await?;

    let id = new_deployment_id();
    let revision_key = validate::revision_key(&location);
    let outdated_only = input.update_outdated_instances_only == Some(true);
    // A Lambda or ECS AppSpec is read now (and kept with the deployment), so a bad one is
    // refused rather than failing later.
    let prepared = crate::platform::prepare(ctx.state, &platform, &location, &group.info, &id, ctx.now)
        .await
        .map_err(|message| ApiError::new(Exception::InvalidRevision, message))?;
    let (targets, appspec) = match prepared {
        Some(prepared) => (prepared.targets, Some(prepared.appspec)),
        None => {
            let targets =
                server_targets(ctx, &id, &group, &style, input.target_instances.as_ref(), &revision_key, outdated_only)
                    .await?;
            (targets, None)
        }
    };
    let blue_green = group_type == DeploymentType::BlueGreen;
    let info = DeploymentInfo {
        application_name: Some(app_name.clone()),
        deployment_group_name: Some(group_name.clone()),
        deployment_config_name: Some(config_name),
        deployment_id: Some(id.clone()),
        previous_revision: group.info.target_revision.clone(),
        revision: Some(location.clone()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(ctx.now),
        deployment_overview: Some(run::overview(&targets.iter().map(|t| t.target.clone()).collect::<Vec<_>>())),
        description: input.description.clone(),
        creator: Some(DeploymentCreator::User),
        ignore_application_stop_failures: Some(input.ignore_application_stop_failures.unwrap_or(false)),
        auto_rollback_configuration: input
            .auto_rollback_configuration
            .clone()
            .or_else(|| group.info.auto_rollback_configuration.clone()),
        update_outdated_instances_only: Some(input.update_outdated_instances_only.unwrap_or(false)),
        deployment_style: Some(style.clone()),
        target_instances: input.target_instances.clone(),
        instance_termination_wait_time_started: Some(false),
        blue_green_deployment_configuration: if blue_green {
            group.info.blue_green_deployment_configuration.clone()
        } else {
            None
        },
        load_balancer_info: group.info.load_balancer_info.clone(),
        file_exists_behavior: (platform == ComputePlatform::Server)
            .then(|| input.file_exists_behavior.clone().unwrap_or(FileExistsBehavior::Disallow)),
        deployment_status_messages: Some(vec![]),
        compute_platform: Some(platform),
        override_alarm_configuration: input.override_alarm_configuration.clone(),
        ..Default::default()
    };
    let record = DeploymentRecord {
        application_id: app.application_id.clone().unwrap_or_default(),
        group_id: group.id().to_owned(),
        exclusive: true,
        info,
        progress: Progress { appspec, ..Default::default() },
        version: 0,
    };
    // Registered with the deployment, in one step, if the application does not have it yet.
    let description = format!("Application revision registered by Deployment ID: {id}");
    let revision = revision_record(ctx, &app, &location, Some(description));
    match ctx.store().create_deployment(&record, &targets, &revision).await {
        Err(StoreError::ActiveDeployment(active)) => {
            return err(
                Exception::DeploymentLimitExceeded,
                format!("The Deployment Group '{group_name}' already has an active Deployment '{active}'"),
            );
        }
        other => other.map_err(store_error)?,
    }
    let note = format!("Created by {} to deploy {}.", ctx.caller.access_key_id, timeline::describe_revision(&location));
    note_in_timeline(ctx, &id, DeploymentEventType::Created, note).await;
    // The engine takes it up at once rather than on the next tick.
    driver::reconcile_soon(ctx.state, &id);
    Ok(CreateDeploymentOutput { deployment_id: Some(id) })
}

pub async fn get(ctx: &Ctx<'_>, input: GetDeploymentInput) -> ApiResult<GetDeploymentOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    Ok(GetDeploymentOutput { deployment_info: Some(shown(record.info)) })
}

/// Unknown ids are left out of the answer, as AWS does.
pub async fn batch_get(ctx: &Ctx<'_>, input: BatchGetDeploymentsInput) -> ApiResult<BatchGetDeploymentsOutput> {
    let ids = validate::batch(&input.deployment_ids, 25, Exception::DeploymentIdRequired, "deploymentIds")?;
    let mut found = Vec::new();
    for id in ids {
        let id = Some(id.clone());
        let id = validate::deployment_id(&id)?;
        if let Some(record) = ctx.store().deployment(id).await.map_err(store_error)? {
            found.push(shown(record.info));
        }
    }
    Ok(BatchGetDeploymentsOutput { deployments_info: Some(found) })
}

pub async fn list(ctx: &Ctx<'_>, input: ListDeploymentsInput) -> ApiResult<ListDeploymentsOutput> {
    let app_name = input.application_name.as_deref().filter(|name| !name.is_empty());
    let group_name = input.deployment_group_name.as_deref().filter(|name| !name.is_empty());
    let mut filter = DeploymentFilter::default();
    match (app_name, group_name) {
        (Some(_), None) => {
            return err(
                Exception::DeploymentGroupNameRequired,
                "deploymentGroupName is required with applicationName.",
            );
        }
        (None, Some(_)) => {
            return err(Exception::ApplicationNameRequired, "applicationName is required with deploymentGroupName.");
        }
        (Some(app_name), Some(group_name)) => {
            validate::resource_name(app_name, Exception::InvalidApplicationName, "applicationName")?;
            validate::resource_name(group_name, Exception::InvalidDeploymentGroupName, "deploymentGroupName")?;
            let (_, group) = ctx.application_and_group(app_name, group_name).await?;
            filter.group_id = Some(group.id().to_owned());
        }
        (None, None) => {}
    }
    for status in input.include_only_statuses.as_deref().unwrap_or_default() {
        validate::known(status, Exception::InvalidDeploymentStatus, "includeOnlyStatuses")?;
        filter.statuses.push(status.as_str().to_owned());
    }
    if let Some(range) = &input.create_time_range {
        if let (Some(start), Some(end)) = (range.start, range.end)
            && start > end
        {
            return err(Exception::InvalidTimeRange, "createTimeRange.start is after createTimeRange.end.");
        }
        filter.created_from = range.start;
        filter.created_to = range.end;
    }
    if let Some(external_id) = &input.external_id {
        if external_id.is_empty() || external_id.len() > 512 {
            return err(Exception::InvalidExternalId, "externalId must be 1 to 512 characters long.");
        }
        filter.external_id = Some(external_id.clone());
    }
    let page = page_request("deployments", &input.next_token, PAGE)?;
    let page = ctx.store().list_deployments(&filter, &page).await.map_err(store_error)?;
    Ok(ListDeploymentsOutput { deployments: Some(page.items), next_token: page_token("deployments", page.next) })
}

/// Stops a deployment: nothing more is sent to its hosts, targets that had not started are
/// Skipped, and it becomes Stopped once the events running on hosts finish (the answer says
/// Pending until then). `autoRollbackEnabled` (or the deployment's DEPLOYMENT_STOP_ON_REQUEST)
/// rolls it back afterwards.
pub async fn stop(ctx: &Ctx<'_>, input: StopDeploymentInput) -> ApiResult<StopDeploymentOutput> {
    let id = validate::deployment_id(&input.deployment_id)?.to_owned();
    let rollback = input.auto_rollback_enabled == Some(true);
    let note =
        format!("Stop requested by {}{}.", ctx.caller.access_key_id, if rollback { ", with rollback" } else { "" });
    let now = driver::change_progress(ctx.state, &id, |record, progress| {
        if record.info.status.as_ref().is_some_and(DeploymentStatus::is_over) {
            return err(Exception::DeploymentAlreadyCompleted, format!("The deployment {id} has already completed."));
        }
        let rollback = rollback || progress.stop.as_ref().is_some_and(|s| s.rollback);
        progress.stop = Some(StopRequest::by_user(rollback));
        Ok(())
    })
    .await?;
    note_in_timeline(ctx, &id, DeploymentEventType::StopRequested, note).await;
    Ok(if now.info.status.as_ref().is_some_and(DeploymentStatus::is_over) {
        StopDeploymentOutput {
            status: Some(StopStatus::Succeeded),
            status_message: Some("No more commands will be scheduled for execution in the deployment instances".into()),
        }
    } else {
        StopDeploymentOutput {
            status: Some(StopStatus::Pending),
            status_message: Some(
                "No more commands will be scheduled; lifecycle events already running on instances will finish first"
                    .into(),
            ),
        }
    })
}

/// Adds an entry to a deployment's timeline; a failure to is logged, not answered (the change
/// it tells of is made).
async fn note_in_timeline(ctx: &Ctx<'_>, id: &str, event_type: DeploymentEventType, message: String) {
    let entry = timeline::entry(id, ctx.state.clock.now(), event_type, message);
    if let Err(error) = ctx.store().append_deployment_events(&[entry]).await {
        tracing::warn!(deployment = id, %error, "cannot add to the deployment's timeline");
    }
}

/// Checks that a deployment can be continued: active, blue/green.
fn blue_green_in_progress(record: &DeploymentRecord) -> ApiResult<()> {
    if record.info.status.as_ref().is_some_and(DeploymentStatus::is_over) {
        return err(
            Exception::DeploymentAlreadyCompleted,
            format!("The deployment {} has already completed.", record.id()),
        );
    }
    if !plan::is_blue_green(&record.info) {
        return err(
            Exception::UnsupportedActionForDeploymentType,
            format!("The deployment {} is not a blue/green deployment.", record.id()),
        );
    }
    Ok(())
}

/// Ends a blue/green deployment's ready wait (it reroutes traffic) or its termination wait (its
/// original hosts are taken out of service now).
pub async fn continue_deployment(ctx: &Ctx<'_>, input: ContinueDeploymentInput) -> ApiResult<()> {
    let wait = input.deployment_wait_type.clone().unwrap_or(DeploymentWaitType::ReadyWait);
    validate::known(&wait, Exception::InvalidDeploymentWaitType, "deploymentWaitType")?;
    let id = validate::deployment_id(&input.deployment_id)?;
    let note = format!("{} ended by {} (ContinueDeployment).", wait.as_str(), ctx.caller.access_key_id);
    driver::change_progress(ctx.state, id, |record, progress| match wait {
        DeploymentWaitType::ReadyWait => {
            blue_green_in_progress(record)?;
            if record.info.status != Some(DeploymentStatus::Ready) {
                return err(
                    Exception::DeploymentIsNotInReadyState,
                    format!("The deployment {} is not in the Ready state.", record.id()),
                );
            }
            progress.continue_ready = true;
            Ok(())
        }
        _ => end_termination_wait(
            record,
            progress,
            Exception::InvalidDeploymentStatus,
            "Termination wait ended by ContinueDeployment",
        ),
    })
    .await?;
    note_in_timeline(ctx, id, DeploymentEventType::ContinueRequested, note).await;
    Ok(())
}

pub async fn skip_wait(ctx: &Ctx<'_>, input: SkipWaitTimeForInstanceTerminationInput) -> ApiResult<()> {
    let id = validate::deployment_id(&input.deployment_id)?;
    driver::change_progress(ctx.state, id, |record, progress| {
        end_termination_wait(record, progress, Exception::DeploymentNotStarted, "Termination wait skipped")
    })
    .await?;
    let note =
        format!("Termination wait skipped by {} (SkipWaitTimeForInstanceTermination).", ctx.caller.access_key_id);
    note_in_timeline(ctx, id, DeploymentEventType::ContinueRequested, note).await;
    Ok(())
}

fn end_termination_wait(
    record: &mut DeploymentRecord,
    progress: &mut Progress,
    not_waiting: Exception,
    message: &str,
) -> ApiResult<()> {
    blue_green_in_progress(record)?;
    let waiting = progress.blue_green.as_ref().is_some_and(|b| b.phase == Phase::TerminationWait);
    if record.info.instance_termination_wait_time_started != Some(true) || !waiting {
        return err(
            not_waiting,
            format!("The deployment {} is not waiting to take its original instances out of service.", record.id()),
        );
    }
    progress.end_termination_wait = true;
    record.info.deployment_status_messages.get_or_insert_with(Vec::new).push(message.into());
    Ok(())
}

/// Hooks report through this call only for Lambda and ECS deployments, and only for hook
/// executions the deployment invoked.
pub async fn put_hook_status(
    ctx: &Ctx<'_>,
    input: PutLifecycleEventHookExecutionStatusInput,
) -> ApiResult<PutLifecycleEventHookExecutionStatusOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    if record.info.compute_platform.clone().unwrap_or(ComputePlatform::Server) == ComputePlatform::Server {
        return err(
            Exception::UnsupportedActionForDeploymentType,
            "Lifecycle hook status is reported only for Lambda and ECS deployments.",
        );
    }
    match &input.status {
        Some(LifecycleEventStatus::Succeeded | LifecycleEventStatus::Failed) => {}
        other => {
            return err(
                Exception::InvalidLifecycleEventHookExecutionStatus,
                format!(
                    "status must be Succeeded or Failed, not {}.",
                    other.as_ref().map(|s| s.as_str()).unwrap_or("missing")
                ),
            );
        }
    }
    // The execution id is the id of the command the hook was invoked for.
    let execution = input.lifecycle_event_hook_execution_id.as_deref().unwrap_or("");
    let unknown = || {
        err(
            Exception::InvalidLifecycleEventHookExecutionId,
            format!("Deployment {} has no lifecycle hook execution with id '{execution}'.", record.id()),
        )
    };
    let Some(command) = ctx.store().command(execution).await.map_err(store_error)? else {
        return unknown();
    };
    // Install, AllowTestTraffic, AllowTraffic are the server's own work, not hooks.
    let hook_event = !landfall_engine::lifecycle::RESERVED_EVENTS.contains(&command.lifecycle_event.as_str());
    if command.deployment_id != record.id() || !hook_event || command.acknowledged_at.is_none() {
        return unknown();
    }
    if command.state != CommandState::Dispatched {
        return err(
            Exception::LifecycleEventAlreadyCompleted,
            format!("The lifecycle hook execution {execution} has already reported {}.", command.state.as_str()),
        );
    }
    let succeeded = input.status == Some(LifecycleEventStatus::Succeeded);
    let message = format!("The hook reported {}.", if succeeded { "Succeeded" } else { "Failed" });
    crate::server_events::complete_on_server(ctx.state, &command, succeeded, message).await;
    driver::reconcile(ctx.state, record.id()).await.map_err(store_error)?;
    Ok(PutLifecycleEventHookExecutionStatusOutput { lifecycle_event_hook_execution_id: Some(execution.to_owned()) })
}
