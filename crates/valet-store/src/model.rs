//! What the store keeps: keys, reservations, audit records and entries, and the batch that
//! writes them.

use crate::error::{Error, Result};
use alloy_primitives::{Address, B256, U256};
use jiff::Timestamp;
use valet_policy::Asset;

/// How a key's scope is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Valet checks the policy, then signs with the wallet key. Stored as `gateway`.
    Gateway,
    /// The wallet is an EIP-7702-delegated account and the key's session signer is registered
    /// on-chain with its scope, so the chain enforces it too. Stored as `onchain`.
    Onchain,
}

impl KeyMode {
    /// The stored name: `gateway` or `onchain`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Gateway => "gateway",
            KeyMode::Onchain => "onchain",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway" => Some(KeyMode::Gateway),
            "onchain" => Some(KeyMode::Onchain),
            _ => None,
        }
    }
}

/// An issued agent key, as stored. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The short public id, e.g. `k7f3a9c2e1b4d`.
    pub id: String,
    /// A human name for the key.
    pub name: String,
    /// The wallet the key acts for.
    pub wallet: Address,
    /// How the key's scope is enforced.
    pub mode: KeyMode,
    /// The policy source (TOML); the caller parses it.
    pub policy_toml: String,
    /// SHA-256 of the agent key secret (never the secret).
    pub secret_hash: [u8; 32],
    /// When the key was issued.
    pub created_at: Timestamp,
    /// When the key stops working.
    pub expires_at: Timestamp,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// When the key was quarantined (an anomaly under `on_anomaly = "suspend"`), if it is; a
    /// suspended key is refused until it is resumed.
    pub suspended_at: Option<Timestamp>,
    /// The address of the key's on-chain session signer (`onchain` keys only).
    pub session_signer: Option<Address>,
}

/// A spend reservation made before a signature is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The key whose limits the spend counts against (it must exist).
    pub key_id: String,
    /// The request that reserved it; [`Batch::releases`] names it to release the spend.
    pub request_id: String,
    /// When the spend was reserved.
    pub at: Timestamp,
    /// What is spent.
    pub asset: Asset,
    /// How much, in base units.
    pub amount: U256,
}

/// What an audit entry records (the store adds `seq`, `prev_hash` and `hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it happened.
    pub at: Timestamp,
    /// The request's id (agent requests and admin calls alike).
    pub request_id: String,
    /// Who acted: `agent` or `admin`. Must not be empty.
    pub actor: String,
    /// The key involved, if any.
    pub key_id: Option<String>,
    /// The JSON-RPC method, or `key.issue`, `key.revoke`, `key.revoke_all`, `tx.result`, …
    /// Must not be empty.
    pub action: String,
    /// `allow`, `deny` or `error`, if a decision was made.
    pub decision: Option<String>,
    /// Violation codes.
    pub violations: Vec<String>,
    /// A decoded summary, messages, error text (a JSON object).
    pub detail: serde_json::Value,
    /// The client's address, if there was a client.
    pub client_ip: Option<String>,
    /// The hash of the transaction sent, if one was.
    pub tx_hash: Option<B256>,
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// What it records.
    pub record: AuditRecord,
    /// The previous entry's hash ([`B256::ZERO`] for seq 1).
    pub prev_hash: B256,
    /// [`entry_hash`](crate::entry_hash)`(seq, prev_hash, record)`.
    pub hash: B256,
}

/// One atomic write: all of it is durable, or none of it.
///
/// Applied in this order: reservations inserted, then releases, then the audit records
/// appended to the chain in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Spend to reserve.
    pub reservations: Vec<Reservation>,
    /// Request ids whose reservations are released (the node rejected the transaction).
    pub releases: Vec<String>,
    /// Audit records to append, in order.
    pub audit: Vec<AuditRecord>,
}

impl Batch {
    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.reservations.is_empty() && self.releases.is_empty() && self.audit.is_empty()
    }

    /// Checks everything the database would refuse, so that a bad batch is rejected on its own
    /// (by [`GroupCommit::submit`](crate::GroupCommit::submit)) instead of failing a whole
    /// group commit.
    pub fn validate(&self) -> Result<()> {
        for r in &self.reservations {
            let what = || format!("reservation of request {:?}", r.request_id);
            if r.key_id.is_empty() {
                return Err(Error::invalid(what(), "empty key_id"));
            }
            if r.request_id.is_empty() {
                return Err(Error::invalid(what(), "empty request_id"));
            }
            no_nul(&r.key_id, || format!("{}: key_id", what()))?;
            no_nul(&r.request_id, || format!("{}: request_id", what()))?;
            nanos(r.at, || format!("{}: at", what()))?;
        }
        for (i, request_id) in self.releases.iter().enumerate() {
            no_nul(request_id, || format!("release {i}"))?;
        }
        for r in &self.audit {
            r.validate()?;
        }
        Ok(())
    }
}

