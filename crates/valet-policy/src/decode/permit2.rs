//! Calls to Uniswap's canonical Permit2 contract (`IAllowanceTransfer`, `ISignatureTransfer`).

use super::{
    Asset, CallKind, Effect, EffectKind, MAX_EFFECTS, Permit2Op,
    abi::Tuple,
    batch::{Ctx, Leaf},
};
use alloy_primitives::{Address, U256};

/// `approve(address,address,uint160,uint48)`
const APPROVE: [u8; 4] = [0x87, 0x51, 0x7c, 0x45];
/// `permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)`
const PERMIT_SINGLE: [u8; 4] = [0x2b, 0x67, 0xb5, 0x70];
/// `permit(address,((address,uint160,uint48,uint48)[],address,uint256),bytes)`
const PERMIT_BATCH: [u8; 4] = [0x2a, 0x2d, 0x80, 0xd1];
/// `transferFrom(address,address,uint160,address)`
const TRANSFER_FROM: [u8; 4] = [0x36, 0xc7, 0x85, 0x16];
/// `transferFrom((address,address,uint160,address)[])`
const TRANSFER_FROM_BATCH: [u8; 4] = [0x0d, 0x58, 0xb1, 0xdb];
/// `permitTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes)`
const PERMIT_TRANSFER_FROM: [u8; 4] = [0x30, 0xf2, 0x8b, 0x7a];
/// `permitTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes)`
const PERMIT_BATCH_TRANSFER_FROM: [u8; 4] = [0xed, 0xd9, 0x44, 0x4b];
/// `permitWitnessTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes32,string,bytes)`
const PERMIT_WITNESS_TRANSFER_FROM: [u8; 4] = [0x13, 0x7c, 0x29, 0xfe];
/// `permitWitnessTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes32,string,bytes)`
const PERMIT_BATCH_WITNESS_TRANSFER_FROM: [u8; 4] = [0xfe, 0x8e, 0xc1, 0xa7];
/// `lockdown((address,address)[])`
const LOCKDOWN: [u8; 4] = [0xcc, 0x53, 0x28, 0x7f];
/// `invalidateNonces(address,address,uint48)`
const INVALIDATE_NONCES: [u8; 4] = [0x65, 0xd9, 0x72, 0x3c];
/// `invalidateUnorderedNonces(uint256,uint256)`
const INVALIDATE_UNORDERED_NONCES: [u8; 4] = [0x3f, 0xf9, 0xdc, 0xb1];

/// Every selector this module decodes (for the fuzz test).
#[cfg(test)]
pub(crate) const SELECTORS: &[[u8; 4]] = &[
    APPROVE,
    PERMIT_SINGLE,
    PERMIT_BATCH,
    TRANSFER_FROM,
    TRANSFER_FROM_BATCH,
    PERMIT_TRANSFER_FROM,
    PERMIT_BATCH_TRANSFER_FROM,
    PERMIT_WITNESS_TRANSFER_FROM,
    PERMIT_BATCH_WITNESS_TRANSFER_FROM,
    LOCKDOWN,
    INVALIDATE_NONCES,
    INVALIDATE_UNORDERED_NONCES,
];

/// The largest `uint160`: Permit2's "unlimited" allowance.
pub(crate) const UINT160_MAX: U256 = U256::from_limbs([u64::MAX, u64::MAX, u32::MAX as u64, 0]);

/// A Permit2 allowance amount: `uint160` max is unlimited, reported as [`U256::MAX`].
pub(crate) fn allowance(amount: U256) -> U256 {
    if amount == UINT160_MAX {
        U256::MAX
    } else {
        amount
    }
}

