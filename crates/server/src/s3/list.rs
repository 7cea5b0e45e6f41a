//! ListObjects (V1) and ListObjectsV2: prefix, delimiter and common prefixes, pages.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use hyper::{Response, StatusCode};
use landfall_sigv4::uri_encode;

use super::error::{S3Error, S3Result};
use super::{Ctx, iso8601, quoted, xml, xml_response};
use crate::body::Body;

/// Most keys in one page, as S3.
const MAX_KEYS: usize = 1000;

#[derive(Debug, PartialEq, Eq)]
enum Entry<'a> {
    Object(&'a str),
    CommonPrefix(&'a str),
}

impl Entry<'_> {
    fn name(&self) -> &str {
        match self {
            Entry::Object(name) | Entry::CommonPrefix(name) => name,
        }
    }
}

/// One page of `keys` (sorted): the entries under `prefix` that sort after `marker`, keys that
/// share a part up to `delimiter` rolled into one common prefix. Returns the page and whether
/// more follow. A common prefix that is not after `marker` is skipped with all its keys, so a
/// page that ended on one resumes after it.
fn page<'a>(
    keys: &'a [String],
    prefix: &str,
    delimiter: Option<&str>,
    marker: Option<&str>,
    max: usize,
) -> (Vec<Entry<'a>>, bool) {
    let start = match marker {
        Some(marker) => keys.partition_point(|key| key.as_str() <= marker),
        None => keys.partition_point(|key| key.as_str() < prefix),
    };
    let mut entries: Vec<Entry<'a>> = Vec::new();
    for key in &keys[start..] {
        if !key.starts_with(prefix) {
            if key.as_str() > prefix {
                break;
            }
            continue;
        }
        let entry = match delimiter {
            Some(delimiter) => match key[prefix.len()..].find(delimiter) {
                Some(at) => Entry::CommonPrefix(&key[..prefix.len() + at + delimiter.len()]),
                None => Entry::Object(key),
            },
            None => Entry::Object(key),
        };
        if let Entry::CommonPrefix(common) = &entry
            && (entries.last() == Some(&entry) || marker.is_some_and(|marker| *common <= marker))
        {
            continue;
        }
        if entries.len() == max {
            return (entries, true);
        }
        entries.push(entry);
    }
    (entries, false)
}

