//! The agent's story end to end: allowed swaps are mined, forbidden calls are denied with their
//! violations, the owner revokes, and the audit log holds it all.

use crate::env::{Env, code, violations};
use alloy::{
    consensus::{Transaction as _, TxEnvelope, transaction::SignerRecoverable},
    eips::eip2718::Decodable2718,
    primitives::{Address, B256, U256, hex},
    sol_types::SolCall,
};
use serde_json::{Value, json};
use std::time::Duration;
use valet_chain::contracts::abi::{ITestStablecoin, IUniswapV2Router02};

const STRANGER: Address = Address::with_last_byte(0xbb);
const DEADLINE: u64 = 4_000_000_000;

fn send(from: Address, to: Address, data: Vec<u8>) -> Value {
    json!([{ "from": from, "to": to, "data": hex::encode_prefixed(data) }])
}

async fn mined(env: &Env, resp: &Value) -> bool {
    let hash: B256 = resp["result"]
        .as_str()
        .expect("a transaction hash")
        .parse()
        .unwrap();
    let upstream = valet_chain::Upstream::connect(&env.anvil.url())
        .await
        .unwrap();
    let ok = upstream
        .wait_for_receipt(hash, Duration::from_secs(10))
        .await
        .unwrap();
    if !ok {
        // Say why it reverted: the receipt, the transaction, and its replay.
        let receipt = upstream
            .forward("eth_getTransactionReceipt", &json!([hash]))
            .await;
        let tx = upstream
            .forward("eth_getTransactionByHash", &json!([hash]))
            .await
            .unwrap_or_default();
        let call = json!({ "from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"] });
        let replay = upstream.forward("eth_call", &json!([call, "latest"])).await;
        eprintln!("REVERTED {hash}\nreceipt {receipt:?}\ntx {tx}\nreplay {replay:?}");
    }
    ok
}

