//! CreateDeploymentGroup and UpdateDeploymentGroup: the rules a group's settings must follow on
//! each compute platform, and the normalised form in which a group is stored and returned.

use std::collections::HashSet;

use crate::error::{ApiResult, Exception, err};
use crate::shapes::{
    AlarmConfiguration, AutoRollbackConfiguration, BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption,
    ComputePlatform, DeploymentGroupInfo, DeploymentOption, DeploymentReadyAction, DeploymentReadyOption,
    DeploymentStyle, DeploymentType, EC2TagFilter, EC2TagSet, GreenFleetProvisioningAction,
    GreenFleetProvisioningOption, InstanceAction, LoadBalancerInfo, OnPremisesTagSet, OutdatedInstancesStrategy,
    TagFilter, TriggerConfig,
};

use super::known;

pub const MAX_TAG_SET_GROUPS: usize = 3;
pub const MAX_TRIGGERS: usize = 10;
pub const MAX_ALARMS: usize = 10;
pub const MAX_LOAD_BALANCERS: usize = 10;
/// Longest blue/green wait for Server groups (48 h) and ECS groups (120 h), in minutes.
pub const MAX_SERVER_WAIT_MINUTES: i64 = 2880;
pub const MAX_ECS_WAIT_MINUTES: i64 = 7200;

/// Checks a service role ARN's shape: `arn:<partition>:iam::<account>:role/<name>`.
pub fn service_role_arn(value: &str) -> ApiResult<()> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|name| !name.is_empty());
    if valid {
        Ok(())
    } else {
        err(
            Exception::InvalidRole,
            format!("serviceRoleArn '{value}' is not a role ARN of the form arn:aws:iam::<account-id>:role/<name>."),
        )
    }
}

/// One tag filter's key, value and type, whichever shape (EC2 or on-premises) it came in.
pub struct FilterView<'a> {
    pub key: Option<&'a str>,
    pub value: Option<&'a str>,
    pub kind: Option<(&'a str, bool)>,
}

impl<'a> From<&'a EC2TagFilter> for FilterView<'a> {
    fn from(filter: &'a EC2TagFilter) -> Self {
        FilterView {
            key: filter.key.as_deref(),
            value: filter.value.as_deref(),
            kind: filter.r#type.as_ref().map(|kind| (kind.as_str(), kind.is_known())),
        }
    }
}

impl<'a> From<&'a TagFilter> for FilterView<'a> {
    fn from(filter: &'a TagFilter) -> Self {
        FilterView {
            key: filter.key.as_deref(),
            value: filter.value.as_deref(),
            kind: filter.r#type.as_ref().map(|kind| (kind.as_str(), kind.is_known())),
        }
    }
}

/// A tag filter names what its type needs: KEY_ONLY a key, VALUE_ONLY a value, KEY_AND_VALUE
/// both. Without a type the filter matches on whatever it names.
pub fn tag_filter(filter: FilterView<'_>, exception: Exception, field: &str) -> ApiResult<()> {
    let has_key = filter.key.is_some_and(|key| !key.is_empty());
    let has_value = filter.value.is_some_and(|value| !value.is_empty());
    if filter.key.is_some_and(|key| key.chars().count() > 128) {
        return err(exception, format!("{field}: tag keys are at most 128 characters long."));
    }
    if filter.value.is_some_and(|value| value.chars().count() > 256) {
        return err(exception, format!("{field}: tag values are at most 256 characters long."));
    }
    let kind = match filter.kind {
        Some((kind, true)) => kind,
        Some((kind, false)) => {
            return err(
                exception,
                format!("{field}: Type '{kind}' is not valid; allowed values: [KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE]."),
            );
        }
        None if has_key || has_value => return Ok(()),
        None => return err(exception, format!("{field}: a tag filter needs a Key, a Value or both.")),
    };
    match kind {
        "KEY_ONLY" if !has_key => err(exception, format!("{field}: a KEY_ONLY filter needs a Key.")),
        "VALUE_ONLY" if !has_value => err(exception, format!("{field}: a VALUE_ONLY filter needs a Value.")),
        "KEY_AND_VALUE" if !has_key || !has_value => {
            err(exception, format!("{field}: a KEY_AND_VALUE filter needs both a Key and a Value."))
        }
        _ => Ok(()),
    }
}

