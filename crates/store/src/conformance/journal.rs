//! Checks of what a store keeps about what happened: alarms, timelines, the trigger outbox and
//! the audit log.

use std::collections::BTreeMap;

use landfall_api::Timestamp;
use landfall_api::landfall::{
    AlarmInfo, AuditRecordInfo, ComparisonOperator, DeploymentEventInfo, DeploymentEventType,
};
use landfall_api::shapes::DeploymentStatus;

use super::{ROOMY, app, deployment, group, s3_revision};
use crate::{AuditFilter, DeploymentStep, PageRequest, Store, TriggerMessage, TriggerState};

fn alarm(name: &str, threshold: f64) -> AlarmInfo {
    AlarmInfo {
        alarm_name: name.into(),
        query: "sum(rate(http_errors_total[1m]))".into(),
        comparison_operator: ComparisonOperator::GreaterThanThreshold,
        threshold,
        description: String::new(),
        create_time: Timestamp(1_000),
        update_time: Timestamp(1_000),
        state: None,
    }
}

pub async fn alarms(store: &dyn Store) {
    store.put_alarm(&alarm("errors", 1.0)).await.unwrap();
    store.put_alarm(&alarm("latency", 0.5)).await.unwrap();
    // Putting again replaces.
    store.put_alarm(&alarm("errors", 5.0)).await.unwrap();
    assert_eq!(store.alarm("errors").await.unwrap().unwrap().threshold, 5.0);
    assert_eq!(store.alarm("nope").await.unwrap(), None);
    let names: Vec<String> = store.list_alarms().await.unwrap().into_iter().map(|a| a.alarm_name).collect();
    assert_eq!(names, ["errors", "latency"]);
    assert!(store.delete_alarm("errors").await.unwrap());
    assert!(!store.delete_alarm("errors").await.unwrap());
    assert_eq!(store.list_alarms().await.unwrap().len(), 1);
}

fn event(deployment_id: &str, at: i64, message: &str) -> DeploymentEventInfo {
    DeploymentEventInfo {
        sequence: 0,
        deployment_id: deployment_id.into(),
        time: Timestamp(at),
        event_type: DeploymentEventType::StatusChanged,
        status: Some("InProgress".into()),
        instance_ids: vec![],
        lifecycle_event: None,
        related_deployment_id: None,
        message: message.into(),
    }
}

fn trigger(deployment_id: &str, id: &str, destination: &str, due: i64) -> TriggerMessage {
    TriggerMessage {
        message_id: id.into(),
        deployment_id: deployment_id.into(),
        destination: destination.into(),
        trigger_name: "hook".into(),
        event: "DeploymentStart".into(),
        subject: "subject".into(),
        body: "{}".into(),
        created_at: Timestamp(due),
        next_attempt_at: Timestamp(due),
        ..Default::default()
    }
}

/// A stored deployment `id` to hang timelines and triggers on, written by a step carrying them.
async fn step_with(store: &dyn Store, id: &str, events: Vec<DeploymentEventInfo>, triggers: Vec<TriggerMessage>) {
    if store.application("web").await.unwrap().is_none() {
        store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
        store.create_deployment_group(&group("g-1", "app-1", "prod", "C"), ROOMY).await.unwrap();
    }
    let record = deployment(id, "g-1", DeploymentStatus::Created, 1, false);
    store.create_deployment(&record, &[], &s3_revision("app-1", "v1.zip", 0)).await.unwrap();
    let current = store.deployment(id).await.unwrap().unwrap();
    let step = DeploymentStep { deployment: current, events, triggers, ..Default::default() };
    store.apply_deployment_step(&step).await.unwrap();
}

pub async fn deployment_timelines(store: &dyn Store) {
    step_with(store, "d-A", vec![event("d-A", 1, "one"), event("d-A", 2, "two")], vec![]).await;
    store.append_deployment_events(&[event("d-B", 3, "other"), event("d-A", 4, "three")]).await.unwrap();
    let all = store.deployment_events("d-A", 0, 100).await.unwrap();
    let messages: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["one", "two", "three"]);
    assert!(all.windows(2).all(|pair| pair[0].sequence < pair[1].sequence), "sequences increase");
    // A follower asks for what came after the last entry it saw.
    let later = store.deployment_events("d-A", all[0].sequence, 1).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].message, "two");
    assert_eq!(store.deployment_events("d-A", all[2].sequence, 100).await.unwrap(), []);
    assert_eq!(store.deployment_events("d-B", 0, 100).await.unwrap().len(), 1);
    // A page shows the newest entries, oldest first, without reading the rest.
    let newest = store.latest_deployment_events("d-A", 2).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["two", "three"]);
    assert_eq!(store.latest_deployment_events("d-A", 100).await.unwrap(), all);
    assert_eq!(store.latest_deployment_events("d-C", 100).await.unwrap(), []);
}