#[tokio::test]
async fn swap_allowed_then_denied_then_revoked() {
    let env = Env::start().await;
    let (id, key) = env.issue(&env.swap_policy()).await;
    let (token, router, weth) = (env.sandbox.token, env.sandbox.router, env.sandbox.weth);

    let accounts = env.rpc(&key, "eth_accounts", json!([])).await;
    assert_eq!(accounts["result"], json!([env.wallet]));
    assert_eq!(
        env.rpc(&key, "eth_chainId", json!([])).await["result"],
        "0x7a69"
    );

    // Approve the trusted router: allowed, not counted.
    let approve = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::MAX,
    }
    .abi_encode();
    let resp = env
        .rpc(
            &key,
            "eth_sendTransaction",
            send(env.wallet, token, approve),
        )
        .await;
    assert!(mined(&env, &resp).await, "{resp}");

    // A swap of 400 tUSD paying the wallet: allowed, mined, balance moves.
    let before = env.token_balance(env.wallet).await;
    let swap = |amount: u64, to: Address| {
        IUniswapV2Router02::swapExactTokensForETHCall {
            amountIn: U256::from(amount),
            amountOutMin: U256::from(1),
            path: vec![token, weth],
            to,
            deadline: U256::from(DEADLINE),
        }
        .abi_encode()
    };
    let resp = env
        .rpc(
            &key,
            "eth_sendTransaction",
            send(env.wallet, router, swap(400_000_000, env.wallet)),
        )
        .await;
    assert!(mined(&env, &resp).await, "{resp}");
    assert_eq!(
        before - env.token_balance(env.wallet).await,
        U256::from(400_000_000u64)
    );

    // A token transfer to a stranger: denied.
    let transfer = ITestStablecoin::transferCall {
        to: STRANGER,
        amount: U256::from(1),
    }
    .abi_encode();
    let resp = env
        .rpc(
            &key,
            "eth_sendTransaction",
            send(env.wallet, token, transfer),
        )
        .await;
    assert_eq!(code(&resp), Some(4001), "{resp}");
    assert_eq!(violations(&resp), ["function_not_allowed"]);
    assert!(resp["error"]["data"]["request_id"].is_string());

    // A swap paying a stranger: denied.
    let resp = env
        .rpc(
            &key,
            "eth_sendTransaction",
            send(env.wallet, router, swap(1_000_000, STRANGER)),
        )
        .await;
    assert_eq!(violations(&resp), ["argument_not_allowed"], "{resp}");

    // 700 more: 1 100 > the 1 000 daily cap.
    let resp = env
        .rpc(
            &key,
            "eth_sendTransaction",
            send(env.wallet, router, swap(700_000_000, env.wallet)),
        )
        .await;
    assert_eq!(violations(&resp), ["spend_limit_exceeded"], "{resp}");
    assert_eq!(
        before - env.token_balance(env.wallet).await,
        U256::from(400_000_000u64),
        "denials spend nothing"
    );

    // What remains, as the agent sees it.
    let perms = env.rpc(&key, "valet_getPermissions", json!([])).await;
    assert_eq!(
        perms["result"]["limits"]["spend"][0]["remaining"], "600000000",
        "{perms}"
    );

    // The owner revokes; the very next request is refused.
    let revoked = env
        .admin(reqwest::Method::POST, &format!("/keys/{id}/revoke"))
        .await;
    assert_eq!(revoked["revoked"], true);
    let resp = env.rpc(&key, "eth_accounts", json!([])).await;
    assert_eq!(code(&resp), Some(4100));
    assert_eq!(resp["error"]["data"]["reason"], "revoked");

    // The counters saw it too.
    let metrics = env
        .client
        .get(format!("{}/metrics", env.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "valet_requests_total{method=\"eth_sendTransaction\",outcome=\"allow\"} 2",
        "valet_requests_total{method=\"eth_sendTransaction\",outcome=\"deny\"} 3",
        "valet_requests_total{method=\"eth_accounts\",outcome=\"unauthorized\"} 1",
        "valet_violations_total{code=\"function_not_allowed\"} 1",
        "valet_violations_total{code=\"spend_limit_exceeded\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("valet_request_duration_seconds_count 9"),
        "{metrics}"
    );

    // Every step is in the audit log, the chain verifies, the mined hashes are there.
    let verify = env.admin(reqwest::Method::GET, "/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let log = env
        .admin(reqwest::Method::GET, &format!("/audit?key={id}"))
        .await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let with_hash = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tx_hash"].is_string())
        .count();
    assert_eq!(
        with_hash, 2,
        "both mined transactions are audited with their hash: {actions:?}"
    );
    assert!(actions.contains(&"key.revoke"));
    let denied = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "deny")
        .count();
    assert_eq!(denied, 4, "three policy denials and one revoked request");
}

#[tokio::test]
async fn signed_transactions_recover_to_the_wallet() {
    let env = Env::start().await;
    let (_, key) = env
        .issue(
            r#"
        profile = "full-access"
        expires_in = "1h"
        "#,
        )
        .await;
    let params = json!([{
        "to": STRANGER, "value": "0x2386f26fc10000", "gas": "0x5208",
        "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1"
    }]);
    let resp = env.rpc(&key, "eth_signTransaction", params).await;
    let raw = hex::decode(resp["result"].as_str().expect("raw transaction")).unwrap();
    let tx = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    assert_eq!(tx.recover_signer().unwrap(), env.wallet);
    assert_eq!(tx.chain_id(), Some(31337));
    assert_eq!(tx.to(), Some(STRANGER));
    assert_eq!(tx.value(), U256::from(10_000_000_000_000_000u64));
}

