//! Elastic fleets (semantics reference §5.3, §8.2): hosts that join a deployment group get the
//! group's current revision without anyone deploying it, as CodeDeploy's Auto Scaling launch
//! deployments do for freshly launched instances, and hosts that missed a deployment while they
//! joined are brought up to date after it.
//!
//! A host has joined a group when the group selects it (its tags match, or it is in a host pool
//! the group's `autoScalingGroups` names) and the group has never deployed to it (no history for
//! it). Once its agent has polled, the server holding the `fleet` lease creates a launch
//! deployment for it: the group's target revision (its last successful one), creator
//! `autoscaling`, the launch lifecycle (install, then allow traffic when the group controls
//! traffic, so the host enters its target groups only once installed), not held back by the
//! group's one-deployment-at-a-time rule. Whatever its outcome, the host then has history with
//! the group, so a failed host is not retried in a loop.
//!
//! A host still on the revision its launch deployment gave it after the group moved to another
//! one is outdated: it joined while a deployment ran (and got the revision before it), or that
//! deployment passed it by while its launch deployment ran. When nothing else runs in the group,
//! `outdatedInstancesStrategy` UPDATE starts a follow-up deployment of the target revision to
//! those hosts (creator `CodeDeployAutoUpdate`, linked to the deployment that set the revision
//! through `relatedDeployments`); IGNORE leaves them and says so in that deployment's timeline.
//! Blue/green groups get neither: their idle hosts are the next replacement fleet, and their
//! original fleet keeps its revision on purpose.
//!
//! A host that leaves ([`depart`]: `landfall instance drain`, or a deregistration a group with
//! terminationHookEnabled asks to wait) first runs a termination deployment in each group that
//! deployed to it, and is deregistered when they end or run out of time. The departure is
//! recorded, so it survives a restart: the lease holder starts each termination deployment once
//! no deployment of that group runs on the host any more, and deregisters the host once no
//! deployment at all does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::landfall::DeploymentEventType;
use landfall_api::shapes::{
    ApplicationInfo, ComputePlatform, DeploymentCreator, DeploymentInfo, DeploymentOption, DeploymentStatus,
    DeploymentStyle, DeploymentType, FileExistsBehavior, GenericRevisionInfo, InstanceInfo, OutdatedInstancesStrategy,
    RelatedDeployments, RevisionLocation,
};
use landfall_api::validate;
use landfall_engine::fleet::{self, ActiveDeployment, GroupActivity, HostNeed, LeavingHost, TerminationStep};
use landfall_engine::lifecycle::{ServerTargetRole, lifecycle_events};
use landfall_engine::run::StopRequest;
use landfall_engine::timeline;
use landfall_engine::{run, selection};
use landfall_store::{
    CommandState, DepartureRecord, DeploymentFilter, DeploymentRecord, GroupRecord, PageRequest, RevisionRecord,
    StoreError, StoreResult, TargetRecord,
};

use crate::ids::new_deployment_id;
use crate::log_limit::LogLimit;
use crate::state::AppState;
use crate::{driver, replicas};

/// How often overdue termination deployments are looked for.
const FLEET_TICK: Duration = Duration::from_secs(2);

/// How long the groups go without a look when nothing says they changed (a safety net for a
/// lost notice; the work is reading every instance, so not every tick).
const FULL_PASS: Duration = Duration::from_secs(30);

/// The configuration launch and termination deployments run with: each has one host, which a
/// group's own configuration may not allow (a minimum of 15 healthy hosts fails one host at once).
const ONE_HOST_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// Says that hosts may have joined or left a group (an instance registered or retagged, a
/// group's selection changed, an agent's first poll, a deployment's end): the fleet lease's
/// holder, here or on another replica, looks again.
pub async fn nudge(state: &AppState) {
    replicas::wake_fleet(state).await;
}

