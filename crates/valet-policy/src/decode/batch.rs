//! The entry point of calldata decoding ([`push_call`]) and the batch containers: Multicall3
//! and ERC-7821 `execute`. Router `multicall` and the Universal Router live in `dex`.

use super::{
    Action, Asset, Call, CallKind, Effect, EffectKind, MAX_BATCH_DEPTH, MAX_CALLS,
    abi::{self, Tuple},
    dex, permit2, token,
};
use alloy_primitives::{Address, Bytes, U256};

/// What a leaf decoder makes of a call with a selector it knows: its kind and effects, or
/// what did not decode.
pub(crate) type Leaf = Result<(CallKind, Vec<Effect>), &'static str>;

/// The context of one call being decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// The wallet the request acts for.
    pub(crate) wallet: Address,
    /// The call's target (the token, the router, ...).
    pub(crate) to: Address,
}

/// `aggregate((address,bytes)[])`
const AGGREGATE: [u8; 4] = [0x25, 0x2d, 0xba, 0x42];
/// `tryAggregate(bool,(address,bytes)[])`
const TRY_AGGREGATE: [u8; 4] = [0xbc, 0xe3, 0x8b, 0xd7];
/// `blockAndAggregate((address,bytes)[])`
const BLOCK_AND_AGGREGATE: [u8; 4] = [0xc3, 0x07, 0x7f, 0xa9];
/// `tryBlockAndAggregate(bool,(address,bytes)[])`
const TRY_BLOCK_AND_AGGREGATE: [u8; 4] = [0x39, 0x95, 0x42, 0xe9];
/// `aggregate3((address,bool,bytes)[])`
const AGGREGATE3: [u8; 4] = [0x82, 0xad, 0x56, 0xcb];
/// `aggregate3Value((address,bool,uint256,bytes)[])`
const AGGREGATE3_VALUE: [u8; 4] = [0x17, 0x4d, 0xea, 0x71];
/// `execute(bytes32,bytes)` (ERC-7821)
const EXECUTE_7821: [u8; 4] = [0xe9, 0xae, 0x5c, 0x53];

/// Why a call at this point would break a limit, if it would.
fn over_limit(action: &Action, depth: u8) -> Option<&'static str> {
    if depth > MAX_BATCH_DEPTH {
        Some("batches nested too deep")
    } else if action.calls.len() >= MAX_CALLS {
        Some("too many calls in one request")
    } else {
        None
    }
}

/// Whether a batch being unwrapped must stop: the call limit has been reached.
pub(crate) fn full(action: &Action) -> bool {
    action.calls.len() > MAX_CALLS
}

/// Pushes a call whose kind and effects are already known, unless it would break a limit
/// (it is then pushed as undecodable). Returns its index.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_decoded(
    action: &mut Action,
    to: Option<Address>,
    value: U256,
    data: Bytes,
    parent: Option<usize>,
    depth: u8,
    kind: CallKind,
    effects: Vec<Effect>,
) -> usize {
    let (kind, effects) = match over_limit(action, depth) {
        Some(why) => (CallKind::Undecodable(why), Vec::new()),
        None => (kind, effects),
    };
    action.calls.push(Call {
        to,
        value,
        data,
        parent,
        depth,
        kind,
        effects,
    });
    action.calls.len() - 1
}

/// Decodes one call and pushes it onto `action.calls`, followed by its inner calls when it is
/// a batch (each with `parent` set to the batch's index and `depth + 1`).
///
/// Classification is by selector, whatever the target. A call deeper than
/// [`MAX_BATCH_DEPTH`] or beyond [`MAX_CALLS`] is pushed as undecodable and not unwrapped.
pub(crate) fn push_call(
    action: &mut Action,
    wallet: Address,
    to: Option<Address>,
    value: U256,
    data: Bytes,
    parent: Option<usize>,
    depth: u8,
) {
    let leaf: Leaf = if let Some(why) = over_limit(action, depth) {
        Err(why)
    } else if let Some(target) = to {
        if data.is_empty() {
            Ok((CallKind::Plain, Vec::new()))
        } else if let Some(sel) = abi::selector(&data) {
            let ctx = Ctx { wallet, to: target };
            let args = Tuple::new(&data, 4);
            match batch(sel, args, &data) {
                Some(Ok(inner)) => {
                    return push_batch(action, ctx, value, &data, parent, depth, inner);
                }
                Some(Err(why)) => Err(why),
                None if dex::push_batch(action, ctx, sel, value, &data, parent, depth) => return,
                None => token::decode(sel, args, &ctx)
                    .or_else(|| permit2::decode(sel, args, &ctx))
                    .or_else(|| dex::decode(sel, args, &ctx))
                    .unwrap_or(Ok((CallKind::Unknown, Vec::new()))),
            }
        } else {
            Err("calldata shorter than a selector")
        }
    } else {
        Ok((CallKind::Create, Vec::new()))
    };
    let (kind, effects) = leaf.unwrap_or_else(|why| (CallKind::Undecodable(why), Vec::new()));
    action.calls.push(Call {
        to,
        value,
        data,
        parent,
        depth,
        kind,
        effects,
    });
}

