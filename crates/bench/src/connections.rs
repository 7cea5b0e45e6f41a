//! `landfall-bench connections`: clients that hold connections without using them. Against a
//! server with its defaults, opens `--slowloris` connections that send a request head a byte
//! every two seconds, `--keepalive` connections that make one request and stay open, and
//! `--silent` connections that send nothing, all at once; while they are held, times `GET
//! /health` four times a second. Prints when each kind was closed, the health check's
//! latencies, and the server's open descriptors and memory. Then starts a server with 256
//! descriptors (`prlimit`), holds 300 silent connections against it, and does the same.
//!
//! `landfall-bench connections --server BIN [--slowloris 500] [--keepalive 2000] [--silent 200]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use landfall_client::{Client, ClientSettings, Overrides};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::{ServerProcess, percentile, start_server_with, status_kib};

struct Options {
    server: PathBuf,
    slowloris: usize,
    keepalive: usize,
    silent: usize,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), slowloris: 500, keepalive: 2000, silent: 200 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--slowloris" => options.slowloris = value()?.parse()?,
            "--keepalive" => options.keepalive = value()?.parse()?,
            "--silent" => options.silent = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench connections --server PATH [--slowloris N] [--keepalive N] [--silent N]");
    }
    Ok(options)
}

/// When each connection of one kind was closed by the server (seconds after the start).
type Closings = Arc<Mutex<Vec<f64>>>;

fn address_of(server: &ServerProcess) -> anyhow::Result<String> {
    let endpoint = server.environment.get("AWS_ENDPOINT_URL").context("no endpoint")?;
    Ok(endpoint.trim_start_matches("http://").to_owned())
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Waits until the server closes `stream` (or `limit` passes), sending `trickle` bytes now and
/// then; records when.
async fn hold(mut stream: TcpStream, trickle: bool, started: Instant, closings: Closings, limit: Duration) {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = tick.tick(), if trickle => {
                if stream.write_all(b"X").await.is_err() {
                    break;
                }
            }
            () = &mut deadline => return,
        }
    }
    closings.lock().await.push(started.elapsed().as_secs_f64());
}

/// `GET /health` over a new connection: its latency, or None if it failed.
async fn health(address: &str) -> Option<Duration> {
    let sent = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then(|| sent.elapsed())
    };
    tokio::time::timeout(Duration::from_secs(10), attempt).await.ok().flatten()
}

/// Samples the health check and the server's descriptors until `until`.
async fn watch(address: &str, pid: u32, until: Duration) -> (Vec<Duration>, usize, usize) {
    let started = Instant::now();
    let (mut latencies, mut failures, mut most_descriptors) = (Vec::new(), 0, 0);
    while started.elapsed() < until {
        match health(address).await {
            Some(latency) => latencies.push(latency),
            None => failures += 1,
        }
        most_descriptors = most_descriptors.max(open_descriptors(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    latencies.sort();
    (latencies, failures, most_descriptors)
}

fn print_health(latencies: &[Duration], failures: usize) {
    println!(
        "  GET /health while held: {} answered, {failures} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

async fn print_closings(kind: &str, opened: usize, closings: &Closings) {
    let mut times = closings.lock().await.clone();
    times.sort_by(f64::total_cmp);
    match (times.first(), times.last()) {
        (Some(first), Some(last)) => println!(
            "  {kind}: {} of {opened} closed by the server, from {first:.1} s to {last:.1} s after opening",
            times.len()
        ),
        _ => println!("  {kind}: none of {opened} closed"),
    }
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    landfall_listener::raise_open_file_limit();

    println!("server with its defaults (--header-timeout 10, --idle-timeout 60)");
    let (server, _) = start_server_with(&options.server, &[], &[], &[]).await?;
    let address = address_of(&server)?;
    let pid = server.child.id();
    let started = Instant::now();
    let limit = Duration::from_secs(90);
    let kinds: [(&str, usize); 3] =
        [("slowloris", options.slowloris), ("keep-alive", options.keepalive), ("silent", options.silent)];
    let mut closings = Vec::new();
    for (kind, count) in kinds {
        let closed: Closings = Arc::default();
        for _ in 0..count {
            let mut stream = TcpStream::connect(&address).await?;
            match kind {
                "slowloris" => stream.write_all(b"POST / HTTP/1.1\r\nHost: bench\r\n").await?,
                "keep-alive" => {
                    stream.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n").await?;
                    let mut answer = [0u8; 512];
                    let read = stream.read(&mut answer).await?;
                    if !answer[..read].starts_with(b"HTTP/1.1 200") {
                        bail!("a keep-alive request failed");
                    }
                }
                _ => {}
            }
            tokio::spawn(hold(stream, kind == "slowloris", started, closed.clone(), limit));
        }
        closings.push((kind, count, closed));
    }
    println!(
        "  opened {} connections in {:.1} s; server: {} descriptors open, {:.1} MiB resident",
        options.slowloris + options.keepalive + options.silent,
        started.elapsed().as_secs_f64(),
        open_descriptors(pid),
        status_kib(pid, "VmRSS:")? as f64 / 1024.0
    );
    let (latencies, failures, most) = watch(&address, pid, limit.saturating_sub(started.elapsed())).await;
    print_health(&latencies, failures);
    for (kind, count, closed) in &closings {
        print_closings(kind, *count, closed).await;
    }
    println!(
        "  server afterwards: {} descriptors open (most seen {most}), {:.1} MiB resident, peak {:.1} MiB",
        open_descriptors(pid),
        status_kib(pid, "VmRSS:")? as f64 / 1024.0,
        status_kib(pid, "VmHWM:")? as f64 / 1024.0
    );
    drop(server);

    println!("server with 256 descriptors (prlimit --nofile=256), 300 silent connections held");
    let prlimit_args = ["--nofile=256:256", "--"];
    let binary = options.server.to_string_lossy().into_owned();
    let (server, _) =
        crate::start_server_through(&PathBuf::from("prlimit"), &[&prlimit_args[..], &[binary.as_str()]].concat())
            .await?;
    let address = address_of(&server)?;
    let pid = server.child.id();
    let started = Instant::now();
    let closed: Closings = Arc::default();
    let mut held = 0;
    for _ in 0..300 {
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&address)).await {
            Ok(Ok(stream)) => {
                held += 1;
                tokio::spawn(hold(stream, false, started, closed.clone(), Duration::from_secs(30)));
            }
            _ => break,
        }
    }
    let client = Client::new(ClientSettings::resolve(&Overrides::default(), &server.environment)?);
    let api = Instant::now();
    let listed: anyhow::Result<Value> =
        client.call("CodeDeploy_20141006.ListApplications", &json!({})).await.map_err(Into::into);
    println!(
        "  connected {held}; ListApplications {} in {:.1} ms",
        if listed.is_ok() { "answered" } else { "FAILED" },
        api.elapsed().as_secs_f64() * 1000.0
    );
    let (latencies, failures, most) = watch(&address, pid, Duration::from_secs(10)).await;
    print_health(&latencies, failures);
    print_closings("silent", held, &closed).await;
    println!("  server: most descriptors seen {most} of 256");
    Ok(())
}
