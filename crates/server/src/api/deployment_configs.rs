//! Deployment configurations: the 17 predefined ones and custom ones.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::{predefined, validate};
use landfall_store::{PageRequest, StoreError, Unique};

use super::common::{Ctx, new_uuid, page_in_memory, page_request, page_token, store_error};

const PAGE: usize = 100;
/// Custom configurations per installation.
pub const MAX_CUSTOM_CONFIGS: usize = 1000;

pub async fn create(ctx: &Ctx<'_>, input: CreateDeploymentConfigInput) -> ApiResult<CreateDeploymentConfigOutput> {
    let platform = validate::create_deployment_config(&input)?;
    let name = validate::deployment_config_name(&input.deployment_config_name)?;
    let id = new_uuid();
    let config = DeploymentConfigInfo {
        deployment_config_id: Some(id.clone()),
        deployment_config_name: Some(name.to_owned()),
        minimum_healthy_hosts: input.minimum_healthy_hosts,
        create_time: Some(ctx.now),
        compute_platform: Some(platform),
        traffic_routing_config: input.traffic_routing_config,
        zonal_config: input.zonal_config,
    };
    match ctx.store().create_deployment_config(&config, MAX_CUSTOM_CONFIGS).await {
        Err(StoreError::AlreadyExists(Unique::DeploymentConfig)) => err(
            Exception::DeploymentConfigAlreadyExists,
            format!("The deployment configuration {name} already exists."),
        ),
        Err(StoreError::LimitExceeded(limit)) => err(
            Exception::DeploymentConfigLimitExceeded,
            format!("At most {limit} custom deployment configurations can exist."),
        ),
        other => other.map(|()| CreateDeploymentConfigOutput { deployment_config_id: Some(id) }).map_err(store_error),
    }
}

pub async fn get(ctx: &Ctx<'_>, input: GetDeploymentConfigInput) -> ApiResult<GetDeploymentConfigOutput> {
    let name = validate::deployment_config_name(&input.deployment_config_name)?;
    match ctx.find_deployment_config(name).await? {
        Some(config) => Ok(GetDeploymentConfigOutput { deployment_config_info: Some(config) }),
        None => {
            err(Exception::DeploymentConfigDoesNotExist, format!("No deployment configuration found for name: {name}"))
        }
    }
}

pub async fn list(ctx: &Ctx<'_>, input: ListDeploymentConfigsInput) -> ApiResult<ListDeploymentConfigsOutput> {
    let page = page_request("deploymentConfigs", &input.next_token, PAGE)?;
    let everything = PageRequest { after: None, limit: MAX_CUSTOM_CONFIGS };
    let mut names: Vec<String> = ctx.store().list_deployment_configs(&everything).await.map_err(store_error)?.items;
    names.extend(predefined::predefined_configs().filter_map(|config| config.deployment_config_name));
    names.sort();
    let (names, next) = page_in_memory(names, &page, Clone::clone);
    Ok(ListDeploymentConfigsOutput {
        deployment_configs_list: Some(names),
        next_token: page_token("deploymentConfigs", next),
    })
}

pub async fn delete(ctx: &Ctx<'_>, input: DeleteDeploymentConfigInput) -> ApiResult<()> {
    let name = validate::deployment_config_name(&input.deployment_config_name)?;
    if predefined::is_reserved_name(name) {
        return err(
            Exception::InvalidOperation,
            format!("{name} is a predefined deployment configuration and cannot be deleted."),
        );
    }
    match ctx.store().delete_deployment_config(name).await {
        Err(StoreError::InUse(groups)) => err(
            Exception::DeploymentConfigInUse,
            format!(
                "The deployment configuration {name} is in use by deployment groups or unfinished deployments: {}.",
                groups.join(", ")
            ),
        ),
        other => other.map_err(store_error),
    }
}
