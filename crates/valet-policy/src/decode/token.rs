//! Token calls: ERC-20 (with EIP-2612 and DAI `permit`), ERC-721, ERC-1155 and WETH.

use super::{
    Asset, CallKind, Effect, EffectKind, TokenOp,
    abi::Tuple,
    batch::{Ctx, Leaf},
};
use alloy_primitives::{Address, U256};

/// `transfer(address,uint256)`
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `transferFrom(address,address,uint256)`
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// `approve(address,uint256)`
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
/// `increaseAllowance(address,uint256)`
const INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];
/// `decreaseAllowance(address,uint256)`
const DECREASE_ALLOWANCE: [u8; 4] = [0xa4, 0x57, 0xc2, 0xd7];
/// `permit(address,address,uint256,uint256,uint8,bytes32,bytes32)` (EIP-2612)
const PERMIT: [u8; 4] = [0xd5, 0x05, 0xac, 0xcf];
/// `permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)` (DAI)
const DAI_PERMIT: [u8; 4] = [0x8f, 0xcb, 0xaf, 0x0c];
/// `safeTransferFrom(address,address,uint256)` (ERC-721)
const SAFE_TRANSFER_FROM: [u8; 4] = [0x42, 0x84, 0x2e, 0x0e];
/// `safeTransferFrom(address,address,uint256,bytes)` (ERC-721)
const SAFE_TRANSFER_FROM_DATA: [u8; 4] = [0xb8, 0x8d, 0x4f, 0xde];
/// `safeTransferFrom(address,address,uint256,uint256,bytes)` (ERC-1155)
const SAFE_TRANSFER_FROM_1155: [u8; 4] = [0xf2, 0x42, 0x43, 0x2a];
/// `safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)` (ERC-1155)
const SAFE_BATCH_TRANSFER_FROM: [u8; 4] = [0x2e, 0xb2, 0xc2, 0xd6];
/// `setApprovalForAll(address,bool)`
const SET_APPROVAL_FOR_ALL: [u8; 4] = [0xa2, 0x2c, 0xb4, 0x65];
/// `deposit()` (WETH)
const DEPOSIT: [u8; 4] = [0xd0, 0xe3, 0x0d, 0xb0];
/// `withdraw(uint256)` (WETH)
const WITHDRAW: [u8; 4] = [0x2e, 0x1a, 0x7d, 0x4d];

/// Every selector this module decodes (for the fuzz test).
#[cfg(test)]
pub(crate) const SELECTORS: &[[u8; 4]] = &[
    TRANSFER,
    TRANSFER_FROM,
    APPROVE,
    INCREASE_ALLOWANCE,
    DECREASE_ALLOWANCE,
    PERMIT,
    DAI_PERMIT,
    SAFE_TRANSFER_FROM,
    SAFE_TRANSFER_FROM_DATA,
    SAFE_TRANSFER_FROM_1155,
    SAFE_BATCH_TRANSFER_FROM,
    SET_APPROVAL_FOR_ALL,
    DEPOSIT,
    WITHDRAW,
];

