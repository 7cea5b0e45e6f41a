//! Landfall's access key management: CreateAccessKey, ListAccessKeys, RevokeAccessKey.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{
    AccessKeyInfo, CreateAccessKeyInput, CreateAccessKeyOutput, ListAccessKeysInput, ListAccessKeysOutput,
    RevokeAccessKeyInput, Role,
};
use landfall_api::validate;
use landfall_store::{AccessKeyRecord, StoreError};

use super::common::{Ctx, page_request, page_token, random_string, store_error};

const PAGE: usize = 100;
/// Every host has a key of its own, so the limit sits well above any fleet one server serves.
pub const MAX_ACCESS_KEYS: usize = 100_000;
const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A new key with a random id (`AKLF` and 16 base32 characters, 20 like AWS's) and a random
/// 40-character secret.
pub fn new_access_key(role: Role, description: &str, now: landfall_api::Timestamp) -> AccessKeyRecord {
    AccessKeyRecord {
        instance_name: None,
        access_key_id: format!("AKLF{}", random_string(KEY_ID_ALPHABET, 16)),
        secret_access_key: random_string(SECRET_ALPHABET, 40),
        role,
        description: description.to_owned(),
        created_at: now,
        revoked_at: None,
    }
}

pub fn key_info(key: &AccessKeyRecord, with_secret: bool) -> AccessKeyInfo {
    AccessKeyInfo {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: with_secret.then(|| key.secret_access_key.clone()),
        role: key.role.as_str().to_owned(),
        description: key.description.clone(),
        create_time: key.created_at,
        status: if key.revoked_at.is_some() { "Revoked" } else { "Active" }.to_owned(),
        revoke_time: key.revoked_at,
        instance_name: key.instance_name.clone(),
    }
}

pub async fn create(ctx: &Ctx<'_>, input: CreateAccessKeyInput) -> ApiResult<CreateAccessKeyOutput> {
    let role_name = input.role.as_deref().unwrap_or("");
    let Some(role) = Role::parse(role_name) else {
        return err(
            Exception::InvalidInput,
            format!("role '{role_name}' is not valid; allowed values: [admin, deployer, read-only, instance, router]."),
        );
    };
    validate::description(&input.description)?;
    let description = input.description.as_deref().unwrap_or("");
    let key = match (role, input.instance_name.as_deref().filter(|name| !name.is_empty())) {
        (Role::Instance, Some(instance)) => create_instance_key(ctx, instance, description).await?,
        (Role::Instance, None) => return err(Exception::InvalidInput, "instanceName is required for role 'instance'."),
        (_, Some(_)) => return err(Exception::InvalidInput, "instanceName applies to role 'instance' only."),
        (role, None) => {
            let key = new_access_key(role, description, ctx.now);
            store_key(ctx, &key).await?;
            key
        }
    };
    tracing::info!(access_key_id = %key.access_key_id, role = role.as_str(), by = %ctx.caller.access_key_id, "access key created");
    Ok(CreateAccessKeyOutput { access_key: key_info(&key, true) })
}

/// A new agent key for a registered instance.
pub async fn create_instance_key(ctx: &Ctx<'_>, instance: &str, description: &str) -> ApiResult<AccessKeyRecord> {
    validate::check_instance_name(instance)?;
    super::instances::registered(ctx, instance).await?;
    let mut key = new_access_key(Role::Instance, description, ctx.now);
    key.instance_name = Some(instance.to_owned());
    store_key(ctx, &key).await?;
    Ok(key)
}

async fn store_key(ctx: &Ctx<'_>, key: &AccessKeyRecord) -> ApiResult<()> {
    match ctx.store().create_access_key(key, MAX_ACCESS_KEYS).await {
        Err(StoreError::LimitExceeded(limit)) => {
            err(Exception::AccessKeyLimitExceeded, format!("At most {limit} access keys can exist."))
        }
        other => other.map_err(store_error),
    }
}

pub async fn list(ctx: &Ctx<'_>, input: ListAccessKeysInput) -> ApiResult<ListAccessKeysOutput> {
    let page = page_request("accessKeys", &input.next_token, PAGE)?;
    let page = ctx.store().list_access_keys(&page).await.map_err(store_error)?;
    Ok(ListAccessKeysOutput {
        access_keys: page.items.iter().map(|key| key_info(key, false)).collect(),
        next_token: page_token("accessKeys", page.next),
    })
}

/// Revokes a key at once. A caller cannot revoke its own key, so an administrator always remains.
pub async fn revoke(ctx: &Ctx<'_>, input: RevokeAccessKeyInput) -> ApiResult<()> {
    let Some(id) = input.access_key_id.filter(|id| !id.is_empty()) else {
        return err(Exception::InvalidInput, "accessKeyId is required.");
    };
    if id == ctx.caller.access_key_id {
        return err(Exception::CannotRevokeOwnKey, "A key cannot revoke itself; use another administrator key.");
    }
    match ctx.store().revoke_access_key(&id, ctx.now).await {
        Err(StoreError::NotFound) => {
            return err(Exception::AccessKeyDoesNotExist, format!("No access key {id} exists."));
        }
        other => other.map_err(store_error)?,
    }
    ctx.state.keys.forget(&id);
    tracing::info!(access_key_id = %id, by = %ctx.caller.access_key_id, "access key revoked");
    Ok(())
}
