//! What the driver keeps in memory: the deployments being reconciled now (so calls coalesce),
//! what it knows of the deployments it owns (so a pass reads only what may have changed), the
//! signals that wake hosts' and routers' long polls, and the timeouts it runs with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use landfall_engine::run::Timeouts;
use landfall_store::HostCommandRecord;
use tokio::sync::Notify;

pub struct Driver {
    /// Deployments being reconciled now, and whether something changed since that began.
    running: Mutex<HashMap<String, Dirty>>,
    /// The last pass's targets and commands of the deployments this server owns.
    remembered: Mutex<HashMap<String, Remembered>>,
    /// How many passes each deployment this server drives has begun (see `passes_begun`).
    passes: Mutex<HashMap<String, u64>>,
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
        Driver {
            running: Mutex::default(),
            remembered: Mutex::default(),
            passes: Mutex::default(),
            hosts: Signals::default(),
            target_groups: Signals::default(),
            timeouts,
        }
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

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.remembered.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes out what the last pass over a deployment left, if it was made under the same hold
    /// of its lease (`epoch`): a pass that fails, or ends the deployment, does not put it back.
    pub(super) fn recall(&self, deployment_id: &str, epoch: i64) -> Option<Remembered> {
        self.remembered().remove(deployment_id).filter(|remembered| remembered.epoch == epoch)
    }

    pub(super) fn remember(&self, deployment_id: &str, remembered: Remembered) {
        self.remembered().insert(deployment_id.to_owned(), remembered);
    }

    fn passes(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.passes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many passes over the deployment have begun here: a pass asked for later can be
    /// dropped when another began in between.
    pub(super) fn passes_begun(&self, deployment_id: &str) -> u64 {
        self.passes().get(deployment_id).copied().unwrap_or(0)
    }

    pub(super) fn pass_begins(&self, deployment_id: &str) {
        *self.passes().entry(deployment_id.to_owned()).or_default() += 1;
    }

    /// Forgets the count of a deployment this server no longer drives (over, or taken over).
    pub(super) fn passes_end(&self, deployment_id: &str) {
        self.passes().remove(deployment_id);
    }
}

/// A deployment's targets and commands as its last pass left them. Only the driver of the
/// deployment's owner writes its targets and adds its commands, and a final command never
/// changes again, so the next pass need read only the commands from the first one not final.
pub(super) struct Remembered {
    pub(super) epoch: i64,
    pub(super) targets: super::targets::Targets,
    /// In the order they were stored.
    pub(super) commands: Vec<HostCommandRecord>,
}

/// A deployment being reconciled: whether it changed since the pass began, and who waits for
/// the passes to end.
#[derive(Default)]
pub(super) struct Dirty {
    pub(super) again: bool,
    pub(super) done: Arc<Notify>,
}
