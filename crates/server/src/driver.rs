//! The driver: feeds the engine the facts from the store and writes back what it decides, one
//! deployment at a time. It runs after every change a host reports, after a stop, and on a
//! timer (for timeouts, and to resume every active deployment after a restart). The store is its
//! only memory, so a restarted server carries on where the last one stood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::landfall::DeploymentEventType;
use landfall_api::shapes::{
    BlueGreenDeploymentConfiguration, ComputePlatform, DeploymentConfigInfo, DeploymentCreator, DeploymentInfo,
    DeploymentOption, DeploymentReadyAction, DeploymentStatus, DeploymentTarget, DeploymentType, ErrorInformation,
    InstanceAction, InstanceTarget, RollbackInfo, TargetLabel, TargetStatus, TrafficRoutingType, ZonalConfig,
};
use landfall_api::validate;
use landfall_engine::blue_green::{self, BlueGreenSettings, Shift};
use landfall_engine::lifecycle::{self, ServerTargetRole, lifecycle_events};
use landfall_engine::run::{self, Command, CommandState, Facts, Progress, Settings, Timeouts};
use landfall_engine::zonal::ZonalSettings;
use landfall_store::{
    DeploymentRecord, DeploymentStep, Fence, HostCommandRecord, InstanceHistoryRecord, RevisionRecord, StoreError,
    StoreResult, TargetRecord,
};
use tokio::sync::Notify;

use crate::api::common::{new_deployment_id, new_uuid};
use crate::platform::{self, PlatformRun, RollbackPlan};
use crate::replicas;
use crate::state::AppState;
use crate::timeline::{self, StepChange};

/// How often every active deployment is looked at, for timeouts.
pub const TICK: Duration = Duration::from_secs(1);

pub struct Driver {
    /// Deployments being reconciled now, and whether something changed since that began.
    running: Mutex<HashMap<String, Dirty>>,
    /// Wakes the long polls of a host when it has a new command.
    hosts: Signals,
    /// Wakes the long polls of a target group's routers when its desired state changes.
    target_groups: Signals,
    pub timeouts: Timeouts,
}

/// One notification per name, made on first use.
#[derive(Default)]
struct Signals(Mutex<HashMap<String, Arc<Notify>>>);

impl Signals {
    fn get(&self, name: &str) -> Arc<Notify> {
        let mut signals = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        signals.entry(name.to_owned()).or_default().clone()
    }
}

impl Driver {
    pub fn new(timeouts: Timeouts) -> Driver {
        Driver { running: Mutex::default(), hosts: Signals::default(), target_groups: Signals::default(), timeouts }
    }

    /// The signal a host's long poll waits on.
    pub fn host_signal(&self, instance: &str) -> Arc<Notify> {
        self.hosts.get(instance)
    }

    /// The signal a target group's routers wait on.
    pub fn target_group_signal(&self, name: &str) -> Arc<Notify> {
        self.target_groups.get(name)
    }

