//! `eth_signTransaction` through the real binary: the raw transaction decodes, recovers to the
//! wallet, carries what was asked plus the gas, fees and nonce Valet filled, and the node takes it.

use crate::support::{Home, STRANGER, code, node_call, violations};
use alloy::{
    consensus::{Transaction as _, TxEnvelope, transaction::SignerRecoverable},
    eips::eip2718::Decodable2718,
    primitives::{B256, U256, hex},
};
use serde_json::json;
use std::time::Duration;
use valet_chain::Anvil;

#[tokio::test]
async fn sign_transaction() {
    let anvil = Anvil::spawn()
        .await
        .expect("anvil starts (run ./tools/install.sh)");
    let (home, _) = Home::init(&anvil.url());
    // 10 ETH, straight from the node (no sandbox contracts needed here).
    node_call(
        &anvil.url(),
        "anvil_setBalance",
        json!([home.wallet, "0x8ac7230489e80000"]),
    )
    .await;
    let server = home.serve();
    let target = format!("{STRANGER}");
    let key = home.issue(&[
        "--name",
        "signer",
        "--profile",
        "custom",
        "--chain",
        "31337",
        "--expires",
        "10m",
        "--target",
        &target,
        "--max-value",
        "0.05ether",
    ]);
    let key = key["agent_key"].as_str().unwrap();

    // 0.01 ETH to the allowed target; gas, fees and nonce left to Valet.
    let resp = server
        .rpc(
            key,
            "eth_signTransaction",
            json!([{ "from": home.wallet, "to": STRANGER, "value": "0x2386f26fc10000" }]),
        )
        .await;
    let raw = hex::decode(
        resp["result"]
            .as_str()
            .unwrap_or_else(|| panic!("signed: {resp}\n{}", server.log())),
    )
    .unwrap();
    let tx = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("EIP-2718 transaction");
    assert_eq!(
        tx.recover_signer().unwrap(),
        home.wallet,
        "signed by the wallet"
    );
    assert!(tx.is_eip1559(), "{tx:?}");
    assert_eq!(tx.chain_id(), Some(31337));
    assert_eq!(tx.to(), Some(STRANGER));
    assert_eq!(tx.value(), U256::from(10_000_000_000_000_000u64));
    assert_eq!(tx.nonce(), 0);
    assert!(tx.gas_limit() >= 21_000, "{tx:?}");
    assert!(tx.max_fee_per_gas() > 0, "{tx:?}");

    // The node accepts it as it is.
    let hash: B256 = node_call(
        &anvil.url(),
        "eth_sendRawTransaction",
        json!([hex::encode_prefixed(&raw)]),
    )
    .await
    .as_str()
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(hash, *tx.tx_hash());
    let upstream = valet_chain::Upstream::connect(&anvil.url()).await.unwrap();
    assert!(
        upstream
            .wait_for_receipt(hash, Duration::from_secs(10))
            .await
            .unwrap()
    );

    // Above --max-value: refused, nothing signed.
    let resp = server
        .rpc(
            key,
            "eth_signTransaction",
            json!([{ "from": home.wallet, "to": STRANGER, "value": "0x16345785d8a0000" }]),
        )
        .await;
    assert_eq!(code(&resp), Some(4001), "{resp}");
    assert_eq!(violations(&resp), ["value_too_high"], "{resp}");
}
