//! Running a Server deployment: one pure function, [`reconcile`], that looks at a deployment, its
//! targets and its host commands as they are now and says what happens next. It is idempotent:
//! called twice on the same facts it asks for nothing twice, so the server can call it after every
//! command change, on every timer tick, and after a restart, with the store as the only memory.
//!
//! Scheduling follows the minimum-healthy-hosts rules (semantics reference §4.2): with `m` the
//! minimum and `N` targets, at most `F = N - m` targets may be offline (in flight or failed) at a
//! time; a failure that uses up the budget while targets are still waiting fails the deployment
//! (HEALTH_CONSTRAINTS); at the end at least `max(m, 1)` targets must have succeeded.

use serde::{Deserialize, Serialize};

use landfall_api::Timestamp;
use landfall_api::shapes::{
    DeploymentInfo, DeploymentOverview, DeploymentStatus, DeploymentTarget, DeploymentTargetType, Diagnostics,
    ErrorCode, ErrorInformation, InstanceTarget, LifecycleErrorCode, LifecycleEvent, LifecycleEventStatus,
    MinimumHealthyHosts, MinimumHealthyHostsType, TargetLabel, TargetStatus,
};

/// What the engine keeps about a running deployment besides its API record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Set once the deployment has been planned (minimum computed, status InProgress).
    #[serde(default)]
    pub started: bool,
    /// `m`: targets that must stay healthy.
    #[serde(default)]
    pub minimum_healthy: i64,
    /// `F = N - m`: targets that may be offline at once.
    #[serde(default)]
    pub failure_budget: i64,
    /// OneAtATime: one target at a time, whatever the budget.
    #[serde(default)]
    pub one_at_a_time: bool,
    /// A stop was asked for (StopDeployment); no new commands are sent.
    #[serde(default)]
    pub stop: Option<StopRequest>,
    /// The deployment has failed (for this code) and waits for commands in flight to finish.
    #[serde(default)]
    pub failing: Option<String>,
    /// Where a blue/green deployment stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<crate::blue_green::BlueGreenProgress>,
    /// Where a zonal deployment stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<crate::zonal::ZonalProgress>,
    /// ContinueDeployment(READY_WAIT) came: a blue/green deployment waiting in Ready reroutes.
    #[serde(default)]
    pub continue_ready: bool,
    /// ContinueDeployment(TERMINATION_WAIT) or SkipWaitTimeForInstanceTermination came.
    #[serde(default)]
    pub end_termination_wait: bool,
    /// What a deployment on a platform the server drives through an API (Lambda, ECS) keeps:
    /// its AppSpec as read when it was created. The engine only carries it along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appspec: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Roll back once stopped.
    pub rollback: bool,
    /// Why the engine itself stopped the deployment (a wait that ran out); none for a user's stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Why an alarm stopped the deployment (ALARM_ACTIVE): the alarms in ALARM, or why their
    /// state could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
}

impl StopRequest {
    /// A user's StopDeployment.
    pub fn by_user(rollback: bool) -> StopRequest {
        StopRequest { rollback, ..Default::default() }
    }

    /// An alarm's stop; whether it rolls back is the deployment's DEPLOYMENT_STOP_ON_ALARM.
    pub fn by_alarm(message: String) -> StopRequest {
        StopRequest { alarm: Some(message), ..Default::default() }
    }
}

/// Where a host command stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandState {
    /// Waiting for the host's agent to poll it.
    #[default]
    Queued,
    /// Handed to the agent (it may have acknowledged it: see `acknowledged_at`).
    Dispatched,
    Succeeded,
    Failed,
    /// Withdrawn before the agent took it (a stopped or failed deployment).
    Cancelled,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "Queued",
            CommandState::Dispatched => "Dispatched",
            CommandState::Succeeded => "Succeeded",
            CommandState::Failed => "Failed",
            CommandState::Cancelled => "Cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<CommandState> {
        [
            CommandState::Queued,
            CommandState::Dispatched,
            CommandState::Succeeded,
            CommandState::Failed,
            CommandState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }

    pub fn is_final(self) -> bool {
        matches!(self, CommandState::Succeeded | CommandState::Failed | CommandState::Cancelled)
    }
}

/// One lifecycle event sent to one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: String,
    pub target_id: String,
    pub event: String,
    pub state: CommandState,
    pub created_at: Timestamp,
    pub dispatched_at: Option<Timestamp>,
    pub acknowledged_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub diagnostics: Option<Diagnostics>,
}

/// How long a host may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From a command being queued to the agent taking it (a dead agent fails the host).
    pub pickup_ms: i64,
    /// From a command being handed out to the agent acknowledging it. An agent acknowledges at
    /// once; a command never acknowledged was lost on the way (the server died before its answer
    /// left), so it is queued again.
    pub ack_ms: i64,
    /// From the agent taking a command to its completion (the agent's script timeouts are
    /// shorter; this catches an agent that died while running it).
    pub event_ms: i64,
    /// How long AllowTraffic waits for an instance to pass its target groups' health checks.
    pub traffic_ms: i64,
}

impl Default for Timeouts {
    fn default() -> Self {
        // CodeDeploy: an event must start within 5 minutes and finish within an hour; the hour
        // gets a little slack so the agent's own script timeout reports first.
        Timeouts {
            pickup_ms: 5 * 60 * 1000,
            ack_ms: 10 * 1000,
            event_ms: 3600 * 1000 + 5 * 60 * 1000,
            traffic_ms: 5 * 60 * 1000,
        }
    }
}

/// The deployment-level settings the engine reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub minimum_healthy_hosts: Option<MinimumHealthyHosts>,
    pub ignore_application_stop_failures: bool,
    pub timeouts: Timeouts,
    /// For blue/green deployments.
    pub blue_green: crate::blue_green::BlueGreenSettings,
    /// For in-place deployments one zone at a time (a configuration's zonalConfig).
    pub zonal: Option<crate::zonal::ZonalSettings>,
}

/// Everything [`reconcile`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub deployment: &'a DeploymentInfo,
    pub progress: &'a Progress,
    /// In scheduling order.
    pub targets: &'a [DeploymentTarget],
    /// Every command of the deployment, in the order [`sort_commands`] puts them (so a target's
    /// event is found by binary search, not by a scan of the whole fleet's commands).
    pub commands: &'a [Command],
    pub settings: &'a Settings,
    pub now: Timestamp,
}

