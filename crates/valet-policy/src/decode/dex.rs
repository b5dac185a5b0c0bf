//! DEX routers: Uniswap V2 Router02, V3 SwapRouter and SwapRouter02 (swaps, payments,
//! `multicall`), and the Universal Router's `execute` command lists.

use super::{
    Action, Asset, CallKind, Effect, EffectKind, RouterOp, SENTINEL_MSG_SENDER,
    abi::{self, Tuple},
    batch::{self, Ctx, Leaf},
    permit2,
};
use alloy_primitives::{Address, Bytes, U256};

// Uniswap V2 Router02 (and SwapRouter02's V2 functions, without a deadline).

/// `swapExactTokensForTokens(uint256,uint256,address[],address,uint256)`
const SWAP_EXACT_TOKENS_FOR_TOKENS: [u8; 4] = [0x38, 0xed, 0x17, 0x39];
/// `swapTokensForExactTokens(uint256,uint256,address[],address,uint256)`
const SWAP_TOKENS_FOR_EXACT_TOKENS: [u8; 4] = [0x88, 0x03, 0xdb, 0xee];
/// `swapExactETHForTokens(uint256,address[],address,uint256)`
const SWAP_EXACT_ETH_FOR_TOKENS: [u8; 4] = [0x7f, 0xf3, 0x6a, 0xb5];
/// `swapTokensForExactETH(uint256,uint256,address[],address,uint256)`
const SWAP_TOKENS_FOR_EXACT_ETH: [u8; 4] = [0x4a, 0x25, 0xd9, 0x4a];
/// `swapExactTokensForETH(uint256,uint256,address[],address,uint256)`
const SWAP_EXACT_TOKENS_FOR_ETH: [u8; 4] = [0x18, 0xcb, 0xaf, 0xe5];
/// `swapETHForExactTokens(uint256,address[],address,uint256)`
const SWAP_ETH_FOR_EXACT_TOKENS: [u8; 4] = [0xfb, 0x3b, 0xdb, 0x41];
/// `swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)`
const SWAP_EXACT_TOKENS_FOR_TOKENS_FOT: [u8; 4] = [0x5c, 0x11, 0xd7, 0x95];
/// `swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)`
const SWAP_EXACT_ETH_FOR_TOKENS_FOT: [u8; 4] = [0xb6, 0xf9, 0xde, 0x95];
/// `swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)`
const SWAP_EXACT_TOKENS_FOR_ETH_FOT: [u8; 4] = [0x79, 0x1a, 0xc9, 0x47];
/// `swapExactTokensForTokens(uint256,uint256,address[],address)` (SwapRouter02)
const SWAP_EXACT_TOKENS_FOR_TOKENS_02: [u8; 4] = [0x47, 0x2b, 0x43, 0xf3];
/// `swapTokensForExactTokens(uint256,uint256,address[],address)` (SwapRouter02)
const SWAP_TOKENS_FOR_EXACT_TOKENS_02: [u8; 4] = [0x42, 0x71, 0x2a, 0x67];

// Uniswap V3 SwapRouter (struct with a deadline) and SwapRouter02 (without).

/// `exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))`
const EXACT_INPUT_SINGLE: [u8; 4] = [0x41, 0x4b, 0xf3, 0x89];
/// `exactInput((bytes,address,uint256,uint256,uint256))`
const EXACT_INPUT: [u8; 4] = [0xc0, 0x4b, 0x8d, 0x59];
/// `exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))`
const EXACT_OUTPUT_SINGLE: [u8; 4] = [0xdb, 0x3e, 0x21, 0x98];
/// `exactOutput((bytes,address,uint256,uint256,uint256))`
const EXACT_OUTPUT: [u8; 4] = [0xf2, 0x8c, 0x04, 0x98];
/// `exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))` (SwapRouter02)
const EXACT_INPUT_SINGLE_02: [u8; 4] = [0x04, 0xe4, 0x5a, 0xaf];
/// `exactInput((bytes,address,uint256,uint256))` (SwapRouter02)
const EXACT_INPUT_02: [u8; 4] = [0xb8, 0x58, 0x18, 0x3f];
/// `exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))` (SwapRouter02)
const EXACT_OUTPUT_SINGLE_02: [u8; 4] = [0x50, 0x23, 0xb4, 0xdf];
/// `exactOutput((bytes,address,uint256,uint256))` (SwapRouter02)
const EXACT_OUTPUT_02: [u8; 4] = [0x09, 0xb8, 0x13, 0x46];

// Periphery payments.

