//! The owner's API, `/api/v1` with the admin token: keys, revocation, the audit log and the
//! live feed. Key issuance is shared with the command line through [`issue`].

use crate::gateway::{Gateway, lock};
use axum::{
    Json,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use valet_keys::AgentKey;
use valet_policy::{Policy, Profile};
use valet_store::{AuditFilter, AuditRecord, KeyMode, KeyRecord, Store};

/// A key just issued: the token is in here once and nowhere else.
pub struct IssuedKey {
    /// The stored record.
    pub record: KeyRecord,
    /// The agent key; show it once.
    pub agent_key: AgentKey,
    /// Whether the policy is `full-access` (the caller warns).
    pub full_access: bool,
    /// An on-chain key's grant transaction.
    pub grant_tx: Option<alloy::primitives::B256>,
}

impl IssuedKey {
    /// The answer to an issue request: `{id, agent_key, wallet, expires_at, warning}`, plus
    /// `mode`, `session_signer` and `grant_tx` for an on-chain key.
    pub fn to_json(&self) -> Value {
        let r = &self.record;
        let mut v = json!({
            "id": r.id,
            "agent_key": self.agent_key.token(),
            "wallet": r.wallet,
            "expires_at": r.expires_at.to_string(),
            "warning": self.full_access.then_some("full-access keys are for development and testing"),
        });
        if let Some(session) = r.session_signer {
            v["mode"] = json!(r.mode.as_str());
            v["session_signer"] = json!(session);
            v["grant_tx"] = json!(self.grant_tx);
        }
        v
    }
}

/// Why a key could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The policy file is not valid.
    #[error("policy: {0}")]
    Policy(#[from] valet_policy::PolicyError),
    /// The policy has already expired.
    #[error("the policy's expiry {0} is in the past")]
    Expired(Timestamp),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] valet_store::Error),
    /// An on-chain key could not be granted.
    #[error("on-chain grant: {0}")]
    Onchain(#[from] crate::onchain::OnchainError),
    /// An on-chain key was asked for without on-chain mode.
    #[error("on-chain mode is not available here: {0}")]
    NoOnchain(&'static str),
}

pub use crate::onchain::OwnerChain;

/// Issues a key for `wallet` under `policy_toml` at `now`: the policy is checked, the key is
/// stored with its secret's hash, and the issue is audited in the same transaction. An
/// on-chain key's session signer is created and granted on chain first (through `chain`); if
/// the store then fails, the grant is revoked again.
pub async fn issue(
    store: &dyn Store,
    wallet: alloy::primitives::Address,
    name: Option<&str>,
    policy_toml: &str,
    mode: KeyMode,
    now: Timestamp,
    chain: Option<OwnerChain<'_>>,
) -> Result<IssuedKey, IssueError> {
    let policy = Policy::from_toml(policy_toml)?;
    let expires_at = policy.expires_at(now);
    if expires_at <= now {
        return Err(IssueError::Expired(expires_at));
    }
    let agent_key = AgentKey::generate();
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| policy.name.clone());
    let mut record = KeyRecord {
        id: agent_key.id().to_string(),
        name: name.clone(),
        wallet,
        mode,
        policy_toml: policy_toml.to_string(),
        secret_hash: agent_key.secret_hash(),
        created_at: now,
        expires_at,
        revoked_at: None,
        suspended_at: None,
        session_signer: None,
    };
    let mut detail = json!({
        "name": name,
        "profile": policy.profile.as_str(),
        "mode": mode.as_str(),
        "expires_at": expires_at.to_string(),
    });
    let mut grant_tx = None;
    if mode == KeyMode::Onchain {
        let owner = chain.ok_or(IssueError::NoOnchain(
            "the wallet's passphrase and node are needed to grant a session key",
        ))?;
        let (session, tx) = owner.grant(&record.id, &policy, expires_at).await?;
        record.session_signer = Some(session);
        detail["session_signer"] = json!(session);
        detail["grant_tx"] = json!(tx);
        grant_tx = Some(tx);
    }
    let mut audit = admin_record(now, "key.issue", Some(&record.id), detail);
    audit.tx_hash = grant_tx;
    if let Err(e) = store.insert_key(&record, audit).await {
        if let (Some(owner), Some(session)) = (chain, record.session_signer)
            && let Err(revoke) = owner.revoke(session).await
        {
            tracing::error!(target: "valet::admin", key = %record.id, error = %revoke,
                "the key was granted on chain but not stored, and revoking the grant failed");
        }
        return Err(e.into());
    }
    Ok(IssuedKey {
        record,
        agent_key,
        full_access: policy.profile == Profile::FullAccess,
        grant_tx,
    })
}

