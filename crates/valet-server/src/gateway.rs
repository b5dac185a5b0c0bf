//! The gateway's state and what the request line ([`line`]) calls on: the key cache, the
//! group commit, filling, signing (nonces in memory, or from a shared store), release or
//! broadcast, and the reaper.

mod line;

use crate::wire::RpcError;
use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy},
    eips::eip2718::Encodable2718,
    primitives::{Address, B256, TxKind, hex},
};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};
use tokio::sync::broadcast;
use valet_chain::{NonceManager, Upstream};
use valet_keys::Wallet;
use valet_policy::{Policy, Request, SpendLedger, TxRequest, Usage};
use valet_store::{AuditRecord, Batch, GroupCommit, KeyRecord, Store};

/// One agent key as the gateway holds it: its record, its parsed policy and its live usage.
pub(crate) struct KeyEntry {
    pub(crate) record: KeyRecord,
    pub(crate) policy: Policy,
    pub(crate) state: Mutex<KeyState>,
    /// Anomaly detection and quarantine (`anomaly.rs`).
    pub(crate) watch: crate::anomaly::Watch,
}

/// What changes with every request of a key. Decisions and reservations happen under this
/// lock, so concurrent requests can never together pass a cap.
#[derive(Default)]
pub(crate) struct KeyState {
    pub(crate) revoked: bool,
    pub(crate) ledger: SpendLedger,
    /// Signed transactions not yet mined.
    pub(crate) pending: Vec<Pending>,
    pub(crate) last_used: Option<Timestamp>,
    /// Requests since the ledger was last pruned.
    since_prune: u32,
    /// On a shared store: the usage the key's latest decision read from the store (the
    /// ledger above is then unused).
    pub(crate) shared: Option<SharedUsage>,
}

/// A key's usage as a shared store summed it inside a decision: per window and asset the
/// reserved total, the requests in the rate window, the pending transactions.
#[derive(Debug, Clone)]
pub(crate) struct SharedUsage {
    pub(crate) now: Timestamp,
    /// The windows the store summed.
    pub(crate) windows: Vec<u64>,
    pub(crate) spent: Vec<(u64, valet_policy::Asset, alloy::primitives::U256)>,
    pub(crate) requests: u64,
    pub(crate) pending: u32,
}

impl SharedUsage {
    /// What was reserved of `asset` in the window of `window` seconds.
    pub(crate) fn spent_in(
        &self,
        asset: valet_policy::Asset,
        window: u64,
    ) -> alloy::primitives::U256 {
        self.spent
            .iter()
            .find(|(w, a, _)| *w == window && *a == asset)
            .map_or(alloy::primitives::U256::ZERO, |(_, _, total)| *total)
    }

    /// Adds an allowed request's spend to every window.
    pub(crate) fn add(&mut self, spend: &valet_policy::Spend) {
        for (asset, amount) in spend {
            for w in &self.windows {
                match self
                    .spent
                    .iter_mut()
                    .find(|(sw, a, _)| sw == w && a == asset)
                {
                    Some(slot) => slot.2 = slot.2.saturating_add(*amount),
                    None => self.spent.push((*w, *asset, *amount)),
                }
            }
        }
    }

    /// The window (seconds, one the store summed) whose start, seen from `now` as the
    /// evaluator computes it, is `since`.
    fn window_of(&self, since: Timestamp) -> Option<u64> {
        self.windows.iter().copied().find(|&w| {
            let start = self
                .now
                .checked_sub(jiff::SignedDuration::from_secs(
                    w.min(i64::MAX as u64) as i64
                ))
                .unwrap_or(Timestamp::MIN);
            start == since
        })
    }
}

impl Usage for SharedUsage {
    /// A window the store did not sum counts as unlimited use (fail closed): it was asked for
    /// every window of the policy, so this never happens.
    fn spent(&self, asset: valet_policy::Asset, since: Timestamp) -> alloy::primitives::U256 {
        match self.window_of(since) {
            Some(w) => self.spent_in(asset, w),
            None => alloy::primitives::U256::MAX,
        }
    }

    fn requests_since(&self, _since: Timestamp) -> u64 {
        // Only one rate window per policy: the store counted inside it.
        self.requests
    }

