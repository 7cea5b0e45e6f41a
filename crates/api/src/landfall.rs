//! Landfall's extensions to the API, served beside CodeDeploy's on the same endpoint under their
//! own `X-Amz-Target` prefix, and the access rules every operation is checked against.

use serde::{Deserialize, Serialize};

use crate::shapes::Operation;
use crate::wire::{Timestamp, wire_enum};

/// `X-Amz-Target` prefix of the extension operations.
pub const TARGET_PREFIX: &str = "Landfall_20261122";

/// The extension operations: access keys, instance registration, hook logs, agent health, target
/// groups and routers, alarms, deployment timelines and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LandfallOperation {
    CreateAccessKey,
    ListAccessKeys,
    RevokeAccessKey,
    RegisterInstance,
    GetLifecycleEventLog,
    ListAgentStatus,
    CreateTargetGroup,
    DeleteTargetGroup,
    ListTargetGroups,
    RegisterTargets,
    DeregisterTargets,
    GetRouterState,
    ReportTargetHealth,
    PutAlarm,
    DeleteAlarm,
    ListAlarms,
    ListDeploymentEvents,
    ListAuditRecords,
    DrainInstance,
    CreateHostPool,
    DeleteHostPool,
    ListHostPools,
    AddHostPoolMembers,
    RemoveHostPoolMembers,
    CreateJoinToken,
    ListJoinTokens,
    StartAgentUpdate,
    ListAgentUpdates,
}

impl LandfallOperation {
    pub const ALL: [LandfallOperation; 28] = [
        LandfallOperation::CreateAccessKey,
        LandfallOperation::ListAccessKeys,
        LandfallOperation::RevokeAccessKey,
        LandfallOperation::RegisterInstance,
        LandfallOperation::GetLifecycleEventLog,
        LandfallOperation::ListAgentStatus,
        LandfallOperation::CreateTargetGroup,
        LandfallOperation::DeleteTargetGroup,
        LandfallOperation::ListTargetGroups,
        LandfallOperation::RegisterTargets,
        LandfallOperation::DeregisterTargets,
        LandfallOperation::GetRouterState,
        LandfallOperation::ReportTargetHealth,
        LandfallOperation::PutAlarm,
        LandfallOperation::DeleteAlarm,
        LandfallOperation::ListAlarms,
        LandfallOperation::ListDeploymentEvents,
        LandfallOperation::ListAuditRecords,
        LandfallOperation::DrainInstance,
        LandfallOperation::CreateHostPool,
        LandfallOperation::DeleteHostPool,
        LandfallOperation::ListHostPools,
        LandfallOperation::AddHostPoolMembers,
        LandfallOperation::RemoveHostPoolMembers,
        LandfallOperation::CreateJoinToken,
        LandfallOperation::ListJoinTokens,
        LandfallOperation::StartAgentUpdate,
        LandfallOperation::ListAgentUpdates,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LandfallOperation::CreateAccessKey => "CreateAccessKey",
            LandfallOperation::ListAccessKeys => "ListAccessKeys",
            LandfallOperation::RevokeAccessKey => "RevokeAccessKey",
            LandfallOperation::RegisterInstance => "RegisterInstance",
            LandfallOperation::GetLifecycleEventLog => "GetLifecycleEventLog",
            LandfallOperation::ListAgentStatus => "ListAgentStatus",
            LandfallOperation::CreateTargetGroup => "CreateTargetGroup",
            LandfallOperation::DeleteTargetGroup => "DeleteTargetGroup",
            LandfallOperation::ListTargetGroups => "ListTargetGroups",
            LandfallOperation::RegisterTargets => "RegisterTargets",
            LandfallOperation::DeregisterTargets => "DeregisterTargets",
            LandfallOperation::GetRouterState => "GetRouterState",
            LandfallOperation::ReportTargetHealth => "ReportTargetHealth",
            LandfallOperation::PutAlarm => "PutAlarm",
            LandfallOperation::DeleteAlarm => "DeleteAlarm",
            LandfallOperation::ListAlarms => "ListAlarms",
            LandfallOperation::ListDeploymentEvents => "ListDeploymentEvents",
            LandfallOperation::ListAuditRecords => "ListAuditRecords",
            LandfallOperation::DrainInstance => "DrainInstance",
            LandfallOperation::CreateHostPool => "CreateHostPool",
            LandfallOperation::DeleteHostPool => "DeleteHostPool",
            LandfallOperation::ListHostPools => "ListHostPools",
            LandfallOperation::AddHostPoolMembers => "AddHostPoolMembers",
            LandfallOperation::RemoveHostPoolMembers => "RemoveHostPoolMembers",
            LandfallOperation::CreateJoinToken => "CreateJoinToken",
            LandfallOperation::ListJoinTokens => "ListJoinTokens",
            LandfallOperation::StartAgentUpdate => "StartAgentUpdate",
            LandfallOperation::ListAgentUpdates => "ListAgentUpdates",
        }
    }

    pub fn from_name(name: &str) -> Option<LandfallOperation> {
        LandfallOperation::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// What an access key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Everything, including access keys and on-premises instance registration.
    #[serde(rename = "admin")]
    Admin,
    /// Everything but access key and instance management.
    #[serde(rename = "deployer")]
    Deployer,
    /// Get, BatchGet and List calls only.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// A host agent's key, bound to one on-premises instance: the agent protocol for that
    /// instance's commands and reading bundles, nothing of the public API.
    #[serde(rename = "instance")]
    Instance,
    /// A traffic router's key: reading target groups' desired state and reporting their
    /// targets' health, nothing else.
    #[serde(rename = "router")]
    Router,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Deployer, Role::ReadOnly, Role::Instance, Role::Router];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Deployer => "deployer",
            Role::ReadOnly => "read-only",
            Role::Instance => "instance",
            Role::Router => "router",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    pub fn allows(self, access: Access) -> bool {
        match self {
            Role::Admin => true,
            Role::Deployer => matches!(access, Access::Read | Access::Write),
            Role::ReadOnly => access == Access::Read,
            Role::Instance => false,
            Role::Router => access == Access::Router,
        }
    }
}

