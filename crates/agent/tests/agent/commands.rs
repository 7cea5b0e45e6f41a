//! The agent driven through its poll loop against a fake command service: whole deployments,
//! the acknowledgement rules, refused specifications, crash recovery and stopping.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use landfall_agent::client::ServiceError;
use landfall_agent::hooks::HookSettings;
use landfall_agent::layout::Layout;
use landfall_agent::lifecycle::Executor;
use landfall_agent::{Agent, Stop, StopLevel, recovery};
use landfall_commands::spec::{DeploymentSpec, LocalRevision, SpecRevision};

use crate::support::{Call, Entry, FakeService, HOST, TempDir, tgz_bytes, tree, write};

const GROUP: &str = "11111111-2222-3333-4444-555555555555";
const EVENTS: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

struct Scenario {
    dir: TempDir,
    agent: Agent<FakeService>,
}

impl Scenario {
    fn new() -> Scenario {
        let dir = TempDir::new("agent");
        let agent = Agent {
            service: FakeService::new(),
            host_identifier: HOST.into(),
            executor: Executor {
                layout: Layout::new(dir.join("root")),
                max_revisions: 5,
                max_bundle_size: None,
                hooks: HookSettings { kill_grace: Duration::from_millis(500), pipe_grace: Duration::from_millis(300) },
                secrets: Vec::new(),
                fetcher: None,
            },
            spec_ca: None,
            wait_between_runs: Duration::from_millis(10),
            kill_agent_max_wait: Duration::from_secs(60),
            deployments_log: true,
            stream_interval: Duration::from_millis(20),
            metrics: Default::default(),
            self_update: None,
        };
        Scenario { dir, agent }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn trace(&self) -> PathBuf {
        self.dir.join("trace")
    }

    /// A bundle whose hooks append `<event> <deployment>` to the trace file; `version` is
    /// installed as www/index.html.
    fn bundle(&self, name: &str, version: &str, extra_appspec: &str) -> PathBuf {
        let appspec = leak(format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {www}\nhooks:\n\
             {hook}BeforeInstall:\n    - location: scripts/hook.sh\n  AfterInstall:\n    - location: scripts/hook.sh\n\
             \x20 ApplicationStart:\n    - location: scripts/hook.sh\n      timeout: 30\n{extra_appspec}",
            www = self.dir.join("www").display(),
            hook = "  ApplicationStop:\n    - location: scripts/hook.sh\n  ",
        ));
        let hook = leak(format!(
            "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID {version}\" >> {}\necho \"hook output for $LIFECYCLE_EVENT\"\n",
            self.trace().display()
        ));
        let path = self.dir.join(name);
        let entries = [
            Entry::Dir("app/"),
            Entry::File("app/appspec.yml", appspec, 0o644),
            Entry::File("app/scripts/hook.sh", hook, 0o755),
            Entry::File("app/site/index.html", leak(version.to_owned()), 0o644),
        ];
        fs::write(&path, tgz_bytes(&entries)).unwrap();
        path
    }

