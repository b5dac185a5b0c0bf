//! The SQLite engine: WAL, `synchronous=FULL` (every commit is fsync'd), foreign keys on, a
//! busy timeout, and `BEGIN IMMEDIATE` for every write so that concurrent writers (other
//! connections, other processes) queue for the write lock instead of forking the chain.

use crate::error::{Error, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, SqlSafeStr, Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a writer waits for another one before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A store in one SQLite file (or in memory).
pub(crate) struct SqliteStore {
    pool: Pool<Sqlite>,
}

impl SqliteStore {
    /// Not shared: SQLite is one process's embedded store.
    const SHARED: bool = false;
    /// Reads the key's row (the transaction already holds the database's write lock).
    const LOCK_KEY: &str = "SELECT revoked_at, suspended_at, expires_at FROM keys WHERE id = $1";
    /// The database's clock, in integer nanoseconds since the Unix epoch.
    const NOW: &str =
        "SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) * 1000";
    /// Allocates a nonce (`$3` the floor) and returns it.
    const NEXT_NONCE: &str = "INSERT INTO nonces (sender, chain_id, next) VALUES ($1, $2, $3 + 1) ON CONFLICT (sender, chain_id) DO UPDATE SET next = max(nonces.next, $3) + 1 RETURNING next - 1";
    /// Locks a sender's nonce row.
    const LOCK_NONCE: &str = "SELECT next FROM nonces WHERE sender = $1 AND chain_id = $2";

    /// Opens `sqlite://PATH` (creating the file with mode 0600 if missing) or
    /// `sqlite::memory:`, and migrates it.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("SQLite database URL", e.to_string()))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .create_if_missing(true);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let (pool, what) = if memory {
            // One connection that never closes: the database lives as long as it does.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(|e| Error::db("opening an in-memory SQLite database", e))?;
            (pool, "in-memory SQLite database".to_owned())
        } else {
            let path = options.get_filename().to_path_buf();
            create_private(&path)?;
            let what = format!("SQLite database {}", path.display());
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(|e| Error::db(format_args!("opening {what}"), e))?;
            (pool, what)
        };
        migrator()
            .run(&pool)
            .await
            .map_err(|e| Error::Database(format!("migrating {what}: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// A transaction for one key's decision or one sender's nonces: SQLite locks the whole
    /// database for a writer, so it takes the write lock at once (no upgrade deadlock).
    async fn begin_key(&self) -> Result<Transaction<'static, Sqlite>> {
        self.begin_write().await
    }

    /// Per window (seconds) and asset, the total of `key_id`'s unreleased reservations made
    /// strictly after `now − window`, summed here (SQLite has no exact 256-bit sum).
    async fn spent_in(
        tx: &mut Transaction<'static, Sqlite>,
        key_id: &str,
        now: i64,
        windows: &[u64],
    ) -> Result<Vec<(u64, valet_policy::Asset, alloy_primitives::U256)>> {
        let Some(widest) = windows.iter().max() else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, String, String)> = sqlx::query_as(crate::sql::SELECT_RESERVATIONS)
            .bind(key_id)
            .bind(crate::sql::since_nanos(now, *widest))
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| Error::db(format_args!("reading the reservations of key {key_id}"), e))?;
        let rows = rows
            .iter()
            .map(|(at, asset, amount)| {
                let (_, asset, amount) = crate::sql::reservation(key_id, *at, asset, amount)?;
                Ok((*at, asset, amount))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::sql::totals(&rows, now, windows))
    }

    /// A transaction that already holds the database's write lock.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| Error::db("starting a write transaction", e))
    }
}

crate::sql::store_impl!(SqliteStore, Sqlite);

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "suspend_session".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0002_suspend_session.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "shared".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0003_shared.sql").into_sql_str(),
            false,
        ),
    ])
}

/// Creates the database file with mode 0600 if it does not exist yet (SQLite gives its `-wal`
/// and `-shm` files the same mode). An existing file is left as it is, with a warning if
/// others may read it.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(
                        target: "valet_store",
                        path = %path.display(),
                        mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
                        "the database file is readable by other users; chmod 600 it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(Error::io("creating SQLite database", path, e)),
    }
}