/// What an operation needs of the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads state.
    Read,
    /// Changes applications, configurations, groups, revisions or deployments.
    Write,
    /// Manages who can call the API and what serves traffic: access keys, on-premises
    /// instances, target groups.
    Admin,
    /// What a traffic router does: read its target group, report its targets' health.
    Router,
}

/// The access an operation needs.
pub fn operation_access(operation: Operation) -> Access {
    use Operation::*;
    match operation {
        RegisterOnPremisesInstance
        | DeregisterOnPremisesInstance
        | AddTagsToOnPremisesInstances
        | RemoveTagsFromOnPremisesInstances => Access::Admin,
        op if is_read(op.name()) => Access::Read,
        _ => Access::Write,
    }
}

pub fn landfall_operation_access(operation: LandfallOperation) -> Access {
    match operation {
        LandfallOperation::CreateAccessKey | LandfallOperation::RevokeAccessKey => Access::Admin,
        LandfallOperation::ListAccessKeys | LandfallOperation::RegisterInstance => Access::Admin,
        // A join token registers a host, as RegisterInstance does.
        LandfallOperation::CreateJoinToken | LandfallOperation::ListJoinTokens => Access::Admin,
        // What runs on every host, as root.
        LandfallOperation::StartAgentUpdate => Access::Admin,
        LandfallOperation::ListAgentUpdates => Access::Read,
        // Like DeregisterOnPremisesInstance, which it ends with.
        LandfallOperation::DrainInstance => Access::Admin,
        // Pool membership decides what runs where, as instance tags do (which are Admin too).
        LandfallOperation::CreateHostPool
        | LandfallOperation::DeleteHostPool
        | LandfallOperation::AddHostPoolMembers
        | LandfallOperation::RemoveHostPoolMembers => Access::Admin,
        LandfallOperation::GetLifecycleEventLog
        | LandfallOperation::ListAgentStatus
        | LandfallOperation::ListTargetGroups
        | LandfallOperation::ListHostPools => Access::Read,
        LandfallOperation::CreateTargetGroup
        | LandfallOperation::DeleteTargetGroup
        | LandfallOperation::RegisterTargets
        | LandfallOperation::DeregisterTargets => Access::Admin,
        LandfallOperation::GetRouterState | LandfallOperation::ReportTargetHealth => Access::Router,
        LandfallOperation::PutAlarm | LandfallOperation::DeleteAlarm => Access::Write,
        LandfallOperation::ListAlarms | LandfallOperation::ListDeploymentEvents => Access::Read,
        // Who did what is for administrators.
        LandfallOperation::ListAuditRecords => Access::Admin,
    }
}

