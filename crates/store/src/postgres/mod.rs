//! The PostgreSQL store, for several servers on one database (or on any PostgreSQL-compatible
//! one). It runs the same statements as the SQLite store (`sql_store!`). Write transactions take
//! one transaction-level advisory lock, so a check-then-write step (a name still free, no other
//! active deployment in the group) holds when it writes, as with SQLite's single writer; reads,
//! and single-statement writes, run concurrently.

use sqlx::Postgres;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};

use crate::schema::POSTGRES_MIGRATIONS;
use crate::sql::prelude::*;

/// The advisory lock key of write transactions and migrations ("Landfall" in ASCII).
const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(5503658924312635756)";

pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// brings its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        migrate(&pool, POSTGRES_MIGRATIONS, Some(WRITE_LOCK)).await?;
        Ok(PostgresStore { writer: pool.clone(), reader: pool })
    }

    /// A write transaction, run one at a time across every server on the database.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'_, Postgres>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Closes the pool, waiting for its connections to finish.
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

sql_store!(PostgresStore, Postgres, PgRow, PgConnection, PgPool);
