//! `landfall-bench bundle`: how fast a real agent downloads and unpacks a large bundle, and how
//! much memory it needs doing it. Makes a tgz and a zip of `--size-mb` of incompressible files,
//! stores each in the server's bundle store and (with `--s3s-fs BIN`) in a separate external
//! S3-compatible store, deploys each to one host, and reads the DownloadBundle event's duration
//! (fetch, checks, unpack). The baseline is `curl` then `tar -xzf` / `unzip -q` on the same object
//! from the same store. Then the agent's peak resident memory.
//!
//! `landfall-bench bundle --server BIN [--agent landfall-agent] [--size-mb 500] [--s3s-fs BIN]`

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use landfall_client::{Client, ClientSettings, Overrides};
use serde_json::{Value, json};

use crate::host::BenchHost;
use crate::{TempDir, codedeploy, start_server_with, wait_for_end};

struct Options {
    server: PathBuf,
    /// The slim agent binary to run instead of `landfall agent`.
    agent: Option<PathBuf>,
    size_mb: usize,
    s3s_fs: Option<PathBuf>,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), agent: None, size_mb: 500, s3s_fs: None };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--agent" => options.agent = Some(PathBuf::from(value()?)),
            "--size-mb" => options.size_mb = value()?.parse()?,
            "--s3s-fs" => options.s3s_fs = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench bundle --server PATH [--agent PATH] [--size-mb N] [--s3s-fs PATH]");
    }
    Ok(options)
}

const EXTERNAL_KEY: &str = "BENCHEXTERNALKEY";
const EXTERNAL_SECRET: &str = "bench-external-secret";

/// The external store: an `s3s-fs` process, killed when dropped.
struct ExternalStore {
    process: Child,
    endpoint: String,
    _root: TempDir,
}

