//! Anomalies from scripted agents against a real gateway: each detector fires once for its
//! incident, is stored, shows on the live feed and reaches a real webhook receiver with a
//! correct signature; `on_anomaly = "suspend"` quarantines the key until the owner resumes it;
//! a quiet agent raises nothing.

use crate::env::{ADMIN, Env, code};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use valet_server::{AnomalyConfig, Webhook};

const SECRET: &[u8] = b"test-webhook-secret";

/// One delivery the receiver got: its headers and raw body.
struct Delivery {
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// A real HTTP receiver on loopback; returns its URL and the deliveries as they arrive.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let _ = tx.send(Delivery {
                        timestamp: header("x-valet-timestamp"),
                        signature: header("x-valet-signature"),
                        body: body.to_vec(),
                    });
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// Small thresholds so that a test can trip them quickly.
fn config(webhook: Option<&str>) -> AnomalyConfig {
    AnomalyConfig {
        cooldown_secs: 600,
        rate_factor: 3.0,
        rate_floor: 8,
        rate_baseline_minutes: 60,
        denial_burst: 3,
        denial_window_secs: 60,
        webhook: webhook.map(|url| Webhook::new(url, SECRET).unwrap()),
    }
}

/// One JSON-RPC call from `ip` (the gateway trusts `X-Forwarded-For` in these tests).
async fn rpc_from(env: &Env, key: &str, ip: &str, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    env.client
        .post(format!("{}/rpc", env.url))
        .bearer_auth(key)
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn anomalies(env: &Env, key_id: &str) -> Vec<Value> {
    env.admin(reqwest::Method::GET, &format!("/anomalies?key={key_id}"))
        .await
        .as_array()
        .cloned()
        .expect("an array of anomalies")
}

/// The next delivery, checked like a receiver should: HMAC-SHA256 over "<timestamp>.<body>",
/// a fresh timestamp. Returns the body as JSON.
async fn signed_delivery(deliveries: &mut mpsc::UnboundedReceiver<Delivery>) -> Value {
    let d = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
        .await
        .expect("the webhook is called in time")
        .expect("the receiver runs");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(format!("{}.", d.timestamp).as_bytes());
    mac.update(&d.body);
    let hex = d.signature.strip_prefix("sha256=").expect("sha256= prefix");
    let bytes = alloy::primitives::hex::decode(hex).expect("hex signature");
    mac.verify_slice(&bytes).expect("the signature verifies");
    let sent: i64 = d.timestamp.parse().expect("a unix timestamp");
    assert!((jiff::Timestamp::now().as_second() - sent).abs() < 60);
    serde_json::from_slice(&d.body).expect("a JSON body")
}

const READ_ONLY: &str = "profile = \"read-only\"\nexpires_in = \"1h\"\n";

#[tokio::test]
async fn a_new_address_is_stored_published_and_signed_to_the_webhook_once() {
    let (url, mut deliveries) = receiver().await;
    let env = Env::start_with(config(Some(&url))).await;
    let (id, key) = env.issue(READ_ONLY).await;
    let mut feed = env
        .client
        .get(format!("{}/api/v1/events", env.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();

    // The first address is the baseline; using it again is quiet.
    for _ in 0..2 {
        let r = rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await;
        assert!(r["result"].is_string(), "{r}");
    }
    assert!(anomalies(&env, &id).await.is_empty());

    // A new address: the request still works (alert), and one anomaly is raised, even for a
    // second new address within the cool-down.
    let r = rpc_from(&env, &key, "203.0.113.9", "eth_chainId", json!([])).await;
    assert!(r["result"].is_string(), "{r}");
    rpc_from(&env, &key, "203.0.113.10", "eth_chainId", json!([])).await;
    let found = anomalies(&env, &id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(a["kind"], "new_ip");
    assert_eq!(a["key_id"], id.as_str());
    assert_eq!(a["action_taken"], "alert");
    assert_eq!(a["detail"]["ip"], "203.0.113.9");
    assert!(a["message"].as_str().unwrap().contains("203.0.113.9"));
    assert!(a["seq"].as_u64().is_some() && a["at"].is_string());

    // The webhook got exactly that object, signed.
    assert_eq!(&signed_delivery(&mut deliveries).await, a);

    // The live feed carried the audit entry.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"action\":\"anomaly\"") {
        let chunk = tokio::time::timeout_at(deadline, feed.chunk())
            .await
            .expect("the anomaly reaches the feed");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(
        seen.contains("\"actor\":\"valet\"") && seen.contains("new_ip"),
        "{seen}"
    );

    // In the audit log: actor valet, no decision; and the chain still verifies.
    let log = env
        .admin(reqwest::Method::GET, &format!("/audit?key={id}"))
        .await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "anomaly")
        .expect("an anomaly entry")
        .clone();
    assert_eq!(entry["actor"], "valet");
    assert_eq!(entry["decision"], Value::Null);
    assert_eq!(entry["detail"]["kind"], "new_ip");
    let verify = env.admin(reqwest::Method::GET, "/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn a_request_burst_raises_one_rate_spike() {
    let (url, mut deliveries) = receiver().await;
    let env = Env::start_with(config(Some(&url))).await;
    let (id, key) = env.issue(READ_ONLY).await;
    for _ in 0..20 {
        let r = rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await;
        assert!(r["result"].is_string(), "{r}");
    }
    let found = anomalies(&env, &id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "rate_spike");
    assert_eq!(found[0]["detail"]["requests_last_minute"], 9);
    assert_eq!(signed_delivery(&mut deliveries).await["kind"], "rate_spike");
}

#[tokio::test]
async fn a_burst_of_denials_raises_one_denial_burst() {
    let env = Env::start_with(config(None)).await;
    let (id, key) = env
        .issue("profile = \"custom\"\nexpires_in = \"1h\"\n")
        .await;
    for _ in 0..5 {
        let r = rpc_from(
            &env,
            &key,
            "198.51.100.7",
            "personal_sign",
            json!(["0x6869", env.wallet]),
        )
        .await;
        assert_eq!(code(&r), Some(4001), "{r}");
    }
    let found = anomalies(&env, &id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "denial_burst");
    assert_eq!(found[0]["detail"]["denials"], 3);
    assert_eq!(
        found[0]["detail"]["last_violations"],
        json!(["message_not_allowed"])
    );
}

#[tokio::test]
async fn a_signature_outside_the_schedule_raises_off_schedule() {
    let env = Env::start_with(config(None)).await;
    // A one-hour window that starts two hours from now (UTC): now is outside it.
    let hour = jiff::Timestamp::now().as_second().rem_euclid(86_400) / 3600;
    let policy = format!(
        "profile = \"custom\"\nexpires_in = \"1h\"\n[schedule]\nhours = \"{:02}:00-{:02}:00\"\n[messages]\npersonal_sign = \"allow\"\n",
        (hour + 2) % 24,
        (hour + 3) % 24
    );
    let (id, key) = env.issue(&policy).await;
    // Reads are always allowed: no anomaly.
    rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await;
    assert!(anomalies(&env, &id).await.is_empty());
    let r = rpc_from(
        &env,
        &key,
        "198.51.100.7",
        "personal_sign",
        json!(["0x6869", env.wallet]),
    )
    .await;
    assert_eq!(crate::env::violations(&r), ["outside_schedule"], "{r}");
    let found = anomalies(&env, &id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "off_schedule");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("outside the key's schedule"),
        "{found:?}"
    );
}

#[tokio::test]
async fn suspend_quarantines_the_key_until_the_owner_resumes_it() {
    let (url, mut deliveries) = receiver().await;
    let env = Env::start_with(config(Some(&url))).await;
    let policy = format!("{READ_ONLY}on_anomaly = \"suspend\"\n");
    let (id, key) = env.issue(&policy).await;
    let chain_id = |r: &Value| r["result"].is_string();

    assert!(chain_id(
        &rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await
    ));
    // The request from a new address is the first one refused, and so is the next.
    for ip in ["203.0.113.9", "198.51.100.7"] {
        let r = rpc_from(&env, &key, ip, "eth_chainId", json!([])).await;
        assert_eq!(code(&r), Some(4100), "{r}");
        assert_eq!(r["error"]["data"]["reason"], "suspended", "{r}");
    }
    let a = signed_delivery(&mut deliveries).await;
    assert_eq!(
        (a["kind"].as_str(), a["action_taken"].as_str()),
        (Some("new_ip"), Some("suspend"))
    );
    let shown = env
        .admin(reqwest::Method::GET, &format!("/keys/{id}"))
        .await;
    assert_eq!(shown["status"], "suspended", "{shown}");
    assert!(shown["suspended_at"].is_string(), "{shown}");
    let log = env
        .admin(reqwest::Method::GET, &format!("/audit?key={id}"))
        .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "key.suspend" && e["actor"] == "valet"),
        "{log}"
    );

    // The owner resumes: the key works again, from the new address too (it was reviewed).
    let resumed = env
        .admin(reqwest::Method::POST, &format!("/keys/{id}/resume"))
        .await;
    assert_eq!(resumed["resumed"], true, "{resumed}");
    for ip in ["203.0.113.9", "198.51.100.7"] {
        assert!(chain_id(
            &rpc_from(&env, &key, ip, "eth_chainId", json!([])).await
        ));
    }
    let status = |path: String| {
        let env = &env;
        async move {
            env.client
                .post(format!("{}/api/v1{path}", env.url))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(format!("/keys/{id}/resume")).await, 409);
    assert_eq!(status("/keys/knope/resume".into()).await, 404);

    // Suspended and resumed by another process sharing the store: seen on the next request.
    let at = jiff::Timestamp::now();
    let record = valet_server::admin_record(at, "key.suspend", Some(&id), json!({}));
    assert!(env.store.suspend_key(&id, at, record).await.unwrap());
    let r = rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await;
    assert_eq!(r["error"]["data"]["reason"], "suspended", "{r}");
    let record = valet_server::admin_record(at, "key.resume", Some(&id), json!({}));
    assert!(env.store.resume_key(&id, record).await.unwrap());
    assert!(chain_id(
        &rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await
    ));

    // A revoked key cannot be resumed.
    env.admin(reqwest::Method::POST, &format!("/keys/{id}/revoke"))
        .await;
    assert_eq!(status(format!("/keys/{id}/resume")).await, 409);
}

#[tokio::test]
async fn a_quiet_agent_raises_nothing() {
    let (url, mut deliveries) = receiver().await;
    let env = Env::start_with(config(Some(&url))).await;
    // A schedule that holds now (every day, all day), messages allowed.
    let policy = "profile = \"custom\"\nexpires_in = \"1h\"\non_anomaly = \"suspend\"\n[schedule]\ndays = [\"mon-sun\"]\n[messages]\npersonal_sign = \"allow\"\n";
    let (id, key) = env.issue(policy).await;
    for _ in 0..3 {
        let r = rpc_from(&env, &key, "198.51.100.7", "eth_chainId", json!([])).await;
        assert!(r["result"].is_string(), "{r}");
        let r = rpc_from(
            &env,
            &key,
            "198.51.100.7",
            "personal_sign",
            json!(["0x6869", env.wallet]),
        )
        .await;
        assert!(r["result"].is_string(), "{r}");
    }
    // One denial is no burst.
    let r = rpc_from(
        &env,
        &key,
        "198.51.100.7",
        "eth_sign",
        json!([env.wallet, "0x00"]),
    )
    .await;
    assert_eq!(code(&r), Some(4001));
    assert!(anomalies(&env, &id).await.is_empty());
    let shown = env
        .admin(reqwest::Method::GET, &format!("/keys/{id}"))
        .await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), deliveries.recv())
            .await
            .is_err(),
        "no webhook call"
    );
}