fn is_read(name: &str) -> bool {
    ["Get", "BatchGet", "List"].iter().any(|prefix| name.starts_with(prefix))
}

/// An access key as the API shows it. The secret appears only in CreateAccessKey's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessKeyInfo {
    #[serde(rename = "accessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "secretAccessKey", default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    pub role: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "createTime")]
    pub create_time: Timestamp,
    /// `Active` or `Revoked`.
    pub status: String,
    #[serde(rename = "revokeTime", default, skip_serializing_if = "Option::is_none")]
    pub revoke_time: Option<Timestamp>,
    /// For `instance` keys: the on-premises instance the key belongs to.
    #[serde(rename = "instanceName", default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAccessKeyInput {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Required for role `instance`: the registered instance the key is for.
    #[serde(rename = "instanceName", default)]
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateAccessKeyOutput {
    #[serde(rename = "accessKey")]
    pub access_key: AccessKeyInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAccessKeysInput {
    #[serde(rename = "nextToken", default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListAccessKeysOutput {
    #[serde(rename = "accessKeys")]
    pub access_keys: Vec<AccessKeyInfo>,
    #[serde(rename = "nextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevokeAccessKeyInput {
    #[serde(rename = "accessKeyId", default)]
    pub access_key_id: Option<String>,
}

/// CreateJoinToken: a short-lived, single-use token with which one host registers itself
/// (`POST /agent/join`, which the install script at `/agent/install.sh` calls) and gets the tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateJoinTokenInput {
    #[serde(default)]
    pub tags: Option<Vec<crate::shapes::Tag>>,
    /// How long the token can be used, in seconds (default an hour, at most a week).
    #[serde(rename = "ttlSeconds", default)]
    pub ttl_seconds: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateJoinTokenOutput {
    /// The whole token, secret included: shown once, never again.
    pub token: String,
    #[serde(rename = "joinToken")]
    pub join_token: JoinTokenInfo,
}

/// A join token as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinTokenInfo {
    #[serde(rename = "tokenId")]
    pub token_id: String,
    pub tags: Vec<crate::shapes::Tag>,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "createTime")]
    pub create_time: Timestamp,
    #[serde(rename = "expireTime")]
    pub expire_time: Timestamp,
    /// `Unused`, `Used` or `Expired`.
    pub status: String,
    #[serde(rename = "useTime", default, skip_serializing_if = "Option::is_none")]
    pub use_time: Option<Timestamp>,
    /// The instance the host that used it registered as.
    #[serde(rename = "instanceName", default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListJoinTokensInput {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListJoinTokensOutput {
    #[serde(rename = "joinTokens")]
    pub join_tokens: Vec<JoinTokenInfo>,
}

