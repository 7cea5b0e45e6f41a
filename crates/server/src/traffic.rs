//! Target groups and the traffic events.
//!
//! A target group is desired state kept on the server (which instances serve, at what address
//! and weight) plus what its router last reported (each target's health, whether a target taken
//! out of rotation has drained). Routers (`landfall router`, or the HAProxy driver) long-poll
//! the desired state and report back; they hold no state of their own worth keeping.
//!
//! BlockTraffic and AllowTraffic are the server's own lifecycle events: their commands are
//! created taken (see the driver), and [`advance`] carries them out on every driver tick and
//! health report: Block takes the instance out of each of its deployment group's target groups
//! and succeeds once every router has drained it; Allow puts it back and succeeds once every
//! router reports it healthy, or fails after the traffic timeout with the last check's reason.

use std::time::Duration;

use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::landfall::{
    CreateTargetGroupInput, DeregisterTargetsInput, GetRouterStateInput, HealthCheck, ListTargetGroupsOutput,
    RegisterTargetsInput, ReportTargetHealthInput, TargetGroupInfo, TargetGroupNameInput, TargetGroupOutput,
    TargetHealth, TargetInfo,
};
use landfall_api::shapes::{
    DeploymentCreator, DeploymentInfo, DeploymentStatus, DeploymentTarget, LoadBalancerInfo, TargetLabel,
};
use landfall_engine::blue_green::BlueGreenProgress;
use landfall_store::{HostCommandRecord, Store, StoreError, TargetGroupRecord};

use crate::api::common::{Ctx, store_error};
use crate::state::AppState;

/// How long GetRouterState holds a router's request when nothing changes.
const ROUTER_POLL: Duration = Duration::from_secs(20);
/// At most this many targets per group.
const MAX_TARGETS: usize = 1000;

pub async fn create(ctx: &Ctx<'_>, input: CreateTargetGroupInput) -> ApiResult<TargetGroupOutput> {
    let name = check_name(input.name.as_deref())?;
    let router = input.router.as_deref().unwrap_or("builtin");
    if !matches!(router, "builtin" | "haproxy") {
        return err(Exception::InvalidInput, format!("router '{router}' is not one of: builtin, haproxy."));
    }
    let health_check = input.health_check.unwrap_or_default();
    check_health_check(&health_check)?;
    let deregistration_delay_seconds = input.deregistration_delay_seconds.unwrap_or(5);
    if deregistration_delay_seconds > 3600 {
        return err(Exception::InvalidInput, "deregistrationDelaySeconds must be from 0 to 3600.");
    }
    let group = TargetGroupInfo {
        name: name.to_owned(),
        router: router.to_owned(),
        health_check,
        deregistration_delay_seconds,
        targets: Vec::new(),
        version: 1,
        create_time: ctx.now,
    };
    match ctx.store().create_target_group(&group).await {
        Ok(()) => Ok(TargetGroupOutput { target_group: group }),
        Err(StoreError::Conflict(_)) => {
            err(Exception::TargetGroupAlreadyExists, format!("A target group named {name} already exists."))
        }
        Err(error) => Err(store_error(error)),
    }
}

pub async fn delete(ctx: &Ctx<'_>, input: TargetGroupNameInput) -> ApiResult<()> {
    let name = check_name(input.name.as_deref())?;
    if !ctx.store().delete_target_group(name).await.map_err(store_error)? {
        return err(Exception::TargetGroupDoesNotExist, format!("No target group named {name} exists."));
    }
    crate::replicas::wake_target_group(ctx.state, name).await;
    Ok(())
}

pub async fn list(ctx: &Ctx<'_>, _input: TargetGroupNameInput) -> ApiResult<ListTargetGroupsOutput> {
    let records = ctx.store().list_target_groups().await.map_err(store_error)?;
    Ok(ListTargetGroupsOutput { target_groups: records.into_iter().map(|r| r.info).collect() })
}

