//! One lifecycle command: what it is, whether it is a no-op (the acknowledgement says so), and
//! carrying it out: DownloadBundle, Install, or a hook event's scripts read from the revision
//! the official agent would read them from.

use std::path::{Path, PathBuf};

use landfall_appspec::{Os, Parsed, SERVER_HOOK_EVENTS, ServerAppSpec};
use landfall_commands::spec::{DeploymentSpec, Secret, SpecRevision};
use tokio::sync::watch;

use crate::CommandFailure;
use crate::archive::{self, BundleFormat};
use crate::disk::DiskBudget;
use crate::download::{self, BundleFetcher};
use crate::hooks::{self, EventRun, HookSettings};
use crate::install::{self, InstallRequest};
use crate::layout::{DeploymentDirs, Layout, is_safe_component};
use crate::logs::EventLog;
use crate::recovery::HookProcesses;

/// The command names the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleCommand {
    DownloadBundle,
    Install,
    /// A hook event, run from the AppSpec's `hooks:`.
    Hook(&'static str),
    /// Any other name: acknowledged as a no-op, then failed.
    Unsupported(String),
}

impl LifecycleCommand {
    pub fn from_name(name: &str) -> LifecycleCommand {
        match name {
            "DownloadBundle" => LifecycleCommand::DownloadBundle,
            "Install" => LifecycleCommand::Install,
            _ => match SERVER_HOOK_EVENTS.iter().find(|event| **event == name) {
                Some(event) => LifecycleCommand::Hook(event),
                None => LifecycleCommand::Unsupported(name.to_owned()),
            },
        }
    }
}

/// The checks the official agent makes on a specification, with its messages.
pub fn validate_spec(spec: &DeploymentSpec) -> Result<(), String> {
    for (value, name) in [
        (spec.deployment_id.as_str(), "DeploymentId"),
        (&spec.deployment_group_id, "DeploymentGroupId"),
        (&spec.deployment_group_name, "DeploymentGroupName"),
        (&spec.application_name, "ApplicationName"),
    ] {
        if value.trim().is_empty() {
            return Err(format!("Deployment Spec has no {name}"));
        }
    }
    for (value, name) in [(spec.deployment_id(), "DeploymentId"), (&spec.deployment_group_id, "DeploymentGroupId")] {
        if !is_safe_component(value) {
            return Err(format!("Deployment Spec has a {name} that cannot name a directory: {value:?}"));
        }
    }
    let revision = &spec.revision;
    let given = [revision.s3_revision.is_some(), revision.github_revision.is_some(), revision.local_revision.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err("Exactly one of S3Revision, GitHubRevision, or LocalRevision must be specified".into());
    }
    match revision.revision_type.as_str() {
        "S3" => {
            let s3 = revision.s3_revision.as_ref().ok_or("Must specify a revison")?;
            if s3.bucket.is_empty() || s3.key.is_empty() || s3.bundle_type.is_empty() {
                return Err("S3Revision in Deployment Spec must specify Bucket, Key and BundleType".into());
            }
            if !matches!(s3.bundle_type.as_str(), "tar" | "tgz" | "zip") {
                return Err("BundleType in S3Revision must be tar, tgz or zip".into());
            }
        }
        "GitHub" => {
            let github = revision.github_revision.as_ref().ok_or("Must specify a revison")?;
            if github.account.is_empty() || github.repository.is_empty() || github.commit_id.is_empty() {
                return Err("GitHubRevision in Deployment Spec must specify Account, Repository and CommitId".into());
            }
        }
        "Local File" | "Local Directory" => {
            let local = revision.local_revision.as_ref().ok_or("Must specify a revison")?;
            if local.location.is_empty() || local.bundle_type.is_empty() {
                return Err("LocalRevision in Deployment Spec must specify Location and BundleType".into());
            }
        }
        _ => return Err("Must specify a revison".into()),
    }
    Ok(())
}