/// `unwrapWETH9(uint256,address)`
const UNWRAP_WETH9: [u8; 4] = [0x49, 0x40, 0x4b, 0x7c];
/// `unwrapWETH9(uint256)` (SwapRouter02: to the caller)
const UNWRAP_WETH9_SENDER: [u8; 4] = [0x49, 0x61, 0x69, 0x97];
/// `unwrapWETH9WithFee(uint256,address,uint256,address)`
const UNWRAP_WETH9_WITH_FEE: [u8; 4] = [0x9b, 0x2c, 0x0a, 0x37];
/// `unwrapWETH9WithFee(uint256,uint256,address)` (SwapRouter02: to the caller)
const UNWRAP_WETH9_WITH_FEE_SENDER: [u8; 4] = [0xd4, 0xef, 0x38, 0xde];
/// `sweepToken(address,uint256,address)`
const SWEEP_TOKEN: [u8; 4] = [0xdf, 0x2a, 0xb5, 0xbb];
/// `sweepToken(address,uint256)` (SwapRouter02: to the caller)
const SWEEP_TOKEN_SENDER: [u8; 4] = [0xe9, 0x0a, 0x18, 0x2f];
/// `sweepTokenWithFee(address,uint256,address,uint256,address)`
const SWEEP_TOKEN_WITH_FEE: [u8; 4] = [0xe0, 0xe1, 0x89, 0xa0];
/// `sweepTokenWithFee(address,uint256,uint256,address)` (SwapRouter02: to the caller)
const SWEEP_TOKEN_WITH_FEE_SENDER: [u8; 4] = [0x30, 0x68, 0xc5, 0x54];
/// `refundETH()`
const REFUND_ETH: [u8; 4] = [0x12, 0x21, 0x0e, 0x8a];

// Batches.

/// `multicall(bytes[])`
const MULTICALL: [u8; 4] = [0xac, 0x96, 0x50, 0xd8];
/// `multicall(uint256,bytes[])` (SwapRouter02, with a deadline)
const MULTICALL_DEADLINE: [u8; 4] = [0x5a, 0xe4, 0x01, 0xdc];
/// `multicall(bytes32,bytes[])` (SwapRouter02, with a previous block hash)
const MULTICALL_BLOCKHASH: [u8; 4] = [0x1f, 0x04, 0x64, 0xd1];
/// `execute(bytes,bytes[])` (Universal Router)
const UR_EXECUTE: [u8; 4] = [0x24, 0x85, 0x6b, 0xc3];
/// `execute(bytes,bytes[],uint256)` (Universal Router, with a deadline)
const UR_EXECUTE_DEADLINE: [u8; 4] = [0x35, 0x93, 0x56, 0x4c];

/// A V2 swap function's layout: head words of the input amount (`None` when the input is
/// native), the path and the recipient, and how many head words it has.
struct V2Swap {
    name: &'static str,
    amount_in: Option<usize>,
    path: usize,
    to: usize,
    words: usize,
}

/// The V2 swap with selector `sel`, if any.
fn v2_swap(sel: [u8; 4]) -> Option<V2Swap> {
    let (name, amount_in, path, to, words) = match sel {
        SWAP_EXACT_TOKENS_FOR_TOKENS => ("swapExactTokensForTokens", Some(0), 2, 3, 5),
        SWAP_TOKENS_FOR_EXACT_TOKENS => ("swapTokensForExactTokens", Some(1), 2, 3, 5),
        SWAP_EXACT_ETH_FOR_TOKENS => ("swapExactETHForTokens", None, 1, 2, 4),
        SWAP_TOKENS_FOR_EXACT_ETH => ("swapTokensForExactETH", Some(1), 2, 3, 5),
        SWAP_EXACT_TOKENS_FOR_ETH => ("swapExactTokensForETH", Some(0), 2, 3, 5),
        SWAP_ETH_FOR_EXACT_TOKENS => ("swapETHForExactTokens", None, 1, 2, 4),
        SWAP_EXACT_TOKENS_FOR_TOKENS_FOT => (
            "swapExactTokensForTokensSupportingFeeOnTransferTokens",
            Some(0),
            2,
            3,
            5,
        ),
        SWAP_EXACT_ETH_FOR_TOKENS_FOT => (
            "swapExactETHForTokensSupportingFeeOnTransferTokens",
            None,
            1,
            2,
            4,
        ),
        SWAP_EXACT_TOKENS_FOR_ETH_FOT => (
            "swapExactTokensForETHSupportingFeeOnTransferTokens",
            Some(0),
            2,
            3,
            5,
        ),
        SWAP_EXACT_TOKENS_FOR_TOKENS_02 => ("swapExactTokensForTokens", Some(0), 2, 3, 4),
        SWAP_TOKENS_FOR_EXACT_TOKENS_02 => ("swapTokensForExactTokens", Some(1), 2, 3, 4),
        _ => return None,
    };
    Some(V2Swap {
        name,
        amount_in,
        path,
        to,
        words,
    })
}

