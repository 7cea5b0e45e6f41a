//! The router's view of its target group: each backend's desired state (from the server), its
//! health (from this router's checks), its draining, and the weighted choice among the backends
//! that may take a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use landfall_api::landfall::{HealthCheck, HealthState, TargetGroupInfo, TargetReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not enough checks yet.
    Initial,
    Healthy,
    Unhealthy,
}

#[derive(Debug)]
pub struct Backend {
    pub instance: String,
    pub address: String,
    pub weight: u32,
    pub serving: bool,
    pub generation: u64,
    pub health: Health,
    passes: u32,
    failures: u32,
    pub reason: Option<String>,
    /// When the backend left rotation; it drains until idle or the deregistration delay.
    draining_since: Option<Instant>,
    pub drained: bool,
    /// Requests (with their response bodies) not finished yet.
    pub in_flight: Arc<AtomicUsize>,
    /// Smooth weighted round robin state.
    current: i64,
}

#[derive(Debug, Default)]
pub struct Table {
    pub version: Option<u64>,
    pub health_check: HealthCheck,
    pub deregistration_delay: Duration,
    pub backends: Vec<Backend>,
}

impl Table {
    /// Takes in the server's desired state. A backend whose generation moved on is checked
    /// afresh when it (re)enters rotation, and starts draining when it leaves.
    pub fn apply(&mut self, group: &TargetGroupInfo, now: Instant) {
        self.version = Some(group.version);
        self.health_check = group.health_check.clone();
        self.deregistration_delay = Duration::from_secs(u64::from(group.deregistration_delay_seconds));
        self.backends.retain(|b| group.targets.iter().any(|t| t.address == b.address));
        for target in &group.targets {
            match self.backends.iter_mut().find(|b| b.address == target.address) {
                Some(backend) => {
                    if backend.generation != target.generation {
                        if target.serving && !backend.serving {
                            backend.health = Health::Initial;
                            backend.passes = 0;
                            backend.failures = 0;
                            backend.reason = None;
                            backend.draining_since = None;
                            backend.drained = false;
                        }
                        if !target.serving && backend.serving {
                            backend.draining_since = Some(now);
                            backend.drained = false;
                        }
                    }
                    backend.instance = target.instance_name.clone();
                    backend.weight = target.effective_weight();
                    backend.serving = target.serving;
                    backend.generation = target.generation;
                }
                None => self.backends.push(Backend {
                    instance: target.instance_name.clone(),
                    address: target.address.clone(),
                    weight: target.effective_weight(),
                    serving: target.serving,
                    generation: target.generation,
                    health: Health::Initial,
                    passes: 0,
                    failures: 0,
                    reason: None,
                    draining_since: (!target.serving).then_some(now),
                    drained: false,
                    in_flight: Arc::default(),
                    current: 0,
                }),
            }
        }
    }

    /// Records one health check of `address`.
    pub fn record_check(&mut self, address: &str, generation: u64, result: Result<(), String>) {
        let healthy_threshold = self.health_check.healthy_threshold;
        let unhealthy_threshold = self.health_check.unhealthy_threshold;
        let Some(backend) = self.backends.iter_mut().find(|b| b.address == address && b.generation == generation)
        else {
            return;
        };
        match result {
            Ok(()) => {
                backend.passes += 1;
                backend.failures = 0;
                if backend.passes >= healthy_threshold {
                    backend.health = Health::Healthy;
                    backend.reason = None;
                }
            }
            Err(reason) => {
                backend.failures += 1;
                backend.passes = 0;
                backend.reason = Some(reason);
                if backend.failures >= unhealthy_threshold {
                    backend.health = Health::Unhealthy;
                }
            }
        }
    }

    /// Marks as drained the backends out of rotation that are idle or out of time.
    pub fn advance_draining(&mut self, now: Instant) {
        let delay = self.deregistration_delay;
        for backend in self.backends.iter_mut().filter(|b| !b.serving && !b.drained) {
            let since = *backend.draining_since.get_or_insert(now);
            if backend.in_flight.load(Ordering::SeqCst) == 0 || now.duration_since(since) >= delay {
                backend.drained = true;
            }
        }
    }

    /// What the server is told about each backend.
    pub fn reports(&self) -> Vec<TargetReport> {
        self.backends
            .iter()
            .map(|b| {
                let state = match (b.serving, b.drained, b.health) {
                    (false, true, _) => HealthState::Drained,
                    (false, false, _) => HealthState::Draining,
                    (true, _, Health::Initial) => HealthState::Initial,
                    (true, _, Health::Healthy) => HealthState::Healthy,
                    (true, _, Health::Unhealthy) => HealthState::Unhealthy,
                };
                TargetReport {
                    address: Some(b.address.clone()),
                    state: Some(state),
                    reason: b.reason.clone(),
                    generation: Some(b.generation),
                }
            })
            .collect()
    }

    /// The backends to check: those in rotation.
    pub fn to_check(&self) -> Vec<(String, u64)> {
        self.backends.iter().filter(|b| b.serving).map(|b| (b.address.clone(), b.generation)).collect()
    }

