//! `landfall-bench router`: the built-in router against HAProxy and against no proxy at all, on
//! the same four backends, measured by `wrk` one after the other; then the time from a backend
//! entering a target group to the first request it serves, through each.
//!
//! `landfall-bench router --server BIN [--haproxy BIN] [--seconds 8] [--connections 32]`
//!
//! The backends are small HTTP/1.1 servers in this process answering `ok`. Everything shares
//! the machine's cores with `wrk`, as a single-host setup would.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use landfall_client::{Client, ClientSettings, Overrides};
use serde_json::{Value, json};

use crate::{TempDir, codedeploy, start_server};

struct Options {
    server: PathBuf,
    haproxy: PathBuf,
    seconds: u64,
    connections: usize,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options =
        Options { server: PathBuf::new(), haproxy: "/usr/sbin/haproxy".into(), seconds: 8, connections: 32 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--haproxy" => options.haproxy = PathBuf::from(value()?),
            "--seconds" => options.seconds = value()?.parse()?,
            "--connections" => options.connections = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench router --server PATH [--haproxy PATH] [--seconds N] [--connections N]");
    }
    Ok(options)
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An HTTP backend answering `ok`, counting the benchmark's requests (not health checks).
async fn backend() -> anyhow::Result<(u16, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    // Health checks do not count: only the benchmark's own requests.
                    if request.headers().contains_key("x-landfall-bench") {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n")))) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok((port, served))
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, _) = start_server(&options.server, &["--traffic-timeout", "60"]).await?;
    let client = Client::new(ClientSettings::resolve(&Overrides::default(), &server.environment)?);
    let extension = |op: &str, input: Value| {
        let client = &client;
        let target = format!("Landfall_20261122.{op}");
        async move { client.call::<_, Value>(&target, &input).await }
    };
    let mut backends = Vec::new();
    for _ in 0..5 {
        backends.push(backend().await?);
    }
    let (late_port, late_served) = backends.pop().context("five backends")?;
    let health_check = json!({"path": "/", "intervalSeconds": 1, "timeoutSeconds": 1, "healthyThreshold": 2,
                              "unhealthyThreshold": 2});
    let work = TempDir::new("router")?;
    for (index, name) in ["builtin", "haproxy"].iter().enumerate() {
        extension(
            "CreateTargetGroup",
            json!({"name": name, "router": name, "healthCheck": health_check,
                                              "deregistrationDelaySeconds": 1}),
        )
        .await?;
        for (host, (port, _)) in backends.iter().enumerate() {
            let instance = format!("bench-{index}-{host}");
            register_instance(&client, &instance).await?;
            extension(
                "RegisterTargets",
                json!({"name": name, "targets": [
                {"instanceName": instance, "address": format!("127.0.0.1:{port}")}]}),
            )
            .await?;
        }
    }
    let key = extension("CreateAccessKey", json!({"role": "router"})).await?;
    let (key_id, secret) = (
        key["accessKey"]["accessKeyId"].as_str().unwrap_or_default().to_owned(),
        key["accessKey"]["secretAccessKey"].as_str().unwrap_or_default().to_owned(),
    );
    let router_env = [
        ("AWS_ENDPOINT_URL", server.environment["AWS_ENDPOINT_URL"].clone()),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("LANDFALL_LOG", "warn".to_owned()),
    ];
    let builtin_port = free_port()?;
    let _builtin = Process(
        Command::new(&options.server)
            .args(["router", "--target-group", "builtin", "--listen", &format!("127.0.0.1:{builtin_port}")])
            .envs(router_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .spawn()
            .context("starting landfall router")?,
    );
    let haproxy_port = free_port()?;
    let socket = work.0.join("haproxy.sock");
    let config = work.0.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n    stats socket {} mode 600 level admin\n    nbthread 2\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\nfrontend web\n    bind 127.0.0.1:{haproxy_port}\n    default_backend web\nbackend web\n    balance roundrobin\n    option httpchk GET /\n",
            socket.display()
        ),
    )?;
    let _haproxy = Process(
        Command::new(&options.haproxy)
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", options.haproxy.display()))?,
    );
    let started = Instant::now();
    while !socket.exists() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("HAProxy did not open its runtime API socket");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _driver = Process(
        Command::new(&options.server)
            .args(["router", "--target-group", "haproxy", "--haproxy-backend", "web", "--haproxy-socket"])
            .arg(&socket)
            .envs(router_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .spawn()
            .context("starting landfall router for HAProxy")?,
    );
    for name in ["builtin", "haproxy"] {
        wait_healthy(&client, name, backends.len()).await?;
    }
    println!(
        "{} backends; wrk -t2 -c{} -d{}s --latency; each run alone",
        backends.len(),
        options.connections,
        options.seconds
    );
    let direct = wrk(&format!("http://127.0.0.1:{}/", backends[0].0), &options)?;
    let builtin = wrk(&format!("http://127.0.0.1:{builtin_port}/"), &options)?;
    let haproxy = wrk(&format!("http://127.0.0.1:{haproxy_port}/"), &options)?;
    for (name, result) in [("direct (one backend)", &direct), ("landfall router", &builtin), ("HAProxy", &haproxy)] {
        println!(
            "{name:<21} {:>9.0} req/s   p50 {:>7}   p99 {:>7}   ({} requests, {} errors)",
            result.rps, result.p50, result.p99, result.requests, result.errors
        );
    }
    println!(
        "landfall router: {:.2}x HAProxy's throughput; {:.0}% of direct",
        builtin.rps / haproxy.rps,
        100.0 * builtin.rps / direct.rps
    );

    // A new backend: from registration to its first request, through each router.
    for (index, name, port) in [(0, "builtin", builtin_port), (1, "haproxy", haproxy_port)] {
        let instance = format!("bench-{index}-late");
        register_instance(&client, &instance).await?;
        let before = late_served.load(Ordering::Relaxed);
        let load = tokio::spawn(trickle(format!("http://127.0.0.1:{port}/")));
        let registered = Instant::now();
        extension(
            "RegisterTargets",
            json!({"name": name, "targets": [
            {"instanceName": instance, "address": format!("127.0.0.1:{late_port}")}]}),
        )
        .await?;
        while late_served.load(Ordering::Relaxed) == before {
            if registered.elapsed() > Duration::from_secs(30) {
                bail!("{name}: the new backend got no request in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        load.abort();
        println!(
            "{name}: registered to first request served {:.2} s (health check every 1 s, 2 passes needed)",
            registered.elapsed().as_secs_f64()
        );
    }
    drop(server);
    Ok(())
}

/// Requests back to back, so a new backend's first request is seen at once.
async fn trickle(url: String) {
    let http =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<Bytes>>();
    let Ok(uri) = url.parse::<hyper::Uri>() else { return };
    loop {
        let request =
            hyper::Request::get(uri.clone()).header("x-landfall-bench", "1").body(http_body_util::Empty::new());
        if let Ok(request) = request {
            let _ = http.request(request).await;
        }
    }
}

async fn register_instance(client: &Client, instance: &str) -> anyhow::Result<()> {
    let arn = format!("arn:aws:iam::123456789012:user/{instance}");
    codedeploy(client, "RegisterOnPremisesInstance", json!({"instanceName": instance, "iamUserArn": arn})).await?;
    Ok(())
}

async fn wait_healthy(client: &Client, name: &str, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let listed: Value = client.call("Landfall_20261122.ListTargetGroups", &json!({})).await?;
        let healthy = listed["targetGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|group| group["name"] == name)
            .flat_map(|group| group["targets"].as_array().cloned().unwrap_or_default())
            .filter(|target| target["health"]["state"] == "healthy")
            .count();
        if healthy == count {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("{name}: {healthy} of {count} targets healthy after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
    requests: u64,
    errors: u64,
}

fn wrk(url: &str, options: &Options) -> anyhow::Result<WrkResult> {
    let output = Command::new("wrk")
        .args(["-t2", &format!("-c{}", options.connections), &format!("-d{}s", options.seconds), "--latency", url])
        .output()
        .context("running wrk (Debian package wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines().find_map(|line| line.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
    };
    let requests = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    let mut errors = 0;
    for line in text.lines().filter(|l| l.contains("Non-2xx") || l.contains("Socket errors")) {
        errors += line.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum::<u64>();
    }
    let rps: f64 = field("Requests/sec:").and_then(|v| v.parse().ok()).context("wrk printed no Requests/sec")?;
    Ok(WrkResult {
        rps,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        requests,
        errors,
    })
}
