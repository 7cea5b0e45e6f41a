//! Lambda deployments (semantics reference §5.6, §6.2-6.4): one target, the function's alias,
//! whose lifecycle events the engine schedules like any target's. What the events do is done
//! here, through the Lambda API:
//!
//! - BeforeAllowTraffic and AfterAllowTraffic invoke the AppSpec's hook function (asynchronously)
//!   with `{"DeploymentId", "LifecycleEventHookExecutionId"}`; the event ends when the hook
//!   reports through PutLifecycleEventHookExecutionStatus (or times out). An event without a hook
//!   succeeds at once.
//! - AllowTraffic moves the alias's traffic from CurrentVersion to TargetVersion as the
//!   deployment configuration says (an additional version weight while shifting, then the alias
//!   itself), and ends when all of it is on TargetVersion.
//!
//! The engine works on every platform's target through one shape (the lifecycle fields of an
//! instance target); a Lambda target is shown to API callers as `lambdaTarget` ([`present`]).

use hyper::Method;
use landfall_api::Timestamp;
use landfall_api::shapes::{
    AppSpecContent, DeploymentTarget, DeploymentTargetType, InstanceTarget, LambdaFunctionInfo, LambdaTarget,
    LifecycleEvent, LifecycleEventStatus, RevisionLocation, RevisionLocationType, TargetStatus,
};
use landfall_appspec::{LambdaAppSpec, parse_lambda};
use landfall_engine::blue_green::Shift;
use landfall_store::{HostCommandRecord, TargetRecord};
use serde_json::json;

use crate::aws::AwsError;
use crate::state::AppState;

/// A Lambda deployment's events, in order.
pub const EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

/// The AppSpec of a Lambda revision given inline (String or AppSpecContent).
pub fn appspec(location: &RevisionLocation) -> Result<LambdaAppSpec, String> {
    let text = location
        .app_spec_content
        .as_ref()
        .and_then(|c| c.content.clone())
        .or_else(|| location.string.as_ref().and_then(|s| s.content.clone()))
        .ok_or_else(|| {
            "Lambda AppSpecs are read from String or AppSpecContent revisions (not yet from S3).".to_owned()
        })?;
    parse_lambda(&text)
        .map(|parsed| parsed.appspec)
        .map_err(|diagnostics| format!("The AppSpec is not valid: {diagnostics}"))
}

/// The target id CodeDeploy gives a Lambda target: the function and its alias.
pub fn target_id(spec: &LambdaAppSpec) -> String {
    format!("{}:{}", spec.function.name, spec.function.alias)
}

