//! The policy model: what a key may do, as parsed and checked from a policy file
//! ([`Policy::from_toml`]).

use crate::decode::Asset;
use alloy_primitives::{Address, U256};
use ipnet::IpNet;
use jiff::{Timestamp, tz::TimeZone};

/// A built-in set of permissions (SPEC section 3, "Profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Read methods only; no signature of any kind.
    ReadOnly,
    /// Swaps on trusted routers paying the wallet, approvals and permits to those routers.
    SwapOnly,
    /// Every method, still bound by deny rules, limits, schedule and expiry.
    FullAccess,
    /// Only what `[[allow]]`, `[typed_data]` and `[messages]` grant.
    Custom,
}

impl Profile {
    /// The name policy files use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::SwapOnly => "swap-only",
            Self::FullAccess => "full-access",
            Self::Custom => "custom",
        }
    }
}

/// What the gateway does when it detects an anomaly on a key (`on_anomaly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnAnomaly {
    /// Record it, publish it and send the webhook; the key keeps working (the default).
    #[default]
    Alert,
    /// Also quarantine the key at once: it is refused (4100 `suspended`) until the owner
    /// resumes it.
    Suspend,
}

impl OnAnomaly {
    /// The name policy files use: `alert` or `suspend`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Suspend => "suspend",
        }
    }
}

/// When the key stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At a fixed instant (`expires_at`).
    At(Timestamp),
    /// This many seconds after the key is issued (`expires_in`).
    In(u64),
}

/// A rolling-window cap on outflow of one asset (`[[limits.spend]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendLimit {
    /// The capped asset.
    pub asset: Asset,
    /// The cap in base units (wei for native).
    pub amount: U256,
    /// The rolling window in seconds.
    pub window: u64,
    /// The token's decimals, when the policy gives them: amounts are then shown in whole
    /// tokens.
    pub decimals: Option<u8>,
}

/// A cap on the number of requests in a rolling window (`[limits.rate]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in the window, counting denied ones.
    pub max_requests: u64,
    /// The rolling window in seconds.
    pub window: u64,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Native value of one transaction, in wei.
    pub max_value_per_tx: Option<U256>,
    /// `maxFeePerGas` (or legacy `gasPrice`), in wei.
    pub max_fee_per_gas: Option<U256>,
    /// Signed transactions not yet mined.
    pub max_pending: Option<u32>,
    /// Rolling spend caps.
    pub spend: Vec<SpendLimit>,
    /// Request rate.
    pub rate: Option<RateLimit>,
}

/// `[schedule]`: when signing is allowed at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Allowed days, bit 0 = Monday ... bit 6 = Sunday.
    pub days: u8,
    /// Allowed local time of day as minutes `[start, end)`; `end <= start` wraps past midnight
    /// (the early hours then belong to the day the window started on).
    pub hours: Option<(u16, u16)>,
    /// The IANA time zone the days and hours are in (daylight saving applied).
    pub timezone: TimeZone,
    /// The zone's name, for messages.
    pub timezone_name: String,
}

/// An address in a condition: a literal or a placeholder resolved at evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRef {
    /// This address.
    Literal(Address),
    /// `$self`: the key's wallet.
    Wallet,
    /// `$router`: any trusted router of the chain.
    Router,
}

/// A condition on one argument (`[allow.args]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The address is one of these.
    AddressIn(Vec<AddressRef>),
    /// The address is none of these (`"!= 0x…"`).
    AddressNotIn(Vec<AddressRef>),
    /// An unsigned integer compared with a bound.
    Uint(Comparison, U256),
    /// A boolean equals this.
    Bool(bool),
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Comparison {
    /// Whether `value OP bound` holds.
    pub fn holds(self, value: U256, bound: U256) -> bool {
        match self {
            Self::Lt => value < bound,
            Self::Le => value <= bound,
            Self::Gt => value > bound,
            Self::Ge => value >= bound,
            Self::Eq => value == bound,
            Self::Ne => value != bound,
        }
    }

    /// The operator as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

/// The ABI type of an argument a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// `address`
    Address,
    /// `uintN` with N bits.
    Uint(u16),
    /// `bool`
    Bool,
}

