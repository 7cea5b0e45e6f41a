//! CreateDeploymentConfig.

use crate::error::{ApiResult, Exception, err};
use crate::predefined::is_reserved_name;
use crate::shapes::{
    ComputePlatform, CreateDeploymentConfigInput, MinimumHealthyHosts, MinimumHealthyHostsPerZoneType,
    MinimumHealthyHostsType, TrafficRoutingConfig, TrafficRoutingType, ZonalConfig,
};

use super::{deployment_config_name, known};

/// Longest time from the first to the last traffic shift, in minutes.
pub const MAX_TRAFFIC_SHIFT_MINUTES: i64 = 2880;

/// Validates a CreateDeploymentConfig request; returns the compute platform it is for.
pub fn create_deployment_config(input: &CreateDeploymentConfigInput) -> ApiResult<ComputePlatform> {
    let name = deployment_config_name(&input.deployment_config_name)?;
    if is_reserved_name(name) {
        return err(
            Exception::InvalidDeploymentConfigName,
            format!("deploymentConfigName '{name}' uses the reserved prefix 'CodeDeployDefault.'."),
        );
    }
    let platform = input.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    known(&platform, Exception::InvalidComputePlatform, "computePlatform")?;
    match platform {
        ComputePlatform::Server => {
            let Some(hosts) = &input.minimum_healthy_hosts else {
                return err(
                    Exception::InvalidMinimumHealthyHostValue,
                    "minimumHealthyHosts is required for the Server compute platform: the minimum healthy hosts argument is missing.",
                );
            };
            minimum_healthy_hosts(hosts)?;
            // Landfall's extension: on a Server configuration it shifts a blue/green
            // deployment's traffic by the routers' weights (CodeDeploy refuses it here).
            if let Some(routing) = &input.traffic_routing_config {
                traffic_routing(routing)?;
            }
            if let Some(zonal) = &input.zonal_config {
                zonal_config(zonal)?;
            }
        }
        _ => {
            if input.minimum_healthy_hosts.is_some() {
                return err(
                    Exception::InvalidMinimumHealthyHostValue,
                    format!("minimumHealthyHosts applies to the Server compute platform only, not {platform}."),
                );
            }
            if input.zonal_config.is_some() {
                return err(
                    Exception::InvalidZonalDeploymentConfiguration,
                    format!("zonalConfig applies to the Server compute platform only, not {platform}."),
                );
            }
            let Some(routing) = &input.traffic_routing_config else {
                return err(
                    Exception::InvalidTrafficRoutingConfiguration,
                    format!("trafficRoutingConfig is required for the {platform} compute platform."),
                );
            };
            traffic_routing(routing)?;
        }
    }
    Ok(platform)
}

fn minimum_healthy_hosts(hosts: &MinimumHealthyHosts) -> ApiResult<()> {
    let exception = Exception::InvalidMinimumHealthyHostValue;
    let Some(kind) = &hosts.r#type else {
        return err(exception, "minimumHealthyHosts.type is required (HOST_COUNT or FLEET_PERCENT).");
    };
    let Some(value) = hosts.value else {
        return err(exception, "minimumHealthyHosts.value is required.");
    };
    match kind {
        MinimumHealthyHostsType::HostCount if value < 0 => {
            err(exception, format!("minimumHealthyHosts.value must be 0 or more for HOST_COUNT; got {value}."))
        }
        MinimumHealthyHostsType::FleetPercent if !(0..=99).contains(&value) => {
            err(exception, format!("minimumHealthyHosts.value must be from 0 to 99 for FLEET_PERCENT; got {value}."))
        }
        MinimumHealthyHostsType::HostCount | MinimumHealthyHostsType::FleetPercent => Ok(()),
        other => err(
            exception,
            format!(
                "minimumHealthyHosts.type '{}' is not valid; allowed values: [HOST_COUNT, FLEET_PERCENT].",
                other.as_str()
            ),
        ),
    }
}

