//! Anomaly detection: four detectors per key, fed by the request line in memory (O(1) per
//! request, no database round trip), each anomaly audited as actor `valet`, action `anomaly`
//! through the group committer (so it reaches the checkpoint and the live feed), counted in
//! `/metrics`, optionally POSTed to a signed webhook off the request path, and under
//! `on_anomaly = "suspend"` quarantining the key at once.
//!
//! State: a key's detectors start when the gateway first loads the key. The IPs it was used
//! from are seeded from its latest audit entries (so a restart does not make the next new
//! address its baseline); the rate baseline, the denial counter and the cool-downs start
//! empty.

use crate::gateway::{Gateway, KeyEntry, lock};
use alloy::primitives::{U256, hex};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use valet_policy::{Asset, OnAnomaly, Violation, ViolationCode};
use valet_store::{AuditEntry, AuditFilter, AuditRecord, Batch, Store};
use zeroize::Zeroizing;

/// At most this many client addresses are remembered per key (an agent rotating addresses
/// cannot grow memory without bound; beyond it, unseen addresses still raise `new_ip`).
const MAX_IPS: usize = 1024;
/// How many of a key's latest audit entries seed its known addresses.
const SEED_ENTRIES: u64 = 1000;
/// Webhook deliveries: attempts, and the timeout of each.
const WEBHOOK_ATTEMPTS: u32 = 3;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a webhook receiver's answer that is read (it is only logged by status).
const WEBHOOK_MAX_RESPONSE: usize = 64 * 1024;

/// What the detectors look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A request from a client address never seen for the key (the first one is its baseline).
    NewIp,
    /// Requests in the last minute above the key's rolling per-minute baseline × factor and
    /// above an absolute floor.
    RateSpike,
    /// Many denied requests in a short window (probing).
    DenialBurst,
    /// A signing request outside the key's `[schedule]`.
    OffSchedule,
}

impl AnomalyKind {
    /// The stable name: `new_ip`, `rate_spike`, `denial_burst`, `off_schedule`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewIp => "new_ip",
            Self::RateSpike => "rate_spike",
            Self::DenialBurst => "denial_burst",
            Self::OffSchedule => "off_schedule",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Thresholds of the detectors and where alerts go (`[anomaly]` and `[alerts]` in
/// `valet.toml`).
#[derive(Debug, Clone)]
pub struct AnomalyConfig {
    /// At most one anomaly per kind per key within this many seconds.
    pub cooldown_secs: u64,
    /// `rate_spike`: the last minute's requests must exceed this × the key's baseline…
    pub rate_factor: f64,
    /// …and this many requests.
    pub rate_floor: u64,
    /// The baseline is an exponential moving average of the key's requests per minute over
    /// about this many minutes (idle minutes count as zero).
    pub rate_baseline_minutes: u64,
    /// `denial_burst`: this many denied requests…
    pub denial_burst: u64,
    /// …within this many seconds.
    pub denial_window_secs: u64,
    /// Where anomalies are POSTed, if anywhere.
    pub webhook: Option<Webhook>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            cooldown_secs: 600,
            rate_factor: 5.0,
            rate_floor: 60,
            rate_baseline_minutes: 60,
            denial_burst: 10,
            denial_window_secs: 60,
            webhook: None,
        }
    }
}

/// Why an alert webhook cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is neither `https://…` nor `http://…`.
    #[error("webhook_url must start with https:// (or http:// for a local receiver)")]
    Scheme,
    /// The URL does not parse.
    #[error("webhook_url is not a URL: {0}")]
    Url(String),
    /// The secret is empty.
    #[error("the webhook secret is empty")]
    EmptySecret,
}

