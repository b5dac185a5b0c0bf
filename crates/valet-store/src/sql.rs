//! What the two engines share: the SQL (written once; SQLite reads `$n` parameters as
//! PostgreSQL does), the conversions between records and columns, and the [`Store`]
//! implementation itself, stamped out per engine by [`store_impl!`]. An engine only brings a
//! pool and `begin_write`, a transaction that holds the database's write lock for the audit
//! chain.
//!
//! [`Store`]: crate::Store

use crate::error::{Error, Result};
use crate::model::{
    AuditEntry, AuditRecord, KeyMode, KeyRecord, Reservation, from_nanos, nanos, no_nul,
};
use alloy_primitives::{Address, B256, U256, hex};
use jiff::Timestamp;
use valet_policy::Asset;

macro_rules! key_columns {
    () => {
        "id, name, wallet, mode, policy_toml, secret_hash, created_at, expires_at, revoked_at, \
         suspended_at, session_signer"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, at, request_id, actor, key_id, action, decision, violations, detail, client_ip, \
         tx_hash, prev_hash, hash"
    };
}

pub(crate) const INSERT_KEY: &str = concat!(
    "INSERT INTO keys (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
pub(crate) const SELECT_KEY: &str = concat!("SELECT ", key_columns!(), " FROM keys WHERE id = $1");
pub(crate) const SELECT_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys ORDER BY created_at, id"
);
pub(crate) const REVOKE_KEY: &str =
    "UPDATE keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
pub(crate) const REVOKE_ALL: &str = "UPDATE keys SET revoked_at = $1 WHERE revoked_at IS NULL";
pub(crate) const SUSPEND_KEY: &str = "UPDATE keys SET suspended_at = $1 \
    WHERE id = $2 AND revoked_at IS NULL AND suspended_at IS NULL";
pub(crate) const RESUME_KEY: &str = "UPDATE keys SET suspended_at = NULL \
    WHERE id = $1 AND revoked_at IS NULL AND suspended_at IS NOT NULL";

pub(crate) const SELECT_RESERVATIONS: &str = "SELECT at, asset, amount FROM reservations \
    WHERE key_id = $1 AND released = FALSE AND at > $2 ORDER BY at, id";

pub(crate) const COUNT_REQUESTS: &str =
    "SELECT count(*) FROM key_requests WHERE key_id = $1 AND at > $2";
pub(crate) const INSERT_REQUEST: &str = "INSERT INTO key_requests (key_id, at) VALUES ($1, $2)";
/// Requests no window reaches any more.
pub(crate) const PRUNE_REQUESTS: &str = "DELETE FROM key_requests WHERE key_id = $1 AND at <= $2";
pub(crate) const COUNT_PENDING: &str = "SELECT count(*) FROM pending WHERE key_id = $1";
pub(crate) const INSERT_PENDING: &str = "INSERT INTO pending (sender, chain_id, nonce, key_id, signed_at) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sender, chain_id, nonce) DO UPDATE \
    SET key_id = excluded.key_id, signed_at = excluded.signed_at";
pub(crate) const PRUNE_PENDING: &str =
    "DELETE FROM pending WHERE sender = $1 AND chain_id = $2 AND nonce < $3";
pub(crate) const LOWEST_UNKNOWN: &str = "SELECT signed_at FROM pending \
    WHERE sender = $1 AND chain_id = $2 AND nonce = $3";
pub(crate) const FORGET_PENDING: &str =
    "DELETE FROM pending WHERE sender = $1 AND chain_id = $2 AND nonce >= $3";
pub(crate) const REWIND_NONCE: &str =
    "UPDATE nonces SET next = $3 WHERE sender = $1 AND chain_id = $2 AND next > $3";

pub(crate) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
/// Multi-row inserts: `VALUES (…), (…)` follows, at most [`CHUNK`] rows a statement.
pub(crate) const INSERT_AUDIT_ROWS: &str = concat!("INSERT INTO audit (", audit_columns!(), ") ");
pub(crate) const INSERT_RESERVATION_ROWS: &str =
    "INSERT INTO reservations (key_id, request_id, at, asset, amount) ";
pub(crate) const RELEASE_ANY: &str =
    "UPDATE reservations SET released = TRUE WHERE released = FALSE AND request_id IN (";
/// Rows per multi-row statement: 256 × 13 parameters stays far below both engines' limits
/// (SQLite 32766, PostgreSQL 65535).
pub(crate) const CHUNK: usize = 256;