/// Revokes an on-chain key's session signer on chain, audits the transaction, and reports
/// `{tx}` or `{error}` (`null` for a gateway key). The off-chain revocation comes first and
/// stands either way.
pub async fn revoke_onchain(store: &dyn Store, owner: OwnerChain<'_>, record: &KeyRecord) -> Value {
    let (KeyMode::Onchain, Some(session)) = (record.mode, record.session_signer) else {
        return Value::Null;
    };
    let result = owner.revoke(session).await;
    audit_onchain(store, "key.revoke.onchain", Some(&record.id), result).await
}

/// The kill switch on chain: one transaction that invalidates every session key (the
/// account's epoch), sent when any on-chain key was ever issued; reported as
/// [`revoke_onchain`].
pub async fn revoke_all_onchain(store: &dyn Store, owner: OwnerChain<'_>) -> Value {
    match store.keys().await {
        Ok(keys) if !keys.iter().any(|k| k.mode == KeyMode::Onchain) => return Value::Null,
        Ok(_) => {}
        Err(e) => return json!({ "error": e.to_string() }),
    }
    let result = owner.revoke_all().await;
    audit_onchain(store, "key.revoke_all.onchain", None, result).await
}

async fn audit_onchain(
    store: &dyn Store,
    action: &str,
    key_id: Option<&str>,
    result: Result<alloy::primitives::B256, crate::onchain::OnchainError>,
) -> Value {
    let (detail, tx) = match &result {
        Ok(tx) => (json!({ "tx": tx }), Some(*tx)),
        Err(e) => (json!({ "error": e.to_string() }), None),
    };
    let mut record = admin_record(Timestamp::now(), action, key_id, detail.clone());
    record.tx_hash = tx;
    record.decision = Some(if tx.is_some() { "allow" } else { "error" }.into());
    if let Err(e) = store
        .append(valet_store::Batch {
            audit: vec![record],
            ..Default::default()
        })
        .await
    {
        tracing::error!(target: "valet::admin", error = %e, action, "auditing an on-chain revocation failed");
    }
    detail
}

/// An audit record of an owner's action.
pub fn admin_record(
    now: Timestamp,
    action: &str,
    key_id: Option<&str>,
    detail: Value,
) -> AuditRecord {
    AuditRecord {
        at: now,
        request_id: format!("a{:016x}", rand::random::<u64>()),
        actor: "admin".into(),
        key_id: key_id.map(str::to_string),
        action: action.into(),
        decision: None,
        violations: vec![],
        detail,
        client_ip: None,
        tx_hash: None,
    }
}

/// A key as the API and `valet key list --json` show it. Its `status` is `revoked`,
/// `expired`, `suspended` or `active`, in that precedence.
pub fn key_json(record: &KeyRecord, now: Timestamp) -> Value {
    let profile = Policy::from_toml(&record.policy_toml)
        .map(|p| p.profile.as_str())
        .unwrap_or("invalid");
    let status = if record.revoked_at.is_some() {
        "revoked"
    } else if now >= record.expires_at {
        "expired"
    } else if record.suspended_at.is_some() {
        "suspended"
    } else {
        "active"
    };
    json!({
        "id": record.id,
        "name": record.name,
        "wallet": record.wallet,
        "mode": record.mode.as_str(),
        "session_signer": record.session_signer,
        "profile": profile,
        "status": status,
        "created_at": record.created_at.to_string(),
        "expires_at": record.expires_at.to_string(),
        "revoked_at": record.revoked_at.map(|t| t.to_string()),
        "suspended_at": record.suspended_at.map(|t| t.to_string()),
    })
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(target: "valet::admin", error = %e, "admin request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (see the server log)",
    )
}

