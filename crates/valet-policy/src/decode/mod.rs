//! What a request really does: calldata and batches unwrapped into a flat list of
//! [`Call`]s, each with the [`Effect`]s it has on the wallet's assets.
//!
//! Decoding never fails as a whole: a call that cannot be decoded becomes
//! [`CallKind::Undecodable`], and the evaluator denies it wherever that matters.
//! Decoding is by selector, whatever the target: a look-alike function on an unknown
//! contract is counted as if it were the real one, which can only over-count.

mod abi;
mod batch;
mod dex;
mod permit2;
mod token;
pub(crate) mod typed;

#[cfg(test)]
mod testutil;

use alloy_primitives::{Address, Bytes, U256};

pub use typed::{TypedDataSummary, decode_typed_data};

/// How deep batches may nest (a batch inside a batch inside ...). Deeper is undecodable.
pub const MAX_BATCH_DEPTH: u8 = 4;
/// How many calls one request may unwrap into, containers included. More is undecodable.
pub const MAX_CALLS: usize = 256;
/// How many [`Effect`]s one request may have in all (a Permit2 batch has one per token). More
/// is undecodable: it keeps the cost of deciding one request bounded.
pub const MAX_EFFECTS: usize = 1024;

/// The address Uniswap routers read as "the caller" (`msg.sender`) in a recipient field.
pub const SENTINEL_MSG_SENDER: Address = Address::with_last_byte(1);
/// The address Uniswap routers read as "the router itself" in a recipient field.
pub const SENTINEL_ADDRESS_THIS: Address = Address::with_last_byte(2);

/// An asset whose outflow a spend limit can cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asset {
    /// The chain's native currency (ether), in wei.
    Native,
    /// A token contract (ERC-20 in base units; ERC-721 counts one per token; ERC-1155 its amount).
    Token(Address),
}

/// Why an [`Effect`] moves or exposes the wallet's funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectKind {
    /// Funds leave the wallet now (`transfer`, `transferFrom(wallet, …)`, Permit2 transfers).
    Transfer,
    /// The input of a swap paid by the wallet (`amountIn`, or `amountInMax` for exact output).
    SwapInput,
    /// An allowance granted to `counterparty` (`approve`, `increaseAllowance`, Permit2 `approve`).
    Approval,
    /// An allowance or transfer right granted by signature (EIP-2612, Permit2) or an on-chain
    /// `permit` call that uses one.
    Permit,
    /// `setApprovalForAll(operator, true)`: every token of a collection, counted as unlimited.
    OperatorGrant,
}

/// One movement or exposure of the wallet's assets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Which asset.
    pub asset: Asset,
    /// How much, in base units; [`U256::MAX`] for unlimited.
    pub amount: U256,
    /// Why.
    pub kind: EffectKind,
    /// Who receives the funds or the right to take them (recipient or spender); for a swap
    /// input, the router.
    pub counterparty: Address,
}

/// A token operation recognised by selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOp {
    /// ERC-20 `transfer(to, amount)`.
    Transfer {
        /// Recipient.
        to: Address,
        /// Amount in base units.
        amount: U256,
    },
    /// ERC-20 `transferFrom(from, to, amount)`, or ERC-721 `transferFrom(from, to, id)` (the
    /// same selector: `amount` is then a token id).
    TransferFrom {
        /// Whose tokens.
        from: Address,
        /// Recipient.
        to: Address,
        /// Amount in base units, or the token id.
        amount: U256,
    },
    /// ERC-20 `approve(spender, amount)`, or ERC-721 `approve(to, id)`.
    Approve {
        /// Spender.
        spender: Address,
        /// Amount (U256::MAX is unlimited).
        amount: U256,
    },
    /// `increaseAllowance(spender, added)`.
    IncreaseAllowance {
        /// Spender.
        spender: Address,
        /// Added amount.
        amount: U256,
    },
    /// `decreaseAllowance(spender, subtracted)`: lowers exposure.
    DecreaseAllowance {
        /// Spender.
        spender: Address,
        /// Subtracted amount.
        amount: U256,
    },
    /// EIP-2612 `permit(owner, spender, value, deadline, v, r, s)` or DAI's
    /// `permit(holder, spender, nonce, expiry, allowed, v, r, s)` sent as a call.
    Permit {
        /// Owner of the tokens.
        owner: Address,
        /// Spender.
        spender: Address,
        /// Amount (DAI's `allowed = true` is unlimited).
        amount: U256,
    },
    /// ERC-721 `safeTransferFrom(from, to, id[, data])`.
    NftTransfer {
        /// Owner.
        from: Address,
        /// Recipient.
        to: Address,
        /// Token id.
        id: U256,
    },
    /// ERC-1155 `safeTransferFrom(from, to, id, amount, data)` or
    /// `safeBatchTransferFrom(from, to, ids, amounts, data)` (amounts summed, saturating).
    MultiTokenTransfer {
        /// Owner.
        from: Address,
        /// Recipient.
        to: Address,
        /// Total amount.
        amount: U256,
    },
    /// ERC-721/1155 `setApprovalForAll(operator, approved)`.
    SetApprovalForAll {
        /// Operator.
        operator: Address,
        /// Granted (true) or withdrawn (false).
        approved: bool,
    },
    /// WETH `deposit()`: wraps the call's value.
    WrapNative,
    /// WETH `withdraw(amount)`: unwraps.
    UnwrapNative {
        /// Amount.
        amount: U256,
    },
}

