//! What clients and hosts can make the server hold, in one place: each bound with its default
//! and the flag that changes it (`docs/guide/install.md`, "Limits", lists them for operators).

use landfall_listener::ConnectionLimits;

/// The server's bounds on what callers send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Hook output kept per lifecycle event: the first quarter and the newest three quarters
    /// (`--hook-log-limit`).
    pub hook_log_bytes: u64,
    /// Connection timeouts and how many may be open (`--header-timeout`, `--idle-timeout`,
    /// `--max-connections`).
    pub connections: ConnectionLimits,
}

impl Limits {
    pub const DEFAULT_HOOK_LOG_BYTES: u64 = 4 * 1024 * 1024;
    /// Less would keep too little of either end to read.
    pub const MIN_HOOK_LOG_BYTES: u64 = 64 * 1024;
    /// The largest chunk of hook output one update may carry (Landfall's agent sends at most
    /// 8,192 JSON characters).
    pub const MAX_LOG_CHUNK_BYTES: usize = 64 * 1024;
    /// The most of a hook's output one GetLifecycleEventLog answer carries.
    pub const MAX_LOG_PAGE_BYTES: u64 = 1024 * 1024;
}

impl Limits {
    /// The defaults for this process: its open-file limit raised as far as it goes, and the
    /// connection limit that leaves room for.
    pub fn for_this_process() -> Limits {
        Limits { hook_log_bytes: Self::DEFAULT_HOOK_LOG_BYTES, connections: ConnectionLimits::for_this_process() }
    }
}

/// Reads a size such as `4MiB`, `512KiB`, `1GiB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| format!("'{text}' is not a size (e.g. 4MiB, 512KiB, 1048576)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        _ => return Err(format!("'{text}' has an unknown unit (use B, KiB, MiB or GiB)")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("4MB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999999GiB").unwrap_err().contains("too large"));
    }
}
