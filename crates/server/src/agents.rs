//! The agent protocol (`CodeDeployCommandService_v20141006`): host agents long-poll for their
//! commands, read the deployment specification, acknowledge, stream output, and complete.
//!
//! Every call is made with an instance key (SigV4 service `codedeploy-commands`): an agent sees
//! and touches only its own instance's commands. A command id of another instance is answered
//! exactly like an unknown one, so ids leak nothing.

use std::time::Duration;

use landfall_api::codec::{decode_input, encode_output};
use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::landfall::Role;
use landfall_api::shapes::{Diagnostics, InstanceInfo, LifecycleErrorCode, RevisionLocation};
use landfall_commands::spec::{
    AgentActionOverrides, AgentOverrides, DeploymentSpec, GitHubRevision, S3Revision, Secret, SpecRevision,
};
use landfall_commands::{
    AckDiagnostics, AgentErrorCode, CommandOperation, CompleteDiagnostics, DEPLOYMENT_SYSTEM, DeploymentSpecification,
    Envelope, FORMAT_LOG, FORMAT_PKCS7_JSON, GetDeploymentSpecificationInput, GetDeploymentSpecificationOutput,
    HostCommand, LogChunk, PollHostCommandInput, PollHostCommandOutput, PostHostCommandUpdateInput,
    PostHostCommandUpdateOutput, PutHostCommandAcknowledgementInput, PutHostCommandAcknowledgementOutput,
    PutHostCommandCompleteInput, status,
};
use landfall_store::{CommandState, Completion, HostCommandRecord, LogLimit};

use crate::api::common::{Ctx, store_error};
use crate::driver;
use crate::limits::Limits;
use crate::state::AppState;

/// How long PollHostCommand holds a request open with nothing to hand out. The official agent's
/// read timeout is 80 s; 45 s is what CodeDeploy's own service holds.
pub const LONG_POLL: Duration = Duration::from_secs(45);

/// How much of an agent's `User-Agent` is kept as its version.
const MAX_AGENT_VERSION: usize = 100;

/// One agent-protocol call; `user_agent` is the agent's `User-Agent` (its version, recorded
/// with each poll). `hold`: whether a poll with nothing to hand out waits for a command
/// (it does not when the answer carries an agent update instead).
pub async fn call(
    ctx: &Ctx<'_>,
    operation: CommandOperation,
    body: &[u8],
    user_agent: Option<&str>,
    hold: bool,
) -> ApiResult<Vec<u8>> {
    let instance = caller_instance(ctx).await?;
    match operation {
        CommandOperation::PollHostCommand => {
            let version: Option<String> = user_agent.map(|agent| agent.chars().take(MAX_AGENT_VERSION).collect());
            let name = instance_name(&instance);
            // An agent polling for the first time may be a host that joined (crate::fleet).
            let first = !ctx.state.agent_sightings.knows(name);
            if ctx.state.agent_sightings.due(name, version.as_deref()) {
                ctx.store()
                    .record_agent_poll(name, ctx.state.clock.now(), version.as_deref())
                    .await
                    .map_err(store_error)?;
            }
            if first {
                crate::fleet::nudge(ctx.state).await;
            }
            poll(ctx, &instance, decode_input(body)?, hold).await.map(|o| encode_output(&o))
        }
        CommandOperation::GetDeploymentSpecification => {
            Box::pin(specification(ctx, &instance, decode_input(body)?)).await.map(|o| encode_output(&o))
        }
        CommandOperation::PutHostCommandAcknowledgement => {
            Box::pin(acknowledge(ctx, &instance, decode_input(body)?)).await.map(|o| encode_output(&o))
        }
        CommandOperation::PostHostCommandUpdate => {
            Box::pin(update(ctx, &instance, decode_input(body)?)).await.map(|o| encode_output(&o))
        }
        CommandOperation::PutHostCommandComplete => {
            Box::pin(complete(ctx, &instance, decode_input(body)?)).await.map(|()| b"{}".to_vec())
        }
    }
}

/// The registered instance the caller's key belongs to.
async fn caller_instance(ctx: &Ctx<'_>) -> ApiResult<InstanceInfo> {
    let denied = || {
        ApiError::new(
            Exception::AccessDenied,
            format!(
                "The access key {} is not an instance's agent key; agents use the key `landfall instance register` issued.",
                ctx.caller.access_key_id
            ),
        )
    };
    if ctx.caller.role != Role::Instance {
        return Err(denied());
    }
    let name = ctx.caller.instance_name.as_deref().ok_or_else(denied)?;
    match ctx.state.instances.registered(ctx.store(), name).await.map_err(store_error)? {
        Some(instance) => Ok(instance),
        None => err(Exception::AccessDenied, format!("The instance {name} is not registered.")),
    }
}

