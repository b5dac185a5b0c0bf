//! Shared test fixtures: addresses, a decoding shorthand and calldata used by several modules.
//! Calldata comes from foundry's `cast` (the command above each constant), never from the
//! decoders under test.

use super::{Action, Asset, Call, CallKind, Effect, EffectKind, decode_transaction};
use alloy_primitives::{Address, Bytes, U256, address, hex};

pub(crate) const WALLET: Address = address!("00000000000000000000000000000000000000a1");
pub(crate) const ALICE: Address = address!("1111111111111111111111111111111111111111");
pub(crate) const BOB: Address = address!("2222222222222222222222222222222222222222");
pub(crate) const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
pub(crate) const WETH: Address = address!("C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
pub(crate) const DAI: Address = address!("6B175474E89094C44Da98b954EedeAC495271d0F");
pub(crate) const NFT: Address = address!("BC4CA0EdA7647A8aB7C2061c2E118A18a936f13D");
pub(crate) const V2_ROUTER: Address = address!("7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
pub(crate) const SWAP_ROUTER02: Address = address!("68b3465833fb72A70ecDF485E0e4C7bD8665Fc45");
pub(crate) const UNIVERSAL_ROUTER: Address = address!("66a9893cC07D91D95644AEDD05D03f95e1dBA8Af");
pub(crate) const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");
pub(crate) const MULTICALL3: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

// cast calldata 'transfer(address,uint256)' 0x1111111111111111111111111111111111111111 123
pub(crate) const TRANSFER: &str = "0xa9059cbb0000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000007b";

// cast calldata 'approve(address,uint256)' 0x1111111111111111111111111111111111111111 115792089237316195423570985008687907853269984665640564039457584007913129639935
pub(crate) const APPROVE_MAX: &str = "0x095ea7b30000000000000000000000001111111111111111111111111111111111111111ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// Hex calldata as bytes.
pub(crate) fn bytes(hex: &str) -> Bytes {
    Bytes::from(hex::decode(hex).unwrap())
}

/// Decodes `hex` sent by [`WALLET`] to `to` with no value.
pub(crate) fn decode_at(to: Address, hex: &str) -> Action {
    decode_transaction(WALLET, Some(to), U256::ZERO, &bytes(hex))
}

/// Decodes `hex` sent to `to` and returns the single call it makes.
pub(crate) fn single(to: Address, hex: &str) -> Call {
    let mut action = decode_at(to, hex);
    assert_eq!(action.calls.len(), 1, "{action:#?}");
    action.calls.remove(0)
}

/// An effect.
pub(crate) fn fx(asset: Asset, amount: U256, kind: EffectKind, counterparty: Address) -> Effect {
    Effect {
        asset,
        amount,
        kind,
        counterparty,
    }
}

/// A token asset.
pub(crate) fn tok(a: Address) -> Asset {
    Asset::Token(a)
}

/// A small amount.
pub(crate) fn u(n: u64) -> U256 {
    U256::from(n)
}

/// The kinds of every call, in order.
pub(crate) fn kinds(action: &Action) -> Vec<CallKind> {
    action.calls.iter().map(|c| c.kind.clone()).collect()
}

/// A tiny xorshift64* generator: deterministic, no dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next pseudo-random number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (> 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What every decoded action must satisfy, whatever the input.
pub(crate) fn check_invariants(action: &Action) {
    use super::{MAX_BATCH_DEPTH, MAX_CALLS, MAX_EFFECTS};
    assert!(!action.calls.is_empty() && action.calls.len() <= MAX_CALLS + 1);
    let effects: usize = action.calls.iter().map(|c| c.effects.len()).sum();
    // Past the limit, one more call may carry its ERC-7821 value.
    assert!(effects <= MAX_EFFECTS + 1, "{effects} effects");
    for (k, call) in action.calls.iter().enumerate() {
        assert!(call.depth <= MAX_BATCH_DEPTH + 1);
        assert!(call.parent.is_none_or(|p| p < k));
        if matches!(call.kind, CallKind::Undecodable(_)) {
            assert!(call.effects.iter().all(|e| e.asset == Asset::Native));
        }
    }
}

/// Decodes `rounds` random mutations of each seed calldata (bytes overwritten, words set to
/// small values that look like offsets and lengths, truncations) and checks the invariants:
/// valid structures with wrong values reach deeper into the decoders than random bytes do.
pub(crate) fn fuzz_mutations(to: Address, seeds: &[&str], rounds: usize) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for seed in seeds {
        let seed = bytes(seed);
        for _ in 0..rounds {
            let mut data = seed.to_vec();
            for _ in 0..=rng.below(3) {
                let len = data.len() as u64;
                match rng.below(4) {
                    0 if len > 0 => {
                        let at = rng.below(len) as usize;
                        data[at] = rng.next() as u8;
                    }
                    1 if len > 36 => {
                        let word = 4 + 32 * rng.below((len - 4) / 32) as usize;
                        let small = U256::from(rng.below(len + 64)).to_be_bytes::<32>();
                        if let Some(w) = data.get_mut(word..word + 32) {
                            w.copy_from_slice(&small);
                        }
                    }
                    2 if len > 4 => data.truncate(4 + rng.below(len - 4) as usize),
                    _ => data.extend((rng.next() as u32).to_be_bytes()),
                }
            }
            check_invariants(&decode_transaction(
                WALLET,
                Some(to),
                U256::ZERO,
                &data.into(),
            ));
        }
    }
}
