//! Deployment groups: Create, Get, BatchGet, List, Update (partial, with rename), Delete.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::validate;
use landfall_engine::selection;
use landfall_store::{GroupRecord, StoreError, TaggedKind, Unique};

use super::common::{Ctx, default_config_name, new_uuid, page_request, page_token, store_error};

const PAGE: usize = 100;
/// Deployment groups per application.
pub const MAX_GROUPS_PER_APPLICATION: usize = 1000;

/// The settable fields of a group, as Create and Update send them. `None` leaves a field as it
/// is (Update) or at its default (Create); a given list replaces the stored one.
#[derive(Default)]
struct Settings {
    deployment_config_name: Option<String>,
    ec2_tag_filters: Option<Vec<EC2TagFilter>>,
    on_premises_instance_tag_filters: Option<Vec<TagFilter>>,
    auto_scaling_groups: Option<Vec<String>>,
    service_role_arn: Option<String>,
    trigger_configurations: Option<Vec<TriggerConfig>>,
    alarm_configuration: Option<AlarmConfiguration>,
    auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    outdated_instances_strategy: Option<OutdatedInstancesStrategy>,
    deployment_style: Option<DeploymentStyle>,
    blue_green_deployment_configuration: Option<BlueGreenDeploymentConfiguration>,
    load_balancer_info: Option<LoadBalancerInfo>,
    ec2_tag_set: Option<EC2TagSet>,
    ecs_services: Option<Vec<ECSService>>,
    on_premises_tag_set: Option<OnPremisesTagSet>,
    termination_hook_enabled: Option<bool>,
}

macro_rules! settings_from {
    ($input:expr) => {
        Settings {
            deployment_config_name: $input.deployment_config_name,
            ec2_tag_filters: $input.ec2_tag_filters,
            on_premises_instance_tag_filters: $input.on_premises_instance_tag_filters,
            auto_scaling_groups: $input.auto_scaling_groups,
            service_role_arn: $input.service_role_arn,
            trigger_configurations: $input.trigger_configurations,
            alarm_configuration: $input.alarm_configuration,
            auto_rollback_configuration: $input.auto_rollback_configuration,
            outdated_instances_strategy: $input.outdated_instances_strategy,
            deployment_style: $input.deployment_style,
            blue_green_deployment_configuration: $input.blue_green_deployment_configuration,
            load_balancer_info: $input.load_balancer_info,
            ec2_tag_set: $input.ec2_tag_set,
            ecs_services: $input.ecs_services,
            on_premises_tag_set: $input.on_premises_tag_set,
            termination_hook_enabled: $input.termination_hook_enabled,
        }
    };
}

impl Settings {
    /// Applies the given settings to `group`. A tag selection given in either form (flat list or
    /// tag set) replaces the group's selection of that kind in both forms.
    fn apply_to(self, group: &mut DeploymentGroupInfo) {
        if self.ec2_tag_filters.is_some() || self.ec2_tag_set.is_some() {
            group.ec2_tag_filters = self.ec2_tag_filters;
            group.ec2_tag_set = self.ec2_tag_set;
        }
        if self.on_premises_instance_tag_filters.is_some() || self.on_premises_tag_set.is_some() {
            group.on_premises_instance_tag_filters = self.on_premises_instance_tag_filters;
            group.on_premises_tag_set = self.on_premises_tag_set;
        }
        if let Some(names) = self.auto_scaling_groups {
            // A pool the group named before keeps its hooks (see `name_hooks`).
            let before = group.auto_scaling_groups.take().unwrap_or_default();
            group.auto_scaling_groups = Some(
                names
                    .into_iter()
                    .map(|name| {
                        before
                            .iter()
                            .find(|asg| asg.name.as_deref() == Some(name.as_str()))
                            .cloned()
                            .unwrap_or(AutoScalingGroup { name: Some(name), hook: None, termination_hook: None })
                    })
                    .collect(),
            );
        }
        macro_rules! replace {
            ($($field:ident),+) => { $(if self.$field.is_some() { group.$field = self.$field; })+ };
        }
        replace!(
            deployment_config_name,
            service_role_arn,
            trigger_configurations,
            alarm_configuration,
            auto_rollback_configuration,
            outdated_instances_strategy,
            deployment_style,
            blue_green_deployment_configuration,
            load_balancer_info,
            ecs_services,
            termination_hook_enabled
        );
    }
}

