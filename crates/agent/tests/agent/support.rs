//! Helpers: temporary directories, hand-made bundles (including malicious ones), scripts, and a
//! fake command service that records what the agent sends.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use landfall_agent::client::{CommandService, ServiceError};
use landfall_commands::spec::DeploymentSpec;
use landfall_commands::{
    CompleteDiagnostics, DeploymentSpecification, Envelope, GetDeploymentSpecificationOutput, HostCommand, LogChunk,
};
use landfall_envelope::SigningIdentity;

/// A directory removed when dropped; unique per test and process, so tests run in parallel.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!("landfall-agent-{name}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).unwrap();
        // Readable by other users: runas tests run scripts as nobody.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

pub fn write_script(path: &Path, body: &str) {
    write(path, &format!("#!/bin/sh\n{body}\n"));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every path under `root` (relative), sorted: to show nothing appeared where it should not.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// One entry of a hand-made bundle. Names are written as given, unchecked.
#[derive(Clone, Debug)]
pub enum Entry {
    File(&'static str, &'static str, u32),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    HardLink(&'static str, &'static str),
}

/// A tar stream with the entries written byte for byte (the tar crate's builder refuses `..`).
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, Option<&str>) = match entry {
            Entry::File(name, data, mode) => (name, tar::EntryType::Regular, data.as_bytes(), *mode, None),
            Entry::Dir(name) => (name, tar::EntryType::Directory, b"", 0o755, None),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, b"", 0o777, Some(target)),
            Entry::HardLink(name, target) => (name, tar::EntryType::Link, b"", 0o644, Some(target)),
        };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn tgz_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar_bytes(entries)).unwrap();
    encoder.finish().unwrap()
}

/// A zip with the entries as given. Zip has no hard links: those entries are skipped.
pub fn zip_bytes(entries: &[Entry]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for entry in entries {
        match entry {
            Entry::File(name, data, mode) => {
                let options = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                writer.start_file(*name, options).unwrap();
                writer.write_all(data.as_bytes()).unwrap();
            }
            Entry::Dir(name) => writer.add_directory(*name, SimpleFileOptions::default()).unwrap(),
            Entry::Symlink(name, target) => writer.add_symlink(*name, *target, SimpleFileOptions::default()).unwrap(),
            Entry::HardLink(..) => {}
        }
    }
    writer.finish().unwrap().into_inner()
}

/// What the agent sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Poll,
    Specification(String),
    Acknowledge { command: String, noop: bool },
    Update { command: String, chunk: LogChunk },
    Complete { command: String, status: String, diagnostics: CompleteDiagnostics },
}

/// A command service in memory: hands out queued commands, answers specifications sealed by
/// its own signing identity, and records every call.
pub struct FakeService {
    pub identity: SigningIdentity,
    pub host: String,
    pub commands: RefCell<VecDeque<HostCommand>>,
    pub specs: RefCell<std::collections::HashMap<String, DeploymentSpec>>,
    /// What PutHostCommandAcknowledgement answers.
    pub ack_answer: RefCell<Option<String>>,
    /// Raw envelope payloads to answer instead of sealing the spec.
    pub raw_payloads: RefCell<std::collections::HashMap<String, String>>,
    pub calls: RefCell<Vec<Call>>,
    /// Called when the queue is empty (a test stops the agent from here).
    pub on_empty: RefCell<Option<Box<dyn Fn()>>>,
    /// Complete answers a transient error this many times first.
    pub complete_failures: RefCell<u32>,
    /// What PostHostCommandUpdate answers instead of taking the chunk.
    pub update_error: RefCell<Option<ServiceError>>,
}

pub const HOST: &str = "arn:aws:iam::123456789012:user/landfall/web1";

impl FakeService {
    pub fn new() -> FakeService {
        FakeService {
            identity: SigningIdentity::generate("test specs").unwrap(),
            host: HOST.to_owned(),
            commands: RefCell::new(VecDeque::new()),
            specs: RefCell::new(Default::default()),
            ack_answer: RefCell::new(Some("InProgress".into())),
            raw_payloads: RefCell::new(Default::default()),
            calls: RefCell::new(Vec::new()),
            on_empty: RefCell::new(None),
            complete_failures: RefCell::new(0),
            update_error: RefCell::new(None),
        }
    }

