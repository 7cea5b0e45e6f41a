//! `landfall target-group ...`: the target groups traffic events move instances in and out of.

use landfall_api::landfall::{
    CreateTargetGroupInput, DeregisterTargetsInput, HealthCheck, ListTargetGroupsOutput, RegisterTargetsInput,
    TargetGroupInfo, TargetGroupNameInput, TargetGroupOutput, TargetSpec,
};
use landfall_client::Client;

use crate::api::extension;
use crate::term::{Output, table};

pub struct CreateRequest {
    pub name: String,
    pub router: String,
    pub health_check: HealthCheck,
    pub deregistration_delay_seconds: u32,
}

pub async fn create(client: &Client, output: &Output, request: CreateRequest) -> anyhow::Result<()> {
    let input = CreateTargetGroupInput {
        name: Some(request.name),
        router: Some(request.router),
        health_check: Some(request.health_check),
        deregistration_delay_seconds: Some(request.deregistration_delay_seconds),
    };
    let created: TargetGroupOutput = extension(client, "CreateTargetGroup", &input).await?;
    show(output, &[created.target_group])
}

pub async fn list(client: &Client, output: &Output) -> anyhow::Result<()> {
    let listed: ListTargetGroupsOutput =
        extension(client, "ListTargetGroups", &TargetGroupNameInput::default()).await?;
    show(output, &listed.target_groups)
}

pub async fn delete(client: &Client, output: &Output, name: &str) -> anyhow::Result<()> {
    extension::<_, serde_json::Value>(client, "DeleteTargetGroup", &TargetGroupNameInput { name: Some(name.into()) })
        .await?;
    output.deleted("name", "target group", name)
}

/// One backend to register.
pub struct Target<'a> {
    pub instance: &'a str,
    pub address: &'a str,
    pub weight: u32,
    pub standby: bool,
}

pub async fn register(client: &Client, output: &Output, name: &str, target: Target<'_>) -> anyhow::Result<()> {
    let input = RegisterTargetsInput {
        name: Some(name.into()),
        targets: Some(vec![TargetSpec {
            instance_name: Some(target.instance.into()),
            address: Some(target.address.into()),
            weight: Some(target.weight),
            standby: Some(target.standby),
        }]),
    };
    let group: TargetGroupOutput = extension(client, "RegisterTargets", &input).await?;
    show(output, &[group.target_group])
}

pub async fn deregister(client: &Client, output: &Output, name: &str, instance: &str) -> anyhow::Result<()> {
    let input = DeregisterTargetsInput { name: Some(name.into()), instance_names: Some(vec![instance.into()]) };
    let group: TargetGroupOutput = extension(client, "DeregisterTargets", &input).await?;
    show(output, &[group.target_group])
}

fn show(output: &Output, groups: &[TargetGroupInfo]) -> anyhow::Result<()> {
    if output.json {
        return output.json(&groups);
    }
    if groups.is_empty() {
        println!("no target groups (landfall target-group create NAME)");
    }
    for group in groups {
        let check = &group.health_check;
        println!(
            "{}  router {}  health GET {} every {} s  deregistration delay {} s",
            group.name, group.router, check.path, check.interval_seconds, group.deregistration_delay_seconds
        );
        let mut rows =
            vec![["INSTANCE", "ADDRESS", "WEIGHT", "IN ROTATION", "ROUTER SAYS"].map(str::to_owned).to_vec()];
        for target in &group.targets {
            let health = match &target.health {
                Some(h) if h.generation == target.generation => {
                    format!("{}{}", h.state, h.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())
                }
                Some(_) => "(not yet checked since the last change)".to_owned(),
                None => "(no report yet)".to_owned(),
            };
            rows.push(vec![
                target.instance_name.clone(),
                target.address.clone(),
                match target.traffic_weight {
                    // A deployment is shifting traffic: its weight, and the registered one.
                    Some(shifted) => format!("{shifted} (registered {})", target.weight),
                    None => target.weight.to_string(),
                },
                if target.serving { "yes" } else { "no" }.to_owned(),
                health,
            ]);
        }
        if rows.len() > 1 {
            for line in table(&rows).lines() {
                println!("  {line}");
            }
        }
    }
    Ok(())
}
