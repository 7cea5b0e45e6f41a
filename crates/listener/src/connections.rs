//! Open connections and their bounds. A client can hold a connection without asking anything (an
//! idle TCP or TLS connection, a request head sent a byte at a time, a keep-alive connection
//! left open, a response it never reads); every such connection costs a file descriptor, and
//! once they run out the server answers nobody. So:
//!
//! - a TLS handshake has [`ConnectionLimits::handshake`] to finish;
//! - a request's head (and a new connection's first one) has [`ConnectionLimits::header`] to
//!   arrive, from its first byte (or the connection's start);
//! - a connection with no request in flight is closed after [`ConnectionLimits::idle`], and so
//!   is one whose response the client has not read for as long;
//! - at most [`ConnectionLimits::max_connections`] are open: past that, the one idle longest
//!   makes room, and a new connection is turned away only when every open one is busy;
//! - a request's body must keep coming: [`RequestBody`] fails a read that waits longer than
//!   `idle`.
//!
//! A request in flight is never cut for taking long, so an agent's long poll or a console's live
//! stream lasts as long as its handler wants. One watchdog task looks at every connection once
//! a second, which keeps the per-connection cost at a few atomics.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub handshake: Duration,
    pub header: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(10);
    pub const DEFAULT_HEADER: Duration = Duration::from_secs(10);
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

    /// The defaults, with room for as many connections as the open-file limit leaves: half of
    /// what remains after a reserve for the store, the bundle files being served and outgoing
    /// calls (a download holds a connection and a file).
    pub fn for_open_files(open_files: u64) -> ConnectionLimits {
        let max_connections = (open_files.saturating_sub(64) / 2).clamp(16, 1 << 20) as usize;
        ConnectionLimits {
            handshake: Self::DEFAULT_HANDSHAKE,
            header: Self::DEFAULT_HEADER,
            idle: Self::DEFAULT_IDLE,
            max_connections,
        }
    }
}

impl ConnectionLimits {
    /// The defaults for this process, its open-file limit raised first.
    pub fn for_this_process() -> ConnectionLimits {
        ConnectionLimits::for_open_files(raise_open_file_limit())
    }
}

/// Raises the soft limit on open files to the hard one (as Go programs do) and returns it.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Every open connection of a listener, and the rules above.
pub struct Connections {
    limits: ConnectionLimits,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// What one connection is doing, as the watchdog sees it. Times are milliseconds since the
/// listener started; 0 means "not now".
pub struct Activity {
    id: u64,
    opened: u64,
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened), while none is in flight.
    quiet_since: AtomicU64,
    /// When bytes of a request head began to arrive on a quiet connection.
    head_since: AtomicU64,
    /// Since when a write has waited for the client to read.
    write_blocked_since: AtomicU64,
    served: AtomicU64,
    /// HTTP/2: its pings and settings are not a request's head.
    h2: AtomicBool,
    closing: AtomicBool,
    close: Notify,
}

/// Why the watchdog closes a connection, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Open,
    NoRequest,
    SlowHead,
    Idle,
    UnreadResponse,
}

