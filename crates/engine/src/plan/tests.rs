//! The planner's rules, scenario by scenario, in the engine's World: hosts that run what they
//! are sent (failing what they are told to), with the planner, not the bare engine, deciding.

use landfall_api::shapes::{
    AutoRollbackConfiguration, AutoRollbackEvent, BlueInstanceTerminationOption, DeploymentReadyOption,
    DeploymentStyle, MinimumHealthyHosts, MinimumHealthyHostsPerZone, S3Location, TargetGroupInfo, TimeBasedCanary,
    TrafficRoutingConfig, TriggerConfig, ZonalConfig,
};

use super::*;
use crate::run::tests::World;

fn hosts(kind: &str, value: i64) -> Option<MinimumHealthyHosts> {
    Some(MinimumHealthyHosts { r#type: Some(kind.into()), value: Some(value) })
}

fn revision(key: &str) -> RevisionLocation {
    RevisionLocation {
        revision_type: Some("S3".into()),
        s3_location: Some(S3Location {
            bucket: Some("releases".into()),
            key: Some(key.into()),
            bundle_type: Some("zip".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn auto_rollback() -> Option<AutoRollbackConfiguration> {
    Some(AutoRollbackConfiguration {
        enabled: Some(true),
        events: Some(vec![AutoRollbackEvent::DeploymentFailure, AutoRollbackEvent::DeploymentStopOnRequest]),
    })
}

fn blue_green_style() -> Option<DeploymentStyle> {
    Some(DeploymentStyle {
        deployment_type: Some(DeploymentType::BlueGreen),
        deployment_option: Some(DeploymentOption::WithTrafficControl),
    })
}

fn events(style: DeploymentType, role: ServerTargetRole, creator: DeploymentCreator) -> Vec<&'static str> {
    let option = if style == DeploymentType::BlueGreen {
        DeploymentOption::WithTrafficControl
    } else {
        DeploymentOption::WithoutTrafficControl
    };
    lifecycle_events(&ComputePlatform::Server, &style, &option, &creator, role)
}

/// A platform with fixed rules, standing in for Lambda or ECS.
struct FakePlatform {
    blue_green: bool,
}

impl PlatformRules for FakePlatform {
    fn blue_green(&self) -> bool {
        self.blue_green
    }

    fn failure_code(&self, event: &str) -> ErrorCode {
        if event == "AllowTraffic" { ErrorCode::InvalidLambdaConfiguration } else { ErrorCode::HookExecutionFailure }
    }

    fn rollback(
        &self,
        id: &str,
        _failed: &DeploymentInfo,
        target: Option<&DeploymentTarget>,
        now: Timestamp,
    ) -> Result<RollbackPlan, String> {
        let name = target.and_then(target_id).ok_or("no target")?;
        Ok(RollbackPlan {
            revision: revision("undo.zip"),
            targets: vec![run::new_instance_target(id, name, None, &["AllowTraffic"], None, now)],
            config_name: Some("CodeDeployDefault.LambdaAllAtOnce".into()),
            appspec: Some("the undoing AppSpec".into()),
        })
    }
}

/// A deployment planned step by step: the World holds its state, the planner decides.
struct Scenario {
    world: World,
    config: DeploymentConfigInfo,
    group: DeploymentGroupInfo,
    platform: Option<FakePlatform>,
    zone_of: HashMap<String, String>,
    timeouts: Timeouts,
    /// Every plan made, in order.
    plans: Vec<Plan>,
}

impl Scenario {
    /// `n` hosts deploying `v2.zip` in place with `minimum`, failing the events listed; the
    /// group last succeeded with `v1.zip`.
    fn in_place(n: usize, minimum: Option<MinimumHealthyHosts>, failing: &[(usize, &str)]) -> Scenario {
        let mut world = World::new(n, None, failing);
        world.deployment.revision = Some(revision("v2.zip"));
        world.deployment.deployment_group_name = Some("web".into());
        world.deployment.deployment_config_name = Some("Custom".into());
        Scenario {
            world,
            config: DeploymentConfigInfo { minimum_healthy_hosts: minimum, ..Default::default() },
            group: DeploymentGroupInfo {
                deployment_group_name: Some("web".into()),
                target_revision: Some(revision("v1.zip")),
                ..Default::default()
            },
            platform: None,
            zone_of: HashMap::new(),
            timeouts: Timeouts::default(),
            plans: Vec::new(),
        }
    }

    /// `blue` original and `green` replacement hosts, all at once, blue/green with traffic
    /// control through target group `tg`, failing the events listed.
    fn blue_green(blue: usize, green: usize, failing: &[(&str, &str)]) -> Scenario {
        let mut scenario = Scenario::in_place(0, hosts("HOST_COUNT", 0), &[]);
        let world = &mut scenario.world;
        world.deployment.deployment_style = blue_green_style();
        world.deployment.load_balancer_info = Some(LoadBalancerInfo {
            target_group_info_list: Some(vec![TargetGroupInfo { name: Some("tg".into()) }]),
            ..Default::default()
        });
        world.deployment.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration::default());
        let user = DeploymentCreator::User;
        let original = events(DeploymentType::BlueGreen, ServerTargetRole::Original, user.clone());
        let install = events(DeploymentType::BlueGreen, ServerTargetRole::Install, user);
        let target = |name: String, events: &[&str], label| {
            run::new_instance_target("d-TEST00001", &name, None, events, Some(label), Timestamp(0))
        };
        world.targets = (0..blue)
            .map(|i| target(format!("blue-{i}"), &original, TargetLabel::Blue))
            .chain((0..green).map(|i| target(format!("green-{i}"), &install, TargetLabel::Green)))
            .collect();
        world.failing = failing.iter().map(|(host, event)| ((*host).to_owned(), (*event).to_owned())).collect();
        scenario
    }

    /// A Lambda deployment of alias `fn:live` on the fake platform.
    fn lambda() -> Scenario {
        let mut scenario = Scenario::in_place(1, None, &[]);
        scenario.world.deployment.compute_platform = Some(ComputePlatform::Lambda);
        let events = ["BeforeAllowTraffic", "AllowTraffic"];
        let target = run::new_instance_target("d-TEST00001", "fn:live", None, &events, None, Timestamp(0));
        scenario.world.targets = vec![target];
        scenario.platform = Some(FakePlatform { blue_green: false });
        scenario
    }

    fn situation<'a>(&'a self, commands: &'a [Command]) -> Situation<'a> {
        Situation {
            deployment: &self.world.deployment,
            progress: &self.world.progress,
            targets: &self.world.targets,
            commands,
            config: Some(&self.config),
            group: Some(&self.group),
            platform: self.platform.as_ref().map(|p| p as &dyn PlatformRules),
            timeouts: self.timeouts,
            zone_of: &self.zone_of,
            rollback_id: "d-ROLLBACK1",
            now: Timestamp(self.world.now),
        }
    }

    /// Plans once against the world as it is, and applies the plan's step to it.
    fn plan(&mut self) -> Option<Plan> {
        let mut commands = self.world.commands.clone();
        run::sort_commands(&mut commands);
        let plan = plan(&self.situation(&commands))?;
        self.world.apply(plan.step.clone());
        self.plans.push(plan.clone());
        Some(plan)
    }

    /// Plans and lets the hosts run until the deployment ends; the plan that ended it.
    fn run_to_end(&mut self) -> Plan {
        for _ in 0..200 {
            if let Some(plan) = self.plan()
                && plan.step.finished.is_some()
            {
                return plan;
            }
            self.world.hosts_run();
        }
        panic!("the deployment never finished")
    }

    fn settings(&self) -> Settings {
        settings(&self.situation(&[]))
    }
}

fn names(targets: &[DeploymentTarget]) -> Vec<&str> {
    targets.iter().filter_map(target_id).collect()
}

fn events_of(target: &DeploymentTarget) -> Vec<String> {
    let events = target.instance_target.as_ref().and_then(|t| t.lifecycle_events.clone()).unwrap_or_default();
    events.into_iter().filter_map(|e| e.lifecycle_event_name).collect()
}

#[test]
fn a_failed_in_place_deployment_rolls_back_the_last_good_revision_to_the_hosts_it_reached() {
    let mut scenario = Scenario::in_place(4, hosts("MOST_CONCURRENCY", 1), &[(1, "Install")]);
    scenario.world.deployment.auto_rollback_configuration = auto_rollback();
    let last = scenario.run_to_end();
    assert_eq!(last.step.finished, Some(DeploymentStatus::Failed));
    let rollback = last.rollback.expect("a rollback");
    // Hosts 2 and 3 were never reached (Skipped): the rollback leaves them alone.
    assert_eq!(names(&rollback.targets), ["host-0", "host-1"]);
    assert_eq!(rollback.revision, revision("v1.zip"));
    let expected = events(DeploymentType::InPlace, ServerTargetRole::Install, DeploymentCreator::CodeDeployRollback);
    assert_eq!(events_of(&rollback.targets[0]), expected);
    let info = &rollback.info;
    assert_eq!(info.deployment_id.as_deref(), Some("d-ROLLBACK1"));
    assert_eq!(info.creator, Some(DeploymentCreator::CodeDeployRollback));
    assert_eq!(info.status, Some(DeploymentStatus::Created));
    assert_eq!(info.previous_revision, Some(revision("v2.zip")));
    assert_eq!(info.deployment_config_name.as_deref(), Some("Custom"), "the failed deployment's configuration");
    assert_eq!(info.auto_rollback_configuration, None, "a rollback is not rolled back");
    let triggering = info.rollback_info.as_ref().and_then(|r| r.rollback_triggering_deployment_id.as_deref());
    assert_eq!(triggering, Some("d-TEST00001"));
    // The failed deployment names its rollback, and the timeline says it was created.
    let failed = last.step.deployment.rollback_info.unwrap();
    assert_eq!(failed.rollback_deployment_id.as_deref(), Some("d-ROLLBACK1"));
    let created = last.timeline.iter().find(|e| e.deployment_id == "d-ROLLBACK1").expect("a Created entry");
    assert_eq!(created.related_deployment_id.as_deref(), Some("d-TEST00001"));
}

#[test]
fn without_a_successful_deployment_there_is_nothing_to_roll_back_to() {
    let mut scenario = Scenario::in_place(2, hosts("MOST_CONCURRENCY", 1), &[(0, "Install")]);
    scenario.world.deployment.auto_rollback_configuration = auto_rollback();
    scenario.group.target_revision = None;
    let last = scenario.run_to_end();
    assert_eq!(last.rollback, None);
    let message = last.step.deployment.rollback_info.and_then(|r| r.rollback_message).unwrap();
    assert_eq!(
        message,
        "Automatic rollback was not performed: deployment group web has no successful deployment to roll back to."
    );
    assert!(last.timeline.iter().all(|e| e.deployment_id == "d-TEST00001"));
}

#[test]
fn a_stopped_deployment_rolls_back_when_asked() {
    let mut scenario = Scenario::in_place(3, hosts("HOST_COUNT", 0), &[]);
    scenario.plan();
    scenario.world.hosts_run();
    scenario.world.progress.stop = Some(run::StopRequest::by_user(true));
    let last = scenario.run_to_end();
    assert_eq!(last.step.finished, Some(DeploymentStatus::Stopped));
    // Every host had started: the rollback reaches all of them.
    assert_eq!(names(&last.rollback.unwrap().targets), ["host-0", "host-1", "host-2"]);
}

#[test]
fn a_blue_green_rollback_sends_traffic_back_to_every_original_host() {
    // Nothing was ever deployed to the group: a blue/green rollback keeps the failed
    // deployment's revision, since it installs nothing.
    let mut scenario = Scenario::blue_green(2, 2, &[("green-0", "ValidateService"), ("green-1", "ValidateService")]);
    scenario.world.deployment.auto_rollback_configuration = auto_rollback();
    scenario.group.target_revision = None;
    let last = scenario.run_to_end();
    assert_eq!(last.step.finished, Some(DeploymentStatus::Failed));
    let rollback = last.rollback.expect("a rollback");
    assert_eq!(rollback.revision, revision("v2.zip"));
    let mut reached = names(&rollback.targets);
    reached.sort();
    assert_eq!(reached, ["blue-0", "blue-1", "green-0", "green-1"], "the originals were skipped, yet they take part");
    let blue = rollback.targets.iter().find(|t| target_id(t) == Some("blue-0")).unwrap();
    let original = events(DeploymentType::BlueGreen, ServerTargetRole::Original, DeploymentCreator::CodeDeployRollback);
    assert_eq!(events_of(blue), original);
    assert_eq!(blue.instance_target.as_ref().unwrap().instance_label, Some(TargetLabel::Blue));
}

#[test]
fn a_blue_green_rollback_ignores_minimum_healthy_hosts_and_waits() {
    let mut scenario = Scenario::blue_green(1, 1, &[]);
    scenario.config.minimum_healthy_hosts = hosts("FLEET_PERCENT", 75);
    scenario.world.deployment.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
        deployment_ready_option: Some(DeploymentReadyOption {
            action_on_timeout: Some(DeploymentReadyAction::StopDeployment),
            wait_time_in_minutes: Some(5),
        }),
        ..Default::default()
    });
    assert_eq!(scenario.settings().minimum_healthy_hosts, hosts("FLEET_PERCENT", 75));
    assert_eq!(scenario.settings().blue_green.ready_wait_ms, Some(300_000));
    scenario.world.deployment.creator = Some(DeploymentCreator::CodeDeployRollback);
    let settings = scenario.settings();
    assert_eq!(settings.minimum_healthy_hosts, None, "it reroutes to every host it can");
    assert_eq!(settings.blue_green, BlueGreenSettings::default(), "and does not wait");
}

#[test]
fn blue_green_settings_come_from_the_deployment_and_its_configuration() {
    let mut scenario = Scenario::blue_green(1, 1, &[]);
    scenario.world.deployment.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
        terminate_blue_instances_on_deployment_success: Some(BlueInstanceTerminationOption {
            action: Some(InstanceAction::Terminate),
            termination_wait_time_in_minutes: Some(2),
        }),
        // CONTINUE_DEPLOYMENT: no ready wait.
        deployment_ready_option: Some(DeploymentReadyOption {
            action_on_timeout: Some(DeploymentReadyAction::ContinueDeployment),
            wait_time_in_minutes: Some(9),
        }),
        ..Default::default()
    });
    scenario.config.traffic_routing_config = Some(canary(20, 3));
    let settings = scenario.settings();
    assert_eq!(
        settings.blue_green,
        BlueGreenSettings {
            ready_wait_ms: None,
            termination_wait_ms: 120_000,
            shift: Some(Shift::Canary { percentage: 20, interval_ms: 180_000 }),
        }
    );
    assert_eq!(settings.zonal, None);
    // On a platform, AllowTraffic moves the traffic, not the blue/green engine.
    scenario.platform = Some(FakePlatform { blue_green: true });
    assert_eq!(scenario.settings().blue_green.shift, None);
}

fn canary(percentage: i64, minutes: i64) -> TrafficRoutingConfig {
    TrafficRoutingConfig {
        r#type: Some(TrafficRoutingType::TimeBasedCanary),
        time_based_canary: Some(TimeBasedCanary {
            canary_percentage: Some(percentage),
            canary_interval: Some(minutes),
        }),
        ..Default::default()
    }
}

#[test]
fn platform_deployments_time_out_by_their_traffic_shift_and_are_never_lost_in_transit() {
    let mut scenario = Scenario::in_place(1, None, &[]);
    scenario.config.traffic_routing_config = Some(canary(10, 5));
    assert_eq!(scenario.settings().timeouts, Timeouts::default(), "agents' events keep the server's timeouts");
    scenario.world.deployment.compute_platform = Some(ComputePlatform::Lambda);
    scenario.platform = Some(FakePlatform { blue_green: false });
    let timeouts = scenario.settings().timeouts;
    assert_eq!(timeouts.ack_ms, i64::MAX);
    assert_eq!(timeouts.event_ms, Timeouts::default().event_ms + 5 * 60_000 + 60_000);
    assert_eq!(timeouts.pickup_ms, Timeouts::default().pickup_ms);
}

#[test]
fn zonal_settings_come_from_the_configuration_with_the_hosts_zones() {
    let mut scenario = Scenario::in_place(2, hosts("HOST_COUNT", 0), &[]);
    scenario.config.zonal_config = Some(ZonalConfig {
        first_zone_monitor_duration_in_seconds: Some(30),
        monitor_duration_in_seconds: Some(-5),
        minimum_healthy_hosts_per_zone: Some(MinimumHealthyHostsPerZone {
            r#type: Some("HOST_COUNT".into()),
            value: Some(1),
        }),
    });
    scenario.zone_of = HashMap::from([("host-0".to_owned(), "a".to_owned())]);
    let zonal = scenario.settings().zonal.expect("zonal settings");
    assert_eq!(zonal.zone_of, scenario.zone_of);
    assert_eq!((zonal.first_monitor_ms, zonal.monitor_ms), (Some(30_000), 0), "a negative wait is none");
    assert_eq!(zonal.minimum_healthy_per_zone.and_then(|m| m.value), Some(1));
    // Blue/green deployments are not zonal.
    scenario.world.deployment.deployment_style = blue_green_style();
    assert_eq!(scenario.settings().zonal, None);
}

#[test]
fn the_server_takes_its_own_events_and_agents_are_woken_for_theirs() {
    let mut scenario = Scenario::blue_green(1, 1, &[]);
    let first = scenario.plan().unwrap();
    // The replacement host installs first: agent work, handed out through its long poll.
    assert!(first.new_commands.iter().all(|c| !c.taken && !c.acknowledged && c.target_id == "green-0"));
    assert_eq!(first.effects[0], Effect::WakeHosts(vec!["green-0".into()]));
    let mut traffic = None;
    for _ in 0..30 {
        scenario.world.hosts_run();
        if let Some(plan) = scenario.plan()
            && let Some(allow) = plan.new_commands.iter().find(|c| c.event == "AllowTraffic")
        {
            traffic = Some((allow.clone(), plan.effects.clone()));
            break;
        }
    }
    let (allow, effects) = traffic.expect("AllowTraffic was sent");
    assert!(allow.taken && allow.acknowledged, "the server carries out traffic events");
    assert!(!effects.iter().any(|e| matches!(e, Effect::WakeHosts(hosts) if hosts.contains(&allow.target_id))));
    // Every event of a Lambda or ECS deployment is the server's; only traffic events count as
    // acknowledged at once (hooks are, once invoked).
    let plan = Scenario::lambda().plan().unwrap();
    assert_eq!(
        plan.new_commands,
        [NewCommand {
            target_id: "fn:live".into(),
            event: "BeforeAllowTraffic".into(),
            taken: true,
            acknowledged: false
        }]
    );
    assert!(!plan.effects.iter().any(|e| matches!(e, Effect::WakeHosts(_))));
}

#[test]
fn hosts_that_installed_get_history_and_a_success_becomes_the_last_good_revision() {
    let mut scenario = Scenario::in_place(3, hosts("HOST_COUNT", 0), &[(2, "ValidateService")]);
    let mut installed = Vec::new();
    let last = loop {
        if let Some(plan) = scenario.plan() {
            installed.extend(plan.installed.clone());
            if plan.step.finished.is_some() {
                break plan;
            }
        }
        scenario.world.hosts_run();
    };
    assert_eq!(last.step.finished, Some(DeploymentStatus::Succeeded));
    installed.sort_by(|a, b| a.instance.cmp(&b.instance));
    let key = validate::revision_key(&revision("v2.zip"));
    assert_eq!(
        installed,
        [
            Installed { instance: "host-0".into(), revision_key: Some(key.clone()), healthy: true },
            Installed { instance: "host-1".into(), revision_key: Some(key.clone()), healthy: true },
            Installed { instance: "host-2".into(), revision_key: None, healthy: false },
        ]
    );
    assert_eq!(last.last_good_revision, Some((revision("v2.zip"), key)));
}

#[test]
fn original_hosts_install_nothing_and_are_removed_after_a_terminating_success() {
    let mut scenario = Scenario::blue_green(2, 2, &[]);
    let last = scenario.run_to_end();
    assert_eq!(last.step.finished, Some(DeploymentStatus::Succeeded));
    let installed: Vec<&str> =
        scenario.plans.iter().flat_map(|p| p.installed.iter().map(|i| i.instance.as_str())).collect();
    assert!(installed.iter().all(|name| name.starts_with("green-")) && installed.len() == 2, "{installed:?}");
    let Some(Effect::RouteTraffic(routing)) = last.effects.iter().find(|e| matches!(e, Effect::RouteTraffic(_))) else {
        panic!("no routing in {:?}", last.effects)
    };
    assert_eq!(routing.target_groups, ["tg"]);
    assert_eq!((routing.blue.len(), routing.green.len()), (2, 2));
    assert!(routing.remove_blue && routing.green_share.is_none() && !routing.retreat);
    assert!(last.effects.contains(&Effect::NudgeFleet));
    // KEEP_ALIVE: the originals stay in the target groups.
    let mut keep = Scenario::blue_green(1, 1, &[]);
    keep.world.deployment.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
        terminate_blue_instances_on_deployment_success: Some(BlueInstanceTerminationOption {
            action: Some(InstanceAction::KeepAlive),
            ..Default::default()
        }),
        ..Default::default()
    });
    let last = keep.run_to_end();
    assert!(last.effects.iter().all(|e| !matches!(e, Effect::RouteTraffic(r) if r.remove_blue)));
}

