//! ECS deployments (semantics reference §5.7, §6.3, §7): one target, the service
//! (`cluster:service`), taken through the blue/green flow by its lifecycle events:
//!
//! - Install creates the replacement task set from the AppSpec's task definition, attached to
//!   whichever target group of the deployment group's pair the service's PRIMARY (original)
//!   task set does not serve, scaled to 100 %, and ends when ECS reports it in steady state.
//! - AllowTestTraffic points the test listener (if the group has one) at the replacement's
//!   target group.
//! - AllowTraffic moves the production listener's traffic as the configuration says (weighted
//!   forward actions while it shifts), then makes the replacement task set PRIMARY.
//! - The other events run the AppSpec's hook functions (the Lambda hook contract).
//!
//! The engine holds the deployment in its ready wait (before BeforeAllowTraffic) and its
//! termination wait (after AfterAllowTraffic); when it succeeds, the original task set is
//! deleted. A rollback is a deployment of its own that sends both listeners back to the original
//! task set's target group, makes it PRIMARY again and deletes the replacement.
//!
//! The task sets are recorded in the target's `ecsTarget.taskSetsInfo` (Blue: the original,
//! Green: the replacement), which is also where callers see their counts and traffic weights.

use async_trait::async_trait;
use landfall_api::Timestamp;
use landfall_api::shapes::{
    ComputePlatform, DeploymentCreator, DeploymentGroupInfo, DeploymentInfo, DeploymentOption, DeploymentStatus,
    DeploymentTarget, DeploymentTargetType, DeploymentType, ECSTarget, ECSTaskSet, ErrorCode, TargetGroupInfo,
    TargetGroupPairInfo, TargetLabel,
};
use landfall_appspec::{EcsAppSpec, parse_ecs};
use landfall_engine::lifecycle::{ServerTargetRole, lifecycle_events};
use landfall_store::{CommandState, HostCommandRecord, TargetRecord};
use serde_json::{Value, json};

use super::{Advanced, Cx, PlatformRules, PlatformRun, RollbackPlan, Run};
use crate::aws::{AwsError, xml_elements};

/// What a rollback runs: traffic back to the original task set.
const ROLLBACK_EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

/// The configuration a rollback moves traffic with.
const ALL_AT_ONCE: &str = "CodeDeployDefault.ECSAllAtOnce";

/// An ECS AppSpec's model, or what is wrong with it.
pub fn parse(text: &str) -> Result<EcsAppSpec, String> {
    parse_ecs(text)
        .map(|parsed| parsed.appspec)
        .map_err(|diagnostics| format!("The AppSpec is not valid: {diagnostics}"))
}

/// A new deployment's one target: the deployment group's service.
pub fn initial_target(
    deployment_id: &str,
    group: &DeploymentGroupInfo,
    now: Timestamp,
) -> Result<TargetRecord, String> {
    let service = group.ecs_services.as_deref().unwrap_or_default().first();
    let (Some(cluster), Some(name)) =
        (service.and_then(|s| s.cluster_name.clone()), service.and_then(|s| s.service_name.clone()))
    else {
        return Err("The deployment group names no ECS service (ecsServices).".to_owned());
    };
    let events = lifecycle_events(
        &ComputePlatform::Ecs,
        &DeploymentType::BlueGreen,
        &DeploymentOption::WithTrafficControl,
        &DeploymentCreator::User,
        ServerTargetRole::Install,
    );
    Ok(new_target(deployment_id, &format!("{cluster}:{name}"), &events, Vec::new(), now))
}

fn new_target(
    deployment_id: &str,
    id: &str,
    events: &[&str],
    task_sets: Vec<ECSTaskSet>,
    now: Timestamp,
) -> TargetRecord {
    let mut record = super::new_target(deployment_id, id, DeploymentTargetType::ECSTarget, events, now);
    record.target.ecs_target = Some(ECSTarget {
        deployment_id: Some(deployment_id.to_owned()),
        target_id: Some(id.to_owned()),
        task_sets_info: Some(task_sets),
        ..Default::default()
    });
    record
}

