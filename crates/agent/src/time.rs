//! Timestamps for log lines, in UTC (the agent carries no time-zone database).

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DD HH:MM:SS` and the milliseconds, for a moment.
pub(crate) struct Stamp {
    /// `YYYY-MM-DD HH:MM:SS`
    pub seconds: String,
    pub millis: u32,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        Stamp::at(SystemTime::now())
    }

    pub(crate) fn at(time: SystemTime) -> Stamp {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        // YYYYMMDDTHHMMSSZ
        let amz = landfall_sigv4::format_amz_date(secs);
        let seconds =
            format!("{}-{}-{} {}:{}:{}", &amz[0..4], &amz[4..6], &amz[6..8], &amz[9..11], &amz[11..13], &amz[13..15]);
        Stamp { seconds, millis: since.subsec_millis() }
    }

    /// `YYYY-MM-DD HH:MM:SS.mmm`
    pub(crate) fn with_millis(&self) -> String {
        format!("{}.{:03}", self.seconds, self.millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let stamp = Stamp::at(UNIX_EPOCH + Duration::from_millis(1_795_312_687_042));
        assert_eq!(stamp.seconds, "2026-11-22 01:58:07");
        assert_eq!(stamp.with_millis(), "2026-11-22 01:58:07.042");
    }
}
