//! The [`Store`] trait and [`open`].

use crate::error::{Error, Result};
use crate::model::{
    AuditEntry, AuditFilter, AuditRecord, Batch, Decider, KeyRecord, KeyTruth, NonceClaim,
};
use alloy_primitives::{Address, B256, U256};
use jiff::Timestamp;
use std::sync::Arc;
use valet_policy::Asset;

/// Valet's durable state: agent keys, spend reservations and the hash-chained audit log.
///
/// Every method that writes an audit record extends the chain in the same transaction as the
/// rest of its write, under a lock that serializes chain extension across connections and
/// processes; it returns once the transaction is durable. Timestamps must lie between
/// 1677-09-21 and 2262-04-11 (they are stored as integer nanoseconds); a value outside is an
/// [`Error::Invalid`] and nothing is written.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new key and appends `audit`, in one transaction. A key with the same id is
    /// [`Error::DuplicateKey`] (and nothing is written).
    async fn insert_key(&self, key: &KeyRecord, audit: AuditRecord) -> Result<AuditEntry>;

    /// The key with this id, if there is one.
    async fn key(&self, id: &str) -> Result<Option<KeyRecord>>;

    /// Every key, oldest first (by `created_at`, then id).
    async fn keys(&self) -> Result<Vec<KeyRecord>>;

    /// Revokes the key as of `at` and appends `audit`, in one transaction. Returns false (and
    /// appends nothing) if the key is unknown or already revoked.
    async fn revoke_key(&self, id: &str, at: Timestamp, audit: AuditRecord) -> Result<bool>;

    /// Revokes every key not yet revoked, as of `at`, and appends `audit` (always), in one
    /// transaction. Returns how many keys it revoked.
    async fn revoke_all(&self, at: Timestamp, audit: AuditRecord) -> Result<u64>;

    /// Quarantines the key as of `at` (it is refused as if revoked, but reversibly) and
    /// appends `audit`, in one transaction. Returns false (and appends nothing) if the key is
    /// unknown, revoked or already suspended.
    async fn suspend_key(&self, id: &str, at: Timestamp, audit: AuditRecord) -> Result<bool>;

    /// Lifts the key's quarantine and appends `audit`, in one transaction. Returns false (and
    /// appends nothing) if the key is unknown, revoked or not suspended.
    async fn resume_key(&self, id: &str, audit: AuditRecord) -> Result<bool>;

    /// Writes the batch in ONE transaction: reservations, then releases, then the audit
    /// records chained in order. Durable (committed and fsync'd) when it returns; on error
    /// nothing of it was written. Returns the new audit entries.
    async fn append(&self, batch: Batch) -> Result<Vec<AuditEntry>>;

    /// The key's reservations not released and made strictly after `since`, oldest first.
    async fn reservations(
        &self,
        key_id: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, Asset, U256)>>;

    /// Audit entries matching `filter`, by seq ascending (with a limit, the latest N, still
    /// ascending). The default filter returns the whole log, as [`verify`](crate::verify)
    /// needs it.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;

    /// The latest entry's seq and hash, or `None` for an empty log.
    async fn audit_head(&self) -> Result<Option<(u64, B256)>>;

    /// Whether several processes may share this store (PostgreSQL). A gateway on a shared
    /// store decides through [`decide`](Store::decide) and takes nonces from
    /// [`next_nonce`](Store::next_nonce); on one that is not (SQLite, one process by
    /// construction) it may decide from memory.
    fn shared(&self) -> bool;

    /// Decides one request of key `key_id` against the store's truth, in ONE transaction that
    /// locks the key's row: reads the database's clock, the key's revocation, suspension and
    /// expiry, the totals of its unreleased reservations inside each of `windows` (seconds),
    /// with `rate_window` the number of its counted requests inside it, and its pending
    /// transactions; calls `decide` with them once; for
    /// an allowed request inserts the spend it returns as reservations of `request_id` at that
    /// time and, with `nonce`, allocates the sender's next nonce and records it pending for
    /// the key (as [`next_nonce`](Store::next_nonce)); counts the request itself with
    /// `rate_window`; commits. Returns what was read (with the nonce), or `None` for an
    /// unknown key (nothing written). Calls for one key, from any process, are serialized by
    /// the row lock, so no two decisions ever see the same usage.
    ///
    /// The commit need not wait for the disk (PostgreSQL: `synchronous_commit = off` for
    /// it): the caller releases nothing before a later durable commit (the audit entry),
    /// and the database's log is flushed in order, so that one makes this one durable too.
    async fn decide(
        &self,
        key_id: &str,
        request_id: &str,
        windows: &[u64],
        rate_window: Option<u64>,
        nonce: Option<NonceClaim>,
        decide: &mut Decider<'_>,
    ) -> Result<Option<KeyTruth>>;

    /// Allocates the next nonce of `sender` on `chain_id` in one statement (`UPDATE …
    /// RETURNING`): the stored next nonce, raised to `floor` first (the node's pending count,
    /// when the caller read it), and stores it + 1. With `key_id`, records the nonce pending
    /// for that key (its `max_pending`, and the reaper) at the database's time. Like
    /// [`decide`](Store::decide), its commit need not wait for the disk.
    async fn next_nonce(
        &self,
        sender: Address,
        chain_id: u64,
        floor: u64,
        key_id: Option<&str>,
    ) -> Result<u64>;

    /// The reaper's step for `sender` on `chain_id`, given the node's mined (`latest`) and
    /// known (`pending`) counts: forgets pending transactions below `mined`; if the lowest
    /// nonce the node does not know was signed more than `stale_secs` ago (abandoned: a
    /// signature never broadcast, or dropped), forgets the pending at and above `known` and
    /// moves the next nonce back to `known`, so that the wallet never stalls. One transaction
    /// that locks the sender's nonce row, so replicas running it together agree. Returns
    /// whether nonces were taken back.
    async fn reap_nonces(
        &self,
        sender: Address,
        chain_id: u64,
        mined: u64,
        known: u64,
        stale_secs: u64,
    ) -> Result<bool>;
}

/// Opens (and migrates) a store: `sqlite://PATH` (the file is created with mode 0600 if
/// missing; its directory must exist), `sqlite::memory:`, or `postgres://USER:PASSWORD@HOST/DB`
/// (`postgresql://` too; `?options[search_path]=SCHEMA` picks a schema).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(crate::sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(crate::postgres::PgStore::open(url).await?))
    } else {
        let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
        Err(Error::invalid(
            "database URL",
            format!(
                "unsupported scheme {scheme:?}; use sqlite://PATH, sqlite::memory: or postgres://…"
            ),
        ))
    }
}
