//! What the SQLite store keeps about what happened: deployment timelines, the trigger outbox,
//! the audit log, and the alarms deployments are watched with.

use landfall_api::Timestamp;
use landfall_api::landfall::{AlarmInfo, AuditRecordInfo, DeploymentEventInfo};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{from_doc, page_of, to_doc};
use crate::{AuditFilter, Page, PageRequest, StoreResult, TriggerMessage, TriggerState};

pub(super) async fn insert_events(
    connection: &mut SqliteConnection,
    events: &[DeploymentEventInfo],
) -> StoreResult<()> {
    for event in events {
        sqlx::query("INSERT INTO deployment_events (deployment_id, doc) VALUES ($1, $2)")
            .bind(&event.deployment_id)
            .bind(to_doc(event))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

pub(super) async fn events_of(
    pool: &SqlitePool,
    deployment_id: &str,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<DeploymentEventInfo>> {
    let rows = sqlx::query(
        "SELECT seq, doc FROM deployment_events WHERE deployment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(deployment_id)
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let mut event: DeploymentEventInfo = from_doc(row.try_get("doc")?)?;
            event.sequence = row.try_get("seq")?;
            Ok(event)
        })
        .collect()
}

pub(super) async fn insert_triggers(connection: &mut SqliteConnection, messages: &[TriggerMessage]) -> StoreResult<()> {
    for message in messages {
        sqlx::query(
            "INSERT INTO trigger_outbox (message_id, deployment_id, destination, trigger_name, event, subject, body,
                 created_at, attempts, next_attempt_at, state, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&message.message_id)
        .bind(&message.deployment_id)
        .bind(&message.destination)
        .bind(&message.trigger_name)
        .bind(&message.event)
        .bind(&message.subject)
        .bind(&message.body)
        .bind(message.created_at.millis())
        .bind(message.attempts)
        .bind(message.next_attempt_at.millis())
        .bind(message.state.as_str())
        .bind(&message.last_error)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

fn trigger_from_row(row: &SqliteRow) -> StoreResult<TriggerMessage> {
    let state: String = row.try_get("state")?;
    Ok(TriggerMessage {
        sequence: row.try_get("seq")?,
        message_id: row.try_get("message_id")?,
        deployment_id: row.try_get("deployment_id")?,
        destination: row.try_get("destination")?,
        trigger_name: row.try_get("trigger_name")?,
        event: row.try_get("event")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        created_at: Timestamp(row.try_get("created_at")?),
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp(row.try_get("next_attempt_at")?),
        state: TriggerState::parse(&state).unwrap_or(TriggerState::Pending),
        last_error: row.try_get("last_error")?,
    })
}

pub(super) async fn due_triggers(pool: &SqlitePool, now: Timestamp, limit: usize) -> StoreResult<Vec<TriggerMessage>> {
    // The head of each (deployment, destination) queue, if its attempt is due.
    let rows = sqlx::query(
        "SELECT o.* FROM trigger_outbox o
         WHERE o.state = 'Pending' AND o.next_attempt_at <= $1
           AND NOT EXISTS (SELECT 1 FROM trigger_outbox e
                           WHERE e.state = 'Pending' AND e.deployment_id = o.deployment_id
                             AND e.destination = o.destination AND e.seq < o.seq)
         ORDER BY o.seq LIMIT $2",
    )
    .bind(now.millis())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter().map(trigger_from_row).collect()
}

pub(super) async fn update_trigger(pool: &SqlitePool, message: &TriggerMessage) -> StoreResult<()> {
    sqlx::query(
        "UPDATE trigger_outbox SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE seq = $5",
    )
    .bind(message.state.as_str())
    .bind(message.attempts)
    .bind(message.next_attempt_at.millis())
    .bind(&message.last_error)
    .bind(message.sequence)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn triggers_of(pool: &SqlitePool, deployment_id: &str) -> StoreResult<Vec<TriggerMessage>> {
    let rows = sqlx::query("SELECT * FROM trigger_outbox WHERE deployment_id = $1 ORDER BY seq")
        .bind(deployment_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(trigger_from_row).collect()
}

pub(super) async fn prune_triggers(pool: &SqlitePool, before: Timestamp) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM trigger_outbox WHERE state IN ('Delivered', 'Expired') AND created_at < $1")
        .bind(before.millis())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn append_audit(pool: &SqlitePool, record: &AuditRecordInfo) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_log (at, access_key_id, operation, doc) VALUES ($1, $2, $3, $4)")
        .bind(record.time.millis())
        .bind(&record.access_key_id)
        .bind(&record.operation)
        .bind(to_doc(record))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn audit_records(
    pool: &SqlitePool,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRecordInfo>> {
    let after: i64 = page.after.as_deref().and_then(|cursor| cursor.parse().ok()).unwrap_or(0);
    let mut query = QueryBuilder::<Sqlite>::new("SELECT seq, doc FROM audit_log WHERE seq > ");
    query.push_bind(after);
    if let Some(from) = filter.from {
        query.push(" AND at >= ").push_bind(from.millis());
    }
    if let Some(to) = filter.to {
        query.push(" AND at <= ").push_bind(to.millis());
    }
    if let Some(key) = &filter.access_key_id {
        query.push(" AND access_key_id = ").push_bind(key.clone());
    }
    if let Some(operation) = &filter.operation {
        query.push(" AND operation = ").push_bind(operation.clone());
    }
    query.push(" ORDER BY seq LIMIT ").push_bind(super::fetch_limit(page));
    let rows = query.build().fetch_all(pool).await?;
    let records = rows
        .iter()
        .map(|row| {
            let mut record: AuditRecordInfo = from_doc(row.try_get("doc")?)?;
            record.sequence = row.try_get("seq")?;
            Ok(record)
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(records, page.limit, |record| record.sequence.to_string()))
}

pub(super) async fn put_alarm(pool: &SqlitePool, alarm: &AlarmInfo) -> StoreResult<()> {
    sqlx::query("INSERT INTO alarms (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc")
        .bind(&alarm.alarm_name)
        .bind(to_doc(alarm))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn alarm(pool: &SqlitePool, name: &str) -> StoreResult<Option<AlarmInfo>> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM alarms WHERE name = $1").bind(name).fetch_optional(pool).await?;
    doc.as_deref().map(from_doc).transpose()
}

pub(super) async fn list_alarms(pool: &SqlitePool) -> StoreResult<Vec<AlarmInfo>> {
    let docs: Vec<String> = sqlx::query_scalar("SELECT doc FROM alarms ORDER BY name").fetch_all(pool).await?;
    docs.iter().map(|doc| from_doc(doc)).collect()
}

pub(super) async fn delete_alarm(pool: &SqlitePool, name: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM alarms WHERE name = $1").bind(name).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}
