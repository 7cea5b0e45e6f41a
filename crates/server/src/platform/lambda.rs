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
//! instance target); a Lambda target is shown to API callers as `lambdaTarget` ([`super::present`]).

use async_trait::async_trait;
use hyper::Method;
use landfall_api::Timestamp;
use landfall_api::shapes::{
    AppSpecContent, DeploymentInfo, DeploymentStatus, DeploymentTarget, DeploymentTargetType, ErrorCode,
    LambdaFunctionInfo, LambdaTarget, RevisionLocation, RevisionLocationType,
};
use landfall_appspec::{LambdaAppSpec, parse_lambda};
use landfall_engine::blue_green::Shift;
use landfall_store::{CommandState, HostCommandRecord, TargetRecord};
use serde_json::json;

use super::{Advanced, Cx, PlatformRules, PlatformRun, RollbackPlan, Run};
use crate::aws::AwsError;

/// A Lambda deployment's events, in order.
pub const EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

/// A Lambda AppSpec's model, or what is wrong with it.
pub fn parse(text: &str) -> Result<LambdaAppSpec, String> {
    parse_lambda(text)
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
    let function = &spec.function;
    let mut record = super::new_target(deployment_id, &id, DeploymentTargetType::LambdaTarget, &EVENTS, now);
    record.target.lambda_target = Some(LambdaTarget {
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
    });
    record
}