/// A call to the canonical Permit2 contract's allowance or signature-transfer functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit2Op {
    /// `approve(token, spender, amount, expiration)`.
    Approve {
        /// Token.
        token: Address,
        /// Spender.
        spender: Address,
        /// Amount (uint160 max is unlimited; reported as U256::MAX).
        amount: U256,
    },
    /// `permit(owner, PermitSingle | PermitBatch, signature)`: one entry per token.
    Permit {
        /// Owner.
        owner: Address,
        /// Spender.
        spender: Address,
        /// (token, amount) pairs.
        grants: Vec<(Address, U256)>,
    },
    /// `transferFrom(from, to, amount, token)` or its batch form: one entry per transfer.
    TransferFrom {
        /// (from, to, amount, token) per transfer.
        transfers: Vec<(Address, Address, U256, Address)>,
        /// Whether `to` is read with the router's sentinels ([`Payee::Mapped`]): the Universal
        /// Router's `PERMIT2_TRANSFER_FROM`. Its batch form and Permit2 itself pay `to` as
        /// written.
        mapped: bool,
    },
    /// `permitTransferFrom` / `permitWitnessTransferFrom` (single or batch), called with a signature.
    PermitTransferFrom {
        /// Owner.
        owner: Address,
        /// (token, recipient, amount) per transfer.
        transfers: Vec<(Address, Address, U256)>,
    },
    /// `lockdown` or `invalidateNonces` / `invalidateUnorderedNonces`: only lowers exposure.
    Revoke,
}

/// An asset a router op takes or pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterAsset {
    /// A token the calldata names, or ether ([`Asset::Native`]: a V2 ETH swap, `address(0)` in
    /// a Universal Router payment, `refundETH`).
    Named(Asset),
    /// The router's own wrapped-native token (WETH9), which `unwrapWETH9`, `UNWRAP_WETH` and
    /// `WRAP_ETH` use without naming it.
    Weth,
}

/// How much of an asset the router holds an op takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// All of it: a sweep, an unwrap, a refund, `CONTRACT_BALANCE`, the `msg.value` of a V2
    /// ETH-input swap.
    All,
    /// Exactly this much.
    Exact(U256),
    /// An amount not known in advance: an exact-output swap's input (at most its maximum), a
    /// portion of the balance.
    Part,
}

/// Who pays a swap's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    /// The caller: pulled with `transferFrom` or Permit2, or the ether sent with a V2
    /// ETH-input swap.
    Caller,
    /// The router, from what it holds (Universal Router `payerIsUser = false`, SwapRouter02
    /// `amountIn = 0`, its `CONTRACT_BALANCE`).
    Router,
}

/// What a router op does with the assets the router holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterFlow {
    /// Sells `amount` of `input` for `output`, which goes to the recipients.
    Swap {
        /// The asset sold.
        input: RouterAsset,
        /// How much of it.
        amount: Amount,
        /// Who pays it.
        payer: Payer,
        /// Whether the router pays a WETH9 input from the ether it holds when that covers
        /// the amount (the V3 periphery's `pay`: SwapRouter and SwapRouter02).
        ether_first: bool,
        /// The asset bought.
        output: RouterAsset,
    },
    /// Pays `amount` of `asset` out of what the router holds to the recipients (sweeps,
    /// `TRANSFER`, `PAY_PORTION`, `refundETH`).
    Pay {
        /// The asset paid.
        asset: RouterAsset,
        /// How much.
        amount: Amount,
    },
    /// Turns `amount` of `from` the router holds into `to`, which goes to the recipients
    /// (`WRAP_ETH`, `UNWRAP_WETH`, `unwrapWETH9`).
    Convert {
        /// The asset taken.
        from: RouterAsset,
        /// The asset paid.
        to: RouterAsset,
        /// How much is taken.
        amount: Amount,
    },
    /// Moves nothing (`BALANCE_CHECK_ERC20`).
    Check,
    /// Pulls the caller's tokens into a pool or the router without swapping them (V2
    /// `addLiquidity`, `addLiquidityETH`, SwapRouter02 `pull`): counted as outflow, never a swap.
    Deposit,
}

