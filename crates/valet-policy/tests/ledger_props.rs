//! Property: for any sequence of requests and times, the allowed outflow inside any rolling
//! window never exceeds a cap, and no single allowed request exceeds it.

use alloy_primitives::{Address, Bytes, U256, address};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use valet_policy::{Context, Decision, Policy, Request, SpendLedger, TxRequest, evaluate};

const WALLET: Address = address!("0x00000000000000000000000000000000000000a1");
const TOKEN: Address = address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
const NATIVE_CAP: u64 = 1_000;
const TOKEN_CAP: u64 = 5_000;
const WINDOW: i64 = 3_600;

fn policy() -> Policy {
    Policy::from_toml(&format!(
        r#"
        profile = "full-access"
        expires_at = "2030-01-01T00:00:00Z"
        [[limits.spend]]
        asset = "native"
        amount = "{NATIVE_CAP}"
        window = "1h"
        [[limits.spend]]
        asset = "{TOKEN}"
        amount = "{TOKEN_CAP}"
        window = "1h"
        "#
    ))
    .expect("the test policy parses")
}

/// A native send of `value` wei, or an ERC-20 `transfer(stranger, amount)`.
fn request(native: bool, amount: u64) -> Request {
    let tx = if native {
        TxRequest {
            to: Some(Address::with_last_byte(0xb0)),
            value: U256::from(amount),
            chain_id: Some(1),
            ..Default::default()
        }
    } else {
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(Address::with_last_byte(0xb0).as_slice());
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        TxRequest {
            to: Some(TOKEN),
            data: Bytes::from(data),
            chain_id: Some(1),
            ..Default::default()
        }
    };
    Request::Transaction { send: true, tx }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn allowed_outflow_never_exceeds_a_cap(
        steps in prop::collection::vec((0i64..1_200, any::<bool>(), 0u64..6_000), 1..120)
    ) {
        let policy = policy();
        let mut ledger = SpendLedger::new();
        let mut now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut allowed: Vec<(Timestamp, bool, u64)> = Vec::new();
        for (gap, native, amount) in steps {
            now += SignedDuration::from_secs(gap);
            let ctx = Context { wallet: WALLET, chain_id: 1, now, issued_at: now, client_ip: None, revoked: false };
            let decision = evaluate(&policy, &request(native, amount), &ledger, &ctx);
            ledger.record_request(now);
            if let Decision::Allow(spend) = &decision {
                let cap = if native { NATIVE_CAP } else { TOKEN_CAP };
                prop_assert!(amount <= cap, "a single request over the cap was allowed");
                ledger.reserve(spend, now);
                allowed.push((now, native, amount));
            }
        }
        // Every window (t - WINDOW, t] ending at an allowed request stays within each cap.
        for &(end, _, _) in &allowed {
            for (native, cap) in [(true, NATIVE_CAP), (false, TOKEN_CAP)] {
                let sum: u64 = allowed
                    .iter()
                    .filter(|(t, n, _)| *n == native && *t > end - SignedDuration::from_secs(WINDOW) && *t <= end)
                    .map(|(.., a)| a)
                    .sum();
                prop_assert!(sum <= cap, "window ending {end}: {sum} > {cap}");
            }
        }
    }

    #[test]
    fn a_request_that_fits_is_allowed(amount in 1u64..=NATIVE_CAP) {
        // The cap is not over-enforced: on an empty ledger anything up to the cap passes.
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let ctx = Context { wallet: WALLET, chain_id: 1, now, issued_at: now, client_ip: None, revoked: false };
        prop_assert!(evaluate(&policy(), &request(true, amount), &SpendLedger::new(), &ctx).is_allow());
    }
}
