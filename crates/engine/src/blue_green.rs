//! Running a Server blue/green deployment: like [`crate::run::reconcile`], one pure,
//! idempotent function over the deployment's facts, here walking through phases (semantics
//! reference §4.4, §5.5, §7.3):
//!
//! 1. **Install**: the replacement (Green) hosts install the revision under the minimum
//!    healthy hosts rules, computed over the replacement fleet, and stop before BeforeAllowTraffic.
//! 2. **Ready** (`deploymentReadyOption` STOP_DEPLOYMENT): the deployment and its installed hosts
//!    wait, `Ready`, for ContinueDeployment; the wait running out stops the deployment.
//! 3. **Reroute**: the Green hosts run BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic: one at
//!    a time or within the failure budget, or all together when the traffic is weighted.
//! 4. **Shift** (Landfall's extension, a `trafficRoutingConfig` on a Server configuration): the
//!    routers' weights move the Green fleet's share of the traffic from the first step's
//!    percentage to 100 in the configured steps.
//! 5. **Block**: the original (Blue) hosts run BeforeBlockTraffic, BlockTraffic,
//!    AfterBlockTraffic, all together; a single failure fails the deployment.
//! 6. **TerminationWait** and **Terminate** (`terminateBlueInstancesOnDeploymentSuccess`
//!    TERMINATE): after the wait (or ContinueDeployment), the Blue hosts run ApplicationStop.
//!    The server removes them from the target groups when the deployment succeeds.
//!
//! A rollback of a blue/green deployment is one too, with no hosts to install: its Blue hosts
//! allow traffic again (Reroute), then its Green hosts block it (Block).
//!
//! Which hosts take part in a phase follows from their events (hosts with Install install,
//! hosts with AllowTraffic are rerouted to, hosts with BlockTraffic are blocked), so the original
//! deployment and its rollback share every rule.

use serde::{Deserialize, Serialize};

use landfall_api::shapes::{
    DeploymentCreator, DeploymentStatus, DeploymentTarget, ErrorCode, LifecycleEventStatus, TargetStatus,
};

use crate::lifecycle::{ALLOW_TRAFFIC, BLOCK_TRAFFIC};
use crate::run::{
    Facts, Settings, Step, StopRequest, advance_target, command_for, finish, halt, instance, instance_mut, overview,
    plan, record_changes, settled_already, skip_target, status_of, target_id,
};

/// A blue/green deployment's phases, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Install,
    Ready,
    Reroute,
    Shift,
    Block,
    TerminationWait,
    Terminate,
}

/// What the engine keeps about a blue/green deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenProgress {
    pub phase: Phase,
    /// When the phase began, in milliseconds since the epoch.
    pub since_ms: i64,
    /// The share (percent) of the traffic the routers give the Green hosts while it is being
    /// shifted; `None`: the targets' registered weights.
    #[serde(default)]
    pub green_share: Option<u8>,
    /// A weighted deployment failed or stopped before the Blue hosts were blocked: the Green
    /// hosts are taken out of rotation, so all traffic is back on Blue.
    #[serde(default)]
    pub retreat: bool,
}

/// The blue/green settings of a deployment (from its group's configuration and its deployment
/// configuration).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlueGreenSettings {
    /// STOP_DEPLOYMENT: how long the deployment waits in Ready for ContinueDeployment.
    pub ready_wait_ms: Option<i64>,
    /// TERMINATE: how long after the Blue hosts are blocked they are taken out of service.
    pub termination_wait_ms: i64,
    /// Weighted traffic shifting; `None`: the Green hosts join the target groups at their
    /// registered weights and the Blue ones leave, as CodeDeploy does.
    pub shift: Option<Shift>,
}

/// How traffic moves from Blue to Green.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    AllAtOnce,
    /// `percentage` for `interval_ms`, then everything.
    Canary {
        percentage: u8,
        interval_ms: i64,
    },
    /// `percentage` more every `interval_ms`.
    Linear {
        percentage: u8,
        interval_ms: i64,
    },
}