fn zonal_config(zonal: &ZonalConfig) -> ApiResult<()> {
    let exception = Exception::InvalidZonalDeploymentConfiguration;
    for (field, value) in [
        ("zonalConfig.firstZoneMonitorDurationInSeconds", zonal.first_zone_monitor_duration_in_seconds),
        ("zonalConfig.monitorDurationInSeconds", zonal.monitor_duration_in_seconds),
    ] {
        if let Some(value) = value
            && !(0..=MAX_TRAFFIC_SHIFT_MINUTES * 60).contains(&value)
        {
            return err(exception, format!("{field} must be from 0 to 172800 seconds; got {value}."));
        }
    }
    if let Some(per_zone) = &zonal.minimum_healthy_hosts_per_zone {
        let Some(kind) = &per_zone.r#type else {
            return err(exception, "zonalConfig.minimumHealthyHostsPerZone.type is required.");
        };
        known(kind, exception, "zonalConfig.minimumHealthyHostsPerZone.type")?;
        let Some(value) = per_zone.value else {
            return err(exception, "zonalConfig.minimumHealthyHostsPerZone.value is required.");
        };
        let valid = match kind {
            MinimumHealthyHostsPerZoneType::FleetPercent => (0..=99).contains(&value),
            _ => value >= 0,
        };
        if !valid {
            return err(
                exception,
                format!("zonalConfig.minimumHealthyHostsPerZone.value {value} is out of range for {kind}."),
            );
        }
    }
    Ok(())
}