/// What [`reconcile`] decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub deployment: DeploymentInfo,
    pub progress: Progress,
    /// Targets whose record changed.
    pub changed_targets: Vec<DeploymentTarget>,
    /// Lifecycle events to send: (target id, event name); added with [`Step::ask_for`].
    pub new_commands: Vec<(String, String)>,
    asked: Asked,
    /// Commands whose state the engine changes (timeouts, cancellations).
    pub command_updates: Vec<(String, CommandState, Option<Diagnostics>)>,
    /// Targets that finished in this step: (target id, succeeded).
    pub finished_targets: Vec<(String, bool)>,
    /// The deployment finished in this step.
    pub finished: Option<DeploymentStatus>,
    /// The deployment finished and asks to be rolled back.
    pub rollback: bool,
}

impl Step {
    /// A step that changes nothing yet.
    pub(crate) fn unchanged(facts: &Facts<'_>) -> Step {
        Step { deployment: facts.deployment.clone(), progress: facts.progress.clone(), ..Default::default() }
    }

    /// Whether the step sends `target` the event already.
    pub(crate) fn asks_for(&self, target: &str, event: &str) -> bool {
        self.asked.0.contains(&(target.to_owned(), event.to_owned()))
    }

    /// Sends `target` the event, once however often asked.
    pub(crate) fn ask_for(&mut self, target: String, event: String) {
        if self.asked.0.insert((target.clone(), event.clone())) {
            self.new_commands.push((target, event));
        }
    }

    /// The events asked for so far, withdrawn.
    pub(crate) fn withdraw_new_commands(&mut self) -> Vec<(String, String)> {
        self.asked.0.clear();
        std::mem::take(&mut self.new_commands)
    }

    /// Whether anything at all changed (so nothing needs writing).
    pub fn is_empty(&self, facts: &Facts<'_>) -> bool {
        self.changed_targets.is_empty()
            && self.new_commands.is_empty()
            && self.command_updates.is_empty()
            && self.deployment == *facts.deployment
            && self.progress == *facts.progress
    }
}

/// An index of a step's `new_commands`, so asking for an event costs the same however many
/// hosts the step already sends events to. It always holds what `new_commands` does, so it
/// takes no part in comparing steps.
#[derive(Clone, Default)]
struct Asked(std::collections::HashSet<(String, String)>);

impl PartialEq for Asked {
    fn eq(&self, _: &Asked) -> bool {
        true
    }
}

impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({} asked)", self.0.len())
    }
}

/// Events whose failure `ignoreApplicationStopFailures` lets the host get past.
const IGNORABLE_EVENTS: [&str; 3] = ["ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"];

const HEALTH_CONSTRAINTS_MESSAGE: &str = "The overall deployment failed because too many individual instances failed \
    deployment, too few healthy instances are available for deployment, or some instances in your deployment group \
    are experiencing problems.";
const NO_INSTANCES_MESSAGE: &str = "The deployment failed because no instances were found for your deployment group. \
    Check your deployment group settings to make sure the tags for your instances correctly identify the instances \
    you want to deploy to, and then try again.";

pub(crate) fn is_terminal(status: &Option<DeploymentStatus>) -> bool {
    matches!(status, Some(DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped))
}

/// `m` and `F` for `n` targets, and whether the configuration is OneAtATime.
pub fn minimum_healthy(hosts: Option<&MinimumHealthyHosts>, n: i64) -> (i64, i64, bool) {
    let kind = hosts.and_then(|h| h.r#type.clone()).unwrap_or(MinimumHealthyHostsType::MostConcurrency);
    let value = hosts.and_then(|h| h.value).unwrap_or(1);
    let (minimum, one_at_a_time) = match kind {
        MinimumHealthyHostsType::HostCount => (value, false),
        // Rounded up, once, at the start.
        MinimumHealthyHostsType::FleetPercent => ((n * value + 99) / 100, false),
        _ => ((n - 1).max(0), true),
    };
    (minimum, n - minimum, one_at_a_time)
}

/// Decides what happens next in a Server deployment.
pub fn reconcile(facts: &Facts<'_>) -> Step {
    let mut step = Step::unchanged(facts);
    if settled_already(&mut step, facts) {
        return step;
    }
    let mut targets: Vec<DeploymentTarget> = facts.targets.to_vec();
    let now = facts.now;
    if !step.progress.started && !start(&mut step, &mut targets, facts) {
        record_changes(&mut step, facts.targets, targets);
        return step;
    }

    // 1. What the hosts did: move each target in flight along its events.
    for target in targets.iter_mut() {
        advance_target(target, &mut step, facts, None);
    }

    // 2. A stop, or a failure that already happened: nothing new is sent; waiting targets are
    //    skipped; queued commands are withdrawn.
    let halted = step.progress.stop.is_some() || step.progress.failing.is_some();
    if !halted && crate::zonal::next_zone_may_start(&mut step, &targets, now) {
        schedule(&mut step, &mut targets, facts);
    }
    if step.progress.stop.is_some() || step.progress.failing.is_some() {
        halt(&mut step, &mut targets, facts);
    }

    // 3. Finished when no target is in flight.
    let in_flight = targets.iter().any(|t| status_of(t) == Some(TargetStatus::InProgress));
    let waiting = targets.iter().any(|t| status_of(t) == Some(TargetStatus::Pending));
    if !in_flight && !waiting {
        finish(&mut step, &targets, now);
    }
    step.deployment.deployment_overview = Some(overview(&targets));
    record_changes(&mut step, facts.targets, targets);
    step
}

/// Whether there is nothing to decide: the deployment is over, or was stopped before it was even
/// planned (then it is settled here, nothing having run anywhere).
pub(crate) fn settled_already(step: &mut Step, facts: &Facts<'_>) -> bool {
    if is_terminal(&step.deployment.status) {
        return true;
    }
    if step.progress.started || step.progress.stop.is_none() {
        return false;
    }
    let mut targets = facts.targets.to_vec();
    for target in targets.iter_mut() {
        skip_target(target, facts.now);
    }
    step.deployment.start_time.get_or_insert(facts.now);
    finish(step, &targets, facts.now);
    step.deployment.deployment_overview = Some(overview(&targets));
    record_changes(step, facts.targets, targets);
    true
}

/// Plans the deployment: fails it at once when it cannot run, else marks it InProgress.
/// Returns whether it goes on.
fn start(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>) -> bool {
    let n = targets.len() as i64;
    let now = facts.now;
    if n == 0 {
        fail_now(step, ErrorCode::NoInstances, NO_INSTANCES_MESSAGE, now);
        return false;
    }
    plan(step, targets, facts, n)
}

/// Plans a deployment whose minimum healthy hosts count over `n` of its targets.
pub(crate) fn plan(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>, n: i64) -> bool {
    let now = facts.now;
    let (minimum, budget, one_at_a_time) = minimum_healthy(facts.settings.minimum_healthy_hosts.as_ref(), n);
    if budget <= 0 {
        let message = format!(
            "The deployment failed because the minimum number of healthy instances ({minimum}) is not less than the \
             number of instances in the deployment ({n}), so no instance could be taken offline."
        );
        for target in targets.iter_mut() {
            skip_target(target, now);
        }
        fail_now(step, ErrorCode::HealthConstraintsInvalid, &message, now);
        step.deployment.deployment_overview = Some(overview(targets));
        return false;
    }
    step.progress = Progress {
        started: true,
        minimum_healthy: minimum,
        failure_budget: budget,
        one_at_a_time,
        ..step.progress.clone()
    };
    if let Some(zonal) = &facts.settings.zonal {
        step.progress.zones = Some(crate::zonal::plan(targets, zonal));
    }
    step.deployment.status = Some(DeploymentStatus::InProgress);
    step.deployment.start_time = Some(now);
    true
}

pub(crate) fn fail_now(step: &mut Step, code: ErrorCode, message: &str, now: Timestamp) {
    step.deployment.status = Some(DeploymentStatus::Failed);
    step.deployment.complete_time = Some(now);
    step.deployment.start_time.get_or_insert(now);
    step.deployment.error_information = Some(ErrorInformation { code: Some(code), message: Some(message.to_owned()) });
    step.finished = Some(DeploymentStatus::Failed);
}

pub(crate) fn instance(target: &DeploymentTarget) -> Option<&InstanceTarget> {
    target.instance_target.as_ref()
}

pub(crate) fn instance_mut(target: &mut DeploymentTarget) -> &mut InstanceTarget {
    target.instance_target.get_or_insert_with(Default::default)
}

pub(crate) fn status_of(target: &DeploymentTarget) -> Option<TargetStatus> {
    instance(target).and_then(|t| t.status.clone())
}

pub(crate) fn target_id(target: &DeploymentTarget) -> String {
    instance(target).and_then(|t| t.target_id.clone()).unwrap_or_default()
}

/// The newest command for (target, event).
pub(crate) fn command_for<'a>(commands: &'a [Command], target: &str, event: &str) -> Option<&'a Command> {
    let end = commands.partition_point(|c| (c.target_id.as_str(), c.event.as_str()) <= (target, event));
    commands[..end].last().filter(|c| c.target_id == target && c.event == event)
}