/// A function named by a rule, parsed from its human-readable signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The canonical signature, e.g. `transfer(address,uint256)`.
    pub signature: String,
    /// Its 4-byte selector.
    pub selector: [u8; 4],
    /// Bytes of calldata after the selector the arguments' head needs.
    pub head_len: usize,
}

/// A condition bound to one function's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCheck {
    /// The parameter's name as written in the rule.
    pub name: String,
    /// The ABI type of the parameter.
    pub ty: ArgType,
    /// Byte offset of its head word after the selector.
    pub offset: usize,
    /// The condition.
    pub condition: Condition,
}

/// A function of a rule with the argument conditions that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFunction {
    /// The function.
    pub spec: FunctionSpec,
    /// Conditions on its arguments (all must hold).
    pub args: Vec<ArgCheck>,
}

/// An `[[allow]]` or `[[deny]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its position among the rules of its kind, for messages (`allow[2]`).
    pub index: usize,
    /// The contract; `None` = every target.
    pub target: Option<Address>,
    /// The functions; `None` = every call to the target, plain transfers included.
    pub functions: Option<Vec<RuleFunction>>,
}

/// One entry of `[typed_data] allow`: every field given must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypedDataRule {
    /// The EIP-712 domain name.
    pub name: Option<String>,
    /// The domain's verifying contract.
    pub verifying_contract: Option<Address>,
    /// The primary type.
    pub primary_type: Option<String>,
    /// The message's `spender`.
    pub spender: Option<AddressRef>,
}

/// `[messages] personal_sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePolicy {
    /// Every message is refused.
    Deny,
    /// Every message is signed.
    Allow,
    /// Only Sign-In with Ethereum (EIP-4361) messages for these domains, for the wallet,
    /// on an allowed chain.
    SiweDomains(Vec<String>),
}

/// A parsed, checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// Its profile.
    pub profile: Profile,
    /// Chain ids the key may sign for; empty = the chain the gateway is connected to.
    pub chains: Vec<u64>,
    /// When the key expires.
    pub expiry: Expiry,
    /// Not valid before this instant.
    pub not_before: Option<Timestamp>,
    /// Client networks allowed; empty = any.
    pub ip_allow: Vec<IpNet>,
    /// Trusted routers beyond the built-in ones for the chain.
    pub routers: Vec<Address>,
    /// Limits.
    pub limits: Limits,
    /// When signing is allowed.
    pub schedule: Option<Schedule>,
    /// `[[allow]]` rules.
    pub allow: Vec<Rule>,
    /// `[[deny]]` rules: they beat any allow.
    pub deny: Vec<Rule>,
    /// `[typed_data] allow`.
    pub typed_data: Vec<TypedDataRule>,
    /// `[messages] personal_sign`.
    pub messages: MessagePolicy,
    /// What an anomaly on the key does.
    pub on_anomaly: OnAnomaly,
}

impl Policy {
    /// The longest window of any limit, in seconds: usage older than this never matters.
    pub fn horizon(&self) -> u64 {
        let spend = self.limits.spend.iter().map(|l| l.window);
        spend
            .chain(self.limits.rate.map(|r| r.window))
            .max()
            .unwrap_or(0)
    }

    /// The instant the key expires, for a key issued at `issued_at`.
    pub fn expires_at(&self, issued_at: Timestamp) -> Timestamp {
        match self.expiry {
            Expiry::At(t) => t,
            Expiry::In(secs) => issued_at
                .checked_add(jiff::SignedDuration::from_secs(
                    secs.min(i64::MAX as u64) as i64
                ))
                .unwrap_or(Timestamp::MAX),
        }
    }
}
