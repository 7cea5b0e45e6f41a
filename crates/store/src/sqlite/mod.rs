//! The embedded store: one SQLite database file in WAL mode. Writes go through a single
//! connection (SQLite has one writer anyway, and this way a check-then-write step never races
//! another); reads use a few connections of their own.
//!
//! The connections are held here, not in sqlx's pool: the pool checks a connection with a
//! round trip to its worker thread each time it goes back, which doubled the thread hand-offs of
//! every statement and kept the one writer busy for the check (docs/benchmarks.md, "Tens of
//! thousands of hosts").
//!
//! Queries number their parameters (`$1`, `$2`, ...), which SQLite binds by number as
//! PostgreSQL does, so the same statements can serve both stores.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite};
use sqlx_core::transaction::TransactionManager as _;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::schema::SQLITE;
use crate::sql::prelude::*;

/// Connections for reading: as many as statements that may run at once.
const READERS: usize = 4;

/// A connection, until the store is closed.
type Slot = Mutex<Option<SqliteConnection>>;

pub struct SqliteStore {
    writer: Slot,
    readers: Vec<Slot>,
    next_reader: AtomicUsize,
    /// To open a fresh writer in place of one stuck in a transaction.
    options: SqliteConnectOptions,
    command_writes: CommandWrites,
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

/// Whether the writer, taken for the next statement, is still in a transaction. A transaction
/// whose COMMIT failed (a full disk: SQLite may or may not have rolled it back) is rolled back
/// when dropped; if that ROLLBACK fails too, the connection would carry the open transaction on,
/// and every later write would go into it and never be committed. Such a connection is closed
/// instead (which rolls back for certain), and a fresh one takes its place.
async fn stuck_in_transaction(connection: &mut SqliteConnection) -> bool {
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
    /// A write transaction on the single writer connection, which makes check-then-write steps
    /// safe.
    async fn begin_write(&self) -> StoreResult<WriteTransaction<'_>> {
        let mut connection = self.writer().await?;
        <Sqlite as sqlx::Database>::TransactionManager::begin(&mut connection, None).await?;
        Ok(WriteTransaction { connection, open: true })
    }

    /// A transaction for a batch of agents' reports: the single writer's.
    async fn begin_batch(&self) -> StoreResult<WriteTransaction<'_>> {
        self.begin_write().await
    }

    /// The writer connection, for one statement or a transaction, once it is free.
    async fn writer(&self) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        let mut slot = self.writer.lock().await;
        if let Some(connection) = slot.as_mut()
            && stuck_in_transaction(connection).await
        {
            let stuck = slot.replace(self.options.connect().await?);
            if let Some(stuck) = stuck {
                let _ = stuck.close_hard().await;
            }
        }
        open(slot)
    }

    /// A reader connection: a free one, or else the next in turn once it is free.
    async fn reader(&self) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.readers.len() {
            if let Ok(slot) = self.readers[(turn + offset) % self.readers.len()].try_lock() {
                return open(slot);
            }
        }
        open(self.readers[turn % self.readers.len()].lock().await)
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
        let mut writer = options.connect().await?;
        migrate(&mut writer, &SQLITE, None).await?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(Some(options.connect().await?)));
        }
        Ok(SqliteStore {
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
            options,
            command_writes: CommandWrites::default(),
        })
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

    /// Closes every connection, waiting for statements under way to finish.
    async fn close_pools(&self) {
        for slot in self.readers.iter().chain([&self.writer]) {
            if let Some(connection) = slot.lock().await.take() {
                let _ = connection.close().await;
            }
        }
    }
}

/// The connection in a slot, or Unavailable once the store is closed.
fn open(slot: MutexGuard<'_, Option<SqliteConnection>>) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
    MutexGuard::try_map(slot, Option::as_mut).map_err(|_| StoreError::Unavailable("the store is closed".into()))
}

/// A write transaction holding the writer connection; rolled back unless committed.
struct WriteTransaction<'a> {
    connection: MappedMutexGuard<'a, SqliteConnection>,
    open: bool,
}

impl WriteTransaction<'_> {
    /// Commits; a failed commit is rolled back as the transaction is dropped.
    async fn commit(mut self) -> Result<(), sqlx::Error> {
        <Sqlite as sqlx::Database>::TransactionManager::commit(&mut self.connection).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTransaction<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection
    }
}

impl DerefMut for WriteTransaction<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection
    }
}

impl Drop for WriteTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Queued on the connection's worker ahead of anything the next holder sends.
            <Sqlite as sqlx::Database>::TransactionManager::start_rollback(&mut self.connection);
        }
    }
}

sql_store!(SqliteStore, Sqlite, SqliteRow, SqliteConnection, sqlx::SqlitePool);

#[cfg(test)]
mod tests {
    use landfall_api::shapes::DeploymentStatus;

    #[test]
    fn the_sql_list_of_active_statuses_matches_the_api() {
        let listed: Vec<String> = DeploymentStatus::ACTIVE.iter().map(|status| format!("'{status}'")).collect();
        assert_eq!(active_statuses!(), format!("({})", listed.join(", ")));
    }
}