#[test]
fn a_platform_deployment_fails_with_its_platforms_code_and_rolls_back_its_way() {
    let mut scenario = Scenario::lambda();
    scenario.world.deployment.auto_rollback_configuration = auto_rollback();
    scenario.world.failing = vec![("fn:live".into(), "AllowTraffic".into())];
    let last = scenario.run_to_end();
    let error = last.step.deployment.error_information.clone().unwrap();
    assert_eq!(error.code, Some(ErrorCode::InvalidLambdaConfiguration));
    assert!(error.message.unwrap().starts_with("The AllowTraffic lifecycle event failed: "));
    let rollback = last.rollback.clone().unwrap();
    assert_eq!(rollback.revision, revision("undo.zip"));
    assert_eq!(rollback.info.deployment_config_name.as_deref(), Some("CodeDeployDefault.LambdaAllAtOnce"));
    assert_eq!(rollback.progress.appspec.as_deref(), Some("the undoing AppSpec"));
    assert!(last.installed.is_empty(), "a platform target keeps no host history");
    assert!(last.effects.contains(&Effect::FinishPlatform { status: DeploymentStatus::Failed, rolled_back: true }));
}

#[test]
fn triggers_are_notified_of_the_events_they_subscribe_to() {
    let mut scenario = Scenario::in_place(1, None, &[]);
    let trigger = |name: &str, events: Vec<TriggerEventType>| TriggerConfig {
        trigger_name: Some(name.into()),
        trigger_target_arn: Some(format!("arn:aws:sns:us-east-1:111111111111:{name}")),
        trigger_events: Some(events),
    };
    scenario.group.trigger_configurations = Some(vec![
        trigger("ends", vec![TriggerEventType::DeploymentSuccess, TriggerEventType::DeploymentFailure]),
        trigger("hosts", vec![TriggerEventType::InstanceSuccess]),
    ]);
    let last = scenario.run_to_end();
    let sent: Vec<(&str, &TriggerEventType, bool)> = scenario
        .plans
        .iter()
        .flat_map(|p| &p.notifications)
        .map(|n| (n.trigger_name.as_str(), &n.event, n.target.is_some()))
        .collect();
    assert_eq!(
        sent,
        [("hosts", &TriggerEventType::InstanceSuccess, true), ("ends", &TriggerEventType::DeploymentSuccess, false)]
    );
    assert!(last.effects.contains(&Effect::DeliverTriggers));
    let quiet = scenario.plans.iter().filter(|p| p.notifications.is_empty());
    assert!(quiet.clone().count() > 0 && quiet.flat_map(|p| &p.effects).all(|e| *e != Effect::DeliverTriggers));
}