/// Orders commands as [`Facts::commands`] wants them: by target, then event, then creation
/// (a stable sort, so of two created in the same millisecond the later stays last).
pub fn sort_commands(commands: &mut [Command]) {
    commands.sort_by(|a, b| {
        (a.target_id.as_str(), a.event.as_str(), a.created_at).cmp(&(
            b.target_id.as_str(),
            b.event.as_str(),
            b.created_at,
        ))
    });
}

fn success_diagnostics() -> Diagnostics {
    Diagnostics {
        error_code: Some(LifecycleErrorCode::Success),
        script_name: Some(String::new()),
        message: Some("Succeeded".into()),
        log_tail: Some(String::new()),
    }
}

fn engine_diagnostics(message: String) -> Diagnostics {
    Diagnostics {
        error_code: Some(LifecycleErrorCode::UnknownError),
        script_name: Some(String::new()),
        message: Some(message),
        log_tail: Some(String::new()),
    }
}

/// Moves a target in flight along its lifecycle events as far as its commands allow, and no
/// further than `gate` (an event not yet to be sent: a blue/green phase not yet reached).
pub(crate) fn advance_target(target: &mut DeploymentTarget, step: &mut Step, facts: &Facts<'_>, gate: Option<&str>) {
    if status_of(target) != Some(TargetStatus::InProgress) {
        return;
    }
    let id = target_id(target);
    let now = facts.now;
    let halted = step.progress.stop.is_some() || step.progress.failing.is_some();
    let events_len = instance(target).and_then(|t| t.lifecycle_events.as_ref()).map_or(0, Vec::len);
    let mut index = 0;
    while index < events_len {
        let event =
            instance(target).and_then(|t| t.lifecycle_events.as_ref()).map(|e| e[index].clone()).unwrap_or_default();
        let name = event.lifecycle_event_name.clone().unwrap_or_default();
        let done = matches!(event.status, Some(LifecycleEventStatus::Succeeded | LifecycleEventStatus::Skipped))
            || (event.status == Some(LifecycleEventStatus::Failed) && ignorable(&name, facts));
        if done {
            index += 1;
            continue;
        }
        if event.status == Some(LifecycleEventStatus::Failed) {
            fail_target(target, index, step, now);
            return;
        }
        let Some(command) = command_for(facts.commands, &id, &name) else {
            if halted {
                stop_target(target, index, step, now);
            } else if gate == Some(name.as_str()) {
                set_event(target, index, LifecycleEventStatus::Pending, None, None, None);
            } else if !step.asks_for(&id, &name) {
                step.ask_for(id.clone(), name);
                set_event(target, index, LifecycleEventStatus::Pending, None, None, None);
            }
            return;
        };
        // A command handed out but never acknowledged was lost: it goes back in the queue.
        let lost = command.state == CommandState::Dispatched
            && command.acknowledged_at.is_none()
            && now.millis() - command.dispatched_at.unwrap_or(command.created_at).millis()
                > facts.settings.timeouts.ack_ms;
        if lost {
            step.command_updates.push((command.id.clone(), CommandState::Queued, None));
            set_event(target, index, LifecycleEventStatus::Pending, None, None, None);
            return;
        }
        // A timeout turns a command that never came back into a failure.
        let (state, diagnostics) = match timed_out(command, facts) {
            Some(message) => {
                let diagnostics = engine_diagnostics(message);
                step.command_updates.push((command.id.clone(), CommandState::Failed, Some(diagnostics.clone())));
                (CommandState::Failed, Some(diagnostics))
            }
            None => (command.state, command.diagnostics.clone()),
        };
        match state {
            CommandState::Queued => {
                set_event(target, index, LifecycleEventStatus::Pending, None, None, None);
                return;
            }
            CommandState::Dispatched => {
                let status = if command.acknowledged_at.is_some() {
                    LifecycleEventStatus::InProgress
                } else {
                    LifecycleEventStatus::Pending
                };
                set_event(target, index, status, command.acknowledged_at.or(command.dispatched_at), None, None);
                return;
            }
            CommandState::Succeeded => {
                let started = command.acknowledged_at.or(command.dispatched_at).unwrap_or(command.created_at);
                let diagnostics = diagnostics.unwrap_or_else(success_diagnostics);
                set_event(
                    target,
                    index,
                    LifecycleEventStatus::Succeeded,
                    Some(started),
                    Some(command.completed_at.unwrap_or(now)),
                    Some(diagnostics),
                );
                index += 1;
            }
            CommandState::Failed => {
                let started = command.acknowledged_at.or(command.dispatched_at).unwrap_or(command.created_at);
                let diagnostics =
                    diagnostics.unwrap_or_else(|| engine_diagnostics("The lifecycle event failed.".into()));
                set_event(
                    target,
                    index,
                    LifecycleEventStatus::Failed,
                    Some(started),
                    Some(command.completed_at.unwrap_or(now)),
                    Some(diagnostics),
                );
                if ignorable(&name, facts) {
                    index += 1;
                } else {
                    fail_target(target, index, step, now);
                    return;
                }
            }
            CommandState::Cancelled => {
                stop_target(target, index, step, now);
                return;
            }
        }
        // The event is over: a stopped deployment sends the host nothing more.
        if halted && index < events_len {
            stop_target(target, index, step, now);
            return;
        }
    }
    let instance = instance_mut(target);
    instance.status = Some(TargetStatus::Succeeded);
    instance.last_updated_at = Some(now);
    step.finished_targets.push((id, true));
}

