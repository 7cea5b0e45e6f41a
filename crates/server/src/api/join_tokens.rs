//! Join tokens: an administrator makes one (`landfall instance token create --tag role=web --ttl
//! 1h`), and one host spends it to register itself (`POST /agent/join`, which the install script
//! calls) with the token's tags. A token is `ID.SECRET`; the store keeps the SHA-256 of the secret.

use landfall_api::Timestamp;
use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::landfall::{
    CreateJoinTokenInput, CreateJoinTokenOutput, JoinTokenInfo, ListJoinTokensInput, ListJoinTokensOutput,
    RegisterInstanceInput, RegisterInstanceOutput,
};
use landfall_api::validate;
use landfall_store::{JoinClaim, JoinTokenRecord, StoreError};
use sha2::{Digest, Sha256};

use super::common::{Ctx, random_string, store_error};
use super::instances;

/// Tokens kept at once (used and expired ones included, until a week after they expire).
const MAX_JOIN_TOKENS: usize = 1000;
const DEFAULT_TTL_SECONDS: i64 = 3600;
const MAX_TTL_SECONDS: i64 = 7 * 24 * 3600;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub async fn create(ctx: &Ctx<'_>, input: CreateJoinTokenInput) -> ApiResult<CreateJoinTokenOutput> {
    let tags = instances::validated_tags(input.tags.unwrap_or_default())?;
    let ttl = input.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return err(
            Exception::InvalidInput,
            format!("ttlSeconds is {ttl}: a join token lasts from 1 second to a week ({MAX_TTL_SECONDS})."),
        );
    }
    validate::description(&input.description)?;
    let secret = random_string(ALNUM, 40);
    let record = JoinTokenRecord {
        token_id: format!("jt-{}", random_string(ALNUM, 12)),
        secret_sha256: secret_hash(&secret),
        tags,
        description: input.description.unwrap_or_default(),
        created_at: ctx.now,
        expires_at: Timestamp(ctx.now.0 + ttl * 1000),
        used_at: None,
        used_by: None,
    };
    match ctx.store().create_join_token(&record, MAX_JOIN_TOKENS).await {
        Err(StoreError::LimitExceeded(limit)) => {
            return err(
                Exception::InstanceLimitExceeded,
                format!("At most {limit} join tokens are kept (they are forgotten a week after they expire)."),
            );
        }
        other => other.map_err(store_error)?,
    }
    Ok(CreateJoinTokenOutput { token: format!("{}.{secret}", record.token_id), join_token: info(&record, ctx.now) })
}

pub async fn list(ctx: &Ctx<'_>, _input: ListJoinTokensInput) -> ApiResult<ListJoinTokensOutput> {
    let tokens = ctx.store().join_tokens().await.map_err(store_error)?;
    Ok(ListJoinTokensOutput { join_tokens: tokens.iter().map(|token| info(token, ctx.now)).collect() })
}

fn info(token: &JoinTokenRecord, now: Timestamp) -> JoinTokenInfo {
    let status = match token.used_at {
        Some(_) => "Used",
        None if token.expires_at <= now => "Expired",
        None => "Unused",
    };
    JoinTokenInfo {
        token_id: token.token_id.clone(),
        tags: token.tags.clone(),
        description: token.description.clone(),
        create_time: token.created_at,
        expire_time: token.expires_at,
        status: status.to_owned(),
        use_time: token.used_at,
        instance_name: token.used_by.clone(),
    }
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a host was not registered: what it is told, and the HTTP status.
#[derive(Debug)]
pub struct JoinRefused {
    pub status: u16,
    pub message: String,
}

impl JoinRefused {
    fn new(status: u16, message: impl Into<String>) -> JoinRefused {
        JoinRefused { status, message: message.into() }
    }
}

impl From<ApiError> for JoinRefused {
    fn from(error: ApiError) -> JoinRefused {
        JoinRefused::new(error.http_status(), format!("{}: {}", error.exception.name(), error.message))
    }
}

/// Registers the host `instance_name` with a join token: the token is spent, the instance is
/// registered with its tags and gets an agent key. A refused token registers nothing, and a
/// registration that fails (the name is taken) gives the token back.
pub async fn join(ctx: &Ctx<'_>, token: &str, instance_name: &str) -> Result<RegisterInstanceOutput, JoinRefused> {
    validate::instance_name(&Some(instance_name.to_owned()))?;
    let forged = || JoinRefused::new(403, "the join token is not valid: it was never made here, or it is mistyped");
    let (token_id, secret) = token.trim().split_once('.').ok_or_else(forged)?;
    let claim = ctx.store().claim_join_token(token_id, &secret_hash(secret), ctx.now).await.map_err(store_error)?;
    let token = match claim {
        JoinClaim::Claimed(token) => token,
        JoinClaim::Unknown => return Err(forged()),
        JoinClaim::Expired(at) => {
            return Err(JoinRefused::new(
                403,
                format!(
                    "the join token {token_id} expired at {}: ask for a new one (landfall instance token create)",
                    crate::s3::xml::iso8601(at.0)
                ),
            ));
        }
        JoinClaim::Used(at, by) => {
            let by = by.map(|name| format!(" by instance {name}")).unwrap_or_default();
            return Err(JoinRefused::new(
                403,
                format!(
                    "the join token {token_id} was used at {}{by}: a token registers one host",
                    crate::s3::xml::iso8601(at.0)
                ),
            ));
        }
    };
    let input = RegisterInstanceInput { instance_name: Some(instance_name.to_owned()), tags: Some(token.tags) };
    match instances::register_with_key_or_nothing(ctx, input).await {
        Ok(registered) => {
            ctx.store().settle_join_token(token_id, Some(instance_name)).await.map_err(store_error)?;
            Ok(registered)
        }
        Err(error) => {
            ctx.store().settle_join_token(token_id, None).await.map_err(store_error)?;
            Err(error.into())
        }
    }
}
