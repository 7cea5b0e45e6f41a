//! `landfall-bench flood`: a hook that prints far more than anyone reads. One real host runs a
//! revision whose AfterInstall prints `--megabytes` of output (`head -c N /dev/zero | tr '\0' A
//! | fold -w 1000`, as the hardening issue's attack did); then `--readers` clients read the
//! event's whole output at once through GetLifecycleEventLog with a read-only key, a page at a
//! time. Prints the agent's peak resident memory, the store's growth on disk, the server's
//! peak resident memory before and after the readers, and the largest answer.
//!
//! `landfall-bench flood --server BIN [--megabytes 200] [--readers 6]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use landfall_client::bundle::{BundleFile, tar_gz};
use landfall_client::{Client, ClientSettings, Overrides};
use landfall_sigv4::Credentials;
use serde_json::{Value, json};

use crate::host::BenchHost;
use crate::{codedeploy, create_app_and_group, start_server, status_kib, wait_for_end};

struct Options {
    server: PathBuf,
    megabytes: u64,
    readers: usize,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), megabytes: 200, readers: 6 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--megabytes" => options.megabytes = value()?.parse()?,
            "--readers" => options.readers = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench flood --server PATH [--megabytes N] [--readers N]");
    }
    Ok(options)
}

const APPSPEC: &str =
    "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: flood.sh\n      timeout: 600\n";

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, _) = start_server(&options.server, &[]).await?;
    let client = Client::new(ClientSettings::resolve(&Overrides::default(), &server.environment)?);
    let host = BenchHost::start(&options.server, None, &server, "flood-host", "bench=flood")?;
    create_app_and_group(&client, ("bench", "flood", "CodeDeployDefault.AllAtOnce"), ("bench", "flood")).await?;
    client.create_bucket("bench").await?;
    let script = format!(
        "#!/bin/sh\necho START\nhead -c {} /dev/zero | tr '\\0' A | fold -w 1000\necho\necho END\n",
        options.megabytes * 1_000_000
    );
    let bundle = tar_gz(&[
        BundleFile { path: "appspec.yml", contents: APPSPEC.as_bytes(), mode: 0o644 },
        BundleFile { path: "flood.sh", contents: script.as_bytes(), mode: 0o755 },
    ])?;
    let etag = client.put_object("bench", "flood.tgz", bundle).await?;
    let stored_before = server.store_bytes();

    let started = Instant::now();
    let created = codedeploy(
        &client,
        "CreateDeployment",
        json!({"applicationName": "bench", "deploymentGroupName": "flood",
               "revision": {"revisionType": "S3",
                            "s3Location": {"bucket": "bench", "key": "flood.tgz", "bundleType": "tgz", "eTag": etag}}}),
    )
    .await?;
    let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
    let info = wait_for_end(&client, &id, Duration::from_secs(900)).await?;
    if info["status"] != "Succeeded" {
        bail!("deployment {id} ended {}: {}", info["status"], info["errorInformation"]);
    }
    println!(
        "a hook printing {} MB: CreateDeployment to Succeeded in {:.1} s",
        options.megabytes,
        started.elapsed().as_secs_f64()
    );
    let (_, agent_peak) = host.memory_mib()?;
    println!("agent peak resident memory: {agent_peak:.1} MiB");
    let grown = server.store_bytes().saturating_sub(stored_before);
    println!("store growth on disk (landfall.db and its WAL): {:.1} MiB", grown as f64 / (1024.0 * 1024.0));

    let reader: Value = client
        .call("Landfall_20261122.CreateAccessKey", &json!({"role": "read-only", "description": "flood reader"}))
        .await?;
    let key = &reader["accessKey"];
    let mut settings = ClientSettings::resolve(&Overrides::default(), &server.environment)?;
    settings.credentials = Credentials::new(
        key["accessKeyId"].as_str().unwrap_or_default(),
        key["secretAccessKey"].as_str().unwrap_or_default(),
    );
    let pid = server.child.id();
    let server_before = status_kib(pid, "VmHWM:")?;
    let reading = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..options.readers {
        let (client, id) = (Client::new(settings.clone()), id.clone());
        readers.push(tokio::spawn(async move { read_all(&client, &id).await }));
    }
    let mut answers = Vec::new();
    for reader in readers {
        answers.push(reader.await??);
    }
    let (read, pages, largest, size) = answers[0];
    println!(
        "{} readers at once: {:.1} s; each read {:.2} MiB in {pages} pages (largest answer {:.0} KiB) of {:.1} MB the agent sent",
        options.readers,
        reading.elapsed().as_secs_f64(),
        read as f64 / (1024.0 * 1024.0),
        largest as f64 / 1024.0,
        size as f64 / 1e6,
    );
    println!(
        "server peak resident memory: {:.1} MiB before the readers, {:.1} MiB after (now {:.1} MiB)",
        mib(server_before),
        mib(status_kib(pid, "VmHWM:")?),
        mib(status_kib(pid, "VmRSS:")?),
    );
    drop(host);
    drop(server);
    Ok(())
}

/// Reads an event's whole output page by page: (bytes read, pages, largest page, size).
async fn read_all(client: &Client, id: &str) -> anyhow::Result<(u64, u64, u64, u64)> {
    let (mut offset, mut read, mut pages, mut largest) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let input = json!({"deploymentId": id, "targetId": "flood-host", "lifecycleEventName": "AfterInstall", "offset": offset});
        let page: Value = client.call("Landfall_20261122.GetLifecycleEventLog", &input).await?;
        let length = page["log"].as_str().map_or(0, str::len) as u64;
        (read, pages, largest) = (read + length, pages + 1, largest.max(length));
        offset = page["nextOffset"].as_u64().unwrap_or(offset);
        if page["complete"] == true {
            return Ok((read, pages, largest, page["size"].as_u64().unwrap_or(0)));
        }
        if length == 0 {
            bail!("an empty page before the end");
        }
    }
}