fn traffic_routing(routing: &TrafficRoutingConfig) -> ApiResult<()> {
    let exception = Exception::InvalidTrafficRoutingConfiguration;
    let Some(kind) = &routing.r#type else {
        return err(
            exception,
            "trafficRoutingConfig.type is required (TimeBasedCanary, TimeBasedLinear or AllAtOnce).",
        );
    };
    known(kind, exception, "trafficRoutingConfig.type")?;
    let percentage_range = 1..=99;
    let interval_range = 1..=MAX_TRAFFIC_SHIFT_MINUTES;
    match kind {
        TrafficRoutingType::TimeBasedCanary => {
            let Some(canary) = &routing.time_based_canary else {
                return err(exception, "trafficRoutingConfig.timeBasedCanary is required for TimeBasedCanary.");
            };
            if routing.time_based_linear.is_some() {
                return err(exception, "trafficRoutingConfig.timeBasedLinear is not allowed with TimeBasedCanary.");
            }
            let percentage = canary.canary_percentage.unwrap_or(0);
            if !percentage_range.contains(&percentage) {
                return err(
                    exception,
                    format!("timeBasedCanary.canaryPercentage must be from 1 to 99; got {percentage}."),
                );
            }
            let interval = canary.canary_interval.unwrap_or(0);
            if !interval_range.contains(&interval) {
                return err(
                    exception,
                    format!("timeBasedCanary.canaryInterval must be from 1 to 2880 minutes; got {interval}."),
                );
            }
        }
        TrafficRoutingType::TimeBasedLinear => {
            let Some(linear) = &routing.time_based_linear else {
                return err(exception, "trafficRoutingConfig.timeBasedLinear is required for TimeBasedLinear.");
            };
            if routing.time_based_canary.is_some() {
                return err(exception, "trafficRoutingConfig.timeBasedCanary is not allowed with TimeBasedLinear.");
            }
            let percentage = linear.linear_percentage.unwrap_or(0);
            if !percentage_range.contains(&percentage) {
                return err(
                    exception,
                    format!("timeBasedLinear.linearPercentage must be from 1 to 99; got {percentage}."),
                );
            }
            let interval = linear.linear_interval.unwrap_or(0);
            if !interval_range.contains(&interval) {
                return err(
                    exception,
                    format!("timeBasedLinear.linearInterval must be from 1 to 2880 minutes; got {interval}."),
                );
            }
            // Steps after the first: the shift from first to last increment must fit in 2880 min.
            let total = (100 + percentage - 1) / percentage - 1;
            if total * interval > MAX_TRAFFIC_SHIFT_MINUTES {
                return err(
                    exception,
                    format!(
                        "timeBasedLinear shifts {percentage}% every {interval} minutes, which takes {} minutes; at most 2880 are allowed.",
                        total * interval
                    ),
                );
            }
        }
        _ => {
            if routing.time_based_canary.is_some() || routing.time_based_linear.is_some() {
                return err(exception, "AllAtOnce takes neither timeBasedCanary nor timeBasedLinear.");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{MinimumHealthyHostsPerZone, TimeBasedCanary, TimeBasedLinear};

    fn server(kind: &str, value: i64) -> CreateDeploymentConfigInput {
        CreateDeploymentConfigInput {
            deployment_config_name: Some("Custom".into()),
            minimum_healthy_hosts: Some(MinimumHealthyHosts { r#type: Some(kind.into()), value: Some(value) }),
            ..Default::default()
        }
    }

    fn routed(platform: &str, routing: TrafficRoutingConfig) -> CreateDeploymentConfigInput {
        CreateDeploymentConfigInput {
            deployment_config_name: Some("Custom".into()),
            compute_platform: Some(platform.into()),
            traffic_routing_config: Some(routing),
            ..Default::default()
        }
    }

    fn exception(input: &CreateDeploymentConfigInput) -> Exception {
        create_deployment_config(input).unwrap_err().exception
    }

    #[test]
    fn minimum_healthy_hosts_ranges() {
        assert!(create_deployment_config(&server("HOST_COUNT", 0)).is_ok());
        assert!(create_deployment_config(&server("FLEET_PERCENT", 99)).is_ok());
        assert_eq!(exception(&server("FLEET_PERCENT", 100)), Exception::InvalidMinimumHealthyHostValue);
        assert_eq!(exception(&server("HOST_COUNT", -1)), Exception::InvalidMinimumHealthyHostValue);
        assert_eq!(exception(&server("MOST_CONCURRENCY", 1)), Exception::InvalidMinimumHealthyHostValue);
        let missing = CreateDeploymentConfigInput { deployment_config_name: Some("x".into()), ..Default::default() };
        assert_eq!(exception(&missing), Exception::InvalidMinimumHealthyHostValue);
    }

    #[test]
    fn reserved_prefix_and_platform() {
        let mut input = server("HOST_COUNT", 1);
        input.deployment_config_name = Some("CodeDeployDefault.Mine".into());
        assert_eq!(exception(&input), Exception::InvalidDeploymentConfigName);
        let mut input = server("HOST_COUNT", 1);
        input.compute_platform = Some("Mainframe".into());
        assert_eq!(exception(&input), Exception::InvalidComputePlatform);
    }

    #[test]
    fn traffic_routing_ranges() {
        let canary = |p, i| TrafficRoutingConfig {
            r#type: Some(TrafficRoutingType::TimeBasedCanary),
            time_based_canary: Some(TimeBasedCanary { canary_percentage: Some(p), canary_interval: Some(i) }),
            time_based_linear: None,
        };
        let linear = |p, i| TrafficRoutingConfig {
            r#type: Some(TrafficRoutingType::TimeBasedLinear),
            time_based_canary: None,
            time_based_linear: Some(TimeBasedLinear { linear_percentage: Some(p), linear_interval: Some(i) }),
        };
        assert!(create_deployment_config(&routed("Lambda", canary(10, 5))).is_ok());
        assert!(create_deployment_config(&routed("ECS", linear(10, 320))).is_ok()); // 9 steps * 320 = 2880
        assert_eq!(exception(&routed("ECS", linear(10, 321))), Exception::InvalidTrafficRoutingConfiguration);
        assert_eq!(exception(&routed("Lambda", canary(100, 5))), Exception::InvalidTrafficRoutingConfiguration);
        assert_eq!(exception(&routed("Lambda", canary(10, 0))), Exception::InvalidTrafficRoutingConfiguration);
        let no_routing = CreateDeploymentConfigInput {
            deployment_config_name: Some("x".into()),
            compute_platform: Some(ComputePlatform::Lambda),
            ..Default::default()
        };
        assert_eq!(exception(&no_routing), Exception::InvalidTrafficRoutingConfiguration);
    }

    #[test]
    fn zonal_config_is_server_only_and_checked() {
        let mut input = server("HOST_COUNT", 1);
        input.zonal_config = Some(ZonalConfig {
            first_zone_monitor_duration_in_seconds: Some(60),
            monitor_duration_in_seconds: Some(30),
            minimum_healthy_hosts_per_zone: Some(MinimumHealthyHostsPerZone {
                r#type: Some(MinimumHealthyHostsPerZoneType::FleetPercent),
                value: Some(100),
            }),
        });
        assert_eq!(exception(&input), Exception::InvalidZonalDeploymentConfiguration);
        let mut lambda = routed(
            "Lambda",
            TrafficRoutingConfig { r#type: Some(TrafficRoutingType::AllAtOnce), ..Default::default() },
        );
        lambda.zonal_config = Some(ZonalConfig::default());
        assert_eq!(exception(&lambda), Exception::InvalidZonalDeploymentConfiguration);
    }
}
