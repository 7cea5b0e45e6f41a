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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_store::{Fence, Notice, StoreResult};

use crate::state::AppState;

/// What a notice is about.
pub mod kind {
    /// Hosts that have a new command (their long polls look again).
    pub const HOST: &str = "host";
    /// Deployments with news (a host finished an event, a stop): their owner reconciles.
    pub const DEPLOYMENT: &str = "deployment";
    /// Target groups whose desired state changed (their routers' long polls answer).
    pub const TARGET_GROUP: &str = "target-group";
    /// New trigger messages in the outbox.
    pub const OUTBOX: &str = "outbox";
    /// Hosts may have joined or left a group (crate::fleet).
    pub const FLEET: &str = "fleet";
}

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

pub struct Replica {
    /// This server's holder name in the lease table: unique per process start.
    pub id: String,
    pub ttl: Duration,
    /// Leases this replica holds, with when they expire by its own clock.
    held: Mutex<HashMap<String, (Fence, Timestamp)>>,
}

impl Replica {
    pub fn new(id: String, ttl: Duration) -> Replica {
        Replica { id, ttl, held: Mutex::default() }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Fence, Timestamp)>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn until(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.millis() + self.ttl.as_millis() as i64)
    }

    /// The fence of lease `name`, taking the lease if it is free or expired; None while another
    /// replica holds it. A lease this replica knows it holds (with more than half its time left)
    /// costs no store call.
    pub async fn hold(&self, state: &AppState, name: &str) -> StoreResult<Option<Fence>> {
        let now = state.clock.now();
        let half = self.ttl.as_millis() as i64 / 2;
        if let Some((fence, expires)) = self.held().get(name)
            && expires.millis() - now.millis() > half
        {
            return Ok(Some(fence.clone()));
        }
        let taken = state.store.acquire_lease(name, &self.id, now, self.until(now)).await?;
        let mut held = self.held();
        match &taken {
            Some(fence) => {
                if held.get(name).is_none_or(|(known, _)| known.epoch != fence.epoch) {
                    tracing::info!(lease = name, epoch = fence.epoch, "took the lease");
                }
                held.insert(name.to_owned(), (fence.clone(), self.until(now)));
            }
            None => {
                held.remove(name);
            }
        }
        Ok(taken)
    }

    /// Extends every lease this replica holds; forgets those another replica took meanwhile.
    pub async fn renew(&self, state: &AppState) -> StoreResult<()> {
        let now = state.clock.now();
        let until = self.until(now);
        let renewed = state.store.renew_leases(&self.id, until).await?;
        let mut held = self.held();
        // Not lost: a lease taken while the renewal ran (it expires after `until`).
        let lost: Vec<String> = held
            .iter()
            .filter(|(name, (_, expires))| *expires < until && !renewed.iter().any(|fence| &fence.lease == *name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in lost {
            tracing::warn!(lease = %name, "lost the lease to another server");
            held.remove(&name);
        }
        for fence in renewed {
            held.insert(fence.lease.clone(), (fence, until));
        }
        Ok(())
    }

    /// Gives a lease up (its work is done).
    pub async fn release(&self, state: &AppState, name: &str) -> StoreResult<()> {
        self.held().remove(name);
        state.store.release_lease(name, &self.id).await
    }

    /// Gives every lease up (the server is stopping): the others take the work over at once
    /// rather than when the leases lapse.
    pub async fn release_all(&self, state: &AppState) {
        let names: Vec<String> = self.held().keys().cloned().collect();
        for name in names {
            if let Err(error) = self.release(state, &name).await {
                tracing::warn!(lease = %name, %error, "cannot give the lease up");
            }
        }
    }

    /// Forgets a lease the store says is another replica's now.
    pub fn forget(&self, name: &str) {
        self.held().remove(name);
    }

    pub fn holds(&self, name: &str) -> bool {
        self.held().contains_key(name)
    }
}

/// Runs until the server stops: renews this replica's leases five times per lease time, on a
/// task of its own so that a long reconcile never delays it.
pub async fn renew_forever(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(state.replica.ttl / 5);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = state.replica.renew(&state).await {
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
    publish(state, Notice::new(kind::HOST, hosts.iter().copied())).await;
}

/// Wakes the routers of a target group, here and on every other replica.
pub async fn wake_target_group(state: &AppState, name: &str) {
    state.driver.target_group_signal(name).notify_waiters();
    publish(state, Notice::new(kind::TARGET_GROUP, [name])).await;
}

/// Wakes trigger delivery, wherever it runs.
pub async fn wake_outbox(state: &AppState) {
    state.outbox.written.notify_one();
    publish(state, Notice::new(kind::OUTBOX, Vec::<String>::new())).await;
}

/// Wakes the search for hosts that joined a group, wherever it runs.
pub async fn wake_fleet(state: &AppState) {
    state.fleet_changed.notify_one();
    if !state.replica.holds(lease::FLEET) {
        publish(state, Notice::new(kind::FLEET, Vec::<String>::new())).await;
    }
}

/// Asks the replica that owns a deployment to look at it.
pub async fn nudge_owner(state: &AppState, deployment_id: &str) {
    publish(state, Notice::new(kind::DEPLOYMENT, [deployment_id])).await;
}

/// A lost notice costs latency, not correctness: every waiter also times out and looks again.
async fn publish(state: &AppState, notice: Notice) {
    if let Err(error) = state.store.publish(&notice).await {
        tracing::warn!(%error, kind = %notice.kind, "cannot notify the other servers");
    }
}

/// Runs until the server stops: turns other replicas' notices into local wake-ups.
pub async fn listen_forever(state: Arc<AppState>) {
    let mut notices = match state.store.subscribe().await {
        Ok(Some(notices)) => notices,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, "cannot listen for the other servers' notices");
            return;
        }
    };
    while let Some(notice) = notices.recv().await {
        match notice.kind.as_str() {
            kind::HOST => {
                for host in &notice.keys {
                    state.driver.host_signal(host).notify_waiters();
                }
            }
            kind::TARGET_GROUP => {
                for name in &notice.keys {
                    state.driver.target_group_signal(name).notify_waiters();
                }
            }
            kind::OUTBOX => state.outbox.written.notify_one(),
            kind::FLEET => state.fleet_changed.notify_one(),
            kind::DEPLOYMENT => {
                for id in &notice.keys {
                    if state.replica.holds(&lease::deployment(id)) {
                        crate::driver::reconcile_soon(&state, id);
                    }
                }
            }
            Notice::RESYNC => {
                tracing::info!("connected to the database again: every long poll looks again");
                state.driver.wake_everyone();
                state.outbox.written.notify_one();
                state.fleet_changed.notify_one();
            }
            other => tracing::debug!(kind = other, "ignoring an unknown notice"),
        }
    }
}
