//! Deployment targets, and the deprecated deployment-instance calls that show the same targets
//! as InstanceSummary.

use std::fmt::Write as _;

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{GetLifecycleEventLogInput, GetLifecycleEventLogOutput};
use landfall_api::shapes::*;
use landfall_store::{DeploymentRecord, LogPage, LogStart, TargetRecord};

use super::common::{Ctx, page_in_memory, page_request, page_token, store_error};
use super::deployments::load;
use crate::limits::Limits;

const PAGE: usize = 100;
const MAX_BATCH: usize = 25;

/// At most this many targets are read for one page of a filtered listing, so that no call reads
/// a whole fleet: a page may come back short (even empty) with a nextToken, as AWS listings may.
const MAX_TARGETS_READ_PER_PAGE: usize = 1000;

/// DeploymentNotStartedException while the deployment has no targets resolved yet.
fn refuse_unstarted(record: &DeploymentRecord, targets: &[TargetRecord]) -> ApiResult<()> {
    let waiting = matches!(record.info.status, Some(DeploymentStatus::Created | DeploymentStatus::Queued));
    if targets.is_empty() && waiting {
        return err(Exception::DeploymentNotStarted, format!("The deployment {} has not started.", record.id()));
    }
    Ok(())
}

/// The targets of a deployment (the deprecated instance listing reads them all).
async fn targets_of(ctx: &Ctx<'_>, record: &DeploymentRecord) -> ApiResult<Vec<TargetRecord>> {
    let targets = ctx.store().targets(record.id()).await.map_err(store_error)?;
    refuse_unstarted(record, &targets)?;
    Ok(targets)
}

/// The deployment's targets named `ids` (those that exist), read without the rest of the fleet.
async fn targets_named(ctx: &Ctx<'_>, record: &DeploymentRecord, ids: &[String]) -> ApiResult<Vec<TargetRecord>> {
    let targets = ctx.store().targets_named(record.id(), ids).await.map_err(store_error)?;
    if targets.is_empty() && ctx.store().target_count(record.id()).await.map_err(store_error)? == 0 {
        refuse_unstarted(record, &targets)?;
    }
    Ok(targets)
}

fn status_and_label(target: &DeploymentTarget) -> (Option<TargetStatus>, Option<TargetLabel>) {
    match &target.instance_target {
        Some(instance) => (instance.status.clone(), instance.instance_label.clone()),
        None => (None, None),
    }
}

pub async fn list(ctx: &Ctx<'_>, input: ListDeploymentTargetsInput) -> ApiResult<ListDeploymentTargetsOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let page = page_request("deploymentTargets", &input.next_token, PAGE)?;
    let mut statuses = Vec::new();
    let mut labels = Vec::new();
    for (name, values) in input.target_filters.unwrap_or_default() {
        match name {
            TargetFilterName::TargetStatus => {
                for value in values {
                    let status = TargetStatus::from(value.as_str());
                    landfall_api::validate::known(
                        &status,
                        Exception::InvalidInstanceStatus,
                        "targetFilters.TargetStatus",
                    )?;
                    statuses.push(status);
                }
            }
            TargetFilterName::ServerInstanceLabel => {
                for value in values {
                    let label = TargetLabel::from(value.as_str());
                    landfall_api::validate::known(
                        &label,
                        Exception::InvalidInstanceType,
                        "targetFilters.ServerInstanceLabel",
                    )?;
                    labels.push(label);
                }
            }
            TargetFilterName::Unrecognized(other) => {
                return err(
                    Exception::InvalidTargetFilterName,
                    format!(
                        "Target filter '{other}' is not valid; allowed names: [TargetStatus, ServerInstanceLabel]."
                    ),
                );
            }
        }
    }
    let wanted = |target: &TargetRecord| {
        let (status, label) = status_and_label(&target.target);
        (statuses.is_empty() || status.is_some_and(|s| statuses.contains(&s)))
            && (labels.is_empty() || label.is_some_and(|l| labels.contains(&l)))
    };
    // Read in chunks in target-id order until the page and one more are found (so a last page
    // has no nextToken), the fleet ends, or the read bound is reached.
    let mut ids: Vec<String> = Vec::with_capacity(page.limit + 1);
    let mut cursor = page.after.clone();
    let mut read = 0;
    let next = loop {
        let chunk =
            ctx.store().targets_after(record.id(), cursor.as_deref(), page.limit + 1).await.map_err(store_error)?;
        if page.after.is_none() && read == 0 {
            refuse_unstarted(&record, &chunk)?;
        }
        let ended = chunk.len() <= page.limit;
        read += chunk.len();
        cursor = chunk.last().map(|target| target.target_id.clone());
        ids.extend(chunk.into_iter().filter(wanted).map(|target| target.target_id));
        if ids.len() > page.limit {
            ids.truncate(page.limit);
            break ids.last().cloned();
        }
        if ended {
            break None;
        }
        if read >= MAX_TARGETS_READ_PER_PAGE {
            break cursor;
        }
    };
    Ok(ListDeploymentTargetsOutput { target_ids: Some(ids), next_token: page_token("deploymentTargets", next) })
}