/// An ECS deployment's platform side.
pub struct EcsRun {
    pub spec: EcsAppSpec,
    /// The AppSpec as kept (a rollback keeps it too).
    pub text: String,
    /// This deployment is a rollback: traffic goes back to the Blue task set.
    pub rollback: bool,
}

impl PlatformRules for EcsRun {
    fn blue_green(&self) -> bool {
        true
    }

    fn failure_code(&self, event: &str) -> ErrorCode {
        match event {
            "Install" | "AllowTestTraffic" | "AllowTraffic" => ErrorCode::EcsUpdateError,
            _ => ErrorCode::HookExecutionFailure,
        }
    }

    fn rollback(
        &self,
        id: &str,
        failed: &DeploymentInfo,
        target: Option<&DeploymentTarget>,
        now: Timestamp,
    ) -> Result<RollbackPlan, String> {
        let target = target.ok_or("the deployment has no target.")?;
        let service_id = target.instance_target.as_ref().and_then(|t| t.target_id.clone()).unwrap_or_default();
        if task_set(target, TargetLabel::Green).is_none() {
            return Err("no replacement task set was created, so nothing changed.".to_owned());
        }
        let revision = failed.revision.clone().ok_or("the deployment has no revision.")?;
        Ok(RollbackPlan {
            revision,
            targets: vec![new_target(id, &service_id, &ROLLBACK_EVENTS, task_sets(target), now).target],
            config_name: Some(ALL_AT_ONCE.to_owned()),
            appspec: Some(self.text.clone()),
        })
    }
}

#[async_trait]
impl PlatformRun for EcsRun {
    async fn advance(&self, cx: &Cx<'_>, run: &Run<'_>) -> Advanced {
        let mut target = run.target.clone();
        let mut completed = false;
        for command in run.commands.iter().filter(|c| c.state == CommandState::Dispatched) {
            let outcome = if run.stopping {
                Err(format!("The deployment was stopped during {}.", command.lifecycle_event))
            } else {
                match command.lifecycle_event.as_str() {
                    "Install" => self.install(cx, run, &mut target, command).await,
                    "AllowTestTraffic" => allow_test_traffic(cx, run.deployment, &target).await,
                    "AllowTraffic" => self.allow_traffic(cx, run, &mut target, command).await,
                    _ if self.rollback => Ok(Some("A rollback runs no hooks.".to_owned())),
                    _ => super::run_hook(cx, &self.spec.hooks, command).await,
                }
            };
            completed |= super::settle(cx.state, command, outcome).await;
        }
        let changed = (target != *run.target).then_some(target);
        Advanced { completed, target: changed }
    }

    async fn finished(
        &self,
        cx: &Cx<'_>,
        deployment: &DeploymentInfo,
        status: &DeploymentStatus,
        target: &TargetRecord,
        rolled_back: bool,
    ) {
        let service = Service::of(target);
        let result = match (self.rollback, *status == DeploymentStatus::Succeeded) {
            // The termination wait is over: the original task set goes.
            (false, true) => delete_task_set(cx, &service, target, TargetLabel::Blue).await,
            (true, true) => delete_task_set(cx, &service, target, TargetLabel::Green).await,
            // Nothing will undo it: traffic back to the original task set, the replacement gone.
            (false, false) if !rolled_back => match send_traffic_to(cx, deployment, target, TargetLabel::Blue).await {
                Ok(_) => delete_task_set(cx, &service, target, TargetLabel::Green).await,
                Err(error) => Err(error),
            },
            _ => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, service = %target.target_id, "cannot finish the ECS deployment's clean-up");
        }
    }
}

