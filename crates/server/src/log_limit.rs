//! Warnings a whole fleet can raise at once (every host's request failing while the store is
//! unreachable) are written at most once a second, each saying how many were held back, so that
//! an outage does not flood the log with a line per request.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct LogLimit {
    /// Milliseconds since the process's first use of any limit, when the last line was let
    /// through (`u64::MAX` before the first).
    last: AtomicU64,
    held_back: AtomicU64,
}

const EVERY: Duration = Duration::from_secs(1);

impl LogLimit {
    pub const fn new() -> LogLimit {
        LogLimit { last: AtomicU64::new(u64::MAX), held_back: AtomicU64::new(0) }
    }

    /// Whether to write this line: `Some(n)` with the n lines held back since the last one
    /// written, `None` to hold this one back too.
    pub fn allow(&self) -> Option<u64> {
        static STARTED: OnceLock<Instant> = OnceLock::new();
        self.allow_at(STARTED.get_or_init(Instant::now).elapsed().as_millis() as u64)
    }

    /// `allow` at `now`, in milliseconds from any fixed start.
    fn allow_at(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= EVERY.as_millis() as u64;
        if due && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_counting_the_rest() {
        let limit = LogLimit::new();
        assert_eq!(limit.allow_at(0), Some(0));
        assert_eq!(limit.allow_at(10), None);
        assert_eq!(limit.allow_at(999), None);
        assert_eq!(limit.allow_at(1_000), Some(2));
        assert_eq!(limit.allow_at(1_500), None);
        assert_eq!(limit.allow_at(5_000), Some(1));
    }
}