    fn pending(&self) -> u32 {
        self.pending
    }
}

/// A transaction signed for a key and not yet seen mined.
pub(crate) struct Pending {
    nonce: u64,
    signed_at: Timestamp,
    /// Sent by the relayer (an on-chain key's `executeWithKey`): `nonce` is the relayer's.
    relayed: bool,
}

/// Requests without a valid agent key audited per client address and minute; beyond that they
/// are only counted (in the next audited one), so a flood of bad credentials cannot fill the
/// disk. Each is still answered 4100.
pub(crate) const UNKNOWN_KEY_AUDITS_PER_MINUTE: u32 = 20;

/// Addresses tracked for [`UNKNOWN_KEY_AUDITS_PER_MINUTE`] before the table is cleared.
const UNKNOWN_KEY_ADDRESSES: usize = 10_000;

/// Per client address: the minute, the entries audited in it, and those left unaudited since
/// the last audited one.
type UnknownKeyBudget = HashMap<Option<IpAddr>, (i64, u32, u64)>;

/// How long a signed transaction may stay unknown to the node (never broadcast, or dropped)
/// before it is treated as abandoned and its nonce is given to the next transaction.
const ABANDONED_AFTER_SECS: i64 = 30;

/// A transaction signed in this process and not yet released to anyone.
struct Signed {
    nonce: u64,
    hash: B256,
    raw: Vec<u8>,
    /// For a transaction to broadcast: the sender's nonce, held until the node takes it, so
    /// transactions reach the node in nonce order and a dropped one leaves no gap.
    lease: Option<valet_chain::NonceLease>,
    /// Sent by the relayer (an on-chain key), not by the wallet.
    relayed: bool,
}

/// Why a transaction was not signed.
enum SignFailure {
    /// The chain refuses it (an on-chain key's scope): a denial.
    Refused(String),
    /// Anything else: an internal error.
    Internal(String),
}

/// The running gateway.
pub struct Gateway {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) journal: GroupCommit,
    pub(crate) upstream: Upstream,
    pub(crate) wallet: Wallet,
    pub(crate) nonces: NonceManager,
    pub(crate) keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    pub(crate) admin_token: String,
    /// The live feed: each event serialized once, shared by every subscriber.
    pub(crate) events: broadcast::Sender<Arc<str>>,
    pub(crate) trust_proxy: bool,
    pub(crate) checkpoint: Option<valet_store::Checkpoint>,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) onchain: Option<crate::onchain::Onchain>,
    unknown_keys: Mutex<UnknownKeyBudget>,
    /// On a shared store: read the node's pending count before the next nonce.
    nonce_floor_stale: AtomicBool,
    pub(crate) monitor: crate::anomaly::Monitor,
}

/// Settings the gateway starts with.
pub struct GatewayParts {
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The group committer over the same store.
    pub journal: GroupCommit,
    /// The upstream node.
    pub upstream: Upstream,
    /// The wallet signer.
    pub wallet: Wallet,
    /// The admin bearer token.
    pub admin_token: String,
    /// Whether to believe `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Where the audit chain head is checkpointed outside the database.
    pub checkpoint: Option<std::path::PathBuf>,
    /// On-chain mode (session key custody and the relayer), if configured.
    pub onchain: Option<crate::onchain::Onchain>,
}

/// Who is asking and from where.
pub(crate) struct Caller<'a> {
    pub(crate) token: Option<&'a str>,
    pub(crate) ip: Option<IpAddr>,
}

fn request_id() -> String {
    format!("r{:016x}", rand::random::<u64>())
}

impl Gateway {
    /// Builds the gateway with the default anomaly thresholds and no webhook.
    pub fn new(parts: GatewayParts) -> Arc<Self> {
        Self::with_anomaly(parts, crate::AnomalyConfig::default())
    }

