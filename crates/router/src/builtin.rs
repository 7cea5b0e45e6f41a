//! The built-in data plane: a reverse proxy (HTTP/1.1 and cleartext HTTP/2 to clients,
//! HTTP/1.1 to backends) that sends each request to a healthy backend in rotation by weight,
//! runs the health checks itself, and drains backends leaving rotation (no new requests; those
//! in flight are counted until their response bodies end, and cut off after the deregistration
//! delay).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use landfall_api::landfall::{TargetGroupInfo, TargetReport};
use landfall_listener::{ConnectionLimits, Guarded, RequestBody};
use tokio::net::TcpListener;

use crate::Dataplane;
use crate::table::Table;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

pub struct Builtin {
    table: Mutex<Table>,
    http: HttpClient<HttpConnector, ProxyBody>,
    /// When the health checks last ran.
    checked: Mutex<Option<Instant>>,
}

impl Builtin {
    pub fn new() -> Arc<Builtin> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let http =
            HttpClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Arc::new(Builtin { table: Mutex::new(Table::default()), http, checked: Mutex::new(None) })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Accepts client connections and proxies their requests, forever, within `limits` (a
    /// client that holds a connection without using it is closed, as on the server).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, limits: ConnectionLimits) {
        let handler = move |peer, request| {
            let router = Arc::clone(&self);
            async move { forward(&router, request, peer).await }
        };
        let _ = landfall_listener::serve(listener, None, limits, handler, std::future::pending()).await;
    }
}

#[async_trait::async_trait]
impl Dataplane for Builtin {
    fn kind(&self) -> &'static str {
        "builtin"
    }

    async fn apply(&self, group: &TargetGroupInfo) {
        self.table().apply(group, Instant::now());
    }

    async fn tick(&self) -> Vec<TargetReport> {
        let (checks, health_check) = {
            let table = self.table();
            (table.to_check(), table.health_check.clone())
        };
        let interval = Duration::from_secs(u64::from(health_check.interval_seconds.max(1)));
        let due = self.checked.lock().unwrap_or_else(|p| p.into_inner()).is_none_or(|at| at.elapsed() >= interval);
        if due {
            *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            let timeout = Duration::from_secs(u64::from(health_check.timeout_seconds.max(1)));
            let results = join_all(checks.into_iter().map(|(address, generation)| {
                let http = self.http.clone();
                let path = health_check.path.clone();
                async move {
                    let result = check(&http, &address, &path, timeout).await;
                    (address, generation, result)
                }
            }))
            .await;
            let mut table = self.table();
            for (address, generation, result) in results {
                table.record_check(&address, generation, result);
            }
        }
        let mut table = self.table();
        table.advance_draining(Instant::now());
        table.reports()
    }
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

async fn forward(router: &Builtin, request: Request<RequestBody>, peer: SocketAddr) -> Response<ProxyBody> {
    let (mut parts, body) = request.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts.headers.append("x-forwarded-for", peer.ip().to_string().parse().expect("an IP address is a header value"));
    // A request without a body can go to a second backend if the first cannot be reached.
    let bodiless = body.is_end_stream();
    let mut body = Some(body.map_err(BoxError::from).boxed());
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
                return Response::from_parts(head, Guarded::new(incoming.map_err(BoxError::from), guard).boxed());
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

/// Runs the futures concurrently and collects their outputs.
async fn join_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
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

async fn check(
    http: &HttpClient<HttpConnector, ProxyBody>,
    address: &str,
    path: &str,
    timeout: Duration,
) -> Result<(), String> {
    let uri: hyper::Uri = format!("http://{address}{path}").parse().map_err(|e| format!("bad check URL: {e}"))?;
    let request = Request::get(uri)
        .header("user-agent", concat!("landfall-router/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, http.request(request)).await {
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
