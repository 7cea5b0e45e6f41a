//! The audit log: every mutating API call (CodeDeploy's, Landfall's extensions, and writes to
//! the S3-compatible bundle store) is recorded with who made it (access key and role), what it
//! named, from where, when, and how it ended, refused calls included. The store only ever
//! appends to it, and no operation changes it. A record the store cannot take (its disk is
//! full, its database away) goes to the server's own log instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use landfall_api::Timestamp;
use landfall_api::error::ApiError;
use landfall_api::landfall::AuditRecordInfo;
use landfall_store::AuditLog;
use serde_json::Value;

use crate::auth::Caller;

/// Longest request value kept; longer ones are cut (an id or a name is never this long).
const MAX_VALUE: usize = 256;

/// The request fields that say what a call was about: names, ids and ARNs at the top level of
/// its input (a list of them joined by commas). Never anything that could be a secret.
pub fn resources(body: &[u8]) -> BTreeMap<String, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return BTreeMap::new();
    };
    let naming = |key: &str| {
        let lower = key.to_ascii_lowercase();
        let secret = ["secret", "token", "password", "content"].iter().any(|word| lower.contains(word));
        let identifies = ["Name", "Names", "Id", "Ids", "Arn", "Arns"].iter().any(|suffix| key.ends_with(suffix));
        identifies && !secret
    };
    let cut = |value: &str| value.chars().take(MAX_VALUE).collect::<String>();
    fields
        .iter()
        .filter(|(key, _)| naming(key))
        .filter_map(|(key, value)| {
            let text = match value {
                Value::String(text) => cut(text),
                Value::Array(items) => cut(&items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
                _ => return None,
            };
            Some((key.clone(), text))
        })
        .collect()
}

/// Appends the record of one API call; a failure to is logged (the call itself has happened).
pub async fn record(
    log: &dyn AuditLog,
    now: Timestamp,
    caller: &Caller,
    peer: SocketAddr,
    operation: String,
    body: &[u8],
    result: Result<(), &ApiError>,
) {
    let outcome = result.map_err(|error| (error.exception.name(), error.message.as_str()));
    append(log, now, caller, peer, operation, resources(body), outcome).await;
}

/// Appends a record: `outcome` is Ok, or the error's name and message.
pub async fn append(
    log: &dyn AuditLog,
    now: Timestamp,
    caller: &Caller,
    peer: SocketAddr,
    operation: String,
    resources: BTreeMap<String, String>,
    outcome: Result<(), (&str, &str)>,
) {
    let record = AuditRecordInfo {
        sequence: 0,
        time: now,
        access_key_id: caller.access_key_id.clone(),
        role: caller.role.as_str().to_owned(),
        operation,
        resources,
        source_address: peer.ip().to_string(),
        result: match outcome {
            Ok(()) => "Success".to_owned(),
            Err((name, _)) => name.to_owned(),
        },
        message: outcome.err().map(|(_, message)| message.to_owned()),
    };
    if let Err(error) = log.append_audit_record(&record).await {
        // The record is not lost: the server's own log (the journal) keeps it.
        let record = serde_json::to_string(&record).unwrap_or_default();
        tracing::error!(%error, %record, "cannot write the audit log; the record is kept here instead");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_keep_names_and_ids_and_never_secrets() {
        let body = br#"{"applicationName":"web","deploymentId":"d-1","instanceNames":["a","b"],
            "secretAccessKey":"x","githubTokenName":"t","revision":{"revisionType":"S3"},"description":"d",
            "autoRollbackEnabled":true}"#;
        let found = resources(body);
        let keys: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(keys, ["applicationName", "deploymentId", "instanceNames"]);
        assert_eq!(found["instanceNames"], "a,b");
        assert!(resources(b"not json").is_empty());
    }
}
