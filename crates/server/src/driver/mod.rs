//! The driver: feeds the engine the facts from the store and writes back what it decides, one
//! deployment at a time. It runs after every change a host reports, after a stop, and on a
//! timer (for timeouts, and to resume every active deployment after a restart). The store is the
//! truth, so a restarted server carries on where the last one stood: between passes the driver
//! keeps only the targets and commands it read and wrote itself (`handle::Remembered`), dropped
//! on any failure or change of lease, so that a pass over a large fleet reads what may have
//! changed rather than every record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::{ComputePlatform, DeploymentConfigInfo, DeploymentStatus};
use landfall_api::validate;
use landfall_engine::blue_green::Shift;
use landfall_engine::plan::{self, Effect, Plan, PlatformRules, Rollback, Situation};
use landfall_engine::run::{self, Command, CommandState, Progress};
use landfall_store::{
    DeploymentRecord, DeploymentStep, Fence, GroupRecord, HostCommandRecord, InstanceHistoryRecord, RevisionRecord,
    StoreError, StoreResult, TargetRecord,
};

use crate::errors::store_error;
use crate::ids::{new_deployment_id, new_uuid};
use crate::log_limit::LogLimit;
use crate::platform::{self, PlatformRun};
use crate::replicas;
use crate::state::AppState;

pub(crate) mod handle;
mod targets;

pub use handle::Driver;
use handle::{Dirty, Remembered};
use targets::Targets;

/// How often every active deployment is looked at, for timeouts.
pub const TICK: Duration = Duration::from_secs(1);

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

/// Reconciles in the background: for callers that need not wait (a new deployment).
pub fn reconcile_soon(state: &Arc<AppState>, deployment_id: &str) {
    let state = state.clone();
    let id = deployment_id.to_owned();
    tokio::spawn(async move {
        if let Err(error) = reconcile(&state, &id).await {
            cannot_advance(&id, &error);
        }
    });
}

/// A background pass that failed: said at most once a second (a store outage fails them all).
fn cannot_advance(deployment_id: &str, error: &StoreError) {
    static FAILED_PASSES: LogLimit = LogLimit::new();
    if let Some(held_back) = FAILED_PASSES.allow() {
        tracing::warn!(deployment = deployment_id, %error, held_back, "cannot advance the deployment");
    }
}

/// How long after an acknowledgement its event is shown in progress at the latest.
const ACK_PASS_DELAY: Duration = Duration::from_millis(200);