#[test]
fn nothing_to_do_is_no_plan() {
    let mut scenario = Scenario::in_place(1, None, &[]);
    assert!(scenario.plan().is_some());
    assert!(scenario.plan().is_none(), "the same facts ask for nothing twice");
}

#[test]
fn target_groups_come_from_both_lists_once_each() {
    let info = LoadBalancerInfo {
        target_group_info_list: Some(vec![
            TargetGroupInfo { name: Some("web".into()) },
            TargetGroupInfo { name: Some("api".into()) },
        ]),
        elb_info_list: Some(vec![
            landfall_api::shapes::ELBInfo { name: Some("web".into()) },
            landfall_api::shapes::ELBInfo { name: Some("legacy".into()) },
        ]),
        ..Default::default()
    };
    assert_eq!(target_group_names(Some(&info)), ["web", "api", "legacy"]);
    assert!(target_group_names(None).is_empty());
}

#[test]
fn ready_waits_and_blue_green_info_are_read_from_the_deployment() {
    // The deployment's own copy of the group's settings counts, not the group's today.
    let mut scenario = Scenario::blue_green(1, 1, &[]);
    scenario.group.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
        green_fleet_provisioning_option: None,
        deployment_ready_option: Some(DeploymentReadyOption {
            action_on_timeout: Some(DeploymentReadyAction::StopDeployment),
            wait_time_in_minutes: Some(60),
        }),
        terminate_blue_instances_on_deployment_success: None,
    });
    assert_eq!(scenario.settings().blue_green.ready_wait_ms, None);
}