/// Decodes a Permit2 call, or `None` when the selector is not a Permit2 function.
pub(crate) fn decode(sel: [u8; 4], a: Tuple<'_>, ctx: &Ctx) -> Option<Leaf> {
    let leaf = match sel {
        APPROVE => (|| {
            let (token, spender, amount) = (a.address(0)?, a.address(1)?, allowance(a.uint160(2)?));
            a.small(3, 48)?;
            // Zero too: Permit2 moves ERC-721 tokens, where the amount is the token id.
            let fx = vec![Effect {
                asset: Asset::Token(token),
                amount,
                kind: EffectKind::Approval,
                counterparty: spender,
            }];
            Some((
                CallKind::Permit2(Permit2Op::Approve {
                    token,
                    spender,
                    amount,
                }),
                fx,
            ))
        })()
        .ok_or("malformed Permit2 approve"),
        PERMIT_SINGLE => (|| {
            let owner = a.address(0)?;
            let (grants, spender) = permit_single(a.inline(1)?)?;
            a.bytes(7)?;
            Some(permit(ctx.wallet, owner, spender, grants))
        })()
        .ok_or("malformed Permit2 permit"),
        PERMIT_BATCH => (|| {
            let owner = a.address(0)?;
            let (grants, spender) = permit_batch(a.tail(1)?)?;
            a.bytes(2)?;
            Some(permit(ctx.wallet, owner, spender, grants))
        })()
        .ok_or("malformed Permit2 permit batch"),
        TRANSFER_FROM => allowance_transfer(a)
            .map(|t| transfer_from(ctx.wallet, vec![t], false))
            .ok_or("malformed Permit2 transferFrom"),
        TRANSFER_FROM_BATCH => transfer_batch(a, 0)
            .map(|ts| transfer_from(ctx.wallet, ts, false))
            .ok_or("malformed Permit2 transferFrom batch"),
        PERMIT_TRANSFER_FROM | PERMIT_WITNESS_TRANSFER_FROM => (|| {
            let p = a.inline(0)?;
            let (token, _max) = (p.address(0)?, p.uint(1)?);
            p.uint(3)?;
            let (to, amount) = (a.address(4)?, a.uint(5)?);
            let owner = a.address(6)?;
            if sel == PERMIT_WITNESS_TRANSFER_FROM {
                a.word(7)?;
                a.bytes(8)?;
                a.bytes(9)?;
            } else {
                a.bytes(7)?;
            }
            Some(signature_transfer(
                ctx.wallet,
                owner,
                vec![(token, to, amount)],
            ))
        })()
        .ok_or("malformed Permit2 permitTransferFrom"),
        PERMIT_BATCH_TRANSFER_FROM | PERMIT_BATCH_WITNESS_TRANSFER_FROM => (|| {
            let p = a.tail(0)?;
            let permitted = p.array(0, 2)?;
            p.uint(2)?;
            let details = a.array(1, 2)?;
            let owner = a.address(2)?;
            if sel == PERMIT_BATCH_WITNESS_TRANSFER_FROM {
                a.word(3)?;
                a.bytes(4)?;
                a.bytes(5)?;
            } else {
                a.bytes(3)?;
            }
            if permitted.len() != details.len() || details.len() > MAX_EFFECTS {
                return None;
            }
            let mut transfers = Vec::new();
            for k in 0..details.len() {
                let (p, d) = (permitted.item(k)?, details.item(k)?);
                p.uint(1)?;
                transfers.push((p.address(0)?, d.address(0)?, d.uint(1)?));
            }
            Some(signature_transfer(ctx.wallet, owner, transfers))
        })()
        .ok_or("malformed Permit2 permitTransferFrom batch"),
        LOCKDOWN => (|| {
            let pairs = a.array(0, 2)?;
            for k in 0..pairs.len() {
                let pair = pairs.item(k)?;
                pair.address(0)?;
                pair.address(1)?;
            }
            Some(revoke())
        })()
        .ok_or("malformed Permit2 lockdown"),
        INVALIDATE_NONCES => (|| {
            a.address(0)?;
            a.address(1)?;
            a.small(2, 48)?;
            Some(revoke())
        })()
        .ok_or("malformed Permit2 invalidateNonces"),
        INVALIDATE_UNORDERED_NONCES => a
            .uint(1)
            .map(|_| revoke())
            .ok_or("malformed Permit2 invalidateUnorderedNonces"),
        _ => return None,
    };
    Some(leaf)
}

/// A revocation: no effects.
fn revoke() -> (CallKind, Vec<Effect>) {
    (CallKind::Permit2(Permit2Op::Revoke), Vec::new())
}

/// One `PermitDetails` (token, uint160 amount, uint48 expiration, uint48 nonce), inline.
fn details(d: Tuple<'_>) -> Option<(Address, U256)> {
    let grant = (d.address(0)?, allowance(d.uint160(1)?));
    d.small(2, 48)?;
    d.small(3, 48)?;
    Some(grant)
}

/// A `PermitSingle` (details, spender, sigDeadline) inlined at `t`: grants and spender.
pub(crate) fn permit_single(t: Tuple<'_>) -> Option<(Vec<(Address, U256)>, Address)> {
    let grant = details(t)?;
    let spender = t.address(4)?;
    t.uint(5)?;
    Some((vec![grant], spender))
}

