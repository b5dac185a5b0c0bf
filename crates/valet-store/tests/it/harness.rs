//! One fresh database per test: a SQLite file in a temporary directory, or a PostgreSQL
//! schema created in `VALET_TEST_DATABASE_URL`'s database and dropped afterwards, so tests run
//! in parallel. Raw SQL access (its own pool) lets tests tamper with the log.

use alloy_primitives::{Address, U256};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use valet_policy::Asset;
use valet_store::{AuditRecord, Checkpoint, KeyMode, KeyRecord, Reservation, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(crate) struct Harness {
    pub(crate) engine: Engine,
    pub(crate) url: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) dir: tempfile::TempDir,
    raw: Raw,
    _schema: Option<SchemaGuard>,
}

pub(crate) const ENV: &str = "VALET_TEST_DATABASE_URL";

impl Harness {
    pub(crate) async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("valet.db");
        let url = format!("sqlite://{}", path.display());
        let store = valet_store::open(&url).await.unwrap();
        let raw = SqlitePool::connect(&url).await.unwrap();
        Harness {
            engine: Engine::Sqlite,
            url,
            store,
            dir,
            raw: Raw::Sqlite(raw),
            _schema: None,
        }
    }

    /// `None` (after saying so once on stderr) when `VALET_TEST_DATABASE_URL` is unset.
    pub(crate) async fn postgres() -> Option<Harness> {
        let Ok(base) = std::env::var(ENV) else {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                // Straight to stderr, past the test harness's capture, so it shows in CI logs.
                let _ = writeln!(
                    std::io::stderr(),
                    "valet-store: {ENV} is not set; the PostgreSQL half of the conformance suite was skipped"
                );
            });
            return None;
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "valet_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            Timestamp::now().as_millisecond()
        );
        let admin = PgPool::connect(&base)
            .await
            .expect("connect to VALET_TEST_DATABASE_URL");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let guard = SchemaGuard {
            base: base.clone(),
            schema: schema.clone(),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        let store = valet_store::open(&url).await.unwrap();
        let raw = PgPool::connect(&url).await.unwrap();
        Some(Harness {
            engine: Engine::Postgres,
            url,
            store,
            dir: tempfile::tempdir().unwrap(),
            raw: Raw::Postgres(raw),
            _schema: Some(guard),
        })
    }

    /// Runs raw SQL (one or more statements) against the test database.
    pub(crate) async fn exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            Raw::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        }
    }

    /// Removes the append-only guard, as someone with write access to the database could.
    pub(crate) async fn unguard_audit(&self) {
        let sql = match self.engine {
            Engine::Sqlite => {
                "DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete;"
            }
            Engine::Postgres => {
                "DROP TRIGGER audit_append_only ON audit; \
                 DROP TRIGGER audit_append_only_truncate ON audit;"
            }
        };
        self.exec(sql).await.unwrap();
    }

    /// Makes every audit insert with action `boom` fail inside the database.
    pub(crate) async fn fail_audit_action_boom(&self) {
        let sql = match self.engine {
            Engine::Sqlite => {
                "CREATE TRIGGER boom BEFORE INSERT ON audit WHEN NEW.action = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;"
            }
            Engine::Postgres => {
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.action = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER boom BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION boom();"
            }
        };
        self.exec(sql).await.unwrap();
    }

    pub(crate) async fn count(&self, table: &str) -> i64 {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match &self.raw {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.dir.path().join("audit.checkpoint"))
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.path().join("valet.db")
    }
}

/// Drops the test's schema when the test ends, passed or failed.
struct SchemaGuard {
    base: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let pool = PgPool::connect(&base).await?;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

// ---- fixtures ----

pub(crate) fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

pub(crate) fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

pub(crate) fn wallet() -> Address {
    Address::repeat_byte(0xa1)
}

pub(crate) fn key(id: &str, created: i64) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        wallet: wallet(),
        mode: KeyMode::Gateway,
        policy_toml: "name = \"test\"\nprofile = \"swap-only\"\nexpires_in = \"24h\"\n".into(),
        secret_hash: [id.len() as u8; 32],
        created_at: at(created),
        expires_at: at(created + 86_400),
        revoked_at: None,
        suspended_at: None,
        session_signer: None,
    }
}

pub(crate) fn record(request_id: &str, key_id: Option<&str>, action: &str) -> AuditRecord {
    AuditRecord {
        at: at(100),
        request_id: request_id.into(),
        actor: "agent".into(),
        key_id: key_id.map(Into::into),
        action: action.into(),
        decision: Some("allow".into()),
        violations: vec![],
        detail: json!({"summary": format!("{action} by {request_id}"), "value": "1000"}),
        client_ip: Some("127.0.0.1".into()),
        tx_hash: None,
    }
}

pub(crate) fn admin(request_id: &str, key_id: Option<&str>, action: &str) -> AuditRecord {
    AuditRecord {
        actor: "admin".into(),
        decision: None,
        ..record(request_id, key_id, action)
    }
}

pub(crate) fn reservation(key_id: &str, request_id: &str, secs: i64, amount: u64) -> Reservation {
    Reservation {
        key_id: key_id.into(),
        request_id: request_id.into(),
        at: at(secs),
        asset: Asset::Native,
        amount: U256::from(amount),
    }
}