pub async fn batch_get(
    ctx: &Ctx<'_>,
    input: BatchGetDeploymentTargetsInput,
) -> ApiResult<BatchGetDeploymentTargetsOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let ids = input.target_ids.unwrap_or_default();
    if ids.is_empty() {
        return err(Exception::DeploymentTargetIdRequired, "targetIds must list at least one target.");
    }
    if ids.len() > MAX_BATCH {
        return err(
            Exception::DeploymentTargetListSizeExceeded,
            format!("targetIds lists {} targets; at most {MAX_BATCH} are allowed.", ids.len()),
        );
    }
    let targets = targets_named(ctx, &record, &ids).await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in &ids {
        match targets.iter().find(|target| &target.target_id == id) {
            Some(target) => found.push(crate::platform::present(target.target.clone())),
            None => {
                return err(
                    Exception::DeploymentTargetDoesNotExist,
                    format!("The deployment {} has no target {id}.", record.id()),
                );
            }
        }
    }
    Ok(BatchGetDeploymentTargetsOutput { deployment_targets: Some(found) })
}

pub async fn get(ctx: &Ctx<'_>, input: GetDeploymentTargetInput) -> ApiResult<GetDeploymentTargetOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let Some(id) = input.target_id.filter(|id| !id.is_empty()) else {
        return err(Exception::DeploymentTargetIdRequired, "targetId is required.");
    };
    let targets = targets_named(ctx, &record, std::slice::from_ref(&id)).await?;
    match targets.into_iter().next() {
        Some(target) => {
            Ok(GetDeploymentTargetOutput { deployment_target: Some(crate::platform::present(target.target)) })
        }
        None => {
            err(Exception::DeploymentTargetDoesNotExist, format!("The deployment {} has no target {id}.", record.id()))
        }
    }
}

/// The deprecated instance calls cover Server (and Lambda) deployments, not ECS.
fn refuse_ecs(record: &DeploymentRecord) -> ApiResult<()> {
    if record.info.compute_platform == Some(ComputePlatform::Ecs) {
        return err(
            Exception::InvalidComputePlatform,
            "The deployment-instance calls do not support ECS deployments; use the deployment-target calls.",
        );
    }
    Ok(())
}

fn summary(target: &TargetRecord) -> InstanceSummary {
    let instance = target.target.instance_target.clone().unwrap_or_default();
    InstanceSummary {
        deployment_id: instance.deployment_id,
        instance_id: instance.target_arn,
        status: instance.status.map(|status| InstanceStatus::from(status.as_str())),
        last_updated_at: instance.last_updated_at,
        lifecycle_events: instance.lifecycle_events,
        instance_type: instance.instance_label.map(|label| InstanceType::from(label.as_str())),
    }
}

