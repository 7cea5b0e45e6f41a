//! The ongoing-deployment tracking file: `<root>/ongoing-deployment/<deployment-id>`, holding
//! the HostCommandIdentifier of the command being run. Written before a command runs and
//! removed once its completion is sent, so an agent that died mid-command finds it at start and
//! fails that command at once (error code 7) instead of leaving the server to time it out.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

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
    match fs::remove_file(layout.tracking_file(deployment_id)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
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
