use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use serde_json::json;
use valet_chain::{Anvil, Error, Upstream};

use crate::{eth_balance, sign_tx};

#[tokio::test]
async fn connect_pins_the_chain_id() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    assert_eq!(upstream.chain_id(), 31337);
    assert_eq!(anvil.chain_id(), 31337);
    assert!(anvil.url().starts_with("http://127.0.0.1:"));
    assert_eq!(upstream.endpoint(), anvil.url());
}

#[tokio::test]
async fn anvil_is_killed_on_drop() {
    let anvil = Anvil::spawn().await.unwrap();
    let (pid, url) = (anvil.pid(), anvil.url());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(anvil);
    // Killed and reaped: the process is gone and the port answers no more.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(matches!(
        Upstream::connect(&url).await,
        Err(Error::Transport(_))
    ));
}

/// An anvil outlives the runtime that started it (a fixture shared between tests): its output
/// is drained by threads, so it keeps answering however much it logs.
#[test]
fn anvil_outlives_its_runtime() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let anvil = runtime().block_on(Anvil::spawn()).unwrap();
    runtime().block_on(async {
        let upstream = Upstream::connect(&anvil.url()).await.unwrap();
        // Each request makes anvil log a 16-byte line: 96 KB in all, more than a pipe holds (64 KiB).
        for _ in 0..6_000 {
            upstream
                .forward("eth_blockNumber", &json!([]))
                .await
                .unwrap();
        }
    });
}

#[tokio::test]
async fn anvil_with_extra_arguments() {
    let anvil = Anvil::spawn_with_args(&["--chain-id", "4242"])
        .await
        .unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    assert_eq!(upstream.chain_id(), 4242);
}

#[tokio::test]
async fn dev_keys_are_anvils_accounts() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let accounts: Vec<Address> =
        serde_json::from_value(upstream.forward("eth_accounts", &json!([])).await.unwrap())
            .unwrap();
    let keys: Vec<Address> = (0..10).map(|i| anvil.dev_key(i).address()).collect();
    assert_eq!(accounts, keys);
    let ten_thousand_eth = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18));
    assert_eq!(eth_balance(&upstream, keys[9]).await, ten_thousand_eth);
}

#[tokio::test]
async fn forward_passes_results_and_node_errors_through() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    assert_eq!(
        upstream
            .forward("eth_blockNumber", &json!([]))
            .await
            .unwrap(),
        json!("0x0")
    );
    // A receipt that does not exist is a `null` result, not an error.
    let missing = upstream
        .forward("eth_getTransactionReceipt", &json!([B256::ZERO]))
        .await
        .unwrap();
    assert_eq!(missing, json!(null));

    match upstream.forward("eth_noSuchMethod", &json!([])).await {
        Err(Error::Node {
            code: -32601,
            message,
            ..
        }) => assert!(!message.is_empty()),
        other => panic!("expected the node's -32601, got {other:?}"),
    }
    match upstream
        .forward("eth_getBalance", &json!(["not an address", "latest"]))
        .await
    {
        Err(Error::Node { code, .. }) => assert_eq!(code, -32602),
        other => panic!("expected the node's invalid-params error, got {other:?}"),
    }
    // A call that reverts (creation code `REVERT(0, 0)`): the node's error object.
    match upstream
        .forward("eth_call", &json!([{"data": "0x60006000fd"}, "latest"]))
        .await
    {
        Err(Error::Node { message, .. }) => assert!(message.contains("revert"), "{message}"),
        other => panic!("expected the node's revert error, got {other:?}"),
    }
}