// The latest `$1` matching entries, newest first; the caller reverses them.
pub(crate) const SELECT_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit ORDER BY seq DESC LIMIT $1"
);
pub(crate) const SELECT_AUDIT_BY_KEY: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE key_id = $2 ORDER BY seq DESC LIMIT $1"
);
pub(crate) const SELECT_AUDIT_SINCE: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE at >= $2 ORDER BY seq DESC LIMIT $1"
);
pub(crate) const SELECT_AUDIT_BY_KEY_SINCE: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE key_id = $2 AND at >= $3 ORDER BY seq DESC LIMIT $1"
);

pub(crate) const SELECT_AUDIT_BY_ACTION: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE action = $2 AND (CAST($3 AS TEXT) IS NULL OR key_id = $3) AND at >= $4 \
     ORDER BY seq DESC LIMIT $1"
);

/// A key as columns.
pub(crate) struct KeyRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) wallet: String,
    pub(crate) mode: &'static str,
    pub(crate) policy_toml: String,
    pub(crate) secret_hash: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) suspended_at: Option<i64>,
    pub(crate) session_signer: Option<String>,
}

impl KeyRow {
    pub(crate) fn new(k: &KeyRecord) -> Result<Self> {
        let what = |field: &str| format!("key {}: {field}", k.id);
        if k.id.is_empty() {
            return Err(Error::invalid("key id", "empty"));
        }
        no_nul(&k.id, || "key id".to_owned())?;
        no_nul(&k.name, || what("name"))?;
        no_nul(&k.policy_toml, || what("policy_toml"))?;
        Ok(KeyRow {
            id: k.id.clone(),
            name: k.name.clone(),
            wallet: address_text(k.wallet),
            mode: k.mode.as_str(),
            policy_toml: k.policy_toml.clone(),
            secret_hash: k.secret_hash.to_vec(),
            created_at: nanos(k.created_at, || what("created_at"))?,
            expires_at: nanos(k.expires_at, || what("expires_at"))?,
            revoked_at: k
                .revoked_at
                .map(|t| nanos(t, || what("revoked_at")))
                .transpose()?,
            suspended_at: k
                .suspended_at
                .map(|t| nanos(t, || what("suspended_at")))
                .transpose()?,
            session_signer: k.session_signer.map(address_text),
        })
    }
}

/// Reads a key back from its columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn key_record(
    id: String,
    name: String,
    wallet: String,
    mode: String,
    policy_toml: String,
    secret_hash: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    suspended_at: Option<i64>,
    session_signer: Option<String>,
) -> Result<KeyRecord> {
    let what = |field: &str| format!("key {id}: {field}");
    Ok(KeyRecord {
        wallet: wallet
            .parse::<Address>()
            .map_err(|e| Error::corrupt(what("wallet"), e.to_string()))?,
        mode: KeyMode::parse(&mode)
            .ok_or_else(|| Error::corrupt(what("mode"), format!("unknown mode {mode:?}")))?,
        secret_hash: <[u8; 32]>::try_from(secret_hash.as_slice())
            .map_err(|_| Error::corrupt(what("secret_hash"), "not 32 bytes"))?,
        created_at: from_nanos(created_at, || what("created_at"))?,
        expires_at: from_nanos(expires_at, || what("expires_at"))?,
        revoked_at: revoked_at
            .map(|n| from_nanos(n, || what("revoked_at")))
            .transpose()?,
        suspended_at: suspended_at
            .map(|n| from_nanos(n, || what("suspended_at")))
            .transpose()?,
        session_signer: session_signer
            .map(|a| {
                a.parse::<Address>()
                    .map_err(|e| Error::corrupt(what("session_signer"), e.to_string()))
            })
            .transpose()?,
        name,
        policy_toml,
        id,
    })
}

/// A reservation as columns.
pub(crate) struct ReservationRow<'a> {
    pub(crate) key_id: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) at: i64,
    pub(crate) asset: String,
    pub(crate) amount: String,
}

impl<'a> ReservationRow<'a> {
    pub(crate) fn new(r: &'a Reservation) -> Result<Self> {
        Ok(ReservationRow {
            key_id: &r.key_id,
            request_id: &r.request_id,
            at: nanos(r.at, || {
                format!("reservation of request {:?}: at", r.request_id)
            })?,
            asset: asset_text(r.asset),
            amount: r.amount.to_string(),
        })
    }
}