/// The first token of an `address[]` path, every element checked to be an address; `None`
/// for an empty path.
fn v2_token_in(path: abi::Array<'_>) -> Option<Address> {
    for k in 1..path.len() {
        path.address(k)?;
    }
    path.address(0)
}

/// The input token of a V3 path (`token fee token fee ... token`, 20 + 23k bytes, k >= 1):
/// the first token, or the last for an exact-output swap (its path is reversed).
fn v3_token_in(path: &[u8], exact_out: bool) -> Option<Address> {
    if path.len() < 43 || !(path.len() - 20).is_multiple_of(23) {
        return None;
    }
    let at = if exact_out { path.len() - 20 } else { 0 };
    path.get(at..at + 20).map(Address::from_slice)
}

/// A router call paying out to `recipients`, with the wallet's swap input when there is one.
fn router(
    ctx: &Ctx,
    name: &'static str,
    recipients: Vec<Address>,
    input: Option<(Address, U256)>,
) -> (CallKind, Vec<Effect>) {
    let effects = match input {
        Some((token, amount)) => vec![Effect {
            asset: Asset::Token(token),
            amount,
            kind: EffectKind::SwapInput,
            counterparty: ctx.to,
        }],
        None => Vec::new(),
    };
    (CallKind::Router(RouterOp { name, recipients }), effects)
}

/// Decodes a router swap or payment, or `None` when the selector is not one.
pub(crate) fn decode(sel: [u8; 4], a: Tuple<'_>, ctx: &Ctx) -> Option<Leaf> {
    if let Some(swap) = v2_swap(sel) {
        return Some(
            (|| {
                a.word(swap.words - 1)?;
                let token_in = v2_token_in(a.array(swap.path, 1)?)?;
                let to = a.address(swap.to)?;
                let input = match swap.amount_in {
                    Some(i) => Some((token_in, a.uint(i)?)),
                    None => None,
                };
                Some(router(ctx, swap.name, vec![to], input))
            })()
            .ok_or("malformed Uniswap V2 swap"),
        );
    }
    let leaf = match sel {
        EXACT_INPUT_SINGLE
        | EXACT_INPUT_SINGLE_02
        | EXACT_OUTPUT_SINGLE
        | EXACT_OUTPUT_SINGLE_02 => (|| {
            let deadline = usize::from(matches!(sel, EXACT_INPUT_SINGLE | EXACT_OUTPUT_SINGLE));
            let exact_out = matches!(sel, EXACT_OUTPUT_SINGLE | EXACT_OUTPUT_SINGLE_02);
            let token_in = a.address(0)?;
            a.address(1)?;
            a.small(2, 24)?;
            let recipient = a.address(3)?;
            let amount = a.uint(4 + deadline + usize::from(exact_out))?;
            a.uint160(6 + deadline)?;
            let name = if exact_out {
                "exactOutputSingle"
            } else {
                "exactInputSingle"
            };
            Some(router(ctx, name, vec![recipient], Some((token_in, amount))))
        })()
        .ok_or("malformed Uniswap V3 single-pool swap"),
        EXACT_INPUT | EXACT_INPUT_02 | EXACT_OUTPUT | EXACT_OUTPUT_02 => (|| {
            let deadline = usize::from(matches!(sel, EXACT_INPUT | EXACT_OUTPUT));
            let exact_out = matches!(sel, EXACT_OUTPUT | EXACT_OUTPUT_02);
            let p = a.tail(0)?;
            let token_in = v3_token_in(p.bytes_slice(0)?, exact_out)?;
            let recipient = p.address(1)?;
            let amount = p.uint(2 + deadline + usize::from(exact_out))?;
            p.uint(3 + deadline)?;
            let name = if exact_out {
                "exactOutput"
            } else {
                "exactInput"
            };
            Some(router(ctx, name, vec![recipient], Some((token_in, amount))))
        })()
        .ok_or("malformed Uniswap V3 swap"),
        UNWRAP_WETH9 => payment(
            ctx,
            "unwrapWETH9",
            a.uint(0).and(a.address(1)).map(|r| vec![r]),
        ),
        UNWRAP_WETH9_SENDER => payment(
            ctx,
            "unwrapWETH9",
            a.uint(0).map(|_| vec![SENTINEL_MSG_SENDER]),
        ),
        UNWRAP_WETH9_WITH_FEE => {
            let r = (|| Some(vec![a.address(1)?, a.uint(2).and(a.address(3))?]))();
            payment(ctx, "unwrapWETH9WithFee", a.uint(0).and(r))
        }
        UNWRAP_WETH9_WITH_FEE_SENDER => {
            let r = a
                .uint(0)
                .and(a.uint(1))
                .and(a.address(2))
                .map(|fee| vec![SENTINEL_MSG_SENDER, fee]);
            payment(ctx, "unwrapWETH9WithFee", r)
        }
        SWEEP_TOKEN => {
            let r = a
                .address(0)
                .and(a.uint(1))
                .and(a.address(2))
                .map(|r| vec![r]);
            payment(ctx, "sweepToken", r)
        }
        SWEEP_TOKEN_SENDER => {
            let r = a
                .address(0)
                .and(a.uint(1))
                .map(|_| vec![SENTINEL_MSG_SENDER]);
            payment(ctx, "sweepToken", r)
        }
        SWEEP_TOKEN_WITH_FEE => {
            let r = (|| {
                a.address(0)?;
                a.uint(1)?;
                a.uint(3)?;
                Some(vec![a.address(2)?, a.address(4)?])
            })();
            payment(ctx, "sweepTokenWithFee", r)
        }
        SWEEP_TOKEN_WITH_FEE_SENDER => {
            let r = (|| {
                a.address(0)?;
                a.uint(2)?;
                Some(vec![SENTINEL_MSG_SENDER, a.address(3)?])
            })();
            payment(ctx, "sweepTokenWithFee", r)
        }
        REFUND_ETH => payment(ctx, "refundETH", Some(vec![SENTINEL_MSG_SENDER])),
        _ => return None,
    };
    Some(leaf)
}

