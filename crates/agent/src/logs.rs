//! Where a lifecycle event's output goes: every line to the deployment's `logs/scripts.log`
//! (`YYYY-MM-DD HH:MM:SS [stdout]line`), to the host-wide deployments log
//! (`[YYYY-MM-DD HH:MM:SS.mmm] [d-ID][stdout]line`), to the in-memory tail reported when the
//! event fails, and to the server, which keeps all of it (PostHostCommandUpdate with
//! `LANDFALL/LOG` chunks). Times are UTC.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use landfall_commands::{LogChunk, MAX_PAYLOAD_CHARS};
use tokio::sync::mpsc;

use crate::client::CommandService;
use crate::time::Stamp;

/// The failure diagnostics' `log` stays under this many characters.
pub const TAIL_CHARS: usize = 2048;
/// The deployments log is rotated at this size, keeping this many old files (as the official
/// agent: 8 × 64 MiB).
const DEPLOYMENTS_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEPLOYMENTS_LOG_KEEP: usize = 8;
/// How often streamed output is sent.
pub const STREAM_INTERVAL: Duration = Duration::from_millis(250);

/// The most recent whole lines of an event, under [`TAIL_CHARS`] characters in total (newlines
/// included). Older lines are dropped first; a single line too long to fit is cut rather than
/// leaving the tail empty (the official agent sends an empty tail then).
#[derive(Debug, Default, Clone)]
pub struct LogTail {
    lines: VecDeque<String>,
    chars: usize,
}

impl LogTail {
    pub fn push(&mut self, line: &str) {
        let mut line = format!("{line}\n");
        let mut count = line.chars().count();
        if count >= TAIL_CHARS {
            const MARK: &str = "...\n";
            let keep = TAIL_CHARS - 1 - MARK.len();
            line = line.chars().take(keep).collect::<String>() + MARK;
            count = line.chars().count();
        }
        self.lines.push_back(line);
        self.chars += count;
        while self.chars >= TAIL_CHARS {
            match self.lines.pop_front() {
                Some(old) => self.chars -= old.chars().count(),
                None => break,
            }
        }
    }

    pub fn text(&self) -> String {
        self.lines.iter().map(String::as_str).collect()
    }
}

/// The host-wide deployments log, rotated by size.
#[derive(Debug)]
pub struct DeploymentsLog {
    path: PathBuf,
    /// The open file and its size, once something was written.
    open: Option<(File, u64)>,
}

impl DeploymentsLog {
    pub fn new(path: PathBuf) -> DeploymentsLog {
        DeploymentsLog { path, open: None }
    }

    fn append(&mut self, deployment_id: &str, text: &str, stamp: &Stamp) -> std::io::Result<()> {
        let full = self.open.as_ref().is_none_or(|(_, size)| *size >= DEPLOYMENTS_LOG_MAX_BYTES);
        if full {
            self.open = None;
            let (file, size) = self.open_file()?;
            self.open = Some(if size >= DEPLOYMENTS_LOG_MAX_BYTES {
                drop(file);
                self.rotate();
                self.open_file()?
            } else {
                (file, size)
            });
        }
        if let Some((file, size)) = &mut self.open {
            let line = format!("[{}] [{deployment_id}]{text}\n", stamp.with_millis());
            file.write_all(line.as_bytes())?;
            *size += line.len() as u64;
        }
        Ok(())
    }

    fn open_file(&self) -> std::io::Result<(File, u64)> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    fn rotate(&self) {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = fs::remove_file(numbered(DEPLOYMENTS_LOG_KEEP));
        for n in (1..DEPLOYMENTS_LOG_KEEP).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        let _ = fs::rename(&self.path, numbered(1));
    }
}

/// One command's log: scripts.log, the deployments log, the tail and the stream to the server.
pub struct EventLog {
    deployment_id: String,
    scripts_log: Option<PathBuf>,
    scripts_file: Option<File>,
    deployments_log: Option<DeploymentsLog>,
    tail: LogTail,
    stream: Option<mpsc::UnboundedSender<String>>,
}

impl EventLog {
    pub fn new(
        deployment_id: &str,
        deployments_log: Option<DeploymentsLog>,
        stream: Option<mpsc::UnboundedSender<String>>,
    ) -> EventLog {
        EventLog {
            deployment_id: deployment_id.to_owned(),
            scripts_log: None,
            scripts_file: None,
            deployments_log,
            tail: LogTail::default(),
            stream,
        }
    }