impl Shift {
    /// How long the whole shift takes, from its first step to all of the traffic.
    pub fn duration_ms(self) -> i64 {
        match self {
            Shift::AllAtOnce => 0,
            Shift::Canary { interval_ms, .. } => interval_ms.max(0),
            Shift::Linear { percentage, interval_ms } => {
                let steps = i64::from(100u8.div_ceil(percentage.clamp(1, 100)));
                (steps - 1) * interval_ms.max(0)
            }
        }
    }

    /// The Green share `elapsed_ms` after the shift began.
    pub fn share_after(self, elapsed_ms: i64) -> u8 {
        match self {
            Shift::AllAtOnce => 100,
            Shift::Canary { percentage, interval_ms } => {
                if elapsed_ms < interval_ms {
                    percentage.min(100)
                } else {
                    100
                }
            }
            Shift::Linear { percentage, interval_ms } => {
                let steps = 1 + elapsed_ms.max(0) / interval_ms.max(1);
                (i64::from(percentage) * steps).min(100) as u8
            }
        }
    }
}

const BEFORE_ALLOW: &str = "BeforeAllowTraffic";
const APPLICATION_STOP: &str = "ApplicationStop";

const NO_REPLACEMENT_MESSAGE: &str = "The deployment failed because no replacement instances were found: no \
    registered instance matches the deployment's targetInstances, or every one is also in the original fleet.";

/// Decides what happens next in a Server blue/green deployment.
pub fn reconcile(facts: &Facts<'_>) -> Step {
    let mut step = Step::unchanged(facts);
    if settled_already(&mut step, facts) {
        return step;
    }
    let mut targets: Vec<DeploymentTarget> = facts.targets.to_vec();
    if !step.progress.started {
        let installers = targets.iter().filter(|t| has_event(t, "Install")).count() as i64;
        if installers == 0 && !is_rollback(facts) {
            for target in targets.iter_mut() {
                skip_target(target, facts.now);
            }
            crate::run::fail_now(&mut step, ErrorCode::NoInstances, NO_REPLACEMENT_MESSAGE, facts.now);
            record_changes(&mut step, facts.targets, targets);
            return step;
        }
        let counted = if installers == 0 { targets.len() as i64 } else { installers };
        if !plan(&mut step, &mut targets, facts, counted) {
            record_changes(&mut step, facts.targets, targets);
            return step;
        }
        step.progress.blue_green = Some(BlueGreenProgress { since_ms: facts.now.millis(), ..Default::default() });
    }

    // 1. What the hosts did, as far as the phase lets each go.
    let lenient = lenient(facts.settings);
    let terminating = Facts { settings: &lenient, ..*facts };
    let facts = if phase(&step) == Phase::Terminate { &terminating } else { facts };
    let gate = gate(phase(&step));
    for target in targets.iter_mut() {
        advance_target(target, &mut step, facts, gate);
    }

    // 2. The phase's work, and the next phase as soon as this one is over.
    if !halted(&step) {
        loop {
            let before = phase(&step);
            run_phase(&mut step, &mut targets, facts);
            if halted(&step) || phase(&step) == before {
                break;
            }
        }
    }
    if halted(&step) {
        stop_gated(&mut step, &mut targets, facts);
        halt(&mut step, &mut targets, facts);
    }

    // 3. Finished when no host is waiting or in flight, and no termination wait is running.
    let busy = targets
        .iter()
        .any(|t| matches!(status_of(t), Some(TargetStatus::Pending | TargetStatus::InProgress | TargetStatus::Ready)))
        || (phase(&step) == Phase::TerminationWait && !halted(&step));
    if !busy {
        finish(&mut step, &targets, facts.now);
        if let Some(blue_green) = step.progress.blue_green.as_mut()
            && step.finished == Some(DeploymentStatus::Succeeded)
        {
            blue_green.green_share = None;
        }
    }
    step.deployment.deployment_overview = Some(overview(&targets));
    record_changes(&mut step, facts.targets, targets);
    step
}

fn is_rollback(facts: &Facts<'_>) -> bool {
    facts.deployment.creator == Some(DeploymentCreator::CodeDeployRollback)
}

fn phase(step: &Step) -> Phase {
    step.progress.blue_green.as_ref().map(|b| b.phase).unwrap_or_default()
}

