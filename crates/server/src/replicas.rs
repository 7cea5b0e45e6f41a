//! Several servers on one store. Each server is a replica with an id of its own; work that must
//! happen once (a deployment's progress, alarm polling, trigger delivery) is done by whichever
//! replica holds its lease in the store. A lease lasts [`Replica::ttl`] and is renewed five
//! times in that time, so a replica that dies loses its leases within that time and the others take
//! its work over. Every write of a deployment step carries the lease it was computed under (its
//! fence), so a replica that stalled and lost its lease cannot write over its successor.
//!
//! Replicas tell each other what changed through the store's notices (LISTEN/NOTIFY on
//! PostgreSQL): a host with a new command, a deployment with news for its owner, a target
//! group's new desired state, new trigger messages. With SQLite there is one server and the
//! local signals are all there is.

use std::sync::Arc;
use std::time::Duration;

use landfall_store::{Notice, NoticeKind};

use crate::state::AppState;

/// The lease names of work done once.
pub mod lease {
    pub const ALARMS: &str = "alarms";
    pub const TRIGGERS: &str = "triggers";
    /// Looking for hosts that joined a deployment group (crate::fleet).
    pub const FLEET: &str = "fleet";

    pub fn deployment(id: &str) -> String {
        format!("deployment:{id}")
    }
}

pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

pub use crate::leases::Replica;

/// Runs until the server stops: renews this replica's leases five times per lease time, on a
/// task of its own so that a long reconcile never delays it.
pub async fn renew_forever(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(state.replica.ttl / 5);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = state.replica.renew().await {
            tracing::warn!(%error, "cannot renew this server's leases");
        }
    }
}

/// Wakes the long polls of hosts with new work, here and on every other replica.
pub async fn wake_hosts(state: &AppState, hosts: &[&str]) {
    if hosts.is_empty() {
        return;
    }
    for host in hosts {
        state.driver.host_signal(host).notify_waiters();
    }
    publish(state, Notice::new(NoticeKind::Host, hosts.iter().copied())).await;
}

/// Wakes the routers of a target group, here and on every other replica.
pub async fn wake_target_group(state: &AppState, name: &str) {
    state.driver.target_group_signal(name).notify_waiters();
    publish(state, Notice::new(NoticeKind::TargetGroup, [name])).await;
}

/// Wakes trigger delivery, wherever it runs.
pub async fn wake_outbox(state: &AppState) {
    state.outbox.written.notify_one();
    publish(state, Notice::new(NoticeKind::Outbox, Vec::<String>::new())).await;
}

/// Wakes the search for hosts that joined a group, wherever it runs.
pub async fn wake_fleet(state: &AppState) {
    fleet_changed(state);
    if !state.replica.holds(lease::FLEET) {
        publish(state, Notice::new(NoticeKind::Fleet, Vec::<String>::new())).await;
    }
}

/// Wakes this server's look at the groups, counting the nudge.
pub(crate) fn fleet_changed(state: &AppState) {
    state.metrics.fleet_nudges.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    state.fleet_changed.notify_one();
}

/// Asks the replica that owns a deployment to look at it.
pub async fn nudge_owner(state: &AppState, deployment_id: &str) {
    publish(state, Notice::new(NoticeKind::Deployment, [deployment_id])).await;
}

/// A lost notice costs latency, not correctness: every waiter also times out and looks again.
async fn publish(state: &AppState, notice: Notice) {
    if let Err(error) = state.store.publish(&notice).await {
        tracing::warn!(%error, kind = notice.kind.as_str(), "cannot notify the other servers");
    }
}