    /// A log that only keeps the tail (for tests and for commands without a deployment).
    pub fn in_memory() -> EventLog {
        EventLog::new("", None, None)
    }

    /// From now on, lines also go to this deployment's `logs/scripts.log`.
    pub fn write_scripts_log_to(&mut self, path: &Path) {
        if self.scripts_log.as_deref() != Some(path) {
            self.scripts_log = Some(path.to_owned());
            self.scripts_file = None;
        }
    }

    /// Records one line (`[stdout]...`, `[stderr]...`, `LifecycleEvent - X`, `Script - loc`).
    pub fn line(&mut self, text: &str) {
        let text = text.trim_end_matches(['\n', '\r']);
        let stamp = Stamp::now();
        self.tail.push(text);
        if let Some(path) = &self.scripts_log {
            if self.scripts_file.is_none() {
                self.scripts_file = path
                    .parent()
                    .map(fs::create_dir_all)
                    .transpose()
                    .and_then(|_| OpenOptions::new().create(true).append(true).open(path))
                    .map_err(|error| tracing::warn!("cannot write {}: {error}", path.display()))
                    .ok();
            }
            if let Some(file) = &mut self.scripts_file {
                let _ = writeln!(file, "{} {text}", stamp.seconds);
            }
        }
        if let Some(log) = &mut self.deployments_log
            && let Err(error) = log.append(&self.deployment_id, text, &stamp)
        {
            tracing::warn!("cannot write {}: {error}", log.path.display());
        }
        if let Some(stream) = &self.stream {
            let _ = stream.send(format!("{text}\n"));
        }
    }

    pub fn tail(&self) -> String {
        self.tail.text()
    }
}

/// Sends a command's output to the server as it comes: lines gathered for
/// [`STREAM_INTERVAL`], then sent as numbered chunks each within the envelope's 8192-character
/// payload. Returns once `lines` is closed and everything is sent. A chunk the server refuses,
/// or cannot take after a few tries, ends the streaming of this command (the output is on disk
/// anyway): a lost log must neither fail the deployment nor hold its completion back.
pub async fn stream_to_server<S: CommandService>(
    service: &S,
    command_id: &str,
    mut lines: mpsc::UnboundedReceiver<String>,
    interval: Duration,
) -> u64 {
    let mut sequence = 0u64;
    let mut pending = String::new();
    let mut open = true;
    let mut streaming = true;
    while open {
        match lines.recv().await {
            Some(line) => pending.push_str(&line),
            None => break,
        }
        let deadline = tokio::time::Instant::now() + interval;
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => pending.push_str(&line),
                    None => { open = false; break; }
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if streaming {
            for text in chunks(&pending) {
                let chunk = LogChunk { sequence, text };
                streaming = send_chunk(service, command_id, &chunk).await;
                if !streaming {
                    break;
                }
                sequence += 1;
            }
        }
        pending.clear();
    }
    sequence
}

/// Whether the chunk was taken.
async fn send_chunk<S: CommandService>(service: &S, command_id: &str, chunk: &LogChunk) -> bool {
    let mut attempt = 0u32;
    loop {
        match service.update(command_id, chunk).await {
            Ok(()) => return true,
            Err(error) if error.is_transient() && attempt < 2 => {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                attempt += 1;
            }
            Err(error) => {
                tracing::warn!(
                    command = command_id, sequence = chunk.sequence, %error,
                    "hook output is no longer streamed to the server for this command (it is on disk)"
                );
                return false;
            }
        }
    }
}

/// JSON-escaped length of a character.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        _ => 1,
    }
}

/// Splits `text` into pieces whose `LogChunk` JSON stays within the payload limit, cutting
/// between lines, or inside a line only when it alone is too long.
pub fn chunks(text: &str) -> Vec<String> {
    // `{"sequence":N,"text":""}` with room for the sequence numbers of a very long command.
    let budget = MAX_PAYLOAD_CHARS - r#"{"sequence":,"text":""}"#.len() - 20;
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let line_len: usize = line.chars().map(escaped_len).sum();
        if current_len + line_len > budget && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if line_len <= budget {
            current.push_str(line);
            current_len += line_len;
            continue;
        }
        for c in line.chars() {
            if current_len + escaped_len(c) > budget {
                pieces.push(std::mem::take(&mut current));
                current_len = 0;
            }
            current.push(c);
            current_len += escaped_len(c);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}
