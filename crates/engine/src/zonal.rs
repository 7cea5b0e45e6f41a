//! Zonal deployments (a Server configuration's `zonalConfig`, semantics reference §4.5): an
//! in-place deployment takes its hosts one zone at a time. Within the current zone a host starts
//! only if both the deployment's minimum healthy hosts and the zone's own floor
//! (`minimumHealthyHostsPerZone`) allow it; after a zone is done the deployment waits (status
//! Baking) for the monitor duration, alarms still being watched, before the next zone starts.
//!
//! A host's zone is its instance's zone tag (the server names the tag). Zones are taken in name
//! order; hosts without the tag form one zone of their own, taken last. The zones are fixed when
//! the deployment is planned, so re-tagging a host mid-deployment moves nothing.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use landfall_api::Timestamp;
use landfall_api::shapes::{
    DeploymentStatus, DeploymentTarget, MinimumHealthyHostsPerZone, MinimumHealthyHostsPerZoneType, TargetStatus,
};

use crate::run::{Step, status_of, target_id};

/// A zonal deployment's settings (from its deployment configuration and the hosts' tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZonalSettings {
    /// Each target's zone, by target id; a target missing here has no zone.
    pub zone_of: HashMap<String, String>,
    /// The wait after the first zone; `None`: the same as after the others.
    pub first_monitor_ms: Option<i64>,
    /// The wait after each later zone.
    pub monitor_ms: i64,
    /// The zone's floor; `None`: 0 %.
    pub minimum_healthy_per_zone: Option<MinimumHealthyHostsPerZone>,
}

/// Where a zonal deployment stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonalProgress {
    pub zones: Vec<Zone>,
    /// For each target (in the deployment's order), the index of its zone.
    pub zone_of: Vec<usize>,
    /// The zone being deployed (or just deployed, while its monitor wait runs).
    pub current: usize,
    /// When the monitor wait after the current zone ends (milliseconds since the epoch).
    #[serde(default)]
    pub monitor_until_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// The zone tag's value; empty for the hosts without one.
    pub name: String,
    /// How many of the zone's targets may be offline (in flight or failed) at once.
    pub failure_budget: i64,
    /// The wait after this zone before the next one starts, in milliseconds.
    pub monitor_ms: i64,
}

/// Fixes the zones of a deployment's targets and their floors.
pub fn plan(targets: &[DeploymentTarget], settings: &ZonalSettings) -> ZonalProgress {
    let zone_name = |target: &DeploymentTarget| settings.zone_of.get(&target_id(target)).cloned().unwrap_or_default();
    let named: BTreeSet<String> = targets.iter().map(zone_name).filter(|name| !name.is_empty()).collect();
    let mut names: Vec<String> = named.into_iter().collect();
    if targets.iter().any(|t| zone_name(t).is_empty()) {
        names.push(String::new());
    }
    let zone_of: Vec<usize> =
        targets.iter().map(|t| names.iter().position(|name| *name == zone_name(t)).unwrap_or(0)).collect();
    let zones = names
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let hosts = zone_of.iter().filter(|zone| **zone == index).count() as i64;
            let minimum = settings.minimum_healthy_per_zone.as_ref().map_or(0, |floor| {
                let value = floor.value.unwrap_or(0);
                match floor.r#type {
                    Some(MinimumHealthyHostsPerZoneType::HostCount) => value,
                    // Rounded up, like the deployment's own minimum.
                    _ => (hosts * value + 99) / 100,
                }
            });
            let monitor_ms = match index {
                0 => settings.first_monitor_ms.unwrap_or(settings.monitor_ms),
                _ => settings.monitor_ms,
            };
            // A zone no bigger than its floor still gets deployed, one host at a time.
            Zone { name, failure_budget: (hosts - minimum).max(1), monitor_ms }
        })
        .collect();
    ZonalProgress { zones, zone_of, current: 0, monitor_until_ms: None }
}

/// Whether the target at `index` may start now, as far as zones go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not a zonal deployment, or the zone has room.
    Open,
    /// The target's zone is not the current one.
    NotThisZone,
    /// The current zone has as many targets offline as its floor allows.
    Full,
    /// The zone has more failed targets than its floor allows, with targets still waiting.
    FloorBroken,
}

pub fn gate(progress: &crate::run::Progress, offline: &Offline, index: usize) -> Gate {
    let Some(zonal) = &progress.zones else {
        return Gate::Open;
    };
    if zonal.zone_of.get(index) != Some(&zonal.current) {
        return Gate::NotThisZone;
    }
    let Some(zone) = zonal.zones.get(zonal.current) else {
        return Gate::Open;
    };
    if offline.failed >= zone.failure_budget {
        Gate::FloorBroken
    } else if offline.in_flight + offline.failed >= zone.failure_budget {
        Gate::Full
    } else {
        Gate::Open
    }
}

