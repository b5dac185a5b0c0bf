//! [`evaluate`]: one request, one policy, the key's usage and the moment → a [`Decision`].

use crate::{
    decision::{Decision, Spend, Violation, ViolationCode as Code},
    decode::{
        Action, Asset, Call, CallKind, EffectKind, Permit2Op, SENTINEL_ADDRESS_THIS,
        SENTINEL_MSG_SENDER, TokenOp, TypedDataSummary, decode_transaction,
    },
    ledger::Usage,
    policy::*,
    request::{Request, TxRequest},
    routers::{MULTICALL3, PERMIT2, builtin_routers, builtin_weth},
    units::format_duration,
};
use alloy_primitives::{Address, U256};
use jiff::{SignedDuration, Timestamp};
use std::net::IpAddr;

/// Everything about the moment of a request that is not in the policy or the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The key's wallet.
    pub wallet: Address,
    /// The chain the gateway signs for.
    pub chain_id: u64,
    /// Now.
    pub now: Timestamp,
    /// When the key was issued (the start of `expires_in`).
    pub issued_at: Timestamp,
    /// The client's address, when known.
    pub client_ip: Option<IpAddr>,
    /// Whether the key has been revoked.
    pub revoked: bool,
}

/// Decides one request. Pure: the same inputs always give the same decision.
///
/// Every violation found is reported, not only the first. A request that is allowed carries
/// the spend to reserve ([`Decision::Allow`]); the caller records it (and the request, for the
/// rate limit) before any signature is released.
pub fn evaluate(policy: &Policy, request: &Request, usage: &impl Usage, ctx: &Context) -> Decision {
    let mut ev = Evaluator {
        policy,
        ctx,
        violations: Vec::new(),
        spend: Vec::new(),
    };
    ev.key(usage);
    match request {
        Request::Local(_) | Request::Read(_) => {}
        Request::EthSign => {
            ev.deny(
                Code::MethodNotAllowed,
                "eth_sign signs a raw hash (a blank check) and is always denied",
            );
        }
        Request::SendRawTransaction => ev.deny(
            Code::MethodNotAllowed,
            "eth_sendRawTransaction is denied: agents sign through Valet with eth_sendTransaction",
        ),
        Request::Unsupported => ev.deny(Code::MethodNotAllowed, "method not supported"),
        _ if policy.profile == Profile::ReadOnly => {
            ev.deny(Code::MethodNotAllowed, "profile read-only signs nothing");
        }
        Request::Transaction { tx, .. } => {
            ev.signing();
            ev.transaction(tx, usage);
        }
        Request::TypedData(data) => {
            ev.signing();
            ev.typed_data(data);
        }
        Request::PersonalSign(message) => {
            ev.signing();
            ev.personal_sign(message);
        }
    }
    if ev.violations.is_empty() {
        ev.spend_limits(usage);
    }
    if ev.violations.is_empty() {
        Decision::Allow(ev.spend)
    } else {
        ev.violations.dedup();
        Decision::Deny(ev.violations)
    }
}

struct Evaluator<'a> {
    policy: &'a Policy,
    ctx: &'a Context,
    violations: Vec<Violation>,
    spend: Spend,
}

/// What a profile or rule says about one call.
enum Verdict {
    Permit,
    Refuse(Code, String),
}

