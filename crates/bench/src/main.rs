//! `landfall-bench`: measures a real `landfall server` process and prints the figures recorded in
//! docs/benchmarks.md.
//!
//! `landfall-bench api --server BIN [--deployments 1000] [--connections 32] [--seconds 10]`:
//! starts the server on a fresh data directory, times start-up to the first answered request,
//! seeds deployments through the API, reads the idle resident memory, then drives signed
//! GetDeployment and ListDeployments requests over loopback with a fixed number of keep-alive
//! connections and reports throughput and latency percentiles.
//!
//! `landfall-bench fleet --server BIN [--hosts 200] [--rounds 3]`: see `fleet.rs`.
//! `landfall-bench agent --server BIN [--rounds 5]`: see `agent.rs`.
//! `landfall-bench flood --server BIN [--megabytes 200] [--readers 6]`: see `flood.rs`.
//! `landfall-bench connections --server BIN`: see `connections.rs`.

mod agent;
mod bundle;
mod connections;
mod console;
mod fleet;
mod flood;
mod host;
mod router;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use landfall_client::{Client, ClientSettings, Overrides};
use landfall_sigv4::{Credentials, SigningParams, sign};
use serde_json::{Value, json};
use tokio::net::TcpStream;

struct Options {
    server: PathBuf,
    deployments: usize,
    connections: usize,
    seconds: u64,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), deployments: 1000, connections: 32, seconds: 10 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--deployments" => options.deployments = value()?.parse()?,
            "--connections" => options.connections = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench api --server PATH [--deployments N] [--connections N] [--seconds N]");
    }
    Ok(options)
}

/// The server under test; killed when dropped.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) environment: HashMap<String, String>,
    data_dir: TempDir,
}

