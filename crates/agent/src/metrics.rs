//! The agent's own figures, served at `GET /metrics` on `landfall_metrics_listen` when the
//! configuration names one: polls, lifecycle events and their durations. Unauthenticated (it
//! tells how many events ran, nothing of what they did): bind it where only the scraper reaches.

use std::sync::Arc;
use std::time::Duration;

use landfall_metrics::{Family, Kind, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FAMILIES: [Family; 3] = [
    Family {
        name: "landfall_agent_polls_total",
        kind: Kind::Counter,
        help: "Polls for lifecycle events by outcome (command, empty, error).",
    },
    Family {
        name: "landfall_agent_lifecycle_event_duration_seconds",
        kind: Kind::Histogram,
        help: "Time this host took for a lifecycle event, by event and result.",
    },
    Family { name: "landfall_agent_info", kind: Kind::Gauge, help: "The agent's version (always 1)." },
];

#[derive(Debug, Default)]
pub struct AgentMetrics {
    registry: Registry,
}

impl AgentMetrics {
    pub fn poll(&self, outcome: &'static str) {
        self.registry.count("landfall_agent_polls_total", vec![("outcome", outcome.to_owned())]);
    }

    pub fn lifecycle_event(&self, event: &str, succeeded: bool, took: Duration) {
        let result = if succeeded { "Succeeded" } else { "Failed" };
        let labels = vec![("event", event.to_owned()), ("result", result.to_owned())];
        self.registry.observe("landfall_agent_lifecycle_event_duration_seconds", labels, took);
    }

    pub fn render(&self) -> String {
        let version = vec![("version", env!("CARGO_PKG_VERSION").to_owned())];
        self.registry.render(&FAMILIES, &[("landfall_agent_info", version, 1.0)])
    }
}

/// Answers `GET /metrics` on `listener` until the task is dropped; anything else gets a 404.
pub async fn serve(listener: TcpListener, metrics: Arc<AgentMetrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // A request line and headers fit in a few KB; a scraper sends no body.
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            let read = async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                true
            };
            if !matches!(tokio::time::timeout(Duration::from_secs(10), read).await, Ok(true)) {
                return;
            }
            let first_line = request.split(|b| *b == b'\n').next().unwrap_or_default();
            let is_metrics = first_line.starts_with(b"GET /metrics ") || first_line.starts_with(b"GET /metrics?");
            let (status, content_type, body) = if is_metrics {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
            } else {
                ("404 Not Found", "text/plain; charset=utf-8", "only /metrics is served here\n".to_owned())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_reports_polls_and_events() {
        let metrics = AgentMetrics::default();
        metrics.poll("empty");
        metrics.lifecycle_event("Install", true, Duration::from_millis(20));
        let text = metrics.render();
        assert!(text.contains("landfall_agent_polls_total{outcome=\"empty\"} 1\n"));
        assert!(text.contains(
            "landfall_agent_lifecycle_event_duration_seconds_count{event=\"Install\",result=\"Succeeded\"} 1\n"
        ));
        assert!(text.contains("landfall_agent_info{version=\""));
    }
}