impl Evaluator<'_> {
    fn deny(&mut self, code: Code, message: impl Into<String>) {
        self.violations.push(Violation::new(code, message));
    }

    fn since(&self, window: u64) -> Timestamp {
        self.ctx
            .now
            .checked_sub(SignedDuration::from_secs(window.min(i64::MAX as u64) as i64))
            .unwrap_or(Timestamp::MIN)
    }

    /// Checks that apply to every request: revocation, validity window, client address, rate.
    fn key(&mut self, usage: &impl Usage) {
        let (p, ctx) = (self.policy, self.ctx);
        if ctx.revoked {
            self.deny(Code::KeyRevoked, "the key has been revoked");
        }
        let expires = p.expires_at(ctx.issued_at);
        if ctx.now >= expires {
            self.deny(Code::KeyExpired, format!("the key expired at {expires}"));
        }
        if let Some(nb) = p.not_before.filter(|nb| ctx.now < *nb) {
            self.deny(
                Code::KeyNotYetValid,
                format!("the key is not valid before {nb}"),
            );
        }
        if !p.ip_allow.is_empty() {
            match ctx.client_ip {
                Some(ip) if p.ip_allow.iter().any(|net| net.contains(&ip)) => {}
                Some(ip) => self.deny(
                    Code::IpNotAllowed,
                    format!("client address {ip} is not in ip_allow"),
                ),
                None => self.deny(
                    Code::IpNotAllowed,
                    "client address unknown and ip_allow is set",
                ),
            }
        }
        if let Some(rate) = p.limits.rate {
            let seen = usage.requests_since(self.since(rate.window));
            if seen.saturating_add(1) > rate.max_requests {
                self.deny(
                    Code::RateLimited,
                    format!(
                        "limits.rate: {} requests per {} already made",
                        rate.max_requests,
                        format_duration(rate.window)
                    ),
                );
            }
        }
    }

    /// Checks that apply to every signature: chain and schedule.
    fn signing(&mut self) {
        let chain = self.ctx.chain_id;
        if !self.policy.chains.is_empty() && !self.policy.chains.contains(&chain) {
            self.deny(
                Code::ChainNotAllowed,
                format!("chain {chain} is not in chains {:?}", self.policy.chains),
            );
        }
        if let Some(s) = &self.policy.schedule
            && !in_schedule(s, self.ctx.now)
        {
            let hours = s.hours.map_or(String::new(), |(a, b)| {
                format!(" {:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)
            });
            self.deny(
                Code::OutsideSchedule,
                format!(
                    "schedule: signing is allowed only on {}{hours} {}",
                    day_names(s.days),
                    s.timezone_name
                ),
            );
        }
    }

    fn routers(&self) -> impl Iterator<Item = Address> + '_ {
        builtin_routers(self.ctx.chain_id)
            .iter()
            .copied()
            .chain(self.policy.routers.iter().copied())
    }

    fn is_router(&self, a: Address) -> bool {
        self.routers().any(|r| r == a)
    }

    /// Spenders whose allowances do not count as exposure: trusted routers and Permit2.
    fn is_trusted_spender(&self, a: Address) -> bool {
        a == PERMIT2 || self.is_router(a)
    }

    fn add_spend(&mut self, asset: Asset, amount: U256) {
        if amount.is_zero() {
            return;
        }
        match self.spend.iter_mut().find(|(a, _)| *a == asset) {
            Some((_, sum)) => *sum = sum.saturating_add(amount),
            None => self.spend.push((asset, amount)),
        }
    }

    fn count_effects<'e>(&mut self, effects: impl Iterator<Item = &'e crate::decode::Effect>) {
        for e in effects {
            let counts = match e.kind {
                EffectKind::Transfer | EffectKind::SwapInput | EffectKind::OperatorGrant => true,
                EffectKind::Approval | EffectKind::Permit => {
                    !self.is_trusted_spender(e.counterparty)
                }
            };
            if counts {
                self.add_spend(e.asset, e.amount);
            }
        }
    }

    fn transaction(&mut self, tx: &TxRequest, usage: &impl Usage) {
        let (p, ctx) = (self.policy, self.ctx);
        if let Some(c) = tx.chain_id.filter(|c| *c != ctx.chain_id) {
            self.deny(
                Code::ChainNotAllowed,
                format!("chainId {c} is not the gateway's chain {}", ctx.chain_id),
            );
        }
        if tx.authorizations > 0 {
            self.deny(
                Code::AuthorizationNotAllowed,
                "EIP-7702 authorizations are never signed for an agent",
            );
        }
        if let Some(max) = p.limits.max_pending
            && usage.pending() >= max
        {
            self.deny(
                Code::TooManyPending,
                format!("limits.max_pending: {max} transactions not yet mined"),
            );
        }
        if let (Some(max), Some(fee)) = (p.limits.max_fee_per_gas, tx.max_fee_per_gas)
            && U256::from(fee) > max
        {
            self.deny(
                Code::FeeTooHigh,
                format!("limits.max_fee_per_gas: fee {fee} wei per gas is over {max}"),
            );
        }
        let action = decode_transaction(ctx.wallet, tx.to, tx.value, &tx.data);
        self.add_spend(Asset::Native, tx.value);
        self.count_effects(action.calls.iter().flat_map(|c| c.effects.iter()));
        let native_value = self
            .spend
            .iter()
            .find(|(a, _)| *a == Asset::Native)
            .map_or(U256::ZERO, |(_, v)| *v);
        if let Some(max) = p.limits.max_value_per_tx.filter(|max| native_value > *max) {
            self.deny(
                Code::ValueTooHigh,
                format!("limits.max_value_per_tx: value {native_value} wei is over {max}"),
            );
        }
        if let (Some(gas), Some(fee)) = (tx.gas, tx.max_fee_per_gas) {
            self.add_spend(
                Asset::Native,
                U256::from(gas).saturating_mul(U256::from(fee)),
            );
        }
        self.calls(&action);
    }

    /// Permission of every call: deny rules first, then the profile or an allow rule.
    fn calls(&mut self, action: &Action) {
        // covered[i]: an allow rule permits call i, or a batch whose permission extends to it.
        let mut covered = Vec::with_capacity(action.calls.len());
        for call in &action.calls {
            let before = self.violations.len();
            for rule in &self.policy.deny {
                if let Some(why) = self.rule_matches(rule, call) {
                    self.deny(
                        Code::FunctionDenied,
                        format!("deny[{}] matches {why}", rule.index),
                    );
                }
            }
            if let CallKind::Undecodable(why) = call.kind {
                self.deny(Code::Undecodable, format!("{}: {why}", describe(call)));
            }
            // A denied or undecodable call is refused already: no permission can help it.
            if self.violations.len() > before {
                covered.push(false);
                continue;
            }
            let inherited = call.parent.is_some_and(|p| {
                covered.get(p).copied().unwrap_or(false)
                    && action
                        .calls
                        .get(p)
                        .is_some_and(|batch| self.inherits(batch, call))
            });
            let mut refusal = None;
            let mut explicit = false;
            for rule in &self.policy.allow {
                match self.allow_rule(rule, call) {
                    Some(Verdict::Permit) => {
                        explicit = true;
                        break;
                    }
                    // The most specific refusal wins: a failed argument condition over a
                    // rule that names other functions of the same target.
                    Some(Verdict::Refuse(code, why)) => {
                        if refusal
                            .as_ref()
                            .is_none_or(|(c, _)| *c == Code::FunctionNotAllowed)
                        {
                            refusal = Some((code, why));
                        }
                    }
                    None => {}
                }
            }
            covered.push(inherited || explicit);
            if inherited || explicit || (call.kind == CallKind::Batch && self.is_transparent(call))
            {
                continue;
            }
            match self.profile_verdict(call) {
                Verdict::Permit => {}
                Verdict::Refuse(code, why) => {
                    let (code, why) = match refusal {
                        Some(r) if code == Code::TargetNotAllowed => r,
                        _ => (code, why),
                    };
                    self.deny(code, why);
                }
            }
        }
    }

    /// Whether `rule` (read as a deny rule) matches `call`: a description when it does. A
    /// condition that cannot be read counts as matching (fail closed).
    fn rule_matches(&self, rule: &Rule, call: &Call) -> Option<String> {
        if rule.target.is_some() && rule.target != call.to {
            return None;
        }
        let Some(functions) = &rule.functions else {
            return Some(describe(call));
        };
        let f = functions
            .iter()
            .find(|f| call.selector() == Some(f.spec.selector))?;
        let all_hold = f
            .args
            .iter()
            .all(|a| !matches!(self.arg_holds(a, f, call), Ok(false)));
        all_hold.then(|| format!("{} on {}", f.spec.signature, target_name(call.to)))
    }

    /// What an allow rule says about a call: `None` when it does not speak of it.
    fn allow_rule(&self, rule: &Rule, call: &Call) -> Option<Verdict> {
        let to = call.to?;
        if rule.target.is_some_and(|t| t != to) {
            return None;
        }
        let Some(functions) = &rule.functions else {
            return Some(Verdict::Permit);
        };
        let Some(f) = functions
            .iter()
            .find(|f| call.selector() == Some(f.spec.selector))
        else {
            return rule.target.map(|_| {
                Verdict::Refuse(
                    Code::FunctionNotAllowed,
                    format!(
                        "allow[{}]: {} is not among the functions allowed on {to}",
                        rule.index,
                        describe(call)
                    ),
                )
            });
        };
        for a in &f.args {
            match self.arg_holds(a, f, call) {
                Ok(true) => {}
                Ok(false) => {
                    return Some(Verdict::Refuse(
                        Code::ArgumentNotAllowed,
                        format!(
                            "allow[{}]: {} argument `{}` must be {}",
                            rule.index,
                            f.spec.signature,
                            a.name,
                            show(&a.condition)
                        ),
                    ));
                }
                Err(why) => {
                    return Some(Verdict::Refuse(
                        Code::Undecodable,
                        format!("allow[{}]: {}: {why}", rule.index, f.spec.signature),
                    ));
                }
            }
        }
        Some(Verdict::Permit)
    }

    /// Reads one argument's head word and checks its condition.
    fn arg_holds(&self, a: &ArgCheck, f: &RuleFunction, call: &Call) -> Result<bool, String> {
        let args = call.data.get(4..).unwrap_or_default();
        if args.len() < f.spec.head_len {
            return Err("calldata too short for the arguments".into());
        }
        let word = args
            .get(a.offset..a.offset + 32)
            .ok_or("calldata too short for the arguments")?;
        let value = U256::from_be_slice(word);
        match (&a.condition, a.ty) {
            (Condition::AddressIn(set) | Condition::AddressNotIn(set), ArgType::Address) => {
                if word[..12].iter().any(|b| *b != 0) {
                    return Err(format!("argument `{}` is not an address", a.name));
                }
                let addr = Address::from_slice(&word[12..]);
                let found = set.iter().any(|r| self.address_is(addr, *r));
                Ok(found == matches!(a.condition, Condition::AddressIn(_)))
            }
            (Condition::Uint(op, bound), ArgType::Uint(bits)) => {
                if bits < 256 && value >> usize::from(bits) != U256::ZERO {
                    return Err(format!("argument `{}` does not fit uint{bits}", a.name));
                }
                Ok(op.holds(value, *bound))
            }
            (Condition::Bool(b), ArgType::Bool) => match value.to::<u64>() {
                v @ (0 | 1) if value < U256::from(2) => Ok((v == 1) == *b),
                _ => Err(format!("argument `{}` is not a bool", a.name)),
            },
            _ => Err(format!("argument `{}` has an unexpected type", a.name)),
        }
    }

    /// Whether a batch only forwards the calls it contains, so that they alone need permission:
    /// Multicall3, an ERC-7821 batch the wallet executes on itself, a trusted router's
    /// `multicall` or Universal Router `execute`. A batch-shaped call to any other contract is a
    /// call to that contract and needs a permission of its own.
    fn is_transparent(&self, call: &Call) -> bool {
        call.to
            .is_some_and(|to| to == MULTICALL3 || to == self.ctx.wallet || self.is_router(to))
    }

    /// Whether an allow rule for `batch` also permits `call` inside it. A forwarding batch
    /// (Multicall3, ERC-7821 on the wallet, a router's `multicall`) makes real calls that each
    /// need their own permission, or a rule allowing `multicall` would waive the conditions on
    /// the swaps inside it. Universal Router commands (no calldata, same target) are arguments
    /// of the `execute` that was allowed. Inside a batch-shaped call to any other contract,
    /// the decoded calls are only Valet's guess at what it does, covered by its permission.
    fn inherits(&self, batch: &Call, call: &Call) -> bool {
        !self.is_transparent(batch) || (call.data.is_empty() && call.to == batch.to)
    }

    fn address_is(&self, a: Address, r: AddressRef) -> bool {
        match r {
            AddressRef::Literal(x) => a == x,
            AddressRef::Wallet => a == self.ctx.wallet,
            AddressRef::Router => self.is_router(a),
        }
    }

    fn profile_verdict(&self, call: &Call) -> Verdict {
        let refuse = |code, why: String| Verdict::Refuse(code, why);
        let Some(to) = call.to else {
            return match self.policy.profile {
                Profile::FullAccess => Verdict::Permit,
                _ => refuse(
                    Code::TargetNotAllowed,
                    "contract creation is not allowed".into(),
                ),
            };
        };
        match self.policy.profile {
            Profile::FullAccess => Verdict::Permit,
            Profile::SwapOnly => self.swap_only(call, to),
            Profile::Custom | Profile::ReadOnly => refuse(
                Code::TargetNotAllowed,
                format!("no [[allow]] rule permits calls to {to}"),
            ),
        }
    }

    /// The swap-only profile (SPEC section 3).
    fn swap_only(&self, call: &Call, to: Address) -> Verdict {
        let router = self.is_router(to);
        // Messages are built only on refusal: formatting an address hashes it (EIP-55).
        let what = || describe(call);
        let refuse = |code, why: String| Verdict::Refuse(code, format!("swap-only: {why}"));
        let no_value = |v: Verdict| match v {
            Verdict::Permit if !call.value.is_zero() => refuse(
                Code::ArgumentNotAllowed,
                format!(
                    "{} carries native value; value may only be a swap input",
                    what()
                ),
            ),
            v => v,
        };
        // A recipient is fine when it is the wallet, or the router itself inside a batch that
        // forwards what it holds.
        let pays_wallet = |r: &Address| {
            *r == self.ctx.wallet
                || *r == SENTINEL_MSG_SENDER
                || (call.parent.is_some() && (*r == SENTINEL_ADDRESS_THIS || *r == to))
        };
        let spender_ok =
            |s: &Address, amount: &U256| amount.is_zero() || self.is_trusted_spender(*s);
        match &call.kind {
            CallKind::Router(op) if router => {
                match op.recipients.iter().find(|r| !pays_wallet(r)) {
                    None => Verdict::Permit,
                    Some(r) => refuse(
                        Code::ArgumentNotAllowed,
                        format!("{} pays out to {r}, not the wallet", op.name),
                    ),
                }
            }
            CallKind::Permit2(op) if router || to == PERMIT2 => no_value(match op {
                Permit2Op::Approve {
                    spender, amount, ..
                } if spender_ok(spender, amount) => Verdict::Permit,
                Permit2Op::Permit { spender, .. } if self.is_router(*spender) => Verdict::Permit,
                Permit2Op::Approve { spender, .. } | Permit2Op::Permit { spender, .. } => refuse(
                    Code::ArgumentNotAllowed,
                    format!("Permit2 allowance to {spender}, not a trusted router"),
                ),
                Permit2Op::TransferFrom { transfers } if router => {
                    match transfers.iter().find(|(_, dest, ..)| {
                        !pays_wallet(dest) && *dest != SENTINEL_ADDRESS_THIS && *dest != to
                    }) {
                        None => Verdict::Permit,
                        Some((_, dest, ..)) => refuse(
                            Code::ArgumentNotAllowed,
                            format!("Permit2 transfer to {dest}, not the router or the wallet"),
                        ),
                    }
                }
                Permit2Op::Revoke => Verdict::Permit,
                Permit2Op::TransferFrom { .. } | Permit2Op::PermitTransferFrom { .. } => refuse(
                    Code::FunctionNotAllowed,
                    "Permit2 transfers are not allowed".into(),
                ),
            }),
            CallKind::Token(op) => no_value(match op {
                TokenOp::Approve { spender, amount }
                | TokenOp::IncreaseAllowance { spender, amount }
                | TokenOp::Permit {
                    spender, amount, ..
                } => {
                    if spender_ok(spender, amount) {
                        Verdict::Permit
                    } else {
                        refuse(
                            Code::ArgumentNotAllowed,
                            format!("{} approves {spender}, not a trusted router", what()),
                        )
                    }
                }
                TokenOp::DecreaseAllowance { .. }
                | TokenOp::SetApprovalForAll {
                    approved: false, ..
                } => Verdict::Permit,
                TokenOp::WrapNative | TokenOp::UnwrapNative { .. }
                    if builtin_weth(self.ctx.chain_id) == Some(to) =>
                {
                    return Verdict::Permit;
                }
                TokenOp::WrapNative | TokenOp::UnwrapNative { .. } => refuse(
                    Code::TargetNotAllowed,
                    format!("{to} is not this chain's WETH"),
                ),
                TokenOp::SetApprovalForAll { .. } => refuse(
                    Code::FunctionNotAllowed,
                    "setApprovalForAll is not allowed".into(),
                ),
                TokenOp::Transfer { .. }
                | TokenOp::TransferFrom { .. }
                | TokenOp::NftTransfer { .. }
                | TokenOp::MultiTokenTransfer { .. } => refuse(
                    Code::FunctionNotAllowed,
                    format!("token transfers are not allowed ({})", what()),
                ),
            }),
            CallKind::Plain | CallKind::Unknown if router => refuse(
                Code::FunctionNotAllowed,
                format!("{} is not a swap function", what()),
            ),
            CallKind::Plain => refuse(
                Code::TargetNotAllowed,
                format!("plain native transfers are not allowed (to {to})"),
            ),
            _ => refuse(
                Code::TargetNotAllowed,
                format!("{to} is not a trusted router ({})", what()),
            ),
        }
    }

    fn typed_data(&mut self, d: &TypedDataSummary) {
        match d.chain_id {
            None => self.deny(
                Code::TypedDataNotAllowed,
                "EIP-712 domain has no chainId: the signature could be replayed on other chains",
            ),
            Some(c) if c != self.ctx.chain_id => self.deny(
                Code::ChainNotAllowed,
                format!(
                    "EIP-712 domain chainId {c} is not chain {}",
                    self.ctx.chain_id
                ),
            ),
            Some(_) => {}
        }
        self.count_effects(d.effects.iter());
        if self.policy.profile == Profile::FullAccess {
            return;
        }
        let rule_allows = self.policy.typed_data.iter().any(|r| {
            r.name
                .as_ref()
                .is_none_or(|n| d.domain_name.as_ref() == Some(n))
                && r.verifying_contract
                    .is_none_or(|v| d.verifying_contract == Some(v))
                && r.primary_type.as_ref().is_none_or(|t| *t == d.primary_type)
                && r.spender
                    .is_none_or(|s| d.spender.is_some_and(|a| self.address_is(a, s)))
        });
        let profile_allows = self.policy.profile == Profile::SwapOnly
            && d.spender.is_some_and(|s| self.is_router(s))
            && match d.primary_type.as_str() {
                "PermitSingle"
                | "PermitBatch"
                | "PermitTransferFrom"
                | "PermitBatchTransferFrom" => d.verifying_contract == Some(PERMIT2),
                // EIP-2612 or DAI permits the decoder recognised (not look-alike NFT permits).
                "Permit" => !d.effects.is_empty(),
                _ => false,
            };
        if !rule_allows && !profile_allows {
            let domain = d.domain_name.as_deref().unwrap_or("?");
            self.deny(
                Code::TypedDataNotAllowed,
                format!(
                    "EIP-712 {} of domain `{domain}` is not allowed by [typed_data] or the profile",
                    d.primary_type
                ),
            );
        }
    }

    fn personal_sign(&mut self, message: &[u8]) {
        match &self.policy.messages {
            MessagePolicy::Allow => {}
            MessagePolicy::Deny => {
                self.deny(Code::MessageNotAllowed, "messages.personal_sign is deny")
            }
            MessagePolicy::SiweDomains(domains) => {
                if let Err(why) = check_siwe(message, domains, self.ctx) {
                    self.deny(
                        Code::MessageNotAllowed,
                        format!("messages.personal_sign: {why}"),
                    );
                }
            }
        }
    }

    fn spend_limits(&mut self, usage: &impl Usage) {
        for limit in &self.policy.limits.spend {
            let this = self
                .spend
                .iter()
                .find(|(a, _)| *a == limit.asset)
                .map_or(U256::ZERO, |(_, v)| *v);
            if this.is_zero() {
                continue;
            }
            let used = usage.spent(limit.asset, self.since(limit.window));
            if used.saturating_add(this) > limit.amount {
                let asset = match limit.asset {
                    Asset::Native => "native".to_string(),
                    Asset::Token(t) => t.to_string(),
                };
                let this = if this == U256::MAX {
                    "unlimited".to_string()
                } else {
                    this.to_string()
                };
                self.deny(
                    Code::SpendLimitExceeded,
                    format!(
                        "limits.spend {asset}: cap {} per {}, {used} already used, this request {this}",
                        limit.amount,
                        format_duration(limit.window)
                    ),
                );
            }
        }
    }
}

