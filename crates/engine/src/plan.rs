//! The planner: the one place that decides what happens next in a deployment. From the facts
//! the driver loads (the deployment, its targets and host commands, its configuration, group
//! and platform, the time) [`plan`] works out the deployment's next state and the [`Effect`]s
//! that carry it out. The driver only loads, writes and carries out, so every rule of a
//! deployment, down to which hosts a rollback reaches, is a pure function tested here.
//!
//! [`run`](crate::run), [`zonal`](crate::zonal) and [`blue_green`](crate::blue_green) schedule
//! lifecycle events; this module turns a deployment's stored settings into theirs, and their
//! step into everything else a step means: the commands to create (and which the server takes
//! itself), the hosts' install history, the group's new last good revision, the rollback
//! deployment, the timeline and the trigger notifications.

use std::collections::HashMap;

use landfall_api::Timestamp;
use landfall_api::landfall::DeploymentEventType;
use landfall_api::shapes::{
    BlueGreenDeploymentConfiguration, ComputePlatform, DeploymentConfigInfo, DeploymentCreator, DeploymentGroupInfo,
    DeploymentInfo, DeploymentOption, DeploymentReadyAction, DeploymentStatus, DeploymentTarget, DeploymentType,
    ErrorCode, ErrorInformation, InstanceAction, LifecycleEventStatus, LoadBalancerInfo, RevisionLocation,
    RollbackInfo, TargetLabel, TargetStatus, TrafficRoutingType, TriggerEventType,
};
use landfall_api::validate;

use crate::blue_green::{self, BlueGreenProgress, BlueGreenSettings, Shift};
use crate::lifecycle::{self, ServerTargetRole, lifecycle_events};
use crate::run::{self, Command, CommandState, Facts, Progress, Settings, Step, Timeouts};
use crate::timeline::{self, StepChange};
use crate::zonal::ZonalSettings;

/// The rules of a platform the server drives through an API (Lambda, ECS): what the planner
/// asks the platform, and nothing that does I/O.
pub trait PlatformRules: Sync {
    /// Whether the deployment goes through the blue/green phases (the ready wait before
    /// production traffic, the termination wait after it).
    fn blue_green(&self) -> bool;

    /// The error code a deployment that failed at `event` reports.
    fn failure_code(&self, event: &str) -> ErrorCode;

    /// What the rollback of this (failed or stopped) deployment, `id`, deploys; Err says why
    /// there is nothing to roll back.
    fn rollback(
        &self,
        id: &str,
        failed: &DeploymentInfo,
        target: Option<&DeploymentTarget>,
        now: Timestamp,
    ) -> Result<RollbackPlan, String>;
}

/// A rollback deployment's revision, targets (in order), configuration and AppSpec.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    pub revision: RevisionLocation,
    pub targets: Vec<DeploymentTarget>,
    /// The configuration it runs with (none: the failed deployment's).
    pub config_name: Option<String>,
    /// What the rollback keeps as its AppSpec (a platform deployment's).
    pub appspec: Option<String>,
}

/// Everything the planner looks at.
pub struct Situation<'a> {
    pub deployment: &'a DeploymentInfo,
    pub progress: &'a Progress,
    /// In the deployment's order.
    pub targets: &'a [DeploymentTarget],
    /// In the order [`run::sort_commands`] puts them.
    pub commands: &'a [Command],
    /// The deployment's configuration, if it still exists.
    pub config: Option<&'a DeploymentConfigInfo>,
    /// Its group, if it still exists: the last good revision, the triggers.
    pub group: Option<&'a DeploymentGroupInfo>,
    /// A Lambda or ECS deployment's platform; `None` for Server deployments (and a platform
    /// deployment whose AppSpec cannot be read, which can only be stopped).
    pub platform: Option<&'a dyn PlatformRules>,
    /// The server's timeouts.
    pub timeouts: Timeouts,
    /// Each target host's zone, for a zonal deployment not yet planned (planning fixes them).
    pub zone_of: &'a HashMap<String, String>,
    /// The id a rollback deployment started in this step gets.
    pub rollback_id: &'a str,
    pub now: Timestamp,
}

