//! JSON-RPC on the wire: the envelope, the error codes of SPEC section 5 (mapped here and
//! nowhere else), and the request limits.

use serde::Serialize;
use serde_json::{Value, json};
use valet_policy::Violation;

/// Largest request body.
pub const MAX_BODY: usize = 1 << 20;
/// Deepest JSON nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

/// Why an agent key was refused (`4100`'s `data.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Missing, malformed or unknown key, or a wrong secret.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked by the owner.
    Revoked,
    /// The client address is outside the key's `ip_allow`.
    IpNotAllowed,
    /// Quarantined after an anomaly (`on_anomaly = "suspend"`) until the owner resumes it.
    /// Valet's addition to SPEC's reasons.
    Suspended,
}

impl AuthFailure {
    /// The `data.reason` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::Suspended => "suspended",
        }
    }
}

/// A JSON-RPC error reply.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcError {
    /// `-32700`: the body is not JSON.
    Parse(String),
    /// `-32600`: not a valid request (or over a limit).
    InvalidRequest(String),
    /// `-32601`: method not supported.
    MethodNotFound(String),
    /// `-32602`: invalid params.
    InvalidParams(String),
    /// `4100`: the agent key was refused.
    Unauthorized(AuthFailure),
    /// `4001`: denied by policy.
    Denied {
        /// Every violation.
        violations: Vec<Violation>,
        /// The request id in the audit log.
        request_id: String,
    },
    /// `-32005`: rate limited.
    RateLimited {
        /// When to retry.
        retry_after_ms: u64,
    },
    /// An error object from the upstream node, passed through.
    Upstream {
        /// The node's code.
        code: i64,
        /// The node's message.
        message: String,
        /// The node's data.
        data: Option<Value>,
    },
    /// `-32603` like [`Internal`](Self::Internal), when the upstream node could not be
    /// reached (counted as `upstream_error`, not `error`); details only in the server log.
    UpstreamUnreachable {
        /// The request id in the audit log and the server log.
        request_id: String,
    },
    /// `-32603`: internal error; details only in the server log.
    Internal {
        /// The request id in the audit log and the server log.
        request_id: String,
    },
}

#[derive(Serialize)]
struct ErrorObject {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl RpcError {
    /// The error object of a JSON-RPC response. The `message` of a denial names its violation
    /// codes ("denied by policy: value_too_high, spend_limit_exceeded") and that of a refused
    /// key its reason ("unauthorized: revoked"): client libraries such as viem show only the
    /// message, often wrapped in causes of their own.
    pub fn to_json(&self) -> Value {
        let (code, message, data): (i64, String, Option<Value>) = match self {
            Self::Parse(why) => (-32700, "parse error".into(), Some(json!(why))),
            Self::InvalidRequest(why) => (-32600, "invalid request".into(), Some(json!(why))),
            Self::MethodNotFound(m) => (-32601, "method not found".into(), Some(json!(m))),
            Self::InvalidParams(why) => (-32602, "invalid params".into(), Some(json!(why))),
            Self::Unauthorized(reason) => (
                4100,
                format!("unauthorized: {}", reason.as_str()),
                Some(json!({ "reason": reason.as_str() })),
            ),
            Self::Denied {
                violations,
                request_id,
            } => {
                let v: Vec<Value> = violations
                    .iter()
                    .map(|v| json!({ "code": v.code.as_str(), "message": v.message }))
                    .collect();
                (
                    4001,
                    denied_message(violations),
                    Some(json!({ "violations": v, "request_id": request_id })),
                )
            }
            Self::RateLimited { retry_after_ms } => (
                -32005,
                "rate limited".into(),
                Some(json!({ "retry_after_ms": retry_after_ms })),
            ),
            Self::Upstream {
                code,
                message,
                data,
            } => (*code, message.clone(), data.clone()),
            Self::Internal { request_id } | Self::UpstreamUnreachable { request_id } => (
                -32603,
                "internal error".into(),
                Some(json!({ "request_id": request_id })),
            ),
        };
        serde_json::to_value(ErrorObject {
            code,
            message,
            data,
        })
        .unwrap_or(Value::Null)
    }
}

/// "denied by policy: <code>, <code>": each violation code once, in order.
fn denied_message(violations: &[valet_policy::Violation]) -> String {
    let mut codes: Vec<&str> = Vec::new();
    for v in violations {
        if !codes.contains(&v.code.as_str()) {
            codes.push(v.code.as_str());
        }
    }
    if codes.is_empty() {
        "denied by policy".into()
    } else {
        format!("denied by policy: {}", codes.join(", "))
    }
}

/// A whole JSON-RPC response object.
pub fn response(id: &Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => json!({ "jsonrpc": "2.0", "id": id, "error": e.to_json() }),
    }
}

/// Nesting depth of a JSON text, counted over brackets outside strings, without parsing it.
/// Refusing deep documents before `serde_json` sees them keeps recursion bounded.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[{{{"}]}"#), 3);
        assert_eq!(json_depth(br#""\"[""#), 0);
        assert_eq!(json_depth(&[b'['; 100]), 100);
    }

    #[test]
    fn error_codes_are_the_specs() {
        let code = |e: RpcError| e.to_json()["code"].as_i64().unwrap();
        assert_eq!(code(RpcError::Parse(String::new())), -32700);
        assert_eq!(code(RpcError::InvalidRequest(String::new())), -32600);
        assert_eq!(code(RpcError::MethodNotFound(String::new())), -32601);
        assert_eq!(code(RpcError::InvalidParams(String::new())), -32602);
        assert_eq!(code(RpcError::Unauthorized(AuthFailure::Revoked)), 4100);
        assert_eq!(code(RpcError::RateLimited { retry_after_ms: 5 }), -32005);
        assert_eq!(
            code(RpcError::Internal {
                request_id: "r".into()
            }),
            -32603
        );
        let denied = RpcError::Denied {
            violations: vec![],
            request_id: "r1".into(),
        }
        .to_json();
        assert_eq!(denied["code"], 4001);
        assert_eq!(denied["message"], "denied by policy");
        use valet_policy::ViolationCode::{SpendLimitExceeded, ValueTooHigh};
        let two = RpcError::Denied {
            violations: vec![
                Violation::new(ValueTooHigh, "a"),
                Violation::new(SpendLimitExceeded, "b"),
                Violation::new(ValueTooHigh, "c"),
            ],
            request_id: "r2".into(),
        }
        .to_json();
        assert_eq!(
            two["message"],
            "denied by policy: value_too_high, spend_limit_exceeded"
        );
        assert_eq!(
            RpcError::Unauthorized(AuthFailure::Revoked).to_json()["message"],
            "unauthorized: revoked"
        );
        assert_eq!(denied["data"]["request_id"], "r1");
        assert_eq!(
            RpcError::Unauthorized(AuthFailure::IpNotAllowed).to_json()["data"]["reason"],
            "ip_not_allowed"
        );
    }
}
