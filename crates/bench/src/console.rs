//! `landfall-bench console`: how fast the web console's pages come back, and how big they are,
//! with a deployment of many hosts in progress. It registers `--hosts` instances (no agents: the
//! deployment stays in progress with every host pending), signs in as the administrator, then
//! fetches each page `--rounds` times over one keep-alive connection and prints the median and
//! slowest time to the whole page, and its size.
//!
//! `landfall-bench console --server BIN [--hosts 1000] [--rounds 30]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use landfall_client::{Client, ClientSettings, Overrides};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::{codedeploy, create_app_and_group, start_server, status_kib};

struct Options {
    server: PathBuf,
    hosts: usize,
    rounds: usize,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options { server: PathBuf::new(), hosts: 1000, rounds: 30 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--hosts" => options.hosts = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if options.server.as_os_str().is_empty() || options.rounds == 0 {
        bail!("usage: landfall-bench console --server PATH [--hosts N] [--rounds N]");
    }
    Ok(options)
}

/// A browser's connection: one keep-alive HTTP/1.1 connection and the session cookie.
struct Browser {
    endpoint: String,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    cookie: String,
}

impl Browser {
    async fn connect(endpoint: &str) -> anyhow::Result<Browser> {
        let uri: Uri = endpoint.parse()?;
        let address = format!("{}:{}", uri.host().context("no host")?, uri.port_u16().context("no port")?);
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Browser { endpoint: endpoint.to_owned(), sender, cookie: String::new() })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<String>,
    ) -> anyhow::Result<(u16, String, String)> {
        let host = self.endpoint.trim_start_matches("http://").to_owned();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header("host", host)
            .header("origin", &self.endpoint);
        if !self.cookie.is_empty() {
            request = request.header("cookie", &self.cookie);
        }
        if form.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = request.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
        // The connection takes the next request only once it has finished with the last one.
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, cookie.unwrap_or_default(), String::from_utf8_lossy(&body).into_owned()))
    }
}

pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let options = options(args)?;
    let (server, _) = start_server(&options.server, &[]).await?;
    let pid = server.child.id();
    let settings = ClientSettings::resolve(&Overrides::default(), &server.environment)?;
    let client = Client::new(settings.clone());
    create_app_and_group(&client, ("shop", "web", "CodeDeployDefault.OneAtATime"), ("role", "web")).await?;
    let call = |op, input| codedeploy(&client, op, input);
    let registering = Instant::now();
    for index in 0..options.hosts {
        let _: Value = client
            .call(
                "Landfall_20261122.RegisterInstance",
                &json!({"instanceName": format!("host-{index:04}"), "tags": [{"Key": "role", "Value": "web"}]}),
            )
            .await?;
    }
    println!("registered {} instances in {:.1} s", options.hosts, registering.elapsed().as_secs_f64());
    let created = call(
        "CreateDeployment",
        json!({"applicationName": "shop", "deploymentGroupName": "web",
               "revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "v1.tgz", "bundleType": "tgz"}}}),
    )
    .await?;
    let id = created["deploymentId"].as_str().unwrap_or_default().to_owned();
    // Let the engine start it: every host gets its first event queued.
    tokio::time::sleep(Duration::from_secs(2)).await;

    time_pages(&settings, ("shop", "web"), &id, options.hosts, options.rounds).await?;
    println!("server memory: resident {:.1} MiB", status_kib(pid, "VmRSS:")? as f64 / 1024.0);
    Ok(())
}

/// Signs in to the console as the administrator and times the pages about deployment `id` (of
/// `hosts` hosts, to `group` of `application`) and the API calls about it, `rounds` times each.
pub(crate) async fn time_pages(
    settings: &ClientSettings,
    (application, group): (&str, &str),
    id: &str,
    hosts: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let mut browser = Browser::connect(&settings.endpoint).await?;
    let form = format!(
        "access_key_id={}&secret_access_key={}",
        settings.credentials.access_key_id,
        url_encode(&settings.credentials.secret_access_key)
    );
    let (status, cookie, _) = browser.send(Method::POST, "/console/login", Some(form)).await?;
    if status != 303 || cookie.is_empty() {
        bail!("signing in answered {status}");
    }
    browser.cookie = cookie.split(';').next().unwrap_or_default().to_owned();

    let last_page = hosts.div_ceil(50).max(1);
    let pages = [
        ("deployment, first 50 hosts", format!("/console/deployments/{id}")),
        ("deployment, last page of hosts", format!("/console/deployments/{id}?page={last_page}")),
        ("deployments list", "/console/deployments".to_owned()),
        ("deployment group", format!("/console/applications/{application}/groups/{group}")),
        ("instances, first page", "/console/instances".to_owned()),
    ];
    println!("{hosts} hosts in deployment {id}; {rounds} fetches of each page over one connection:");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let (status, _, body) = browser.send(Method::GET, &path, None).await?;
            times.push(started.elapsed());
            if status != 200 {
                bail!("{path} answered {status}");
            }
            size = body.len();
        }
        print_times(name, times, size);
    }
    api_calls(&Client::new(settings.clone()), id, rounds).await
}

/// One line: the median and slowest of `times`, and the answer's size.
fn print_times(name: &str, mut times: Vec<Duration>, size: usize) {
    times.sort();
    println!(
        "  {name:<36} median {:>6.1} ms  slowest {:>6.1} ms  {:>6.1} KiB",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        size as f64 / 1024.0
    );
}

/// The API calls a CLI or SDK user makes about a large deployment, each timed like the pages.
async fn api_calls(client: &Client, id: &str, rounds: usize) -> anyhow::Result<()> {
    let listed = codedeploy(client, "ListDeploymentTargets", json!({"deploymentId": id})).await?;
    let first: Vec<Value> = listed["targetIds"].as_array().cloned().unwrap_or_default();
    let batch: Vec<Value> = first.iter().take(25).cloned().collect();
    let calls = [
        ("GetDeployment", json!({"deploymentId": id})),
        ("ListDeploymentTargets, first page", json!({"deploymentId": id})),
        (
            "ListDeploymentTargets, Failed only",
            json!({"deploymentId": id, "targetFilters": {"TargetStatus": ["Failed"]}}),
        ),
        ("BatchGetDeploymentTargets, 25", json!({"deploymentId": id, "targetIds": batch})),
        ("GetDeploymentTarget", json!({"deploymentId": id, "targetId": first.first().cloned().unwrap_or_default()})),
    ];
    println!("{rounds} calls of each API operation:");
    for (name, input) in calls {
        let operation = name.split(',').next().unwrap_or(name);
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let answer = codedeploy(client, operation, input.clone()).await?;
            times.push(started.elapsed());
            size = answer.to_string().len();
        }
        print_times(name, times, size);
    }
    Ok(())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
