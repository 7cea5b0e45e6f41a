//! Agent updates (`landfall agent-update`): hosts asked to replace their agent with the binary
//! the server offers, at most `max_unavailable` of a rollout at a time.
//!
//! The store keeps one request per host; each server keeps the open ones in memory (looked for
//! every [`LOOK`]) so that a poll costs nothing unless its host has a request. A poll from a host
//! with a request is answered with an offer in the `x-landfall-agent-update` header: the version,
//! SHA-256 and path of the binary, sealed with the server's specification-signing identity (the
//! agent opens it as it opens a deployment specification). The agent updates between lifecycle
//! events and comes back reporting the new version, which finishes the request; an agent that
//! refuses the binary says why in `x-landfall-agent-update-refused`, and one that does not come
//! back within [`UPDATE_TIMEOUT`] fails the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderValue;
use landfall_commands::AGENT_USER_AGENT_PREFIX;
use landfall_store::AgentUpdateRecord;

use crate::log_limit::LogLimit;
use crate::state::AppState;

/// How often each server looks for requests made through the others.
const LOOK: Duration = Duration::from_secs(2);
/// How long an offered host may take to come back with the new version.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(300);

/// The header an offer goes in, and the one an agent's refusal comes back in.
pub const OFFER_HEADER: &str = "x-landfall-agent-update";
pub const REFUSED_HEADER: &str = "x-landfall-agent-update-refused";

/// The open requests, by instance name.
#[derive(Default)]
pub struct OpenUpdates(Mutex<HashMap<String, AgentUpdateRecord>>);

impl OpenUpdates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentUpdateRecord>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces what is known with what the store says is open; returns the hosts whose
    /// request is new here.
    pub fn replace(&self, open: Vec<AgentUpdateRecord>) -> Vec<String> {
        let mut known = self.lock();
        let new = open
            .iter()
            .filter(|request| known.get(&request.instance_name).is_none_or(|old| old.rollout_id != request.rollout_id))
            .map(|request| request.instance_name.clone())
            .collect();
        *known = open.into_iter().map(|request| (request.instance_name.clone(), request)).collect();
        new
    }

    /// Whether the host has a request this server knows of.
    pub fn is_open(&self, instance: &str) -> bool {
        self.lock().contains_key(instance)
    }
}

/// Reads the open requests and wakes the held polls of hosts with a new one, so that they come
/// back at once for it.
pub async fn refresh(state: &AppState) -> landfall_store::StoreResult<()> {
    let open = state.store.open_agent_updates().await?;
    for host in state.agent_updates.replace(open) {
        state.driver.host_signal(&host).notify_waiters();
    }
    Ok(())
}

/// Keeps `state.agent_updates` up to date with the store.
pub async fn watch_forever(state: Arc<AppState>) {
    static FAILED_LOOKS: LogLimit = LogLimit::new();
    loop {
        if let Err(error) = refresh(&state).await
            && let Some(held_back) = FAILED_LOOKS.allow()
        {
            tracing::warn!(%error, held_back, "cannot read the agent updates");
        }
        tokio::time::sleep(LOOK).await;
    }
}

/// The version a Landfall agent that can update itself reports (`landfall-agent/1.2.3`), or
/// `None` for the official agent and for `landfall agent` inside the `landfall` binary, which
/// say more after the version.
pub fn self_updating_version(reported: &str) -> Option<&str> {
    reported.strip_prefix(AGENT_USER_AGENT_PREFIX).filter(|version| !version.contains(' '))
}

/// After a poll by `instance`'s agent, reporting `reported` (its version) and maybe `refused`
/// (`VERSION why`): moves the host's request on, and returns the offer to send, if any.
pub async fn on_poll(
    state: &AppState,
    instance: &str,
    reported: Option<&str>,
    refused: Option<&str>,
) -> Option<HeaderValue> {
    static FAILED: LogLimit = LogLimit::new();
    let request = state.agent_updates.lock().get(instance).cloned()?;
    let now = state.clock.now();
    let running = reported.and_then(self_updating_version);
    // The agent reports the version its binary carries, as the server read it from the binary.
    let outcome = if running == Some(request.version.as_str()) {
        Some("Succeeded".to_owned())
    } else if let Some(why) = refused.and_then(|refused| refused.strip_prefix(&format!("{} ", request.version))) {
        Some(format!("Failed: the agent refused the binary: {why}"))
    } else if request.offered_at.is_some_and(|at| now.0 - at.0 > UPDATE_TIMEOUT.as_millis() as i64) {
        Some(format!(
            "Failed: the agent did not come back with version {} within {} s",
            request.version,
            UPDATE_TIMEOUT.as_secs()
        ))
    } else {
        None
    };
    let result = match outcome {
        Some(outcome) => {
            tracing::info!(instance, version = %request.version, %outcome, "agent update finished");
            let waiting: Vec<String> = {
                let mut open = state.agent_updates.lock();
                open.remove(instance);
                open.values()
                    .filter(|other| other.rollout_id == request.rollout_id && other.offered_at.is_none())
                    .map(|other| other.instance_name.clone())
                    .collect()
            };
            let finished = state.store.finish_agent_update(instance, &request.rollout_id, now, &outcome).await;
            // A place is free: the hosts waiting for one come back for it.
            for host in waiting {
                state.driver.host_signal(&host).notify_waiters();
            }
            finished.map(|()| None)
        }
        None if request.offered_at.is_some() => Ok(Some(offer(state, &request))),
        None => match state.store.offer_agent_update(instance, &request.rollout_id, now).await {
            Ok(true) => {
                if let Some(open) = state.agent_updates.lock().get_mut(instance) {
                    open.offered_at = Some(now);
                }
                tracing::info!(instance, version = %request.version, "agent update offered");
                Ok(Some(offer(state, &request)))
            }
            other => other.map(|_| None),
        },
    };
    match result {
        Ok(header) => header.flatten(),
        Err(error) => {
            if let Some(held_back) = FAILED.allow() {
                tracing::warn!(%error, held_back, "cannot move an agent update on");
            }
            None
        }
    }
}

/// The sealed offer of a request's binary, as a header value (base64 of the signed data).
fn offer(state: &AppState, request: &AgentUpdateRecord) -> Option<HeaderValue> {
    let content = serde_json::json!({
        "version": request.version,
        "sha256": request.sha256,
        "path": "/agent/landfall-agent",
    });
    let sealed = landfall_envelope::seal(content.to_string().as_bytes(), &state.spec_signer).ok()?;
    let base64: String = sealed.lines().filter(|line| !line.starts_with("-----")).collect();
    HeaderValue::from_str(base64.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::self_updating_version;

    #[test]
    fn only_the_slim_agent_updates_itself() {
        assert_eq!(self_updating_version("landfall-agent/0.2.0"), Some("0.2.0"));
        assert_eq!(self_updating_version("landfall-agent/0.2.0 (in landfall)"), None);
        assert_eq!(self_updating_version("OFFICIAL_1.8.1"), None);
    }
}