    /// Builds the gateway with these anomaly thresholds and alert webhook.
    pub fn with_anomaly(parts: GatewayParts, anomaly: crate::AnomalyConfig) -> Arc<Self> {
        let nonces = NonceManager::new(parts.upstream.clone(), parts.wallet.address());
        let (events, _) = broadcast::channel(1024);
        Arc::new(Self {
            store: parts.store,
            journal: parts.journal,
            upstream: parts.upstream,
            wallet: parts.wallet,
            nonces,
            keys: RwLock::new(HashMap::new()),
            admin_token: parts.admin_token,
            events,
            trust_proxy: parts.trust_proxy,
            checkpoint: parts.checkpoint.map(valet_store::Checkpoint::new),
            metrics: crate::metrics::Metrics::default(),
            onchain: parts.onchain,
            unknown_keys: Mutex::new(HashMap::new()),
            nonce_floor_stale: AtomicBool::new(true),
            monitor: crate::anomaly::Monitor::new(anomaly),
        })
    }

    /// The wallet's address.
    pub fn wallet(&self) -> Address {
        self.wallet.address()
    }

    /// The wallet as the sender of its own set-up transactions (on-chain grants and
    /// revocations), sharing the gateway's nonces.
    pub(crate) fn owner_sender(&self) -> valet_chain::Sender {
        valet_chain::Sender::with_nonces(
            self.upstream.clone(),
            self.wallet.network_wallet(),
            self.nonces.clone(),
        )
    }

