//! DEX routers: Uniswap V2 Router02, V3 SwapRouter and SwapRouter02 (swaps, payments,
//! `multicall`), and the Universal Router's `execute` command lists.

use super::{
    Action, Amount, Asset, CallKind, Effect, EffectKind, MAX_CALLS, Payee, Payer, RouterAsset,
    RouterFlow, RouterOp,
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

// Functions that pull the caller's tokens without swapping them.

/// `addLiquidity(address,address,uint256,uint256,uint256,uint256,address,uint256)` (V2)
const ADD_LIQUIDITY: [u8; 4] = [0xe8, 0xe3, 0x37, 0x00];
/// `addLiquidityETH(address,uint256,uint256,uint256,address,uint256)` (V2)
const ADD_LIQUIDITY_ETH: [u8; 4] = [0xf3, 0x05, 0xd7, 0x19];
/// `pull(address,uint256)` (SwapRouter02: the caller's tokens into the router)
const PULL: [u8; 4] = [0xf2, 0xd5, 0xd5, 0x6b];

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

/// Every selector this module decodes (for the fuzz test).
#[cfg(test)]
pub(crate) const SELECTORS: &[[u8; 4]] = &[
    SWAP_EXACT_TOKENS_FOR_TOKENS,
    SWAP_TOKENS_FOR_EXACT_TOKENS,
    SWAP_EXACT_ETH_FOR_TOKENS,
    SWAP_TOKENS_FOR_EXACT_ETH,
    SWAP_EXACT_TOKENS_FOR_ETH,
    SWAP_ETH_FOR_EXACT_TOKENS,
    SWAP_EXACT_TOKENS_FOR_TOKENS_FOT,
    SWAP_EXACT_ETH_FOR_TOKENS_FOT,
    SWAP_EXACT_TOKENS_FOR_ETH_FOT,
    SWAP_EXACT_TOKENS_FOR_TOKENS_02,
    SWAP_TOKENS_FOR_EXACT_TOKENS_02,
    EXACT_INPUT_SINGLE,
    EXACT_INPUT,
    EXACT_OUTPUT_SINGLE,
    EXACT_OUTPUT,
    EXACT_INPUT_SINGLE_02,
    EXACT_INPUT_02,
    EXACT_OUTPUT_SINGLE_02,
    EXACT_OUTPUT_02,
    UNWRAP_WETH9,
    UNWRAP_WETH9_SENDER,
    UNWRAP_WETH9_WITH_FEE,
    UNWRAP_WETH9_WITH_FEE_SENDER,
    SWEEP_TOKEN,
    SWEEP_TOKEN_SENDER,
    SWEEP_TOKEN_WITH_FEE,
    SWEEP_TOKEN_WITH_FEE_SENDER,
    REFUND_ETH,
    ADD_LIQUIDITY,
    ADD_LIQUIDITY_ETH,
    PULL,
    MULTICALL,
    MULTICALL_DEADLINE,
    MULTICALL_BLOCKHASH,
    UR_EXECUTE,
    UR_EXECUTE_DEADLINE,
];

/// A V2 swap function's layout: head words of the input amount (`None` when the input is
/// the ether sent with the call), the path and the recipient, and how many head words it has.
struct V2Swap {
    name: &'static str,
    amount_in: Option<usize>,
    exact_out: bool,
    eth_out: bool,
    path: usize,
    to: usize,
    words: usize,
    /// SwapRouter02's V2 functions: `amountIn = 0` swaps the router's own balance, and a WETH9
    /// input is paid from the ether the router holds first.
    router02: bool,
}

/// The V2 swap with selector `sel`, if any.
fn v2_swap(sel: [u8; 4]) -> Option<V2Swap> {
    // (name, amount_in, exact_out, eth_out, path, to, words, router02)
    let (name, amount_in, exact_out, eth_out, path, to, words, router02) = match sel {
        SWAP_EXACT_TOKENS_FOR_TOKENS => (
            "swapExactTokensForTokens",
            Some(0),
            false,
            false,
            2,
            3,
            5,
            false,
        ),
        SWAP_TOKENS_FOR_EXACT_TOKENS => (
            "swapTokensForExactTokens",
            Some(1),
            true,
            false,
            2,
            3,
            5,
            false,
        ),
        SWAP_EXACT_ETH_FOR_TOKENS => ("swapExactETHForTokens", None, false, false, 1, 2, 4, false),
        SWAP_TOKENS_FOR_EXACT_ETH => ("swapTokensForExactETH", Some(1), true, true, 2, 3, 5, false),
        SWAP_EXACT_TOKENS_FOR_ETH => (
            "swapExactTokensForETH",
            Some(0),
            false,
            true,
            2,
            3,
            5,
            false,
        ),
        SWAP_ETH_FOR_EXACT_TOKENS => ("swapETHForExactTokens", None, true, false, 1, 2, 4, false),
        SWAP_EXACT_TOKENS_FOR_TOKENS_FOT => (
            "swapExactTokensForTokensSupportingFeeOnTransferTokens",
            Some(0),
            false,
            false,
            2,
            3,
            5,
            false,
        ),
        SWAP_EXACT_ETH_FOR_TOKENS_FOT => (
            "swapExactETHForTokensSupportingFeeOnTransferTokens",
            None,
            false,
            false,
            1,
            2,
            4,
            false,
        ),
        SWAP_EXACT_TOKENS_FOR_ETH_FOT => (
            "swapExactTokensForETHSupportingFeeOnTransferTokens",
            Some(0),
            false,
            true,
            2,
            3,
            5,
            false,
        ),
        SWAP_EXACT_TOKENS_FOR_TOKENS_02 => (
            "swapExactTokensForTokens",
            Some(0),
            false,
            false,
            2,
            3,
            4,
            true,
        ),
        SWAP_TOKENS_FOR_EXACT_TOKENS_02 => (
            "swapTokensForExactTokens",
            Some(1),
            true,
            false,
            2,
            3,
            4,
            true,
        ),
        _ => return None,
    };
    Some(V2Swap {
        name,
        amount_in,
        exact_out,
        eth_out,
        path,
        to,
        words,
        router02,
    })
}

/// The first and last tokens of an `address[]` path (`None` for an empty path). The tokens in
/// between are not read: a path whose offsets many calls share would cost a read of every
/// token per call, and a malformed one only makes the swap revert.
fn v2_path(path: abi::Array<'_>) -> Option<(Address, Address)> {
    Some((path.address(0)?, path.address(path.len().checked_sub(1)?)?))
}

/// The input and output tokens of a V3 path (`token fee token fee ... token`, 20 + 23k
/// bytes, k >= 1): first and last, the other way round for an exact-output swap (its path
/// is reversed).
fn v3_path(path: &[u8], exact_out: bool) -> Option<(Address, Address)> {
    if path.len() < 43 || !(path.len() - 20).is_multiple_of(23) {
        return None;
    }
    let first = Address::from_slice(path.get(..20)?);
    let last = Address::from_slice(path.get(path.len() - 20..)?);
    Some(if exact_out {
        (last, first)
    } else {
        (first, last)
    })
}

/// The Universal Router's `CONTRACT_BALANCE` (1.2 and 2.0): "all the router holds".
const UR_CONTRACT_BALANCE: U256 = U256::from_limbs([0, 0, 0, 1 << 63]);

/// A token, or ether when `address(0)` (Universal Router payments).
fn token_or_ether(token: Address) -> RouterAsset {
    if token.is_zero() {
        RouterAsset::Named(Asset::Native)
    } else {
        RouterAsset::Named(Asset::Token(token))
    }
}

/// A router op with no effect of its own on the wallet.
fn op(name: &'static str, flow: RouterFlow, recipients: Vec<Payee>) -> (CallKind, Vec<Effect>) {
    let op = RouterOp {
        name,
        flow,
        recipients,
        may_fail: false,
    };
    (CallKind::Router(op), Vec::new())
}

/// A swap of `input` for `output`, paid by the caller (`amount_in`, or the maximum input of an
/// exact-output swap, is then the wallet's swap input) unless `router_pays` says how much the
/// router pays from what it holds.
struct SwapArgs {
    name: &'static str,
    input: Address,
    output: RouterAsset,
    recipient: Address,
    amount_in: U256,
    exact_out: bool,
    router_pays: Option<Amount>,
    ether_first: bool,
}

/// A swap op, with the wallet's swap input as its effect when the caller pays.
fn swap(ctx: &Ctx, s: SwapArgs) -> (CallKind, Vec<Effect>) {
    let (payer, amount, effects) = match s.router_pays {
        Some(amount) => (Payer::Router, amount, Vec::new()),
        None => (
            Payer::Caller,
            if s.exact_out {
                Amount::Part
            } else {
                Amount::Exact(s.amount_in)
            },
            vec![Effect {
                asset: Asset::Token(s.input),
                amount: s.amount_in,
                kind: EffectKind::SwapInput,
                counterparty: ctx.to,
            }],
        ),
    };
    let flow = RouterFlow::Swap {
        input: RouterAsset::Named(Asset::Token(s.input)),
        amount,
        payer,
        ether_first: s.ether_first,
        output: s.output,
    };
    let (kind, _) = op(s.name, flow, vec![Payee::Mapped(s.recipient)]);
    (kind, effects)
}

/// An unwrap of all the router's WETH9, paid as ether to `recipients`.
fn unwrap(name: &'static str, recipients: Vec<Payee>) -> (CallKind, Vec<Effect>) {
    let flow = RouterFlow::Convert {
        from: RouterAsset::Weth,
        to: RouterAsset::Named(Asset::Native),
        amount: Amount::All,
    };
    op(name, flow, recipients)
}

/// A sweep of all the router holds of `token` to `recipients`.
fn sweep(name: &'static str, token: Address, recipients: Vec<Payee>) -> (CallKind, Vec<Effect>) {
    let flow = RouterFlow::Pay {
        asset: RouterAsset::Named(Asset::Token(token)),
        amount: Amount::All,
    };
    op(name, flow, recipients)
}

/// Decodes a router swap or payment, or `None` when the selector is not one.
pub(crate) fn decode(sel: [u8; 4], a: Tuple<'_>, ctx: &Ctx) -> Option<Leaf> {
    if let Some(v2) = v2_swap(sel) {
        return Some(
            (|| {
                a.word(v2.words - 1)?;
                let (first, last) = v2_path(a.array(v2.path, 1)?)?;
                let recipient = a.address(v2.to)?;
                let output = if v2.eth_out {
                    RouterAsset::Named(Asset::Native)
                } else {
                    RouterAsset::Named(Asset::Token(last))
                };
                let Some(i) = v2.amount_in else {
                    // The ether sent with the call pays (any excess is refunded to the caller).
                    let flow = RouterFlow::Swap {
                        input: RouterAsset::Named(Asset::Native),
                        amount: Amount::All,
                        payer: Payer::Caller,
                        ether_first: false,
                        output,
                    };
                    return Some(op(v2.name, flow, vec![Payee::Mapped(recipient)]));
                };
                let amount_in = a.uint(i)?;
                let router_pays =
                    (v2.router02 && !v2.exact_out && amount_in.is_zero()).then_some(Amount::All);
                Some(swap(
                    ctx,
                    SwapArgs {
                        name: v2.name,
                        input: first,
                        output,
                        recipient,
                        amount_in,
                        exact_out: v2.exact_out,
                        router_pays,
                        ether_first: v2.router02,
                    },
                ))
            })()
            .ok_or("malformed Uniswap V2 swap"),
        );
    }
    let caller = || vec![Payee::Caller];
    let leaf = match sel {
        EXACT_INPUT_SINGLE
        | EXACT_INPUT_SINGLE_02
        | EXACT_OUTPUT_SINGLE
        | EXACT_OUTPUT_SINGLE_02 => (|| {
            let deadline = usize::from(matches!(sel, EXACT_INPUT_SINGLE | EXACT_OUTPUT_SINGLE));
            let exact_out = matches!(sel, EXACT_OUTPUT_SINGLE | EXACT_OUTPUT_SINGLE_02);
            let (input, output) = (a.address(0)?, a.address(1)?);
            a.small(2, 24)?;
            let recipient = a.address(3)?;
            let amount_in = a.uint(4 + deadline + usize::from(exact_out))?;
            a.uint160(6 + deadline)?;
            let name = if exact_out {
                "exactOutputSingle"
            } else {
                "exactInputSingle"
            };
            Some(v3_swap(
                ctx,
                name,
                sel,
                (input, output),
                recipient,
                amount_in,
            ))
        })()
        .ok_or("malformed Uniswap V3 single-pool swap"),
        EXACT_INPUT | EXACT_INPUT_02 | EXACT_OUTPUT | EXACT_OUTPUT_02 => (|| {
            let deadline = usize::from(matches!(sel, EXACT_INPUT | EXACT_OUTPUT));
            let exact_out = matches!(sel, EXACT_OUTPUT | EXACT_OUTPUT_02);
            let p = a.tail(0)?;
            let tokens = v3_path(p.bytes_slice(0)?, exact_out)?;
            let recipient = p.address(1)?;
            let amount_in = p.uint(2 + deadline + usize::from(exact_out))?;
            p.uint(3 + deadline)?;
            let name = if exact_out {
                "exactOutput"
            } else {
                "exactInput"
            };
            Some(v3_swap(ctx, name, sel, tokens, recipient, amount_in))
        })()
        .ok_or("malformed Uniswap V3 swap"),
        // The V3 periphery's payments pay their recipient arguments as written, on
        // SwapRouter02 too: only its one-argument forms pay the caller.
        UNWRAP_WETH9 => payment(
            a.uint(0)
                .and(a.address(1))
                .map(|r| unwrap("unwrapWETH9", vec![Payee::Literal(r)])),
        ),
        UNWRAP_WETH9_SENDER => payment(a.uint(0).map(|_| unwrap("unwrapWETH9", caller()))),
        UNWRAP_WETH9_WITH_FEE => payment((|| {
            let (r, fee) = (a.address(1)?, a.address(3)?);
            a.uint(0)?;
            a.uint(2)?;
            let payees = vec![Payee::Literal(r), Payee::Literal(fee)];
            Some(unwrap("unwrapWETH9WithFee", payees))
        })()),
        UNWRAP_WETH9_WITH_FEE_SENDER => payment((|| {
            a.uint(0)?;
            a.uint(1)?;
            let payees = vec![Payee::Caller, Payee::Literal(a.address(2)?)];
            Some(unwrap("unwrapWETH9WithFee", payees))
        })()),
        SWEEP_TOKEN => payment((|| {
            let (token, r) = (a.address(0)?, a.address(2)?);
            a.uint(1)?;
            Some(sweep("sweepToken", token, vec![Payee::Literal(r)]))
        })()),
        SWEEP_TOKEN_SENDER => payment((|| {
            a.uint(1)?;
            Some(sweep("sweepToken", a.address(0)?, caller()))
        })()),
        SWEEP_TOKEN_WITH_FEE => payment((|| {
            let (token, r, fee) = (a.address(0)?, a.address(2)?, a.address(4)?);
            a.uint(1)?;
            a.uint(3)?;
            let payees = vec![Payee::Literal(r), Payee::Literal(fee)];
            Some(sweep("sweepTokenWithFee", token, payees))
        })()),
        SWEEP_TOKEN_WITH_FEE_SENDER => payment((|| {
            let (token, fee) = (a.address(0)?, a.address(3)?);
            a.uint(1)?;
            a.uint(2)?;
            let payees = vec![Payee::Caller, Payee::Literal(fee)];
            Some(sweep("sweepTokenWithFee", token, payees))
        })()),
        REFUND_ETH => {
            let flow = RouterFlow::Pay {
                asset: RouterAsset::Named(Asset::Native),
                amount: Amount::All,
            };
            Ok(op("refundETH", flow, caller()))
        }
        // At most the desired amounts leave the caller; the pool's shares go to `to`.
        ADD_LIQUIDITY => (|| {
            let (a_token, b_token, to) = (a.address(0)?, a.address(1)?, a.address(6)?);
            let (a_max, b_max) = (a.uint(2)?, a.uint(3)?);
            a.uint(4)?;
            a.uint(5)?;
            a.uint(7)?;
            let pulls = [(a_token, a_max), (b_token, b_max)];
            Some(deposit(ctx, "addLiquidity", &pulls, Payee::Literal(to)))
        })()
        .ok_or("malformed addLiquidity"),
        ADD_LIQUIDITY_ETH => (|| {
            let (token, max, to) = (a.address(0)?, a.uint(1)?, a.address(4)?);
            a.uint(2)?;
            a.uint(3)?;
            a.uint(5)?;
            Some(deposit(
                ctx,
                "addLiquidityETH",
                &[(token, max)],
                Payee::Literal(to),
            ))
        })()
        .ok_or("malformed addLiquidityETH"),
        PULL => (|| {
            let (token, value) = (a.address(0)?, a.uint(1)?);
            Some(deposit(
                ctx,
                "pull",
                &[(token, value)],
                Payee::Mapped(ctx.to),
            ))
        })()
        .ok_or("malformed pull"),
        _ => return None,
    };
    Some(leaf)
}

/// A V3 swap of SwapRouter (`sel` with a deadline in its struct) or SwapRouter02: `tokens`
/// are its (input, output), `amount_in` its `amountIn` or `amountInMaximum`.
fn v3_swap(
    ctx: &Ctx,
    name: &'static str,
    sel: [u8; 4],
    (input, output): (Address, Address),
    recipient: Address,
    amount_in: U256,
) -> (CallKind, Vec<Effect>) {
    let exact_out = matches!(
        sel,
        EXACT_OUTPUT_SINGLE | EXACT_OUTPUT_SINGLE_02 | EXACT_OUTPUT | EXACT_OUTPUT_02
    );
    // SwapRouter02's CONTRACT_BALANCE: `amountIn = 0` swaps what the router holds.
    let router02 = matches!(sel, EXACT_INPUT_SINGLE_02 | EXACT_INPUT_02);
    let router_pays = (router02 && amount_in.is_zero()).then_some(Amount::All);
    swap(
        ctx,
        SwapArgs {
            name,
            input,
            output: RouterAsset::Named(Asset::Token(output)),
            recipient,
            amount_in,
            exact_out,
            router_pays,
            ether_first: true,
        },
    )
}

/// A router call that pulls `pulls` (token, at most) from the caller without swapping them:
/// each counted as the wallet's outflow.
fn deposit(
    ctx: &Ctx,
    name: &'static str,
    pulls: &[(Address, U256)],
    recipient: Payee,
) -> (CallKind, Vec<Effect>) {
    let effects = pulls
        .iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|&(token, amount)| Effect {
            asset: Asset::Token(token),
            amount,
            kind: EffectKind::Transfer,
            counterparty: ctx.to,
        })
        .collect();
    (op(name, RouterFlow::Deposit, vec![recipient]).0, effects)
}

