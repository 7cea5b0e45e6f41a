//! The protocol between host agents and the server: the official agent's
//! `CodeDeployCommandService_v20141006` operations (AWS JSON 1.1, SigV4 service
//! `codedeploy-commands`, PascalCase members), the diagnostics payloads they carry, and the
//! deployment specification the agent reads. Shared by the server and `landfall agent`; no I/O.

pub mod spec;

use serde::{Deserialize, Serialize};

/// `X-Amz-Target` prefix of the agent operations.
pub const TARGET_PREFIX: &str = "CodeDeployCommandService_v20141006";
/// SigV4 service name agents sign with.
pub const SERVICE: &str = "codedeploy-commands";
/// `DeploymentSystem` of every specification.
pub const DEPLOYMENT_SYSTEM: &str = "CodeDeploy";
/// Envelope formats.
pub const FORMAT_PKCS7_JSON: &str = "PKCS7/JSON";
pub const FORMAT_JSON: &str = "JSON";
/// Landfall's format for hook output streamed through PostHostCommandUpdate (which the official
/// agent never calls).
pub const FORMAT_LOG: &str = "LANDFALL/LOG";
/// Most characters an envelope payload may hold.
pub const MAX_PAYLOAD_CHARS: usize = 8192;

/// Before the version in the agent's binary (between NUL bytes), where a server offering the
/// binary reads it without running it.
pub const AGENT_VERSION_MARKER: &str = "landfall-agent-version=";
/// The User-Agent prefix of Landfall's agent, before its version: how a server tells its
/// agents' versions from the official agent's.
pub const AGENT_USER_AGENT_PREFIX: &str = "landfall-agent/";

/// A version's numbers (`1.8.1` of `1.8.1-beta`), to tell older from newer; `None` if it has none.
pub fn version_numbers(version: &str) -> Option<Vec<u64>> {
    let numeric = version.split(['-', '+', ' ']).next()?;
    numeric.split('.').map(|part| part.parse().ok()).collect()
}

/// The agent operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandOperation {
    PollHostCommand,
    GetDeploymentSpecification,
    PutHostCommandAcknowledgement,
    PostHostCommandUpdate,
    PutHostCommandComplete,
}