fn halted(step: &Step) -> bool {
    step.progress.stop.is_some() || step.progress.failing.is_some()
}

/// The event hosts stop before in a phase: Green hosts wait before BeforeAllowTraffic until the
/// reroute, Blue hosts before their ApplicationStop until the termination.
fn gate(phase: Phase) -> Option<&'static str> {
    match phase {
        Phase::Install | Phase::Ready => Some(BEFORE_ALLOW),
        Phase::Block | Phase::TerminationWait => Some(APPLICATION_STOP),
        Phase::Reroute | Phase::Shift | Phase::Terminate => None,
    }
}

fn enter(step: &mut Step, phase: Phase, now_ms: i64) {
    let blue_green = step.progress.blue_green.get_or_insert_with(Default::default);
    blue_green.phase = phase;
    blue_green.since_ms = now_ms;
}

fn has_event(target: &DeploymentTarget, name: &str) -> bool {
    instance(target)
        .and_then(|t| t.lifecycle_events.as_ref())
        .is_some_and(|events| events.iter().any(|e| e.lifecycle_event_name.as_deref() == Some(name)))
}

/// Whether a host in flight is held at `gate`: every event before it over, no command for it.
fn at_gate(target: &DeploymentTarget, gate: &str, step: &Step, facts: &Facts<'_>) -> bool {
    if !matches!(status_of(target), Some(TargetStatus::InProgress | TargetStatus::Ready)) {
        return false;
    }
    let next = instance(target).and_then(|t| t.lifecycle_events.as_ref()).and_then(|events| {
        events.iter().find(|e| {
            !matches!(
                e.status,
                Some(LifecycleEventStatus::Succeeded | LifecycleEventStatus::Skipped | LifecycleEventStatus::Failed)
            )
        })
    });
    let id = target_id(target);
    next.and_then(|e| e.lifecycle_event_name.as_deref()) == Some(gate)
        && command_for(facts.commands, &id, gate).is_none()
        && !step.asks_for(&id, gate)
}

/// Whether a host failed at one of `events`.
fn failed_at(target: &DeploymentTarget, events: &[&str]) -> bool {
    status_of(target) == Some(TargetStatus::Failed)
        && instance(target).and_then(|t| t.lifecycle_events.as_ref()).is_some_and(|all| {
            all.iter().any(|e| {
                e.status == Some(LifecycleEventStatus::Failed)
                    && e.lifecycle_event_name.as_deref().is_some_and(|name| events.contains(&name))
            })
        })
}

fn start_target(target: &mut DeploymentTarget, step: &mut Step, facts: &Facts<'_>, gate: Option<&str>) {
    let instance = instance_mut(target);
    instance.status = Some(TargetStatus::InProgress);
    instance.last_updated_at = Some(facts.now);
    advance_target(target, step, facts, gate);
}

fn fail(step: &mut Step) {
    step.progress.failing = Some(ErrorCode::HealthConstraints.as_str().to_owned());
}

