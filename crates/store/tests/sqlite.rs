//! The conformance suite on the embedded SQLite store, each check in its own database file.

use std::sync::Arc;

use landfall_store::SqliteStore;

async fn fresh_store() -> Arc<SqliteStore> {
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open(&dir.join("landfall.db")).await.unwrap())
}

landfall_store::conformance_tests!(fresh_store());

#[tokio::test]
async fn reopening_keeps_data_and_does_not_migrate_twice() {
    use landfall_store::Store;
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
    use landfall_api::Timestamp;
    use landfall_api::landfall::AuditRecordInfo;
    use landfall_store::{AuditFilter, PageRequest, Store};
    let dir = std::env::temp_dir().join(format!("landfall-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("landfall.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let record = AuditRecordInfo {
        sequence: 0,
        time: Timestamp(1_000),
        access_key_id: "AK1".into(),
        role: "admin".into(),
        operation: "CreateApplication".into(),
        resources: Default::default(),
        source_address: "127.0.0.1".into(),
        result: "Success".into(),
        message: None,
    };
    store.append_audit_record(&record).await.unwrap();
    // A stray UPDATE or DELETE is refused even in SQL (only dropping the triggers, a deliberate
    // act, would let one through).
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    for statement in ["UPDATE audit_log SET access_key_id = 'AK2'", "DELETE FROM audit_log"] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    pool.close().await;
    let page = store.audit_records(&AuditFilter::default(), &PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].access_key_id, "AK1");
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
