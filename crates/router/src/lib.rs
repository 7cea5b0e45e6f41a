//! `landfall router`: serves one target group. It takes the group's desired state from the
//! server (a long poll), makes a data plane match it, and reports each backend's state back,
//! which is what BlockTraffic and AllowTraffic wait for. Two data planes implement
//! [`Dataplane`]:
//!
//! - [`builtin`]: Landfall's own reverse proxy (HTTP/1.1 and cleartext HTTP/2), with weights,
//!   active health checks and draining;
//! - [`haproxy`]: a running HAProxy, driven through its runtime API (servers added, weighted,
//!   drained, put in maintenance and removed), whose own health checks decide health.

pub mod builtin;
pub mod haproxy;
mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

use landfall_api::landfall::{
    GetRouterStateInput, ReportTargetHealthInput, TARGET_PREFIX, TargetGroupInfo, TargetGroupOutput, TargetReport,
};
use landfall_client::Client;

pub use table::{Health, Table};

/// What a router drives: it takes the desired state, does its periodic work, and says how each
/// backend stands.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// The target group `router` kind this data plane serves (`builtin`, `haproxy`).
    fn kind(&self) -> &'static str;
    /// Takes in the server's desired state for the group.
    async fn apply(&self, group: &TargetGroupInfo);
    /// Health checks, draining, converging: whatever is due now. Returns what the server
    /// should be told of each backend.
    async fn tick(&self) -> Vec<TargetReport>;
}

/// How often a data plane's `tick` runs.
const TICK: Duration = Duration::from_millis(200);
/// Reports are sent when something changed, and at least this often.
const REPORT_AT_LEAST_EVERY: Duration = Duration::from_secs(10);

/// Follows the server and drives `dataplane` until `shutdown` resolves.
pub async fn run(
    target_group: &str,
    api: Client,
    dataplane: Arc<dyn Dataplane>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // The group says which kind of router serves it.
    let input = GetRouterStateInput { name: Some(target_group.to_owned()), known_version: None };
    let group =
        api.call::<_, TargetGroupOutput>(&format!("{TARGET_PREFIX}.GetRouterState"), &input).await?.target_group;
    if group.router != dataplane.kind() {
        anyhow::bail!(
            "target group {target_group} is served by a {} router, not {}: start `landfall router` with {}",
            group.router,
            dataplane.kind(),
            if group.router == "haproxy" { "--haproxy-socket and --haproxy-backend" } else { "--listen" }
        );
    }
    dataplane.apply(&group).await;
    let api = Arc::new(api);
    // Aborted when this returns or is dropped, whichever comes first.
    let _tasks = AbortOnDrop(vec![
        tokio::spawn(follow_the_server(
            target_group.to_owned(),
            group.version,
            Arc::clone(&api),
            Arc::clone(&dataplane),
        )),
        tokio::spawn(report_forever(target_group.to_owned(), api, dataplane)),
    ]);
    shutdown.await;
    Ok(())
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Keeps the data plane in step with the server's desired state (from `version` on, which it
/// has already).
async fn follow_the_server(name: String, version: u64, api: Arc<Client>, dataplane: Arc<dyn Dataplane>) {
    let target = format!("{TARGET_PREFIX}.GetRouterState");
    let mut known_version = Some(version);
    loop {
        let input = GetRouterStateInput { name: Some(name.clone()), known_version };
        match api.call::<_, TargetGroupOutput>(&target, &input).await {
            Ok(output) => {
                if Some(output.target_group.version) != known_version {
                    known_version = Some(output.target_group.version);
                    dataplane.apply(&output.target_group).await;
                    tracing::info!(version = output.target_group.version, "target group state taken");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the target group's state; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Ticks the data plane and tells the server what changed (and everything, every few seconds,
/// so a restarted server hears from its routers).
async fn report_forever(name: String, api: Arc<Client>, dataplane: Arc<dyn Dataplane>) {
    let target = format!("{TARGET_PREFIX}.ReportTargetHealth");
    let mut last: Vec<TargetReport> = Vec::new();
    let mut last_sent = Instant::now();
    loop {
        let reports = dataplane.tick().await;
        if reports != last || last_sent.elapsed() > REPORT_AT_LEAST_EVERY {
            let input = ReportTargetHealthInput { name: Some(name.clone()), reports: Some(reports.clone()) };
            match api.call::<_, serde_json::Value>(&target, &input).await {
                Ok(_) => {
                    last = reports;
                    last_sent = Instant::now();
                }
                Err(error) => tracing::warn!(%error, "cannot report target health"),
            }
        }
        tokio::time::sleep(TICK).await;
    }
}
