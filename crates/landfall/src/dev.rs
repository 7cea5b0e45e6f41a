//! `landfall dev`: the first five minutes. A server, three local hosts each running its own
//! agent, the built-in router in front of them (in this process), the example application of
//! `examples/hello-landfall` deployed to them with traffic control and a live view, and the
//! commands to try next. Everything lives in the data directory; a second run reuses it.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use landfall_api::landfall::{RegisterInstanceInput, RegisterInstanceOutput, TARGET_PREFIX};
use landfall_api::shapes::Tag;
use landfall_client::bundle::{BundleFile, tar_gz};
use landfall_client::{Client, ClientError, ClientSettings, Exception, Overrides};
use landfall_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::process::Child;
use tokio::sync::Notify;

use crate::commands::{AgentFiles, Failure, shutdown_signal};

const APPLICATION: &str = "hello-landfall";
const GROUP: &str = "local";
const BUCKET: &str = "landfall-dev";
const TAG: &str = "landfall-dev";

/// The example application, built into the binary so `landfall dev` works from any directory.
const EXAMPLE: [(&str, &[u8], u32); 6] = [
    ("appspec.yml", include_bytes!("../../../examples/hello-landfall/appspec.yml"), 0o644),
    ("site/index.html", include_bytes!("../../../examples/hello-landfall/site/index.html"), 0o644),
    ("scripts/stop.sh", include_bytes!("../../../examples/hello-landfall/scripts/stop.sh"), 0o755),
    ("scripts/prepare.sh", include_bytes!("../../../examples/hello-landfall/scripts/prepare.sh"), 0o755),
    ("scripts/start.sh", include_bytes!("../../../examples/hello-landfall/scripts/start.sh"), 0o755),
    ("scripts/validate.sh", include_bytes!("../../../examples/hello-landfall/scripts/validate.sh"), 0o755),
];

/// One local host: its agent configuration and where its copy of the example lives.
struct DevHost {
    name: String,
    config: PathBuf,
    home: PathBuf,
    port: u16,
}

pub async fn run(config: ServerConfig, hosts: usize) -> Result<(), Failure> {
    let signals = shutdown_signal().map_err(Failure::failed)?;
    let server = Server::start(&config).await.map_err(Failure::failed)?;
    print!("{}", server.environment_lines());
    // The `landfall` commands the example suggests, from any directory.
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        println!("export PATH=\"{}:$PATH\"", dir.display());
    }
    let _ = std::io::stdout().flush();
    let endpoint = server.endpoint().to_owned();
    let credentials = server.credentials_file().to_owned();
    let stop_server = Arc::new(Notify::new());
    let stopping = stop_server.clone();
    let serving = tokio::spawn(server.run(async move { stopping.notified().await }));

    let data_dir = config.data_dir.canonicalize().map_err(|e| Failure::failed(anyhow!(e)))?;
    println!("# logs: {}", data_dir.join("landfall.log").display());
    let mut agents = Vec::new();
    let mut router_tasks = Vec::new();
    let outcome = async {
        let client = client_for(&endpoint, &credentials)?;
        create_example(&client).await?;
        let mut ports = Ports::load(&data_dir);
        let hosts = local_hosts(&client, &endpoint, &data_dir, hosts, &mut ports).await?;
        for host in &hosts {
            agents.push(start_agent(host, &data_dir)?);
        }
        println!("# {} local hosts, each with its own agent: {}", hosts.len(), names(&hosts));
        let (router, tasks) = start_router(&client, &endpoint, &credentials, &hosts, &mut ports).await?;
        ports.save(&data_dir);
        router_tasks = tasks;
        println!("# the example behind landfall router (target group {APPLICATION}): http://{router}/");
        println!("# the web console: {endpoint}/console (sign in with the key in {})", credentials.display());
        deploy_example(&client, &hosts).await
    }
    .await;
    if let Err(error) = &outcome {
        eprintln!("landfall dev: {error:#}");
    }
    println!("# Landfall is running; Ctrl-C stops it (and the local hosts).");
    let _ = std::io::stdout().flush();
    signals.await;
    for agent in &mut agents {
        stop_child(agent).await;
    }
    // The router's long poll would hold the server's graceful shutdown open.
    for task in router_tasks {
        task.abort();
    }
    stop_sites(&data_dir);
    stop_server.notify_one();
    serving.await.map_err(|e| Failure::failed(anyhow!(e)))?.map_err(Failure::failed)?;
    outcome.map_err(Failure::failed)
}

