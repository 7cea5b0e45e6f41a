//! On-premises instances: Register, Deregister, Get, BatchGet, List, Add/RemoveTags.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::validate::{self, IamIdentity, MAX_INSTANCE_TAGS, MAX_INSTANCES_PER_TAG_CALL};
use landfall_engine::selection::{Filter, Selection};
use landfall_store::{StoreError, Unique};

use landfall_api::landfall::{
    AgentStatus, DrainInstanceInput, DrainInstanceOutput, ListAgentStatusInput, ListAgentStatusOutput,
    RegisterInstanceInput, RegisterInstanceOutput,
};

use super::common::{Ctx, page_in_memory, page_request, page_token, random_string, store_error};
use super::keys;

const PAGE: usize = 100;
const ARN_SUFFIX_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub async fn register(ctx: &Ctx<'_>, input: RegisterOnPremisesInstanceInput) -> ApiResult<()> {
    let name = validate::instance_name(&input.instance_name)?;
    let identity = validate::iam_identity(&input)?;
    register_identity(ctx, name, &identity, vec![]).await.map(|_| ())
}

/// Registers `name` with `identity` and `tags`; the exceptions of RegisterOnPremisesInstance.
async fn register_identity(
    ctx: &Ctx<'_>,
    name: &str,
    identity: &IamIdentity,
    tags: Vec<Tag>,
) -> ApiResult<InstanceInfo> {
    let (user, session) = match identity {
        IamIdentity::User(arn) => (Some(arn.clone()), None),
        IamIdentity::Session(arn) => (None, Some(arn.clone())),
    };
    let instance = InstanceInfo {
        instance_name: Some(name.to_owned()),
        iam_session_arn: session,
        iam_user_arn: user,
        instance_arn: Some(ctx.arn(&format!("instance/{name}_{}", random_string(ARN_SUFFIX_ALPHABET, 10)))),
        register_time: Some(ctx.now),
        deregister_time: None,
        tags: Some(tags),
    };
    match ctx.store().register_instance(&instance).await {
        Err(StoreError::AlreadyExists(what)) => match what {
            Unique::Instance => err(
                Exception::InstanceNameAlreadyRegistered,
                format!("The on-premises instance {name} is already registered."),
            ),
            Unique::IamUserArn => err(
                Exception::IamUserArnAlreadyRegistered,
                format!(
                    "The IAM user ARN {} is already registered to another instance.",
                    instance.iam_user_arn.unwrap_or_default()
                ),
            ),
            Unique::IamSessionArn => err(
                Exception::IamSessionArnAlreadyRegistered,
                format!(
                    "The IAM session ARN {} is already registered to another instance.",
                    instance.iam_session_arn.unwrap_or_default()
                ),
            ),
            other => Err(store_error(StoreError::AlreadyExists(other))),
        },
        other => other.map(|()| instance).map_err(store_error),
    }
}

/// Landfall's RegisterInstance: an instance with an identity Landfall issues, its tags, and its
/// agent key. The instance is registered first; a refused key (the key limit) leaves it
/// registered without one, and `landfall keys create --role instance` can add it later.
pub async fn register_with_key(ctx: &Ctx<'_>, input: RegisterInstanceInput) -> ApiResult<RegisterInstanceOutput> {
    register_and_key(ctx, input, false).await
}

/// RegisterInstance for a host that registers itself (a join token): a refused key deregisters
/// the instance again, since the host cannot add one later.
pub async fn register_with_key_or_nothing(
    ctx: &Ctx<'_>,
    input: RegisterInstanceInput,
) -> ApiResult<RegisterInstanceOutput> {
    register_and_key(ctx, input, true).await
}