impl Connections {
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections { limits, started: Instant::now(), next_id: AtomicU64::new(1), open: Mutex::default() })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn now(&self) -> u64 {
        // Never 0, which means "not now".
        self.started.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    /// Takes a new connection in: `None` when every open connection is busy and there is no
    /// room. At the limit, the connection idle longest is told to close to make room.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.lock();
        if open.len() >= self.limits.max_connections && !Self::shed_one(&open) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let activity = Arc::new(Activity {
            id,
            opened: now,
            in_flight: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(now),
            head_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            served: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        open.insert(id, activity.clone());
        Some(Admitted { connections: self.clone(), activity })
    }

    /// Tells the connection idle longest to close (out of descriptors, or at the limit);
    /// whether there was one.
    pub fn shed_idle(&self) -> bool {
        Self::shed_one(&self.lock())
    }

    fn shed_one(open: &HashMap<u64, Arc<Activity>>) -> bool {
        let idlest = open
            .values()
            .filter(|a| a.in_flight.load(Ordering::Relaxed) == 0 && !a.closing.load(Ordering::Relaxed))
            .min_by_key(|a| a.quiet_since.load(Ordering::Relaxed));
        match idlest {
            Some(activity) => {
                tracing::debug!(connection = activity.id, "closing the connection idle longest to make room");
                activity.shut();
                true
            }
            None => false,
        }
    }

    /// What the rules say of one connection now.
    fn verdict(&self, activity: &Activity, now: u64) -> Verdict {
        let since = |at: &AtomicU64| match at.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            at => Duration::from_millis(now.saturating_sub(at)),
        };
        if since(&activity.write_blocked_since) > self.limits.idle {
            return Verdict::UnreadResponse;
        }
        if activity.in_flight.load(Ordering::Relaxed) > 0 {
            return Verdict::Open;
        }
        let h2 = activity.h2.load(Ordering::Relaxed);
        if !h2 && since(&activity.head_since) > self.limits.header {
            return Verdict::SlowHead;
        }
        let quiet = since(&activity.quiet_since);
        if activity.served.load(Ordering::Relaxed) == 0 && quiet > self.limits.header.max(self.limits.handshake) {
            return Verdict::NoRequest;
        }
        if quiet > self.limits.idle {
            return Verdict::Idle;
        }
        Verdict::Open
    }

    /// Closes what the rules say must close, once a second, until the listener goes.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.now();
            for activity in self.lock().values() {
                let verdict = self.verdict(activity, now);
                if verdict != Verdict::Open && !activity.closing.load(Ordering::Relaxed) {
                    tracing::debug!(
                        connection = activity.id,
                        age_ms = now - activity.opened,
                        ?verdict,
                        "closing a connection"
                    );
                    activity.shut();
                }
            }
        }
    }
}

impl Activity {
    fn shut(&self) {
        self.closing.store(true, Ordering::Relaxed);
        // A permit: the connection's task sees it even if it is not waiting yet.
        self.close.notify_one();
    }

    /// Resolves when the connection must close.
    pub async fn closed(&self) {
        self.close.notified().await;
    }

    /// A request has begun; the guard ends it when dropped (with its response body).
    pub fn request(self: &Arc<Self>, connections: &Connections) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        RequestGuard { activity: self.clone(), started: connections.started }
    }
}

/// A connection in the table; leaves it when dropped.
pub struct Admitted {
    connections: Arc<Connections>,
    pub activity: Arc<Activity>,
}

impl Admitted {
    /// The connection's stream, watched for request heads and blocked writes.
    pub fn track<T>(&self, inner: T) -> TrackedIo<T> {
        TrackedIo { inner, activity: self.activity.clone(), started: self.connections.started, sniffed: false }
    }

    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.activity.id);
    }
}

/// Held while a request is in flight (by its response body, until that is sent or dropped).
pub struct RequestGuard {
    activity: Arc<Activity>,
    started: Instant,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            let now = self.started.elapsed().as_millis() as u64 + 1;
            self.activity.quiet_since.store(now, Ordering::Relaxed);
            self.activity.head_since.store(0, Ordering::Relaxed);
        }
    }
}

/// A connection's stream that tells its [`Activity`] when request bytes arrive on a quiet
/// connection and how long writes wait for the client.
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    started: Instant,
    sniffed: bool,
}

