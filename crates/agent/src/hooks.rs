//! Running a lifecycle event's hook scripts.
//!
//! Each script runs in order, as a direct child (no shell: paths need no quoting), in its own
//! process group, with stdin closed and stdout/stderr read line by line into the event's log.
//! The environment is the agent's own without its credentials, plus the deployment's variables.
//!
//! - Missing script: code 1. Not executable: made executable (`chmod +x`), or code 2.
//! - `runas`: the script runs through util-linux `setpriv --reuid --regid --init-groups`, which
//!   sets the user's uid and gid and initialises its supplementary groups before it execs the
//!   script, in the same process and process group (no fork, no new session, unlike `su -c`).
//!   `HOME`, `USER`, `LOGNAME` and `SHELL` are the user's, as `su` without `-` sets them. This
//!   needs no `pre_exec` hook, so the crate stays free of unsafe code.
//! - `sudo: true` prefixes `sudo -n` when the agent is not root (as root it changes nothing).
//! - Timeout: SIGTERM to the whole process group, SIGKILL to it after a grace period: code 3.
//! - While a script runs, its process is recorded on disk ([`HookProcesses`]): an agent killed
//!   under it ends it when it starts again, before reporting the event.
//! - A script that exits while a process it started in the background still holds its
//!   stdout/stderr: the event does not wait for that process. After a short grace (to collect
//!   the output the script's last moments produced) the script's own exit status decides, the
//!   background process keeps running (it is usually the service the hook started), and its
//!   further output is read and discarded so it never gets SIGPIPE. The official agent instead
//!   waits for the whole timeout and fails with code 6.
//! - Non-zero exit: code 4, "Script at specified location: <loc>[ run as user <u>] failed with
//!   exit code <n>".

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use landfall_appspec::Script;
use landfall_commands::AgentErrorCode;
use landfall_commands::spec::DeploymentSpec;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::CommandFailure;
use crate::logs::EventLog;
use crate::recovery::HookProcesses;

/// Longest line kept as one; longer output is cut into several lines.
const MAX_LINE_BYTES: u64 = 16 * 1024;

/// Timings of script handling.
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// Between SIGTERM and SIGKILL when a script's group is ended.
    pub kill_grace: Duration,
    /// How long output is still collected after a script exited while something else holds its
    /// stdout/stderr.
    pub pipe_grace: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings { kill_grace: Duration::from_secs(10), pipe_grace: Duration::from_secs(3) }
    }
}

/// What one lifecycle event's scripts run with.
#[derive(Debug, Clone)]
pub struct EventRun<'a> {
    pub event: &'a str,
    /// The revision the scripts are read from (`deployment-archive`).
    pub archive: &'a Path,
    /// The scripts' whole environment (see [`hook_environment`]).
    pub environment: &'a [(OsString, OsString)],
    pub settings: &'a HookSettings,
    /// Where running scripts are recorded, for an agent restarted under them to end them.
    pub processes: Option<&'a HookProcesses>,
}

/// Variables that carry credentials: never passed to scripts.
pub fn is_credential_variable(name: &str) -> bool {
    name.starts_with("AWS_ACCESS_KEY")
        || name.starts_with("AWS_SECRET")
        || matches!(name, "AWS_SESSION_TOKEN" | "AWS_SECURITY_TOKEN" | "AWS_CREDENTIAL_FILE")
}

/// The deployment's variables for an event's scripts.
pub fn deployment_variables(spec: &DeploymentSpec, event: &str) -> Vec<(String, String)> {
    let mut variables = vec![
        ("LIFECYCLE_EVENT".to_owned(), event.to_owned()),
        ("DEPLOYMENT_ID".to_owned(), spec.deployment_id().to_owned()),
        ("APPLICATION_NAME".to_owned(), spec.application_name.clone()),
        ("DEPLOYMENT_GROUP_NAME".to_owned(), spec.deployment_group_name.clone()),
        ("DEPLOYMENT_GROUP_ID".to_owned(), spec.deployment_group_id.clone()),
    ];
    if let Some(s3) = &spec.revision.s3_revision {
        variables.push(("BUNDLE_BUCKET".into(), s3.bucket.clone()));
        variables.push(("BUNDLE_KEY".into(), s3.key.clone()));
        if let Some(version) = &s3.version {
            variables.push(("BUNDLE_VERSION".into(), version.clone()));
        }
        if let Some(etag) = &s3.etag {
            variables.push(("BUNDLE_ETAG".into(), etag.clone()));
        }
    }
    if let Some(github) = &spec.revision.github_revision {
        variables.push(("BUNDLE_COMMIT".into(), github.commit_id.clone()));
    }
    variables
}

