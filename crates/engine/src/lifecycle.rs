//! Which lifecycle events a deployment target runs, in order, by compute platform, deployment
//! style and the kind of deployment.

use landfall_api::shapes::{ComputePlatform, DeploymentCreator, DeploymentOption, DeploymentType};

const INSTALL: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
pub(crate) const BLOCK_TRAFFIC: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
pub(crate) const ALLOW_TRAFFIC: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];
const ECS: [&str; 8] = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];

/// Events run by the service or the agent itself; no AppSpec hook can be attached to them.
pub const RESERVED_EVENTS: [&str; 6] =
    ["DownloadBundle", "Install", "BlockTraffic", "AllowTraffic", "AllowTestTraffic", "Start"];

/// Events of a Server target that the server carries out itself (moving the instance out of
/// or into its target groups), not the instance's agent.
pub const SERVER_SIDE_EVENTS: [&str; 2] = ["BlockTraffic", "AllowTraffic"];

/// Whether the server, not the agent, carries out `event` for a Server target.
pub fn runs_on_server(event: &str) -> bool {
    SERVER_SIDE_EVENTS.contains(&event)
}

/// The role a Server target plays in its deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTargetRole {
    /// An in-place target, or a replacement (green) instance of a blue/green deployment.
    Install,
    /// An original (blue) instance of a blue/green deployment: it only leaves the load balancer.
    Original,
}

/// The ordered lifecycle events of one target.
pub fn lifecycle_events(
    platform: &ComputePlatform,
    style_type: &DeploymentType,
    style_option: &DeploymentOption,
    creator: &DeploymentCreator,
    role: ServerTargetRole,
) -> Vec<&'static str> {
    match platform {
        ComputePlatform::Lambda => ALLOW_TRAFFIC.to_vec(),
        ComputePlatform::Ecs => ECS.to_vec(),
        _ => {
            let traffic_control = *style_option == DeploymentOption::WithTrafficControl;
            match (creator, style_type, role) {
                (DeploymentCreator::AutoscalingTermination, ..) => {
                    BLOCK_TRAFFIC.iter().copied().chain(["ApplicationStop"]).collect()
                }
                // A blue/green rollback sends traffic back: Blue allows it again, Green blocks it.
                (DeploymentCreator::CodeDeployRollback, DeploymentType::BlueGreen, ServerTargetRole::Original) => {
                    ALLOW_TRAFFIC.to_vec()
                }
                (DeploymentCreator::CodeDeployRollback, DeploymentType::BlueGreen, ServerTargetRole::Install) => {
                    BLOCK_TRAFFIC.to_vec()
                }
                (_, DeploymentType::BlueGreen, ServerTargetRole::Original) => BLOCK_TRAFFIC.to_vec(),
                (_, DeploymentType::BlueGreen, ServerTargetRole::Install) => {
                    INSTALL.iter().chain(&ALLOW_TRAFFIC).copied().collect()
                }
                (DeploymentCreator::Autoscaling, ..) if traffic_control => {
                    INSTALL.iter().chain(&ALLOW_TRAFFIC).copied().collect()
                }
                _ if traffic_control => BLOCK_TRAFFIC.iter().chain(&INSTALL).chain(&ALLOW_TRAFFIC).copied().collect(),
                _ => INSTALL.to_vec(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(
        kind: DeploymentType,
        option: DeploymentOption,
        creator: DeploymentCreator,
        role: ServerTargetRole,
    ) -> Vec<&'static str> {
        lifecycle_events(&ComputePlatform::Server, &kind, &option, &creator, role)
    }

    #[test]
    fn in_place_without_traffic_control() {
        let events = server(
            DeploymentType::InPlace,
            DeploymentOption::WithoutTrafficControl,
            DeploymentCreator::User,
            ServerTargetRole::Install,
        );
        assert_eq!(events, INSTALL);
    }

    #[test]
    fn in_place_with_traffic_control_blocks_then_allows() {
        let events = server(
            DeploymentType::InPlace,
            DeploymentOption::WithTrafficControl,
            DeploymentCreator::User,
            ServerTargetRole::Install,
        );
        assert_eq!(events.len(), 13);
        assert_eq!(events[0], "BeforeBlockTraffic");
        assert_eq!(events[3], "ApplicationStop");
        assert_eq!(events[12], "AfterAllowTraffic");
    }

    #[test]
    fn autoscaling_launch_and_termination() {
        let launch = server(
            DeploymentType::InPlace,
            DeploymentOption::WithTrafficControl,
            DeploymentCreator::Autoscaling,
            ServerTargetRole::Install,
        );
        assert_eq!(launch.first(), Some(&"ApplicationStop"));
        assert_eq!(launch.last(), Some(&"AfterAllowTraffic"));
        let termination = server(
            DeploymentType::InPlace,
            DeploymentOption::WithTrafficControl,
            DeploymentCreator::AutoscalingTermination,
            ServerTargetRole::Install,
        );
        assert_eq!(termination, ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop"]);
    }

    #[test]
    fn blue_green_roles() {
        let green = server(
            DeploymentType::BlueGreen,
            DeploymentOption::WithTrafficControl,
            DeploymentCreator::User,
            ServerTargetRole::Install,
        );
        assert_eq!(green.len(), 10);
        let blue = server(
            DeploymentType::BlueGreen,
            DeploymentOption::WithTrafficControl,
            DeploymentCreator::User,
            ServerTargetRole::Original,
        );
        assert_eq!(blue, BLOCK_TRAFFIC);
        let rollback = |role| {
            server(
                DeploymentType::BlueGreen,
                DeploymentOption::WithTrafficControl,
                DeploymentCreator::CodeDeployRollback,
                role,
            )
        };
        assert_eq!(rollback(ServerTargetRole::Original), ALLOW_TRAFFIC);
        assert_eq!(rollback(ServerTargetRole::Install), BLOCK_TRAFFIC);
    }

    #[test]
    fn lambda_and_ecs() {
        let any = (&DeploymentType::BlueGreen, &DeploymentOption::WithTrafficControl, &DeploymentCreator::User);
        assert_eq!(
            lifecycle_events(&ComputePlatform::Lambda, any.0, any.1, any.2, ServerTargetRole::Install),
            ALLOW_TRAFFIC
        );
        assert_eq!(lifecycle_events(&ComputePlatform::Ecs, any.0, any.1, any.2, ServerTargetRole::Install).len(), 8);
    }
}
