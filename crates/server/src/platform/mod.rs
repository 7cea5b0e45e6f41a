//! The compute platforms the server drives through their own APIs (AWS Lambda, Amazon ECS).
//!
//! The engine schedules a platform deployment's one target through its lifecycle events like any
//! target (its events are created already taken, as a Server deployment's traffic events are);
//! what an event does is the platform's. Every platform answers the same questions through
//! [`PlatformRun`], so the driver (and the engine behind it) knows nothing of any one of them:
//! a new platform is a module here and a line in [`open`] and [`prepare`].

use async_trait::async_trait;
use landfall_api::Timestamp;
use landfall_api::shapes::{
    ComputePlatform, DeploymentCreator, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus, DeploymentTarget,
    DeploymentTargetType, InstanceTarget, RevisionLocation, TargetStatus,
};
use landfall_appspec::LifecycleHook;
use landfall_engine::blue_green::Shift;
pub use landfall_engine::plan::{PlatformRules, RollbackPlan};
use landfall_store::{HostCommandRecord, TargetRecord};
use serde_json::json;

use crate::aws::AwsSession;
use crate::state::AppState;

mod appspec_source;
pub mod ecs;
pub mod lambda;

/// One deployment's work on its platform: the I/O beside the platform's rules, which the
/// planner asks.
#[async_trait]
pub trait PlatformRun: PlatformRules + Send {
    /// Carries out the events in flight: starts what is not started, completes what is done.
    async fn advance(&self, cx: &Cx<'_>, run: &Run<'_>) -> Advanced;

    /// The deployment finished: clean up after a success, or (a failure or stop that no
    /// rollback undoes: `rolled_back` false) put back what it changed.
    async fn finished(
        &self,
        cx: &Cx<'_>,
        deployment: &DeploymentInfo,
        status: &DeploymentStatus,
        target: &TargetRecord,
        rolled_back: bool,
    );
}

/// What platform work runs with: the server, and the AWS identity the deployment's calls are
/// made as (its group's service role, when the server assumes them).
pub struct Cx<'a> {
    pub state: &'a AppState,
    pub aws: AwsSession<'a>,
}

/// What [`PlatformRun::advance`] looks at.
pub struct Run<'a> {
    pub deployment: &'a DeploymentInfo,
    /// How the configuration moves production traffic.
    pub shift: Shift,
    /// A stop (or failure) is under way: events in flight end now.
    pub stopping: bool,
    pub target: &'a TargetRecord,
    /// Every command of the deployment.
    pub commands: &'a [HostCommandRecord],
}

/// What one pass over the events in flight did.
#[derive(Default)]
pub struct Advanced {
    /// A command completed: the engine has news.
    pub completed: bool,
    /// The target's record changed (ARNs, traffic weights, task sets): to be stored.
    pub target: Option<TargetRecord>,
}

/// A new deployment on a platform: its AppSpec (kept with the deployment, so the platform
/// works from what was read at creation) and its one target.
pub struct Prepared {
    pub appspec: String,
    pub targets: Vec<TargetRecord>,
}

/// Reads and checks a new deployment's AppSpec, and makes its target; Err is what is wrong
/// with the revision (InvalidRevisionException). `None` for Server deployments.
pub async fn prepare(
    state: &AppState,
    platform: &ComputePlatform,
    location: &RevisionLocation,
    group: &DeploymentGroupInfo,
    deployment_id: &str,
    now: Timestamp,
) -> Result<Option<Prepared>, String> {
    if *platform == ComputePlatform::Server {
        return Ok(None);
    }
    let text = appspec_source::read(state, location).await?;
    let targets = match platform {
        ComputePlatform::Lambda => vec![lambda::initial_target(deployment_id, &lambda::parse(&text)?, now)],
        ComputePlatform::Ecs => {
            ecs::parse(&text)?;
            vec![ecs::initial_target(deployment_id, group, now)?]
        }
        _ => return Ok(None),
    };
    Ok(Some(Prepared { appspec: text, targets }))
}

/// The platform side of a deployment, from the AppSpec it keeps; `None` for Server deployments.
pub fn open(
    platform: &ComputePlatform,
    creator: Option<&DeploymentCreator>,
    appspec: &str,
) -> Result<Option<Box<dyn PlatformRun>>, String> {
    let rollback = creator == Some(&DeploymentCreator::CodeDeployRollback);
    Ok(match platform {
        ComputePlatform::Lambda => Some(Box::new(lambda::LambdaRun { spec: lambda::parse(appspec)? })),
        ComputePlatform::Ecs => {
            Some(Box::new(ecs::EcsRun { spec: ecs::parse(appspec)?, text: appspec.to_owned(), rollback }))
        }
        _ => None,
    })
}