fn ignorable(event: &str, facts: &Facts<'_>) -> bool {
    facts.settings.ignore_application_stop_failures && IGNORABLE_EVENTS.contains(&event)
}

/// The reason a command in flight has run out of time, if it has.
fn timed_out(command: &Command, facts: &Facts<'_>) -> Option<String> {
    let timeouts = facts.settings.timeouts;
    let now = facts.now.millis();
    match command.state {
        CommandState::Queued if now - command.created_at.millis() > timeouts.pickup_ms => Some(format!(
            "The agent on the instance did not pick up the lifecycle event within {} seconds; check that the \
             agent is running and can reach the server.",
            timeouts.pickup_ms / 1000
        )),
        CommandState::Dispatched
            if now - command.dispatched_at.unwrap_or(command.created_at).millis() > timeouts.event_ms =>
        {
            Some(format!(
                "The lifecycle event did not complete within {} seconds of the agent taking it.",
                timeouts.event_ms / 1000
            ))
        }
        _ => None,
    }
}

fn set_event(
    target: &mut DeploymentTarget,
    index: usize,
    status: LifecycleEventStatus,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    diagnostics: Option<Diagnostics>,
) {
    let Some(event) = instance_mut(target).lifecycle_events.as_mut().and_then(|events| events.get_mut(index)) else {
        return;
    };
    event.status = Some(status);
    if start.is_some() {
        event.start_time = start;
    }
    if end.is_some() {
        event.end_time = end;
    }
    if diagnostics.is_some() {
        event.diagnostics = diagnostics;
    }
}

/// After event `index` failed: the later events are Skipped and the target Failed.
fn fail_target(target: &mut DeploymentTarget, index: usize, step: &mut Step, now: Timestamp) {
    skip_events_from(target, index + 1, now);
    let instance = instance_mut(target);
    instance.status = Some(TargetStatus::Failed);
    instance.last_updated_at = Some(now);
    step.finished_targets.push((target_id(target), false));
}

/// A target halted by a stop at event `index` (not yet run): if it had done nothing it is
/// Skipped, otherwise Failed (it is left part-way through). Records the host as finished (for its
/// history) only when something ran on it.
pub(crate) fn stop_target(target: &mut DeploymentTarget, index: usize, step: &mut Step, now: Timestamp) {
    let started = index > 0;
    skip_events_from(target, index, now);
    let instance = instance_mut(target);
    instance.status = Some(if started { TargetStatus::Failed } else { TargetStatus::Skipped });
    instance.last_updated_at = Some(now);
    if started {
        step.finished_targets.push((target_id(target), false));
    }
}

/// Marks the events from `index` on Skipped (those not already over).
fn skip_events_from(target: &mut DeploymentTarget, index: usize, now: Timestamp) {
    if let Some(events) = instance_mut(target).lifecycle_events.as_mut() {
        for event in events.iter_mut().skip(index) {
            if !matches!(event.status, Some(LifecycleEventStatus::Succeeded | LifecycleEventStatus::Failed)) {
                event.status = Some(LifecycleEventStatus::Skipped);
                event.end_time = Some(now);
            }
        }
    }
}

pub(crate) fn skip_target(target: &mut DeploymentTarget, now: Timestamp) {
    let instance = instance_mut(target);
    instance.status = Some(TargetStatus::Skipped);
    instance.last_updated_at = Some(now);
    for event in instance.lifecycle_events.iter_mut().flatten() {
        event.status = Some(LifecycleEventStatus::Skipped);
        event.end_time = Some(now);
    }
}

/// Starts waiting targets while the budget allows; fails the deployment when the budget is
/// used up with targets still waiting.
fn schedule(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>) {
    use crate::zonal::{Gate, Offline};
    let budget = step.progress.failure_budget;
    let mut offline = Offline::count(&step.progress, targets, false);
    let mut zone_offline = Offline::count(&step.progress, targets, true);
    let waiting = targets.iter().any(|t| status_of(t) == Some(TargetStatus::Pending));
    if waiting && offline.failed >= budget {
        step.progress.failing = Some(ErrorCode::HealthConstraints.as_str().to_owned());
        return;
    }
    for (index, target) in targets.iter_mut().enumerate() {
        if status_of(target) != Some(TargetStatus::Pending) {
            continue;
        }
        // A zonal deployment takes only its current zone's targets, within the zone's floor.
        let zone_gate = crate::zonal::gate(&step.progress, &zone_offline, index);
        if zone_gate == Gate::NotThisZone {
            continue;
        }
        if zone_gate == Gate::FloorBroken {
            step.progress.failing = Some(ErrorCode::HealthConstraints.as_str().to_owned());
            return;
        }
        let may_start = if step.progress.one_at_a_time {
            offline.in_flight == 0
        } else {
            offline.in_flight + offline.failed < budget
        };
        if !may_start || zone_gate == Gate::Full {
            break;
        }
        let instance = instance_mut(target);
        instance.status = Some(TargetStatus::InProgress);
        instance.last_updated_at = Some(facts.now);
        advance_target(target, step, facts, None);
        // As it now stands: starting may have ended it at once.
        offline.add(status_of(target));
        zone_offline.add(status_of(target));
    }
}