impl Drop for ExternalStore {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn start_external(binary: &Path) -> anyhow::Result<ExternalStore> {
    let root = TempDir::new("s3s")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let process = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", EXTERNAL_KEY])
        .args(["--secret-key", EXTERNAL_SECRET])
        .arg(&root.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("s3s-fs did not start listening");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(ExternalStore { process, endpoint: format!("http://127.0.0.1:{port}"), _root: root })
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let external = options.s3s_fs.as_deref().map(start_external).transpose()?;
    let mut server_env = Vec::new();
    if let Some(store) = &external {
        server_env = vec![
            ("LANDFALL_EXTERNAL_S3_ENDPOINT", store.endpoint.as_str()),
            ("LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID", EXTERNAL_KEY),
            ("LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY", EXTERNAL_SECRET),
        ];
    }
    let (server, _) = start_server_with(&options.server, &[], &server_env, &[]).await?;
    let client = Client::new(ClientSettings::resolve(&Overrides::default(), &server.environment)?);
    let host = BenchHost::start(&options.server, options.agent.as_deref(), &server, "bundle-host", "bench=bundle")?;
    codedeploy(&client, "CreateApplication", json!({"applicationName": "bench"})).await?;
    codedeploy(
        &client,
        "CreateDeploymentGroup",
        json!({"applicationName": "bench", "deploymentGroupName": "one-host",
               "serviceRoleArn": "arn:aws:iam::123456789012:role/bench",
               "onPremisesInstanceTagFilters": [{"Key": "bench", "Value": "bundle", "Type": "KEY_AND_VALUE"}]}),
    )
    .await?;

    let work = TempDir::new("bundles")?;
    let mut bundles = Vec::new();
    for (kind, write) in [("tgz", write_tgz as fn(&Path, usize) -> anyhow::Result<PathBuf>), ("zip", write_zip)] {
        let started = Instant::now();
        let path = write(&work.0, options.size_mb)?;
        println!("{kind}: {:.0} MB, made in {:.1} s", megabytes(&path)?, started.elapsed().as_secs_f64());
        bundles.push((kind, path));
    }

    // The built-in store, and the external one: (name, endpoint, keys, bucket).
    let mut stores =
        vec![("built-in", server.environment["AWS_ENDPOINT_URL"].clone(), admin_keys(&server.environment)?, "bench")];
    if let Some(store) = &external {
        stores.push(("external", store.endpoint.clone(), (EXTERNAL_KEY.into(), EXTERNAL_SECRET.into()), "elsewhere"));
    }
    println!("{:<9} {:<4} {:>10} {:>10} {:>10} {:>10}", "store", "kind", "agent", "agent MB/s", "curl+tar", "ratio");
    for (store, endpoint, keys, bucket) in &stores {
        let store_client = client_for(endpoint, keys)?;
        store_client.create_bucket(bucket).await?;
        for (kind, path) in &bundles {
            let key = format!("big.{kind}");
            let etag = store_client.put_file(bucket, &key, path, &mut |_, _| {}).await?;
            let agent = agent_download(&client, bucket, &key, kind, &etag).await?;
            let baseline = curl_and_unpack(endpoint, keys, bucket, &key, kind, &work.0)?;
            let size = megabytes(path)?;
            println!(
                "{store:<9} {kind:<4} {:>9.2}s {:>10.0} {:>9.2}s {:>9.2}x",
                agent.as_secs_f64(),
                size / agent.as_secs_f64(),
                baseline.as_secs_f64(),
                agent.as_secs_f64() / baseline.as_secs_f64()
            );
        }
    }
    let (now, peak) = host.memory_mib()?;
    println!("agent memory: peak resident {peak:.1} MiB (now {now:.1} MiB)");
    drop(host);
    drop(server);
    Ok(())
}

fn megabytes(path: &Path) -> anyhow::Result<f64> {
    Ok(std::fs::metadata(path)?.len() as f64 / 1e6)
}

/// Deploys the object and returns how long the host's DownloadBundle took.
async fn agent_download(client: &Client, bucket: &str, key: &str, kind: &str, etag: &str) -> anyhow::Result<Duration> {
    let created = codedeploy(
        client,
        "CreateDeployment",
        json!({"applicationName": "bench", "deploymentGroupName": "one-host",
               "revision": {"revisionType": "S3",
                            "s3Location": {"bucket": bucket, "key": key, "bundleType": kind, "eTag": etag}}}),
    )
    .await?;
    let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
    let info = wait_for_end(client, &id, Duration::from_secs(900)).await?;
    if info["status"] != "Succeeded" {
        bail!("deployment {id} of {bucket}/{key} ended {}: {}", info["status"], info["errorInformation"]);
    }
    let got: Value = client
        .call("CodeDeploy_20141006.GetDeploymentInstance", &json!({"deploymentId": id, "instanceId": "bundle-host"}))
        .await?;
    let events = got["instanceSummary"]["lifecycleEvents"].as_array().cloned().unwrap_or_default();
    let download = events
        .iter()
        .find(|event| event["lifecycleEventName"] == "DownloadBundle")
        .context("no DownloadBundle event")?;
    let seconds = download["endTime"].as_f64().unwrap_or(0.0) - download["startTime"].as_f64().unwrap_or(0.0);
    Ok(Duration::from_secs_f64(seconds.max(0.0)))
}

/// `curl --aws-sigv4` to a file, then `tar -xzf` or `unzip -q` into a fresh directory: what a
/// shell script would do.
fn curl_and_unpack(
    endpoint: &str,
    keys: &(String, String),
    bucket: &str,
    key: &str,
    kind: &str,
    work: &Path,
) -> anyhow::Result<Duration> {
    let file = work.join(format!("curl.{kind}"));
    let out = work.join("curl-unpacked");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let fetched = Command::new("curl")
        .args(["-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", keys.0, keys.1))
        .arg("-H")
        .arg("x-amz-content-sha256: UNSIGNED-PAYLOAD")
        .arg("-o")
        .arg(&file)
        .arg(format!("{endpoint}/{bucket}/{key}"))
        .status()?;
    if !fetched.success() {
        bail!("curl failed: {fetched}");
    }
    let unpacked = match kind {
        "zip" => Command::new("unzip").arg("-q").arg(&file).arg("-d").arg(&out).status()?,
        _ => Command::new("tar").arg("-xzf").arg(&file).arg("-C").arg(&out).status()?,
    };
    if !unpacked.success() {
        bail!("unpacking with the command line tool failed: {unpacked}");
    }
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&out);
    Ok(elapsed)
}

fn admin_keys(environment: &HashMap<String, String>) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(&environment["AWS_SHARED_CREDENTIALS_FILE"])?;
    let value = |name: &str| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("no {name} in the credentials file"))
    };
    Ok((value("aws_access_key_id")?, value("aws_secret_access_key")?))
}

fn client_for(endpoint: &str, keys: &(String, String)) -> anyhow::Result<Client> {
    let vars: HashMap<String, String> = [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", keys.0.clone()),
        ("AWS_SECRET_ACCESS_KEY", keys.1.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Client::new(ClientSettings::resolve(&Overrides::default(), &vars)?))
}

/// Files of incompressible bytes, 1 MiB each, `size_mb` of them (what a bundle of built
/// binaries and assets looks like to a compressor).
fn payload(size_mb: usize) -> impl Iterator<Item = (String, Vec<u8>)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size_mb).map(move |index| {
        let mut bytes = vec![0u8; 1 << 20];
        for chunk in bytes.chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()[..chunk.len()]);
        }
        (format!("payload/part-{index:04}.bin"), bytes)
    })
}

const APPSPEC: &[u8] = b"version: 0.0\nos: linux\n";

fn write_tgz(dir: &Path, size_mb: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join("big.tgz");
    let encoder = flate2::write::GzEncoder::new(BufWriter::new(File::create(&path)?), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    for (name, bytes) in std::iter::once(("appspec.yml".to_owned(), APPSPEC.to_vec())).chain(payload(size_mb)) {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes.as_slice())?;
    }
    archive.into_inner()?.finish()?.flush()?;
    Ok(path)
}

fn write_zip(dir: &Path, size_mb: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join("big.zip");
    let mut archive = zip::ZipWriter::new(BufWriter::new(File::create(&path)?));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    for (name, bytes) in std::iter::once(("appspec.yml".to_owned(), APPSPEC.to_vec())).chain(payload(size_mb)) {
        archive.start_file(name, options)?;
        archive.write_all(&bytes)?;
    }
    archive.finish()?.flush()?;
    Ok(path)
}
