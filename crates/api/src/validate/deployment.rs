//! CreateDeployment and the deployment read calls.

use crate::error::{ApiResult, Exception, err};
use crate::shapes::{ComputePlatform, CreateDeploymentInput, DeploymentType};

use super::{alarms, auto_rollback, description, ec2_tags, known};

/// Deployment ids: `d-` and nine upper-case letters or digits.
pub fn deployment_id(value: &Option<String>) -> ApiResult<&str> {
    let Some(id) = value.as_deref().filter(|id| !id.is_empty()) else {
        return err(Exception::DeploymentIdRequired, "deploymentId is required.");
    };
    let well_formed =
        id.len() == 11 && id.starts_with("d-") && id[2..].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return err(
            Exception::InvalidDeploymentId,
            format!("deploymentId '{id}' is not a valid deployment id (d-XXXXXXXXX)."),
        );
    }
    Ok(id)
}

/// The stateless checks of CreateDeployment, once the application's platform and the group's
/// deployment type are known.
pub fn create_deployment(
    input: &CreateDeploymentInput,
    platform: &ComputePlatform,
    group_type: &DeploymentType,
) -> ApiResult<()> {
    description(&input.description)?;
    if let Some(behavior) = &input.file_exists_behavior {
        known(behavior, Exception::InvalidFileExistsBehavior, "fileExistsBehavior")?;
    }
    if *platform != ComputePlatform::Server {
        if input.ignore_application_stop_failures == Some(true) {
            return err(
                Exception::InvalidIgnoreApplicationStopFailuresValue,
                format!("ignoreApplicationStopFailures must be false for {platform} deployments."),
            );
        }
        if input.update_outdated_instances_only == Some(true) {
            return err(
                Exception::InvalidUpdateOutdatedInstancesOnlyValue,
                format!("updateOutdatedInstancesOnly must be false for {platform} deployments."),
            );
        }
    }
    if let Some(targets) = &input.target_instances {
        if *platform != ComputePlatform::Server || *group_type != DeploymentType::BlueGreen {
            return err(
                Exception::InvalidTargetInstances,
                "targetInstances applies to blue/green Server deployments only.",
            );
        }
        ec2_tags(targets.tag_filters.as_deref().unwrap_or_default(), targets.ec2_tag_set.as_ref(), "targetInstances.")
            .map_err(|e| crate::error::ApiError::new(Exception::InvalidTargetInstances, e.message))?;
    }
    if let Some(config) = &input.auto_rollback_configuration {
        auto_rollback(config)?;
    }
    if let Some(config) = &input.override_alarm_configuration {
        alarms(config, "overrideAlarmConfiguration")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{EC2TagFilter, TargetInstances};

    #[test]
    fn deployment_ids() {
        assert_eq!(deployment_id(&Some("d-ABCDEF123".into())).unwrap(), "d-ABCDEF123");
        assert_eq!(deployment_id(&None).unwrap_err().exception, Exception::DeploymentIdRequired);
        for bad in ["d-abc", "x-ABCDEF123", "d-ABCDEF12a", "d-ABCDEF1234"] {
            assert_eq!(
                deployment_id(&Some(bad.into())).unwrap_err().exception,
                Exception::InvalidDeploymentId,
                "{bad}"
            );
        }
    }

    #[test]
    fn lambda_refuses_server_only_flags() {
        let input = CreateDeploymentInput { ignore_application_stop_failures: Some(true), ..Default::default() };
        let error = create_deployment(&input, &ComputePlatform::Lambda, &DeploymentType::BlueGreen).unwrap_err();
        assert_eq!(error.exception, Exception::InvalidIgnoreApplicationStopFailuresValue);
        let input = CreateDeploymentInput { update_outdated_instances_only: Some(true), ..Default::default() };
        let error = create_deployment(&input, &ComputePlatform::Ecs, &DeploymentType::BlueGreen).unwrap_err();
        assert_eq!(error.exception, Exception::InvalidUpdateOutdatedInstancesOnlyValue);
        assert!(create_deployment(&input, &ComputePlatform::Server, &DeploymentType::InPlace).is_ok());
    }

    #[test]
    fn target_instances_are_for_blue_green_only() {
        let input = CreateDeploymentInput {
            target_instances: Some(TargetInstances {
                tag_filters: Some(vec![EC2TagFilter {
                    key: Some("Env".into()),
                    value: None,
                    r#type: Some("KEY_ONLY".into()),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = create_deployment(&input, &ComputePlatform::Server, &DeploymentType::InPlace).unwrap_err();
        assert_eq!(error.exception, Exception::InvalidTargetInstances);
        assert!(create_deployment(&input, &ComputePlatform::Server, &DeploymentType::BlueGreen).is_ok());
    }

    #[test]
    fn unknown_file_exists_behavior() {
        let input = CreateDeploymentInput { file_exists_behavior: Some("CLOBBER".into()), ..Default::default() };
        let error = create_deployment(&input, &ComputePlatform::Server, &DeploymentType::InPlace).unwrap_err();
        assert_eq!(error.exception, Exception::InvalidFileExistsBehavior);
        assert!(error.message.contains("CLOBBER"));
    }
}