    /// Loads a key into the cache (or returns the cached one).
    pub(crate) async fn key(&self, id: &str) -> Result<Option<Arc<KeyEntry>>, valet_store::Error> {
        if let Some(k) = self.keys.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(Some(k));
        }
        let Some(record) = self.store.key(id).await? else {
            return Ok(None);
        };
        let Ok(policy) = Policy::from_toml(&record.policy_toml) else {
            tracing::error!(target: "valet::gateway", key = id, "stored policy no longer parses");
            return Ok(None);
        };
        let since = Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(policy.horizon() as i64))
            .unwrap_or(Timestamp::MIN);
        let mut ledger = SpendLedger::new();
        for (at, asset, amount) in self.store.reservations(id, since).await? {
            ledger.reserve(&vec![(asset, amount)], at);
        }
        let revoked = record.revoked_at.is_some();
        let watch = crate::anomaly::Watch::new(
            record.suspended_at.is_some(),
            crate::anomaly::known_ips(self.store.as_ref(), id).await?,
        );
        let entry = Arc::new(KeyEntry {
            watch,
            record,
            policy,
            state: Mutex::new(KeyState {
                revoked,
                ledger,
                ..KeyState::default()
            }),
        });
        let mut map = self.keys.write().unwrap_or_else(|e| e.into_inner());
        Ok(Some(map.entry(id.to_string()).or_insert(entry).clone()))
    }

    /// Marks a cached key revoked (the store is the source of truth; this makes the very next
    /// request see it).
    pub(crate) fn mark_revoked(&self, id: Option<&str>) {
        let map = self.keys.read().unwrap_or_else(|e| e.into_inner());
        for (key_id, entry) in map.iter() {
            if id.is_none_or(|id| id == key_id) {
                lock(&entry.state).revoked = true;
            }
        }
    }

    /// Appends audit records durably and publishes them on the live feed.
    pub(crate) async fn audit(&self, batch: Batch) -> Result<(), valet_store::Error> {
        self.commit(batch, None).await.map(|_| ())
    }

    /// Makes `batch` durable (NUL scrubbed: agent-supplied text may hold it, and PostgreSQL
    /// refuses it), publishes its entries, and says whether `key_id` was revoked in the store
    /// when it committed.
    async fn commit(
        &self,
        mut batch: Batch,
        key_id: Option<&str>,
    ) -> Result<bool, valet_store::Error> {
        for record in &mut batch.audit {
            scrub(&mut record.detail);
        }
        let (entries, revoked) = match key_id {
            Some(id) => self.journal.submit_for_key(batch, id).await?,
            None => (self.journal.submit(batch).await?, false),
        };
        // Build the feed's JSON only when someone watches (it is on the /rpc hot path).
        for e in entries.iter().filter(|_| self.events.receiver_count() > 0) {
            self.publish(&valet_store::entry_to_json(e));
        }
        Ok(revoked)
    }

    /// Sends an event to the live feed's subscribers, serialized once for all of them.
    pub(crate) fn publish(&self, event: &Value) {
        let _ = self.events.send(Arc::from(event.to_string()));
    }

    /// Handles one JSON-RPC request object (already checked to be an object).
    pub(crate) async fn handle(&self, caller: &Caller<'_>, req: &Value) -> Value {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let started = std::time::Instant::now();
        let result = self.dispatch(caller, req).await;
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        self.metrics.record(method, &result, started.elapsed());
        crate::wire::response(&id, result)
    }

    /// Whether a request without a valid key from `ip` is audited now (see
    /// [`UNKNOWN_KEY_AUDITS_PER_MINUTE`]); `Some(n)` with the `n` requests left unaudited
    /// since the last audited one.
    fn unknown_key_budget(&self, ip: Option<IpAddr>, now: Timestamp) -> Option<u64> {
        let minute = now.as_second().div_euclid(60);
        let mut table = lock(&self.unknown_keys);
        if table.len() >= UNKNOWN_KEY_ADDRESSES && !table.contains_key(&ip) {
            table.retain(|_, (m, _, _)| *m == minute);
            if table.len() >= UNKNOWN_KEY_ADDRESSES {
                table.clear();
            }
        }
        let (m, audited, unaudited) = table.entry(ip).or_insert((minute, 0, 0));
        if *m != minute {
            (*m, *audited) = (minute, 0);
        }
        if *audited >= UNKNOWN_KEY_AUDITS_PER_MINUTE {
            *unaudited += 1;
            return None;
        }
        *audited += 1;
        Some(std::mem::take(unaudited))
    }

    fn internal(&self, rid: &str, e: impl std::fmt::Display) -> RpcError {
        tracing::error!(target: "valet::gateway", request_id = rid, error = %e, "internal error");
        RpcError::Internal {
            request_id: rid.to_string(),
        }
    }

    fn upstream_error(&self, rid: &str, e: valet_chain::Error) -> RpcError {
        match e {
            valet_chain::Error::Node {
                code,
                message,
                data,
            } => RpcError::Upstream {
                code,
                message,
                data,
            },
            other => {
                tracing::error!(target: "valet::gateway", request_id = rid, error = %other, "upstream node unreachable");
                RpcError::UpstreamUnreachable {
                    request_id: rid.to_string(),
                }
            }
        }
    }

    async fn audit_one(&self, rid: &str, record: AuditRecord) -> Result<(), RpcError> {
        self.audit(Batch {
            audit: vec![record],
            ..Batch::default()
        })
        .await
        .map_err(|e| self.internal(rid, e))
    }

    /// Fills what the agent left out: chain id, gas (estimate with margin) and EIP-1559 fees.
    /// A transaction to broadcast always asks the node for fees first, so that an unreachable
    /// node fails the request before anything is reserved or signed.
    async fn fill(&self, mut tx: TxRequest, send: bool) -> Result<TxRequest, Fill> {
        if tx.chain_id.is_none() {
            tx.chain_id = Some(self.upstream.chain_id());
        }
        if tx.gas.is_none() {
            let estimate = self
                .upstream
                .estimate_gas(self.wallet.address(), tx.to, tx.value, &tx.data)
                .await
                .map_err(|e| match e {
                    valet_chain::Error::Node { message, .. } => {
                        Fill::Simulation(format!("gas estimation failed: {message}"))
                    }
                    other => Fill::Upstream(other),
                })?;
            tx.gas = Some(valet_chain::gas_with_margin(estimate));
        }
        if send
            || tx.max_fee_per_gas.is_none()
            || (!tx.legacy && tx.max_priority_fee_per_gas.is_none())
        {
            let fees = self.upstream.fees().await.map_err(Fill::Upstream)?;
            let max_fee = *tx.max_fee_per_gas.get_or_insert(fees.max_fee_per_gas);
            if !tx.legacy {
                tx.max_priority_fee_per_gas = Some(fees.max_priority_fee_per_gas.min(max_fee));
            }
        }
        Ok(tx)
    }

    /// Takes the next nonce (on a shared store: `nonce`, allocated with the decision) and
    /// signs. A signature to return (`eth_signTransaction`) consumes its nonce at once; one to
    /// broadcast keeps the nonce leased until the node has it.
    async fn sign(
        &self,
        entry: &KeyEntry,
        tx: &TxRequest,
        now: Timestamp,
        send: bool,
        nonce: Option<u64>,
    ) -> Result<Signed, SignFailure> {
        if entry.record.mode == valet_store::KeyMode::Onchain {
            return self.sign_relayed(entry, tx, now).await;
        }
        let internal = |e: &dyn std::fmt::Display| SignFailure::Internal(e.to_string());
        if self.store.shared() {
            // Allocated with the decision (and pending for the key there).
            let nonce = nonce.ok_or_else(|| internal(&"no nonce was allocated"))?;
            let envelope = self.build_and_sign(tx, nonce).map_err(|e| internal(&e))?;
            return Ok(Signed {
                nonce,
                hash: *envelope.tx_hash(),
                raw: envelope.encoded_2718(),
                lease: None,
                relayed: false,
            });
        }
        let lease = self.nonces.lease().await.map_err(|e| internal(&e))?;
        let nonce = lease.nonce();
        let envelope = self.build_and_sign(tx, nonce).map_err(|e| internal(&e))?;
        let lease = if send {
            Some(lease)
        } else {
            lease.commit();
            lock(&entry.state).pending.push(Pending {
                nonce,
                signed_at: now,
                relayed: false,
            });
            None
        };
        Ok(Signed {
            nonce,
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718(),
            lease,
            relayed: false,
        })
    }

    /// On a shared store, the floor of the wallet's next nonce: `Some(the node's pending
    /// count)` when it must be read again (at start, after a broken broadcast or "nonce too
    /// low"), else `None` (the database's row knows better). Give it back with
    /// [`floor_unused`](Self::floor_unused) if no nonce was allocated with it.
    async fn nonce_floor(&self) -> Result<Option<u64>, valet_chain::Error> {
        if !self.nonce_floor_stale.swap(false, Ordering::AcqRel) {
            return Ok(None);
        }
        let read = self.upstream.pending_nonce(self.wallet.address()).await;
        if read.is_err() {
            self.floor_unused();
        }
        read.map(Some)
    }

    /// The floor read by [`nonce_floor`](Self::nonce_floor) was not applied: read it again.
    fn floor_unused(&self) {
        self.nonce_floor_stale.store(true, Ordering::Release);
    }

    /// Forgets what is known of the sender's next nonce: the node's count is read again.
    async fn resync_nonces(&self, relayed: bool) {
        if !relayed && self.store.shared() {
            self.nonce_floor_stale.store(true, Ordering::Release);
        } else {
            self.sender_nonces(relayed).resync().await;
        }
    }

    /// An on-chain key's transaction: the call, signed by the key's session signer as
    /// `executeWithKey` and wrapped in a transaction the relayer signs and pays for.
    async fn sign_relayed(
        &self,
        entry: &KeyEntry,
        tx: &TxRequest,
        now: Timestamp,
    ) -> Result<Signed, SignFailure> {
        use crate::onchain::OnchainError;
        let Some(onchain) = &self.onchain else {
            return Err(SignFailure::Internal(
                "an on-chain key, but on-chain mode is not configured".into(),
            ));
        };
        let wallet = self.wallet.address();
        let Some(target) = tx.to else {
            return Err(SignFailure::Refused(
                "an on-chain key cannot create contracts".into(),
            ));
        };
        // An ERC-7821 batch to the wallet itself becomes one executeWithKey of its calls.
        let calls = match valet_chain::account::batch_calls(wallet, &tx.data) {
            Some(calls) if target == wallet && tx.value.is_zero() => calls,
            _ => vec![valet_chain::account::Call {
                target,
                value: tx.value,
                data: tx.data.clone(),
            }],
        };
        let fees = (
            tx.max_fee_per_gas.unwrap_or(0),
            tx.max_priority_fee_per_gas.unwrap_or(0),
        );
        let relayed = onchain
            .relay(&self.upstream, wallet, &entry.record.id, calls, fees, now)
            .await
            .map_err(|e| match e {
                OnchainError::Refused(why) => {
                    SignFailure::Refused(format!("the chain refuses it: {why}"))
                }
                other => SignFailure::Internal(other.to_string()),
            })?;
        Ok(Signed {
            nonce: relayed.lease.nonce(),
            hash: relayed.hash,
            raw: relayed.raw,
            lease: Some(relayed.lease),
            relayed: true,
        })
    }

    /// The on-chain state of an on-chain key's session signer (`null` for a gateway key).
    pub(crate) async fn onchain_state(&self, record: &KeyRecord, policy: &Policy) -> Value {
        match (record.mode, record.session_signer) {
            (valet_store::KeyMode::Onchain, Some(session)) => {
                crate::onchain::state(&self.upstream, record.wallet, session, policy).await
            }
            _ => Value::Null,
        }
    }

    /// On-chain owner actions of this gateway (`None` without on-chain mode).
    pub(crate) fn owner_chain<'a>(
        &'a self,
        sender: &'a valet_chain::Sender,
    ) -> Option<crate::onchain::OwnerChain<'a>> {
        self.onchain
            .as_ref()
            .map(|onchain| crate::onchain::OwnerChain {
                onchain,
                wallet: &self.wallet,
                sender,
            })
    }

    /// The nonces of whoever sends `signed`: the relayer's or the wallet's.
    fn sender_nonces(&self, relayed: bool) -> &NonceManager {
        match (
            relayed,
            self.onchain.as_ref().and_then(|o| o.relayer_nonces()),
        ) {
            (true, Some(nonces)) => nonces,
            _ => &self.nonces,
        }
    }

    /// Releases a signed transaction whose reservation and audit entry are durable: returns it
    /// (`eth_signTransaction`) or broadcasts it. A rejection releases the reservation; a
    /// broken connection keeps it (the node may still have it).
    #[allow(clippy::too_many_arguments)]
    async fn release(
        &self,
        entry: &KeyEntry,
        rid: &str,
        now: Timestamp,
        send: bool,
        signed: Signed,
        spend: valet_policy::Spend,
        ip: Option<IpAddr>,
    ) -> Result<Value, RpcError> {
        if !send {
            return Ok(json!(hex::encode_prefixed(signed.raw)));
        }
        let e = match self.upstream.send_raw(&signed.raw).await {
            Ok(_) => {
                if let Some(lease) = signed.lease {
                    lease.commit();
                }
                // On a shared store the nonce is pending in the database already.
                if signed.relayed || !self.store.shared() {
                    let pending = Pending {
                        nonce: signed.nonce,
                        signed_at: now,
                        relayed: signed.relayed,
                    };
                    lock(&entry.state).pending.push(pending);
                }
                return Ok(json!(signed.hash));
            }
            Err(e) => e,
        };
        // The nonce goes back (the lease is dropped unused). If the node may have taken the
        // transaction after all (a broken connection) or says the nonce is used, the manager
        // re-reads the node's pending count.
        drop(signed.lease);
        if !matches!(e, valet_chain::Error::Node { .. }) || e.is_nonce_too_low() {
            self.resync_nonces(signed.relayed).await;
        }
        let mut outcome = agent_record(
            rid,
            Timestamp::now(),
            Some(&entry.record.id),
            "tx.unknown",
            ip,
            "error",
            json!({ "nonce": signed.nonce, "error": e.to_string() }),
        );
        outcome.tx_hash = Some(signed.hash);
        let mut releases = vec![];
        if matches!(e, valet_chain::Error::Node { .. }) {
            // Rejected: it can never be mined, so its reservation is released.
            lock(&entry.state).ledger.release(&spend, now);
            outcome.action = "tx.rejected".into();
            releases.push(rid.to_string());
        }
        self.audit(Batch {
            releases,
            audit: vec![outcome],
            ..Batch::default()
        })
        .await
        .map_err(|err| self.internal(rid, err))?;
        Err(self.upstream_error(rid, e))
    }

    fn build_and_sign(&self, tx: &TxRequest, nonce: u64) -> Result<TxEnvelope, valet_keys::Error> {
        let to = tx.to.map_or(TxKind::Create, TxKind::Call);
        let chain_id = tx.chain_id.unwrap_or(self.upstream.chain_id());
        let gas_limit = tx.gas.unwrap_or(21_000);
        let fee = tx.max_fee_per_gas.unwrap_or(0);
        Ok(if tx.legacy {
            let mut t = TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price: fee,
                gas_limit,
                to,
                value: tx.value,
                input: tx.data.clone(),
            };
            let sig = self.wallet.sign_transaction(&mut t)?;
            TxEnvelope::Legacy(t.into_signed(sig))
        } else {
            let mut t = TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: fee,
                max_priority_fee_per_gas: tx.max_priority_fee_per_gas.unwrap_or(0),
                to,
                value: tx.value,
                access_list: Default::default(),
                input: tx.data.clone(),
            };
            let sig = self.wallet.sign_transaction(&mut t)?;
            TxEnvelope::Eip1559(t.into_signed(sig))
        })
    }

    /// Methods Valet answers itself.
    fn local(&self, method: &str, entry: &KeyEntry, now: Timestamp) -> Value {
        match method {
            "eth_accounts" | "eth_requestAccounts" => json!([self.wallet.address()]),
            "eth_chainId" => json!(format!("0x{:x}", self.upstream.chain_id())),
            "net_version" => json!(self.upstream.chain_id().to_string()),
            _ => self.permissions(entry, now),
        }
    }

    /// `valet_getPermissions`: the key's scope and what remains of each limit now.
    pub(crate) fn permissions(&self, entry: &KeyEntry, now: Timestamp) -> Value {
        let p = &entry.policy;
        let state = lock(&entry.state);
        let since = |secs: u64| {
            now.checked_sub(jiff::SignedDuration::from_secs(
                secs.min(i64::MAX as u64) as i64
            ))
            .unwrap_or(Timestamp::MIN)
        };
        let spend: Vec<Value> = p
            .limits
            .spend
            .iter()
            .map(|l| {
                let used = match &state.shared {
                    Some(usage) => usage.spent_in(l.asset, l.window),
                    None => state.ledger.spent(l.asset, since(l.window)),
                };
                json!({
                    "asset": asset_name(l.asset),
                    "amount": l.amount.to_string(),
                    "window": valet_policy::units::format_duration(l.window),
                    "used": used.to_string(),
                    "remaining": l.amount.saturating_sub(used).to_string(),
                })
            })
            .collect();
        let rate = p.limits.rate.map(|r| {
            let used = match &state.shared {
                Some(usage) => usage.requests,
                None => state.ledger.requests_since(since(r.window)),
            };
            json!({
                "max_requests": r.max_requests,
                "window": valet_policy::units::format_duration(r.window),
                "remaining": r.max_requests.saturating_sub(used),
            })
        });
        json!({
            "id": entry.record.id,
            "name": entry.record.name,
            "wallet": entry.record.wallet,
            "profile": p.profile.as_str(),
            "mode": match entry.record.mode { valet_store::KeyMode::Gateway => "gateway", valet_store::KeyMode::Onchain => "onchain" },
            "chains": if p.chains.is_empty() { vec![self.upstream.chain_id()] } else { p.chains.clone() },
            "expires_at": entry.record.expires_at.to_string(),
            "not_before": p.not_before.map(|t| t.to_string()),
            "revoked": state.revoked,
            "schedule": p.schedule.as_ref().map(|s| json!({
                "days": s.days,
                "hours": s.hours.map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)),
                "timezone": s.timezone_name,
            })),
            "limits": {
                "max_value_per_tx": p.limits.max_value_per_tx.map(|v| v.to_string()),
                "max_fee_per_gas": p.limits.max_fee_per_gas.map(|v| v.to_string()),
                "max_pending": p.limits.max_pending,
                "pending": state.shared.as_ref().map_or(state.pending.len(), |u| u.pending as usize),
                "spend": spend,
                "rate": rate,
            },
        })
    }

    /// Drops pending transactions the chain has moved past (mined or replaced), and those the
    /// node has not seen for [`ABANDONED_AFTER_SECS`] (signed with `eth_signTransaction` and
    /// never broadcast, or dropped): their nonces go to the next transactions, so an agent
    /// that keeps a signature can never stall the wallet.
    pub(crate) async fn reap_pending(&self) {
        let entries: Vec<Arc<KeyEntry>> = self
            .keys
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        // The wallet's own transactions, then the relayer's (on-chain keys).
        for relayed in [false, true] {
            let sender = match relayed {
                false => self.wallet.address(),
                true => match self.onchain.as_ref().and_then(|o| o.relayer()) {
                    Some(relayer) => relayer,
                    None => continue,
                },
            };
            let mine = |p: &Pending| p.relayed == relayed;
            let shared = !relayed && self.store.shared();
            if !shared
                && !entries
                    .iter()
                    .any(|e| lock(&e.state).pending.iter().any(mine))
            {
                continue;
            }
            let count = |block: &'static str| async move {
                let v = self
                    .upstream
                    .forward("eth_getTransactionCount", &json!([sender, block]))
                    .await
                    .ok()?;
                u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
            };
            let (Some(mined), Some(known)) = (count("latest").await, count("pending").await) else {
                continue;
            };
            if shared {
                // Pending nonces live in the database: every replica's reaper runs this step
                // under the nonce row's lock, so they agree.
                let reaped = self
                    .store
                    .reap_nonces(
                        sender,
                        self.upstream.chain_id(),
                        mined,
                        known,
                        ABANDONED_AFTER_SECS as u64,
                    )
                    .await;
                if let Err(e) = reaped {
                    tracing::warn!(target: "valet::gateway", error = %e, "reaping pending nonces failed");
                }
                continue;
            }
            let stale = Timestamp::now() - jiff::SignedDuration::from_secs(ABANDONED_AFTER_SECS);
            let mut abandoned = false;
            for e in &entries {
                lock(&e.state).pending.retain(|p| {
                    if !mine(p) {
                        return true;
                    }
                    let unknown = p.nonce >= known && p.signed_at < stale;
                    abandoned |= unknown;
                    p.nonce >= mined && !unknown
                });
            }
            if abandoned {
                self.sender_nonces(relayed).resync().await;
            }
        }
    }
}