impl Situation<'_> {
    fn on_server_platform(&self) -> bool {
        matches!(self.deployment.compute_platform, None | Some(ComputePlatform::Server))
    }

    /// Whether the deployment goes through the blue/green phases.
    pub fn blue_green(&self) -> bool {
        match self.platform {
            Some(platform) => platform.blue_green(),
            None => self.on_server_platform() && is_blue_green(self.deployment),
        }
    }
}

/// A host command to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommand {
    pub target_id: String,
    pub event: String,
    /// The server carries it out itself (a traffic event, any event of a Lambda or ECS
    /// deployment): created already taken, so no agent can receive it.
    pub taken: bool,
    /// A Lambda or ECS hook counts as acknowledged once invoked, which the server does at once.
    pub acknowledged: bool,
}

/// A host's install history, after it finished a deployment that installed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub instance: String,
    /// The revision it now runs (none after a failure: it may be half installed).
    pub revision_key: Option<String>,
    pub healthy: bool,
}

/// The rollback deployment a step starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    pub info: DeploymentInfo,
    pub targets: Vec<DeploymentTarget>,
    pub revision: RevisionLocation,
    pub progress: Progress,
}

/// A trigger notification for one of the group's subscribed triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub trigger_name: String,
    pub destination: String,
    pub event: TriggerEventType,
    /// For instance triggers: the target as it is now.
    pub target: Option<DeploymentTarget>,
}

/// What the driver carries out after it wrote a step, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// These hosts have work (new, or queued again): their long polls return.
    WakeHosts(Vec<String>),
    /// A Server blue/green deployment's target groups route this way (the routers follow).
    RouteTraffic(Routing),
    /// The step wrote trigger notifications to the outbox: deliver them.
    DeliverTriggers,
    /// The deployment ended on its platform: clean up after a success, or put back what it
    /// changed when no rollback will.
    FinishPlatform { status: DeploymentStatus, rolled_back: bool },
    /// The deployment ended: its hosts may be new to the group, behind it, or free to leave.
    NudgeFleet,
}

/// How a Server blue/green deployment's target groups route now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub target_groups: Vec<String>,
    pub blue: Vec<String>,
    pub green: Vec<String>,
    /// Green's share (percent) of the traffic while it is shifted; `None`: the targets'
    /// registered weights.
    pub green_share: Option<u8>,
    /// Green leaves rotation: a weighted deployment failed or stopped before Blue was blocked.
    pub retreat: bool,
    /// Blue leaves the target groups: a successful deployment that terminates its originals.
    pub remove_blue: bool,
}

/// What happens next.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The engine's step: the deployment (error and rollback information included), its
    /// progress, the targets and commands it changes.
    pub step: Step,
    pub new_commands: Vec<NewCommand>,
    pub installed: Vec<Installed>,
    /// The group's new last good revision (without inline content), after a success.
    pub last_good_revision: Option<(RevisionLocation, String)>,
    pub rollback: Option<Rollback>,
    pub timeline: Vec<landfall_api::landfall::DeploymentEventInfo>,
    pub notifications: Vec<Notification>,
    pub effects: Vec<Effect>,
}