/// The AppSpec file of a revision: the specification's `AppSpecFilename` if it names one, then
/// `appspec.yml`, then `appspec.yaml`. (The official agent falls back only for Install, so its
/// hooks silently do nothing for an `appspec.yaml`; here every command finds the same file.)
pub fn find_appspec(archive: &Path, spec_filename: Option<&str>) -> Option<PathBuf> {
    let named = spec_filename.map(str::trim).filter(|name| {
        !name.is_empty() && !Path::new(name).components().any(|c| matches!(c, std::path::Component::ParentDir))
    });
    named
        .into_iter()
        .chain(["appspec.yml", "appspec.yaml"])
        .map(|name| Path::new(name.trim_start_matches('/')))
        .filter(|name| archive::resolve_inside(archive, name).is_some())
        .map(|name| archive.join(name))
        .find(|path| path.is_file())
}

/// Reads and validates an AppSpec file; the error lists every problem with its line and column.
pub fn read_appspec(path: &Path) -> Result<Parsed<ServerAppSpec>, String> {
    let text = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    landfall_appspec::parse_server(&text)
        .map_err(|problems| problems.errors().map(|d| d.in_file(&name).to_string()).collect::<Vec<_>>().join("\n"))
}

/// Everything commands need besides the specification.
#[derive(Debug, Clone)]
pub struct Executor {
    pub layout: Layout,
    pub max_revisions: usize,
    pub hooks: HookSettings,
    /// Credential values scripts must not see.
    pub secrets: Vec<String>,
    /// S3 and GitHub downloads; without it only host-local revisions can be downloaded.
    pub fetcher: Option<BundleFetcher>,
    /// `:landfall_max_bundle_size:`: the most a bundle, and the revision it unpacks to, may
    /// take on disk (by default what is free, less a reserve).
    pub max_bundle_size: Option<u64>,
}

impl Executor {
    fn current(&self, spec: &DeploymentSpec) -> DeploymentDirs {
        DeploymentDirs::new(self.layout.deployment_dir(&spec.deployment_group_id, spec.deployment_id()))
    }

    /// The deployment directory whose revision a hook event's scripts come from (§1.7 of the
    /// official agent's behaviour): the current deployment's once it has been downloaded;
    /// before that, for ApplicationStop and the block-traffic events the last successful
    /// install (the most recent one for block traffic in a blue/green rollback), and for the
    /// allow-traffic events of a blue/green rollback the last successful install. `None`: the
    /// event has nothing to run.
    pub fn hook_source(&self, event: &str, spec: &DeploymentSpec) -> Option<PathBuf> {
        let current = self.current(spec);
        if current.archive().is_dir() {
            return Some(current.dir);
        }
        let blue_green_rollback = spec.deployment_creator.as_deref() == Some("codeDeployRollback")
            && spec.deployment_type.as_deref() == Some("BLUE_GREEN");
        let group = &spec.deployment_group_id;
        let pointer = match event {
            "ApplicationStop" => self.layout.last_successful_file(group),
            "BeforeBlockTraffic" | "AfterBlockTraffic" if blue_green_rollback => self.layout.most_recent_file(group),
            "BeforeBlockTraffic" | "AfterBlockTraffic" => self.layout.last_successful_file(group),
            "BeforeAllowTraffic" | "AfterAllowTraffic" if blue_green_rollback => {
                self.layout.last_successful_file(group)
            }
            _ => return None,
        };
        Layout::read_pointer(&pointer).filter(|dir| dir.join("deployment-archive").is_dir())
    }

    /// Whether a command has nothing to do: a hook event without scripts (or without a revision
    /// to read them from), or an unsupported command. DownloadBundle and Install never are.
    pub fn is_noop(&self, command: &LifecycleCommand, spec: &DeploymentSpec) -> bool {
        match command {
            LifecycleCommand::DownloadBundle | LifecycleCommand::Install => false,
            LifecycleCommand::Unsupported(_) => true,
            LifecycleCommand::Hook(event) => {
                let Some(source) = self.hook_source(event, spec) else { return true };
                let archive = source.join("deployment-archive");
                let Some(path) = find_appspec(&archive, spec.app_spec_filename.as_deref()) else { return true };
                // An unreadable AppSpec is not a no-op: running the event reports the problem.
                read_appspec(&path).is_ok_and(|parsed| parsed.appspec.scripts(event).is_empty())
            }
        }
    }

