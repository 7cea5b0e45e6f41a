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