/// Decodes a token call, or `None` when the selector is not a token function.
pub(crate) fn decode(sel: [u8; 4], a: Tuple<'_>, ctx: &Ctx) -> Option<Leaf> {
    let token = Asset::Token(ctx.to);
    let effect = |amount, kind, counterparty| Effect {
        asset: token,
        amount,
        kind,
        counterparty,
    };
    let leaf = match sel {
        TRANSFER => (|| {
            let (to, amount) = (a.address(0)?, a.uint(1)?);
            let fx = vec![effect(amount, EffectKind::Transfer, to)];
            Some((TokenOp::Transfer { to, amount }, fx))
        })()
        .ok_or("malformed ERC-20 transfer"),
        TRANSFER_FROM => (|| {
            let (from, to, amount) = (a.address(0)?, a.address(1)?, a.uint(2)?);
            let fx = if from == ctx.wallet {
                vec![effect(amount, EffectKind::Transfer, to)]
            } else {
                vec![]
            };
            Some((TokenOp::TransferFrom { from, to, amount }, fx))
        })()
        .ok_or("malformed transferFrom"),
        APPROVE => (|| {
            let (spender, amount) = (a.address(0)?, a.uint(1)?);
            // Zero too: on an ERC-721 (the same selector) it approves token id 0, which the
            // evaluator counts as one token under a cap without decimals.
            let fx = vec![effect(amount, EffectKind::Approval, spender)];
            Some((TokenOp::Approve { spender, amount }, fx))
        })()
        .ok_or("malformed approve"),
        INCREASE_ALLOWANCE => (|| {
            let (spender, amount) = (a.address(0)?, a.uint(1)?);
            let fx = if amount.is_zero() {
                vec![]
            } else {
                vec![effect(amount, EffectKind::Approval, spender)]
            };
            Some((TokenOp::IncreaseAllowance { spender, amount }, fx))
        })()
        .ok_or("malformed increaseAllowance"),
        DECREASE_ALLOWANCE => (|| {
            let (spender, amount) = (a.address(0)?, a.uint(1)?);
            Some((TokenOp::DecreaseAllowance { spender, amount }, vec![]))
        })()
        .ok_or("malformed decreaseAllowance"),
        PERMIT => (|| {
            let (owner, spender, amount) = (a.address(0)?, a.address(1)?, a.uint(2)?);
            a.uint(3)?;
            a.small(4, 8)?;
            a.word(6)?;
            Some(permit(ctx.wallet, owner, spender, amount, &effect))
        })()
        .ok_or("malformed EIP-2612 permit"),
        DAI_PERMIT => (|| {
            let (owner, spender) = (a.address(0)?, a.address(1)?);
            let allowed = a.boolean(4)?;
            a.small(5, 8)?;
            a.word(7)?;
            let amount = if allowed { U256::MAX } else { U256::ZERO };
            Some(permit(ctx.wallet, owner, spender, amount, &effect))
        })()
        .ok_or("malformed DAI permit"),
        SAFE_TRANSFER_FROM | SAFE_TRANSFER_FROM_DATA => (|| {
            let (from, to, id) = (a.address(0)?, a.address(1)?, a.uint(2)?);
            if sel == SAFE_TRANSFER_FROM_DATA {
                a.bytes(3)?;
            }
            let fx = if from == ctx.wallet {
                vec![effect(U256::from(1), EffectKind::Transfer, to)]
            } else {
                vec![]
            };
            Some((TokenOp::NftTransfer { from, to, id }, fx))
        })()
        .ok_or("malformed ERC-721 safeTransferFrom"),
        SAFE_TRANSFER_FROM_1155 => (|| {
            let (from, to, amount) = (a.address(0)?, a.address(1)?, a.uint(3)?);
            a.uint(2)?;
            a.bytes(4)?;
            Some(multi(ctx.wallet, from, to, amount, &effect))
        })()
        .ok_or("malformed ERC-1155 safeTransferFrom"),
        SAFE_BATCH_TRANSFER_FROM => (|| {
            let (from, to) = (a.address(0)?, a.address(1)?);
            let (ids, amounts) = (a.array(2, 1)?, a.array(3, 1)?);
            a.bytes(4)?;
            if ids.len() != amounts.len() {
                return None;
            }
            let mut total = U256::ZERO;
            for k in 0..amounts.len() {
                total = total.saturating_add(amounts.uint(k)?);
            }
            Some(multi(ctx.wallet, from, to, total, &effect))
        })()
        .ok_or("malformed ERC-1155 safeBatchTransferFrom"),
        SET_APPROVAL_FOR_ALL => (|| {
            let (operator, approved) = (a.address(0)?, a.boolean(1)?);
            let fx = if approved {
                vec![effect(U256::MAX, EffectKind::OperatorGrant, operator)]
            } else {
                vec![]
            };
            Some((TokenOp::SetApprovalForAll { operator, approved }, fx))
        })()
        .ok_or("malformed setApprovalForAll"),
        DEPOSIT => Ok((TokenOp::WrapNative, vec![])),
        WITHDRAW => a
            .uint(0)
            .map(|amount| (TokenOp::UnwrapNative { amount }, vec![]))
            .ok_or("malformed WETH withdraw"),
        _ => return None,
    };
    Some(leaf.map(|(op, fx)| (CallKind::Token(op), fx)))
}

/// A `permit` call: a [`EffectKind::Permit`] when the wallet is the owner.
fn permit(
    wallet: Address,
    owner: Address,
    spender: Address,
    amount: U256,
    effect: &impl Fn(U256, EffectKind, Address) -> Effect,
) -> (TokenOp, Vec<Effect>) {
    let fx = if owner == wallet {
        vec![effect(amount, EffectKind::Permit, spender)]
    } else {
        vec![]
    };
    (
        TokenOp::Permit {
            owner,
            spender,
            amount,
        },
        fx,
    )
}

/// An ERC-1155 transfer: a [`EffectKind::Transfer`] when the wallet is the owner.
fn multi(
    wallet: Address,
    from: Address,
    to: Address,
    amount: U256,
    effect: &impl Fn(U256, EffectKind, Address) -> Effect,
) -> (TokenOp, Vec<Effect>) {
    let fx = if from == wallet {
        vec![effect(amount, EffectKind::Transfer, to)]
    } else {
        vec![]
    };
    (TokenOp::MultiTokenTransfer { from, to, amount }, fx)
}