/// Checks a group's settings against its application and stored configurations, then
/// normalises them as AWS shows them.
async fn check_settings(ctx: &Ctx<'_>, group: &mut DeploymentGroupInfo, platform: &ComputePlatform) -> ApiResult<()> {
    let role = validate::required_str(&group.service_role_arn, Exception::RoleRequired, "serviceRoleArn")?;
    validate::service_role_arn(role)?;
    let config = group.deployment_config_name.get_or_insert_with(|| default_config_name(platform).to_owned()).clone();
    validate::resource_name(&config, Exception::InvalidDeploymentConfigName, "deploymentConfigName")?;
    ctx.deployment_config_for(&config, platform).await?;
    validate::deployment_group(group, platform)?;
    if !ctx.state.triggers.urls_allowed {
        let url = group
            .trigger_configurations
            .iter()
            .flatten()
            .filter_map(|t| t.trigger_target_arn.as_deref())
            .find(|target| !target.starts_with("arn:"));
        if let Some(url) = url {
            return err(
                Exception::InvalidTriggerConfig,
                format!(
                    "triggerTargetArn '{url}': this server delivers triggers only to the SNS topic ARNs its \
                     operator mapped to URLs (landfall server --sns-topic), not to URLs given here."
                ),
            );
        }
    }
    for pool in selection::group_pools(group) {
        if ctx.store().host_pool(pool).await.map_err(store_error)?.is_none() {
            return err(
                Exception::InvalidAutoScalingGroup,
                format!(
                    "autoScalingGroups names '{pool}', which is not a host pool: Landfall's autoScalingGroups are \
                     host pools (landfall pool create {pool})."
                ),
            );
        }
    }
    validate::normalize_deployment_group(group, platform);
    name_hooks(group);
    Ok(())
}

/// Names the launch hook of each host pool the group names, and its termination hook while
/// terminationHookEnabled, as CodeDeploy names the lifecycle hooks it installs in Auto Scaling
/// groups. Landfall installs nothing (it watches pool membership itself), but the names are
/// what tools read back, so a pool keeps them for as long as the group names it.
fn name_hooks(group: &mut DeploymentGroupInfo) {
    let group_name = group.deployment_group_name.clone().unwrap_or_default();
    let terminate = group.termination_hook_enabled == Some(true);
    for asg in group.auto_scaling_groups.iter_mut().flatten() {
        asg.hook.get_or_insert_with(|| {
            format!("CodeDeploy-managed-automatic-launch-deployment-hook-{group_name}-{}", new_uuid())
        });
        if !terminate {
            asg.termination_hook = None;
        } else if asg.termination_hook.is_none() {
            asg.termination_hook =
                Some(format!("CodeDeploy-managed-automatic-termination-deployment-hook-{group_name}-{}", new_uuid()));
        }
    }
}

fn conflict(what: Unique, app: &str, group: &str) -> landfall_api::ApiError {
    if what == Unique::EcsService {
        landfall_api::ApiError::new(
            Exception::ECSServiceMappingLimitExceeded,
            "The ECS service is already associated with another deployment group.",
        )
    } else {
        landfall_api::ApiError::new(
            Exception::DeploymentGroupAlreadyExists,
            format!("A deployment group named {group} already exists in application {app}."),
        )
    }
}

pub async fn create(ctx: &Ctx<'_>, input: CreateDeploymentGroupInput) -> ApiResult<CreateDeploymentGroupOutput> {
    let app_name = validate::application_name(&input.application_name)?.to_owned();
    let group_name = validate::deployment_group_name(&input.deployment_group_name, "deploymentGroupName")?.to_owned();
    let tags = input.tags.clone().unwrap_or_default();
    validate::resource_tags(&tags, Exception::InvalidTagsToAdd)?;
    let app = ctx.application(&app_name).await?;
    let platform = app.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    let app_id = app.application_id.clone().unwrap_or_default();

    let id = new_uuid();
    let mut group = DeploymentGroupInfo {
        deployment_group_id: Some(id.clone()),
        deployment_group_name: Some(group_name.clone()),
        ..Default::default()
    };
    settings_from!(input).apply_to(&mut group);
    check_settings(ctx, &mut group, &platform).await?;
    let record = GroupRecord { application_id: app_id, info: group };
    match ctx.store().create_deployment_group(&record, MAX_GROUPS_PER_APPLICATION).await {
        Err(StoreError::AlreadyExists(what)) => return Err(conflict(what, &app_name, &group_name)),
        Err(StoreError::LimitExceeded(limit)) => {
            return err(
                Exception::DeploymentGroupLimitExceeded,
                format!("Application {app_name} already has {limit} deployment groups."),
            );
        }
        other => other.map_err(store_error)?,
    }
    if !tags.is_empty() {
        ctx.store().tag_resource(TaggedKind::DeploymentGroup, &id, &tags).await.map_err(store_error)?;
    }
    Ok(CreateDeploymentGroupOutput { deployment_group_id: Some(id) })
}

/// The group as the API shows it: with its application's name and its last deployments.
async fn describe(ctx: &Ctx<'_>, app: &ApplicationInfo, record: GroupRecord) -> ApiResult<DeploymentGroupInfo> {
    let mut info = record.info;
    info.application_name = app.application_name.clone();
    let id = info.deployment_group_id.clone().unwrap_or_default();
    let (attempted, succeeded) = ctx.store().last_deployments(&id).await.map_err(store_error)?;
    let summary = |deployment: DeploymentInfo| LastDeploymentInfo {
        deployment_id: deployment.deployment_id,
        status: deployment.status,
        end_time: deployment.complete_time,
        create_time: deployment.create_time,
    };
    info.last_attempted_deployment = attempted.map(summary);
    info.last_successful_deployment = succeeded.map(summary);
    Ok(info)
}