    pub async fn execute(
        &self,
        command: &LifecycleCommand,
        spec: &DeploymentSpec,
        log: &mut EventLog,
        abandon: &mut watch::Receiver<bool>,
    ) -> Result<(), CommandFailure> {
        log.write_scripts_log_to(&self.current(spec).scripts_log());
        match command {
            LifecycleCommand::DownloadBundle => self.download(spec, abandon).await.map_err(CommandFailure::unknown),
            LifecycleCommand::Install => self.install(spec, log).await,
            LifecycleCommand::Hook(event) => self.hook(event, spec, log, abandon).await,
            LifecycleCommand::Unsupported(name) => {
                Err(CommandFailure::unknown(format!("Unsupported command type: {name}.")))
            }
        }
    }

    async fn download(&self, spec: &DeploymentSpec, abandon: &mut watch::Receiver<bool>) -> Result<(), String> {
        let group = &spec.deployment_group_id;
        let last_successful = Layout::read_pointer(&self.layout.last_successful_file(group));
        let removed = download::prune_revisions(
            &self.layout.group_dir(group),
            spec.deployment_id(),
            last_successful.as_deref(),
            self.max_revisions,
        )
        .map_err(|error| format!("cannot remove old revisions: {error}"))?;
        for path in removed {
            tracing::info!(path = %path.display(), "old revision removed (max_revisions)");
        }
        let dirs = self.current(spec);
        std::fs::create_dir_all(&dirs.dir).map_err(|error| format!("cannot create {}: {error}", dirs.dir.display()))?;
        let budget = || {
            DiskBudget::for_directory(&dirs.dir, self.max_bundle_size)
                .map_err(|error| format!("cannot read the free space of {}: {error}", dirs.dir.display()))
        };
        let bundle = dirs.bundle();
        let revision = &spec.revision;
        match revision.revision_type.as_str() {
            "S3" | "GitHub" => {
                let fetcher = self.fetcher.as_ref().ok_or("this agent has no bundle store configured")?;
                let fetch = async {
                    match (&revision.s3_revision, &revision.github_revision) {
                        (Some(s3), _) => fetcher.s3_object(s3, &bundle, &budget()?).await,
                        (_, Some(github)) => {
                            let token = spec.github_access_token.as_ref().map(Secret::expose);
                            fetcher.git_commit(github, token, &dirs.dir.join("git-fetch"), &bundle).await
                        }
                        _ => Err("Must specify a revison".to_owned()),
                    }
                };
                tokio::select! {
                    result = fetch => result?,
                    () = abandoned(abandon) => return Err("the download was stopped because the agent was shut down".into()),
                }
            }
            "Local File" => {
                let location = &revision.local_revision.as_ref().ok_or("Must specify a revison")?.location;
                let _ = std::fs::remove_file(&bundle);
                if std::os::unix::fs::symlink(location, &bundle).is_err() {
                    std::fs::copy(location, &bundle).map_err(|error| format!("cannot copy {location}: {error}"))?;
                }
            }
            "Local Directory" => {
                let location =
                    PathBuf::from(&revision.local_revision.as_ref().ok_or("Must specify a revison")?.location);
                let archive = dirs.archive();
                let _ = std::fs::remove_dir_all(&archive);
                run_blocking(move || {
                    download::copy_tree(&location, &archive)
                        .map_err(|error| format!("cannot copy {}: {error}", location.display()))
                })
                .await?;
                return self.record_most_recent(spec, &dirs);
            }
            other => return Err(format!("Unsupported revision type {other}")),
        }
        let archive = dirs.archive();
        let declared = declared_format(revision);
        let budget = budget()?;
        run_blocking(move || {
            archive::unpack(&bundle, &archive, declared, &budget).map_err(|error| error.to_string())?;
            let stripped = archive::strip_leading_directory(&archive)
                .map_err(|error| format!("cannot strip the bundle's leading directory: {error}"))?;
            if stripped {
                tracing::info!("stripping the bundle's leading directory");
                // One level up, a link's `..` leads one level further.
                if let Err(error) = archive::check_links(&archive) {
                    let _ = std::fs::remove_dir_all(&archive);
                    return Err(error.to_string());
                }
            }
            Ok(())
        })
        .await?;
        self.record_most_recent(spec, &dirs)
    }

