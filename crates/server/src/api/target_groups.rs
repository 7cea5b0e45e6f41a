//! Target groups through the API (Landfall's extension): CreateTargetGroup, DeleteTargetGroup,
//! ListTargetGroups, RegisterTargets, DeregisterTargets, and the routers' calls: the long poll
//! of GetRouterState and ReportTargetHealth. What traffic events do with them is
//! `crate::traffic`'s.

use std::time::Duration;

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{
    CreateTargetGroupInput, DeregisterTargetsInput, GetRouterStateInput, HealthCheck, HealthState,
    ListTargetGroupsOutput, RegisterTargetsInput, ReportTargetHealthInput, TargetGroupInfo, TargetGroupNameInput,
    TargetGroupOutput, TargetHealth, TargetInfo,
};
use landfall_store::{StoreError, Unique};

use super::common::{Ctx, store_error};
use crate::state::AppState;
use crate::traffic::{load, modify, update};

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
        Err(StoreError::AlreadyExists(Unique::TargetGroup)) => {
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
        match &report.state {
            Some(state) if state.is_known() => {}
            state => {
                let state = state.as_ref().map_or("", HealthState::as_str);
                return err(Exception::InvalidInput, format!("state '{state}' is not a target health state."));
            }
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
                state: report.state.clone().unwrap_or(HealthState::Initial),
                reason: report.reason.clone().filter(|r| !r.is_empty()),
                generation: report.generation.unwrap_or_default(),
                reported_at: now,
            };
            let same = target.health.as_ref().is_some_and(|h| {
                (&h.state, &h.reason, h.generation) == (&health.state, &health.reason, health.generation)
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

#[cfg(test)]
mod tests {
    use super::*;

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