/// A router payment (unwrap, sweep, refund) to `recipients`, if they decoded.
fn payment(ctx: &Ctx, name: &'static str, recipients: Option<Vec<Address>>) -> Leaf {
    match recipients {
        Some(r) => Ok(router(ctx, name, r, None)),
        None => Err("malformed router payment"),
    }
}

/// Pushes a router `multicall` or Universal Router `execute` with its inner calls, or returns
/// `false` (pushing nothing) when the selector is neither.
pub(crate) fn push_batch(
    action: &mut Action,
    ctx: Ctx,
    sel: [u8; 4],
    value: U256,
    data: &Bytes,
    parent: Option<usize>,
    depth: u8,
) -> bool {
    let a = Tuple::new(data, 4);
    let to = Some(ctx.to);
    let undecodable = |action: &mut Action, why| {
        batch::push_decoded(
            action,
            to,
            value,
            data.clone(),
            parent,
            depth,
            CallKind::Undecodable(why),
            Vec::new(),
        );
    };
    match sel {
        MULTICALL | MULTICALL_DEADLINE | MULTICALL_BLOCKHASH => {
            let list = if sel == MULTICALL {
                a.array(0, 1)
            } else {
                a.word(0).and(a.array(1, 1))
            };
            let Some(list) = list else {
                undecodable(action, "malformed multicall");
                return true;
            };
            let index = batch::push_decoded(
                action,
                to,
                value,
                data.clone(),
                parent,
                depth,
                CallKind::Batch,
                Vec::new(),
            );
            for k in 0..list.len() {
                if batch::full(action) {
                    break;
                }
                let Some(inner) = list.bytes(k).and_then(|r| abi::slice(data, r)) else {
                    batch::fail(action, index, "malformed multicall");
                    return true;
                };
                batch::push_call(
                    action,
                    ctx.wallet,
                    to,
                    U256::ZERO,
                    inner,
                    Some(index),
                    depth.saturating_add(1),
                );
            }
        }
        UR_EXECUTE | UR_EXECUTE_DEADLINE => {
            let parts = (|| {
                if sel == UR_EXECUTE_DEADLINE {
                    a.uint(2)?;
                }
                Some((a.bytes_slice(0)?, a.array(1, 1)?))
            })();
            let Some((commands, inputs)) = parts else {
                undecodable(action, "malformed Universal Router execute");
                return true;
            };
            let index = batch::push_decoded(
                action,
                to,
                value,
                data.clone(),
                parent,
                depth,
                CallKind::Batch,
                Vec::new(),
            );
            let inner_depth = depth.saturating_add(1);
            for k in 0..commands.len().max(inputs.len()) {
                if batch::full(action) {
                    break;
                }
                let leaf = match (commands.get(k), inputs.bytes(k)) {
                    (Some(&command), Some(r)) => match data.get(r) {
                        Some(input) => ur_command(command, Tuple::new(input, 0), &ctx),
                        None => Err("malformed Universal Router input"),
                    },
                    (Some(_), None) if k < inputs.len() => Err("malformed Universal Router input"),
                    _ => Err("Universal Router commands and inputs differ in length"),
                };
                let (kind, effects) =
                    leaf.unwrap_or_else(|why| (CallKind::Undecodable(why), Vec::new()));
                let stop = k >= commands.len() || k >= inputs.len();
                batch::push_decoded(
                    action,
                    to,
                    U256::ZERO,
                    Bytes::new(),
                    Some(index),
                    inner_depth,
                    kind,
                    effects,
                );
                if stop {
                    break;
                }
            }
        }
        _ => return false,
    }
    true
}

