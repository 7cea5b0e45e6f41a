//! Hook scripts, really run: order, environment, stdin, failures, timeouts that end the whole
//! process group, background processes holding the output, runas.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use landfall_agent::hooks::{EventRun, HookSettings, deployment_variables, hook_environment, run_event};
use landfall_agent::logs::EventLog;
use landfall_appspec::Script;
use landfall_commands::AgentErrorCode;
use landfall_commands::spec::{DeploymentSpec, S3Revision, SpecRevision};
use tokio::sync::watch;

use crate::support::{TempDir, write, write_script};

fn script(location: &str) -> Script {
    Script { location: location.to_owned(), timeout: 60, runas: None, sudo: false }
}

fn fast() -> HookSettings {
    HookSettings { kill_grace: Duration::from_millis(500), pipe_grace: Duration::from_millis(300) }
}

fn base_environment() -> Vec<(OsString, OsString)> {
    vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into())]
}

/// Runs `scripts` of `event` from `archive`; returns the result and the event's log tail.
async fn run(
    archive: &Path,
    scripts: &[Script],
    environment: &[(OsString, OsString)],
    settings: &HookSettings,
) -> (Result<(), landfall_agent::CommandFailure>, String) {
    let (_keep, mut abandon) = watch::channel(false);
    let mut log = EventLog::in_memory();
    let run = EventRun { event: "AfterInstall", archive, environment, settings, processes: None };
    let result = run_event(&run, scripts, &mut log, &mut abandon).await;
    (result, log.tail())
}

/// Whether a process is gone (a zombie waiting for a parent that is not us counts as gone).
fn gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
    }
}

