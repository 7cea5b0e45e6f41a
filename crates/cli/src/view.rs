//! Watching a deployment: a block redrawn in place on a terminal (a header, a progress bar for
//! the fleet, one line per host with its current lifecycle event), or one line per change when
//! the output is not a terminal. A host's failure is printed the moment it is seen, with the end
//! of its script's output, and stays on screen.
//!
//! A fleet larger than a screenful is not read whole at every poll: it is followed through the
//! deployment's timeline (only the entries after the last one seen), shown as counts per
//! lifecycle event with the failed and longest-running hosts, and, when the output is not a
//! terminal, as one summary line per poll in which something changed.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

use landfall_api::landfall::{
    DeploymentEventInfo, DeploymentEventType, GetLifecycleEventLogInput, GetLifecycleEventLogOutput,
    ListDeploymentEventsInput, ListDeploymentEventsOutput,
};
use landfall_api::shapes::{
    DeploymentInfo, DeploymentStatus, GetDeploymentInput, GetDeploymentOutput, GetDeploymentTargetInput,
    GetDeploymentTargetOutput, InstanceTarget, LifecycleEvent, LifecycleEventStatus, TargetStatus,
};
use landfall_client::Client;

use crate::api::{Snapshot, call, extension, with_targets};
use crate::term::{Output, Style, bar, duration};

/// How often the deployment is read again.
const POLL: Duration = Duration::from_millis(300);
/// How many lines of a failed script's output are shown.
const FAILURE_TAIL_LINES: usize = 15;
/// Enough of the end of a failed event's output for those lines.
const FAILURE_TAIL_BYTES: u64 = 64 * 1024;
/// Hosts shown in the live block; the rest are counted (the busy and failed ones come first).
/// A fleet of more hosts than this is followed through its timeline instead of read whole.
const MAX_HOST_LINES: usize = 30;
/// A large fleet's failures reported in full (event, reason, script output); later ones are
/// counted, and `landfall status` lists them all.
const MAX_FAILURE_REPORTS: usize = 10;
/// A large fleet's summary line, when the output is not a terminal, at most this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(1);

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

/// The block's first two lines: the deployment, and a bar of its (done, failed, all) hosts.
fn header(
    output: &Output,
    snapshot: &Snapshot,
    elapsed: Duration,
    (done, failed, total): (usize, usize, usize),
) -> Vec<String> {
    let info = &snapshot.deployment;
    vec![
        format!(
            "{}  {}/{}  {}  {}",
            output.paint(Style::Bold, info.deployment_id.as_deref().unwrap_or_default()),
            info.application_name.as_deref().unwrap_or_default(),
            info.deployment_group_name.as_deref().unwrap_or_default(),
            snapshot.status(),
            duration(elapsed.as_secs_f64())
        ),
        format!(
            "{} {done}/{total} hosts done{}",
            bar(done, total, 30),
            if failed > 0 { format!(", {failed} failed") } else { String::new() }
        ),
    ]
}

/// A host's line in the block: its state, event, and for one in flight how long it has run.
fn host_text(output: &Output, line: &HostLine, width: usize, now_ms: i64) -> String {
    let running = match (&line.state, line.since) {
        (TargetStatus::InProgress, Some(since)) => format!(" ({})", duration((now_ms - since).max(0) as f64 / 1000.0)),
        _ => String::new(),
    };
    let text = format!(
        "  {} {:<width$}  {:<10}  {}{running}",
        symbol(output, &line.state),
        line.name,
        line.state.as_str(),
        line.event.as_deref().unwrap_or("")
    );
    text.trim_end().to_owned()
}

