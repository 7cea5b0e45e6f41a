//! `landfall-bench fleet`: how fast a deployment crosses a fleet, measured with a protocol-level
//! host simulator. Each simulated host is a registered instance with its own agent key that
//! speaks the real agent protocol over loopback (long-poll PollHostCommand,
//! GetDeploymentSpecification, PutHostCommandAcknowledgement, PutHostCommandComplete) and runs
//! every lifecycle event as a no-op. What is measured is therefore the control plane: the time
//! from CreateDeployment to Succeeded, and the server's CPU time and peak memory.
//!
//! `landfall-bench fleet --server BIN [--hosts 200] [--rounds 3] [--config CodeDeployDefault.AllAtOnce]`

use std::path::PathBuf;
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

use crate::{codedeploy, cpu_seconds, create_app_and_group, start_server, status_kib, wait_for_end};

struct Options {
    server: PathBuf,
    hosts: usize,
    rounds: usize,
    config: String,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options =
        Options { server: PathBuf::new(), hosts: 200, rounds: 3, config: "CodeDeployDefault.AllAtOnce".into() };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--hosts" => options.hosts = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse()?,
            "--config" => options.config = value()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("usage: landfall-bench fleet --server PATH [--hosts N] [--rounds N] [--config NAME]");
    }
    Ok(options)
}

/// One simulated host: its identity and a keep-alive connection to the server.
struct SimHost {
    arn: String,
    credentials: Credentials,
    region: String,
    uri: Uri,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl SimHost {
    async fn connect(endpoint: &str, arn: String, credentials: Credentials, region: String) -> anyhow::Result<SimHost> {
        let uri: Uri = format!("{endpoint}/").parse()?;
        let address = format!("{}:{}", uri.host().context("no host")?, uri.port_u16().context("no port")?);
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(SimHost { arn, credentials, region, uri, sender })
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

    /// Runs every command it is given as a no-op, forever.
    async fn serve(mut self) -> anyhow::Result<()> {
        loop {
            let polled = self.call("PollHostCommand", json!({"HostIdentifier": self.arn})).await?;
            let Some(command) = polled.get("HostCommand").filter(|c| !c.is_null()) else { continue };
            let id = command["HostCommandIdentifier"].as_str().unwrap_or_default().to_owned();
            let execution = command["DeploymentExecutionId"].as_str().unwrap_or_default().to_owned();
            self.call(
                "GetDeploymentSpecification",
                json!({"DeploymentExecutionId": execution, "HostIdentifier": self.arn}),
            )
            .await?;
            let ack = json!({"HostCommandIdentifier": id, "Diagnostics": {"Format": "JSON", "Payload": "{\"IsCommandNoop\":true}"}});
            self.call("PutHostCommandAcknowledgement", ack).await?;
            let payload = json!({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""}).to_string();
            let complete = json!({"HostCommandIdentifier": id, "CommandStatus": "Succeeded",
                                  "Diagnostics": {"Format": "JSON", "Payload": payload}});
            self.call("PutHostCommandComplete", complete).await?;
        }
    }
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, _) = start_server(&options.server, &[]).await?;
    let pid = server.child.id();
    let settings = ClientSettings::resolve(&Overrides::default(), &server.environment)?;
    let client = Client::new(settings.clone());
    create_app_and_group(&client, ("fleet", "all", &options.config), ("fleet", "bench")).await?;
    let call = |op, input| codedeploy(&client, op, input);

    let registering = Instant::now();
    let mut hosts = Vec::with_capacity(options.hosts);
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
        let host = SimHost::connect(&settings.endpoint, arn, credentials, settings.region.clone()).await?;
        hosts.push(tokio::spawn(host.serve()));
    }
    println!("registered {} simulated hosts in {:.1} s", options.hosts, registering.elapsed().as_secs_f64());
    println!("deployment configuration: {}", options.config);

    for round in 1..=options.rounds {
        let cpu_before = cpu_seconds(pid)?;
        let started = Instant::now();
        let created = call(
            "CreateDeployment",
            json!({"applicationName": "fleet", "deploymentGroupName": "all",
                   "revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": format!("round-{round}.tgz"), "bundleType": "tgz"}}}),
        )
        .await?;
        let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
        let info = wait_for_end(&client, &id, Duration::from_secs(300)).await?;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds(pid)? - cpu_before;
        println!(
            "round {round}: {} hosts x 7 events {} in {:.2} s (CreateDeployment to {}); server CPU {:.2} s",
            options.hosts,
            info["status"].as_str().unwrap_or("?"),
            elapsed.as_secs_f64(),
            info["status"].as_str().unwrap_or("?"),
            cpu
        );
    }
    println!(
        "server memory: resident {:.1} MiB now, peak {:.1} MiB",
        status_kib(pid, "VmRSS:")? as f64 / 1024.0,
        status_kib(pid, "VmHWM:")? as f64 / 1024.0
    );
    for host in &hosts {
        host.abort();
    }
    Ok(())
}