/// Refuses any request without the admin token (compared in constant time), and
/// state-changing requests that look forged by another site ([`crate::dashboard::forgery`]).
pub(crate) async fn require_admin(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = presented
        .as_bytes()
        .ct_eq(gateway.admin_token.as_bytes())
        .into();
    if !ok || gateway.admin_token.is_empty() {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
    }
    if let Some(why) = crate::dashboard::forgery(request.method(), &headers, gateway.trust_proxy) {
        return error(StatusCode::FORBIDDEN, why);
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    name: Option<String>,
    /// The policy as TOML text.
    policy_toml: Option<String>,
    /// The policy as a JSON object with the TOML file's keys.
    policy: Option<Value>,
    mode: Option<String>,
}

pub(crate) async fn issue_key(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let is_toml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("toml"));
    let (name, toml_text, mode) = if is_toml {
        (None, body, None)
    } else {
        let parsed: IssueBody = match serde_json::from_str(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        };
        let text = match (parsed.policy_toml, parsed.policy) {
            (Some(t), None) => t,
            (None, Some(v)) => match json_to_toml(&v) {
                Ok(t) => t,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "give exactly one of `policy_toml` or `policy`",
                );
            }
        };
        (parsed.name, text, parsed.mode)
    };
    let Some(mode) = KeyMode::parse(mode.as_deref().unwrap_or("gateway")) else {
        return error(StatusCode::BAD_REQUEST, "`mode` must be gateway or onchain");
    };
    let now = Timestamp::now();
    let sender = gateway.owner_sender();
    let chain = gateway.owner_chain(&sender);
    match issue(
        gateway.store.as_ref(),
        gateway.wallet(),
        name.as_deref(),
        &toml_text,
        mode,
        now,
        chain,
    )
    .await
    {
        Ok(k) => {
            gateway.publish(&json!({ "event": "key.issue", "key": key_json(&k.record, now) }));
            (StatusCode::CREATED, Json(k.to_json())).into_response()
        }
        Err(IssueError::Store(e)) => internal(e),
        Err(e @ IssueError::Onchain(crate::onchain::OnchainError::Chain(_))) => {
            error(StatusCode::BAD_GATEWAY, e)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// Converts a JSON policy object to TOML text so that both forms take the same checks.
fn json_to_toml(v: &Value) -> Result<String, String> {
    let value: toml::Value =
        serde_json::from_value(v.clone()).map_err(|e| format!("policy: {e}"))?;
    toml::to_string(&value).map_err(|e| format!("policy: {e}"))
}

pub(crate) async fn list_keys(State(gateway): State<Arc<Gateway>>) -> Response {
    let now = Timestamp::now();
    match gateway.store.keys().await {
        Ok(keys) => Json(Value::Array(
            keys.iter().map(|k| key_json(k, now)).collect(),
        ))
        .into_response(),
        Err(e) => internal(e),
    }
}

pub(crate) async fn show_key(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Response {
    let now = Timestamp::now();
    match gateway.key(&id).await {
        Ok(Some(entry)) => {
            // The cached record does not follow revocation and suspension: the store does.
            let record = match gateway.store.key(&id).await {
                Ok(Some(record)) => record,
                Ok(None) => entry.record.clone(),
                Err(e) => return internal(e),
            };
            let mut v = key_json(&record, now);
            v["permissions"] = gateway.permissions(&entry, now);
            v["policy_toml"] = json!(entry.record.policy_toml);
            v["last_used"] = json!(lock(&entry.state).last_used.map(|t| t.to_string()));
            v["onchain"] = gateway.onchain_state(&entry.record, &entry.policy).await;
            Json(v).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no key {id}")),
        Err(e) => internal(e),
    }
}

pub(crate) async fn revoke_key(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Response {
    let now = Timestamp::now();
    let audit = admin_record(now, "key.revoke", Some(&id), json!({}));
    match gateway.store.revoke_key(&id, now, audit).await {
        Ok(revoked) => {
            gateway.mark_revoked(Some(&id));
            gateway.metrics.keys_revoked(u64::from(revoked));
            if !revoked && gateway.store.key(&id).await.ok().flatten().is_none() {
                return error(StatusCode::NOT_FOUND, format!("no key {id}"));
            }
            gateway.publish(&json!({ "event": "key.revoke", "id": id }));
            let mut v = json!({ "id": id, "revoked": true, "already_revoked": !revoked });
            let sender = gateway.owner_sender();
            if let Some(owner) = gateway.owner_chain(&sender)
                && let Ok(Some(record)) = gateway.store.key(&id).await
            {
                v["onchain"] = revoke_onchain(gateway.store.as_ref(), owner, &record).await;
            }
            Json(v).into_response()
        }
        Err(e) => internal(e),
    }
}

pub(crate) async fn revoke_all(State(gateway): State<Arc<Gateway>>) -> Response {
    let now = Timestamp::now();
    let audit = admin_record(now, "key.revoke_all", None, json!({}));
    match gateway.store.revoke_all(now, audit).await {
        Ok(n) => {
            gateway.mark_revoked(None);
            gateway.metrics.keys_revoked(n);
            gateway.publish(&json!({ "event": "key.revoke_all", "revoked": n }));
            let mut v = json!({ "revoked": n });
            let sender = gateway.owner_sender();
            if let Some(owner) = gateway.owner_chain(&sender) {
                v["onchain"] = revoke_all_onchain(gateway.store.as_ref(), owner).await;
            }
            Json(v).into_response()
        }
        Err(e) => internal(e),
    }
}

/// `POST /keys/{id}/resume`: lifts a key's quarantine (audited `key.resume`). 404 for an
/// unknown key, 409 for one that is not suspended or is revoked.
pub(crate) async fn resume_key(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Response {
    let audit = admin_record(Timestamp::now(), "key.resume", Some(&id), json!({}));
    match gateway.store.resume_key(&id, audit).await {
        Ok(true) => {
            gateway.mark_resumed(&id);
            gateway.metrics.key_resumed();
            gateway.publish(&json!({ "event": "key.resume", "id": id }));
            Json(json!({ "id": id, "resumed": true })).into_response()
        }
        Ok(false) => match gateway.store.key(&id).await {
            Ok(None) => error(StatusCode::NOT_FOUND, format!("no key {id}")),
            Ok(Some(k)) if k.revoked_at.is_some() => error(
                StatusCode::CONFLICT,
                format!("key {id} is revoked; revocation is final"),
            ),
            Ok(Some(_)) => error(StatusCode::CONFLICT, format!("key {id} is not suspended")),
            Err(e) => internal(e),
        },
        Err(e) => internal(e),
    }
}

/// `GET /anomalies?key=&since=&limit=`: anomaly objects, newest last.
pub(crate) async fn anomalies(
    State(gateway): State<Arc<Gateway>>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let since = match q.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let filter = AuditFilter {
        key_id: q.key,
        since,
        limit: Some(q.limit.unwrap_or(1000).min(10_000)),
        action: Some("anomaly".into()),
    };
    match gateway.store.audit(&filter).await {
        Ok(entries) => Json(Value::Array(
            entries.iter().filter_map(crate::anomaly_json).collect(),
        ))
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    key: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
}

pub(crate) async fn audit(
    State(gateway): State<Arc<Gateway>>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let since = match q.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let filter = AuditFilter {
        key_id: q.key,
        since,
        limit: Some(q.limit.unwrap_or(1000).min(10_000)),
        action: None,
    };
    match gateway.store.audit(&filter).await {
        Ok(entries) => Json(Value::Array(
            entries.iter().map(valet_store::entry_to_json).collect(),
        ))
        .into_response(),
        Err(e) => internal(e),
    }
}

/// `since` as a duration back from now (`24h`) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let secs = valet_policy::units::parse_duration(s)?;
    Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(secs as i64))
        .map_err(|e| e.to_string())
}

pub(crate) async fn verify(State(gateway): State<Arc<Gateway>>) -> Response {
    match crate::verify_audit(gateway.store.as_ref(), gateway.checkpoint.as_ref()).await {
        Ok(Ok(n)) => Json(json!({ "ok": true, "entries": n })).into_response(),
        Ok(Err(e)) => {
            Json(json!({ "ok": false, "first_bad_seq": e.first_bad_seq, "reason": e.reason }))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

pub(crate) async fn events(State(gateway): State<Arc<Gateway>>) -> Response {
    let stream = tokio_stream::wrappers::BroadcastStream::new(gateway.events.subscribe())
        .filter_map(|item| async move {
            item.ok()
                .map(|v| Ok::<_, std::convert::Infallible>(Event::default().data(&*v)))
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