/// The scripts' environment: `inherited` (the agent's own) without credential variables and
/// without any variable holding one of `secrets`, then `variables`.
pub fn hook_environment(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    secrets: &[String],
    variables: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut environment: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(name, value)| {
            let name = name.to_string_lossy();
            let value = value.to_string_lossy();
            !is_credential_variable(&name)
                && !secrets.iter().any(|secret| !secret.is_empty() && value.contains(secret.as_str()))
                && !variables.iter().any(|(own, _)| *own == name)
        })
        .collect();
    environment.extend(variables.iter().map(|(name, value)| (name.into(), value.into())));
    environment
}

/// Runs the event's scripts in order; the first failure ends the event.
pub async fn run_event(
    run: &EventRun<'_>,
    scripts: &[Script],
    log: &mut EventLog,
    abandon: &mut watch::Receiver<bool>,
) -> Result<(), CommandFailure> {
    if scripts.is_empty() {
        return Ok(());
    }
    log.line(&format!("LifecycleEvent - {}", run.event));
    for script in scripts {
        run_script(run, script, log, abandon).await?;
    }
    Ok(())
}

fn failure(code: AgentErrorCode, script: &Script, message: String) -> CommandFailure {
    CommandFailure { code, script_name: script.location.clone(), message }
}

/// `<loc>` or `<loc> run as user <u>`, as the official messages name a script.
fn described(script: &Script) -> String {
    match &script.runas {
        Some(user) => format!("{} run as user {user}", script.location),
        None => script.location.clone(),
    }
}

/// The script's path inside the revision. A location is relative to the revision's root (a
/// leading `/` too, as in the official agent); one with `..`, or leading out through a
/// symbolic link, is refused.
fn script_path(archive: &Path, location: &str) -> Option<PathBuf> {
    let relative = Path::new(location.trim().trim_start_matches('/'));
    if relative.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    crate::archive::resolve_inside(archive, relative)?;
    Some(archive.join(relative))
}

async fn run_script(
    run: &EventRun<'_>,
    script: &Script,
    log: &mut EventLog,
    abandon: &mut watch::Receiver<bool>,
) -> Result<(), CommandFailure> {
    log.line(&format!("Script - {}", script.location));
    let Some(path) = script_path(run.archive, &script.location) else {
        return Err(failure(
            AgentErrorCode::ScriptMissing,
            script,
            format!(
                "Script does not exist at specified location: {} (a script location must stay inside the revision)",
                script.location
            ),
        ));
    };
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => metadata,
        _ => {
            return Err(failure(
                AgentErrorCode::ScriptMissing,
                script,
                format!("Script does not exist at specified location: {}", path.display()),
            ));
        }
    };
    if metadata.permissions().mode() & 0o111 == 0 {
        tracing::warn!(script = %path.display(), "script is not executable; making it executable");
        let mode = metadata.permissions().mode() | 0o111;
        if std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).is_err() {
            return Err(failure(
                AgentErrorCode::ScriptNotExecutable,
                script,
                format!("Unable to set script at specified location: {} as executable", script.location),
            ));
        }
    }
    let invocation = invocation(&path, script).map_err(|why| {
        failure(
            AgentErrorCode::ScriptFailed,
            script,
            format!("Script at specified location: {} {why}", described(script)),
        )
    })?;

    let spawned = spawn(&invocation, run.environment);
    let mut child = spawned.map_err(|error| {
        failure(
            AgentErrorCode::ScriptFailed,
            script,
            format!("Script at specified location: {} could not be started: {error}", described(script)),
        )
    })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let recorded = run.processes.zip(child.id());
    if let Some((processes, pid)) = recorded {
        processes.started(pid);
    }

    let (sender, mut lines) = mpsc::channel::<String>(64);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, "[stdout]", sender.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, "[stderr]", sender.clone()));
    }
    drop(sender);

    let deadline = Instant::now() + Duration::from_secs(script.timeout);
    let mut status: Option<ExitStatus> = None;
    let mut pipes_open = true;
    let mut pipe_deadline = deadline;
    let ending = loop {
        if status.is_some() && !pipes_open {
            break Ending::Exited;
        }
        tokio::select! {
            line = lines.recv(), if pipes_open => match line {
                Some(line) => log.line(&line),
                None => pipes_open = false,
            },
            waited = child.wait(), if status.is_none() => {
                match waited {
                    Ok(exit) => status = Some(exit),
                    Err(error) => {
                        tracing::warn!(%error, "cannot wait for a hook script");
                        status = Some(ExitStatus::from_raw(255 << 8));
                    }
                }
                if let Some((processes, pid)) = recorded {
                    processes.ended(pid);
                }
                pipe_deadline = (Instant::now() + run.settings.pipe_grace).min(deadline);
            },
            () = tokio::time::sleep_until(pipe_deadline), if status.is_some() && pipes_open => break Ending::PipesHeld,
            () = tokio::time::sleep_until(deadline), if status.is_none() => break Ending::TimedOut,
            () = wait_for_abandon(abandon), if status.is_none() => break Ending::Abandoned,
        }
    };

    match ending {
        Ending::Exited => exit_result(script, status),
        Ending::PipesHeld => {
            log.line(&format!(
                "[landfall] {} exited, but a process it started still holds its stdout/stderr; the event goes on \
                 without waiting for it, and its further output is discarded. Start background processes with \
                 '> /dev/null 2>&1 < /dev/null &' to avoid this.",
                script.location
            ));
            // Dropping `lines` lets the readers run on, discarding, until the process closes them.
            exit_result(script, status)
        }
        Ending::TimedOut | Ending::Abandoned => {
            end_group(group, &mut child, &mut lines, log, run.settings.kill_grace).await;
            if let Some((processes, pid)) = recorded {
                processes.ended(pid);
            }
            if matches!(ending, Ending::TimedOut) {
                Err(failure(
                    AgentErrorCode::ScriptTimedOut,
                    script,
                    format!(
                        "Script at specified location: {} failed to complete in {} seconds",
                        script.location, script.timeout
                    ),
                ))
            } else {
                Err(failure(
                    AgentErrorCode::UnknownError,
                    script,
                    format!(
                        "Script at specified location: {} was stopped because the agent was shut down during the {} lifecycle event",
                        described(script),
                        run.event
                    ),
                ))
            }
        }
    }
}