    fn record_most_recent(&self, spec: &DeploymentSpec, dirs: &DeploymentDirs) -> Result<(), String> {
        let pointer = self.layout.most_recent_file(&spec.deployment_group_id);
        Layout::write_pointer(&pointer, &dirs.dir)
            .map_err(|error| format!("cannot write {}: {error}", pointer.display()))
    }

    async fn install(&self, spec: &DeploymentSpec, log: &mut EventLog) -> Result<(), CommandFailure> {
        let dirs = self.current(spec);
        let archive = dirs.archive();
        let spec_name = spec.app_spec_filename.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or("appspec.yml");
        let Some(path) = find_appspec(&archive, spec.app_spec_filename.as_deref()) else {
            return Err(CommandFailure::unknown(format!(
                "The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path \"{spec_name}\". The revision was unpacked to directory \"{}\", and the AppSpec file was expected but not found at path \"{}\".",
                archive.display(),
                archive.join(spec_name).display()
            )));
        };
        let parsed = read_appspec(&path).map_err(CommandFailure::unknown)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for warning in parsed.warnings.warnings() {
            log.line(&format!("[landfall] {}", warning.in_file(&name)));
        }
        parsed.appspec.check_host_os(Os::Linux).map_err(|d| CommandFailure::unknown(d.in_file(&name).to_string()))?;
        let request = InstallRequest {
            layout: self.layout.clone(),
            group_id: spec.deployment_group_id.clone(),
            deployment_dir: dirs.dir,
            appspec: parsed.appspec,
            deployment_file_exists_behavior: spec.file_exists_behavior().map(str::to_owned),
        };
        run_blocking(move || install::install(&request).map(|_| ()).map_err(|error| error.0))
            .await
            .map_err(CommandFailure::unknown)
    }

    async fn hook(
        &self,
        event: &'static str,
        spec: &DeploymentSpec,
        log: &mut EventLog,
        abandon: &mut watch::Receiver<bool>,
    ) -> Result<(), CommandFailure> {
        let Some(source) = self.hook_source(event, spec) else { return Ok(()) };
        let archive = source.join("deployment-archive");
        let Some(path) = find_appspec(&archive, spec.app_spec_filename.as_deref()) else { return Ok(()) };
        let parsed = read_appspec(&path).map_err(CommandFailure::unknown)?;
        let scripts = parsed.appspec.scripts(event);
        let variables = hooks::deployment_variables(spec, event);
        let environment = hooks::hook_environment(std::env::vars_os(), &self.secrets, &variables);
        let processes = HookProcesses::new(&self.layout, spec.deployment_id());
        let run = EventRun {
            event,
            archive: &archive,
            environment: &environment,
            settings: &self.hooks,
            processes: Some(&processes),
        };
        hooks::run_event(&run, scripts, log, abandon).await
    }
}

/// The bundle type the revision declares (git revisions are archived as tar here).
fn declared_format(revision: &SpecRevision) -> Option<BundleFormat> {
    let declared = match revision.revision_type.as_str() {
        "S3" => revision.s3_revision.as_ref().map(|s3| s3.bundle_type.as_str()),
        "GitHub" => Some("tar"),
        _ => revision.local_revision.as_ref().map(|local| local.bundle_type.as_str()),
    };
    declared.and_then(BundleFormat::from_declared)
}

/// Blocking file work (unpacking, installing) off the async thread, so polls, signals and the
/// log stream go on meanwhile.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work).await.map_err(|error| format!("the work stopped unexpectedly: {error}"))?
}

async fn abandoned(abandon: &mut watch::Receiver<bool>) {
    if abandon.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