/// StartAgentUpdate: the hosts of a deployment group (or the instances named) replace their
/// agent with the binary the server offers, at most `maxUnavailable` at a time. Hosts whose
/// agent cannot update itself (the official agent, `landfall agent` inside `landfall`) or runs
/// that version already are left out and said so.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartAgentUpdateInput {
    #[serde(rename = "applicationName", default)]
    pub application_name: Option<String>,
    #[serde(rename = "deploymentGroupName", default)]
    pub deployment_group_name: Option<String>,
    #[serde(rename = "instanceNames", default)]
    pub instance_names: Option<Vec<String>>,
    /// Default 1.
    #[serde(rename = "maxUnavailable", default)]
    pub max_unavailable: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartAgentUpdateOutput {
    #[serde(rename = "rolloutId")]
    pub rollout_id: String,
    pub version: String,
    /// The hosts asked to update.
    #[serde(rename = "instanceNames")]
    pub instance_names: Vec<String>,
    /// The hosts left out, each with why.
    pub skipped: Vec<SkippedInstance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedInstance {
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAgentUpdatesInput {
    /// Only this rollout's hosts.
    #[serde(rename = "rolloutId", default)]
    pub rollout_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListAgentUpdatesOutput {
    pub updates: Vec<AgentUpdateInfo>,
}

/// One host's update: `Pending` (waiting for its turn), `Updating` (told to), `Succeeded` or
/// `Failed` (with why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentUpdateInfo {
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    #[serde(rename = "rolloutId")]
    pub rollout_id: String,
    pub version: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(rename = "requestTime")]
    pub request_time: Timestamp,
    #[serde(rename = "offerTime", default, skip_serializing_if = "Option::is_none")]
    pub offer_time: Option<Timestamp>,
    #[serde(rename = "finishTime", default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Timestamp>,
}

/// RegisterInstance: registers an on-premises instance with an identity Landfall issues (IAM-user
/// style ARN `arn:aws:iam::<account>:user/landfall/<name>`), tags it, and creates its agent key,
/// in one step. `landfall instance register` uses it to write the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterInstanceInput {
    #[serde(rename = "instanceName", default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<crate::shapes::Tag>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterInstanceOutput {
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    #[serde(rename = "instanceArn")]
    pub instance_arn: String,
    #[serde(rename = "iamUserArn")]
    pub iam_user_arn: String,
    pub region: String,
    #[serde(rename = "accessKey")]
    pub access_key: AccessKeyInfo,
}

impl RegisterInstanceOutput {
    /// The official agent's `codedeploy.onpremises.yml` for this instance: its identity and key.
    pub fn on_premises_file(&self) -> String {
        format!(
            "---\nregion: {}\niam_user_arn: {}\naws_access_key_id: {}\naws_secret_access_key: {}\n",
            self.region,
            self.iam_user_arn,
            self.access_key.access_key_id,
            self.access_key.secret_access_key.as_deref().unwrap_or_default(),
        )
    }
}

/// DrainInstance: a host leaves. Every Server deployment group that deployed to it runs a
/// termination deployment on it (BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic,
/// ApplicationStop; creator `autoscalingTermination`) once no deployment of the group runs on it;
/// once they are over, or have run out of time, and no deployment runs on it, the instance is
/// deregistered. With no such group and nothing running there it is deregistered at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainInstanceInput {
    #[serde(rename = "instanceName", default)]
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainInstanceOutput {
    /// The termination deployments started now.
    #[serde(rename = "deploymentIds", default)]
    pub deployment_ids: Vec<String>,
    /// Deployments running on the host that its termination deployments (or its deregistration)
    /// wait for.
    #[serde(rename = "waitingForDeploymentIds", default)]
    pub waiting_for_deployment_ids: Vec<String>,
    /// Whether it has left already (deregistered).
    #[serde(default)]
    pub left: bool,
}