/// Adds targets (or changes their address and weight); a new target serves at once, unless
/// registered on standby (out of rotation until a deployment's AllowTraffic puts it in).
pub async fn register(ctx: &Ctx<'_>, input: RegisterTargetsInput) -> ApiResult<TargetGroupOutput> {
    let name = check_name(input.name.as_deref())?;
    let specs = input.targets.unwrap_or_default();
    if specs.is_empty() {
        return err(Exception::InvalidInput, "targets must name at least one target.");
    }
    let mut targets = Vec::with_capacity(specs.len());
    let mut instances = Vec::with_capacity(specs.len());
    for spec in &specs {
        let instance = spec.instance_name.as_deref().unwrap_or_default();
        match ctx.store().instance(instance).await.map_err(store_error)? {
            Some(found) if found.deregister_time.is_none() => instances.push(found),
            _ => return err(Exception::InstanceNotRegistered, format!("The instance '{instance}' is not registered.")),
        }
        let address = spec.address.as_deref().unwrap_or_default();
        check_address(address)?;
        let weight = spec.weight.unwrap_or(100);
        if weight > 1000 {
            return err(Exception::InvalidInput, format!("weight {weight} of {instance} must be from 0 to 1000."));
        }
        targets.push((instance.to_owned(), address.to_owned(), weight, spec.standby != Some(true)));
    }
    // A host about to join a deployment group that sends it traffic waits for its launch
    // deployment's AllowTraffic, whatever the call says.
    let joining = crate::fleet::awaiting_launch(ctx.state, &instances, name).await.map_err(store_error)?;
    for (instance, _, _, serving) in &mut targets {
        *serving &= !joining.contains(instance.as_str());
    }
    let group = modify(ctx.state, name, |group| {
        for (instance, address, weight, serving) in &targets {
            match group.targets.iter_mut().find(|t| t.instance_name == *instance) {
                Some(target) => {
                    target.address = address.clone();
                    target.weight = *weight;
                    target.generation += 1;
                }
                None => group.targets.push(TargetInfo {
                    instance_name: instance.clone(),
                    address: address.clone(),
                    weight: *weight,
                    traffic_weight: None,
                    serving: *serving,
                    generation: 1,
                    health: None,
                }),
            }
        }
        if group.targets.len() > MAX_TARGETS {
            return err(Exception::InvalidInput, format!("A target group has at most {MAX_TARGETS} targets."));
        }
        Ok(true)
    })
    .await?;
    Ok(TargetGroupOutput { target_group: group })
}

pub async fn deregister(ctx: &Ctx<'_>, input: DeregisterTargetsInput) -> ApiResult<TargetGroupOutput> {
    let name = check_name(input.name.as_deref())?;
    let instances = input.instance_names.unwrap_or_default();
    let group = modify(ctx.state, name, |group| {
        let before = group.targets.len();
        group.targets.retain(|t| !instances.contains(&t.instance_name));
        Ok(group.targets.len() != before)
    })
    .await?;
    Ok(TargetGroupOutput { target_group: group })
}

/// A router's long poll for its target group's desired state.
pub async fn router_state(ctx: &Ctx<'_>, input: GetRouterStateInput) -> ApiResult<TargetGroupOutput> {
    let name = check_name(input.name.as_deref())?;
    let signal = ctx.state.driver.target_group_signal(name);
    let deadline = tokio::time::Instant::now() + ROUTER_POLL;
    loop {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let group = load(ctx.store(), name).await?.info;
        if Some(group.version) != input.known_version {
            return Ok(TargetGroupOutput { target_group: group });
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(TargetGroupOutput { target_group: group });
        }
    }
}

/// A router's health reports: kept when they change something, and the traffic events waiting
/// on them looked at again.
pub async fn report(ctx: &Ctx<'_>, input: ReportTargetHealthInput) -> ApiResult<()> {
    let name = check_name(input.name.as_deref())?;
    let reports = input.reports.unwrap_or_default();
    for report in &reports {
        let state = report.state.as_deref().unwrap_or_default();
        if !matches!(state, "initial" | "healthy" | "unhealthy" | "draining" | "drained") {
            return err(Exception::InvalidInput, format!("state '{state}' is not a target health state."));
        }
    }
    let now = ctx.now;
    let mut changed = false;
    // What routers report is not desired state: no version bump, no routers woken.
    update(ctx.store(), name, |group| {
        for report in &reports {
            let Some(target) = group.targets.iter_mut().find(|t| Some(&t.address) == report.address.as_ref()) else {
                continue;
            };
            let health = TargetHealth {
                state: report.state.clone().unwrap_or_default(),
                reason: report.reason.clone().filter(|r| !r.is_empty()),
                generation: report.generation.unwrap_or_default(),
                reported_at: now,
            };
            let same = target.health.as_ref().is_some_and(|h| {
                (h.state.as_str(), &h.reason, h.generation)
                    == (health.state.as_str(), &health.reason, health.generation)
            });
            if !same {
                target.health = Some(health);
                changed = true;
            }
        }
        Ok(changed)
    })
    .await?;
    if changed {
        wake_waiting_deployments(ctx.state).await;
    }
    Ok(())
}