/// Decides what happens next; `None` when nothing changes.
pub fn plan(situation: &Situation<'_>) -> Option<Plan> {
    let settings = settings(situation);
    let facts = Facts {
        deployment: situation.deployment,
        progress: situation.progress,
        targets: situation.targets,
        commands: situation.commands,
        settings: &settings,
        now: situation.now,
    };
    let blue_green = situation.blue_green();
    let mut step = if blue_green { blue_green::reconcile(&facts) } else { run::reconcile(&facts) };
    if step.is_empty(&facts) {
        return None;
    }
    // A platform deployment says which of its events failed, with the platform's error code.
    if let (Some(platform), Some(DeploymentStatus::Failed)) = (situation.platform, &step.finished)
        && let Some((event, message)) = failed_event(step.changed_targets.iter().chain(situation.targets))
    {
        step.deployment.error_information = Some(ErrorInformation {
            code: Some(platform.failure_code(&event)),
            message: Some(format!("The {event} lifecycle event failed: {message}")),
        });
    }
    let rollback = if step.rollback { rollback(situation, &mut step) } else { None };
    let (timeline, notifications) = timeline_of(situation, &step, rollback.as_ref());
    let new_commands = new_commands(situation, &step);
    let effects = effects(situation, &step, &new_commands, rollback.is_some(), !notifications.is_empty());
    Some(Plan {
        new_commands,
        installed: installed(situation, &step),
        last_good_revision: last_good_revision(situation, &step),
        rollback,
        timeline,
        notifications,
        effects,
        step,
    })
}

/// The settings the engine runs the deployment with, from its configuration and platform.
pub fn settings(situation: &Situation<'_>) -> Settings {
    let config = situation.config;
    let blue_green = situation.blue_green();
    let rollback_of_blue_green =
        blue_green && situation.deployment.creator == Some(DeploymentCreator::CodeDeployRollback);
    let shift = traffic_shift(config);
    Settings {
        zonal: match config.and_then(|c| c.zonal_config.as_ref()) {
            Some(zonal) if !blue_green => {
                let seconds = |s: Option<i64>| s.map(|s| s.max(0) * 1000);
                Some(ZonalSettings {
                    zone_of: situation.zone_of.clone(),
                    first_monitor_ms: seconds(zonal.first_zone_monitor_duration_in_seconds),
                    monitor_ms: seconds(zonal.monitor_duration_in_seconds).unwrap_or(0),
                    minimum_healthy_per_zone: zonal.minimum_healthy_hosts_per_zone.clone(),
                })
            }
            _ => None,
        },
        // A blue/green rollback reroutes to every host it can, whatever the configuration.
        minimum_healthy_hosts: config.and_then(|c| c.minimum_healthy_hosts.clone()).filter(|_| !rollback_of_blue_green),
        ignore_application_stop_failures: situation.deployment.ignore_application_stop_failures == Some(true),
        timeouts: match situation.platform {
            // No agent carries a platform deployment's events, so none is lost on its way; its
            // AllowTraffic lasts as long as the configuration shifts traffic. Hooks keep their
            // own time; this one, a minute longer, only backs it up.
            Some(_) => Timeouts {
                ack_ms: i64::MAX,
                event_ms: situation.timeouts.event_ms + shift.map_or(0, Shift::duration_ms) + 60_000,
                ..situation.timeouts
            },
            None => situation.timeouts,
        },
        blue_green: if blue_green && !rollback_of_blue_green {
            let mut settings = blue_green_settings(situation.deployment, config);
            if situation.platform.is_some() {
                settings.shift = None; // the platform's AllowTraffic moves the traffic
            }
            settings
        } else {
            BlueGreenSettings::default()
        },
    }
}

/// Whether a deployment replaces its hosts (blue/green) rather than installing in place.
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
pub fn traffic_shift(config: Option<&DeploymentConfigInfo>) -> Option<Shift> {
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

/// The first failed lifecycle event of the first target that has one, and its message.
fn failed_event<'a>(targets: impl Iterator<Item = &'a DeploymentTarget>) -> Option<(String, String)> {
    targets.filter_map(|t| t.instance_target.as_ref()?.lifecycle_events.as_ref()).flatten().find_map(|event| {
        (event.status == Some(LifecycleEventStatus::Failed)).then(|| {
            let message = event.diagnostics.as_ref().and_then(|d| d.message.clone()).unwrap_or_default();
            (event.lifecycle_event_name.clone().unwrap_or_default(), message)
        })
    })
}

