//! Throwaway databases on a PostgreSQL server, for tests and benchmarks that need a store of
//! their own: made empty, read for the server's statistics, dropped at the end. Kept here so
//! that no crate but the store speaks SQL.

use sqlx::postgres::PgPool;

use crate::{StoreError, StoreResult};

/// A database created for one run.
pub struct ScratchDatabase {
    admin: PgPool,
    pool: PgPool,
    name: String,
    /// Where a store (or a server's `--store`) connects to it.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates an empty database named `prefix` and a unique suffix on the server whose
    /// maintenance database `server_url` names (a role that may create databases).
    pub async fn create(server_url: &str, prefix: &str) -> StoreResult<ScratchDatabase> {
        let suffix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("{prefix}_{suffix}_{}", std::process::id());
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(StoreError::backend(format!("{name:?} is not a plain database name")));
        }
        let admin = PgPool::connect(server_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        let base = server_url.rsplit_once('/').map_or(server_url, |(base, _)| base);
        let url = format!("{base}/{name}");
        let pool = PgPool::connect(&url).await?;
        Ok(ScratchDatabase { admin, pool, name, url })
    }

    /// Transactions committed or rolled back in the database so far. PostgreSQL publishes its
    /// statistics within a second or so: read after a pause.
    pub async fn transactions(&self) -> StoreResult<i64> {
        let sql =
            "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database WHERE datname = current_database()";
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    /// Transactions that wrote, on the whole server, so far: each takes a transaction id, and so
    /// does this call. Unlike [`Self::transactions`], reads made outside a transaction (which
    /// PostgreSQL counts one each) are left out.
    pub async fn write_transactions(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&self.pool).await?)
    }

    /// Who holds a lease now (its holder as the servers write it), if anyone.
    pub async fn lease_holder(&self, lease: &str) -> StoreResult<Option<String>> {
        let holder = sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1").bind(lease);
        Ok(holder.fetch_optional(&self.pool).await?)
    }

    /// Drops the database (its servers must have stopped).
    pub async fn drop(self) -> StoreResult<()> {
        self.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", self.name))).execute(&self.admin).await?;
        Ok(())
    }
}
