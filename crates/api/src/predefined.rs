//! The predefined `CodeDeployDefault.*` deployment configurations, with the values AWS documents.

use crate::shapes::{
    ComputePlatform, DeploymentConfigInfo, MinimumHealthyHosts, MinimumHealthyHostsType, TimeBasedCanary,
    TimeBasedLinear, TrafficRoutingConfig, TrafficRoutingType,
};
use crate::wire::Timestamp;

/// Names every custom configuration must not start with.
pub const RESERVED_PREFIX: &str = "CodeDeployDefault.";

/// The default configuration of Server deployment groups and deployments.
pub const DEFAULT_SERVER_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// When the predefined configurations "were created": the API version's date, 2014-10-06.
const PREDEFINED_CREATE_TIME: Timestamp = Timestamp(1_412_553_600_000);

enum Rule {
    Hosts(MinimumHealthyHostsType, i64),
    Canary(i64, i64),
    Linear(i64, i64),
    AllAtOnce,
}

/// (id suffix, name, platform, rule). AWS documents the ids of OneAtATime (1) and
/// ECSLinear10PercentEvery1Minutes (15); the others follow the same zero-padded pattern.
const PREDEFINED: [(u32, &str, &str, Rule); 17] = [
    (1, "CodeDeployDefault.OneAtATime", "Server", Rule::Hosts(MinimumHealthyHostsType::MostConcurrency, 1)),
    (2, "CodeDeployDefault.HalfAtATime", "Server", Rule::Hosts(MinimumHealthyHostsType::FleetPercent, 50)),
    (3, "CodeDeployDefault.AllAtOnce", "Server", Rule::Hosts(MinimumHealthyHostsType::HostCount, 0)),
    (4, "CodeDeployDefault.LambdaCanary10Percent5Minutes", "Lambda", Rule::Canary(10, 5)),
    (5, "CodeDeployDefault.LambdaCanary10Percent10Minutes", "Lambda", Rule::Canary(10, 10)),
    (6, "CodeDeployDefault.LambdaCanary10Percent15Minutes", "Lambda", Rule::Canary(10, 15)),
    (7, "CodeDeployDefault.LambdaCanary10Percent30Minutes", "Lambda", Rule::Canary(10, 30)),
    (8, "CodeDeployDefault.LambdaLinear10PercentEvery1Minute", "Lambda", Rule::Linear(10, 1)),
    (9, "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", "Lambda", Rule::Linear(10, 2)),
    (10, "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", "Lambda", Rule::Linear(10, 3)),
    (11, "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", "Lambda", Rule::Linear(10, 10)),
    (12, "CodeDeployDefault.LambdaAllAtOnce", "Lambda", Rule::AllAtOnce),
    (13, "CodeDeployDefault.ECSAllAtOnce", "ECS", Rule::AllAtOnce),
    (14, "CodeDeployDefault.ECSCanary10Percent5Minutes", "ECS", Rule::Canary(10, 5)),
    (15, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes", "ECS", Rule::Linear(10, 1)),
    (16, "CodeDeployDefault.ECSLinear10PercentEvery3Minutes", "ECS", Rule::Linear(10, 3)),
    (17, "CodeDeployDefault.ECSCanary10Percent15Minutes", "ECS", Rule::Canary(10, 15)),
];

/// Every predefined configuration, in a stable order.
pub fn predefined_configs() -> impl Iterator<Item = DeploymentConfigInfo> {
    PREDEFINED.iter().map(|(id, name, platform, rule)| {
        let mut info = DeploymentConfigInfo {
            deployment_config_id: Some(format!("00000000-0000-0000-0000-{id:012}")),
            deployment_config_name: Some((*name).to_owned()),
            create_time: Some(PREDEFINED_CREATE_TIME),
            compute_platform: Some(ComputePlatform::from(*platform)),
            ..DeploymentConfigInfo::default()
        };
        let traffic = |kind, canary, linear| TrafficRoutingConfig {
            r#type: Some(kind),
            time_based_canary: canary,
            time_based_linear: linear,
        };
        match rule {
            Rule::Hosts(kind, value) => {
                info.minimum_healthy_hosts =
                    Some(MinimumHealthyHosts { r#type: Some(kind.clone()), value: Some(*value) });
            }
            Rule::Canary(percentage, interval) => {
                let canary = TimeBasedCanary { canary_percentage: Some(*percentage), canary_interval: Some(*interval) };
                info.traffic_routing_config = Some(traffic(TrafficRoutingType::TimeBasedCanary, Some(canary), None));
            }
            Rule::Linear(percentage, interval) => {
                let linear = TimeBasedLinear { linear_percentage: Some(*percentage), linear_interval: Some(*interval) };
                info.traffic_routing_config = Some(traffic(TrafficRoutingType::TimeBasedLinear, None, Some(linear)));
            }
            Rule::AllAtOnce => info.traffic_routing_config = Some(traffic(TrafficRoutingType::AllAtOnce, None, None)),
        }
        info
    })
}

pub fn predefined_config(name: &str) -> Option<DeploymentConfigInfo> {
    predefined_configs().find(|config| config.deployment_config_name.as_deref() == Some(name))
}

pub fn is_reserved_name(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_seventeen_with_unique_names_and_ids() {
        let configs: Vec<_> = predefined_configs().collect();
        assert_eq!(configs.len(), 17);
        let mut names: Vec<_> = configs.iter().map(|c| c.deployment_config_name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 17);
        assert!(configs.iter().all(|c| is_reserved_name(c.deployment_config_name.as_deref().unwrap())));
    }

    #[test]
    fn documented_ids_and_values() {
        let one = predefined_config("CodeDeployDefault.OneAtATime").unwrap();
        assert_eq!(one.deployment_config_id.as_deref(), Some("00000000-0000-0000-0000-000000000001"));
        let ecs = predefined_config("CodeDeployDefault.ECSLinear10PercentEvery1Minutes").unwrap();
        assert_eq!(ecs.deployment_config_id.as_deref(), Some("00000000-0000-0000-0000-000000000015"));
        let half = predefined_config("CodeDeployDefault.HalfAtATime").unwrap();
        let hosts = half.minimum_healthy_hosts.unwrap();
        assert_eq!((hosts.r#type, hosts.value), (Some(MinimumHealthyHostsType::FleetPercent), Some(50)));
        let canary = predefined_config("CodeDeployDefault.LambdaCanary10Percent30Minutes").unwrap();
        let routing = canary.traffic_routing_config.unwrap();
        assert_eq!(routing.time_based_canary.unwrap().canary_interval, Some(30));
    }
}