    /// A Local File revision of `bundle`, its type told by its extension (tar, zip, else tgz).
    fn spec(&self, deployment_id: &str, bundle: &Path) -> DeploymentSpec {
        let bundle_type =
            bundle.extension().and_then(|e| e.to_str()).filter(|e| matches!(*e, "tar" | "zip")).unwrap_or("tgz");
        DeploymentSpec {
            deployment_id: deployment_id.into(),
            deployment_group_id: GROUP.into(),
            deployment_group_name: "dg".into(),
            application_name: "app".into(),
            revision: SpecRevision {
                revision_type: "Local File".into(),
                local_revision: Some(LocalRevision {
                    location: bundle.display().to_string(),
                    bundle_type: bundle_type.into(),
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Runs the poll loop until the queue is empty.
    async fn run(&self) {
        let (handle, stop) = Stop::channel();
        *self.agent.service.on_empty.borrow_mut() = Some(Box::new(move || handle.request(StopLevel::Finish)));
        tokio::time::timeout(Duration::from_secs(60), self.agent.run(stop)).await.expect("the agent finished");
    }

    fn deploy(&self, spec: &DeploymentSpec) {
        for event in EVENTS {
            self.agent.service.queue(spec, event);
        }
    }

    fn trace_lines(&self) -> Vec<String> {
        fs::read_to_string(self.trace()).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

#[tokio::test]
async fn a_whole_deployment_then_the_next_one() {
    let scenario = Scenario::new();
    let first = scenario.spec("d-FIRST0001", &scenario.bundle("one.tgz", "v1", ""));
    scenario.deploy(&first);
    scenario.run().await;
    let service = &scenario.agent.service;

    let completions = service.completions();
    assert_eq!(completions.len(), 7, "{completions:?}");
    for (_, status, diagnostics) in &completions {
        assert_eq!(
            (status.as_str(), diagnostics.error_code, diagnostics.message.as_str()),
            ("Succeeded", 0, "Succeeded: ")
        );
    }
    // No previous install: ApplicationStop is a no-op; ValidateService has no scripts.
    let noops: Vec<bool> = service.acks().into_iter().map(|(_, noop)| noop).collect();
    assert_eq!(noops, vec![true, false, false, false, false, false, true]);
    assert_eq!(
        scenario.trace_lines(),
        vec!["BeforeInstall d-FIRST0001 v1", "AfterInstall d-FIRST0001 v1", "ApplicationStart d-FIRST0001 v1"]
    );
    assert_eq!(fs::read_to_string(scenario.dir.join("www/index.html")).unwrap(), "v1");

    // Each command: spec, ack, its streamed output, exactly one completion.
    let calls = service.calls();
    let after_install = calls
        .iter()
        .find_map(|c| match c {
            Call::Acknowledge { command, .. } if command.starts_with("hc-AfterInstall") => Some(command.clone()),
            _ => None,
        })
        .unwrap();
    let chunks = service.streamed(&after_install);
    assert_eq!(chunks.iter().map(|c| c.sequence).collect::<Vec<_>>(), (0..chunks.len() as u64).collect::<Vec<_>>());
    let streamed: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        streamed,
        "LifecycleEvent - AfterInstall\nScript - scripts/hook.sh\n[stdout]hook output for AfterInstall\n"
    );
    let positions = |f: &dyn Fn(&Call) -> bool| calls.iter().position(f).unwrap();
    let acked = positions(&|c| matches!(c, Call::Acknowledge { command, .. } if *command == after_install));
    let updated = positions(&|c| matches!(c, Call::Update { command, .. } if *command == after_install));
    let completed = positions(&|c| matches!(c, Call::Complete { command, .. } if *command == after_install));
    assert!(acked < updated && updated < completed);

    // The on-host layout.
    let root = scenario.root();
    let deployment_dir = root.join(GROUP).join("d-FIRST0001");
    assert!(fs::symlink_metadata(deployment_dir.join("bundle.tar")).unwrap().file_type().is_symlink());
    assert!(deployment_dir.join("deployment-archive/appspec.yml").is_file(), "the leading directory is stripped");
    let scripts_log = fs::read_to_string(deployment_dir.join("logs/scripts.log")).unwrap();
    assert!(scripts_log.contains(" [stdout]hook output for ApplicationStart\n"), "{scripts_log}");
    assert!(
        fs::read_to_string(root.join("deployment-logs/codedeploy-agent-deployments.log"))
            .unwrap()
            .contains("] [d-FIRST0001][stdout]hook output for BeforeInstall")
    );
    let layout = Layout::new(&root);
    assert_eq!(Layout::read_pointer(&layout.last_successful_file(GROUP)), Some(deployment_dir.clone()));
    assert_eq!(Layout::read_pointer(&layout.most_recent_file(GROUP)), Some(deployment_dir.clone()));
    assert!(layout.cleanup_file(GROUP).is_file() && layout.install_file(GROUP).is_file());
    assert!(tree(&root.join("ongoing-deployment")).is_empty());

    // The next deployment: ApplicationStop runs the first revision's script, logged into the new
    // deployment's scripts.log, with the new deployment's id; the files are replaced.
    service.calls.borrow_mut().clear();
    let second = scenario.spec("d-SECOND002", &scenario.bundle("two.tgz", "v2", ""));
    scenario.deploy(&second);
    scenario.run().await;
    let noops: Vec<bool> = service.acks().into_iter().map(|(_, noop)| noop).collect();
    assert_eq!(noops, vec![false, false, false, false, false, false, true]);
    assert_eq!(scenario.trace_lines()[3], "ApplicationStop d-SECOND002 v1");
    assert_eq!(scenario.trace_lines()[4], "BeforeInstall d-SECOND002 v2");
    assert_eq!(fs::read_to_string(scenario.dir.join("www/index.html")).unwrap(), "v2");
    let second_log = fs::read_to_string(root.join(GROUP).join("d-SECOND002/logs/scripts.log")).unwrap();
    assert!(second_log.contains("hook output for ApplicationStop"), "{second_log}");
    assert!(service.completions().iter().all(|(_, status, _)| status == "Succeeded"));
}

#[tokio::test]
async fn a_failing_hook_is_reported_with_its_log_tail() {
    let scenario = Scenario::new();
    let extra = "  ValidateService:\n    - location: scripts/check.sh\n";
    let bundle = scenario.bundle("b.tgz", "v1", extra);
    let spec = scenario.spec("d-FAILS0001", &bundle);
    // Add the failing script to the archive after the download.
    for event in ["DownloadBundle", "Install"] {
        scenario.agent.service.queue(&spec, event);
    }
    scenario.run().await;
    let archive = scenario.root().join(GROUP).join("d-FAILS0001/deployment-archive");
    write(&archive.join("scripts/check.sh"), "#!/bin/sh\necho checking\necho not healthy >&2\nexit 9\n");
    scenario.agent.service.calls.borrow_mut().clear();
    scenario.agent.service.queue(&spec, "ValidateService");
    scenario.run().await;
    let completions = scenario.agent.service.completions();
    let (_, status, diagnostics) = completions.last().unwrap();
    assert_eq!(status, "Failed");
    assert_eq!(diagnostics.error_code, 4);
    assert_eq!(diagnostics.script_name, "scripts/check.sh");
    assert_eq!(diagnostics.message, "Script at specified location: scripts/check.sh failed with exit code 9");
    assert!(
        diagnostics.log.starts_with("LifecycleEvent - ValidateService\nScript - scripts/check.sh\n"),
        "{}",
        diagnostics.log
    );
    assert!(diagnostics.log.contains("[stdout]checking\n") && diagnostics.log.contains("[stderr]not healthy\n"));
    assert_eq!(completions.len(), 1, "exactly one completion");
    assert!(tree(&scenario.root().join("ongoing-deployment")).is_empty());
}

#[tokio::test]
async fn acknowledgement_answers_decide_what_runs() {
    let scenario = Scenario::new();
    let spec = scenario.spec("d-ACKS00001", &scenario.bundle("b.tgz", "v1", ""));
    let service = &scenario.agent.service;

    // Succeeded: the server withdrew the command; nothing runs, nothing is completed.
    *service.ack_answer.borrow_mut() = Some("Succeeded".into());
    service.queue(&spec, "DownloadBundle");
    scenario.run().await;
    assert!(service.completions().is_empty());
    assert!(!scenario.root().join(GROUP).join("d-ACKS00001").exists());

    // Failed: a no-op command is completed as Succeeded, anything else dropped.
    *service.ack_answer.borrow_mut() = Some("Failed".into());
    service.queue(&spec, "ApplicationStop");
    service.queue(&spec, "DownloadBundle");
    scenario.run().await;
    let completions = service.completions();
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert!(completions[0].0.starts_with("hc-ApplicationStop"));
    assert_eq!(
        (completions[0].1.as_str(), completions[0].2.message.as_str()),
        ("Succeeded", "Succeeded: CompletedNoopCommand")
    );
    assert!(!scenario.root().join(GROUP).join("d-ACKS00001").exists());

    // An unknown command is acknowledged as a no-op, then failed.
    service.calls.borrow_mut().clear();
    *service.ack_answer.borrow_mut() = Some("InProgress".into());
    service.queue(&spec, "Frobnicate");
    scenario.run().await;
    assert!(service.acks().last().unwrap().1);
    let (_, status, diagnostics) = service.completions().pop().unwrap();
    assert_eq!(
        (status.as_str(), diagnostics.error_code, diagnostics.message.as_str()),
        ("Failed", 5, "Unsupported command type: Frobnicate.")
    );
}

#[tokio::test]
async fn unusable_specifications_fail_the_command_once_without_an_acknowledgement() {
    let scenario = Scenario::new();
    let service = &scenario.agent.service;
    let bundle = scenario.bundle("b.tgz", "v1", "");

    let garbage = service.queue(&scenario.spec("d-GARBAGE01", &bundle), "DownloadBundle");
    service
        .raw_payloads
        .borrow_mut()
        .insert(garbage.deployment_execution_id.clone(), "-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n".into());
    let mut incomplete = scenario.spec("d-INCOMPLE1", &bundle);
    incomplete.deployment_group_id.clear();
    service.queue(&incomplete, "DownloadBundle");
    let mut escaping = scenario.spec("arn:aws:codedeploy:us-east-1:1:deployment/..", &bundle);
    escaping.deployment_group_id = GROUP.into();
    service.queue(&escaping, "DownloadBundle");
    scenario.run().await;

    assert!(service.acks().is_empty());
    let messages: Vec<(String, i64, String)> =
        service.completions().into_iter().map(|(_, status, d)| (status, d.error_code, d.message)).collect();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|(status, code, _)| status == "Failed" && *code == 5));
    assert!(messages[0].2.contains("envelope was refused"), "{}", messages[0].2);
    assert_eq!(messages[1].2, "Deployment Spec has no DeploymentGroupId");
    assert!(messages[2].2.contains("cannot name a directory"), "{}", messages[2].2);
}

#[tokio::test]
async fn a_configured_ca_must_have_issued_the_signer() {
    let mut scenario = Scenario::new();
    let other = landfall_envelope::SigningIdentity::generate("someone else").unwrap();
    scenario.agent.spec_ca = Some(other.ca_certificate().clone());
    let spec = scenario.spec("d-CA0000001", &scenario.bundle("b.tgz", "v1", ""));
    scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.run().await;
    let (_, status, diagnostics) = scenario.agent.service.completions().pop().unwrap();
    assert_eq!(status, "Failed");
    assert!(diagnostics.message.contains("not issued by the trusted CA"), "{}", diagnostics.message);

    scenario.agent.spec_ca = Some(scenario.agent.service.identity.ca_certificate().clone());
    scenario.agent.service.calls.borrow_mut().clear();
    scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.run().await;
    assert_eq!(scenario.agent.service.completions().pop().unwrap().1, "Succeeded");
}

#[tokio::test]
async fn commands_for_another_host_are_ignored() {
    let scenario = Scenario::new();
    let spec = scenario.spec("d-OTHER0001", &scenario.bundle("b.tgz", "v1", ""));
    let mut command = scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.agent.service.commands.borrow_mut().clear();
    command.host_identifier = "arn:aws:iam::123456789012:user/landfall/other".into();
    scenario.agent.service.commands.borrow_mut().push_back(command);
    scenario.run().await;
    assert!(scenario.agent.service.calls().iter().all(|c| matches!(c, Call::Poll)));
}

#[tokio::test]
async fn an_unsafe_bundle_fails_the_download_and_writes_nothing_outside() {
    let scenario = Scenario::new();
    let path = scenario.dir.join("evil.tar");
    fs::write(
        &path,
        crate::support::tar_bytes(&[Entry::File("appspec.yml", "x", 0o644), Entry::File("../../../evil", "x", 0o644)]),
    )
    .unwrap();
    let spec = scenario.spec("d-EVIL00001", &path);
    scenario.agent.service.queue(&spec, "DownloadBundle");
    let before = tree(scenario.dir.path());
    scenario.run().await;
    let (_, status, diagnostics) = scenario.agent.service.completions().pop().unwrap();
    assert_eq!((status.as_str(), diagnostics.error_code), ("Failed", 5));
    assert!(
        diagnostics.message.starts_with("the bundle was refused: the entry ../../../evil has a '..' component"),
        "{}",
        diagnostics.message
    );
    let after: Vec<String> = tree(scenario.dir.path()).into_iter().filter(|p| !before.contains(p)).collect();
    assert!(after.iter().all(|p| p == "root" || p.starts_with("root/")), "{after:?}");
    assert!(!scenario.root().join(GROUP).join("d-EVIL00001/deployment-archive").exists());
}

#[tokio::test]
async fn a_local_directory_revision_is_copied() {
    let scenario = Scenario::new();
    let source = scenario.dir.join("checkout");
    write(
        &source.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\n",
            scenario.dir.join("www").display()
        ),
    );
    write(&source.join("site/index.html"), "from a directory");
    let mut spec = scenario.spec("d-DIRECTORY", &source);
    spec.revision.revision_type = "Local Directory".into();
    spec.revision.local_revision.as_mut().unwrap().bundle_type = "directory".into();
    scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.agent.service.queue(&spec, "Install");
    scenario.run().await;
    assert!(
        scenario.agent.service.completions().iter().all(|(_, s, _)| s == "Succeeded"),
        "{:?}",
        scenario.agent.service.completions()
    );
    assert_eq!(fs::read_to_string(scenario.dir.join("www/index.html")).unwrap(), "from a directory");
}

#[tokio::test]
async fn an_invalid_appspec_fails_install_with_every_problem() {
    let scenario = Scenario::new();
    let path = scenario.dir.join("bad.tar");
    let appspec = "version: \"0.0\"\nos: linux\nfiles:\n  - source: /\n";
    fs::write(&path, crate::support::tar_bytes(&[Entry::File("appspec.yml", appspec, 0o644)])).unwrap();
    let spec = scenario.spec("d-BADSPEC01", &path);
    scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.agent.service.queue(&spec, "Install");
    scenario.run().await;
    let (_, status, diagnostics) = scenario.agent.service.completions().pop().unwrap();
    assert_eq!((status.as_str(), diagnostics.error_code), ("Failed", 5));
    let lines: Vec<&str> = diagnostics.message.lines().collect();
    assert_eq!(lines.len(), 2, "{}", diagnostics.message);
    assert!(
        lines[0].starts_with("appspec.yml:1:10: error: ") && lines[1].starts_with("appspec.yml:4:5: error: "),
        "{}",
        diagnostics.message
    );

    let empty = scenario.dir.join("empty.tar");
    fs::write(&empty, crate::support::tar_bytes(&[Entry::File("readme", "x", 0o644)])).unwrap();
    let spec = scenario.spec("d-NOAPPSPEC", &empty);
    scenario.agent.service.queue(&spec, "DownloadBundle");
    scenario.agent.service.queue(&spec, "Install");
    scenario.run().await;
    let (_, _, diagnostics) = scenario.agent.service.completions().pop().unwrap();
    assert!(
        diagnostics.message.starts_with("The CodeDeploy agent did not find an AppSpec file"),
        "{}",
        diagnostics.message
    );
}

#[tokio::test]
async fn an_interrupted_command_is_failed_at_start() {
    let scenario = Scenario::new();
    let layout = Layout::new(scenario.root());
    recovery::start_tracking(&layout, "d-CRASHED01", "hc-running-when-it-died").unwrap();
    scenario.run().await;
    let calls = scenario.agent.service.calls();
    let Call::Complete { command, status, diagnostics } = &calls[0] else { panic!("{calls:?}") };
    assert_eq!((command.as_str(), status.as_str()), ("hc-running-when-it-died", "Failed"));
    assert_eq!(diagnostics.error_code, 7);
    assert_eq!(diagnostics.message, "Failed: Failing in-progress lifecycle event after an agent restart.");
    assert!(matches!(calls[1], Call::Poll));
    assert!(tree(&scenario.root().join("ongoing-deployment")).is_empty());
    // Reported once: a second start has nothing to report.
    scenario.agent.service.calls.borrow_mut().clear();
    scenario.run().await;
    assert!(scenario.agent.service.completions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_completion_is_retried_until_the_server_takes_it() {
    let scenario = Scenario::new();
    let spec = scenario.spec("d-RETRY0001", &scenario.bundle("b.tgz", "v1", ""));
    *scenario.agent.service.complete_failures.borrow_mut() = 2;
    scenario.agent.service.queue(&spec, "ApplicationStop");
    scenario.run().await;
    let completions = scenario.agent.service.completions();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].1, "Succeeded");
}

#[tokio::test]
async fn stopping_lets_the_running_command_finish_and_a_second_stop_abandons_it() {
    for abandon in [false, true] {
        let scenario = Scenario::new();
        let first = scenario.spec("d-STOPPING1", &scenario.bundle("b.tgz", "v1", ""));
        for event in ["DownloadBundle", "Install"] {
            scenario.agent.service.queue(&first, event);
        }
        scenario.run().await;
        let archive = scenario.root().join(GROUP).join("d-STOPPING1/deployment-archive");
        let started = scenario.dir.join("started");
        write(
            &archive.join("scripts/hook.sh"),
            &format!(
                "#!/bin/sh\ntouch {}\nsleep {}\necho finished\n",
                started.display(),
                if abandon { 1000 } else { 1 }
            ),
        );
        scenario.agent.service.calls.borrow_mut().clear();
        scenario.agent.service.queue(&first, "ApplicationStart");
        scenario.agent.service.queue(&first, "ValidateService");

        let (handle, stop) = Stop::channel();
        let stopper = async {
            while !started.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            handle.request(StopLevel::Finish);
            if abandon {
                tokio::time::sleep(Duration::from_millis(200)).await;
                handle.request(StopLevel::Abandon);
            }
        };
        let ((), ()) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(scenario.agent.run(stop), stopper) })
                .await
                .expect("the agent stopped");
        let completions = scenario.agent.service.completions();
        assert_eq!(completions.len(), 1, "no further command is taken: {completions:?}");
        let (command, status, diagnostics) = &completions[0];
        assert!(command.starts_with("hc-ApplicationStart"));
        if abandon {
            assert_eq!((status.as_str(), diagnostics.error_code), ("Failed", 5));
            assert!(diagnostics.message.contains("the agent was shut down"), "{}", diagnostics.message);
        } else {
            assert_eq!(status, "Succeeded");
        }
        assert!(tree(&scenario.root().join("ongoing-deployment")).is_empty());
        assert_eq!(scenario.agent.service.commands.borrow().len(), 1, "ValidateService stays queued");
    }
}

#[tokio::test]
async fn a_server_refusing_the_output_stream_does_not_hold_the_command_back() {
    let scenario = Scenario::new();
    let spec = scenario.spec("d-NOSTREAM1", &scenario.bundle("b.tgz", "v1", ""));
    for event in ["DownloadBundle", "Install"] {
        scenario.agent.service.queue(&spec, event);
    }
    scenario.run().await;
    let archive = scenario.root().join(GROUP).join("d-NOSTREAM1/deployment-archive");
    write(
        &archive.join("scripts/hook.sh"),
        "#!/bin/sh\nfor i in $(seq 1 3000); do echo \"line $i of plenty of output\"; done\n",
    );
    scenario.agent.service.calls.borrow_mut().clear();
    *scenario.agent.service.update_error.borrow_mut() =
        Some(ServiceError::Api { status: 400, exception: "ClientException".into(), message: "no".into() });
    let command = scenario.agent.service.queue(&spec, "ApplicationStart");
    scenario.run().await;
    assert_eq!(scenario.agent.service.streamed(&command.host_command_identifier).len(), 1, "tried once, then given up");
    let (_, status, _) = scenario.agent.service.completions().pop().unwrap();
    assert_eq!(status, "Succeeded");
    let log = fs::read_to_string(scenario.root().join(GROUP).join("d-NOSTREAM1/logs/scripts.log")).unwrap();
    assert!(log.contains("[stdout]line 3000 of plenty of output"));
}

#[test]
fn the_poll_back_off_follows_the_official_schedule() {
    let schedule: Vec<u64> = (1..=12).map(|n| landfall_agent::agent::backoff(n).as_secs()).collect();
    assert_eq!(schedule, vec![10, 13, 17, 21, 27, 34, 44, 56, 71, 90, 90, 90]);
}

/// Where each hook event reads its scripts from, before the current revision is downloaded.
#[test]
fn hook_events_read_the_revision_the_official_agent_reads() {
    let scenario = Scenario::new();
    let layout = Layout::new(scenario.root());
    let last = scenario.root().join(GROUP).join("d-LAST00001");
    let recent = scenario.root().join(GROUP).join("d-RECENT001");
    for dir in [&last, &recent] {
        fs::create_dir_all(dir.join("deployment-archive")).unwrap();
    }
    Layout::write_pointer(&layout.last_successful_file(GROUP), &last).unwrap();
    Layout::write_pointer(&layout.most_recent_file(GROUP), &recent).unwrap();
    let executor = &scenario.agent.executor;
    let mut spec = scenario.spec("d-CURRENT01", Path::new("/nowhere"));
    let source = |spec: &DeploymentSpec, event: &str| executor.hook_source(event, spec);

    for event in ["ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"] {
        assert_eq!(source(&spec, event), Some(last.clone()), "{event}");
    }
    for event in [
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ] {
        assert_eq!(source(&spec, event), None, "{event}");
    }
    // A blue/green rollback: block traffic from the most recent install, allow traffic from the
    // last successful one.
    spec.deployment_creator = Some("codeDeployRollback".into());
    spec.deployment_type = Some("BLUE_GREEN".into());
    assert_eq!(source(&spec, "ApplicationStop"), Some(last.clone()));
    assert_eq!(source(&spec, "BeforeBlockTraffic"), Some(recent.clone()));
    assert_eq!(source(&spec, "AfterAllowTraffic"), Some(last.clone()));
    assert_eq!(source(&spec, "ValidateService"), None);
    // Once the current revision is there, every event reads it.
    let current = scenario.root().join(GROUP).join("d-CURRENT01");
    fs::create_dir_all(current.join("deployment-archive")).unwrap();
    for event in ["ApplicationStop", "BeforeBlockTraffic", "AfterAllowTraffic", "ValidateService"] {
        assert_eq!(source(&spec, event), Some(current.clone()), "{event}");
    }
    // A pruned last successful revision: nothing to run.
    fs::remove_dir_all(&current).unwrap();
    fs::remove_dir_all(&last).unwrap();
    assert_eq!(source(&spec, "ApplicationStop"), None);
}