/// The shape of a batch's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Multicall3 `(address target, bytes callData)`.
    Call,
    /// Multicall3 `(address target, bool allowFailure, bytes callData)`.
    Call3,
    /// Multicall3 `(address target, bool allowFailure, uint256 value, bytes callData)`.
    Call3Value,
    /// ERC-7821 `(address to, uint256 value, bytes data)`: address(0) is the account itself,
    /// and values leave the account's balance.
    Erc7821,
}

/// The inner-call array of a Multicall3 or ERC-7821 batch, checked to be an array.
struct Inner<'a> {
    calls: abi::Array<'a>,
    shape: Shape,
}

/// Recognises a Multicall3 or ERC-7821 batch: `None` for another selector, `Err` when its
/// arguments do not decode.
fn batch<'a>(
    sel: [u8; 4],
    a: Tuple<'a>,
    data: &'a [u8],
) -> Option<Result<Inner<'a>, &'static str>> {
    let found = match sel {
        AGGREGATE | BLOCK_AND_AGGREGATE => a.array(0, 1).map(|calls| Inner {
            calls,
            shape: Shape::Call,
        }),
        TRY_AGGREGATE | TRY_BLOCK_AND_AGGREGATE => {
            a.boolean(0).and_then(|_| a.array(1, 1)).map(|calls| Inner {
                calls,
                shape: Shape::Call,
            })
        }
        AGGREGATE3 => a.array(0, 1).map(|calls| Inner {
            calls,
            shape: Shape::Call3,
        }),
        AGGREGATE3_VALUE => a.array(0, 1).map(|calls| Inner {
            calls,
            shape: Shape::Call3Value,
        }),
        EXECUTE_7821 => {
            let Some(mode) = a.word(0) else {
                return Some(Err("malformed ERC-7821 execute"));
            };
            // Solady's ERC7821: byte 0 call type (0x01 batch), byte 1 exec type (0x00 revert
            // on failure), bytes 6..10 the mode selector; bytes 2..6 and 10.. are ignored.
            let supported = mode[0] == 0x01
                && mode[1] == 0
                && matches!(mode[6..10], [0, 0, 0, 0] | [0x78, 0x21, 0x00, 0x01]);
            if !supported {
                return Some(Err("unsupported ERC-7821 mode"));
            }
            // Read the execution data within its own bounds; ranges still index `data`.
            let calls = a
                .bytes(1)
                .and_then(|r| Tuple::new(data.get(..r.end)?, r.start).array(0, 1));
            return Some(
                calls
                    .map(|calls| Inner {
                        calls,
                        shape: Shape::Erc7821,
                    })
                    .ok_or("malformed ERC-7821 execute"),
            );
        }
        _ => return None,
    };
    Some(found.ok_or("malformed Multicall3 call list"))
}

/// One element of a batch: target, value and calldata range.
fn element(
    inner: &Inner<'_>,
    k: usize,
    wallet: Address,
) -> Option<(Address, U256, std::ops::Range<usize>)> {
    let e = inner.calls.dyn_item(k)?;
    let target = e.address(0)?;
    match inner.shape {
        Shape::Call => Some((target, U256::ZERO, e.bytes(1)?)),
        Shape::Call3 => {
            e.boolean(1)?;
            Some((target, U256::ZERO, e.bytes(2)?))
        }
        Shape::Call3Value => {
            e.boolean(1)?;
            Some((target, e.uint(2)?, e.bytes(3)?))
        }
        Shape::Erc7821 => {
            let target = if target.is_zero() { wallet } else { target };
            Some((target, e.uint(1)?, e.bytes(2)?))
        }
    }
}

/// Pushes a Multicall3 or ERC-7821 batch and its inner calls. When an element does not
/// decode, the inner calls pushed so far are dropped and the batch becomes undecodable.
fn push_batch(
    action: &mut Action,
    ctx: Ctx,
    value: U256,
    data: &Bytes,
    parent: Option<usize>,
    depth: u8,
    inner: Inner<'_>,
) {
    let index = push_decoded(
        action,
        Some(ctx.to),
        value,
        data.clone(),
        parent,
        depth,
        CallKind::Batch,
        Vec::new(),
    );
    for k in 0..inner.calls.len() {
        if full(action) {
            break;
        }
        let Some((target, v, range)) = element(&inner, k, ctx.wallet) else {
            return fail(action, index, "malformed batch element");
        };
        let Some(call_data) = abi::slice(data, range) else {
            return fail(action, index, "malformed batch element");
        };
        let at = action.calls.len();
        push_call(
            action,
            ctx.wallet,
            Some(target),
            v,
            call_data,
            Some(index),
            depth.saturating_add(1),
        );
        // ERC-7821 values leave the executing account's own balance.
        if inner.shape == Shape::Erc7821
            && !v.is_zero()
            && let Some(call) = action.calls.get_mut(at)
        {
            call.effects.push(Effect {
                asset: Asset::Native,
                amount: v,
                kind: EffectKind::Transfer,
                counterparty: target,
            });
        }
    }
}

/// Drops the inner calls of the batch at `index` and marks it undecodable.
pub(crate) fn fail(action: &mut Action, index: usize, why: &'static str) {
    action.calls.truncate(index + 1);
    if let Some(call) = action.calls.get_mut(index) {
        call.kind = CallKind::Undecodable(why);
        call.effects.clear();
    }
}