/// A `PermitBatch` (details[], spender, sigDeadline) whose tuple starts at `t`.
pub(crate) fn permit_batch(t: Tuple<'_>) -> Option<(Vec<(Address, U256)>, Address)> {
    let list = t.array(0, 4)?;
    let spender = t.address(1)?;
    t.uint(2)?;
    if list.len() > MAX_EFFECTS {
        return None;
    }
    let mut grants = Vec::new();
    for k in 0..list.len() {
        grants.push(details(list.item(k)?)?);
    }
    Some((grants, spender))
}

/// A Permit2 `permit` by `owner`: a [`EffectKind::Permit`] per grant when the owner is the
/// wallet.
pub(crate) fn permit(
    wallet: Address,
    owner: Address,
    spender: Address,
    grants: Vec<(Address, U256)>,
) -> (CallKind, Vec<Effect>) {
    let fx = if owner == wallet {
        grants
            .iter()
            .map(|&(token, amount)| Effect {
                asset: Asset::Token(token),
                amount,
                kind: EffectKind::Permit,
                counterparty: spender,
            })
            .collect()
    } else {
        Vec::new()
    };
    (
        CallKind::Permit2(Permit2Op::Permit {
            owner,
            spender,
            grants,
        }),
        fx,
    )
}

/// One `AllowanceTransferDetails` (from, to, uint160 amount, token), inline.
fn allowance_transfer(t: Tuple<'_>) -> Option<(Address, Address, U256, Address)> {
    Some((t.address(0)?, t.address(1)?, t.uint160(2)?, t.address(3)?))
}

/// The `AllowanceTransferDetails[]` whose offset is head word `i` of `t`.
pub(crate) fn transfer_batch(
    t: Tuple<'_>,
    i: usize,
) -> Option<Vec<(Address, Address, U256, Address)>> {
    let list = t.array(i, 4)?;
    if list.len() > MAX_EFFECTS {
        return None;
    }
    let mut transfers = Vec::new();
    for k in 0..list.len() {
        transfers.push(allowance_transfer(list.item(k)?)?);
    }
    Some(transfers)
}

/// Permit2 allowance transfers: a [`EffectKind::Transfer`] for each one out of the wallet.
/// `mapped`: the Universal Router reads sentinels in their recipients.
pub(crate) fn transfer_from(
    wallet: Address,
    transfers: Vec<(Address, Address, U256, Address)>,
    mapped: bool,
) -> (CallKind, Vec<Effect>) {
    let fx = transfers
        .iter()
        .filter(|t| t.0 == wallet)
        .map(|&(_, to, amount, token)| Effect {
            asset: Asset::Token(token),
            amount,
            kind: EffectKind::Transfer,
            counterparty: to,
        })
        .collect();
    (
        CallKind::Permit2(Permit2Op::TransferFrom { transfers, mapped }),
        fx,
    )
}

