//! `landfall router`: the built-in traffic router of one target group. It serves HTTP/1.1 and
//! HTTP/2 (cleartext) on its listener and forwards each request to one of the group's backends,
//! chosen by weight among those in rotation that pass their health checks. It takes the desired
//! state from the server (a long poll), runs the health checks, drains backends leaving rotation
//! (no new requests; in-flight ones finish, up to the deregistration delay), and reports each
//! backend's state back, which is what BlockTraffic and AllowTraffic wait for.

mod table;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use landfall_api::landfall::{
    GetRouterStateInput, ReportTargetHealthInput, TARGET_PREFIX, TargetGroupOutput, TargetReport,
};
use landfall_client::Client;
use tokio::net::TcpListener;

pub use table::{Health, Table};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

pub struct RouterConfig {
    pub target_group: String,
    pub listener: TcpListener,
    pub client: Client,
}

struct Router {
    name: String,
    table: Mutex<Table>,
    http: HttpClient<HttpConnector, ProxyBody>,
    api: Client,
}

impl Router {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Routes until `shutdown` resolves.
pub async fn run(config: RouterConfig, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    let http = HttpClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
    let router = Arc::new(Router {
        name: config.target_group.clone(),
        table: Mutex::new(Table::default()),
        http,
        api: config.client,
    });
    let sync = tokio::spawn(follow_the_server(Arc::clone(&router)));
    let checks = tokio::spawn(check_forever(Arc::clone(&router)));
    tracing::info!(target_group = %router.name, listen = %config.listener.local_addr()?, "routing");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = config.listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let router = Arc::clone(&router);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let router = Arc::clone(&router);
                        async move { Ok::<_, Infallible>(forward(&router, request, peer).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    sync.abort();
    checks.abort();
    Ok(())
}

/// Hop-by-hop headers: about one connection, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(router: &Router, request: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
    let (mut parts, body) = request.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts.headers.append("x-forwarded-for", peer.ip().to_string().parse().expect("an IP address is a header value"));
    // A request without a body can go to a second backend if the first cannot be reached.
    let bodiless = body.is_end_stream();
    let mut body = Some(body.boxed());
    let mut tried: Vec<String> = Vec::new();
    loop {
        let Some((address, in_flight)) = router.table().pick(&tried) else {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy target in rotation\n");
        };
        let guard = InFlight(in_flight);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("http://{address}{path}").parse::<hyper::Uri>() else {
            return plain(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        let mut outgoing = Request::builder().method(parts.method.clone()).uri(uri).version(hyper::Version::HTTP_11);
        if let Some(headers) = outgoing.headers_mut() {
            *headers = parts.headers.clone();
        }
        let outgoing_body = body.take().unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed());
        let Ok(outgoing) = outgoing.body(outgoing_body) else {
            return plain(StatusCode::BAD_REQUEST, "bad request\n");
        };
        match router.http.request(outgoing).await {
            Ok(response) => {
                let (mut head, incoming) = response.into_parts();
                for name in HOP_BY_HOP {
                    head.headers.remove(name);
                }
                return Response::from_parts(head, Guarded { inner: incoming, _guard: guard }.boxed());
            }
            Err(error) if error.is_connect() && bodiless && tried.len() < 2 => {
                tracing::debug!(%address, %error, "backend unreachable; trying another");
                tried.push(address);
            }
            Err(error) => {
                tracing::debug!(%address, %error, "backend failed");
                return plain(StatusCode::BAD_GATEWAY, "the target did not answer\n");
            }
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response =
        Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

/// Keeps a request counted as in flight (by [`Table::pick`]) until its response body is
/// finished or dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight.
struct Guarded {
    inner: Incoming,
    _guard: InFlight,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Keeps the table in step with the server's desired state, and the server told of the table.
async fn follow_the_server(router: Arc<Router>) {
    let target = format!("{TARGET_PREFIX}.GetRouterState");
    loop {
        let known_version = router.table().version;
        let input = GetRouterStateInput { name: Some(router.name.clone()), known_version };
        match router.api.call::<_, TargetGroupOutput>(&target, &input).await {
            Ok(output) => {
                if Some(output.target_group.version) != known_version {
                    router.table().apply(&output.target_group, Instant::now());
                    tracing::info!(version = output.target_group.version, "target group state taken");
                    report(&router).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the target group's state; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Health checks every interval, draining progress, and reports when anything changed (and
/// every few seconds regardless, so a restarted server hears from its routers).
async fn check_forever(router: Arc<Router>) {
    let mut last: Vec<TargetReport> = Vec::new();
    let mut last_sent = Instant::now();
    loop {
        let (checks, health_check) = {
            let table = router.table();
            (table.to_check(), table.health_check.clone())
        };
        let timeout = Duration::from_secs(u64::from(health_check.timeout_seconds.max(1)));
        let results = futures_join(checks.into_iter().map(|(address, generation)| {
            let router = Arc::clone(&router);
            let path = health_check.path.clone();
            async move {
                let result = check(&router, &address, &path, timeout).await;
                (address, generation, result)
            }
        }))
        .await;
        let reports = {
            let mut table = router.table();
            for (address, generation, result) in results {
                table.record_check(&address, generation, result);
            }
            table.advance_draining(Instant::now());
            table.reports()
        };
        let due = reports != last || last_sent.elapsed() > Duration::from_secs(10);
        if due && send(&router, &reports).await {
            last = reports;
            last_sent = Instant::now();
        }
        let interval = Duration::from_secs(u64::from(health_check.interval_seconds.max(1)));
        // Draining is looked at more often than the checks run.
        let slice = Duration::from_millis(200);
        let started = Instant::now();
        while started.elapsed() < interval {
            tokio::time::sleep(slice).await;
            let drained_now = {
                let mut table = router.table();
                let before = table.reports();
                table.advance_draining(Instant::now());
                table.reports() != before
            };
            if drained_now {
                break;
            }
        }
    }
}

/// Runs the futures concurrently and collects their outputs.
async fn futures_join<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(output) = handle.await {
            outputs.push(output);
        }
    }
    outputs
}

async fn check(router: &Router, address: &str, path: &str, timeout: Duration) -> Result<(), String> {
    let uri: hyper::Uri = format!("http://{address}{path}").parse().map_err(|e| format!("bad check URL: {e}"))?;
    let request = Request::get(uri)
        .header("user-agent", concat!("landfall-router/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, router.http.request(request)).await {
        Err(_) => Err(format!("GET {path} timed out after {} s", timeout.as_secs())),
        Ok(Err(error)) => Err(format!("GET {path}: {}", landfall_client::describe(&error))),
        Ok(Ok(response)) => {
            let status = response.status();
            // Read the body so the connection can be reused.
            let _ = response.into_body().collect().await;
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                Err(format!("GET {path} answered HTTP {}", status.as_u16()))
            }
        }
    }
}

async fn report(router: &Router) {
    let reports = router.table().reports();
    send(router, &reports).await;
}

async fn send(router: &Router, reports: &[TargetReport]) -> bool {
    let input = ReportTargetHealthInput { name: Some(router.name.clone()), reports: Some(reports.to_vec()) };
    let target = format!("{TARGET_PREFIX}.ReportTargetHealth");
    match router.api.call::<_, serde_json::Value>(&target, &input).await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "cannot report target health");
            false
        }
    }
}

/// Binds the router's listener.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("binding {address}"))
}