fn target_name(to: Option<Address>) -> String {
    to.map_or_else(|| "contract creation".into(), |a| a.to_string())
}

/// A short description of a call for messages.
fn describe(call: &Call) -> String {
    let f = match &call.kind {
        CallKind::Plain => "plain transfer".to_string(),
        CallKind::Create => return "contract creation".into(),
        CallKind::Router(op) => op.name.to_string(),
        CallKind::Token(op) => match op {
            TokenOp::Transfer { .. } => "transfer",
            TokenOp::TransferFrom { .. } => "transferFrom",
            TokenOp::Approve { .. } => "approve",
            TokenOp::IncreaseAllowance { .. } => "increaseAllowance",
            TokenOp::DecreaseAllowance { .. } => "decreaseAllowance",
            TokenOp::Permit { .. } => "permit",
            TokenOp::NftTransfer { .. } | TokenOp::MultiTokenTransfer { .. } => "safeTransferFrom",
            TokenOp::SetApprovalForAll { .. } => "setApprovalForAll",
            TokenOp::WrapNative => "deposit",
            TokenOp::UnwrapNative { .. } => "withdraw",
        }
        .to_string(),
        _ => match call.selector() {
            Some(s) => format!("function 0x{}", alloy_primitives::hex::encode(s)),
            None => "call".to_string(),
        },
    };
    format!("{f} on {}", target_name(call.to))
}