/// Who a router op pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payee {
    /// The router's caller (`msg.sender`): the one-argument payments of SwapRouter02
    /// (`unwrapWETH9(uint256)`, `sweepToken(address,uint256)`, `refundETH()`).
    Caller,
    /// An address argument in which a router that reads sentinels (`routers.rs`) reads
    /// [`SENTINEL_MSG_SENDER`] as its caller and [`SENTINEL_ADDRESS_THIS`] as itself.
    Mapped(Address),
    /// An address argument paid as written by every router (the recipient arguments of
    /// the V3 periphery's payments, `PERMIT2_TRANSFER_FROM_BATCH`).
    Literal(Address),
}

/// A swap or router utility call (Uniswap V2 Router02, V3 SwapRouter/SwapRouter02,
/// Universal Router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterOp {
    /// The function or Universal Router command, for messages (`swapExactTokensForTokens`,
    /// `V3_SWAP_EXACT_IN`, ...).
    pub name: &'static str,
    /// What it does with the assets the router holds.
    pub flow: RouterFlow,
    /// Every payee of what it pays: the recipient first, then a fee recipient.
    pub recipients: Vec<Payee>,
    /// A Universal Router command allowed to fail (flag `0x80`): what it would take may
    /// stay where it is.
    pub may_fail: bool,
}

/// What one call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// No calldata: a plain native transfer (or a call to `receive`).
    Plain,
    /// A contract creation (no `to`).
    Create,
    /// A selector Valet does not know, on a contract other than the wallet: permitted only by
    /// an explicit rule.
    Unknown,
    /// A token operation.
    Token(TokenOp),
    /// A Permit2 operation.
    Permit2(Permit2Op),
    /// A swap or router utility.
    Router(RouterOp),
    /// A batch (Multicall3, ERC-7821 `execute`, router `multicall`, Universal Router
    /// `execute`): its inner calls follow it in [`Action::calls`] with `parent` set to its index.
    /// A Universal Router `execute` is a batch of one inner call per command (with empty
    /// calldata), mostly [`CallKind::Router`] or [`CallKind::Permit2`].
    Batch,
    /// Calldata that claims a known selector but does not decode, a batch nested too deep, a
    /// call beyond [`MAX_CALLS`] or [`MAX_EFFECTS`], an unknown Universal Router command, a
    /// delegatecall batch mode, or a function Valet does not know called on the wallet itself
    /// (its own code, e.g. an EIP-7702 delegate, can move anything it holds). Always denied.
    Undecodable(&'static str),
}

/// One call the request makes, possibly inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Target (`None` for contract creation).
    pub to: Option<Address>,
    /// Native value attached to this call.
    pub value: U256,
    /// The calldata (a cheap slice of the request's bytes).
    pub data: Bytes,
    /// Index in [`Action::calls`] of the batch that contains this call.
    pub parent: Option<usize>,
    /// How deep in batches (0 = the transaction itself).
    pub depth: u8,
    /// What the call is.
    pub kind: CallKind,
    /// What the call moves or exposes.
    pub effects: Vec<Effect>,
}

impl Call {
    /// The 4-byte function selector, if the calldata has one.
    pub fn selector(&self) -> Option<[u8; 4]> {
        self.data.get(..4).map(|s| [s[0], s[1], s[2], s[3]])
    }
}

/// A decoded transaction: the calls it makes, in order, containers before their contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Action {
    /// Every call, the transaction's own call first.
    pub calls: Vec<Call>,
    /// How many effects the calls have in all (more than [`MAX_EFFECTS`] once the limit is
    /// broken: decoding then stops).
    pub(crate) effects: usize,
}

/// Decodes a transaction sent by `wallet` into every call it makes, with effects.
///
/// `value` is the transaction's native value; `data` its calldata. Native value is not an
/// [`Effect`] of the top-level call (the evaluator counts it from the transaction itself), but
/// inner calls of a batch the wallet executes on itself (ERC-7821) carry their own values.
pub fn decode_transaction(
    wallet: Address,
    to: Option<Address>,
    value: U256,
    data: &Bytes,
) -> Action {
    let mut action = Action {
        calls: Vec::with_capacity(4),
        effects: 0,
    };
    batch::push_call(&mut action, wallet, to, value, data.clone(), None, 0);
    action
}
