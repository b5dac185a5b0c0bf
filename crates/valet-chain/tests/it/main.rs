//! Integration tests of valet-chain against a real anvil (and, for faults anvil cannot
//! produce, a tiny misbehaving HTTP server).

// The whole crate is tests; its helpers (outside `#[test]` functions) may unwrap too.
#![allow(clippy::unwrap_used)]

mod faults;
mod nonce;
mod sandbox;
mod tls;
mod tls_proxy;
mod upstream;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use valet_chain::{Upstream, gas_with_margin};

/// Signs an EIP-1559 transaction with `key`, filling gas and fees from the node; returns the
/// EIP-2718 encoding.
async fn sign_tx(
    upstream: &Upstream,
    key: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: U256,
    input: Bytes,
) -> Vec<u8> {
    let gas = upstream
        .estimate_gas(key.address(), Some(to), value, &input)
        .await
        .unwrap();
    let fees = upstream.fees().await.unwrap();
    let mut tx = TxEip1559 {
        chain_id: upstream.chain_id(),
        nonce,
        gas_limit: gas_with_margin(gas),
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input,
    };
    let signature = key.sign_transaction_sync(&mut tx).unwrap();
    TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
}

/// A native balance, through the raw passthrough.
async fn eth_balance(upstream: &Upstream, who: Address) -> U256 {
    let v = upstream
        .forward("eth_getBalance", &serde_json::json!([who, "latest"]))
        .await
        .unwrap();
    v.as_str().unwrap().parse().unwrap()
}