    /// Chooses a backend for a request by smooth weighted round robin among the healthy ones in
    /// rotation, skipping `excluded`; returns its address and its in-flight counter, already
    /// counting this request (the caller decrements it when the request is over).
    pub fn pick(&mut self, excluded: &[String]) -> Option<(String, Arc<AtomicUsize>)> {
        let eligible: Vec<usize> = (0..self.backends.len())
            .filter(|&i| {
                let b = &self.backends[i];
                b.serving && b.health == Health::Healthy && b.weight > 0 && !excluded.contains(&b.address)
            })
            .collect();
        let total: i64 = eligible.iter().map(|&i| i64::from(self.backends[i].weight)).sum();
        for &i in &eligible {
            self.backends[i].current += i64::from(self.backends[i].weight);
        }
        let chosen = eligible.iter().copied().rev().max_by_key(|&i| self.backends[i].current)?;
        let backend = &mut self.backends[chosen];
        backend.current -= total;
        // Counted while the table is locked, so draining never sees it idle in between.
        backend.in_flight.fetch_add(1, Ordering::SeqCst);
        Some((backend.address.clone(), Arc::clone(&backend.in_flight)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_api::Timestamp;
    use landfall_api::landfall::TargetInfo;

    fn group(targets: &[(&str, u32, bool, u64)]) -> TargetGroupInfo {
        TargetGroupInfo {
            name: "web".into(),
            router: "builtin".into(),
            health_check: HealthCheck { healthy_threshold: 2, unhealthy_threshold: 2, ..HealthCheck::default() },
            deregistration_delay_seconds: 5,
            targets: targets
                .iter()
                .map(|(address, weight, serving, generation)| TargetInfo {
                    instance_name: format!("i-{address}"),
                    address: (*address).into(),
                    weight: *weight,
                    traffic_weight: None,
                    serving: *serving,
                    generation: *generation,
                    health: None,
                })
                .collect(),
            version: 1,
            create_time: Timestamp(0),
        }
    }

    fn healthy(table: &mut Table) {
        for (address, generation) in table.to_check() {
            table.record_check(&address, generation, Ok(()));
            table.record_check(&address, generation, Ok(()));
        }
    }

    #[test]
    fn weights_share_the_requests() {
        let mut table = Table::default();
        table.apply(&group(&[("a:1", 90, true, 1), ("b:1", 10, true, 1)]), Instant::now());
        assert!(table.pick(&[]).is_none(), "no backend is healthy before its checks pass");
        healthy(&mut table);
        let picks: Vec<String> = (0..100).map(|_| table.pick(&[]).unwrap().0).collect();
        assert_eq!(picks.iter().filter(|a| *a == "b:1").count(), 10);
        // Spread out, not in a burst.
        assert!(picks.windows(2).all(|w| !(w[0] == "b:1" && w[1] == "b:1")));
        assert_eq!(table.pick(&["a:1".into()]).unwrap().0, "b:1");
    }

    #[test]
    fn health_needs_consecutive_results() {
        let mut table = Table::default();
        table.apply(&group(&[("a:1", 100, true, 1)]), Instant::now());
        table.record_check("a:1", 1, Ok(()));
        assert_eq!(table.backends[0].health, Health::Initial);
        table.record_check("a:1", 1, Ok(()));
        assert_eq!(table.backends[0].health, Health::Healthy);
        table.record_check("a:1", 1, Err("connection refused".into()));
        assert_eq!(table.backends[0].health, Health::Healthy, "one failure is not enough");
        table.record_check("a:1", 1, Err("connection refused".into()));
        assert_eq!(table.backends[0].health, Health::Unhealthy);
        assert_eq!(table.reports()[0].state, Some(HealthState::Unhealthy));
        assert_eq!(table.reports()[0].reason.as_deref(), Some("connection refused"));
        // A check made under an older generation counts for nothing.
        table.record_check("a:1", 0, Ok(()));
        table.record_check("a:1", 0, Ok(()));
        assert_eq!(table.backends[0].health, Health::Unhealthy);
    }

    #[test]
    fn leaving_rotation_drains_then_returning_starts_over() {
        let start = Instant::now();
        let mut table = Table::default();
        table.apply(&group(&[("a:1", 100, true, 1), ("b:1", 100, true, 1)]), start);
        healthy(&mut table);
        let (_, in_flight) = table.pick(&["b:1".into()]).unwrap();
        table.apply(&group(&[("a:1", 100, false, 2), ("b:1", 100, true, 1)]), start);
        assert!((0..10).all(|_| table.pick(&[]).unwrap().0 == "b:1"), "no new requests to a draining backend");
        table.advance_draining(start + Duration::from_secs(1));
        assert_eq!(table.reports()[0].state, Some(HealthState::Draining));
        in_flight.fetch_sub(1, Ordering::SeqCst);
        table.advance_draining(start + Duration::from_secs(2));
        assert_eq!(table.reports()[0].state, Some(HealthState::Drained));
        // Back in rotation: checked afresh before it gets traffic.
        table.apply(&group(&[("a:1", 100, true, 3), ("b:1", 100, true, 1)]), start);
        assert_eq!(table.reports()[0].state, Some(HealthState::Initial));
        assert!((0..10).all(|_| table.pick(&[]).unwrap().0 == "b:1"));
    }

    #[test]
    fn a_busy_backend_is_cut_off_after_the_deregistration_delay() {
        let start = Instant::now();
        let mut table = Table::default();
        table.apply(&group(&[("a:1", 100, true, 1)]), start);
        table.backends[0].in_flight.fetch_add(1, Ordering::SeqCst);
        table.apply(&group(&[("a:1", 100, false, 2)]), start);
        table.advance_draining(start + Duration::from_secs(4));
        assert!(!table.backends[0].drained);
        table.advance_draining(start + Duration::from_secs(5));
        assert!(table.backends[0].drained);
    }
}