fn tag_filters<'a, F: 'a>(filters: &'a [F], exception: Exception, field: &str) -> ApiResult<()>
where
    FilterView<'a>: From<&'a F>,
{
    for (index, filter) in filters.iter().enumerate() {
        tag_filter(FilterView::from(filter), exception, &format!("{field}[{index}]"))?;
    }
    Ok(())
}

fn tag_set<'a, F: 'a>(groups: &'a [Vec<F>], exception: Exception, field: &str) -> ApiResult<()>
where
    FilterView<'a>: From<&'a F>,
{
    if groups.len() > MAX_TAG_SET_GROUPS {
        return err(
            Exception::TagSetListLimitExceeded,
            format!("{field} has {} tag groups; at most {MAX_TAG_SET_GROUPS} are allowed.", groups.len()),
        );
    }
    for (index, group) in groups.iter().enumerate() {
        if group.is_empty() {
            return err(exception, format!("{field}[{index}] is an empty tag group."));
        }
        tag_filters(group, exception, &format!("{field}[{index}]"))?;
    }
    Ok(())
}

/// EC2 tag selection: a flat filter list or a tag set, never both.
pub fn ec2_tags(filters: &[EC2TagFilter], set: Option<&EC2TagSet>, field_prefix: &str) -> ApiResult<()> {
    let groups = set.and_then(|set| set.ec2_tag_set_list.as_deref()).unwrap_or_default();
    if !filters.is_empty() && !groups.is_empty() {
        return err(
            Exception::InvalidEC2TagCombination,
            format!("{field_prefix}ec2TagFilters and {field_prefix}ec2TagSet cannot both be given."),
        );
    }
    tag_filters(filters, Exception::InvalidEC2Tag, &format!("{field_prefix}ec2TagFilters"))?;
    tag_set(groups, Exception::InvalidEC2Tag, &format!("{field_prefix}ec2TagSet.ec2TagSetList"))
}

fn on_premises_tags(filters: &[TagFilter], set: Option<&OnPremisesTagSet>) -> ApiResult<()> {
    let groups = set.and_then(|set| set.on_premises_tag_set_list.as_deref()).unwrap_or_default();
    if !filters.is_empty() && !groups.is_empty() {
        return err(
            Exception::InvalidOnPremisesTagCombination,
            "onPremisesInstanceTagFilters and onPremisesTagSet cannot both be given.",
        );
    }
    tag_filters(filters, Exception::InvalidTag, "onPremisesInstanceTagFilters")?;
    tag_set(groups, Exception::InvalidTag, "onPremisesTagSet.onPremisesTagSetList")
}

fn triggers(triggers: &[TriggerConfig]) -> ApiResult<()> {
    if triggers.len() > MAX_TRIGGERS {
        return err(
            Exception::TriggerTargetsLimitExceeded,
            format!("{} triggers given; a deployment group can have at most {MAX_TRIGGERS}.", triggers.len()),
        );
    }
    let exception = Exception::InvalidTriggerConfig;
    let mut names = HashSet::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let field = format!("triggerConfigurations[{index}]");
        let name = trigger.trigger_name.as_deref().unwrap_or("");
        if name.is_empty() {
            return err(exception, format!("{field}.triggerName is required."));
        }
        if !names.insert(name) {
            return err(exception, format!("{field}.triggerName '{name}' is used by another trigger of the group."));
        }
        let target = trigger.trigger_target_arn.as_deref().unwrap_or("");
        let is_topic = target.starts_with("arn:") && target.split(':').nth(2) == Some("sns");
        let is_url = target.starts_with("https://") || target.starts_with("http://");
        if !is_topic && !is_url {
            return err(
                exception,
                format!("{field}.triggerTargetArn '{target}' must be an SNS topic ARN or an http(s) URL."),
            );
        }
        let events = trigger.trigger_events.as_deref().unwrap_or_default();
        if events.is_empty() {
            return err(exception, format!("{field}.triggerEvents must name at least one event."));
        }
        for event in events {
            known(event, exception, &format!("{field}.triggerEvents"))?;
        }
    }
    Ok(())
}

/// An alarm configuration, on a group or as a deployment's override.
pub fn alarms(config: &AlarmConfiguration, field: &str) -> ApiResult<()> {
    let alarms = config.alarms.as_deref().unwrap_or_default();
    if alarms.len() > MAX_ALARMS {
        return err(
            Exception::AlarmsLimitExceeded,
            format!("{field} lists {} alarms; at most {MAX_ALARMS} are allowed.", alarms.len()),
        );
    }
    let exception = Exception::InvalidAlarmConfig;
    if config.enabled == Some(true) && alarms.is_empty() {
        return err(exception, format!("{field} is enabled but lists no alarms."));
    }
    let mut names = HashSet::new();
    for alarm in alarms {
        let name = alarm.name.as_deref().unwrap_or("");
        if name.is_empty() || name.chars().count() > 255 {
            return err(exception, format!("{field}: alarm names must be 1 to 255 characters long."));
        }
        if !names.insert(name) {
            return err(exception, format!("{field}: alarm '{name}' is listed twice."));
        }
    }
    Ok(())
}

/// An automatic rollback configuration, on a group or a deployment.
pub fn auto_rollback(config: &AutoRollbackConfiguration) -> ApiResult<()> {
    let exception = Exception::InvalidAutoRollbackConfig;
    let events = config.events.as_deref().unwrap_or_default();
    if config.enabled == Some(true) && events.is_empty() {
        return err(exception, "autoRollbackConfiguration is enabled but lists no events.");
    }
    for event in events {
        known(event, exception, "autoRollbackConfiguration.events")?;
    }
    Ok(())
}

fn has_load_balancer(info: Option<&LoadBalancerInfo>) -> bool {
    info.is_some_and(|info| {
        !info.elb_info_list.as_deref().unwrap_or_default().is_empty()
            || !info.target_group_info_list.as_deref().unwrap_or_default().is_empty()
            || !info.target_group_pair_info_list.as_deref().unwrap_or_default().is_empty()
    })
}

fn load_balancer(info: &LoadBalancerInfo, platform: &ComputePlatform) -> ApiResult<()> {
    let exception = Exception::InvalidLoadBalancerInfo;
    let elbs = info.elb_info_list.as_deref().unwrap_or_default();
    let groups = info.target_group_info_list.as_deref().unwrap_or_default();
    let pairs = info.target_group_pair_info_list.as_deref().unwrap_or_default();
    match platform {
        ComputePlatform::Lambda => err(exception, "loadBalancerInfo is not supported for the Lambda compute platform."),
        ComputePlatform::Ecs => {
            if !elbs.is_empty() || !groups.is_empty() {
                return err(exception, "ECS deployment groups take loadBalancerInfo.targetGroupPairInfoList only.");
            }
            let pair_exception = Exception::InvalidTargetGroupPair;
            let [pair] = pairs else {
                return err(
                    pair_exception,
                    "loadBalancerInfo.targetGroupPairInfoList must hold exactly one target group pair.",
                );
            };
            let target_groups = pair.target_groups.as_deref().unwrap_or_default();
            if target_groups.len() != 2 || target_groups.iter().any(|g| g.name.as_deref().unwrap_or("").is_empty()) {
                return err(pair_exception, "A target group pair must name exactly two target groups.");
            }
            if target_groups[0].name == target_groups[1].name {
                return err(pair_exception, "The two target groups of a pair must be different.");
            }
            let prod =
                pair.prod_traffic_route.as_ref().and_then(|route| route.listener_arns.as_deref()).unwrap_or_default();
            if prod.len() != 1 {
                return err(pair_exception, "prodTrafficRoute.listenerArns must hold exactly one listener ARN.");
            }
            let test =
                pair.test_traffic_route.as_ref().and_then(|route| route.listener_arns.as_deref()).unwrap_or_default();
            if test.len() > 1 {
                return err(pair_exception, "testTrafficRoute.listenerArns can hold at most one listener ARN.");
            }
            Ok(())
        }
        _ => {
            if !pairs.is_empty() {
                return err(exception, "targetGroupPairInfoList is for ECS deployment groups only.");
            }
            for (field, names) in [
                ("elbInfoList", elbs.iter().map(|e| e.name.as_deref()).collect::<Vec<_>>()),
                ("targetGroupInfoList", groups.iter().map(|g| g.name.as_deref()).collect::<Vec<_>>()),
            ] {
                if names.len() > MAX_LOAD_BALANCERS {
                    return err(
                        exception,
                        format!("loadBalancerInfo.{field} has {} entries; at most 10 are allowed.", names.len()),
                    );
                }
                if names.iter().any(|name| name.unwrap_or("").is_empty()) {
                    return err(exception, format!("Every entry of loadBalancerInfo.{field} needs a name."));
                }
            }
            Ok(())
        }
    }
}

fn blue_green(
    config: &BlueGreenDeploymentConfiguration,
    group: &DeploymentGroupInfo,
    platform: &ComputePlatform,
) -> ApiResult<()> {
    let exception = Exception::InvalidBlueGreenDeploymentConfiguration;
    let max_wait = if *platform == ComputePlatform::Ecs { MAX_ECS_WAIT_MINUTES } else { MAX_SERVER_WAIT_MINUTES };
    if let Some(terminate) = &config.terminate_blue_instances_on_deployment_success {
        if let Some(action) = &terminate.action {
            known(action, exception, "terminateBlueInstancesOnDeploymentSuccess.action")?;
        }
        let wait = terminate.termination_wait_time_in_minutes.unwrap_or(0);
        if !(0..=MAX_SERVER_WAIT_MINUTES).contains(&wait) {
            return err(
                exception,
                format!(
                    "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes must be from 0 to 2880; got {wait}."
                ),
            );
        }
    }
    if let Some(ready) = &config.deployment_ready_option {
        if let Some(action) = &ready.action_on_timeout {
            known(action, exception, "deploymentReadyOption.actionOnTimeout")?;
        }
        let wait = ready.wait_time_in_minutes.unwrap_or(0);
        if !(0..=max_wait).contains(&wait) {
            return err(
                exception,
                format!("deploymentReadyOption.waitTimeInMinutes must be from 0 to {max_wait}; got {wait}."),
            );
        }
    }
    if let Some(green) = &config.green_fleet_provisioning_option {
        if *platform == ComputePlatform::Ecs {
            return err(exception, "greenFleetProvisioningOption does not apply to ECS deployment groups.");
        }
        if let Some(action) = &green.action {
            known(action, exception, "greenFleetProvisioningOption.action")?;
            let has_asgs = !group.auto_scaling_groups.as_deref().unwrap_or_default().is_empty();
            if *action == GreenFleetProvisioningAction::CopyAutoScalingGroup && !has_asgs {
                return err(
                    exception,
                    "greenFleetProvisioningOption COPY_AUTO_SCALING_GROUP needs autoScalingGroups on the group.",
                );
            }
        }
    }
    Ok(())
}

/// Validates a deployment group's complete settings (after an update is merged in) for the
/// application's compute platform.
pub fn deployment_group(group: &DeploymentGroupInfo, platform: &ComputePlatform) -> ApiResult<()> {
    let server = *platform == ComputePlatform::Server;
    let ec2_filters = group.ec2_tag_filters.as_deref().unwrap_or_default();
    let ec2_groups = group.ec2_tag_set.as_ref().and_then(|set| set.ec2_tag_set_list.as_deref()).unwrap_or_default();
    let premises_filters = group.on_premises_instance_tag_filters.as_deref().unwrap_or_default();
    let premises_groups =
        group.on_premises_tag_set.as_ref().and_then(|set| set.on_premises_tag_set_list.as_deref()).unwrap_or_default();
    let asgs = group.auto_scaling_groups.as_deref().unwrap_or_default();
    if !server {
        if !ec2_filters.is_empty() || !ec2_groups.is_empty() {
            return err(Exception::InvalidEC2Tag, format!("EC2 tags do not apply to {platform} deployment groups."));
        }
        if !premises_filters.is_empty() || !premises_groups.is_empty() {
            return err(
                Exception::InvalidTag,
                format!("On-premises tags do not apply to {platform} deployment groups."),
            );
        }
        if !asgs.is_empty() {
            return err(
                Exception::InvalidAutoScalingGroup,
                format!("Auto Scaling groups do not apply to {platform} deployment groups."),
            );
        }
    }
    ec2_tags(ec2_filters, group.ec2_tag_set.as_ref(), "")?;
    on_premises_tags(premises_filters, group.on_premises_tag_set.as_ref())?;
    for (position, asg) in asgs.iter().enumerate() {
        let name = asg.name.as_deref().unwrap_or("");
        if name.is_empty() || name.chars().count() > 255 {
            return err(
                Exception::InvalidAutoScalingGroup,
                "autoScalingGroups entries must be 1 to 255 characters long.",
            );
        }
        if asgs[..position].iter().any(|earlier| earlier.name == asg.name) {
            return err(Exception::InvalidAutoScalingGroup, format!("autoScalingGroups names '{name}' twice."));
        }
    }
    triggers(group.trigger_configurations.as_deref().unwrap_or_default())?;
    if let Some(config) = &group.alarm_configuration {
        alarms(config, "alarmConfiguration")?;
    }
    if let Some(config) = &group.auto_rollback_configuration {
        auto_rollback(config)?;
    }
    if let Some(strategy) = &group.outdated_instances_strategy {
        known(strategy, Exception::InvalidInput, "outdatedInstancesStrategy")?;
    }

    let style = group.deployment_style.clone().unwrap_or_default();
    let style_exception = Exception::InvalidDeploymentStyle;
    if let Some(kind) = &style.deployment_type {
        known(kind, style_exception, "deploymentStyle.deploymentType")?;
    }
    if let Some(option) = &style.deployment_option {
        known(option, style_exception, "deploymentStyle.deploymentOption")?;
    }
    let blue_green_style = style.deployment_type == Some(DeploymentType::BlueGreen);
    let traffic_control = style.deployment_option == Some(DeploymentOption::WithTrafficControl);
    if !server
        && (style.deployment_type.is_some() && !blue_green_style
            || style.deployment_option.is_some() && !traffic_control)
    {
        return err(
            style_exception,
            format!("{platform} deployment groups are always BLUE_GREEN with WITH_TRAFFIC_CONTROL."),
        );
    }
    if server && blue_green_style && style.deployment_option == Some(DeploymentOption::WithoutTrafficControl) {
        return err(style_exception, "Blue/green deployments route traffic, so they need WITH_TRAFFIC_CONTROL.");
    }

    if let Some(info) = &group.load_balancer_info {
        load_balancer(info, platform)?;
    }
    let needs_load_balancer = *platform == ComputePlatform::Ecs || server && (blue_green_style || traffic_control);
    if needs_load_balancer && !has_load_balancer(group.load_balancer_info.as_ref()) {
        return err(
            Exception::InvalidLoadBalancerInfo,
            "This deployment style routes traffic, so loadBalancerInfo must name a load balancer or target group.",
        );
    }

    if let Some(config) = &group.blue_green_deployment_configuration {
        if *platform == ComputePlatform::Lambda {
            return err(
                Exception::InvalidBlueGreenDeploymentConfiguration,
                "blueGreenDeploymentConfiguration does not apply to Lambda deployment groups.",
            );
        }
        blue_green(config, group, platform)?;
    }

    let services = group.ecs_services.as_deref().unwrap_or_default();
    if *platform == ComputePlatform::Ecs {
        let [service] = services else {
            return err(
                Exception::InvalidECSService,
                "An ECS deployment group needs exactly one entry in ecsServices.",
            );
        };
        if service.service_name.as_deref().unwrap_or("").is_empty()
            || service.cluster_name.as_deref().unwrap_or("").is_empty()
        {
            return err(Exception::InvalidECSService, "ecsServices entries need both serviceName and clusterName.");
        }
    } else if !services.is_empty() {
        return err(Exception::InvalidECSService, format!("ecsServices do not apply to {platform} deployment groups."));
    }
    Ok(())
}

/// Fills in what AWS shows for settings never given: empty collections, disabled alarms and
/// rollback, the platform's deployment style, and blue/green defaults for blue/green groups.
pub fn normalize_deployment_group(group: &mut DeploymentGroupInfo, platform: &ComputePlatform) {
    let server = *platform == ComputePlatform::Server;
    group.compute_platform = Some(platform.clone());
    group.ec2_tag_filters.get_or_insert_with(Vec::new);
    group.on_premises_instance_tag_filters.get_or_insert_with(Vec::new);
    group.auto_scaling_groups.get_or_insert_with(Vec::new);
    group.trigger_configurations.get_or_insert_with(Vec::new);
    group.ec2_tag_set.get_or_insert_with(EC2TagSet::default).ec2_tag_set_list.get_or_insert_with(Vec::new);
    group
        .on_premises_tag_set
        .get_or_insert_with(OnPremisesTagSet::default)
        .on_premises_tag_set_list
        .get_or_insert_with(Vec::new);
    let alarms = group.alarm_configuration.get_or_insert_with(AlarmConfiguration::default);
    alarms.enabled.get_or_insert(false);
    alarms.ignore_poll_alarm_failure.get_or_insert(false);
    alarms.alarms.get_or_insert_with(Vec::new);
    let rollback = group.auto_rollback_configuration.get_or_insert_with(AutoRollbackConfiguration::default);
    rollback.enabled.get_or_insert(false);
    group.outdated_instances_strategy.get_or_insert(OutdatedInstancesStrategy::Update);
    group.termination_hook_enabled.get_or_insert(false);
    let style = group.deployment_style.get_or_insert_with(DeploymentStyle::default);
    let default_type = if server { DeploymentType::InPlace } else { DeploymentType::BlueGreen };
    let blue_green = *style.deployment_type.get_or_insert(default_type) == DeploymentType::BlueGreen;
    // Blue/green always routes traffic; only in-place groups go without traffic control by default.
    let default_option =
        if blue_green { DeploymentOption::WithTrafficControl } else { DeploymentOption::WithoutTrafficControl };
    style.deployment_option.get_or_insert(default_option);
    if *platform == ComputePlatform::Ecs {
        group.ecs_services.get_or_insert_with(Vec::new);
    }
    if blue_green && *platform != ComputePlatform::Lambda {
        let config = group.blue_green_deployment_configuration.get_or_insert_with(Default::default);
        let terminate = config
            .terminate_blue_instances_on_deployment_success
            .get_or_insert_with(BlueInstanceTerminationOption::default);
        terminate.action.get_or_insert(InstanceAction::Terminate);
        terminate.termination_wait_time_in_minutes.get_or_insert(0);
        let ready = config.deployment_ready_option.get_or_insert_with(DeploymentReadyOption::default);
        ready.action_on_timeout.get_or_insert(DeploymentReadyAction::ContinueDeployment);
        ready.wait_time_in_minutes.get_or_insert(0);
        if server {
            let green =
                config.green_fleet_provisioning_option.get_or_insert_with(GreenFleetProvisioningOption::default);
            green.action.get_or_insert(GreenFleetProvisioningAction::DiscoverExisting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{Alarm, ECSService, ELBInfo, TargetGroupInfo, TargetGroupPairInfo, TrafficRoute};

    fn filter(key: &str, value: &str, kind: &str) -> EC2TagFilter {
        EC2TagFilter { key: Some(key.into()), value: Some(value.into()), r#type: Some(kind.into()) }
    }

    fn check(group: &DeploymentGroupInfo, platform: ComputePlatform) -> Result<(), Exception> {
        deployment_group(group, &platform).map_err(|e| e.exception)
    }

    #[test]
    fn flat_filters_and_tag_sets_are_exclusive() {
        let group = DeploymentGroupInfo {
            ec2_tag_filters: Some(vec![filter("Name", "web", "KEY_AND_VALUE")]),
            ec2_tag_set: Some(EC2TagSet { ec2_tag_set_list: Some(vec![vec![filter("Env", "", "KEY_ONLY")]]) }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidEC2TagCombination));
        let group = DeploymentGroupInfo {
            on_premises_instance_tag_filters: Some(vec![TagFilter {
                key: Some("a".into()),
                value: None,
                r#type: None,
            }]),
            on_premises_tag_set: Some(OnPremisesTagSet {
                on_premises_tag_set_list: Some(vec![vec![TagFilter {
                    key: Some("b".into()),
                    value: None,
                    r#type: None,
                }]]),
            }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidOnPremisesTagCombination));
    }

    #[test]
    fn tag_sets_hold_at_most_three_groups() {
        let groups = vec![vec![filter("a", "", "KEY_ONLY")]; 4];
        let group = DeploymentGroupInfo {
            ec2_tag_set: Some(EC2TagSet { ec2_tag_set_list: Some(groups) }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::TagSetListLimitExceeded));
    }

    #[test]
    fn tag_filter_types_need_their_parts() {
        for bad in [
            filter("", "v", "KEY_ONLY"),
            filter("k", "", "KEY_AND_VALUE"),
            filter("k", "", "VALUE_ONLY"),
            filter("k", "v", "BOTH"),
        ] {
            let group = DeploymentGroupInfo { ec2_tag_filters: Some(vec![bad]), ..Default::default() };
            assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidEC2Tag));
        }
    }

    #[test]
    fn alarms_triggers_and_rollback() {
        let group = DeploymentGroupInfo {
            alarm_configuration: Some(AlarmConfiguration {
                enabled: Some(true),
                alarms: Some(vec![]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidAlarmConfig));
        let many = (0..11).map(|i| Alarm { name: Some(format!("a{i}")) }).collect();
        let group = DeploymentGroupInfo {
            alarm_configuration: Some(AlarmConfiguration {
                enabled: Some(true),
                alarms: Some(many),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::AlarmsLimitExceeded));
        let group = DeploymentGroupInfo {
            auto_rollback_configuration: Some(AutoRollbackConfiguration { enabled: Some(true), events: Some(vec![]) }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidAutoRollbackConfig));
        let trigger = TriggerConfig {
            trigger_name: Some("t".into()),
            trigger_target_arn: Some("arn:aws:sns:us-east-1:123456789012:topic".into()),
            trigger_events: Some(vec!["DeploymentStart".into()]),
        };
        let group = DeploymentGroupInfo { trigger_configurations: Some(vec![trigger.clone()]), ..Default::default() };
        assert_eq!(check(&group, ComputePlatform::Server), Ok(()));
        let group = DeploymentGroupInfo {
            trigger_configurations: Some(vec![trigger.clone(), trigger.clone()]),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidTriggerConfig));
        let mut bad_event = trigger.clone();
        bad_event.trigger_events = Some(vec!["DeploymentBegin".into()]);
        let group = DeploymentGroupInfo { trigger_configurations: Some(vec![bad_event]), ..Default::default() };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidTriggerConfig));
        let many: Vec<_> =
            (0..11).map(|i| TriggerConfig { trigger_name: Some(format!("t{i}")), ..trigger.clone() }).collect();
        let group = DeploymentGroupInfo { trigger_configurations: Some(many), ..Default::default() };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::TriggerTargetsLimitExceeded));
    }

    #[test]
    fn traffic_control_needs_a_load_balancer() {
        let style = |kind: &str, option: &str| DeploymentStyle {
            deployment_type: Some(kind.into()),
            deployment_option: Some(option.into()),
        };
        let group = DeploymentGroupInfo {
            deployment_style: Some(style("IN_PLACE", "WITH_TRAFFIC_CONTROL")),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Err(Exception::InvalidLoadBalancerInfo));
        let with_lb = DeploymentGroupInfo {
            load_balancer_info: Some(LoadBalancerInfo {
                target_group_info_list: Some(vec![TargetGroupInfo { name: Some("web".into()) }]),
                ..Default::default()
            }),
            ..group
        };
        assert_eq!(check(&with_lb, ComputePlatform::Server), Ok(()));
        let bg = DeploymentGroupInfo {
            deployment_style: Some(style("BLUE_GREEN", "WITHOUT_TRAFFIC_CONTROL")),
            ..with_lb.clone()
        };
        assert_eq!(check(&bg, ComputePlatform::Server), Err(Exception::InvalidDeploymentStyle));
        let lambda = DeploymentGroupInfo {
            deployment_style: Some(style("IN_PLACE", "WITH_TRAFFIC_CONTROL")),
            ..Default::default()
        };
        assert_eq!(check(&lambda, ComputePlatform::Lambda), Err(Exception::InvalidDeploymentStyle));
        let elbs = (0..11).map(|i| ELBInfo { name: Some(format!("e{i}")) }).collect();
        let too_many = DeploymentGroupInfo {
            load_balancer_info: Some(LoadBalancerInfo { elb_info_list: Some(elbs), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(check(&too_many, ComputePlatform::Server), Err(Exception::InvalidLoadBalancerInfo));
    }

    fn ecs_group() -> DeploymentGroupInfo {
        DeploymentGroupInfo {
            ecs_services: Some(vec![ECSService {
                service_name: Some("web".into()),
                cluster_name: Some("prod".into()),
            }]),
            load_balancer_info: Some(LoadBalancerInfo {
                target_group_pair_info_list: Some(vec![TargetGroupPairInfo {
                    target_groups: Some(vec![
                        TargetGroupInfo { name: Some("blue".into()) },
                        TargetGroupInfo { name: Some("green".into()) },
                    ]),
                    prod_traffic_route: Some(TrafficRoute { listener_arns: Some(vec!["arn:listener/1".into()]) }),
                    test_traffic_route: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ecs_groups_need_one_service_and_one_target_group_pair() {
        assert_eq!(check(&ecs_group(), ComputePlatform::Ecs), Ok(()));
        let mut no_service = ecs_group();
        no_service.ecs_services = None;
        assert_eq!(check(&no_service, ComputePlatform::Ecs), Err(Exception::InvalidECSService));
        let mut one_group = ecs_group();
        let pair = &mut one_group.load_balancer_info.as_mut().unwrap().target_group_pair_info_list.as_mut().unwrap()[0];
        pair.target_groups.as_mut().unwrap().pop();
        assert_eq!(check(&one_group, ComputePlatform::Ecs), Err(Exception::InvalidTargetGroupPair));
        assert_eq!(check(&ecs_group(), ComputePlatform::Server), Err(Exception::InvalidLoadBalancerInfo));
        let mut green = ecs_group();
        green.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
            green_fleet_provisioning_option: Some(GreenFleetProvisioningOption {
                action: Some(GreenFleetProvisioningAction::DiscoverExisting),
            }),
            ..Default::default()
        });
        assert_eq!(check(&green, ComputePlatform::Ecs), Err(Exception::InvalidBlueGreenDeploymentConfiguration));
    }

    #[test]
    fn normalisation_shows_empty_collections_and_platform_style() {
        let mut group = DeploymentGroupInfo::default();
        normalize_deployment_group(&mut group, &ComputePlatform::Server);
        assert_eq!(group.ec2_tag_filters, Some(vec![]));
        assert_eq!(group.auto_rollback_configuration.as_ref().unwrap().enabled, Some(false));
        assert_eq!(group.deployment_style.as_ref().unwrap().deployment_type, Some(DeploymentType::InPlace));
        assert!(group.blue_green_deployment_configuration.is_none());
        let mut lambda = DeploymentGroupInfo::default();
        normalize_deployment_group(&mut lambda, &ComputePlatform::Lambda);
        assert_eq!(
            lambda.deployment_style.as_ref().unwrap().deployment_option,
            Some(DeploymentOption::WithTrafficControl)
        );
        assert!(deployment_group(&lambda, &ComputePlatform::Lambda).is_ok());
    }

    #[test]
    fn blue_green_style_without_an_option_routes_traffic() {
        let mut group = DeploymentGroupInfo {
            deployment_style: Some(DeploymentStyle {
                deployment_type: Some("BLUE_GREEN".into()),
                deployment_option: None,
            }),
            load_balancer_info: Some(LoadBalancerInfo {
                elb_info_list: Some(vec![ELBInfo { name: Some("web".into()) }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check(&group, ComputePlatform::Server), Ok(()));
        normalize_deployment_group(&mut group, &ComputePlatform::Server);
        assert_eq!(
            group.deployment_style.as_ref().unwrap().deployment_option,
            Some(DeploymentOption::WithTrafficControl)
        );
        // The stored form passes validation again, so later updates of the group work.
        assert_eq!(check(&group, ComputePlatform::Server), Ok(()));
    }

    #[test]
    fn an_empty_tag_set_shows_an_empty_list() {
        let mut group = DeploymentGroupInfo {
            ec2_tag_set: Some(EC2TagSet { ec2_tag_set_list: None }),
            on_premises_tag_set: Some(OnPremisesTagSet { on_premises_tag_set_list: None }),
            ..Default::default()
        };
        normalize_deployment_group(&mut group, &ComputePlatform::Server);
        assert_eq!(group.ec2_tag_set.unwrap().ec2_tag_set_list, Some(vec![]));
        assert_eq!(group.on_premises_tag_set.unwrap().on_premises_tag_set_list, Some(vec![]));
    }

    #[test]
    fn role_arns() {
        assert!(service_role_arn("arn:aws:iam::123456789012:role/CodeDeploy").is_ok());
        for bad in ["role", "arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/x", "arn:aws:s3:::bucket"] {
            assert_eq!(service_role_arn(bad).unwrap_err().exception, Exception::InvalidRole, "{bad}");
        }
    }
}
