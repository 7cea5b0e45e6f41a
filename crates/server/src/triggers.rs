//! Triggers: a deployment group's `triggerConfigurations` turned into webhook deliveries.
//!
//! A step that fires trigger events writes one message per subscribed trigger into the store's
//! outbox, in the same transaction as the change it reports ([`messages`]). [`deliver_forever`]
//! sends them: an HTTP POST of an SNS-style notification (so code written for CodeDeploy's SNS
//! messages reads them), signed with an HMAC-SHA256 header, retried with backoff until the
//! receiver answers 2xx or the message expires. Messages about one deployment to one receiver go
//! out one at a time, in order; a receiver tells repeats apart by the message id, which every
//! attempt repeats.
//!
//! A URL a deployment group names itself (any key that may change groups can write one) is
//! held to an [`AddressPolicy`]: by default it may not reach this host (loopback), the link-local
//! network (where cloud metadata services answer), unspecified or multicast addresses, nor
//! private networks. The check is made on the addresses the name resolves to at delivery, and
//! only those addresses are connected to (so a name cannot be re-pointed between the check and
//! the connection); such deliveries follow no redirects and use no proxy. URLs the operator maps
//! SNS topic ARNs to (`--sns-topic`) are the operator's own and go anywhere.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use landfall_api::Timestamp;
use landfall_api::shapes::{DeploymentInfo, DeploymentStatus, DeploymentTarget};
use landfall_store::{TriggerMessage, TriggerState};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::ids::new_uuid;
pub use crate::settings::{AddressPolicy, Outbox, TriggerSettings};
use crate::state::AppState;
use landfall_engine::plan::Notification;

