//! Random calldata to random or known targets: decoding and evaluation never panic.
#![no_main]

mod common;

use alloy_primitives::{Address, Bytes, U256};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use valet_policy::{Request, SpendLedger, TxRequest, decode_transaction, evaluate};

static POLICIES: LazyLock<Vec<valet_policy::Policy>> = LazyLock::new(common::policies);

fuzz_target!(|input: &[u8]| {
    // First byte picks the target: a known router, the wallet itself, or bytes from the input.
    let Some((&pick, rest)) = input.split_first() else {
        return;
    };
    let (to, data) = match pick % 4 {
        0 => (
            alloy_primitives::address!("0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD"),
            rest,
        ),
        1 => (
            alloy_primitives::address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"),
            rest,
        ),
        2 => (common::WALLET, rest),
        _ if rest.len() >= 20 => (Address::from_slice(&rest[..20]), &rest[20..]),
        _ => return,
    };
    let data = Bytes::copy_from_slice(data);
    let action = decode_transaction(common::WALLET, Some(to), U256::from(pick), &data);
    assert!(!action.calls.is_empty() && action.calls.len() <= valet_policy::decode::MAX_CALLS + 1);
    let request = Request::Transaction {
        send: true,
        tx: TxRequest {
            to: Some(to),
            data,
            gas: Some(100_000),
            max_fee_per_gas: Some(1),
            chain_id: Some(1),
            ..Default::default()
        },
    };
    let ledger = SpendLedger::new();
    for policy in POLICIES.iter() {
        let _ = evaluate(policy, &request, &ledger, &common::context());
    }
});
