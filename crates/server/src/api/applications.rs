//! Applications: Create, Get, BatchGet, List, Update (rename), Delete.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::validate;
use landfall_store::{StoreError, TaggedKind, Unique};

use super::common::{Ctx, new_uuid, page_request, page_token, store_error};

const PAGE: usize = 100;
/// Applications per installation (CodeDeploy's quota per account and region).
pub const MAX_APPLICATIONS: usize = 1000;

pub async fn create(ctx: &Ctx<'_>, input: CreateApplicationInput) -> ApiResult<CreateApplicationOutput> {
    let name = validate::application_name(&input.application_name)?;
    let platform = input.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    validate::known(&platform, Exception::InvalidComputePlatform, "computePlatform")?;
    let tags = input.tags.unwrap_or_default();
    validate::resource_tags(&tags, Exception::InvalidTagsToAdd)?;
    let id = new_uuid();
    let app = ApplicationInfo {
        application_id: Some(id.clone()),
        application_name: Some(name.to_owned()),
        create_time: Some(ctx.now),
        linked_to_github: Some(false),
        git_hub_account_name: None,
        compute_platform: Some(platform),
    };
    match ctx.store().create_application(&app, MAX_APPLICATIONS).await {
        Err(StoreError::AlreadyExists(Unique::Application)) => {
            return err(Exception::ApplicationAlreadyExists, format!("The application {name} already exists."));
        }
        Err(StoreError::LimitExceeded(limit)) => {
            return err(Exception::ApplicationLimitExceeded, format!("At most {limit} applications can exist."));
        }
        other => other.map_err(store_error)?,
    }
    if !tags.is_empty() {
        ctx.store().tag_resource(TaggedKind::Application, &id, &tags).await.map_err(store_error)?;
    }
    Ok(CreateApplicationOutput { application_id: Some(id) })
}

pub async fn get(ctx: &Ctx<'_>, input: GetApplicationInput) -> ApiResult<GetApplicationOutput> {
    let name = validate::application_name(&input.application_name)?;
    Ok(GetApplicationOutput { application: Some(ctx.application(name).await?) })
}

pub async fn batch_get(ctx: &Ctx<'_>, input: BatchGetApplicationsInput) -> ApiResult<BatchGetApplicationsOutput> {
    let names = validate::batch(&input.application_names, 100, Exception::ApplicationNameRequired, "applicationNames")?;
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        validate::resource_name(name, Exception::InvalidApplicationName, "applicationNames")?;
        found.push(ctx.application(name).await?);
    }
    Ok(BatchGetApplicationsOutput { applications_info: Some(found) })
}

pub async fn list(ctx: &Ctx<'_>, input: ListApplicationsInput) -> ApiResult<ListApplicationsOutput> {
    let page = page_request("applications", &input.next_token, PAGE)?;
    let page = ctx.store().list_applications(&page).await.map_err(store_error)?;
    Ok(ListApplicationsOutput { applications: Some(page.items), next_token: page_token("applications", page.next) })
}

pub async fn update(ctx: &Ctx<'_>, input: UpdateApplicationInput) -> ApiResult<()> {
    let name = validate::application_name(&input.application_name)?;
    let new_name = validate::name(
        &input.new_application_name,
        Exception::ApplicationNameRequired,
        Exception::InvalidApplicationName,
        "newApplicationName",
    )?;
    let app = ctx.application(name).await?;
    if name == new_name {
        return Ok(());
    }
    match ctx.store().rename_application(app.application_id.as_deref().unwrap_or_default(), new_name).await {
        Err(StoreError::AlreadyExists(Unique::Application)) => {
            err(Exception::ApplicationAlreadyExists, format!("The application {new_name} already exists."))
        }
        Err(StoreError::NotFound) => {
            err(Exception::ApplicationDoesNotExist, format!("No application found for name: {name}"))
        }
        other => other.map_err(store_error),
    }
}

/// Deleting an application that does not exist succeeds: the call is idempotent, and the model
/// gives it no "does not exist" error.
pub async fn delete(ctx: &Ctx<'_>, input: DeleteApplicationInput) -> ApiResult<()> {
    let name = validate::application_name(&input.application_name)?;
    if let Some(app) = ctx.store().application(name).await.map_err(store_error)? {
        ctx.store().delete_application(app.application_id.as_deref().unwrap_or_default()).await.map_err(store_error)?;
    }
    Ok(())
}