/// Reads a reservation back from its columns.
pub(crate) fn reservation(
    key_id: &str,
    at: i64,
    asset: &str,
    amount: &str,
) -> Result<(Timestamp, Asset, U256)> {
    let what = |field: &str| format!("reservation of key {key_id}: {field}");
    let asset = match asset {
        "native" => Asset::Native,
        a => Asset::Token(
            a.parse::<Address>()
                .map_err(|e| Error::corrupt(what("asset"), e.to_string()))?,
        ),
    };
    let amount = U256::from_str_radix(amount, 10)
        .map_err(|e| Error::corrupt(what("amount"), format!("{amount:?}: {e}")))?;
    Ok((from_nanos(at, || what("at"))?, asset, amount))
}

/// An audit entry as columns.
pub(crate) struct AuditRow<'a> {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) record: &'a AuditRecord,
    pub(crate) violations: String,
    pub(crate) detail: String,
    pub(crate) tx_hash: Option<Vec<u8>>,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl<'a> AuditRow<'a> {
    pub(crate) fn new(
        seq: u64,
        record: &'a AuditRecord,
        prev_hash: B256,
        hash: B256,
    ) -> Result<Self> {
        let what = |field: &str| format!("audit seq {seq}: {field}");
        Ok(AuditRow {
            seq: i64::try_from(seq).map_err(|_| Error::invalid(what("seq"), "beyond i64"))?,
            at: nanos(record.at, || what("at"))?,
            record,
            violations: serde_json::Value::from(record.violations.clone()).to_string(),
            detail: record.detail.to_string(),
            tx_hash: record.tx_hash.map(|h| h.to_vec()),
            prev_hash: prev_hash.to_vec(),
            hash: hash.to_vec(),
        })
    }
}

/// Reads an audit entry back from its columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_entry(
    seq: i64,
    at: i64,
    request_id: String,
    actor: String,
    key_id: Option<String>,
    action: String,
    decision: Option<String>,
    violations: String,
    detail: String,
    client_ip: Option<String>,
    tx_hash: Option<Vec<u8>>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
) -> Result<AuditEntry> {
    let what = |field: &str| format!("audit seq {seq}: {field}");
    let violations: Vec<String> = serde_json::from_str(&violations)
        .map_err(|e| Error::corrupt(what("violations"), e.to_string()))?;
    let detail: serde_json::Value =
        serde_json::from_str(&detail).map_err(|e| Error::corrupt(what("detail"), e.to_string()))?;
    Ok(AuditEntry {
        seq: u64::try_from(seq).map_err(|_| Error::corrupt(what("seq"), "negative"))?,
        record: AuditRecord {
            at: from_nanos(at, || what("at"))?,
            request_id,
            actor,
            key_id,
            action,
            decision,
            violations,
            detail,
            client_ip,
            tx_hash: tx_hash.map(|h| b256(&h, || what("tx_hash"))).transpose()?,
        },
        prev_hash: b256(&prev_hash, || what("prev_hash"))?,
        hash: b256(&hash, || what("hash"))?,
    })
}

pub(crate) fn b256(bytes: &[u8], what: impl FnOnce() -> String) -> Result<B256> {
    B256::try_from(bytes)
        .map_err(|_| Error::corrupt(what(), format!("{} bytes, not 32", bytes.len())))
}

pub(crate) fn address_text(a: Address) -> String {
    hex::encode_prefixed(a)
}

fn asset_text(a: Asset) -> String {
    match a {
        Asset::Native => "native".to_owned(),
        Asset::Token(t) => address_text(t),
    }
}