/// Applies a stop or a failure: waiting targets are Skipped, queued commands withdrawn.
pub(crate) fn halt(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>) {
    for target in targets.iter_mut() {
        if status_of(target) == Some(TargetStatus::Pending) {
            skip_target(target, facts.now);
        }
    }
    for command in facts.commands.iter().filter(|c| c.state == CommandState::Queued) {
        if !step.command_updates.iter().any(|(id, ..)| *id == command.id) {
            step.command_updates.push((command.id.clone(), CommandState::Cancelled, None));
        }
    }
    // Commands just asked for are not sent either; their targets stop where they are.
    let withdrawn: Vec<(String, String)> = step.withdraw_new_commands();
    for (id, event) in withdrawn {
        if let Some(target) = targets.iter_mut().find(|t| target_id(t) == id) {
            let index = instance(target)
                .and_then(|t| t.lifecycle_events.as_ref())
                .and_then(|events| events.iter().position(|e| e.lifecycle_event_name.as_deref() == Some(&event)))
                .unwrap_or(0);
            stop_target(target, index, step, facts.now);
        }
    }
    // Cancelled queued commands also stop their targets now rather than on the next call.
    let cancelled: Vec<String> = step
        .command_updates
        .iter()
        .filter(|(_, state, _)| *state == CommandState::Cancelled)
        .map(|(id, ..)| id.clone())
        .collect();
    for command in facts.commands.iter().filter(|c| cancelled.contains(&c.id)) {
        if let Some(target) = targets.iter_mut().find(|t| target_id(t) == command.target_id) {
            if status_of(target) != Some(TargetStatus::InProgress) {
                continue;
            }
            let index = instance(target)
                .and_then(|t| t.lifecycle_events.as_ref())
                .and_then(|events| {
                    events.iter().position(|e| e.lifecycle_event_name.as_deref() == Some(&command.event))
                })
                .unwrap_or(0);
            stop_target(target, index, step, facts.now);
        }
    }
}

/// Settles the deployment's final status once no target is in flight.
pub(crate) fn finish(step: &mut Step, targets: &[DeploymentTarget], now: Timestamp) {
    let succeeded = targets.iter().filter(|t| status_of(t) == Some(TargetStatus::Succeeded)).count() as i64;
    let (status, error) = if let Some(stop) = &step.progress.stop {
        let error = match (&stop.alarm, &stop.timeout) {
            (Some(message), _) => (ErrorCode::AlarmActive, message.clone()),
            (None, Some(message)) => (ErrorCode::Timeout, message.clone()),
            (None, None) => (ErrorCode::ManualStop, "The deployment was stopped by a user.".to_owned()),
        };
        (DeploymentStatus::Stopped, Some(error))
    } else if step.progress.failing.is_some() || succeeded < step.progress.minimum_healthy.max(1) {
        (DeploymentStatus::Failed, Some((ErrorCode::HealthConstraints, HEALTH_CONSTRAINTS_MESSAGE.to_owned())))
    } else {
        (DeploymentStatus::Succeeded, None)
    };
    step.deployment.status = Some(status.clone());
    step.deployment.complete_time = Some(now);
    step.deployment.error_information =
        error.map(|(code, message)| ErrorInformation { code: Some(code), message: Some(message) });
    step.rollback = match status {
        DeploymentStatus::Failed => rollback_on(&step.deployment, "DEPLOYMENT_FAILURE"),
        DeploymentStatus::Stopped => match &step.progress.stop {
            Some(stop) if stop.alarm.is_some() => rollback_on(&step.deployment, "DEPLOYMENT_STOP_ON_ALARM"),
            stop => {
                stop.as_ref().is_some_and(|stop| stop.rollback)
                    || rollback_on(&step.deployment, "DEPLOYMENT_STOP_ON_REQUEST")
            }
        },
        _ => false,
    };
    step.finished = Some(status);
}

fn rollback_on(deployment: &DeploymentInfo, event: &str) -> bool {
    deployment.auto_rollback_configuration.as_ref().is_some_and(|config| {
        config.enabled == Some(true) && config.events.iter().flatten().any(|e| e.as_str() == event)
    })
}

/// The overview counts of a deployment's targets.
pub fn overview(targets: &[DeploymentTarget]) -> DeploymentOverview {
    let count = |status: TargetStatus| targets.iter().filter(|t| status_of(t) == Some(status.clone())).count() as i64;
    DeploymentOverview {
        pending: Some(count(TargetStatus::Pending)),
        in_progress: Some(count(TargetStatus::InProgress)),
        succeeded: Some(count(TargetStatus::Succeeded)),
        failed: Some(count(TargetStatus::Failed)),
        skipped: Some(count(TargetStatus::Skipped)),
        ready: Some(count(TargetStatus::Ready)),
    }
}

pub(crate) fn record_changes(step: &mut Step, before: &[DeploymentTarget], after: Vec<DeploymentTarget>) {
    step.changed_targets = after.into_iter().zip(before).filter(|(new, old)| new != *old).map(|(new, _)| new).collect();
}

/// A new instance target with all its events Pending.
pub fn new_instance_target(
    deployment_id: &str,
    name: &str,
    arn: Option<String>,
    events: &[&str],
    label: Option<TargetLabel>,
    now: Timestamp,
) -> DeploymentTarget {
    DeploymentTarget {
        deployment_target_type: Some(DeploymentTargetType::InstanceTarget),
        instance_target: Some(InstanceTarget {
            deployment_id: Some(deployment_id.to_owned()),
            target_id: Some(name.to_owned()),
            target_arn: arn,
            status: Some(TargetStatus::Pending),
            last_updated_at: Some(now),
            lifecycle_events: Some(pending_events(events)),
            instance_label: label,
        }),
        ..Default::default()
    }
}

