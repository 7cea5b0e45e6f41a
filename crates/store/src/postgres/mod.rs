//! The PostgreSQL store, for several servers on one database (or on any PostgreSQL-compatible
//! one). It runs the same statements as the SQLite store (`sql_store!`). Write transactions take
//! one transaction-level advisory lock, so a check-then-write step (a name still free, no other
//! active deployment in the group) holds when it writes, as with SQLite's single writer; reads,
//! and single-statement writes, run concurrently.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use tokio::sync::mpsc;

mod scratch;

pub use scratch::ScratchDatabase;

use crate::NoticeKind;
use crate::schema::POSTGRES;
use crate::sql::prelude::*;

/// The channel servers notify each other on.
const CHANNEL: &str = "landfall";
/// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD: usize = 7900;

/// The advisory lock key of write transactions and migrations ("Landfall" in ASCII).
const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(5503658924312635756)";

pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
    /// Set while the database does not answer (see [`watch_availability`]).
    unreachable: Arc<AtomicBool>,
    command_writes: CommandWrites,
}

/// How often the database is asked whether it answers, and how long it has to.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// brings its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        // A busy pool may keep a request waiting a while; a database that is away is found out
        // by the probe, and requests then fail at once.
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        migrate(&mut *pool.acquire().await?, &POSTGRES, Some(WRITE_LOCK)).await?;
        let unreachable = Arc::new(AtomicBool::new(false));
        tokio::spawn(watch_availability(pool.clone(), unreachable.clone()));
        Ok(PostgresStore { writer: pool.clone(), reader: pool, unreachable, command_writes: CommandWrites::default() })
    }

    /// A connection from the pool, or at once an error while the database does not answer.
    async fn writer(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.available()?;
        Ok(self.writer.acquire().await?)
    }

    async fn reader(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.available()?;
        Ok(self.reader.acquire().await?)
    }

    fn available(&self) -> StoreResult<()> {
        if self.unreachable.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the PostgreSQL database does not answer".into()));
        }
        Ok(())
    }

    /// The schema version of the database at `url` against this Landfall's, read without
    /// creating or migrating anything (`landfall server --check-store`); NotFound for a database
    /// no server has started on.
    pub async fn schema_status(url: &str) -> StoreResult<crate::SchemaStatus> {
        let pool = PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL").fetch_one(&pool).await?;
        let status = if exists { schema_status(&pool, &POSTGRES).await } else { Err(StoreError::NotFound) };
        pool.close().await;
        status
    }

    /// A write transaction, run one at a time across every server on the database.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'_, Postgres>> {
        self.available()?;
        let mut tx = self.writer.begin().await?;
        sqlx::query(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// A transaction for writes that each touch rows of their own (a batch of agents' reports):
    /// without the write lock, as the same writes one statement each would be.
    async fn begin_batch(&self) -> StoreResult<sqlx::Transaction<'_, Postgres>> {
        self.available()?;
        Ok(self.writer.begin().await?)
    }

    async fn publish_notice(&self, notice: &Notice) -> StoreResult<()> {
        for payload in notice.payloads(MAX_PAYLOAD) {
            sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&self.writer).await?;
        }
        Ok(())
    }

    /// A listening connection of its own, read by a task that forwards every notice and, after
    /// the connection was lost and made again, a [`NoticeKind::Resync`] notice.
    async fn subscribe_notices(&self) -> StoreResult<Option<mpsc::UnboundedReceiver<Notice>>> {
        let mut listener = PgListener::connect_with(&self.reader).await?;
        listener.listen(CHANNEL).await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let resync = || Notice { kind: NoticeKind::Resync, keys: Vec::new() };
            loop {
                let sent = match listener.try_recv().await {
                    Ok(Some(notification)) => sender.send(Notice::parse(notification.payload())),
                    // Lost and already connected again (eager reconnection).
                    Ok(None) => sender.send(resync()),
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(_) => {
                        // The database is away: try again until it answers, then resync.
                        loop {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            if sender.is_closed() {
                                return;
                            }
                            match listener.listen(CHANNEL).await {
                                Ok(()) => break,
                                Err(sqlx::Error::PoolClosed) => return,
                                Err(_) => continue,
                            }
                        }
                        sender.send(resync())
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Ok(Some(receiver))
    }

    /// Closes the pool, waiting for its connections to finish.
    async fn close_pools(&self) {
        self.writer.close().await;
    }
}

/// Asks the database every [`PROBE_EVERY`] whether it answers, and keeps `unreachable` set
/// while it does not, so that requests fail at once rather than each waiting for a connection
/// that will not come; sqlx reconnects by itself once it is back. Ends when the pool is closed.
///
/// The probe has a connection of its own: asked through the pool, it waited behind the
/// requests whenever a burst (10,000 hosts reporting) kept every pooled connection busy, and
/// took a busy pool for a database that is away, failing every request for it.
async fn watch_availability(pool: PgPool, unreachable: Arc<AtomicBool>) {
    let mut probe: Option<PgConnection> = None;
    while !pool.is_closed() {
        tokio::time::sleep(PROBE_EVERY).await;
        let answered = tokio::time::timeout(PROBE_TIMEOUT, ask(&pool, &mut probe)).await;
        let down = !matches!(answered, Ok(Ok(())));
        if down {
            // Whatever state it is in, the next probe starts on a new connection.
            probe = None;
        }
        if unreachable.swap(down, Ordering::Relaxed) != down && !pool.is_closed() {
            if down {
                tracing::error!("the PostgreSQL store does not answer: requests fail until it does");
            } else {
                tracing::info!("the PostgreSQL store answers again");
            }
        }
    }
}

/// One probe: `SELECT 1` on the probe's connection, connecting it first if needed.
async fn ask(pool: &PgPool, probe: &mut Option<PgConnection>) -> sqlx::Result<()> {
    let connection = match probe {
        Some(connection) => connection,
        None => probe.insert(<PgConnection as sqlx::Connection>::connect_with(&pool.connect_options()).await?),
    };
    sqlx::query("SELECT 1").execute(connection).await.map(|_| ())
}

sql_store!(PostgresStore, Postgres, PgRow, PgConnection, PgPool);
