//! The request line: one agent request as a short sequence of named stages, each a function
//! `ARCHITECTURE.md`'s flow diagram names:
//!
//! [`authenticate`](Gateway::authenticate) → [`normalize`](Gateway::normalize) →
//! [`fill_request`](Gateway::fill_request) → [`decide_and_reserve`](Gateway::decide_and_reserve)
//! → [`sign_stage`](Gateway::sign_stage) → [`commit_stage`](Gateway::commit_stage) →
//! [`answer`](Gateway::answer).
//!
//! Every stage either hands the next one what it needs or ends the request with an audited
//! reply; nothing leaves the process before the commit stage made the reservation and the
//! audit entry durable.

use super::{
    Caller, Fill, Gateway, KeyEntry, SharedUsage, SignFailure, Signed, agent_record, lock,
    summarize,
};
use crate::wire::{AuthFailure, RpcError};
use alloy::dyn_abi::TypedData;
use alloy::primitives::hex;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::{net::IpAddr, sync::Arc};
use valet_keys::PresentedKey;
use valet_policy::{Context, Decision, Request, Spend, Violation, ViolationCode, evaluate};
use valet_store::{AuditRecord, Batch, KeyTruth, NonceClaim, Reservation};

/// Who is asking, for what, and under which id: what every audit record of one request
/// repeats.
pub(super) struct Turn<'a> {
    pub(super) rid: String,
    pub(super) now: Timestamp,
    pub(super) method: &'a str,
    pub(super) ip: Option<IpAddr>,
    pub(super) key_id: Option<String>,
}

impl Turn<'_> {
    /// An audit record of this request.
    fn record(&self, decision: &str, detail: Value) -> AuditRecord {
        agent_record(
            &self.rid,
            self.now,
            self.key_id.as_deref(),
            self.method,
            self.ip,
            decision,
            detail,
        )
    }
}

/// A normalized request, with the EIP-712 object a typed-data request will sign.
pub(super) struct Normalized {
    request: Request,
    typed: Option<TypedData>,
}

impl Gateway {
    /// One JSON-RPC request object, stage by stage.
    pub(super) async fn dispatch(
        &self,
        caller: &Caller<'_>,
        req: &Value,
    ) -> Result<Value, RpcError> {
        let (method, params) = envelope(req)?;
        let mut turn = Turn {
            rid: super::request_id(),
            now: Timestamp::now(),
            method,
            ip: caller.ip,
            key_id: None,
        };
        let entry = self.authenticate(caller.token, &mut turn).await?;
        let normalized = self.normalize(&entry, params, &turn).await?;
        let request = self.fill_request(&entry, normalized.request, &turn).await?;
        let (spend, nonce) = self.decide_and_reserve(&entry, &request, &turn).await?;
        let signed = self
            .sign_stage(&entry, &request, &spend, nonce, &turn)
            .await?;
        let signed = self
            .commit_stage(&entry, &request, &spend, signed, &turn)
            .await?;
        self.answer(
            &entry,
            request,
            normalized.typed,
            params,
            signed,
            spend,
            &turn,
        )
        .await
    }

    /// The agent key: known, matching secret, and — from the truth, before anything else —
    /// not revoked, expired or suspended, from an allowed address; then the anomaly screen.
    async fn authenticate(
        &self,
        token: Option<&str>,
        turn: &mut Turn<'_>,
    ) -> Result<Arc<KeyEntry>, RpcError> {
        let presented = token.and_then(PresentedKey::parse);
        let entry = match &presented {
            Some(p) => self
                .key(&p.id)
                .await
                .map_err(|e| self.internal(&turn.rid, e))?,
            None => None,
        };
        let entry = match (entry, &presented) {
            (Some(entry), Some(p)) if p.matches(&entry.record.secret_hash) => entry,
            _ => return Err(self.refuse_unknown(turn).await),
        };
        turn.key_id = Some(entry.record.id.clone());
        if self.store.shared() {
            // Another replica (or the command line) may have revoked, suspended or resumed
            // it: the store says, before anything is decided, estimated or forwarded.
            self.refresh_from_store(&entry)
                .await
                .map_err(|e| self.internal(&turn.rid, e))?;
        } else {
            self.recheck_suspension(&entry).await;
        }
        if let Some(reason) = self.refusal(&entry, turn) {
            return Err(self.refuse(turn, reason).await);
        }
        // Anomalies (new address, rate spike); under `on_anomaly = "suspend"` this request is
        // the first one refused.
        if self.screen(&entry, turn.ip, turn.now, &turn.rid).await {
            return Err(self.refuse(turn, AuthFailure::Suspended).await);
        }
        Ok(entry)
    }