/// The lifecycle events of a new target, all Pending.
pub fn pending_events(names: &[&str]) -> Vec<LifecycleEvent> {
    names
        .iter()
        .map(|name| LifecycleEvent {
            lifecycle_event_name: Some((*name).to_owned()),
            status: Some(LifecycleEventStatus::Pending),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use landfall_api::shapes::{AutoRollbackConfiguration, AutoRollbackEvent};

    const EVENTS: [&str; 3] = ["ApplicationStop", "Install", "ValidateService"];

    fn target(name: &str) -> DeploymentTarget {
        DeploymentTarget {
            deployment_target_type: Some("InstanceTarget".into()),
            instance_target: Some(InstanceTarget {
                deployment_id: Some("d-TEST00001".into()),
                target_id: Some(name.into()),
                status: Some(TargetStatus::Pending),
                lifecycle_events: Some(pending_events(&EVENTS)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn hosts(kind: &str, value: i64) -> Option<MinimumHealthyHosts> {
        Some(MinimumHealthyHosts { r#type: Some(kind.into()), value: Some(value) })
    }

    /// A little world: hosts that run every command they are sent, failing the ones listed.
    pub(crate) struct World {
        pub(crate) deployment: DeploymentInfo,
        pub(crate) progress: Progress,
        pub(crate) targets: Vec<DeploymentTarget>,
        pub(crate) commands: Vec<Command>,
        pub(crate) settings: Settings,
        pub(crate) now: i64,
        pub(crate) failing: Vec<(String, String)>,
        max_in_flight: usize,
        started_order: Vec<String>,
        /// Every (host, event) sent, in order.
        pub(crate) sent: Vec<(String, String)>,
        /// The engine under test.
        pub(crate) reconcile: fn(&Facts<'_>) -> Step,
    }

    impl World {
        pub(crate) fn new(n: usize, minimum: Option<MinimumHealthyHosts>, failing: &[(usize, &str)]) -> World {
            World {
                deployment: DeploymentInfo {
                    deployment_id: Some("d-TEST00001".into()),
                    status: Some(DeploymentStatus::Created),
                    ..Default::default()
                },
                progress: Progress::default(),
                targets: (0..n).map(|i| target(&format!("host-{i}"))).collect(),
                commands: Vec::new(),
                settings: Settings { minimum_healthy_hosts: minimum, ..Default::default() },
                now: 1_000,
                failing: failing.iter().map(|(i, e)| (format!("host-{i}"), (*e).to_owned())).collect(),
                max_in_flight: 0,
                started_order: Vec::new(),
                sent: Vec::new(),
                reconcile,
            }
        }

        pub(crate) fn step(&mut self) -> Step {
            let mut commands = self.commands.clone();
            sort_commands(&mut commands);
            let facts = Facts {
                deployment: &self.deployment,
                progress: &self.progress,
                targets: &self.targets,
                commands: &commands,
                settings: &self.settings,
                now: Timestamp(self.now),
            };
            let step = (self.reconcile)(&facts);
            self.apply(step.clone());
            step
        }

        pub(crate) fn apply(&mut self, step: Step) {
            self.deployment = step.deployment;
            self.progress = step.progress;
            for changed in step.changed_targets {
                let id = target_id(&changed);
                let slot = self.targets.iter_mut().find(|t| target_id(t) == id).unwrap();
                *slot = changed;
            }
            for (id, state, diagnostics) in step.command_updates {
                let command = self.commands.iter_mut().find(|c| c.id == id).unwrap();
                command.state = state;
                command.diagnostics = diagnostics;
            }
            for (target, event) in step.new_commands {
                self.sent.push((target.clone(), event.clone()));
                if event == EVENTS[0] {
                    self.started_order.push(target.clone());
                }
                let id = format!("hc-{}", self.commands.len());
                self.commands.push(Command {
                    id,
                    target_id: target,
                    event,
                    state: CommandState::Queued,
                    created_at: Timestamp(self.now),
                    dispatched_at: None,
                    acknowledged_at: None,
                    completed_at: None,
                    diagnostics: None,
                });
            }
            let in_flight = self.targets.iter().filter(|t| status_of(t) == Some(TargetStatus::InProgress)).count();
            self.max_in_flight = self.max_in_flight.max(in_flight);
        }

        /// Completes every queued command (the hosts run them), one round.
        pub(crate) fn hosts_run(&mut self) {
            self.now += 10;
            for command in self.commands.iter_mut().filter(|c| c.state == CommandState::Queued) {
                command.dispatched_at = Some(Timestamp(self.now));
                command.acknowledged_at = Some(Timestamp(self.now));
                command.completed_at = Some(Timestamp(self.now + 5));
                let fails = self.failing.contains(&(command.target_id.clone(), command.event.clone()));
                command.state = if fails { CommandState::Failed } else { CommandState::Succeeded };
            }
        }

        fn run_to_end(&mut self) -> DeploymentStatus {
            for _ in 0..200 {
                self.step();
                if let Some(status) = self.deployment.status.clone().filter(|s| is_terminal(&Some(s.clone()))) {
                    return status;
                }
                self.hosts_run();
            }
            panic!("the deployment never finished")
        }

        fn statuses(&self) -> Vec<TargetStatus> {
            self.targets.iter().map(|t| status_of(t).unwrap()).collect()
        }
    }

    #[test]
    fn minimum_healthy_matches_the_documented_examples() {
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 75).as_ref(), 9), (7, 2, false));
        assert_eq!(minimum_healthy(hosts("HOST_COUNT", 6).as_ref(), 9), (6, 3, false));
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 40).as_ref(), 9), (4, 5, false));
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 50).as_ref(), 9), (5, 4, false));
        assert_eq!(minimum_healthy(hosts("MOST_CONCURRENCY", 1).as_ref(), 9), (8, 1, true));
        assert_eq!(minimum_healthy(hosts("HOST_COUNT", 0).as_ref(), 9), (0, 9, false));
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 85).as_ref(), 10), (9, 1, false));
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 95).as_ref(), 10), (10, 0, false));
        assert_eq!(minimum_healthy(hosts("FLEET_PERCENT", 50).as_ref(), 1), (1, 0, false));
    }

    #[test]
    fn all_hosts_succeed_one_at_a_time() {
        let mut world = World::new(3, hosts("MOST_CONCURRENCY", 1), &[]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Succeeded);
        assert_eq!(world.max_in_flight, 1);
        assert_eq!(world.statuses(), vec![TargetStatus::Succeeded; 3]);
        assert_eq!(world.started_order, ["host-0", "host-1", "host-2"]);
        let overview = world.deployment.deployment_overview.clone().unwrap();
        assert_eq!(overview.succeeded, Some(3));
        // Every event has its diagnostics and times.
        let events = world.targets[0].instance_target.as_ref().unwrap().lifecycle_events.clone().unwrap();
        assert!(events.iter().all(|e| e.status == Some(LifecycleEventStatus::Succeeded) && e.end_time.is_some()));
        assert_eq!(events[0].diagnostics.as_ref().unwrap().message.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn one_at_a_time_fails_on_any_host_but_the_last() {
        let mut world = World::new(3, hosts("MOST_CONCURRENCY", 1), &[(1, "ValidateService")]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Failed);
        assert_eq!(world.statuses(), [TargetStatus::Succeeded, TargetStatus::Failed, TargetStatus::Skipped]);
        let error = world.deployment.error_information.clone().unwrap();
        assert_eq!(error.code, Some(ErrorCode::HealthConstraints));
        let failed = world.targets[1].instance_target.as_ref().unwrap().lifecycle_events.clone().unwrap();
        assert_eq!(failed[2].status, Some(LifecycleEventStatus::Failed));

        let mut last = World::new(3, hosts("MOST_CONCURRENCY", 1), &[(2, "ValidateService")]);
        assert_eq!(last.run_to_end(), DeploymentStatus::Succeeded, "the last host may fail");
    }

    #[test]
    fn a_single_host_must_succeed() {
        let mut world = World::new(1, hosts("MOST_CONCURRENCY", 1), &[(0, "Install")]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Failed);
        let events = world.targets[0].instance_target.as_ref().unwrap().lifecycle_events.clone().unwrap();
        assert_eq!(
            events.iter().map(|e| e.status.clone().unwrap()).collect::<Vec<_>>(),
            [LifecycleEventStatus::Succeeded, LifecycleEventStatus::Failed, LifecycleEventStatus::Skipped]
        );
    }

    #[test]
    fn fleet_percent_75_of_9_follows_the_documented_trace() {
        // Hosts 0 and 2 fail: the second failure uses up the budget of 2 with hosts waiting.
        let mut world = World::new(9, hosts("FLEET_PERCENT", 75), &[(0, "Install"), (2, "Install")]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Failed);
        assert!(world.max_in_flight <= 2);
        let statuses = world.statuses();
        assert_eq!(statuses.iter().filter(|s| **s == TargetStatus::Skipped).count(), 6);
        // Failures in the final wave only: 7 of 9 succeed, which is enough.
        let mut late = World::new(9, hosts("FLEET_PERCENT", 75), &[(7, "Install"), (8, "Install")]);
        assert_eq!(late.run_to_end(), DeploymentStatus::Succeeded);
    }

    #[test]
    fn half_at_a_time_on_9_hosts() {
        let mut world = World::new(9, hosts("FLEET_PERCENT", 50), &[(8, "ValidateService")]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Succeeded);
        assert_eq!(world.max_in_flight, 4);
        let mut bad = World::new(
            9,
            hosts("FLEET_PERCENT", 50),
            &[(0, "Install"), (1, "Install"), (2, "Install"), (3, "Install")],
        );
        assert_eq!(bad.run_to_end(), DeploymentStatus::Failed);
    }

    #[test]
    fn all_at_once_needs_one_success() {
        let mut world = World::new(4, hosts("HOST_COUNT", 0), &[(0, "Install"), (1, "Install"), (2, "Install")]);
        assert_eq!(world.run_to_end(), DeploymentStatus::Succeeded);
        assert_eq!(world.max_in_flight, 4);
        let every = [(0, "Install"), (1, "Install"), (2, "Install"), (3, "Install")];
        let mut none = World::new(4, hosts("HOST_COUNT", 0), &every);
        assert_eq!(none.run_to_end(), DeploymentStatus::Failed);
    }

    #[test]
    fn impossible_minimum_fails_at_once() {
        let mut world = World::new(10, hosts("FLEET_PERCENT", 95), &[]);
        world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Failed));
        assert_eq!(world.deployment.error_information.clone().unwrap().code, Some(ErrorCode::HealthConstraintsInvalid));
        assert!(world.commands.is_empty());
        assert_eq!(world.statuses(), vec![TargetStatus::Skipped; 10]);
    }

    #[test]
    fn no_targets_is_no_instances() {
        let mut world = World::new(0, hosts("HOST_COUNT", 0), &[]);
        world.step();
        assert_eq!(world.deployment.error_information.unwrap().code, Some(ErrorCode::NoInstances));
    }

    #[test]
    fn the_newest_command_of_a_target_and_event_is_found_in_sorted_commands() {
        let command = |id: &str, target: &str, event: &str, at: i64| Command {
            id: id.into(),
            target_id: target.into(),
            event: event.into(),
            state: CommandState::Queued,
            created_at: Timestamp(at),
            dispatched_at: None,
            acknowledged_at: None,
            completed_at: None,
            diagnostics: None,
        };
        let mut commands = vec![
            command("c1", "b", "Install", 5),
            command("c2", "a", "Install", 1),
            command("c3", "a", "Install", 9),
            command("c4", "a", "AfterInstall", 3),
            command("c5", "a", "Install", 9),
        ];
        sort_commands(&mut commands);
        let id = |target, event| command_for(&commands, target, event).map(|c| c.id.as_str());
        // The latest, and of two at the same time the one created later.
        assert_eq!(id("a", "Install"), Some("c5"));
        assert_eq!(id("a", "AfterInstall"), Some("c4"));
        assert_eq!(id("b", "Install"), Some("c1"));
        assert_eq!(id("b", "AfterInstall"), None);
        assert_eq!(id("0", "Install"), None);
        assert_eq!(id("z", "Install"), None);
    }

    #[test]
    fn reconcile_is_idempotent() {
        let mut world = World::new(3, hosts("HOST_COUNT", 1), &[]);
        world.step();
        let commands = world.commands.len();
        let again = world.step();
        assert!(again.new_commands.is_empty());
        assert_eq!(world.commands.len(), commands);
        let mut sorted = world.commands.clone();
        sort_commands(&mut sorted);
        let facts = Facts {
            deployment: &world.deployment,
            progress: &world.progress,
            targets: &world.targets,
            commands: &sorted,
            settings: &world.settings,
            now: Timestamp(world.now),
        };
        assert!(reconcile(&facts).is_empty(&facts));
    }

    #[test]
    fn a_host_that_never_polls_fails_after_the_pickup_timeout() {
        let mut world = World::new(2, hosts("HOST_COUNT", 0), &[]);
        world.settings.timeouts.pickup_ms = 1_000;
        world.step();
        // host-1's agent is dead: only host-0 runs its commands.
        for _ in 0..5 {
            world.now += 100;
            for command in
                world.commands.iter_mut().filter(|c| c.state == CommandState::Queued && c.target_id == "host-0")
            {
                command.state = CommandState::Succeeded;
                command.completed_at = Some(Timestamp(world.now));
            }
            world.step();
        }
        assert_eq!(status_of(&world.targets[1]), Some(TargetStatus::InProgress));
        world.now += 1_000;
        world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Succeeded));
        assert_eq!(status_of(&world.targets[1]), Some(TargetStatus::Failed));
        let event = world.targets[1].instance_target.as_ref().unwrap().lifecycle_events.clone().unwrap()[0].clone();
        assert!(event.diagnostics.unwrap().message.unwrap().contains("did not pick up"));
    }

    #[test]
    fn a_command_handed_out_but_never_acknowledged_is_queued_again() {
        let mut world = World::new(1, hosts("HOST_COUNT", 0), &[]);
        world.step();
        world.commands[0].state = CommandState::Dispatched;
        world.commands[0].dispatched_at = Some(Timestamp(world.now));
        world.now += world.settings.timeouts.ack_ms - 1;
        assert!(world.step().command_updates.is_empty());
        world.now += 2;
        let step = world.step();
        assert_eq!(step.command_updates, [("hc-0".to_owned(), CommandState::Queued, None)]);
        assert_eq!(world.commands[0].state, CommandState::Queued);
        assert!(step.new_commands.is_empty(), "the same command, not a new one");
        // Once acknowledged, it is never taken back.
        world.commands[0].state = CommandState::Dispatched;
        world.commands[0].acknowledged_at = Some(Timestamp(world.now));
        world.now += 10 * world.settings.timeouts.ack_ms;
        assert!(world.step().command_updates.is_empty());
    }

    #[test]
    fn ignored_application_stop_failure_lets_the_host_go_on() {
        let mut world = World::new(1, hosts("MOST_CONCURRENCY", 1), &[(0, "ApplicationStop")]);
        world.settings.ignore_application_stop_failures = true;
        assert_eq!(world.run_to_end(), DeploymentStatus::Succeeded);
        let events = world.targets[0].instance_target.as_ref().unwrap().lifecycle_events.clone().unwrap();
        assert_eq!(events[0].status, Some(LifecycleEventStatus::Failed));
        assert_eq!(events[2].status, Some(LifecycleEventStatus::Succeeded));
    }

    #[test]
    fn stop_waits_for_events_in_flight_then_stops() {
        let mut world = World::new(3, hosts("MOST_CONCURRENCY", 1), &[]);
        world.step();
        // host-0 took ApplicationStop and is running it when the stop comes.
        world.commands[0].state = CommandState::Dispatched;
        world.commands[0].dispatched_at = Some(Timestamp(world.now));
        world.commands[0].acknowledged_at = Some(Timestamp(world.now));
        world.progress.stop = Some(StopRequest::by_user(false));
        world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::InProgress));
        assert_eq!(world.statuses()[1..], [TargetStatus::Skipped, TargetStatus::Skipped]);
        world.commands[0].state = CommandState::Succeeded;
        world.commands[0].completed_at = Some(Timestamp(world.now + 1));
        let step = world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Stopped));
        assert_eq!(world.deployment.error_information.clone().unwrap().code, Some(ErrorCode::ManualStop));
        assert!(step.new_commands.is_empty(), "nothing more is sent after a stop");
        assert_eq!(world.statuses()[0], TargetStatus::Failed);
        assert!(!step.rollback);
    }

    #[test]
    fn stop_withdraws_queued_commands() {
        let mut world = World::new(2, hosts("HOST_COUNT", 0), &[]);
        world.step();
        world.progress.stop = Some(StopRequest::by_user(true));
        let step = world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Stopped));
        assert!(world.commands.iter().all(|c| c.state == CommandState::Cancelled));
        assert_eq!(world.statuses(), vec![TargetStatus::Skipped; 2]);
        assert!(step.rollback);
        assert!(step.finished_targets.is_empty(), "hosts where nothing ran keep their history");
    }

    #[test]
    fn an_alarm_stop_is_alarm_active_and_rolls_back_only_on_stop_on_alarm() {
        let alarm_stop = |events: &[&str]| {
            let mut world = World::new(2, hosts("HOST_COUNT", 0), &[]);
            world.deployment.auto_rollback_configuration = Some(AutoRollbackConfiguration {
                enabled: Some(true),
                events: Some(events.iter().map(|e| AutoRollbackEvent::from(*e)).collect()),
            });
            world.step();
            world.progress.stop = Some(StopRequest::by_alarm("Alarm http-errors is in ALARM.".into()));
            let step = world.step();
            assert_eq!(world.deployment.status, Some(DeploymentStatus::Stopped));
            let error = world.deployment.error_information.clone().unwrap();
            assert_eq!(error.code, Some(ErrorCode::AlarmActive));
            assert_eq!(error.message.as_deref(), Some("Alarm http-errors is in ALARM."));
            step.rollback
        };
        assert!(alarm_stop(&["DEPLOYMENT_STOP_ON_ALARM"]));
        assert!(!alarm_stop(&["DEPLOYMENT_STOP_ON_REQUEST", "DEPLOYMENT_FAILURE"]));
    }

    #[test]
    fn stop_before_planning_stops_without_touching_hosts() {
        let mut world = World::new(2, hosts("HOST_COUNT", 0), &[]);
        world.progress.stop = Some(StopRequest::by_user(false));
        let step = world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Stopped));
        assert!(world.commands.is_empty() && step.new_commands.is_empty());
        assert_eq!(world.statuses(), vec![TargetStatus::Skipped; 2]);
        assert!(world.deployment.complete_time.is_some());
    }

    #[test]
    fn failure_with_auto_rollback_asks_for_a_rollback() {
        let mut world = World::new(1, hosts("MOST_CONCURRENCY", 1), &[(0, "Install")]);
        world.deployment.auto_rollback_configuration = Some(AutoRollbackConfiguration {
            enabled: Some(true),
            events: Some(vec![AutoRollbackEvent::DeploymentFailure]),
        });
        world.step();
        world.hosts_run();
        world.step();
        world.hosts_run();
        let step = world.step();
        assert_eq!(step.finished, Some(DeploymentStatus::Failed));
        assert!(step.rollback);
        assert_eq!(step.finished_targets, [("host-0".to_owned(), false)]);
    }
}