/// The host identifier the agent must send: its instance's IAM user or session ARN.
fn check_host(instance: &InstanceInfo, host_identifier: Option<&str>) -> ApiResult<()> {
    let expected = instance.iam_user_arn.as_deref().or(instance.iam_session_arn.as_deref()).unwrap_or_default();
    match host_identifier {
        Some(given) if given == expected => Ok(()),
        Some(given) => err(
            Exception::Client,
            format!("HostIdentifier {given} is not this agent's instance; its configuration should name {expected}."),
        ),
        None => err(Exception::Client, "HostIdentifier is required."),
    }
}

fn instance_name(instance: &InstanceInfo) -> &str {
    instance.instance_name.as_deref().unwrap_or_default()
}

/// A command of this instance, or the same answer as for an unknown id.
async fn own_command(ctx: &Ctx<'_>, instance: &InstanceInfo, id: Option<&str>) -> ApiResult<HostCommandRecord> {
    let id = id.unwrap_or_default();
    match ctx.store().command(id).await.map_err(store_error)? {
        Some(command) if command.target_id == instance_name(instance) => Ok(command),
        _ => unknown_command(id),
    }
}

fn unknown_command<T>(id: &str) -> ApiResult<T> {
    err(Exception::Client, format!("No host command {id} exists for this host."))
}

/// The execution id the agent echoes back: `landfall/<deployment>/<instance>/<command>`.
fn execution_id(command: &HostCommandRecord) -> String {
    format!("landfall/{}/{}/{}", command.deployment_id, command.target_id, command.id)
}

/// Hands out the instance's next command, holding the request open until one is queued or the
/// long poll ends.
async fn poll(
    ctx: &Ctx<'_>,
    instance: &InstanceInfo,
    input: PollHostCommandInput,
    hold: bool,
) -> ApiResult<PollHostCommandOutput> {
    check_host(instance, input.host_identifier.as_deref())?;
    let name = instance_name(instance);
    let signal = ctx.state.driver.host_signal(name);
    let deadline = tokio::time::Instant::now() + if hold { LONG_POLL } else { Duration::ZERO };
    let _held = LongPoll::hold(&ctx.state.metrics);
    let mut woken = false;
    loop {
        // Registered before looking, so a command queued in between still wakes this poll.
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = ctx.state.clock.now();
        if let Some(command) = ctx.store().dispatch_command(name, now).await.map_err(store_error)? {
            tracing::debug!(instance = name, command = %command.id, event = %command.lifecycle_event, "command handed out");
            let waited = (now.millis() - command.created_at.millis()).max(0) as u64;
            ctx.state.metrics.command_pickup(std::time::Duration::from_millis(waited));
            return Ok(PollHostCommandOutput {
                host_command: Some(HostCommand {
                    host_command_identifier: command.id.clone(),
                    host_identifier: input.host_identifier.clone().unwrap_or_default(),
                    deployment_execution_id: execution_id(&command),
                    command_name: command.lifecycle_event.clone(),
                    nonce: now.millis(),
                }),
            });
        }
        // Woken for an agent update (crate::agent_updates): the agent asks again for it.
        if woken && ctx.state.agent_updates.is_open(name) {
            return Ok(PollHostCommandOutput::default());
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(PollHostCommandOutput::default());
        }
        woken = true;
    }
}

/// Counts a long poll as held open for as long as it lives.
struct LongPoll<'a>(&'a crate::metrics::Metrics);