impl ServerProcess {
    /// The size of the SQLite store's files (database, WAL and shared memory).
    pub(crate) fn store_bytes(&self) -> u64 {
        std::fs::read_dir(&self.data_dir.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("landfall.db"))
            .filter_map(|entry| entry.metadata().ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(purpose: &str) -> anyhow::Result<TempDir> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("landfall-bench-{purpose}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the server and returns it with the time until it answered a signed request.
pub(crate) async fn start_server(binary: &PathBuf, extra_args: &[&str]) -> anyhow::Result<(ServerProcess, Duration)> {
    start_server_with(binary, extra_args, &[], &[]).await
}

/// [`start_server`] with more environment variables.
/// `environment_overrides` replace what the server printed (a replica's credentials file).
pub(crate) async fn start_server_with(
    binary: &PathBuf,
    extra_args: &[&str],
    environment: &[(&str, &str)],
    environment_overrides: &[(&str, &str)],
) -> anyhow::Result<(ServerProcess, Duration)> {
    spawn_server(binary, &[], extra_args, environment, environment_overrides).await
}

/// [`start_server`] run through another program (`prlimit ... -- BIN`): `program` and its
/// arguments, the last of which names the server's binary.
pub(crate) async fn start_server_through(
    program: &PathBuf,
    program_args: &[&str],
) -> anyhow::Result<(ServerProcess, Duration)> {
    spawn_server(program, program_args, &[], &[], &[]).await
}

async fn spawn_server(
    binary: &PathBuf,
    leading_args: &[&str],
    extra_args: &[&str],
    environment: &[(&str, &str)],
    environment_overrides: &[(&str, &str)],
) -> anyhow::Result<(ServerProcess, Duration)> {
    let data_dir = TempDir::new("server")?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(leading_args)
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir.0)
        .args(extra_args)
        .envs(environment.iter().copied())
        // Quiet unless the caller asks for more (LANDFALL_LOG=sqlx::query=debug counts statements).
        .env("LANDFALL_LOG", std::env::var("LANDFALL_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut environment = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|rest| rest.split_once('=')) {
            environment.insert(name.to_owned(), value.to_owned());
        }
        if environment.len() == 3 {
            break;
        }
    }
    // A replica joining a shared store uses the administrator key the first server wrote.
    if let Some((_, file)) = environment_overrides.iter().find(|(name, _)| *name == "AWS_SHARED_CREDENTIALS_FILE") {
        environment.insert("AWS_SHARED_CREDENTIALS_FILE".to_owned(), (*file).to_owned());
    }
    let client = Client::new(ClientSettings::resolve(&Overrides::default(), &environment)?);
    loop {
        match client.call::<_, Value>("CodeDeploy_20141006.ListApplications", &json!({})).await {
            Ok(_) => break,
            Err(_) if started.elapsed() < Duration::from_secs(10) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(error) => return Err(error.into()),
        }
    }
    let elapsed = started.elapsed();
    Ok((ServerProcess { child, environment, data_dir }, elapsed))
}

/// One CodeDeploy API call, by operation name.
/// Application `app` with group `group` (configuration `config`) selecting the instances tagged
/// `tag`=`value`.
pub(crate) async fn create_app_and_group(
    client: &Client,
    (app, group, config): (&str, &str, &str),
    (tag, value): (&str, &str),
) -> anyhow::Result<()> {
    codedeploy(client, "CreateApplication", json!({"applicationName": app})).await?;
    codedeploy(
        client,
        "CreateDeploymentGroup",
        json!({"applicationName": app, "deploymentGroupName": group, "deploymentConfigName": config,
               "serviceRoleArn": "arn:aws:iam::123456789012:role/bench",
               "onPremisesInstanceTagFilters": [{"Key": tag, "Value": value, "Type": "KEY_AND_VALUE"}]}),
    )
    .await?;
    Ok(())
}

pub(crate) async fn codedeploy(client: &Client, operation: &str, input: Value) -> anyhow::Result<Value> {
    Ok(client.call(&format!("CodeDeploy_20141006.{operation}"), &input).await?)
}

/// Polls a deployment until it ends; returns its final deploymentInfo. A call that fails is
/// tried again (a replica killed under the bench may take connections with it), and said.
pub(crate) async fn wait_for_end(client: &Client, id: &str, limit: Duration) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        let got: Value = match client.call("CodeDeploy_20141006.GetDeployment", &json!({"deploymentId": id})).await {
            Ok(got) => got,
            Err(error) if failures < 10 => {
                failures += 1;
                println!("GetDeployment failed ({error}); trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let info = &got["deploymentInfo"];
        if matches!(info["status"].as_str(), Some("Succeeded" | "Failed" | "Stopped")) {
            return Ok(info.clone());
        }
        if started.elapsed() > limit {
            bail!("deployment {id} did not end in {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One application, group and instance, and `count` deployments (each created, then stopped so
/// the group can take the next).
async fn seed(client: &Client, count: usize) -> anyhow::Result<String> {
    let call = |op, input| codedeploy(client, op, input);
    call("CreateApplication", json!({"applicationName": "bench"})).await?;
    call(
        "CreateDeploymentGroup",
        json!({"applicationName": "bench", "deploymentGroupName": "fleet",
               "serviceRoleArn": "arn:aws:iam::123456789012:role/bench",
               "onPremisesInstanceTagFilters": [{"Key": "fleet", "Type": "KEY_ONLY"}]}),
    )
    .await?;
    for host in 0..3 {
        let name = format!("host-{host}");
        call(
            "RegisterOnPremisesInstance",
            json!({"instanceName": name, "iamUserArn": format!("arn:aws:iam::123456789012:user/{name}")}),
        )
        .await?;
        call(
            "AddTagsToOnPremisesInstances",
            json!({"instanceNames": [name], "tags": [{"Key": "fleet", "Value": "a"}]}),
        )
        .await?;
    }
    let mut last = String::new();
    for index in 0..count {
        let created = call(
            "CreateDeployment",
            json!({"applicationName": "bench", "deploymentGroupName": "fleet",
                   "revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": format!("app-{index}.zip"), "bundleType": "zip"}}}),
        )
        .await?;
        last = created["deploymentId"].as_str().unwrap_or_default().to_owned();
        call("StopDeployment", json!({"deploymentId": last})).await?;
    }
    Ok(last)
}

/// CPU seconds (user + system) the process has used so far.
pub(crate) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').context("bad stat")?.1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// The machine's CPU time split (user, system, idle, steal) as counters, from /proc/stat.
fn machine_cpu() -> anyhow::Result<[u64; 4]> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let values: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    Ok([values[0] + values[1], values[2], values[3] + values[4], values.get(7).copied().unwrap_or(0)])
}

pub(crate) fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/PID/status` memory figure in KiB (`VmRSS:` now, `VmHWM:` the peak).
pub(crate) fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with(field)).with_context(|| format!("no {field}"))?;
    Ok(line.split_whitespace().nth(1).context("bad memory figure")?.parse()?)
}

struct Load {
    requests: u64,
    errors: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// Drives `connections` keep-alive connections, each sending the operation back to back, every
/// request signed afresh, for `seconds`.
async fn drive(
    endpoint: &str,
    credentials: &Credentials,
    region: &str,
    target: &'static str,
    body: Vec<u8>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Load> {
    let uri: Uri = format!("{endpoint}/").parse()?;
    let address = format!("{}:{}", uri.host().context("no host")?, uri.port_u16().context("no port")?);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (uri, address, body, credentials, region) =
            (uri.clone(), address.clone(), body.clone(), credentials.clone(), region.to_owned());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&address).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let mut headers = HeaderMap::new();
                headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
                headers.insert("x-amz-target", HeaderValue::from_static(target));
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
                let params =
                    SigningParams { credentials: &credentials, region: &region, service: "codedeploy", time: now };
                sign(&Method::POST, &uri, &mut headers, &body, &params).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let mut request = Request::post(uri.clone()).body(Full::new(Bytes::from(body.as_ref().clone())))?;
                *request.headers_mut() = headers;
                let sent = Instant::now();
                let response = sender.send_request(request).await?;
                let ok = response.status().is_success();
                response.into_body().collect().await?;
                latencies.push(sent.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut load = Load { requests: 0, errors: 0, latencies: Vec::new(), elapsed: Duration::ZERO };
    for task in tasks {
        let (latencies, errors) = task.await??;
        load.requests += latencies.len() as u64;
        load.errors += errors;
        load.latencies.extend(latencies);
    }
    load.elapsed = started.elapsed();
    load.latencies.sort();
    Ok(load)
}

pub(crate) fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, load: &Load, server_cpu: f64, machine: [u64; 4]) {
    let total: u64 = machine.iter().sum::<u64>().max(1);
    let share = |value: u64| value as f64 * 100.0 / total as f64;
    println!(
        "{name:<16} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests, {} errors, {:.1} s)",
        load.requests as f64 / load.elapsed.as_secs_f64(),
        percentile(&load.latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&load.latencies, 0.99).as_secs_f64() * 1000.0,
        load.requests,
        load.errors,
        load.elapsed.as_secs_f64(),
    );
    println!(
        "{:<16} server CPU {:.0} us per request; machine CPU user {:.0}%, system {:.0}%, idle {:.0}%, steal {:.0}%",
        "",
        server_cpu * 1e6 / load.requests.max(1) as f64,
        share(machine[0]),
        share(machine[1]),
        share(machine[2]),
        share(machine[3]),
    );
}

/// Runs one load phase and reports it with the CPU the server and the machine spent.
async fn measure(
    name: &str,
    pid: u32,
    load: impl std::future::Future<Output = anyhow::Result<Load>>,
) -> anyhow::Result<()> {
    let (cpu_before, machine_before) = (cpu_seconds(pid)?, machine_cpu()?);
    let load = load.await?;
    let (cpu_after, machine_after) = (cpu_seconds(pid)?, machine_cpu()?);
    let machine = [0, 1, 2, 3].map(|i| machine_after[i].saturating_sub(machine_before[i]));
    report(name, &load, cpu_after - cpu_before, machine);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("api") => api(args).await,
        Some("fleet") => fleet::run(args).await,
        Some("fleet-hosts") => fleet::run_helper(args).await,
        Some("agent") => agent::run(args).await,
        Some("bundle") => bundle::run(args).await,
        Some("router") => router::run(args).await,
        Some("console") => console::run(args).await,
        Some("flood") => flood::run(args).await,
        Some("connections") => connections::run(args).await,
        _ => bail!(
            "usage: landfall-bench api|fleet|agent|bundle|router|console|flood|connections --server PATH [options]"
        ),
    }
}

async fn api(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, startup) = start_server(&options.server, &[]).await?;
    println!("start-up to first answered request: {:.1} ms", startup.as_secs_f64() * 1000.0);
    let pid = server.child.id();
    println!("resident memory after start-up:     {:.1} MiB", resident_kib(pid)? as f64 / 1024.0);

    let settings = ClientSettings::resolve(&Overrides::default(), &server.environment)?;
    let client = Client::new(settings.clone());
    let seeding = Instant::now();
    let deployment = seed(&client, options.deployments).await?;
    println!("seeded {} deployments in {:.1} s", options.deployments, seeding.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "idle resident memory ({} deployments stored): {:.1} MiB",
        options.deployments,
        resident_kib(pid)? as f64 / 1024.0
    );

    println!(
        "load: {} keep-alive connections, {} s per operation, every request signed",
        options.connections, options.seconds
    );
    let (endpoint, credentials, region) = (&settings.endpoint, &settings.credentials, &settings.region);
    let (connections, seconds) = (options.connections, options.seconds);
    let get = serde_json::to_vec(&json!({"deploymentId": deployment}))?;
    let target = "CodeDeploy_20141006.GetDeployment";
    measure("GetDeployment", pid, drive(endpoint, credentials, region, target, get, connections, seconds)).await?;
    let list = serde_json::to_vec(&json!({"applicationName": "bench", "deploymentGroupName": "fleet"}))?;
    let target = "CodeDeploy_20141006.ListDeployments";
    measure("ListDeployments", pid, drive(endpoint, credentials, region, target, list, connections, seconds)).await?;
    println!("resident memory after load:         {:.1} MiB", resident_kib(pid)? as f64 / 1024.0);
    Ok(())
}
