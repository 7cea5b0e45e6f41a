//! `GET /metrics`: the server's figures in the Prometheus text format. Counters and histograms
//! are kept in memory as requests happen; gauges (deployments by status, agents connected) are
//! read from the store when scraped. The endpoint wants the metrics token (a bearer token the
//! server writes to `DATA_DIR/metrics-token` on first start), like every other path but
//! `/health` wants credentials.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::landfall::AlarmStateValue;
use landfall_metrics::{Family, Kind, Labels, Registry};
use landfall_store::{Store, StoreResult, TriggerState};

const FAMILIES: [Family; 11] = [
    Family { name: "landfall_deployments", kind: Kind::Gauge, help: "Deployments by status." },
    Family {
        name: "landfall_agents_connected",
        kind: Kind::Gauge,
        help: "Instances whose agent polled within the last minute.",
    },
    Family {
        name: "landfall_agent_long_polls",
        kind: Kind::Gauge,
        help: "Agent long polls (PollHostCommand) held open now.",
    },
    Family {
        name: "landfall_api_requests_total",
        kind: Kind::Counter,
        help: "API requests by operation and error (none: answered).",
    },
    Family {
        name: "landfall_api_request_duration_seconds",
        kind: Kind::Histogram,
        help: "Time to answer an API request, by operation.",
    },
    Family {
        name: "landfall_command_pickup_seconds",
        kind: Kind::Histogram,
        help: "Time from a lifecycle event being queued to its host's agent taking it.",
    },
    Family {
        name: "landfall_lifecycle_event_duration_seconds",
        kind: Kind::Histogram,
        help: "Time a lifecycle event ran on a host, by event and result.",
    },
    Family {
        name: "landfall_trigger_deliveries_total",
        kind: Kind::Counter,
        help: "Trigger message delivery attempts by outcome.",
    },
    Family {
        name: "landfall_alarm_evaluations_total",
        kind: Kind::Counter,
        help: "Alarm evaluations by the state found.",
    },
    Family {
        name: "landfall_fleet_nudges",
        kind: Kind::Gauge,
        help: "Times this server was told hosts may have joined or left a deployment group.",
    },
    Family {
        name: "landfall_fleet_looked_after_nudges",
        kind: Kind::Gauge,
        help: "The nudges this server had been given when its last finished look at the groups began.",
    },
];

#[derive(Default)]
pub struct Metrics {
    registry: Registry,
    /// Agents holding a PollHostCommand open now.
    pub long_polls: AtomicI64,
    /// Nudges the fleet was given here (crate::fleet::nudge, and other servers' notices).
    pub fleet_nudges: AtomicI64,
    /// `fleet_nudges` as of the start of the last finished look at the groups: once it reaches
    /// a nudge's number, a look has seen what that nudge announced (tests wait on it rather
    /// than sleep to show that nothing happened).
    pub fleet_looked_after_nudges: AtomicI64,
}

impl Metrics {
    pub fn api_request(&self, operation: &str, error: Option<&str>, elapsed: Duration) {
        let operation = ("operation", operation.to_owned());
        let error = ("error", error.unwrap_or("none").to_owned());
        self.registry.count("landfall_api_requests_total", vec![operation.clone(), error]);
        self.registry.observe("landfall_api_request_duration_seconds", vec![operation], elapsed);
    }

    pub fn command_pickup(&self, waited: Duration) {
        self.registry.observe("landfall_command_pickup_seconds", vec![], waited);
    }

    pub fn lifecycle_event(&self, event: &str, succeeded: bool, ran: Duration) {
        let result = if succeeded { "Succeeded" } else { "Failed" };
        let labels: Labels = vec![("event", event.to_owned()), ("result", result.to_owned())];
        self.registry.observe("landfall_lifecycle_event_duration_seconds", labels, ran);
    }

    pub fn trigger_delivery(&self, state: TriggerState) {
        let outcome = match state {
            TriggerState::Delivered => "delivered",
            TriggerState::Pending => "retry",
            TriggerState::Expired => "expired",
        };
        self.registry.count("landfall_trigger_deliveries_total", vec![("outcome", outcome.to_owned())]);
    }

    pub fn alarm_evaluation(&self, state: &AlarmStateValue) {
        self.registry.count("landfall_alarm_evaluations_total", vec![("state", state.to_string())]);
    }
}

/// The whole exposition, as of now.
pub async fn render(metrics: &Metrics, store: &dyn Store, now: Timestamp) -> StoreResult<String> {
    let mut gauges: Vec<(&'static str, Labels, f64)> = Vec::new();
    for (status, count) in store.deployment_status_counts().await? {
        gauges.push(("landfall_deployments", vec![("status", status)], count as f64));
    }
    let now = now.millis();
    let agents = store.agent_statuses().await?;
    let connected = agents.iter().filter(|agent| now - agent.last_seen.millis() <= 60_000).count();
    gauges.push(("landfall_agents_connected", vec![], connected as f64));
    gauges.push(("landfall_agent_long_polls", vec![], metrics.long_polls.load(Ordering::Relaxed) as f64));
    let nudges = metrics.fleet_nudges.load(Ordering::SeqCst);
    gauges.push(("landfall_fleet_nudges", vec![], nudges as f64));
    let looked = metrics.fleet_looked_after_nudges.load(Ordering::SeqCst);
    gauges.push(("landfall_fleet_looked_after_nudges", vec![], looked as f64));
    Ok(metrics.registry.render(&FAMILIES, &gauges))
}