/// Does the current phase's work; moves to the next phase when it is over.
fn run_phase(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>) {
    let settings: &Settings = facts.settings;
    let now = facts.now.millis();
    match phase(step) {
        Phase::Install => {
            let installers: Vec<usize> = (0..targets.len()).filter(|&i| has_event(&targets[i], "Install")).collect();
            let budget = step.progress.failure_budget;
            let gate = Some(BEFORE_ALLOW);
            if !schedule_within(step, targets, facts, &installers, gate, budget, |t, _| is_pending(t)) {
                return;
            }
            let installed = installers.iter().filter(|&&i| at_gate(&targets[i], BEFORE_ALLOW, step, facts)).count();
            if !installers.is_empty() && (installed as i64) < step.progress.minimum_healthy.max(1) {
                return fail(step);
            }
            match settings.blue_green.ready_wait_ms {
                Some(_) if installed > 0 => {
                    for target in targets.iter_mut() {
                        if at_gate(target, BEFORE_ALLOW, step, facts) {
                            let instance = instance_mut(target);
                            instance.status = Some(TargetStatus::Ready);
                            instance.last_updated_at = Some(facts.now);
                        }
                    }
                    step.deployment.status = Some(DeploymentStatus::Ready);
                    enter(step, Phase::Ready, now);
                }
                _ => enter_reroute(step, settings, now),
            }
        }
        Phase::Ready => {
            let since = step.progress.blue_green.as_ref().map_or(now, |b| b.since_ms);
            let wait = settings.blue_green.ready_wait_ms.unwrap_or(0);
            if step.progress.continue_ready {
                for target in targets.iter_mut() {
                    if status_of(target) == Some(TargetStatus::Ready) {
                        let instance = instance_mut(target);
                        instance.status = Some(TargetStatus::InProgress);
                        instance.last_updated_at = Some(facts.now);
                    }
                }
                step.deployment.status = Some(DeploymentStatus::InProgress);
                enter_reroute(step, settings, now);
            } else if now - since >= wait {
                step.progress.stop = Some(StopRequest {
                    rollback: false,
                    timeout: Some(format!(
                        "The deployment was stopped because it was not continued within the ready wait of {} minutes \
                         (deploymentReadyOption STOP_DEPLOYMENT); traffic never left the original instances.",
                        wait / 60_000
                    )),
                    ..Default::default()
                });
            }
        }
        Phase::Reroute => {
            let weighted = settings.blue_green.shift.is_some() || is_rollback(facts);
            let hosts: Vec<usize> = (0..targets.len()).filter(|&i| has_event(&targets[i], "AllowTraffic")).collect();
            if weighted && hosts.iter().any(|&i| failed_at(&targets[i], &ALLOW_TRAFFIC)) {
                return fail(step);
            }
            // Green hosts held before BeforeAllowTraffic go on; a rollback's Blue hosts start.
            let waiting = |t: &DeploymentTarget, step: &Step| at_gate(t, BEFORE_ALLOW, step, facts) || is_pending(t);
            let budget = if weighted { i64::MAX } else { step.progress.failure_budget };
            if !schedule_within(step, targets, facts, &hosts, None, budget, waiting) {
                return;
            }
            let succeeded =
                hosts.iter().filter(|&&i| status_of(&targets[i]) == Some(TargetStatus::Succeeded)).count() as i64;
            let needed = if is_rollback(facts) { hosts.len() as i64 } else { step.progress.minimum_healthy.max(1) };
            if succeeded < needed {
                return fail(step);
            }
            let shifting = step.progress.blue_green.as_ref().and_then(|b| b.green_share).is_some_and(|s| s < 100);
            enter(step, if shifting { Phase::Shift } else { Phase::Block }, now);
        }
        Phase::Shift => {
            let since = step.progress.blue_green.as_ref().map_or(now, |b| b.since_ms);
            let share = settings.blue_green.shift.map_or(100, |shift| shift.share_after(now - since));
            let blue_green = step.progress.blue_green.get_or_insert_with(Default::default);
            blue_green.green_share = Some(share);
            if share >= 100 {
                enter(step, Phase::Block, now);
            }
        }
        Phase::Block => {
            let hosts: Vec<usize> = (0..targets.len()).filter(|&i| has_event(&targets[i], "BlockTraffic")).collect();
            if hosts.iter().any(|&i| failed_at(&targets[i], &BLOCK_TRAFFIC)) {
                return fail(step);
            }
            let gate = Some(APPLICATION_STOP);
            let held = |t: &DeploymentTarget, step: &Step| at_gate(t, APPLICATION_STOP, step, facts);
            if !schedule_within(step, targets, facts, &hosts, gate, i64::MAX, |t, _| is_pending(t)) {
                return;
            }
            // With no original hosts (an ECS deployment's original task set is the platform's
            // to remove), the wait still comes before the deployment ends.
            if hosts.iter().any(|&i| held(&targets[i], step)) || (hosts.is_empty() && !is_rollback(facts)) {
                step.deployment.instance_termination_wait_time_started = Some(true);
                enter(step, Phase::TerminationWait, now);
            }
        }
        Phase::TerminationWait => {
            let since = step.progress.blue_green.as_ref().map_or(now, |b| b.since_ms);
            if step.progress.end_termination_wait || now - since >= settings.blue_green.termination_wait_ms {
                enter(step, Phase::Terminate, now);
                let lenient = lenient(settings);
                let facts = Facts { settings: &lenient, ..*facts };
                for target in targets.iter_mut() {
                    advance_target(target, step, &facts, None);
                }
            }
        }
        // The hosts' ApplicationStop events run (step 1 of each reconcile moves them along).
        Phase::Terminate => {}
    }
}