impl CommandOperation {
    pub const ALL: [CommandOperation; 5] = [
        CommandOperation::PollHostCommand,
        CommandOperation::GetDeploymentSpecification,
        CommandOperation::PutHostCommandAcknowledgement,
        CommandOperation::PostHostCommandUpdate,
        CommandOperation::PutHostCommandComplete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CommandOperation::PollHostCommand => "PollHostCommand",
            CommandOperation::GetDeploymentSpecification => "GetDeploymentSpecification",
            CommandOperation::PutHostCommandAcknowledgement => "PutHostCommandAcknowledgement",
            CommandOperation::PostHostCommandUpdate => "PostHostCommandUpdate",
            CommandOperation::PutHostCommandComplete => "PutHostCommandComplete",
        }
    }

    pub fn from_name(name: &str) -> Option<CommandOperation> {
        CommandOperation::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// `{Format, Payload}`: how diagnostics and specifications travel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub payload: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PollHostCommandInput {
    #[serde(default)]
    pub host_identifier: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PollHostCommandOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_command: Option<HostCommand>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostCommand {
    pub host_command_identifier: String,
    pub host_identifier: String,
    /// Opaque to the agent; matches `^[^/]+/[^/]+/[^/]+/.+$`.
    pub deployment_execution_id: String,
    /// The lifecycle event to run.
    pub command_name: String,
    #[serde(default)]
    pub nonce: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetDeploymentSpecificationInput {
    #[serde(default)]
    pub deployment_execution_id: Option<String>,
    #[serde(default)]
    pub host_identifier: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetDeploymentSpecificationOutput {
    pub deployment_system: String,
    pub deployment_specification: DeploymentSpecification,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentSpecification {
    pub generic_envelope: Envelope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_envelope: Option<Envelope>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutHostCommandAcknowledgementInput {
    #[serde(default)]
    pub host_command_identifier: Option<String>,
    #[serde(default)]
    pub diagnostics: Option<Envelope>,
}

/// `Pending | InProgress | Succeeded | Failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutHostCommandAcknowledgementOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PostHostCommandUpdateInput {
    #[serde(default)]
    pub host_command_identifier: Option<String>,
    #[serde(default)]
    pub estimated_completion_time: Option<f64>,
    #[serde(default)]
    pub diagnostics: Option<Envelope>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PostHostCommandUpdateOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutHostCommandCompleteInput {
    #[serde(default)]
    pub host_command_identifier: Option<String>,
    #[serde(default)]
    pub command_status: Option<String>,
    #[serde(default)]
    pub diagnostics: Option<Envelope>,
}

/// Command statuses on the wire.
pub mod status {
    pub const PENDING: &str = "Pending";
    pub const IN_PROGRESS: &str = "InProgress";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
}

/// The acknowledgement's diagnostics payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckDiagnostics {
    #[serde(rename = "IsCommandNoop", default)]
    pub is_command_noop: bool,
}

/// The completion's diagnostics payload, snake_case as the official agent writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteDiagnostics {
    #[serde(default)]
    pub error_code: i64,
    #[serde(default)]
    pub script_name: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub log: String,
}

/// The agent's error codes (the `error_code` of [`CompleteDiagnostics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentErrorCode {
    Succeeded = 0,
    ScriptMissing = 1,
    ScriptNotExecutable = 2,
    ScriptTimedOut = 3,
    ScriptFailed = 4,
    UnknownError = 5,
    OutputsLeftOpen = 6,
    FailedAfterRestart = 7,
}

impl AgentErrorCode {
    pub fn from_code(code: i64) -> AgentErrorCode {
        match code {
            0 => AgentErrorCode::Succeeded,
            1 => AgentErrorCode::ScriptMissing,
            2 => AgentErrorCode::ScriptNotExecutable,
            3 => AgentErrorCode::ScriptTimedOut,
            4 => AgentErrorCode::ScriptFailed,
            6 => AgentErrorCode::OutputsLeftOpen,
            7 => AgentErrorCode::FailedAfterRestart,
            _ => AgentErrorCode::UnknownError,
        }
    }

    /// The API's `LifecycleErrorCode` for this code. Codes 6 and 7 have none of their own.
    pub fn lifecycle_error_code(self) -> &'static str {
        match self {
            AgentErrorCode::Succeeded => "Success",
            AgentErrorCode::ScriptMissing => "ScriptMissing",
            AgentErrorCode::ScriptNotExecutable => "ScriptNotExecutable",
            AgentErrorCode::ScriptTimedOut => "ScriptTimedOut",
            AgentErrorCode::ScriptFailed | AgentErrorCode::OutputsLeftOpen => "ScriptFailed",
            AgentErrorCode::UnknownError | AgentErrorCode::FailedAfterRestart => "UnknownError",
        }
    }
}

/// Hook output streamed by Landfall's agent in PostHostCommandUpdate (format [`FORMAT_LOG`]):
/// the next chunk of the event's log, numbered so a retried update is not stored twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// 0, 1, 2... per command.
    pub sequence: u64,
    /// Complete lines, each `[stdout]...` / `[stderr]...` or a `LifecycleEvent -` / `Script -` header.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        assert_eq!(version_numbers("1.8.1"), Some(vec![1, 8, 1]));
        assert_eq!(version_numbers("0.10.0-beta.2"), Some(vec![0, 10, 0]));
        assert!(version_numbers("0.9.9") < version_numbers("0.10.0"));
        assert_eq!(version_numbers("OFFICIAL_1.8.1"), None);
    }

    #[test]
    fn wire_shapes_match_the_official_agent() {
        let poll: PollHostCommandOutput = serde_json::from_str(
            r#"{"HostCommand":{"HostCommandIdentifier":"hc-7","HostIdentifier":"arn:aws:iam::123456789012:user/h",
                "DeploymentExecutionId":"a/b/c/d","CommandName":"Install","Nonce":7}}"#,
        )
        .unwrap();
        assert_eq!(poll.host_command.unwrap().command_name, "Install");
        assert_eq!(serde_json::to_string(&PollHostCommandOutput::default()).unwrap(), "{}");
        let complete: CompleteDiagnostics =
            serde_json::from_str(r#"{"error_code":4,"script_name":"s.sh","message":"m","log":"l"}"#).unwrap();
        assert_eq!(AgentErrorCode::from_code(complete.error_code).lifecycle_error_code(), "ScriptFailed");
        let ack: AckDiagnostics = serde_json::from_str(r#"{"IsCommandNoop":true}"#).unwrap();
        assert!(ack.is_command_noop);
    }

    #[test]
    fn every_agent_code_maps_to_an_api_code() {
        for code in -1..10 {
            let api = AgentErrorCode::from_code(code).lifecycle_error_code();
            assert!(
                ["Success", "ScriptMissing", "ScriptNotExecutable", "ScriptTimedOut", "ScriptFailed", "UnknownError"]
                    .contains(&api)
            );
        }
    }
}