    /// Wakes every long poll (after notices from other servers may have been lost).
    pub fn wake_everyone(&self) {
        for signals in [&self.hosts, &self.target_groups] {
            let signals = signals.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for signal in signals.values() {
                signal.notify_waiters();
            }
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dirty>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A deployment being reconciled: whether it changed since the pass began, and who waits for
/// the passes to end.
#[derive(Default)]
struct Dirty {
    again: bool,
    done: Arc<Notify>,
}

/// Brings a deployment up to date with what its hosts did (and starts a rollback it asks for);
/// returns once the state as of this call has been taken into account.
///
/// Calls for one deployment coalesce: while a reconcile runs, further calls mark the deployment
/// dirty and wait for the running one, which goes round again. A burst of completions from a
/// large fleet thus costs a few passes over the deployment, not one per host.
pub async fn reconcile(state: &AppState, deployment_id: &str) -> StoreResult<()> {
    let waiter = {
        let mut running = state.driver.running();
        match running.get_mut(deployment_id) {
            Some(slot) => {
                slot.again = true;
                Some(slot.done.clone())
            }
            None => {
                running.insert(deployment_id.to_owned(), Dirty::default());
                None
            }
        }
    };
    if let Some(done) = waiter {
        // Registered while the slot still exists; the runner notifies when it removes it. A
        // runner that ended in between is covered by the timeout and a direct pass.
        let notified = done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if state.driver.running().contains_key(deployment_id) {
            let _ = tokio::time::timeout(Duration::from_secs(30), notified).await;
            return Ok(());
        }
        return Box::pin(reconcile(state, deployment_id)).await;
    }
    loop {
        let result = reconcile_chain(state, deployment_id).await;
        let mut running = state.driver.running();
        match running.get_mut(deployment_id) {
            Some(slot) if slot.again && result.is_ok() => slot.again = false,
            _ => {
                if let Some(slot) = running.remove(deployment_id) {
                    slot.done.notify_waiters();
                }
                return result;
            }
        }
    }
}

/// Reconciles in the background: for callers that need not wait (a new deployment, an
/// acknowledgement).
pub fn reconcile_soon(state: &Arc<AppState>, deployment_id: &str) {
    let state = state.clone();
    let id = deployment_id.to_owned();
    tokio::spawn(async move {
        if let Err(error) = reconcile(&state, &id).await {
            tracing::warn!(deployment = %id, %error, "cannot advance the deployment");
        }
    });
}

/// Reconciles a deployment, then any deployment it started (a rollback).
async fn reconcile_chain(state: &AppState, deployment_id: &str) -> StoreResult<()> {
    let mut next = reconcile_one(state, deployment_id).await?;
    while let Some(id) = next.take() {
        next = reconcile_one(state, &id).await?;
    }
    Ok(())
}

/// One deployment, if this server holds its lease (or can take it); returns a follow-up
/// deployment (a rollback) to look at next.
async fn reconcile_one(state: &AppState, deployment_id: &str) -> StoreResult<Option<String>> {
    let lease = replicas::lease::deployment(deployment_id);
    let Some(fence) = state.replica.hold(state, &lease).await? else {
        // Another server owns it, and may not know what just changed here.
        replicas::nudge_owner(state, deployment_id).await;
        return Ok(None);
    };
    // A concurrent writer (a stop, an acknowledgement) makes the write a Conflict: recompute.
    for _ in 0..5 {
        match step_once(state, deployment_id, &fence).await {
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(deployment = deployment_id, "another server took the deployment over");
                state.replica.forget(&lease);
                return Ok(None);
            }
            Ok(Outcome::Finished(follow_up)) => {
                state.replica.release(state, &lease).await?;
                return Ok(follow_up);
            }
            Ok(Outcome::Running) => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Conflict(format!("deployment {deployment_id} kept changing")))
}

enum Outcome {
    Running,
    Finished(Option<String>),
}

async fn step_once(state: &AppState, deployment_id: &str, fence: &Fence) -> StoreResult<Outcome> {
    let store = state.store.as_ref();
    let Some(record) = store.deployment(deployment_id).await? else {
        return Ok(Outcome::Finished(None));
    };
    let status = record.info.status.as_ref().map_or("Created", |status| status.as_str());
    if !landfall_store::ACTIVE_STATUSES.contains(&status) {
        return Ok(Outcome::Finished(None));
    }
    let mut targets = store.targets(deployment_id).await?;
    let mut records = store.commands_of(deployment_id).await?;
    let progress = progress_of(&record);
    let platform = record.info.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    // Lambda and ECS deployments: what their events do is the platform's.
    let platform_run = platform_run(state, &record, &progress, &platform).await;
    if platform != ComputePlatform::Server && platform_run.is_none() && progress.stop.is_none() {
        // Its AppSpec cannot be read (an ECS deployment made by a release that did not carry
        // them out): it waits, Created, until it is stopped.
        return Ok(Outcome::Running);
    }
    let blue_green = match &platform_run {
        Some(run) => run.blue_green(),
        None => platform == ComputePlatform::Server && is_blue_green(&record.info),
    };
    // A Server blue/green deployment's traffic is the routers' (crate::traffic).
    let server_blue_green = blue_green && platform_run.is_none();
    let service_role = match &platform_run {
        Some(_) => store.deployment_group_by_id(&record.group_id).await?.and_then(|g| g.info.service_role_arn),
        None => None,
    };
    let cx = platform::Cx { state, aws: state.aws.for_role(service_role.as_deref()) };
    let config_name = record.info.deployment_config_name.clone().unwrap_or_default();
    let config = match landfall_api::predefined::predefined_config(&config_name) {
        Some(config) => Some(config),
        None => store.deployment_config(&config_name).await?,
    };
    let shift = traffic_shift(config.as_ref());
    // The events in flight that the server carries out first: one may have just finished.
    let advanced = match (&platform_run, targets.first()) {
        (Some(run), Some(target)) => {
            let view = platform::Run {
                deployment: &record.info,
                shift: shift.unwrap_or(Shift::AllAtOnce),
                stopping: progress.stop.is_some(),
                target,
                commands: &records,
            };
            let advanced = run.advance(&cx, &view).await;
            if let Some(changed) = &advanced.target {
                store.update_target(changed).await?;
                targets = store.targets(deployment_id).await?;
            }
            advanced.completed
        }
        _ if platform == ComputePlatform::Server => crate::traffic::advance(state, &record.info, &records).await,
        _ => false,
    };
    if advanced {
        records = store.commands_of(deployment_id).await?;
    }
    let mut commands: Vec<Command> = records.into_iter().map(engine_command).collect();
    run::sort_commands(&mut commands);
    let rollback_of_blue_green = blue_green && record.info.creator == Some(DeploymentCreator::CodeDeployRollback);
    let zonal = match config.as_ref().and_then(|c| c.zonal_config.as_ref()) {
        Some(zonal) if !blue_green => Some(zonal_settings(state, zonal, &progress, &targets).await?),
        _ => None,
    };
    let settings = Settings {
        zonal,
        // A blue/green rollback reroutes to every host it can, whatever the configuration.
        minimum_healthy_hosts: config
            .as_ref()
            .and_then(|c| c.minimum_healthy_hosts.clone())
            .filter(|_| !rollback_of_blue_green),
        ignore_application_stop_failures: record.info.ignore_application_stop_failures == Some(true),
        timeouts: match &platform_run {
            // No agent carries a platform deployment's events, so none is lost on its way; its
            // AllowTraffic lasts as long as the configuration shifts traffic. Hooks keep their
            // own time (platform::run_hook); this one, a minute longer, only backs it up.
            Some(_) => Timeouts {
                ack_ms: i64::MAX,
                event_ms: state.driver.timeouts.event_ms + shift.map_or(0, Shift::duration_ms) + 60_000,
                ..state.driver.timeouts
            },
            None => state.driver.timeouts,
        },
        blue_green: if blue_green && !rollback_of_blue_green {
            let mut settings = blue_green_settings(&record.info, config.as_ref());
            if platform_run.is_some() {
                settings.shift = None; // the platform's AllowTraffic moves the traffic
            }
            settings
        } else {
            BlueGreenSettings::default()
        },
    };
    // In the deployment's order (the store keeps each target's position).
    let ordered = targets;
    let target_docs: Vec<DeploymentTarget> = ordered.iter().map(|t| t.target.clone()).collect();
    let now = state.clock.now();
    let facts = Facts {
        deployment: &record.info,
        progress: &progress,
        targets: &target_docs,
        commands: &commands,
        settings: &settings,
        now,
    };
    let step = if blue_green { blue_green::reconcile(&facts) } else { run::reconcile(&facts) };
    if step.is_empty(&facts) {
        return Ok(Outcome::Running);
    }

    let mut deployment = DeploymentRecord {
        info: step.deployment.clone(),
        progress: serde_json::to_string(&step.progress).ok(),
        ..record.clone()
    };
    // A platform deployment says which of its events failed, with the platform's error code.
    if let (Some(run), Some(DeploymentStatus::Failed)) = (&platform_run, &step.finished)
        && let Some((event, message)) = failed_event(step.changed_targets.iter().chain(&target_docs))
    {
        deployment.info.error_information = Some(ErrorInformation {
            code: Some(run.failure_code(&event)),
            message: Some(format!("The {event} lifecycle event failed: {message}")),
        });
    }
    let new_commands: Vec<HostCommandRecord> = step
        .new_commands
        .iter()
        .map(|(target, event)| {
            // Traffic events are the server's own work (crate::traffic): taken and
            // acknowledged at once, never handed to an agent.
            // Every event of a Lambda or ECS deployment is the server's to carry out.
            let on_server = platform != ComputePlatform::Server || lifecycle::runs_on_server(event);
            HostCommandRecord {
                id: format!("hc-{}", new_uuid()),
                deployment_id: deployment_id.to_owned(),
                target_id: target.clone(),
                lifecycle_event: event.clone(),
                state: if on_server { CommandState::Dispatched } else { CommandState::Queued }.as_str().to_owned(),
                created_at: now,
                dispatched_at: on_server.then_some(now),
                // A hook of a Lambda or ECS deployment counts as acknowledged once invoked.
                acknowledged_at: lifecycle::runs_on_server(event).then_some(now),
                ..Default::default()
            }
        })
        .collect();
    let revision_key = record.info.revision.as_ref().map(validate::revision_key);
    let by_id: HashMap<&str, &TargetRecord> = ordered.iter().map(|t| (t.target_id.as_str(), t)).collect();
    // Only hosts that installed something have a new revision (not a blue/green deployment's
    // original hosts, nor any host of its rollback).
    let history = step
        .finished_targets
        .iter()
        .filter(|_| platform_run.is_none())
        .filter(|(instance, _)| by_id.get(instance.as_str()).is_some_and(|t| installs(&t.target)))
        .map(|(instance, succeeded)| InstanceHistoryRecord {
            group_id: record.group_id.clone(),
            instance_name: instance.clone(),
            revision_key: if *succeeded { revision_key.clone() } else { None },
            healthy: *succeeded,
        })
        .collect();
    let target_revision = match (&step.finished, &record.info.revision, &revision_key) {
        (Some(DeploymentStatus::Succeeded), Some(location), Some(key)) => {
            Some((validate::without_content(location), key.clone()))
        }
        _ => None,
    };
    let follow_up = if step.rollback {
        rollback(state, &mut deployment, &step.changed_targets, &ordered, platform_run.as_deref()).await?
    } else {
        None
    };
    let follow_up_id = follow_up.as_ref().map(|(record, ..)| record.id().to_owned());
    let changed: Vec<TargetRecord> = step
        .changed_targets
        .iter()
        .filter_map(|target| {
            let id = target.instance_target.as_ref().and_then(|t| t.target_id.clone())?;
            let position = by_id.get(id.as_str()).map_or(0, |t| t.position);
            Some(TargetRecord {
                deployment_id: deployment_id.to_owned(),
                target_id: id,
                position,
                target: target.clone(),
            })
        })
        .collect();
    let zone_started = match (&progress.zones, &step.progress.zones) {
        (before, Some(after)) if before.as_ref().map(|b| b.current) != Some(after.current) => {
            after.zones.get(after.current).map(|zone| (zone.name.clone(), after.current + 1, after.zones.len()))
        }
        _ => None,
    };
    let entries = timeline::entries(&StepChange {
        before: &record.info,
        after: &deployment.info,
        targets_before: &target_docs,
        targets_changed: &step.changed_targets,
        zone_started,
        rollback_id: follow_up_id.as_deref(),
        now,
    });
    let triggers = if entries.iter().any(|entry| entry.trigger.is_some()) {
        match store.deployment_group_by_id(&record.group_id).await? {
            Some(group) => crate::triggers::messages(state, &group.info, &deployment.info, &entries, now),
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let mut events: Vec<_> = entries.into_iter().map(|entry| entry.event).collect();
    if let Some((rollback, ..)) = &follow_up {
        let message = format!("Created by codeDeployRollback to roll back deployment {deployment_id}.");
        let mut created = timeline::entry(rollback.id(), now, DeploymentEventType::Created, message);
        created.related_deployment_id = Some(deployment_id.to_owned());
        events.push(created);
    }
    let write = DeploymentStep {
        now,
        events,
        triggers,
        deployment,
        targets: changed,
        new_commands: new_commands.clone(),
        command_updates: step
            .command_updates
            .iter()
            .map(|(id, state, diagnostics)| (id.clone(), state.as_str().to_owned(), diagnostics.clone()))
            .collect(),
        history,
        target_revision,
        follow_up,
        fence: Some(fence.clone()),
    };
    store.apply_deployment_step(&write).await?;
    if !write.triggers.is_empty() {
        replicas::wake_outbox(state).await;
    }
    if server_blue_green && let Some(progress) = &step.progress.blue_green {
        // The fleets' traffic as the engine now wants it (the routers follow).
        let mut targets = target_docs;
        for changed in &step.changed_targets {
            if let Some(slot) = targets.iter_mut().find(|t| same_target(t, changed)) {
                *slot = changed.clone();
            }
        }
        crate::traffic::apply_blue_green(state, &step.deployment, &targets, progress, step.finished.as_ref()).await;
    }
    // Hosts with work (new, or queued again) stop waiting in their long polls.
    let requeued = step
        .command_updates
        .iter()
        .filter(|(_, state, _)| *state == CommandState::Queued)
        .filter_map(|(id, ..)| commands.iter().find(|c| c.id == *id).map(|c| c.target_id.as_str()));
    let hosts: Vec<&str> = new_commands.iter().map(|c| c.target_id.as_str()).chain(requeued).collect();
    replicas::wake_hosts(state, &hosts).await;
    if let Some(status) = &step.finished {
        if let (Some(run), Some(target)) = (&platform_run, ordered.first()) {
            run.finished(&cx, &record.info, status, target, follow_up_id.is_some()).await;
        }
        // Its hosts may be new to the group, behind it, or free to leave now (crate::fleet).
        crate::fleet::nudge(state).await;
        tracing::info!(deployment = deployment_id, status = status.as_str(), "deployment finished");
        return Ok(Outcome::Finished(follow_up_id));
    }
    Ok(Outcome::Running)
}

/// The first failed lifecycle event of the first target that has one, and its message.
fn failed_event<'a>(targets: impl Iterator<Item = &'a DeploymentTarget>) -> Option<(String, String)> {
    targets.filter_map(|t| t.instance_target.as_ref()?.lifecycle_events.as_ref()).flatten().find_map(|event| {
        (event.status == Some(landfall_api::shapes::LifecycleEventStatus::Failed)).then(|| {
            let message = event.diagnostics.as_ref().and_then(|d| d.message.clone()).unwrap_or_default();
            (event.lifecycle_event_name.clone().unwrap_or_default(), message)
        })
    })
}

/// The platform side of a Lambda or ECS deployment, from the AppSpec it keeps.
async fn platform_run(
    state: &AppState,
    record: &DeploymentRecord,
    progress: &Progress,
    platform: &ComputePlatform,
) -> Option<Box<dyn PlatformRun>> {
    if *platform == ComputePlatform::Server {
        return None;
    }
    let appspec = match (&progress.appspec, &record.info.revision) {
        (Some(appspec), _) => appspec.clone(),
        // Made before deployments kept their AppSpec: the registered revision has it.
        (None, Some(location)) => platform::registered_appspec(state, &record.application_id, location).await?,
        (None, None) => return None,
    };
    platform::open(platform, record.info.creator.as_ref(), &appspec).unwrap_or_else(|error| {
        tracing::warn!(deployment = record.id(), %error, "cannot read the deployment's AppSpec");
        None
    })
}

/// A zonal deployment's settings; the hosts' zones (their zone tags) are read only until the
/// deployment is planned, which fixes them.
async fn zonal_settings(
    state: &AppState,
    zonal: &ZonalConfig,
    progress: &Progress,
    targets: &[TargetRecord],
) -> StoreResult<ZonalSettings> {
    let mut zone_of = HashMap::new();
    if !progress.started {
        for instance in state.store.list_instances().await? {
            let Some(name) = instance.instance_name.as_deref() else { continue };
            let zone = instance.tags.iter().flatten().find(|tag| tag.key.as_deref() == Some(state.zone_tag.as_str()));
            if let Some(zone) = zone.and_then(|tag| tag.value.clone())
                && targets.iter().any(|t| t.target_id == name)
            {
                zone_of.insert(name.to_owned(), zone);
            }
        }
    }
    let seconds = |s: Option<i64>| s.map(|s| s.max(0) * 1000);
    Ok(ZonalSettings {
        zone_of,
        first_monitor_ms: seconds(zonal.first_zone_monitor_duration_in_seconds),
        monitor_ms: seconds(zonal.monitor_duration_in_seconds).unwrap_or(0),
        minimum_healthy_per_zone: zonal.minimum_healthy_hosts_per_zone.clone(),
    })
}

/// Whether a target's events install a revision.
fn installs(target: &DeploymentTarget) -> bool {
    let events = target.instance_target.as_ref().and_then(|t| t.lifecycle_events.as_ref());
    events.is_some_and(|events| events.iter().any(|e| e.lifecycle_event_name.as_deref() == Some("Install")))
}

pub fn is_blue_green(info: &DeploymentInfo) -> bool {
    info.deployment_style.as_ref().and_then(|s| s.deployment_type.clone()) == Some(DeploymentType::BlueGreen)
}

/// Whether a blue/green configuration takes the original hosts out of service after a success
/// (TERMINATE, the default).
pub fn terminates_original_hosts(config: Option<&BlueGreenDeploymentConfiguration>) -> bool {
    config
        .and_then(|c| c.terminate_blue_instances_on_deployment_success.as_ref())
        .and_then(|t| t.action.clone())
        .unwrap_or(InstanceAction::Terminate)
        == InstanceAction::Terminate
}

/// A blue/green deployment's waits (from its group's configuration, as of its creation) and
/// its traffic shifting (Landfall's extension: a Server configuration's trafficRoutingConfig).
fn blue_green_settings(info: &DeploymentInfo, config: Option<&DeploymentConfigInfo>) -> BlueGreenSettings {
    let minutes = |m: Option<i64>| m.unwrap_or(0).max(0) * 60_000;
    let options = info.blue_green_deployment_configuration.clone().unwrap_or_default();
    let ready = options.deployment_ready_option.unwrap_or_default();
    let terminate = options.terminate_blue_instances_on_deployment_success.unwrap_or_default();
    BlueGreenSettings {
        ready_wait_ms: (ready.action_on_timeout == Some(DeploymentReadyAction::StopDeployment))
            .then(|| minutes(ready.wait_time_in_minutes)),
        termination_wait_ms: minutes(terminate.termination_wait_time_in_minutes),
        shift: traffic_shift(config),
    }
}

/// How a configuration's `trafficRoutingConfig` moves traffic, if it has one.
fn traffic_shift(config: Option<&DeploymentConfigInfo>) -> Option<Shift> {
    let minutes = |m: Option<i64>| m.unwrap_or(0).max(0) * 60_000;
    let routing = config.and_then(|c| c.traffic_routing_config.clone());
    let percent = |p: Option<i64>| p.unwrap_or(10).clamp(1, 100) as u8;
    routing.and_then(|routing| match routing.r#type? {
        TrafficRoutingType::AllAtOnce => Some(Shift::AllAtOnce),
        TrafficRoutingType::TimeBasedCanary => {
            let canary = routing.time_based_canary?;
            Some(Shift::Canary {
                percentage: percent(canary.canary_percentage),
                interval_ms: minutes(canary.canary_interval),
            })
        }
        TrafficRoutingType::TimeBasedLinear => {
            let linear = routing.time_based_linear?;
            Some(Shift::Linear {
                percentage: percent(linear.linear_percentage),
                interval_ms: minutes(linear.linear_interval),
            })
        }
        _ => None,
    })
}

/// The engine's progress a deployment record keeps (as JSON); none yet is the start.
pub fn progress_of(record: &DeploymentRecord) -> Progress {
    record.progress.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default()
}

fn engine_command(record: HostCommandRecord) -> Command {
    Command {
        state: CommandState::parse(&record.state).unwrap_or(CommandState::Failed),
        id: record.id,
        target_id: record.target_id,
        event: record.lifecycle_event,
        created_at: record.created_at,
        dispatched_at: record.dispatched_at,
        acknowledged_at: record.acknowledged_at,
        completed_at: record.completed_at,
        diagnostics: record.diagnostics,
    }
}

/// Records the end of an event the server carries out itself (a traffic event, a Lambda hook's
/// report or traffic shift), as an agent's completion would; whether it was recorded.
pub async fn complete_on_server(state: &AppState, command_id: &str, succeeded: bool, message: String) -> bool {
    let diagnostics = landfall_api::shapes::Diagnostics {
        error_code: Some(if succeeded {
            landfall_api::shapes::LifecycleErrorCode::Success
        } else {
            landfall_api::shapes::LifecycleErrorCode::UnknownError
        }),
        script_name: Some(String::new()),
        message: Some(message),
        log_tail: Some(String::new()),
    };
    match state.store.complete_command(command_id, succeeded, &diagnostics, state.clock.now()).await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(command = command_id, %error, "cannot complete a lifecycle event");
            false
        }
    }
}

/// Prepares the rollback of a deployment that failed or stopped: a new deployment that undoes it
/// (on Server, the group's last successful revision to the hosts this one touched; on Lambda, the
/// alias back to the version it had), and the `rollbackInfo` of both. With nothing to go back
/// to, only the message says why.
async fn rollback(
    state: &AppState,
    failed: &mut DeploymentRecord,
    changed: &[DeploymentTarget],
    all: &[TargetRecord],
    platform_run: Option<&dyn PlatformRun>,
) -> StoreResult<Option<(DeploymentRecord, Vec<TargetRecord>, RevisionRecord)>> {
    let failed_id = failed.id().to_owned();
    let id = new_deployment_id();
    let now = state.clock.now();
    let planned = match platform_run {
        Some(run) => run.rollback_plan(&id, &failed.info, all.first(), now),
        None => server_rollback_plan(state, failed, changed, all, &id, now).await?,
    };
    let RollbackPlan { revision, targets, config_name, appspec } = match planned {
        Ok(plan) => plan,
        Err(why) => {
            failed.info.rollback_info = Some(RollbackInfo {
                rollback_message: Some(format!("Automatic rollback was not performed: {why}")),
                ..Default::default()
            });
            return Ok(None);
        }
    };
    let info = DeploymentInfo {
        deployment_id: Some(id.clone()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(now),
        creator: Some(DeploymentCreator::CodeDeployRollback),
        deployment_config_name: config_name.or_else(|| failed.info.deployment_config_name.clone()),
        revision: Some(revision.clone()),
        previous_revision: failed.info.revision.clone(),
        description: Some(format!("Rollback of deployment {failed_id}")),
        deployment_overview: Some(run::overview(&targets.iter().map(|t| t.target.clone()).collect::<Vec<_>>())),
        rollback_info: Some(RollbackInfo {
            rollback_triggering_deployment_id: Some(failed_id.clone()),
            rollback_message: Some(format!("Rolling back deployment {failed_id}.")),
            ..Default::default()
        }),
        auto_rollback_configuration: None,
        error_information: None,
        complete_time: None,
        start_time: None,
        override_alarm_configuration: None,
        deployment_status_messages: Some(vec![]),
        instance_termination_wait_time_started: Some(false),
        ..failed.info.clone()
    };
    failed.info.rollback_info = Some(RollbackInfo {
        rollback_deployment_id: Some(id.clone()),
        rollback_message: Some(format!("Rolling back to the last successful revision with deployment {id}.")),
        ..Default::default()
    });
    let key = validate::revision_key(&revision);
    let revision_record = RevisionRecord {
        application_id: failed.application_id.clone(),
        key,
        location: revision,
        info: landfall_api::shapes::GenericRevisionInfo { register_time: Some(now), ..Default::default() },
    };
    let record = DeploymentRecord {
        application_id: failed.application_id.clone(),
        group_id: failed.group_id.clone(),
        exclusive: true,
        info,
        progress: appspec
            .and_then(|appspec| serde_json::to_string(&Progress { appspec: Some(appspec), ..Default::default() }).ok()),
        version: 0,
    };
    Ok(Some((record, targets, revision_record)))
}

/// What a Server rollback deploys: the group's last successful revision (a blue/green one: the
/// failed deployment's, sending traffic back to the original hosts) to the hosts the failed
/// deployment reached, and for a blue/green one every original host too.
async fn server_rollback_plan(
    state: &AppState,
    failed: &DeploymentRecord,
    changed: &[DeploymentTarget],
    all: &[TargetRecord],
    id: &str,
    now: Timestamp,
) -> StoreResult<Result<RollbackPlan, String>> {
    let store = state.store.as_ref();
    let group = store.deployment_group_by_id(&failed.group_id).await?;
    let blue_green = is_blue_green(&failed.info);
    // A blue/green rollback installs nothing: it sends traffic back to the original hosts.
    let target_revision = group
        .as_ref()
        .and_then(|g| g.info.target_revision.clone())
        .or_else(|| if blue_green { failed.info.revision.clone() } else { None });
    let Some(revision) = target_revision else {
        let group_name = failed.info.deployment_group_name.clone().unwrap_or_default();
        return Ok(Err(format!("deployment group {group_name} has no successful deployment to roll back to.")));
    };
    // The hosts the failed deployment reached (anything but Skipped), as they are now; for a
    // blue/green one, every original host too.
    let label = |target: &DeploymentTarget| target.instance_target.as_ref().and_then(|t| t.instance_label.clone());
    let touched: Vec<(String, Option<TargetLabel>)> = all
        .iter()
        .map(|record| changed.iter().find(|c| same_target(c, &record.target)).unwrap_or(&record.target))
        .filter(|target| {
            let skipped = matches!(
                target.instance_target.as_ref().and_then(|t| t.status.clone()),
                Some(TargetStatus::Skipped) | None
            );
            !skipped || (blue_green && label(target) == Some(TargetLabel::Blue))
        })
        .filter_map(|target| Some((target.instance_target.as_ref()?.target_id.clone()?, label(target))))
        .collect();
    let style = failed.info.deployment_style.clone().unwrap_or_default();
    let events = |label: &Option<TargetLabel>| {
        let role =
            if *label == Some(TargetLabel::Blue) { ServerTargetRole::Original } else { ServerTargetRole::Install };
        lifecycle_events(
            &ComputePlatform::Server,
            &style.deployment_type.clone().unwrap_or(DeploymentType::InPlace),
            &style.deployment_option.clone().unwrap_or(DeploymentOption::WithoutTrafficControl),
            &DeploymentCreator::CodeDeployRollback,
            role,
        )
    };
    let instances = store.list_instances().await?;
    let targets: Vec<TargetRecord> = touched
        .iter()
        .enumerate()
        .map(|(position, (name, label))| {
            let arn = instances
                .iter()
                .find(|i| i.instance_name.as_deref() == Some(name.as_str()))
                .and_then(|i| i.instance_arn.clone());
            new_instance_target(id, name, arn, &events(label), label.clone(), position, now)
        })
        .collect();
    Ok(Ok(RollbackPlan { revision, targets, config_name: None, appspec: None }))
}

fn same_target(a: &DeploymentTarget, b: &DeploymentTarget) -> bool {
    let id = |t: &DeploymentTarget| t.instance_target.as_ref().and_then(|t| t.target_id.clone());
    id(a) == id(b)
}

/// A new instance target with all its events Pending; `position` is its place in the order the
/// deployment takes its targets.
pub fn new_instance_target(
    deployment_id: &str,
    name: &str,
    arn: Option<String>,
    events: &[&str],
    label: Option<landfall_api::shapes::TargetLabel>,
    position: usize,
    now: Timestamp,
) -> TargetRecord {
    TargetRecord {
        deployment_id: deployment_id.to_owned(),
        target_id: name.to_owned(),
        position: position as i64,
        target: DeploymentTarget {
            deployment_target_type: Some(landfall_api::shapes::DeploymentTargetType::InstanceTarget),
            instance_target: Some(InstanceTarget {
                deployment_id: Some(deployment_id.to_owned()),
                target_id: Some(name.to_owned()),
                target_arn: arn,
                status: Some(TargetStatus::Pending),
                last_updated_at: Some(now),
                lifecycle_events: Some(run::pending_events(events)),
                instance_label: label,
            }),
            ..Default::default()
        },
    }
}

/// Runs until the server stops: looks at every active deployment once a tick.
pub async fn tick_forever(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let active = match state.store.active_deployments().await {
            Ok(active) => active,
            Err(error) => {
                tracing::warn!(%error, "cannot list active deployments");
                continue;
            }
        };
        for id in active {
            // Only deployments this server owns, or that nobody does (their server died).
            match state.replica.hold(&state, &replicas::lease::deployment(&id)).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(deployment = %id, %error, "cannot take the deployment's lease");
                    continue;
                }
            }
            if let Err(error) = reconcile(&state, &id).await {
                tracing::warn!(deployment = %id, %error, "cannot advance the deployment");
            }
        }
    }
}