fn new_commands(situation: &Situation<'_>, step: &Step) -> Vec<NewCommand> {
    let every_event_on_server = !situation.on_server_platform();
    step.new_commands
        .iter()
        .map(|(target, event)| NewCommand {
            target_id: target.clone(),
            event: event.clone(),
            // Traffic events are the server's own work, and every event of a Lambda or ECS
            // deployment is.
            taken: every_event_on_server || lifecycle::runs_on_server(event),
            acknowledged: lifecycle::runs_on_server(event),
        })
        .collect()
}

/// Only hosts that installed something have a new revision (not a blue/green deployment's
/// original hosts, nor any host of its rollback, nor a platform's target).
fn installed(situation: &Situation<'_>, step: &Step) -> Vec<Installed> {
    if situation.platform.is_some() {
        return Vec::new();
    }
    let revision_key = situation.deployment.revision.as_ref().map(validate::revision_key);
    let installing: std::collections::HashSet<&str> =
        situation.targets.iter().filter(|t| installs(t)).filter_map(target_id).collect();
    step.finished_targets
        .iter()
        .filter(|(instance, _)| installing.contains(instance.as_str()))
        .map(|(instance, succeeded)| Installed {
            instance: instance.clone(),
            revision_key: if *succeeded { revision_key.clone() } else { None },
            healthy: *succeeded,
        })
        .collect()
}

fn last_good_revision(situation: &Situation<'_>, step: &Step) -> Option<(RevisionLocation, String)> {
    match (&step.finished, &situation.deployment.revision) {
        (Some(DeploymentStatus::Succeeded), Some(location)) => {
            Some((validate::without_content(location), validate::revision_key(location)))
        }
        _ => None,
    }
}

/// Whether a target's events install a revision.
fn installs(target: &DeploymentTarget) -> bool {
    let events = target.instance_target.as_ref().and_then(|t| t.lifecycle_events.as_ref());
    events.is_some_and(|events| events.iter().any(|e| e.lifecycle_event_name.as_deref() == Some("Install")))
}

fn target_id(target: &DeploymentTarget) -> Option<&str> {
    target.instance_target.as_ref()?.target_id.as_deref()
}

/// Every target as `changed` leaves it, in the deployment's order.
fn targets_after<'a>(
    targets: &'a [DeploymentTarget],
    changed: &'a [DeploymentTarget],
) -> impl Iterator<Item = &'a DeploymentTarget> {
    let changed: HashMap<&str, &DeploymentTarget> = changed.iter().filter_map(|t| Some((target_id(t)?, t))).collect();
    targets.iter().map(move |target| target_id(target).and_then(|id| changed.get(id).copied()).unwrap_or(target))
}

/// The rollback of a deployment that failed or stopped: a new deployment that undoes it, and
/// the `rollbackInfo` of both. With nothing to go back to, only the message says why.
fn rollback(situation: &Situation<'_>, step: &mut Step) -> Option<Rollback> {
    let failed = &mut step.deployment;
    let failed_id = failed.deployment_id.clone().unwrap_or_default();
    let id = situation.rollback_id;
    let now = situation.now;
    let planned = match situation.platform {
        Some(platform) => platform.rollback(id, failed, situation.targets.first(), now),
        None => server_rollback(situation, &step.changed_targets),
    };
    let RollbackPlan { revision, targets, config_name, appspec } = match planned {
        Ok(plan) => plan,
        Err(why) => {
            failed.rollback_info = Some(RollbackInfo {
                rollback_message: Some(format!("Automatic rollback was not performed: {why}")),
                ..Default::default()
            });
            return None;
        }
    };
    let info = DeploymentInfo {
        deployment_id: Some(id.to_owned()),
        status: Some(DeploymentStatus::Created),
        create_time: Some(now),
        creator: Some(DeploymentCreator::CodeDeployRollback),
        deployment_config_name: config_name.or_else(|| failed.deployment_config_name.clone()),
        revision: Some(revision.clone()),
        previous_revision: failed.revision.clone(),
        description: Some(format!("Rollback of deployment {failed_id}")),
        deployment_overview: Some(run::overview(&targets)),
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
        ..failed.clone()
    };
    failed.rollback_info = Some(RollbackInfo {
        rollback_deployment_id: Some(id.to_owned()),
        rollback_message: Some(format!("Rolling back to the last successful revision with deployment {id}.")),
        ..Default::default()
    });
    Some(Rollback { info, targets, revision, progress: Progress { appspec, ..Default::default() } })
}