    /// Why the cached key is refused now, if it is.
    fn refusal(&self, entry: &KeyEntry, turn: &Turn<'_>) -> Option<AuthFailure> {
        let ip_allow = &entry.policy.ip_allow;
        if lock(&entry.state).revoked {
            Some(AuthFailure::Revoked)
        } else if turn.now >= entry.record.expires_at {
            Some(AuthFailure::Expired)
        } else if entry.watch.is_suspended() {
            Some(AuthFailure::Suspended)
        } else if !ip_allow.is_empty()
            && !turn
                .ip
                .is_some_and(|ip| ip_allow.iter().any(|n| n.contains(&ip)))
        {
            Some(AuthFailure::IpNotAllowed)
        } else {
            None
        }
    }

    /// Reads the key's revocation and suspension from the store into the cache.
    async fn refresh_from_store(&self, entry: &KeyEntry) -> Result<(), valet_store::Error> {
        match self.store.key(&entry.record.id).await? {
            Some(k) => {
                if k.revoked_at.is_some() {
                    lock(&entry.state).revoked = true;
                }
                entry.watch.set_suspended(k.suspended_at.is_some());
            }
            None => lock(&entry.state).revoked = true,
        }
        Ok(())
    }

    /// A request without a valid key: audited within the per-address budget, answered 4100.
    async fn refuse_unknown(&self, turn: &Turn<'_>) -> RpcError {
        if let Some(unaudited) = self.unknown_key_budget(turn.ip, turn.now) {
            let mut detail = json!({ "unauthorized": AuthFailure::Unknown.as_str() });
            if unaudited > 0 {
                detail["unaudited_before"] = json!(unaudited);
            }
            if let Err(e) = self.audit_one(&turn.rid, turn.record("deny", detail)).await {
                return e;
            }
        }
        RpcError::Unauthorized(AuthFailure::Unknown)
    }

    /// Audits a refused key and answers 4100 (or an internal error if it cannot be audited).
    async fn refuse(&self, turn: &Turn<'_>, reason: AuthFailure) -> RpcError {
        let detail = json!({ "unauthorized": reason.as_str() });
        let mut record = turn.record("deny", detail);
        record.at = Timestamp::now();
        match self.audit_one(&turn.rid, record).await {
            Ok(()) => RpcError::Unauthorized(reason),
            Err(e) => e,
        }
    }

    /// JSON-RPC → [`Request`]; what no key may do here is refused before any estimate.
    async fn normalize(
        &self,
        entry: &KeyEntry,
        params: &Value,
        turn: &Turn<'_>,
    ) -> Result<Normalized, RpcError> {
        let request = match Request::from_json_rpc(turn.method, params, self.wallet.address()) {
            Ok(Request::Unsupported) => {
                self.audit_error(turn, "method not found").await?;
                return Err(RpcError::MethodNotFound(turn.method.to_string()));
            }
            Ok(r) => r,
            Err(e) => {
                self.audit_error(turn, &e.0).await?;
                return Err(RpcError::InvalidParams(e.0));
            }
        };
        // An on-chain key's transactions are relayed `executeWithKey` calls: there is no
        // wallet-signed transaction to hand back.
        if entry.record.mode == valet_store::KeyMode::Onchain
            && matches!(request, Request::Transaction { send: false, .. })
        {
            let why = "an on-chain key's transactions are relayed through the account contract: \
                       use eth_sendTransaction";
            let violations = vec![Violation::new(ViolationCode::MethodNotAllowed, why)];
            self.refuse_if_refused_in_store(entry, turn).await?;
            return Err(self.deny(turn, summarize(&request), violations).await);
        }
        // The EIP-712 object the wallet will hash must parse before anything is reserved.
        let typed = match &request {
            Request::TypedData(_) => match super::typed_data_param(params) {
                Some(data) => Some(data),
                None => {
                    let why = "typed data does not parse as EIP-712";
                    self.audit_error(turn, why).await?;
                    return Err(RpcError::InvalidParams(why.into()));
                }
            },
            _ => None,
        };
        Ok(Normalized { request, typed })
    }