/// Carries out the deployment's events in flight: invokes hooks not invoked yet, moves traffic,
/// completes what is done. A deployment being stopped ends its events in flight at once (a
/// traffic shift or a hook's wait can last long); what traffic moved is put back by its
/// rollback or by [`restore`].
async fn advance(cx: &Cx<'_>, spec: &LambdaAppSpec, run: &Run<'_>) -> Advanced {
    let mut advanced = Advanced::default();
    let mut target = run.target.clone();
    if target.target.lambda_target.as_ref().is_some_and(|t| t.target_arn.is_none()) {
        // The alias's ARN (and, for an AppSpec without CurrentVersion, its version) once.
        match cx.aws.lambda(Method::GET, &alias_path(spec), None).await {
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
    for command in run.commands.iter().filter(|c| c.state == CommandState::Dispatched) {
        let outcome = if run.stopping {
            Err(format!("The deployment was stopped during {}.", command.lifecycle_event))
        } else if command.lifecycle_event == "AllowTraffic" {
            allow_traffic(cx, spec, run.shift, target, command, &mut advanced).await
        } else {
            super::run_hook(cx, &spec.hooks, command).await
        };
        advanced.completed |= super::settle(cx.state, command, outcome).await;
    }
    advanced
}

/// Moves the alias's traffic as far as the configuration says by now; `Ok(Some)` once all of
/// it is on the target version.
async fn allow_traffic(
    cx: &Cx<'_>,
    spec: &LambdaAppSpec,
    shift: Shift,
    target: &TargetRecord,
    command: &HostCommandRecord,
    advanced: &mut Advanced,
) -> Result<Option<String>, String> {
    let started = command.dispatched_at.unwrap_or(command.created_at);
    let share = shift.share_after(cx.state.clock.now().millis() - started.millis());
    let info = target.target.lambda_target.as_ref().and_then(|t| t.lambda_function_info.clone()).unwrap_or_default();
    let current = match info.current_version.clone() {
        Some(version) => version,
        None => alias_version(cx, spec).await.map_err(|e| e.to_string())?,
    };
    let weight = f64::from(share) / 100.0;
    let shown = info.target_version_weight.unwrap_or(0.0);
    if share < 100 {
        if (shown - weight).abs() > f64::EPSILON || info.current_version.is_none() {
            set_alias(cx, spec, &current, Some(weight))
                .await
                .map_err(|e| format!("The alias could not be updated: {e}"))?;
            advanced.target = Some(with_weight(target, &current, weight));
        }
        return Ok(None);
    }
    let target_version = spec.function.target_version.to_string();
    set_alias(cx, spec, &target_version, None).await.map_err(|e| format!("The alias could not be updated: {e}"))?;
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
async fn alias_version(cx: &Cx<'_>, spec: &LambdaAppSpec) -> Result<String, AwsError> {
    let alias = cx.aws.lambda(Method::GET, &alias_path(spec), None).await?;
    Ok(alias.get("FunctionVersion").and_then(|v| v.as_str()).unwrap_or("$LATEST").to_owned())
}

/// Points the alias at `version`, with `weight` of the traffic on the target version if given.
async fn set_alias(cx: &Cx<'_>, spec: &LambdaAppSpec, version: &str, weight: Option<f64>) -> Result<(), AwsError> {
    let weights = match weight {
        Some(weight) => json!({spec.function.target_version.to_string(): weight}),
        None => json!({}),
    };
    let body = json!({"FunctionVersion": version, "RoutingConfig": {"AdditionalVersionWeights": weights}});
    cx.aws.lambda(Method::PUT, &alias_path(spec), Some(&body)).await.map(|_| ())
}

fn alias_path(spec: &LambdaAppSpec) -> String {
    format!(
        "/2015-03-31/functions/{}/aliases/{}",
        landfall_sigv4::uri_encode(&spec.function.name, false),
        landfall_sigv4::uri_encode(&spec.function.alias, false)
    )
}

/// After a failed or stopped deployment: all traffic back on the version the alias had.
async fn restore(cx: &Cx<'_>, spec: &LambdaAppSpec, target: &TargetRecord) {
    let info = target.target.lambda_target.as_ref().and_then(|t| t.lambda_function_info.clone()).unwrap_or_default();
    let Some(current) = info.current_version.or_else(|| spec.function.current_version.map(|v| v.to_string())) else {
        return; // traffic never moved
    };
    if let Err(error) = set_alias(cx, spec, &current, None).await {
        tracing::warn!(%error, function = %spec.function.name, "cannot put the alias back on its version");
    }
}

/// What the rollback of a Lambda deployment deploys: the alias back from the failed deployment's
/// target version to the version it had, at once and without hooks (an AppSpec of its own, with
/// its configuration). Err when that version is not known (traffic never moved and the AppSpec
/// did not name it).
fn rollback_plan(
    id: &str,
    failed: &LambdaAppSpec,
    target: Option<&DeploymentTarget>,
    now: Timestamp,
) -> Result<RollbackPlan, String> {
    let info = target.and_then(|t| t.lambda_target.as_ref()).and_then(|t| t.lambda_function_info.clone());
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
    let spec = parse(&content).map_err(|e| format!("the rollback's {e}"))?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
    let location = RevisionLocation {
        revision_type: Some(RevisionLocationType::AppSpecContent),
        app_spec_content: Some(AppSpecContent { content: Some(content.clone()), sha256: Some(sha256) }),
        ..Default::default()
    };
    Ok(RollbackPlan {
        revision: location,
        targets: vec![initial_target(id, &spec, now).target],
        config_name: Some(ALL_AT_ONCE.to_owned()),
        appspec: Some(content),
    })
}

/// The configuration a Lambda rollback moves traffic with.
const ALL_AT_ONCE: &str = "CodeDeployDefault.LambdaAllAtOnce";

/// A Lambda deployment's platform side.
pub struct LambdaRun {
    pub spec: LambdaAppSpec,
}

impl PlatformRules for LambdaRun {
    fn blue_green(&self) -> bool {
        false // the alias's traffic moves within AllowTraffic; there are no waits
    }

    fn failure_code(&self, event: &str) -> ErrorCode {
        match event {
            "AllowTraffic" => ErrorCode::InvalidLambdaConfiguration,
            _ => ErrorCode::HookExecutionFailure,
        }
    }

    fn rollback(
        &self,
        id: &str,
        _failed: &DeploymentInfo,
        target: Option<&DeploymentTarget>,
        now: Timestamp,
    ) -> Result<RollbackPlan, String> {
        rollback_plan(id, &self.spec, target, now)
    }
}

#[async_trait]
impl PlatformRun for LambdaRun {
    async fn advance(&self, cx: &Cx<'_>, run: &Run<'_>) -> Advanced {
        advance(cx, &self.spec, run).await
    }

    async fn finished(
        &self,
        cx: &Cx<'_>,
        _deployment: &DeploymentInfo,
        status: &DeploymentStatus,
        target: &TargetRecord,
        rolled_back: bool,
    ) {
        // A failed deployment with no rollback to undo it puts the alias back itself.
        if *status != DeploymentStatus::Succeeded && !rolled_back {
            restore(cx, &self.spec, target).await;
        }
    }
}