/// A host pool: a named set of registered hosts, Landfall's stand-in for an EC2 Auto Scaling
/// group. A deployment group whose `autoScalingGroups` names the pool targets its members (in
/// addition to the hosts its tags select), and a host added to it gets the group's revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostPoolInfo {
    #[serde(rename = "poolName")]
    pub pool_name: String,
    #[serde(rename = "createTime")]
    pub create_time: Timestamp,
    /// Its members, by name.
    #[serde(rename = "instanceNames", default)]
    pub instance_names: Vec<String>,
    /// The deployment groups that name it, as `application/group` (answers only; not stored).
    #[serde(rename = "deploymentGroups", default, skip_serializing_if = "Vec::is_empty")]
    pub deployment_groups: Vec<String>,
}

/// CreateHostPool: a new pool, with the registered instances given as its first members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateHostPoolInput {
    #[serde(rename = "poolName", default)]
    pub pool_name: Option<String>,
    #[serde(rename = "instanceNames", default)]
    pub instance_names: Option<Vec<String>>,
}

/// AddHostPoolMembers and RemoveHostPoolMembers: registered instances join or leave a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostPoolMembersInput {
    #[serde(rename = "poolName", default)]
    pub pool_name: Option<String>,
    #[serde(rename = "instanceNames", default)]
    pub instance_names: Option<Vec<String>>,
}

/// The pool as it is after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPoolOutput {
    #[serde(rename = "hostPool")]
    pub host_pool: HostPoolInfo,
}

/// DeleteHostPool (refused while a deployment group names the pool), and ListHostPools (no
/// name: every pool).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostPoolNameInput {
    #[serde(rename = "poolName", default)]
    pub pool_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListHostPoolsOutput {
    #[serde(rename = "hostPools")]
    pub host_pools: Vec<HostPoolInfo>,
}

/// GetLifecycleEventLog: the output a host's agent streamed for one lifecycle event (beyond
/// CodeDeploy, which keeps a 2 KB tail of failures only), a page at a time. The server keeps the
/// start and the end of a long output; where it left bytes out, the page says so in a line of its
/// own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetLifecycleEventLogInput {
    #[serde(rename = "deploymentId", default)]
    pub deployment_id: Option<String>,
    #[serde(rename = "targetId", default)]
    pub target_id: Option<String>,
    #[serde(rename = "lifecycleEventName", default)]
    pub lifecycle_event_name: Option<String>,
    /// Where to start, in bytes of everything the agent sent: a reader passes the last answer's
    /// `nextOffset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Start this many bytes before the end instead (the end of a failure's output).
    #[serde(rename = "tailBytes", default, skip_serializing_if = "Option::is_none")]
    pub tail_bytes: Option<u64>,
    /// The most output one answer carries (default and largest: 1 MiB).
    #[serde(rename = "maxBytes", default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetLifecycleEventLogOutput {
    /// The lines as the agent wrote them (`[stdout]...`, `[stderr]...`, script headers), from
    /// the offset on, with a line saying how many bytes were left out where the server kept
    /// none.
    pub log: String,
    /// Whether the event is over and this answer reaches the end of its output.
    pub complete: bool,
    /// The offset to ask from next time; less than `size` while more is there to read.
    #[serde(rename = "nextOffset", default)]
    pub next_offset: Option<u64>,
    /// How many bytes of output the agent has sent for the event.
    #[serde(default)]
    pub size: Option<u64>,
}

/// ListAgentStatus: when each instance's agent last polled, and the version it reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAgentStatusInput {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAgentStatusOutput {
    pub agents: Vec<AgentStatus>,
    /// The version of the agent binary the server offers hosts (`/agent/landfall-agent`), if it
    /// offers one.
    #[serde(rename = "offeredAgentVersion", default, skip_serializing_if = "Option::is_none")]
    pub offered_agent_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    #[serde(rename = "lastSeen")]
    pub last_seen: Timestamp,
    #[serde(rename = "agentVersion", default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// A Landfall agent older than the one the server offers.
    #[serde(default)]
    pub outdated: bool,
}

