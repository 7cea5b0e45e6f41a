//! The agent binary this server offers to hosts: a file the operator names (`landfall server
//! --agent-binary`), read when asked for, so that replacing it offers the new one. Its checksum
//! and machine are kept until its size or modification time changes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The agent binary this server offers to hosts.
pub struct AgentBinary {
    path: Option<PathBuf>,
    /// (length, modified time) of the file hashed, and what it held.
    described: Mutex<Option<((u64, SystemTime), Described)>>,
}

#[derive(Clone)]
pub struct Described {
    pub sha256: String,
    /// What `uname -m` says on a host it runs on.
    pub machine: &'static str,
    /// The agent version the binary carries (`landfall_commands::AGENT_VERSION_MARKER`).
    pub version: Option<String>,
}

impl AgentBinary {
    pub fn new(path: Option<PathBuf>) -> AgentBinary {
        AgentBinary { path, described: Mutex::new(None) }
    }

    /// The version of the agent offered, if one is offered and it says its version.
    pub async fn offered_version(&self) -> Option<String> {
        self.describe().await.ok()?.2.version
    }

    /// The file's checksum and machine, hashed again only when the file changed.
    pub async fn describe(&self) -> Result<(PathBuf, u64, Described), String> {
        let Some(path) = self.path.clone() else {
            return Err("this server offers no agent binary: start it with --agent-binary PATH".into());
        };
        let unreadable = |error: std::io::Error| format!("the agent binary {} cannot be read: {error}", path.display());
        let metadata = tokio::fs::metadata(&path).await.map_err(unreadable)?;
        let stamp = (metadata.len(), metadata.modified().map_err(unreadable)?);
        if let Some((known, described)) = self.described.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *known == stamp
        {
            return Ok((path, stamp.0, described.clone()));
        }
        let hashed_path = path.clone();
        let described = tokio::task::spawn_blocking(move || -> std::io::Result<Described> {
            let mut file = std::fs::File::open(&hashed_path)?;
            let mut header = [0u8; 20];
            std::io::Read::read_exact(&mut file, &mut header)?;
            std::io::Seek::rewind(&mut file)?;
            let mut hasher = Sha256::new();
            let mut version = VersionScan::default();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let read = std::io::Read::read(&mut file, &mut chunk)?;
                if read == 0 {
                    break;
                }
                hasher.update(&chunk[..read]);
                version.feed(&chunk[..read]);
            }
            Ok(Described {
                sha256: hex::encode(hasher.finalize()),
                machine: elf_machine(&header),
                version: version.found,
            })
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(unreadable)?;
        *self.described.lock().unwrap_or_else(|p| p.into_inner()) = Some((stamp, described.clone()));
        Ok((path, stamp.0, described))
    }
}

/// Finds `\0landfall-agent-version=VERSION\0` in a file read in chunks.
#[derive(Default)]
struct VersionScan {
    /// The end of the previous chunk, where a marker may begin.
    carry: Vec<u8>,
    found: Option<String>,
}

impl VersionScan {
    /// Longest version read.
    const MAX_VERSION: usize = 64;

    fn feed(&mut self, chunk: &[u8]) {
        if self.found.is_some() {
            return;
        }
        let marker = format!("\0{}", landfall_commands::AGENT_VERSION_MARKER).into_bytes();
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(chunk);
        if let Some(at) = window.windows(marker.len()).position(|w| w == marker) {
            let rest = &window[at + marker.len()..];
            match rest.iter().position(|b| *b == 0) {
                Some(end) if end <= Self::MAX_VERSION => {
                    self.found = std::str::from_utf8(&rest[..end]).ok().map(str::to_owned);
                    return;
                }
                // The version goes on in the next chunk: look again with it.
                None if rest.len() <= Self::MAX_VERSION => {
                    self.carry = window[at..].to_vec();
                    return;
                }
                _ => {}
            }
        }
        let keep = marker.len() + Self::MAX_VERSION;
        self.carry = window[window.len().saturating_sub(keep)..].to_vec();
    }
}

/// The machine an ELF executable is for, as `uname -m` names it ("unknown" if it is not one).
fn elf_machine(header: &[u8; 20]) -> &'static str {
    if &header[..4] != b"\x7fELF" {
        return "unknown";
    }
    let machine = match header[5] {
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => u16::from_le_bytes([header[18], header[19]]),
    };
    match machine {
        0x3e => "x86_64",
        0xb7 => "aarch64",
        0x28 => "armv7l",
        0xf3 => "riscv64",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_found_across_chunk_boundaries() {
        let file = b"\x7fELF....\0landfall-agent-version=1.22.3\0more bytes".to_vec();
        for split in 0..file.len() {
            let mut scan = VersionScan::default();
            scan.feed(&file[..split]);
            scan.feed(&file[split..]);
            assert_eq!(scan.found.as_deref(), Some("1.22.3"), "split at {split}");
        }
        let mut scan = VersionScan::default();
        scan.feed(b"no marker here\0landfall-agent-version=");
        assert_eq!(scan.found, None);
    }

    #[test]
    fn the_machine_is_read_from_the_elf_header() {
        let mut header = [0u8; 20];
        header[..4].copy_from_slice(b"\x7fELF");
        header[5] = 1;
        header[18] = 0x3e;
        assert_eq!(elf_machine(&header), "x86_64");
        header[18] = 0xb7;
        assert_eq!(elf_machine(&header), "aarch64");
        assert_eq!(elf_machine(b"#!/bin/sh\nexit 0\n\0\0\0"), "unknown");
    }
}