#[cfg(test)]
mod tests {
    use super::super::{decode_transaction, testutil::*};
    use super::*;
    use alloy_primitives::keccak256;

    // cast calldata 'transferFrom(address,address,uint256)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 500
    const TRANSFER_FROM_WALLET: &str = "0x23b872dd00000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000001f4";

    // cast calldata 'transferFrom(address,address,uint256)' 0x2222222222222222222222222222222222222222 0x1111111111111111111111111111111111111111 500
    const TRANSFER_FROM_OTHER: &str = "0x23b872dd0000000000000000000000002222222222222222222222222222222222222222000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000001f4";

    // cast calldata 'approve(address,uint256)' 0x1111111111111111111111111111111111111111 0
    const APPROVE_ZERO: &str = "0x095ea7b300000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'increaseAllowance(address,uint256)' 0x1111111111111111111111111111111111111111 77
    const INCREASE_ALLOWANCE: &str = "0x395093510000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000004d";

    // cast calldata 'decreaseAllowance(address,uint256)' 0x1111111111111111111111111111111111111111 77
    const DECREASE_ALLOWANCE: &str = "0xa457c2d70000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000004d";

    // cast calldata 'permit(address,address,uint256,uint256,uint8,bytes32,bytes32)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 1000 1700000000 27 0x2222222222222222222222222222222222222222222222222222222222222222 0x3333333333333333333333333333333333333333333333333333333333333333
    const PERMIT_2612: &str = "0xd505accf00000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000001b22222222222222222222222222222222222222222222222222222222222222223333333333333333333333333333333333333333333333333333333333333333";

    // cast calldata 'permit(address,address,uint256,uint256,uint8,bytes32,bytes32)' 0x2222222222222222222222222222222222222222 0x1111111111111111111111111111111111111111 1000 1700000000 27 0x2222222222222222222222222222222222222222222222222222222222222222 0x3333333333333333333333333333333333333333333333333333333333333333
    const PERMIT_2612_OTHER: &str = "0xd505accf0000000000000000000000002222222222222222222222222222222222222222000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000001b22222222222222222222222222222222222222222222222222222222222222223333333333333333333333333333333333333333333333333333333333333333";

    // cast calldata 'permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 3 1700000000 true 28 0x2222222222222222222222222222222222222222222222222222222222222222 0x3333333333333333333333333333333333333333333333333333333333333333
    const PERMIT_DAI: &str = "0x8fcbaf0c00000000000000000000000000000000000000000000000000000000000000a100000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000001c22222222222222222222222222222222222222222222222222222222222222223333333333333333333333333333333333333333333333333333333333333333";

    // cast calldata 'safeTransferFrom(address,address,uint256)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 42
    const NFT_SAFE_TRANSFER: &str = "0x42842e0e00000000000000000000000000000000000000000000000000000000000000a10000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000002a";

    // cast calldata 'safeTransferFrom(address,address,uint256,bytes)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 42 0xcafe
    const NFT_SAFE_TRANSFER_DATA: &str = "0xb88d4fde00000000000000000000000000000000000000000000000000000000000000a10000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000002a00000000000000000000000000000000000000000000000000000000000000800000000000000000000000000000000000000000000000000000000000000002cafe000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'safeTransferFrom(address,address,uint256,uint256,bytes)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 7 25 0x
    const ERC1155_TRANSFER: &str = "0xf242432a00000000000000000000000000000000000000000000000000000000000000a100000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000007000000000000000000000000000000000000000000000000000000000000001900000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 '[1,2,3]' '[10,20,30]' 0x
    const ERC1155_BATCH: &str = "0x2eb2c2d600000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000012000000000000000000000000000000000000000000000000000000000000001a000000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000014000000000000000000000000000000000000000000000000000000000000001e0000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 '[1,2,3]' '[10,20]' 0x
    const ERC1155_BATCH_MISMATCH: &str = "0x2eb2c2d600000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000120000000000000000000000000000000000000000000000000000000000000018000000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000140000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)' 0x00000000000000000000000000000000000000a1 0x1111111111111111111111111111111111111111 '[1,2]' '[115792089237316195423570985008687907853269984665640564039457584007913129639935,5]' 0x
    const ERC1155_BATCH_SATURATING: &str = "0x2eb2c2d600000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001600000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000002ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000000000000000000000000000000000000000000000000000000000000050000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'setApprovalForAll(address,bool)' 0x1111111111111111111111111111111111111111 true
    const SET_APPROVAL_FOR_ALL: &str = "0xa22cb46500000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata 'setApprovalForAll(address,bool)' 0x1111111111111111111111111111111111111111 false
    const REVOKE_APPROVAL_FOR_ALL: &str = "0xa22cb46500000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'deposit()'
    const DEPOSIT: &str = "0xd0e30db0";

