//! Random JSON-RPC requests (typed data included): normalization and evaluation never panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use valet_policy::{Request, SpendLedger, evaluate};

static POLICIES: LazyLock<Vec<valet_policy::Policy>> = LazyLock::new(common::policies);

fuzz_target!(|input: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) else {
        return;
    };
    let method = value
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("eth_signTypedData_v4");
    let params = value.get("params").unwrap_or(&value);
    let Ok(request) = Request::from_json_rpc(method, params, common::WALLET) else {
        return;
    };
    let ledger = SpendLedger::new();
    for policy in POLICIES.iter() {
        let _ = evaluate(policy, &request, &ledger, &common::context());
    }
});
