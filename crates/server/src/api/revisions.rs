//! Application revisions: Register, Get, BatchGet, List.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::shapes::*;
use landfall_api::validate;
use landfall_store::{DeployedFilter, RevisionFilter, RevisionRecord, RevisionSort};

use super::common::{Ctx, page_request, page_token, store_error};

const PAGE: usize = 100;

/// The application and the validated, completed revision location of a request. A `lookup`
/// (reading a registered revision back) may name inline content by its sha256 alone.
async fn checked_revision(
    ctx: &Ctx<'_>,
    app_name: &Option<String>,
    revision: &Option<RevisionLocation>,
    lookup: bool,
) -> ApiResult<(ApplicationInfo, RevisionLocation)> {
    let app_name = validate::application_name(app_name)?;
    let revision = validate::required(revision, Exception::RevisionRequired, "revision")?;
    let app = ctx.application(app_name).await?;
    let platform = app.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    let location = if lookup {
        validate::revision_lookup(revision, &platform)?
    } else {
        validate::revision_location(revision, &platform)?
    };
    Ok((app, location))
}

/// The record of `location` registered under `app` now, with `description`.
pub fn revision_record(
    ctx: &Ctx<'_>,
    app: &ApplicationInfo,
    location: &RevisionLocation,
    description: Option<String>,
) -> RevisionRecord {
    RevisionRecord {
        application_id: app.application_id.clone().unwrap_or_default(),
        key: validate::revision_key(location),
        location: location.clone(),
        info: GenericRevisionInfo { description, register_time: Some(ctx.now), ..Default::default() },
    }
}

pub async fn register(ctx: &Ctx<'_>, input: RegisterApplicationRevisionInput) -> ApiResult<()> {
    validate::description(&input.description)?;
    let (app, location) = checked_revision(ctx, &input.application_name, &input.revision, false).await?;
    let record = revision_record(ctx, &app, &location, input.description);
    ctx.store().register_revision(&record).await.map_err(store_error)
}

pub async fn get(ctx: &Ctx<'_>, input: GetApplicationRevisionInput) -> ApiResult<GetApplicationRevisionOutput> {
    let (app, location) = checked_revision(ctx, &input.application_name, &input.revision, true).await?;
    let key = validate::revision_key(&location);
    let Some(record) =
        ctx.store().revision(app.application_id.as_deref().unwrap_or_default(), &key).await.map_err(store_error)?
    else {
        return err(
            Exception::RevisionDoesNotExist,
            "No revision matching the given location is registered to the application.",
        );
    };
    // The one call that shows inline AppSpec content.
    Ok(GetApplicationRevisionOutput {
        application_name: app.application_name,
        revision: Some(record.location),
        revision_info: Some(record.info),
    })
}

pub async fn batch_get(
    ctx: &Ctx<'_>,
    input: BatchGetApplicationRevisionsInput,
) -> ApiResult<BatchGetApplicationRevisionsOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let revisions = validate::required(&input.revisions, Exception::RevisionRequired, "revisions")?;
    if revisions.is_empty() {
        return err(Exception::RevisionRequired, "revisions must list at least one revision.");
    }
    if revisions.len() > 25 {
        return err(
            Exception::BatchLimitExceeded,
            format!("revisions lists {}; at most 25 are allowed.", revisions.len()),
        );
    }
    let app = ctx.application(app_name).await?;
    let platform = app.compute_platform.clone().unwrap_or(ComputePlatform::Server);
    let app_id = app.application_id.clone().unwrap_or_default();
    let mut found = Vec::new();
    let mut missing = 0;
    for revision in revisions {
        let location = validate::revision_lookup(revision, &platform)?;
        match ctx.store().revision(&app_id, &validate::revision_key(&location)).await.map_err(store_error)? {
            Some(record) => found.push(RevisionInfo {
                revision_location: Some(validate::without_content(&record.location)),
                generic_revision_info: Some(record.info),
            }),
            None => missing += 1,
        }
    }
    let error_message = match missing {
        0 => String::new(),
        n => format!("{n} of the requested revisions are not registered to application {app_name}."),
    };
    Ok(BatchGetApplicationRevisionsOutput {
        application_name: app.application_name,
        error_message: Some(error_message),
        revisions: Some(found),
    })
}

pub async fn list(ctx: &Ctx<'_>, input: ListApplicationRevisionsInput) -> ApiResult<ListApplicationRevisionsOutput> {
    let app_name = validate::application_name(&input.application_name)?;
    let sort = match &input.sort_by {
        None => RevisionSort::RegisterTime,
        Some(ApplicationRevisionSortBy::RegisterTime) => RevisionSort::RegisterTime,
        Some(ApplicationRevisionSortBy::FirstUsedTime) => RevisionSort::FirstUsedTime,
        Some(ApplicationRevisionSortBy::LastUsedTime) => RevisionSort::LastUsedTime,
        Some(other) => {
            return err(
                Exception::InvalidSortBy,
                format!("sortBy '{other}' is not valid; allowed values: [registerTime, firstUsedTime, lastUsedTime]."),
            );
        }
    };
    let descending = match &input.sort_order {
        None | Some(SortOrder::Ascending) => false,
        Some(SortOrder::Descending) => true,
        Some(other) => {
            return err(
                Exception::InvalidSortOrder,
                format!("sortOrder '{other}' is not valid; allowed values: [ascending, descending]."),
            );
        }
    };
    let deployed = match &input.deployed {
        None | Some(ListStateFilterAction::Ignore) => DeployedFilter::Ignore,
        Some(ListStateFilterAction::Include) => DeployedFilter::Include,
        Some(ListStateFilterAction::Exclude) => DeployedFilter::Exclude,
        Some(other) => {
            return err(
                Exception::InvalidDeployedStateFilter,
                format!("deployed '{other}' is not valid; allowed values: [include, exclude, ignore]."),
            );
        }
    };
    let bucket = input.s3_bucket.clone().filter(|bucket| !bucket.is_empty());
    if input.s3_bucket.as_deref() == Some("") {
        return err(Exception::InvalidBucketNameFilter, "s3Bucket must not be empty.");
    }
    let prefix = input.s3_key_prefix.clone().filter(|prefix| !prefix.is_empty());
    if prefix.is_some() && bucket.is_none() {
        return err(Exception::BucketNameFilterRequired, "s3KeyPrefix needs s3Bucket.");
    }
    let page = page_request("revisions", &input.next_token, PAGE)?;
    let app = ctx.application(app_name).await?;
    let filter = RevisionFilter { s3_bucket: bucket, s3_key_prefix: prefix, deployed, sort, descending };
    let page = ctx
        .store()
        .list_revisions(app.application_id.as_deref().unwrap_or_default(), &filter, &page)
        .await
        .map_err(store_error)?;
    Ok(ListApplicationRevisionsOutput {
        revisions: Some(page.items.iter().map(|record| validate::without_content(&record.location)).collect()),
        next_token: page_token("revisions", page.next),
    })
}
