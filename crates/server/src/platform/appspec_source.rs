//! Where a Lambda or ECS deployment's AppSpec comes from: the revision itself (`String`,
//! `AppSpecContent`) or an object in the bundle store (an S3 revision of bundle type YAML or
//! JSON, whose object *is* the AppSpec). It is read once, when the deployment is created.

use landfall_api::shapes::{RevisionLocation, S3Location};
use tokio::io::AsyncReadExt as _;

use crate::sources::ExternalS3;
use crate::state::AppState;

/// Larger than any AppSpec; an object beyond it is not one.
const MAX_APPSPEC_BYTES: u64 = 1024 * 1024;

/// How long reading one from the external store may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The AppSpec a revision carries itself, if it does.
pub fn inline(location: &RevisionLocation) -> Option<String> {
    location
        .app_spec_content
        .as_ref()
        .and_then(|c| c.content.clone())
        .or_else(|| location.string.as_ref().and_then(|s| s.content.clone()))
}

/// The revision's AppSpec text; Err says why it cannot be read.
pub async fn read(state: &AppState, location: &RevisionLocation) -> Result<String, String> {
    if let Some(text) = inline(location) {
        return Ok(text);
    }
    let Some(s3) = &location.s3_location else {
        return Err("The revision has no AppSpec: give it as AppSpecContent, String or an S3 object.".to_owned());
    };
    let bucket = s3.bucket.as_deref().unwrap_or_default();
    let key = s3.key.as_deref().unwrap_or_default();
    // As for bundles: a bucket the built-in store does not have is the external store's.
    let (bytes, etag) = match &state.sources.external_s3 {
        Some(external)
            if state.external_bundles.is_some() || !state.objects.bucket_exists(bucket).await.unwrap_or(false) =>
        {
            fetch_external(state, external, s3).await?
        }
        _ => read_local(state, bucket, key).await?,
    };
    if let Some(expected) = s3.e_tag.as_deref().map(|e| e.trim_matches('"')).filter(|e| !e.is_empty())
        && expected != etag.trim_matches('"')
    {
        return Err(format!("s3://{bucket}/{key} has the ETag {etag}, not {expected} as the revision says."));
    }
    String::from_utf8(bytes)
        .map_err(|_| format!("s3://{bucket}/{key} is not text, so it is not a YAML or JSON AppSpec."))
}

async fn read_local(state: &AppState, bucket: &str, key: &str) -> Result<(Vec<u8>, String), String> {
    let (file, meta) = state
        .objects
        .open_object(bucket, key)
        .await
        .map_err(|e| format!("The AppSpec s3://{bucket}/{key} cannot be read: {}", e.message))?;
    if meta.size > MAX_APPSPEC_BYTES {
        return Err(too_large(bucket, key));
    }
    let mut bytes = Vec::with_capacity(meta.size as usize);
    // The object's data, not the metadata kept after it.
    file.take(meta.size)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("The AppSpec s3://{bucket}/{key} cannot be read: {e}"))?;
    Ok((bytes, meta.etag))
}

async fn fetch_external(state: &AppState, external: &ExternalS3, s3: &S3Location) -> Result<(Vec<u8>, String), String> {
    let bucket = s3.bucket.as_deref().unwrap_or_default();
    let key = s3.key.as_deref().unwrap_or_default();
    let url = external.presigned_get(bucket, key, s3.version.as_deref(), state.clock.now().millis() / 1000)?;
    let cannot = |why: String| format!("The AppSpec s3://{bucket}/{key} cannot be read: {why}");
    let client = match &state.external_bundles {
        Some(bundles) => bundles.client.clone(),
        None => reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| cannot(e.to_string()))?,
    };
    let answer = client.get(&url).send().await.map_err(|e| cannot(e.to_string()))?;
    if !answer.status().is_success() {
        return Err(cannot(format!("the bundle store answered {}", answer.status())));
    }
    if answer.content_length().is_some_and(|length| length > MAX_APPSPEC_BYTES) {
        return Err(too_large(bucket, key));
    }
    let etag = answer.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = answer.bytes().await.map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > MAX_APPSPEC_BYTES {
        return Err(too_large(bucket, key));
    }
    Ok((bytes.to_vec(), etag))
}

fn too_large(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key} is larger than {MAX_APPSPEC_BYTES} bytes, too large for an AppSpec.")
}
