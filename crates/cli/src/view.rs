//! Watching a deployment: a block redrawn in place on a terminal (a header, a progress bar for
//! the fleet, one line per host with its current lifecycle event), or one line per change when
//! the output is not a terminal. A host's failure is printed the moment it is seen, with the end
//! of its script's output, and stays on screen.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

use landfall_api::landfall::{GetLifecycleEventLogInput, GetLifecycleEventLogOutput};
use landfall_api::shapes::{DeploymentStatus, InstanceTarget, LifecycleEvent, LifecycleEventStatus, TargetStatus};
use landfall_client::Client;

use crate::api::{Snapshot, extension, snapshot};
use crate::term::{Output, Style, bar, duration};

/// How often the deployment is read again.
const POLL: Duration = Duration::from_millis(300);
/// How many lines of a failed script's output are shown.
const FAILURE_TAIL_LINES: usize = 15;
/// Enough of the end of a failed event's output for those lines.
const FAILURE_TAIL_BYTES: u64 = 64 * 1024;
/// Hosts shown in the live block; the rest are counted (the busy and failed ones come first).
const MAX_HOST_LINES: usize = 30;

/// Where one host stands: its state and the event it is at (or ended on).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostLine {
    pub name: String,
    pub state: TargetStatus,
    pub event: Option<String>,
    /// When the current event started, epoch milliseconds.
    pub since: Option<i64>,
}

pub(crate) fn host_line(target: &InstanceTarget) -> HostLine {
    let name = target.target_id.clone().unwrap_or_default();
    let state = target.status.clone().unwrap_or(TargetStatus::Pending);
    let events = target.lifecycle_events.as_deref().unwrap_or_default();
    let status = |e: &LifecycleEvent| e.status.clone().unwrap_or(LifecycleEventStatus::Pending);
    // The event in flight, else the one that failed, else the last one done.
    let current = events
        .iter()
        .find(|e| status(e) == LifecycleEventStatus::InProgress)
        .or_else(|| events.iter().find(|e| status(e) == LifecycleEventStatus::Failed))
        .or_else(|| events.iter().rev().find(|e| status(e) == LifecycleEventStatus::Succeeded));
    HostLine {
        name,
        state,
        event: current.and_then(|e| e.lifecycle_event_name.clone()),
        since: current.and_then(|e| e.start_time).map(|t| t.millis()),
    }
}

fn symbol(output: &Output, state: &TargetStatus) -> String {
    match state {
        TargetStatus::Succeeded | TargetStatus::Ready => output.paint(Style::Good, "ok"),
        TargetStatus::Failed => output.paint(Style::Bad, "!!"),
        TargetStatus::InProgress => output.paint(Style::Busy, ".."),
        _ => output.paint(Style::Dim, "--"),
    }
}

/// The live block: header, fleet bar, host lines.
pub(crate) fn block(output: &Output, snapshot: &Snapshot, elapsed: Duration, now_ms: i64) -> Vec<String> {
    let info = &snapshot.deployment;
    let lines: Vec<HostLine> = snapshot.targets.iter().map(host_line).collect();
    let done = lines
        .iter()
        .filter(|l| {
            matches!(
                l.state,
                TargetStatus::Succeeded | TargetStatus::Failed | TargetStatus::Skipped | TargetStatus::Ready
            )
        })
        .count();
    let failed = lines.iter().filter(|l| l.state == TargetStatus::Failed).count();
    let mut block = vec![
        format!(
            "{}  {}/{}  {}  {}",
            output.paint(Style::Bold, info.deployment_id.as_deref().unwrap_or_default()),
            info.application_name.as_deref().unwrap_or_default(),
            info.deployment_group_name.as_deref().unwrap_or_default(),
            snapshot.status(),
            duration(elapsed.as_secs_f64())
        ),
        format!(
            "{} {done}/{} hosts done{}",
            bar(done, lines.len(), 30),
            lines.len(),
            if failed > 0 { format!(", {failed} failed") } else { String::new() }
        ),
    ];
    let mut shown: Vec<&HostLine> = lines.iter().collect();
    // Busy and failed hosts first when they do not all fit.
    if shown.len() > MAX_HOST_LINES {
        shown.sort_by_key(|l| match l.state {
            TargetStatus::InProgress => 0,
            TargetStatus::Failed => 1,
            _ => 2,
        });
    }
    let width = shown.iter().map(|l| l.name.chars().count()).max().unwrap_or(0);
    for line in shown.iter().take(MAX_HOST_LINES) {
        let event = line.event.as_deref().unwrap_or("");
        let running = match (&line.state, line.since) {
            (TargetStatus::InProgress, Some(since)) => {
                format!(" ({})", duration((now_ms - since).max(0) as f64 / 1000.0))
            }
            _ => String::new(),
        };
        let text = format!(
            "  {} {:<width$}  {:<10}  {event}{running}",
            symbol(output, &line.state),
            line.name,
            line.state.as_str()
        );
        block.push(text.trim_end().to_owned());
    }
    if shown.len() > MAX_HOST_LINES {
        block.push(format!("  ... and {} more hosts", shown.len() - MAX_HOST_LINES));
    }
    block
}

