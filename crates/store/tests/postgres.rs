//! The conformance suite on PostgreSQL, each check in a database of its own. `scripts/test`
//! starts a PostgreSQL server and names it in `LANDFALL_TEST_POSTGRES` (a URL to its
//! `postgres` database, with a role that may create databases).

use std::sync::Arc;

use landfall_store::PostgresStore;
use landfall_store::capabilities::*;

/// A new, empty database's URL.
async fn fresh_database() -> String {
    let admin = std::env::var("LANDFALL_TEST_POSTGRES")
        .expect("LANDFALL_TEST_POSTGRES is not set: scripts/test starts PostgreSQL for these tests and sets it");
    let name = format!("landfall_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin).await.expect("connecting to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

async fn fresh_store() -> Arc<PostgresStore> {
    Arc::new(PostgresStore::connect(&fresh_database().await).await.unwrap())
}

landfall_store::conformance_tests!(fresh_store());

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes_even_in_sql() {
    let url = fresh_database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let execute = |statement| {
        let pool = pool.clone();
        async move { sqlx::query(statement).execute(&pool).await.map(|_| ()).map_err(|e| e.to_string()) }
    };
    landfall_store::conformance::audit_log_refuses_sql_changes(&store, execute).await;
}

#[tokio::test]
async fn a_notice_reaches_every_server_on_the_database() {
    use landfall_store::{Notice, NoticeKind};
    let url = fresh_database().await;
    let (a, b) = (PostgresStore::connect(&url).await.unwrap(), PostgresStore::connect(&url).await.unwrap());
    let mut on_a = a.subscribe().await.unwrap().expect("PostgreSQL stores deliver notices");
    let mut on_b = b.subscribe().await.unwrap().unwrap();
    let keys: Vec<String> = (0..2000).map(|n| format!("host-{n:05}")).collect();
    b.publish(&Notice::new(NoticeKind::Host, keys.clone())).await.unwrap();
    // Split into several payloads on the way, every key arrives at both.
    for receiver in [&mut on_a, &mut on_b] {
        let mut seen = Vec::new();
        while seen.len() < keys.len() {
            let notice =
                tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv()).await.unwrap().unwrap();
            assert_eq!(notice.kind, NoticeKind::Host);
            seen.extend(notice.keys);
        }
        assert_eq!(seen, keys);
    }
}

/// A burst that keeps every pooled connection busy is not a database that is away: requests
/// wait their turn instead of failing with "does not answer" (the availability probe once
/// asked through the pool and took its queue for an outage).
#[tokio::test]
async fn a_busy_pool_is_not_taken_for_an_unreachable_database() {
    let url = fresh_database().await;
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    assert!(store.application("app").await.unwrap().is_none());
    // Every read of applications waits for this lock, holding its pooled connection.
    let mut blocker = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let mut lock = sqlx::Connection::begin(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE applications IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.application("app").await.map(|_| ()) })
        })
        .collect();
    // Long enough for the probe (every second, 800 ms to answer) to have looked twice.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let late = {
        let store = store.clone();
        tokio::spawn(async move { store.application("app").await.map(|_| ()) })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    lock.rollback().await.unwrap();
    for request in waiting.into_iter().chain([late]) {
        request.await.unwrap().expect("a request waiting for a busy pool succeeds once it is served");
    }
}