pub async fn trigger_outbox(store: &dyn Store) {
    let queued = vec![
        trigger("d-A", "m1", "http://a", 10),
        trigger("d-A", "m2", "http://a", 10),
        trigger("d-A", "m3", "http://b", 10),
    ];
    step_with(store, "d-A", vec![], queued).await;
    step_with(store, "d-B", vec![], vec![trigger("d-B", "m4", "http://a", 50)]).await;
    let ids = |messages: Vec<TriggerMessage>| messages.into_iter().map(|m| m.message_id).collect::<Vec<_>>();
    // Only the head of each (deployment, destination) queue, and only when due.
    assert_eq!(ids(store.due_trigger_messages(Timestamp(10), 10).await.unwrap()), ["m1", "m3"]);
    assert_eq!(ids(store.due_trigger_messages(Timestamp(50), 10).await.unwrap()), ["m1", "m3", "m4"]);
    assert_eq!(ids(store.due_trigger_messages(Timestamp(50), 1).await.unwrap()), ["m1"]);
    assert_eq!(store.due_trigger_messages(Timestamp(9), 10).await.unwrap(), []);

    // A failed attempt puts the head off; the message behind it keeps waiting.
    let mut head = store.due_trigger_messages(Timestamp(10), 1).await.unwrap().remove(0);
    head.attempts = 1;
    head.next_attempt_at = Timestamp(20);
    head.last_error = Some("HTTP 503".into());
    store.update_trigger_message(&head).await.unwrap();
    assert_eq!(ids(store.due_trigger_messages(Timestamp(10), 10).await.unwrap()), ["m3"]);
    // Delivered, it lets the next one through.
    head.state = TriggerState::Delivered;
    store.update_trigger_message(&head).await.unwrap();
    assert_eq!(ids(store.due_trigger_messages(Timestamp(10), 10).await.unwrap()), ["m2", "m3"]);
    // So does an expired one.
    let mut third = store.due_trigger_messages(Timestamp(10), 10).await.unwrap().remove(1);
    third.state = TriggerState::Expired;
    store.update_trigger_message(&third).await.unwrap();
    assert_eq!(ids(store.due_trigger_messages(Timestamp(10), 10).await.unwrap()), ["m2"]);

    let of_a = store.trigger_messages("d-A").await.unwrap();
    assert_eq!(ids(of_a.clone()), ["m1", "m2", "m3"]);
    assert_eq!(
        (of_a[0].state, of_a[0].attempts, of_a[0].last_error.as_deref()),
        (TriggerState::Delivered, 1, Some("HTTP 503"))
    );
    assert_eq!(of_a[2].state, TriggerState::Expired);

    // Pruning drops delivered and expired messages created before the cut, never pending ones.
    assert_eq!(store.prune_trigger_messages(Timestamp(11)).await.unwrap(), 2);
    assert_eq!(ids(store.trigger_messages("d-A").await.unwrap()), ["m2"]);
    assert_eq!(store.prune_trigger_messages(Timestamp(1_000)).await.unwrap(), 0);
}

fn audit(at: i64, key: &str, operation: &str) -> AuditRecordInfo {
    AuditRecordInfo {
        sequence: 0,
        time: Timestamp(at),
        access_key_id: key.into(),
        role: "admin".into(),
        operation: operation.into(),
        resources: BTreeMap::from([("applicationName".to_owned(), "web".to_owned())]),
        source_address: "127.0.0.1".into(),
        result: "Success".into(),
        message: None,
    }
}

pub async fn audit_log(store: &dyn Store) {
    for (at, key, operation) in
        [(1, "AK1", "CreateApplication"), (2, "AK2", "CreateDeployment"), (3, "AK1", "CreateDeployment")]
    {
        store.append_audit_record(&audit(at, key, operation)).await.unwrap();
    }
    let all = store.audit_records(&AuditFilter::default(), &PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.items[0].operation, "CreateApplication");
    assert_eq!(all.items[0].resources["applicationName"], "web");
    assert!(all.next.is_none());
    let by_key = AuditFilter { access_key_id: Some("AK1".into()), ..Default::default() };
    let page = store.audit_records(&by_key, &PageRequest { after: None, limit: 1 }).await.unwrap();
    assert_eq!((page.items[0].time, page.next.is_some()), (Timestamp(1), true));
    let page = store.audit_records(&by_key, &PageRequest { after: page.next, limit: 1 }).await.unwrap();
    assert_eq!((page.items[0].time, page.items[0].operation.as_str()), (Timestamp(3), "CreateDeployment"));
    let window = AuditFilter {
        from: Some(Timestamp(2)),
        to: Some(Timestamp(2)),
        operation: Some("CreateDeployment".into()),
        ..Default::default()
    };
    let page = store.audit_records(&window, &PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].access_key_id, "AK2");
}

/// The audit log refuses a stray UPDATE or DELETE even in SQL (only dropping the database's
/// guard, a deliberate act, would let one through). `execute` runs one statement on the store's
/// database directly and gives its error's text.
pub async fn audit_log_refuses_sql_changes<F, Fut>(store: &dyn Store, execute: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    store.append_audit_record(&audit(1_000, "AK1", "CreateApplication")).await.unwrap();
    for statement in ["UPDATE audit_log SET access_key_id = 'AK2'", "DELETE FROM audit_log"] {
        let error = execute(statement).await.expect_err(statement);
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    let page = store.audit_records(&AuditFilter::default(), &PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].access_key_id, "AK1");
}
