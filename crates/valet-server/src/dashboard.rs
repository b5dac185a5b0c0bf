//! The owner's dashboard: the static page under `dashboard/` (embedded in the binary, served at
//! `/` under a strict Content-Security-Policy) and the read-only usage endpoints it draws from,
//! `GET /api/v1/usage` (every key at once, for the keys table) and
//! `GET /api/v1/keys/{id}/usage` (one key in detail).
//!
//! The page holds the admin token in `sessionStorage` and sends it as a bearer token; it uses
//! no cookie, so a forged cross-site request carries no credential.

use crate::gateway::{Gateway, KeyEntry, asset_name, lock};
use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};
use valet_store::{AuditEntry, AuditFilter, KeyRecord};

/// Every page and script may come from this origin only; nothing inline, no frames, no forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// The URL path it is served at.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../../dashboard/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The dashboard's files, as built into the binary.
const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/assets/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/assets/app.js", "app.js", JS),
    asset!("/assets/api.js", "api.js", JS),
    asset!("/assets/feed.js", "feed.js", JS),
    asset!("/assets/keys.js", "keys.js", JS),
    asset!("/assets/chart.js", "chart.js", JS),
    asset!("/assets/util.js", "util.js", JS),
    asset!("/assets/favicon.svg", "favicon.svg", "image/svg+xml"),
];

/// Strong validators, one per asset: the first 16 bytes of the body's keccak-256, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let h = alloy::primitives::keccak256(a.body);
            format!("\"{}\"", alloy::primitives::hex::encode(&h[..16]))
        })
        .collect()
});

