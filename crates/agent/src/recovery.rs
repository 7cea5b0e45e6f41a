//! The ongoing-deployment tracking file: `<root>/ongoing-deployment/<deployment-id>`, holding
//! the HostCommandIdentifier of the command being run. Written before a command runs and
//! removed once its completion is sent, so an agent that died mid-command finds it at start and
//! fails that command at once (error code 7) instead of leaving the server to time it out.
//!
//! Beside it, `.<deployment-id>.processes` lists the hook scripts running now (process group,
//! and the start time and boot that tell the same process from a later one with its number),
//! written as each starts and ends. A hook runs in its own process group and outlives an agent
//! killed under it; the restarted agent ends those groups (SIGTERM, then SIGKILL) before it
//! reports the event, so a deployment's hooks never overlap the next one's. (The official
//! agent's tracking file stays as it writes it; it skips the hidden file.)

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::layout::{Layout, write_atomically};

/// Tracking files older than this are stale: their command has long been timed out.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A command an earlier run of the agent left unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub deployment_id: String,
    pub command_id: String,
}

pub fn start_tracking(layout: &Layout, deployment_id: &str, command_id: &str) -> io::Result<()> {
    write_atomically(&layout.tracking_file(deployment_id), command_id.as_bytes())
}

pub fn stop_tracking(layout: &Layout, deployment_id: &str) -> io::Result<()> {
    remove_if_there(&processes_file(layout, deployment_id))?;
    remove_if_there(&layout.tracking_file(deployment_id))
}

/// The newest tracking file younger than [`STALE_AFTER`], as of `now`. Stale files are
/// deleted; the others stay until [`clear`].
pub fn interrupted(layout: &Layout, now: SystemTime) -> io::Result<Option<Interrupted>> {
    let entries = match fs::read_dir(layout.ongoing_dir()) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut newest: Option<(SystemTime, Interrupted)> = None;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        if now.duration_since(modified).unwrap_or_default() >= STALE_AFTER {
            remove(&path);
            continue;
        }
        let command_id = fs::read_to_string(&path)?.trim().to_owned();
        if command_id.is_empty() {
            remove(&path);
            continue;
        }
        if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
            newest = Some((modified, Interrupted { deployment_id: name, command_id }));
        }
    }
    Ok(newest.map(|(_, interrupted)| interrupted))
}

/// One running hook script: its process (the leader of its own group) and what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookProcess {
    pub pid: i32,
    /// Clock ticks after boot at which it started (`/proc/PID/stat`, field 22).
    pub started: u64,
    pub boot: String,
}

impl HookProcess {
    /// The process `pid` as it is now, if it runs (a zombie does not).
    pub fn of(pid: i32) -> Option<HookProcess> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name (which may hold spaces and parentheses).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            return None;
        }
        let started = fields.get(19)?.parse().ok()?;
        Some(HookProcess { pid, started, boot: boot_id() })
    }

    /// Whether the process that was recorded is still the one running under its number.
    fn still_running(&self) -> bool {
        HookProcess::of(self.pid).is_some_and(|now| now == *self)
    }
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|id| id.trim().to_owned()).unwrap_or_default()
}

/// The hook scripts of one deployment running now, kept in its `.processes` file.
#[derive(Debug, Clone)]
pub struct HookProcesses {
    path: PathBuf,
    running: Arc<Mutex<Vec<HookProcess>>>,
}

impl HookProcesses {
    pub fn new(layout: &Layout, deployment_id: &str) -> HookProcesses {
        HookProcesses { path: processes_file(layout, deployment_id), running: Arc::default() }
    }

    /// Records a script that just started (its pid leads its own process group).
    pub fn started(&self, pid: u32) {
        let Some(process) = i32::try_from(pid).ok().and_then(HookProcess::of) else { return };
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        running.push(process);
        self.write(&running);
    }

    /// The script `pid` ended (what it left in the background is no longer the event's).
    pub fn ended(&self, pid: u32) {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        running.retain(|process| i64::from(process.pid) != i64::from(pid));
        self.write(&running);
    }

    fn write(&self, running: &[HookProcess]) {
        let text: String = running.iter().map(|p| format!("{} {} {}\n", p.pid, p.started, p.boot)).collect();
        let written = if running.is_empty() {
            remove_if_there(&self.path)
        } else {
            write_atomically(&self.path, text.as_bytes())
        };
        if let Err(error) = written {
            tracing::warn!(path = %self.path.display(), %error, "cannot record the running hook scripts");
        }
    }
}

fn processes_file(layout: &Layout, deployment_id: &str) -> PathBuf {
    layout.ongoing_dir().join(format!(".{deployment_id}.processes"))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The hook scripts an earlier run of the agent left running, as recorded.
pub fn recorded_processes(layout: &Layout) -> Vec<HookProcess> {
    let Ok(entries) = fs::read_dir(layout.ongoing_dir()) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.ends_with(".processes")) {
            continue;
        }
        for line in fs::read_to_string(entry.path()).unwrap_or_default().lines() {
            let mut fields = line.split_whitespace();
            let (Some(pid), Some(started), Some(boot)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            if let (Ok(pid), Ok(started)) = (pid.parse(), started.parse()) {
                found.push(HookProcess { pid, started, boot: boot.to_owned() });
            }
        }
    }
    found
}

/// Ends the process groups of hook scripts an earlier run left running: SIGTERM to each group,
/// SIGKILL once `grace` has passed for any still there. Returns how many were running.
pub async fn end_leftover_hooks(layout: &Layout, grace: Duration) -> usize {
    let running: Vec<HookProcess> = recorded_processes(layout).into_iter().filter(HookProcess::still_running).collect();
    for process in &running {
        tracing::warn!(pid = process.pid, "a hook script of the interrupted event is still running; ending it");
        let _ = killpg(Pid::from_raw(process.pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while running.iter().any(HookProcess::still_running) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for process in &running {
        // The whole group, for whatever ignored SIGTERM (the leader too, if it did).
        let _ = killpg(Pid::from_raw(process.pid), Signal::SIGKILL);
    }
    running.len()
}

/// Removes every tracking file, once the interrupted command has been reported.
pub fn clear(layout: &Layout) -> io::Result<()> {
    match fs::read_dir(layout.ongoing_dir()) {
        Ok(entries) => {
            for entry in entries.flatten() {
                remove(&entry.path());
            }
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

fn remove(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "cannot remove a tracking file");
    }
}