/// The targets the deprecated instance calls name: read by name, and only when some id is not a
/// name (an ARN), the whole fleet.
async fn instances_named(ctx: &Ctx<'_>, record: &DeploymentRecord, ids: &[String]) -> ApiResult<Vec<TargetRecord>> {
    let targets = targets_named(ctx, record, ids).await?;
    if ids.iter().all(|id| targets.iter().any(|target| &target.target_id == id)) {
        return Ok(targets);
    }
    targets_of(ctx, record).await
}

/// Instance ids may be given as the instance name or its ARN.
fn find<'a>(targets: &'a [TargetRecord], id: &str) -> Option<&'a TargetRecord> {
    targets.iter().find(|target| {
        target.target_id == id
            || target.target.instance_target.as_ref().and_then(|t| t.target_arn.as_deref()) == Some(id)
    })
}

pub async fn list_instances(
    ctx: &Ctx<'_>,
    input: ListDeploymentInstancesInput,
) -> ApiResult<ListDeploymentInstancesOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    refuse_ecs(&record)?;
    let page = page_request("deploymentInstances", &input.next_token, PAGE)?;
    let statuses = input.instance_status_filter.unwrap_or_default();
    for status in &statuses {
        landfall_api::validate::known(status, Exception::InvalidInstanceStatus, "instanceStatusFilter")?;
    }
    let types = input.instance_type_filter.unwrap_or_default();
    for kind in &types {
        landfall_api::validate::known(kind, Exception::InvalidInstanceType, "instanceTypeFilter")?;
    }
    let blue_green = record.info.deployment_style.as_ref().and_then(|s| s.deployment_type.clone())
        == Some(DeploymentType::BlueGreen);
    if !types.is_empty() && !blue_green {
        return err(
            Exception::InvalidDeploymentInstanceType,
            "instanceTypeFilter applies to blue/green deployments only.",
        );
    }
    let mut ids: Vec<String> = targets_of(ctx, &record)
        .await?
        .iter()
        .map(summary)
        .filter(|summary| statuses.is_empty() || summary.status.as_ref().is_some_and(|s| statuses.contains(s)))
        .filter(|summary| types.is_empty() || summary.instance_type.as_ref().is_some_and(|t| types.contains(t)))
        .filter_map(|summary| summary.instance_id)
        .collect();
    // Pages continue after the last id shown, so the list is ordered by that id (the instance
    // ARN), not by the target id the store orders by: the two orders differ ("p-1_…" < "p_…").
    ids.sort();
    let (ids, next) = page_in_memory(ids, &page, Clone::clone);
    Ok(ListDeploymentInstancesOutput { instances_list: Some(ids), next_token: page_token("deploymentInstances", next) })
}

pub async fn batch_get_instances(
    ctx: &Ctx<'_>,
    input: BatchGetDeploymentInstancesInput,
) -> ApiResult<BatchGetDeploymentInstancesOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let ids = input.instance_ids.unwrap_or_default();
    if ids.is_empty() {
        return err(Exception::InstanceIdRequired, "instanceIds must list at least one instance.");
    }
    if ids.len() > MAX_BATCH {
        return err(
            Exception::BatchLimitExceeded,
            format!("instanceIds lists {}; at most {MAX_BATCH} are allowed.", ids.len()),
        );
    }
    refuse_ecs(&record)?;
    let targets = instances_named(ctx, &record, &ids).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        match find(&targets, id) {
            Some(target) => found.push(summary(target)),
            None => missing.push(id.as_str()),
        }
    }
    let error_message = if missing.is_empty() {
        String::new()
    } else {
        format!("Instances not part of the deployment: {}", missing.join(", "))
    };
    Ok(BatchGetDeploymentInstancesOutput { instances_summary: Some(found), error_message: Some(error_message) })
}