impl<'a> LongPoll<'a> {
    fn hold(metrics: &'a crate::metrics::Metrics) -> LongPoll<'a> {
        metrics.long_polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LongPoll(metrics)
    }
}

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.long_polls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn specification(
    ctx: &Ctx<'_>,
    instance: &InstanceInfo,
    input: GetDeploymentSpecificationInput,
) -> ApiResult<GetDeploymentSpecificationOutput> {
    check_host(instance, input.host_identifier.as_deref())?;
    let execution = input.deployment_execution_id.as_deref().unwrap_or_default();
    let command_id = execution.rsplit('/').next().filter(|_| execution.starts_with("landfall/"));
    let command = own_command(ctx, instance, command_id).await?;
    let payload = match ctx.state.specifications.get(&command.deployment_id) {
        Some(payload) => payload,
        None => {
            let payload = sealed_specification(ctx.state, &command.deployment_id).await?;
            ctx.state.specifications.put(&command.deployment_id, payload.clone());
            payload
        }
    };
    Ok(GetDeploymentSpecificationOutput {
        deployment_system: DEPLOYMENT_SYSTEM.to_owned(),
        deployment_specification: DeploymentSpecification {
            generic_envelope: Envelope { format: FORMAT_PKCS7_JSON.to_owned(), payload },
            variant_id: None,
            variant_envelope: None,
        },
    })
}

/// How long a sealed specification is kept and handed out again. What it says is fixed when the
/// deployment is created; a presigned bundle URL in it stays valid for an hour, and a new Git
/// token reaches agents within this time.
pub const SPECIFICATION_TTL: Duration = Duration::from_secs(60);

/// A deployment's specification, as every host of it gets it: sealed (signed) by the server.
async fn sealed_specification(state: &AppState, deployment_id: &str) -> ApiResult<String> {
    let deployment =
        state.store.deployment(deployment_id).await.map_err(store_error)?.ok_or_else(|| {
            ApiError::new(Exception::Client, format!("The deployment {deployment_id} no longer exists."))
        })?;
    let info = &deployment.info;
    let revision = match info.revision.as_ref() {
        Some(location) => spec_revision(state, location).await?,
        None => SpecRevision::default(),
    };
    let github_access_token = revision.github_revision.as_ref().and(state.sources.git.token.clone());
    let spec = DeploymentSpec {
        deployment_id: deployment_id.to_owned(),
        deployment_group_id: deployment.group_id.clone(),
        deployment_group_name: info.deployment_group_name.clone().unwrap_or_default(),
        application_name: info.application_name.clone().unwrap_or_default(),
        deployment_creator: info.creator.as_ref().map(|c| c.as_str().to_owned()),
        deployment_type: info
            .deployment_style
            .as_ref()
            .and_then(|s| s.deployment_type.as_ref())
            .map(|t| t.as_str().to_owned()),
        app_spec_filename: None,
        revision,
        agent_action_overrides: info.file_exists_behavior.as_ref().map(|behavior| AgentActionOverrides {
            agent_overrides: Some(AgentOverrides { file_exists_behavior: Some(behavior.as_str().to_owned()) }),
        }),
        github_access_token,
    };
    let json = serde_json::to_vec(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
    landfall_envelope::seal(&json, &state.spec_signer).map_err(|error| {
        tracing::error!(%error, "cannot seal a deployment specification");
        ApiError::new(Exception::Server, "The server could not sign the deployment specification.")
    })
}

/// The specification's revision: where the agent downloads the bundle. An S3 bucket the
/// built-in store does not have is in the external store, when one is configured: the agent
/// gets a presigned URL for the object.
async fn spec_revision(state: &AppState, location: &RevisionLocation) -> ApiResult<SpecRevision> {
    if let Some(s3) = &location.s3_location {
        let bucket = s3.bucket.clone().unwrap_or_default();
        let key = s3.key.clone().unwrap_or_default();
        let presigned_url = match &state.sources.external_s3 {
            Some(external)
                if state.external_bundles.is_some() || !state.objects.bucket_exists(&bucket).await.unwrap_or(false) =>
            {
                let now = state.clock.now().millis() / 1000;
                Some(external.presigned_get(&bucket, &key, s3.version.as_deref(), now).map_err(ApiError::internal)?)
            }
            _ => None,
        };
        return Ok(SpecRevision {
            revision_type: "S3".into(),
            s3_revision: Some(S3Revision {
                bucket,
                key,
                bundle_type: s3.bundle_type.as_ref().map(|b| b.as_str().to_owned()).unwrap_or_default(),
                version: s3.version.clone(),
                etag: s3.e_tag.clone(),
                presigned_url: presigned_url.map(Secret),
            }),
            ..Default::default()
        });
    }
    if let Some(github) = &location.git_hub_location {
        let (account, repository) =
            github.repository.as_deref().unwrap_or_default().split_once('/').unwrap_or_default();
        return Ok(SpecRevision {
            revision_type: "GitHub".into(),
            github_revision: Some(GitHubRevision {
                account: account.to_owned(),
                repository: repository.to_owned(),
                commit_id: github.commit_id.clone().unwrap_or_default(),
                bundle_type: Some("tar".into()),
                repository_url: Some(
                    state.sources.git.repository_url(github.repository.as_deref().unwrap_or_default()),
                ),
            }),
            ..Default::default()
        });
    }
    err(Exception::Client, "This deployment's revision is not one a host agent installs.")
}

/// The agent acknowledges before it runs a command. A command withdrawn meanwhile (the
/// deployment stopped) is answered Succeeded, which tells the agent to skip it.
async fn acknowledge(
    ctx: &Ctx<'_>,
    instance: &InstanceInfo,
    input: PutHostCommandAcknowledgementInput,
) -> ApiResult<PutHostCommandAcknowledgementOutput> {
    let id = input.host_command_identifier.as_deref().unwrap_or_default();
    let noop = input
        .diagnostics
        .as_ref()
        .and_then(|d| serde_json::from_str::<AckDiagnostics>(&d.payload).ok())
        .is_some_and(|d| d.is_command_noop);
    let now = ctx.state.clock.now();
    let Some(command) = ctx.store().acknowledge_command(id, instance_name(instance), now).await.map_err(store_error)?
    else {
        return unknown_command(id);
    };
    let answer = if command.state == CommandState::Dispatched {
        driver::reconcile_after_ack(ctx.state, &command.deployment_id);
        status::IN_PROGRESS
    } else {
        status::SUCCEEDED
    };
    tracing::debug!(command = %command.id, noop, answer, "command acknowledged");
    Ok(PutHostCommandAcknowledgementOutput { command_status: Some(answer.to_owned()) })
}

/// Landfall's agent streams hook output here (format `LANDFALL/LOG`); other updates are only
/// answered.
async fn update(
    ctx: &Ctx<'_>,
    instance: &InstanceInfo,
    input: PostHostCommandUpdateInput,
) -> ApiResult<PostHostCommandUpdateOutput> {
    let command = own_command(ctx, instance, input.host_command_identifier.as_deref()).await?;
    if let Some(envelope) = input.diagnostics.as_ref().filter(|d| d.format == FORMAT_LOG) {
        let chunk: LogChunk = serde_json::from_str(&envelope.payload)
            .map_err(|e| ApiError::new(Exception::Client, format!("The log chunk is not valid: {e}")))?;
        if chunk.text.len() > Limits::MAX_LOG_CHUNK_BYTES {
            return err(
                Exception::Client,
                format!("A log chunk carries at most {} bytes of output.", Limits::MAX_LOG_CHUNK_BYTES),
            );
        }
        let limit = LogLimit::keeping(ctx.state.limits.hook_log_bytes);
        ctx.store().append_command_log(&command.id, chunk.sequence, &chunk.text, limit).await.map_err(store_error)?;
    }
    let answer = if command.state == CommandState::Dispatched { status::IN_PROGRESS } else { status::SUCCEEDED };
    Ok(PostHostCommandUpdateOutput { command_status: Some(answer.to_owned()) })
}

async fn complete(ctx: &Ctx<'_>, instance: &InstanceInfo, input: PutHostCommandCompleteInput) -> ApiResult<()> {
    let id = input.host_command_identifier.as_deref().unwrap_or_default();
    let succeeded = match input.command_status.as_deref() {
        Some(status::SUCCEEDED) => true,
        Some(status::FAILED) => false,
        other => {
            return err(Exception::Client, format!("CommandStatus must be Succeeded or Failed, not {other:?}."));
        }
    };
    let reported: CompleteDiagnostics =
        input.diagnostics.as_ref().and_then(|d| serde_json::from_str(&d.payload).ok()).unwrap_or_default();
    let diagnostics = api_diagnostics(succeeded, &reported);
    let now = ctx.state.clock.now();
    let name = instance_name(instance);
    match ctx.store().complete_command(id, name, succeeded, &diagnostics, now).await.map_err(store_error)? {
        Completion::Recorded(command) => {
            let started = command.acknowledged_at.or(command.dispatched_at).unwrap_or(command.created_at);
            let ran = std::time::Duration::from_millis((now.millis() - started.millis()).max(0) as u64);
            ctx.state.metrics.lifecycle_event(&command.lifecycle_event, succeeded, ran);
            tracing::info!(
                instance = name,
                deployment = %command.deployment_id,
                event = %command.lifecycle_event,
                succeeded,
                "lifecycle event completed"
            );
            driver::reconcile(ctx.state, &command.deployment_id).await.map_err(store_error)?;
        }
        Completion::Unknown => return unknown_command(id),
        // The official agent reports a failure twice; the first report stands.
        Completion::Duplicate | Completion::NotInFlight => {}
    }
    Ok(())
}

/// The API's diagnostics for an agent's report, as CodeDeploy shows them: success has an empty
/// script name and log; failures keep the agent's message and log tail.
fn api_diagnostics(succeeded: bool, reported: &CompleteDiagnostics) -> Diagnostics {
    if succeeded {
        return Diagnostics {
            error_code: Some(LifecycleErrorCode::Success),
            script_name: Some(String::new()),
            message: Some("Succeeded".into()),
            log_tail: Some(String::new()),
        };
    }
    let code = match AgentErrorCode::from_code(reported.error_code) {
        // A failure reported with code 0 is still a failure.
        AgentErrorCode::Succeeded => AgentErrorCode::UnknownError,
        code => code,
    };
    Diagnostics {
        error_code: Some(LifecycleErrorCode::from(code.lifecycle_error_code())),
        script_name: Some(reported.script_name.clone()),
        message: Some(reported.message.clone()),
        log_tail: Some(reported.log.clone()),
    }
}