async fn eventually_gone(pid: &str) -> bool {
    for _ in 0..50 {
        if gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn scripts_run_in_order_and_their_output_is_logged() {
    let dir = TempDir::new("hooks");
    let trace = dir.join("trace");
    write_script(&dir.join("a.sh"), &format!("echo first >> {}\necho out-a\necho err-a >&2", trace.display()));
    write_script(&dir.join("b.sh"), &format!("echo second >> {}\necho out-b", trace.display()));
    let (result, tail) = run(dir.path(), &[script("a.sh"), script("b.sh")], &base_environment(), &fast()).await;
    result.unwrap();
    assert_eq!(fs::read_to_string(&trace).unwrap(), "first\nsecond\n");
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines[..2], ["LifecycleEvent - AfterInstall", "Script - a.sh"], "{tail}");
    // stdout and stderr are read concurrently: their relative order is not fixed.
    let mut outputs = lines[2..4].to_vec();
    outputs.sort_unstable();
    assert_eq!(outputs, ["[stderr]err-a", "[stdout]out-a"], "{tail}");
    assert_eq!(lines[4..], ["Script - b.sh", "[stdout]out-b"], "{tail}");
}

#[tokio::test]
async fn the_environment_has_the_deployment_and_not_the_credentials() {
    let dir = TempDir::new("hooks");
    write_script(&dir.join("env.sh"), &format!("env > {}", dir.join("env.txt").display()));
    let spec = DeploymentSpec {
        deployment_id: "d-ABCDEFGHI".into(),
        deployment_group_id: "group-id".into(),
        deployment_group_name: "dg".into(),
        application_name: "app".into(),
        revision: SpecRevision {
            revision_type: "S3".into(),
            s3_revision: Some(S3Revision {
                bucket: "bundles".into(),
                key: "app.tgz".into(),
                bundle_type: "tgz".into(),
                version: Some("v7".into()),
                etag: Some("abc123".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let inherited: Vec<(OsString, OsString)> = [
        ("PATH", "/usr/bin:/bin"),
        ("KEEP_ME", "yes"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_ACCESS_KEY", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ("AWS_SECRET_KEY", "very-secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("AWS_CREDENTIAL_FILE", "/etc/creds"),
        ("MY_COPY", "prefix-the-onprem-secret-suffix"),
        ("AWS_REGION", "us-east-1"),
        ("LIFECYCLE_EVENT", "stale value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    let environment = hook_environment(
        inherited,
        &["the-onprem-key".into(), "the-onprem-secret".into()],
        &deployment_variables(&spec, "AfterInstall"),
    );
    let (result, _) = run(dir.path(), &[script("env.sh")], &environment, &fast()).await;
    result.unwrap();
    let env = fs::read_to_string(dir.join("env.txt")).unwrap();
    for expected in [
        "LIFECYCLE_EVENT=AfterInstall",
        "DEPLOYMENT_ID=d-ABCDEFGHI",
        "APPLICATION_NAME=app",
        "DEPLOYMENT_GROUP_NAME=dg",
        "DEPLOYMENT_GROUP_ID=group-id",
        "BUNDLE_BUCKET=bundles",
        "BUNDLE_KEY=app.tgz",
        "BUNDLE_VERSION=v7",
        "BUNDLE_ETAG=abc123",
        "KEEP_ME=yes",
        "AWS_REGION=us-east-1",
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} missing from:\n{env}");
    }
    for absent in [
        "AWS_ACCESS_KEY",
        "AWS_SECRET",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_FILE",
        "MY_COPY",
        "very-secret",
        "stale value",
    ] {
        assert!(!env.contains(absent), "{absent} leaked into:\n{env}");
    }
}

#[tokio::test]
async fn stdin_is_closed() {
    let dir = TempDir::new("hooks");
    write_script(&dir.join("read.sh"), "if read line; then echo got-input; else echo no-input; fi\ncat; echo cat-done");
    let started = Instant::now();
    let (result, tail) = run(dir.path(), &[script("read.sh")], &base_environment(), &fast()).await;
    result.unwrap();
    assert!(tail.contains("[stdout]no-input\n[stdout]cat-done\n"), "{tail}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_failing_script_stops_the_event_with_code_4() {
    let dir = TempDir::new("hooks");
    write_script(&dir.join("fail.sh"), "echo about to fail\nexit 3");
    write_script(&dir.join("never.sh"), &format!("touch {}", dir.join("ran").display()));
    let (result, tail) = run(dir.path(), &[script("fail.sh"), script("never.sh")], &base_environment(), &fast()).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.code, AgentErrorCode::ScriptFailed);
    assert_eq!(failure.script_name, "fail.sh");
    assert_eq!(failure.message, "Script at specified location: fail.sh failed with exit code 3");
    assert!(tail.ends_with("Script - fail.sh\n[stdout]about to fail\n"), "{tail}");
    assert!(!dir.join("ran").exists());
}

#[tokio::test]
async fn a_missing_script_is_code_1_and_a_non_executable_one_is_made_executable() {
    let dir = TempDir::new("hooks");
    let (result, _) = run(dir.path(), &[script("scripts/missing.sh")], &base_environment(), &fast()).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.code, AgentErrorCode::ScriptMissing);
    assert_eq!(
        failure.message,
        format!("Script does not exist at specified location: {}", dir.join("scripts/missing.sh").display())
    );

    write(&dir.join("plain.sh"), "#!/bin/sh\necho ran\n");
    // And one without a #! line, which the official agent's shell runs.
    write(&dir.join("no-shebang.sh"), "echo ran-too\n");
    let (result, tail) =
        run(dir.path(), &[script("plain.sh"), script("/no-shebang.sh")], &base_environment(), &fast()).await;
    result.unwrap();
    assert!(tail.contains("[stdout]ran\n") && tail.contains("[stdout]ran-too\n"), "{tail}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_ne!(fs::metadata(dir.join("plain.sh")).unwrap().permissions().mode() & 0o111, 0);

    let (result, _) = run(dir.path(), &[script("../escape.sh")], &base_environment(), &fast()).await;
    assert_eq!(result.unwrap_err().code, AgentErrorCode::ScriptMissing);
}

#[tokio::test]
async fn a_timeout_ends_the_script_and_everything_it_started() {
    let dir = TempDir::new("hooks");
    let pids = dir.join("pids");
    // The background child ignores SIGTERM: only the SIGKILL after the grace period ends it.
    write_script(
        &dir.join("slow.sh"),
        &format!(
            "(trap '' TERM; sleep 1000) &\necho $! > {pids}.child\necho $$ > {pids}.script\necho started\nsleep 1000",
            pids = pids.display()
        ),
    );
    let mut slow = script("slow.sh");
    slow.timeout = 1;
    let started = Instant::now();
    let (result, tail) = run(dir.path(), &[slow], &base_environment(), &fast()).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.code, AgentErrorCode::ScriptTimedOut);
    assert_eq!(failure.message, "Script at specified location: slow.sh failed to complete in 1 seconds");
    assert!(tail.contains("[stdout]started"), "{tail}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let child = fs::read_to_string(format!("{}.child", pids.display())).unwrap();
    let script_pid = fs::read_to_string(format!("{}.script", pids.display())).unwrap();
    assert!(eventually_gone(&script_pid).await, "the script {script_pid} is still running");
    assert!(eventually_gone(&child).await, "the background child {child} is still running");
}

#[tokio::test]
async fn a_background_process_holding_the_output_does_not_hang_the_event() {
    let dir = TempDir::new("hooks");
    let pid_file = dir.join("daemon.pid");
    write_script(
        &dir.join("start.sh"),
        &format!("sleep 1000 &\necho $! > {}\necho service started", pid_file.display()),
    );
    let mut start = script("start.sh");
    // Long enough to tell waiting for the background process from not waiting.
    start.timeout = 20;
    let started = Instant::now();
    let (result, tail) = run(dir.path(), &[start], &base_environment(), &fast()).await;
    let elapsed = started.elapsed();
    result.unwrap();
    assert!(elapsed < Duration::from_secs(10), "the event waited {elapsed:?} for the background process");
    assert!(tail.contains("[stdout]service started"), "{tail}");
    assert!(tail.contains("still holds its stdout/stderr"), "{tail}");
    // The service the hook started keeps running.
    let daemon = fs::read_to_string(&pid_file).unwrap();
    assert!(!gone(&daemon), "the background process was killed");
    let _ = std::process::Command::new("kill").arg(daemon.trim()).status();

    // A script that fails while leaving a process behind still fails, without waiting.
    write_script(&dir.join("fail.sh"), &format!("sleep 1000 &\necho $! > {}\nexit 7", pid_file.display()));
    let started = Instant::now();
    let (result, _) = run(dir.path(), &[script("fail.sh")], &base_environment(), &fast()).await;
    assert_eq!(result.unwrap_err().message, "Script at specified location: fail.sh failed with exit code 7");
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = std::process::Command::new("kill").arg(fs::read_to_string(&pid_file).unwrap().trim()).status();
}

#[tokio::test]
async fn runas_runs_the_script_as_that_user_with_its_groups() {
    let dir = TempDir::new("hooks");
    let out = dir.join("out");
    fs::create_dir(&out).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    write_script(
        &dir.join("who.sh"),
        &format!(
            "id -u > {o}/uid\nid -G > {o}/groups\ngrep -E '^(Uid|Gid):' /proc/self/status > {o}/status\necho \"$HOME $USER\" > {o}/home\necho as-nobody",
            o = out.display()
        ),
    );
    let mut who = script("who.sh");
    who.runas = Some("nobody".into());
    let (result, tail) = run(dir.path(), &[who], &base_environment(), &fast()).await;
    result.unwrap();
    assert!(tail.contains("[stdout]as-nobody"), "{tail}");
    let expected_groups =
        String::from_utf8(std::process::Command::new("id").args(["-G", "nobody"]).output().unwrap().stdout).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert_eq!(fs::read_to_string(out.join("uid")).unwrap().trim(), nobody.uid.to_string());
    // Exactly nobody's groups: none of root's supplementary groups remain.
    assert_eq!(fs::read_to_string(out.join("groups")).unwrap().trim(), expected_groups.trim());
    // Real, effective, saved and filesystem ids all changed.
    let status = fs::read_to_string(out.join("status")).unwrap();
    let uid = nobody.uid.to_string();
    assert_eq!(
        status.lines().next().unwrap().split_whitespace().skip(1).collect::<Vec<_>>(),
        vec![uid.as_str(); 4],
        "{status}"
    );
    assert!(fs::read_to_string(out.join("home")).unwrap().trim().ends_with(" nobody"));

    // A failure names the user.
    write_script(&dir.join("fail.sh"), "exit 2");
    let mut fail = script("fail.sh");
    fail.runas = Some("nobody".into());
    let (result, _) = run(dir.path(), &[fail], &base_environment(), &fast()).await;
    assert_eq!(
        result.unwrap_err().message,
        "Script at specified location: fail.sh run as user nobody failed with exit code 2"
    );

    let mut unknown = script("fail.sh");
    unknown.runas = Some("no-such-user-here".into());
    let (result, _) = run(dir.path(), &[unknown], &base_environment(), &fast()).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.code, AgentErrorCode::ScriptFailed);
    assert!(failure.message.contains("there is no user no-such-user-here"), "{}", failure.message);
}

#[tokio::test]
async fn abandoning_ends_the_running_script() {
    let dir = TempDir::new("hooks");
    write_script(&dir.join("long.sh"), &format!("echo $$ > {}\nsleep 1000", dir.join("pid").display()));
    let (abandon_sender, mut abandon) = watch::channel(false);
    let environment = base_environment();
    let settings = fast();
    let mut log = EventLog::in_memory();
    let run = EventRun {
        event: "ApplicationStart",
        archive: dir.path(),
        environment: &environment,
        settings: &settings,
        processes: None,
    };
    let scripts = [script("long.sh")];
    let running = run_event(&run, &scripts, &mut log, &mut abandon);
    let trigger = async {
        // Written, not only created: the shell creates the file before echo writes the pid.
        while !fs::read_to_string(dir.join("pid")).is_ok_and(|pid| pid.ends_with('\n')) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        abandon_sender.send(true).unwrap();
    };
    let (result, ()) = tokio::join!(running, trigger);
    let failure = result.unwrap_err();
    assert_eq!(failure.code, AgentErrorCode::UnknownError);
    assert!(
        failure.message.contains("the agent was shut down during the ApplicationStart lifecycle event"),
        "{}",
        failure.message
    );
    assert!(eventually_gone(&fs::read_to_string(dir.join("pid")).unwrap()).await);
}

#[tokio::test]
async fn hook_scripts_left_running_by_a_dead_agent_are_ended_and_only_they() {
    use std::os::unix::process::CommandExt as _;

    use landfall_agent::layout::Layout;
    use landfall_agent::recovery::{HookProcess, HookProcesses, end_leftover_hooks, recorded_processes};

    let dir = TempDir::new("leftover-hooks");
    let layout = Layout::new(dir.path());
    // A script in its own group, with a child that ignores SIGTERM.
    let mut script = std::process::Command::new("/bin/sh")
        .args(["-c", "trap '' TERM; sleep 60 & wait"])
        .process_group(0)
        .spawn()
        .unwrap();
    let processes = HookProcesses::new(&layout, "d-1");
    processes.started(script.id());
    // Another process whose number a later boot or a recycled pid could give a recorded entry.
    let mut bystander = std::process::Command::new("sleep").arg("60").process_group(0).spawn().unwrap();
    let mut impostor = HookProcess::of(bystander.id() as i32).unwrap();
    impostor.started += 1;
    let other = HookProcesses::new(&layout, "d-2");
    other.started(bystander.id());
    std::fs::write(
        dir.path().join("ongoing-deployment/.d-2.processes"),
        format!("{} {} {}\n", impostor.pid, impostor.started, impostor.boot),
    )
    .unwrap();
    assert_eq!(recorded_processes(&layout).len(), 2);

    assert_eq!(end_leftover_hooks(&layout, Duration::from_millis(300)).await, 1);
    // SIGKILL after the grace: gone, group and all.
    let status = script.wait().unwrap();
    assert!(!status.success());
    assert!(bystander.try_wait().unwrap().is_none(), "a process that is not the recorded one is left alone");
    bystander.kill().unwrap();
    bystander.wait().unwrap();

    // A script that ended is no longer recorded.
    processes.ended(script.id());
    assert!(!dir.path().join("ongoing-deployment/.d-1.processes").exists());
}
