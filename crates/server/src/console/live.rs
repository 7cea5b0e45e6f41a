//! Live pages: server-sent event streams that re-render a deployment's page as it changes, and
//! follow a hook's log as the agent streams it; and the few lines of script that apply them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use landfall_api::landfall::GetLifecycleEventLogInput;
use tokio::sync::mpsc;

use super::{Session, pages};
use crate::api::common::Ctx;
use crate::body::Body;
use crate::state::AppState;

/// `/console/assets/console.js`: every element with `data-live` follows the event stream it
/// names (`update` replaces its content, `append` adds text, `end` closes the stream). Without
/// script the pages still work; they just do not update by themselves.
pub const SCRIPT: &str = r#"(function () {
  document.querySelectorAll('[data-live]').forEach(function (region) {
    var source = new EventSource(region.getAttribute('data-live'));
    source.addEventListener('update', function (event) { region.innerHTML = JSON.parse(event.data); });
    source.addEventListener('append', function (event) {
      var atEnd = region.scrollTop + region.clientHeight >= region.scrollHeight - 4;
      var text = region.textContent + JSON.parse(event.data);
      // A page holds the newest 2 MB of a followed log; the whole of it is a page load away.
      if (text.length > 2000000) { text = '[earlier output is no longer shown here]\n' + text.slice(-1500000); }
      region.textContent = text;
      if (atEnd) { region.scrollTop = region.scrollHeight; }
    });
    source.addEventListener('end', function () { source.close(); region.setAttribute('data-ended', 'true'); });
  });
})();
"#;

/// How often a stream looks for changes.
const POLL: Duration = Duration::from_millis(400);
/// A comment this often keeps proxies from closing an idle stream and finds gone clients.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A response body fed by a channel: the stream ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// One server-sent event whose data is `value` as JSON (one line, whatever it holds).
fn event(name: &str, value: &str) -> Bytes {
    let data = serde_json::to_string(value).unwrap_or_default();
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Waits before looking again; after a quiet spell sends a comment, which also finds a client
/// that has gone. Returns whether the client is still there.
async fn pause(sender: &mpsc::Sender<Bytes>, quiet: &mut Duration) -> bool {
    tokio::time::sleep(POLL).await;
    *quiet += POLL;
    if *quiet < KEEPALIVE {
        return true;
    }
    *quiet = Duration::ZERO;
    sender.send(Bytes::from_static(b": keepalive\n\n")).await.is_ok()
}

fn stream(produce: impl FnOnce(mpsc::Sender<Bytes>) -> tokio::task::JoinHandle<()>) -> Response<Body> {
    let (sender, receiver) = mpsc::channel(8);
    produce(sender);
    let mut response = Response::new(http_body_util::BodyExt::boxed(ChannelBody(receiver)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// The live part of a deployment's page, sent again whenever the deployment changes, until it
/// is over.
pub fn deployment(state: Arc<AppState>, session: Session, id: &str, query: &HashMap<String, String>) -> Response<Body> {
    let id = id.to_owned();
    let query = query.clone();
    stream(move |sender| {
        tokio::spawn(async move {
            // The page was rendered as of this version and last timeline entry: nothing to
            // send until something changes.
            let rendered = query.get("v").and_then(|v| v.parse().ok()).zip(query.get("n").and_then(|n| n.parse().ok()));
            let mut seen: Option<(i64, i64)> = rendered;
            let mut last_entry = seen.map_or(0, |(_, entry)| entry);
            let mut quiet = Duration::ZERO;
            loop {
                let Ok(Some(record)) = state.store.deployment(&id).await else { return };
                // A new version, or new timeline entries (a stop asked for, an alarm seen): only
                // the newest entry is read to tell, however many came since the last look.
                let newest = state.store.latest_deployment_events(&id, 1).await.unwrap_or_default();
                last_entry = newest.last().map_or(last_entry, |entry| entry.sequence);
                let now = (record.version, last_entry);
                let complete = record.info.status.as_ref().is_some_and(landfall_api::shapes::DeploymentStatus::is_over);
                if seen == Some(now) && complete {
                    let _ = sender.send(event("end", "")).await;
                    return;
                }
                if seen != Some(now) {
                    seen = Some(now);
                    quiet = Duration::ZERO;
                    let events = pages::timeline_of(&state, &id).await;
                    let fragment = pages::deployment_live(&state, &session, &record, &events, &query).await;
                    if sender.send(event("update", &fragment)).await.is_err() {
                        return;
                    }
                    if complete {
                        let _ = sender.send(event("end", "")).await;
                        return;
                    }
                }
                if !pause(&sender, &mut quiet).await {
                    return;
                }
            }
        })
    })
}

/// A hook's log from `offset` on, as the agent streams it, until the event is over.
pub fn log(state: Arc<AppState>, session: Session, id: &str, query: &HashMap<String, String>) -> Response<Body> {
    let input = GetLifecycleEventLogInput {
        deployment_id: Some(id.to_owned()),
        target_id: query.get("host").cloned(),
        lifecycle_event_name: query.get("event").cloned(),
        offset: query.get("offset").and_then(|o| o.parse().ok()),
        max_bytes: Some(pages::LOG_PAGE_BYTES / 2),
        ..Default::default()
    };
    stream(move |sender| {
        tokio::spawn(async move {
            let mut input = input;
            let mut quiet = Duration::ZERO;
            loop {
                let ctx = Ctx { state: &state, caller: &session.caller, now: state.clock.now() };
                let Ok(output) = crate::api::targets::event_log(&ctx, input.clone()).await else { return };
                if !output.log.is_empty() {
                    quiet = Duration::ZERO;
                    if sender.send(event("append", &output.log)).await.is_err() {
                        return;
                    }
                }
                if output.complete {
                    let _ = sender.send(event("end", "")).await;
                    return;
                }
                input.offset = output.next_offset;
                let caught_up = output.next_offset >= output.size;
                if caught_up && !pause(&sender, &mut quiet).await {
                    return;
                }
            }
        })
    })
}
