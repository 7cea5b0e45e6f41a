//! `landfall local`: a bundle's lifecycle run on this host without a server, as the official
//! agent's `codedeploy-local` runs it, so that a bundle's author or a CI job checks a bundle
//! before deploying it. The same executor as a real deployment (the same AppSpec rules, files,
//! hook environment, timeouts, scripts.log and deployments log), with a local revision
//! ("Local File" or "Local Directory") and a deployment id `d-XXXXXXXXX-local`; each event's
//! output is printed as it comes.

use std::path::PathBuf;
use std::time::Instant;

use landfall_commands::spec::{AgentActionOverrides, AgentOverrides, DeploymentSpec, LocalRevision, SpecRevision};
use tokio::sync::watch;

use crate::config::LocalSettings;
use crate::hooks::HookSettings;
use crate::layout::{DeploymentDirs, Layout, is_safe_component};
use crate::lifecycle::{Executor, LifecycleCommand};
use crate::logs::{self, DeploymentsLog, EventLog};
use crate::{CommandFailure, Stop, StopLevel};

/// Every event a local run goes through by default, in CodeDeploy's order; those without
/// scripts in the AppSpec are skipped.
pub const DEFAULT_EVENTS: [&str; 11] = [
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// The deployment group directory local runs use unless told otherwise (as `codedeploy-local`).
pub const DEFAULT_DEPLOYMENT_GROUP: &str = "default-local-deployment-group";
/// `DEPLOYMENT_GROUP_NAME` in hooks unless told otherwise (as `codedeploy-local`).
pub const DEFAULT_DEPLOYMENT_GROUP_NAME: &str = "LocalFleet";

/// What to deploy and how, as the command line gives it.
#[derive(Debug, Clone)]
pub struct LocalDeployment {
    pub bundle_location: PathBuf,
    /// `directory`, `zip`, `tgz` or `tar`.
    pub bundle_type: String,
    /// `DISALLOW`, `OVERWRITE` or `RETAIN` (default: what the AppSpec says, else DISALLOW).
    pub file_exists_behavior: Option<String>,
    /// The directory under the deployment root (a deployment group id).
    pub deployment_group_id: String,
    pub deployment_group_name: String,
    /// Default: the bundle's file name, dots made dashes (as `codedeploy-local`).
    pub application_name: Option<String>,
    /// The events asked for (empty: [`DEFAULT_EVENTS`]).
    pub events: Vec<String>,
    pub appspec_filename: Option<String>,
}

/// Why a local run did not deploy.
#[derive(Debug)]
pub enum LocalFailure {
    /// The command line or the configuration is wrong: nothing was run.
    Usage(String),
    /// An event failed (its name and why); the events after it did not run.
    Event(String, CommandFailure),
}

/// The events to run: [`DEFAULT_EVENTS`], or the ones named, after DownloadBundle and Install
/// when they are not among them (there is nothing to run hooks from before them).
pub fn events_to_run(named: &[String]) -> Result<Vec<String>, String> {
    if named.is_empty() {
        return Ok(DEFAULT_EVENTS.iter().map(|event| (*event).to_owned()).collect());
    }
    if let Some(unknown) = named.iter().find(|event| !DEFAULT_EVENTS.contains(&event.as_str())) {
        return Err(format!("--events: {unknown} is not a lifecycle event (events: {})", DEFAULT_EVENTS.join(", ")));
    }
    let mut events: Vec<String> = ["DownloadBundle", "Install"]
        .into_iter()
        .filter(|event| !named.iter().any(|named| named == event))
        .map(str::to_owned)
        .collect();
    events.extend(named.iter().cloned());
    Ok(events)
}

impl LocalDeployment {
    /// The specification a server would send for this deployment.
    fn spec(&self, deployment_id: &str) -> Result<DeploymentSpec, String> {
        let location = std::path::absolute(&self.bundle_location)
            .map_err(|error| format!("--bundle-location {}: {error}", self.bundle_location.display()))?;
        let revision_type = match self.bundle_type.as_str() {
            "directory" if location.is_dir() => "Local Directory",
            "directory" => return Err(format!("--bundle-location {} is not a directory", location.display())),
            "zip" | "tgz" | "tar" if location.is_file() => "Local File",
            "zip" | "tgz" | "tar" => return Err(format!("--bundle-location {} is not a file", location.display())),
            other => return Err(format!("--type {other}: the bundle types are directory, zip, tgz and tar")),
        };
        if !is_safe_component(&self.deployment_group_id) {
            return Err(format!("--deployment-group {} cannot name a directory", self.deployment_group_id));
        }
        let file_exists_behavior = match self.file_exists_behavior.as_deref() {
            None => None,
            Some(behavior @ ("DISALLOW" | "OVERWRITE" | "RETAIN")) => Some(behavior.to_owned()),
            Some(other) => {
                return Err(format!("--file-exists-behavior {other}: it is DISALLOW, OVERWRITE or RETAIN"));
            }
        };
        let application_name = self.application_name.clone().unwrap_or_else(|| {
            location.file_name().map_or("local".into(), |name| name.to_string_lossy().replace('.', "-"))
        });
        Ok(DeploymentSpec {
            deployment_id: deployment_id.to_owned(),
            deployment_group_id: self.deployment_group_id.clone(),
            deployment_group_name: self.deployment_group_name.clone(),
            application_name,
            deployment_creator: None,
            deployment_type: None,
            app_spec_filename: self.appspec_filename.clone(),
            revision: SpecRevision {
                revision_type: revision_type.to_owned(),
                local_revision: Some(LocalRevision {
                    location: location.to_string_lossy().into_owned(),
                    bundle_type: self.bundle_type.clone(),
                }),
                ..Default::default()
            },
            agent_action_overrides: file_exists_behavior.map(|behavior| AgentActionOverrides {
                agent_overrides: Some(AgentOverrides { file_exists_behavior: Some(behavior) }),
            }),
            github_access_token: None,
        })
    }
}

/// A deployment id no server would hand out: `d-` and nine letters or digits, then `-local`.
fn local_deployment_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    let mut bits = hasher.finish();
    let id: String = (0..9)
        .map(|_| {
            let letter = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            letter
        })
        .collect();
    format!("d-{id}-local")
}