/// Resolves the names of trigger URLs to the addresses the policy allows, only.
struct CheckedResolver(AddressPolicy);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|address| policy.refuses(address.ip()).is_none()).collect();
            if allowed.is_empty() {
                let why = found.first().and_then(|address| policy.refuses(address.ip())).unwrap_or("no address");
                return Err(format!("{host} resolves to {why}, which trigger URLs may not reach").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The two ways out: to the operator's URLs, and to URLs deployment groups name.
#[derive(Clone)]
struct Clients {
    operator: reqwest::Client,
    checked: reqwest::Client,
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Delivered and expired messages are kept this long (to tell what was sent), then pruned.
const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The outbox messages for the notifications a step's trigger events make (the planner chose
/// the subscribed triggers).
pub fn messages(
    state: &AppState,
    deployment: &DeploymentInfo,
    notifications: &[Notification],
    now: Timestamp,
) -> Vec<TriggerMessage> {
    notifications
        .iter()
        .map(|notification| {
            let name = &notification.trigger_name;
            let (subject, body) = match &notification.target {
                Some(target) => instance_message(state, name, deployment, target),
                None => deployment_message(state, name, deployment),
            };
            TriggerMessage {
                message_id: new_uuid(),
                deployment_id: deployment.deployment_id.clone().unwrap_or_default(),
                destination: notification.destination.clone(),
                trigger_name: name.clone(),
                event: notification.event.as_str().to_owned(),
                subject,
                body: body.to_string(),
                created_at: now,
                next_attempt_at: now,
                ..Default::default()
            }
        })
        .collect()
}

fn seconds(time: Option<Timestamp>) -> Option<String> {
    time.map(|t| (t.millis() / 1000).to_string())
}

/// CodeDeploy's status words in notifications: SUCCEEDED, IN_PROGRESS, ...
fn status_word(status: &DeploymentStatus) -> String {
    let mut word = String::new();
    for (index, c) in status.as_str().chars().enumerate() {
        if c.is_uppercase() && index > 0 {
            word.push('_');
        }
        word.push(c.to_ascii_uppercase());
    }
    word
}

fn deployment_message(state: &AppState, trigger: &str, deployment: &DeploymentInfo) -> (String, Value) {
    let id = deployment.deployment_id.clone().unwrap_or_default();
    let application = deployment.application_name.clone().unwrap_or_default();
    let status = status_word(deployment.status.as_ref().unwrap_or(&DeploymentStatus::Created));
    let overview = deployment.deployment_overview.clone().unwrap_or_default();
    let count = |n: Option<i64>| n.unwrap_or(0).to_string();
    let mut body = json!({
        "region": state.region,
        "accountId": state.account_id,
        "eventTriggerName": trigger,
        "applicationName": application,
        "deploymentId": id,
        "deploymentGroupName": deployment.deployment_group_name.clone().unwrap_or_default(),
        "createTime": seconds(deployment.create_time),
        "completeTime": seconds(deployment.complete_time),
        "deploymentOverview": {
            "Failed": count(overview.failed),
            "InProgress": count(overview.in_progress),
            "Pending": count(overview.pending),
            "Skipped": count(overview.skipped),
            "Succeeded": count(overview.succeeded),
        },
        "status": status,
    });
    if let Some(error) = &deployment.error_information {
        body["errorInformation"] = json!({
            "ErrorCode": error.code.as_ref().map(|c| c.as_str().to_owned()),
            "ErrorMessage": error.message,
        });
    }
    let subject = format!("{status}: AWS CodeDeploy {id} in {} to {application}", state.region);
    (subject, body)
}

fn instance_message(
    state: &AppState,
    trigger: &str,
    deployment: &DeploymentInfo,
    target: &DeploymentTarget,
) -> (String, Value) {
    let id = deployment.deployment_id.clone().unwrap_or_default();
    let instance = target.instance_target.clone().unwrap_or_default();
    let status = instance.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let instance_id = instance.target_arn.clone().or(instance.target_id.clone()).unwrap_or_default();
    let events: Vec<Value> = instance
        .lifecycle_events
        .iter()
        .flatten()
        .map(|event| {
            json!({
                "LifecycleEvent": event.lifecycle_event_name,
                "LifecycleEventStatus": event.status.as_ref().map(|s| s.as_str().to_owned()),
                "StartTime": seconds(event.start_time),
                "EndTime": seconds(event.end_time),
            })
        })
        .collect();
    let body = json!({
        "region": state.region,
        "accountId": state.account_id,
        "eventTriggerName": trigger,
        "deploymentId": id,
        "instanceId": instance_id,
        "lastUpdatedAt": seconds(instance.last_updated_at),
        "instanceStatus": status,
        "lifecycleEvents": events,
    });
    let subject =
        format!("{}: AWS CodeDeploy {id} in {} on instance {instance_id}", status.to_uppercase(), state.region);
    (subject, body)
}

/// The SNS-style notification a message is delivered as.
fn envelope(message: &TriggerMessage) -> String {
    let topic = if message.destination.starts_with("arn:") { message.destination.as_str() } else { "" };
    json!({
        "Type": "Notification",
        "MessageId": message.message_id,
        "TopicArn": topic,
        "Subject": message.subject,
        "Message": message.body,
        "Timestamp": crate::s3::xml::iso8601(message.created_at.millis()),
    })
    .to_string()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: receivers recompute it with the
/// shared secret, and can refuse old timestamps against replays.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs until the server stops: delivers due messages, retries failed ones.
pub async fn deliver_forever(state: Arc<AppState>) {
    let checked = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .dns_resolver(Arc::new(CheckedResolver(state.triggers.addresses)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build();
    let clients = match (reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build(), checked) {
        (Ok(operator), Ok(checked)) => Clients { operator, checked },
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "cannot make the HTTP client triggers are delivered with");
            return;
        }
    };
    let mut pruned = std::time::Instant::now();
    loop {
        let written = state.outbox.written.notified();
        // One server delivers for all of them; the others wait for its lease to lapse.
        match state.replica.hold(crate::replicas::lease::TRIGGERS).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take the trigger delivery lease");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = std::time::Instant::now();
            let before = Timestamp(state.clock.now().millis() - KEEP_DONE.as_millis() as i64);
            match state.store.prune_trigger_messages(before).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "pruned delivered and expired trigger messages"),
                Err(error) => tracing::warn!(%error, "cannot prune the trigger outbox"),
            }
        }
        let due = match state.store.due_trigger_messages(state.clock.now(), 64).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot read the trigger outbox");
                Vec::new()
            }
        };
        if due.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), written).await;
            continue;
        }
        // Each due message heads its own queue, so they can all go at once.
        let mut attempts = tokio::task::JoinSet::new();
        for message in due {
            let (state, clients) = (state.clone(), clients.clone());
            attempts.spawn(async move { attempt(&state, &clients, message).await });
        }
        while attempts.join_next().await.is_some() {}
    }
}

