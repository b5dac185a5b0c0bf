//! The PostgreSQL engine. Every write that extends the audit chain first takes a
//! transaction-level advisory lock (one per schema), so two gateway processes sharing a
//! database queue for it and can never fork the chain; `seq` being the primary key is the
//! backstop. Commits are durable unless the server says otherwise, which `open` refuses.

use crate::error::{Error, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres, SqlSafeStr, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Serializes audit-chain extension within the current schema. `coalesce` because a NULL key
/// would make the (strict) lock function return without locking.
const LOCK_CHAIN: &str = "SELECT pg_advisory_xact_lock(hashtextextended('valet.audit:' || coalesce(current_schema(), ''), 0))";

/// A store in a PostgreSQL database (objects in the first schema of the search path).
pub(crate) struct PgStore {
    pool: Pool<Postgres>,
}

impl PgStore {
    /// Connects to `postgres://…` and migrates the database. Error messages name the server
    /// and database, never the credentials.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("PostgreSQL database URL", e.to_string()))?;
        let what = format!(
            "PostgreSQL database {} at {}:{}",
            options.get_database().unwrap_or("(default)"),
            options.get_host(),
            options.get_port()
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Error::db(format_args!("connecting to {what}"), e))?;
        let (sync,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(&pool)
            .await
            .map_err(|e| Error::db(format_args!("reading synchronous_commit of {what}"), e))?;
        if sync == "off" {
            return Err(Error::invalid(
                format!("{what}: synchronous_commit"),
                "it is off, so commits would not be durable; set it to on",
            ));
        }
        migrator()
            .run(&pool)
            .await
            .map_err(|e| Error::Database(format!("migrating {what}: {e}")))?;
        Ok(PgStore { pool })
    }

    /// A transaction that holds the audit chain's advisory lock.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| Error::db("starting a write transaction", e))?;
        sqlx::query(LOCK_CHAIN)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::db("locking the audit chain", e))?;
        Ok(tx)
    }
}

crate::sql::store_impl!(PgStore, Postgres);

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "suspend_session".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0002_suspend_session.sql").into_sql_str(),
            false,
        ),
    ])
}
