//! Leases and fenced writes: what lets several servers share one store.

use landfall_api::Timestamp;
use landfall_api::shapes::DeploymentStatus;

use super::{ROOMY, app, deployment, group, s3_revision};
use crate::{DeploymentStep, Fence, Store, StoreError};

pub async fn leases(store: &dyn Store) {
    let (t0, ttl) = (Timestamp(10_000), 5_000);
    let until = |at: Timestamp| Timestamp(at.0 + ttl);

    // Free: taken at epoch 1. Held by another and unexpired: refused.
    let a = store.acquire_lease("deployment:d-1", "server-a", t0, until(t0)).await.unwrap().unwrap();
    assert_eq!((a.holder.as_str(), a.epoch), ("server-a", 1));
    assert_eq!(
        store.acquire_lease("deployment:d-1", "server-b", Timestamp(14_999), Timestamp(19_999)).await.unwrap(),
        None
    );
    // Its holder taking it again extends it and keeps the epoch.
    let again = store.acquire_lease("deployment:d-1", "server-a", Timestamp(12_000), Timestamp(17_000)).await.unwrap();
    assert_eq!(again, Some(a.clone()));
    assert_eq!(
        store.acquire_lease("deployment:d-1", "server-b", Timestamp(16_000), Timestamp(21_000)).await.unwrap(),
        None
    );

    // Renewal extends every lease of the holder, and only those.
    store.acquire_lease("alarms", "server-b", t0, until(t0)).await.unwrap().unwrap();
    let renewed = store.renew_leases("server-a", Timestamp(30_000)).await.unwrap();
    assert_eq!(renewed, std::slice::from_ref(&a));
    let all = store.leases().await.unwrap();
    assert_eq!(
        all.iter().map(|l| (l.name.as_str(), l.expires_at.0)).collect::<Vec<_>>(),
        [("alarms", 15_000), ("deployment:d-1", 30_000)]
    );

    // Expired: another holder takes it, at a new epoch, and the old holder's renewal no
    // longer finds it.
    let b =
        store.acquire_lease("deployment:d-1", "server-b", Timestamp(30_001), Timestamp(35_001)).await.unwrap().unwrap();
    assert_eq!((b.holder.as_str(), b.epoch), ("server-b", 2));
    assert_eq!(store.renew_leases("server-a", Timestamp(40_000)).await.unwrap(), []);

    // Released: free for anyone at once; releasing someone else's lease does nothing.
    store.release_lease("deployment:d-1", "server-a").await.unwrap();
    assert_eq!(store.leases().await.unwrap().len(), 2);
    store.release_lease("deployment:d-1", "server-b").await.unwrap();
    let c = store.acquire_lease("deployment:d-1", "server-c", Timestamp(31_000), Timestamp(36_000)).await.unwrap();
    assert_eq!(c.map(|c| c.holder), Some("server-c".to_owned()));
}

pub async fn fenced_steps(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "C"), ROOMY).await.unwrap();
    let record = deployment("d-FENCE0001", "g-1", DeploymentStatus::Created, 1, true);
    store.create_deployment(&record, &[], &s3_revision("app-1", "v1.zip", 0)).await.unwrap();
    let lease = "deployment:d-FENCE0001";
    let old = store.acquire_lease(lease, "server-a", Timestamp(0), Timestamp(5_000)).await.unwrap().unwrap();

    let step = |fence: &Fence, version: i64, description: &str| {
        let mut next = record.clone();
        next.version = version;
        next.info.description = Some(description.into());
        DeploymentStep { deployment: next, fence: Some(fence.clone()), ..Default::default() }
    };
    store.apply_deployment_step(&step(&old, 0, "by a")).await.unwrap();

    // Server a stalls past its lease; server b takes over and writes.
    let new = store.acquire_lease(lease, "server-b", Timestamp(6_000), Timestamp(11_000)).await.unwrap().unwrap();
    store.apply_deployment_step(&step(&new, 1, "by b")).await.unwrap();
    // Server a's step, computed from the newest version, is still refused: the fence fails.
    let stale = store.apply_deployment_step(&step(&old, 2, "late a")).await;
    assert!(matches!(stale, Err(StoreError::LeaseLost(ref name)) if name == lease), "{stale:?}");
    let stored = store.deployment("d-FENCE0001").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.info.description.as_deref()), (2, Some("by b")));
    // A fence from a lease that was released is refused too.
    store.release_lease(lease, "server-b").await.unwrap();
    assert!(matches!(
        store.apply_deployment_step(&step(&new, 2, "after release")).await,
        Err(StoreError::LeaseLost(_))
    ));
}

#[test]
fn notices_split_into_payloads_within_the_limit_and_parse_back() {
    use crate::{Notice, NoticeKind};
    let notice = Notice::new(NoticeKind::Host, ["web-1", "web-2", "web-3"]);
    assert_eq!(notice.payloads(100), ["host\nweb-1\nweb-2\nweb-3"]);
    assert_eq!(Notice::parse("host\nweb-1\nweb-2\nweb-3"), notice);
    assert_eq!(notice.payloads(17), ["host\nweb-1\nweb-2", "host\nweb-3"]);
    let keys: Vec<String> = notice.payloads(11).iter().flat_map(|p| Notice::parse(p).keys).collect();
    assert_eq!(keys, ["web-1", "web-2", "web-3"]);
    assert_eq!(Notice::new(NoticeKind::Resync, Vec::<String>::new()).payloads(100), ["resync"]);
    assert_eq!(Notice::parse("resync"), Notice::new(NoticeKind::Resync, Vec::<String>::new()));
    assert_eq!(Notice::parse("newer\nx").kind, NoticeKind::Unknown("newer".into()));
    // A key that fits no payload is dropped, not sent broken.
    assert_eq!(Notice::new(NoticeKind::Host, ["x".repeat(20), "web-1".into()]).payloads(12), ["host\nweb-1"]);
}

pub async fn ended_sessions(store: &dyn Store) {
    assert!(!store.session_ended("nonce-1").await.unwrap());
    store.end_session("nonce-1", Timestamp(50_000), Timestamp(10_000)).await.unwrap();
    store.end_session("nonce-1", Timestamp(50_000), Timestamp(10_000)).await.unwrap();
    assert!(store.session_ended("nonce-1").await.unwrap());
    assert!(!store.session_ended("nonce-2").await.unwrap());
    // Once its cookie would have expired anyway, an ended session is forgotten.
    store.end_session("nonce-2", Timestamp(90_000), Timestamp(60_000)).await.unwrap();
    assert!(!store.session_ended("nonce-1").await.unwrap());
    assert!(store.session_ended("nonce-2").await.unwrap());
}