impl AuditRecord {
    /// Checks the fields the database constrains (see [`Batch::validate`]): `actor` and
    /// `action` not empty, `decision` one of `allow`, `deny`, `error`, `at` in range, and no
    /// text containing a NUL character (PostgreSQL cannot store one; untrusted input such as
    /// a JSON-RPC method name must be cleaned by the caller).
    pub fn validate(&self) -> Result<()> {
        let what = |field: &str| format!("audit record of request {:?}: {field}", self.request_id);
        no_nul(&self.request_id, || what("request_id"))?;
        no_nul(&self.actor, || what("actor"))?;
        no_nul(&self.action, || what("action"))?;
        for (name, value) in [
            ("key_id", &self.key_id),
            ("decision", &self.decision),
            ("client_ip", &self.client_ip),
        ] {
            if let Some(v) = value {
                no_nul(v, || what(name))?;
            }
        }
        for v in &self.violations {
            no_nul(v, || what("violations"))?;
        }
        if self.actor.is_empty() {
            return Err(Error::invalid(what("actor"), "empty"));
        }
        if self.action.is_empty() {
            return Err(Error::invalid(what("action"), "empty"));
        }
        if let Some(d) = &self.decision
            && !matches!(d.as_str(), "allow" | "deny" | "error")
        {
            return Err(Error::invalid(
                what("decision"),
                format!("{d:?} is not allow, deny or error"),
            ));
        }
        nanos(self.at, || what("at"))?;
        Ok(())
    }
}

/// What a decision reads from the store inside the key's lock ([`Store::decide`]): the truth
/// every process sharing the store sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTruth {
    /// The database's clock when the key's lock was taken: the one clock for every window.
    pub now: Timestamp,
    /// Whether the key is revoked.
    pub revoked: bool,
    /// Whether the key is suspended (quarantined).
    pub suspended: bool,
    /// When the key expires.
    pub expires_at: Timestamp,
    /// Per window asked for (seconds) and asset: the total of the key's unreleased
    /// reservations made strictly after `now − window` (assets without any are absent).
    pub spent: Vec<(u64, Asset, U256)>,
    /// The key's requests counted strictly after `now − rate window` (0 without one), not
    /// counting the one being decided.
    pub requests: u64,
    /// The key's signed transactions not yet seen mined.
    pub pending: u32,
    /// The nonce allocated to an allowed request that asked for one ([`NonceClaim`]).
    pub nonce: Option<u64>,
}

/// A nonce for an allowed transaction, allocated inside the decision's transaction (and
/// recorded pending for the key there, so `max_pending` is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceClaim {
    /// Who signs: the wallet.
    pub sender: Address,
    /// The chain the nonce counts on.
    pub chain_id: u64,
    /// The node's pending count, when the caller read it (else 0): the nonce is at least this.
    pub floor: u64,
}

impl KeyTruth {
    /// Whether the key is refused outright (revoked, suspended or expired at `now`).
    pub fn refused(&self) -> bool {
        self.revoked || self.suspended || self.now >= self.expires_at
    }
}

/// The decision callback of [`Store::decide`]: given the truth, `Some(spend to reserve)` for an
/// allowed request, `None` for a denied or refused one.
pub type Decider<'a> = dyn FnMut(&KeyTruth) -> Option<Vec<(Asset, U256)>> + Send + 'a;

/// Which audit entries [`Store::audit`](crate::Store::audit) returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this key.
    pub key_id: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries with this action (e.g. `anomaly`, `key.revoke`).
    pub action: Option<String>,
    /// Only the latest N matching entries (still returned in ascending seq).
    pub limit: Option<u64>,
}

/// The earliest timestamp the store can hold (integer nanoseconds in an `i64`).
pub(crate) const MIN_TIMESTAMP: &str = "1677-09-21T00:12:43.145224192Z";
/// The latest timestamp the store can hold (integer nanoseconds in an `i64`).
pub(crate) const MAX_TIMESTAMP: &str = "2262-04-11T23:47:16.854775807Z";

/// Text the database can store: PostgreSQL refuses NUL characters in `TEXT`, and both engines
/// must accept the same values. (JSON columns are safe: serde_json escapes NUL as `\u0000`.)
pub(crate) fn no_nul(s: &str, what: impl FnOnce() -> String) -> Result<()> {
    match s.contains('\0') {
        true => Err(Error::invalid(what(), "contains a NUL character")),
        false => Ok(()),
    }
}

/// A timestamp as stored: nanoseconds since the Unix epoch.
pub(crate) fn nanos(ts: Timestamp, what: impl FnOnce() -> String) -> Result<i64> {
    i64::try_from(ts.as_nanosecond()).map_err(|_| {
        Error::invalid(
            what(),
            format!("{ts} is outside {MIN_TIMESTAMP} ..= {MAX_TIMESTAMP}"),
        )
    })
}

/// A stored timestamp read back.
pub(crate) fn from_nanos(n: i64, what: impl FnOnce() -> String) -> Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(n)).map_err(|e| Error::corrupt(what(), e.to_string()))
}