    /// A transaction's missing chain id, gas and fees, from the node.
    async fn fill_request(
        &self,
        entry: &KeyEntry,
        request: Request,
        turn: &Turn<'_>,
    ) -> Result<Request, RpcError> {
        let Request::Transaction { send, tx } = request else {
            return Ok(request);
        };
        match self.fill(tx, send).await {
            Ok(tx) => Ok(Request::Transaction { send, tx }),
            Err(Fill::Simulation(why)) => {
                // The chain may refuse it because the key was revoked on chain meanwhile.
                self.refuse_if_refused_in_store(entry, turn).await?;
                Err(RpcError::Denied {
                    violations: vec![Violation::new(ViolationCode::SimulationFailed, why)],
                    request_id: turn.rid.clone(),
                })
            }
            Err(Fill::Upstream(e)) => {
                let err = self.upstream_error(&turn.rid, e);
                self.audit_error(turn, "upstream_error").await?;
                Err(err)
            }
        }
    }

    /// The policy decides, and an allowed request's spend is reserved in the same critical
    /// section: the key's lock in memory (one process, SQLite), or the key's row lock in the
    /// database (a shared store: every replica queues for it, and an allowed transaction's
    /// nonce is taken there too). A denial is audited here.
    async fn decide_and_reserve(
        &self,
        entry: &KeyEntry,
        request: &Request,
        turn: &Turn<'_>,
    ) -> Result<(Spend, Option<u64>), RpcError> {
        let (decision, nonce) = match self.store.shared() {
            true => self.decide_in_store(entry, request, turn).await?,
            false => (self.decide_in_memory(entry, request, turn), None),
        };
        let violations = match decision {
            Decision::Allow(spend) => return Ok((spend, nonce)),
            Decision::Deny(violations) => violations,
        };
        self.refuse_if_refused_in_store(entry, turn).await?;
        let denied = self
            .deny(turn, summarize(request), violations.clone())
            .await;
        self.screen_denial(entry, &violations, turn.ip, turn.now, &turn.rid)
            .await;
        if violations
            .iter()
            .any(|v| v.code == ViolationCode::RateLimited)
            && matches!(denied, RpcError::Denied { .. })
        {
            let window = entry.policy.limits.rate.map_or(1, |r| r.window);
            return Err(RpcError::RateLimited {
                retry_after_ms: window.saturating_mul(1000),
            });
        }
        Err(denied)
    }

    /// The evaluation context of a request at `now`.
    fn context(&self, entry: &KeyEntry, turn: &Turn<'_>, now: Timestamp) -> Context {
        Context {
            wallet: self.wallet.address(),
            chain_id: self.upstream.chain_id(),
            now,
            issued_at: entry.record.created_at,
            client_ip: turn.ip,
            revoked: false,
        }
    }

    /// One process: decide from the key's in-memory ledger under its lock.
    fn decide_in_memory(&self, entry: &KeyEntry, request: &Request, turn: &Turn<'_>) -> Decision {
        let now = turn.now;
        let ctx = self.context(entry, turn, now);
        let mut state = lock(&entry.state);
        let pending = state.pending.len() as u32;
        state.ledger.set_pending(pending);
        let decision = evaluate(&entry.policy, request, &state.ledger, &ctx);
        state.ledger.record_request(now);
        state.last_used = Some(now);
        state.since_prune += 1;
        if state.since_prune >= 1024 {
            state.since_prune = 0;
            let horizon = jiff::SignedDuration::from_secs(entry.policy.horizon() as i64);
            state
                .ledger
                .prune(now.checked_sub(horizon).unwrap_or(Timestamp::MIN));
        }
        if let Decision::Allow(spend) = &decision {
            state.ledger.reserve(spend, now);
        }
        decision
    }