/// The lines that report a failed lifecycle event: what failed, why, and the end of the
/// script's output (the whole log from the server when it has it, else the 2 KB tail).
async fn failure_report(
    client: &Client,
    output: &Output,
    deployment_id: &str,
    host: &str,
    event: &LifecycleEvent,
) -> Vec<String> {
    let name = event.lifecycle_event_name.as_deref().unwrap_or_default();
    let diagnostics = event.diagnostics.clone().unwrap_or_default();
    let mut lines = vec![format!(
        "{} {host} failed {name}: {}{}",
        output.paint(Style::Bad, "FAILED"),
        diagnostics.error_code.as_ref().map_or(String::new(), |c| format!("{c}: ")),
        diagnostics.message.as_deref().unwrap_or("(no message)")
    )];
    if let Some(script) = diagnostics.script_name.as_deref().filter(|s| !s.is_empty()) {
        lines.push(format!("  script: {script}"));
    }
    let input = GetLifecycleEventLogInput {
        deployment_id: Some(deployment_id.into()),
        target_id: Some(host.into()),
        lifecycle_event_name: Some(name.into()),
        tail_bytes: Some(FAILURE_TAIL_BYTES),
        ..Default::default()
    };
    let log = match extension::<_, GetLifecycleEventLogOutput>(client, "GetLifecycleEventLog", &input).await {
        Ok(got) if !got.log.is_empty() => got.log,
        _ => diagnostics.log_tail.unwrap_or_default(),
    };
    let all: Vec<&str> = log.lines().collect();
    for line in &all[all.len().saturating_sub(FAILURE_TAIL_LINES)..] {
        lines.push(format!("  | {line}"));
    }
    lines
}

