//! Where the server's time comes from: the system's, or a test's that moves by hand.

use landfall_api::Timestamp;

/// The one source of time for the driver, the fleet and the handlers.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system(std::time::SystemTime::now())
    }
}