fn show(c: &Condition) -> String {
    let refs = |set: &[AddressRef]| {
        set.iter()
            .map(|r| match r {
                AddressRef::Literal(a) => a.to_string(),
                AddressRef::Wallet => "$self".into(),
                AddressRef::Router => "$router".into(),
            })
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match c {
        Condition::AddressIn(set) => refs(set),
        Condition::AddressNotIn(set) => format!("not {}", refs(set)),
        Condition::Uint(op, bound) => format!("{} {bound}", op.as_str()),
        Condition::Bool(b) => b.to_string(),
    }
}

fn in_schedule(s: &Schedule, now: Timestamp) -> bool {
    let local = s.timezone.to_datetime(now);
    let day = local.weekday().to_monday_zero_offset() as u8;
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    let day_ok = |d: u8| s.days & (1 << d) != 0;
    match s.hours {
        None => day_ok(day),
        Some((start, end)) if start < end => day_ok(day) && (start..end).contains(&minute),
        // Wraps past midnight: the early hours belong to the previous day's window.
        Some((start, end)) => {
            (minute >= start && day_ok(day)) || (minute < end && day_ok((day + 6) % 7))
        }
    }
}

fn day_names(days: u8) -> String {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    (0..7)
        .filter(|d| days & (1 << d) != 0)
        .map(|d| NAMES[d])
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks a Sign-In with Ethereum (EIP-4361) message: domain, address and chain.
fn check_siwe(message: &[u8], domains: &[String], ctx: &Context) -> Result<(), String> {
    let text = std::str::from_utf8(message).map_err(|_| "not a text message")?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let domain = first
        .strip_suffix(" wants you to sign in with your Ethereum account:")
        .ok_or("not a Sign-In with Ethereum message")?;
    let domain = domain
        .split_once("://")
        .map_or(domain, |(_, d)| d)
        .to_ascii_lowercase();
    if !domains.contains(&domain) {
        return Err(format!("SIWE domain `{domain}` is not in siwe_domains"));
    }
    let address = lines.next().and_then(|l| l.trim().parse::<Address>().ok());
    if address != Some(ctx.wallet) {
        return Err("the SIWE address is not the key's wallet".into());
    }
    let chain = text
        .lines()
        .find_map(|l| l.strip_prefix("Chain ID: "))
        .and_then(|c| c.trim().parse::<u64>().ok())
        .ok_or("the SIWE message has no Chain ID")?;
    if chain != ctx.chain_id {
        return Err(format!(
            "SIWE Chain ID {chain} is not chain {}",
            ctx.chain_id
        ));
    }
    Ok(())
}
