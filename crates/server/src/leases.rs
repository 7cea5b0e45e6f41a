//! This server's leases in the store (see `crate::replicas`): taken, renewed, given up, and
//! the fences of the ones it holds, known without a store call while they last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use landfall_api::Timestamp;
use landfall_store::{Coordination, Fence, StoreResult};

use crate::clock::Clock;

pub struct Replica {
    /// This server's holder name in the lease table: unique per process start.
    pub id: String,
    pub ttl: Duration,
    store: Arc<dyn Coordination>,
    clock: Arc<dyn Clock>,
    /// Leases this replica holds, with when they expire by its own clock.
    held: Mutex<HashMap<String, (Fence, Timestamp)>>,
    /// The server is stopping: its leases are given up and no more are taken (a reconcile still
    /// under way must not take back what the others should now have).
    stopping: AtomicBool,
}

impl Replica {
    pub fn new(id: String, ttl: Duration, store: Arc<dyn Coordination>, clock: Arc<dyn Clock>) -> Replica {
        Replica { id, ttl, store, clock, held: Mutex::default(), stopping: AtomicBool::new(false) }
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
    pub async fn hold(&self, name: &str) -> StoreResult<Option<Fence>> {
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let now = self.clock.now();
        let half = self.ttl.as_millis() as i64 / 2;
        if let Some((fence, expires)) = self.held().get(name)
            && expires.millis() - now.millis() > half
        {
            return Ok(Some(fence.clone()));
        }
        let taken = self.store.acquire_lease(name, &self.id, now, self.until(now)).await?;
        let mut held = self.held();
        // Checked under the lock release_all sets it under: a lease taken while the server
        // began to stop is given straight back rather than kept past its release.
        if taken.is_some() && self.stopping.load(Ordering::SeqCst) {
            drop(held);
            self.store.release_lease(name, &self.id).await?;
            return Ok(None);
        }
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
    pub async fn renew(&self) -> StoreResult<()> {
        let now = self.clock.now();
        let until = self.until(now);
        let renewed = self.store.renew_leases(&self.id, until).await?;
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
    pub async fn release(&self, name: &str) -> StoreResult<()> {
        self.held().remove(name);
        self.store.release_lease(name, &self.id).await
    }

    /// Gives every lease up (the server is stopping): the others take the work over at once
    /// rather than when the leases lapse.
    pub async fn release_all(&self) {
        let names: Vec<String> = {
            let held = self.held();
            self.stopping.store(true, Ordering::SeqCst);
            held.keys().cloned().collect()
        };
        for name in names {
            if let Err(error) = self.release(&name).await {
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