#[tokio::test]
async fn concurrent_requests_never_pass_a_cap_together() {
    let env = Env::start().await;
    // Each request is 0.1 ether + 21 000 wei of fee: exactly ten fit.
    let (_, key) = env
        .issue(&format!(
            r#"
            profile = "custom"
            expires_in = "1h"
            [[allow]]
            target = "{STRANGER}"
            [[limits.spend]]
            asset = "native"
            amount = "{}"
            window = "24h"
            "#,
            10 * (100_000_000_000_000_000u128 + 21_000)
        ))
        .await;
    let params = json!([{
        "to": STRANGER, "value": "0x16345785d8a0000", "gas": "0x5208",
        "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1"
    }]);
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (client, url, key, params) = (env.client.clone(), env.url.clone(), key.clone(), params.clone());
            tokio::spawn(async move {
                let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_signTransaction", "params": params });
                let resp: Value = client
                    .post(format!("{url}/rpc"))
                    .bearer_auth(key)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                resp
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        let resp = t.await.unwrap();
        if resp["result"].is_string() {
            allowed += 1;
        } else {
            assert_eq!(violations(&resp), ["spend_limit_exceeded"], "{resp}");
        }
    }
    assert_eq!(allowed, 10);
    let verify = env.admin(reqwest::Method::GET, "/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["entries"].as_u64().unwrap() >= 500);
}

#[tokio::test]
async fn typed_data_and_messages_are_signed_by_the_wallet() {
    let env = Env::start().await;
    let (_, key) = env
        .issue(
            r#"
            profile = "custom"
            expires_in = "1h"
            [typed_data]
            allow = [{ name = "Permit2", primary_type = "PermitSingle" }]
            [messages]
            personal_sign = "allow"
            "#,
        )
        .await;
    let typed = json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "PermitSingle": [
                { "name": "details", "type": "PermitDetails" },
                { "name": "spender", "type": "address" },
                { "name": "sigDeadline", "type": "uint256" }
            ],
            "PermitDetails": [
                { "name": "token", "type": "address" },
                { "name": "amount", "type": "uint160" },
                { "name": "expiration", "type": "uint48" },
                { "name": "nonce", "type": "uint48" }
            ]
        },
        "primaryType": "PermitSingle",
        "domain": { "name": "Permit2", "chainId": 31337, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3" },
        "message": {
            "details": { "token": env.sandbox.token, "amount": "1000000", "expiration": "4000000000", "nonce": "0" },
            "spender": env.sandbox.router,
            "sigDeadline": "4000000000"
        }
    });
    let resp = env
        .rpc(&key, "eth_signTypedData_v4", json!([env.wallet, typed]))
        .await;
    let sig: alloy::primitives::Signature = resp["result"]
        .as_str()
        .expect("a signature")
        .parse()
        .unwrap();
    let data: alloy::dyn_abi::TypedData = serde_json::from_value(typed).unwrap();
    let hash = data.eip712_signing_hash().unwrap();
    assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), env.wallet);

    let resp = env
        .rpc(&key, "personal_sign", json!(["0x68656c6c6f", env.wallet]))
        .await;
    let sig: alloy::primitives::Signature = resp["result"]
        .as_str()
        .expect("a signature")
        .parse()
        .unwrap();
    assert_eq!(sig.recover_address_from_msg(b"hello").unwrap(), env.wallet);

    // Not allowed: another domain's typed data, and eth_sign whatever the policy.
    let mut other = data_with_name("Other");
    other["domain"]["chainId"] = json!(31337);
    let resp = env
        .rpc(&key, "eth_signTypedData_v4", json!([env.wallet, other]))
        .await;
    assert_eq!(violations(&resp), ["typed_data_not_allowed"], "{resp}");
}

fn data_with_name(name: &str) -> Value {
    json!({
        "types": {
            "EIP712Domain": [{ "name": "name", "type": "string" }, { "name": "chainId", "type": "uint256" }],
            "Mail": [{ "name": "contents", "type": "string" }]
        },
        "primaryType": "Mail",
        "domain": { "name": name },
        "message": { "contents": "hi" }
    })
}

#[tokio::test]
async fn the_live_feed_shows_each_request_as_it_happens() {
    let env = Env::start().await;
    let (id, key) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\n")
        .await;
    let mut feed = env
        .client
        .get(format!("{}/api/v1/events", env.url))
        .bearer_auth(crate::env::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status().as_u16(), 200);
    env.rpc(&key, "eth_chainId", json!([])).await;
    env.rpc(&key, "eth_sign", json!([env.wallet, "0x00"])).await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(seen.contains("eth_chainId") && seen.contains("method_not_allowed")) {
        let chunk = tokio::time::timeout_at(deadline, feed.chunk())
            .await
            .expect("events arrive in time");
        seen.push_str(&String::from_utf8_lossy(
            &chunk.unwrap().expect("the feed stays open"),
        ));
    }
    assert!(seen.contains(&id), "{seen}");
    // Without the admin token: nothing.
    let denied = env
        .client
        .get(format!("{}/api/v1/events", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
}
