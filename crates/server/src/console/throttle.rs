//! Slowing down secret guessing at the console's sign-in. Failures are counted per access key id
//! and client address together, so a guesser slows only their own attempts on that key: not a
//! colleague behind the same proxy signing in with another key, nor the key's owner elsewhere.
//! After [`FREE_FAILURES`] failures each further attempt is checked only after a delay that
//! doubles with every failure (a tenth of a second at first, at most [`MAX_DELAY`]), and
//! attempts are spaced by that delay however many arrive at once; a correct secret is accepted
//! when its turn comes. An attempt whose turn is further away than [`MAX_WAIT`] is answered at
//! once with when to try again. Failures are forgotten [`FORGET_AFTER`] after the last one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures that cost nothing (typos).
pub const FREE_FAILURES: u32 = 5;
pub const MAX_DELAY: Duration = Duration::from_secs(10);
pub const MAX_WAIT: Duration = Duration::from_secs(30);
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// More pairs than this and the oldest are forgotten (a flood of made-up key ids).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// When the next attempt may be checked.
    next_turn: Instant,
}

/// What an attempt must do before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Wait this long (maybe nothing), then check it.
    After(Duration),
    /// Too far off: answer now, saying to try again in this long.
    TooFar(Duration),
}

#[derive(Default)]
pub struct SignInThrottle(Mutex<HashMap<(String, IpAddr), Failures>>);

/// The delay after `count` failures.
fn delay(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(16);
    (Duration::from_millis(100) * (1u32 << doublings)).min(MAX_DELAY)
}

impl SignInThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Failures>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a turn for an attempt with `key_id` from `address` at `now`.
    pub fn turn(&self, key_id: &str, address: IpAddr, now: Instant) -> Turn {
        let mut entries = self.lock();
        let key = (key_id.to_owned(), address);
        let Some(failures) = entries.get_mut(&key) else { return Turn::After(Duration::ZERO) };
        if now.saturating_duration_since(failures.last) >= FORGET_AFTER {
            entries.remove(&key);
            return Turn::After(Duration::ZERO);
        }
        let delay = delay(failures.count);
        let start = failures.next_turn.max(now).max(failures.last + delay);
        let wait = start - now;
        if wait > MAX_WAIT {
            return Turn::TooFar(wait);
        }
        failures.next_turn = start + delay;
        Turn::After(wait)
    }

    pub fn failed(&self, key_id: &str, address: IpAddr, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, failures| now.saturating_duration_since(failures.last) < FORGET_AFTER);
            if entries.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = entries.values().map(|f| f.last).collect();
                ages.sort();
                let cutoff = ages[ages.len() / 2];
                entries.retain(|_, failures| failures.last > cutoff);
            }
        }
        let failures =
            entries.entry((key_id.to_owned(), address)).or_insert(Failures { count: 0, last: now, next_turn: now });
        failures.count += 1;
        failures.last = now;
    }

    pub fn succeeded(&self, key_id: &str, address: IpAddr) {
        self.lock().remove(&(key_id.to_owned(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 2));

    #[test]
    fn delays_grow_after_the_free_failures_and_stop_growing() {
        let delays: Vec<u128> = (0..12).map(|count| delay(count).as_millis()).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 100, 200, 400, 800, 1600, 3200, 6400]);
        assert_eq!(delay(1000), MAX_DELAY);
    }

    #[test]
    fn failures_slow_that_key_from_that_address_only() {
        let throttle = SignInThrottle::default();
        let start = Instant::now();
        for _ in 0..7 {
            throttle.failed("AKADMIN", HERE, start);
        }
        // Seven failures: the next attempt waits 0.4 s; attempts arriving together queue up.
        assert_eq!(throttle.turn("AKADMIN", HERE, start), Turn::After(Duration::from_millis(400)));
        assert_eq!(throttle.turn("AKADMIN", HERE, start), Turn::After(Duration::from_millis(800)));
        // Another key from the same address, the same key from elsewhere: not slowed.
        assert_eq!(throttle.turn("AKOTHER", HERE, start), Turn::After(Duration::ZERO));
        assert_eq!(throttle.turn("AKADMIN", THERE, start), Turn::After(Duration::ZERO));
        // A success clears the slate.
        throttle.succeeded("AKADMIN", HERE);
        assert_eq!(throttle.turn("AKADMIN", HERE, start), Turn::After(Duration::ZERO));
    }

    #[test]
    fn a_flood_of_attempts_is_told_to_come_back_and_old_failures_are_forgotten() {
        let throttle = SignInThrottle::default();
        let start = Instant::now();
        for _ in 0..20 {
            throttle.failed("AKADMIN", HERE, start);
        }
        let turns: Vec<Turn> = (0..5).map(|_| throttle.turn("AKADMIN", HERE, start)).collect();
        assert_eq!(turns[0], Turn::After(Duration::from_secs(10)));
        assert_eq!(turns[2], Turn::After(Duration::from_secs(30)));
        assert_eq!(turns[3], Turn::TooFar(Duration::from_secs(40)));
        assert_eq!(throttle.turn("AKADMIN", HERE, start + FORGET_AFTER), Turn::After(Duration::ZERO));
    }
}
