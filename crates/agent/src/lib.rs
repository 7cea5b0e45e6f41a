//! `landfall agent`: the host agent. It speaks the official CodeDeploy agent's protocol to the
//! server, keeps the official agent's files on the host (so a host moves over with its
//! history), and fixes what its users complain about: one command at a time, hooks whose
//! background processes do not hang the event, whole process groups ended on timeout,
//! credentials kept out of hook environments, bundles unpacked in-process with path guards, and
//! every line of hook output kept by the server.
//!
//! Modules, in the order a command meets them: [`config`] (the two configuration files),
//! [`client`] (the command protocol), [`agent`] (poll loop), [`lifecycle`] (what each command
//! does), [`download`] and [`archive`] (DownloadBundle), [`install`] and [`permissions`]
//! (Install), [`hooks`] (scripts), [`logs`] (scripts.log, the deployments log, the tail, the
//! stream to the server), [`layout`] (the on-host files), [`recovery`] (the tracking file).

pub mod agent;
pub mod archive;
pub mod client;
pub mod config;
pub mod disk;
pub mod download;
pub mod git;
pub mod hooks;
pub mod install;
pub mod layout;
pub mod lifecycle;
pub mod local;
pub mod logs;
pub mod metrics;
pub mod permissions;
pub mod recovery;
mod time;
pub mod update;
mod yaml;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::sync::Arc;

use landfall_commands::AgentErrorCode;
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::watch;

pub use agent::Agent;
pub use config::{ConfigError, Settings};

/// The agent's version as a server offering this binary reads it (see
/// `landfall_commands::AGENT_VERSION_MARKER`); kept in the binary though nothing reads it here.
#[used]
static VERSION_MARKER: &str = concat!("\0landfall-agent-version=", env!("CARGO_PKG_VERSION"), "\0");

/// The agent's version: what its binary says to a server offering it (the marker above), so that
/// a binary and what it reports always agree.
pub fn version() -> &'static str {
    let marker: &'static str = std::hint::black_box(VERSION_MARKER);
    marker.trim_matches('\0').strip_prefix(landfall_commands::AGENT_VERSION_MARKER).unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// Why a command failed, as PutHostCommandComplete reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    pub code: AgentErrorCode,
    /// The failing script's `location`; empty for failures outside scripts.
    pub script_name: String,
    pub message: String,
}

impl CommandFailure {
    /// A failure outside any script (download, unpack, AppSpec, install): code 5.
    pub fn unknown(message: impl Into<String>) -> CommandFailure {
        CommandFailure { code: AgentErrorCode::UnknownError, script_name: String::new(), message: message.into() }
    }
}

/// How far the agent has been asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    Run,
    /// Stop polling; let the running command finish.
    Finish,
    /// End the running command's scripts now and report it.
    Abandon,
}

/// The agent's view of stop requests.
#[derive(Debug, Clone)]
pub struct Stop {
    level: watch::Receiver<StopLevel>,
}

/// Where stop requests come from.
#[derive(Debug)]
pub struct StopHandle {
    level: watch::Sender<StopLevel>,
}

impl StopHandle {
    /// Raises the stop level (never lowers it).
    pub fn request(&self, level: StopLevel) {
        self.level.send_if_modified(|current| {
            let raise = level > *current;
            if raise {
                *current = level;
            }
            raise
        });
    }
}

impl Stop {
    pub fn channel() -> (StopHandle, Stop) {
        let (sender, receiver) = watch::channel(StopLevel::Run);
        (StopHandle { level: sender }, Stop { level: receiver })
    }