pub async fn list_objects(ctx: &Ctx<'_>, v2: bool) -> S3Result<Response<Body>> {
    let query = &ctx.query;
    let prefix = query.get("prefix").unwrap_or("");
    let delimiter = query.get("delimiter").filter(|delimiter| !delimiter.is_empty());
    let url_encoded = match query.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
                "encoding-type",
                other,
            ));
        }
    };
    let max = match query.get("max-keys") {
        None => MAX_KEYS,
        Some(value) => match value.parse::<i64>() {
            Ok(max) if max >= 0 => (max as u64).min(MAX_KEYS as u64) as usize,
            _ => {
                return Err(S3Error::invalid_argument(
                    "Provided max-keys not an integer or within integer range",
                    "max-keys",
                    value,
                ));
            }
        },
    };
    let continuation = match query.get("continuation-token").filter(|_| v2) {
        None => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| {
            S3Error::invalid_argument("The continuation token provided is incorrect", "continuation-token", token)
        })?),
    };
    let start_after = if v2 { query.get("start-after") } else { query.get("marker") }.filter(|s| !s.is_empty());
    let marker = continuation.as_deref().or(start_after);

    let keys = ctx.store().list_keys(&ctx.bucket).await?;
    let (entries, truncated) = if max == 0 { (Vec::new(), false) } else { page(&keys, prefix, delimiter, marker, max) };

    let encode = |text: &str| if url_encoded { uri_encode(text, true) } else { text.to_owned() };
    let mut document = xml::Writer::new().root("ListBucketResult");
    document.element("Name", &ctx.bucket).element("Prefix", &encode(prefix));
    if v2 {
        if let Some(token) = query.get("continuation-token") {
            document.element("ContinuationToken", token);
        }
        if let Some(start_after) = start_after {
            document.element("StartAfter", &encode(start_after));
        }
        document.element("KeyCount", &entries.len().to_string());
    } else {
        document.element("Marker", &encode(start_after.unwrap_or("")));
    }
    document.element("MaxKeys", &max.to_string());
    if let Some(delimiter) = delimiter {
        document.element("Delimiter", &encode(delimiter));
    }
    document.element("IsTruncated", if truncated { "true" } else { "false" });
    if truncated && let Some(last) = entries.last() {
        if v2 {
            document.element("NextContinuationToken", &TOKEN.encode(last.name()));
        } else if delimiter.is_some() {
            // Without a delimiter, V1 clients continue from the last key themselves.
            document.element("NextMarker", &encode(last.name()));
        }
    }
    let fetch_owner = !v2 || query.get("fetch-owner") == Some("true");
    for entry in &entries {
        let Entry::Object(key) = entry else { continue };
        // An object deleted since the listing began is left out.
        let Some(meta) = ctx.store().object_meta(&ctx.bucket, key).await? else { continue };
        document
            .open("Contents")
            .element("Key", &encode(key))
            .element("LastModified", &iso8601(meta.last_modified))
            .element("ETag", &quoted(&meta.etag))
            .element("Size", &meta.size.to_string())
            .element("StorageClass", "STANDARD");
        if fetch_owner {
            document
                .open("Owner")
                .element("ID", &ctx.state.account_id)
                .element("DisplayName", "landfall")
                .close("Owner");
        }
        document.close("Contents");
    }
    for entry in &entries {
        if let Entry::CommonPrefix(common) = entry {
            document.open("CommonPrefixes").element("Prefix", &encode(common)).close("CommonPrefixes");
        }
    }
    if url_encoded {
        document.element("EncodingType", "url");
    }
    document.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, document.finish()))
}

/// Continuation tokens are the last entry of the previous page, base64url-encoded (opaque to
/// clients, as S3's).
fn decode_token(token: &str) -> Option<String> {
    String::from_utf8(TOKEN.decode(token).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = list.iter().map(|key| key.to_string()).collect();
        keys.sort();
        keys
    }

    fn names(entries: &[Entry<'_>]) -> Vec<String> {
        entries
            .iter()
            .map(|entry| match entry {
                Entry::Object(key) => key.to_string(),
                Entry::CommonPrefix(prefix) => format!("[{prefix}]"),
            })
            .collect()
    }

    #[test]
    fn delimiters_and_prefixes() {
        let all = keys(&["a/1", "a/2", "a/b/3", "b", "c/4", "c5", "d/"]);
        let (entries, truncated) = page(&all, "", Some("/"), None, 1000);
        assert_eq!(names(&entries), ["[a/]", "b", "[c/]", "c5", "[d/]"]);
        assert!(!truncated);
        let (entries, _) = page(&all, "a/", Some("/"), None, 1000);
        assert_eq!(names(&entries), ["a/1", "a/2", "[a/b/]"]);
        let (entries, _) = page(&all, "c", None, None, 1000);
        assert_eq!(names(&entries), ["c/4", "c5"]);
    }

    #[test]
    fn pages_resume_after_their_last_entry() {
        let all = keys(&["a/1", "a/2", "a/b/3", "b", "c/4", "c5", "d/"]);
        let mut marker: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let (entries, truncated) = page(&all, "", Some("/"), marker.as_deref(), 2);
            seen.extend(names(&entries));
            if !truncated {
                break;
            }
            marker = entries.last().map(|entry| entry.name().to_owned());
        }
        assert_eq!(seen, ["[a/]", "b", "[c/]", "c5", "[d/]"]);
        let (entries, truncated) = page(&all, "", None, Some("a/2"), 3);
        assert_eq!((names(&entries), truncated), (vec!["a/b/3".to_owned(), "b".to_owned(), "c/4".to_owned()], true));
        assert_eq!(decode_token(&TOKEN.encode("a/é")).as_deref(), Some("a/é"));
        assert_eq!(decode_token("!!"), None);
    }
}