impl<T> TrackedIo<T> {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    fn wrote(&self, blocked: bool) {
        let since = &self.activity.write_blocked_since;
        if !blocked {
            since.store(0, Ordering::Relaxed);
        } else if since.load(Ordering::Relaxed) == 0 {
            since.store(self.now(), Ordering::Relaxed);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            if !self.sniffed {
                self.sniffed = true;
                // The HTTP/2 connection preface, with or without TLS.
                if read.starts_with(b"PRI * HTTP/2") {
                    self.activity.h2.store(true, Ordering::Relaxed);
                }
            }
            let activity = &self.activity;
            if activity.in_flight.load(Ordering::Relaxed) == 0 && activity.head_since.load(Ordering::Relaxed) == 0 {
                activity.head_since.store(self.now(), Ordering::Relaxed);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(result.is_pending());
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that holds a guard until it is sent (or dropped): a request counted as in
/// flight stays counted for as long as its response streams.
pub struct Guarded<B, G> {
    inner: B,
    _guard: G,
}

impl<B, G> Guarded<B, G> {
    pub fn new(inner: B, guard: G) -> Guarded<B, G> {
        Guarded { inner, _guard: guard }
    }
}

impl<B: Body + Unpin, G: Unpin> Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body stopped coming for {0:?}")]
    TimedOut(Duration),
    #[error("the request body could not be read: {0}")]
    Broken(#[from] hyper::Error),
}

/// A request's body, whose every read must come within the connection's idle time (a client
/// sending a body a byte a minute holds its connection no longer than one sending nothing).
pub struct RequestBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl RequestBody {
    pub fn new(inner: Incoming, limit: Duration) -> RequestBody {
        RequestBody { inner, limit, deadline: None }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.deadline = None;
                Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)))
            }
            Poll::Pending => {
                let limit = self.limit;
                let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyError::TimedOut(limit))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            handshake: Duration::from_secs(10),
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections,
        }
    }

    #[test]
    fn the_limit_follows_the_open_file_limit() {
        assert_eq!(ConnectionLimits::for_open_files(256).max_connections, 96);
        assert_eq!(ConnectionLimits::for_open_files(65_536).max_connections, 32_736);
        assert_eq!(ConnectionLimits::for_open_files(20).max_connections, 16);
    }

    #[test]
    fn the_rules_close_what_holds_a_connection_without_asking() {
        let connections = Connections::new(limits(10));
        let admitted = connections.admit().unwrap();
        let activity = &admitted.activity;
        let at = |seconds: u64| activity.opened + seconds * 1000;
        assert_eq!(connections.verdict(activity, at(9)), Verdict::Open);
        // Nothing asked within the header time.
        assert_eq!(connections.verdict(activity, at(11)), Verdict::NoRequest);
        // A request in flight is never cut, however long.
        let request = activity.request(&connections);
        assert_eq!(connections.verdict(activity, at(3600)), Verdict::Open);
        // ... unless the client stops reading its response.
        activity.write_blocked_since.store(at(3600), Ordering::Relaxed);
        assert_eq!(connections.verdict(activity, at(3661)), Verdict::UnreadResponse);
        activity.write_blocked_since.store(0, Ordering::Relaxed);
        drop(request);
        // Kept alive after a request: closed once idle too long.
        activity.quiet_since.store(at(100), Ordering::Relaxed);
        assert_eq!(connections.verdict(activity, at(159)), Verdict::Open);
        assert_eq!(connections.verdict(activity, at(161)), Verdict::Idle);
        // A head arriving a byte at a time.
        activity.head_since.store(at(120), Ordering::Relaxed);
        assert_eq!(connections.verdict(activity, at(129)), Verdict::Open);
        assert_eq!(connections.verdict(activity, at(131)), Verdict::SlowHead);
        // HTTP/2's own frames are not a head.
        activity.h2.store(true, Ordering::Relaxed);
        assert_eq!(connections.verdict(activity, at(131)), Verdict::Open);
    }

    #[test]
    fn at_the_limit_the_idlest_makes_room_and_busy_ones_never_do() {
        let connections = Connections::new(limits(2));
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        first.activity.quiet_since.store(5, Ordering::Relaxed);
        second.activity.quiet_since.store(9, Ordering::Relaxed);
        let third = connections.admit().unwrap();
        assert!(first.activity.closing.load(Ordering::Relaxed));
        assert!(!second.activity.closing.load(Ordering::Relaxed));
        drop(first);
        // Both open ones busy: no room.
        let _busy = (second.activity.request(&connections), third.activity.request(&connections));
        assert!(connections.admit().is_none());
        assert_eq!(connections.open_count(), 2);
    }
}