/// A router payment, if it decoded.
fn payment(decoded: Option<(CallKind, Vec<Effect>)>) -> Leaf {
    decoded.ok_or("malformed router payment")
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
            action.calls.reserve(list.len().min(MAX_CALLS));
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
            action.calls.reserve(commands.len().min(MAX_CALLS));
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
        0x00 | 0x01 | 0x08 | 0x09 => (|| {
            let v2 = command & 0x3f >= 0x08;
            let exact_out = command & 1 == 1;
            let recipient = t.address(0)?;
            t.uint(1)?;
            let amount_in = t.uint(if exact_out { 2 } else { 1 })?;
            let (input, output) = if v2 {
                v2_path(t.array(3, 1)?)?
            } else {
                v3_path(t.bytes_slice(3)?, exact_out)?
            };
            let payer_is_user = t.boolean(4)?;
            let router_pays = match (payer_is_user, exact_out) {
                (true, _) => None,
                (false, true) => Some(Amount::Part),
                (false, false) if amount_in == UR_CONTRACT_BALANCE => Some(Amount::All),
                // V2's `amountIn = 0` (ALREADY_PAID) takes nothing from the router.
                (false, false) => Some(Amount::Exact(amount_in)),
            };
            let name = match command & 0x3f {
                0x00 => "V3_SWAP_EXACT_IN",
                0x01 => "V3_SWAP_EXACT_OUT",
                0x08 => "V2_SWAP_EXACT_IN",
                _ => "V2_SWAP_EXACT_OUT",
            };
            let args = SwapArgs {
                name,
                input,
                output: RouterAsset::Named(Asset::Token(output)),
                recipient,
                amount_in,
                exact_out,
                router_pays,
                ether_first: false,
            };
            Some(swap(ctx, args))
        })(),
        0x02 => (|| {
            let (token, recipient, amount) = (t.address(0)?, t.address(1)?, t.uint160(2)?);
            Some(permit2::transfer_from(
                ctx.wallet,
                vec![(ctx.wallet, recipient, amount, token)],
                true,
            ))
        })(),
        0x03 => (|| {
            let (grants, spender) = permit2::permit_batch(t.tail(0)?)?;
            t.bytes(1)?;
            Some(permit2::permit(ctx.wallet, ctx.wallet, spender, grants))
        })(),
        0x04..=0x06 => (|| {
            let token = t.address(0)?;
            let recipient = t.address(1)?;
            let value = t.uint(2)?;
            let (name, amount) = match command & 0x3f {
                0x04 => ("SWEEP", Amount::All),
                0x05 if value == UR_CONTRACT_BALANCE && !token.is_zero() => {
                    ("TRANSFER", Amount::All)
                }
                0x05 => ("TRANSFER", Amount::Exact(value)),
                _ if value == U256::from(10_000) => ("PAY_PORTION", Amount::All),
                _ => ("PAY_PORTION", Amount::Part),
            };
            let flow = RouterFlow::Pay {
                asset: token_or_ether(token),
                amount,
            };
            Some(op(name, flow, vec![Payee::Mapped(recipient)]))
        })(),
        0x0a => (|| {
            let (grants, spender) = permit2::permit_single(t.inline(0)?)?;
            t.bytes(6)?;
            Some(permit2::permit(ctx.wallet, ctx.wallet, spender, grants))
        })(),
        0x0b => (|| {
            let recipient = t.address(0)?;
            let amount = t.uint(1)?;
            let amount = if amount == UR_CONTRACT_BALANCE {
                Amount::All
            } else {
                Amount::Exact(amount)
            };
            let flow = RouterFlow::Convert {
                from: RouterAsset::Named(Asset::Native),
                to: RouterAsset::Weth,
                amount,
            };
            Some(op("WRAP_ETH", flow, vec![Payee::Mapped(recipient)]))
        })(),
        0x0c => (|| {
            let recipient = t.address(0)?;
            t.uint(1)?;
            Some(unwrap("UNWRAP_WETH", vec![Payee::Mapped(recipient)]))
        })(),
        // The batch form pays its recipients as written.
        0x0d => {
            permit2::transfer_batch(t, 0).map(|ts| permit2::transfer_from(ctx.wallet, ts, false))
        }
        0x0e => (|| {
            t.address(0)?;
            t.address(1)?;
            t.uint(2)?;
            Some(op("BALANCE_CHECK_ERC20", RouterFlow::Check, Vec::new()))
        })(),
        _ => return Err("unsupported Universal Router command"),
    };
    let mut leaf = leaf.ok_or("malformed Universal Router command input")?;
    if let CallKind::Router(op) = &mut leaf.0 {
        op.may_fail = command & 0x80 != 0;
    }
    Ok(leaf)
}