/// Runs until the server stops: on the `fleet` lease's holder, looks at the groups when nudged
/// (or every [`FULL_PASS`]), and for overdue termination deployments every tick.
pub async fn watch_forever(state: Arc<AppState>) {
    let mut last_pass: Option<tokio::time::Instant> = None;
    loop {
        let nudged = tokio::time::timeout(FLEET_TICK, state.fleet_changed.notified()).await.is_ok();
        let due = nudged || last_pass.is_none_or(|at| at.elapsed() >= FULL_PASS);
        if let Err(error) = tend(&state, due).await {
            // Nudged by every agent's first poll, it may fail many times a second in an outage.
            static FAILED_LOOKS: LogLimit = LogLimit::new();
            if let Some(held_back) = FAILED_LOOKS.allow() {
                tracing::warn!(%error, held_back, "cannot look for hosts that joined or left a deployment group");
            }
        }
        if due {
            last_pass = Some(tokio::time::Instant::now());
        }
    }
}

/// On the `fleet` lease's holder: stops overdue termination deployments, and (`groups`) looks
/// at every group.
async fn tend(state: &AppState, groups: bool) -> StoreResult<()> {
    if state.replica.hold(replicas::lease::FLEET).await?.is_none() {
        return Ok(());
    }
    let _working = state.fleet_work.lock().await;
    stop_overdue_terminations(state).await?;
    if !groups {
        return Ok(());
    }
    let nudges = state.metrics.fleet_nudges.load(Ordering::SeqCst);
    advance_departures(state).await?;
    launch_where_needed(state).await?;
    state.metrics.fleet_looked_after_nudges.fetch_max(nudges, Ordering::SeqCst);
    Ok(())
}

/// One look at every Server deployment group: a launch deployment for each host that joined
/// one, a follow-up (or a note) for the hosts a deployment missed.
async fn launch_where_needed(state: &AppState) -> StoreResult<()> {
    // Only in-place groups that have deployed have something to give (a blue/green group's idle
    // hosts are its next replacement fleet: the deployment's); without one, nothing else is read.
    let groups: Vec<(ApplicationInfo, GroupRecord, RevisionLocation)> = server_groups(state)
        .await?
        .into_iter()
        .filter(|(_, group)| !is_blue_green(group))
        .filter_map(|(app, group)| {
            let revision = group.info.target_revision.clone()?;
            Some((app, group, revision))
        })
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let store = state.store.as_ref();
    let instances = store.list_instances().await?;
    let pools = pool_members(state).await?;
    let polled: HashSet<String> = store.agent_statuses().await?.into_iter().map(|s| s.instance_name).collect();
    let leaving: HashSet<String> = store.departures().await?.into_iter().map(|d| d.instance_name).collect();
    let activity = activity_by_group(state, None).await?;
    let idle = GroupActivity::default();
    for (app, group, location) in groups {
        let key = validate::revision_key(&location);
        let active = activity.get(group.id()).unwrap_or(&idle);
        let history: HashMap<String, (Option<String>, bool)> = store
            .instance_history(group.id())
            .await?
            .into_iter()
            .map(|h| (h.instance_name, (h.revision_key, h.healthy)))
            .collect();
        let launched = launched_revisions(state, &group).await?;
        let mut outdated = Vec::new();
        for instance in selection::select_instances(&group.info, &instances, &pools) {
            let name = instance.instance_name.as_deref().unwrap_or_default();
            let host = fleet::SelectedHost {
                polled: polled.contains(name),
                in_a_deployment: active.hosts.contains(name),
                leaving: leaving.contains(name),
                history: history.get(name).map(|(installed, healthy)| (installed.as_deref(), *healthy)),
                launched: launched.get(name),
            };
            match fleet::host_need(&host, &key) {
                HostNeed::Launch => {
                    let description =
                        format!("Launch deployment: {name} joined deployment group {}.", group_name(&group));
                    let plan =
                        Plan { creator: DeploymentCreator::Autoscaling, exclusive: false, description, root: None };
                    start(state, &app, &group, &[instance], plan).await?;
                }
                HostNeed::Outdated => outdated.push(instance),
                HostNeed::Nothing => {}
            }
        }
        if !outdated.is_empty() && !active.exclusive {
            bring_up_to_date(state, &app, &group, &outdated).await?;
        }
    }
    Ok(())
}