impl EcsRun {
    /// Creates the replacement task set (once), then waits for its steady state.
    async fn install(
        &self,
        cx: &Cx<'_>,
        run: &Run<'_>,
        target: &mut TargetRecord,
        command: &HostCommandRecord,
    ) -> Result<Option<String>, String> {
        let service = Service::of(target);
        if let Some(green) = task_set(&target.target, TargetLabel::Green) {
            let described = describe_task_set(cx, &service, &green).await.map_err(|e| e.to_string())?;
            update_task_set(target, TargetLabel::Green, |shown| counts_from(shown, &described));
            return Ok(steady(&described));
        }
        let original = primary_task_set(cx, &service).await?;
        let original_group = original
            .pointer("/loadBalancers/0/targetGroupArn")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("The PRIMARY task set of {service} is not attached to a target group."))?
            .to_owned();
        let pair = pair(run.deployment)?;
        let groups = target_groups(cx, &pair).await?;
        let (Some(blue_group), Some(green_group)) =
            (groups.iter().find(|g| g.arn == original_group), groups.iter().find(|g| g.arn != original_group))
        else {
            return Err(format!(
                "The PRIMARY task set of {service} serves {original_group}, which is not one of the deployment \
                 group's target groups."
            ));
        };
        let created = cx
            .aws
            .ecs("CreateTaskSet", &self.create_task_set_input(&service, &original, green_group, command))
            .await
            .map_err(|e| format!("The replacement task set could not be created: {e}"))?;
        let created = created.get("taskSet").cloned().unwrap_or_default();
        let id = text(&created, "id");
        tracing::info!(deployment = %command.deployment_id, %service, task_set = %id, "replacement task set created");
        // Recorded before anything else can fail, so a rollback or clean-up knows to remove it.
        let shown = |value: &Value, group: &TargetGroup, label: TargetLabel, weight: f64| {
            let mut task_set = ECSTaskSet {
                identifer: Some(text(value, "id")),
                status: Some(text(value, "status")),
                traffic_weight: Some(weight),
                target_group: Some(TargetGroupInfo { name: Some(group.name.clone()) }),
                task_set_label: Some(label),
                ..Default::default()
            };
            counts_from(&mut task_set, value);
            task_set
        };
        let sets = vec![
            shown(&original, blue_group, TargetLabel::Blue, 100.0),
            shown(&created, green_group, TargetLabel::Green, 0.0),
        ];
        let ecs_target = target.target.ecs_target.get_or_insert_with(Default::default);
        ecs_target.target_arn = original.get("serviceArn").and_then(Value::as_str).map(str::to_owned);
        ecs_target.task_sets_info = Some(sets);
        // Scaled separately: some ECS implementations do not take `scale` at creation.
        let scale = json!({"cluster": service.cluster, "service": service.name, "taskSet": id,
            "scale": {"unit": "PERCENT", "value": 100.0}});
        cx.aws.ecs("UpdateTaskSet", &scale).await.map_err(|e| format!("The task set {id} could not be scaled: {e}"))?;
        Ok(steady(&created))
    }

    fn create_task_set_input(
        &self,
        service: &Service,
        original: &Value,
        green_group: &TargetGroup,
        command: &HostCommandRecord,
    ) -> Value {
        let spec = &self.spec.service;
        let mut input = json!({
            "cluster": service.cluster,
            "service": service.name,
            "taskDefinition": spec.task_definition,
            "externalId": command.deployment_id,
            // A retried call (the answer lost) does not make a second task set.
            "clientToken": command.id,
            "loadBalancers": [{
                "targetGroupArn": green_group.arn,
                "containerName": spec.load_balancer_info.container_name,
                "containerPort": spec.load_balancer_info.container_port,
            }],
        });
        // What the AppSpec leaves out is as the original task set has it.
        let network = match &spec.network_configuration {
            Some(network) => Some(json!({"awsvpcConfiguration": {
                "subnets": network.awsvpc_configuration.subnets,
                "securityGroups": network.awsvpc_configuration.security_groups,
                "assignPublicIp": network.awsvpc_configuration.assign_public_ip,
            }})),
            None => original.get("networkConfiguration").cloned(),
        };
        if let Some(network) = network.filter(|n| !n.is_null()) {
            input["networkConfiguration"] = network;
        }
        if let Some(version) =
            spec.platform_version.clone().map(Value::String).or_else(|| original.get("platformVersion").cloned())
        {
            input["platformVersion"] = version;
        }
        if !spec.capacity_provider_strategy.is_empty() {
            let strategy: Vec<Value> = spec
                .capacity_provider_strategy
                .iter()
                .map(|item| json!({"capacityProvider": item.capacity_provider, "base": item.base, "weight": item.weight}))
                .collect();
            input["capacityProviderStrategy"] = Value::Array(strategy);
        } else if let Some(strategy) =
            original.get("capacityProviderStrategy").filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        {
            input["capacityProviderStrategy"] = strategy.clone();
        } else if let Some(launch_type) = original.get("launchType").filter(|l| l.is_string()) {
            input["launchType"] = launch_type.clone();
        }
        input
    }

    /// Moves production traffic as far as the configuration says by now (a rollback: all of
    /// it back at once, the test listener too); `Ok(Some)` once all of it has moved and the
    /// task set it went to is PRIMARY.
    async fn allow_traffic(
        &self,
        cx: &Cx<'_>,
        run: &Run<'_>,
        target: &mut TargetRecord,
        command: &HostCommandRecord,
    ) -> Result<Option<String>, String> {
        let (from, to) = if self.rollback {
            (TargetLabel::Green, TargetLabel::Blue)
        } else {
            (TargetLabel::Blue, TargetLabel::Green)
        };
        let share = if self.rollback {
            100
        } else {
            let started = command.dispatched_at.unwrap_or(command.created_at);
            run.shift.share_after(cx.state.clock.now().millis() - started.millis())
        };
        if share < 100 {
            let weight = f64::from(share);
            if task_set(&target.target, to.clone()).and_then(|t| t.traffic_weight) != Some(weight) {
                let groups = resolved_groups(cx, run.deployment, target).await?;
                let split =
                    [(groups.of(from.clone()), 100 - u32::from(share)), (groups.of(to.clone()), u32::from(share))];
                for listener in routes(run.deployment, Route::Production) {
                    forward(cx, &listener, &split).await?;
                }
                update_task_set(target, to, |t| t.traffic_weight = Some(weight));
                update_task_set(target, from, |t| t.traffic_weight = Some(100.0 - weight));
            }
            return Ok(None);
        }
        let moved = send_traffic_to(cx, run.deployment, target, to.clone()).await?;
        update_task_set(target, to, |t| {
            t.traffic_weight = Some(100.0);
            t.status = Some("PRIMARY".into());
        });
        update_task_set(target, from, |t| {
            t.traffic_weight = Some(0.0);
            t.status = Some("ACTIVE".into());
        });
        Ok(Some(moved))
    }
}