async fn load(store: &dyn Store, name: &str) -> ApiResult<TargetGroupRecord> {
    store.target_group(name).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(Exception::TargetGroupDoesNotExist, format!("No target group named {name} exists."))
    })
}

/// Changes a group's desired state with `change` (which says whether it changed anything),
/// bumping its version and waking its routers; retried if the group changed meanwhile.
async fn modify(
    state: &AppState,
    name: &str,
    mut change: impl FnMut(&mut TargetGroupInfo) -> ApiResult<bool>,
) -> ApiResult<TargetGroupInfo> {
    let mut changed = false;
    let group = update(state.store.as_ref(), name, |group| {
        changed = change(group)?;
        if changed {
            group.version += 1;
        }
        Ok(changed)
    })
    .await?;
    if changed {
        crate::replicas::wake_target_group(state, name).await;
    }
    Ok(group)
}

async fn update(
    store: &dyn Store,
    name: &str,
    mut change: impl FnMut(&mut TargetGroupInfo) -> ApiResult<bool>,
) -> ApiResult<TargetGroupInfo> {
    for _ in 0..20 {
        let mut record = load(store, name).await?;
        if !change(&mut record.info)? {
            return Ok(record.info);
        }
        match store.update_target_group(&record).await {
            Ok(()) => return Ok(record.info),
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::NotFound) => {
                return err(Exception::TargetGroupDoesNotExist, format!("No target group named {name} exists."));
            }
            Err(error) => return Err(store_error(error)),
        }
    }
    Err(ApiError::internal(format!("the target group {name} kept changing")))
}

/// Takes an instance out of rotation in `names` (those it is a target of) without waiting for
/// its routers: for a host whose launch deployment has not allowed traffic yet.
pub async fn hold_out_of_rotation(state: &AppState, names: &[String], instance: &str) -> ApiResult<()> {
    for name in names {
        if state.store.target_group(name).await.map_err(store_error)?.is_none() {
            continue;
        }
        modify(state, name, |group| match group.targets.iter_mut().find(|t| t.instance_name == instance) {
            Some(target) if target.serving => {
                target.serving = false;
                target.generation += 1;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
    }
    Ok(())
}

/// Deployments with a traffic event in flight look at their target groups again.
async fn wake_waiting_deployments(state: &std::sync::Arc<AppState>) {
    if let Ok(active) = state.store.active_deployments().await {
        for id in active {
            crate::driver::reconcile_soon(state, &id);
        }
    }
}

fn check_name(name: Option<&str>) -> ApiResult<&str> {
    let name = name.unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return err(
            Exception::InvalidInput,
            format!("target group name '{name}' must be 1 to 64 letters, digits, '-', '_' or '.'."),
        );
    }
    Ok(name)
}

fn check_health_check(check: &HealthCheck) -> ApiResult<()> {
    if !check.path.starts_with('/') || check.path.len() > 1024 {
        return err(Exception::InvalidInput, format!("healthCheck.path '{}' must start with '/'.", check.path));
    }
    if !(1..=300).contains(&check.interval_seconds) {
        return err(Exception::InvalidInput, "healthCheck.intervalSeconds must be from 1 to 300.");
    }
    if !(1..=120).contains(&check.timeout_seconds) {
        return err(Exception::InvalidInput, "healthCheck.timeoutSeconds must be from 1 to 120.");
    }
    for (field, value) in
        [("healthyThreshold", check.healthy_threshold), ("unhealthyThreshold", check.unhealthy_threshold)]
    {
        if !(1..=10).contains(&value) {
            return err(Exception::InvalidInput, format!("healthCheck.{field} must be from 1 to 10."));
        }
    }
    Ok(())
}

fn check_address(address: &str) -> ApiResult<()> {
    let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|port| port > 0)
    });
    if !valid {
        return err(Exception::InvalidInput, format!("address '{address}' must be HOST:PORT."));
    }
    Ok(())
}

/// The names of the target groups a deployment's load balancer info lists.
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