/// The revisions the group's recent successful launch deployments gave each host. A host still
/// on one of them after the group moved to another revision missed that deployment; a host that
/// is behind for another reason (a deployment that failed part of the way) is not brought along.
async fn launched_revisions(state: &AppState, group: &GroupRecord) -> StoreResult<HashMap<String, HashSet<String>>> {
    let filter = DeploymentFilter {
        group_id: Some(group.id().to_owned()),
        statuses: vec![DeploymentStatus::Succeeded.as_str().to_owned()],
        ..Default::default()
    };
    let mut launched: HashMap<String, HashSet<String>> = HashMap::new();
    for id in state.store.list_deployments(&filter, &PageRequest { after: None, limit: 100 }).await?.items {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        let (Some(DeploymentCreator::Autoscaling), Some(revision)) = (&record.info.creator, &record.info.revision)
        else {
            continue;
        };
        for target in state.store.targets(&id).await? {
            launched.entry(target.target_id).or_default().insert(validate::revision_key(revision));
        }
    }
    Ok(launched)
}

fn group_name(group: &GroupRecord) -> &str {
    group.info.deployment_group_name.as_deref().unwrap_or_default()
}

/// What runs in each group (only in `only`, if given).
async fn activity_by_group(state: &AppState, only: Option<&str>) -> StoreResult<HashMap<String, GroupActivity>> {
    let mut active = Vec::new();
    for id in state.store.active_deployments().await? {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        if only.is_some_and(|group_id| group_id != record.group_id) {
            continue;
        }
        let targets = state.store.targets(&id).await?;
        active.push(ActiveDeployment {
            targets: targets
                .into_iter()
                .map(|t| {
                    let status = t.target.instance_target.as_ref().and_then(|i| i.status.clone());
                    (t.target_id, status)
                })
                .collect(),
            id,
            group_id: record.group_id,
            exclusive: record.exclusive,
            creator: record.info.creator,
        });
    }
    Ok(fleet::activity_by_group(&active))
}

/// Why a host leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// `landfall instance drain`: every group that deployed to it runs a termination deployment.
    Drained,
    /// DeregisterOnPremisesInstance: only groups with terminationHookEnabled do.
    Deregistered,
}

/// Where a leaving host stands.
#[derive(Debug, Default)]
pub struct Departing {
    /// Termination deployments started now.
    pub started: Vec<String>,
    /// Deployments still running on the host, which its termination deployments or its
    /// deregistration wait for.
    pub waiting_for: Vec<String>,
    /// It has left (deregistered).
    pub left: bool,
}

/// A host leaves its deployment groups: a termination deployment (creator
/// `autoscalingTermination`: BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic, ApplicationStop)
/// in each group that deployed to it and selects it, then deregistration when they are over, or at
/// once when there are none. The departure is recorded first; on a replica that does not tend
/// the fleet, the one that does is told and takes it from there.
pub async fn depart(state: &AppState, name: &str, why: Departure) -> StoreResult<Departing> {
    let gone = Departing { left: true, ..Default::default() };
    let Some(instance) = state.store.instance(name).await?.filter(|i| i.deregister_time.is_none()) else {
        return Ok(gone);
    };
    if why == Departure::Deregistered {
        // With no group to stop it first, a deregistration is immediate (as in CodeDeploy),
        // whichever replica takes it.
        let pools = pool_members(state).await?;
        let mut stopped_by_a_group = false;
        for (_, group) in server_groups(state).await? {
            if stops_host(state, &group, &instance, false, &pools).await? {
                stopped_by_a_group = true;
                break;
            }
        }
        if !stopped_by_a_group {
            deregister_now(state, name).await?;
            return Ok(gone);
        }
    }
    let departure = DepartureRecord {
        instance_name: name.to_owned(),
        drained: why == Departure::Drained,
        requested_at: state.clock.now(),
    };
    state.store.put_departure(&departure).await?;
    if state.replica.hold(replicas::lease::FLEET).await?.is_none() {
        nudge(state).await;
        return Ok(Departing::default());
    }
    let _working = state.fleet_work.lock().await;
    // An earlier request for the host keeps its time (its termination deployments count).
    let departure = state.store.departures().await?.into_iter().find(|d| d.instance_name == name).unwrap_or(departure);
    advance(state, &FleetView::read(state).await?, &departure).await
}

/// Deregisters an instance now: it leaves every group's selection, and its agent keys stop
/// working at once.
pub async fn deregister_now(state: &AppState, name: &str) -> StoreResult<()> {
    let now = state.clock.now();
    if let Some(mut instance) = state.store.instance(name).await?
        && instance.deregister_time.is_none()
    {
        instance.deregister_time = Some(now);
        state.store.update_instance(&instance).await?;
    }
    state.store.leave_host_pools(name).await?;
    state.store.delete_departure(name).await?;
    state.instances.forget(name);
    for key in state.store.revoke_instance_keys(name, now).await? {
        state.keys.forget(&key);
    }
    Ok(())
}