/// Watches a deployment until it ends; returns its last snapshot.
pub(crate) async fn watch(client: &Client, output: &Output, deployment_id: &str) -> anyhow::Result<Snapshot> {
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    let mut drawn = 0usize;
    let mut reported: HashSet<(String, String)> = HashSet::new();
    let mut seen: HashMap<(String, String), LifecycleEventStatus> = HashMap::new();
    loop {
        let snapshot = snapshot(client, deployment_id).await?;
        let mut printed: Vec<String> = Vec::new();
        for target in &snapshot.targets {
            let host = target.target_id.clone().unwrap_or_default();
            for event in target.lifecycle_events.as_deref().unwrap_or_default() {
                let name = event.lifecycle_event_name.clone().unwrap_or_default();
                let status = event.status.clone().unwrap_or(LifecycleEventStatus::Pending);
                let key = (host.clone(), name.clone());
                if !output.terminal && status != LifecycleEventStatus::Pending && seen.get(&key) != Some(&status) {
                    printed.push(format!("{:>8}  {host}  {name}  {status}", duration(started.elapsed().as_secs_f64())));
                }
                seen.insert(key.clone(), status.clone());
                if status == LifecycleEventStatus::Failed && reported.insert(key) {
                    printed.extend(failure_report(client, output, deployment_id, &host, event).await);
                }
            }
        }
        if output.terminal {
            // Clear the block, print what must stay, then draw the block again below it.
            if drawn > 0 {
                write!(stdout, "\x1b[{drawn}F\x1b[J")?;
            }
            for line in &printed {
                writeln!(stdout, "{line}")?;
            }
            let now_ms = landfall_api::Timestamp::from_system(std::time::SystemTime::now()).millis();
            let lines = block(output, &snapshot, started.elapsed(), now_ms);
            for line in &lines {
                writeln!(stdout, "{line}")?;
            }
            drawn = lines.len();
        } else {
            for line in &printed {
                writeln!(stdout, "{line}")?;
            }
        }
        stdout.flush()?;
        if snapshot.is_over() {
            return Ok(snapshot);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The closing lines of a watched (or inspected) deployment: its outcome, why it failed, and
/// what rolled it back.
pub(crate) fn summary(output: &Output, snapshot: &Snapshot) -> Vec<String> {
    let info = &snapshot.deployment;
    let id = info.deployment_id.as_deref().unwrap_or_default();
    let status = snapshot.status();
    let took = match (info.create_time, info.complete_time) {
        (Some(created), Some(completed)) => {
            format!(" in {}", duration((completed.millis() - created.millis()) as f64 / 1000.0))
        }
        _ => String::new(),
    };
    let overview = info.deployment_overview.clone().unwrap_or_default();
    let counts = [
        ("succeeded", overview.succeeded),
        ("failed", overview.failed),
        ("skipped", overview.skipped),
        ("in progress", overview.in_progress),
        ("pending", overview.pending),
    ]
    .iter()
    .filter_map(|(word, count)| count.filter(|c| *c > 0).map(|c| format!("{c} {word}")))
    .collect::<Vec<_>>()
    .join(", ");
    let style = match &info.status {
        Some(DeploymentStatus::Succeeded) => Style::Good,
        Some(DeploymentStatus::Failed | DeploymentStatus::Stopped) => Style::Bad,
        _ => Style::Busy,
    };
    let mut lines = vec![format!(
        "{id} {}{took} ({} host{}{})",
        output.paint(style, status),
        snapshot.targets.len(),
        if snapshot.targets.len() == 1 { "" } else { "s" },
        if counts.is_empty() { String::new() } else { format!(": {counts}") }
    )];
    if let Some(error) = &info.error_information {
        lines.push(format!(
            "  {}: {}",
            error.code.as_ref().map_or("error", |c| c.as_str()),
            error.message.as_deref().unwrap_or_default()
        ));
    }
    if let Some(rollback) = &info.rollback_info {
        if let Some(by) = &rollback.rollback_deployment_id {
            lines.push(format!("  rolled back by {by} (landfall status {by})"));
        } else if let Some(of) = &rollback.rollback_triggering_deployment_id {
            lines.push(format!("  a rollback of {of}"));
        } else if let Some(message) = &rollback.rollback_message {
            lines.push(format!("  {message}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_api::Timestamp;
    use landfall_api::shapes::{LifecycleEventStatus, TargetStatus};

    fn event(name: &str, status: LifecycleEventStatus, start: Option<i64>) -> LifecycleEvent {
        LifecycleEvent {
            lifecycle_event_name: Some(name.into()),
            status: Some(status),
            start_time: start.map(Timestamp),
            ..Default::default()
        }
    }

    #[test]
    fn a_host_shows_the_event_in_flight_else_the_failure_else_the_last_done() {
        use LifecycleEventStatus::*;
        let mut target = InstanceTarget {
            target_id: Some("web-1".into()),
            status: Some(TargetStatus::InProgress),
            lifecycle_events: Some(vec![
                event("DownloadBundle", Succeeded, Some(1_000)),
                event("Install", InProgress, Some(2_000)),
                event("ApplicationStart", Pending, None),
            ]),
            ..Default::default()
        };
        let line = host_line(&target);
        assert_eq!((line.event.as_deref(), line.since), (Some("Install"), Some(2_000)));
        target.lifecycle_events.as_mut().unwrap()[1].status = Some(Failed);
        target.lifecycle_events.as_mut().unwrap()[2].status = Some(Skipped);
        assert_eq!(host_line(&target).event.as_deref(), Some("Install"));
        target.lifecycle_events =
            Some(vec![event("DownloadBundle", Succeeded, None), event("Install", Succeeded, None)]);
        assert_eq!(host_line(&target).event.as_deref(), Some("Install"));
        target.lifecycle_events = Some(vec![event("DownloadBundle", Pending, None)]);
        assert_eq!(host_line(&target).event, None);
    }

    #[test]
    fn the_block_counts_the_fleet_and_lists_each_host() {
        use LifecycleEventStatus::*;
        let output = Output { json: false, terminal: true, color: false };
        let target = |name: &str, status: TargetStatus, events: Vec<LifecycleEvent>| InstanceTarget {
            target_id: Some(name.into()),
            status: Some(status),
            lifecycle_events: Some(events),
            ..Default::default()
        };
        let snapshot = Snapshot {
            deployment: landfall_api::shapes::DeploymentInfo {
                deployment_id: Some("d-ABC".into()),
                application_name: Some("shop".into()),
                deployment_group_name: Some("web".into()),
                status: Some(landfall_api::shapes::DeploymentStatus::InProgress),
                ..Default::default()
            },
            targets: vec![
                target("web-1", TargetStatus::Succeeded, vec![event("ValidateService", Succeeded, Some(0))]),
                target("web-2", TargetStatus::InProgress, vec![event("Install", InProgress, Some(10_000))]),
                target("web-3", TargetStatus::Pending, vec![event("DownloadBundle", Pending, None)]),
            ],
        };
        let lines = block(&output, &snapshot, Duration::from_secs(12), 13_500);
        assert_eq!(lines[0], "d-ABC  shop/web  InProgress  12.0s");
        assert_eq!(lines[1], format!("{} 1/3 hosts done", bar(1, 3, 30)));
        assert_eq!(lines[2], "  ok web-1  Succeeded   ValidateService");
        assert_eq!(lines[3], "  .. web-2  InProgress  Install (3.5s)");
        assert_eq!(lines[4], "  -- web-3  Pending");
    }
}
