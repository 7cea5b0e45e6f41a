//! Where a lifecycle event's output goes: every line to the deployment's `logs/scripts.log`
//! (`YYYY-MM-DD HH:MM:SS [stdout]line`), to the host-wide deployments log
//! (`[YYYY-MM-DD HH:MM:SS.mmm] [d-ID][stdout]line`), to the in-memory tail reported when the
//! event fails, and to the server (PostHostCommandUpdate with `LANDFALL/LOG` chunks). Times are
//! UTC.
//!
//! Nothing here grows with the output: the deployments log rotates, a deployment's scripts.log
//! stops at [`SCRIPTS_LOG_MAX_BYTES`] (saying so), and the stream to the server holds at most
//! about half a megabyte waiting (the event's start and its newest lines): output that comes
//! faster than it can be sent is left out of the stream (never held back from the hook, whose
//! timing must not depend on the server), and a line in the stream says how much, where it was.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use landfall_commands::{LogChunk, MAX_PAYLOAD_CHARS};
use tokio::sync::Notify;

use crate::client::CommandService;
use crate::time::Stamp;

/// The failure diagnostics' `log` stays under this many characters.
pub const TAIL_CHARS: usize = 2048;
/// The deployments log is rotated at this size, keeping this many old files (as the official
/// agent: 8 × 64 MiB).
const DEPLOYMENTS_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEPLOYMENTS_LOG_KEEP: usize = 8;
/// A deployment's scripts.log ends here (the deployments log and the server carry on).
pub const SCRIPTS_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// How often streamed output is sent.
pub const STREAM_INTERVAL: Duration = Duration::from_millis(250);
/// Output waiting to be streamed: at most about this many bytes.
const STREAM_QUEUE_BYTES: usize = 512 * 1024;
/// The start of an event's output is never left out of the stream: it often says what went
/// wrong first.
const STREAM_HEAD_BYTES: usize = 64 * 1024;

/// An event's lines on their way to the server: the first [`STREAM_HEAD_BYTES`] of the event,
/// then the newest. When more waits than [`STREAM_QUEUE_BYTES`], the oldest waiting lines after
/// the head are left out and counted, and the count goes out where they would have been.
#[derive(Default)]
struct Queue {
    lines: VecDeque<String>,
    /// How many lines at the front belong to the event's head (never left out).
    pinned: usize,
    bytes: usize,
    /// Everything ever queued, to know when the head is over.
    queued: usize,
    left_out: u64,
    closed: bool,
}

/// Where an event's lines go to be streamed (see [`stream`]).
pub struct StreamSender {
    shared: Arc<(Mutex<Queue>, Notify)>,
}

/// The other end of [`StreamSender`], for [`stream_to_server`].
pub struct StreamReceiver {
    shared: Arc<(Mutex<Queue>, Notify)>,
}