async fn register_and_key(
    ctx: &Ctx<'_>,
    input: RegisterInstanceInput,
    undo_without_key: bool,
) -> ApiResult<RegisterInstanceOutput> {
    let name = validate::instance_name(&input.instance_name)?.to_owned();
    let tags = validated_tags(input.tags.unwrap_or_default())?;
    let iam_user_arn = format!("arn:aws:iam::{}:user/landfall/{name}", ctx.state.account_id);
    let instance = register_identity(ctx, &name, &IamIdentity::User(iam_user_arn.clone()), tags).await?;
    let key = match keys::create_instance_key(ctx, &name, &format!("agent key of instance {name}")).await {
        Ok(key) => key,
        Err(error) if undo_without_key => {
            let mut undone = instance;
            undone.deregister_time = Some(ctx.now);
            ctx.store().update_instance(&undone).await.map_err(store_error)?;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    Ok(RegisterInstanceOutput {
        instance_name: name,
        instance_arn: instance.instance_arn.unwrap_or_default(),
        iam_user_arn,
        region: ctx.state.region.clone(),
        access_key: keys::key_info(&key, true),
    })
}

/// An instance's tags as RegisterInstance and join tokens take them.
pub fn validated_tags(tags: Vec<Tag>) -> ApiResult<Vec<Tag>> {
    if !tags.is_empty() {
        validate::instance_tags(&Some(tags.clone()))?;
    }
    if tags.len() > MAX_INSTANCE_TAGS {
        return err(
            Exception::TagLimitExceeded,
            format!("{} tags given; an instance can have at most {MAX_INSTANCE_TAGS}.", tags.len()),
        );
    }
    Ok(tags)
}

/// Deregistering keeps the record (with its tags and IAM identity) and frees the name. An
/// unknown or already deregistered instance is left as it is: the model has no error for it.
/// Deregisters the instance, unless a deployment group that deployed to it asks for a
/// termination deployment first (terminationHookEnabled): then it leaves once that is over.
pub async fn deregister(ctx: &Ctx<'_>, input: DeregisterOnPremisesInstanceInput) -> ApiResult<()> {
    let name = validate::instance_name(&input.instance_name)?;
    crate::fleet::depart(ctx.state, name, crate::fleet::Departure::Deregistered).await.map_err(store_error)?;
    Ok(())
}

/// `landfall instance drain`: termination deployments in every group that deployed to the
/// instance, then deregistration.
pub async fn drain(ctx: &Ctx<'_>, input: DrainInstanceInput) -> ApiResult<DrainInstanceOutput> {
    let name = validate::instance_name(&input.instance_name)?;
    registered(ctx, name).await?;
    let departing =
        crate::fleet::depart(ctx.state, name, crate::fleet::Departure::Drained).await.map_err(store_error)?;
    Ok(DrainInstanceOutput {
        deployment_ids: departing.started,
        waiting_for_deployment_ids: departing.waiting_for,
        left: departing.left,
    })
}

/// A registered instance, or InstanceNotRegistered.
pub async fn registered(ctx: &Ctx<'_>, name: &str) -> ApiResult<InstanceInfo> {
    match ctx.store().instance(name).await.map_err(store_error)? {
        Some(instance) if instance.deregister_time.is_none() => Ok(instance),
        _ => err(Exception::InstanceNotRegistered, format!("The on-premises instance {name} is not registered.")),
    }
}

pub async fn get(ctx: &Ctx<'_>, input: GetOnPremisesInstanceInput) -> ApiResult<GetOnPremisesInstanceOutput> {
    let name = validate::instance_name(&input.instance_name)?;
    match ctx.store().instance(name).await.map_err(store_error)? {
        Some(instance) => Ok(GetOnPremisesInstanceOutput { instance_info: Some(instance) }),
        None => err(Exception::InstanceNotRegistered, format!("The on-premises instance {name} is not registered.")),
    }
}

pub async fn batch_get(
    ctx: &Ctx<'_>,
    input: BatchGetOnPremisesInstancesInput,
) -> ApiResult<BatchGetOnPremisesInstancesOutput> {
    let names = validate::batch(&input.instance_names, 100, Exception::InstanceNameRequired, "instanceNames")?;
    let mut found = Vec::new();
    for name in names {
        validate::check_instance_name(name)?;
        if let Some(instance) = ctx.store().instance(name).await.map_err(store_error)? {
            found.push(instance);
        }
    }
    Ok(BatchGetOnPremisesInstancesOutput { instance_infos: Some(found) })
}

pub async fn list(ctx: &Ctx<'_>, input: ListOnPremisesInstancesInput) -> ApiResult<ListOnPremisesInstancesOutput> {
    if let Some(status) = &input.registration_status {
        validate::known(status, Exception::InvalidRegistrationStatus, "registrationStatus")?;
    }
    let filters = input.tag_filters.as_deref().unwrap_or_default();
    for (index, filter) in filters.iter().enumerate() {
        validate::tag_filter(filter.into(), Exception::InvalidTagFilter, &format!("tagFilters[{index}]"))?;
    }
    let page = page_request("onPremisesInstances", &input.next_token, PAGE)?;
    let selection = Selection { any_of: filters.iter().map(Filter::from).collect(), all_of: vec![] };
    let instances: Vec<String> = ctx
        .store()
        .list_instances()
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|instance| match &input.registration_status {
            Some(RegistrationStatus::Registered) => instance.deregister_time.is_none(),
            Some(_) => instance.deregister_time.is_some(),
            None => true,
        })
        .filter(|instance| selection.is_empty() || selection.matches(instance.tags.as_deref().unwrap_or_default()))
        .filter_map(|instance| instance.instance_name)
        .collect();
    let (names, next) = page_in_memory(instances, &page, Clone::clone);
    Ok(ListOnPremisesInstancesOutput {
        instance_names: Some(names),
        next_token: page_token("onPremisesInstances", next),
    })
}

/// Loads every named instance, registered, before anything is changed: a bad name changes none.
async fn registered_instances(ctx: &Ctx<'_>, names: &Option<Vec<String>>) -> ApiResult<Vec<InstanceInfo>> {
    let names = names.as_deref().unwrap_or_default();
    if names.is_empty() {
        return err(Exception::InstanceNameRequired, "instanceNames must list at least one instance.");
    }
    if names.len() > MAX_INSTANCES_PER_TAG_CALL {
        return err(
            Exception::InstanceLimitExceeded,
            format!("instanceNames lists {} instances; at most {MAX_INSTANCES_PER_TAG_CALL} are allowed.", names.len()),
        );
    }
    let mut instances = Vec::with_capacity(names.len());
    for name in names {
        validate::check_instance_name(name)?;
        match ctx.store().instance(name).await.map_err(store_error)? {
            Some(instance) if instance.deregister_time.is_none() => instances.push(instance),
            _ => {
                return err(
                    Exception::InstanceNotRegistered,
                    format!("The on-premises instance {name} is not registered."),
                );
            }
        }
    }
    Ok(instances)
}

pub async fn add_tags(ctx: &Ctx<'_>, input: AddTagsToOnPremisesInstancesInput) -> ApiResult<()> {
    let tags = validate::instance_tags(&input.tags)?.to_vec();
    let mut instances = registered_instances(ctx, &input.instance_names).await?;
    for instance in &mut instances {
        let current = instance.tags.get_or_insert_with(Vec::new);
        for tag in &tags {
            match current.iter_mut().find(|existing| existing.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => current.push(tag.clone()),
            }
        }
        if current.len() > MAX_INSTANCE_TAGS {
            return err(
                Exception::TagLimitExceeded,
                format!(
                    "The instance {} would have {} tags; at most {MAX_INSTANCE_TAGS} are allowed.",
                    instance.instance_name.as_deref().unwrap_or_default(),
                    current.len()
                ),
            );
        }
    }
    for instance in &instances {
        ctx.store().update_instance(instance).await.map_err(store_error)?;
    }
    Ok(())
}

/// Removes each given tag whose key matches and whose value matches too when one is given.
pub async fn remove_tags(ctx: &Ctx<'_>, input: RemoveTagsFromOnPremisesInstancesInput) -> ApiResult<()> {
    let tags = validate::instance_tags(&input.tags)?.to_vec();
    let mut instances = registered_instances(ctx, &input.instance_names).await?;
    for instance in &mut instances {
        instance.tags.get_or_insert_with(Vec::new).retain(|existing| {
            !tags.iter().any(|tag| {
                tag.key == existing.key
                    && (tag.value.as_deref().unwrap_or("").is_empty() || tag.value == existing.value)
            })
        });
        ctx.store().update_instance(instance).await.map_err(store_error)?;
    }
    Ok(())
}

/// When each instance's agent last polled (recorded by the agent protocol on every poll).
pub async fn agent_status(ctx: &Ctx<'_>, _input: ListAgentStatusInput) -> ApiResult<ListAgentStatusOutput> {
    let records = ctx.store().agent_statuses().await.map_err(store_error)?;
    let offered = ctx.state.agent_binary.offered_version().await;
    let agents = records
        .into_iter()
        .map(|record| AgentStatus {
            outdated: outdated(record.agent_version.as_deref(), offered.as_deref()),
            instance_name: record.instance_name,
            last_seen: record.last_seen,
            agent_version: record.agent_version,
        })
        .collect();
    Ok(ListAgentStatusOutput { agents, offered_agent_version: offered })
}

/// Whether an agent that reported `reported` (its User-Agent or the official agent's version
/// header) is a Landfall agent older than the `offered` one. The official agent is never
/// outdated here: Landfall does not update it.
pub fn outdated(reported: Option<&str>, offered: Option<&str>) -> bool {
    use landfall_commands::{AGENT_USER_AGENT_PREFIX, version_numbers};
    let running = reported.and_then(|reported| reported.strip_prefix(AGENT_USER_AGENT_PREFIX));
    match (running.and_then(version_numbers), offered.and_then(version_numbers)) {
        (Some(running), Some(offered)) => running < offered,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::outdated;

    #[test]
    fn only_landfall_agents_older_than_the_offered_one_are_outdated() {
        assert!(outdated(Some("landfall-agent/0.1.0"), Some("0.2.0")));
        assert!(outdated(Some("landfall-agent/0.9.3"), Some("0.10.0")));
        assert!(!outdated(Some("landfall-agent/0.2.0"), Some("0.2.0")));
        assert!(!outdated(Some("landfall-agent/0.3.0"), Some("0.2.0")), "newer than offered");
        assert!(!outdated(Some("landfall-agent/0.1.0"), None), "nothing offered");
        assert!(!outdated(Some("OFFICIAL_1.8.1-2 aws-sdk-ruby"), Some("0.2.0")), "the official agent");
        assert!(!outdated(None, Some("0.2.0")));
    }
}