/// Brings a blue/green deployment's target groups in line with where it stands: while it shifts
/// traffic, each fleet's hosts get traffic weights that give the Green fleet its share (in
/// proportion to their registered weights within the fleet); a weighted deployment that failed
/// before blocking Blue takes Green out of rotation; a finished one clears the traffic weights,
/// and a successful TERMINATE one removes its Blue hosts from the target groups.
pub async fn apply_blue_green(
    state: &AppState,
    deployment: &DeploymentInfo,
    targets: &[DeploymentTarget],
    progress: &BlueGreenProgress,
    finished: Option<&DeploymentStatus>,
) {
    let fleet = |label: TargetLabel| -> Vec<String> {
        targets
            .iter()
            .filter_map(|t| t.instance_target.as_ref())
            .filter(|t| t.instance_label.as_ref() == Some(&label))
            .filter_map(|t| t.target_id.clone())
            .collect()
    };
    let (blue, green) = (fleet(TargetLabel::Blue), fleet(TargetLabel::Green));
    let rollback = deployment.creator == Some(DeploymentCreator::CodeDeployRollback);
    let terminate = !rollback
        && finished == Some(&DeploymentStatus::Succeeded)
        && crate::driver::terminates_original_hosts(deployment.blue_green_deployment_configuration.as_ref());
    // Imposed weights last while the deployment runs; after a retreat Green is out of rotation.
    let share = if finished.is_some() { None } else { progress.green_share };
    for name in target_group_names(deployment.load_balancer_info.as_ref()) {
        let result = modify(state, &name, |group| {
            let before = group.targets.clone();
            if progress.retreat {
                for target in group.targets.iter_mut().filter(|t| green.contains(&t.instance_name) && t.serving) {
                    target.serving = false;
                    target.generation += 1;
                }
            }
            let weights = share.map(|share| fleet_weights(&group.targets, &blue, &green, share));
            for target in group.targets.iter_mut() {
                if blue.contains(&target.instance_name) || green.contains(&target.instance_name) {
                    target.traffic_weight = weights.as_ref().and_then(|w| w.get(&target.instance_name).copied());
                }
            }
            if terminate {
                group.targets.retain(|t| !blue.contains(&t.instance_name));
            }
            Ok(group.targets != before)
        })
        .await;
        if let Err(error) = result {
            tracing::warn!(target_group = %name, error = %error.message, "cannot set the blue/green traffic split");
        }
    }
}

/// Traffic weights giving the `green` hosts `share` percent of a group's traffic and the `blue`
/// hosts the rest, each host in proportion to its registered weight within its fleet. The
/// weights add up to 10,000, so a share is kept to a hundredth of a percent.
fn fleet_weights(
    targets: &[TargetInfo],
    blue: &[String],
    green: &[String],
    share: u8,
) -> std::collections::HashMap<String, u32> {
    let mut weights = std::collections::HashMap::new();
    for (fleet, percent) in [(green, u64::from(share.min(100))), (blue, 100 - u64::from(share.min(100)))] {
        let members: Vec<&TargetInfo> = targets.iter().filter(|t| fleet.contains(&t.instance_name)).collect();
        let total: u64 = members.iter().map(|t| u64::from(t.weight)).sum();
        for target in members {
            let weight = (u64::from(target.weight) * percent * 100).checked_div(total).unwrap_or(0);
            weights.insert(target.instance_name.clone(), weight as u32);
        }
    }
    weights
}

/// How a traffic command stands.
enum Progress {
    Waiting,
    Done(String),
    Failed(String),
}

/// Carries every traffic command of a deployment one step further; completes those that are
/// done, and says whether it completed any. Called by the driver as it reconciles the
/// deployment.
pub async fn advance(state: &AppState, deployment: &DeploymentInfo, commands: &[HostCommandRecord]) -> bool {
    let names = target_group_names(deployment.load_balancer_info.as_ref());
    let mut completed = false;
    let open = commands
        .iter()
        .filter(|c| c.state == "Dispatched" && landfall_engine::lifecycle::runs_on_server(&c.lifecycle_event));
    for command in open {
        let progress = match step(state, &names, command).await {
            Ok(progress) => progress,
            Err(error) => Progress::Failed(error.message),
        };
        let (succeeded, message) = match progress {
            Progress::Waiting => continue,
            Progress::Done(message) => (true, message),
            Progress::Failed(message) => (false, message),
        };
        // The caller (the driver's reconcile of this deployment) reads the completion next.
        completed |= crate::driver::complete_on_server(state, &command.id, succeeded, message).await;
    }
    completed
}

