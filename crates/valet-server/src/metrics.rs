//! `/metrics` in the Prometheus text format: requests and decisions by method and outcome,
//! violations by code, a latency histogram of `/rpc` requests, spend reserved per key and
//! asset, anomalies by kind and key, and key revocations, suspensions and resumptions.

use crate::gateway::{Gateway, asset_name};
use crate::wire::RpcError;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Methods reported by name; anything else is `other`, so that agents cannot grow the label set.
const METHODS: &[&str] = &[
    "eth_sendTransaction",
    "wallet_sendTransaction",
    "eth_signTransaction",
    "eth_signTypedData_v4",
    "eth_signTypedData",
    "personal_sign",
    "eth_sign",
    "eth_sendRawTransaction",
    "valet_getPermissions",
];

#[derive(Default)]
struct Counts {
    /// (method, outcome) → requests.
    requests: BTreeMap<(&'static str, &'static str), u64>,
    /// violation code → occurrences.
    violations: BTreeMap<&'static str, u64>,
    /// Requests per latency bucket (the last is +Inf), their count and their total seconds.
    buckets: [u64; BUCKETS.len() + 1],
    seconds: f64,
}

/// The gateway's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    counts: Mutex<Counts>,
    /// (kind, key id) → anomalies (rare: a map behind its own lock).
    anomalies: Mutex<BTreeMap<(&'static str, String), u64>>,
    revoked: AtomicU64,
    suspended: AtomicU64,
    resumed: AtomicU64,
}

impl Gateway {
    /// The whole exposition: the counters, then spend reserved per key and asset (kept beside
    /// each key, so the request line takes no global lock for it).
    pub(crate) fn render_metrics(&self) -> String {
        let mut out = self.metrics.render();
        out.push_str(
            "# HELP valet_spend_reserved_total Spend reserved by this gateway, in base units (wei for native), by key and asset; released reservations are not subtracted.\n",
        );
        out.push_str("# TYPE valet_spend_reserved_total counter\n");
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(String, String, String)> =
            keys.iter()
                .flat_map(|(id, entry)| {
                    entry.watch.spend().into_iter().map(move |(asset, amount)| {
                        (id.clone(), asset_name(asset), amount.to_string())
                    })
                })
                .collect();
        drop(keys);
        rows.sort();
        for (key, asset, amount) in rows {
            let _ = writeln!(
                out,
                "valet_spend_reserved_total{{key=\"{key}\",asset=\"{asset}\"}} {amount}"
            );
        }
        out
    }
}

impl Metrics {
    /// Records one answered `/rpc` request.
    pub(crate) fn record(
        &self,
        method: &str,
        result: &Result<serde_json::Value, RpcError>,
        took: Duration,
    ) {
        let method = METHODS
            .iter()
            .chain(valet_policy::request::READ_METHODS)
            .chain(valet_policy::request::LOCAL_METHODS)
            .find(|m| **m == method)
            .copied()
            .unwrap_or("other");
        let outcome = match result {
            Ok(_) => "allow",
            Err(RpcError::Denied { .. }) => "deny",
            Err(RpcError::Unauthorized(_)) => "unauthorized",
            Err(RpcError::RateLimited { .. }) => "rate_limited",
            Err(RpcError::Upstream { .. } | RpcError::UpstreamUnreachable { .. }) => {
                "upstream_error"
            }
            Err(_) => "error",
        };
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.requests.entry((method, outcome)).or_default() += 1;
        if let Err(RpcError::Denied { violations, .. }) = result {
            for v in violations {
                *c.violations.entry(v.code.as_str()).or_default() += 1;
            }
        }
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        c.buckets[bucket] += 1;
        c.seconds += secs;
    }

    /// Counts one anomaly.
    pub(crate) fn anomaly(&self, kind: &'static str, key_id: &str) {
        let mut a = self.anomalies.lock().unwrap_or_else(|e| e.into_inner());
        *a.entry((kind, key_id.to_string())).or_default() += 1;
    }

    /// Counts keys revoked through this gateway.
    pub(crate) fn keys_revoked(&self, n: u64) {
        self.revoked.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a key suspended by this gateway.
    pub(crate) fn key_suspended(&self) {
        self.suspended.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a key resumed through this gateway.
    pub(crate) fn key_resumed(&self) {
        self.resumed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters.
    pub(crate) fn render(&self) -> String {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP valet_requests_total Agent JSON-RPC requests by method and outcome.\n",
        );
        out.push_str("# TYPE valet_requests_total counter\n");
        for ((method, outcome), n) in &c.requests {
            let _ = writeln!(
                out,
                "valet_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP valet_violations_total Policy violations in denied requests, by code.\n",
        );
        out.push_str("# TYPE valet_violations_total counter\n");
        for (code, n) in &c.violations {
            let _ = writeln!(out, "valet_violations_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP valet_request_duration_seconds Time to answer an agent request.\n");
        out.push_str("# TYPE valet_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += c.buckets[i];
            let _ = writeln!(
                out,
                "valet_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += c.buckets[BUCKETS.len()];
        let _ = writeln!(
            out,
            "valet_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "valet_request_duration_seconds_sum {}", c.seconds);
        let _ = writeln!(out, "valet_request_duration_seconds_count {cumulative}");
        drop(c);
        out.push_str("# HELP valet_anomalies_total Anomalies detected, by kind and key.\n");
        out.push_str("# TYPE valet_anomalies_total counter\n");
        for ((kind, key), n) in self
            .anomalies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "valet_anomalies_total{{kind=\"{kind}\",key=\"{key}\"}} {n}"
            );
        }
        for (name, help, counter) in [
            (
                "valet_keys_revoked_total",
                "Keys revoked through this gateway.",
                &self.revoked,
            ),
            (
                "valet_keys_suspended_total",
                "Keys suspended by this gateway after an anomaly.",
                &self.suspended,
            ),
            (
                "valet_keys_resumed_total",
                "Suspended keys resumed through this gateway.",
                &self.resumed,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        out
    }
}