/// A target group: a named pool of backends (one per instance, `host:port`) behind a traffic
/// router, with the health check the router runs. A deployment group's `loadBalancerInfo`
/// names target groups; BlockTraffic and AllowTraffic take an instance out of and back into
/// each of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupInfo {
    pub name: String,
    /// `builtin` (`landfall router`) or `haproxy`.
    pub router: String,
    #[serde(rename = "healthCheck")]
    pub health_check: HealthCheck,
    /// How long a deregistered target keeps its requests in flight before it is cut off.
    #[serde(rename = "deregistrationDelaySeconds")]
    pub deregistration_delay_seconds: u32,
    pub targets: Vec<TargetInfo>,
    /// Bumped on every change to the desired state (targets, weights, serving); routers wait
    /// for a version they have not seen.
    pub version: u64,
    #[serde(rename = "createTime")]
    pub create_time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The HTTP path a router GETs on each target; 2xx and 3xx are healthy.
    pub path: String,
    #[serde(rename = "intervalSeconds")]
    pub interval_seconds: u32,
    #[serde(rename = "timeoutSeconds")]
    pub timeout_seconds: u32,
    /// Consecutive passes that make a target healthy.
    #[serde(rename = "healthyThreshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures that make it unhealthy.
    #[serde(rename = "unhealthyThreshold")]
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            path: "/".into(),
            interval_seconds: 2,
            timeout_seconds: 2,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

/// One backend of a target group: what the server wants of it, and what its router last saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    /// `host:port`.
    pub address: String,
    /// Relative share of the traffic among serving targets.
    pub weight: u32,
    /// The weight a running blue/green deployment imposes while it shifts traffic between the
    /// fleets (see [`TargetInfo::effective_weight`]); cleared when the deployment ends.
    #[serde(rename = "trafficWeight", default, skip_serializing_if = "Option::is_none")]
    pub traffic_weight: Option<u32>,
    /// In rotation (true) or taken out of it (false: drained, then no traffic).
    pub serving: bool,
    /// Bumped whenever `serving` or `weight` changes, so a health report is matched to the
    /// desired state it was made under.
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<TargetHealth>,
}

impl TargetInfo {
    /// The weight routers use: a deployment's traffic weight while it shifts traffic, the
    /// registered weight otherwise. Changing it does not change the target's generation: a
    /// target moved from 10 % to 100 % stays healthy and in rotation.
    pub fn effective_weight(&self) -> u32 {
        self.traffic_weight.unwrap_or(self.weight)
    }
}

/// A router's report on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub state: HealthState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The target generation the report was made under.
    pub generation: u64,
    #[serde(rename = "reportedAt")]
    pub reported_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTargetGroupInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub router: Option<String>,
    #[serde(rename = "healthCheck", default)]
    pub health_check: Option<HealthCheck>,
    #[serde(rename = "deregistrationDelaySeconds", default)]
    pub deregistration_delay_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupNameInput {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupOutput {
    #[serde(rename = "targetGroup")]
    pub target_group: TargetGroupInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListTargetGroupsOutput {
    #[serde(rename = "targetGroups")]
    pub target_groups: Vec<TargetGroupInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterTargetsInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub targets: Option<Vec<TargetSpec>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    #[serde(rename = "instanceName", default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
    /// Registered out of rotation (a blue/green replacement host that must not serve before its
    /// deployment's AllowTraffic). Only for a new target; default false.
    #[serde(default)]
    pub standby: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeregisterTargetsInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "instanceNames", default)]
    pub instance_names: Option<Vec<String>>,
}

/// GetRouterState: a router's long poll. Answers at once with the target group when its
/// version differs from `knownVersion`, else when it changes or after about 20 s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetRouterStateInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "knownVersion", default)]
    pub known_version: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportTargetHealthInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub reports: Option<Vec<TargetReport>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub state: Option<HealthState>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub generation: Option<u64>,
}

