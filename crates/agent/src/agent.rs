//! The poll loop: one command at a time, from PollHostCommand to PutHostCommandComplete.
//!
//! For each command: GetDeploymentSpecification, open its envelope, validate the specification,
//! acknowledge (telling whether the command is a no-op), then, unless the server answers
//! Succeeded (skip) or Failed (complete a no-op as Succeeded, drop anything else), write the
//! tracking file, run the command while its output streams to the server, send exactly one
//! PutHostCommandComplete, and remove the tracking file.
//!
//! Stopping: the first SIGTERM/SIGINT stops polling and lets the running command finish (for at
//! most `kill_agent_max_wait_time_seconds`); a second signal, or that wait running out, abandons
//! it: its script's process group is ended, the command is completed as Failed with a message
//! saying the agent was stopped, and the tracking file removed. Either way the server hears about
//! the command before the agent exits.

use std::time::{Duration, Instant, SystemTime};

use landfall_commands::spec::DeploymentSpec;
use landfall_commands::{
    AgentErrorCode, CompleteDiagnostics, DEPLOYMENT_SYSTEM, FORMAT_PKCS7_JSON, HostCommand, MAX_PAYLOAD_CHARS, status,
};
use landfall_envelope::CaCertificate;
use tokio::sync::watch;

use crate::client::{CommandService, ServiceError};
use crate::lifecycle::{Executor, LifecycleCommand, validate_spec};
use crate::logs::{self, DeploymentsLog, EventLog};
use crate::{CommandFailure, Stop, StopLevel, recovery};

/// The message of a command failed because the agent restarted while running it.
pub const RESTART_MESSAGE: &str = "Failed: Failing in-progress lifecycle event after an agent restart.";

/// The official agent's back-off after `errors` consecutive failed polls (capped at 10):
/// 10, 13, 17, 21, 27, 34, 44, 56, 71, 90 seconds.
pub fn backoff(errors: u32) -> Duration {
    let n = i32::try_from(errors.clamp(1, 10)).unwrap_or(10);
    Duration::from_secs_f64((1.2675f64.powi(n) * 90.0 / 1.2675f64.powi(10)).floor())
}

/// What `PutHostCommandComplete` carries for a command's result.
pub fn completion(result: &Result<(), CommandFailure>, tail: &str) -> (&'static str, CompleteDiagnostics) {
    match result {
        Ok(()) => (
            status::SUCCEEDED,
            CompleteDiagnostics {
                error_code: 0,
                script_name: String::new(),
                message: "Succeeded: ".into(),
                log: String::new(),
            },
        ),
        Err(failure) => (
            status::FAILED,
            fit_payload(CompleteDiagnostics {
                error_code: failure.code as i64,
                script_name: failure.script_name.clone(),
                message: failure.message.clone(),
                log: tail.to_owned(),
            }),
        ),
    }
}

/// Cuts the log (oldest first), then the message, until the JSON fits the envelope's payload.
fn fit_payload(mut diagnostics: CompleteDiagnostics) -> CompleteDiagnostics {
    let size = |d: &CompleteDiagnostics| serde_json::to_string(d).map(|s| s.chars().count()).unwrap_or(0);
    while size(&diagnostics) > MAX_PAYLOAD_CHARS {
        let excess = size(&diagnostics) - MAX_PAYLOAD_CHARS;
        if !diagnostics.log.is_empty() {
            let drop = excess.min(diagnostics.log.chars().count());
            diagnostics.log = diagnostics.log.chars().skip(drop).collect();
        } else {
            let keep = diagnostics.message.chars().count().saturating_sub(excess + 3);
            diagnostics.message = diagnostics.message.chars().take(keep).collect::<String>() + "...";
        }
    }
    diagnostics
}

/// The agent, generic over how it talks to the server.
pub struct Agent<S> {
    pub service: S,
    /// The `iam_user_arn` / `iam_session_arn` of the on-premises file.
    pub host_identifier: String,
    pub executor: Executor,
    /// The CA envelopes must be signed under; `None` checks only the envelope's own signature.
    pub spec_ca: Option<CaCertificate>,
    pub wait_between_runs: Duration,
    pub kill_agent_max_wait: Duration,
    pub deployments_log: bool,
    pub stream_interval: Duration,
    pub metrics: std::sync::Arc<crate::metrics::AgentMetrics>,
    /// How it replaces itself with a binary a server offers (`landfall-agent` only), and the
    /// client it downloads with.
    pub self_update: Option<(crate::update::SelfUpdate, reqwest::Client)>,
}

