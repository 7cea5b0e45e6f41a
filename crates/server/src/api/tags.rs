//! Resource tags on application, deployment group and deployment configuration ARNs; and the
//! GitHub-connection and CloudFormation calls, answered as for an account that has none.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::validate;
use landfall_store::{PageRequest, TaggedKind};

use super::common::{Ctx, page_in_memory, page_request, page_token, store_error};

const PAGE: usize = 100;

/// Resolves a resource ARN to the kind and id its tags are kept under.
async fn resolve(ctx: &Ctx<'_>, arn: &Option<String>) -> ApiResult<(TaggedKind, String)> {
    let arn = validate::required_str(arn, Exception::ResourceArnRequired, "ResourceArn")?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return err(Exception::InvalidArn, format!("'{arn}' is not an ARN."));
    };
    if scheme != "arn" || !partition.starts_with("aws") || service.is_empty() {
        return err(Exception::InvalidArn, format!("'{arn}' is not an ARN."));
    }
    let Some((kind, name)) = resource.split_once(':') else {
        return err(Exception::ArnNotSupported, format!("Resources like '{resource}' cannot be tagged."));
    };
    if service != "codedeploy" || !["application", "deploymentgroup", "deploymentconfig"].contains(&kind) {
        return err(
            Exception::ArnNotSupported,
            format!("Only application, deployment group and deployment configuration ARNs can be tagged, not '{arn}'."),
        );
    }
    // The server's resources have ARNs in the `aws` partition, its region and its account only.
    let ours = partition == "aws" && region == ctx.state.region && account == ctx.state.account_id;
    match kind {
        "application" => {
            let app = if ours { ctx.store().application(name).await.map_err(store_error)? } else { None };
            match app {
                Some(app) => Ok((TaggedKind::Application, app.application_id.unwrap_or_default())),
                None => err(Exception::ApplicationDoesNotExist, format!("No application found for ARN: {arn}")),
            }
        }
        "deploymentgroup" => {
            let Some((app_name, group_name)) = name.split_once('/') else {
                return err(
                    Exception::InvalidArn,
                    format!("A deployment group ARN ends in application/group: '{arn}'."),
                );
            };
            let app = if ours { ctx.store().application(app_name).await.map_err(store_error)? } else { None };
            let Some(app) = app else {
                return err(Exception::ApplicationDoesNotExist, format!("No application found for name: {app_name}"));
            };
            let group = ctx
                .store()
                .deployment_group(app.application_id.as_deref().unwrap_or_default(), group_name)
                .await
                .map_err(store_error)?;
            match group {
                Some(group) => Ok((TaggedKind::DeploymentGroup, group.id().to_owned())),
                None => {
                    err(Exception::DeploymentGroupDoesNotExist, format!("No deployment group found for ARN: {arn}"))
                }
            }
        }
        _ => {
            let config = if ours { ctx.find_deployment_config(name).await? } else { None };
            match config {
                Some(config) => Ok((TaggedKind::DeploymentConfig, config.deployment_config_name.unwrap_or_default())),
                None => err(
                    Exception::DeploymentConfigDoesNotExist,
                    format!("No deployment configuration found for ARN: {arn}"),
                ),
            }
        }
    }
}

fn is_missing_resource(exception: Exception) -> bool {
    matches!(
        exception,
        Exception::ApplicationDoesNotExist
            | Exception::DeploymentGroupDoesNotExist
            | Exception::DeploymentConfigDoesNotExist
    )
}

pub async fn tag_resource(ctx: &Ctx<'_>, input: TagResourceInput) -> ApiResult<TagResourceOutput> {
    let tags = input.tags.unwrap_or_default();
    let (kind, id) = resolve(ctx, &input.resource_arn).await?;
    if tags.is_empty() {
        return err(Exception::TagRequired, "Tags must list at least one tag.");
    }
    validate::resource_tags(&tags, Exception::InvalidTagsToAdd)?;
    let mut combined = ctx.store().resource_tags(kind, &id).await.map_err(store_error)?;
    combined.retain(|existing| !tags.iter().any(|tag| tag.key == existing.key));
    combined.extend(tags.iter().cloned());
    validate::resource_tags(&combined, Exception::InvalidTagsToAdd)?;
    ctx.store().tag_resource(kind, &id, &tags).await.map_err(store_error)?;
    Ok(TagResourceOutput {})
}

pub async fn untag_resource(ctx: &Ctx<'_>, input: UntagResourceInput) -> ApiResult<UntagResourceOutput> {
    let keys = input.tag_keys.unwrap_or_default();
    let (kind, id) = resolve(ctx, &input.resource_arn).await?;
    if keys.is_empty() {
        return err(Exception::TagRequired, "TagKeys must list at least one key.");
    }
    ctx.store().untag_resource(kind, &id, &keys).await.map_err(store_error)?;
    Ok(UntagResourceOutput {})
}

/// ListTagsForResource's model lists neither a "does not exist" error (unlike Tag/UntagResource)
/// nor InvalidNextTokenException. So a well-formed ARN of an application, group or configuration
/// that does not exist lists no tags, and a NextToken that is not one of ours is ignored: a
/// resource holds at most 50 tags, fewer than a page, so every tag comes in the first page anyway.
pub async fn list_tags(ctx: &Ctx<'_>, input: ListTagsForResourceInput) -> ApiResult<ListTagsForResourceOutput> {
    let page = page_request("tags", &input.next_token, PAGE).unwrap_or(PageRequest { after: None, limit: PAGE });
    let (kind, id) = match resolve(ctx, &input.resource_arn).await {
        Ok(found) => found,
        Err(error) if is_missing_resource(error.exception) => {
            return Ok(ListTagsForResourceOutput { tags: Some(vec![]), next_token: None });
        }
        Err(error) => return Err(error),
    };
    let tags = ctx.store().resource_tags(kind, &id).await.map_err(store_error)?;
    let (tags, next) = page_in_memory(tags, &page, |tag| tag.key.clone().unwrap_or_default());
    Ok(ListTagsForResourceOutput { tags: Some(tags), next_token: page_token("tags", next) })
}

/// Landfall stores no GitHub OAuth connections (git revisions use a configured token), so the
/// list is empty.
pub async fn list_github_tokens(
    _ctx: &Ctx<'_>,
    input: ListGitHubAccountTokenNamesInput,
) -> ApiResult<ListGitHubAccountTokenNamesOutput> {
    page_request("githubTokens", &input.next_token, PAGE)?;
    Ok(ListGitHubAccountTokenNamesOutput { token_name_list: Some(vec![]), next_token: None })
}

pub async fn delete_github_token(
    _ctx: &Ctx<'_>,
    input: DeleteGitHubAccountTokenInput,
) -> ApiResult<DeleteGitHubAccountTokenOutput> {
    let name = validate::required_str(&input.token_name, Exception::GitHubAccountTokenNameRequired, "tokenName")?;
    err(Exception::GitHubAccountTokenDoesNotExist, format!("No GitHub account connection named {name} exists."))
}

/// Nothing in Landfall is created for CloudFormation stacks, so there is nothing to delete.
pub async fn delete_by_external_id(
    _ctx: &Ctx<'_>,
    _input: DeleteResourcesByExternalIdInput,
) -> ApiResult<DeleteResourcesByExternalIdOutput> {
    Ok(DeleteResourcesByExternalIdOutput {})
}