/// After an acknowledgement: a pass that shows the event in progress, unless another pass
/// begins first. Most events end sooner (the completion's pass records the acknowledgement's
/// time as the start), so a fast event costs one pass instead of two; a long one shows as in
/// progress within [`ACK_PASS_DELAY`].
pub fn reconcile_after_ack(state: &Arc<AppState>, deployment_id: &str) {
    let state = state.clone();
    let id = deployment_id.to_owned();
    let begun = state.driver.passes_begun(&id);
    tokio::spawn(async move {
        tokio::time::sleep(ACK_PASS_DELAY).await;
        if state.driver.passes_begun(&id) != begun {
            return;
        }
        if let Err(error) = reconcile(&state, &id).await {
            cannot_advance(&id, &error);
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
    let Some(fence) = state.replica.hold(&lease).await? else {
        // Another server owns it, and may not know what just changed here.
        replicas::nudge_owner(state, deployment_id).await;
        return Ok(None);
    };
    state.driver.pass_begins(deployment_id);
    // A concurrent writer (a stop, an acknowledgement) makes the write Changed: recompute.
    for _ in 0..5 {
        match step_once(state, deployment_id, &fence).await {
            Err(StoreError::Changed(_)) => continue,
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(deployment = deployment_id, "another server took the deployment over");
                state.replica.forget(&lease);
                state.driver.passes_end(deployment_id);
                return Ok(None);
            }
            Ok(Outcome::Finished(follow_up)) => {
                state.driver.passes_end(deployment_id);
                state.replica.release(&lease).await?;
                return Ok(follow_up);
            }
            Ok(Outcome::Running) => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Changed(format!("deployment {deployment_id} (five passes in a row)")))
}

enum Outcome {
    Running,
    Finished(Option<String>),
}

/// One pass over a deployment: load its facts, let the planner decide, write the plan in one
/// transaction, carry out its effects.
async fn step_once(state: &AppState, deployment_id: &str, fence: &Fence) -> StoreResult<Outcome> {
    let began = std::time::Instant::now();
    let Some(mut loaded) = Loaded::read(state, deployment_id, fence).await? else {
        return Ok(Outcome::Finished(None));
    };
    if loaded.waits_for_its_appspec() {
        return Ok(Outcome::Running);
    }
    loaded.advance_platform(state).await?;
    let rollback_id = new_deployment_id();
    let commands = loaded.engine_commands();
    let situation = Situation {
        deployment: &loaded.record.info,
        progress: &loaded.record.progress,
        targets: loaded.targets.docs(),
        commands: &commands,
        config: loaded.config.as_ref(),
        group: loaded.group.as_ref().map(|g| &g.info),
        platform: loaded.platform.as_deref().map(|p| p as &dyn PlatformRules),
        timeouts: state.driver.timeouts,
        zone_of: &loaded.zone_of,
        rollback_id: &rollback_id,
        now: state.clock.now(),
    };
    let read = began.elapsed();
    let Some(plan) = plan::plan(&situation) else {
        loaded.remember(state, fence);
        return Ok(Outcome::Running);
    };
    let planned = began.elapsed();
    write(state, &loaded, &plan, situation.now, fence).await?;
    tracing::debug!(
        deployment = deployment_id,
        targets = loaded.targets.len(),
        commands = commands.len(),
        changed = plan.step.changed_targets.len(),
        read_ms = read.as_millis() as u64,
        plan_ms = (planned - read).as_millis() as u64,
        write_ms = (began.elapsed() - planned).as_millis() as u64,
        "reconcile pass"
    );
    carry_out(state, &loaded, &plan).await;
    match &plan.step.finished {
        Some(status) => {
            tracing::info!(deployment = deployment_id, status = status.as_str(), "deployment finished");
            Ok(Outcome::Finished(plan.rollback.map(|r| rollback_id_of(&r))))
        }
        None => {
            loaded.targets.update(&plan.step.changed_targets);
            loaded.remember(state, fence);
            Ok(Outcome::Running)
        }
    }
}

fn rollback_id_of(rollback: &Rollback) -> String {
    rollback.info.deployment_id.clone().unwrap_or_default()
}

/// What the planner needs of a deployment, read from the store.
struct Loaded {
    record: DeploymentRecord,
    /// In the deployment's order.
    targets: Targets,
    commands: Vec<HostCommandRecord>,
    config: Option<DeploymentConfigInfo>,
    group: Option<GroupRecord>,
    /// A Lambda or ECS deployment's platform side, from the AppSpec it keeps.
    platform: Option<Box<dyn PlatformRun>>,
    /// The target hosts' zones, read only until a zonal deployment is planned (which fixes them).
    zone_of: HashMap<String, String>,
}

impl Loaded {
    /// `None` once the deployment is over (or gone). Targets and commands the last pass under
    /// this `fence` left are read again only as far as they may have changed.
    async fn read(state: &AppState, deployment_id: &str, fence: &Fence) -> StoreResult<Option<Loaded>> {
        let store = state.store.as_ref();
        let remembered = state.driver.recall(deployment_id, fence.epoch);
        let Some(record) = store.deployment(deployment_id).await? else { return Ok(None) };
        if !record.info.status.as_ref().is_none_or(DeploymentStatus::is_active) {
            return Ok(None);
        }
        let (targets, commands) = match remembered {
            Some(Remembered { targets, commands, .. }) => (targets, refreshed(state, deployment_id, commands).await?),
            None => (
                Targets::new(deployment_id, store.targets(deployment_id).await?),
                store.commands_of(deployment_id).await?,
            ),
        };
        let config_name = record.info.deployment_config_name.clone().unwrap_or_default();
        let config = match landfall_api::predefined::predefined_config(&config_name) {
            Some(config) => Some(config),
            None => store.deployment_config(&config_name).await?,
        };
        let group = store.deployment_group_by_id(&record.group_id).await?;
        let platform = platform_run(state, &record).await;
        let zonal = config.as_ref().is_some_and(|c| c.zonal_config.is_some());
        let zone_of = if zonal && !record.progress.started { zones(state, &targets).await? } else { HashMap::new() };
        Ok(Some(Loaded { record, targets, commands, config, group, platform, zone_of }))
    }

    /// A Lambda or ECS deployment whose AppSpec cannot be read (made by a release that did not
    /// carry them out) waits, Created, until it is stopped.
    fn waits_for_its_appspec(&self) -> bool {
        let server = matches!(self.record.info.compute_platform, None | Some(ComputePlatform::Server));
        !server && self.platform.is_none() && self.record.progress.stop.is_none()
    }

    /// Carries out the events in flight that are the server's own (a platform's events, a
    /// Server deployment's traffic events): one may have just finished.
    async fn advance_platform(&mut self, state: &AppState) -> StoreResult<()> {
        let store = state.store.as_ref();
        let deployment_id = self.record.id().to_owned();
        // A platform deployment's one target, copied only for one.
        let target = self.platform.as_ref().and_then(|_| self.targets.first());
        let advanced = match (&self.platform, target.as_ref()) {
            (Some(run), Some(target)) => {
                let cx = self.platform_cx(state);
                let view = platform::Run {
                    deployment: &self.record.info,
                    shift: plan::traffic_shift(self.config.as_ref()).unwrap_or(Shift::AllAtOnce),
                    stopping: self.record.progress.stop.is_some(),
                    target,
                    commands: &self.commands,
                };
                let advanced = run.advance(&cx, &view).await;
                if let Some(changed) = &advanced.target {
                    store.update_target(changed).await?;
                    self.targets = Targets::new(&deployment_id, store.targets(&deployment_id).await?);
                }
                advanced.completed
            }
            (None, _) if self.platform_kind() == ComputePlatform::Server => {
                crate::traffic::advance(state, &self.record.info, &self.commands).await
            }
            _ => false,
        };
        if advanced {
            self.commands = refreshed(state, &deployment_id, std::mem::take(&mut self.commands)).await?;
        }
        Ok(())
    }

    /// Keeps the targets and commands for the deployment's next pass.
    fn remember(self, state: &AppState, fence: &Fence) {
        let Loaded { record, targets, commands, .. } = self;
        state.driver.remember(record.id(), Remembered { epoch: fence.epoch, targets, commands });
    }

    fn platform_kind(&self) -> ComputePlatform {
        self.record.info.compute_platform.clone().unwrap_or(ComputePlatform::Server)
    }

    /// The AWS identity a platform deployment's calls are made as: its group's service role.
    fn platform_cx<'a>(&'a self, state: &'a AppState) -> platform::Cx<'a> {
        let role = self.group.as_ref().and_then(|g| g.info.service_role_arn.as_deref());
        platform::Cx { state, aws: state.aws.for_role(role) }
    }

    /// The commands in the engine's shape.
    fn engine_commands(&self) -> Vec<Command> {
        let mut commands: Vec<Command> = self.commands.iter().map(engine_command).collect();
        run::sort_commands(&mut commands);
        commands
    }
}

/// A deployment's commands brought up to date: `known` (in stored order) as far as they are
/// final, then every command from the first one that is not read again.
async fn refreshed(
    state: &AppState,
    deployment_id: &str,
    mut known: Vec<HostCommandRecord>,
) -> StoreResult<Vec<HostCommandRecord>> {
    let from = match known.iter().find(|command| !command.state.is_final()) {
        Some(first_open) => first_open.seq,
        None => known.last().map_or(i64::MIN, |last| last.seq + 1),
    };
    let newer = state.store.commands_from(deployment_id, from).await?;
    known.truncate(known.partition_point(|command| command.seq < from));
    known.extend(newer);
    Ok(known)
}

/// The platform side of a Lambda or ECS deployment, from the AppSpec it keeps.
async fn platform_run(state: &AppState, record: &DeploymentRecord) -> Option<Box<dyn PlatformRun>> {
    let platform = record.info.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    if platform == ComputePlatform::Server {
        return None;
    }
    let appspec = match (&record.progress.appspec, &record.info.revision) {
        (Some(appspec), _) => appspec.clone(),
        // Made before deployments kept their AppSpec: the registered revision has it.
        (None, Some(location)) => platform::registered_appspec(state, &record.application_id, location).await?,
        (None, None) => return None,
    };
    platform::open(&platform, record.info.creator.as_ref(), &appspec).unwrap_or_else(|error| {
        tracing::warn!(deployment = record.id(), %error, "cannot read the deployment's AppSpec");
        None
    })
}

/// The zones (zone tags) of a deployment's target hosts.
async fn zones(state: &AppState, targets: &Targets) -> StoreResult<HashMap<String, String>> {
    let mut zone_of = HashMap::new();
    for instance in state.store.list_instances().await? {
        let Some(name) = instance.instance_name.as_deref() else { continue };
        let zone = instance.tags.iter().flatten().find(|tag| tag.key.as_deref() == Some(state.zone_tag.as_str()));
        if let Some(zone) = zone.and_then(|tag| tag.value.clone())
            && targets.contains(name)
        {
            zone_of.insert(name.to_owned(), zone);
        }
    }
    Ok(zone_of)
}

/// Writes a plan in one transaction, fenced by the deployment's lease.
async fn write(state: &AppState, loaded: &Loaded, plan: &Plan, now: Timestamp, fence: &Fence) -> StoreResult<()> {
    let deployment_id = loaded.record.id();
    let step = &plan.step;
    let targets = loaded.targets.records_of(&step.changed_targets);
    let new_commands = plan
        .new_commands
        .iter()
        .map(|command| HostCommandRecord {
            id: format!("hc-{}", new_uuid()),
            deployment_id: deployment_id.to_owned(),
            target_id: command.target_id.clone(),
            lifecycle_event: command.event.clone(),
            state: if command.taken { CommandState::Dispatched } else { CommandState::Queued },
            created_at: now,
            dispatched_at: command.taken.then_some(now),
            acknowledged_at: command.acknowledged.then_some(now),
            ..Default::default()
        })
        .collect();
    let history = plan
        .installed
        .iter()
        .map(|installed| InstanceHistoryRecord {
            group_id: loaded.record.group_id.clone(),
            instance_name: installed.instance.clone(),
            revision_key: installed.revision_key.clone(),
            healthy: installed.healthy,
        })
        .collect();
    let deployment =
        DeploymentRecord { info: step.deployment.clone(), progress: step.progress.clone(), ..loaded.record.clone() };
    let follow_up = plan.rollback.as_ref().map(|rollback| rollback_records(&loaded.record, rollback, now));
    let triggers = crate::triggers::messages(state, &step.deployment, &plan.notifications, now);
    state
        .store
        .apply_deployment_step(&DeploymentStep {
            now,
            events: plan.timeline.clone(),
            triggers,
            deployment,
            targets,
            new_commands,
            command_updates: step.command_updates.clone(),
            history,
            target_revision: plan.last_good_revision.clone(),
            follow_up,
            fence: Some(fence.clone()),
        })
        .await
}

/// The records of a rollback deployment the plan starts.
fn rollback_records(
    failed: &DeploymentRecord,
    rollback: &Rollback,
    now: Timestamp,
) -> (DeploymentRecord, Vec<TargetRecord>, RevisionRecord) {
    let id = rollback_id_of(rollback);
    let targets = rollback
        .targets
        .iter()
        .enumerate()
        .map(|(position, target)| TargetRecord {
            deployment_id: id.clone(),
            target_id: target.instance_target.as_ref().and_then(|t| t.target_id.clone()).unwrap_or_default(),
            position: position as i64,
            target: target.clone(),
        })
        .collect();
    let revision = RevisionRecord {
        application_id: failed.application_id.clone(),
        key: validate::revision_key(&rollback.revision),
        location: rollback.revision.clone(),
        info: landfall_api::shapes::GenericRevisionInfo { register_time: Some(now), ..Default::default() },
    };
    let record = DeploymentRecord {
        application_id: failed.application_id.clone(),
        group_id: failed.group_id.clone(),
        exclusive: true,
        info: rollback.info.clone(),
        progress: rollback.progress.clone(),
        version: 0,
    };
    (record, targets, revision)
}

/// Carries out what a written plan asks for beyond the store.
async fn carry_out(state: &AppState, loaded: &Loaded, plan: &Plan) {
    for effect in &plan.effects {
        match effect {
            Effect::WakeHosts(hosts) => {
                let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
                replicas::wake_hosts(state, &hosts).await;
            }
            Effect::RouteTraffic(routing) => crate::traffic::route(state, routing).await,
            Effect::DeliverTriggers => replicas::wake_outbox(state).await,
            Effect::FinishPlatform { status, rolled_back } => {
                if let Some(run) = &loaded.platform
                    && let Some(target) = loaded.targets.first()
                {
                    run.finished(&loaded.platform_cx(state), &loaded.record.info, status, &target, *rolled_back).await;
                }
            }
            Effect::NudgeFleet => replicas::wake_fleet(state).await,
        }
    }
}

fn engine_command(record: &HostCommandRecord) -> Command {
    Command {
        state: record.state,
        id: record.id.clone(),
        target_id: record.target_id.clone(),
        event: record.lifecycle_event.clone(),
        created_at: record.created_at,
        dispatched_at: record.dispatched_at,
        acknowledged_at: record.acknowledged_at,
        completed_at: record.completed_at,
        diagnostics: record.diagnostics.clone(),
    }
}

/// Changes a deployment and its engine progress with `change` (which may refuse), retried if
/// the deployment changed meanwhile, then lets the engine act on it at once; returns the
/// deployment as it then stands.
pub async fn change_progress(
    state: &AppState,
    id: &str,
    change: impl Fn(&mut DeploymentRecord, &mut Progress) -> ApiResult<()>,
) -> ApiResult<DeploymentRecord> {
    let load = || async {
        match state.store.deployment(id).await.map_err(store_error)? {
            Some(record) => Ok(record),
            None => err(Exception::DeploymentDoesNotExist, format!("The deployment {id} could not be found.")),
        }
    };
    for _ in 0..5 {
        let mut record = load().await?;
        let mut progress = std::mem::take(&mut record.progress);
        change(&mut record, &mut progress)?;
        record.progress = progress;
        match state.store.update_deployment(&record).await {
            Err(StoreError::Changed(_)) => continue,
            other => other.map_err(store_error)?,
        }
        reconcile(state, record.id()).await.map_err(store_error)?;
        return load().await;
    }
    err(Exception::Throttling, "The deployment is changing too fast; try again.")
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
        target: run::new_instance_target(deployment_id, name, arn, events, label, now),
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
            match state.replica.hold(&replicas::lease::deployment(&id)).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(deployment = %id, %error, "cannot take the deployment's lease");
                    continue;
                }
            }
            if let Err(error) = reconcile(&state, &id).await {
                cannot_advance(&id, &error);
            }
        }
    }
}