fn names(hosts: &[DevHost]) -> String {
    hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn client_for(endpoint: &str, credentials: &Path) -> anyhow::Result<Client> {
    let vars: HashMap<String, String> = [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
        ("AWS_PROFILE", landfall_server::PROFILE.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Client::new(ClientSettings::resolve(&Overrides::default(), &vars)?))
}

async fn call(client: &Client, operation: &str, input: Value) -> Result<Value, ClientError> {
    client.call(&format!("CodeDeploy_20141006.{operation}"), &input).await
}

/// The example application and its deployment group, unless an earlier run made them.
async fn create_example(client: &Client) -> anyhow::Result<()> {
    let app = json!({"applicationName": APPLICATION, "computePlatform": "Server"});
    let group = json!({
        "applicationName": APPLICATION,
        "deploymentGroupName": GROUP,
        "serviceRoleArn": "arn:aws:iam::000000000000:role/landfall-dev",
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "onPremisesInstanceTagFilters": [{"Key": TAG, "Type": "KEY_ONLY"}],
        // Each host leaves the router's rotation while it is redeployed.
        "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": APPLICATION}]},
        "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE"]},
    });
    for (operation, input) in [("CreateApplication", app), ("CreateDeploymentGroup", group)] {
        match call(client, operation, input).await {
            Ok(_) => {}
            Err(ClientError::Api {
                exception: Some(Exception::ApplicationAlreadyExists | Exception::DeploymentGroupAlreadyExists),
                ..
            }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// The local hosts: registered (once) with their agent configuration under the data directory.
async fn local_hosts(
    client: &Client,
    endpoint: &str,
    data_dir: &Path,
    count: usize,
    ports: &mut Ports,
) -> anyhow::Result<Vec<DevHost>> {
    let mut hosts = Vec::with_capacity(count);
    for index in 1..=count {
        let name = format!("dev-{index}");
        let dir = data_dir.join("hosts").join(&name);
        let config = dir.join("codedeployagent.yml");
        if !config.exists() {
            let input = RegisterInstanceInput {
                instance_name: Some(name.clone()),
                tags: Some(vec![Tag { key: Some(TAG.into()), value: Some(name.clone()) }]),
            };
            let registered: RegisterInstanceOutput = client
                .call(&format!("{TARGET_PREFIX}.RegisterInstance"), &input)
                .await
                .with_context(|| format!("registering {name}"))?;
            let files = AgentFiles {
                endpoint: endpoint.to_owned(),
                registration: &registered,
                root_dir: &dir.join("deployment-root"),
                log_dir: &dir.join("log"),
            };
            files.write(&dir)?;
        } else {
            point_at(&config, endpoint)?;
        }
        let home = dir.join("site");
        std::fs::create_dir_all(&home)?;
        let port = ports.pick(&name, ROUTER_PORT + index as u16)?;
        hosts.push(DevHost { name, config, home, port });
    }
    Ok(hosts)
}

/// Points an earlier run's agent configuration at this run's server (its port may differ).
fn point_at(config: &Path, endpoint: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let pointed: Vec<String> = text
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((key @ (":deploy_control_endpoint" | ":s3_endpoint_override"), _)) => format!("{key}: '{endpoint}'"),
            _ => line.to_owned(),
        })
        .collect();
    std::fs::write(config, pointed.join("\n") + "\n").with_context(|| format!("writing {}", config.display()))
}

/// The example's target group (a host's port may change between runs, so they are registered
/// again each time), and the built-in router serving it in this process.
async fn start_router(
    client: &Client,
    endpoint: &str,
    credentials: &Path,
    hosts: &[DevHost],
    ports: &mut Ports,
) -> anyhow::Result<(std::net::SocketAddr, Vec<tokio::task::JoinHandle<()>>)> {
    let target = |op: &str| format!("{TARGET_PREFIX}.{op}");
    let group = json!({"name": APPLICATION, "healthCheck": {"path": "/", "intervalSeconds": 1, "timeoutSeconds": 1,
                                                             "healthyThreshold": 1, "unhealthyThreshold": 2},
                       "deregistrationDelaySeconds": 2});
    match client.call::<_, Value>(&target("CreateTargetGroup"), &group).await {
        Ok(_) => {}
        Err(ClientError::Api { exception: Some(Exception::TargetGroupAlreadyExists), .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let targets: Vec<Value> = hosts
        .iter()
        .map(|host| json!({"instanceName": host.name, "address": format!("127.0.0.1:{}", host.port)}))
        .collect();
    client.call::<_, Value>(&target("RegisterTargets"), &json!({"name": APPLICATION, "targets": targets})).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", ports.pick("router", ROUTER_PORT)?)).await?;
    let address = listener.local_addr()?;
    let builtin = landfall_router::builtin::Builtin::new();
    let limits = landfall_listener::ConnectionLimits::for_this_process();
    let proxy = tokio::spawn(Arc::clone(&builtin).serve(listener, limits));
    // The administrator key may act as a router.
    let api = client_for(endpoint, credentials)?;
    let follow = tokio::spawn(async move {
        let _ = landfall_router::run(APPLICATION, api, builtin, std::future::pending::<()>()).await;
    });
    Ok((address, vec![proxy, follow]))
}

/// The router's port on a first run, the hosts' the ones after it, when they are free.
const ROUTER_PORT: u16 = 7080;

/// The ports of the router and the hosts, kept in `DATA_DIR/dev-ports` so that their URLs stay
/// the same from run to run.
struct Ports(HashMap<String, u16>);

impl Ports {
    fn load(data_dir: &Path) -> Ports {
        let text = std::fs::read_to_string(data_dir.join("dev-ports")).unwrap_or_default();
        let ports = text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter_map(|(name, port)| Some((name.to_owned(), port.parse().ok()?)))
            .collect();
        Ports(ports)
    }

    /// The port `name` had last time, else `preferred`, else any, whichever is free now.
    fn pick(&mut self, name: &str, preferred: u16) -> anyhow::Result<u16> {
        let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        let port = match self.0.get(name).copied().into_iter().chain([preferred]).find(|port| free(*port)) {
            Some(port) => port,
            None => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        };
        self.0.insert(name.to_owned(), port);
        Ok(port)
    }

    fn save(&self, data_dir: &Path) {
        let mut lines: Vec<String> = self.0.iter().map(|(name, port)| format!("{name} {port}")).collect();
        lines.sort();
        let _ = std::fs::write(data_dir.join("dev-ports"), lines.join("\n") + "\n");
    }
}

/// Starts a host's agent: this binary's `agent` subcommand, with the example's per-host settings
/// in its environment (hooks inherit the agent's environment).
fn start_agent(host: &DevHost, data_dir: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(data_dir.join("hosts").join(&host.name).join("agent.log"))?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("agent")
        .arg("--config")
        .arg(&host.config)
        .env("LANDFALL_EXAMPLE_DIR", &host.home)
        .env("LANDFALL_EXAMPLE_PORT", host.port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the agent of {}", host.name))?;
    Ok(child)
}

async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Stops the example's web servers the hosts started.
fn stop_sites(data_dir: &Path) {
    let Ok(hosts) = std::fs::read_dir(data_dir.join("hosts")) else { return };
    for host in hosts.flatten() {
        let pidfile = host.path().join("site").join("server.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|text| text.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            let _ = std::fs::remove_file(pidfile);
        }
    }
}

/// Bundles the example, uploads it to the server's bundle store, deploys it, and shows the
/// deployment as it goes.
async fn deploy_example(client: &Client, hosts: &[DevHost]) -> anyhow::Result<()> {
    let files: Vec<BundleFile<'_>> =
        EXAMPLE.iter().map(|(path, contents, mode)| BundleFile { path, contents, mode: *mode }).collect();
    let bundle = tar_gz(&files)?;
    client.create_bucket(BUCKET).await?;
    let key = format!("{APPLICATION}/{}.tgz", &landfall_sigv4::sha256_hex(&bundle)[..16]);
    let etag = client.put_object(BUCKET, &key, bundle).await?;
    let created = call(
        client,
        "CreateDeployment",
        json!({"applicationName": APPLICATION, "deploymentGroupName": GROUP,
               "description": "landfall dev: the example application",
               "revision": {"revisionType": "S3",
                            "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz", "eTag": etag}}}),
    )
    .await?;
    let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
    println!("# deploying {APPLICATION} as {id} (one host at a time):");
    let outcome = landfall_cli::deploy::follow(client, &landfall_cli::Output::detect(false), &id).await?;
    if outcome == landfall_cli::Outcome::Succeeded {
        for host in hosts {
            println!("#   {}: http://127.0.0.1:{}/", host.name, host.port);
        }
    }
    println!("# try next (in another shell, after the four export lines above):");
    println!("#   aws deploy get-deployment --deployment-id {id}");
    println!("#   aws deploy list-deployment-targets --deployment-id {id}");
    println!("#   aws deploy list-on-premises-instances");
    println!("#   aws deploy create-deployment --application-name {APPLICATION} --deployment-group-name {GROUP} \\");
    println!("#       --s3-location bucket={BUCKET},key={key},bundleType=tgz");
    let _ = std::io::stdout().flush();
    Ok(())
}