enum Fill {
    Simulation(String),
    Upstream(valet_chain::Error),
}

/// An audit record of an agent's request.
fn agent_record(
    rid: &str,
    at: Timestamp,
    key_id: Option<&str>,
    action: &str,
    ip: Option<IpAddr>,
    decision: &str,
    detail: Value,
) -> AuditRecord {
    AuditRecord {
        at,
        request_id: rid.to_string(),
        actor: "agent".into(),
        key_id: key_id.map(str::to_string),
        action: action.to_string(),
        decision: Some(decision.into()),
        violations: vec![],
        detail,
        client_ip: ip.map(|ip| ip.to_string()),
        tx_hash: None,
    }
}

/// Replaces NUL characters in every string of an audit detail.
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

/// Locks a mutex, recovering from poisoning (a panic elsewhere never unlocks a key for good,
/// and never leaves it half-updated: every critical section is straight-line).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn asset_name(asset: valet_policy::Asset) -> String {
    match asset {
        valet_policy::Asset::Native => "native".into(),
        valet_policy::Asset::Token(t) => t.to_string(),
    }
}

/// The EIP-712 object among the params of a typed-data request.
fn typed_data_param(params: &Value) -> Option<alloy::dyn_abi::TypedData> {
    let items = params.as_array()?;
    items.iter().find_map(|v| match v {
        Value::String(s) if !s.starts_with("0x") => serde_json::from_str(s).ok(),
        Value::Object(_) => serde_json::from_value(v.clone()).ok(),
        _ => None,
    })
}

/// A decoded summary of a request for the audit log and the live feed.
fn summarize(request: &Request) -> Value {
    match request {
        Request::Transaction { tx, .. } => json!({
            "to": tx.to,
            "value": tx.value.to_string(),
            "selector": tx.data.get(..4).map(hex::encode_prefixed),
            "gas": tx.gas,
            "max_fee_per_gas": tx.max_fee_per_gas.map(|f| f.to_string()),
        }),
        Request::TypedData(d) => json!({
            "primary_type": d.primary_type,
            "domain": d.domain_name,
            "verifying_contract": d.verifying_contract,
            "spender": d.spender,
        }),
        Request::PersonalSign(m) => json!({ "bytes": m.len() }),
        _ => json!({}),
    }
}
