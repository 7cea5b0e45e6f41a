//! Host pools: CreateHostPool, DeleteHostPool, ListHostPools, AddHostPoolMembers,
//! RemoveHostPoolMembers. A pool is a named set of registered hosts, Landfall's stand-in for an
//! EC2 Auto Scaling group: a deployment group whose `autoScalingGroups` names it selects its
//! members, so a host added to it gets the group's revision (`crate::fleet`), and a host taken
//! out is left out of the group's next deployment.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{
    CreateHostPoolInput, HostPoolInfo, HostPoolMembersInput, HostPoolNameInput, HostPoolOutput, ListHostPoolsOutput,
};
use landfall_engine::selection;
use landfall_store::{StoreError, Unique};

use super::common::{Ctx, store_error};
use super::instances::registered;

/// Instances one call may add or remove.
const MAX_MEMBERS_PER_CALL: usize = 1000;

fn check_name(name: Option<&str>) -> ApiResult<&str> {
    let name = name.unwrap_or_default();
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return err(
            Exception::InvalidInput,
            format!("poolName '{name}' must be 1 to 255 characters long, without control characters."),
        );
    }
    Ok(name)
}

fn missing(name: &str) -> landfall_api::ApiError {
    landfall_api::ApiError::new(Exception::HostPoolDoesNotExist, format!("No host pool named {name} exists."))
}

/// The instances named, without repeats.
fn member_names(names: Option<Vec<String>>, required: bool) -> ApiResult<Vec<String>> {
    let mut names = names.unwrap_or_default();
    names.sort();
    names.dedup();
    if required && names.is_empty() {
        return err(Exception::InstanceNameRequired, "instanceNames must name at least one instance.");
    }
    if names.len() > MAX_MEMBERS_PER_CALL {
        return err(
            Exception::InvalidInput,
            format!("instanceNames names {} instances; at most {MAX_MEMBERS_PER_CALL} per call.", names.len()),
        );
    }
    Ok(names)
}

/// The instances named, each registered, without repeats.
async fn registered_instances(ctx: &Ctx<'_>, names: Option<Vec<String>>, required: bool) -> ApiResult<Vec<String>> {
    let names = member_names(names, required)?;
    for name in &names {
        registered(ctx, name).await?;
    }
    Ok(names)
}

/// The pool as it is now, with the deployment groups that name it.
async fn shown(ctx: &Ctx<'_>, name: &str) -> ApiResult<HostPoolInfo> {
    let pool = ctx.store().host_pool(name).await.map_err(store_error)?.ok_or_else(|| missing(name))?;
    Ok(with_groups(ctx, vec![pool]).await?.remove(0))
}

async fn with_groups(ctx: &Ctx<'_>, mut pools: Vec<HostPoolInfo>) -> ApiResult<Vec<HostPoolInfo>> {
    for (app, group) in crate::fleet::server_groups(ctx.state).await.map_err(store_error)? {
        let label = format!(
            "{}/{}",
            app.application_name.as_deref().unwrap_or_default(),
            group.info.deployment_group_name.as_deref().unwrap_or_default()
        );
        for named in selection::group_pools(&group.info) {
            if let Some(pool) = pools.iter_mut().find(|pool| pool.pool_name == named) {
                pool.deployment_groups.push(label.clone());
            }
        }
    }
    Ok(pools)
}

pub async fn create(ctx: &Ctx<'_>, input: CreateHostPoolInput) -> ApiResult<HostPoolOutput> {
    let name = check_name(input.pool_name.as_deref())?;
    let members = registered_instances(ctx, input.instance_names, false).await?;
    let pool = HostPoolInfo {
        pool_name: name.to_owned(),
        create_time: ctx.now,
        instance_names: members,
        ..Default::default()
    };
    match ctx.store().create_host_pool(&pool).await {
        Err(StoreError::AlreadyExists(Unique::HostPool)) => {
            return err(Exception::HostPoolAlreadyExists, format!("A host pool named {name} already exists."));
        }
        other => other.map_err(store_error)?,
    }
    Ok(HostPoolOutput { host_pool: shown(ctx, name).await? })
}

/// Refused while a deployment group names the pool: the group would silently lose those hosts.
pub async fn delete(ctx: &Ctx<'_>, input: HostPoolNameInput) -> ApiResult<()> {
    let name = check_name(input.pool_name.as_deref())?;
    let pool = shown(ctx, name).await?;
    if !pool.deployment_groups.is_empty() {
        return err(
            Exception::HostPoolInUse,
            format!(
                "Host pool {name} is named by deployment group {}: take it out of their autoScalingGroups first.",
                pool.deployment_groups.join(", ")
            ),
        );
    }
    if !ctx.store().delete_host_pool(name).await.map_err(store_error)? {
        return Err(missing(name));
    }
    Ok(())
}

/// Every pool by name, or the one named.
pub async fn list(ctx: &Ctx<'_>, input: HostPoolNameInput) -> ApiResult<ListHostPoolsOutput> {
    if input.pool_name.is_some() {
        let name = check_name(input.pool_name.as_deref())?;
        return Ok(ListHostPoolsOutput { host_pools: vec![shown(ctx, name).await?] });
    }
    let pools = ctx.store().list_host_pools().await.map_err(store_error)?;
    Ok(ListHostPoolsOutput { host_pools: with_groups(ctx, pools).await? })
}

/// New members get the revision of each group naming the pool once their agents poll (the
/// dispatch in `api` tells the fleet).
pub async fn add(ctx: &Ctx<'_>, input: HostPoolMembersInput) -> ApiResult<HostPoolOutput> {
    let name = check_name(input.pool_name.as_deref())?;
    let members = registered_instances(ctx, input.instance_names, true).await?;
    match ctx.store().add_host_pool_members(name, &members).await {
        Err(StoreError::NotFound) => return Err(missing(name)),
        other => other.map_err(store_error)?,
    }
    Ok(HostPoolOutput { host_pool: shown(ctx, name).await? })
}

/// Members taken out are left out of the next deployments of the groups naming the pool (unless
/// their tags still select them); a deployment already running on them goes on.
pub async fn remove(ctx: &Ctx<'_>, input: HostPoolMembersInput) -> ApiResult<HostPoolOutput> {
    let name = check_name(input.pool_name.as_deref())?;
    // Registered or not: a deregistered host has left its pools already.
    let members = member_names(input.instance_names, true)?;
    match ctx.store().remove_host_pool_members(name, &members).await {
        Err(StoreError::NotFound) => return Err(missing(name)),
        other => other.map_err(store_error)?,
    };
    Ok(HostPoolOutput { host_pool: shown(ctx, name).await? })
}
