//! The other servers' notices (through the store) turned into this server's wake-ups: a host's
//! long poll, a target group's routers, the outbox, the fleet, a deployment it owns. Wiring
//! between the replica layer, which sends them, and the driver, which acts on them.

use std::sync::Arc;

use landfall_store::NoticeKind;

use crate::driver;
use crate::replicas::{self, lease};
use crate::state::AppState;

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
        match &notice.kind {
            NoticeKind::Host => {
                for host in &notice.keys {
                    state.driver.host_signal(host).notify_waiters();
                }
            }
            NoticeKind::TargetGroup => {
                for name in &notice.keys {
                    state.driver.target_group_signal(name).notify_waiters();
                }
            }
            NoticeKind::Outbox => state.outbox.written.notify_one(),
            NoticeKind::Fleet => replicas::fleet_changed(&state),
            NoticeKind::Deployment => {
                for id in &notice.keys {
                    if state.replica.holds(&lease::deployment(id)) {
                        driver::reconcile_soon(&state, id);
                    }
                }
            }
            NoticeKind::Resync => {
                tracing::info!("connected to the database again: every long poll looks again");
                state.driver.wake_everyone();
                state.outbox.written.notify_one();
                replicas::fleet_changed(&state);
            }
            NoticeKind::Unknown(other) => tracing::debug!(kind = other, "ignoring an unknown notice"),
        }
    }
}
