//! `landfall logs`: the output of a deployment's hook scripts, per host and lifecycle event,
//! from the server (which keeps the start and the end of each, up to its limit, where CodeDeploy
//! keeps a 2 KB tail), read a page at a time; with `--follow`, printed as it arrives until the
//! deployment ends.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use landfall_api::landfall::{GetLifecycleEventLogInput, GetLifecycleEventLogOutput};
use landfall_api::shapes::LifecycleEventStatus;
use landfall_client::Client;
use serde::Serialize;

use crate::api::{Snapshot, extension, snapshot};
use crate::term::Output;

pub struct LogsRequest {
    pub deployment_id: String,
    pub host: Option<String>,
    pub event: Option<String>,
    pub follow: bool,
}

/// One host's output for one event.
#[derive(Debug, Serialize)]
struct EventLog {
    host: String,
    event: String,
    status: String,
    log: String,
}

/// Which (host, event, status) pairs the request covers, in the deployment's order: events
/// that have started (or ended), on the hosts asked for.
fn streams(snapshot: &Snapshot, request: &LogsRequest) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for target in &snapshot.targets {
        let host = target.target_id.clone().unwrap_or_default();
        if request.host.as_ref().is_some_and(|h| *h != host) {
            continue;
        }
        for event in target.lifecycle_events.as_deref().unwrap_or_default() {
            let name = event.lifecycle_event_name.clone().unwrap_or_default();
            let status = event.status.clone().unwrap_or(LifecycleEventStatus::Pending);
            if request.event.as_ref().is_some_and(|e| !e.eq_ignore_ascii_case(&name)) {
                continue;
            }
            if matches!(status, LifecycleEventStatus::Pending | LifecycleEventStatus::Skipped) {
                continue;
            }
            out.push((host.clone(), name, status.to_string()));
        }
    }
    out
}

pub async fn logs(client: &Client, output: &Output, request: &LogsRequest) -> anyhow::Result<()> {
    let first = snapshot(client, &request.deployment_id).await?;
    if let Some(host) = &request.host
        && !first.targets.iter().any(|t| t.target_id.as_deref() == Some(host))
    {
        anyhow::bail!("deployment {} has no host {host}", request.deployment_id);
    }
    if output.json {
        let mut all = Vec::new();
        for (host, event, status) in streams(&first, request) {
            let mut log = String::new();
            read_pages(client, &request.deployment_id, &host, &event, 0, |got| {
                log.push_str(&got.log);
                Ok(())
            })
            .await?;
            all.push(EventLog { host, event, status, log });
        }
        return output.json(&all);
    }
    // Offsets already printed, per (host, event).
    let mut printed: HashMap<(String, String), u64> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut stdout = std::io::stdout();
    let mut snapshot = first;
    loop {
        let over = snapshot.is_over();
        for (host, event, _) in streams(&snapshot, request) {
            let key = (host.clone(), event.clone());
            let offset = printed.get(&key).copied().unwrap_or(0);
            let next = read_pages(client, &request.deployment_id, &host, &event, offset, |got| {
                if !got.log.is_empty() {
                    if current.as_ref() != Some(&key) {
                        writeln!(stdout, "==> {host} {event} <==")?;
                        current = Some(key.clone());
                    }
                    write!(stdout, "{}", got.log)?;
                    if !got.log.ends_with('\n') && got.complete {
                        writeln!(stdout)?;
                    }
                }
                Ok(())
            })
            .await?;
            printed.insert(key, next);
        }
        stdout.flush()?;
        if !request.follow || over {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        snapshot = crate::api::snapshot(client, &request.deployment_id).await?;
    }
}

/// Reads an event's output a page at a time from `offset` until what the server has is read,
/// handing each page to `each`; returns the offset to go on from.
async fn read_pages(
    client: &Client,
    deployment_id: &str,
    host: &str,
    event: &str,
    mut offset: u64,
    mut each: impl FnMut(&GetLifecycleEventLogOutput) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    loop {
        let got = read(client, deployment_id, host, event, offset).await?;
        each(&got)?;
        offset = got.next_offset.unwrap_or(offset + got.log.len() as u64);
        if got.log.is_empty() || offset >= got.size.unwrap_or(0) {
            return Ok(offset);
        }
    }
}

async fn read(
    client: &Client,
    deployment_id: &str,
    host: &str,
    event: &str,
    offset: u64,
) -> anyhow::Result<GetLifecycleEventLogOutput> {
    let input = GetLifecycleEventLogInput {
        deployment_id: Some(deployment_id.into()),
        target_id: Some(host.into()),
        lifecycle_event_name: Some(event.into()),
        offset: Some(offset),
        ..Default::default()
    };
    Ok(extension(client, "GetLifecycleEventLog", &input).await?)
}
