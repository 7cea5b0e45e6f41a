//! Landfall's persistent state. The [`Store`] trait is the one way the server reads and writes it;
//! [`sqlite::SqliteStore`] is the embedded implementation. Every method is one atomic step: what a
//! method checks (a name is free, a group has no active deployment) holds when it writes.
//!
//! Records keep the API's own shapes (as JSON documents) next to the columns that are looked up,
//! filtered or kept unique, so a field added to a shape needs no schema change.

pub mod conformance;
mod schema;
pub mod sqlite;

use async_trait::async_trait;
use landfall_api::Timestamp;
use landfall_api::landfall::Role;
use landfall_api::shapes::{
    ApplicationInfo, DeploymentConfigInfo, DeploymentGroupInfo, DeploymentInfo, DeploymentTarget, GenericRevisionInfo,
    InstanceInfo, RevisionLocation, Tag,
};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name or identity is taken; the text says which.
    #[error("{0} already exists")]
    Conflict(String),
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
    /// The database failed; the server answers InternalFailure and logs this.
    #[error("store failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role: Role,
    pub description: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    pub application_id: String,
    pub group_id: String,
    pub exclusive: bool,
    pub info: DeploymentInfo,
}

impl DeploymentRecord {
    pub fn id(&self) -> &str {
        self.info.deployment_id.as_deref().unwrap_or_default()
    }
}

/// One target of a deployment (an instance, a Lambda function, an ECS service).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRecord {
    pub deployment_id: String,
    pub target_id: String,
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

/// Deployment statuses that hold a group's one active deployment.
pub const ACTIVE_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// The resources that carry resource tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaggedKind {
    Application,
    DeploymentGroup,
    DeploymentConfig,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // -- installation metadata --------------------------------------------------------------
    /// Sets `key` to `value` unless it is set already; returns the value that is set.
    async fn init_meta(&self, key: &str, value: &str) -> StoreResult<String>;

    // -- access keys -------------------------------------------------------------------------
    /// LimitExceeded if `limit` keys (active or revoked) exist already.
    async fn create_access_key(&self, key: &AccessKeyRecord, limit: usize) -> StoreResult<()>;
    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    async fn list_access_keys(&self, page: &PageRequest) -> StoreResult<Page<AccessKeyRecord>>;
    /// Marks the key revoked; NotFound if there is no such key, Ok if it was revoked already.
    async fn revoke_access_key(&self, access_key_id: &str, at: Timestamp) -> StoreResult<()>;

    // -- applications ------------------------------------------------------------------------
    /// Conflict if the name is taken; LimitExceeded if `limit` applications exist already.
    async fn create_application(&self, app: &ApplicationInfo, limit: usize) -> StoreResult<()>;
    async fn application(&self, name: &str) -> StoreResult<Option<ApplicationInfo>>;
    async fn application_by_id(&self, id: &str) -> StoreResult<Option<ApplicationInfo>>;
    /// Names in ascending order.
    async fn list_applications(&self, page: &PageRequest) -> StoreResult<Page<String>>;
    /// Conflict if the new name is taken; NotFound if the application is gone.
    async fn rename_application(&self, id: &str, new_name: &str) -> StoreResult<()>;
    /// Deletes the application with its deployment groups, revisions and their resource tags.
    /// Deployments stay readable by id.
    async fn delete_application(&self, id: &str) -> StoreResult<()>;

    // -- deployment configurations (custom ones; predefined ones are code) --------------------
    /// Conflict if the name is taken; LimitExceeded if `limit` custom configurations exist.
    async fn create_deployment_config(&self, config: &DeploymentConfigInfo, limit: usize) -> StoreResult<()>;
    async fn deployment_config(&self, name: &str) -> StoreResult<Option<DeploymentConfigInfo>>;
    async fn list_deployment_configs(&self, page: &PageRequest) -> StoreResult<Page<String>>;
    /// InUse if a deployment group, or a deployment not yet finished, uses it (their names);
    /// Ok if it does not exist.
    async fn delete_deployment_config(&self, name: &str) -> StoreResult<()>;

    // -- deployment groups ----------------------------------------------------------------------
    /// Conflict if the application has a group of that name, or (ECS) the service belongs to
    /// another group: the text says which. LimitExceeded if the application has `limit` groups.
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

    // -- on-premises instances -----------------------------------------------------------------
    /// Registers an instance. Conflict if a registered instance has the name or the IAM ARN
    /// (text: "instance" or "iamUserArn"/"iamSessionArn"). A deregistered instance of the same
    /// name is replaced.
    async fn register_instance(&self, instance: &InstanceInfo) -> StoreResult<()>;
    async fn instance(&self, name: &str) -> StoreResult<Option<InstanceInfo>>;
    /// All instances, registered or not, by name.
    async fn list_instances(&self) -> StoreResult<Vec<InstanceInfo>>;
    /// Replaces an instance's record (tags, deregistration); NotFound if there is none.
    async fn update_instance(&self, instance: &InstanceInfo) -> StoreResult<()>;

    // -- resource tags ---------------------------------------------------------------------------
    async fn resource_tags(&self, kind: TaggedKind, id: &str) -> StoreResult<Vec<Tag>>;
    /// Adds or overwrites tags.
    async fn tag_resource(&self, kind: TaggedKind, id: &str, tags: &[Tag]) -> StoreResult<()>;
    async fn untag_resource(&self, kind: TaggedKind, id: &str, keys: &[String]) -> StoreResult<()>;

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
    /// Replaces a deployment's record; NotFound if there is none.
    async fn update_deployment(&self, deployment: &DeploymentRecord) -> StoreResult<()>;
    /// The group's most recent deployment, and its most recent one with status Succeeded.
    async fn last_deployments(&self, group_id: &str) -> StoreResult<(Option<DeploymentInfo>, Option<DeploymentInfo>)>;
    async fn targets(&self, deployment_id: &str) -> StoreResult<Vec<TargetRecord>>;
    async fn update_target(&self, target: &TargetRecord) -> StoreResult<()>;
}
