//! `landfall status`: one deployment with its hosts, or the latest deployments.

use landfall_api::shapes::{ListDeploymentsInput, ListDeploymentsOutput};
use landfall_client::Client;

use crate::Outcome;
use crate::api::{deployments_newest_first, list_all, snapshot};
use crate::term::{Output, duration, table};
use crate::view::{fleet_size, host_line, summary};

/// One deployment: its outcome, then each host's state and event. The outcome tells the exit
/// code, so a script can `landfall status d-...` to check one.
pub async fn deployment(client: &Client, output: &Output, id: &str) -> anyhow::Result<Outcome> {
    let snapshot = snapshot(client, id).await?;
    if output.json {
        output.json(&snapshot)?;
    } else {
        let info = &snapshot.deployment;
        println!(
            "{}/{}  config {}  created by {}",
            info.application_name.as_deref().unwrap_or_default(),
            info.deployment_group_name.as_deref().unwrap_or_default(),
            info.deployment_config_name.as_deref().unwrap_or_default(),
            info.creator.as_ref().map_or("user", |c| c.as_str()),
        );
        for line in summary(output, &snapshot) {
            println!("{line}");
        }
        let mut rows = vec![vec!["HOST".to_owned(), "STATUS".to_owned(), "EVENT".to_owned(), "TOOK".to_owned()]];
        for target in &snapshot.targets {
            let line = host_line(target);
            let events = target.lifecycle_events.as_deref().unwrap_or_default();
            let first = events.iter().filter_map(|e| e.start_time).min();
            let last = events.iter().filter_map(|e| e.end_time).max();
            let took = match (first, last) {
                (Some(a), Some(b)) => duration((b.millis() - a.millis()) as f64 / 1000.0),
                _ => String::new(),
            };
            rows.push(vec![line.name, line.state.to_string(), line.event.unwrap_or_default(), took]);
        }
        if rows.len() > 1 {
            print!("{}", table(&rows));
        }
    }
    Ok(if snapshot.succeeded() { Outcome::Succeeded } else { Outcome::Unsuccessful })
}

/// The latest `limit` deployments (of one group, or all), newest first.
pub async fn latest(
    client: &Client,
    output: &Output,
    application: Option<&str>,
    group: Option<&str>,
    limit: usize,
) -> anyhow::Result<()> {
    let ids = list_all(
        client,
        "ListDeployments",
        |next_token| ListDeploymentsInput {
            application_name: application.map(str::to_owned),
            deployment_group_name: group.map(str::to_owned),
            next_token,
            ..Default::default()
        },
        |page: ListDeploymentsOutput| (page.deployments, page.next_token),
    )
    .await?;
    let mut deployments = deployments_newest_first(client, &ids).await?;
    deployments.truncate(limit);
    if output.json {
        return output.json(&deployments);
    }
    if deployments.is_empty() {
        println!("no deployments yet");
        return Ok(());
    }
    let mut rows = vec![["DEPLOYMENT", "APPLICATION/GROUP", "STATUS", "HOSTS", "CREATED"].map(str::to_owned).to_vec()];
    for info in &deployments {
        let overview = info.deployment_overview.clone().unwrap_or_default();
        let total = fleet_size(info);
        rows.push(vec![
            info.deployment_id.clone().unwrap_or_default(),
            format!(
                "{}/{}",
                info.application_name.as_deref().unwrap_or_default(),
                info.deployment_group_name.as_deref().unwrap_or_default()
            ),
            info.status.as_ref().map_or("", |s| s.as_str()).to_owned(),
            format!("{}/{total}", overview.succeeded.unwrap_or(0)),
            info.create_time.map(|t| utc(t.millis() / 1000)).unwrap_or_default(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` UTC of epoch seconds.
pub fn utc(epoch: i64) -> String {
    let amz = landfall_sigv4::format_amz_date(epoch); // YYYYMMDDTHHMMSSZ
    format!("{}-{}-{} {}:{}:{}", &amz[0..4], &amz[4..6], &amz[6..8], &amz[9..11], &amz[11..13], &amz[13..15])
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18 11:06:40");
    }
}