    /// A shared store: decide inside the database transaction that holds the key's row lock,
    /// from the usage, revocation, suspension and clock read there; the spend is reserved in
    /// that transaction, with the wallet's nonce of an allowed transaction. A key refused in
    /// the truth is answered 4100, whatever the policy says.
    async fn decide_in_store(
        &self,
        entry: &KeyEntry,
        request: &Request,
        turn: &Turn<'_>,
    ) -> Result<(Decision, Option<u64>), RpcError> {
        let policy = &entry.policy;
        let claim = match request {
            Request::Transaction { .. } if entry.record.mode == valet_store::KeyMode::Gateway => {
                let floor = self
                    .nonce_floor()
                    .await
                    .map_err(|e| self.upstream_error(&turn.rid, e))?
                    .unwrap_or(0);
                Some(NonceClaim {
                    sender: self.wallet.address(),
                    chain_id: self.upstream.chain_id(),
                    floor,
                })
            }
            _ => None,
        };
        let windows = spend_windows(policy);
        let mut decision = None;
        let truth = self
            .store
            .decide(
                &entry.record.id,
                &turn.rid,
                &windows,
                policy.limits.rate.map(|r| r.window),
                claim,
                &mut |truth| {
                    if truth.refused() {
                        return None;
                    }
                    let usage = usage_of(truth, &windows);
                    let ctx = self.context(entry, turn, truth.now);
                    let d = evaluate(policy, request, &usage, &ctx);
                    let spend = match &d {
                        Decision::Allow(spend) => Some(spend.clone()),
                        Decision::Deny(_) => None,
                    };
                    decision = Some((d, usage));
                    spend
                },
            )
            .await
            .map_err(|e| self.internal(&turn.rid, e))?;
        if claim.is_some_and(|c| c.floor > 0) && truth.as_ref().is_none_or(|t| t.nonce.is_none()) {
            self.floor_unused();
        }
        let Some(truth) = truth else {
            lock(&entry.state).revoked = true;
            return Err(self.refuse(turn, AuthFailure::Revoked).await);
        };
        if let Some(reason) = truth_refusal(&truth) {
            match reason {
                AuthFailure::Revoked => lock(&entry.state).revoked = true,
                _ => entry.watch.set_suspended(truth.suspended),
            }
            return Err(self.refuse(turn, reason).await);
        }
        let Some((decision, usage)) = decision else {
            return Err(self.internal(&turn.rid, "the store decided nothing"));
        };
        // What valet_getPermissions shows is what this decision saw, plus its own request.
        let mut usage = usage;
        if let Decision::Allow(spend) = &decision {
            usage.add(spend);
        }
        usage.requests += 1;
        let mut state = lock(&entry.state);
        state.shared = Some(usage);
        state.last_used = Some(turn.now);
        Ok((decision, truth.nonce))
    }

    /// An allowed transaction is signed now, inside this process, so that its hash and nonce
    /// go into the same durable entry as its reservation. On failure the reservation is
    /// released.
    async fn sign_stage(
        &self,
        entry: &KeyEntry,
        request: &Request,
        spend: &Spend,
        nonce: Option<u64>,
        turn: &Turn<'_>,
    ) -> Result<Option<Signed>, RpcError> {
        let Request::Transaction { tx, send } = request else {
            return Ok(None);
        };
        let failure = match self.sign(entry, tx, turn.now, *send, nonce).await {
            Ok(signed) => return Ok(Some(signed)),
            Err(failure) => failure,
        };
        // Nothing was signed (no nonce, say): nothing stays reserved.
        lock(&entry.state).ledger.release(spend, turn.now);
        let releases = match self.store.shared() {
            true => vec![turn.rid.clone()],
            false => vec![],
        };
        Err(match failure {
            SignFailure::Internal(e) => {
                let err = self.internal(&turn.rid, &e);
                let mut record = turn.record("error", json!({ "error": e }));
                record.at = Timestamp::now();
                let batch = Batch {
                    releases,
                    audit: vec![record],
                    ..Batch::default()
                };
                match self.audit(batch).await {
                    Ok(()) => err,
                    Err(e) => self.internal(&turn.rid, e),
                }
            }
            SignFailure::Refused(why) => {
                let violations = vec![Violation::new(ViolationCode::SimulationFailed, why)];
                match self.refuse_if_refused_in_store(entry, turn).await {
                    Err(refused) => {
                        // Refused with 4100: a shared store's reservation still goes back.
                        if !releases.is_empty() {
                            let batch = Batch {
                                releases,
                                ..Batch::default()
                            };
                            if let Err(e) = self.audit(batch).await {
                                return Err(self.internal(&turn.rid, e));
                            }
                        }
                        refused
                    }
                    Ok(()) => {
                        self.deny_releasing(turn, summarize(request), violations, releases)
                            .await
                    }
                }
            }
        })
    }