impl<S: CommandService> Agent<S> {
    /// Reports a command an earlier run left unfinished, then polls until `stop`.
    pub async fn run(&self, stop: Stop) {
        let mut stop = stop;
        self.recover(&stop).await;
        let mut errors = 0u32;
        let mut connected = false;
        while stop.level() == StopLevel::Run {
            let started = Instant::now();
            let polled = tokio::select! {
                polled = self.service.poll(&self.host_identifier) => polled,
                () = stop.reached(StopLevel::Finish) => break,
            };
            self.metrics.poll(match &polled {
                Ok(Some(_)) => "command",
                Ok(None) => "empty",
                Err(_) => "error",
            });
            let pause = match polled {
                Ok(command) => {
                    if !connected || errors > 0 {
                        tracing::info!(host = %self.host_identifier, "polling for lifecycle events");
                    }
                    if !connected && let Some((updater, _)) = &self.self_update {
                        updater.confirm();
                    }
                    connected = true;
                    errors = 0;
                    match command {
                        Some(command) => {
                            self.handle(command, &stop).await;
                            Duration::ZERO
                        }
                        // Between lifecycle events: an update the server offers.
                        None if self.self_update.is_some() && self.take_update().await => Duration::ZERO,
                        // A long poll that was held: ask again at once.
                        None if started.elapsed() >= Duration::from_secs(1) => Duration::ZERO,
                        None => self.wait_between_runs,
                    }
                }
                Err(error) => {
                    errors = errors.saturating_add(1);
                    let delay = backoff(errors).saturating_sub(started.elapsed());
                    tracing::warn!(%error, retry_in = ?delay, "polling for lifecycle events failed");
                    delay
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.reached(StopLevel::Finish) => break,
                }
            }
        }
        tracing::info!("the agent stopped polling");
    }

    /// Takes the update offered with the last poll, if any (returns only if it did not update
    /// itself); says whether there was one.
    async fn take_update(&self) -> bool {
        let (Some((updater, http)), Some(offer)) = (&self.self_update, self.service.update_offer()) else {
            return false;
        };
        if let Err(refused) = updater.take(http, &offer).await {
            tracing::warn!(version = %refused.version, why = %refused.why, "the agent update was refused");
            self.service.refuse_update(&refused.version, &refused.why);
        }
        true
    }