/// What a look at departures reads once.
struct FleetView {
    groups: Vec<(ApplicationInfo, GroupRecord)>,
    activity: HashMap<String, GroupActivity>,
    pools: selection::PoolMembers,
}

impl FleetView {
    async fn read(state: &AppState) -> StoreResult<FleetView> {
        Ok(FleetView {
            groups: server_groups(state).await?,
            activity: activity_by_group(state, None).await?,
            pools: pool_members(state).await?,
        })
    }
}

/// Takes every recorded departure a step further (a deployment that ended may have been what
/// one waited for; a server that stopped may have left one half done).
async fn advance_departures(state: &AppState) -> StoreResult<()> {
    let departures = state.store.departures().await?;
    if departures.is_empty() {
        return Ok(());
    }
    let view = FleetView::read(state).await?;
    for departure in &departures {
        advance(state, &view, departure).await?;
    }
    Ok(())
}

/// Starts the termination deployments a departure still needs and can start now, or
/// deregisters the host when none is left to run or wait for.
async fn advance(state: &AppState, view: &FleetView, departure: &DepartureRecord) -> StoreResult<Departing> {
    let name = departure.instance_name.as_str();
    let mut progress = Departing::default();
    let Some(instance) = state.store.instance(name).await?.filter(|i| i.deregister_time.is_none()) else {
        state.store.delete_departure(name).await?;
        progress.left = true;
        return Ok(progress);
    };
    let mut pending = false;
    // A drain, or a deregistration a group must stop the host for, is graceful: the host leaves
    // no deployment half done. A plain deregistration is immediate, as in CodeDeploy.
    let mut graceful = departure.drained;
    for (app, group) in &view.groups {
        if !stops_host(state, group, &instance, departure.drained, &view.pools).await? {
            continue;
        }
        graceful = true;
        let activity = view.activity.get(group.id());
        // Since its registration rather than since the request: the deployment is created on the
        // fleet lease's holder, whose clock may run behind the replica that took the request.
        let registered = instance.register_time.unwrap_or(departure.requested_at);
        let host = LeavingHost {
            terminating: activity.is_some_and(|a| a.terminating.contains(name)),
            terminated: terminated_since(state, group, name, registered).await?,
            busy_with: activity.and_then(|a| a.busy.get(name)).map_or(&[], Vec::as_slice),
        };
        match fleet::termination_step(&host) {
            TerminationStep::Done => continue,
            TerminationStep::Wait(running) => {
                pending = true;
                progress.waiting_for.extend(running);
                continue;
            }
            TerminationStep::Start => {}
        }
        let description = format!("Termination deployment: {name} leaves deployment group {}.", group_name(group));
        let plan =
            Plan { creator: DeploymentCreator::AutoscalingTermination, exclusive: false, description, root: None };
        if let Some(id) = start(state, app, group, &[&instance], plan).await? {
            progress.started.push(id);
            pending = true;
        }
    }
    if !pending {
        // Nor does it leave under any deployment with work on it.
        let running: Vec<String> = match graceful {
            true => view.activity.values().filter_map(|a| a.busy.get(name)).flatten().cloned().collect(),
            false => Vec::new(),
        };
        if running.is_empty() {
            let asked_ms = state.clock.now().millis() - departure.requested_at.millis();
            tracing::info!(host = name, asked_ms, "the host left: deregistered");
            deregister_now(state, name).await?;
            progress.left = true;
        }
        progress.waiting_for.extend(running);
    }
    progress.waiting_for.sort();
    progress.waiting_for.dedup();
    Ok(progress)
}

/// Whether `group` runs a termination deployment on a leaving host: it deployed to the host and
/// selects it, and the host is drained or the group has terminationHookEnabled.
async fn stops_host(
    state: &AppState,
    group: &GroupRecord,
    instance: &InstanceInfo,
    drained: bool,
    pools: &selection::PoolMembers,
) -> StoreResult<bool> {
    let selects = !selection::select_instances(&group.info, std::slice::from_ref(instance), pools).is_empty();
    // The history is read only when the rest would stop the host.
    if !fleet::stops_host(&group.info, selects, true, drained) {
        return Ok(false);
    }
    let name = instance.instance_name.as_deref().unwrap_or_default();
    let deployed_to = state.store.instance_history(group.id()).await?.iter().any(|h| h.instance_name == name);
    Ok(fleet::stops_host(&group.info, selects, deployed_to, drained))
}

