//! `valet policy check`: decide JSON-RPC requests against a policy, offline.

use alloy_primitives::Address;
use anyhow::Context as _;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::IpAddr,
    path::PathBuf,
    process::ExitCode,
};
use valet_policy::{Context, Decision, Policy, Request, SpendLedger, evaluate};

/// The wallet `--wallet` defaults to.
const DEFAULT_WALLET: Address = Address::with_last_byte(0xa1);
/// The longest request line read (the gateway's body limit).
const MAX_LINE: usize = 1 << 20;

/// Decide requests against a policy offline, in order, with an in-memory spend ledger
///
/// Evaluates each line of REQUESTS.jsonl in order and prints one decision per line:
/// `{"decision":"allow"|"deny","violations":[{"code","message"}]}`.
///
/// A line is a JSON-RPC request object or `{"at": RFC3339, "ip": "...", "request": {...}}`.
/// An allowed request counts against the limits of later ones. A line that is not a valid
/// request prints `{"decision":"error","error":{"code","message"}}` with the JSON-RPC error the
/// gateway would answer. Blank lines are skipped.
///
/// Exit status: 0 all allowed, 3 at least one denied, 1 a line was not a valid request or the
/// policy could not be used, 2 usage error.
///
/// Examples:
///   valet policy check --policy policy.toml requests.jsonl
///   cat requests.jsonl | valet policy check --policy policy.toml --at 2026-12-01T10:00:00Z -
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The policy file (TOML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The wallet the key acts for.
    #[arg(long, value_name = "ADDR", default_value_t = DEFAULT_WALLET)]
    wallet: Address,
    /// The time of requests without their own `at`, and when the key counts as issued (the
    /// start of `expires_in`). Default: now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<Timestamp>,
    /// The client address of requests without their own `ip`.
    #[arg(long, value_name = "IP")]
    ip: Option<IpAddr>,
    /// The chain the gateway signs for. Default: the request's own chainId, else the policy's
    /// first chain, else 1.
    #[arg(long, value_name = "ID")]
    chain: Option<u64>,
    /// Print JSON lines (the only output format; accepted for symmetry with other commands).
    #[arg(long)]
    json: bool,
    /// Requests, one JSON object per line; `-` or nothing reads stdin.
    #[arg(value_name = "REQUESTS.jsonl")]
    requests: Option<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    decision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<Vec<WireViolation<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<WireError>,
}

#[derive(Serialize)]
struct WireViolation<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct WireError {
    code: i32,
    message: String,
}

/// Why a line is not a request: a JSON-RPC error code and message.
type LineError = (i32, String);

impl Args {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        let src = std::fs::read_to_string(&self.policy)
            .with_context(|| format!("cannot read policy file {}", self.policy.display()))?;
        let policy = Policy::from_toml(&src)
            .with_context(|| format!("policy file {} is not valid", self.policy.display()))?;
        let input: Box<dyn Read> = match &self.requests {
            None => Box::new(std::io::stdin().lock()),
            Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
            Some(p) => Box::new(
                std::fs::File::open(p)
                    .with_context(|| format!("cannot read requests file {}", p.display()))?,
            ),
        };
        let issued_at = self.at.unwrap_or_else(Timestamp::now);
        let mut ledger = SpendLedger::new();
        let (mut denied, mut errors) = (false, false);
        let mut out = std::io::stdout().lock();
        let mut reader = BufReader::new(input);
        let mut buf = Vec::new();
        for number in 1.. {
            buf.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            let result = if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
                // Skip the rest of the oversized line.
                reader.by_ref().skip_until(b'\n')?;
                Err((-32600, format!("line is longer than {MAX_LINE} bytes")))
            } else if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            } else {
                self.check_line(&buf, &policy, &mut ledger, issued_at)
            };
            let line = match &result {
                Ok(Decision::Allow(_)) => Line {
                    decision: "allow",
                    violations: Some(vec![]),
                    error: None,
                },
                Ok(Decision::Deny(v)) => {
                    denied = true;
                    let violations = v
                        .iter()
                        .map(|v| WireViolation {
                            code: v.code.as_str(),
                            message: &v.message,
                        })
                        .collect();
                    Line {
                        decision: "deny",
                        violations: Some(violations),
                        error: None,
                    }
                }
                Err((code, message)) => {
                    errors = true;
                    eprintln!("line {number}: {message}");
                    Line {
                        decision: "error",
                        violations: None,
                        error: Some(WireError {
                            code: *code,
                            message: message.clone(),
                        }),
                    }
                }
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(ExitCode::from(if errors {
            1
        } else if denied {
            3
        } else {
            0
        }))
    }

    fn check_line(
        &self,
        raw: &[u8],
        policy: &Policy,
        ledger: &mut SpendLedger,
        issued_at: Timestamp,
    ) -> Result<Decision, LineError> {
        let value: Value =
            serde_json::from_slice(raw).map_err(|e| (-32700, format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err((-32600, "a line must be a JSON object".into()));
        };
        let (at, ip, request) = match obj.remove("request") {
            Some(Value::Object(request)) => {
                let at = match obj.remove("at") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(
                        s.parse::<Timestamp>()
                            .map_err(|e| (-32600, format!("`at` is not RFC 3339: {e}")))?,
                    ),
                    Some(_) => return Err((-32600, "`at` must be an RFC 3339 string".into())),
                };
                let ip = match obj.remove("ip") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(
                        s.parse::<IpAddr>()
                            .map_err(|_| (-32600, format!("`ip` {s:?} is not an IP address")))?,
                    ),
                    Some(_) => return Err((-32600, "`ip` must be a string".into())),
                };
                if let Some(k) = obj.keys().next() {
                    return Err((-32600, format!("unknown field `{k}` beside `request`")));
                }
                (at, ip, request)
            }
            Some(_) => return Err((-32600, "`request` must be a JSON-RPC request object".into())),
            None => (None, None, obj),
        };
        let method = match request.get("method") {
            Some(Value::String(m)) => m.as_str(),
            _ => return Err((-32600, "the request has no string `method`".into())),
        };
        let params = request.get("params").unwrap_or(&Value::Null);
        let now = at.or(self.at).unwrap_or(issued_at);
        let request = Request::from_json_rpc(method, params, self.wallet).map_err(|e| {
            // An invalid request still counts against the key's rate limit.
            ledger.record_request(now);
            (-32602, e.to_string())
        })?;
        let own_chain = match &request {
            Request::Transaction { tx, .. } => tx.chain_id,
            Request::TypedData(d) => d.chain_id,
            _ => None,
        };
        let chain_id = self
            .chain
            .or(own_chain)
            .or(policy.chains.first().copied())
            .unwrap_or(1);
        let ctx = Context {
            wallet: self.wallet,
            chain_id,
            now,
            issued_at,
            client_ip: ip.or(self.ip),
            revoked: false,
        };
        let decision = evaluate(policy, &request, ledger, &ctx);
        ledger.record_request(now);
        if let Decision::Allow(spend) = &decision {
            ledger.reserve(spend, now);
        }
        Ok(decision)
    }
}