/// The headers every dashboard response carries.
fn hardened(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `GET /` and `GET /assets/{file}`: an embedded file, revalidated by its `ETag` (the names
/// carry no hash, so the browser asks each time and gets `304 Not Modified` when unchanged).
pub(crate) async fn asset(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let Some((i, asset)) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, a)| a.path == uri.path())
    else {
        return hardened((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let etag = &ETAGS[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if fresh {
        return hardened((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    hardened(
        (
            StatusCode::OK,
            cache,
            [(header::CONTENT_TYPE, asset.content_type)],
            asset.body,
        )
            .into_response(),
    )
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(target: "valet::dashboard", error = %e, "usage request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (see the server log)",
    )
}

/// How many of a key's latest audit entries the usage endpoints read for its last use and IPs.
const SCAN: u64 = 200;
/// How many of them the detail view shows as recent activity.
const RECENT: usize = 50;

/// What remains of each limit now, as `valet_getPermissions` reports it to the agent (the same
/// in-memory ledger the gateway decides with), reshaped for the dashboard.
fn limits(gateway: &Gateway, entry: &KeyEntry, now: Timestamp) -> Value {
    let p = gateway.permissions(entry, now);
    let spend: Vec<Value> = p["limits"]["spend"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .zip(&entry.policy.limits.spend)
        .map(|(l, limit)| {
            json!({
                "asset": l["asset"],
                "window": l["window"],
                "window_secs": limit.window,
                "cap": l["amount"],
                "spent": l["used"],
                "remaining": l["remaining"],
            })
        })
        .collect();
    json!({
        "limits": spend,
        "rate": p["limits"]["rate"],
        "pending": p["limits"]["pending"],
        "max_pending": p["limits"]["max_pending"],
        "permissions": p,
    })
}

/// The summary of one key: limits, last use and the addresses its requests came from.
async fn summary(
    gateway: &Gateway,
    record: &KeyRecord,
    now: Timestamp,
) -> Result<(Value, Vec<AuditEntry>), valet_store::Error> {
    let entries = gateway
        .store
        .audit(&AuditFilter {
            key_id: Some(record.id.clone()),
            limit: Some(SCAN),
            ..AuditFilter::default()
        })
        .await?;
    let agent = || entries.iter().rev().filter(|e| e.record.actor == "agent");
    let mut ips: Vec<&str> = vec![];
    for ip in agent().filter_map(|e| e.record.client_ip.as_deref()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let entry = gateway.key(&record.id).await?;
    let last_used = agent()
        .next()
        .map(|e| e.record.at)
        .or_else(|| entry.as_ref().and_then(|e| lock(&e.state).last_used));
    let mut v = match &entry {
        Some(entry) => limits(gateway, entry, now),
        None => json!({ "limits": [], "rate": null }),
    };
    v["id"] = json!(record.id);
    v["last_used_at"] = json!(last_used.map(|t| t.to_string()));
    v["ips"] = json!(ips);
    Ok((v, entries))
}

/// `GET /api/v1/usage`: every key's limits, last use and addresses, in one request.
pub(crate) async fn usage(State(gateway): State<Arc<Gateway>>) -> Response {
    let now = Timestamp::now();
    let keys = match gateway.store.keys().await {
        Ok(k) => k,
        Err(e) => return internal(e),
    };
    let mut out = Vec::with_capacity(keys.len());
    for record in &keys {
        match summary(&gateway, record, now).await {
            Ok((mut v, _)) => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("permissions");
                }
                out.push(v);
            }
            Err(e) => return internal(e),
        }
    }
    Json(Value::Array(out)).into_response()
}

/// `GET /api/v1/keys/{id}/usage`: one key's summary, its readable policy, its reservations in
/// the longest window (the spend chart) and its recent activity.
pub(crate) async fn key_usage(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Response {
    let now = Timestamp::now();
    let record = match gateway.store.key(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no key {id}")),
        Err(e) => return internal(e),
    };
    let (mut v, entries) = match summary(&gateway, &record, now).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let horizon = v["limits"]
        .as_array()
        .and_then(|l| l.iter().filter_map(|l| l["window_secs"].as_u64()).max())
        .unwrap_or(86_400);
    let since = now
        .checked_sub(jiff::SignedDuration::from_secs(
            horizon.min(i64::MAX as u64) as i64,
        ))
        .unwrap_or(Timestamp::MIN);
    let series = match gateway.store.reservations(&id, since).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    v["key"] = crate::admin::key_json(&record, now);
    v["policy_toml"] = json!(record.policy_toml);
    v["now"] = json!(now.to_string());
    v["spend_series"] = Value::Array(
        series
            .iter()
            .map(|(at, asset, amount)| {
                json!({ "at": at.to_string(), "asset": asset_name(*asset), "amount": amount.to_string() })
            })
            .collect(),
    );
    v["recent"] = Value::Array(
        entries
            .iter()
            .rev()
            .take(RECENT)
            .map(valet_store::entry_to_json)
            .collect(),
    );
    Json(v).into_response()
}

/// Why a state-changing admin request looks forged by another site, if it does. Defence in
/// depth: the API needs the bearer token, which a browser never attaches on its own (no
/// cookie), so a cross-site page cannot authenticate anyway; this also refuses what a page of
/// another origin could send without a CORS preflight.
///
/// - an `Origin` (browsers send it on every POST) that is not this server's own (`Host`), or a
///   `Sec-Fetch-Site` of `cross-site`/`same-site`;
/// - a body whose `Content-Type` is not JSON (`application/json`) or TOML (the API takes a
///   policy as `application/toml`): HTML forms can only send `text/plain`, URL-encoded or
///   multipart bodies.
///
/// Requests without `Origin` (the command line, curl, scripts) and without a body (revoke,
/// revoke-all) pass as before. Safe methods (GET, HEAD) are never refused here.
pub(crate) fn forgery(
    method: &axum::http::Method,
    headers: &HeaderMap,
    trust_proxy: bool,
) -> Option<&'static str> {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let forwarded = trust_proxy
            .then(|| text(header::HeaderName::from_static("x-forwarded-host")))
            .flatten();
        let same = authority.is_some_and(|a| {
            [text(header::HOST), forwarded]
                .into_iter()
                .flatten()
                .any(|host| host.trim().eq_ignore_ascii_case(a))
        });
        if !same {
            return Some("cross-origin request refused (Origin is not this server)");
        }
    }
    if matches!(
        text(header::HeaderName::from_static("sec-fetch-site")),
        Some("cross-site" | "same-site")
    ) {
        return Some("cross-site request refused (Sec-Fetch-Site)");
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || text(header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    if has_body {
        let media = text(header::CONTENT_TYPE)
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        let ok = media.as_deref().is_some_and(|m| {
            m == "application/json" || m == "application/toml" || m == "text/toml"
        });
        if !ok {
            return Some("a request body must be application/json (or application/toml)");
        }
    }
    None
}
