//! What the driver keeps in memory: the deployments being reconciled now (so calls coalesce),
//! the signals that wake hosts' and routers' long polls, and the timeouts it runs with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use landfall_engine::run::Timeouts;
use tokio::sync::Notify;

pub struct Driver {
    /// Deployments being reconciled now, and whether something changed since that began.
    running: Mutex<HashMap<String, Dirty>>,
    /// Wakes the long polls of a host when it has a new command.
    hosts: Signals,
    /// Wakes the long polls of a target group's routers when its desired state changes.
    target_groups: Signals,
    pub timeouts: Timeouts,
}

/// One notification per name, made on first use.
#[derive(Default)]
struct Signals(Mutex<HashMap<String, Arc<Notify>>>);

impl Signals {
    fn get(&self, name: &str) -> Arc<Notify> {
        let mut signals = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        signals.entry(name.to_owned()).or_default().clone()
    }
}

impl Driver {
    pub fn new(timeouts: Timeouts) -> Driver {
        Driver { running: Mutex::default(), hosts: Signals::default(), target_groups: Signals::default(), timeouts }
    }

    /// The signal a host's long poll waits on.
    pub fn host_signal(&self, instance: &str) -> Arc<Notify> {
        self.hosts.get(instance)
    }

    /// The signal a target group's routers wait on.
    pub fn target_group_signal(&self, name: &str) -> Arc<Notify> {
        self.target_groups.get(name)
    }

    /// Wakes every long poll (after notices from other servers may have been lost).
    pub fn wake_everyone(&self) {
        for signals in [&self.hosts, &self.target_groups] {
            let signals = signals.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for signal in signals.values() {
                signal.notify_waiters();
            }
        }
    }

    pub(super) fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dirty>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A deployment being reconciled: whether it changed since the pass began, and who waits for
/// the passes to end.
#[derive(Default)]
pub(super) struct Dirty {
    pub(super) again: bool,
    pub(super) done: Arc<Notify>,
}
