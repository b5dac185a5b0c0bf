//! `/metrics` in the Prometheus text format: requests and decisions by method and outcome,
//! violations by code, and a latency histogram of `/rpc` requests.

use crate::wire::RpcError;
use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex, time::Duration};

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
            Err(RpcError::Upstream { .. }) => "upstream_error",
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

    /// The Prometheus text exposition.
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
        out
    }
}