/// `now − window` in stored nanoseconds, clamped.
pub(crate) fn since_nanos(now: i64, window_secs: u64) -> i64 {
    let window = i64::try_from(window_secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
    now.saturating_sub(window)
}

/// Per window and asset, the total of `rows` (at in stored nanoseconds, asset, amount) made
/// strictly after `now − window`.
pub(crate) fn totals(
    rows: &[(i64, Asset, U256)],
    now: i64,
    windows: &[u64],
) -> Vec<(u64, Asset, U256)> {
    let mut out: Vec<(u64, Asset, U256)> = Vec::new();
    for &w in windows {
        let since = since_nanos(now, w);
        for (_, asset, amount) in rows.iter().filter(|(at, _, _)| *at > since) {
            match out.iter_mut().find(|(ow, oa, _)| *ow == w && oa == asset) {
                Some(slot) => slot.2 = slot.2.saturating_add(*amount),
                None => out.push((w, *asset, *amount)),
            }
        }
    }
    out
}

/// A timestamp bound for reads: out-of-range values clamp (nothing is stored beyond them).
pub(crate) fn clamped_nanos(ts: Timestamp) -> i64 {
    ts.as_nanosecond()
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Implements [`Store`](crate::Store) for an engine type that has `pool: sqlx::Pool<$db>` and
/// `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>>` (a transaction
/// holding the lock that serializes audit-chain extension).
macro_rules! store_impl {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Extends the audit chain by `records` inside `tx`, which holds the write lock.
            async fn chain_append(
                tx: &mut sqlx::Transaction<'static, $db>,
                records: Vec<$crate::AuditRecord>,
            ) -> $crate::Result<Vec<$crate::AuditEntry>> {
                use $crate::error::Error;
                use $crate::sql;
                if records.is_empty() {
                    return Ok(Vec::new());
                }
                let head: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::AUDIT_HEAD)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| Error::db("reading the audit head", e))?;
                let (mut seq, mut prev) = match head {
                    None => (0u64, alloy_primitives::B256::ZERO),
                    Some((s, h)) => (
                        u64::try_from(s)
                            .map_err(|_| Error::corrupt("audit head", format!("seq {s}")))?,
                        sql::b256(&h, || format!("audit seq {s}: hash"))?,
                    ),
                };
                let mut links = Vec::with_capacity(records.len());
                for record in &records {
                    seq += 1;
                    let hash = $crate::entry_hash(seq, prev, record);
                    links.push((seq, prev, hash));
                    prev = hash;
                }
                let rows = records
                    .iter()
                    .zip(&links)
                    .map(|(r, &(seq, prev, hash))| sql::AuditRow::new(seq, r, prev, hash))
                    .collect::<$crate::Result<Vec<_>>>()?;
                for chunk in rows.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(sql::INSERT_AUDIT_ROWS);
                    q.push_values(chunk, |mut b, row| {
                        b.push_bind(row.seq)
                            .push_bind(row.at)
                            .push_bind(&row.record.request_id)
                            .push_bind(&row.record.actor)
                            .push_bind(&row.record.key_id)
                            .push_bind(&row.record.action)
                            .push_bind(&row.record.decision)
                            .push_bind(&row.violations)
                            .push_bind(&row.detail)
                            .push_bind(&row.record.client_ip)
                            .push_bind(&row.tx_hash)
                            .push_bind(&row.prev_hash)
                            .push_bind(&row.hash);
                    });
                    q.build().execute(&mut **tx).await.map_err(|e| {
                        let (first, last) = (chunk[0].seq, chunk[chunk.len() - 1].seq);
                        Error::db(format_args!("appending audit seq {first}..={last}"), e)
                    })?;
                }
                drop(rows);
                let entries = records
                    .into_iter()
                    .zip(links)
                    .map(|(record, (seq, prev_hash, hash))| $crate::AuditEntry {
                        seq,
                        record,
                        prev_hash,
                        hash,
                    })
                    .collect();
                Ok(entries)
            }

            /// Runs `sql`, an UPDATE of key `id` (bound as `$2` after `at`, or as `$1` without
            /// it), and appends `audit` in the same transaction when it changed the key;
            /// whether it did. `doing` names the change for errors ("revoking").
            async fn update_key_audited(
                &self,
                sql: &'static str,
                id: &str,
                at: Option<i64>,
                audit: $crate::AuditRecord,
                doing: &str,
            ) -> $crate::Result<bool> {
                use $crate::error::Error;
                audit.validate()?;
                let mut tx = self.begin_write().await?;
                let mut query = sqlx::query(sql);
                if let Some(at) = at {
                    query = query.bind(at);
                }
                let done = query
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| Error::db(format_args!("{doing} key {id}"), e))?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::chain_append(&mut tx, vec![audit]).await?;
                tx.commit()
                    .await
                    .map_err(|e| Error::db(format_args!("committing: {doing} key {id}"), e))?;
                Ok(true)
            }

            /// Inserts an allowed request's spend as its reservations, inside `tx`.
            async fn reserve(
                tx: &mut sqlx::Transaction<'static, $db>,
                key_id: &str,
                request_id: &str,
                at: jiff::Timestamp,
                spend: Vec<(valet_policy::Asset, alloy_primitives::U256)>,
            ) -> $crate::Result<()> {
                use $crate::sql;
                if spend.is_empty() {
                    return Ok(());
                }
                let reservations = spend
                    .into_iter()
                    .map(|(asset, amount)| $crate::Reservation {
                        key_id: key_id.to_owned(),
                        request_id: request_id.to_owned(),
                        at,
                        asset,
                        amount,
                    })
                    .collect::<Vec<_>>();
                let batch = $crate::Batch {
                    reservations,
                    ..$crate::Batch::default()
                };
                batch.validate()?;
                let rows = batch
                    .reservations
                    .iter()
                    .map(sql::ReservationRow::new)
                    .collect::<$crate::Result<Vec<_>>>()?;
                let mut q = sqlx::QueryBuilder::<$db>::new(sql::INSERT_RESERVATION_ROWS);
                q.push_values(&rows, |mut b, r| {
                    b.push_bind(r.key_id)
                        .push_bind(r.request_id)
                        .push_bind(r.at)
                        .push_bind(&r.asset)
                        .push_bind(&r.amount);
                });
                q.build().execute(&mut **tx).await.map_err(|e| {
                    $crate::error::Error::db(format_args!("reserving the spend of key {key_id}"), e)
                })?;
                Ok(())
            }

            /// Allocates `claim`'s nonce inside `tx` and records it pending for `key_id`.
            async fn claim_nonce(
                tx: &mut sqlx::Transaction<'static, $db>,
                claim: $crate::NonceClaim,
                key_id: Option<&str>,
                now: i64,
            ) -> $crate::Result<u64> {
                use $crate::error::Error;
                let sender = $crate::sql::address_text(claim.sender);
                let big = |n: u64, what: &str| {
                    i64::try_from(n).map_err(|_| Error::invalid(what.to_owned(), "beyond i64"))
                };
                let chain = big(claim.chain_id, "chain id")?;
                let fail = |e| Error::db(format_args!("allocating a nonce of {sender}"), e);
                let (nonce,): (i64,) = sqlx::query_as(Self::NEXT_NONCE)
                    .bind(&sender)
                    .bind(chain)
                    .bind(big(claim.floor, "nonce")?)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(fail)?;
                if let Some(key_id) = key_id {
                    sqlx::query($crate::sql::INSERT_PENDING)
                        .bind(&sender)
                        .bind(chain)
                        .bind(nonce)
                        .bind(key_id)
                        .bind(now)
                        .execute(&mut **tx)
                        .await
                        .map_err(fail)?;
                }
                u64::try_from(nonce).map_err(|_| Error::corrupt("nonce", format!("{nonce}")))
            }

            fn key_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::Result<$crate::KeyRecord> {
                use sqlx::Row;
                let get = |e| $crate::error::Error::db("reading a key", e);
                $crate::sql::key_record(
                    row.try_get(0).map_err(get)?,
                    row.try_get(1).map_err(get)?,
                    row.try_get(2).map_err(get)?,
                    row.try_get(3).map_err(get)?,
                    row.try_get(4).map_err(get)?,
                    row.try_get(5).map_err(get)?,
                    row.try_get(6).map_err(get)?,
                    row.try_get(7).map_err(get)?,
                    row.try_get(8).map_err(get)?,
                    row.try_get(9).map_err(get)?,
                    row.try_get(10).map_err(get)?,
                )
            }

            fn entry_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::Result<$crate::AuditEntry> {
                use sqlx::Row;
                let get = |e| $crate::error::Error::db("reading an audit entry", e);
                $crate::sql::audit_entry(
                    row.try_get(0).map_err(get)?,
                    row.try_get(1).map_err(get)?,
                    row.try_get(2).map_err(get)?,
                    row.try_get(3).map_err(get)?,
                    row.try_get(4).map_err(get)?,
                    row.try_get(5).map_err(get)?,
                    row.try_get(6).map_err(get)?,
                    row.try_get(7).map_err(get)?,
                    row.try_get(8).map_err(get)?,
                    row.try_get(9).map_err(get)?,
                    row.try_get(10).map_err(get)?,
                    row.try_get(11).map_err(get)?,
                    row.try_get(12).map_err(get)?,
                )
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn insert_key(
                &self,
                key: &$crate::KeyRecord,
                audit: $crate::AuditRecord,
            ) -> $crate::Result<$crate::AuditEntry> {
                use $crate::error::Error;
                use $crate::sql;
                let row = sql::KeyRow::new(key)?;
                audit.validate()?;
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(sql::INSERT_KEY)
                    .bind(row.id)
                    .bind(row.name)
                    .bind(row.wallet)
                    .bind(row.mode)
                    .bind(row.policy_toml)
                    .bind(row.secret_hash)
                    .bind(row.created_at)
                    .bind(row.expires_at)
                    .bind(row.revoked_at)
                    .bind(row.suspended_at)
                    .bind(row.session_signer)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(Error::DuplicateKey { id: key.id.clone() });
                    }
                    Err(e) => return Err(Error::db(format_args!("inserting key {}", key.id), e)),
                }
                let mut entries = Self::chain_append(&mut tx, vec![audit]).await?;
                tx.commit()
                    .await
                    .map_err(|e| Error::db(format_args!("committing key {}", key.id), e))?;
                entries
                    .pop()
                    .ok_or_else(|| Error::Database("no audit entry was written".into()))
            }

            async fn key(&self, id: &str) -> $crate::Result<Option<$crate::KeyRecord>> {
                let row = sqlx::query($crate::sql::SELECT_KEY)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::error::Error::db(format_args!("reading key {id}"), e))?;
                row.as_ref().map(Self::key_from_row).transpose()
            }

            async fn keys(&self) -> $crate::Result<Vec<$crate::KeyRecord>> {
                let rows = sqlx::query($crate::sql::SELECT_KEYS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::error::Error::db("listing keys", e))?;
                rows.iter().map(Self::key_from_row).collect()
            }

            async fn revoke_key(
                &self,
                id: &str,
                at: jiff::Timestamp,
                audit: $crate::AuditRecord,
            ) -> $crate::Result<bool> {
                let at = $crate::model::nanos(at, || format!("revocation of key {id}: at"))?;
                self.update_key_audited($crate::sql::REVOKE_KEY, id, Some(at), audit, "revoking")
                    .await
            }

            async fn revoke_all(
                &self,
                at: jiff::Timestamp,
                audit: $crate::AuditRecord,
            ) -> $crate::Result<u64> {
                use $crate::error::Error;
                let at = $crate::model::nanos(at, || "revocation of all keys: at".to_owned())?;
                audit.validate()?;
                let mut tx = self.begin_write().await?;
                let done = sqlx::query($crate::sql::REVOKE_ALL)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| Error::db("revoking all keys", e))?;
                Self::chain_append(&mut tx, vec![audit]).await?;
                tx.commit()
                    .await
                    .map_err(|e| Error::db("committing the revocation of all keys", e))?;
                Ok(done.rows_affected())
            }

            async fn suspend_key(
                &self,
                id: &str,
                at: jiff::Timestamp,
                audit: $crate::AuditRecord,
            ) -> $crate::Result<bool> {
                let at = $crate::model::nanos(at, || format!("suspension of key {id}: at"))?;
                self.update_key_audited($crate::sql::SUSPEND_KEY, id, Some(at), audit, "suspending")
                    .await
            }

            async fn resume_key(
                &self,
                id: &str,
                audit: $crate::AuditRecord,
            ) -> $crate::Result<bool> {
                self.update_key_audited($crate::sql::RESUME_KEY, id, None, audit, "resuming")
                    .await
            }

            async fn append(
                &self,
                batch: $crate::Batch,
            ) -> $crate::Result<Vec<$crate::AuditEntry>> {
                use $crate::error::Error;
                use $crate::sql;
                batch.validate()?;
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let reservations = batch
                    .reservations
                    .iter()
                    .map(sql::ReservationRow::new)
                    .collect::<$crate::Result<Vec<_>>>()?;
                let mut tx = self.begin_write().await?;
                for chunk in reservations.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(sql::INSERT_RESERVATION_ROWS);
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.key_id)
                            .push_bind(r.request_id)
                            .push_bind(r.at)
                            .push_bind(&r.asset)
                            .push_bind(&r.amount);
                    });
                    q.build().execute(&mut *tx).await.map_err(|e| {
                        let keys: std::collections::BTreeSet<&str> =
                            chunk.iter().map(|r| r.key_id).collect();
                        let keys: Vec<&str> = keys.into_iter().collect();
                        Error::db(
                            format_args!("reserving spend of key {}", keys.join(", ")),
                            e,
                        )
                    })?;
                }
                for chunk in batch.releases.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(sql::RELEASE_ANY);
                    let mut ids = q.separated(", ");
                    for request_id in chunk {
                        ids.push_bind(request_id);
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await.map_err(|e| {
                        Error::db(
                            format_args!("releasing the spend of {} requests", chunk.len()),
                            e,
                        )
                    })?;
                }
                let entries = Self::chain_append(&mut tx, batch.audit).await?;
                tx.commit().await.map_err(|e| {
                    let what = match (entries.first(), entries.last()) {
                        (Some(a), Some(b)) => format!("committing audit seq {}..={}", a.seq, b.seq),
                        _ => "committing a batch of reservations".to_owned(),
                    };
                    Error::db(what, e)
                })?;
                Ok(entries)
            }

            async fn reservations(
                &self,
                key_id: &str,
                since: jiff::Timestamp,
            ) -> $crate::Result<Vec<(jiff::Timestamp, valet_policy::Asset, alloy_primitives::U256)>>
            {
                let rows: Vec<(i64, String, String)> =
                    sqlx::query_as($crate::sql::SELECT_RESERVATIONS)
                        .bind(key_id)
                        .bind($crate::sql::clamped_nanos(since))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| {
                            $crate::error::Error::db(
                                format_args!("reading the reservations of key {key_id}"),
                                e,
                            )
                        })?;
                rows.iter()
                    .map(|(at, asset, amount)| $crate::sql::reservation(key_id, *at, asset, amount))
                    .collect()
            }

            async fn audit(
                &self,
                filter: &$crate::AuditFilter,
            ) -> $crate::Result<Vec<$crate::AuditEntry>> {
                use $crate::sql;
                let limit = filter
                    .limit
                    .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
                let since = filter.since.map(sql::clamped_nanos);
                let query = match (&filter.action, &filter.key_id, since) {
                    (Some(a), k, s) => sqlx::query(sql::SELECT_AUDIT_BY_ACTION)
                        .bind(limit)
                        .bind(a)
                        .bind(k)
                        .bind(s.unwrap_or(i64::MIN)),
                    (None, k, s) => match (k, s) {
                        (None, None) => sqlx::query(sql::SELECT_AUDIT).bind(limit),
                        (Some(k), None) => {
                            sqlx::query(sql::SELECT_AUDIT_BY_KEY).bind(limit).bind(k)
                        }
                        (None, Some(s)) => sqlx::query(sql::SELECT_AUDIT_SINCE).bind(limit).bind(s),
                        (Some(k), Some(s)) => sqlx::query(sql::SELECT_AUDIT_BY_KEY_SINCE)
                            .bind(limit)
                            .bind(k)
                            .bind(s),
                    },
                };
                let rows = query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::error::Error::db("reading the audit log", e))?;
                let mut entries = rows
                    .iter()
                    .map(Self::entry_from_row)
                    .collect::<$crate::Result<Vec<_>>>()?;
                entries.reverse();
                Ok(entries)
            }

            fn shared(&self) -> bool {
                Self::SHARED
            }

            async fn decide(
                &self,
                key_id: &str,
                request_id: &str,
                windows: &[u64],
                rate_window: Option<u64>,
                nonce: Option<$crate::NonceClaim>,
                decide: &mut $crate::Decider<'_>,
            ) -> $crate::Result<Option<$crate::KeyTruth>> {
                use $crate::error::Error;
                use $crate::sql;
                let fail = |doing: &'static str| {
                    move |e| Error::db(format_args!("{doing} of key {key_id}"), e)
                };
                let mut tx = self.begin_key().await?;
                let Some((revoked, suspended, expires_at)): Option<(
                    Option<i64>,
                    Option<i64>,
                    i64,
                )> = sqlx::query_as(Self::LOCK_KEY)
                    .bind(key_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail("locking the row"))?
                else {
                    return Ok(None);
                };
                // The clock is read once the lock is held, so decisions of one key are in
                // time order whichever process makes them.
                let (now,): (i64,) = sqlx::query_as(Self::NOW)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail("reading the database clock for a decision"))?;
                let spent = Self::spent_in(&mut tx, key_id, now, windows).await?;
                let rate_since = rate_window.map(|w| sql::since_nanos(now, w));
                let requests = match rate_since {
                    Some(since) => {
                        let (n,): (i64,) = sqlx::query_as(sql::COUNT_REQUESTS)
                            .bind(key_id)
                            .bind(since)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(fail("counting the requests"))?;
                        u64::try_from(n).unwrap_or(0)
                    }
                    None => 0,
                };
                let (pending,): (i64,) = sqlx::query_as(sql::COUNT_PENDING)
                    .bind(key_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail("counting the pending transactions"))?;
                let at = |n: i64, what: &str| {
                    $crate::model::from_nanos(n, || format!("key {key_id}: {what}"))
                };
                let truth = $crate::KeyTruth {
                    now: at(now, "the database clock")?,
                    revoked: revoked.is_some(),
                    suspended: suspended.is_some(),
                    expires_at: at(expires_at, "expires_at")?,
                    spent,
                    requests,
                    pending: u32::try_from(pending).unwrap_or(u32::MAX),
                    nonce: None,
                };
                let mut truth = truth;
                if let Some(spend) = decide(&truth) {
                    Self::reserve(&mut tx, key_id, request_id, truth.now, spend).await?;
                    if let Some(claim) = nonce {
                        truth.nonce =
                            Some(Self::claim_nonce(&mut tx, claim, Some(key_id), now).await?);
                    }
                }
                if let Some(since) = rate_since {
                    sqlx::query(sql::PRUNE_REQUESTS)
                        .bind(key_id)
                        .bind(since)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail("pruning the requests"))?;
                    sqlx::query(sql::INSERT_REQUEST)
                        .bind(key_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail("counting the request"))?;
                }
                tx.commit().await.map_err(fail("committing the decision"))?;
                Ok(Some(truth))
            }

            async fn next_nonce(
                &self,
                sender: alloy_primitives::Address,
                chain_id: u64,
                floor: u64,
                key_id: Option<&str>,
            ) -> $crate::Result<u64> {
                use $crate::error::Error;
                let fail = |e| Error::db(format_args!("allocating a nonce of {sender}"), e);
                let mut tx = self.begin_key().await?;
                let (now,): (i64,) = sqlx::query_as(Self::NOW)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail)?;
                let claim = $crate::NonceClaim {
                    sender,
                    chain_id,
                    floor,
                };
                let nonce = Self::claim_nonce(&mut tx, claim, key_id, now).await?;
                tx.commit().await.map_err(fail)?;
                Ok(nonce)
            }

            async fn reap_nonces(
                &self,
                sender: alloy_primitives::Address,
                chain_id: u64,
                mined: u64,
                known: u64,
                stale_secs: u64,
            ) -> $crate::Result<bool> {
                use $crate::error::Error;
                use $crate::sql;
                let sender = $crate::sql::address_text(sender);
                let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                let fail = |e| Error::db(format_args!("reaping the nonces of {sender}"), e);
                let mut tx = self.begin_key().await?;
                let locked: Option<(i64,)> = sqlx::query_as(Self::LOCK_NONCE)
                    .bind(&sender)
                    .bind(big(chain_id))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail)?;
                if locked.is_none() {
                    return Ok(false);
                }
                sqlx::query(sql::PRUNE_PENDING)
                    .bind(&sender)
                    .bind(big(chain_id))
                    .bind(big(mined))
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                let (now,): (i64,) = sqlx::query_as(Self::NOW)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail)?;
                let lowest: Option<(i64,)> = sqlx::query_as(sql::LOWEST_UNKNOWN)
                    .bind(&sender)
                    .bind(big(chain_id))
                    .bind(big(known))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail)?;
                let stale = now.saturating_sub(big(stale_secs.saturating_mul(1_000_000_000)));
                let abandoned = lowest.is_some_and(|(signed_at,)| signed_at < stale);
                if abandoned {
                    for statement in [sql::FORGET_PENDING, sql::REWIND_NONCE] {
                        sqlx::query(statement)
                            .bind(&sender)
                            .bind(big(chain_id))
                            .bind(big(known))
                            .execute(&mut *tx)
                            .await
                            .map_err(fail)?;
                    }
                }
                tx.commit().await.map_err(fail)?;
                Ok(abandoned)
            }

            async fn audit_head(&self) -> $crate::Result<Option<(u64, alloy_primitives::B256)>> {
                use $crate::error::Error;
                let head: Option<(i64, Vec<u8>)> = sqlx::query_as($crate::sql::AUDIT_HEAD)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| Error::db("reading the audit head", e))?;
                head.map(|(s, h)| {
                    Ok((
                        u64::try_from(s)
                            .map_err(|_| Error::corrupt("audit head", format!("seq {s}")))?,
                        $crate::sql::b256(&h, || format!("audit seq {s}: hash"))?,
                    ))
                })
                .transpose()
            }
        }
    };
}
pub(crate) use store_impl;