/// An alarm a deployment group can name in its `alarmConfiguration`: a PromQL expression
/// evaluated against the server's Prometheus, in ALARM when any of its samples compares with
/// the threshold as the operator says. (A name that is no such alarm is taken as a Prometheus
/// alerting rule, in ALARM while it fires.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmInfo {
    #[serde(rename = "alarmName")]
    pub alarm_name: String,
    pub query: String,
    #[serde(rename = "comparisonOperator")]
    pub comparison_operator: ComparisonOperator,
    pub threshold: f64,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "createTime")]
    pub create_time: Timestamp,
    #[serde(rename = "updateTime")]
    pub update_time: Timestamp,
    /// Its state now (ListAlarms with `evaluate`); never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlarmState>,
}

/// How an alarm's samples are compared with its threshold (CloudWatch's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    #[default]
    GreaterThanThreshold,
    GreaterThanOrEqualToThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    pub const ALL: [ComparisonOperator; 4] = [
        ComparisonOperator::GreaterThanThreshold,
        ComparisonOperator::GreaterThanOrEqualToThreshold,
        ComparisonOperator::LessThanThreshold,
        ComparisonOperator::LessThanOrEqualToThreshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanThreshold => "GreaterThanThreshold",
            ComparisonOperator::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            ComparisonOperator::LessThanThreshold => "LessThanThreshold",
            ComparisonOperator::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// The operator's symbol, as people write it.
    pub fn symbol(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanThreshold => ">",
            ComparisonOperator::GreaterThanOrEqualToThreshold => ">=",
            ComparisonOperator::LessThanThreshold => "<",
            ComparisonOperator::LessThanOrEqualToThreshold => "<=",
        }
    }

    pub fn parse(value: &str) -> Option<ComparisonOperator> {
        ComparisonOperator::ALL.into_iter().find(|op| op.as_str() == value || op.symbol() == value)
    }

    pub fn holds(self, sample: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanThreshold => sample > threshold,
            ComparisonOperator::GreaterThanOrEqualToThreshold => sample >= threshold,
            ComparisonOperator::LessThanThreshold => sample < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => sample <= threshold,
        }
    }
}

/// An alarm's state as last evaluated, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    pub state: AlarmStateValue,
    pub reason: String,
}

wire_enum!(AlarmStateValue {
    Ok = "OK",
    Alarm = "ALARM",
    // It could not be read (the reason says why).
    Unknown = "UNKNOWN",
});

