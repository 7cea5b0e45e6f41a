//! Traffic events and blue/green routing, carried out by the server.
//!
//! A target group is desired state kept on the server (which instances serve, at what address
//! and weight) plus what its router last reported (each target's health, whether a target taken
//! out of rotation has drained); `api/target_groups.rs` serves it to people and routers.
//!
//! BlockTraffic and AllowTraffic are the server's own lifecycle events: their commands are
//! created taken (see the driver), and [`advance`] carries them out on every driver tick and
//! health report: Block takes the instance out of each of its deployment group's target groups
//! and succeeds once every router has drained it; Allow puts it back and succeeds once every
//! router reports it healthy, or fails after the traffic timeout with the last check's reason.

use std::time::Duration;

use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::landfall::{HealthState, TargetGroupInfo, TargetInfo};
use landfall_api::shapes::DeploymentInfo;
use landfall_engine::plan::Routing;
use landfall_store::{CommandState, HostCommandRecord, Store, StoreError, TargetGroupRecord};

use crate::errors::store_error;
use crate::state::AppState;

pub async fn load(store: &dyn Store, name: &str) -> ApiResult<TargetGroupRecord> {
    store.target_group(name).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(Exception::TargetGroupDoesNotExist, format!("No target group named {name} exists."))
    })
}

/// Changes a group's desired state with `change` (which says whether it changed anything),
/// bumping its version and waking its routers; retried if the group changed meanwhile.
pub async fn modify(
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

pub async fn update(
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
            Err(StoreError::Changed(_)) => continue,
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

/// Brings a blue/green deployment's target groups in line with the routing the planner chose:
/// each fleet's hosts get traffic weights that give Green its share (in proportion to their
/// registered weights within the fleet), Green out of rotation after a retreat, Blue removed
/// after a successful TERMINATE deployment.
pub async fn route(state: &AppState, routing: &Routing) {
    let Routing { target_groups, blue, green, green_share, retreat, remove_blue } = routing;
    for name in target_groups {
        let result = modify(state, name, |group| {
            let before = group.targets.clone();
            if *retreat {
                for target in group.targets.iter_mut().filter(|t| green.contains(&t.instance_name) && t.serving) {
                    target.serving = false;
                    target.generation += 1;
                }
            }
            let weights = green_share.map(|share| fleet_weights(&group.targets, blue, green, share));
            for target in group.targets.iter_mut() {
                if blue.contains(&target.instance_name) || green.contains(&target.instance_name) {
                    target.traffic_weight = weights.as_ref().and_then(|w| w.get(&target.instance_name).copied());
                }
            }
            if *remove_blue {
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
    let names = landfall_engine::plan::target_group_names(deployment.load_balancer_info.as_ref());
    let mut completed = false;
    let open = commands.iter().filter(|c| {
        c.state == CommandState::Dispatched && landfall_engine::lifecycle::runs_on_server(&c.lifecycle_event)
    });
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
        completed |= crate::server_events::complete_on_server(state, command, succeeded, message).await;
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
            Some(h) if allow => h.state == HealthState::Healthy,
            Some(h) => h.state == HealthState::Drained,
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
    use super::*;

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
}