#[cfg(test)]
mod tests {
    use super::super::{Call, Permit2Op, SENTINEL_ADDRESS_THIS, SENTINEL_MSG_SENDER, testutil::*};
    use super::*;
    use alloy_primitives::keccak256;

    // cast calldata 'swapExactTokensForTokens(uint256,uint256,address[],address,uint256)' 1000 990 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EXACT_TOKENS_FOR_TOKENS: &str = "0x38ed173900000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapTokensForExactTokens(uint256,uint256,address[],address,uint256)' 990 1100 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_TOKENS_FOR_EXACT_TOKENS: &str = "0x8803dbee00000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000044c00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapExactETHForTokens(uint256,address[],address,uint256)' 990 '[0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EXACT_ETH_FOR_TOKENS: &str = "0x7ff36ab500000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast calldata 'swapTokensForExactETH(uint256,uint256,address[],address,uint256)' 990 1100 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_TOKENS_FOR_EXACT_ETH: &str = "0x4a25d94a00000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000044c00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapExactTokensForETH(uint256,uint256,address[],address,uint256)' 1000 990 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x1111111111111111111111111111111111111111 1700000000
    const V2_EXACT_TOKENS_FOR_ETH: &str = "0x18cbafe500000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de00000000000000000000000000000000000000000000000000000000000000a00000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapETHForExactTokens(uint256,address[],address,uint256)' 990 '[0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_ETH_FOR_EXACT_TOKENS: &str = "0xfb3bdb4100000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast calldata 'swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)' 1000 990 '[0x6B175474E89094C44Da98b954EedeAC495271d0F,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EXACT_TOKENS_FOR_TOKENS_FOT: &str = "0x5c11d79500000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000030000000000000000000000006b175474e89094c44da98b954eedeac495271d0f000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)' 990 '[0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EXACT_ETH_FOR_TOKENS_FOT: &str = "0xb6f9de9500000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast calldata 'swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)' 1000 990 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EXACT_TOKENS_FOR_ETH_FOT: &str = "0x791ac94700000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapExactTokensForTokens(uint256,uint256,address[],address,uint256)' 1000 990 '[]' 0x00000000000000000000000000000000000000a1 1700000000
    const V2_EMPTY_PATH: &str = "0x38ed173900000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'swapExactTokensForTokens(uint256,uint256,address[],address)' 1000 990 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x0000000000000000000000000000000000000001
    const R02_V2_EXACT_TOKENS_FOR_TOKENS: &str = "0x472b43f300000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast calldata 'swapTokensForExactTokens(uint256,uint256,address[],address)' 990 1100 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' 0x0000000000000000000000000000000000000001
    const R02_V2_TOKENS_FOR_EXACT_TOKENS: &str = "0x42712a6700000000000000000000000000000000000000000000000000000000000003de000000000000000000000000000000000000000000000000000000000000044c000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast abi-encode --packed 'f(address,uint24,address)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 500 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
    const PATH_USDC_WETH: &str =
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast abi-encode --packed 'f(address,uint24,address,uint24,address)' 0x6B175474E89094C44Da98b954EedeAC495271d0F 100 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 500 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
    const PATH_DAI_USDC_WETH: &str = "0x6b175474e89094c44da98b954eedeac495271d0f000064a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast abi-encode --packed 'f(address,uint24,address)' 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2 500 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48
    const PATH_WETH_USDC: &str =
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20001f4a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast calldata 'exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))' '(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,500,0x00000000000000000000000000000000000000a1,1000000,1,0)'
    const V3_EXACT_INPUT_SINGLE: &str = "0x04e45aaf000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc200000000000000000000000000000000000000000000000000000000000001f400000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000f424000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata "exactInput((bytes,address,uint256,uint256))" "($PATH_DAI_USDC_WETH,0x00000000000000000000000000000000000000a1,5000,1)"
    const V3_EXACT_INPUT: &str = "0xb858183f0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a10000000000000000000000000000000000000000000000000000000000001388000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000426b175474e89094c44da98b954eedeac495271d0f000064a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))' '(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,500,0x00000000000000000000000000000000000000a1,1000,2000000,0)'
    const V3_EXACT_OUTPUT_SINGLE: &str = "0x5023b4df000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc200000000000000000000000000000000000000000000000000000000000001f400000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000001e84800000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata "exactOutput((bytes,address,uint256,uint256))" "($PATH_WETH_USDC,0x00000000000000000000000000000000000000a1,1000,2000000)"
    const V3_EXACT_OUTPUT: &str = "0x09b813460000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000001e8480000000000000000000000000000000000000000000000000000000000000002bc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20001f4a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000";

    // cast calldata 'exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))' '(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,500,0x00000000000000000000000000000000000000a1,1700000000,1000000,1,0)'
    const V3_SR1_EXACT_INPUT_SINGLE: &str = "0x414bf389000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc200000000000000000000000000000000000000000000000000000000000001f400000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000f424000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata "exactOutput((bytes,address,uint256,uint256,uint256))" "($PATH_WETH_USDC,0x00000000000000000000000000000000000000a1,1700000000,1000,2000000)"
    const V3_SR1_EXACT_OUTPUT: &str = "0xf28c0498000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000001e8480000000000000000000000000000000000000000000000000000000000000002bc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20001f4a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000";

    // cast calldata 'exactInput((bytes,address,uint256,uint256))' '(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB480001f4,0x00000000000000000000000000000000000000a1,5000,1)'
    const V3_SHORT_PATH: &str = "0xb858183f0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000000000000000000000000000000000000000138800000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000017a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4000000000000000000";

    // cast calldata "exactInput((bytes,address,uint256,uint256))" "(${PATH_USDC_WETH}00,0x00000000000000000000000000000000000000a1,5000,1)"
    const V3_BAD_PATH_LENGTH: &str = "0xb858183f0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000013880000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002ca0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000000000000000000000";

    // cast calldata 'exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))' '(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,500,0x0000000000000000000000000000000000000002,1000000,1,0)'
    const V3_EXACT_INPUT_SINGLE_TO_ROUTER: &str = "0x04e45aaf000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc200000000000000000000000000000000000000000000000000000000000001f4000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000f424000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000";

    // cast calldata 'unwrapWETH9(uint256,address)' 1 0x00000000000000000000000000000000000000a1
    const UNWRAP_WETH9: &str = "0x49404b7c000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a1";

    // cast calldata "multicall(uint256,bytes[])" 1700000000 "[$V3_EXACT_INPUT_SINGLE_TO_ROUTER,$UNWRAP_WETH9]"
    const MULTICALL_DEADLINE: &str = "0x5ae401dc000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000000e404e45aaf000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc200000000000000000000000000000000000000000000000000000000000001f4000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000f42400000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004449404b7c000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000";

    // cast calldata "multicall(bytes[])" "[$UNWRAP_WETH9]"
    const MULTICALL_PLAIN: &str = "0xac9650d8000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000004449404b7c000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000";

    // cast calldata 'unwrapWETH9(uint256)' 1
    const UNWRAP_WETH9_SENDER: &str =
        "0x496169970000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata 'unwrapWETH9WithFee(uint256,address,uint256,address)' 1 0x00000000000000000000000000000000000000a1 25 0x2222222222222222222222222222222222222222
    const UNWRAP_WETH9_WITH_FEE: &str = "0x9b2c0a37000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a100000000000000000000000000000000000000000000000000000000000000190000000000000000000000002222222222222222222222222222222222222222";

    // cast calldata 'unwrapWETH9WithFee(uint256,uint256,address)' 1 25 0x2222222222222222222222222222222222222222
    const UNWRAP_WETH9_WITH_FEE_SENDER: &str = "0xd4ef38de000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000190000000000000000000000002222222222222222222222222222222222222222";

    // cast calldata 'sweepToken(address,uint256,address)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 1 0x1111111111111111111111111111111111111111
    const SWEEP_TOKEN: &str = "0xdf2ab5bb000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000000010000000000000000000000001111111111111111111111111111111111111111";

    // cast calldata 'sweepToken(address,uint256)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 1
    const SWEEP_TOKEN_SENDER: &str = "0xe90a182f000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata 'sweepTokenWithFee(address,uint256,address,uint256,address)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 1 0x1111111111111111111111111111111111111111 25 0x2222222222222222222222222222222222222222
    const SWEEP_TOKEN_WITH_FEE: &str = "0xe0e189a0000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000001000000000000000000000000111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000190000000000000000000000002222222222222222222222222222222222222222";

    // cast calldata 'sweepTokenWithFee(address,uint256,uint256,address)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 1 25 0x2222222222222222222222222222222222222222
    const SWEEP_TOKEN_WITH_FEE_SENDER: &str = "0x3068c554000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000190000000000000000000000002222222222222222222222222222222222222222";

    // cast calldata 'refundETH()'
    const REFUND_ETH: &str = "0x12210e8a";

    // cast abi-encode 'f(((address,uint160,uint48,uint48),address,uint256),bytes)' '((0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1461501637330902918203684832716283019655932542975,1700000000,0),0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,1700000000)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const UR_PERMIT_INPUT: &str = "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000ffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000e00000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast abi-encode "f(address,uint256,uint256,bytes,bool)" 0x0000000000000000000000000000000000000002 1000000 1 $PATH_USDC_WETH true
    const UR_V3_IN_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000f4240000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002ba0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000000000000000000000";

    // cast abi-encode 'f(address,uint256)' 0x0000000000000000000000000000000000000001 1
    const UR_UNWRAP_INPUT: &str = "0x00000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata "execute(bytes,bytes[],uint256)" 0x0a000c "[$UR_PERMIT_INPUT,$UR_V3_IN_INPUT,$UR_UNWRAP_INPUT]" 1700000000
    const UR_PERMIT_SWAP_UNWRAP: &str = "0x3593564c000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000030a000c00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000001e000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000160000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000ffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000e000000000000000000000000000000000000000000000000000000000000000411111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000f4240000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002ba0b86991c6218b36c1d19d4a2e9eb0ce3606eb480001f4c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata "execute(bytes,bytes[])" 0x0b10 "[$UR_UNWRAP_INPUT,$UR_UNWRAP_INPUT]"
    const UR_UNKNOWN_COMMAND: &str = "0x24856bc30000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000020b100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001";

    // cast calldata "execute(bytes,bytes[])" 0x0c0c0c "[$UR_UNWRAP_INPUT]"
    const UR_LENGTH_MISMATCH: &str = "0x24856bc30000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000030c0c0c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000001";

    // cast abi-encode "f(address,uint256,uint256,bytes,bool)" 0x0000000000000000000000000000000000000001 1000 2000000 $PATH_WETH_USDC true
    const UR_V3_OUT_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000001e848000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002bc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20001f4a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000";

    // cast abi-encode 'f(address,uint256,uint256,address[],bool)' 0x0000000000000000000000000000000000000001 1000 1 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' false
    const UR_V2_IN_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast abi-encode 'f(address,uint256,uint256,address[],bool)' 0x0000000000000000000000000000000000000001 1000 1100 '[0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2]' true
    const UR_V2_OUT_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000044c00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    // cast abi-encode 'f(address,address,uint160)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af 1000
    const UR_PERMIT2_TRANSFER_FROM_INPUT: &str = "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af00000000000000000000000000000000000000000000000000000000000003e8";

    // cast abi-encode 'f(((address,uint160,uint48,uint48)[],address,uint256),bytes)' '([(0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,1000,1700000000,0),(0x6B175474E89094C44Da98b954EedeAC495271d0F,2000,1700000000,0)],0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,1700000000)' 0x1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111
    const UR_PERMIT2_PERMIT_BATCH_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000001c0000000000000000000000000000000000000000000000000000000000000006000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000000000000000000000000000000000000000007d0000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000";

    // cast abi-encode 'f(address,address,uint256)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x0000000000000000000000000000000000000001 0
    const UR_SWEEP_INPUT: &str = "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000";

    // cast abi-encode 'f(address,address,uint256)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x1111111111111111111111111111111111111111 10
    const UR_TRANSFER_INPUT: &str = "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000000a";

    // cast abi-encode 'f(address,address,uint256)' 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 0x2222222222222222222222222222222222222222 25
    const UR_PAY_PORTION_INPUT: &str = "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000022222222222222222222222222222222222222220000000000000000000000000000000000000000000000000000000000000019";

    // cast abi-encode 'f(address,uint256)' 0x0000000000000000000000000000000000000002 1000
    const UR_WRAP_INPUT: &str = "0x000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000003e8";

    // cast abi-encode 'f((address,address,uint160,address)[])' '[(0x00000000000000000000000000000000000000a1,0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af,900,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)]'
    const UR_PERMIT2_TRANSFER_FROM_BATCH_INPUT: &str = "0x0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a100000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af0000000000000000000000000000000000000000000000000000000000000384000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // cast abi-encode 'f(address,address,uint256)' 0x00000000000000000000000000000000000000a1 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 5
    const UR_BALANCE_CHECK_INPUT: &str = "0x00000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000005";

    // cast calldata "execute(bytes,bytes[])" 0x810203040506080b0d0e09 "[$UR_V3_OUT_INPUT,$UR_PERMIT2_TRANSFER_FROM_INPUT,$UR_PERMIT2_PERMIT_BATCH_INPUT,$UR_SWEEP_INPUT,$UR_TRANSFER_INPUT,$UR_PAY_PORTION_INPUT,$UR_V2_IN_INPUT,$UR_WRAP_INPUT,$UR_PERMIT2_TRANSFER_FROM_BATCH_INPUT,$UR_BALANCE_CHECK_INPUT,$UR_V2_OUT_INPUT]"
    const UR_EVERY_COMMAND: &str = "0x24856bc300000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000000b810203040506080b0d0e09000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000b000000000000000000000000000000000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000002800000000000000000000000000000000000000000000000000000000000000300000000000000000000000000000000000000000000000000000000000000056000000000000000000000000000000000000000000000000000000000000005e0000000000000000000000000000000000000000000000000000000000000066000000000000000000000000000000000000000000000000000000000000006e000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000860000000000000000000000000000000000000000000000000000000000000094000000000000000000000000000000000000000000000000000000000000009c00000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000001e848000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000002bc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20001f4a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000060000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af00000000000000000000000000000000000000000000000000000000000003e80000000000000000000000000000000000000000000000000000000000000240000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000001c0000000000000000000000000000000000000000000000000000000000000006000000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af000000000000000000000000000000000000000000000000000000006553f1000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006b175474e89094c44da98b954eedeac495271d0f00000000000000000000000000000000000000000000000000000000000007d0000000000000000000000000000000000000000000000000000000006553f100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000411111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000060000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000060000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000060000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000222222222222222222222222222222222222222200000000000000000000000000000000000000000000000000000000000000190000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc20000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000003e800000000000000000000000000000000000000000000000000000000000000c00000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a100000000000000000000000066a9893cc07d91d95644aedd05d03f95e1dba8af0000000000000000000000000000000000000000000000000000000000000384000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000a1000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4800000000000000000000000000000000000000000000000000000000000000050000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000044c00000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

    const ETH: RouterAsset = RouterAsset::Named(Asset::Native);

    /// A token, as a router asset.
    fn t(a: Address) -> RouterAsset {
        RouterAsset::Named(Asset::Token(a))
    }

    /// A router op.
    fn op(name: &'static str, flow: RouterFlow, recipients: Vec<Payee>) -> CallKind {
        CallKind::Router(RouterOp {
            name,
            flow,
            recipients,
            may_fail: false,
        })
    }

    /// A swap the caller pays.
    fn by_caller(
        input: RouterAsset,
        amount: Amount,
        ether_first: bool,
        output: RouterAsset,
    ) -> RouterFlow {
        RouterFlow::Swap {
            input,
            amount,
            payer: Payer::Caller,
            ether_first,
            output,
        }
    }

    /// A swap the router pays from what it holds.
    fn by_router(input: RouterAsset, amount: Amount, output: RouterAsset) -> RouterFlow {
        RouterFlow::Swap {
            input,
            amount,
            payer: Payer::Router,
            ether_first: false,
            output,
        }
    }

    fn exact(n: u64) -> Amount {
        Amount::Exact(u(n))
    }

    /// One payee whose address the router may read as a sentinel.
    fn mapped(a: Address) -> Vec<Payee> {
        vec![Payee::Mapped(a)]
    }

    /// All the router's WETH9, unwrapped.
    fn unwrap_all() -> RouterFlow {
        RouterFlow::Convert {
            from: RouterAsset::Weth,
            to: ETH,
            amount: Amount::All,
        }
    }

    /// All the router holds of `token`.
    fn sweep_all(token: Address) -> RouterFlow {
        RouterFlow::Pay {
            asset: t(token),
            amount: Amount::All,
        }
    }

    /// A swap input paid to `router`.
    fn swap_in(token: Address, amount: u64, router: Address) -> Effect {
        fx(tok(token), u(amount), EffectKind::SwapInput, router)
    }

    /// Checks the single call `hex` makes to `router`.
    fn check(router: Address, hex: &str, kind: CallKind, effects: Vec<Effect>) {
        let call = single(router, hex);
        assert_eq!(call.kind, kind, "{hex}");
        assert_eq!(call.effects, effects, "{hex}");
    }

    /// `hex` with head word `i` of its arguments set to zero.
    fn zero_word(hex: &str, i: usize) -> String {
        let mut data = bytes(hex).to_vec();
        data[4 + 32 * i..4 + 32 * (i + 1)].fill(0);
        alloy_primitives::hex::encode_prefixed(data)
    }

    /// An inner call of a batch at index 0, as the decoder should push it.
    fn inner(to: Address, data: Bytes, kind: CallKind, effects: Vec<Effect>) -> Call {
        Call {
            to: Some(to),
            value: U256::ZERO,
            data,
            parent: Some(0),
            depth: 1,
            kind,
            effects,
        }
    }

    #[test]
    fn selectors_match_their_signatures() {
        for (sel, sig) in [
            (
                SWAP_EXACT_TOKENS_FOR_TOKENS,
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_TOKENS_FOR_EXACT_TOKENS,
                "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_ETH_FOR_TOKENS,
                "swapExactETHForTokens(uint256,address[],address,uint256)",
            ),
            (
                SWAP_TOKENS_FOR_EXACT_ETH,
                "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_TOKENS_FOR_ETH,
                "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_ETH_FOR_EXACT_TOKENS,
                "swapETHForExactTokens(uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_TOKENS_FOR_TOKENS_FOT,
                "swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_ETH_FOR_TOKENS_FOT,
                "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_TOKENS_FOR_ETH_FOT,
                "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
            ),
            (
                SWAP_EXACT_TOKENS_FOR_TOKENS_02,
                "swapExactTokensForTokens(uint256,uint256,address[],address)",
            ),
            (
                SWAP_TOKENS_FOR_EXACT_TOKENS_02,
                "swapTokensForExactTokens(uint256,uint256,address[],address)",
            ),
            (
                EXACT_INPUT_SINGLE,
                "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
            ),
            (
                EXACT_INPUT,
                "exactInput((bytes,address,uint256,uint256,uint256))",
            ),
            (
                EXACT_OUTPUT_SINGLE,
                "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
            ),
            (
                EXACT_OUTPUT,
                "exactOutput((bytes,address,uint256,uint256,uint256))",
            ),
            (
                EXACT_INPUT_SINGLE_02,
                "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            ),
            (
                EXACT_INPUT_02,
                "exactInput((bytes,address,uint256,uint256))",
            ),
            (
                EXACT_OUTPUT_SINGLE_02,
                "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            ),
            (
                EXACT_OUTPUT_02,
                "exactOutput((bytes,address,uint256,uint256))",
            ),
            (super::UNWRAP_WETH9, "unwrapWETH9(uint256,address)"),
            (super::UNWRAP_WETH9_SENDER, "unwrapWETH9(uint256)"),
            (
                super::UNWRAP_WETH9_WITH_FEE,
                "unwrapWETH9WithFee(uint256,address,uint256,address)",
            ),
            (
                super::UNWRAP_WETH9_WITH_FEE_SENDER,
                "unwrapWETH9WithFee(uint256,uint256,address)",
            ),
            (super::SWEEP_TOKEN, "sweepToken(address,uint256,address)"),
            (super::SWEEP_TOKEN_SENDER, "sweepToken(address,uint256)"),
            (
                super::SWEEP_TOKEN_WITH_FEE,
                "sweepTokenWithFee(address,uint256,address,uint256,address)",
            ),
            (
                super::SWEEP_TOKEN_WITH_FEE_SENDER,
                "sweepTokenWithFee(address,uint256,uint256,address)",
            ),
            (super::REFUND_ETH, "refundETH()"),
            (MULTICALL, "multicall(bytes[])"),
            (super::MULTICALL_DEADLINE, "multicall(uint256,bytes[])"),
            (MULTICALL_BLOCKHASH, "multicall(bytes32,bytes[])"),
            (UR_EXECUTE, "execute(bytes,bytes[])"),
            (UR_EXECUTE_DEADLINE, "execute(bytes,bytes[],uint256)"),
        ] {
            assert_eq!(sel, keccak256(sig)[..4], "{sig}");
        }
    }

    #[test]
    fn v2_router02_swaps() {
        let r = V2_ROUTER;
        let caller = |input, amount, output| by_caller(input, amount, false, output);
        for (hex, name, flow, to, effects) in [
            (
                V2_EXACT_TOKENS_FOR_TOKENS,
                "swapExactTokensForTokens",
                caller(t(USDC), exact(1000), t(WETH)),
                WALLET,
                vec![swap_in(USDC, 1000, r)],
            ),
            (
                V2_TOKENS_FOR_EXACT_TOKENS,
                "swapTokensForExactTokens",
                caller(t(USDC), Amount::Part, t(WETH)),
                WALLET,
                vec![swap_in(USDC, 1100, r)],
            ),
            (
                V2_EXACT_ETH_FOR_TOKENS,
                "swapExactETHForTokens",
                caller(ETH, Amount::All, t(USDC)),
                WALLET,
                vec![],
            ),
            (
                V2_TOKENS_FOR_EXACT_ETH,
                "swapTokensForExactETH",
                caller(t(USDC), Amount::Part, ETH),
                WALLET,
                vec![swap_in(USDC, 1100, r)],
            ),
            (
                V2_EXACT_TOKENS_FOR_ETH,
                "swapExactTokensForETH",
                caller(t(USDC), exact(1000), ETH),
                ALICE,
                vec![swap_in(USDC, 1000, r)],
            ),
            (
                V2_ETH_FOR_EXACT_TOKENS,
                "swapETHForExactTokens",
                caller(ETH, Amount::All, t(USDC)),
                WALLET,
                vec![],
            ),
            (
                V2_EXACT_TOKENS_FOR_TOKENS_FOT,
                "swapExactTokensForTokensSupportingFeeOnTransferTokens",
                caller(t(DAI), exact(1000), t(WETH)),
                WALLET,
                vec![swap_in(DAI, 1000, r)],
            ),
            (
                V2_EXACT_ETH_FOR_TOKENS_FOT,
                "swapExactETHForTokensSupportingFeeOnTransferTokens",
                caller(ETH, Amount::All, t(USDC)),
                WALLET,
                vec![],
            ),
            (
                V2_EXACT_TOKENS_FOR_ETH_FOT,
                "swapExactTokensForETHSupportingFeeOnTransferTokens",
                caller(t(USDC), exact(1000), ETH),
                WALLET,
                vec![swap_in(USDC, 1000, r)],
            ),
        ] {
            check(r, hex, op(name, flow, mapped(to)), effects);
        }
        // SwapRouter02's V2 functions: a WETH9 input may be paid with the router's ether.
        let r = SWAP_ROUTER02;
        let flow = by_caller(t(USDC), exact(1000), true, t(WETH));
        check(
            r,
            R02_V2_EXACT_TOKENS_FOR_TOKENS,
            op(
                "swapExactTokensForTokens",
                flow,
                mapped(SENTINEL_MSG_SENDER),
            ),
            vec![swap_in(USDC, 1000, r)],
        );
        let flow = by_caller(t(USDC), Amount::Part, true, t(WETH));
        check(
            r,
            R02_V2_TOKENS_FOR_EXACT_TOKENS,
            op(
                "swapTokensForExactTokens",
                flow,
                mapped(SENTINEL_MSG_SENDER),
            ),
            vec![swap_in(USDC, 1100, r)],
        );
        // amountIn = 0 (SwapRouter02's CONTRACT_BALANCE): the router swaps what it holds.
        let flow = RouterFlow::Swap {
            input: t(USDC),
            amount: Amount::All,
            payer: Payer::Router,
            ether_first: true,
            output: t(WETH),
        };
        check(
            r,
            &zero_word(R02_V2_EXACT_TOKENS_FOR_TOKENS, 0),
            op(
                "swapExactTokensForTokens",
                flow,
                mapped(SENTINEL_MSG_SENDER),
            ),
            vec![],
        );
    }

    #[test]
    fn v2_empty_path_is_undecodable() {
        check(
            V2_ROUTER,
            V2_EMPTY_PATH,
            CallKind::Undecodable("malformed Uniswap V2 swap"),
            vec![],
        );
    }

    #[test]
    fn v3_swaps() {
        let r = SWAP_ROUTER02;
        let usdc_weth = |amount| by_caller(t(USDC), amount, true, t(WETH));
        check(
            r,
            V3_EXACT_INPUT_SINGLE,
            op(
                "exactInputSingle",
                usdc_weth(exact(1_000_000)),
                mapped(WALLET),
            ),
            vec![swap_in(USDC, 1_000_000, r)],
        );
        check(
            r,
            V3_EXACT_INPUT,
            op(
                "exactInput",
                by_caller(t(DAI), exact(5000), true, t(WETH)),
                mapped(WALLET),
            ),
            vec![swap_in(DAI, 5000, r)],
        );
        check(
            r,
            V3_EXACT_OUTPUT_SINGLE,
            op("exactOutputSingle", usdc_weth(Amount::Part), mapped(WALLET)),
            vec![swap_in(USDC, 2_000_000, r)],
        );
        // An exact-output path is reversed: its input token comes last.
        check(
            r,
            V3_EXACT_OUTPUT,
            op("exactOutput", usdc_weth(Amount::Part), mapped(WALLET)),
            vec![swap_in(USDC, 2_000_000, r)],
        );
        // The original SwapRouter: a deadline inside the struct.
        check(
            r,
            V3_SR1_EXACT_INPUT_SINGLE,
            op(
                "exactInputSingle",
                usdc_weth(exact(1_000_000)),
                mapped(WALLET),
            ),
            vec![swap_in(USDC, 1_000_000, r)],
        );
        check(
            r,
            V3_SR1_EXACT_OUTPUT,
            op("exactOutput", usdc_weth(Amount::Part), mapped(WALLET)),
            vec![swap_in(USDC, 2_000_000, r)],
        );
        assert_eq!(bytes(PATH_USDC_WETH).len(), 43);
        // amountIn = 0: SwapRouter02 swaps what it holds; the original SwapRouter has no such
        // convention (a swap of nothing).
        let flow = RouterFlow::Swap {
            input: t(USDC),
            amount: Amount::All,
            payer: Payer::Router,
            ether_first: true,
            output: t(WETH),
        };
        check(
            r,
            &zero_word(V3_EXACT_INPUT_SINGLE, 4),
            op("exactInputSingle", flow, mapped(WALLET)),
            vec![],
        );
        check(
            r,
            &zero_word(V3_SR1_EXACT_INPUT_SINGLE, 5),
            op("exactInputSingle", usdc_weth(exact(0)), mapped(WALLET)),
            vec![swap_in(USDC, 0, r)],
        );
    }

    #[test]
    fn v3_paths_of_bad_length_are_undecodable() {
        for hex in [V3_SHORT_PATH, V3_BAD_PATH_LENGTH] {
            check(
                SWAP_ROUTER02,
                hex,
                CallKind::Undecodable("malformed Uniswap V3 swap"),
                vec![],
            );
        }
    }

    #[test]
    fn router_payments() {
        let lit = Payee::Literal;
        let refund = RouterFlow::Pay {
            asset: ETH,
            amount: Amount::All,
        };
        // The recipient arguments are paid as written; the one-argument forms pay the caller.
        for (hex, name, flow, recipients) in [
            (UNWRAP_WETH9, "unwrapWETH9", unwrap_all(), vec![lit(WALLET)]),
            (
                UNWRAP_WETH9_SENDER,
                "unwrapWETH9",
                unwrap_all(),
                vec![Payee::Caller],
            ),
            (
                UNWRAP_WETH9_WITH_FEE,
                "unwrapWETH9WithFee",
                unwrap_all(),
                vec![lit(WALLET), lit(BOB)],
            ),
            (
                UNWRAP_WETH9_WITH_FEE_SENDER,
                "unwrapWETH9WithFee",
                unwrap_all(),
                vec![Payee::Caller, lit(BOB)],
            ),
            (SWEEP_TOKEN, "sweepToken", sweep_all(USDC), vec![lit(ALICE)]),
            (
                SWEEP_TOKEN_SENDER,
                "sweepToken",
                sweep_all(USDC),
                vec![Payee::Caller],
            ),
            (
                SWEEP_TOKEN_WITH_FEE,
                "sweepTokenWithFee",
                sweep_all(USDC),
                vec![lit(ALICE), lit(BOB)],
            ),
            (
                SWEEP_TOKEN_WITH_FEE_SENDER,
                "sweepTokenWithFee",
                sweep_all(USDC),
                vec![Payee::Caller, lit(BOB)],
            ),
            (REFUND_ETH, "refundETH", refund, vec![Payee::Caller]),
        ] {
            check(SWAP_ROUTER02, hex, op(name, flow, recipients), vec![]);
        }
    }

    #[test]
    fn multicall_with_deadline_unwraps_a_swap_and_an_unwrap() {
        let r = SWAP_ROUTER02;
        let action = decode_at(r, MULTICALL_DEADLINE);
        let top = Call {
            to: Some(r),
            value: U256::ZERO,
            data: bytes(MULTICALL_DEADLINE),
            parent: None,
            depth: 0,
            kind: CallKind::Batch,
            effects: vec![],
        };
        let swap = inner(
            r,
            bytes(V3_EXACT_INPUT_SINGLE_TO_ROUTER),
            op(
                "exactInputSingle",
                by_caller(t(USDC), exact(1_000_000), true, t(WETH)),
                mapped(SENTINEL_ADDRESS_THIS),
            ),
            vec![swap_in(USDC, 1_000_000, r)],
        );
        let unwrap = op("unwrapWETH9", unwrap_all(), vec![Payee::Literal(WALLET)]);
        let unwrap_call = inner(r, bytes(UNWRAP_WETH9), unwrap.clone(), vec![]);
        assert_eq!(action.calls, vec![top, swap, unwrap_call]);
        let plain = decode_at(r, MULTICALL_PLAIN);
        assert_eq!(kinds(&plain), vec![CallKind::Batch, unwrap]);
    }

    #[test]
    fn universal_router_permit_swap_unwrap() {
        let r = UNIVERSAL_ROUTER;
        let action = decode_at(r, UR_PERMIT_SWAP_UNWRAP);
        assert_eq!(action.calls.len(), 4);
        assert_eq!(action.calls[0].kind, CallKind::Batch);
        assert!(action.calls[0].effects.is_empty());
        let permit = inner(
            r,
            Bytes::new(),
            CallKind::Permit2(Permit2Op::Permit {
                owner: WALLET,
                spender: r,
                grants: vec![(USDC, U256::MAX)],
            }),
            vec![fx(tok(USDC), U256::MAX, EffectKind::Permit, r)],
        );
        let swap = inner(
            r,
            Bytes::new(),
            op(
                "V3_SWAP_EXACT_IN",
                by_caller(t(USDC), exact(1_000_000), false, t(WETH)),
                mapped(SENTINEL_ADDRESS_THIS),
            ),
            vec![swap_in(USDC, 1_000_000, r)],
        );
        let unwrap = inner(
            r,
            Bytes::new(),
            op("UNWRAP_WETH", unwrap_all(), mapped(SENTINEL_MSG_SENDER)),
            vec![],
        );
        assert_eq!(action.calls[1..], [permit, swap, unwrap]);
    }

    #[test]
    fn path_tokens() {
        let path = |hex| bytes(hex).to_vec();
        assert_eq!(v3_path(&path(PATH_USDC_WETH), false), Some((USDC, WETH)));
        assert_eq!(v3_path(&path(PATH_DAI_USDC_WETH), false), Some((DAI, WETH)));
        assert_eq!(v3_path(&path(PATH_DAI_USDC_WETH), true), Some((WETH, DAI)));
        assert_eq!(v3_path(&path(PATH_WETH_USDC), true), Some((USDC, WETH)));
        let v2 = bytes(V2_EXACT_TOKENS_FOR_TOKENS_FOT);
        let list = Tuple::new(&v2, 4).array(2, 1).unwrap();
        assert_eq!(v2_path(list), Some((DAI, WETH)));
    }

    #[test]
    fn universal_router_inputs_decode_from_offset_zero() {
        let ctx = Ctx {
            wallet: WALLET,
            to: UNIVERSAL_ROUTER,
        };
        let run = |command, hex| {
            ur_command(command, Tuple::new(&bytes(hex), 0), &ctx).map(|(kind, _)| kind)
        };
        let name = |command, hex| match run(command, hex) {
            Ok(CallKind::Router(op)) => op.name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name(0x00, UR_V3_IN_INPUT), "V3_SWAP_EXACT_IN");
        assert_eq!(name(0x01, UR_V3_OUT_INPUT), "V3_SWAP_EXACT_OUT");
        assert_eq!(name(0x08, UR_V2_IN_INPUT), "V2_SWAP_EXACT_IN");
        assert_eq!(name(0x09, UR_V2_OUT_INPUT), "V2_SWAP_EXACT_OUT");
        assert_eq!(name(0x8c, UR_UNWRAP_INPUT), "UNWRAP_WETH");
        assert_eq!(name(0x04, UR_SWEEP_INPUT), "SWEEP");
        assert_eq!(name(0x05, UR_TRANSFER_INPUT), "TRANSFER");
        assert_eq!(name(0x06, UR_PAY_PORTION_INPUT), "PAY_PORTION");
        assert_eq!(name(0x0b, UR_WRAP_INPUT), "WRAP_ETH");
        assert_eq!(name(0x0e, UR_BALANCE_CHECK_INPUT), "BALANCE_CHECK_ERC20");
        assert!(matches!(
            run(0x0a, UR_PERMIT_INPUT),
            Ok(CallKind::Permit2(Permit2Op::Permit { .. }))
        ));
        assert!(matches!(
            run(0x03, UR_PERMIT2_PERMIT_BATCH_INPUT),
            Ok(CallKind::Permit2(Permit2Op::Permit { .. }))
        ));
        for (command, hex) in [
            (0x02, UR_PERMIT2_TRANSFER_FROM_INPUT),
            (0x0d, UR_PERMIT2_TRANSFER_FROM_BATCH_INPUT),
        ] {
            assert!(matches!(
                run(command, hex),
                Ok(CallKind::Permit2(Permit2Op::TransferFrom { .. }))
            ));
        }
        // An input that does not fit its command.
        assert_eq!(
            run(0x0a, UR_UNWRAP_INPUT),
            Err("malformed Universal Router command input")
        );
        assert_eq!(
            run(0x00, UR_V2_IN_INPUT),
            Err("malformed Universal Router command input")
        );
        for command in [0x07, 0x0f, 0x10, 0x21, 0x3f] {
            assert_eq!(
                run(command, UR_UNWRAP_INPUT),
                Err("unsupported Universal Router command")
            );
        }
    }

    #[test]
    fn universal_router_contract_balance_and_allowed_failures() {
        let ctx = Ctx {
            wallet: WALLET,
            to: UNIVERSAL_ROUTER,
        };
        let word = |v: U256| v.to_be_bytes::<32>();
        // WRAP_ETH(address(2), CONTRACT_BALANCE), allowed to fail.
        let mut input = word(U256::from(2)).to_vec();
        input.extend(word(U256::from(1) << 255));
        let (kind, _) = ur_command(0x8b, Tuple::new(&input, 0), &ctx).unwrap();
        let want = CallKind::Router(RouterOp {
            name: "WRAP_ETH",
            flow: RouterFlow::Convert {
                from: ETH,
                to: RouterAsset::Weth,
                amount: Amount::All,
            },
            recipients: mapped(SENTINEL_ADDRESS_THIS),
            may_fail: true,
        });
        assert_eq!(kind, want);
        // SWEEP and TRANSFER of address(0): ether; TRANSFER of CONTRACT_BALANCE of a token: all
        // of it; PAY_PORTION of 10000 bips: all of it.
        let payment = |command, token: Address, value: U256| {
            let mut input = word(U256::from_be_slice(token.as_slice())).to_vec();
            input.extend(word(U256::from_be_slice(ALICE.as_slice())));
            input.extend(word(value));
            match ur_command(command, Tuple::new(&input, 0), &ctx) {
                Ok((CallKind::Router(op), _)) => op.flow,
                other => panic!("{other:?}"),
            }
        };
        let pay = |asset, amount| RouterFlow::Pay { asset, amount };
        let max = U256::from(1) << 255;
        assert_eq!(
            payment(0x04, Address::ZERO, U256::ZERO),
            pay(ETH, Amount::All)
        );
        assert_eq!(
            payment(0x05, Address::ZERO, U256::from(7)),
            pay(ETH, exact(7))
        );
        assert_eq!(payment(0x05, USDC, max), pay(t(USDC), Amount::All));
        assert_eq!(
            payment(0x06, USDC, U256::from(10_000)),
            pay(t(USDC), Amount::All)
        );
        assert_eq!(
            payment(0x06, USDC, U256::from(9_999)),
            pay(t(USDC), Amount::Part)
        );
    }

    #[test]
    fn universal_router_every_supported_command() {
        let r = UNIVERSAL_ROUTER;
        let action = decode_at(r, UR_EVERY_COMMAND);
        let got: Vec<(CallKind, Vec<Effect>)> = action.calls[1..]
            .iter()
            .map(|c| (c.kind.clone(), c.effects.clone()))
            .collect();
        let p2 = |op| CallKind::Permit2(op);
        let pay = |asset, amount| RouterFlow::Pay { asset, amount };
        let want = vec![
            // 0x81: V3_SWAP_EXACT_OUT allowed to fail; its input token is the path's last.
            (
                CallKind::Router(RouterOp {
                    name: "V3_SWAP_EXACT_OUT",
                    flow: by_caller(t(USDC), Amount::Part, false, t(WETH)),
                    recipients: mapped(SENTINEL_MSG_SENDER),
                    may_fail: true,
                }),
                vec![swap_in(USDC, 2_000_000, r)],
            ),
            (
                p2(Permit2Op::TransferFrom {
                    transfers: vec![(WALLET, r, u(1000), USDC)],
                    mapped: true,
                }),
                vec![fx(tok(USDC), u(1000), EffectKind::Transfer, r)],
            ),
            (
                p2(Permit2Op::Permit {
                    owner: WALLET,
                    spender: r,
                    grants: vec![(USDC, u(1000)), (DAI, u(2000))],
                }),
                vec![
                    fx(tok(USDC), u(1000), EffectKind::Permit, r),
                    fx(tok(DAI), u(2000), EffectKind::Permit, r),
                ],
            ),
            (
                op("SWEEP", sweep_all(USDC), mapped(SENTINEL_MSG_SENDER)),
                vec![],
            ),
            (
                op("TRANSFER", pay(t(USDC), exact(10)), mapped(ALICE)),
                vec![],
            ),
            (
                op("PAY_PORTION", pay(t(USDC), Amount::Part), mapped(BOB)),
                vec![],
            ),
            // The router's own balance pays (payerIsUser = false): no input from the wallet.
            (
                op(
                    "V2_SWAP_EXACT_IN",
                    by_router(t(USDC), exact(1000), t(WETH)),
                    mapped(SENTINEL_MSG_SENDER),
                ),
                vec![],
            ),
            (
                op(
                    "WRAP_ETH",
                    RouterFlow::Convert {
                        from: ETH,
                        to: RouterAsset::Weth,
                        amount: exact(1000),
                    },
                    mapped(SENTINEL_ADDRESS_THIS),
                ),
                vec![],
            ),
            // The batch form pays its recipients as written.
            (
                p2(Permit2Op::TransferFrom {
                    transfers: vec![(WALLET, r, u(900), USDC)],
                    mapped: false,
                }),
                vec![fx(tok(USDC), u(900), EffectKind::Transfer, r)],
            ),
            (op("BALANCE_CHECK_ERC20", RouterFlow::Check, vec![]), vec![]),
            (
                op(
                    "V2_SWAP_EXACT_OUT",
                    by_caller(t(USDC), Amount::Part, false, t(WETH)),
                    mapped(SENTINEL_MSG_SENDER),
                ),
                vec![swap_in(USDC, 1100, r)],
            ),
        ];
        assert_eq!(got, want);
        assert!(
            action.calls[1..]
                .iter()
                .all(|c| c.parent == Some(0) && c.depth == 1 && c.data.is_empty())
        );
    }

    #[test]
    fn universal_router_unknown_command_is_undecodable() {
        let action = decode_at(UNIVERSAL_ROUTER, UR_UNKNOWN_COMMAND);
        let wrap = RouterFlow::Convert {
            from: ETH,
            to: RouterAsset::Weth,
            amount: exact(1),
        };
        let want = vec![
            CallKind::Batch,
            op("WRAP_ETH", wrap, mapped(SENTINEL_MSG_SENDER)),
            CallKind::Undecodable("unsupported Universal Router command"),
        ];
        assert_eq!(kinds(&action), want);
    }

    #[test]
    fn universal_router_length_mismatch_is_undecodable() {
        let action = decode_at(UNIVERSAL_ROUTER, UR_LENGTH_MISMATCH);
        let want = vec![
            CallKind::Batch,
            op("UNWRAP_WETH", unwrap_all(), mapped(SENTINEL_MSG_SENDER)),
            CallKind::Undecodable("Universal Router commands and inputs differ in length"),
        ];
        assert_eq!(kinds(&action), want);
    }

    #[test]
    fn mutated_calldata_never_panics() {
        fuzz_mutations(
            UNIVERSAL_ROUTER,
            &[
                UR_PERMIT_SWAP_UNWRAP,
                UR_EVERY_COMMAND,
                MULTICALL_DEADLINE,
                V3_EXACT_INPUT,
                V3_EXACT_OUTPUT,
                V2_EXACT_TOKENS_FOR_TOKENS_FOT,
                SWEEP_TOKEN_WITH_FEE,
            ],
            1500,
        );
    }
}
