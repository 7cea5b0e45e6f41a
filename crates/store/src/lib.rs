//! Landfall's persistent state. The [`Store`] trait is the one way the server reads and writes it;
//! [`sqlite::SqliteStore`] is the embedded implementation. Every method is one atomic step: what a
//! method checks (a name is free, a group has no active deployment) holds when it writes.
//!
//! Records keep the API's own shapes (as JSON documents) next to the columns that are looked up,
//! filtered or kept unique, so a field added to a shape needs no schema change.

/// The checks every store implementation passes; compiled for tests only.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod schema;
#[macro_use]
mod sql;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use landfall_api::Timestamp;
use landfall_api::landfall::{AlarmInfo, AuditRecordInfo, DeploymentEventInfo, HostPoolInfo, Role, TargetGroupInfo};
use landfall_api::shapes::{
    ApplicationInfo, DeploymentConfigInfo, DeploymentGroupInfo, DeploymentInfo, DeploymentTarget, GenericRevisionInfo,
    InstanceInfo, RevisionLocation, Tag,
};
pub use landfall_engine::run::{CommandState, Progress};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name or identity is taken.
    #[error("the {0} already exists")]
    AlreadyExists(Unique),
    /// The record changed since it was read (its version or revision moved on): nothing was
    /// written; read it again and retry.
    #[error("{0} changed meanwhile")]
    Changed(String),
    /// The group already has an active deployment (its id).
    #[error("the deployment group already has an active deployment {0}")]
    ActiveDeployment(String),
    /// A deployment configuration is still used by deployment groups (their names).
    #[error("the deployment configuration is used by {0:?}")]
    InUse(Vec<String>),
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// Creating the record would exceed the given limit.
    #[error("limit of {0} reached")]
    LimitExceeded(usize),
    /// A step was fenced off: the lease it was computed under is no longer its server's.
    #[error("the lease {0} is held by another server now")]
    LeaseLost(String),
    /// A stored record cannot be read (which, and why); the server answers InternalFailure.
    #[error("unreadable stored record: {0}")]
    Unreadable(String),
    /// The database failed; the server answers InternalFailure and logs this.
    #[error("store failure: {0}")]
    Backend(#[source] BoxedError),
    /// The database cannot be reached now; the server answers that it is unavailable (and
    /// carries on once it is back).
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] BoxedError),
    /// The disk (or the database's space) is full: nothing was written.
    #[error("the store's disk is full: {0}")]
    Full(String),
}

/// The cause of a database failure, kept for the log.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    /// A failure described by the store itself rather than by the database driver.
    pub fn backend(message: impl Into<String>) -> StoreError {
        StoreError::Backend(message.into().into())
    }
}