#[tokio::test]
async fn metrics_count_spend_anomalies_and_key_events() {
    let env = Env::start_with(config(None)).await;
    let policy = "profile = \"full-access\"\nexpires_in = \"1h\"\n[[limits.spend]]\nasset = \"native\"\namount = \"1 ether\"\nwindow = \"24h\"\n";
    let (id, key) = env.issue(policy).await;
    let tx = json!([{
        "from": env.wallet, "to": "0x00000000000000000000000000000000000000bb",
        "value": "0x3e8", "gas": "0x5208",
        "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1"
    }]);
    for _ in 0..2 {
        let r = rpc_from(
            &env,
            &key,
            "198.51.100.7",
            "eth_signTransaction",
            tx.clone(),
        )
        .await;
        assert!(r["result"].is_string(), "{r}");
    }
    rpc_from(&env, &key, "203.0.113.9", "eth_chainId", json!([])).await;
    env.admin(reqwest::Method::POST, &format!("/keys/{id}/revoke"))
        .await;
    let metrics = env
        .client
        .get(format!("{}/metrics", env.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Each: 1000 wei of value + 21000 gas × 1 gwei.
    let spend = 2 * (1000 + 21_000 * 1_000_000_000u64);
    for line in [
        format!("valet_spend_reserved_total{{key=\"{id}\",asset=\"native\"}} {spend}"),
        format!("valet_anomalies_total{{kind=\"new_ip\",key=\"{id}\"}} 1"),
        "valet_keys_revoked_total 1".to_string(),
        "valet_keys_suspended_total 0".to_string(),
        "valet_keys_resumed_total 0".to_string(),
        "# TYPE valet_spend_reserved_total counter".to_string(),
        "# TYPE valet_anomalies_total counter".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}
