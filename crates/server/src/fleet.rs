//! Elastic fleets (semantics reference §5.3, §8.2): a host that joins a deployment group gets the
//! group's current revision without anyone deploying it, as CodeDeploy's Auto Scaling launch
//! deployments do for a freshly launched instance.
//!
//! A host has joined a group when the group selects it (its tags match) and the group has never
//! deployed to it (no history for it). Once its agent has polled, the server holding the `fleet`
//! lease creates a launch deployment for it: the group's target revision (its last successful
//! one), creator `autoscaling`, the launch lifecycle (install, then allow traffic when the group
//! controls traffic, so the host enters its target groups only once installed), not held back by
//! the group's one-deployment-at-a-time rule. Whatever the launch deployment's outcome, the host
//! then has history with the group, so a failed host is not retried in a loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use landfall_api::landfall::DeploymentEventType;
use landfall_api::shapes::{
    ApplicationInfo, ComputePlatform, DeploymentCreator, DeploymentInfo, DeploymentOption, DeploymentStatus,
    DeploymentType, GenericRevisionInfo, InstanceInfo,
};
use landfall_api::validate;
use landfall_engine::lifecycle::{ServerTargetRole, lifecycle_events};
use landfall_engine::{run, selection};
use landfall_store::{DeploymentRecord, GroupRecord, PageRequest, RevisionRecord, StoreResult};

use crate::api::common::new_deployment_id;
use crate::state::AppState;
use crate::{driver, replicas, timeline};

/// How often the groups are looked at for hosts that joined.
const FLEET_TICK: Duration = Duration::from_secs(2);

/// The configuration a launch deployment runs with: it has one host.
const LAUNCH_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// Runs until the server stops: looks for hosts that joined a group, on the `fleet` lease's holder.
pub async fn watch_forever(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(FLEET_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = launch_where_needed(&state).await {
            tracing::warn!(%error, "cannot look for hosts that joined a deployment group");
        }
    }
}

/// One look at every Server deployment group; starts a launch deployment for each host that
/// joined one.
pub async fn launch_where_needed(state: &AppState) -> StoreResult<()> {
    if state.replica.hold(state, replicas::lease::FLEET).await?.is_none() {
        return Ok(());
    }
    let store = state.store.as_ref();
    let instances = store.list_instances().await?;
    let polled: HashSet<String> = store.agent_statuses().await?.into_iter().map(|s| s.instance_name).collect();
    let busy = hosts_in_active_deployments(state).await?;
    for (app, group) in server_groups(state).await? {
        if group.info.target_revision.is_none() {
            continue; // nothing deployed yet: nothing to give a new host
        }
        let selected = selection::select_instances(&group.info, &instances);
        if selected.is_empty() {
            continue;
        }
        let known: HashSet<String> =
            store.instance_history(group.id()).await?.into_iter().map(|h| h.instance_name).collect();
        let engaged = busy.get(group.id());
        for instance in selected {
            let name = instance.instance_name.as_deref().unwrap_or_default();
            if known.contains(name) || !polled.contains(name) || engaged.is_some_and(|hosts| hosts.contains(name)) {
                continue;
            }
            launch(state, &app, &group, instance).await?;
        }
    }
    Ok(())
}

/// Every Server platform deployment group, with its application.
async fn server_groups(state: &AppState) -> StoreResult<Vec<(ApplicationInfo, GroupRecord)>> {
    let store = state.store.as_ref();
    let mut found = Vec::new();
    for name in all_pages(|page| async move { store.list_applications(&page).await }).await? {
        let Some(app) = store.application(&name).await? else { continue };
        if app.compute_platform.clone().unwrap_or(ComputePlatform::Server) != ComputePlatform::Server {
            continue;
        }
        let id = app.application_id.clone().unwrap_or_default();
        for group_name in all_pages(|page| {
            let id = &id;
            async move { store.list_deployment_groups(id, &page).await }
        })
        .await?
        {
            if let Some(group) = store.deployment_group(&id, &group_name).await? {
                found.push((app.clone(), group));
            }
        }
    }
    Ok(found)
}