async fn step(state: &AppState, names: &[String], command: &HostCommandRecord) -> ApiResult<Progress> {
    let instance = command.target_id.as_str();
    let allow = command.lifecycle_event == "AllowTraffic";
    let started = command.dispatched_at.unwrap_or(command.created_at);
    let waited = Duration::from_millis((state.clock.now().millis() - started.millis()).max(0) as u64);
    let mut pending = Vec::new();
    for name in names {
        let Some(record) = state.store.target_group(name).await.map_err(store_error)? else {
            return Ok(Progress::Failed(format!(
                "The target group {name} named in the deployment group's load balancer info does not exist; create it with `landfall target-group create {name}`."
            )));
        };
        if !record.info.targets.iter().any(|t| t.instance_name == instance) {
            if allow {
                return Ok(Progress::Failed(format!(
                    "{instance} is not a target of target group {name}; register it with `landfall target-group register {name} {instance} HOST:PORT`."
                )));
            }
            continue;
        }
        // Desired state first (once), then what the router says.
        let group = modify(state, name, |group| {
            let target = group.targets.iter_mut().find(|t| t.instance_name == instance);
            match target {
                Some(target) if target.serving != allow => {
                    target.serving = allow;
                    target.generation += 1;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await?;
        let Some(target) = group.targets.iter().find(|t| t.instance_name == instance) else { continue };
        let health = target.health.as_ref().filter(|h| h.generation == target.generation);
        let settled = match health {
            Some(h) if allow => h.state == "healthy",
            Some(h) => h.state == "drained",
            None => false,
        };
        if !settled {
            pending.push((
                name.clone(),
                group.health_check.clone(),
                group.deregistration_delay_seconds,
                target.clone(),
            ));
        }
    }
    let Some((name, check, delay, target)) = pending.first() else {
        let verb = if allow { "Registered and healthy in" } else { "Drained from and deregistered in" };
        return Ok(Progress::Done(if names.is_empty() {
            "The deployment group names no target groups.".into()
        } else {
            format!("{verb} target groups {}.", names.join(", "))
        }));
    };
    let limit = if allow {
        state.driver.timeouts.traffic_ms
    } else {
        // Draining takes the deregistration delay at most; the router gets a minute more.
        i64::from(*delay) * 1000 + 60_000
    };
    if waited.as_millis() as i64 <= limit {
        return Ok(Progress::Waiting);
    }
    let seconds = limit / 1000;
    let last = match target.health.as_ref().filter(|h| h.generation == target.generation) {
        Some(health) => format!(
            "the router last reported it {}{}",
            health.state,
            health.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        None => "no router has reported on it (is `landfall router` running for this target group?)".into(),
    };
    Ok(Progress::Failed(if allow {
        format!(
            "{instance} ({}) did not pass the health check of target group {name} (GET {} every {} s) within {seconds} s; {last}.",
            target.address, check.path, check.interval_seconds
        )
    } else {
        format!("{instance} ({}) was not drained from target group {name} within {seconds} s; {last}.", target.address)
    }))
}

#[cfg(test)]
mod tests {
    use landfall_api::shapes::{ELBInfo, TargetGroupInfo as LbTargetGroup};

    use super::*;

    #[test]
    fn target_groups_come_from_both_lists_once_each() {
        let info = LoadBalancerInfo {
            target_group_info_list: Some(vec![
                LbTargetGroup { name: Some("web".into()) },
                LbTargetGroup { name: Some("api".into()) },
            ]),
            elb_info_list: Some(vec![ELBInfo { name: Some("web".into()) }, ELBInfo { name: Some("legacy".into()) }]),
            ..Default::default()
        };
        assert_eq!(target_group_names(Some(&info)), ["web", "api", "legacy"]);
        assert!(target_group_names(None).is_empty());
    }

    #[test]
    fn fleet_weights_give_green_its_share() {
        let target = |name: &str, weight| TargetInfo {
            instance_name: name.into(),
            address: "127.0.0.1:1".into(),
            weight,
            traffic_weight: None,
            serving: true,
            generation: 1,
            health: None,
        };
        let targets = [target("b1", 100), target("b2", 300), target("g1", 100), target("g2", 100), target("x", 5)];
        let (blue, green) = (["b1".to_owned(), "b2".to_owned()], ["g1".to_owned(), "g2".to_owned()]);
        let weights = fleet_weights(&targets, &blue, &green, 10);
        assert_eq!((weights["g1"], weights["g2"]), (500, 500));
        assert_eq!((weights["b1"], weights["b2"]), (2250, 6750));
        assert!(!weights.contains_key("x"));
        let all_green = fleet_weights(&targets, &blue, &green, 100);
        assert_eq!((all_green["b1"], all_green["g1"]), (0, 5000));
    }

    #[test]
    fn addresses_and_names_are_checked() {
        assert!(check_address("10.0.0.5:8080").is_ok());
        assert!(check_address("web-1.internal:80").is_ok());
        for bad in ["10.0.0.5", ":80", "host:0", "host:99999", "a/b:80"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert!(check_name(Some("web_1.blue")).is_ok());
        assert!(check_name(Some("web 1")).is_err() && check_name(None).is_err());
    }
}