/// An alert webhook: a URL and the HMAC secret that signs every delivery.
///
/// Each anomaly is POSTed as its JSON object (see [`anomaly_json`]) with the headers
/// `X-Valet-Timestamp: <unix seconds>` and
/// `X-Valet-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
/// A receiver recomputes the MAC over the timestamp header, a dot and the raw body, compares
/// in constant time, and refuses timestamps more than a few minutes off (replays).
#[derive(Clone)]
pub struct Webhook {
    url: reqwest::Url,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path of a webhook URL is often a credential itself: show the host only.
        f.debug_struct("Webhook")
            .field("host", &self.url.host_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Webhook {
    /// A webhook to `url` signed with `secret`.
    pub fn new(url: &str, secret: &[u8]) -> Result<Self, WebhookError> {
        let url = reqwest::Url::parse(url).map_err(|e| WebhookError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(WebhookError::Scheme);
        }
        if secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        Ok(Self {
            url,
            secret: Zeroizing::new(secret.to_vec()),
        })
    }

    /// `sha256=<hex>`: the signature header's value for `body` sent at `timestamp`.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        signature(&self.secret, timestamp, body)
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The gateway's anomaly settings and the webhook client.
pub(crate) struct Monitor {
    config: AnomalyConfig,
    client: Option<valet_chain::HttpClient>,
}

impl Monitor {
    pub(crate) fn new(config: AnomalyConfig) -> Self {
        // TLS trusts the system's roots (or SSL_CERT_FILE); redirects are not followed.
        let options = valet_chain::HttpOptions {
            request_timeout: WEBHOOK_TIMEOUT,
            ..valet_chain::HttpOptions::default()
        };
        let client = config.webhook.as_ref().and_then(|_| {
            valet_chain::HttpClient::new(&options)
                .map_err(|e| {
                    tracing::error!(target: "valet::alerts", error = %e, "no webhook client; alerts stay in the audit log");
                })
                .ok()
        });
        Self { config, client }
    }
}

/// A counter over a sliding window, estimated from two fixed buckets (the current one and the
/// one before, weighted by how much of it still lies in the window).
#[derive(Default)]
struct Sliding {
    bucket: i64,
    current: u64,
    previous: u64,
}

impl Sliding {
    /// Counts one event at `nanos` with buckets of `width` seconds; returns the buckets that
    /// completed (the count of the one just closed, then how many empty ones followed).
    fn add(&mut self, nanos: i128, width: u64) -> Option<(u64, i64)> {
        let width_ns = i128::from(width.max(1)) * 1_000_000_000;
        let bucket = nanos.div_euclid(width_ns) as i64;
        let completed = match bucket - self.bucket {
            0 => None,
            1 => {
                self.previous = self.current;
                Some((self.current, 0))
            }
            gap if gap > 1 => {
                self.previous = 0;
                Some((self.current, gap - 1))
            }
            // The clock went back: count into the current bucket.
            _ => {
                self.current += 1;
                return None;
            }
        };
        if completed.is_some() {
            self.bucket = bucket;
            self.current = 0;
        }
        self.current += 1;
        completed
    }

    /// The estimated count in the window ending at `nanos`.
    fn estimate(&self, nanos: i128, width: u64) -> f64 {
        let width_ns = i128::from(width.max(1)) * 1_000_000_000;
        let into = nanos.rem_euclid(width_ns) as f64 / width_ns as f64;
        self.current as f64 + self.previous as f64 * (1.0 - into)
    }
}

/// What the detectors remember about one key.
#[derive(Default)]
struct WatchState {
    ips: HashSet<IpAddr>,
    requests: Sliding,
    /// Requests per minute, exponential moving average of completed minutes.
    baseline: f64,
    started: bool,
    denials: Sliding,
    /// When each kind was last raised (unix seconds).
    raised: [Option<i64>; 4],
}

impl WatchState {
    /// Whether `kind` may be raised at `secs` (cool-down), recording it if so.
    fn may_raise(&mut self, kind: AnomalyKind, secs: i64, cooldown: u64) -> bool {
        let last = &mut self.raised[kind.index()];
        if last.is_some_and(|t| secs.saturating_sub(t) < cooldown as i64) {
            return false;
        }
        *last = Some(secs);
        true
    }
}

/// One anomaly found, before it is recorded.
pub(crate) struct Found {
    kind: AnomalyKind,
    message: String,
    evidence: Value,
}

/// The per-key detector state, beside the key's limits state (its own lock: detection never
/// waits for a decision).
pub(crate) struct Watch {
    suspended: AtomicBool,
    state: Mutex<WatchState>,
    /// Spend reserved by this gateway since it started, per asset (for `/metrics`).
    spend: Mutex<Vec<(Asset, U256)>>,
}

impl Watch {
    /// The watch of a key loaded from the store: its quarantine and the addresses it was used
    /// from.
    pub(crate) fn new(suspended: bool, ips: HashSet<IpAddr>) -> Self {
        Self {
            suspended: AtomicBool::new(suspended),
            state: Mutex::new(WatchState {
                ips,
                ..WatchState::default()
            }),
            spend: Mutex::new(Vec::new()),
        }
    }

    /// Whether the key is quarantined (as far as this gateway knows).
    pub(crate) fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::Acquire)
    }

    pub(crate) fn set_suspended(&self, suspended: bool) {
        self.suspended.store(suspended, Ordering::Release);
    }

    /// Counts spend made durable for the key.
    pub(crate) fn add_spend(&self, spend: &[(Asset, U256)]) {
        if spend.is_empty() {
            return;
        }
        let mut totals = lock(&self.spend);
        for (asset, amount) in spend {
            match totals.iter_mut().find(|(a, _)| a == asset) {
                Some((_, total)) => *total = total.saturating_add(*amount),
                None => totals.push((*asset, *amount)),
            }
        }
    }

    pub(crate) fn spend(&self) -> Vec<(Asset, U256)> {
        lock(&self.spend).clone()
    }

    /// An accepted request (the key passed its checks): `new_ip` and `rate_spike`.
    pub(crate) fn observe_request(
        &self,
        config: &AnomalyConfig,
        ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Vec<Found> {
        let mut found = Vec::new();
        let nanos = now.as_nanosecond();
        let secs = now.as_second();
        let mut s = lock(&self.state);
        if let Some(ip) = ip
            && !s.ips.contains(&ip)
        {
            let first = s.ips.is_empty();
            if s.ips.len() < MAX_IPS {
                s.ips.insert(ip);
            }
            if !first && s.may_raise(AnomalyKind::NewIp, secs, config.cooldown_secs) {
                found.push(Found {
                    kind: AnomalyKind::NewIp,
                    message: format!("request from {ip}, an address this key was never used from"),
                    evidence: json!({ "ip": ip.to_string(), "known_ips": s.ips.len() - 1 }),
                });
            }
        }
        // A completed minute (and the idle ones after it) moves the baseline; the minute the
        // key was first seen in is partial and does not count.
        if let Some((count, idle)) = s.requests.add(nanos, 60)
            && s.started
        {
            let alpha = 1.0 / config.rate_baseline_minutes.max(1) as f64;
            s.baseline += alpha * (count as f64 - s.baseline);
            s.baseline *= (1.0 - alpha).powi(idle.clamp(0, 100_000) as i32);
        }
        s.started = true;
        let last_minute = s.requests.estimate(nanos, 60);
        if last_minute > config.rate_floor as f64
            && last_minute > config.rate_factor * s.baseline
            && s.may_raise(AnomalyKind::RateSpike, secs, config.cooldown_secs)
        {
            let baseline = (s.baseline * 100.0).round() / 100.0;
            found.push(Found {
                kind: AnomalyKind::RateSpike,
                message: format!(
                    "{} requests in the last minute against a baseline of {baseline} per minute",
                    last_minute.round()
                ),
                evidence: json!({
                    "requests_last_minute": last_minute.round() as u64,
                    "baseline_per_minute": baseline,
                    "factor": config.rate_factor,
                    "floor": config.rate_floor,
                }),
            });
        }
        found
    }

    /// A denied request: `denial_burst`, and `off_schedule` when the schedule was the reason.
    pub(crate) fn observe_denial(
        &self,
        config: &AnomalyConfig,
        violations: &[Violation],
        now: Timestamp,
    ) -> Vec<Found> {
        let mut found = Vec::new();
        let secs = now.as_second();
        let mut s = lock(&self.state);
        let window = config.denial_window_secs.max(1);
        s.denials.add(now.as_nanosecond(), window);
        let denials = s.denials.estimate(now.as_nanosecond(), window);
        if denials >= config.denial_burst as f64
            && s.may_raise(AnomalyKind::DenialBurst, secs, config.cooldown_secs)
        {
            let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
            found.push(Found {
                kind: AnomalyKind::DenialBurst,
                message: format!(
                    "{} denied requests within {}",
                    denials.round(),
                    valet_policy::units::format_duration(window)
                ),
                evidence: json!({
                    "denials": denials.round() as u64,
                    "window": valet_policy::units::format_duration(window),
                    "last_violations": codes,
                }),
            });
        }
        if let Some(v) = violations
            .iter()
            .find(|v| v.code == ViolationCode::OutsideSchedule)
            && s.may_raise(AnomalyKind::OffSchedule, secs, config.cooldown_secs)
        {
            found.push(Found {
                kind: AnomalyKind::OffSchedule,
                message: format!("signing request outside the key's schedule: {}", v.message),
                evidence: json!({ "violation": v.message }),
            });
        }
        found
    }
}

/// The client addresses of a key's latest agent requests, to seed its `new_ip` detector.
pub(crate) async fn known_ips(
    store: &dyn Store,
    key_id: &str,
) -> Result<HashSet<IpAddr>, valet_store::Error> {
    let filter = AuditFilter {
        key_id: Some(key_id.to_string()),
        limit: Some(SEED_ENTRIES),
        ..AuditFilter::default()
    };
    Ok(store
        .audit(&filter)
        .await?
        .iter()
        .filter(|e| e.record.actor == "agent")
        .filter_map(|e| e.record.client_ip.as_deref()?.parse().ok())
        .take(MAX_IPS)
        .collect())
}

/// An `anomaly` audit entry as the API, the report and the webhook show it:
/// `{seq, at, key_id, kind, message, action_taken, detail}`. `None` for other entries.
pub fn anomaly_json(e: &AuditEntry) -> Option<Value> {
    if e.record.action != "anomaly" {
        return None;
    }
    let d = &e.record.detail;
    let at = valet_store::entry_to_json(e)["at"].clone();
    Some(json!({
        "seq": e.seq,
        "at": at,
        "key_id": e.record.key_id,
        "kind": d["kind"],
        "message": d["message"],
        "action_taken": d["action_taken"],
        "detail": d,
    }))
}

impl Gateway {
    /// Lifts the quarantine of a cached key (the store is the source of truth).
    pub(crate) fn mark_resumed(&self, id: &str) {
        let map = self.keys.read().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get(id) {
            entry.watch.set_suspended(false);
        }
    }

    /// Before the decision: a suspended key is re-read from the store (another process may
    /// have resumed it), and an accepted request feeds `new_ip` and `rate_spike`. Returns
    /// true when the key is (now) suspended and the request must be refused.
    pub(crate) async fn screen(
        &self,
        entry: &KeyEntry,
        ip: Option<IpAddr>,
        now: Timestamp,
        rid: &str,
    ) -> bool {
        let found = entry.watch.observe_request(&self.monitor.config, ip, now);
        if found.is_empty() {
            return false;
        }
        self.raise(entry, found, ip, now, rid).await
    }

    /// After a denial: `denial_burst` and `off_schedule`.
    pub(crate) async fn screen_denial(
        &self,
        entry: &KeyEntry,
        violations: &[Violation],
        ip: Option<IpAddr>,
        now: Timestamp,
        rid: &str,
    ) {
        let found = entry
            .watch
            .observe_denial(&self.monitor.config, violations, now);
        if !found.is_empty() {
            self.raise(entry, found, ip, now, rid).await;
        }
    }

    /// Re-reads a key this gateway holds suspended: lifted (resumed by another process) or
    /// revoked meanwhile. A failed read keeps it suspended.
    pub(crate) async fn recheck_suspension(&self, entry: &KeyEntry) {
        if !entry.watch.is_suspended() {
            return;
        }
        match self.store.key(&entry.record.id).await {
            Ok(Some(k)) if k.revoked_at.is_some() => lock(&entry.state).revoked = true,
            Ok(Some(k)) if k.suspended_at.is_none() => entry.watch.set_suspended(false),
            Ok(Some(_)) => {}
            Ok(None) => lock(&entry.state).revoked = true,
            Err(e) => {
                tracing::warn!(target: "valet::anomaly", key = %entry.record.id, error = %e, "cannot re-read a suspended key; it stays suspended");
            }
        }
    }

    /// The store said the key was refused when this request's entry committed: revoked, or
    /// suspended (by any process). Returns the reason to answer with and updates the cache.
    pub(crate) async fn refusal_in_store(&self, entry: &KeyEntry) -> crate::wire::AuthFailure {
        use crate::wire::AuthFailure;
        match self.store.key(&entry.record.id).await {
            Ok(Some(k)) if k.revoked_at.is_none() => {
                if k.suspended_at.is_some() {
                    entry.watch.set_suspended(true);
                }
                // Suspended then, perhaps resumed since: refused either way.
                AuthFailure::Suspended
            }
            Ok(_) => {
                lock(&entry.state).revoked = true;
                AuthFailure::Revoked
            }
            Err(e) => {
                // Fail closed until the next request re-reads it.
                tracing::warn!(target: "valet::anomaly", key = %entry.record.id, error = %e, "cannot read why a key was refused; holding it suspended");
                entry.watch.set_suspended(true);
                AuthFailure::Suspended
            }
        }
    }

    /// Records anomalies: audit entry (group commit, checkpoint, live feed), metrics, the
    /// webhook, and under `on_anomaly = "suspend"` the key's quarantine. Never fails the
    /// request; returns whether the key is now suspended.
    async fn raise(
        &self,
        entry: &KeyEntry,
        found: Vec<Found>,
        ip: Option<IpAddr>,
        now: Timestamp,
        rid: &str,
    ) -> bool {
        let key_id = entry.record.id.as_str();
        let action = entry.policy.on_anomaly;
        let suspend = action == OnAnomaly::Suspend;
        if suspend {
            // At once, in memory: concurrent requests of the key are refused from here on.
            entry.watch.set_suspended(true);
        }
        let mut first = None;
        for f in found {
            self.metrics.anomaly(f.kind.as_str(), key_id);
            tracing::warn!(target: "valet::anomaly", key = key_id, kind = f.kind.as_str(), "{}", f.message);
            let mut detail = json!({
                "kind": f.kind.as_str(),
                "message": f.message,
                "action_taken": action.as_str(),
                "request_id": rid,
            });
            if let (Some(d), Value::Object(evidence)) = (detail.as_object_mut(), f.evidence) {
                d.extend(evidence);
            }
            let record = AuditRecord {
                at: now,
                request_id: format!("v{:016x}", rand::random::<u64>()),
                actor: "valet".into(),
                key_id: Some(key_id.to_string()),
                action: "anomaly".into(),
                decision: None,
                violations: vec![],
                detail,
                client_ip: ip.map(|ip| ip.to_string()),
                tx_hash: None,
            };
            let entries = match self
                .journal
                .submit(Batch {
                    audit: vec![record],
                    ..Batch::default()
                })
                .await
            {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(target: "valet::anomaly", key = key_id, error = %e, "anomaly could not be recorded");
                    continue;
                }
            };
            for e in &entries {
                if self.events.receiver_count() > 0 {
                    self.publish(&valet_store::entry_to_json(e));
                }
                first.get_or_insert(e.seq);
                if let Some(body) = anomaly_json(e) {
                    self.deliver(body);
                }
            }
        }
        if suspend {
            let detail = json!({ "reason": "anomaly", "anomaly_seq": first });
            let record = AuditRecord {
                at: now,
                request_id: format!("v{:016x}", rand::random::<u64>()),
                actor: "valet".into(),
                key_id: Some(key_id.to_string()),
                action: "key.suspend".into(),
                decision: None,
                violations: vec![],
                detail,
                client_ip: None,
                tx_hash: None,
            };
            match self.store.suspend_key(key_id, now, record).await {
                Ok(true) => {
                    self.metrics.key_suspended();
                    self.publish(&json!({ "event": "key.suspend", "id": key_id }));
                }
                Ok(false) => {}
                Err(e) => {
                    // It stays suspended in this gateway (fail closed).
                    tracing::error!(target: "valet::anomaly", key = key_id, error = %e, "the suspension could not be stored");
                }
            }
        }
        entry.watch.is_suspended()
    }

    /// POSTs one anomaly to the webhook in the background: never blocks or fails a request;
    /// failures are logged without the URL or the secret.
    fn deliver(&self, anomaly: Value) {
        let (Some(hook), Some(client)) = (&self.monitor.config.webhook, &self.monitor.client)
        else {
            return;
        };
        let (hook, client) = (hook.clone(), client.clone());
        let body = anomaly.to_string().into_bytes();
        tokio::spawn(async move {
            for attempt in 1..=WEBHOOK_ATTEMPTS {
                let timestamp = Timestamp::now().as_second();
                let headers = [
                    ("x-valet-timestamp", timestamp.to_string()),
                    ("x-valet-signature", hook.signature(timestamp, &body)),
                ];
                let result = client
                    .post(&hook.url, &headers, body.clone(), WEBHOOK_MAX_RESPONSE)
                    .await;
                let why = match result {
                    Ok(r) if (200..300).contains(&r.status) => return,
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(target: "valet::alerts", attempt, error = %why, "webhook delivery failed");
                if attempt < WEBHOOK_ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        });
    }
}
