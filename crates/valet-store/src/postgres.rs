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

/// Per window (`$3`, seconds; named by its 1-based position) and asset, the total of key
/// `$1`'s unreleased reservations made strictly after `$2 − window` (nanoseconds). A window's
/// start is clamped like `sql::since_nanos`.
const SPENT_IN_WINDOWS: &str = "SELECT w.i, r.asset, CAST(sum(CAST(r.amount AS numeric)) AS TEXT) \
    FROM unnest(CAST($3 AS BIGINT[])) WITH ORDINALITY AS w(secs, i) \
    JOIN reservations r ON r.key_id = $1 AND r.released = FALSE \
    AND r.at > CAST(greatest(CAST($2 AS numeric) - CAST(w.secs AS numeric) * 1000000000, \
                             -9223372036854775808) AS BIGINT) \
    GROUP BY w.i, r.asset";

/// A store in a PostgreSQL database (objects in the first schema of the search path).
pub(crate) struct PgStore {
    pool: Pool<Postgres>,
    /// Decisions and nonces: transactions whose commit does not wait for the disk
    /// (`synchronous_commit = off`), made durable by the audit commit that follows them (the
    /// log is flushed in order). See [`Store::decide`](crate::Store::decide).
    unsynced: Pool<Postgres>,
}

impl PgStore {
    /// Shared: several gateway processes may use one database.
    const SHARED: bool = true;
    /// Reads the key's row, locked until the transaction ends (every process queues for it).
    const LOCK_KEY: &str =
        "SELECT revoked_at, suspended_at, expires_at FROM keys WHERE id = $1 FOR UPDATE";
    /// The database's clock, in integer nanoseconds since the Unix epoch.
    const NOW: &str =
        "SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000000) AS BIGINT) * 1000";
    /// Allocates a nonce (`$3` the floor) and returns it.
    const NEXT_NONCE: &str = "INSERT INTO nonces (sender, chain_id, next) VALUES ($1, $2, $3 + 1) ON CONFLICT (sender, chain_id) DO UPDATE SET next = GREATEST(nonces.next, $3) + 1 RETURNING next - 1";
    /// Locks a sender's nonce row.
    const LOCK_NONCE: &str =
        "SELECT next FROM nonces WHERE sender = $1 AND chain_id = $2 FOR UPDATE";

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
            .max_connections(6)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::db(format_args!("connecting to {what}"), e))?;
        let unsynced = PgPoolOptions::new()
            .max_connections(6)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
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
        Ok(PgStore { pool, unsynced })
    }

    /// A transaction for one key's decision or one sender's nonces: the row lock is taken by
    /// the first statement (`FOR UPDATE`); the audit chain's lock is not needed; the commit
    /// does not wait for the disk.
    async fn begin_key(&self) -> Result<Transaction<'static, Postgres>> {
        self.unsynced
            .begin()
            .await
            .map_err(|e| Error::db("starting a transaction", e))
    }

    /// Per window (seconds) and asset, the total of `key_id`'s unreleased reservations made
    /// strictly after `now − window`, summed by the server (`numeric`: exact at any size).
    async fn spent_in(
        tx: &mut Transaction<'static, Postgres>,
        key_id: &str,
        now: i64,
        windows: &[u64],
    ) -> Result<Vec<(u64, valet_policy::Asset, alloy_primitives::U256)>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let secs: Vec<i64> = windows
            .iter()
            .map(|w| i64::try_from(*w).unwrap_or(i64::MAX))
            .collect();
        let rows: Vec<(i64, String, String)> = sqlx::query_as(SPENT_IN_WINDOWS)
            .bind(key_id)
            .bind(now)
            .bind(&secs)
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| Error::db(format_args!("summing the reservations of key {key_id}"), e))?;
        rows.iter()
            .map(|(i, asset, total)| {
                // A sum beyond 256 bits (unlimited approvals add up) saturates, as in memory.
                let (_, asset, _) = crate::sql::reservation(key_id, now, asset, "0")?;
                let total = alloy_primitives::U256::from_str_radix(total, 10)
                    .unwrap_or(alloy_primitives::U256::MAX);
                let window = usize::try_from(*i - 1)
                    .ok()
                    .and_then(|i| windows.get(i))
                    .ok_or_else(|| Error::corrupt("a window's total", format!("position {i}")))?;
                Ok((*window, asset, total))
            })
            .collect()
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
        Migration::new(
            3,
            "shared".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0003_shared.sql").into_sql_str(),
            false,
        ),
    ])
}