/// A new deployment's one target.
pub fn initial_target(deployment_id: &str, spec: &LambdaAppSpec, now: Timestamp) -> TargetRecord {
    let id = target_id(spec);
    let events = EVENTS
        .iter()
        .map(|event| LifecycleEvent {
            lifecycle_event_name: Some((*event).into()),
            status: Some(LifecycleEventStatus::Pending),
            ..Default::default()
        })
        .collect();
    let function = &spec.function;
    TargetRecord {
        deployment_id: deployment_id.to_owned(),
        target_id: id.clone(),
        position: 0,
        target: DeploymentTarget {
            deployment_target_type: Some(DeploymentTargetType::LambdaTarget),
            instance_target: Some(InstanceTarget {
                deployment_id: Some(deployment_id.to_owned()),
                target_id: Some(id.clone()),
                status: Some(TargetStatus::Pending),
                last_updated_at: Some(now),
                lifecycle_events: Some(events),
                ..Default::default()
            }),
            lambda_target: Some(LambdaTarget {
                deployment_id: Some(deployment_id.to_owned()),
                target_id: Some(id),
                lambda_function_info: Some(LambdaFunctionInfo {
                    function_name: Some(function.name.clone()),
                    function_alias: Some(function.alias.clone()),
                    current_version: function.current_version.map(|v| v.to_string()),
                    target_version: Some(function.target_version.to_string()),
                    target_version_weight: Some(0.0),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// A target as API callers see it: a Lambda target's lifecycle in `lambdaTarget`.
pub fn present(mut target: DeploymentTarget) -> DeploymentTarget {
    if target.deployment_target_type == Some(DeploymentTargetType::LambdaTarget)
        && let Some(working) = target.instance_target.take()
    {
        let shown = target.lambda_target.get_or_insert_with(Default::default);
        shown.status = working.status;
        shown.last_updated_at = working.last_updated_at;
        shown.lifecycle_events = working.lifecycle_events;
    }
    target
}

/// What one pass over the events in flight did.
#[derive(Default)]
pub struct Advanced {
    /// A command completed: the engine has news.
    pub completed: bool,
    /// The target's record changed (the alias's ARN, the traffic weight): to be stored.
    pub target: Option<TargetRecord>,
}

/// Carries out the deployment's events in flight: invokes hooks not invoked yet, moves traffic,
/// completes what is done. A deployment being stopped ends its events in flight at once (a
/// traffic shift or a hook's wait can last long); what traffic moved is put back by its
/// rollback or by [`restore`].
pub async fn advance(
    state: &AppState,
    spec: &LambdaAppSpec,
    shift: Shift,
    stopping: bool,
    target: &TargetRecord,
    commands: &[HostCommandRecord],
) -> Advanced {
    let mut advanced = Advanced::default();
    let mut target = target.clone();
    if target.target.lambda_target.as_ref().is_some_and(|t| t.target_arn.is_none()) {
        // The alias's ARN (and, for an AppSpec without CurrentVersion, its version) once.
        match state.aws.lambda(Method::GET, &alias_path(spec), None).await {
            Ok(alias) => {
                let arn = alias.get("AliasArn").and_then(|a| a.as_str()).map(str::to_owned);
                let version = alias.get("FunctionVersion").and_then(|v| v.as_str()).map(str::to_owned);
                if let Some(shown) = target.target.lambda_target.as_mut() {
                    shown.target_arn = arn.clone();
                    let info = shown.lambda_function_info.get_or_insert_with(Default::default);
                    if info.current_version.is_none() {
                        info.current_version = version;
                    }
                }
                if let Some(working) = target.target.instance_target.as_mut() {
                    working.target_arn = arn;
                }
                advanced.target = Some(target.clone());
            }
            // AllowTraffic reports what is wrong when it gets there.
            Err(error) => tracing::warn!(%error, function = %spec.function.name, "cannot read the alias"),
        }
    }
    let target = &target;
    for command in commands.iter().filter(|c| c.state == "Dispatched") {
        let outcome = if stopping {
            Err(format!("The deployment was stopped during {}.", command.lifecycle_event))
        } else if command.lifecycle_event == "AllowTraffic" {
            allow_traffic(state, spec, shift, target, command, &mut advanced).await
        } else if command.acknowledged_at.is_none() {
            invoke_hook(state, spec, command).await
        } else {
            continue; // a hook invoked, waiting for its report
        };
        let (succeeded, message) = match outcome {
            Ok(None) => continue,
            Ok(Some(message)) => (true, message),
            Err(message) => (false, message),
        };
        advanced.completed |= crate::driver::complete_on_server(state, &command.id, succeeded, message).await;
    }
    advanced
}

/// Invokes the event's hook (marking the command acknowledged: invoked), or ends the event if
/// the AppSpec has none. `Ok(None)`: waiting for the hook's report.
async fn invoke_hook(
    state: &AppState,
    spec: &LambdaAppSpec,
    command: &HostCommandRecord,
) -> Result<Option<String>, String> {
    let Some(hook) = spec.hooks.iter().find(|hook| hook.event == command.lifecycle_event) else {
        return Ok(Some(format!("No {} hook in the AppSpec.", command.lifecycle_event)));
    };
    let payload = json!({"DeploymentId": command.deployment_id, "LifecycleEventHookExecutionId": command.id});
    let path = format!("/2015-03-31/functions/{}/invocations", landfall_sigv4::uri_encode(&hook.function, false));
    state
        .aws
        .lambda_invoke_event(&path, &payload)
        .await
        .map_err(|e| format!("The hook function {} could not be invoked: {e}", hook.function))?;
    tracing::info!(deployment = %command.deployment_id, event = %command.lifecycle_event, function = %hook.function, "hook invoked");
    state.store.acknowledge_command(&command.id, state.clock.now()).await.map_err(|e| e.to_string())?;
    Ok(None)
}

/// Moves the alias's traffic as far as the configuration says by now; `Ok(Some)` once all of
/// it is on the target version.
async fn allow_traffic(
    state: &AppState,
    spec: &LambdaAppSpec,
    shift: Shift,
    target: &TargetRecord,
    command: &HostCommandRecord,
    advanced: &mut Advanced,
) -> Result<Option<String>, String> {
    let started = command.dispatched_at.unwrap_or(command.created_at);
    let share = shift.share_after(state.clock.now().millis() - started.millis());
    let info = target.target.lambda_target.as_ref().and_then(|t| t.lambda_function_info.clone()).unwrap_or_default();
    let current = match info.current_version.clone() {
        Some(version) => version,
        None => alias_version(state, spec).await.map_err(|e| e.to_string())?,
    };
    let weight = f64::from(share) / 100.0;
    let shown = info.target_version_weight.unwrap_or(0.0);
    if share < 100 {
        if (shown - weight).abs() > f64::EPSILON || info.current_version.is_none() {
            set_alias(state, spec, &current, Some(weight))
                .await
                .map_err(|e| format!("The alias could not be updated: {e}"))?;
            advanced.target = Some(with_weight(target, &current, weight));
        }
        return Ok(None);
    }
    let target_version = spec.function.target_version.to_string();
    set_alias(state, spec, &target_version, None).await.map_err(|e| format!("The alias could not be updated: {e}"))?;
    advanced.target = Some(with_weight(target, &current, 1.0));
    Ok(Some(format!("The alias {} of {} points to version {target_version}.", spec.function.alias, spec.function.name)))
}

fn with_weight(target: &TargetRecord, current: &str, weight: f64) -> TargetRecord {
    let mut changed = target.clone();
    if let Some(info) = changed.target.lambda_target.as_mut().and_then(|t| t.lambda_function_info.as_mut()) {
        info.current_version = Some(current.to_owned());
        info.target_version_weight = Some(weight);
    }
    changed
}

/// The version the alias points to now (an AppSpec without CurrentVersion).
async fn alias_version(state: &AppState, spec: &LambdaAppSpec) -> Result<String, AwsError> {
    let alias = state.aws.lambda(Method::GET, &alias_path(spec), None).await?;
    Ok(alias.get("FunctionVersion").and_then(|v| v.as_str()).unwrap_or("$LATEST").to_owned())
}

/// Points the alias at `version`, with `weight` of the traffic on the target version if given.
async fn set_alias(state: &AppState, spec: &LambdaAppSpec, version: &str, weight: Option<f64>) -> Result<(), AwsError> {
    let weights = match weight {
        Some(weight) => json!({spec.function.target_version.to_string(): weight}),
        None => json!({}),
    };
    let body = json!({"FunctionVersion": version, "RoutingConfig": {"AdditionalVersionWeights": weights}});
    state.aws.lambda(Method::PUT, &alias_path(spec), Some(&body)).await.map(|_| ())
}

fn alias_path(spec: &LambdaAppSpec) -> String {
    format!(
        "/2015-03-31/functions/{}/aliases/{}",
        landfall_sigv4::uri_encode(&spec.function.name, false),
        landfall_sigv4::uri_encode(&spec.function.alias, false)
    )
}

/// After a failed or stopped deployment: all traffic back on the version the alias had.
pub async fn restore(state: &AppState, spec: &LambdaAppSpec, target: &TargetRecord) {
    let info = target.target.lambda_target.as_ref().and_then(|t| t.lambda_function_info.clone()).unwrap_or_default();
    let Some(current) = info.current_version.or_else(|| spec.function.current_version.map(|v| v.to_string())) else {
        return; // traffic never moved
    };
    if let Err(error) = set_alias(state, spec, &current, None).await {
        tracing::warn!(%error, function = %spec.function.name, "cannot put the alias back on its version");
    }
}

/// What the rollback of a Lambda deployment deploys: the alias back from the failed deployment's
/// target version to the version it had, at once and without hooks (an AppSpec of its own, with
/// its configuration). Err when that version is not known (traffic never moved and the AppSpec
/// did not name it).
#[allow(clippy::type_complexity)]
pub fn rollback_plan(
    id: &str,
    failed: &LambdaAppSpec,
    target: Option<&TargetRecord>,
    now: Timestamp,
) -> Result<(RevisionLocation, Vec<TargetRecord>, Option<String>), String> {
    let info = target.and_then(|t| t.target.lambda_target.as_ref()).and_then(|t| t.lambda_function_info.clone());
    let original = info
        .and_then(|info| info.current_version)
        .and_then(|version| version.parse::<u64>().ok())
        .or(failed.function.current_version)
        .ok_or_else(|| "the version the alias had before the deployment is not known.".to_owned())?;
    let function = &failed.function;
    let document = json!({
        "version": 0.0,
        "Resources": [{function.resource.clone(): {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Name": function.name,
                "Alias": function.alias,
                "CurrentVersion": function.target_version.to_string(),
                "TargetVersion": original.to_string(),
            }
        }}]
    });
    let content = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    let spec = parse_lambda(&content).map_err(|e| format!("the rollback's AppSpec is not valid: {e}"))?.appspec;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
    let location = RevisionLocation {
        revision_type: Some(RevisionLocationType::AppSpecContent),
        app_spec_content: Some(AppSpecContent { content: Some(content), sha256: Some(sha256) }),
        ..Default::default()
    };
    Ok((location, vec![initial_target(id, &spec, now)], Some(ALL_AT_ONCE.to_owned())))
}

/// The configuration a Lambda rollback moves traffic with.
const ALL_AT_ONCE: &str = "CodeDeployDefault.LambdaAllAtOnce";