/// The service a target stands for.
struct Service {
    cluster: String,
    name: String,
}

impl Service {
    fn of(target: &TargetRecord) -> Service {
        let (cluster, name) = target.target_id.split_once(':').unwrap_or(("default", &target.target_id));
        Service { cluster: cluster.to_owned(), name: name.to_owned() }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.cluster, self.name)
    }
}

fn text(value: &Value, field: &str) -> String {
    value.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn steady(task_set: &Value) -> Option<String> {
    (text(task_set, "stabilityStatus") == "STEADY_STATE")
        .then(|| format!("The replacement task set {} is in steady state.", text(task_set, "id")))
}

/// The counts ECS reports for a task set (where it reports them).
fn counts_from(shown: &mut ECSTaskSet, described: &Value) {
    let count = |field: &str| described.get(field).and_then(Value::as_i64);
    shown.desired_count = count("computedDesiredCount").or(shown.desired_count);
    shown.pending_count = count("pendingCount").or(shown.pending_count);
    shown.running_count = count("runningCount").or(shown.running_count);
}

fn task_sets(target: &DeploymentTarget) -> Vec<ECSTaskSet> {
    target.ecs_target.as_ref().and_then(|t| t.task_sets_info.clone()).unwrap_or_default()
}

fn task_set(target: &DeploymentTarget, label: TargetLabel) -> Option<ECSTaskSet> {
    task_sets(target).into_iter().find(|t| t.task_set_label.as_ref() == Some(&label))
}

fn update_task_set(target: &mut TargetRecord, label: TargetLabel, change: impl FnOnce(&mut ECSTaskSet)) {
    let sets = target.target.ecs_target.as_mut().and_then(|t| t.task_sets_info.as_mut());
    if let Some(shown) = sets.and_then(|sets| sets.iter_mut().find(|t| t.task_set_label.as_ref() == Some(&label))) {
        change(shown);
    }
}

/// The service's PRIMARY task set: the one serving production traffic now.
async fn primary_task_set(cx: &Cx<'_>, service: &Service) -> Result<Value, String> {
    let input = json!({"cluster": service.cluster, "service": service.name});
    let answer = cx.aws.ecs("DescribeTaskSets", &input).await.map_err(|e| format!("{service}: {e}"))?;
    let sets = answer.get("taskSets").and_then(Value::as_array).cloned().unwrap_or_default();
    sets.into_iter().find(|set| text(set, "status") == "PRIMARY").ok_or_else(|| {
        format!(
            "The ECS service {service} has no PRIMARY task set (blue/green deployments need a service whose \
             deployment controller is CODE_DEPLOY or EXTERNAL, with its first task set)."
        )
    })
}

async fn describe_task_set(cx: &Cx<'_>, service: &Service, task_set: &ECSTaskSet) -> Result<Value, AwsError> {
    let id = task_set.identifer.clone().unwrap_or_default();
    let input = json!({"cluster": service.cluster, "service": service.name, "taskSets": [id]});
    let answer = cx.aws.ecs("DescribeTaskSets", &input).await?;
    answer
        .pointer("/taskSets/0")
        .cloned()
        .ok_or_else(|| AwsError::new("ecs", "TaskSetNotFoundException", format!("{service} has no task set {id}")))
}

async fn delete_task_set(
    cx: &Cx<'_>,
    service: &Service,
    target: &TargetRecord,
    label: TargetLabel,
) -> Result<(), String> {
    let Some(task_set) = task_set(&target.target, label) else { return Ok(()) };
    let id = task_set.identifer.unwrap_or_default();
    let input = json!({"cluster": service.cluster, "service": service.name, "taskSet": id, "force": true});
    cx.aws.ecs("DeleteTaskSet", &input).await.map_err(|e| format!("The task set {id} could not be deleted: {e}"))?;
    tracing::info!(%service, task_set = %id, "task set deleted");
    Ok(())
}

/// Both listeners (production and test) forward to `to`'s target group, and `to` is the
/// service's PRIMARY task set; says what it did.
async fn send_traffic_to(
    cx: &Cx<'_>,
    deployment: &DeploymentInfo,
    target: &TargetRecord,
    to: TargetLabel,
) -> Result<String, String> {
    let service = Service::of(target);
    let groups = resolved_groups(cx, deployment, target).await?;
    let group = groups.of(to.clone());
    for listener in routes(deployment, Route::Production).into_iter().chain(routes(deployment, Route::Test)) {
        forward(cx, &listener, &[(group, 100)]).await?;
    }
    let task_set = task_set(&target.target, to).ok_or("the task set traffic goes to is not known.")?;
    // ECS wants the full ARN here.
    let arn = describe_task_set(cx, &service, &task_set)
        .await
        .map(|described| text(&described, "taskSetArn"))
        .map_err(|e| e.to_string())?;
    let input = json!({"cluster": service.cluster, "service": service.name, "primaryTaskSet": arn});
    cx.aws
        .ecs("UpdateServicePrimaryTaskSet", &input)
        .await
        .map_err(|e| format!("The task set could not be made PRIMARY: {e}"))?;
    Ok(format!(
        "Production traffic goes to target group {}, served by task set {}, now PRIMARY.",
        group.name,
        task_set.identifer.unwrap_or_default()
    ))
}

async fn allow_test_traffic(
    cx: &Cx<'_>,
    deployment: &DeploymentInfo,
    target: &TargetRecord,
) -> Result<Option<String>, String> {
    let listeners = routes(deployment, Route::Test);
    if listeners.is_empty() {
        return Ok(Some("The deployment group has no test listener.".to_owned()));
    }
    let groups = resolved_groups(cx, deployment, target).await?;
    let green = groups.of(TargetLabel::Green);
    for listener in &listeners {
        forward(cx, listener, &[(green, 100)]).await?;
    }
    Ok(Some(format!("Test traffic goes to target group {}.", green.name)))
}

#[derive(Clone, Copy)]
enum Route {
    Production,
    Test,
}

fn pair(deployment: &DeploymentInfo) -> Result<TargetGroupPairInfo, String> {
    let lb = deployment.load_balancer_info.as_ref();
    lb.and_then(|lb| lb.target_group_pair_info_list.as_ref())
        .and_then(|pairs| pairs.first().cloned())
        .ok_or_else(|| "The deployment group has no target group pair (targetGroupPairInfoList).".to_owned())
}

fn routes(deployment: &DeploymentInfo, route: Route) -> Vec<String> {
    let Ok(pair) = pair(deployment) else { return Vec::new() };
    let route = match route {
        Route::Production => pair.prod_traffic_route,
        Route::Test => pair.test_traffic_route,
    };
    route.and_then(|r| r.listener_arns).unwrap_or_default()
}

struct TargetGroup {
    name: String,
    arn: String,
}

/// The pair's target groups, by name and ARN.
async fn target_groups(cx: &Cx<'_>, pair: &TargetGroupPairInfo) -> Result<Vec<TargetGroup>, String> {
    let names: Vec<String> = pair.target_groups.iter().flatten().filter_map(|g| g.name.clone()).collect();
    let parameters: Vec<(String, String)> =
        names.iter().enumerate().map(|(i, name)| (format!("Names.member.{}", i + 1), name.clone())).collect();
    let parameters: Vec<(&str, String)> = parameters.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let xml = cx
        .aws
        .elbv2("DescribeTargetGroups", &parameters)
        .await
        .map_err(|e| format!("The target groups {} cannot be read: {e}", names.join(", ")))?;
    let arns = xml_elements(&xml, "TargetGroupArn");
    let found = xml_elements(&xml, "TargetGroupName");
    Ok(found.into_iter().zip(arns).map(|(name, arn)| TargetGroup { name, arn }).collect())
}

/// The Blue and Green task sets' target groups.
struct Groups {
    blue: TargetGroup,
    green: TargetGroup,
}

impl Groups {
    fn of(&self, label: TargetLabel) -> &TargetGroup {
        if label == TargetLabel::Blue { &self.blue } else { &self.green }
    }
}

async fn resolved_groups(cx: &Cx<'_>, deployment: &DeploymentInfo, target: &TargetRecord) -> Result<Groups, String> {
    let all = target_groups(cx, &pair(deployment)?).await?;
    let pick = |label: TargetLabel| {
        let name = task_set(&target.target, label.clone()).and_then(|t| t.target_group).and_then(|g| g.name);
        let found = all.iter().find(|g| Some(&g.name) == name.as_ref());
        found
            .map(|g| TargetGroup { name: g.name.clone(), arn: g.arn.clone() })
            .ok_or_else(|| format!("The {} task set's target group is not known.", label.as_str()))
    };
    Ok(Groups { blue: pick(TargetLabel::Blue)?, green: pick(TargetLabel::Green)? })
}

/// Sets a listener's default action to forward to `groups` with their weights (one group:
/// a plain forward).
async fn forward(cx: &Cx<'_>, listener: &str, groups: &[(&TargetGroup, u32)]) -> Result<(), String> {
    let mut parameters = vec![
        ("ListenerArn".to_owned(), listener.to_owned()),
        ("DefaultActions.member.1.Type".to_owned(), "forward".to_owned()),
    ];
    if let [(group, _)] = groups {
        parameters.push(("DefaultActions.member.1.TargetGroupArn".to_owned(), group.arn.clone()));
    } else {
        for (i, (group, weight)) in groups.iter().enumerate() {
            let prefix = format!("DefaultActions.member.1.ForwardConfig.TargetGroups.member.{}", i + 1);
            parameters.push((format!("{prefix}.TargetGroupArn"), group.arn.clone()));
            parameters.push((format!("{prefix}.Weight"), weight.to_string()));
        }
    }
    let parameters: Vec<(&str, String)> = parameters.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    cx.aws
        .elbv2("ModifyListener", &parameters)
        .await
        .map(|_| ())
        .map_err(|e| format!("The listener {listener} could not be changed: {e}"))
}
