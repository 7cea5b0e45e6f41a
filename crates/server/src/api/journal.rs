//! What happened: a deployment's timeline (ListDeploymentEvents) and the audit log
//! (ListAuditRecords). Both are only ever appended to; no operation changes them.

use landfall_api::error::ApiResult;
use landfall_api::landfall::{
    ListAuditRecordsInput, ListAuditRecordsOutput, ListDeploymentEventsInput, ListDeploymentEventsOutput,
};
use landfall_store::AuditFilter;

use super::common::{Ctx, page_request, page_token, store_error};
use super::deployments::load;

/// Most timeline entries one answer carries; a follower asks again after the last.
const EVENTS_PAGE: usize = 500;
const AUDIT_PAGE: usize = 100;

pub async fn deployment_events(
    ctx: &Ctx<'_>,
    input: ListDeploymentEventsInput,
) -> ApiResult<ListDeploymentEventsOutput> {
    let record = load(ctx, &input.deployment_id).await?;
    let after = input.after_sequence.unwrap_or(0);
    let events = ctx.store().deployment_events(record.id(), after, EVENTS_PAGE).await.map_err(store_error)?;
    // Complete only once the last entry has been read: a finished deployment's final entries
    // are written with its final status.
    let complete = record.info.status.as_ref().is_some_and(landfall_api::shapes::DeploymentStatus::is_over)
        && events.len() < EVENTS_PAGE;
    Ok(ListDeploymentEventsOutput { events, complete })
}

pub async fn audit_records(ctx: &Ctx<'_>, input: ListAuditRecordsInput) -> ApiResult<ListAuditRecordsOutput> {
    let filter = AuditFilter {
        from: input.start_time,
        to: input.end_time,
        access_key_id: input.access_key_id.filter(|key| !key.is_empty()),
        operation: input.operation.filter(|op| !op.is_empty()),
    };
    let page = page_request("audit", &input.next_token, AUDIT_PAGE)?;
    let page = ctx.store().audit_records(&filter, &page).await.map_err(store_error)?;
    Ok(ListAuditRecordsOutput { records: page.items, next_token: page_token("audit", page.next) })
}
