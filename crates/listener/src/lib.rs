//! Accepting HTTP connections (HTTP/1.1 and HTTP/2, TLS optional) within bounds, for every
//! listener Landfall runs: the server's API and the router's proxy. Nothing a client does can
//! hold a connection forever or leave the process without descriptors to answer others with
//! ([`connections`] has the rules); requests reach a handler as `Request<RequestBody>`, whose
//! body fails a read that stalls.

pub mod connections;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::{Body, Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use connections::{
    Admitted, BodyError, ConnectionLimits, Connections, Guarded, RequestBody, RequestGuard, raise_open_file_limit,
};

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves connections from `listener` with `handler` until `shutdown` completes, then stops
/// accepting and waits (up to a bound) for requests in flight.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    H: Fn(SocketAddr, Request<RequestBody>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let connections = Connections::new(limits);
    let watchdog = tokio::spawn(connections.clone().watch());
    let mut exhausted = Exhaustion::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        if let Some(pause) = exhausted.failed(&error, &connections) {
                            tokio::time::sleep(pause).await;
                        }
                        continue;
                    }
                };
                exhausted.reset();
                let Some(admitted) = connections.admit() else {
                    tracing::debug!(%peer, "connection turned away: every open connection is busy");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (builder, watcher, tls, handler) = (builder.clone(), graceful.watcher(), tls.clone(), handler.clone());
                tokio::spawn(async move {
                    let Some(acceptor) = tls else {
                        let io = admitted.track(stream);
                        return serve_connection(&admitted, io, peer, handler, &builder, watcher).await;
                    };
                    let handshake = admitted.connections().limits().handshake;
                    let stream = tokio::select! {
                        done = tokio::time::timeout(handshake, acceptor.accept(stream)) => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
                            Err(_) => return tracing::debug!(%peer, "TLS handshake not done in {handshake:?}"),
                        },
                        () = admitted.activity.closed() => return,
                    };
                    let io = admitted.track(stream);
                    serve_connection(&admitted, io, peer, handler, &builder, watcher).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    watchdog.abort();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("shutdown did not wait for connections still open after {DRAIN_TIMEOUT:?}"),
    }
    Ok(())
}

/// Serves one connection's requests until it ends or the rules close it.
async fn serve_connection<I, H, F, B>(
    admitted: &Admitted,
    io: I,
    peer: SocketAddr,
    handler: H,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(SocketAddr, Request<RequestBody>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (activity, connections) = (admitted.activity.clone(), admitted.connections().clone());
    let idle = connections.limits().idle;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let guard = activity.request(&connections);
        let response = handler(peer, request.map(|body| RequestBody::new(body, idle)));
        async move { Ok::<_, Infallible>(response.await.map(|body| Guarded::new(body, guard))) }
    });
    let connection = watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned());
    tokio::select! {
        result = connection => if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        },
        () = admitted.activity.closed() => {}
    }
}

/// Backs off while the process is out of descriptors (or memory for sockets), making room by
/// closing idle connections, and says so in the log at most every ten seconds.
#[derive(Default)]
struct Exhaustion {
    pause: Duration,
    failures: u64,
    last_logged: Option<Instant>,
}

impl Exhaustion {
    /// The pause before accepting again, if the error was the process's and not one connection's.
    fn failed(&mut self, error: &std::io::Error, connections: &Arc<Connections>) -> Option<Duration> {
        use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
        if !matches!(error.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)) {
            tracing::debug!(%error, "accept failed");
            return None;
        }
        self.failures += 1;
        let shed = connections.shed_idle();
        if self.last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                %error,
                failures = self.failures,
                open = connections.open_count(),
                closing_an_idle_one = shed,
                "cannot accept connections; backing off (raise the open-file limit, or lower --max-connections)"
            );
            self.last_logged = Some(Instant::now());
            self.failures = 0;
        }
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        Some(self.pause)
    }

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }
}
