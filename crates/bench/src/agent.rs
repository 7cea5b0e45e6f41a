//! `landfall-bench agent`: one real host. Registers an instance with `landfall instance register`,
//! starts `landfall agent` on its configuration, and times deployments of a revision whose seven
//! lifecycle events do nothing (an AppSpec with no files and no hooks), then the same with a
//! trivial `exit 0` script on each of the five script events. Afterwards it reads the agent's
//! idle resident memory. This is the whole path a user's deployment takes: API, engine, long
//! poll, signed specification, bundle download from the bundle store, unpack, AppSpec, install
//! records, completion.
//!
//! `landfall-bench agent --server BIN [--agent landfall-agent] [--rounds 5]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use landfall_client::bundle::{BundleFile, tar_gz};
use landfall_client::{Client, ClientSettings, Overrides};
use serde_json::{Value, json};

use crate::host::BenchHost;
use crate::{codedeploy, start_server, wait_for_end};

struct Options {
    server: PathBuf,
    /// The slim agent binary to run instead of `landfall agent`.
    agent: Option<PathBuf>,
    rounds: usize,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), agent: None, rounds: 5 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--agent" => options.agent = Some(PathBuf::from(value()?)),
            "--rounds" => options.rounds = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench agent --server PATH [--agent PATH] [--rounds N]");
    }
    Ok(options)
}

const NO_HOOKS: &str = "version: 0.0\nos: linux\n";

const EXIT_ZERO_HOOKS: &str = "version: 0.0\nos: linux\nhooks:\n\
  ApplicationStop:\n    - location: ok.sh\n\
  BeforeInstall:\n    - location: ok.sh\n\
  AfterInstall:\n    - location: ok.sh\n\
  ApplicationStart:\n    - location: ok.sh\n\
  ValidateService:\n    - location: ok.sh\n";

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, _) = start_server(&options.server, &[]).await?;
    let settings = ClientSettings::resolve(&Overrides::default(), &server.environment)?;
    let client = Client::new(settings);
    let host = BenchHost::start(&options.server, options.agent.as_deref(), &server, "bench-host", "bench=agent")?;

    let call = |op, input| codedeploy(&client, op, input);
    call("CreateApplication", json!({"applicationName": "bench"})).await?;
    call(
        "CreateDeploymentGroup",
        json!({"applicationName": "bench", "deploymentGroupName": "one-host",
               "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
               "serviceRoleArn": "arn:aws:iam::123456789012:role/bench",
               "onPremisesInstanceTagFilters": [{"Key": "bench", "Value": "agent", "Type": "KEY_AND_VALUE"}]}),
    )
    .await?;
    client.create_bucket("bench").await?;

    let ok_script = BundleFile { path: "ok.sh", contents: b"#!/bin/sh\nexit 0\n", mode: 0o755 };
    let revisions = [
        ("no-op", tar_gz(&[BundleFile { path: "appspec.yml", contents: NO_HOOKS.as_bytes(), mode: 0o644 }])?),
        (
            "exit-0 hooks",
            tar_gz(&[
                BundleFile { path: "appspec.yml", contents: EXIT_ZERO_HOOKS.as_bytes(), mode: 0o644 },
                ok_script,
            ])?,
        ),
    ];
    for (name, bundle) in revisions {
        let key = format!("{}.tgz", name.replace(' ', "-"));
        let etag = client.put_object("bench", &key, bundle).await?;
        let mut times = Vec::with_capacity(options.rounds);
        for round in 1..=options.rounds {
            let started = Instant::now();
            let created = call(
                "CreateDeployment",
                json!({"applicationName": "bench", "deploymentGroupName": "one-host",
                       "revision": {"revisionType": "S3",
                                    "s3Location": {"bucket": "bench", "key": key, "bundleType": "tgz", "eTag": etag}}}),
            )
            .await?;
            let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
            let info = wait_for_end(&client, &id, Duration::from_secs(120)).await?;
            let elapsed = started.elapsed();
            if info["status"] != "Succeeded" {
                bail!("{name} round {round}: deployment {id} ended {}: {}", info["status"], info["errorInformation"]);
            }
            check_events(&client, &id).await?;
            times.push(elapsed);
            println!("{name:>12} round {round}: CreateDeployment to Succeeded in {:.3} s", elapsed.as_secs_f64());
        }
        times.sort();
        println!("{name:>12} median {:.3} s over {} rounds", times[times.len() / 2].as_secs_f64(), times.len());
    }

    let scripts_logs = count_files(&host.dir.0.join("root"), "scripts.log");
    println!("scripts.log files on the host: {scripts_logs} (the exit-0 rounds' hooks wrote them)");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle, peak) = host.memory_mib()?;
    println!("agent memory: idle resident {idle:.1} MiB, peak {peak:.1} MiB");
    drop(host);
    drop(server);
    Ok(())
}

/// A fast answer is only worth printing if the host really ran all seven events.
async fn check_events(client: &Client, id: &str) -> anyhow::Result<()> {
    let input = json!({"deploymentId": id, "instanceId": "bench-host"});
    let got: Value = client.call("CodeDeploy_20141006.GetDeploymentInstance", &input).await?;
    let events = got["instanceSummary"]["lifecycleEvents"].as_array().cloned().unwrap_or_default();
    let succeeded = events.iter().filter(|event| event["status"] == "Succeeded").count();
    if events.len() != 7 || succeeded != 7 {
        bail!("deployment {id}: {succeeded} of {} lifecycle events succeeded", events.len());
    }
    Ok(())
}

fn count_files(dir: &std::path::Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { count_files(&path, name) } else { usize::from(entry.file_name() == name) }
        })
        .sum()
}