pub async fn get_instance(ctx: &Ctx<'_>, input: GetDeploymentInstanceInput) -> ApiResult<GetDeploymentInstanceOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let Some(id) = input.instance_id.filter(|id| !id.is_empty()) else {
        return err(Exception::InstanceIdRequired, "instanceId is required.");
    };
    refuse_ecs(&record)?;
    let targets = instances_named(ctx, &record, std::slice::from_ref(&id)).await?;
    match find(&targets, &id) {
        Some(target) => Ok(GetDeploymentInstanceOutput { instance_summary: Some(summary(target)) }),
        None => err(Exception::InstanceDoesNotExist, format!("The deployment {} has no instance {id}.", record.id())),
    }
}

/// The output an agent streamed for one lifecycle event of one target (its latest attempt), a
/// page at a time: never more than [`Limits::MAX_LOG_PAGE_BYTES`] in memory per answer.
pub async fn event_log(ctx: &Ctx<'_>, input: GetLifecycleEventLogInput) -> ApiResult<GetLifecycleEventLogOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let target_id = input.target_id.unwrap_or_default();
    let event = input.lifecycle_event_name.unwrap_or_default();
    let targets =
        ctx.store().targets_named(record.id(), std::slice::from_ref(&target_id)).await.map_err(store_error)?;
    let Some(target) = targets.first() else {
        return err(
            Exception::DeploymentTargetDoesNotExist,
            format!("The deployment {} has no target '{target_id}'.", record.id()),
        );
    };
    let known = target
        .target
        .instance_target
        .as_ref()
        .and_then(|t| t.lifecycle_events.as_ref())
        .is_some_and(|events| events.iter().any(|e| e.lifecycle_event_name.as_deref() == Some(event.as_str())));
    if !known {
        return err(Exception::InvalidInput, format!("Target {target_id} has no lifecycle event '{event}'."));
    }
    let max_bytes = match input.max_bytes {
        None => Limits::MAX_LOG_PAGE_BYTES,
        Some(0) => return err(Exception::InvalidInput, "maxBytes must be at least 1."),
        Some(max) => max.min(Limits::MAX_LOG_PAGE_BYTES),
    };
    let start = match (input.tail_bytes, input.offset) {
        (Some(_), Some(_)) => return err(Exception::InvalidInput, "Give offset or tailBytes, not both."),
        (Some(tail), None) => LogStart::Tail(tail),
        (None, offset) => LogStart::Offset(offset.unwrap_or(0)),
    };
    let command = ctx.store().latest_command(record.id(), &target_id, &event).await.map_err(store_error)?;
    let Some(command) = command else {
        let from = match start {
            LogStart::Offset(offset) => offset,
            LogStart::Tail(_) => 0,
        };
        return Ok(GetLifecycleEventLogOutput {
            log: String::new(),
            complete: false,
            next_offset: Some(from),
            size: Some(0),
        });
    };
    let page = ctx.store().command_log_page(&command.id, start, max_bytes).await.map_err(store_error)?;
    let from = match start {
        LogStart::Offset(offset) => offset,
        LogStart::Tail(tail) => page.received.saturating_sub(tail),
    };
    let (log, next_offset) = page_text(&page, from);
    Ok(GetLifecycleEventLogOutput {
        log,
        complete: command.completed_at.is_some() && next_offset >= page.received,
        next_offset: Some(next_offset),
        size: Some(page.received),
    })
}

/// A page's text from `from` on (moved forward to a character boundary), with a line where the
/// store kept nothing, and the offset after it.
fn page_text(page: &LogPage, from: u64) -> (String, u64) {
    let mut text = String::new();
    let mut cursor = from;
    for chunk in &page.chunks {
        if chunk.offset > cursor {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let _ = writeln!(
                text,
                "[landfall] {} bytes of output left out here: the server keeps the first and the last part of each event's output",
                chunk.offset - cursor
            );
            cursor = chunk.offset;
        }
        let mut skip = (cursor - chunk.offset) as usize;
        while skip < chunk.text.len() && !chunk.text.is_char_boundary(skip) {
            skip += 1;
        }
        text.push_str(chunk.text.get(skip..).unwrap_or_default());
        cursor = chunk.offset + chunk.text.len() as u64;
    }
    (text, cursor)
}