    /// The allowed request's audit entry (with the transaction's hash and nonce) and, in one
    /// process, its reservation become durable in one group commit. A revocation or
    /// suspension committed before it, by any process, wins: the signature is dropped.
    async fn commit_stage(
        &self,
        entry: &KeyEntry,
        request: &Request,
        spend: &Spend,
        signed: Option<Signed>,
        turn: &Turn<'_>,
    ) -> Result<Option<Signed>, RpcError> {
        let key_id = &entry.record.id;
        let mut record = turn.record("allow", summarize(request));
        if let Some(signed) = &signed {
            record.tx_hash = Some(signed.hash);
            record.detail["nonce"] = json!(signed.nonce);
        }
        // On a shared store the reservation was made with the decision.
        let reservations = match self.store.shared() {
            true => vec![],
            false => spend
                .iter()
                .map(|(asset, amount)| Reservation {
                    key_id: key_id.clone(),
                    request_id: turn.rid.clone(),
                    at: turn.now,
                    asset: *asset,
                    amount: *amount,
                })
                .collect(),
        };
        let batch = Batch {
            reservations,
            audit: vec![record],
            ..Batch::default()
        };
        let revoked_in_store = self
            .commit(batch, Some(key_id))
            .await
            .map_err(|e| self.internal(&turn.rid, e))?;
        entry.watch.add_spend(spend);
        let refused = if revoked_in_store {
            Some(self.refusal_in_store(entry).await)
        } else if lock(&entry.state).revoked {
            Some(AuthFailure::Revoked)
        } else if entry.watch.is_suspended() {
            Some(AuthFailure::Suspended)
        } else {
            None
        };
        match refused {
            // A broadcast's leased nonce goes back unused; a returned signature's nonce stays
            // consumed until the reaper sees it abandoned.
            Some(reason) => {
                drop(signed);
                Err(self.refuse(turn, reason).await)
            }
            None => Ok(signed),
        }
    }