/// Targets in flight and failed: of the whole deployment, or of a zonal deployment's current
/// zone. Counted once and kept up to date as targets start, so scheduling a fleet is linear.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline {
    pub in_flight: i64,
    pub failed: i64,
}

impl Offline {
    /// The targets' counts (`in_zone`: only those of the current zone, none if not zonal).
    pub fn count(progress: &crate::run::Progress, targets: &[DeploymentTarget], in_zone: bool) -> Offline {
        let current = progress.zones.as_ref().map(|zonal| (zonal.current, &zonal.zone_of));
        let mut offline = Offline::default();
        for (index, target) in targets.iter().enumerate() {
            if in_zone && current.is_none_or(|(zone, zone_of)| zone_of.get(index) != Some(&zone)) {
                continue;
            }
            offline.add(status_of(target));
        }
        offline
    }

    /// Counts one more target with this status.
    pub fn add(&mut self, status: Option<TargetStatus>) {
        match status {
            Some(TargetStatus::InProgress) => self.in_flight += 1,
            Some(TargetStatus::Failed) => self.failed += 1,
            _ => {}
        }
    }
}

/// Moves a zonal deployment on from a finished zone: starts the monitor wait after it (status
/// Baking), and once the wait is over makes the next zone current (status InProgress again).
/// Returns whether targets may be started now (false while a monitor wait runs).
pub fn next_zone_may_start(step: &mut Step, targets: &[DeploymentTarget], now: Timestamp) -> bool {
    let Some(mut zonal) = step.progress.zones.clone() else {
        return true;
    };
    let may_start = loop {
        let current = zonal.current;
        let zone_done =
            targets.iter().zip(&zonal.zone_of).filter(|(_, zone)| **zone == current).all(|(target, _)| {
                !matches!(status_of(target), Some(TargetStatus::Pending | TargetStatus::InProgress))
            });
        if !zone_done || current + 1 >= zonal.zones.len() {
            break true;
        }
        match zonal.monitor_until_ms {
            None if zonal.zones[current].monitor_ms > 0 => {
                zonal.monitor_until_ms = Some(now.millis() + zonal.zones[current].monitor_ms);
                break false;
            }
            Some(until) if now.millis() < until => break false,
            _ => {
                zonal.current += 1;
                zonal.monitor_until_ms = None;
            }
        }
    };
    step.deployment.status = Some(if may_start { DeploymentStatus::InProgress } else { DeploymentStatus::Baking });
    step.progress.zones = Some(zonal);
    may_start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tests::World;
    use crate::run::{StopRequest, is_terminal};
    use landfall_api::shapes::MinimumHealthyHosts;

    /// Nine hosts over zones a, b, c (three each, listed interleaved), monitor waits of 60 s after
    /// the first zone and 30 s after the others.
    fn zonal_world(per_zone: Option<MinimumHealthyHostsPerZone>, failing: &[(usize, &str)]) -> World {
        let minimum = Some(MinimumHealthyHosts { r#type: Some("HOST_COUNT".into()), value: Some(0) });
        let mut world = World::new(9, minimum, failing);
        let zones = ["c", "a", "b"];
        world.settings.zonal = Some(ZonalSettings {
            zone_of: (0..9).map(|i| (format!("host-{i}"), zones[i % 3].to_owned())).collect(),
            first_monitor_ms: Some(60_000),
            monitor_ms: 30_000,
            minimum_healthy_per_zone: per_zone,
        });
        world
    }

    fn zone_of_host(host: &str) -> &'static str {
        let index: usize = host.trim_start_matches("host-").parse().unwrap();
        ["c", "a", "b"][index % 3]
    }

    /// What a simulated run saw: for every step that started hosts, the simulated time and the
    /// hosts started; the most hosts of one zone ever in flight together; and each change of
    /// the deployment's status with its time.
    struct Run {
        waves: Vec<(i64, Vec<String>)>,
        most_in_flight_per_zone: usize,
        statuses: Vec<(i64, DeploymentStatus)>,
    }

    /// Runs the deployment on a paused clock that moves only when the test moves it: hosts answer
    /// within milliseconds, and the engine is called every simulated second.
    fn run(world: &mut World) -> Run {
        let mut waves = Vec::new();
        let mut statuses: Vec<(i64, DeploymentStatus)> = Vec::new();
        let mut most_in_flight_per_zone = 0;
        for _ in 0..1000 {
            let step = world.step();
            let started: Vec<String> = step
                .new_commands
                .iter()
                .filter(|(_, event)| event == "ApplicationStop")
                .map(|(host, _)| host.clone())
                .collect();
            if !started.is_empty() {
                waves.push((world.now, started));
            }
            let status = world.deployment.status.clone().unwrap();
            if statuses.last().is_none_or(|(_, last)| *last != status) {
                statuses.push((world.now, status.clone()));
            }
            for zone in ["a", "b", "c"] {
                let in_flight = world
                    .targets
                    .iter()
                    .filter(|t| zone_of_host(&target_id(t)) == zone)
                    .filter(|t| status_of(t) == Some(TargetStatus::InProgress))
                    .count();
                most_in_flight_per_zone = most_in_flight_per_zone.max(in_flight);
            }
            if is_terminal(&Some(status)) {
                return Run { waves, most_in_flight_per_zone, statuses };
            }
            world.hosts_run();
            world.now += 990;
        }
        panic!("the deployment never finished")
    }

    #[test]
    fn zones_go_one_at_a_time_in_name_order_with_monitor_waits_between() {
        let mut world = zonal_world(None, &[]);
        let start = world.now;
        let Run { waves, statuses, .. } = run(&mut world);
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Succeeded));
        // No floor: each zone's three hosts start together, zone a, then b, then c.
        let zones: Vec<Vec<&str>> =
            waves.iter().map(|(_, hosts)| hosts.iter().map(|h| zone_of_host(h)).collect()).collect();
        assert_eq!(zones, [vec!["a"; 3], vec!["b"; 3], vec!["c"; 3]]);
        // A zone's hosts run their three events in about three simulated seconds; then zone b
        // waits the first monitor (60 s), zone c the later one (30 s).
        let (a, b, c) = (waves[0].0, waves[1].0, waves[2].0);
        assert!(a - start < 2_000, "zone a started at +{} ms", a - start);
        assert!((60_000..65_000).contains(&(b - a)), "zone b started {} ms after zone a", b - a);
        assert!((30_000..35_000).contains(&(c - b)), "zone c started {} ms after zone b", c - b);
        // Baking while a monitor wait runs, InProgress again after it.
        let names: Vec<&str> = statuses.iter().map(|(_, status)| status.as_str()).collect();
        assert_eq!(names, ["InProgress", "Baking", "InProgress", "Baking", "InProgress", "Succeeded"]);
        // No wait after the last zone: the deployment ends as soon as zone c is done.
        let succeeded_at = statuses.last().unwrap().0;
        assert!(succeeded_at - c < 5_000);
    }

    #[test]
    fn the_per_zone_floor_limits_hosts_in_flight_within_a_zone() {
        // 2 of each zone's 3 hosts must stay healthy: one at a time per zone.
        let floor =
            MinimumHealthyHostsPerZone { r#type: Some(MinimumHealthyHostsPerZoneType::HostCount), value: Some(2) };
        let mut world = zonal_world(Some(floor), &[]);
        let Run { waves, most_in_flight_per_zone: most_in_flight, .. } = run(&mut world);
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Succeeded));
        assert_eq!(most_in_flight, 1);
        assert_eq!(waves.len(), 9);
        let order: Vec<&str> = waves.iter().map(|(_, hosts)| zone_of_host(&hosts[0])).collect();
        assert_eq!(order, ["a", "a", "a", "b", "b", "b", "c", "c", "c"]);

        // 34 % of 3 rounds up to 2 as well.
        let floor =
            MinimumHealthyHostsPerZone { r#type: Some(MinimumHealthyHostsPerZoneType::FleetPercent), value: Some(34) };
        let mut world = zonal_world(Some(floor), &[]);
        assert_eq!(run(&mut world).most_in_flight_per_zone, 1);
    }

    #[test]
    fn a_failure_beyond_the_zone_floor_fails_the_deployment_before_the_next_zone() {
        let floor =
            MinimumHealthyHostsPerZone { r#type: Some(MinimumHealthyHostsPerZoneType::HostCount), value: Some(2) };
        // host-1 is zone a's first host.
        let mut world = zonal_world(Some(floor), &[(1, "Install")]);
        let Run { waves, .. } = run(&mut world);
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Failed));
        assert_eq!(waves.len(), 1, "nothing started after the failure");
        let skipped = world.targets.iter().filter(|t| status_of(t) == Some(TargetStatus::Skipped)).count();
        assert_eq!(skipped, 8);
    }

    #[test]
    fn a_stop_during_a_monitor_wait_stops_the_deployment() {
        let mut world = zonal_world(None, &[]);
        for _ in 0..5 {
            world.step();
            world.hosts_run();
            world.now += 990;
        }
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Baking));
        world.progress.stop = Some(StopRequest::by_alarm("Alarm errors is in ALARM.".into()));
        world.step();
        assert_eq!(world.deployment.status, Some(DeploymentStatus::Stopped));
        let error = world.deployment.error_information.clone().unwrap();
        assert_eq!(error.code, Some(landfall_api::shapes::ErrorCode::AlarmActive));
        let succeeded = world.targets.iter().filter(|t| status_of(t) == Some(TargetStatus::Succeeded)).count();
        assert_eq!(succeeded, 3);
    }
}
