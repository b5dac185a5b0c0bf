#![doc = include_str!("../README.md")]

mod admin;
mod anomaly;
mod dashboard;
mod gateway;
mod http;
mod metrics;
mod onchain;
pub mod wire;

pub use admin::{
    IssueError, IssuedKey, OwnerChain, admin_record, issue, key_json, parse_since,
    revoke_all_onchain, revoke_onchain,
};
pub use anomaly::{AnomalyConfig, AnomalyKind, Webhook, WebhookError, anomaly_json, signature};
pub use gateway::{Gateway, GatewayParts};
pub use http::router;
pub use onchain::{
    Onchain, OnchainError, RELAY_DEADLINE_SECS, scope as onchain_scope, state as onchain_state,
};

use std::{sync::Arc, time::Duration};
use valet_store::{AuditFilter, Checkpoint, Store, VerifyError};

/// Verifies the whole audit log against the checkpoint kept outside the database.
/// The outer error is a failure to read; the inner one names the first bad entry.
pub async fn verify_audit(
    store: &dyn Store,
    checkpoint: Option<&Checkpoint>,
) -> Result<Result<u64, VerifyError>, valet_store::Error> {
    let entries = store.audit(&AuditFilter::default()).await?;
    let head = match checkpoint {
        Some(c) => c.read()?,
        None => None,
    };
    Ok(valet_store::verify(&entries, head))
}

/// Serves the gateway on `listener` until `shutdown` resolves, reaping mined transactions
/// from the pending counts in the background.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                gateway.reap_pending().await;
            }
        })
    };
    let app = router(gateway).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    reaper.abort();
    result
}