    /// Queues `event` of `spec`'s deployment; returns the command id.
    pub fn queue(&self, spec: &DeploymentSpec, event: &str) -> HostCommand {
        let n = self.commands.borrow().len() + self.calls.borrow().len();
        let id = format!("hc-{event}-{n}-{}", spec.deployment_id);
        let execution = format!("landfall/{}/web1/{id}", spec.deployment_id);
        self.specs.borrow_mut().insert(execution.clone(), spec.clone());
        let command = HostCommand {
            host_command_identifier: id,
            host_identifier: self.host.clone(),
            deployment_execution_id: execution,
            command_name: event.to_owned(),
            nonce: 1,
        };
        self.commands.borrow_mut().push_back(command.clone());
        command
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    pub fn completions(&self) -> Vec<(String, String, CompleteDiagnostics)> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Complete { command, status, diagnostics } => Some((command, status, diagnostics)),
                _ => None,
            })
            .collect()
    }

    pub fn acks(&self) -> Vec<(String, bool)> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Acknowledge { command, noop } => Some((command, noop)),
                _ => None,
            })
            .collect()
    }

    /// The streamed output of a command, chunks in order.
    pub fn streamed(&self, command: &str) -> Vec<LogChunk> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Update { command: c, chunk } if c == command => Some(chunk),
                _ => None,
            })
            .collect()
    }
}

impl CommandService for FakeService {
    async fn poll(&self, host_identifier: &str) -> Result<Option<HostCommand>, ServiceError> {
        assert_eq!(host_identifier, self.host);
        self.calls.borrow_mut().push(Call::Poll);
        let next = self.commands.borrow_mut().pop_front();
        if next.is_none()
            && let Some(on_empty) = self.on_empty.borrow().as_ref()
        {
            on_empty();
        }
        Ok(next)
    }

    async fn specification(
        &self,
        execution_id: &str,
        host_identifier: &str,
    ) -> Result<GetDeploymentSpecificationOutput, ServiceError> {
        assert_eq!(host_identifier, self.host);
        self.calls.borrow_mut().push(Call::Specification(execution_id.to_owned()));
        let payload = match self.raw_payloads.borrow().get(execution_id) {
            Some(raw) => raw.clone(),
            None => {
                let spec = self.specs.borrow().get(execution_id).cloned().expect("a queued spec");
                landfall_envelope::seal(&serde_json::to_vec(&spec).unwrap(), &self.identity).unwrap()
            }
        };
        Ok(GetDeploymentSpecificationOutput {
            deployment_system: "CodeDeploy".into(),
            deployment_specification: DeploymentSpecification {
                generic_envelope: Envelope { format: "PKCS7/JSON".into(), payload },
                variant_id: None,
                variant_envelope: None,
            },
        })
    }

    async fn acknowledge(&self, command_id: &str, is_noop: bool) -> Result<Option<String>, ServiceError> {
        self.calls.borrow_mut().push(Call::Acknowledge { command: command_id.to_owned(), noop: is_noop });
        Ok(self.ack_answer.borrow().clone())
    }

    async fn update(&self, command_id: &str, chunk: &LogChunk) -> Result<(), ServiceError> {
        let payload = serde_json::to_string(chunk).unwrap();
        assert!(payload.chars().count() <= 8192, "a chunk's payload is {} characters", payload.chars().count());
        self.calls.borrow_mut().push(Call::Update { command: command_id.to_owned(), chunk: chunk.clone() });
        match self.update_error.borrow().clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn complete(
        &self,
        command_id: &str,
        status: &str,
        diagnostics: &CompleteDiagnostics,
    ) -> Result<(), ServiceError> {
        {
            let mut failures = self.complete_failures.borrow_mut();
            if *failures > 0 {
                *failures -= 1;
                return Err(ServiceError::Transport("connection refused".into()));
            }
        }
        let payload = serde_json::to_string(diagnostics).unwrap();
        assert!(payload.chars().count() <= 8192);
        self.calls.borrow_mut().push(Call::Complete {
            command: command_id.to_owned(),
            status: status.to_owned(),
            diagnostics: diagnostics.clone(),
        });
        Ok(())
    }
}
