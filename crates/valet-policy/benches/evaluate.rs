//! Benchmark of one decision, decoding included: `cargo bench -p valet-policy --bench evaluate`.
//!
//! A swap-only policy with 20 rules decides a Uniswap V2 swap, a Universal Router `execute`
//! of three commands, and a denied token transfer. Before criterion runs, a plain timing
//! pass prints the median and p99 of single decisions and the heap allocations per decision,
//! and checks that live heap does not grow across calls.

#![allow(missing_docs)]

use alloy_primitives::{Address, Bytes, U256, address, hex};
use criterion::Criterion;
use jiff::Timestamp;
use std::{hint::black_box, time::Instant};
use valet_policy::{Context, Policy, Request, SpendLedger, TxRequest, evaluate};

// Passes straight through to the system allocator unless a dhat profiler is running, which
// only the allocation pass below starts.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const WALLET: Address = address!("0x00000000000000000000000000000000000000a1");
const USDC: Address = address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const V2_ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
const UNIVERSAL_ROUTER: Address = address!("0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD");

// cast calldata "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)" 1000000000 1 \
//   "[0xA0b8…eB48,0xC02a…6Cc2]" 0x…a1 1800000000
const V2_SWAP: &str = "0x38ed1739000000000000000000000000000000000000000000000000000000003b9aca00000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006b49d2000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

// cast calldata "execute(bytes,bytes[],uint256)" 0x0a000c "[$PERMIT2_PERMIT,$V3_SWAP_EXACT_IN,$UNWRAP_WETH]" 1800000000
// with PERMIT2_PERMIT = cast abi-encode "f(((address,uint160,uint48,uint48),address,uint256),bytes)"
//   "((USDC,1000000000,1800000000,0),UR,1800000000)" 0xabab…(65 bytes),
// V3_SWAP_EXACT_IN = cast abi-encode "f(address,uint256,uint256,bytes,bool)" address(2) 1000000000 1
//   $(cast concat-hex USDC 0x0001f4 WETH) true, UNWRAP_WETH = cast abi-encode "f(address,uint256)" address(1) 1
const UR_EXECUTE: &str = "0x3593564c000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000006b49d20000000000000000000000000000000000000000000000000000000000000000030a000c00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000001e000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000160000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000000000000000003b9aca00000000000000000000000000000000000000000000000000000000006b49d20000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003fc91a3afd70395cd496c647d5a6cc9d4b2b7fad000000000000000000000000000000000000000000000000000000006b49d20000000000000000000000000000000000000000000000000000000000000000e00000000000000000000000000000000000000000000000000000000000000041ababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000003b9aca00000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002ba0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001";

// cast calldata "transfer(address,uint256)" 0x00000000000000000000000000000000000000b0 5000000
const TRANSFER: &str = "0xa9059cbb00000000000000000000000000000000000000000000000000000000000000b000000000000000000000000000000000000000000000000000000000004c4b40";

fn tx(to: Address, data: &str) -> Request {
    let tx = TxRequest {
        to: Some(to),
        value: U256::ZERO,
        data: Bytes::from(hex::decode(data).expect("bench calldata is hex")),
        gas: Some(300_000),
        max_fee_per_gas: Some(30_000_000_000),
        max_priority_fee_per_gas: Some(1_000_000_000),
        chain_id: Some(1),
        ..TxRequest::default()
    };
    Request::Transaction { send: true, tx }
}

fn cases() -> [(&'static str, Request, bool); 3] {
    [
        ("v2_swap", tx(V2_ROUTER, V2_SWAP), true),
        (
            "universal_router_3_commands",
            tx(UNIVERSAL_ROUTER, UR_EXECUTE),
            true,
        ),
        ("denied_token_transfer", tx(USDC, TRANSFER), false),
    ]
}

fn setup() -> (Policy, SpendLedger, Context) {
    let policy = Policy::from_toml(include_str!("data/swap-only-20-rules.toml"))
        .expect("bench policy parses");
    let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
    let mut ledger = SpendLedger::new();
    // A realistic history: a day of earlier requests and reservations.
    for i in 0..200 {
        let at = now - jiff::SignedDuration::from_secs(i * 400);
        ledger.record_request(at);
        ledger.reserve(
            &vec![(valet_policy::Asset::Token(USDC), U256::from(1_000))],
            at,
        );
    }
    let ctx = Context {
        wallet: WALLET,
        chain_id: 1,
        now,
        issued_at: now,
        client_ip: Some("127.0.0.1".parse().expect("ip")),
        revoked: false,
    };
    (policy, ledger, ctx)
}

/// Heap blocks allocated per call, and live bytes gained from 1,000 calls to 11,000 calls.
fn allocations(mut f: impl FnMut()) -> (f64, i128) {
    let _profiler = dhat::Profiler::builder().testing().build();
    for _ in 0..1_000 {
        f();
    }
    let before = dhat::HeapStats::get();
    for _ in 0..10_000 {
        f();
    }
    let after = dhat::HeapStats::get();
    let per_call = (after.total_blocks - before.total_blocks) as f64 / 10_000.0;
    (
        per_call,
        after.curr_bytes as i128 - before.curr_bytes as i128,
    )
}

/// Median and p99 of single decisions, allocations per decision, live-heap growth.
fn percentiles() {
    let (policy, ledger, ctx) = setup();
    println!(
        "{:<30} {:>10} {:>10} {:>12} {:>14}",
        "case", "median", "p99", "allocs/call", "live growth"
    );
    for (name, request, allowed) in cases() {
        assert_eq!(
            evaluate(&policy, &request, &ledger, &ctx).is_allow(),
            allowed,
            "{name}"
        );
        const N: usize = 200_000;
        let mut samples = Vec::with_capacity(N);
        for _ in 0..10_000 {
            black_box(evaluate(&policy, black_box(&request), &ledger, &ctx));
        }
        for _ in 0..N {
            let t = Instant::now();
            black_box(evaluate(&policy, black_box(&request), &ledger, &ctx));
            samples.push(t.elapsed().as_nanos() as u64);
        }
        let (allocs, growth) = allocations(|| {
            black_box(evaluate(&policy, black_box(&request), &ledger, &ctx));
        });
        samples.sort_unstable();
        let pct = |p: f64| samples[((N as f64 - 1.0) * p) as usize] as f64 / 1000.0;
        println!(
            "{name:<30} {:>8.2}µs {:>8.2}µs {allocs:>12.1} {growth:>12} B",
            pct(0.50),
            pct(0.99)
        );
    }
}

fn main() {
    percentiles();
    let (policy, ledger, ctx) = setup();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("evaluate");
    for (name, request, _) in cases() {
        group.bench_function(name, |b| {
            b.iter(|| evaluate(&policy, black_box(&request), &ledger, &ctx))
        });
    }
    group.finish();
    c.final_summary();
}