    /// Ends the hook scripts an earlier run left running, then fails, with error code 7, the
    /// command a tracking file says was running when the agent last stopped.
    pub async fn recover(&self, stop: &Stop) {
        let layout = &self.executor.layout;
        let ended = recovery::end_leftover_hooks(layout, self.executor.hooks.kill_grace).await;
        if ended > 0 {
            tracing::warn!(scripts = ended, "ended the hook scripts the agent's last run left running");
        }
        match recovery::interrupted(layout, SystemTime::now()) {
            Ok(Some(interrupted)) => {
                tracing::warn!(
                    deployment = %interrupted.deployment_id,
                    command = %interrupted.command_id,
                    "a lifecycle event was running when the agent last stopped; reporting it as failed"
                );
                let failure = Err(CommandFailure {
                    code: AgentErrorCode::FailedAfterRestart,
                    script_name: String::new(),
                    message: RESTART_MESSAGE.into(),
                });
                // A stop request ends the retries here: the file stays, and is reported next start.
                let (status, diagnostics) = completion(&failure, "");
                if self.send(&interrupted.command_id, status, &diagnostics, stop, StopLevel::Finish).await
                    && let Err(error) = recovery::clear(layout)
                {
                    tracing::warn!(%error, "cannot remove the tracking files");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the ongoing-deployment directory"),
        }
    }

    /// Runs one polled command to its completion.
    pub async fn handle(&self, command: HostCommand, stop: &Stop) {
        let id = command.host_command_identifier.clone();
        tracing::info!(command = %id, event = %command.command_name, "lifecycle event received");
        if command.host_identifier.is_empty() || !self.host_identifier.contains(command.host_identifier.as_str()) {
            tracing::warn!(command = %id, host = %command.host_identifier, "Host Identifier mismatch: command ignored");
            return;
        }
        let spec = match self.specification(&command).await {
            Ok(spec) => spec,
            Err(message) => {
                tracing::warn!(command = %id, %message, "the deployment specification is unusable");
                self.send_completion(&id, &Err(CommandFailure::unknown(message)), "", stop).await;
                return;
            }
        };
        let lifecycle = LifecycleCommand::from_name(&command.command_name);
        let noop = self.executor.is_noop(&lifecycle, &spec);
        let answer = match retry_transient(|| self.service.acknowledge(&id, noop)).await {
            Ok(answer) => answer,
            Err(error) => {
                let failure = Err(CommandFailure::unknown(format!("The acknowledgement was not accepted: {error}")));
                self.send_completion(&id, &failure, "", stop).await;
                return;
            }
        };
        match answer.as_deref() {
            Some(status::SUCCEEDED) => {
                tracing::info!(command = %id, "the server withdrew the command; skipped");
                return;
            }
            Some(status::FAILED) => {
                if noop {
                    let diagnostics = CompleteDiagnostics {
                        error_code: 0,
                        script_name: String::new(),
                        message: "Succeeded: CompletedNoopCommand".into(),
                        log: String::new(),
                    };
                    self.send(&id, status::SUCCEEDED, &diagnostics, stop, StopLevel::Abandon).await;
                }
                return;
            }
            _ => {}
        }
        let layout = &self.executor.layout;
        let deployment_id = spec.deployment_id().to_owned();
        if let Err(error) = recovery::start_tracking(layout, &deployment_id, &id) {
            tracing::warn!(%error, "cannot write the tracking file");
        }
        let started = Instant::now();
        let (result, tail) = self.run_command(&id, &lifecycle, &spec, stop).await;
        self.metrics.lifecycle_event(&command.command_name, result.is_ok(), started.elapsed());
        match &result {
            Ok(()) => tracing::info!(command = %id, event = %command.command_name, "lifecycle event succeeded"),
            Err(failure) => tracing::warn!(
                command = %id, event = %command.command_name, code = failure.code as i64, message = %failure.message,
                "lifecycle event failed"
            ),
        }
        if self.send_completion(&id, &result, &tail, stop).await
            && let Err(error) = recovery::stop_tracking(layout, &deployment_id)
        {
            tracing::warn!(%error, "cannot remove the tracking file");
        }
    }

    async fn specification(&self, command: &HostCommand) -> Result<DeploymentSpec, String> {
        let output =
            retry_transient(|| self.service.specification(&command.deployment_execution_id, &self.host_identifier))
                .await
                .map_err(|error| format!("The deployment specification could not be fetched: {error}"))?;
        if output.deployment_system != DEPLOYMENT_SYSTEM {
            return Err(format!("Unsupported deployment system: {}", output.deployment_system));
        }
        let envelope = output.deployment_specification.generic_envelope;
        if envelope.format != FORMAT_PKCS7_JSON {
            return Err(format!("Unsupported DeploymentSpecification format: {}", envelope.format));
        }
        let json = landfall_envelope::open(&envelope.payload, self.spec_ca.as_ref())
            .map_err(|error| format!("The deployment specification's envelope was refused: {error}"))?;
        let spec: DeploymentSpec = serde_json::from_slice(&json)
            .map_err(|error| format!("The deployment specification is not valid: {error}"))?;
        validate_spec(&spec)?;
        Ok(spec)
    }

    /// Executes the command while its output streams to the server; ends its scripts when the
    /// agent is told to abandon it. Returns the result and the log tail.
    async fn run_command(
        &self,
        id: &str,
        lifecycle: &LifecycleCommand,
        spec: &DeploymentSpec,
        stop: &Stop,
    ) -> (Result<(), CommandFailure>, String) {
        let (abandon_sender, mut abandon) = watch::channel(false);
        let (lines, streamed) = logs::stream();
        let deployments_log = self.deployments_log.then(|| DeploymentsLog::new(self.executor.layout.deployments_log()));
        let execution = async move {
            let mut log = EventLog::new(spec.deployment_id(), deployments_log, Some(lines));
            let result = self.executor.execute(lifecycle, spec, &mut log, &mut abandon).await;
            (result, log.tail())
        };
        let streaming = logs::stream_to_server(&self.service, id, streamed, self.stream_interval);
        let mut stop = stop.clone();
        let escalation = async {
            stop.reached(StopLevel::Finish).await;
            tokio::select! {
                () = stop.reached(StopLevel::Abandon) => {}
                () = tokio::time::sleep(self.kill_agent_max_wait) => {}
            }
            tracing::warn!(command = id, "abandoning the running lifecycle event");
            let _ = abandon_sender.send(true);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            ((result, tail), _) = async { tokio::join!(execution, streaming) } => (result, tail),
            () = escalation => (Err(CommandFailure::unknown("The agent was stopped.")), String::new()),
        }
    }

    /// Sends the completion of a command; retries while the server cannot be reached (until
    /// the agent is told to abandon). Returns whether the server has the completion (or refused
    /// it for good), so the tracking file can go.
    async fn send_completion(&self, id: &str, result: &Result<(), CommandFailure>, tail: &str, stop: &Stop) -> bool {
        let (status, diagnostics) = completion(result, tail);
        self.send(id, status, &diagnostics, stop, StopLevel::Abandon).await
    }

    /// Sends a completion, retrying transient failures until `stop` reaches `give_up_at`.
    async fn send(
        &self,
        id: &str,
        status: &str,
        diagnostics: &CompleteDiagnostics,
        stop: &Stop,
        give_up_at: StopLevel,
    ) -> bool {
        let mut stop = stop.clone();
        let mut attempts = 0u32;
        loop {
            match self.service.complete(id, status, diagnostics).await {
                Ok(()) => return true,
                Err(error) if error.is_transient() => {
                    attempts = attempts.saturating_add(1);
                    let delay = backoff(attempts);
                    tracing::warn!(command = id, %error, retry_in = ?delay, "the completion could not be sent");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.reached(give_up_at) => return false,
                    }
                }
                Err(error) => {
                    log_refusal(id, &error);
                    return true;
                }
            }
        }
    }
}

/// Tries a call again while it fails transiently, four times over 15 seconds, before giving up:
/// a command in hand should survive a server restarting or handing over to another replica.
async fn retry_transient<T, F, Fut>(mut call: F) -> Result<T, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ServiceError>>,
{
    for delay in [1, 2, 4, 8] {
        match call().await {
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, retry_in_secs = delay, "the server could not be reached");
                tokio::time::sleep(Duration::from_secs(delay)).await;
            }
            other => return other,
        }
    }
    call().await
}

fn log_refusal(id: &str, error: &ServiceError) {
    tracing::warn!(command = id, %error, "the server refused the completion");
}
