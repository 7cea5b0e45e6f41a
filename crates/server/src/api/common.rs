//! Helpers every handler uses: the request context, identifiers, ARNs, page tokens, and the
//! mapping of store failures onto API errors.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use landfall_api::error::{ApiError, ApiResult, Exception, err};
use landfall_api::shapes::{ApplicationInfo, ComputePlatform, DeploymentConfigInfo};
use landfall_api::{Timestamp, predefined};
use landfall_store::{GroupRecord, PageRequest};

use crate::auth::Caller;
use crate::state::AppState;

/// Everything a handler needs: shared state, who is calling, and the time of the request.
pub struct Ctx<'a> {
    pub state: &'a Arc<AppState>,
    pub caller: &'a Caller,
    pub now: Timestamp,
}

impl Ctx<'_> {
    pub fn store(&self) -> &dyn landfall_store::Store {
        self.state.store.as_ref()
    }

    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:codedeploy:{}:{}:{resource}", self.state.region, self.state.account_id)
    }

    /// Loads an application by name, or ApplicationDoesNotExistException.
    pub async fn application(&self, name: &str) -> ApiResult<ApplicationInfo> {
        match self.store().application(name).await.map_err(store_error)? {
            Some(app) => Ok(app),
            None => err(Exception::ApplicationDoesNotExist, format!("No application found for name: {name}")),
        }
    }

    /// Loads an application and its deployment group, or the exception saying which is missing.
    pub async fn application_and_group(
        &self,
        app_name: &str,
        group_name: &str,
    ) -> ApiResult<(ApplicationInfo, GroupRecord)> {
        match self.store().application_and_group(app_name, group_name).await.map_err(store_error)? {
            None => err(Exception::ApplicationDoesNotExist, format!("No application found for name: {app_name}")),
            Some((_, None)) => err(
                Exception::DeploymentGroupDoesNotExist,
                format!("No Deployment Group found for name: {group_name} in application {app_name}"),
            ),
            Some((app, Some(group))) => Ok((app, group)),
        }
    }

    /// A predefined or custom deployment configuration, or None.
    pub async fn find_deployment_config(&self, name: &str) -> ApiResult<Option<DeploymentConfigInfo>> {
        if let Some(config) = predefined::predefined_config(name) {
            return Ok(Some(config));
        }
        self.store().deployment_config(name).await.map_err(store_error)
    }

    /// A deployment configuration usable by `platform`, or the exception AWS answers.
    pub async fn deployment_config_for(
        &self,
        name: &str,
        platform: &ComputePlatform,
    ) -> ApiResult<DeploymentConfigInfo> {
        let Some(config) = self.find_deployment_config(name).await? else {
            return err(
                Exception::DeploymentConfigDoesNotExist,
                format!("No deployment configuration found for name: {name}"),
            );
        };
        let config_platform = config.compute_platform.clone().unwrap_or(ComputePlatform::Server);
        if config_platform != *platform {
            return err(
                Exception::InvalidDeploymentConfigName,
                format!(
                    "Deployment configuration {name} is for the {config_platform} compute platform, not {platform}."
                ),
            );
        }
        Ok(config)
    }
}

/// The default deployment configuration of a compute platform.
pub fn default_config_name(platform: &ComputePlatform) -> &'static str {
    match platform {
        ComputePlatform::Lambda => "CodeDeployDefault.LambdaAllAtOnce",
        ComputePlatform::Ecs => "CodeDeployDefault.ECSAllAtOnce",
        _ => predefined::DEFAULT_SERVER_CONFIG,
    }
}

pub use crate::errors::store_error;
pub use crate::ids::{new_deployment_id, new_uuid, random_string};

/// Page tokens are opaque to clients: the listing's name and the store's cursor, base64url.
/// A token from another listing, or not made here, is InvalidNextTokenException.
pub fn page_request(listing: &str, token: &Option<String>, limit: usize) -> ApiResult<PageRequest> {
    let after = match token.as_deref() {
        None | Some("") => None,
        Some(token) => Some(decode_token(listing, token).ok_or_else(|| {
            ApiError::new(
                Exception::InvalidNextToken,
                "The nextToken is invalid; pass the one the previous page returned.",
            )
        })?),
    };
    Ok(PageRequest { after, limit })
}

fn decode_token(listing: &str, token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, cursor) = text.split_once('\n')?;
    (kind == listing).then(|| cursor.to_owned())
}

pub fn page_token(listing: &str, cursor: Option<String>) -> Option<String> {
    cursor.map(|cursor| URL_SAFE_NO_PAD.encode(format!("{listing}\n{cursor}")))
}

/// Pages through a list held in memory, ordered by `key`, after the cursor's key.
pub fn page_in_memory<T>(items: Vec<T>, page: &PageRequest, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = match &page.after {
        Some(after) => items.into_iter().filter(|item| key(item).as_str() > after.as_str()).collect(),
        None => items,
    };
    if rest.len() > page.limit {
        rest.truncate(page.limit);
        let next = rest.last().map(&key);
        (rest, next)
    } else {
        (rest, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_listing() {
        let token = page_token("applications", Some("bravo".into()));
        let page = page_request("applications", &token, 10).unwrap();
        assert_eq!(page.after.as_deref(), Some("bravo"));
        assert_eq!(page_request("deployments", &token, 10).unwrap_err().exception, Exception::InvalidNextToken);
        assert_eq!(
            page_request("applications", &Some("garbage!".into()), 10).unwrap_err().exception,
            Exception::InvalidNextToken
        );
        assert_eq!(page_request("applications", &None, 10).unwrap().after, None);
    }

    #[test]
    fn deployment_ids_have_the_aws_shape() {
        let id = new_deployment_id();
        assert!(landfall_api::validate::deployment_id(&Some(id.clone())).is_ok(), "{id}");
    }

    #[test]
    fn in_memory_pages() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let first = page_in_memory(items.clone(), &PageRequest { after: None, limit: 2 }, Clone::clone);
        assert_eq!(first, (vec!["a".to_owned(), "b".to_owned()], Some("b".to_owned())));
        let second = page_in_memory(items, &PageRequest { after: first.1, limit: 2 }, Clone::clone);
        assert_eq!(second, (vec!["c".to_owned()], None));
    }
}
