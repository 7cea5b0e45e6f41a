//! The conformance suite on the embedded SQLite store, each check in its own database file.

use std::sync::Arc;

use landfall_store::SqliteStore;
use landfall_store::capabilities::*;

async fn fresh_store() -> Arc<SqliteStore> {
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open(&dir.join("landfall.db")).await.unwrap())
}

landfall_store::conformance_tests!(fresh_store());

#[tokio::test]
async fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("landfall.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.init_meta("account", "111").await.unwrap(), "111");
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.init_meta("account", "222").await.unwrap(), "111");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes_even_in_sql() {
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("landfall.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let execute = |statement| {
        let pool = pool.clone();
        async move { sqlx::query(statement).execute(&pool).await.map(|_| ()).map_err(|e| e.to_string()) }
    };
    landfall_store::conformance::audit_log_refuses_sql_changes(&store, execute).await;
    pool.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_newer_schema_opens_only_if_its_release_says_this_one_can_run_on_it() {
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("landfall.db");
    let known = SqliteStore::open(&path).await.unwrap();
    let status = SqliteStore::schema_status(&path).await.unwrap();
    assert_eq!(status.applied, status.known);
    assert!(status.compatible_from.is_some_and(|floor| floor <= status.known) && status.usable());
    known.close().await;

    // A newer release migrated it and did not say: refused.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let newer = status.known + 1;
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
        .bind(newer)
        .execute(&pool)
        .await
        .unwrap();
    let error = SqliteStore::open(&path).await.err().expect("a newer schema without a floor is refused");
    assert!(error.to_string().contains("not usable by it"), "{error}");
    assert!(!SqliteStore::schema_status(&path).await.unwrap().usable());

    // It said this release still runs on it: opened as it is, not migrated.
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
        .bind(format!("schema_compatible_from:{newer}"))
        .bind(status.known.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), newer);
    assert!(SqliteStore::schema_status(&path).await.unwrap().usable());
    store.close().await;
    pool.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_database_and_its_wal_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("landfall.db");
    let mode =
        |suffix: &str| std::fs::metadata(format!("{}{suffix}", path.display())).unwrap().permissions().mode() & 0o777;
    let store = SqliteStore::open(&path).await.unwrap();
    store.init_meta("account", "111").await.unwrap();
    assert_eq!((mode(""), mode("-wal"), mode("-shm")), (0o600, 0o600, 0o600));
    store.close().await;
    // An older release's readable files are made private at the next start.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(mode(""), 0o600);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
