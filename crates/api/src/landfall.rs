//! Landfall's extensions to the API, served beside CodeDeploy's on the same endpoint under their
//! own `X-Amz-Target` prefix, and the access rules every operation is checked against.

use serde::{Deserialize, Serialize};

use crate::shapes::Operation;
use crate::wire::Timestamp;

/// `X-Amz-Target` prefix of the extension operations.
pub const TARGET_PREFIX: &str = "Landfall_20261122";

/// The extension operations: access key management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LandfallOperation {
    CreateAccessKey,
    ListAccessKeys,
    RevokeAccessKey,
}

impl LandfallOperation {
    pub const ALL: [LandfallOperation; 3] =
        [LandfallOperation::CreateAccessKey, LandfallOperation::ListAccessKeys, LandfallOperation::RevokeAccessKey];

    pub fn name(self) -> &'static str {
        match self {
            LandfallOperation::CreateAccessKey => "CreateAccessKey",
            LandfallOperation::ListAccessKeys => "ListAccessKeys",
            LandfallOperation::RevokeAccessKey => "RevokeAccessKey",
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
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Deployer, Role::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Deployer => "deployer",
            Role::ReadOnly => "read-only",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    pub fn allows(self, access: Access) -> bool {
        match self {
            Role::Admin => true,
            Role::Deployer => access != Access::Admin,
            Role::ReadOnly => access == Access::Read,
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
    /// Manages who can call the API: access keys and on-premises instances.
    Admin,
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
        LandfallOperation::ListAccessKeys => Access::Admin,
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
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAccessKeyInput {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
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
    }
}