/// The AppSpec a deployment made before AppSpecs were kept with it: its registered revision's.
pub async fn registered_appspec(state: &AppState, application_id: &str, location: &RevisionLocation) -> Option<String> {
    let key = landfall_api::validate::revision_key(location);
    let revision = state.store.revision(application_id, &key).await.ok()??;
    appspec_source::inline(&revision.location)
}

/// A new platform target with its events Pending. The engine works on every target through
/// one shape, an instance target's lifecycle fields; the platform's own field (`lambdaTarget`,
/// `ecsTarget`) carries the rest, and is what API callers see ([`present`]).
fn new_target(
    deployment_id: &str,
    id: &str,
    kind: DeploymentTargetType,
    events: &[&str],
    now: Timestamp,
) -> TargetRecord {
    TargetRecord {
        deployment_id: deployment_id.to_owned(),
        target_id: id.to_owned(),
        position: 0,
        target: DeploymentTarget {
            deployment_target_type: Some(kind),
            instance_target: Some(InstanceTarget {
                deployment_id: Some(deployment_id.to_owned()),
                target_id: Some(id.to_owned()),
                status: Some(TargetStatus::Pending),
                last_updated_at: Some(now),
                lifecycle_events: Some(landfall_engine::run::pending_events(events)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// A target as API callers see it: a platform target's lifecycle in its own field rather than
/// in the working `instanceTarget`.
pub fn present(mut target: DeploymentTarget) -> DeploymentTarget {
    let Some(working) = target.instance_target.take() else { return target };
    match target.deployment_target_type {
        Some(DeploymentTargetType::LambdaTarget) => {
            let shown = target.lambda_target.get_or_insert_with(Default::default);
            (shown.status, shown.last_updated_at, shown.lifecycle_events) =
                (working.status, working.last_updated_at, working.lifecycle_events);
        }
        Some(DeploymentTargetType::ECSTarget) => {
            let shown = target.ecs_target.get_or_insert_with(Default::default);
            (shown.status, shown.last_updated_at, shown.lifecycle_events) =
                (working.status, working.last_updated_at, working.lifecycle_events);
        }
        _ => target.instance_target = Some(working),
    }
    target
}

/// Carries out a hook event: invokes the hook function (asynchronously, as CodeDeploy does)
/// with the ids it reports back with, marking the command acknowledged (invoked), then waits for
/// its report, for as long as a lifecycle event may run (`--event-timeout`). An event the
/// AppSpec has no hook for ends at once. `Ok(None)`: waiting for the report.
pub async fn run_hook(
    cx: &Cx<'_>,
    hooks: &[LifecycleHook],
    command: &HostCommandRecord,
) -> Result<Option<String>, String> {
    if command.acknowledged_at.is_some() {
        let limit = cx.state.driver.timeouts.event_ms;
        let started = command.dispatched_at.unwrap_or(command.created_at);
        if cx.state.clock.now().millis() - started.millis() > limit {
            return Err(format!("The hook did not report its status within {} seconds.", limit / 1000));
        }
        return Ok(None);
    }
    let Some(hook) = hooks.iter().find(|hook| hook.event == command.lifecycle_event) else {
        return Ok(Some(format!("No {} hook in the AppSpec.", command.lifecycle_event)));
    };
    let payload = json!({"DeploymentId": command.deployment_id, "LifecycleEventHookExecutionId": command.id});
    let path = format!("/2015-03-31/functions/{}/invocations", landfall_sigv4::uri_encode(&hook.function, false));
    cx.aws
        .lambda_invoke_event(&path, &payload)
        .await
        .map_err(|e| format!("The hook function {} could not be invoked: {e}", hook.function))?;
    tracing::info!(deployment = %command.deployment_id, event = %command.lifecycle_event, function = %hook.function, "hook invoked");
    cx.state
        .store
        .acknowledge_command(&command.id, &command.target_id, cx.state.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    Ok(None)
}

/// Ends the event `command` stands for with `outcome` (`Ok(None)`: not over yet); whether it
/// was recorded.
pub async fn settle(state: &AppState, command: &HostCommandRecord, outcome: Result<Option<String>, String>) -> bool {
    let (succeeded, message) = match outcome {
        Ok(None) => return false,
        Ok(Some(message)) => (true, message),
        Err(message) => (false, message),
    };
    crate::server_events::complete_on_server(state, command, succeeded, message).await
}