    /// The reply: a local answer, a forwarded read, the signed transaction (returned or
    /// broadcast), or a signature over typed data or a message.
    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        entry: &KeyEntry,
        request: Request,
        typed: Option<TypedData>,
        params: &Value,
        signed: Option<Signed>,
        spend: Spend,
        turn: &Turn<'_>,
    ) -> Result<Value, RpcError> {
        let rid = &turn.rid;
        let signature = |sig: Result<alloy::primitives::Signature, valet_keys::Error>| {
            sig.map(|s| json!(hex::encode_prefixed(s.as_bytes())))
                .map_err(|e| self.internal(rid, e))
        };
        match request {
            Request::Local(m) => {
                let mut v = self.local(m, entry, turn.now);
                if m == "valet_getPermissions" {
                    v["onchain"] = self.onchain_state(&entry.record, &entry.policy).await;
                }
                Ok(v)
            }
            Request::Read(m) => self
                .upstream
                .forward(m, params)
                .await
                .map_err(|e| self.upstream_error(rid, e)),
            Request::Transaction { send, .. } => {
                let Some(signed) = signed else {
                    return Err(self.internal(rid, "transaction was not signed"));
                };
                self.release(entry, rid, turn.now, send, signed, spend, turn.ip)
                    .await
            }
            Request::TypedData(_) => match typed {
                Some(data) => signature(self.wallet.sign_typed_data(&data)),
                None => Err(self.internal(rid, "typed data was not parsed")),
            },
            Request::PersonalSign(message) => signature(self.wallet.sign_message(&message)),
            // Denied above by every policy; never reached with an allow.
            Request::EthSign | Request::SendRawTransaction | Request::Unsupported => {
                Err(RpcError::MethodNotFound(turn.method.to_string()))
            }
        }
    }

    /// Before any 4001: the key's revocation and suspension are read from the store (another
    /// process, or the command line writing to the store, may have changed them), and a key
    /// refused there is answered 4100 instead: a revoked key never gets a 4001. Only denials
    /// pay this read; an allowed request is checked when its entry commits.
    async fn refuse_if_refused_in_store(
        &self,
        entry: &KeyEntry,
        turn: &Turn<'_>,
    ) -> Result<(), RpcError> {
        let reason = match self.store.key(&entry.record.id).await {
            Ok(None) => AuthFailure::Revoked,
            Ok(Some(k)) if k.revoked_at.is_some() => AuthFailure::Revoked,
            Ok(Some(k)) if k.suspended_at.is_some() => AuthFailure::Suspended,
            Ok(Some(_)) => return Ok(()),
            Err(e) => return Err(self.internal(&turn.rid, e)),
        };
        match reason {
            AuthFailure::Revoked => lock(&entry.state).revoked = true,
            _ => entry.watch.set_suspended(true),
        }
        Err(self.refuse(turn, reason).await)
    }

    /// Audits a denial and returns its 4001 (or an internal error if it cannot be audited).
    async fn deny(&self, turn: &Turn<'_>, summary: Value, violations: Vec<Violation>) -> RpcError {
        self.deny_releasing(turn, summary, violations, vec![]).await
    }

    /// [`deny`](Self::deny), releasing the reservations of `releases` in the same commit.
    async fn deny_releasing(
        &self,
        turn: &Turn<'_>,
        summary: Value,
        violations: Vec<Violation>,
        releases: Vec<String>,
    ) -> RpcError {
        let mut record = turn.record("deny", summary);
        record.violations = violations
            .iter()
            .map(|v| v.code.as_str().to_string())
            .collect();
        record.detail["messages"] =
            json!(violations.iter().map(|v| &v.message).collect::<Vec<_>>());
        let batch = Batch {
            releases,
            audit: vec![record],
            ..Batch::default()
        };
        match self.audit(batch).await {
            Ok(()) => RpcError::Denied {
                violations,
                request_id: turn.rid.clone(),
            },
            Err(e) => self.internal(&turn.rid, e),
        }
    }

    /// Audits a request that ended in an error before any decision.
    async fn audit_error(&self, turn: &Turn<'_>, error: &str) -> Result<(), RpcError> {
        let record = turn.record("error", json!({ "error": error }));
        self.audit_one(&turn.rid, record).await
    }
}

/// The method and params of a request object, checked.
fn envelope(req: &Value) -> Result<(&str, &Value), RpcError> {
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return Err(RpcError::InvalidRequest("`method` must be a string".into()));
    };
    if method.is_empty() || method.len() > 64 || method.chars().any(char::is_control) {
        return Err(RpcError::InvalidRequest(
            "`method` is not a method name".into(),
        ));
    }
    if req.get("jsonrpc").is_some_and(|v| v != "2.0") {
        return Err(RpcError::InvalidRequest("`jsonrpc` must be \"2.0\"".into()));
    }
    Ok((method, req.get("params").unwrap_or(&Value::Null)))
}

/// Why the store's truth refuses a key, if it does.
fn truth_refusal(truth: &KeyTruth) -> Option<AuthFailure> {
    if truth.revoked {
        Some(AuthFailure::Revoked)
    } else if truth.now >= truth.expires_at {
        Some(AuthFailure::Expired)
    } else if truth.suspended {
        Some(AuthFailure::Suspended)
    } else {
        None
    }
}

/// The distinct windows of the policy's spend limits.
fn spend_windows(policy: &valet_policy::Policy) -> Vec<u64> {
    let mut windows: Vec<u64> = policy.limits.spend.iter().map(|l| l.window).collect();
    windows.sort_unstable();
    windows.dedup();
    windows
}

/// The usage the evaluator reads on a shared store: the totals the store summed per window.
fn usage_of(truth: &KeyTruth, windows: &[u64]) -> SharedUsage {
    SharedUsage {
        now: truth.now,
        windows: windows.to_vec(),
        spent: truth.spent.clone(),
        requests: truth.requests,
        pending: truth.pending,
    }
}
