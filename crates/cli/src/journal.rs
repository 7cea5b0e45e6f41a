//! `landfall events` (a deployment's timeline, followed live with --follow) and `landfall
//! audit` (who changed what).

use std::time::Duration;

use landfall_api::Timestamp;
use landfall_api::landfall::{
    AuditRecordInfo, DeploymentEventInfo, ListAuditRecordsInput, ListAuditRecordsOutput, ListDeploymentEventsInput,
    ListDeploymentEventsOutput,
};
use landfall_client::Client;

use crate::api::extension;
use crate::status::utc;
use crate::term::{Output, table};

/// Prints a deployment's timeline; with `follow`, keeps printing new entries until the
/// deployment is over.
pub async fn events(client: &Client, output: &Output, deployment_id: &str, follow: bool) -> anyhow::Result<()> {
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let input =
            ListDeploymentEventsInput { deployment_id: Some(deployment_id.into()), after_sequence: Some(after) };
        let page: ListDeploymentEventsOutput = extension(client, "ListDeploymentEvents", &input).await?;
        if let Some(last) = page.events.last() {
            after = last.sequence;
        }
        let more = !page.events.is_empty();
        if output.json {
            all.extend(page.events);
        } else {
            for event in &page.events {
                println!("{}", line(event));
            }
        }
        if page.complete && !more {
            break;
        }
        if !more && !follow {
            break;
        }
        if !more {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    if output.json { output.json(&all) } else { Ok(()) }
}

fn line(event: &DeploymentEventInfo) -> String {
    let time = utc(event.time.millis() / 1000);
    let kind =
        serde_json::to_value(event.event_type).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    format!("{time}  {kind:<21}  {}", event.message)
}

/// Which audit records to show.
#[derive(Debug, Default)]
pub struct AuditQuery {
    /// Only records at most this old.
    pub since: Option<Duration>,
    pub access_key_id: Option<String>,
    pub operation: Option<String>,
    /// At most this many, the newest.
    pub limit: usize,
}

/// `30s`, `15m`, `2h`, `7d`.
pub fn parse_age(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(number.checked_mul(seconds)?))
}

pub async fn audit(client: &Client, output: &Output, query: AuditQuery) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let start_time = query.since.map(|age| Timestamp(now.saturating_sub(age).as_millis() as i64));
    let mut records: Vec<AuditRecordInfo> = Vec::new();
    let mut next_token = None;
    loop {
        let input = ListAuditRecordsInput {
            start_time,
            end_time: None,
            access_key_id: query.access_key_id.clone(),
            operation: query.operation.clone(),
            next_token,
        };
        let page: ListAuditRecordsOutput = extension(client, "ListAuditRecords", &input).await?;
        records.extend(page.records);
        // Oldest first: only the newest `limit` are kept.
        if records.len() > query.limit {
            records.drain(..records.len() - query.limit);
        }
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    if output.json {
        return output.json(&records);
    }
    if records.is_empty() {
        println!("no audit records match");
        return Ok(());
    }
    let mut rows =
        vec![["TIME", "ACCESS KEY", "ROLE", "OPERATION", "RESOURCES", "FROM", "RESULT"].map(str::to_owned).to_vec()];
    for record in records {
        let resources: Vec<String> = record.resources.iter().map(|(key, value)| format!("{key}={value}")).collect();
        rows.push(vec![
            utc(record.time.millis() / 1000),
            record.access_key_id,
            record.role,
            record.operation,
            resources.join(" "),
            record.source_address,
            record.result,
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_age("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_age("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_age("h"), None);
        assert_eq!(parse_age("5"), None);
        assert_eq!(parse_age("5w"), None);
    }
}
