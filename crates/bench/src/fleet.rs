//! `landfall-bench fleet`: how fast a deployment crosses a fleet, measured with a protocol-level
//! host simulator. Each simulated host is a registered instance with its own agent key that
//! speaks the real agent protocol over loopback (long-poll PollHostCommand,
//! GetDeploymentSpecification, PutHostCommandAcknowledgement, PutHostCommandComplete) and runs
//! every lifecycle event as a no-op. What is measured is therefore the control plane: the time
//! from CreateDeployment to Succeeded, and the servers' CPU time and memory.
//!
//! `landfall-bench fleet --server BIN [--hosts 200] [--rounds 3] [--config CodeDeployDefault.AllAtOnce]
//!  [--minimum-healthy 75% | --minimum-healthy 10] [--hook-ms 1000]
//!  [--store postgres://... --replicas 3 [--kill-owner]] [--no-idle]`
//!
//! `--minimum-healthy` deploys with a configuration of that many healthy hosts (a share of the
//! fleet, or a count) instead of `--config`; `--hook-ms` makes each of the five hook events
//! (not DownloadBundle, not Install) take that long on every host, and the bench then prints
//! the ideal makespan of a rolling deployment (batches x five hooks) beside the measured one. A
//! hook's time in the ideal is what the hosts measured around their sleeps (a timer oversleeps
//! by up to a millisecond, which at `--hook-ms 1` is the simulator's time, not the server's).
//!
//! With `--store`, the servers are replicas on a fresh database made on that PostgreSQL server
//! (the URL names a database the user may create databases from), the hosts are spread over
//! them, and the database's transactions per lifecycle event are counted. `--kill-owner` kills
//! the replica that owns the last round's deployment once it is under way and reports how long
//! the others took to take it over (the hosts it served reconnect to the others).
//!
//! Each simulated host holds a connection, and a process may open 20,000 files here: past
//! `HOSTS_PER_PROCESS` hosts, the rest are simulated by helper processes of the bench's own
//! binary (`landfall-bench fleet-hosts`, given the hosts' keys on its standard input).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use landfall_client::{Client, ClientSettings, Overrides};
use landfall_sigv4::{Credentials, SigningParams, sign};
use landfall_store::postgres::ScratchDatabase;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::{
    ServerProcess, codedeploy, cpu_seconds, create_app_and_group, start_server_with, status_kib, wait_for_end,
};

/// How many hosts one process simulates: each holds a connection (a file), and a process may
/// open 20,000 files here.
const HOSTS_PER_PROCESS: usize = 15_000;

struct Options {
    server: PathBuf,
    hosts: usize,
    rounds: usize,
    config: String,
    /// A rolling configuration made for the run: "75%" of the fleet or a count of hosts healthy.
    minimum_healthy: Option<String>,
    /// How long each hook event takes on a simulated host.
    hook: Duration,
    store: Option<String>,
    replicas: usize,
    kill_owner: bool,
    /// Measure idle CPU before and after the deployments (off for quick profiling runs).
    idle: bool,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        server: PathBuf::new(),
        hosts: 200,
        rounds: 3,
        config: "CodeDeployDefault.AllAtOnce".into(),
        minimum_healthy: None,
        hook: Duration::ZERO,
        store: None,
        replicas: 1,
        kill_owner: false,
        idle: true,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--hosts" => options.hosts = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse()?,
            "--config" => options.config = value()?,
            "--minimum-healthy" => options.minimum_healthy = Some(value()?),
            "--hook-ms" => options.hook = Duration::from_millis(value()?.parse()?),
            "--store" => options.store = Some(value()?),
            "--replicas" => options.replicas = value()?.parse()?,
            "--kill-owner" => options.kill_owner = true,
            "--no-idle" => options.idle = false,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() || options.replicas == 0 {
        bail!(
            "usage: landfall-bench fleet --server PATH [--hosts N] [--rounds N] [--config NAME | --minimum-healthy N[%]] [--hook-ms N] [--store postgres://... --replicas N [--kill-owner]] [--no-idle]"
        );
    }
    if options.store.is_none() && (options.replicas > 1 || options.kill_owner) {
        bail!("--replicas and --kill-owner need --store postgres://...");
    }
    Ok(options)
}