#[tokio::test]
async fn fees_and_gas_estimates_are_sane() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let fees = upstream.fees().await.unwrap();
    // anvil starts with a 1 gwei base fee and suggests a 1 gwei tip.
    assert_eq!(fees.max_priority_fee_per_gas, 1_000_000_000);
    assert_eq!(fees.max_fee_per_gas, 3_000_000_000);

    let from = anvil.dev_key(0).address();
    let to = anvil.dev_key(1).address();
    let transfer = upstream
        .estimate_gas(from, Some(to), U256::from(1u64), &Bytes::new())
        .await
        .unwrap();
    assert_eq!(transfer, 21_000);
    // Calldata to an EOA costs its intrinsic gas (EIP-7623 floor included on prague).
    let with_data = upstream
        .estimate_gas(from, Some(to), U256::ZERO, &Bytes::from(vec![1u8; 100]))
        .await
        .unwrap();
    assert!(with_data > 21_000 && with_data < 30_000, "{with_data}");
    // A deployment (`to` absent) of a tiny contract returning empty code.
    let deploy = upstream
        .estimate_gas(
            from,
            None,
            U256::ZERO,
            &Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]),
        )
        .await
        .unwrap();
    assert!(deploy > 53_000 && deploy < 60_000, "{deploy}");
    // Code that reverts (`REVERT(0, 0)`): the node's error, passed through.
    let reverts = upstream
        .estimate_gas(
            from,
            None,
            U256::ZERO,
            &Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xfd]),
        )
        .await;
    assert!(matches!(reverts, Err(Error::Node { .. })), "{reverts:?}");
}

#[tokio::test]
async fn send_raw_and_receipt_status() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let key = anvil.dev_key(3);
    let to = Address::repeat_byte(0x42);
    assert_eq!(
        upstream.receipt_status(B256::repeat_byte(7)).await.unwrap(),
        None
    );

    let raw = sign_tx(&upstream, &key, 0, to, U256::from(5u64), Bytes::new()).await;
    let hash = upstream.send_raw(&raw).await.unwrap();
    assert_eq!(hash, keccak256(&raw));
    assert!(
        upstream
            .wait_for_receipt(hash, Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert_eq!(eth_balance(&upstream, to).await, U256::from(5u64));
    assert_eq!(upstream.pending_nonce(key.address()).await.unwrap(), 1);

    // Sending the same transaction again: the node's nonce error, recognised as such.
    let again = upstream.send_raw(&raw).await.unwrap_err();
    assert!(again.is_nonce_too_low(), "{again:?}");

    // A transaction that reverts is mined with status 0.
    let revert_code = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xfd]); // REVERT(0, 0)
    let deploy_nonce = 1;
    let mut tx = TxEip1559 {
        chain_id: upstream.chain_id(),
        nonce: deploy_nonce,
        gas_limit: 100_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Create,
        value: U256::ZERO,
        access_list: Default::default(),
        input: revert_code,
    };
    let signature = key.sign_transaction_sync(&mut tx).unwrap();
    let raw = TxEnvelope::from(tx.into_signed(signature)).encoded_2718();
    let hash = upstream.send_raw(&raw).await.unwrap();
    assert!(
        !upstream
            .wait_for_receipt(hash, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn pending_transactions_have_no_receipt_yet() {
    let anvil = Anvil::spawn_with_args(&["--no-mining"]).await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let key = anvil.dev_key(0);
    let raw = sign_tx(
        &upstream,
        &key,
        0,
        Address::repeat_byte(1),
        U256::from(1u64),
        Bytes::new(),
    )
    .await;
    let hash = upstream.send_raw(&raw).await.unwrap();
    assert_eq!(upstream.receipt_status(hash).await.unwrap(), None);
    assert_eq!(upstream.pending_nonce(key.address()).await.unwrap(), 1);
    assert!(matches!(
        upstream.wait_for_receipt(hash, Duration::from_millis(100)).await,
        Err(Error::NotMined(h)) if h == hash
    ));
    upstream.forward("evm_mine", &json!([])).await.unwrap();
    assert!(
        upstream
            .wait_for_receipt(hash, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_wrong_path_on_a_real_node_is_a_bad_response() {
    let anvil = Anvil::spawn().await.unwrap();
    // anvil serves JSON-RPC on `/` only: elsewhere it answers 404 with an empty body.
    let url = format!("{}/v3/some-api-key", anvil.url());
    match Upstream::connect(&url).await {
        Err(e @ Error::BadResponse(_)) => {
            let text = e.to_string();
            assert!(text.contains("404"), "{text}");
            assert!(!text.contains("some-api-key"), "{text}");
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
}