/// Starts a script in its own process group, stdin closed, stdout and stderr piped, with
/// `environment` and the invocation's user variables. A file without a `#!` line is run with
/// the shell, as the official agent's shell command line does.
fn spawn(invocation: &Invocation, environment: &[(OsString, OsString)]) -> std::io::Result<tokio::process::Child> {
    let start = |program: &OsString, args: &[OsString]| {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .envs(invocation.user_variables.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        tokio::process::Command::from(command).spawn()
    };
    match start(&invocation.program, &invocation.args) {
        Err(error) if error.raw_os_error() == Some(nix::libc::ENOEXEC) => {
            let mut shell_args = vec![invocation.program.clone()];
            shell_args.extend(invocation.args.iter().cloned());
            start(&OsString::from("/bin/sh"), &shell_args)
        }
        other => other,
    }
}

enum Ending {
    Exited,
    PipesHeld,
    TimedOut,
    Abandoned,
}

fn exit_result(script: &Script, status: Option<ExitStatus>) -> Result<(), CommandFailure> {
    let status = status.unwrap_or_else(|| ExitStatus::from_raw(255 << 8));
    if status.success() {
        return Ok(());
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("{} (killed by signal {signal})", 128 + signal),
        (None, None) => "unknown".to_owned(),
    };
    Err(failure(
        AgentErrorCode::ScriptFailed,
        script,
        format!("Script at specified location: {} failed with exit code {code}", described(script)),
    ))
}

/// Resolves once the agent asks running scripts to be abandoned.
async fn wait_for_abandon(abandon: &mut watch::Receiver<bool>) {
    if abandon.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Ends a script's whole process group: SIGTERM, then SIGKILL after `grace` (also when the
/// script itself ended at once, for any process of its group that ignored SIGTERM). Output is
/// still logged meanwhile.
async fn end_group(
    group: Option<Pid>,
    child: &mut tokio::process::Child,
    lines: &mut mpsc::Receiver<String>,
    log: &mut EventLog,
    grace: Duration,
) {
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut exited = false;
    let mut pipes_open = true;
    while !exited || pipes_open {
        tokio::select! {
            line = lines.recv(), if pipes_open => match line {
                Some(line) => log.line(&line),
                None => pipes_open = false,
            },
            _ = child.wait(), if !exited => exited = true,
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    // Whatever the killed processes wrote last; the pipes close as they die.
    let drain_deadline = Instant::now() + Duration::from_secs(1);
    while pipes_open {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => log.line(&line),
                None => pipes_open = false,
            },
            () = tokio::time::sleep_until(drain_deadline) => break,
        }
    }
}

/// Reads a pipe line by line into `lines`; once nobody listens any more, goes on reading and
/// discarding until the pipe closes, so a background process that holds it never gets SIGPIPE.
async fn forward_lines<R: AsyncRead + Unpin>(pipe: R, prefix: &'static str, lines: mpsc::Sender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut buffer = Vec::new();
    let mut listened = true;
    loop {
        buffer.clear();
        match (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if listened {
                    let text = String::from_utf8_lossy(&buffer);
                    let text = text.trim_end_matches(['\n', '\r']);
                    listened = lines.send(format!("{prefix}{text}")).await.is_ok();
                }
            }
        }
    }
}

/// How a script is started: the program, its arguments, and variables set for the user.
struct Invocation {
    program: OsString,
    args: Vec<OsString>,
    user_variables: Vec<(String, String)>,
}

/// The invocation that runs `path` as the script asks.
fn invocation(path: &Path, script: &Script) -> Result<Invocation, String> {
    let running_as = nix::unistd::geteuid();
    let mut words: Vec<OsString> = vec![path.as_os_str().to_owned()];
    let mut variables = Vec::new();
    if let Some(name) = &script.runas {
        let user = nix::unistd::User::from_name(name)
            .map_err(|error| format!("failed: cannot look up the user {name}: {error}"))?
            .ok_or_else(|| format!("failed: there is no user {name} on this host"))?;
        if user.uid != running_as {
            let setpriv = find_program("setpriv").ok_or_else(|| {
                "failed: running a script as another user needs setpriv (util-linux), which is not installed".to_owned()
            })?;
            words = vec![
                setpriv.into_os_string(),
                format!("--reuid={}", user.uid).into(),
                format!("--regid={}", user.gid).into(),
                "--init-groups".into(),
                "--".into(),
                path.as_os_str().to_owned(),
            ];
        }
        variables.push(("HOME".to_owned(), user.dir.to_string_lossy().into_owned()));
        variables.push(("SHELL".to_owned(), user.shell.to_string_lossy().into_owned()));
        variables.push(("USER".to_owned(), user.name.clone()));
        variables.push(("LOGNAME".to_owned(), user.name));
    }
    if script.sudo && !running_as.is_root() {
        let mut with_sudo: Vec<OsString> = vec!["sudo".into(), "-n".into(), "--".into()];
        with_sudo.extend(words);
        words = with_sudo;
    }
    let program = words.remove(0);
    Ok(Invocation { program, args: words, user_variables: variables })
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_stay_inside_the_revision() {
        let archive = Path::new("/r");
        assert_eq!(script_path(archive, "scripts/a.sh"), Some(PathBuf::from("/r/scripts/a.sh")));
        assert_eq!(script_path(archive, "/scripts/a.sh"), Some(PathBuf::from("/r/scripts/a.sh")));
        assert_eq!(script_path(archive, " scripts/a.sh "), Some(PathBuf::from("/r/scripts/a.sh")));
        assert_eq!(script_path(archive, "../x.sh"), None);
        // Nor through a link on disk.
        let revision = std::env::temp_dir().join(format!("landfall-hooks-{}", std::process::id()));
        std::fs::create_dir_all(revision.join("scripts")).unwrap();
        std::os::unix::fs::symlink("..", revision.join("scripts/up")).unwrap();
        std::os::unix::fs::symlink("../..", revision.join("scripts/out")).unwrap();
        assert_eq!(script_path(&revision, "scripts/up/scripts/a.sh"), Some(revision.join("scripts/up/scripts/a.sh")));
        assert_eq!(script_path(&revision, "scripts/out/etc/x.sh"), None);
        std::fs::remove_dir_all(&revision).unwrap();
    }

    #[test]
    fn credentials_are_recognised() {
        for name in
            ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN"]
        {
            assert!(is_credential_variable(name), "{name}");
        }
        for name in ["AWS_REGION", "PATH", "HOME", "AWS_PROFILE"] {
            assert!(!is_credential_variable(name), "{name}");
        }
    }
}