    // cast calldata 'withdraw(uint256)' 1000000000000000000
    const WITHDRAW: &str =
        "0x2e1a7d4d0000000000000000000000000000000000000000000000000de0b6b3a7640000";

    /// Checks a call's kind and effects.
    fn check(hex: &str, op: TokenOp, effects: Vec<Effect>) {
        let call = single(USDC, hex);
        assert_eq!(call.kind, CallKind::Token(op));
        assert_eq!(call.effects, effects);
    }

    #[test]
    fn selectors_match_their_signatures() {
        for (sel, sig) in [
            (super::TRANSFER, "transfer(address,uint256)"),
            (
                super::TRANSFER_FROM,
                "transferFrom(address,address,uint256)",
            ),
            (super::APPROVE, "approve(address,uint256)"),
            (
                super::INCREASE_ALLOWANCE,
                "increaseAllowance(address,uint256)",
            ),
            (
                super::DECREASE_ALLOWANCE,
                "decreaseAllowance(address,uint256)",
            ),
            (
                super::PERMIT,
                "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
            ),
            (
                super::DAI_PERMIT,
                "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",
            ),
            (
                super::SAFE_TRANSFER_FROM,
                "safeTransferFrom(address,address,uint256)",
            ),
            (
                super::SAFE_TRANSFER_FROM_DATA,
                "safeTransferFrom(address,address,uint256,bytes)",
            ),
            (
                super::SAFE_TRANSFER_FROM_1155,
                "safeTransferFrom(address,address,uint256,uint256,bytes)",
            ),
            (
                super::SAFE_BATCH_TRANSFER_FROM,
                "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)",
            ),
            (
                super::SET_APPROVAL_FOR_ALL,
                "setApprovalForAll(address,bool)",
            ),
            (super::DEPOSIT, "deposit()"),
            (super::WITHDRAW, "withdraw(uint256)"),
        ] {
            assert_eq!(sel, keccak256(sig)[..4], "{sig}");
        }
    }

    #[test]
    fn erc20_transfer() {
        let op = TokenOp::Transfer {
            to: ALICE,
            amount: u(123),
        };
        check(
            super::super::testutil::TRANSFER,
            op,
            vec![fx(tok(USDC), u(123), EffectKind::Transfer, ALICE)],
        );
    }

    #[test]
    fn transfer_from_counts_only_the_wallets_tokens() {
        let op = TokenOp::TransferFrom {
            from: WALLET,
            to: ALICE,
            amount: u(500),
        };
        check(
            TRANSFER_FROM_WALLET,
            op,
            vec![fx(tok(USDC), u(500), EffectKind::Transfer, ALICE)],
        );
        let op = TokenOp::TransferFrom {
            from: BOB,
            to: ALICE,
            amount: u(500),
        };
        check(TRANSFER_FROM_OTHER, op, vec![]);
    }

    #[test]
    fn approvals() {
        let op = TokenOp::Approve {
            spender: ALICE,
            amount: U256::MAX,
        };
        check(
            APPROVE_MAX,
            op,
            vec![fx(tok(USDC), U256::MAX, EffectKind::Approval, ALICE)],
        );
        check(
            APPROVE_ZERO,
            TokenOp::Approve {
                spender: ALICE,
                amount: U256::ZERO,
            },
            // Counted as nothing on an ERC-20, as token id 0 on an ERC-721.
            vec![fx(tok(USDC), U256::ZERO, EffectKind::Approval, ALICE)],
        );
        let op = TokenOp::IncreaseAllowance {
            spender: ALICE,
            amount: u(77),
        };
        check(
            INCREASE_ALLOWANCE,
            op,
            vec![fx(tok(USDC), u(77), EffectKind::Approval, ALICE)],
        );
        check(
            DECREASE_ALLOWANCE,
            TokenOp::DecreaseAllowance {
                spender: ALICE,
                amount: u(77),
            },
            vec![],
        );
    }