async fn attempt(state: &AppState, clients: &Clients, mut message: TriggerMessage) {
    let result = send(state, clients, &message).await;
    let now = state.clock.now();
    message.attempts += 1;
    match result {
        Ok(()) => {
            message.state = TriggerState::Delivered;
            message.last_error = None;
        }
        Err(error) => {
            let age = Duration::from_millis((now.millis() - message.created_at.millis()).max(0) as u64);
            let backoff = Duration::from_secs(1u64 << (message.attempts - 1).clamp(0, 10)).min(MAX_BACKOFF);
            if age + backoff > state.triggers.expiry {
                message.state = TriggerState::Expired;
                tracing::warn!(message = %message.message_id, destination = %message.destination, %error,
                    "giving up on a trigger message");
            } else {
                tracing::info!(message = %message.message_id, destination = %message.destination, %error,
                    retry_in = ?backoff, "a trigger message was not delivered");
            }
            message.next_attempt_at = Timestamp(now.millis() + backoff.as_millis() as i64);
            message.last_error = Some(error);
        }
    }
    state.metrics.trigger_delivery(message.state);
    if let Err(error) = state.store.update_trigger_message(&message).await {
        tracing::warn!(message = %message.message_id, %error, "cannot record a trigger delivery");
    }
}

async fn send(state: &AppState, clients: &Clients, message: &TriggerMessage) -> Result<(), String> {
    let direct = message.destination.starts_with("http://") || message.destination.starts_with("https://");
    if direct && !state.triggers.urls_allowed {
        return Err(format!("{} is a URL, and this server delivers only to mapped SNS topics", message.destination));
    }
    let (url, client) = if direct {
        // An address written in the URL is never resolved: check it here.
        let literal = reqwest::Url::parse(&message.destination).ok().and_then(|url| {
            url.host_str().and_then(|host| host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok())
        });
        if let Some(why) = literal.and_then(|ip| state.triggers.addresses.refuses(ip)) {
            return Err(format!("{} is {why}, which trigger URLs may not reach", message.destination));
        }
        (message.destination.clone(), &clients.checked)
    } else {
        match state.triggers.topics.get(&message.destination) {
            Some(url) => (url.clone(), &clients.operator),
            None => {
                return Err(format!("no URL is configured for {} (landfall server --sns-topic)", message.destination));
            }
        }
    };
    let body = envelope(message);
    let now = state.clock.now().millis() / 1000;
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-amz-sns-message-type", "Notification")
        .header("x-amz-sns-message-id", &message.message_id)
        .header("x-landfall-event", &message.event)
        .header("x-landfall-signature", signature(&state.triggers.secret, now, &body))
        .body(body)
        .send()
        .await
        .map_err(|error| format!("{url}: {}", error_chain(&error)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered HTTP {}", response.status().as_u16()))
    }
}

/// An error and its sources, so that the resolver's refusal reaches the message.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_urls_reach_public_addresses_only_unless_the_operator_allows_private_ones() {
        let refused = |policy: AddressPolicy, ip: &str| policy.refuses(ip.parse().unwrap());
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused(AddressPolicy::PrivateToo, ip).is_some(), "{ip}");
            assert!(refused(AddressPolicy::Public, ip).is_some(), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(refused(AddressPolicy::Public, ip).is_some(), "{ip}");
            assert_eq!(refused(AddressPolicy::PrivateToo, ip), None, "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::", "172.32.0.1", "100.128.0.1", "8.8.8.8"] {
            assert_eq!(refused(AddressPolicy::Public, ip), None, "{ip}");
        }
        assert!(refused(AddressPolicy::Public, "169.254.169.254").unwrap().contains("metadata"));
    }

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // Checked against: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", 1_700_000_000, "{\"a\":1}"),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn status_words_are_upper_snake_case() {
        assert_eq!(status_word(&DeploymentStatus::InProgress), "IN_PROGRESS");
        assert_eq!(status_word(&DeploymentStatus::Succeeded), "SUCCEEDED");
    }
}
