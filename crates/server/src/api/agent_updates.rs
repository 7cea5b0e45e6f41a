//! StartAgentUpdate and ListAgentUpdates: rolling the offered agent binary out to hosts (see
//! `crate::agent_updates` for how hosts are told and finish).

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{
    AgentUpdateInfo, ListAgentUpdatesInput, ListAgentUpdatesOutput, SkippedInstance, StartAgentUpdateInput,
    StartAgentUpdateOutput,
};
use landfall_store::AgentUpdateRecord;

use super::common::{Ctx, store_error};
use crate::agent_updates::self_updating_version;
use crate::ids::new_uuid;

pub async fn start(ctx: &Ctx<'_>, input: StartAgentUpdateInput) -> ApiResult<StartAgentUpdateOutput> {
    let max_unavailable = input.max_unavailable.unwrap_or(1);
    if max_unavailable == 0 {
        return err(Exception::InvalidInput, "maxUnavailable must be at least 1.");
    }
    let named = input.instance_names.unwrap_or_default();
    let hosts: Vec<String> = match (&input.application_name, &input.deployment_group_name) {
        (Some(app), Some(group)) if named.is_empty() => {
            let (_, group) = ctx.application_and_group(app, group).await?;
            let instances = ctx.store().list_instances().await.map_err(store_error)?;
            let pools = crate::fleet::pool_members(ctx.state).await.map_err(store_error)?;
            landfall_engine::selection::select_instances(&group.info, &instances, &pools)
                .into_iter()
                .filter_map(|instance| instance.instance_name.clone())
                .collect()
        }
        (None, None) if !named.is_empty() => {
            for name in &named {
                super::instances::registered(ctx, name).await?;
            }
            named
        }
        _ => {
            return err(
                Exception::InvalidInput,
                "Name either a deployment group (applicationName and deploymentGroupName) or instanceNames.",
            );
        }
    };
    let (_, _, binary) = ctx.state.agent_binary.describe().await.map_err(|why| {
        landfall_api::error::ApiError::new(Exception::InvalidInput, format!("Nothing to update to: {why}."))
    })?;
    let Some(version) = binary.version else {
        return err(Exception::InvalidInput, "The agent binary this server offers does not say its version.");
    };
    let agents = ctx.store().agent_statuses().await.map_err(store_error)?;
    let rollout_id = new_uuid();
    let mut requests = Vec::new();
    let mut skipped = Vec::new();
    for host in hosts {
        let reported = agents.iter().find(|agent| agent.instance_name == host).and_then(|a| a.agent_version.clone());
        let reason = match reported.as_deref().map(|reported| (reported, self_updating_version(reported))) {
            None => Some("its agent has never polled".to_owned()),
            Some((reported, None)) => Some(format!("its agent ({reported}) does not update itself")),
            Some((_, Some(running))) if running == version => Some(format!("it runs {version} already")),
            Some(_) => None,
        };
        match reason {
            Some(reason) => skipped.push(SkippedInstance { instance_name: host, reason }),
            None => requests.push(AgentUpdateRecord {
                instance_name: host,
                rollout_id: rollout_id.clone(),
                version: version.clone(),
                sha256: binary.sha256.clone(),
                max_unavailable,
                requested_at: ctx.now,
                offered_at: None,
                finished_at: None,
                outcome: None,
            }),
        }
    }
    ctx.store().request_agent_updates(&requests).await.map_err(store_error)?;
    // The other servers learn of it within seconds (crate::agent_updates::watch_forever).
    crate::agent_updates::refresh(ctx.state).await.map_err(store_error)?;
    Ok(StartAgentUpdateOutput {
        rollout_id,
        version,
        instance_names: requests.into_iter().map(|request| request.instance_name).collect(),
        skipped,
    })
}

pub async fn list(ctx: &Ctx<'_>, input: ListAgentUpdatesInput) -> ApiResult<ListAgentUpdatesOutput> {
    let updates = ctx.store().agent_updates().await.map_err(store_error)?;
    let updates = updates
        .into_iter()
        .filter(|update| input.rollout_id.as_ref().is_none_or(|id| *id == update.rollout_id))
        .map(|update| {
            let (status, message) = match (&update.outcome, update.offered_at) {
                (Some(outcome), _) => match outcome.strip_prefix("Failed: ") {
                    Some(why) => ("Failed", Some(why.to_owned())),
                    None => ("Succeeded", None),
                },
                (None, Some(_)) => ("Updating", None),
                (None, None) => ("Pending", None),
            };
            AgentUpdateInfo {
                instance_name: update.instance_name,
                rollout_id: update.rollout_id,
                version: update.version,
                status: status.to_owned(),
                message,
                request_time: update.requested_at,
                offer_time: update.offered_at,
                finish_time: update.finished_at,
            }
        })
        .collect();
    Ok(ListAgentUpdatesOutput { updates })
}