/// What must be unique, for [`StoreError::AlreadyExists`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    AccessKey,
    Application,
    Deployment,
    DeploymentConfig,
    DeploymentGroup,
    /// An ECS service belongs to one deployment group.
    EcsService,
    HostPool,
    /// An instance name among registered instances.
    Instance,
    /// The IAM user ARN of a registered instance.
    IamUserArn,
    /// The IAM session ARN of a registered instance.
    IamSessionArn,
    TargetGroup,
    JoinToken,
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unique::AccessKey => "access key",
            Unique::JoinToken => "join token",
            Unique::Application => "application",
            Unique::Deployment => "deployment",
            Unique::DeploymentConfig => "deployment configuration",
            Unique::DeploymentGroup => "deployment group",
            Unique::EcsService => "ECS service's deployment group",
            Unique::HostPool => "host pool",
            Unique::Instance => "instance",
            Unique::IamUserArn => "instance's IAM user ARN",
            Unique::IamSessionArn => "instance's IAM session ARN",
            Unique::TargetGroup => "target group",
        })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A store's schema version against this Landfall's (`landfall server --check-store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The newest migration the store has.
    pub applied: i64,
    /// The newest this Landfall knows.
    pub known: i64,
    /// The oldest schema version whose Landfall the release that made `applied` says works on
    /// it (None for a store whose release did not say).
    pub compatible_from: Option<i64>,
}

impl SchemaStatus {
    /// Whether this Landfall can run on the store (migrating it first if it is older).
    pub fn usable(&self) -> bool {
        self.applied <= self.known || self.compatible_from.is_some_and(|floor| floor <= self.known)
    }
}

/// A page of a listing: the items and, when more follow, the cursor to continue after.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Where a listing starts and how much it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The cursor of the previous page's `next`, if any.
    pub after: Option<String>,
    pub limit: usize,
}

/// How much of one command's output the store keeps: the first chunks, up to `head` bytes, and
/// the newest ones, up to `total` bytes in all. What lies between is dropped as it arrives, so
/// a hook printing without end costs at most `total` bytes of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimit {
    pub total: u64,
    pub head: u64,
}

impl LogLimit {
    /// A quarter of the limit for the start of the output, the rest for its end (where a
    /// failure shows).
    pub fn keeping(total: u64) -> LogLimit {
        LogLimit { total, head: total / 4 }
    }
}

/// Where a read of a command's output starts, in bytes of everything the agent sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStart {
    Offset(u64),
    /// This many bytes before the end.
    Tail(u64),
}

/// Part of a command's output: `offset` is where `text` starts in everything the agent sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunkRecord {
    pub offset: u64,
    pub text: String,
}

/// A page of a command's output, and how many bytes the agent has sent in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    pub chunks: Vec<LogChunkRecord>,
    pub received: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role: Role,
    pub description: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// For `instance` keys: the on-premises instance the key belongs to.
    pub instance_name: Option<String>,
}

/// A join token: lets one host register itself (`landfall instance token create`, then the
/// install script). Only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinTokenRecord {
    pub token_id: String,
    /// Hex SHA-256 of the token's secret part.
    pub secret_sha256: String,
    /// The tags the host it registers gets.
    pub tags: Vec<landfall_api::shapes::Tag>,
    pub description: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When a host claimed it, and the instance that host registered as (once it has).
    pub used_at: Option<Timestamp>,
    pub used_by: Option<String>,
}

/// A host asked to update its agent (`landfall agent-update`): one per instance, the newest
/// request replacing an unfinished older one.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentUpdateRecord {
    pub instance_name: String,
    /// The request it belongs to (`landfall agent-update` names its hosts together).
    pub rollout_id: String,
    /// The version and SHA-256 of the binary offered.
    pub version: String,
    pub sha256: String,
    /// How many hosts of the rollout may be updating at once.
    pub max_unavailable: u32,
    pub requested_at: Timestamp,
    /// When the host was told to update (it is updating until it comes back or times out).
    pub offered_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// `Succeeded`, or `Failed: why` once finished.
    pub outcome: Option<String>,
}

/// What claiming a join token found.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinClaim {
    /// The token was valid and is now used: register the host, then settle it.
    Claimed(JoinTokenRecord),
    /// No token has that id and secret.
    Unknown,
    Expired(Timestamp),
    /// Claimed before (when, and by which instance if its registration was settled).
    Used(Timestamp, Option<String>),
}

/// A deployment group as stored: its settings (in their normalised API shape) and the
/// application it belongs to. `applicationName`, `lastSuccessfulDeployment` and
/// `lastAttemptedDeployment` are filled in when it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub application_id: String,
    pub info: DeploymentGroupInfo,
}

impl GroupRecord {
    pub fn id(&self) -> &str {
        self.info.deployment_group_id.as_deref().unwrap_or_default()
    }
}

/// A registered revision: its identity key within the application, where it is, and when it
/// was registered and used. `deploymentGroups` is filled in when read.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRecord {
    pub application_id: String,
    pub key: String,
    pub location: RevisionLocation,
    pub info: GenericRevisionInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeployedFilter {
    /// Only revisions that are some group's target revision.
    Include,
    /// Only revisions that are no group's target revision.
    Exclude,
    #[default]
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevisionSort {
    #[default]
    RegisterTime,
    FirstUsedTime,
    LastUsedTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevisionFilter {
    pub s3_bucket: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub deployed: DeployedFilter,
    pub sort: RevisionSort,
    pub descending: bool,
}

/// A deployment as stored. `exclusive` deployments obey the one-active-deployment-per-group rule
/// (Auto Scaling launch deployments do not).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentRecord {
    pub application_id: String,
    pub group_id: String,
    pub exclusive: bool,
    pub info: DeploymentInfo,
    /// The engine's own state (kept as JSON; a record whose progress cannot be read is
    /// refused as Unreadable rather than restarted from nothing).
    pub progress: Progress,
    /// Bumped by every write; a write based on an older version is refused as Changed.
    pub version: i64,
}

impl DeploymentRecord {
    pub fn id(&self) -> &str {
        self.info.deployment_id.as_deref().unwrap_or_default()
    }
}

/// One target of a deployment (an instance, a Lambda function, an ECS service).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetRecord {
    pub deployment_id: String,
    pub target_id: String,
    /// Its place in the order the deployment takes its targets.
    pub position: i64,
    pub target: DeploymentTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentFilter {
    pub group_id: Option<String>,
    /// Empty: every status.
    pub statuses: Vec<String>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    pub external_id: Option<String>,
}

/// One lifecycle event sent to one host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostCommandRecord {
    /// `hc-…`, the HostCommandIdentifier.
    pub id: String,
    pub deployment_id: String,
    /// The instance (its name).
    pub target_id: String,
    pub lifecycle_event: String,
    pub state: CommandState,
    pub created_at: Timestamp,
    pub dispatched_at: Option<Timestamp>,
    pub acknowledged_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub diagnostics: Option<landfall_api::shapes::Diagnostics>,
    /// Its place in the order commands were stored (assigned by the store; 0 until then).
    pub seq: i64,
}

/// A target group as stored, with the revision its next update must match.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupRecord {
    pub info: TargetGroupInfo,
    pub revision: i64,
}

/// A host leaving its deployment groups (`landfall instance drain`, or a deregistration a group
/// with terminationHookEnabled makes wait): it is deregistered once the termination deployments
/// it needs are over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartureRecord {
    pub instance_name: String,
    /// Drained: every group that deployed to it stops it first; else only those with
    /// terminationHookEnabled.
    pub drained: bool,
    pub requested_at: Timestamp,
}

/// When an instance's agent last polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatusRecord {
    pub instance_name: String,
    pub last_seen: Timestamp,
    pub agent_version: Option<String>,
}

/// What a deployment group last did on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHistoryRecord {
    pub group_id: String,
    pub instance_name: String,
    /// The revision its last successful deployment installed.
    pub revision_key: Option<String>,
    pub healthy: bool,
}

/// Everything one engine step changes, written in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentStep {
    /// When the step was computed (the completion time of commands it ends).
    pub now: Timestamp,
    /// The new record; its `version` is the one the step was computed from.
    pub deployment: DeploymentRecord,
    pub targets: Vec<TargetRecord>,
    pub new_commands: Vec<HostCommandRecord>,
    /// (command id, new state, diagnostics): only commands not yet final change.
    pub command_updates: Vec<(String, CommandState, Option<landfall_api::shapes::Diagnostics>)>,
    pub history: Vec<InstanceHistoryRecord>,
    /// The group's new target revision (after a success).
    pub target_revision: Option<(RevisionLocation, String)>,
    /// A deployment started by this one (a rollback), with its targets and revision.
    pub follow_up: Option<(DeploymentRecord, Vec<TargetRecord>, RevisionRecord)>,
    /// Entries for the deployments' timelines (sequence numbers are assigned when stored).
    pub events: Vec<DeploymentEventInfo>,
    /// Trigger notifications for the outbox.
    pub triggers: Vec<TriggerMessage>,
    /// The lease the step was computed under: written only if its holder still has it.
    pub fence: Option<Fence>,
}

/// A lease as one holder took it: a write carrying it is refused (LeaseLost) once another
/// holder has taken the lease, even if the first one does not know yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    /// Changes whenever the lease changes hands.
    pub epoch: i64,
}

/// Work that one server does at a time (a deployment's progress, alarm polling, trigger
/// delivery), held until `expires_at` unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    pub expires_at: Timestamp,
}

/// A wake-up call from one server to the others on the same database: `kind` says what
/// changed (a host has a command, a deployment has news...), `keys` for which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub keys: Vec<String>,
}

/// What a notice is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    /// Hosts that have a new command (their long polls look again).
    Host,
    /// Deployments with news (a host finished an event, a stop): their owner reconciles.
    Deployment,
    /// Target groups whose desired state changed (their routers' long polls answer).
    TargetGroup,
    /// New trigger messages in the outbox.
    Outbox,
    /// Hosts may have joined or left a group.
    Fleet,
    /// Sent to every listener after its connection to the database was lost and restored:
    /// notices sent meanwhile are gone, so everything is worth a look.
    Resync,
    /// One this release does not know (from a newer replica): ignored.
    Unknown(String),
}

impl NoticeKind {
    const KNOWN: [NoticeKind; 6] = [
        NoticeKind::Host,
        NoticeKind::Deployment,
        NoticeKind::TargetGroup,
        NoticeKind::Outbox,
        NoticeKind::Fleet,
        NoticeKind::Resync,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            NoticeKind::Host => "host",
            NoticeKind::Deployment => "deployment",
            NoticeKind::TargetGroup => "target-group",
            NoticeKind::Outbox => "outbox",
            NoticeKind::Fleet => "fleet",
            NoticeKind::Resync => "resync",
            NoticeKind::Unknown(other) => other,
        }
    }

    pub fn parse(word: &str) -> NoticeKind {
        NoticeKind::KNOWN.into_iter().find(|kind| kind.as_str() == word).unwrap_or(NoticeKind::Unknown(word.to_owned()))
    }
}

impl Notice {
    pub fn new(kind: NoticeKind, keys: impl IntoIterator<Item = impl Into<String>>) -> Notice {
        Notice { kind, keys: keys.into_iter().map(Into::into).collect() }
    }

    /// The notice as messages of at most `limit` bytes each: the kind, then keys, one per
    /// line (names never hold a line break). A key too long for any message is left out.
    pub fn payloads(&self, limit: usize) -> Vec<String> {
        let mut payloads = Vec::new();
        let kind = self.kind.as_str();
        let mut current = kind.to_owned();
        for key in &self.keys {
            if kind.len() + 1 + key.len() > limit {
                continue;
            }
            if current.len() + 1 + key.len() > limit {
                payloads.push(std::mem::replace(&mut current, kind.to_owned()));
            }
            current.push('\n');
            current.push_str(key);
        }
        if current.len() > kind.len() || self.keys.is_empty() {
            payloads.push(current);
        }
        payloads
    }

    /// A message made by [`Notice::payloads`].
    pub fn parse(payload: &str) -> Notice {
        let mut lines = payload.split('\n');
        let kind = NoticeKind::parse(lines.next().unwrap_or_default());
        Notice { kind, keys: lines.map(str::to_owned).collect() }
    }
}

/// A trigger notification in the outbox: written in the same transaction as the change it
/// reports, then delivered (retried with backoff) by the server until its receiver accepts it
/// or it expires.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriggerMessage {
    /// Its place in the outbox (assigned when stored): messages to one destination about one
    /// deployment are delivered in this order.
    pub sequence: i64,
    /// Unique, and the same on every attempt: receivers drop repeats by it.
    pub message_id: String,
    pub deployment_id: String,
    /// The trigger's target (a URL, or an SNS topic ARN the server maps to one).
    pub destination: String,
    pub trigger_name: String,
    /// The CodeDeploy event (DeploymentStart, InstanceFailure, ...).
    pub event: String,
    pub subject: String,
    /// The message, as CodeDeploy's SNS notifications carry it (JSON).
    pub body: String,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub state: TriggerState,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerState {
    #[default]
    Pending,
    Delivered,
    /// Given up on: its receiver did not accept it before it expired.
    Expired,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Pending => "Pending",
            TriggerState::Delivered => "Delivered",
            TriggerState::Expired => "Expired",
        }
    }

    pub fn parse(value: &str) -> Option<TriggerState> {
        [TriggerState::Pending, TriggerState::Delivered, TriggerState::Expired]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// Which audit records a query wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilter {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub access_key_id: Option<String>,
    pub operation: Option<String>,
}

/// What became of a command's completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Recorded: the first completion of a command in flight; the command as it now stands.
    Recorded(Box<HostCommandRecord>),
    /// The command had already completed (the official agent sends failures twice).
    Duplicate,
    /// The command was never handed to an agent, or was withdrawn.
    NotInFlight,
    /// The target has no command with this id.
    Unknown,
}

/// The resources that carry resource tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaggedKind {
    Application,
    DeploymentGroup,
    DeploymentConfig,
}

/// The store itself and the servers sharing it: schema, installation metadata, leases and notices.
#[async_trait]
pub trait Coordination: Send + Sync {
    // -- installation metadata --------------------------------------------------------------
    /// Closes the store's connections, waiting for those in use to finish.
    async fn close(&self);
    /// The schema version the store is at (a read that also proves the store answers).
    async fn schema_version(&self) -> StoreResult<i64>;
    /// Sets `key` to `value` unless it is set already; returns the value that is set.
    async fn init_meta(&self, key: &str, value: &str) -> StoreResult<String>;

    // -- leases and notices (several servers on one database) -------------------------------
    /// Takes the lease `name` for `holder` until `until`, if it is free, expired at `now`, or
    /// `holder`'s already (then it is extended); returns the fence to write under, None if
    /// another holder has it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<Fence>>;
    /// Extends every lease `holder` has to `until`; returns them.
    async fn renew_leases(&self, holder: &str, until: Timestamp) -> StoreResult<Vec<Fence>>;
    /// Gives the lease up, if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// Every lease, by name.
    async fn leases(&self) -> StoreResult<Vec<LeaseRecord>>;
    /// Tells every server listening on this database (this one included); a store that only
    /// one server uses ignores it.
    async fn publish(&self, notice: &Notice) -> StoreResult<()>;
    /// The notices published on this database, from now on; None for a store that only one
    /// server uses. After a lost connection the stream carries a [`NoticeKind::Resync`] notice.
    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>>;
}

/// Access keys and ended console sessions.
#[async_trait]
pub trait Credentials: Send + Sync {
    // -- access keys -------------------------------------------------------------------------
    /// LimitExceeded if `limit` keys (active or revoked) exist already.
    async fn create_access_key(&self, key: &AccessKeyRecord, limit: usize) -> StoreResult<()>;
    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    async fn list_access_keys(&self, page: &PageRequest) -> StoreResult<Page<AccessKeyRecord>>;
    /// Marks the key revoked; NotFound if there is no such key, Ok if it was revoked already.
    async fn revoke_access_key(&self, access_key_id: &str, at: Timestamp) -> StoreResult<()>;
    /// Revokes every active key of an instance; returns their ids.
    async fn revoke_instance_keys(&self, instance_name: &str, at: Timestamp) -> StoreResult<Vec<String>>;
    /// The keys revoked at or after `since`, oldest first: how a server learns, without reading
    /// every key it caches, which were revoked through another server.
    async fn keys_revoked_since(&self, since: Timestamp) -> StoreResult<Vec<AccessKeyRecord>>;

    // -- console sessions ---------------------------------------------------------------------------
    /// Records that the console session `nonce` was signed out of (it would otherwise last
    /// until `expires_at`); forgets ended sessions that would have expired before `now`.
    async fn end_session(&self, nonce: &str, expires_at: Timestamp, now: Timestamp) -> StoreResult<()>;
    /// Whether the console session `nonce` was signed out of.
    async fn session_ended(&self, nonce: &str) -> StoreResult<bool>;
}

/// Join tokens, with which hosts register themselves (the install script).
#[async_trait]
pub trait Joining: Send + Sync {
    /// Stores a new token, forgetting tokens that expired a week before `token.created_at`;
    /// LimitExceeded if `limit` tokens are kept already.
    async fn create_join_token(&self, token: &JoinTokenRecord, limit: usize) -> StoreResult<()>;
    /// Marks the token with this id and secret used at `now` if it is neither used nor expired;
    /// of two hosts claiming it at once, one gets it.
    async fn claim_join_token(&self, token_id: &str, secret_sha256: &str, now: Timestamp) -> StoreResult<JoinClaim>;
    /// After a claim: `Some(instance)` records the instance the host registered as; `None` (its
    /// registration was refused) makes the token usable again.
    async fn settle_join_token(&self, token_id: &str, instance: Option<&str>) -> StoreResult<()>;
    /// Tokens kept, newest first.
    async fn join_tokens(&self) -> StoreResult<Vec<JoinTokenRecord>>;
}

/// Agent updates rolled out to hosts.
#[async_trait]
pub trait AgentUpdates: Send + Sync {
    /// Records the requests, replacing each host's earlier one (finished or not).
    async fn request_agent_updates(&self, requests: &[AgentUpdateRecord]) -> StoreResult<()>;
    /// The requests not finished yet.
    async fn open_agent_updates(&self) -> StoreResult<Vec<AgentUpdateRecord>>;
    /// Every request kept (one per host), by instance name.
    async fn agent_updates(&self) -> StoreResult<Vec<AgentUpdateRecord>>;
    /// Marks the host's request offered at `now` if it is not yet, and fewer than its rollout's
    /// `max_unavailable` hosts are offered and unfinished; says whether it did.
    async fn offer_agent_update(&self, instance_name: &str, rollout_id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Ends the host's request of that rollout with `outcome` (if it is still open).
    async fn finish_agent_update(
        &self,
        instance_name: &str,
        rollout_id: &str,
        now: Timestamp,
        outcome: &str,
    ) -> StoreResult<()>;
}

/// What users define: applications, deployment configurations and groups, revisions, resource tags.
#[async_trait]
pub trait Catalog: Send + Sync {
    // -- applications ------------------------------------------------------------------------
    /// AlreadyExists if the name is taken; LimitExceeded if `limit` applications exist already.
    async fn create_application(&self, app: &ApplicationInfo, limit: usize) -> StoreResult<()>;
    async fn application(&self, name: &str) -> StoreResult<Option<ApplicationInfo>>;
    async fn application_by_id(&self, id: &str) -> StoreResult<Option<ApplicationInfo>>;
    /// Names in ascending order.
    async fn list_applications(&self, page: &PageRequest) -> StoreResult<Page<String>>;
    /// AlreadyExists if the new name is taken; NotFound if the application is gone.
    async fn rename_application(&self, id: &str, new_name: &str) -> StoreResult<()>;
    /// Deletes the application with its deployment groups, revisions and their resource tags.
    /// Deployments stay readable by id.
    async fn delete_application(&self, id: &str) -> StoreResult<()>;

    // -- deployment configurations (custom ones; predefined ones are code) --------------------
    /// AlreadyExists if the name is taken; LimitExceeded if `limit` custom configurations exist.
    async fn create_deployment_config(&self, config: &DeploymentConfigInfo, limit: usize) -> StoreResult<()>;
    async fn deployment_config(&self, name: &str) -> StoreResult<Option<DeploymentConfigInfo>>;
    async fn list_deployment_configs(&self, page: &PageRequest) -> StoreResult<Page<String>>;
    /// InUse if a deployment group, or a deployment not yet finished, uses it (their names);
    /// Ok if it does not exist.
    async fn delete_deployment_config(&self, name: &str) -> StoreResult<()>;

    // -- deployment groups ----------------------------------------------------------------------
    /// AlreadyExists if the application has a group of that name (`Unique::DeploymentGroup`), or
    /// (ECS) the service belongs to another group (`Unique::EcsService`). LimitExceeded if the application has `limit` groups.
    async fn create_deployment_group(&self, group: &GroupRecord, limit: usize) -> StoreResult<()>;
    async fn deployment_group(&self, application_id: &str, name: &str) -> StoreResult<Option<GroupRecord>>;
    async fn deployment_group_by_id(&self, id: &str) -> StoreResult<Option<GroupRecord>>;
    /// An application by name and, if it has one of that name, its deployment group, read
    /// together (the common first step of group and deployment calls).
    async fn application_and_group(
        &self,
        application_name: &str,
        group_name: &str,
    ) -> StoreResult<Option<(ApplicationInfo, Option<GroupRecord>)>>;
    async fn list_deployment_groups(&self, application_id: &str, page: &PageRequest) -> StoreResult<Page<String>>;
    /// Replaces the group's settings (possibly renaming it); same conflicts as create.
    async fn update_deployment_group(&self, group: &GroupRecord) -> StoreResult<()>;
    /// Deletes the group and its resource tags; Ok if it does not exist.
    async fn delete_deployment_group(&self, id: &str) -> StoreResult<()>;
    /// Sets the revision the group's new hosts get (after a successful deployment).
    async fn set_target_revision(&self, group_id: &str, revision: &RevisionLocation, key: &str) -> StoreResult<()>;

    // -- revisions ---------------------------------------------------------------------------------
    /// Registers the revision, or updates the description of one already registered.
    async fn register_revision(&self, revision: &RevisionRecord) -> StoreResult<()>;
    async fn revision(&self, application_id: &str, key: &str) -> StoreResult<Option<RevisionRecord>>;
    async fn list_revisions(
        &self,
        application_id: &str,
        filter: &RevisionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<RevisionRecord>>;

    // -- resource tags ---------------------------------------------------------------------------
    async fn resource_tags(&self, kind: TaggedKind, id: &str) -> StoreResult<Vec<Tag>>;
    /// Adds or overwrites tags.
    async fn tag_resource(&self, kind: TaggedKind, id: &str, tags: &[Tag]) -> StoreResult<()>;
    async fn untag_resource(&self, kind: TaggedKind, id: &str, keys: &[String]) -> StoreResult<()>;
}

/// Registered instances, their agents' polls, host pools and departures.
#[async_trait]
pub trait Hosts: Send + Sync {
    // -- on-premises instances -----------------------------------------------------------------
    /// Registers an instance. AlreadyExists if a registered instance has the name or the IAM ARN
    /// (`Unique::Instance`, `IamUserArn`, `IamSessionArn`). A deregistered instance of the same
    /// name is replaced.
    async fn register_instance(&self, instance: &InstanceInfo) -> StoreResult<()>;
    async fn instance(&self, name: &str) -> StoreResult<Option<InstanceInfo>>;
    /// All instances, registered or not, by name.
    async fn list_instances(&self) -> StoreResult<Vec<InstanceInfo>>;
    /// Replaces an instance's record (tags, deregistration); NotFound if there is none.
    async fn update_instance(&self, instance: &InstanceInfo) -> StoreResult<()>;

    // -- agents ---------------------------------------------------------------------------------
    /// Records that an instance's agent polled at `at`, reporting `agent_version`.
    async fn record_agent_poll(
        &self,
        instance_name: &str,
        at: Timestamp,
        agent_version: Option<&str>,
    ) -> StoreResult<()>;
    /// Every instance's latest poll, by instance name.
    async fn agent_statuses(&self) -> StoreResult<Vec<AgentStatusRecord>>;

    // -- host pools ----------------------------------------------------------------------------
    /// Creates the pool with its first members; AlreadyExists if the name is taken.
    async fn create_host_pool(&self, pool: &HostPoolInfo) -> StoreResult<()>;
    async fn host_pool(&self, name: &str) -> StoreResult<Option<HostPoolInfo>>;
    /// By name, each with its members by name.
    async fn list_host_pools(&self) -> StoreResult<Vec<HostPoolInfo>>;
    /// Adds members (those already in stay as they are); NotFound if there is no such pool.
    async fn add_host_pool_members(&self, pool: &str, instances: &[String]) -> StoreResult<()>;
    /// Removes members; returns how many of them were members. NotFound if there is no such pool.
    async fn remove_host_pool_members(&self, pool: &str, instances: &[String]) -> StoreResult<u64>;
    /// Deletes the pool and its memberships; whether there was one to delete.
    async fn delete_host_pool(&self, name: &str) -> StoreResult<bool>;
    /// Takes an instance out of every pool (it was deregistered).
    async fn leave_host_pools(&self, instance: &str) -> StoreResult<()>;

    // -- departures ----------------------------------------------------------------------------
    /// Records a departure; one already recorded keeps its time and becomes a drain if this is one.
    async fn put_departure(&self, departure: &DepartureRecord) -> StoreResult<()>;
    /// By instance name.
    async fn departures(&self) -> StoreResult<Vec<DepartureRecord>>;
    async fn delete_departure(&self, instance: &str) -> StoreResult<()>;
}

/// Deployments, their targets and host commands, command output and timelines.
#[async_trait]
pub trait Deployments: Send + Sync {
    // -- deployments -----------------------------------------------------------------------------
    /// Stores a new deployment with its targets, and records the use of its revision (registering
    /// `revision` first if the application does not have it yet). If the deployment is exclusive
    /// and its group has another exclusive deployment in an active status, fails with
    /// ActiveDeployment(that id) and changes nothing.
    async fn create_deployment(
        &self,
        deployment: &DeploymentRecord,
        targets: &[TargetRecord],
        revision: &RevisionRecord,
    ) -> StoreResult<()>;
    async fn deployment(&self, id: &str) -> StoreResult<Option<DeploymentRecord>>;
    /// Newest first.
    async fn list_deployments(&self, filter: &DeploymentFilter, page: &PageRequest) -> StoreResult<Page<String>>;
    /// Replaces a deployment's record if its version is still `deployment.version` (then bumps
    /// it); NotFound if there is none, Changed if it changed meanwhile.
    async fn update_deployment(&self, deployment: &DeploymentRecord) -> StoreResult<()>;
    /// Ids of deployments in an active status, oldest first.
    async fn active_deployments(&self) -> StoreResult<Vec<String>>;
    /// Writes an engine step atomically (see [`DeploymentStep`]); Changed if the deployment's
    /// version moved on since the step was computed.
    async fn apply_deployment_step(&self, step: &DeploymentStep) -> StoreResult<()>;

    // -- host commands ----------------------------------------------------------------------
    /// A deployment's commands in the order they were stored.
    async fn commands_of(&self, deployment_id: &str) -> StoreResult<Vec<HostCommandRecord>>;
    /// A deployment's commands stored at or after `seq`, in order: what a reader that knows
    /// the earlier ones (and that they are final, so never change again) still has to read.
    async fn commands_from(&self, deployment_id: &str, seq: i64) -> StoreResult<Vec<HostCommandRecord>>;
    /// The newest deployments (at most `limit`) that gave a target commands, newest first.
    async fn deployments_of_target(&self, target_id: &str, limit: usize) -> StoreResult<Vec<DeploymentRecord>>;
    async fn command(&self, id: &str) -> StoreResult<Option<HostCommandRecord>>;
    /// The newest command for one lifecycle event of one target of a deployment.
    async fn latest_command(
        &self,
        deployment_id: &str,
        target_id: &str,
        event: &str,
    ) -> StoreResult<Option<HostCommandRecord>>;
    /// Hands the instance's oldest queued command to its agent (Queued → Dispatched).
    async fn dispatch_command(&self, instance_name: &str, at: Timestamp) -> StoreResult<Option<HostCommandRecord>>;
    /// Records the first acknowledgement of `target_id`'s command `id` while it is in flight;
    /// the command as it then stands (`None`: the target has no such command).
    async fn acknowledge_command(
        &self,
        id: &str,
        target_id: &str,
        at: Timestamp,
    ) -> StoreResult<Option<HostCommandRecord>>;
    /// Records a completion of `target_id`'s command `id` while it is in flight; the first one
    /// wins.
    async fn complete_command(
        &self,
        id: &str,
        target_id: &str,
        succeeded: bool,
        diagnostics: &landfall_api::shapes::Diagnostics,
        at: Timestamp,
    ) -> StoreResult<Completion>;
    /// Stores a chunk of a command's output at the end of what it received; a chunk already
    /// stored (same sequence) is ignored. Beyond `limit`, the oldest chunks after the head go.
    async fn append_command_log(&self, id: &str, sequence: u64, text: &str, limit: LogLimit) -> StoreResult<()>;
    /// The kept chunks of a command's output that end after `start`, in order, up to about
    /// `max_bytes` (at least one chunk when any is left).
    async fn command_log_page(&self, id: &str, start: LogStart, max_bytes: u64) -> StoreResult<LogPage>;
    /// What the group last did on each instance.
    async fn instance_history(&self, group_id: &str) -> StoreResult<Vec<InstanceHistoryRecord>>;
    /// The group's most recent deployment, and its most recent one with status Succeeded.
    async fn last_deployments(&self, group_id: &str) -> StoreResult<(Option<DeploymentInfo>, Option<DeploymentInfo>)>;
    /// A deployment's targets in their order (position).
    async fn targets(&self, deployment_id: &str) -> StoreResult<Vec<TargetRecord>>;
    /// Up to `limit` of a deployment's targets in target-id order, after `after` (exclusive):
    /// pages of a large fleet without reading the rest.
    async fn targets_after(
        &self,
        deployment_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<TargetRecord>>;
    /// Up to `limit` of a deployment's targets in their order (position), from the `offset`th.
    async fn targets_window(&self, deployment_id: &str, offset: usize, limit: usize) -> StoreResult<Vec<TargetRecord>>;
    /// Those of `target_ids` that are targets of the deployment, in target-id order.
    async fn targets_named(&self, deployment_id: &str, target_ids: &[String]) -> StoreResult<Vec<TargetRecord>>;
    /// How many targets a deployment has.
    async fn target_count(&self, deployment_id: &str) -> StoreResult<usize>;
    async fn update_target(&self, target: &TargetRecord) -> StoreResult<()>;
    /// How many deployments there are in each status.
    async fn deployment_status_counts(&self) -> StoreResult<Vec<(String, i64)>>;

    // -- deployment timelines ---------------------------------------------------------------------
    /// Appends entries (their sequence numbers are assigned here).
    async fn append_deployment_events(&self, events: &[DeploymentEventInfo]) -> StoreResult<()>;
    /// A deployment's entries after sequence `after`, oldest first, at most `limit`.
    async fn deployment_events(
        &self,
        deployment_id: &str,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeploymentEventInfo>>;
    /// A deployment's newest `limit` entries, oldest first.
    async fn latest_deployment_events(
        &self,
        deployment_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<DeploymentEventInfo>>;
}

/// The built-in router's target groups.
#[async_trait]
pub trait TargetGroups: Send + Sync {
    /// AlreadyExists if the name is taken.
    async fn create_target_group(&self, group: &TargetGroupInfo) -> StoreResult<()>;
    async fn target_group(&self, name: &str) -> StoreResult<Option<TargetGroupRecord>>;
    /// By name.
    async fn list_target_groups(&self) -> StoreResult<Vec<TargetGroupRecord>>;
    /// Replaces the group if its revision is still `record.revision`; Changed if it moved on,
    /// NotFound if the group is gone.
    async fn update_target_group(&self, record: &TargetGroupRecord) -> StoreResult<()>;
    /// Whether there was one to delete.
    async fn delete_target_group(&self, name: &str) -> StoreResult<bool>;
}

/// Prometheus-backed alarms.
#[async_trait]
pub trait Alarms: Send + Sync {
    /// Creates the alarm or replaces the one of that name.
    async fn put_alarm(&self, alarm: &AlarmInfo) -> StoreResult<()>;
    async fn alarm(&self, name: &str) -> StoreResult<Option<AlarmInfo>>;
    /// By name.
    async fn list_alarms(&self) -> StoreResult<Vec<AlarmInfo>>;
    /// Whether there was one to delete.
    async fn delete_alarm(&self, name: &str) -> StoreResult<bool>;
}

/// Trigger messages waiting for delivery.
#[async_trait]
pub trait TriggerOutbox: Send + Sync {
    /// Pending messages whose next attempt is due, oldest first, at most `limit`, each the
    /// oldest pending one of its (deployment, destination): a later message waits for it.
    async fn due_trigger_messages(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<TriggerMessage>>;
    /// Records an attempt's outcome: `state`, attempts, next attempt and error as given.
    async fn update_trigger_message(&self, message: &TriggerMessage) -> StoreResult<()>;
    /// A deployment's messages in outbox order.
    async fn trigger_messages(&self, deployment_id: &str) -> StoreResult<Vec<TriggerMessage>>;
    /// Deletes delivered and expired messages created before `before`; returns how many.
    async fn prune_trigger_messages(&self, before: Timestamp) -> StoreResult<u64>;
}

/// The audit log, append-only: nothing updates or deletes a record.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record (its sequence number is assigned here).
    async fn append_audit_record(&self, record: &AuditRecordInfo) -> StoreResult<()>;
    /// Oldest first; the cursor is the last record's sequence number.
    async fn audit_records(&self, filter: &AuditFilter, page: &PageRequest) -> StoreResult<Page<AuditRecordInfo>>;
}

/// The capability traits, for `use landfall_store::capabilities::*` where a concrete store is
/// called (a `dyn Store` offers its capabilities' methods without them in scope).
pub mod capabilities {
    pub use crate::{
        AgentUpdates, Alarms, AuditLog, Catalog, Coordination, Credentials, Deployments, Hosts, Joining, TargetGroups,
        TriggerOutbox,
    };
}

/// Everything the server keeps, each capability a trait of its own so that a part of the server
/// can be given only the ones it uses (`&dyn Store` coerces to any of them).
pub trait Store:
    Coordination
    + Credentials
    + Joining
    + AgentUpdates
    + Catalog
    + Hosts
    + Deployments
    + TargetGroups
    + Alarms
    + TriggerOutbox
    + AuditLog
    + 'static
{
}

impl<
    T: Coordination
        + Credentials
        + Joining
        + AgentUpdates
        + Catalog
        + Hosts
        + Deployments
        + TargetGroups
        + Alarms
        + TriggerOutbox
        + AuditLog
        + 'static,
> Store for T
{
}