/// The live block: header, fleet bar, host lines.
pub(crate) fn block(output: &Output, snapshot: &Snapshot, elapsed: Duration, now_ms: i64) -> Vec<String> {
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
    let mut block = header(output, snapshot, elapsed, (done, failed, lines.len()));
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
        block.push(host_text(output, line, width, now_ms));
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

/// How many targets the deployment has, as its overview counts them.
pub(crate) fn fleet_size(info: &DeploymentInfo) -> usize {
    let overview = info.deployment_overview.clone().unwrap_or_default();
    [overview.pending, overview.in_progress, overview.succeeded, overview.failed, overview.skipped, overview.ready]
        .iter()
        .flatten()
        .sum::<i64>()
        .max(0) as usize
}

/// Watches a deployment until it ends; returns its last snapshot (a large fleet's without its
/// targets: its overview counts them).
pub(crate) async fn watch(client: &Client, output: &Output, deployment_id: &str) -> anyhow::Result<Snapshot> {
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    let mut drawn = 0usize;
    let mut small = WholeFleet::default();
    let mut large: Option<TimelineFleet> = None;
    loop {
        let input = GetDeploymentInput { deployment_id: Some(deployment_id.into()) };
        let got: GetDeploymentOutput = call(client, "GetDeployment", &input).await?;
        let deployment = got.deployment_info.unwrap_or_default();
        if large.is_none() && fleet_size(&deployment) > MAX_HOST_LINES {
            large = Some(TimelineFleet::default());
        }
        let elapsed = started.elapsed();
        let now_ms = landfall_api::Timestamp::from_system(std::time::SystemTime::now()).millis();
        let (snapshot, printed, lines) = match &mut large {
            Some(fleet) => {
                let snapshot = Snapshot { deployment, targets: Vec::new() };
                let printed = fleet.news(client, output, deployment_id, &snapshot, elapsed).await?;
                let lines = fleet.block(output, &snapshot, elapsed, now_ms);
                (snapshot, printed, lines)
            }
            None => {
                let snapshot = with_targets(client, deployment_id, deployment).await?;
                let printed = small.news(client, output, deployment_id, &snapshot, elapsed).await;
                let lines = block(output, &snapshot, elapsed, now_ms);
                (snapshot, printed, lines)
            }
        };
        drawn = redraw(&mut stdout, output, drawn, &printed, &lines)?;
        if snapshot.is_over() {
            return Ok(snapshot);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A small fleet, read whole at every poll: what each host's events were when last seen, and
/// the failures already reported.
#[derive(Default)]
struct WholeFleet {
    seen: HashMap<(String, String), LifecycleEventStatus>,
    reported: HashSet<(String, String)>,
}

impl WholeFleet {
    /// The lines that must stay: each failure with its script output, and when the output is not
    /// a terminal, each lifecycle event that changed.
    async fn news(
        &mut self,
        client: &Client,
        output: &Output,
        deployment_id: &str,
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> Vec<String> {
        let mut printed = Vec::new();
        for target in &snapshot.targets {
            let host = target.target_id.clone().unwrap_or_default();
            for event in target.lifecycle_events.as_deref().unwrap_or_default() {
                let name = event.lifecycle_event_name.clone().unwrap_or_default();
                let status = event.status.clone().unwrap_or(LifecycleEventStatus::Pending);
                let key = (host.clone(), name.clone());
                if !output.terminal && status != LifecycleEventStatus::Pending && self.seen.get(&key) != Some(&status) {
                    printed.push(format!("{:>8}  {host}  {name}  {status}", duration(elapsed.as_secs_f64())));
                }
                self.seen.insert(key.clone(), status.clone());
                if status == LifecycleEventStatus::Failed && self.reported.insert(key) {
                    printed.extend(failure_report(client, output, deployment_id, &host, event).await);
                }
            }
        }
        printed
    }
}

/// Prints what must stay (`printed`) and, on a terminal, the live block below it in place of
/// the `drawn` lines of the last one; returns how many lines the block now takes.
fn redraw(
    stdout: &mut std::io::Stdout,
    output: &Output,
    drawn: usize,
    printed: &[String],
    block: &[String],
) -> anyhow::Result<usize> {
    if output.terminal && drawn > 0 {
        write!(stdout, "\x1b[{drawn}F\x1b[J")?;
    }
    for line in printed {
        writeln!(stdout, "{line}")?;
    }
    if output.terminal {
        for line in block {
            writeln!(stdout, "{line}")?;
        }
    }
    stdout.flush()?;
    Ok(if output.terminal { block.len() } else { 0 })
}

/// The failure report of `event` on `host`, read with the target (for its diagnostics).
async fn failure_of(client: &Client, output: &Output, deployment_id: &str, host: &str, event: &str) -> Vec<String> {
    let input = GetDeploymentTargetInput { deployment_id: Some(deployment_id.into()), target_id: Some(host.into()) };
    let target = call::<_, GetDeploymentTargetOutput>(client, "GetDeploymentTarget", &input).await;
    let lifecycle = target
        .ok()
        .and_then(|got| got.deployment_target?.instance_target?.lifecycle_events)
        .and_then(|events| events.into_iter().find(|e| e.lifecycle_event_name.as_deref() == Some(event)))
        .unwrap_or_else(|| LifecycleEvent { lifecycle_event_name: Some(event.into()), ..Default::default() });
    failure_report(client, output, deployment_id, host, &lifecycle).await
}

/// Hosts done (or ready), failed, and in all, as the deployment's overview counts them.
fn progress(info: &DeploymentInfo) -> (usize, usize, usize) {
    let overview = info.deployment_overview.clone().unwrap_or_default();
    let count = |n: Option<i64>| n.unwrap_or(0).max(0) as usize;
    let failed = count(overview.failed);
    let done = count(overview.succeeded) + failed + count(overview.skipped) + count(overview.ready);
    (done, failed, fleet_size(info))
}

/// A large fleet as its timeline tells it: each host's state and lifecycle event, brought up
/// to date from the entries after the last one read.
#[derive(Default)]
struct TimelineFleet {
    after: i64,
    hosts: HashMap<String, HostLine>,
    failures: usize,
    /// When the last summary line was printed (output not a terminal), and what it said.
    last_summary: Option<(Instant, String)>,
}

impl TimelineFleet {
    /// Brings the fleet up to date; returns the lines that must stay: the first failures in
    /// full, and when the output is not a terminal, a summary line when the counts moved (at most
    /// one a second, and the last one), not a line per host event.
    async fn news(
        &mut self,
        client: &Client,
        output: &Output,
        deployment_id: &str,
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let mut printed = Vec::new();
        for (host, event) in self.catch_up(client, deployment_id).await? {
            self.failures += 1;
            if self.failures <= MAX_FAILURE_REPORTS {
                printed.extend(failure_of(client, output, deployment_id, &host, &event).await);
            } else if self.failures == MAX_FAILURE_REPORTS + 1 {
                printed.push(format!("(more hosts failed: landfall status {deployment_id} lists them)"));
            }
        }
        if !output.terminal {
            let counts = self.counts(&snapshot.deployment);
            let due = self.last_summary.as_ref().is_none_or(|(at, _)| at.elapsed() >= SUMMARY_EVERY);
            let changed = self.last_summary.as_ref().is_none_or(|(_, last)| *last != counts);
            if changed && (due || snapshot.is_over()) {
                printed.push(format!("{:>8}  {counts}", duration(elapsed.as_secs_f64())));
                self.last_summary = Some((Instant::now(), counts));
            }
        }
        Ok(printed)
    }

    /// Reads the entries written since the last call; returns the (host, event) pairs that
    /// failed in them.
    async fn catch_up(&mut self, client: &Client, deployment_id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut failed = Vec::new();
        loop {
            let input = ListDeploymentEventsInput {
                deployment_id: Some(deployment_id.into()),
                after_sequence: Some(self.after),
            };
            let page: ListDeploymentEventsOutput = extension(client, "ListDeploymentEvents", &input).await?;
            for entry in &page.events {
                self.after = self.after.max(entry.sequence);
                failed.extend(self.apply(entry));
            }
            if page.events.is_empty() || page.complete {
                return Ok(failed);
            }
        }
    }

    /// Takes one entry into account; returns the hosts whose event it says failed.
    fn apply(&mut self, entry: &DeploymentEventInfo) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        for host in &entry.instance_ids {
            let line = self.hosts.entry(host.clone()).or_insert_with(|| HostLine {
                name: host.clone(),
                state: TargetStatus::Pending,
                event: None,
                since: None,
            });
            match entry.event_type {
                DeploymentEventType::LifecycleEvent => {
                    let event = entry.lifecycle_event.clone();
                    match entry.status.as_deref() {
                        Some("InProgress") => (line.event, line.since) = (event, Some(entry.time.millis())),
                        Some("Failed") => {
                            failed.push((host.clone(), event.clone().unwrap_or_default()));
                            (line.event, line.since) = (event, None);
                        }
                        // A failed host keeps showing the event it failed on.
                        _ if line.state != TargetStatus::Failed => (line.event, line.since) = (event, None),
                        _ => {}
                    }
                }
                DeploymentEventType::InstanceStatusChanged => {
                    if let Some(status) = entry.status.as_deref() {
                        line.state = TargetStatus::from(status);
                    }
                }
                _ => {}
            }
        }
        failed
    }

    /// The hosts in flight counted by the lifecycle event they are at, most first.
    fn running(&self) -> Vec<(String, usize)> {
        let mut running: Vec<(String, usize)> = Vec::new();
        for line in self.hosts.values().filter(|l| l.state == TargetStatus::InProgress) {
            let event = line.event.clone().unwrap_or_else(|| "starting".into());
            match running.iter_mut().find(|(name, _)| *name == event) {
                Some((_, n)) => *n += 1,
                None => running.push((event, 1)),
            }
        }
        running.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        running
    }

    /// One line for the whole fleet: hosts done, failed, and in flight by lifecycle event.
    fn counts(&self, info: &DeploymentInfo) -> String {
        let (done, failed, total) = progress(info);
        let running: Vec<String> = self.running().iter().map(|(event, n)| format!("{event} {n}")).collect();
        format!(
            "{done}/{total} hosts done{}{}",
            if failed > 0 { format!(", {failed} failed") } else { String::new() },
            if running.is_empty() { String::new() } else { format!("; running: {}", running.join(", ")) }
        )
    }

    /// The live block: the header and bar (from the deployment's overview), the hosts in
    /// flight counted by lifecycle event, then the failed and the longest-running hosts.
    fn block(&self, output: &Output, snapshot: &Snapshot, elapsed: Duration, now_ms: i64) -> Vec<String> {
        let running = self.running();
        let mut block = header(output, snapshot, elapsed, progress(&snapshot.deployment));
        if !running.is_empty() {
            let counts: Vec<String> = running.iter().map(|(event, n)| format!("{event} {n}")).collect();
            block.push(format!("  running: {}", counts.join(", ")));
        }
        let mut shown: Vec<&HostLine> = self
            .hosts
            .values()
            .filter(|l| matches!(l.state, TargetStatus::Failed | TargetStatus::InProgress))
            .collect();
        // Failed first, then the longest in their event.
        shown.sort_by_key(|l| (l.state != TargetStatus::Failed, l.since.unwrap_or(i64::MAX), l.name.clone()));
        let width = shown.iter().take(MAX_HOST_LINES / 3).map(|l| l.name.chars().count()).max().unwrap_or(0);
        for line in shown.iter().take(MAX_HOST_LINES / 3) {
            block.push(host_text(output, line, width, now_ms));
        }
        block
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
    // A large fleet's watch keeps no targets: its overview counts them.
    let hosts = if snapshot.targets.is_empty() { fleet_size(info) } else { snapshot.targets.len() };
    let mut lines = vec![format!(
        "{id} {}{took} ({hosts} host{}{})",
        output.paint(style, status),
        if hosts == 1 { "" } else { "s" },
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

    #[test]
    fn a_large_fleet_is_counted_from_its_timeline() {
        use landfall_api::landfall::{DeploymentEventInfo, DeploymentEventType};
        let entry = |sequence, kind, host: &str, status: &str, event: Option<&str>| DeploymentEventInfo {
            sequence,
            deployment_id: "d-ABC".into(),
            time: Timestamp(sequence * 1_000),
            event_type: kind,
            status: Some(status.into()),
            instance_ids: vec![host.into()],
            lifecycle_event: event.map(str::to_owned),
            related_deployment_id: None,
            message: String::new(),
        };
        use DeploymentEventType::{InstanceStatusChanged as Host, LifecycleEvent as Event};
        let mut fleet = TimelineFleet::default();
        let entries = [
            entry(1, Host, "web-1", "InProgress", None),
            entry(2, Event, "web-1", "InProgress", Some("Install")),
            entry(3, Host, "web-2", "InProgress", None),
            entry(4, Event, "web-2", "InProgress", Some("Install")),
            entry(5, Host, "web-3", "InProgress", None),
            entry(6, Event, "web-3", "InProgress", Some("ValidateService")),
            entry(7, Event, "web-3", "Failed", Some("ValidateService")),
            entry(8, Host, "web-3", "Failed", None),
        ];
        let failed: Vec<_> = entries.iter().flat_map(|e| fleet.apply(e)).collect();
        assert_eq!(failed, [("web-3".to_owned(), "ValidateService".to_owned())]);
        let info = landfall_api::shapes::DeploymentInfo {
            deployment_id: Some("d-ABC".into()),
            status: Some(landfall_api::shapes::DeploymentStatus::InProgress),
            deployment_overview: Some(landfall_api::shapes::DeploymentOverview {
                pending: Some(37),
                in_progress: Some(2),
                failed: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fleet.counts(&info), "1/40 hosts done, 1 failed; running: Install 2");
        let output = Output { json: false, terminal: true, color: false };
        let snapshot = Snapshot { deployment: info, targets: Vec::new() };
        let lines = fleet.block(&output, &snapshot, Duration::from_secs(9), 9_000);
        assert_eq!(lines[1], format!("{} 1/40 hosts done, 1 failed", bar(1, 40, 30)));
        assert_eq!(lines[2], "  running: Install 2");
        // The failed host first, then the hosts longest in their event.
        assert_eq!(lines[3], "  !! web-3  Failed      ValidateService");
        assert_eq!(lines[4], "  .. web-1  InProgress  Install (7.0s)");
        assert_eq!(lines[5], "  .. web-2  InProgress  Install (5.0s)");
    }
}