/// A bounded stream of an event's lines. Sending never waits: a hook's timing must not depend
/// on the server.
pub fn stream() -> (StreamSender, StreamReceiver) {
    let shared = Arc::new((Mutex::new(Queue::default()), Notify::new()));
    (StreamSender { shared: shared.clone() }, StreamReceiver { shared })
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StreamSender {
    fn send(&mut self, line: String) {
        let (queue, wake) = &*self.shared;
        let mut queue = lock(queue);
        if queue.queued < STREAM_HEAD_BYTES && queue.pinned == queue.lines.len() {
            queue.pinned += 1;
        }
        queue.queued += line.len();
        queue.bytes += line.len();
        queue.lines.push_back(line);
        while queue.bytes > STREAM_QUEUE_BYTES && queue.lines.len() > queue.pinned + 1 {
            let first_unpinned = queue.pinned;
            if let Some(old) = queue.lines.remove(first_unpinned) {
                queue.bytes -= old.len();
                queue.left_out += old.len() as u64;
            }
        }
        drop(queue);
        wake.notify_one();
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        let (queue, wake) = &*self.shared;
        lock(queue).closed = true;
        wake.notify_one();
    }
}

impl StreamReceiver {
    /// The lines sent since the last call, waiting for some; `None` once the sender is gone
    /// and everything was taken (for a reader other than [`stream_to_server`]).
    pub async fn next_text(&self) -> Option<String> {
        let (text, closed) = self.take().await;
        (!(text.is_empty() && closed)).then_some(text)
    }

    /// Everything waiting (after a notice of what was left out before it), and whether the
    /// sender is gone; waits while nothing is there.
    async fn take(&self) -> (String, bool) {
        let (queue, wake) = &*self.shared;
        loop {
            let notified = wake.notified();
            {
                let mut queue = lock(queue);
                if !queue.lines.is_empty() || queue.closed {
                    let mut text = String::with_capacity(queue.bytes + 200);
                    let pinned = std::mem::take(&mut queue.pinned);
                    let left_out = std::mem::take(&mut queue.left_out);
                    for (index, line) in queue.lines.drain(..).enumerate() {
                        if index == pinned && left_out > 0 {
                            text.push_str(&left_out_notice(left_out));
                        }
                        text.push_str(&line);
                    }
                    queue.bytes = 0;
                    return (text, queue.closed);
                }
            }
            notified.await;
        }
    }
}

fn left_out_notice(bytes: u64) -> String {
    format!(
        "[landfall] {bytes} bytes of output left out here: they came faster than the agent could send them \
         (the host's deployments log has them)\n"
    )
}

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
    /// The open scripts.log and its size; `None` inside once it reached its limit.
    scripts_file: Option<Option<(File, u64)>>,
    deployments_log: Option<DeploymentsLog>,
    tail: LogTail,
    stream: Option<StreamSender>,
}

impl EventLog {
    pub fn new(deployment_id: &str, deployments_log: Option<DeploymentsLog>, stream: Option<StreamSender>) -> EventLog {
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
            let file = self.scripts_file.get_or_insert_with(|| {
                path.parent()
                    .map(fs::create_dir_all)
                    .transpose()
                    .and_then(|_| OpenOptions::new().create(true).append(true).open(path))
                    .and_then(|file| Ok((file.metadata()?.len(), file)))
                    .map_err(|error| tracing::warn!("cannot write {}: {error}", path.display()))
                    .ok()
                    .map(|(size, file)| (file, size))
            });
            if let Some((scripts, size)) = file {
                let line = format!("{} {text}\n", stamp.seconds);
                if *size + line.len() as u64 > SCRIPTS_LOG_MAX_BYTES {
                    let _ = writeln!(
                        scripts,
                        "{} [landfall] scripts.log reached {SCRIPTS_LOG_MAX_BYTES} bytes: the rest of this \
                         deployment's output is in the deployments log and on the server",
                        stamp.seconds
                    );
                    *file = None;
                } else if scripts.write_all(line.as_bytes()).is_ok() {
                    *size += line.len() as u64;
                }
            }
        }
        if let Some(log) = &mut self.deployments_log
            && let Err(error) = log.append(&self.deployment_id, text, &stamp)
        {
            tracing::warn!("cannot write {}: {error}", log.path.display());
        }
        if let Some(stream) = &mut self.stream {
            stream.send(format!("{text}\n"));
        }
    }

    pub fn tail(&self) -> String {
        self.tail.text()
    }
}

/// Sends a command's output to the server as it comes: lines gathered for
/// [`STREAM_INTERVAL`], then sent as numbered
/// chunks each within the envelope's 8192-character payload. Returns once the stream's sender
/// is dropped and everything is sent. A chunk the server refuses, or cannot take after a few
/// tries, ends the streaming of this command (the output is on disk anyway): a lost log must
/// neither fail the deployment nor hold its completion back.
pub async fn stream_to_server<S: CommandService>(
    service: &S,
    command_id: &str,
    stream: StreamReceiver,
    interval: Duration,
) -> u64 {
    let mut sequence = 0u64;
    let mut streaming = true;
    loop {
        let (mut pending, mut closed) = stream.take().await;
        if !closed {
            // Gather for a while, so a busy hook's lines go out in few calls.
            tokio::time::sleep(interval).await;
            let (more, now_closed) = stream.take().await;
            pending.push_str(&more);
            closed = now_closed;
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
        if closed {
            return sequence;
        }
    }
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