pub async fn get(ctx: &Ctx<'_>, input: GetDeploymentGroupInput) -> ApiResult<GetDeploymentGroupOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let group_name = validate::deployment_group_name(&input.deployment_group_name, "deploymentGroupName")?;
    let (app, record) = ctx.application_and_group(app_name, group_name).await?;
    Ok(GetDeploymentGroupOutput { deployment_group_info: Some(describe(ctx, &app, record).await?) })
}

pub async fn batch_get(
    ctx: &Ctx<'_>,
    input: BatchGetDeploymentGroupsInput,
) -> ApiResult<BatchGetDeploymentGroupsOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let names = validate::batch(
        &input.deployment_group_names,
        100,
        Exception::DeploymentGroupNameRequired,
        "deploymentGroupNames",
    )?;
    for name in names {
        validate::resource_name(name, Exception::InvalidDeploymentGroupName, "deploymentGroupNames")?;
    }
    let app = ctx.application(app_name).await?;
    let app_id = app.application_id.clone().unwrap_or_default();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match ctx.store().deployment_group(&app_id, name).await.map_err(store_error)? {
            Some(record) => found.push(describe(ctx, &app, record).await?),
            None => missing.push(name.as_str()),
        }
    }
    let error_message = if missing.is_empty() {
        String::new()
    } else {
        format!("Deployment groups not found in application {app_name}: {}", missing.join(", "))
    };
    Ok(BatchGetDeploymentGroupsOutput { deployment_groups_info: Some(found), error_message: Some(error_message) })
}

pub async fn list(ctx: &Ctx<'_>, input: ListDeploymentGroupsInput) -> ApiResult<ListDeploymentGroupsOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let page = page_request("deploymentGroups", &input.next_token, PAGE)?;
    let app = ctx.application(app_name).await?;
    let page = ctx
        .store()
        .list_deployment_groups(app.application_id.as_deref().unwrap_or_default(), &page)
        .await
        .map_err(store_error)?;
    Ok(ListDeploymentGroupsOutput {
        application_name: Some(app_name.to_owned()),
        deployment_groups: Some(page.items),
        next_token: page_token("deploymentGroups", page.next),
    })
}

pub async fn update(ctx: &Ctx<'_>, input: UpdateDeploymentGroupInput) -> ApiResult<UpdateDeploymentGroupOutput> {
    let app_name = validate::application_name(&input.application_name)?.to_owned();
    let current =
        validate::deployment_group_name(&input.current_deployment_group_name, "currentDeploymentGroupName")?.to_owned();
    let new_name = match &input.new_deployment_group_name {
        Some(name) if !name.is_empty() => {
            validate::resource_name(name, Exception::InvalidDeploymentGroupName, "newDeploymentGroupName")?;
            Some(name.clone())
        }
        _ => None,
    };
    // A group always has its role, so Update has no RoleRequiredException: an empty role given
    // to replace the stored one is an invalid role.
    if let Some(role) = &input.service_role_arn {
        validate::service_role_arn(role)?;
    }
    let (app, mut record) = ctx.application_and_group(&app_name, &current).await?;
    let platform = app.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    settings_from!(input).apply_to(&mut record.info);
    if let Some(name) = &new_name {
        record.info.deployment_group_name = Some(name.clone());
    }
    check_settings(ctx, &mut record.info, &platform).await?;
    let shown_name = new_name.unwrap_or(current);
    match ctx.store().update_deployment_group(&record).await {
        Err(StoreError::AlreadyExists(what)) => Err(conflict(what, &app_name, &shown_name)),
        Err(StoreError::NotFound) => err(
            Exception::DeploymentGroupDoesNotExist,
            format!("No Deployment Group found for name: {shown_name} in application {app_name}"),
        ),
        other => {
            other.map(|()| UpdateDeploymentGroupOutput { hooks_not_cleaned_up: Some(vec![]) }).map_err(store_error)
        }
    }
}

/// Deleting a group (or an application's group) that does not exist succeeds: the model gives
/// the call no "does not exist" error. Its host pools' hooks are names only: none is left over.
pub async fn delete(ctx: &Ctx<'_>, input: DeleteDeploymentGroupInput) -> ApiResult<DeleteDeploymentGroupOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let group_name = validate::deployment_group_name(&input.deployment_group_name, "deploymentGroupName")?;
    if let Some(app) = ctx.store().application(app_name).await.map_err(store_error)? {
        let app_id = app.application_id.as_deref().unwrap_or_default();
        if let Some(record) = ctx.store().deployment_group(app_id, group_name).await.map_err(store_error)? {
            ctx.store().delete_deployment_group(record.id()).await.map_err(store_error)?;
        }
    }
    Ok(DeleteDeploymentGroupOutput { hooks_not_cleaned_up: Some(vec![]) })
}