/// Runs the deployment's events in order, printing each one's output as it comes (`print` gets
/// whole lines). Stops at the first failed event. `stop`: a first signal ends the running
/// event's scripts and fails it.
pub async fn deploy(
    settings: &LocalSettings,
    deployment: &LocalDeployment,
    stop: Stop,
    print: &mut (dyn FnMut(&str) + Send),
) -> Result<(), LocalFailure> {
    let events = events_to_run(&deployment.events).map_err(LocalFailure::Usage)?;
    let deployment_id = local_deployment_id();
    let spec = deployment.spec(&deployment_id).map_err(LocalFailure::Usage)?;
    std::fs::create_dir_all(&settings.root_dir).map_err(|error| {
        LocalFailure::Usage(format!(
            "cannot create the deployment root {}: {error} (name another with :root_dir: in --agent-configuration-file)",
            settings.root_dir.display()
        ))
    })?;
    let layout = Layout::new(&settings.root_dir);
    let executor = Executor {
        layout: layout.clone(),
        max_revisions: settings.max_revisions,
        hooks: HookSettings::default(),
        secrets: Vec::new(),
        fetcher: None,
        max_bundle_size: settings.max_bundle_size,
    };
    let directory = layout.deployment_dir(&spec.deployment_group_id, &deployment_id);
    print(&format!("Starting to execute deployment from within folder {}", directory.display()));
    for event in &events {
        let command = LifecycleCommand::from_name(event);
        if executor.is_noop(&command, &spec) {
            print(&format!("{event}: skipped (no scripts)"));
            continue;
        }
        print(&format!("{event}: running"));
        let started = Instant::now();
        let result = run_event(&executor, &command, &spec, settings, &layout, stop.clone(), print).await;
        match result {
            Ok(()) => print(&format!("{event}: succeeded in {:.2} s", started.elapsed().as_secs_f64())),
            Err(failure) => {
                let scripts_log = DeploymentDirs::new(directory).scripts_log();
                if scripts_log.is_file() {
                    print(&format!("{event}: failed; the deployment's output is in {}", scripts_log.display()));
                }
                return Err(LocalFailure::Event(event.clone(), failure));
            }
        }
    }
    Ok(())
}

/// One event, its output printed while it runs.
async fn run_event(
    executor: &Executor,
    command: &LifecycleCommand,
    spec: &DeploymentSpec,
    settings: &LocalSettings,
    layout: &Layout,
    mut stop: Stop,
    print: &mut (dyn FnMut(&str) + Send),
) -> Result<(), CommandFailure> {
    let (abandon_sender, mut abandon) = watch::channel(false);
    let (lines, streamed) = logs::stream();
    let deployments_log = settings.enable_deployments_log.then(|| DeploymentsLog::new(layout.deployments_log()));
    let execution = async move {
        let mut log = EventLog::new(spec.deployment_id(), deployments_log, Some(lines));
        executor.execute(command, spec, &mut log, &mut abandon).await
    };
    let printing = async {
        while let Some(text) = streamed.next_text().await {
            text.lines().for_each(&mut *print);
        }
    };
    let abandoning = async {
        stop.reached(StopLevel::Finish).await;
        let _ = abandon_sender.send(true);
        std::future::pending::<()>().await;
    };
    tokio::select! {
        (result, ()) = async { tokio::join!(execution, printing) } => result,
        () = abandoning => unreachable!("abandoning never ends"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_default_to_codedeploys_order_and_named_ones_follow_the_download_and_install() {
        assert_eq!(events_to_run(&[]).unwrap(), DEFAULT_EVENTS);
        let named = |events: &[&str]| events_to_run(&events.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            named(&["ApplicationStart", "ValidateService"]).unwrap(),
            ["DownloadBundle", "Install", "ApplicationStart", "ValidateService"]
        );
        assert_eq!(
            named(&["ApplicationStop", "DownloadBundle", "Install", "AfterInstall"]).unwrap(),
            ["ApplicationStop", "DownloadBundle", "Install", "AfterInstall"]
        );
        assert!(named(&["Install", "Deploy"]).unwrap_err().contains("Deploy is not a lifecycle event"));
    }

    #[test]
    fn local_deployment_ids_look_like_codedeploy_locals() {
        let id = local_deployment_id();
        assert!(id.starts_with("d-") && id.ends_with("-local") && id.len() == 17, "{id}");
        assert_ne!(id, local_deployment_id());
    }
}