/// What a Server rollback deploys: the group's last successful revision (a blue/green one: the
/// failed deployment's, sending traffic back to the original hosts) to the hosts the failed
/// deployment reached, and for a blue/green one every original host too.
fn server_rollback(situation: &Situation<'_>, changed: &[DeploymentTarget]) -> Result<RollbackPlan, String> {
    let failed = situation.deployment;
    let blue_green = is_blue_green(failed);
    // A blue/green rollback installs nothing: it sends traffic back to the original hosts.
    let revision = situation
        .group
        .and_then(|g| g.target_revision.clone())
        .or_else(|| if blue_green { failed.revision.clone() } else { None })
        .ok_or_else(|| {
            let group_name = failed.deployment_group_name.clone().unwrap_or_default();
            format!("deployment group {group_name} has no successful deployment to roll back to.")
        })?;
    let label = |target: &DeploymentTarget| target.instance_target.as_ref().and_then(|t| t.instance_label.clone());
    let style = failed.deployment_style.clone().unwrap_or_default();
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
    // The hosts the failed deployment reached (anything but Skipped), as they are now; for a
    // blue/green one, every original host too.
    let targets = targets_after(situation.targets, changed)
        .filter(|target| {
            let skipped = matches!(
                target.instance_target.as_ref().and_then(|t| t.status.clone()),
                Some(TargetStatus::Skipped) | None
            );
            !skipped || (blue_green && label(target) == Some(TargetLabel::Blue))
        })
        .filter_map(|target| {
            let instance = target.instance_target.as_ref()?;
            let name = instance.target_id.as_deref()?;
            let label = label(target);
            let events = events(&label);
            Some(run::new_instance_target(
                situation.rollback_id,
                name,
                instance.target_arn.clone(),
                &events,
                label,
                situation.now,
            ))
        })
        .collect();
    Ok(RollbackPlan { revision, targets, config_name: None, appspec: None })
}

/// The step's timeline entries, and the notifications the group's triggers subscribe to.
fn timeline_of(
    situation: &Situation<'_>,
    step: &Step,
    rollback: Option<&Rollback>,
) -> (Vec<landfall_api::landfall::DeploymentEventInfo>, Vec<Notification>) {
    let zone_started = match (&situation.progress.zones, &step.progress.zones) {
        (before, Some(after)) if before.as_ref().map(|b| b.current) != Some(after.current) => {
            after.zones.get(after.current).map(|zone| (zone.name.clone(), after.current + 1, after.zones.len()))
        }
        _ => None,
    };
    let rollback_id = rollback.and_then(|r| r.info.deployment_id.as_deref());
    let entries = timeline::entries(&StepChange {
        before: situation.deployment,
        after: &step.deployment,
        targets_before: situation.targets,
        targets_changed: &step.changed_targets,
        zone_started,
        rollback_id,
        now: situation.now,
    });
    let triggers = situation.group.and_then(|g| g.trigger_configurations.as_deref()).unwrap_or_default();
    let mut notifications = Vec::new();
    for entry in &entries {
        let Some(event) = &entry.trigger else { continue };
        for trigger in triggers {
            let subscribed = trigger.trigger_events.as_deref().unwrap_or_default().contains(event);
            if let (true, Some(name), Some(destination)) =
                (subscribed, &trigger.trigger_name, &trigger.trigger_target_arn)
            {
                notifications.push(Notification {
                    trigger_name: name.clone(),
                    destination: destination.clone(),
                    event: event.clone(),
                    target: entry.target.clone(),
                });
            }
        }
    }
    let mut events: Vec<_> = entries.into_iter().map(|entry| entry.event).collect();
    if let Some(id) = rollback_id {
        let failed_id = situation.deployment.deployment_id.clone().unwrap_or_default();
        let message = format!("Created by codeDeployRollback to roll back deployment {failed_id}.");
        let mut created = timeline::entry(id, situation.now, DeploymentEventType::Created, message);
        created.related_deployment_id = Some(failed_id);
        events.push(created);
    }
    (events, notifications)
}