async fn all_pages<F, Fut>(list: F) -> StoreResult<Vec<String>>
where
    F: Fn(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<landfall_store::Page<String>>>,
{
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let page = list(PageRequest { after, limit: 1000 }).await?;
        names.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(names),
        }
    }
}

/// The hosts each group's active deployments target (a host in one is not new to it yet).
async fn hosts_in_active_deployments(state: &AppState) -> StoreResult<HashMap<String, HashSet<String>>> {
    let mut busy: HashMap<String, HashSet<String>> = HashMap::new();
    for id in state.store.active_deployments().await? {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        let hosts = busy.entry(record.group_id.clone()).or_default();
        hosts.extend(state.store.targets(&id).await?.into_iter().map(|t| t.target_id));
    }
    Ok(busy)
}

/// Creates the launch deployment of the group's target revision to one host.
async fn launch(
    state: &AppState,
    app: &ApplicationInfo,
    group: &GroupRecord,
    instance: &InstanceInfo,
) -> StoreResult<()> {
    let Some(location) = group.info.target_revision.clone() else { return Ok(()) };
    let name = instance.instance_name.clone().unwrap_or_default();
    let now = state.clock.now();
    let id = new_deployment_id();
    let style = group.info.deployment_style.clone().unwrap_or_default();
    let option = style.deployment_option.clone().unwrap_or(DeploymentOption::WithoutTrafficControl);
    let events = lifecycle_events(
        &ComputePlatform::Server,
        &DeploymentType::InPlace,
        &option,
        &DeploymentCreator::Autoscaling,
        ServerTargetRole::Install,
    );
    let target = driver::new_instance_target(&id, &name, instance.instance_arn.clone(), &events, None, 0, now);
    let group_name = group.info.deployment_group_name.clone().unwrap_or_default();
    let info = DeploymentInfo {
        application_name: app.application_name.clone(),
        deployment_group_name: Some(group_name.clone()),
        deployment_config_name: Some(LAUNCH_CONFIG.to_owned()),
        deployment_id: Some(id.clone()),
        previous_revision: None,
        revision: Some(location.clone()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(now),
        deployment_overview: Some(run::overview(std::slice::from_ref(&target.target))),
        description: Some(format!("Launch deployment: {name} joined deployment group {group_name}.")),
        creator: Some(DeploymentCreator::Autoscaling),
        ignore_application_stop_failures: Some(false),
        update_outdated_instances_only: Some(false),
        deployment_style: Some(landfall_api::shapes::DeploymentStyle {
            deployment_type: Some(DeploymentType::InPlace),
            deployment_option: Some(option),
        }),
        instance_termination_wait_time_started: Some(false),
        load_balancer_info: group.info.load_balancer_info.clone(),
        file_exists_behavior: Some(landfall_api::shapes::FileExistsBehavior::Disallow),
        deployment_status_messages: Some(vec![]),
        compute_platform: Some(ComputePlatform::Server),
        auto_rollback_configuration: None,
        ..Default::default()
    };
    let application_id = app.application_id.clone().unwrap_or_default();
    let key = validate::revision_key(&location);
    let revision = match state.store.revision(&application_id, &key).await? {
        Some(registered) => registered,
        None => RevisionRecord {
            application_id: application_id.clone(),
            key,
            location: location.clone(),
            info: GenericRevisionInfo { register_time: Some(now), ..Default::default() },
        },
    };
    let record = DeploymentRecord {
        application_id,
        group_id: group.id().to_owned(),
        exclusive: false,
        info,
        progress: None,
        version: 0,
    };
    state.store.create_deployment(&record, std::slice::from_ref(&target), &revision).await?;
    tracing::info!(deployment = %id, host = %name, group = %group_name, "launch deployment created");
    let note = format!(
        "Created by autoscaling: {name} joined deployment group {group_name}; it gets {}.",
        timeline::describe_revision(&location)
    );
    let entry = timeline::entry(&id, now, DeploymentEventType::Created, note);
    if let Err(error) = state.store.append_deployment_events(&[entry]).await {
        tracing::warn!(deployment = %id, %error, "cannot record the launch deployment's creation");
    }
    driver::reconcile(state, &id).await
}