/// Whether a termination deployment of `group` has run on the host since `since` (its
/// registration: a host has one departure per registration, which ends it).
async fn terminated_since(state: &AppState, group: &GroupRecord, host: &str, since: Timestamp) -> StoreResult<bool> {
    let filter =
        DeploymentFilter { group_id: Some(group.id().to_owned()), created_from: Some(since), ..Default::default() };
    for id in state.store.list_deployments(&filter, &PageRequest { after: None, limit: 100 }).await?.items {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        if record.info.creator == Some(DeploymentCreator::AutoscalingTermination)
            && state.store.targets(&id).await?.iter().any(|t| t.target_id == host)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stops termination deployments that have run longer than the server allows: the host leaves
/// anyway.
async fn stop_overdue_terminations(state: &AppState) -> StoreResult<()> {
    let limit = state.termination_timeout.as_millis() as i64;
    let now = state.clock.now().millis();
    for id in state.store.active_deployments().await? {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        let started = record.info.create_time.map_or(now, |t| t.millis());
        if record.info.creator != Some(DeploymentCreator::AutoscalingTermination) || now - started <= limit {
            continue;
        }
        let message = format!(
            "The termination deployment did not finish within {} seconds (landfall server --termination-timeout); \
             the host leaves anyway.",
            limit / 1000
        );
        let stopped = driver::change_progress(state, &id, |_, progress| {
            progress.stop.get_or_insert(StopRequest { rollback: false, timeout: Some(message.clone()), alarm: None });
            Ok(())
        })
        .await;
        if let Err(error) = stopped {
            tracing::warn!(deployment = %id, ?error, "cannot stop an overdue termination deployment");
            continue;
        }
        // A script still running is not waited for: the host is leaving.
        for command in state.store.commands_of(&id).await?.iter().filter(|c| c.state == CommandState::Dispatched) {
            let why = format!("{} was still running when the host left.", command.lifecycle_event);
            crate::server_events::complete_on_server(state, command, false, why).await;
        }
        driver::reconcile(state, &id).await?;
    }
    Ok(())
}

/// Which of `instances` are about to get a launch deployment from a group that sends them
/// traffic through `target_group`: such a host enters the target group only at its AllowTraffic.
pub async fn awaiting_launch(
    state: &AppState,
    instances: &[InstanceInfo],
    target_group: &str,
) -> StoreResult<HashSet<String>> {
    let mut joining = HashSet::new();
    let pools = pool_members(state).await?;
    for (_, group) in server_groups(state).await? {
        let routed = landfall_engine::plan::target_group_names(group.info.load_balancer_info.as_ref())
            .iter()
            .any(|name| name == target_group);
        if !routed || is_blue_green(&group) || !controls_traffic(&group) || group.info.target_revision.is_none() {
            continue;
        }
        let selected = selection::select_instances(&group.info, instances, &pools);
        if selected.is_empty() {
            continue;
        }
        let known: HashSet<String> =
            state.store.instance_history(group.id()).await?.into_iter().map(|h| h.instance_name).collect();
        joining.extend(selected.into_iter().filter_map(|i| i.instance_name.clone()).filter(|n| !known.contains(n)));
    }
    Ok(joining)
}

/// Which hosts each host pool holds (groups select the members of the pools they name).
pub async fn pool_members(state: &AppState) -> StoreResult<selection::PoolMembers> {
    Ok(selection::PoolMembers::new(&state.store.list_host_pools().await?))
}

fn is_blue_green(group: &GroupRecord) -> bool {
    group.info.deployment_style.as_ref().and_then(|s| s.deployment_type.clone()) == Some(DeploymentType::BlueGreen)
}

fn controls_traffic(group: &GroupRecord) -> bool {
    group.info.deployment_style.as_ref().and_then(|s| s.deployment_option.clone())
        == Some(DeploymentOption::WithTrafficControl)
}

/// The hosts joining or leaving a group now: in its launch or termination deployments, or on
/// their way out.
pub async fn hosts_joining_or_leaving(state: &AppState, group_id: &str) -> StoreResult<HashSet<String>> {
    let mut activity = activity_by_group(state, Some(group_id)).await?;
    let mut hosts = activity.remove(group_id).map(|group| group.joining_or_leaving).unwrap_or_default();
    hosts.extend(state.store.departures().await?.into_iter().map(|d| d.instance_name));
    Ok(hosts)
}

/// The hosts that joined a group through a launch deployment while it ran (or that it passed
/// by): a follow-up deployment of the group's revision (UPDATE), or a note saying they were left
/// as they are (IGNORE), on the deployment that set the revision.
async fn bring_up_to_date(
    state: &AppState,
    app: &ApplicationInfo,
    group: &GroupRecord,
    outdated: &[&InstanceInfo],
) -> StoreResult<()> {
    let Some(root) = revision_setter(state, group).await? else { return Ok(()) };
    let mut names: Vec<String> = outdated.iter().filter_map(|i| i.instance_name.clone()).collect();
    names.sort();
    let strategy = group.info.outdated_instances_strategy.clone().unwrap_or(OutdatedInstancesStrategy::Update);
    if strategy == OutdatedInstancesStrategy::Ignore {
        let reported = state
            .store
            .deployment_events(root.id(), 0, 10_000)
            .await?
            .into_iter()
            .any(|event| event.event_type == DeploymentEventType::OutdatedInstances && event.instance_ids == names);
        if !reported {
            let message = format!(
                "{} missed this deployment's revision (they joined while it ran) and stay as they are \
                 (outdatedInstancesStrategy IGNORE).",
                names.join(", ")
            );
            let mut entry =
                timeline::entry(root.id(), state.clock.now(), DeploymentEventType::OutdatedInstances, message);
            entry.instance_ids = names;
            state.store.append_deployment_events(&[entry]).await?;
        }
        return Ok(());
    }
    let description = format!("Update of outdated instances missed by deployment {}: {}.", root.id(), names.join(", "));
    let plan = Plan {
        creator: DeploymentCreator::CodeDeployAutoUpdate,
        exclusive: true,
        description,
        root: Some(root.id().to_owned()),
    };
    let Some(follow_up) = start(state, app, group, outdated, plan).await? else { return Ok(()) };
    // The deployment that set the revision lists its follow-ups.
    let mut root = root;
    let related = root.info.related_deployments.get_or_insert_with(Default::default);
    related.auto_update_outdated_instances_deployment_ids.get_or_insert_with(Vec::new).push(follow_up.clone());
    let note = format!("Hosts that joined while it ran get its revision through deployment {follow_up}.");
    let mut entry = timeline::entry(root.id(), state.clock.now(), DeploymentEventType::OutdatedInstances, note);
    entry.instance_ids = names;
    entry.related_deployment_id = Some(follow_up);
    state.store.append_deployment_events(&[entry]).await?;
    if let Err(error) = state.store.update_deployment(&root).await {
        tracing::warn!(deployment = root.id(), %error, "cannot link the follow-up deployment");
    }
    Ok(())
}

/// The group's latest successful deployment that was not itself a launch or a follow-up: the one
/// that set its target revision.
async fn revision_setter(state: &AppState, group: &GroupRecord) -> StoreResult<Option<DeploymentRecord>> {
    let filter = DeploymentFilter {
        group_id: Some(group.id().to_owned()),
        statuses: vec![DeploymentStatus::Succeeded.as_str().to_owned()],
        ..Default::default()
    };
    let page = state.store.list_deployments(&filter, &PageRequest { after: None, limit: 100 }).await?;
    for id in page.items {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        if !matches!(
            record.info.creator,
            Some(DeploymentCreator::Autoscaling | DeploymentCreator::CodeDeployAutoUpdate)
        ) {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Every Server platform deployment group, with its application.
pub async fn server_groups(state: &AppState) -> StoreResult<Vec<(ApplicationInfo, GroupRecord)>> {
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

/// What kind of deployment [`start`] makes.
struct Plan {
    creator: DeploymentCreator,
    /// Held to the group's one-deployment-at-a-time rule.
    exclusive: bool,
    description: String,
    /// The deployment whose outdated hosts it updates.
    root: Option<String>,
}

/// Creates a deployment of the group's target revision to `hosts`; its id, or none if the group
/// got another exclusive deployment meanwhile.
async fn start(
    state: &AppState,
    app: &ApplicationInfo,
    group: &GroupRecord,
    hosts: &[&InstanceInfo],
    plan: Plan,
) -> StoreResult<Option<String>> {
    let Some(location) = group.info.target_revision.clone() else { return Ok(None) };
    let now = state.clock.now();
    let id = new_deployment_id();
    let style = group.info.deployment_style.clone().unwrap_or_default();
    let option = style.deployment_option.clone().unwrap_or(DeploymentOption::WithoutTrafficControl);
    let events = lifecycle_events(
        &ComputePlatform::Server,
        &DeploymentType::InPlace,
        &option,
        &plan.creator,
        ServerTargetRole::Install,
    );
    let targets: Vec<TargetRecord> = hosts
        .iter()
        .enumerate()
        .map(|(position, instance)| {
            let name = instance.instance_name.as_deref().unwrap_or_default();
            driver::new_instance_target(&id, name, instance.instance_arn.clone(), &events, None, position, now)
        })
        .collect();
    let config = match plan.creator {
        DeploymentCreator::Autoscaling | DeploymentCreator::AutoscalingTermination => ONE_HOST_CONFIG.to_owned(),
        _ => group.info.deployment_config_name.clone().unwrap_or_else(|| ONE_HOST_CONFIG.to_owned()),
    };
    let info = DeploymentInfo {
        application_name: app.application_name.clone(),
        deployment_group_name: group.info.deployment_group_name.clone(),
        deployment_config_name: Some(config),
        deployment_id: Some(id.clone()),
        revision: Some(location.clone()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(now),
        deployment_overview: Some(run::overview(&targets.iter().map(|t| t.target.clone()).collect::<Vec<_>>())),
        description: Some(plan.description.clone()),
        creator: Some(plan.creator.clone()),
        ignore_application_stop_failures: Some(false),
        update_outdated_instances_only: Some(false),
        deployment_style: Some(DeploymentStyle {
            deployment_type: Some(DeploymentType::InPlace),
            deployment_option: Some(option),
        }),
        instance_termination_wait_time_started: Some(false),
        load_balancer_info: group.info.load_balancer_info.clone(),
        file_exists_behavior: Some(FileExistsBehavior::Disallow),
        deployment_status_messages: Some(vec![]),
        compute_platform: Some(ComputePlatform::Server),
        related_deployments: plan.root.clone().map(|root| RelatedDeployments {
            auto_update_outdated_instances_root_deployment_id: Some(root),
            auto_update_outdated_instances_deployment_ids: None,
        }),
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
    if plan.creator == DeploymentCreator::Autoscaling && controls_traffic(group) {
        // In rotation only once its AllowTraffic says so (it may have been registered as a
        // target before it joined).
        let names = landfall_engine::plan::target_group_names(group.info.load_balancer_info.as_ref());
        for host in hosts {
            let name = host.instance_name.as_deref().unwrap_or_default();
            if let Err(error) = crate::traffic::hold_out_of_rotation(state, &names, name).await {
                tracing::warn!(host = name, ?error, "cannot hold a joining host out of rotation");
            }
        }
    }
    let record = DeploymentRecord {
        application_id,
        group_id: group.id().to_owned(),
        exclusive: plan.exclusive,
        info,
        progress: Default::default(),
        version: 0,
    };
    match state.store.create_deployment(&record, &targets, &revision).await {
        Err(StoreError::ActiveDeployment(_)) => return Ok(None), // a user's deployment came first
        other => other?,
    }
    tracing::info!(deployment = %id, creator = plan.creator.as_str(), group = group_name(group), "deployment created");
    let note = format!(
        "Created by {}: {} It deploys {}.",
        plan.creator.as_str(),
        plan.description,
        timeline::describe_revision(&location)
    );
    let mut entry = timeline::entry(&id, now, DeploymentEventType::Created, note);
    entry.related_deployment_id = plan.root;
    if let Err(error) = state.store.append_deployment_events(&[entry]).await {
        tracing::warn!(deployment = %id, %error, "cannot record the deployment's creation");
    }
    driver::reconcile(state, &id).await?;
    Ok(Some(id))
}
