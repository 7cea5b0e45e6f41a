//! The embedded store: one SQLite database file in WAL mode. Writes go through a single
//! connection (SQLite has one writer anyway, and this way a check-then-write step never races
//! another); reads use a small pool of their own.
//!
//! Queries number their parameters (`$1`, `$2`, ...), which SQLite binds by number as
//! PostgreSQL does, so the same statements can serve both stores.

use std::path::Path;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::schema::SQLITE;
use crate::sql::prelude::*;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// Creates the database file with mode 0600 if it is missing, and takes group and other
/// access away from it and its WAL and shared-memory files if an older release (or a umask)
/// left them readable.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::metadata(&file) {
            Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a connection going back to the pool is still in a transaction. A transaction whose
/// COMMIT failed (a full disk: SQLite may or may not have rolled it back) is rolled back when
/// dropped; if that ROLLBACK fails too, the connection would carry the open transaction on, and
/// every later write would go into it and never be committed. Such a connection is closed
/// instead (which rolls back for certain), and the pool opens a fresh one.
async fn stuck_in_transaction(connection: &mut SqliteConnection) -> bool {
    use sqlx::Connection as _;
    if !connection.is_in_transaction() {
        return false;
    }
    // The rollback a dropped transaction queued runs before this does.
    let flushed = sqlx::query("SELECT 1").execute(&mut *connection).await;
    let stuck = flushed.is_err() || connection.is_in_transaction();
    if stuck {
        tracing::warn!("closing the store's writer connection: a failed transaction could not be rolled back");
    }
    stuck
}

impl SqliteStore {
    /// A write transaction: the single writer connection makes check-then-write steps safe.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'_, Sqlite>> {
        Ok(self.writer.begin().await?)
    }

    /// The pools (a file on this machine is never "unreachable").
    fn writer(&self) -> StoreResult<&SqlitePool> {
        Ok(&self.writer)
    }

    fn reader(&self) -> StoreResult<&SqlitePool> {
        Ok(&self.reader)
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date. The
    /// database and its WAL and shared-memory files are readable by their owner only (SQLite
    /// gives the latter the database file's mode), whatever the umask.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        private_files(path).map_err(|error| StoreError::backend(format!("{}: {error}", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        // No ping before each acquire: the connections are in-process, and the ping is a round
        // trip to the connection's worker thread on every query.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_release(|connection, _| Box::pin(async move { Ok(!stuck_in_transaction(connection).await) }))
            .connect_with(options.clone())
            .await?;
        migrate(&writer, &SQLITE, None).await?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    /// The schema version of the store at `path` against this Landfall's, read without creating
    /// or migrating anything (`landfall server --check-store`).
    pub async fn schema_status(path: &Path) -> StoreResult<crate::SchemaStatus> {
        if !path.exists() {
            return Err(StoreError::NotFound);
        }
        let options = SqliteConnectOptions::new().filename(path).read_only(true).busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let status = schema_status(&pool, &SQLITE).await;
        pool.close().await;
        status
    }

    /// One server per SQLite store: nobody else to tell.
    async fn publish_notice(&self, _notice: &Notice) -> StoreResult<()> {
        Ok(())
    }

    async fn subscribe_notices(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>> {
        Ok(None)
    }

    /// Closes both pools, waiting for their connections to finish.
    async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

sql_store!(SqliteStore, Sqlite, SqliteRow, SqliteConnection, SqlitePool);

#[cfg(test)]
mod tests {
    use landfall_api::shapes::DeploymentStatus;

    #[test]
    fn the_sql_list_of_active_statuses_matches_the_api() {
        let listed: Vec<String> = DeploymentStatus::ACTIVE.iter().map(|status| format!("'{status}'")).collect();
        assert_eq!(active_statuses!(), format!("({})", listed.join(", ")));
    }
}
