//! The driver: feeds the engine the facts from the store and writes back what it decides, one
//! deployment at a time. It runs after every change a host reports, after a stop, and on a
//! timer (for timeouts, and to resume every active deployment after a restart). The store is its
//! only memory, so a restarted server carries on where the last one stood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::shapes::{
    ComputePlatform, DeploymentCreator, DeploymentInfo, DeploymentOption, DeploymentStatus, DeploymentTarget,
    DeploymentType, InstanceTarget, RollbackInfo, TargetStatus,
};
use landfall_api::validate;
use landfall_engine::lifecycle::{self, ServerTargetRole, lifecycle_events};
use landfall_engine::run::{self, Command, CommandState, Facts, Progress, Settings, Timeouts};
use landfall_store::{
    DeploymentRecord, DeploymentStep, HostCommandRecord, InstanceHistoryRecord, RevisionRecord, StoreError,
    StoreResult, TargetRecord,
};
use tokio::sync::Notify;

use crate::api::common::{new_deployment_id, new_uuid};
use crate::state::AppState;

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

/// One deployment; returns a follow-up deployment (a rollback) to look at next.
async fn reconcile_one(state: &AppState, deployment_id: &str) -> StoreResult<Option<String>> {
    // A concurrent writer (another replica, a stop) makes the write a Conflict: recompute.
    for _ in 0..5 {
        match step_once(state, deployment_id).await {
            Err(StoreError::Conflict(_)) => continue,
            Ok(Outcome::Finished(follow_up)) => return Ok(follow_up),
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

async fn step_once(state: &AppState, deployment_id: &str) -> StoreResult<Outcome> {
    let store = state.store.as_ref();
    let Some(record) = store.deployment(deployment_id).await? else {
        return Ok(Outcome::Finished(None));
    };
    let targets = store.targets(deployment_id).await?;
    let mut records = store.commands_of(deployment_id).await?;
    // Traffic events in flight first: one may have just finished.
    if crate::traffic::advance(state, &record.info, &records).await {
        records = store.commands_of(deployment_id).await?;
    }
    let commands: Vec<Command> = records.into_iter().map(engine_command).collect();
    let progress: Progress = record.progress.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let platform = record.info.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    let blue_green = record.info.deployment_style.as_ref().and_then(|s| s.deployment_type.clone())
        == Some(DeploymentType::BlueGreen);
    if (platform != ComputePlatform::Server || blue_green) && progress.stop.is_none() {
        // Lambda, ECS and blue/green deployments need traffic control, which the engine does
        // not drive yet: they wait, Created, until it does (or until they are stopped, which
        // the engine settles without touching any host).
        return Ok(Outcome::Running);
    }
    let config_name = record.info.deployment_config_name.clone().unwrap_or_default();
    let minimum_healthy_hosts = match landfall_api::predefined::predefined_config(&config_name) {
        Some(config) => config.minimum_healthy_hosts,
        None => store.deployment_config(&config_name).await?.and_then(|config| config.minimum_healthy_hosts),
    };
    let settings = Settings {
        minimum_healthy_hosts,
        ignore_application_stop_failures: record.info.ignore_application_stop_failures == Some(true),
        timeouts: state.driver.timeouts,
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
    let step = run::reconcile(&facts);
    if step.is_empty(&facts) {
        return Ok(Outcome::Running);
    }

    let mut deployment = DeploymentRecord {
        info: step.deployment.clone(),
        progress: serde_json::to_string(&step.progress).ok(),
        ..record.clone()
    };
    let new_commands: Vec<HostCommandRecord> = step
        .new_commands
        .iter()
        .map(|(target, event)| {
            // Traffic events are the server's own work (crate::traffic): taken and
            // acknowledged at once, never handed to an agent.
            let on_server = platform == ComputePlatform::Server && lifecycle::runs_on_server(event);
            HostCommandRecord {
                id: format!("hc-{}", new_uuid()),
                deployment_id: deployment_id.to_owned(),
                target_id: target.clone(),
                lifecycle_event: event.clone(),
                state: if on_server { CommandState::Dispatched } else { CommandState::Queued }.as_str().to_owned(),
                created_at: now,
                dispatched_at: on_server.then_some(now),
                acknowledged_at: on_server.then_some(now),
                ..Default::default()
            }
        })
        .collect();
    let revision_key = record.info.revision.as_ref().map(validate::revision_key);
    let history = step
        .finished_targets
        .iter()
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
    let follow_up =
        if step.rollback { rollback(state, &mut deployment, &step.changed_targets, &ordered).await? } else { None };
    let follow_up_id = follow_up.as_ref().map(|(record, ..)| record.id().to_owned());
    let changed: Vec<TargetRecord> = step
        .changed_targets
        .iter()
        .filter_map(|target| {
            let id = target.instance_target.as_ref().and_then(|t| t.target_id.clone())?;
            let position = ordered.iter().find(|t| t.target_id == id).map_or(0, |t| t.position);
            Some(TargetRecord {
                deployment_id: deployment_id.to_owned(),
                target_id: id,
                position,
                target: target.clone(),
            })
        })
        .collect();
    let write = DeploymentStep {
        now,
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
    };
    store.apply_deployment_step(&write).await?;
    // Hosts with work (new, or queued again) stop waiting in their long polls.
    let requeued = step
        .command_updates
        .iter()
        .filter(|(_, state, _)| *state == CommandState::Queued)
        .filter_map(|(id, ..)| commands.iter().find(|c| c.id == *id).map(|c| c.target_id.as_str()));
    for host in new_commands.iter().map(|c| c.target_id.as_str()).chain(requeued) {
        state.driver.host_signal(host).notify_waiters();
    }
    if let Some(status) = &step.finished {
        tracing::info!(deployment = deployment_id, status = status.as_str(), "deployment finished");
        return Ok(Outcome::Finished(follow_up_id));
    }
    Ok(Outcome::Running)
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

/// Prepares the rollback of a deployment that failed or stopped: a new deployment of the group's
/// last successful revision to the hosts this one touched, and the `rollbackInfo` of both. With
/// nothing to go back to, only the message says why.
async fn rollback(
    state: &AppState,
    failed: &mut DeploymentRecord,
    changed: &[DeploymentTarget],
    all: &[TargetRecord],
) -> StoreResult<Option<(DeploymentRecord, Vec<TargetRecord>, RevisionRecord)>> {
    let store = state.store.as_ref();
    let group = store.deployment_group_by_id(&failed.group_id).await?;
    let target_revision = group.as_ref().and_then(|g| g.info.target_revision.clone());
    let failed_id = failed.id().to_owned();
    let Some(revision) = target_revision else {
        let group_name = failed.info.deployment_group_name.clone().unwrap_or_default();
        failed.info.rollback_info = Some(RollbackInfo {
            rollback_message: Some(format!(
                "Automatic rollback was not performed: deployment group {group_name} has no successful deployment to roll back to."
            )),
            ..Default::default()
        });
        return Ok(None);
    };
    // The hosts the failed deployment reached (anything but Skipped), as they are now.
    let touched: Vec<String> = all
        .iter()
        .map(|record| changed.iter().find(|c| same_target(c, &record.target)).unwrap_or(&record.target))
        .filter(|target| {
            !matches!(
                target.instance_target.as_ref().and_then(|t| t.status.clone()),
                Some(TargetStatus::Skipped) | None
            )
        })
        .filter_map(|target| target.instance_target.as_ref().and_then(|t| t.target_id.clone()))
        .collect();
    let id = new_deployment_id();
    let now = state.clock.now();
    let events = lifecycle_events(
        &ComputePlatform::Server,
        &DeploymentType::InPlace,
        &failed
            .info
            .deployment_style
            .as_ref()
            .and_then(|s| s.deployment_option.clone())
            .unwrap_or(DeploymentOption::WithoutTrafficControl),
        &DeploymentCreator::CodeDeployRollback,
        ServerTargetRole::Install,
    );
    let instances = store.list_instances().await?;
    let targets: Vec<TargetRecord> = touched
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let arn = instances
                .iter()
                .find(|i| i.instance_name.as_deref() == Some(name.as_str()))
                .and_then(|i| i.instance_arn.clone());
            new_instance_target(&id, name, arn, &events, None, position, now)
        })
        .collect();
    let info = DeploymentInfo {
        deployment_id: Some(id.clone()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(now),
        creator: Some(DeploymentCreator::CodeDeployRollback),
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
        progress: None,
        version: 0,
    };
    Ok(Some((record, targets, revision_record)))
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
            if let Err(error) = reconcile(&state, &id).await {
                tracing::warn!(deployment = %id, %error, "cannot advance the deployment");
            }
        }
    }
}
