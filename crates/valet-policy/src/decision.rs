//! The outcome of [`evaluate`](crate::evaluate): allow with the spend to reserve, or deny with
//! every violation found.

use crate::decode::Asset;
use alloy_primitives::U256;
use std::fmt;

/// A stable violation code (SPEC section 5). Outside tools match on [`ViolationCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationCode {
    /// The key's expiry has passed.
    KeyExpired,
    /// Before the key's `not_before`.
    KeyNotYetValid,
    /// The key was revoked.
    KeyRevoked,
    /// The client address is outside `ip_allow`.
    IpNotAllowed,
    /// The chain is not in `chains`.
    ChainNotAllowed,
    /// The JSON-RPC method is not allowed for this key.
    MethodNotAllowed,
    /// No rule or profile permits calls to this target.
    TargetNotAllowed,
    /// The target is permitted, but not this function.
    FunctionNotAllowed,
    /// A `[[deny]]` rule matches.
    FunctionDenied,
    /// The function is permitted, but not with these arguments (e.g. a swap paying a stranger).
    ArgumentNotAllowed,
    /// Native value above `max_value_per_tx`.
    ValueTooHigh,
    /// `maxFeePerGas` (or `gasPrice`) above `max_fee_per_gas`.
    FeeTooHigh,
    /// A `[[limits.spend]]` cap would be exceeded in its rolling window.
    SpendLimitExceeded,
    /// `max_pending` signed transactions are not yet mined.
    TooManyPending,
    /// `[limits.rate]` exceeded.
    RateLimited,
    /// Outside `[schedule]`.
    OutsideSchedule,
    /// EIP-712 data not allowed by `[typed_data]` or the profile.
    TypedDataNotAllowed,
    /// `personal_sign` not allowed by `[messages]`.
    MessageNotAllowed,
    /// An EIP-7702 authorization the wallet does not allow.
    AuthorizationNotAllowed,
    /// Calldata or typed data that cannot be decoded where decoding matters.
    Undecodable,
    /// Simulation reverted or could not run.
    SimulationFailed,
}

impl ViolationCode {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyExpired => "key_expired",
            Self::KeyNotYetValid => "key_not_yet_valid",
            Self::KeyRevoked => "key_revoked",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::ChainNotAllowed => "chain_not_allowed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TargetNotAllowed => "target_not_allowed",
            Self::FunctionNotAllowed => "function_not_allowed",
            Self::FunctionDenied => "function_denied",
            Self::ArgumentNotAllowed => "argument_not_allowed",
            Self::ValueTooHigh => "value_too_high",
            Self::FeeTooHigh => "fee_too_high",
            Self::SpendLimitExceeded => "spend_limit_exceeded",
            Self::TooManyPending => "too_many_pending",
            Self::RateLimited => "rate_limited",
            Self::OutsideSchedule => "outside_schedule",
            Self::TypedDataNotAllowed => "typed_data_not_allowed",
            Self::MessageNotAllowed => "message_not_allowed",
            Self::AuthorizationNotAllowed => "authorization_not_allowed",
            Self::Undecodable => "undecodable",
            Self::SimulationFailed => "simulation_failed",
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for a denial: a stable code and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The stable code.
    pub code: ViolationCode,
    /// Free text for people: which rule, which value.
    pub message: String,
}

impl Violation {
    /// A violation with its message.
    pub fn new(code: ViolationCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The outflow an allowed request reserves against the spend limits, per asset.
pub type Spend = Vec<(Asset, U256)>;

/// The decision on one request. A denial is a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the spend to reserve before signing (empty for reads and messages).
    Allow(Spend),
    /// Denied, with every violation found (never empty).
    Deny(Vec<Violation>),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// The violations (empty when allowed).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Self::Allow(_) => &[],
            Self::Deny(v) => v,
        }
    }
}