/// Taking a Blue host out of service goes on whatever its ApplicationStop scripts do.
fn lenient(settings: &Settings) -> Settings {
    Settings { ignore_application_stop_failures: true, ..settings.clone() }
}

fn is_pending(target: &DeploymentTarget) -> bool {
    status_of(target) == Some(TargetStatus::Pending)
}

fn enter_reroute(step: &mut Step, settings: &Settings, now_ms: i64) {
    enter(step, Phase::Reroute, now_ms);
    let share = settings.blue_green.shift.map(|shift| shift.share_after(0));
    step.progress.blue_green.get_or_insert_with(Default::default).green_share = share;
}

/// Starts (or lets past the gate) the `hosts` that are `waiting`, while fewer than `budget` are
/// in flight or failed (one at a time for OneAtATime); fails the deployment when the budget is
/// used up with hosts still waiting. Returns whether the phase is over for all of them.
fn schedule_within(
    step: &mut Step,
    targets: &mut [DeploymentTarget],
    facts: &Facts<'_>,
    hosts: &[usize],
    gate: Option<&str>,
    budget: i64,
    waiting: impl Fn(&DeploymentTarget, &Step) -> bool,
) -> bool {
    let one_at_a_time = step.progress.one_at_a_time && budget != i64::MAX;
    let count = |targets: &[DeploymentTarget], step: &Step| {
        let mut in_flight = 0;
        let mut failed = 0;
        let mut queued = 0;
        for &i in hosts {
            let target = &targets[i];
            if waiting(target, step) {
                queued += 1;
            } else if status_of(target) == Some(TargetStatus::Failed) {
                failed += 1;
            } else if status_of(target) == Some(TargetStatus::InProgress)
                && !gate.is_some_and(|g| at_gate(target, g, step, facts))
            {
                in_flight += 1;
            }
        }
        (in_flight, failed, queued)
    };
    let (_, failed, queued) = count(targets, step);
    if queued > 0 && failed >= budget {
        fail(step);
        return false;
    }
    for &i in hosts {
        if !waiting(&targets[i], step) {
            continue;
        }
        let (in_flight, failed, _) = count(targets, step);
        let may_start = if one_at_a_time { in_flight == 0 } else { in_flight + failed < budget };
        if !may_start {
            break;
        }
        start_target(&mut targets[i], step, facts, gate);
    }
    let (in_flight, _, queued) = count(targets, step);
    in_flight == 0 && queued == 0
}

/// A stopped or failing deployment: hosts held at a gate (or Ready) go no further.
fn stop_gated(step: &mut Step, targets: &mut [DeploymentTarget], facts: &Facts<'_>) {
    let phase = phase(step);
    let shifted = facts.settings.blue_green.shift.is_some() && matches!(phase, Phase::Reroute | Phase::Shift);
    if shifted && !is_rollback(facts) {
        let blue_green = step.progress.blue_green.get_or_insert_with(Default::default);
        blue_green.retreat = true;
        blue_green.green_share = Some(0);
    }
    if step.deployment.status == Some(DeploymentStatus::Ready) {
        step.deployment.status = Some(DeploymentStatus::InProgress);
    }
    for target in targets.iter_mut() {
        if status_of(target) == Some(TargetStatus::Ready) {
            instance_mut(target).status = Some(TargetStatus::InProgress);
        }
        advance_target(target, step, facts, None);
    }
}

#[cfg(test)]
mod tests {
    use landfall_api::shapes::{
        ComputePlatform, DeploymentOption, DeploymentType, InstanceTarget, MinimumHealthyHosts, TargetLabel,
    };

    use super::*;
    use crate::lifecycle::{ServerTargetRole, lifecycle_events};
    use crate::run::tests::World;
    use crate::run::{CommandState, pending_events};