/// Permit2 signature transfers of `owner`'s tokens: a [`EffectKind::Transfer`] of each
/// requested amount when the owner is the wallet.
fn signature_transfer(
    wallet: Address,
    owner: Address,
    transfers: Vec<(Address, Address, U256)>,
) -> (CallKind, Vec<Effect>) {
    let fx = if owner == wallet {
        transfers
            .iter()
            .map(|&(token, to, amount)| Effect {
                asset: Asset::Token(token),
                amount,
                kind: EffectKind::Transfer,
                counterparty: to,
            })
            .collect()
    } else {
        Vec::new()
    };
    (
        CallKind::Permit2(Permit2Op::PermitTransferFrom { owner, transfers }),
        fx,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Permit2Op, testutil::*};
    use super::*;
    use alloy_primitives::keccak256;

    // cast calldata 'approve(address,address,uint160,uint48)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af 1461501637330902918203684832716283019655932542975 1700000000
    const P2_APPROVE_MAX: &str = "0x87517c45000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000ffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000006553f100";

    // cast calldata 'approve(address,address,uint160,uint48)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af 0 0
    const P2_APPROVE_ZERO: &str = "0x87517c45000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)' 0x00000000000000000000000000000000000000a1 '((0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000000,1700000000,0),0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,1700000000)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_SINGLE: &str = "0x2b67b57000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000f4240000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permit(address,((address,uint160,uint48,uint48)[],address,uint256),bytes)' 0x00000000000000000000000000000000000000a1 '([(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1461501637330902918203684832716283019655932542975,1700000000,0),(0x6B175474E89094C44Da98b954EedeAC495271d0F,5,1700000000,1)],0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,1700000000)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_BATCH: &str = "0x2a2d80d100000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000001e0000000000000000000000000000000000000000000000000000000000000006000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000ffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006b175474e89094c44da98b954eedeac495271d0f0000000000000000000000000000000000000000000000000000000000000005000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)' 0x2222222222222222222222222222222222222222 '((0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000000,1700000000,0),0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,1700000000)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_SINGLE_OTHER: &str = "0x2b67b5700000000000000000000000002222222222222222222222222222222222222222000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000f4240000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'transferFrom(address,address,uint160,address)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 900 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48
    const P2_TRANSFER_FROM: &str = "0x36c7851600000000000000000000000000000000000000000000000000000000000000a100000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000384000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast calldata 'transferFrom((address,address,uint160,address)[])' '[(0x00000000000000000000000000000000000000a1,0x1111111111111111111111111111111111111111,900,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48),(0x2222222222222222222222222222222222222222,0x1111111111111111111111111111111111111111,800,0x6B175474E89094C44Da98b954EedeAC495271d0F)]'
    const P2_TRANSFER_FROM_BATCH: &str = "0x0d58b1db0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000a100000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000384000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000002222222222222222222222222222222222222222000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000003200000000000000000000000006b175474e89094c44da98b954eedeac495271d0f";

    // cast calldata 'permitTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes)' '((0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000),7,1700000000)' '(0x1111111111111111111111111111111111111111,600)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_TRANSFER_FROM: &str = "0x30f28b7a000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e80000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000025800000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permitTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes)' '([(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000),(0x6B175474E89094C44Da98b954EedeAC495271d0F,2000)],7,1700000000)' '[(0x1111111111111111111111111111111111111111,600),(0x2222222222222222222222222222222222222222,2000)]' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_BATCH_TRANSFER_FROM: &str = "0xedd9444b0000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000018000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000000000022000000000000000000000000000000000000000000000000000000000000000600000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e80000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000000000000000000000000000000000000000007d0000000000000000000000000000000000000000000000000000000000000000200000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000258000000000000000000000000222222222222222222222222222222222222222200000000000000000000000000000000000000000000000000000000000007d00000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permitTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes)' '([(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000),(0x6B175474E89094C44Da98b954EedeAC495271d0F,2000)],7,1700000000)' '[(0x1111111111111111111111111111111111111111,600)]' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_BATCH_TRANSFER_FROM_MISMATCH: &str = "0xedd9444b0000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000018000000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000001e000000000000000000000000000000000000000000000000000000000000000600000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e80000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000000000000000000000000000000000000000007d00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000002580000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permitWitnessTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes32,string,bytes)' '((0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000),7,1700000000)' '(0x1111111111111111111111111111111111111111,600)' 0x00000000000000000000000000000000000000a1 0x4444444444444444444444444444444444444444444444444444444444444444 'Witness witness)Witness(uint256 x)TokenPermissions(address token,uint256 amount)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_WITNESS_TRANSFER_FROM: &str = "0x137c29fe000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e80000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000025800000000000000000000000000000000000000000000000000000000000000a14444444444444444444444444444444444444444444444444444444444444444000000000000000000000000000000000000000000000000000000000000014000000000000000000000000000000000000000000000000000000000000001c000000000000000000000000000000000000000000000000000000000000000505769746e657373207769746e657373295769746e6573732875696e74323536207829546f6b656e5065726d697373696f6e73286164647265737320746f6b656e2c75696e7432353620616d6f756e7429000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'permitWitnessTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes32,string,bytes)' '([(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000),(0x6B175474E89094C44Da98b954EedeAC495271d0F,2000)],7,1700000000)' '[(0x1111111111111111111111111111111111111111,600),(0x2222222222222222222222222222222222222222,2000)]' 0x2222222222222222222222222222222222222222 0x4444444444444444444444444444444444444444444444444444444444444444 'Witness witness)Witness(uint256 x)TokenPermissions(address token,uint256 amount)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const P2_PERMIT_BATCH_WITNESS_TRANSFER_FROM: &str = "0xfe8ec1a700000000000000000000000000000000000000000000000000000000000000c000000000000000000000000000000000000000000000000000000000000001c000000000000000000000000022222222222222222222222222222222222222224444444444444444444444444444444444444444444444444444444444444444000000000000000000000000000000000000000000000000000000000000026000000000000000000000000000000000000000000000000000000000000002e000000000000000000000000000000000000000000000000000000000000000600000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e80000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000000000000000000000000000000000000000007d0000000000000000000000000000000000000000000000000000000000000000200000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000258000000000000000000000000222222222222222222222222222222222222222200000000000000000000000000000000000000000000000000000000000007d000000000000000000000000000000000000000000000000000000000000000505769746e657373207769746e657373295769746e6573732875696e74323536207829546f6b656e5065726d697373696f6e73286164647265737320746f6b656e2c75696e7432353620616d6f756e7429000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'lockdown((address,address)[])' '[(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af),(0x6B175474E89094C44Da98b954EedeAC495271d0F,0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af)]'
    const P2_LOCKDOWN: &str = "0xcc53287f00000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af0000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af";

    // cast calldata 'invalidateNonces(address,address,uint48)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af 5
    const P2_INVALIDATE_NONCES: &str = "0x65d9723c000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af0000000000000000000000000000000000000000000000000000000000000005";

    // cast calldata 'invalidateUnorderedNonces(uint256,uint256)' 1 255
    const P2_INVALIDATE_UNORDERED_NONCES: &str = "0x3ff9dcb1000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000ff";

    /// Checks a Permit2 call's op and effects.
    fn check(hex: &str, op: Permit2Op, effects: Vec<Effect>) {
        let call = single(PERMIT2, hex);
        assert_eq!(call.kind, CallKind::Permit2(op));
        assert_eq!(call.effects, effects);
    }

    #[test]
    fn selectors_match_their_signatures() {
        for (sel, sig) in [
            (super::APPROVE, "approve(address,address,uint160,uint48)"),
            (
                super::PERMIT_SINGLE,
                "permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)",
            ),
            (
                super::PERMIT_BATCH,
                "permit(address,((address,uint160,uint48,uint48)[],address,uint256),bytes)",
            ),
            (
                super::TRANSFER_FROM,
                "transferFrom(address,address,uint160,address)",
            ),
            (
                super::TRANSFER_FROM_BATCH,
                "transferFrom((address,address,uint160,address)[])",
            ),
            (
                super::PERMIT_TRANSFER_FROM,
                "permitTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes)",
            ),
            (
                super::PERMIT_BATCH_TRANSFER_FROM,
                "permitTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes)",
            ),
            (
                super::PERMIT_WITNESS_TRANSFER_FROM,
                "permitWitnessTransferFrom(((address,uint256),uint256,uint256),(address,uint256),address,bytes32,string,bytes)",
            ),
            (
                super::PERMIT_BATCH_WITNESS_TRANSFER_FROM,
                "permitWitnessTransferFrom(((address,uint256)[],uint256,uint256),(address,uint256)[],address,bytes32,string,bytes)",
            ),
            (super::LOCKDOWN, "lockdown((address,address)[])"),
            (
                super::INVALIDATE_NONCES,
                "invalidateNonces(address,address,uint48)",
            ),
            (
                super::INVALIDATE_UNORDERED_NONCES,
                "invalidateUnorderedNonces(uint256,uint256)",
            ),
        ] {
            assert_eq!(sel, keccak256(sig)[..4], "{sig}");
        }
        assert_eq!(UINT160_MAX, (U256::from(1) << 160) - U256::from(1));
    }

    #[test]
    fn approve() {
        let op = Permit2Op::Approve {
            token: USDC,
            spender: UNIVERSAL_ROUTER,
            amount: U256::MAX,
        };
        check(
            P2_APPROVE_MAX,
            op,
            vec![fx(
                tok(USDC),
                U256::MAX,
                EffectKind::Approval,
                UNIVERSAL_ROUTER,
            )],
        );
        let op = Permit2Op::Approve {
            token: USDC,
            spender: UNIVERSAL_ROUTER,
            amount: U256::ZERO,
        };
        let zero = fx(
            tok(USDC),
            U256::ZERO,
            EffectKind::Approval,
            UNIVERSAL_ROUTER,
        );
        check(P2_APPROVE_ZERO, op, vec![zero]);
    }

    #[test]
    fn permit_single_and_batch() {
        let op = Permit2Op::Permit {
            owner: WALLET,
            spender: UNIVERSAL_ROUTER,
            grants: vec![(USDC, u(1_000_000))],
        };
        check(
            P2_PERMIT_SINGLE,
            op,
            vec![fx(
                tok(USDC),
                u(1_000_000),
                EffectKind::Permit,
                UNIVERSAL_ROUTER,
            )],
        );
        let op = Permit2Op::Permit {
            owner: WALLET,
            spender: UNIVERSAL_ROUTER,
            grants: vec![(USDC, U256::MAX), (DAI, u(5))],
        };
        let effects = vec![
            fx(tok(USDC), U256::MAX, EffectKind::Permit, UNIVERSAL_ROUTER),
            fx(tok(DAI), u(5), EffectKind::Permit, UNIVERSAL_ROUTER),
        ];
        check(P2_PERMIT_BATCH, op, effects);
        let op = Permit2Op::Permit {
            owner: BOB,
            spender: UNIVERSAL_ROUTER,
            grants: vec![(USDC, u(1_000_000))],
        };
        check(P2_PERMIT_SINGLE_OTHER, op, vec![]);
    }

    #[test]
    fn allowance_transfers() {
        let op = Permit2Op::TransferFrom {
            transfers: vec![(WALLET, ALICE, u(900), USDC)],
            mapped: false,
        };
        check(
            P2_TRANSFER_FROM,
            op,
            vec![fx(tok(USDC), u(900), EffectKind::Transfer, ALICE)],
        );
        let op = Permit2Op::TransferFrom {
            transfers: vec![(WALLET, ALICE, u(900), USDC), (BOB, ALICE, u(800), DAI)],
            mapped: false,
        };
        check(
            P2_TRANSFER_FROM_BATCH,
            op,
            vec![fx(tok(USDC), u(900), EffectKind::Transfer, ALICE)],
        );
    }

    #[test]
    fn signature_transfers() {
        let op = Permit2Op::PermitTransferFrom {
            owner: WALLET,
            transfers: vec![(USDC, ALICE, u(600))],
        };
        let effects = vec![fx(tok(USDC), u(600), EffectKind::Transfer, ALICE)];
        check(P2_PERMIT_TRANSFER_FROM, op.clone(), effects.clone());
        check(P2_PERMIT_WITNESS_TRANSFER_FROM, op, effects);
        let op = Permit2Op::PermitTransferFrom {
            owner: WALLET,
            transfers: vec![(USDC, ALICE, u(600)), (DAI, BOB, u(2000))],
        };
        let effects = vec![
            fx(tok(USDC), u(600), EffectKind::Transfer, ALICE),
            fx(tok(DAI), u(2000), EffectKind::Transfer, BOB),
        ];
        check(P2_PERMIT_BATCH_TRANSFER_FROM, op, effects);
        // Someone else's tokens: no effect on the wallet.
        let op = Permit2Op::PermitTransferFrom {
            owner: BOB,
            transfers: vec![(USDC, ALICE, u(600)), (DAI, BOB, u(2000))],
        };
        check(P2_PERMIT_BATCH_WITNESS_TRANSFER_FROM, op, vec![]);
        let call = single(PERMIT2, P2_PERMIT_BATCH_TRANSFER_FROM_MISMATCH);
        assert_eq!(
            call.kind,
            CallKind::Undecodable("malformed Permit2 permitTransferFrom batch")
        );
    }

    #[test]
    fn revocations() {
        for hex in [
            P2_LOCKDOWN,
            P2_INVALIDATE_NONCES,
            P2_INVALIDATE_UNORDERED_NONCES,
        ] {
            check(hex, Permit2Op::Revoke, vec![]);
        }
    }

    #[test]
    fn out_of_range_uint160_is_undecodable() {
        // The amount word of approve(token, spender, amount, expiration) above 2^160 - 1.
        let mut data = bytes(P2_APPROVE_MAX).to_vec();
        data[4 + 2 * 32 + 11] = 1;
        let action =
            super::super::decode_transaction(WALLET, Some(PERMIT2), U256::ZERO, &data.into());
        assert_eq!(
            action.calls[0].kind,
            CallKind::Undecodable("malformed Permit2 approve")
        );
    }

    #[test]
    fn mutated_calldata_never_panics() {
        fuzz_mutations(
            PERMIT2,
            &[
                P2_PERMIT_BATCH,
                P2_TRANSFER_FROM_BATCH,
                P2_PERMIT_BATCH_TRANSFER_FROM,
                P2_PERMIT_BATCH_WITNESS_TRANSFER_FROM,
                P2_PERMIT_WITNESS_TRANSFER_FROM,
                P2_LOCKDOWN,
            ],
            1500,
        );
    }
}
