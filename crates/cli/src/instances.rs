//! `landfall instances`: the registered hosts, their tags, and when their agents last polled.

use landfall_api::landfall::{AgentStatus, ListAgentStatusInput, ListAgentStatusOutput};
use landfall_api::shapes::{
    BatchGetOnPremisesInstancesInput, BatchGetOnPremisesInstancesOutput, GetOnPremisesInstanceInput,
    GetOnPremisesInstanceOutput, InstanceInfo, ListOnPremisesInstancesInput, ListOnPremisesInstancesOutput,
    RegistrationStatus,
};
use landfall_client::Client;
use serde::Serialize;

use crate::api::{call, extension, list_all};
use crate::status::utc;
use crate::term::{Output, duration, table};

#[derive(Debug, Serialize)]
struct Host {
    #[serde(flatten)]
    instance: InstanceInfo,
    agent: Option<AgentStatus>,
}

/// Waits until an instance is deregistered (a drained host has left its groups).
pub async fn wait_until_deregistered(client: &Client, name: &str) -> anyhow::Result<()> {
    loop {
        let input = GetOnPremisesInstanceInput { instance_name: Some(name.to_owned()) };
        let got: GetOnPremisesInstanceOutput = call(client, "GetOnPremisesInstance", &input).await?;
        if got.instance_info.and_then(|info| info.deregister_time).is_some() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

pub async fn instances(client: &Client, output: &Output, include_deregistered: bool) -> anyhow::Result<()> {
    let names = list_all(
        client,
        "ListOnPremisesInstances",
        |next_token| ListOnPremisesInstancesInput {
            registration_status: (!include_deregistered).then_some(RegistrationStatus::Registered),
            next_token,
            ..Default::default()
        },
        |page: ListOnPremisesInstancesOutput| (page.instance_names, page.next_token),
    )
    .await?;
    let mut infos = Vec::with_capacity(names.len());
    for batch in names.chunks(100) {
        let input = BatchGetOnPremisesInstancesInput { instance_names: Some(batch.to_vec()) };
        let got: BatchGetOnPremisesInstancesOutput = call(client, "BatchGetOnPremisesInstances", &input).await?;
        infos.extend(got.instance_infos.unwrap_or_default());
    }
    infos.sort_by(|a, b| a.instance_name.cmp(&b.instance_name));
    let agents: ListAgentStatusOutput = extension(client, "ListAgentStatus", &ListAgentStatusInput::default()).await?;
    let hosts: Vec<Host> = infos
        .into_iter()
        .map(|instance| {
            let agent =
                agents.agents.iter().find(|a| Some(&a.instance_name) == instance.instance_name.as_ref()).cloned();
            Host { instance, agent }
        })
        .collect();
    if output.json {
        return output.json(&hosts);
    }
    if hosts.is_empty() {
        println!("no instances registered (landfall instance register NAME --tag KEY=VALUE --agent-config-dir DIR)");
        return Ok(());
    }
    let now = landfall_api::Timestamp::from_system(std::time::SystemTime::now()).millis();
    let mut rows = vec![["NAME", "STATUS", "AGENT LAST SEEN", "AGENT", "TAGS"].map(str::to_owned).to_vec()];
    for host in &hosts {
        let info = &host.instance;
        let tags: Vec<String> = info
            .tags
            .iter()
            .flatten()
            .map(|t| format!("{}={}", t.key.as_deref().unwrap_or_default(), t.value.as_deref().unwrap_or_default()))
            .collect();
        let (seen, version) = match &host.agent {
            Some(agent) => (
                format!(
                    "{} ago ({})",
                    duration((now - agent.last_seen.millis()).max(0) as f64 / 1000.0),
                    utc(agent.last_seen.millis() / 1000)
                ),
                match (&agent.agent_version, &agents.offered_agent_version) {
                    (Some(version), Some(offered)) if agent.outdated => {
                        format!("{version} (outdated: {offered} offered)")
                    }
                    (version, _) => version.clone().unwrap_or_default(),
                },
            ),
            None => ("never".to_owned(), String::new()),
        };
        rows.push(vec![
            info.instance_name.clone().unwrap_or_default(),
            if info.deregister_time.is_some() { "Deregistered" } else { "Registered" }.to_owned(),
            seen,
            version,
            tags.join(","),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}