    fn green_events() -> Vec<&'static str> {
        lifecycle_events(
            &ComputePlatform::Server,
            &DeploymentType::BlueGreen,
            &DeploymentOption::WithTrafficControl,
            &DeploymentCreator::User,
            ServerTargetRole::Install,
        )
    }

    fn target(name: &str, events: &[&str], label: TargetLabel) -> DeploymentTarget {
        DeploymentTarget {
            instance_target: Some(InstanceTarget {
                target_id: Some(name.into()),
                status: Some(TargetStatus::Pending),
                lifecycle_events: Some(pending_events(events)),
                instance_label: Some(label),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `blue` original hosts (with ApplicationStop after their block events if `terminate`) and
    /// `green` replacement ones, all-at-once, under the blue/green engine.
    fn world(blue: usize, green: usize, terminate: bool, settings: BlueGreenSettings) -> World {
        let mut blue_events = BLOCK_TRAFFIC.to_vec();
        if terminate {
            blue_events.push(APPLICATION_STOP);
        }
        let mut world =
            World::new(0, Some(MinimumHealthyHosts { r#type: Some("HOST_COUNT".into()), value: Some(0) }), &[]);
        world.reconcile = reconcile;
        world.settings.blue_green = settings;
        world.targets = (0..blue)
            .map(|i| target(&format!("blue-{i}"), &blue_events, TargetLabel::Blue))
            .chain((0..green).map(|i| target(&format!("green-{i}"), &green_events(), TargetLabel::Green)))
            .collect();
        world
    }

    /// Steps, the hosts running whatever they are sent, until nothing changes.
    fn settle(world: &mut World) {
        for _ in 0..100 {
            let before = (world.sent.len(), world.deployment.clone(), world.progress.clone());
            world.step();
            let sent = world.commands.iter().any(|c| c.state == CommandState::Queued);
            world.hosts_run();
            if !sent && before == (world.sent.len(), world.deployment.clone(), world.progress.clone()) {
                return;
            }
        }
        panic!("the deployment never settled");
    }

    fn status(world: &World) -> DeploymentStatus {
        world.deployment.status.clone().unwrap()
    }

    fn phase(world: &World) -> Phase {
        world.progress.blue_green.as_ref().unwrap().phase
    }

    fn share(world: &World) -> Option<u8> {
        world.progress.blue_green.as_ref().unwrap().green_share
    }

    fn sent_to(world: &World, prefix: &str) -> Vec<String> {
        world.sent.iter().filter(|(t, _)| t.starts_with(prefix)).map(|(_, e)| e.clone()).collect()
    }

    fn position(world: &World, host: &str, event: &str) -> usize {
        world.sent.iter().position(|(t, e)| t == host && e == event).unwrap()
    }

    #[test]
    fn green_installs_takes_traffic_then_blue_is_blocked() {
        let mut world = world(2, 2, false, BlueGreenSettings::default());
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
        assert_eq!(sent_to(&world, "green-0"), green_events());
        assert_eq!(sent_to(&world, "blue-0"), BLOCK_TRAFFIC);
        // Blue leaves only once every Green host has traffic.
        let last_allow =
            position(&world, "green-1", "AfterAllowTraffic").max(position(&world, "green-0", "AfterAllowTraffic"));
        assert!(position(&world, "blue-0", "BeforeBlockTraffic") > last_allow);
        assert_eq!(share(&world), None);
    }

    #[test]
    fn stop_deployment_waits_ready_until_continued() {
        let settings = BlueGreenSettings { ready_wait_ms: Some(60_000), ..Default::default() };
        let mut world = world(1, 2, false, settings);
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Ready);
        assert_eq!(world.deployment.deployment_overview.as_ref().unwrap().ready, Some(2));
        assert!(!sent_to(&world, "green-0").contains(&"BeforeAllowTraffic".to_owned()));
        world.now += 30_000;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Ready);
        world.progress.continue_ready = true;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
    }

    #[test]
    fn ready_wait_running_out_stops_without_touching_traffic() {
        let settings = BlueGreenSettings { ready_wait_ms: Some(60_000), ..Default::default() };
        let mut world = world(1, 1, false, settings);
        settle(&mut world);
        world.now += 60_000;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Stopped);
        let error = world.deployment.error_information.clone().unwrap();
        assert_eq!(error.code, Some(ErrorCode::Timeout));
        assert!(sent_to(&world, "blue").is_empty());
        assert!(!sent_to(&world, "green").iter().any(|e| e.contains("Traffic")));
    }

    #[test]
    fn canary_holds_its_share_for_the_interval() {
        let shift = Shift::Canary { percentage: 10, interval_ms: 60_000 };
        let mut world = world(2, 2, false, BlueGreenSettings { shift: Some(shift), ..Default::default() });
        settle(&mut world);
        assert_eq!((phase(&world), share(&world)), (Phase::Shift, Some(10)));
        assert!(sent_to(&world, "blue").is_empty());
        world.now += 59_000;
        settle(&mut world);
        assert_eq!(share(&world), Some(10));
        world.now += 1_000;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
        assert_eq!(sent_to(&world, "blue-1"), BLOCK_TRAFFIC);
    }

    #[test]
    fn linear_steps_up_to_everything() {
        let shift = Shift::Linear { percentage: 30, interval_ms: 1_000 };
        assert_eq!([0, 999, 1_000, 2_500, 3_000].map(|t| shift.share_after(t)), [30, 30, 60, 90, 100]);
        assert_eq!(shift.share_after(shift.duration_ms()), 100);
        assert!(shift.share_after(shift.duration_ms() - 1) < 100);
        let tenths = Shift::Linear { percentage: 10, interval_ms: 60_000 };
        assert_eq!(tenths.duration_ms(), 9 * 60_000);
        assert_eq!(Shift::Canary { percentage: 10, interval_ms: 5 }.duration_ms(), 5);
        let mut world = world(1, 1, false, BlueGreenSettings { shift: Some(shift), ..Default::default() });
        let mut seen = Vec::new();
        for _ in 0..5 {
            settle(&mut world);
            seen.push(world.progress.blue_green.as_ref().unwrap().green_share);
            world.now += 1_000;
        }
        assert_eq!(seen, [Some(30), Some(60), Some(90), None, None]);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
    }

    #[test]
    fn a_weighted_failure_sends_everything_back_to_blue() {
        let shift = Shift::Canary { percentage: 10, interval_ms: 60_000 };
        let mut world = world(2, 2, false, BlueGreenSettings { shift: Some(shift), ..Default::default() });
        world.failing.push(("green-1".into(), "AllowTraffic".into()));
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Failed);
        let progress = world.progress.blue_green.clone().unwrap();
        assert!(progress.retreat);
        assert_eq!(progress.green_share, Some(0));
        assert!(sent_to(&world, "blue").is_empty());
    }

    #[test]
    fn a_stop_during_the_canary_sends_everything_back_to_blue_and_can_roll_back() {
        let shift = Shift::Linear { percentage: 25, interval_ms: 60_000 };
        let mut world = world(1, 1, false, BlueGreenSettings { shift: Some(shift), ..Default::default() });
        world.deployment.auto_rollback_configuration = Some(landfall_api::shapes::AutoRollbackConfiguration {
            enabled: Some(true),
            events: Some(vec![landfall_api::shapes::AutoRollbackEvent::DeploymentStopOnRequest]),
        });
        settle(&mut world);
        world.now += 60_000;
        settle(&mut world);
        assert_eq!((phase(&world), share(&world)), (Phase::Shift, Some(50)));
        world.progress.stop = Some(StopRequest::by_user(false));
        let step = world.step();
        assert_eq!(step.finished, Some(DeploymentStatus::Stopped));
        assert!(step.rollback);
        assert_eq!((share(&world), world.progress.blue_green.as_ref().unwrap().retreat), (Some(0), true));
        assert!(sent_to(&world, "blue").is_empty());
    }

    #[test]
    fn green_install_failures_beyond_the_budget_fail_before_any_traffic_moves() {
        let mut world = world(2, 2, false, BlueGreenSettings::default());
        world.settings.minimum_healthy_hosts =
            Some(MinimumHealthyHosts { r#type: Some("HOST_COUNT".into()), value: Some(1) });
        world.failing.push(("green-0".into(), "AfterInstall".into()));
        world.failing.push(("green-1".into(), "AfterInstall".into()));
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Failed);
        assert!(!world.sent.iter().any(|(_, e)| e.contains("Traffic")));
    }

    #[test]
    fn terminate_waits_then_stops_blue_even_if_its_scripts_fail() {
        let settings = BlueGreenSettings { termination_wait_ms: 120_000, ..Default::default() };
        let mut world = world(2, 1, true, settings);
        world.failing.push(("blue-1".into(), "ApplicationStop".into()));
        settle(&mut world);
        assert_eq!((status(&world), phase(&world)), (DeploymentStatus::InProgress, Phase::TerminationWait));
        assert_eq!(world.deployment.instance_termination_wait_time_started, Some(true));
        assert!(!sent_to(&world, "blue-0").contains(&"ApplicationStop".to_owned()));
        world.progress.end_termination_wait = true;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
        assert_eq!(sent_to(&world, "blue-1").last().map(String::as_str), Some("ApplicationStop"));
    }

    #[test]
    fn a_rollback_allows_blue_then_blocks_green() {
        let mut world = world(0, 0, false, BlueGreenSettings::default());
        world.deployment.creator = Some(DeploymentCreator::CodeDeployRollback);
        world.targets = vec![
            target("blue-0", &ALLOW_TRAFFIC, TargetLabel::Blue),
            target("green-0", &BLOCK_TRAFFIC, TargetLabel::Green),
        ];
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
        assert!(position(&world, "green-0", "BeforeBlockTraffic") > position(&world, "blue-0", "AfterAllowTraffic"));
    }

    /// An ECS deployment: one target with every event, no original hosts (the platform removes
    /// the original task set after the termination wait).
    fn ecs_world(settings: BlueGreenSettings) -> World {
        let mut world = world(0, 0, false, settings);
        let events = lifecycle_events(
            &ComputePlatform::Ecs,
            &DeploymentType::BlueGreen,
            &DeploymentOption::WithTrafficControl,
            &DeploymentCreator::User,
            ServerTargetRole::Install,
        );
        world.targets = vec![target("cluster:service", &events, TargetLabel::Green)];
        world
    }

    #[test]
    fn an_ecs_target_waits_ready_before_production_traffic_and_the_deployment_waits_to_terminate() {
        let settings =
            BlueGreenSettings { ready_wait_ms: Some(60_000), termination_wait_ms: 120_000, ..Default::default() };
        let mut world = ecs_world(settings);
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Ready);
        assert_eq!(sent_to(&world, "cluster").last().map(String::as_str), Some("AfterAllowTestTraffic"));
        world.progress.continue_ready = true;
        settle(&mut world);
        assert_eq!((status(&world), phase(&world)), (DeploymentStatus::InProgress, Phase::TerminationWait));
        assert_eq!(sent_to(&world, "cluster").last().map(String::as_str), Some("AfterAllowTraffic"));
        assert_eq!(world.deployment.instance_termination_wait_time_started, Some(true));
        world.now += 119_000;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::InProgress);
        world.now += 1_000;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);
    }

    #[test]
    fn an_ecs_termination_wait_ends_on_continue_and_a_stop_ends_it_too() {
        let settings = BlueGreenSettings { termination_wait_ms: 3_600_000, ..Default::default() };
        let mut world = ecs_world(settings.clone());
        settle(&mut world);
        assert_eq!(phase(&world), Phase::TerminationWait);
        world.progress.end_termination_wait = true;
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Succeeded);

        let mut world = ecs_world(settings);
        settle(&mut world);
        world.progress.stop = Some(StopRequest::by_user(false));
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Stopped);
    }

    #[test]
    fn no_replacement_hosts_is_no_instances() {
        let mut world = world(2, 0, false, BlueGreenSettings::default());
        settle(&mut world);
        assert_eq!(status(&world), DeploymentStatus::Failed);
        assert_eq!(world.deployment.error_information.unwrap().code, Some(ErrorCode::NoInstances));
    }
}