fn effects(
    situation: &Situation<'_>,
    step: &Step,
    new_commands: &[NewCommand],
    rolled_back: bool,
    notified: bool,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    // Hosts with work for their agents (new, or queued again) stop waiting in their long polls.
    let requeued = step
        .command_updates
        .iter()
        .filter(|(_, state, _)| *state == CommandState::Queued)
        .filter_map(|(id, ..)| situation.commands.iter().find(|c| c.id == *id).map(|c| c.target_id.clone()));
    let new = new_commands.iter().filter(|c| !c.taken).map(|c| c.target_id.clone());
    let hosts: Vec<String> = new.chain(requeued).collect();
    if !hosts.is_empty() {
        effects.push(Effect::WakeHosts(hosts));
    }
    // A Server blue/green deployment's traffic is the routers'.
    if situation.platform.is_none()
        && situation.blue_green()
        && let Some(progress) = &step.progress.blue_green
    {
        effects.push(Effect::RouteTraffic(routing(situation, step, progress)));
    }
    if notified {
        effects.push(Effect::DeliverTriggers);
    }
    if let Some(status) = &step.finished {
        if situation.platform.is_some() {
            effects.push(Effect::FinishPlatform { status: status.clone(), rolled_back });
        }
        effects.push(Effect::NudgeFleet);
    }
    effects
}

/// Where a Server blue/green deployment's traffic goes after `step`: while it shifts traffic,
/// Green gets its share; a weighted deployment that failed before blocking Blue takes Green
/// out of rotation; a finished one goes back to the registered weights, and a successful
/// TERMINATE one (not a rollback) removes its Blue hosts from the target groups.
fn routing(situation: &Situation<'_>, step: &Step, progress: &BlueGreenProgress) -> Routing {
    let fleet = |label: TargetLabel| -> Vec<String> {
        targets_after(situation.targets, &step.changed_targets)
            .filter_map(|t| t.instance_target.as_ref())
            .filter(|t| t.instance_label.as_ref() == Some(&label))
            .filter_map(|t| t.target_id.clone())
            .collect()
    };
    let deployment = &step.deployment;
    let rollback = deployment.creator == Some(DeploymentCreator::CodeDeployRollback);
    Routing {
        target_groups: target_group_names(deployment.load_balancer_info.as_ref()),
        blue: fleet(TargetLabel::Blue),
        green: fleet(TargetLabel::Green),
        // Imposed weights last while the deployment runs.
        green_share: if step.finished.is_some() { None } else { progress.green_share },
        retreat: progress.retreat,
        remove_blue: !rollback
            && step.finished == Some(DeploymentStatus::Succeeded)
            && terminates_original_hosts(deployment.blue_green_deployment_configuration.as_ref()),
    }
}

/// The names of the target groups a deployment's load balancer info lists, each once.
pub fn target_group_names(info: Option<&LoadBalancerInfo>) -> Vec<String> {
    let Some(info) = info else { return Vec::new() };
    let groups = info.target_group_info_list.iter().flatten().filter_map(|g| g.name.clone());
    let elbs = info.elb_info_list.iter().flatten().filter_map(|e| e.name.clone());
    let mut names: Vec<String> = Vec::new();
    for name in groups.chain(elbs) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests;