    #[test]
    fn permits() {
        let op = TokenOp::Permit {
            owner: WALLET,
            spender: ALICE,
            amount: u(1000),
        };
        check(
            PERMIT_2612,
            op,
            vec![fx(tok(USDC), u(1000), EffectKind::Permit, ALICE)],
        );
        check(
            PERMIT_2612_OTHER,
            TokenOp::Permit {
                owner: BOB,
                spender: ALICE,
                amount: u(1000),
            },
            vec![],
        );
        let op = TokenOp::Permit {
            owner: WALLET,
            spender: ALICE,
            amount: U256::MAX,
        };
        check(
            PERMIT_DAI,
            op,
            vec![fx(tok(USDC), U256::MAX, EffectKind::Permit, ALICE)],
        );
    }

    #[test]
    fn erc721_safe_transfers() {
        for hex in [NFT_SAFE_TRANSFER, NFT_SAFE_TRANSFER_DATA] {
            let call = single(NFT, hex);
            assert_eq!(
                call.kind,
                CallKind::Token(TokenOp::NftTransfer {
                    from: WALLET,
                    to: ALICE,
                    id: u(42)
                })
            );
            assert_eq!(
                call.effects,
                vec![fx(tok(NFT), u(1), EffectKind::Transfer, ALICE)]
            );
        }
    }

    #[test]
    fn erc1155_transfers() {
        let one = single(NFT, ERC1155_TRANSFER);
        assert_eq!(
            one.kind,
            CallKind::Token(TokenOp::MultiTokenTransfer {
                from: WALLET,
                to: ALICE,
                amount: u(25)
            })
        );
        assert_eq!(
            one.effects,
            vec![fx(tok(NFT), u(25), EffectKind::Transfer, ALICE)]
        );
        let batch = single(NFT, ERC1155_BATCH);
        assert_eq!(
            batch.kind,
            CallKind::Token(TokenOp::MultiTokenTransfer {
                from: WALLET,
                to: ALICE,
                amount: u(60)
            })
        );
        assert_eq!(
            batch.effects,
            vec![fx(tok(NFT), u(60), EffectKind::Transfer, ALICE)]
        );
        let saturated = single(NFT, ERC1155_BATCH_SATURATING);
        assert_eq!(
            saturated.effects,
            vec![fx(tok(NFT), U256::MAX, EffectKind::Transfer, ALICE)]
        );
        let mismatch = single(NFT, ERC1155_BATCH_MISMATCH);
        assert!(matches!(mismatch.kind, CallKind::Undecodable(_)));
        assert!(mismatch.effects.is_empty());
    }

    #[test]
    fn operator_grants() {
        let call = single(NFT, SET_APPROVAL_FOR_ALL);
        assert_eq!(
            call.kind,
            CallKind::Token(TokenOp::SetApprovalForAll {
                operator: ALICE,
                approved: true
            })
        );
        assert_eq!(
            call.effects,
            vec![fx(tok(NFT), U256::MAX, EffectKind::OperatorGrant, ALICE)]
        );
        let call = single(NFT, REVOKE_APPROVAL_FOR_ALL);
        assert_eq!(
            call.kind,
            CallKind::Token(TokenOp::SetApprovalForAll {
                operator: ALICE,
                approved: false
            })
        );
        assert!(call.effects.is_empty());
    }

    #[test]
    fn weth_wrap_and_unwrap() {
        check(DEPOSIT, TokenOp::WrapNative, vec![]);
        let amount = U256::from(1_000_000_000_000_000_000u64);
        check(WITHDRAW, TokenOp::UnwrapNative { amount }, vec![]);
    }

    #[test]
    fn truncated_arguments_are_undecodable() {
        let full = super::super::testutil::TRANSFER;
        let call = single(USDC, &full[..full.len() - 2]);
        assert_eq!(
            call.kind,
            CallKind::Undecodable("malformed ERC-20 transfer")
        );
        assert!(call.effects.is_empty());
    }

    #[test]
    fn dirty_address_word_is_undecodable() {
        // The recipient word's high (padding) bytes must be zero.
        let mut data = bytes(super::super::testutil::TRANSFER).to_vec();
        data[4] = 0x01;
        let action = decode_transaction(WALLET, Some(USDC), U256::ZERO, &data.into());
        assert_eq!(
            action.calls[0].kind,
            CallKind::Undecodable("malformed ERC-20 transfer")
        );
        // So must a bool's.
        let mut data = bytes(SET_APPROVAL_FOR_ALL).to_vec();
        let last = data.len() - 1;
        data[last] = 2;
        let action = decode_transaction(WALLET, Some(NFT), U256::ZERO, &data.into());
        assert!(matches!(action.calls[0].kind, CallKind::Undecodable(_)));
    }

    #[test]
    fn mutated_calldata_never_panics() {
        fuzz_mutations(
            NFT,
            &[ERC1155_BATCH, NFT_SAFE_TRANSFER_DATA, PERMIT_DAI],
            1500,
        );
    }
}
