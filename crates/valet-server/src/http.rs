//! The HTTP surface: `POST /rpc` for agents, `/api/v1` for the owner, the dashboard at `/`.
//! Only this module, `wire` and the handlers it routes to know HTTP and JSON-RPC.

use crate::{
    admin, dashboard,
    gateway::{Caller, Gateway},
    wire::{self, MAX_BATCH, MAX_BODY, MAX_DEPTH, RpcError},
};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::Value;
use std::{net::SocketAddr, sync::Arc, time::Duration};

/// The whole router: `/rpc`, `/api/v1`, `/metrics` and the dashboard (`/`, `/assets/…`).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let api = Router::new()
        .route("/keys", get(admin::list_keys).post(admin::issue_key))
        .route("/keys/revoke-all", post(admin::revoke_all))
        .route("/keys/{id}", get(admin::show_key))
        .route("/keys/{id}/revoke", post(admin::revoke_key))
        .route("/keys/{id}/resume", post(admin::resume_key))
        .route("/anomalies", get(admin::anomalies))
        .route("/keys/{id}/usage", get(dashboard::key_usage))
        .route("/usage", get(dashboard::usage))
        .route("/audit", get(admin::audit))
        .route("/audit/verify", get(admin::verify))
        .route("/events", get(admin::events))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            admin::require_admin,
        ));
    Router::new()
        .route("/rpc", post(rpc))
        .route("/metrics", get(metrics))
        .route("/", get(dashboard::asset))
        .route("/assets/{file}", get(dashboard::asset))
        .nest("/api/v1", api)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(gateway)
}

/// The client address: the peer, or with `--trust-proxy` the first `X-Forwarded-For` hop.
fn client_ip(gateway: &Gateway, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    if gateway.trust_proxy
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

fn json_reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text; no token (the gateway binds 127.0.0.1 by default).
async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gateway.render_metrics(),
    )
        .into_response()
}

async fn rpc(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fail = |status, e: RpcError| json_reply(status, &wire::response(&Value::Null, Err(e)));
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                RpcError::InvalidRequest(format!("body larger than {MAX_BODY} bytes")),
            );
        }
    };
    if wire::json_depth(&bytes) > MAX_DEPTH {
        return fail(
            StatusCode::OK,
            RpcError::InvalidRequest(format!("JSON nested deeper than {MAX_DEPTH}")),
        );
    }
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return fail(StatusCode::OK, RpcError::Parse(e.to_string())),
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let caller = Caller {
        token,
        ip: Some(client_ip(&gateway, peer, &headers)),
    };
    match value {
        Value::Array(items) if items.is_empty() => fail(
            StatusCode::OK,
            RpcError::InvalidRequest("empty batch".into()),
        ),
        Value::Array(items) if items.len() > MAX_BATCH => fail(
            StatusCode::OK,
            RpcError::InvalidRequest(format!("batch of more than {MAX_BATCH}")),
        ),
        Value::Array(items) => {
            // Each element is decided on its own, in order.
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.push(match item {
                    Value::Object(_) => gateway.handle(&caller, item).await,
                    _ => wire::response(
                        &Value::Null,
                        Err(RpcError::InvalidRequest(
                            "a batch element must be an object".into(),
                        )),
                    ),
                });
            }
            json_reply(StatusCode::OK, &Value::Array(out))
        }
        Value::Object(_) => json_reply(StatusCode::OK, &gateway.handle(&caller, &value).await),
        _ => fail(
            StatusCode::OK,
            RpcError::InvalidRequest("a request must be an object or an array".into()),
        ),
    }
}