/// Decodes one Universal Router command from its input (`abi.encode` of its parameters).
fn ur_command(command: u8, t: Tuple<'_>, ctx: &Ctx) -> Leaf {
    // Bit 0x80 allows the command to revert; bits 0x3f are the command type.
    let leaf = match command & 0x3f {
        0x00 | 0x01 => (|| {
            let exact_out = command & 0x3f == 0x01;
            let recipient = t.address(0)?;
            t.uint(1)?;
            let amount = t.uint(if exact_out { 2 } else { 1 })?;
            let token_in = v3_token_in(t.bytes_slice(3)?, exact_out)?;
            let payer_is_user = t.boolean(4)?;
            let name = if exact_out {
                "V3_SWAP_EXACT_OUT"
            } else {
                "V3_SWAP_EXACT_IN"
            };
            Some(router(
                ctx,
                name,
                vec![recipient],
                payer_is_user.then_some((token_in, amount)),
            ))
        })(),
        0x02 => (|| {
            let (token, recipient, amount) = (t.address(0)?, t.address(1)?, t.uint160(2)?);
            Some(permit2::transfer_from(
                ctx.wallet,
                vec![(ctx.wallet, recipient, amount, token)],
            ))
        })(),
        0x03 => (|| {
            let (grants, spender) = permit2::permit_batch(t.tail(0)?)?;
            t.bytes(1)?;
            Some(permit2::permit(ctx.wallet, ctx.wallet, spender, grants))
        })(),
        0x04..=0x06 => (|| {
            t.address(0)?;
            let recipient = t.address(1)?;
            t.uint(2)?;
            let name = match command & 0x3f {
                0x04 => "SWEEP",
                0x05 => "TRANSFER",
                _ => "PAY_PORTION",
            };
            Some(router(ctx, name, vec![recipient], None))
        })(),
        0x08 | 0x09 => (|| {
            let exact_out = command & 0x3f == 0x09;
            let recipient = t.address(0)?;
            t.uint(1)?;
            let amount = t.uint(if exact_out { 2 } else { 1 })?;
            let token_in = v2_token_in(t.array(3, 1)?)?;
            let payer_is_user = t.boolean(4)?;
            let name = if exact_out {
                "V2_SWAP_EXACT_OUT"
            } else {
                "V2_SWAP_EXACT_IN"
            };
            Some(router(
                ctx,
                name,
                vec![recipient],
                payer_is_user.then_some((token_in, amount)),
            ))
        })(),
        0x0a => (|| {
            let (grants, spender) = permit2::permit_single(t.inline(0)?)?;
            t.bytes(6)?;
            Some(permit2::permit(ctx.wallet, ctx.wallet, spender, grants))
        })(),
        0x0b | 0x0c => (|| {
            let recipient = t.address(0)?;
            t.uint(1)?;
            let name = if command & 0x3f == 0x0b {
                "WRAP_ETH"
            } else {
                "UNWRAP_WETH"
            };
            Some(router(ctx, name, vec![recipient], None))
        })(),
        0x0d => permit2::transfer_batch(t, 0).map(|ts| permit2::transfer_from(ctx.wallet, ts)),
        0x0e => (|| {
            t.address(0)?;
            t.address(1)?;
            t.uint(2)?;
            Some(router(ctx, "BALANCE_CHECK_ERC20", Vec::new(), None))
        })(),
        _ => return Err("unsupported Universal Router command"),
    };
    leaf.ok_or("malformed Universal Router command input")
}