/// The time the simulated hosts of this process actually spent in their hook events: a timer
/// sleeps its time and up to a millisecond more, which at 1 ms hooks is not the server's doing.
static HOOK_TIME: HookTime = HookTime { nanos: AtomicU64::new(0), count: AtomicU64::new(0) };

struct HookTime {
    nanos: AtomicU64,
    count: AtomicU64,
}

impl HookTime {
    fn record(&self, took: Duration) {
        self.nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The mean of the hook events recorded since the last call, and forgets them.
    fn take_mean(&self) -> Option<Duration> {
        let (nanos, count) = (self.nanos.swap(0, Ordering::Relaxed), self.count.swap(0, Ordering::Relaxed));
        (count > 0).then(|| Duration::from_nanos(nanos / count))
    }
}

/// One simulated host: its identity and a keep-alive connection to one of the servers.
struct SimHost {
    arn: String,
    credentials: Credentials,
    region: String,
    /// Every server's endpoint; the host talks to `endpoints[current]` and moves on to the next
    /// when that one stops answering, as agents behind a load balancer do.
    endpoints: Vec<String>,
    current: usize,
    uri: Uri,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl SimHost {
    async fn connect(
        endpoints: Vec<String>,
        current: usize,
        arn: String,
        credentials: Credentials,
        region: String,
    ) -> anyhow::Result<SimHost> {
        let (uri, sender) = open(&endpoints[current]).await?;
        Ok(SimHost { arn, credentials, region, endpoints, current, uri, sender })
    }

    /// `call`, again on the next server while the connection fails or the server errs.
    async fn call_retrying(&mut self, operation: &str, body: Value) -> anyhow::Result<Value> {
        let mut failures = 0;
        loop {
            match self.call(operation, body.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(_) if failures < 50 => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.current = (self.current + 1) % self.endpoints.len();
                    match open(&self.endpoints[self.current]).await {
                        Ok((uri, sender)) => (self.uri, self.sender) = (uri, sender),
                        Err(_) => continue,
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn call(&mut self, operation: &str, body: Value) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(&body)?;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        headers
            .insert("x-amz-target", HeaderValue::from_str(&format!("CodeDeployCommandService_v20141006.{operation}"))?);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        let params = SigningParams {
            credentials: &self.credentials,
            region: &self.region,
            service: "codedeploy-commands",
            time: now,
        };
        sign(&Method::POST, &self.uri, &mut headers, &body, &params).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut request = Request::post(self.uri.clone()).body(Full::new(Bytes::from(body)))?;
        *request.headers_mut() = headers;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{operation} answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Runs every command it is given, forever: a hook event takes `hook`, the agent's own
    /// events (DownloadBundle, Install) nothing.
    async fn serve(mut self, hook: Duration) -> anyhow::Result<()> {
        loop {
            let polled = self.call_retrying("PollHostCommand", json!({"HostIdentifier": self.arn})).await?;
            let Some(command) = polled.get("HostCommand").filter(|c| !c.is_null()) else { continue };
            let id = command["HostCommandIdentifier"].as_str().unwrap_or_default().to_owned();
            let agent_event = matches!(command["CommandName"].as_str(), Some("DownloadBundle" | "Install"));
            let execution = command["DeploymentExecutionId"].as_str().unwrap_or_default().to_owned();
            self.call_retrying(
                "GetDeploymentSpecification",
                json!({"DeploymentExecutionId": execution, "HostIdentifier": self.arn}),
            )
            .await?;
            let ack = json!({"HostCommandIdentifier": id, "Diagnostics": {"Format": "JSON", "Payload": "{\"IsCommandNoop\":true}"}});
            self.call_retrying("PutHostCommandAcknowledgement", ack).await?;
            if !agent_event && !hook.is_zero() {
                let slept = Instant::now();
                tokio::time::sleep(hook).await;
                HOOK_TIME.record(slept.elapsed());
            }
            let payload = json!({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""}).to_string();
            let complete = json!({"HostCommandIdentifier": id, "CommandStatus": "Succeeded",
                                  "Diagnostics": {"Format": "JSON", "Payload": payload}});
            self.call_retrying("PutHostCommandComplete", complete).await?;
        }
    }
}

/// A keep-alive connection to `endpoint`.
async fn open(endpoint: &str) -> anyhow::Result<(Uri, hyper::client::conn::http1::SendRequest<Full<Bytes>>)> {
    let uri: Uri = format!("{endpoint}/").parse()?;
    let address = format!("{}:{}", uri.host().context("no host")?, uri.port_u16().context("no port")?);
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok((uri, sender))
}

/// The servers under test: one on its own SQLite store, or replicas on a fresh PostgreSQL
/// database (dropped at the end).
struct Servers {
    processes: Vec<ServerProcess>,
    /// Killed replicas, kept for their data directories (the first one's holds the credentials).
    killed: Vec<ServerProcess>,
    database: Option<ScratchDatabase>,
}

impl Servers {
    async fn start(options: &Options) -> anyhow::Result<Servers> {
        let limit = options.hosts.max(1000).to_string();
        // Every host holds a connection; the default limit (half the open files) may be fewer.
        let connections = (options.hosts + 1000).to_string();
        let Some(url) = &options.store else {
            let args = ["--max-deployment-instances", &limit, "--max-connections", &connections];
            let (server, _) = start_server_with(&options.server, &args, &[], &[]).await?;
            return Ok(Servers { processes: vec![server], killed: Vec::new(), database: None });
        };
        let database =
            ScratchDatabase::create(url, "landfall_bench").await.context("creating a database on --store")?;
        let database_url = database.url.clone();
        // The hosts' bundles are never downloaded: the external store only has to be named.
        let environment = [
            ("LANDFALL_EXTERNAL_S3_ENDPOINT", "http://127.0.0.1:9"),
            ("LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID", "unused"),
            ("LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY", "unused"),
        ];
        let args =
            ["--store", database_url.as_str(), "--max-deployment-instances", &limit, "--max-connections", &connections];
        let (first, _) = start_server_with(&options.server, &args, &environment, &[]).await?;
        let credentials = first.environment.get("AWS_SHARED_CREDENTIALS_FILE").cloned().unwrap_or_default();
        let mut processes = vec![first];
        for _ in 1..options.replicas {
            let overrides = [("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str())];
            processes.push(start_server_with(&options.server, &args, &environment, &overrides).await?.0);
        }
        Ok(Servers { processes, killed: Vec::new(), database: Some(database) })
    }

    fn endpoints(&self) -> Vec<String> {
        self.processes.iter().map(|p| p.environment.get("AWS_ENDPOINT_URL").cloned().unwrap_or_default()).collect()
    }

    fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|p| p.child.id()).collect()
    }

    /// Transactions in the store's database so far, all and those that wrote (None for SQLite).
    /// PostgreSQL publishes its statistics within a second or so: read after a pause.
    async fn transactions(&self) -> anyhow::Result<Option<(i64, i64)>> {
        let Some(database) = &self.database else { return Ok(None) };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(Some((database.transactions().await?, database.write_transactions().await?)))
    }

    /// The listening address of the lease holder of a deployment, once there is one.
    async fn owner(&self, deployment_id: &str) -> anyhow::Result<Option<String>> {
        let Some(database) = &self.database else { return Ok(None) };
        let holder = database.lease_holder(&format!("deployment:{deployment_id}")).await?;
        Ok(holder.map(|holder| holder.split('/').next().unwrap_or_default().to_owned()))
    }

    async fn close(mut self) -> anyhow::Result<()> {
        self.processes.clear();
        self.killed.clear();
        if let Some(database) = self.database.take() {
            database.drop().await?;
        }
        Ok(())
    }
}

fn cpu_of(pids: &[u32]) -> anyhow::Result<Vec<f64>> {
    pids.iter().map(|pid| cpu_seconds(*pid)).collect()
}

fn figures(values: &[f64], unit: &str) -> String {
    values.iter().map(|value| format!("{value:.2}{unit}")).collect::<Vec<_>>().join(", ")
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let mut servers = Servers::start(&options).await?;
    let endpoints = servers.endpoints();
    let settings = ClientSettings::resolve(&Overrides::default(), &servers.processes[0].environment)?;
    let client = Client::new(settings.clone());
    let (config, batch) = match &options.minimum_healthy {
        Some(healthy) => rolling_config(&client, healthy, options.hosts).await?,
        None => (options.config.clone(), batch_of_default(&options.config, options.hosts)),
    };
    create_app_and_group(&client, ("fleet", "all", &config), ("fleet", "bench")).await?;
    let call = |op, input| codedeploy(&client, op, input);

    let registering = Instant::now();
    let (hosts, helpers) = register_hosts(&client, &endpoints, &settings.region, &options).await?;
    println!(
        "registered {} simulated hosts in {:.1} s, long-polling {} server(s){}",
        options.hosts,
        registering.elapsed().as_secs_f64(),
        endpoints.len(),
        if servers.database.is_some() { " on PostgreSQL" } else { " on SQLite" }
    );
    println!("deployment configuration: {config}, {batch} host(s) at a time");
    if !helpers.is_empty() {
        println!(
            "{} of the simulated hosts in {} helper process(es)",
            options.hosts - HOSTS_PER_PROCESS,
            helpers.len()
        );
    }
    let simulators: Vec<u32> =
        std::iter::once(std::process::id()).chain(helpers.iter().map(|h| h.child.id())).collect();

    let mut pids = servers.pids();
    if options.idle {
        // A window longer than a long poll (45 s), so that every host polls in it.
        let before_cpu = idle_cpu(&pids, Duration::from_secs(50)).await?;
        let resident: Vec<f64> =
            pids.iter().map(|pid| Ok(status_kib(*pid, "VmRSS:")? as f64 / 1024.0)).collect::<anyhow::Result<_>>()?;
        println!(
            "idle over 50 s, every host long-polling: server CPU {} of a core; resident {}",
            figures(&before_cpu.iter().map(|c| c * 100.0).collect::<Vec<_>>(), " %"),
            figures(&resident, " MiB")
        );
    }

    let mut last_id = String::new();
    for round in 1..=options.rounds {
        let cpu_before = cpu_of(&pids)?;
        HOOK_TIME.take_mean();
        let simulators_before: f64 = cpu_of(&simulators)?.iter().sum();
        let transactions_before = servers.transactions().await?;
        let started = Instant::now();
        let created = call(
            "CreateDeployment",
            json!({"applicationName": "fleet", "deploymentGroupName": "all",
                   "revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": format!("round-{round}.tgz"), "bundleType": "tgz"}}}),
        )
        .await?;
        let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
        if options.kill_owner && round == options.rounds {
            kill_owner(&mut servers, &id).await?;
            pids = servers.pids();
        }
        let info = wait_for_end(&client_of(&servers)?, &id, Duration::from_secs(600)).await?;
        last_id = id;
        let elapsed = started.elapsed();
        let cpu: Vec<f64> = cpu_of(&pids)?.iter().zip(&cpu_before).map(|(after, before)| after - before).collect();
        let simulators_cpu = cpu_of(&simulators)?.iter().sum::<f64>() - simulators_before;
        println!(
            "round {round}: {} hosts x 7 events {} in {:.2} s (CreateDeployment to {}); server CPU {}; simulated hosts' CPU {simulators_cpu:.2} s",
            options.hosts,
            info["status"].as_str().unwrap_or("?"),
            elapsed.as_secs_f64(),
            info["status"].as_str().unwrap_or("?"),
            figures(&cpu, " s")
        );
        if let Some(hook_time) = HOOK_TIME.take_mean() {
            let batches = options.hosts.div_ceil(batch);
            let ideal = hook_time.as_secs_f64() * 5.0 * batches as f64;
            println!(
                "round {round}: ideal {batches} batch(es) x 5 hooks x {:.4} s (the hosts' mean hook, asked {:.3} s) = {ideal:.2} s; measured {:.3} times that, {:.1} ms more per host",
                hook_time.as_secs_f64(),
                options.hook.as_secs_f64(),
                elapsed.as_secs_f64() / ideal,
                (elapsed.as_secs_f64() - ideal) * 1000.0 / options.hosts as f64
            );
        }
        if let (Some(before), Some(after)) = (transactions_before, servers.transactions().await?) {
            let events = (options.hosts * 7) as f64;
            let (all, writing) = (after.0 - before.0, after.1 - before.1 - 1);
            println!(
                "round {round}: {all} database transactions, {:.1} per lifecycle event; {writing} of them wrote, {:.2} per lifecycle event",
                all as f64 / events,
                writing as f64 / events
            );
        }
    }
    // What people look at once it is over: the deployment's console page and API calls.
    crate::console::time_pages(&settings, ("fleet", "all"), &last_id, options.hosts, 5).await?;
    if options.idle {
        // Once the group has a revision to give, the fleet's look every 30 s reads every
        // instance: a window of two looks, once the hosts' reports and first polls after the
        // deployment are in.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let after = idle_cpu(&pids, Duration::from_secs(60)).await?;
        println!(
            "idle over 60 s after the deployments (from 15 s on), every host long-polling: server CPU {} of a core",
            figures(&after.iter().map(|c| c * 100.0).collect::<Vec<_>>(), " %")
        );
    }
    let memory: Vec<String> = pids
        .iter()
        .map(|pid| {
            Ok(format!(
                "{:.1} MiB now, peak {:.1} MiB",
                status_kib(*pid, "VmRSS:")? as f64 / 1024.0,
                status_kib(*pid, "VmHWM:")? as f64 / 1024.0
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    println!("server memory: resident {}", memory.join("; "));
    for host in &hosts {
        host.abort();
    }
    drop(helpers);
    servers.close().await
}

/// Registers the simulated hosts and connects each to its home server: the first
/// `HOSTS_PER_PROCESS` in this process, the rest in helper processes. Returns once all are
/// connected.
async fn register_hosts(
    client: &Client,
    endpoints: &[String],
    region: &str,
    options: &Options,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<anyhow::Result<()>>>, Vec<HelperHosts>)> {
    let mut hosts = Vec::with_capacity(options.hosts.min(HOSTS_PER_PROCESS));
    let mut helpers: Vec<HelperHosts> = Vec::new();
    for index in 0..options.hosts {
        let registered: Value = client
            .call(
                "Landfall_20261122.RegisterInstance",
                &json!({"instanceName": format!("sim-{index:04}"), "tags": [{"Key": "fleet", "Value": "bench"}]}),
            )
            .await?;
        let key = &registered["accessKey"];
        let credentials = Credentials::new(
            key["accessKeyId"].as_str().unwrap_or_default(),
            key["secretAccessKey"].as_str().unwrap_or_default(),
        );
        let arn = registered["iamUserArn"].as_str().unwrap_or_default().to_owned();
        let home = index % endpoints.len();
        if index < HOSTS_PER_PROCESS {
            let host = SimHost::connect(endpoints.to_vec(), home, arn, credentials, region.to_owned()).await?;
            hosts.push(tokio::spawn(host.serve(options.hook)));
            continue;
        }
        if index % HOSTS_PER_PROCESS == 0 {
            helpers.push(HelperHosts::start(endpoints, region, options.hook)?);
        }
        helpers.last_mut().context("no helper process")?.add(home, &arn, &credentials)?;
    }
    for helper in &mut helpers {
        helper.wait_until_connected().await?;
    }
    Ok((hosts, helpers))
}

/// A helper process simulating hosts beyond `HOSTS_PER_PROCESS` (killed when dropped).
struct HelperHosts {
    child: Child,
    /// Takes one line per host: its home server's index, ARN, access key id and secret key.
    stdin: Option<ChildStdin>,
    hosts: usize,
}

impl HelperHosts {
    fn start(endpoints: &[String], region: &str, hook: Duration) -> anyhow::Result<HelperHosts> {
        let child = Command::new(std::env::current_exe()?)
            .args(["fleet-hosts", "--endpoints", &endpoints.join(","), "--region", region])
            .args(["--hook-ms", &hook.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a helper process for simulated hosts")?;
        let mut helper = HelperHosts { child, stdin: None, hosts: 0 };
        helper.stdin = helper.child.stdin.take();
        Ok(helper)
    }

    fn add(&mut self, home: usize, arn: &str, credentials: &Credentials) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("the helper's input is closed")?;
        writeln!(stdin, "{home} {arn} {} {}", credentials.access_key_id, credentials.secret_access_key)?;
        self.hosts += 1;
        Ok(())
    }

    /// Closes the helper's input and waits for its line saying every host is connected.
    async fn wait_until_connected(&mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let stdout = self.child.stdout.take().context("the helper's output is gone")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        if line.trim() != format!("connected {}", self.hosts) {
            bail!("a helper process connected {:?} of {} hosts", line.trim(), self.hosts);
        }
        Ok(())
    }
}

impl Drop for HelperHosts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `landfall-bench fleet-hosts --endpoints URL,... --region R --hook-ms N`: the helper process.
/// Connects a simulated host for each line of its input, says `connected N` once the input is
/// closed and every host connected, and serves them until it is killed.
pub async fn run_helper(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (mut endpoints, mut region, mut hook) = (Vec::new(), String::new(), Duration::ZERO);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoints" => endpoints = value()?.split(',').map(str::to_owned).collect(),
            "--region" => region = value()?,
            "--hook-ms" => hook = Duration::from_millis(value()?.parse()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let lines =
        tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().collect::<Result<Vec<_>, _>>()).await??;
    let mut connected = 0;
    for line in lines {
        let [home, arn, key_id, secret] = line.split(' ').collect::<Vec<_>>()[..] else {
            bail!("bad host line {line:?}")
        };
        let credentials = Credentials::new(key_id, secret);
        let host =
            SimHost::connect(endpoints.clone(), home.parse()?, arn.to_owned(), credentials, region.clone()).await?;
        tokio::spawn(host.serve(hook));
        connected += 1;
    }
    println!("connected {connected}");
    std::io::stdout().flush()?;
    std::future::pending().await
}

/// Makes the configuration `bench-rolling` keeping `healthy` hosts healthy ("75%" or "10"), and
/// says how many of `hosts` it deploys to at once (CodeDeploy rounds the healthy share up).
async fn rolling_config(client: &Client, healthy: &str, hosts: usize) -> anyhow::Result<(String, usize)> {
    let (kind, value, healthy_hosts) = match healthy.strip_suffix('%') {
        Some(percent) => {
            let percent: usize = percent.parse()?;
            ("FLEET_PERCENT", percent, (hosts * percent).div_ceil(100))
        }
        None => ("HOST_COUNT", healthy.parse()?, healthy.parse()?),
    };
    codedeploy(
        client,
        "CreateDeploymentConfig",
        json!({"deploymentConfigName": "bench-rolling", "minimumHealthyHosts": {"type": kind, "value": value}}),
    )
    .await?;
    Ok(("bench-rolling".into(), hosts.saturating_sub(healthy_hosts).max(1)))
}

/// How many of `hosts` a default configuration deploys to at once.
fn batch_of_default(config: &str, hosts: usize) -> usize {
    match config {
        "CodeDeployDefault.OneAtATime" => 1,
        "CodeDeployDefault.HalfAtATime" => (hosts / 2).max(1),
        _ => hosts.max(1),
    }
}

/// Each server's CPU use over `window`, as a share of one core.
async fn idle_cpu(pids: &[u32], window: Duration) -> anyhow::Result<Vec<f64>> {
    let before = cpu_of(pids)?;
    tokio::time::sleep(window).await;
    Ok(cpu_of(pids)?.iter().zip(&before).map(|(after, before)| (after - before) / window.as_secs_f64()).collect())
}

/// A client of a server still running.
fn client_of(servers: &Servers) -> anyhow::Result<Client> {
    Ok(Client::new(ClientSettings::resolve(&Overrides::default(), &servers.processes[0].environment)?))
}

/// Kills (SIGKILL) the replica owning the deployment a second after it took it, and reports how
/// long the others took to take the deployment over.
async fn kill_owner(servers: &mut Servers, deployment_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let owner = loop {
        if let Some(owner) = servers.owner(deployment_id).await? {
            break owner;
        }
        if Instant::now() > deadline {
            bail!("nobody took deployment {deployment_id}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let index = servers
        .endpoints()
        .iter()
        .position(|endpoint| endpoint.ends_with(&owner))
        .context("the owner is none of the servers")?;
    let mut killed = servers.processes.remove(index);
    killed.child.kill()?;
    let _ = killed.child.wait();
    servers.killed.push(killed);
    let at = Instant::now();
    let successor = loop {
        match servers.owner(deployment_id).await? {
            Some(holder) if holder != owner => break holder,
            _ if at.elapsed() > Duration::from_secs(60) => bail!("nobody took deployment {deployment_id} over"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    println!(
        "killed the owner {owner} (SIGKILL) 1 s into the deployment; {successor} took it over {:.2} s later",
        at.elapsed().as_secs_f64()
    );
    Ok(())
}
