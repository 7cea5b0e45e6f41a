//! The driver in process, on a clock the test moves: a server on a SQLite store in a temporary
//! directory, its API called through the handlers, its hosts played through the store's agent
//! calls, and `driver::reconcile` run by hand (no background loops). What the end-to-end suite
//! shows with real agents and minutes of waiting, these show in milliseconds: the deployment
//! loop's timeouts, hand-outs and endings as the driver writes them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use landfall_api::landfall::Role;
use landfall_api::shapes::{Diagnostics, LifecycleErrorCode, TargetStatus};
use landfall_api::{Operation, Timestamp};
use landfall_server::api::common::Ctx;
use landfall_server::auth::Caller;
use landfall_server::aws::AwsSettings;
use landfall_server::limits::Limits;
use landfall_server::state::{AppState, Clock};
use landfall_server::{MonitoringConfig, Server, ServerConfig, StoreLocation, Timeouts, driver};
use landfall_store::{CommandState, HostCommandRecord};
use serde_json::{Value, json};

/// A clock that moves only when told.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

struct Harness {
    server: Server,
    clock: Arc<ManualClock>,
    caller: Caller,
    dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = std::env::temp_dir().join(format!("landfall-driver-{}", uuid::Uuid::new_v4().simple()));
        let config = ServerConfig {
            data_dir: dir.join("data"),
            store: StoreLocation::DataDir,
            lease_ttl: landfall_server::replicas::DEFAULT_LEASE_TTL,
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            region: "us-east-1".into(),
            timeouts: Timeouts::default(),
            sources: Default::default(),
            monitoring: MonitoringConfig::default(),
            zone_tag: landfall_server::DEFAULT_ZONE_TAG.into(),
            max_deployment_instances: 100,
            termination_timeout: std::time::Duration::from_secs(600),
            platforms: AwsSettings::new("us-east-1", None, None),
            limits: Limits::for_this_process(),
            trusted_proxies: Default::default(),
            agent_binary: None,
        };
        let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000_000)));
        let server = Server::start_with_clock(&config, clock.clone()).await.expect("the server starts");
        let caller = Caller { access_key_id: "AKIATEST".into(), role: Role::Admin, instance_name: None };
        Harness { server, clock, caller, dir }
    }

    fn state(&self) -> &Arc<AppState> {
        self.server.state()
    }

    fn advance(&self, millis: i64) {
        self.clock.0.fetch_add(millis, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Calls an API operation through its handler, as an administrator.
    async fn call(&self, operation: Operation, input: Value) -> Value {
        let ctx = Ctx { state: self.state(), caller: &self.caller, now: self.now() };
        let body = serde_json::to_vec(&input).unwrap();
        let output = landfall_server::api::codedeploy(&ctx, operation, &body)
            .await
            .unwrap_or_else(|error| panic!("{operation:?} failed: {error}"));
        serde_json::from_slice(&output).unwrap_or(Value::Null)
    }

    /// `hosts` registered with role=web, an application and group selecting them, and a
    /// deployment (with `config`) created; returns its id.
    async fn deploying(&self, hosts: &[&str], config: &str) -> String {
        for host in hosts {
            self.call(
                Operation::RegisterOnPremisesInstance,
                json!({"instanceName": host, "iamUserArn": format!("arn:aws:iam::111111111111:user/{host}")}),
            )
            .await;
        }
        self.call(
            Operation::AddTagsToOnPremisesInstances,
            json!({"instanceNames": hosts, "tags": [{"Key": "role", "Value": "web"}]}),
        )
        .await;
        self.call(Operation::CreateApplication, json!({"applicationName": "app"})).await;
        self.call(
            Operation::CreateDeploymentGroup,
            json!({"applicationName": "app", "deploymentGroupName": "web",
                   "serviceRoleArn": "arn:aws:iam::111111111111:role/deployer",
                   "onPremisesInstanceTagFilters": [{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}]}),
        )
        .await;
        let created = self
            .call(
                Operation::CreateDeployment,
                json!({"applicationName": "app", "deploymentGroupName": "web", "deploymentConfigName": config,
                       "revision": {"revisionType": "S3",
                                    "s3Location": {"bucket": "releases", "key": "app.tgz", "bundleType": "tgz"}}}),
            )
            .await;
        created["deploymentId"].as_str().unwrap().to_owned()
    }

    async fn reconcile(&self, deployment_id: &str) {
        driver::reconcile(self.state(), deployment_id).await.expect("the deployment advances");
    }

    async fn deployment(&self, deployment_id: &str) -> Value {
        self.call(Operation::GetDeployment, json!({"deploymentId": deployment_id})).await["deploymentInfo"].clone()
    }

    async fn target(&self, deployment_id: &str, host: &str) -> Value {
        let answer =
            self.call(Operation::GetDeploymentTarget, json!({"deploymentId": deployment_id, "targetId": host})).await;
        answer["deploymentTarget"]["instanceTarget"].clone()
    }

    /// What `host`'s agent would get from a poll now.
    async fn poll(&self, host: &str) -> Option<HostCommandRecord> {
        self.state().store.dispatch_command(host, self.now()).await.unwrap()
    }

    /// The host's agent acknowledges and completes a command.
    async fn run(&self, command: &HostCommandRecord, succeeded: bool) {
        let store = &self.state().store;
        store.acknowledge_command(&command.id, &command.target_id, self.now()).await.unwrap();
        let diagnostics = Diagnostics {
            error_code: Some(if succeeded { LifecycleErrorCode::Success } else { LifecycleErrorCode::ScriptFailed }),
            script_name: Some(String::new()),
            message: Some(if succeeded { "Succeeded".into() } else { "Script failed".into() }),
            log_tail: Some(String::new()),
        };
        store.complete_command(&command.id, &command.target_id, succeeded, &diagnostics, self.now()).await.unwrap();
    }
}

impl Harness {
    /// The hosts run whatever they are handed (failing `failing`'s event on its host), the
    /// deployment reconciled before each round, until nothing more is handed out; what ran, in
    /// order (a rollback's events included: an agent takes whatever is queued for it).
    async fn hosts_run(&self, id: &str, hosts: &[&str], failing: Option<(&str, &str)>) -> Vec<(String, String)> {
        let mut ran = Vec::new();
        for _ in 0..60 {
            self.reconcile(id).await;
            let mut any = false;
            for host in hosts {
                if let Some(command) = self.poll(host).await {
                    ran.push(((*host).to_owned(), command.lifecycle_event.clone()));
                    self.advance(100);
                    let fails = failing == Some((host, command.lifecycle_event.as_str()));
                    self.run(&command, !fails).await;
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
        self.reconcile(id).await;
        ran
    }

    async fn create_deployment(&self, key: &str) -> String {
        let created = self
            .call(
                Operation::CreateDeployment,
                json!({"applicationName": "app", "deploymentGroupName": "web",
                       "revision": {"revisionType": "S3",
                                    "s3Location": {"bucket": "releases", "key": key, "bundleType": "tgz"}},
                       "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE"]}}),
            )
            .await;
        created["deploymentId"].as_str().unwrap().to_owned()
    }
}

fn status(target: &Value) -> &str {
    target["status"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn hosts_that_run_every_event_take_the_deployment_to_success_one_at_a_time() {
    let harness = Harness::start().await;
    let id = harness.deploying(&["web-1", "web-2"], "CodeDeployDefault.OneAtATime").await;
    harness.reconcile(&id).await;
    assert_eq!(harness.deployment(&id).await["status"], "InProgress");
    let ran = harness.hosts_run(&id, &["web-1", "web-2"], None).await;
    let info = harness.deployment(&id).await;
    assert_eq!(info["status"], "Succeeded", "{info}");
    // One at a time: web-2 gets nothing until web-1 is done.
    let first_of_web_2 = ran.iter().position(|(host, _)| host == "web-2").unwrap();
    assert!(ran[..first_of_web_2].iter().all(|(host, _)| host == "web-1"), "{ran:?}");
    assert_eq!(ran.iter().filter(|(host, _)| host == "web-1").count(), ran.len() / 2);
    // The group remembers the revision, and each host what it runs.
    let group = harness
        .call(Operation::GetDeploymentGroup, json!({"applicationName": "app", "deploymentGroupName": "web"}))
        .await;
    assert_eq!(group["deploymentGroupInfo"]["targetRevision"]["s3Location"]["key"], "app.tgz");
    let history = harness
        .state()
        .store
        .instance_history(group["deploymentGroupInfo"]["deploymentGroupId"].as_str().unwrap())
        .await
        .unwrap();
    assert!(history.iter().all(|h| h.healthy && h.revision_key.is_some()) && history.len() == 2, "{history:?}");
}

#[tokio::test]
async fn an_event_no_agent_picks_up_fails_its_host_once_the_pickup_time_is_over() {
    let harness = Harness::start().await;
    let id = harness.deploying(&["web-1"], "CodeDeployDefault.AllAtOnce").await;
    harness.reconcile(&id).await;
    // A minute short of the five CodeDeploy allows: still waiting.
    harness.advance(Timeouts::default().pickup_ms - 60_000);
    harness.reconcile(&id).await;
    assert_eq!(status(&harness.target(&id, "web-1").await), "InProgress");
    harness.advance(60_001);
    harness.reconcile(&id).await;
    let target = harness.target(&id, "web-1").await;
    assert_eq!(status(&target), "Failed", "{target}");
    let first = &target["lifecycleEvents"][0];
    assert_eq!(first["status"], "Failed");
    assert!(first["diagnostics"]["message"].as_str().unwrap().contains("did not"), "{first}");
    assert_eq!(harness.deployment(&id).await["status"], "Failed");
    // Nothing is left for the host to take.
    assert!(harness.poll("web-1").await.is_none());
}

#[tokio::test]
async fn a_hand_out_never_acknowledged_is_queued_again_and_then_handed_out_once_more() {
    let harness = Harness::start().await;
    let id = harness.deploying(&["web-1"], "CodeDeployDefault.AllAtOnce").await;
    harness.reconcile(&id).await;
    let lost = harness.poll("web-1").await.expect("a command");
    harness.advance(Timeouts::default().ack_ms + 1);
    harness.reconcile(&id).await;
    let requeued = harness.state().store.command(&lost.id).await.unwrap().unwrap();
    assert_eq!((requeued.state, requeued.dispatched_at), (CommandState::Queued, None));
    let again = harness.poll("web-1").await.expect("the same command again");
    assert_eq!(again.id, lost.id);
    // Acknowledged this time: no longer handed out again, however long it runs.
    harness.state().store.acknowledge_command(&again.id, &again.target_id, harness.now()).await.unwrap();
    harness.advance(Timeouts::default().ack_ms * 10);
    harness.reconcile(&id).await;
    let running = harness.state().store.command(&again.id).await.unwrap().unwrap();
    assert_eq!(running.state, CommandState::Dispatched);
    assert_eq!(status(&harness.target(&id, "web-1").await), TargetStatus::InProgress.as_str());
}

#[tokio::test]
async fn a_failed_deployment_is_rolled_back_to_the_last_good_revision_on_the_hosts_it_reached() {
    let harness = Harness::start().await;
    let first = harness.deploying(&["web-1", "web-2", "web-3"], "CodeDeployDefault.OneAtATime").await;
    harness.reconcile(&first).await;
    harness.hosts_run(&first, &["web-1", "web-2", "web-3"], None).await;
    assert_eq!(harness.deployment(&first).await["status"], "Succeeded");

    // v2 fails on web-2: web-3 is never reached, and the rollback redeploys app.tgz to the two.
    let second = harness.create_deployment("v2.tgz").await;
    harness.reconcile(&second).await;
    harness.hosts_run(&second, &["web-1", "web-2", "web-3"], Some(("web-2", "AfterInstall"))).await;
    let failed = harness.deployment(&second).await;
    assert_eq!(failed["status"], "Failed", "{failed}");
    let rollback = failed["rollbackInfo"]["rollbackDeploymentId"].as_str().expect("a rollback").to_owned();
    let info = harness.deployment(&rollback).await;
    assert_eq!(
        (info["creator"].as_str(), info["revision"]["s3Location"]["key"].as_str()),
        (Some("codeDeployRollback"), Some("app.tgz"))
    );
    let targets = harness.call(Operation::ListDeploymentTargets, json!({"deploymentId": rollback})).await;
    let mut reached: Vec<&str> = targets["targetIds"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    reached.sort();
    assert_eq!(reached, ["web-1", "web-2"]);
    harness.hosts_run(&rollback, &["web-1", "web-2", "web-3"], None).await;
    assert_eq!(harness.deployment(&rollback).await["status"], "Succeeded");
    let events = harness.state().store.deployment_events(&rollback, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.related_deployment_id.as_deref() == Some(second.as_str())), "{events:?}");
}