wire_enum!(HealthState {
    // Checks not yet conclusive.
    Initial = "initial",
    Healthy = "healthy",
    Unhealthy = "unhealthy",
    Draining = "draining",
    Drained = "drained",
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PutAlarmInput {
    #[serde(rename = "alarmName", default)]
    pub alarm_name: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(rename = "comparisonOperator", default)]
    pub comparison_operator: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutAlarmOutput {
    pub alarm: AlarmInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteAlarmInput {
    #[serde(rename = "alarmName", default)]
    pub alarm_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAlarmsInput {
    /// Evaluate each alarm now and return its state.
    #[serde(default)]
    pub evaluate: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAlarmsOutput {
    pub alarms: Vec<AlarmInfo>,
}

/// What a deployment's timeline records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentEventType {
    /// The deployment was created (by a user, a rollback, ...).
    Created,
    /// Its status changed (`status`).
    StatusChanged,
    /// Hosts were started together (`instanceIds`).
    WaveStarted,
    /// A zonal deployment moved to its next zone (`message` names it).
    ZoneStarted,
    /// One lifecycle event on one host changed status.
    LifecycleEvent,
    /// A host's status changed.
    InstanceStatusChanged,
    /// An alarm was seen in ALARM, or could not be read.
    AlarmSeen,
    /// A stop was asked for (by a user, an alarm, a wait that ran out).
    StopRequested,
    /// A blue/green wait was ended by ContinueDeployment.
    ContinueRequested,
    /// A rollback deployment was started (`relatedDeploymentId`).
    RollbackStarted,
    /// Hosts that joined while the deployment ran missed its revision (`instanceIds`): a
    /// follow-up deployment updates them (`relatedDeploymentId`), or they stay as they are
    /// (outdatedInstancesStrategy IGNORE).
    OutdatedInstances,
}

/// One entry of a deployment's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEventInfo {
    /// Its place in the timeline (increasing; assigned when stored).
    pub sequence: i64,
    #[serde(rename = "deploymentId")]
    pub deployment_id: String,
    pub time: Timestamp,
    #[serde(rename = "type")]
    pub event_type: DeploymentEventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "instanceIds", default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    #[serde(rename = "lifecycleEvent", default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<String>,
    #[serde(rename = "relatedDeploymentId", default, skip_serializing_if = "Option::is_none")]
    pub related_deployment_id: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListDeploymentEventsInput {
    #[serde(rename = "deploymentId", default)]
    pub deployment_id: Option<String>,
    /// Only events after this sequence number (a follower passes the last one it saw).
    #[serde(rename = "afterSequence", default)]
    pub after_sequence: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListDeploymentEventsOutput {
    pub events: Vec<DeploymentEventInfo>,
    /// Whether the deployment is over, so no more events will come.
    pub complete: bool,
}

/// One mutating API call, as the append-only audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecordInfo {
    pub sequence: i64,
    pub time: Timestamp,
    #[serde(rename = "accessKeyId")]
    pub access_key_id: String,
    pub role: String,
    /// The operation's name (CodeDeploy's, or Landfall's extension prefixed `Landfall.`).
    pub operation: String,
    /// What the call named: its identifying request fields (names, ids), never secrets.
    #[serde(default)]
    pub resources: std::collections::BTreeMap<String, String>,
    /// The caller's address.
    #[serde(rename = "sourceAddress")]
    pub source_address: String,
    /// `Success`, or the AWS exception the call got.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAuditRecordsInput {
    #[serde(rename = "startTime", default)]
    pub start_time: Option<Timestamp>,
    #[serde(rename = "endTime", default)]
    pub end_time: Option<Timestamp>,
    #[serde(rename = "accessKeyId", default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(rename = "nextToken", default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAuditRecordsOutput {
    /// Oldest first.
    pub records: Vec<AuditRecordInfo>,
    #[serde(rename = "nextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_access() {
        assert_eq!(operation_access(Operation::GetDeployment), Access::Read);
        assert_eq!(operation_access(Operation::BatchGetApplications), Access::Read);
        assert_eq!(operation_access(Operation::ListTagsForResource), Access::Read);
        assert_eq!(operation_access(Operation::CreateDeployment), Access::Write);
        assert_eq!(operation_access(Operation::TagResource), Access::Write);
        assert_eq!(operation_access(Operation::RegisterOnPremisesInstance), Access::Admin);
        assert!(!Role::ReadOnly.allows(Access::Write));
        assert!(Role::Deployer.allows(Access::Write));
        assert!(!Role::Deployer.allows(Access::Admin));
        assert!(Role::Admin.allows(Access::Admin));
        assert_eq!(Role::parse("read-only"), Some(Role::ReadOnly));
        assert_eq!(Role::parse("root"), None);
        assert!(Role::ALL.iter().all(|role| Role::parse(role.as_str()) == Some(*role)));
        for access in [Access::Read, Access::Write, Access::Admin] {
            assert!(!Role::Instance.allows(access), "instance keys reach no public API operation");
            assert!(!Role::Router.allows(access), "router keys reach only the router operations");
        }
        assert!(Role::Router.allows(Access::Router) && Role::Admin.allows(Access::Router));
        assert!(!Role::Deployer.allows(Access::Router) && !Role::ReadOnly.allows(Access::Router));
    }
}
