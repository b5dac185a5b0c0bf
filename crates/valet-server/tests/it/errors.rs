//! Every JSON-RPC error code of SPEC section 5, produced by malformed, hostile and refused
//! requests. None of them panics, leaks internals or leaves a reservation behind.

use crate::env::{Env, code, violations};
use serde_json::{Value, json};

#[tokio::test]
async fn every_error_code() {
    let env = Env::start().await;
    let (_, key) = env
        .issue(
            r#"
            profile = "full-access"
            expires_in = "1h"
            [[limits.spend]]
            asset = "native"
            amount = "1 ether"
            window = "24h"
            "#,
        )
        .await;
    let k = Some(key.as_str());

    // -32700: not JSON.
    let (_, r) = env.post(k, "{not json").await;
    assert_eq!(code(&r), Some(-32700));
    // -32600: not a request, empty and oversized batches, deep nesting, huge bodies.
    for body in [
        "5".to_string(),
        "[]".to_string(),
        format!("[{}]", vec!["{}"; 101].join(",")),
        "[".repeat(65) + &"]".repeat(65),
    ] {
        let (_, r) = env.post(k, body.clone()).await;
        assert_eq!(code(&r), Some(-32600), "{body:.40}: {r}");
    }
    let (status, r) = env.post(k, vec![b' '; 2 << 20]).await;
    assert_eq!((status, code(&r)), (413, Some(-32600)));
    let (_, r) = env
        .post(
            k,
            json!({ "jsonrpc": "2.0", "id": 1, "params": [] }).to_string(),
        )
        .await;
    assert_eq!(code(&r), Some(-32600), "no method");
    // Control characters in a method, or NUL inside typed data, never reach the store as
    // such (PostgreSQL refuses NUL) and never stop the audit writer.
    assert_eq!(
        code(&env.rpc(&key, "eth_\u{0}sign", json!([])).await),
        Some(-32600)
    );
    let nul = json!({ "types": { "EIP712Domain": [], "M\u{0}": [] }, "primaryType": "M\u{0}", "domain": {}, "message": {} });
    assert_eq!(
        code(
            &env.rpc(&key, "eth_signTypedData_v4", json!([env.wallet, nul]))
                .await
        ),
        Some(-32602)
    );
    assert_eq!(
        env.rpc(&key, "eth_chainId", json!([])).await["result"],
        "0x7a69",
        "the writer still runs"
    );
    // -32601: unknown method.
    assert_eq!(
        code(&env.rpc(&key, "eth_mine", json!([])).await),
        Some(-32601)
    );
    // -32602: bad params, a foreign `from`, typed data nested too deep.
    assert_eq!(
        code(&env.rpc(&key, "eth_sendTransaction", json!("x")).await),
        Some(-32602)
    );
    let foreign =
        json!([{ "from": "0x00000000000000000000000000000000000000ff", "to": env.wallet }]);
    assert_eq!(
        code(&env.rpc(&key, "eth_sendTransaction", foreign).await),
        Some(-32602)
    );
    let mut types = serde_json::Map::new();
    types.insert(
        "EIP712Domain".into(),
        json!([{ "name": "chainId", "type": "uint256" }]),
    );
    for i in 0..17 {
        types.insert(
            format!("T{i}"),
            json!([{ "name": "x", "type": format!("T{}", i + 1) }]),
        );
    }
    types.insert("T17".into(), json!([{ "name": "v", "type": "uint256" }]));
    let deep = json!({ "types": types, "primaryType": "T0", "domain": { "chainId": 31337 }, "message": {} });
    assert_eq!(
        code(
            &env.rpc(&key, "eth_signTypedData_v4", json!([env.wallet, deep]))
                .await
        ),
        Some(-32602)
    );
    // 4001: denied by policy, with violations and the request id.
    let r = env.rpc(&key, "eth_sign", json!([env.wallet, "0x00"])).await;
    assert_eq!(
        (code(&r), violations(&r)),
        (Some(4001), vec!["method_not_allowed".to_string()])
    );
    assert!(
        r["error"]["data"]["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with('r'))
    );
    // A batch: each element on its own.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "eth_chainId" },
        7,
        { "jsonrpc": "2.0", "id": 3, "method": "eth_sign", "params": [] }
    ]);
    let (_, r) = env.post(k, batch.to_string()).await;
    assert_eq!(r[0]["result"], "0x7a69");
    assert_eq!(code(&r[1]), Some(-32600));
    assert_eq!(
        violations(&r[2]),
        ["method_not_allowed"],
        "eth_sign is denied whatever its params"
    );

    // -32603: the node is gone. No internals in the reply, nothing reserved.
    std::process::Command::new("kill")
        .args(["-9", &env.anvil.pid().to_string()])
        .status()
        .unwrap();
    let tx = json!([{ "to": "0x00000000000000000000000000000000000000bb", "value": "0x1", "gas": "0x5208" }]);
    let r = env.rpc(&key, "eth_sendTransaction", tx).await;
    assert_eq!(code(&r), Some(-32603), "{r}");
    assert!(r["error"]["data"]["request_id"].is_string());
    assert!(!r.to_string().contains("127.0.0.1"), "no internals: {r}");
    let r = env.rpc(&key, "eth_blockNumber", json!([])).await;
    assert_eq!(code(&r), Some(-32603), "{r}");
    // Counted as the node's fault, not the gateway's, and the failed send is audited so.
    let metrics = env
        .client
        .get(format!("{}/metrics", env.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for method in ["eth_sendTransaction", "eth_blockNumber"] {
        let line =
            format!("valet_requests_total{{method=\"{method}\",outcome=\"upstream_error\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    let audit = env
        .store
        .audit(&valet_store::AuditFilter::default())
        .await
        .unwrap();
    let failed = audit
        .iter()
        .rfind(|e| e.record.action == "eth_sendTransaction")
        .unwrap();
    assert_eq!(failed.record.decision.as_deref(), Some("error"));
    assert_eq!(
        failed.record.detail["error"], "upstream_error",
        "{:?}",
        failed.record
    );
    let perms = env.rpc(&key, "valet_getPermissions", json!([])).await;
    assert_eq!(
        perms["result"]["limits"]["spend"][0]["remaining"], "1000000000000000000",
        "{perms}"
    );
}

#[tokio::test]
async fn refused_keys_get_4100_with_the_reason() {
    let env = Env::start().await;
    let reason = |r: &Value| {
        (
            code(r),
            r["error"]["data"]["reason"].as_str().map(str::to_string),
        )
    };
    let unknown = (Some(4100), Some("unknown".to_string()));

    let (_, r) = env
        .post(
            None,
            json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_accounts" }).to_string(),
        )
        .await;
    assert_eq!(reason(&r), unknown, "no key");
    let r = env
        .rpc("valet_kffffffffffff_00", "eth_accounts", json!([]))
        .await;
    assert_eq!(reason(&r), unknown, "malformed key");
    let (_, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\n")
        .await;
    let forged = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        reason(&env.rpc(&forged, "eth_accounts", json!([])).await),
        unknown,
        "wrong secret"
    );

    let (_, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1s\"\n")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        reason(&env.rpc(&key, "eth_accounts", json!([])).await),
        (Some(4100), Some("expired".into()))
    );

    let (_, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\nip_allow = [\"10.0.0.0/8\"]\n")
        .await;
    assert_eq!(
        reason(&env.rpc(&key, "eth_accounts", json!([])).await),
        (Some(4100), Some("ip_not_allowed".into()))
    );
    // Behind a trusted proxy, the forwarded address counts.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_accounts" }).to_string();
    let r: Value = env
        .client
        .post(format!("{}/rpc", env.url))
        .bearer_auth(&key)
        .header("x-forwarded-for", "10.1.2.3, 192.0.2.1")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], json!([env.wallet]), "{r}");

    // A revocation written to the store by another process (another gateway, the CLI without
    // the API) stops the key at its next request too.
    let (id, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\n")
        .await;
    assert!(env.rpc(&key, "eth_chainId", json!([])).await["result"].is_string());
    let now = jiff::Timestamp::now();
    let audit = valet_server::admin_record(now, "key.revoke", Some(&id), json!({}));
    assert!(env.store.revoke_key(&id, now, audit).await.unwrap());
    // Even a request the policy denies (read-only key, a send) gets 4100, never 4001.
    let send = json!([{ "to": "0x00000000000000000000000000000000000000bb", "value": "0x1", "gas": "0x5208" }]);
    assert_eq!(
        reason(&env.rpc(&key, "eth_signTransaction", send).await),
        (Some(4100), Some("revoked".into()))
    );
    assert_eq!(
        reason(&env.rpc(&key, "eth_chainId", json!([])).await),
        (Some(4100), Some("revoked".into()))
    );
    assert_eq!(
        reason(&env.rpc(&key, "eth_chainId", json!([])).await),
        (Some(4100), Some("revoked".into()))
    );

    // -32005: rate limited, with a retry hint.
    let (_, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\n[limits.rate]\nmax_requests = 2\nwindow = \"1m\"\n")
        .await;
    for _ in 0..2 {
        assert!(env.rpc(&key, "eth_chainId", json!([])).await["result"].is_string());
    }
    let r = env.rpc(&key, "eth_chainId", json!([])).await;
    assert_eq!(code(&r), Some(-32005), "{r}");
    assert!(r["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);

    // The admin API wants its token.
    let r = env
        .client
        .get(format!("{}/api/v1/keys", env.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// A node that answers `eth_chainId` properly and everything else with an HTML page: a fault
/// real anvil cannot produce, so this small hand-written HTTP server stands in for it (the
/// only mock in these tests).
async fn garbage_node() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut len = 0;
                // Read the head, then the body it announces.
                loop {
                    let Ok(n) = socket.read(&mut buf[len..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    len += n;
                    let text = String::from_utf8_lossy(&buf[..len]).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let want = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if len < head_end + 4 + want {
                        continue;
                    }
                    let body: Value =
                        serde_json::from_str(&text[head_end + 4..head_end + 4 + want])
                            .unwrap_or(Value::Null);
                    let reply = if body["method"] == "eth_chainId" {
                        json!({ "jsonrpc": "2.0", "id": body["id"], "result": "0x7a69" })
                            .to_string()
                    } else {
                        "<html>502 Bad Gateway</html>".to_string()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    len = 0;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_node_answering_garbage_gets_an_error_and_nothing_is_reserved() {
    let node = garbage_node().await;
    let dir = tempfile::tempdir().unwrap();
    let store = valet_store::open(&format!("sqlite://{}", dir.path().join("v.db").display()))
        .await
        .unwrap();
    let wallet = valet_keys::Wallet::random();
    let address = wallet.address();
    let gateway = valet_server::Gateway::new(valet_server::GatewayParts {
        store: store.clone(),
        journal: valet_store::GroupCommit::new(store.clone(), None),
        upstream: valet_chain::Upstream::connect(&node)
            .await
            .expect("eth_chainId answers"),
        wallet,
        admin_token: "t".into(),
        trust_proxy: false,
        checkpoint: None,
        onchain: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    tokio::spawn(valet_server::serve(
        gateway,
        listener,
        std::future::pending(),
    ));
    let policy = "profile = \"full-access\"\nexpires_in = \"1h\"\n[[limits.spend]]\nasset = \"native\"\namount = \"1 ether\"\nwindow = \"24h\"\n";
    let key = valet_server::issue(
        store.as_ref(),
        address,
        None,
        policy,
        valet_store::KeyMode::Gateway,
        jiff::Timestamp::now(),
        None,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let call = |method: &'static str, params: Value| {
        let (client, url, token) = (
            client.clone(),
            url.clone(),
            key.agent_key.token().to_string(),
        );
        async move {
            let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
            client
                .post(url)
                .bearer_auth(token)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let tx = json!({ "to": "0x00000000000000000000000000000000000000bb", "value": "0x1", "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1" });
    for method in ["eth_sendTransaction", "eth_signTransaction"] {
        let r = call(method, json!([tx])).await;
        assert_eq!(code(&r), Some(-32603), "{method}: {r}");
        assert!(r["result"].is_null(), "no signature: {r}");
        assert!(
            !r.to_string().contains("html"),
            "nothing of the node's answer leaks: {r}"
        );
    }
    assert_eq!(
        code(&call("eth_blockNumber", json!([])).await),
        Some(-32603)
    );
    let perms = call("valet_getPermissions", json!([])).await;
    assert_eq!(
        perms["result"]["limits"]["spend"][0]["remaining"], "1000000000000000000",
        "{perms}"
    );
    let log = store
        .audit(&valet_store::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        log.iter().all(|e| e.record.tx_hash.is_none()),
        "no transaction was signed and recorded"
    );
    assert!(
        store
            .reservations(&key.record.id, jiff::Timestamp::UNIX_EPOCH)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A flood of bad credentials is answered every time but audited only up to the per-address
/// budget, so it cannot fill the disk.
#[tokio::test]
async fn a_flood_of_unknown_keys_is_refused_but_audited_only_within_budget() {
    let env = Env::start().await;
    for _ in 0..50 {
        let r = env
            .rpc("valet_k0123456789ab_00", "eth_accounts", json!([]))
            .await;
        assert_eq!(code(&r), Some(4100), "{r}");
    }
    let log = env.admin(reqwest::Method::GET, "/audit").await;
    let refused = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["unauthorized"] == "unknown")
        .count();
    // 20 a minute; the flood may straddle a minute boundary (then up to 40).
    assert!((20..=40).contains(&refused), "{refused} audited of 50");
}