    /// Stops on SIGINT/SIGTERM: the first signal lets the running command finish, the second
    /// abandons it. The handlers are installed before this returns.
    pub fn on_signals() -> std::io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (handle, stop) = Stop::channel();
        tokio::spawn(async move {
            for level in [StopLevel::Finish, StopLevel::Abandon] {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                match level {
                    StopLevel::Finish => tracing::info!(
                        "stopping: no more polling; a running lifecycle event may finish (signal again to abandon it)"
                    ),
                    _ => tracing::info!("stopping now: abandoning the running lifecycle event"),
                }
                handle.request(level);
            }
        });
        Ok(stop)
    }

    pub fn level(&self) -> StopLevel {
        *self.level.borrow()
    }

    /// Resolves once the stop level is at least `level` (never, if nobody can raise it).
    pub async fn reached(&mut self, level: StopLevel) {
        if self.level.wait_for(|current| *current >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(pub String);

/// Runs the agent with `settings` until `stop`; `self_update`: how it replaces itself with a
/// binary a server offers (`landfall-agent`; `None` for `landfall agent`, which does not).
pub async fn run(settings: Settings, stop: Stop, self_update: Option<update::SelfUpdate>) -> Result<(), AgentError> {
    std::fs::create_dir_all(&settings.root_dir)
        .map_err(|error| AgentError(format!("cannot create root_dir {}: {error}", settings.root_dir.display())))?;
    let _lock = lock_pid_file(&settings)?;
    let http = client::http_client(&settings).map_err(AgentError)?;
    let signer = Arc::new(client::Signer::new(settings.identity.clone()));
    signer.credentials().map_err(|error| AgentError(error.to_string()))?;
    let service = client::HttpCommandService::new(
        http.clone(),
        &settings.command_endpoint,
        Arc::clone(&signer),
        self_update.is_some(),
    )
    .map_err(AgentError)?;
    let self_update = self_update.map(|updater| (updater, http.clone()));
    let fetcher = download::BundleFetcher::new(http, &settings.s3_endpoint, signer);
    let agent = Agent {
        service,
        host_identifier: settings.identity.host_identifier.clone(),
        executor: lifecycle::Executor {
            layout: layout::Layout::new(&settings.root_dir),
            max_revisions: settings.max_revisions,
            hooks: hooks::HookSettings::default(),
            secrets: settings.identity.secrets(),
            fetcher: Some(fetcher),
            max_bundle_size: settings.max_bundle_size,
        },
        spec_ca: settings.spec_ca.clone(),
        wait_between_runs: settings.wait_between_runs,
        kill_agent_max_wait: settings.kill_agent_max_wait,
        deployments_log: settings.enable_deployments_log,
        stream_interval: logs::STREAM_INTERVAL,
        metrics: Default::default(),
        self_update,
    };
    let _metrics_server = match settings.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| AgentError(format!("cannot serve metrics on {address}: {error}")))?;
            tracing::info!(%address, "serving metrics at /metrics");
            Some(AbortOnDrop(tokio::spawn(metrics::serve(listener, agent.metrics.clone()))))
        }
        None => None,
    };
    tracing::info!(
        host = %settings.identity.host_identifier,
        endpoint = %settings.command_endpoint,
        root_dir = %settings.root_dir.display(),
        "agent started"
    );
    agent.run(stop).await;
    Ok(())
}

/// Holds `<pid_dir>/<program_name>.pid` locked for the agent's lifetime, so a second agent on
/// the same host (and deployment root) refuses to start rather than racing the first.
fn lock_pid_file(settings: &Settings) -> Result<Flock<File>, AgentError> {
    let dir = &settings.pid_dir;
    std::fs::create_dir_all(dir)
        .map_err(|error| AgentError(format!("cannot create pid_dir {}: {error}", dir.display())))?;
    let path = dir.join(format!("{}.pid", settings.program_name));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| AgentError(format!("cannot open {}: {error}", path.display())))?;
    let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(AgentError(format!(
                "another agent (pid {}) is running with the pid file {}",
                pid.trim(),
                path.display()
            )));
        }
    };
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())
    };
    write(&mut locked).map_err(|error| AgentError(format!("cannot write {}: {error}", path.display())))?;
    Ok(locked)
}

/// Ends a background task when the agent stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
