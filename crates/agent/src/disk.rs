//! How much one revision may take on the host's disk, so that a bundle (a small zip of huge
//! zero-filled files, a tar of millions of entries) is refused before it fills the filesystem
//! the host runs on. The agent's `:landfall_max_bundle_size:` sets it; by default it is what is
//! free under the agent's root directory less a reserve (5 % of the filesystem, at most 1 GiB),
//! read when the download starts and again when the unpacking does.

use std::io;
use std::path::Path;

/// What a download or an unpacked revision may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskBudget {
    pub bytes: u64,
    pub entries: u64,
    /// Where the figure comes from, for messages.
    pub source: String,
}

/// The reserve left free: 5 % of the filesystem, at most this.
const MAX_RESERVE_BYTES: u64 = 1 << 30;

impl DiskBudget {
    /// The configured limit, or what is free in `dir`'s filesystem less the reserve (the
    /// configured one too is held to what is free: a limit cannot make room).
    pub fn for_directory(dir: &Path, configured: Option<u64>) -> io::Result<DiskBudget> {
        let stats = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
        let block = stats.fragment_size().max(1);
        let size = stats.blocks().saturating_mul(block);
        let reserve = (size / 20).min(MAX_RESERVE_BYTES);
        let free = stats.blocks_available().saturating_mul(block).saturating_sub(reserve);
        let files = stats.files();
        let free_entries = stats.files_available().saturating_sub((files / 20).min(100_000));
        // Filesystems without inode counts (some report 0) do not limit entries.
        let entries = if files == 0 { u64::MAX } else { free_entries };
        Ok(match configured {
            Some(limit) if limit <= free => {
                DiskBudget { bytes: limit, entries, source: "the agent's :landfall_max_bundle_size:".to_owned() }
            }
            _ => DiskBudget {
                bytes: free,
                entries,
                source: format!("the free space in {} less a reserve of {}", dir.display(), size_text(reserve)),
            },
        })
    }

    /// A budget with no limit to speak of (tests, and trusted local revisions).
    pub fn unlimited() -> DiskBudget {
        DiskBudget { bytes: u64::MAX, entries: u64::MAX, source: "no limit".to_owned() }
    }

    /// `32 MiB (the agent's :landfall_max_bundle_size:)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", size_text(self.bytes), self.source)
    }
}

/// A size for people: `512 KiB`, `32 MiB`, `7.2 GiB`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    let text = if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") };
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(100), "100 bytes");
        assert_eq!(size_text(32 << 20), "32 MiB");
        assert_eq!(size_text((7 << 30) + (1 << 29)), "7.5 GiB");
        assert_eq!(size_text(160 << 20), "160 MiB");
        assert_eq!(size_text((32 << 20) + 24), "32 MiB");
    }

    #[test]
    fn a_configured_limit_is_held_to_the_free_space() {
        let dir = std::env::temp_dir();
        let free = DiskBudget::for_directory(&dir, None).unwrap();
        assert!(free.bytes > 0 && free.source.contains("free space"), "{free:?}");
        let small = DiskBudget::for_directory(&dir, Some(1 << 20)).unwrap();
        assert_eq!(small.bytes, 1 << 20);
        assert_eq!(small.describe(), "1 MiB (the agent's :landfall_max_bundle_size:)");
        let huge = DiskBudget::for_directory(&dir, Some(u64::MAX)).unwrap();
        assert!(huge.bytes < u64::MAX && huge.source.contains("free space"), "{huge:?}");
    }
}
