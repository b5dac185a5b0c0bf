//! [`evaluate`]: one request, one policy, the key's usage and the moment → a [`Decision`].

use crate::{
    decision::{Decision, Spend, Violation, ViolationCode as Code},
    decode::{
        Action, Amount, Asset, Call, CallKind, EffectKind, Payee, Payer, Permit2Op, RouterAsset,
        RouterFlow, SENTINEL_ADDRESS_THIS, SENTINEL_MSG_SENDER, TokenOp, TypedDataSummary,
        decode_transaction,
    },
    ledger::Usage,
    policy::*,
    request::{Request, TxRequest},
    routers::{MULTICALL3, PERMIT2, builtin_position_manager, builtin_routers, builtin_weth},
    units::{format_duration, format_native, format_units},
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
        if chain == 0 {
            self.deny(
                Code::ChainNotAllowed,
                "chain id 0 names no chain: a signature for it is not bound to one",
            );
        } else if !self.policy.chains.is_empty() && !self.policy.chains.contains(&chain) {
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
            .map(|r| r.address)
            .chain(self.policy.routers.iter().copied())
    }

    /// Whether router `a` reads the recipient sentinels `address(1)` and `address(2)`: only
    /// built-in routers that do (`routers.rs`); a router a policy adds is assumed not to.
    fn reads_sentinels(&self, a: Address) -> bool {
        builtin_routers(self.ctx.chain_id)
            .iter()
            .any(|r| r.address == a && r.reads_sentinels)
    }

    /// Who calls `action.calls[i]` (its `msg.sender`): the wallet for the transaction's own
    /// call and the calls of an ERC-7821 batch it executes on itself; the container for the
    /// calls of Multicall3 (or another batch-shaped contract); the batch's caller for the calls
    /// of a router `multicall` (a delegatecall to itself) or Universal Router commands.
    fn caller(&self, action: &Action, mut i: usize) -> Address {
        loop {
            let call = action.calls.get(i);
            let parent = call.and_then(|c| c.parent);
            let Some((p, batch)) = parent.and_then(|p| action.calls.get(p).map(|b| (p, b))) else {
                return self.ctx.wallet;
            };
            if batch.to == call.and_then(|c| c.to) && batch.to != Some(MULTICALL3) {
                i = p;
            } else {
                return batch.to.unwrap_or(self.ctx.wallet);
            }
        }
    }

    /// Where router `router`, called by `caller`, sends what it pays `payee`.
    fn dest(&self, payee: Payee, router: Address, caller: Address) -> Dest {
        let sentinels = self.reads_sentinels(router);
        let a = match payee {
            Payee::Caller => caller,
            Payee::Mapped(a) if sentinels && a == SENTINEL_MSG_SENDER => caller,
            Payee::Mapped(a) if sentinels && a == SENTINEL_ADDRESS_THIS => router,
            Payee::Mapped(a) | Payee::Literal(a) => a,
        };
        if a == self.ctx.wallet {
            Dest::Wallet
        } else if a == router {
            Dest::Router
        } else {
            Dest::Other(a)
        }
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

    /// What an effect's amount counts under the caps on `asset`: a zero amount on a token
    /// capped without decimals (which may be a collection, where the word is a token id) is
    /// one token, so that token id 0 never leaves uncounted.
    fn units(&self, asset: Asset, amount: U256) -> U256 {
        let nft_like = || {
            matches!(asset, Asset::Token(_))
                && self
                    .policy
                    .limits
                    .spend
                    .iter()
                    .any(|l| l.asset == asset && l.decimals.is_none())
        };
        if amount.is_zero() && nft_like() {
            U256::from(1)
        } else {
            amount
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
                self.add_spend(e.asset, self.units(e.asset, e.amount));
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
                format!(
                    "limits.max_fee_per_gas: fee {} per gas is over the cap of {}",
                    format_native(U256::from(fee)),
                    format_native(max)
                ),
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
                format!(
                    "limits.max_value_per_tx: value {} is over the cap of {}",
                    format_native(native_value),
                    format_native(max)
                ),
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

    /// Permission of every call: deny rules first, then the profile or an allow rule, then
    /// whether Valet counts everything it could move of a capped asset.
    fn calls(&mut self, action: &Action) {
        // covered[i]: an allow rule permits call i, or a batch whose permission extends to it.
        let mut covered = Vec::with_capacity(action.calls.len());
        for i in 0..action.calls.len() {
            let before = self.violations.len();
            covered.push(self.permission(action, i, &covered));
            if self.violations.len() == before
                && let Some(why) = self.uncounted(action, i)
            {
                self.deny(Code::Undecodable, why);
            }
        }
        if self.policy.profile == Profile::SwapOnly {
            self.router_calls(action, &covered);
        }
    }

    /// Whether call `i` is permitted (denying it when not); `true` when an allow rule covers
    /// it, directly or through the batch that contains it (`covered` for the calls before it).
    fn permission(&mut self, action: &Action, i: usize, covered: &[bool]) -> bool {
        let Some(call) = action.calls.get(i) else {
            return false;
        };
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
        if call.kind == CallKind::Batch && call.to == Some(MULTICALL3) {
            self.multicall3_value(action, i);
        }
        // A denied or undecodable call is refused already: no permission can help it.
        if self.violations.len() > before {
            return false;
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
                Some(Verdict::Refuse(code, why))
                    if refusal
                        .as_ref()
                        .is_none_or(|(c, _)| *c == Code::FunctionNotAllowed) =>
                {
                    refusal = Some((code, why));
                }
                Some(Verdict::Refuse(..)) | None => {}
            }
        }
        if inherited || explicit || (call.kind == CallKind::Batch && self.is_transparent(call)) {
            return inherited || explicit;
        }
        if let Verdict::Refuse(code, why) = self.profile_verdict(action, i) {
            let (code, why) = match refusal {
                Some(r) if code == Code::TargetNotAllowed => r,
                _ => (code, why),
            };
            self.deny(code, why);
        }
        false
    }

    /// SPEC section 4, "accounting is exhaustive or it denies": why call `i`, permitted so
    /// far, could move a capped token without Valet counting it. Two kinds of contract can
    /// move the wallet's tokens uncounted: a capped token itself (any function but the token
    /// functions Valet decodes and counts), and the spenders whose allowances are free
    /// because what they do with them is counted (trusted routers and Permit2: any function
    /// but their decoded swaps, payments and transfers). Every other contract can only use
    /// allowances that were counted when granted.
    fn uncounted(&self, action: &Action, i: usize) -> Option<String> {
        let call = action.calls.get(i)?;
        let to = call.to?;
        let caps = &self.policy.limits.spend;
        if !caps.iter().any(|l| matches!(l.asset, Asset::Token(_))) {
            return None;
        }
        // A batch the contract makes of calls to itself (a `multicall`, Universal Router
        // commands): each of them is checked in turn.
        let to_itself = || {
            action.calls[i + 1..]
                .iter()
                .take_while(|c| c.depth > call.depth)
                .filter(|c| c.parent == Some(i))
                .all(|c| c.to == Some(to))
        };
        let (counted, what) = if caps.iter().any(|l| l.asset == Asset::Token(to)) {
            let weth = builtin_weth(self.ctx.chain_id) == Some(to);
            let counted = match &call.kind {
                // `deposit`/`withdraw` are WETH's: on another token they are its own functions.
                CallKind::Token(TokenOp::WrapNative | TokenOp::UnwrapNative { .. }) => weth,
                CallKind::Token(_) => true,
                CallKind::Plain => weth,
                CallKind::Batch => to_itself(),
                _ => false,
            };
            (counted, "is a token whose spend is capped")
        } else if to == PERMIT2 {
            let counted = matches!(call.kind, CallKind::Permit2(_) | CallKind::Plain);
            (
                counted,
                "is Permit2, whose allowances are free because only its counted transfers use them",
            )
        } else if self.is_router(to) {
            let counted = match &call.kind {
                CallKind::Router(_) | CallKind::Plain => true,
                // A Universal Router command (no calldata of its own).
                CallKind::Permit2(_) => call.data.is_empty(),
                CallKind::Batch => to_itself(),
                _ => false,
            };
            (
                counted,
                "is a trusted router, whose approvals are free because only its counted swaps use them",
            )
        } else {
            return None;
        };
        (!counted).then(|| {
            format!(
                "{}: the target {what}, and Valet cannot count what this call would move (a \
                 spend limit applies)",
                describe(call)
            )
        })
    }

    /// Every profile: Multicall3 keeps whatever native value its calls do not use (only
    /// `aggregate3Value` forwards value), where anyone can take it.
    fn multicall3_value(&mut self, action: &Action, i: usize) {
        let Some(batch) = action.calls.get(i) else {
            return;
        };
        let used = action.calls[i + 1..]
            .iter()
            .filter(|c| c.parent == Some(i))
            .fold(U256::ZERO, |sum, c| sum.saturating_add(c.value));
        if used != batch.value {
            self.deny(
                Code::ArgumentNotAllowed,
                format!(
                    "Multicall3 call carries {} wei but its calls use {used}: the rest would stay \
                     in Multicall3, where anyone can take it",
                    batch.value
                ),
            );
        }
    }

    /// swap-only: follows what each router call leaves in the router (see [`Holdings`]),
    /// unless an allow rule covers every call in it.
    fn router_calls(&mut self, action: &Action, covered: &[bool]) {
        for (root, call) in action.calls.iter().enumerate() {
            let Some(to) = call.to.filter(|to| self.is_router(*to)) else {
                continue;
            };
            // The calls of a router's own batch belong to the router call that contains it.
            if call
                .parent
                .and_then(|p| action.calls.get(p))
                .is_some_and(|b| b.to == call.to)
            {
                continue;
            }
            if !matches!(call.kind, CallKind::Router(_) | CallKind::Batch) {
                continue;
            }
            let end = action.calls[root + 1..]
                .iter()
                .position(|c| c.depth <= call.depth)
                .map_or(action.calls.len(), |n| root + 1 + n);
            if covered.get(root..end).is_some_and(|c| c.iter().all(|c| *c)) {
                continue;
            }
            self.router_call(action, root, end, to);
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
            (Condition::Bool(b), ArgType::Bool) if value <= U256::from(1) => {
                Ok((value == U256::from(1)) == *b)
            }
            (Condition::Bool(_), ArgType::Bool) => {
                Err(format!("argument `{}` is not a bool", a.name))
            }
            _ => Err(format!("argument `{}` has an unexpected type", a.name)),
        }
    }

    /// Whether a batch only forwards the calls it contains, so that they alone need permission:
    /// Multicall3 (except under swap-only, where it is a contract like any other: the calls it
    /// makes come from Multicall3, not the wallet, and leave what they buy there), an ERC-7821
    /// batch the wallet executes on itself, a trusted router's `multicall` or Universal Router
    /// `execute`. A batch-shaped call to any other contract is a call to that contract and
    /// needs a permission of its own.
    fn is_transparent(&self, call: &Call) -> bool {
        call.to.is_some_and(|to| {
            (to == MULTICALL3 && self.policy.profile != Profile::SwapOnly)
                || to == self.ctx.wallet
                || self.is_router(to)
        })
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

    fn profile_verdict(&self, action: &Action, i: usize) -> Verdict {
        let refuse = |code, why: String| Verdict::Refuse(code, why);
        let Some(call) = action.calls.get(i) else {
            return Verdict::Permit;
        };
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
            Profile::SwapOnly => self.swap_only(action, i, call, to),
            Profile::Custom | Profile::ReadOnly => refuse(
                Code::TargetNotAllowed,
                format!("no [[allow]] rule permits calls to {to}"),
            ),
        }
    }

    /// The swap-only profile (SPEC section 3) for call `i` of `action`. What a router call
    /// leaves in the router is checked for the whole router call ([`Self::router_call`]).
    fn swap_only(&self, action: &Action, i: usize, call: &Call, to: Address) -> Verdict {
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
        // Where a router sends what it pays: the wallet, or the router itself when it reads
        // sentinels (what it holds is then followed to the end of the router call).
        let sentinels = self.reads_sentinels(to);
        let pays = |payee: Payee| -> Result<(), String> {
            match self.dest(payee, to, self.caller(action, i)) {
                Dest::Wallet => Ok(()),
                Dest::Router if sentinels => Ok(()),
                Dest::Router => Err(format!(
                    "pays {to} itself, which does not forward what it holds"
                )),
                Dest::Other(a) if a == SENTINEL_MSG_SENDER || a == SENTINEL_ADDRESS_THIS => {
                    Err(format!(
                        "pays {a} as written ({to} does not read a sentinel there): the output \
                         would be burned"
                    ))
                }
                Dest::Other(a) => Err(format!("pays out to {a}, not the wallet")),
            }
        };
        let chain = self.ctx.chain_id;
        match &call.kind {
            CallKind::Router(op) if router && op.flow == RouterFlow::Deposit => refuse(
                Code::FunctionNotAllowed,
                format!("{} is not a swap function", op.name),
            ),
            CallKind::Router(op) if router => {
                match op.recipients.iter().find_map(|p| pays(*p).err()) {
                    None => Verdict::Permit,
                    Some(why) => refuse(Code::ArgumentNotAllowed, format!("{} {why}", op.name)),
                }
            }
            CallKind::Permit2(op) if router || to == PERMIT2 => no_value(match op {
                // Any amount: Permit2 moves ERC-721 tokens too (`amount` is then an id).
                Permit2Op::Approve { spender, .. } if self.is_trusted_spender(*spender) => {
                    Verdict::Permit
                }
                Permit2Op::Permit { spender, .. } if self.is_router(*spender) => Verdict::Permit,
                Permit2Op::Approve { spender, .. } | Permit2Op::Permit { spender, .. } => refuse(
                    Code::ArgumentNotAllowed,
                    format!("Permit2 allowance to {spender}, not a trusted router"),
                ),
                Permit2Op::TransferFrom { transfers, mapped } if router => {
                    let payee = |dest| {
                        if *mapped {
                            Payee::Mapped(dest)
                        } else {
                            Payee::Literal(dest)
                        }
                    };
                    match transfers
                        .iter()
                        .find(|(_, dest, ..)| pays(payee(*dest)).is_err())
                    {
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
            CallKind::Token(
                TokenOp::Approve { .. }
                | TokenOp::IncreaseAllowance { .. }
                | TokenOp::Permit { .. }
                | TokenOp::SetApprovalForAll { .. },
            ) if builtin_position_manager(chain) == Some(to) => refuse(
                Code::ArgumentNotAllowed,
                format!(
                    "{}: Uniswap V3 positions are NFTs, and a router they are approved to \
                     lets anyone take them (SwapRouter02's callPositionManager)",
                    what()
                ),
            ),
            CallKind::Token(op) => no_value(match op {
                // Any amount, zero included: on an ERC-721 (the same selector) the amount is a
                // token id, and `approve(to, 0)` grants token 0.
                TokenOp::Approve { spender, .. }
                | TokenOp::IncreaseAllowance { spender, .. }
                | TokenOp::Permit { spender, .. } => {
                    if self.is_trusted_spender(*spender) {
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
                    if builtin_weth(chain) == Some(to) =>
                {
                    let caller = self.caller(action, i);
                    return if caller == self.ctx.wallet {
                        Verdict::Permit
                    } else {
                        refuse(
                            Code::ArgumentNotAllowed,
                            format!("{} acts for its caller {caller}, not the wallet", what()),
                        )
                    };
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
            _ if to == MULTICALL3 => refuse(
                Code::TargetNotAllowed,
                "Multicall3 needs an [[allow]] rule: the calls it makes come from Multicall3, \
                 not the wallet"
                    .into(),
            ),
            _ => refuse(
                Code::TargetNotAllowed,
                format!("{to} is not a trusted router ({})", what()),
            ),
        }
    }

    /// Follows the assets `router` holds for the wallet through the router call
    /// `action.calls[root..end]` (a swap, or a `multicall`/`execute` and every call in it), in
    /// order. The native value sent with it is held from the start; a payee that is the router
    /// (on a router that reads sentinels) adds what it is paid; a swap the router pays, a
    /// payment, a wrap or an unwrap takes from what is held. Denies native value that no swap
    /// or wrap spends, and anything still held at the end: whoever calls the router next can
    /// take it (`sweepToken`, `SWEEP`, `refundETH` are permissionless).
    fn router_call(&mut self, action: &Action, root: usize, end: usize, router: Address) {
        let Some(call) = action.calls.get(root) else {
            return;
        };
        let caller = self.caller(action, root);
        let sentinels = self.reads_sentinels(router);
        let weth = builtin_weth(self.ctx.chain_id).map(|w| RouterAsset::Named(Asset::Token(w)));
        // The router's WETH9 is the chain's WETH; on a chain whose WETH Valet does not know it
        // matches no token a swap names (so a swap never counts as spending it).
        let norm = |a: RouterAsset| match a {
            RouterAsset::Weth => weth.unwrap_or(a),
            a => a,
        };
        let to_router = |payees: &[Payee]| {
            sentinels
                && payees
                    .iter()
                    .any(|p| self.dest(*p, router, caller) == Dest::Router)
        };
        let mut held = Holdings::default();
        if !call.value.is_zero() {
            held.add(ETHER, Some(call.value));
        }
        let mut spends_value = false;
        for c in action.calls.get(root..end).unwrap_or_default() {
            let op = match &c.kind {
                CallKind::Router(op) => op,
                CallKind::Permit2(Permit2Op::TransferFrom { transfers, mapped }) => {
                    for &(from, to, amount, token) in transfers {
                        let payee = if *mapped {
                            Payee::Mapped(to)
                        } else {
                            Payee::Literal(to)
                        };
                        if from == self.ctx.wallet && to_router(&[payee]) {
                            held.add(norm(RouterAsset::Named(Asset::Token(token))), Some(amount));
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            // A command allowed to fail may take nothing; what it pays may still arrive.
            let takes = !op.may_fail;
            let paid_to_router = to_router(&op.recipients);
            match op.flow {
                RouterFlow::Swap {
                    input,
                    amount,
                    payer,
                    ether_first,
                    output,
                } => {
                    let input = norm(input);
                    let mut router_pays = payer == Payer::Router;
                    if takes && ether_first && Some(input) == weth && held.has(ETHER) {
                        // The V3 periphery pays a WETH9 input with the ether it holds when that
                        // covers the amount.
                        match (amount, held.amount(ETHER).flatten()) {
                            (Amount::Exact(n), Some(h)) if h < n => {}
                            (Amount::Exact(n), Some(_)) => {
                                held.take(ETHER, Amount::Exact(n));
                                spends_value = true;
                                router_pays = false;
                            }
                            // Which pays, and how much, Valet cannot tell: both stay held (an
                            // exact-output swap needs a `refundETH` after it).
                            _ => {
                                held.take(ETHER, Amount::Part);
                                spends_value = true;
                                router_pays = false;
                            }
                        }
                    }
                    if takes && router_pays {
                        held.take(input, amount);
                    }
                    if takes && payer == Payer::Caller && input == ETHER {
                        // A V2 ETH-input swap spends all the ether sent (refunding the rest).
                        spends_value |= held.take(ETHER, Amount::All).is_some();
                    }
                    if paid_to_router {
                        held.add(norm(output), None);
                    }
                }
                RouterFlow::Pay { asset, amount } => {
                    let asset = norm(asset);
                    let taken = if takes {
                        held.take(asset, amount)
                    } else {
                        None
                    };
                    if let Some(taken) = taken
                        && paid_to_router
                    {
                        held.add(asset, taken);
                    }
                }
                RouterFlow::Convert { from, to, amount } => {
                    let from = norm(from);
                    let taken = if takes {
                        held.take(from, amount)
                    } else {
                        held.has(from).then_some(None)
                    };
                    spends_value |= takes && from == ETHER && taken.is_some();
                    if let Some(taken) = taken
                        && paid_to_router
                    {
                        held.add(norm(to), taken);
                    }
                }
                RouterFlow::Check | RouterFlow::Deposit => {}
            }
        }
        if !call.value.is_zero() && !spends_value {
            held.remove(ETHER);
            self.deny(
                Code::ArgumentNotAllowed,
                format!(
                    "swap-only: {} sends {} wei that no swap or wrap in it spends; native value \
                     may only be a swap input",
                    describe(call),
                    call.value
                ),
            );
        }
        if !held.is_empty() {
            self.deny(
                Code::ArgumentNotAllowed,
                format!(
                    "swap-only: {}: {} would be left in the router, where anyone can take it",
                    describe(call),
                    held.names()
                ),
            );
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
        if d.verifying_contract == Some(self.ctx.wallet) {
            // The wallet's own account code (an EIP-7702 delegate: `executeSigned`, ERC-1271)
            // honours it as the owner: every power of the wallet key, in one signature.
            self.deny(
                Code::TypedDataNotAllowed,
                format!(
                    "EIP-712 {} is addressed to the wallet itself, whose own code would honour \
                     it as the owner: never signed for an agent",
                    d.primary_type
                ),
            );
            return;
        }
        for rule in &self.policy.deny {
            if self.deny_rule_covers(rule, d) {
                self.deny(
                    Code::FunctionDenied,
                    format!(
                        "deny[{}] matches what EIP-712 {} lets its bearer do",
                        rule.index, d.primary_type
                    ),
                );
            }
        }
        self.count_effects(d.effects.iter());
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
        if self.policy.profile == Profile::FullAccess {
            // Other profiles sign only what a rule names or the forms Valet counts.
            if !rule_allows && let Some(why) = self.uncounted_typed_data(d) {
                self.deny(Code::Undecodable, why);
            }
            return;
        }
        let profile_allows = self.policy.profile == Profile::SwapOnly
            && d.spender.is_some_and(|s| self.is_router(s))
            && match d.primary_type.as_str() {
                "PermitSingle"
                | "PermitBatch"
                | "PermitTransferFrom"
                | "PermitBatchTransferFrom" => {
                    d.verifying_contract == Some(PERMIT2) && !d.effects.is_empty()
                }
                // EIP-2612 or DAI permits the decoder recognised (declared with their exact
                // fields: not look-alike NFT permits).
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

    /// Typed data in a form Valet does not count, under a token cap, that no `[typed_data]`
    /// rule names (SPEC section 4): why it is denied. A signature needs no transaction to move
    /// tokens: an order (Seaport, CoW, 1inch) spends standing allowances, a meta-transaction
    /// forwarder (ERC-2771) calls the token as the wallet, a token honours its own forms.
    fn uncounted_typed_data(&self, d: &TypedDataSummary) -> Option<String> {
        let caps = &self.policy.limits.spend;
        if d.recognised || !caps.iter().any(|l| matches!(l.asset, Asset::Token(_))) {
            return None;
        }
        let domain = d.domain_name.as_deref().unwrap_or("?");
        Some(format!(
            "EIP-712 {} of domain `{domain}` is not a form Valet can count (a permit, an \
             EIP-3009 authorization, a Permit2 permit or transfer), a spend limit on a token \
             applies, and no [typed_data] rule names it",
            d.primary_type
        ))
    }

    /// Whether deny rule `rule` speaks of what typed data `d` lets its bearer do: its verifying
    /// contract or a token it moves, and (when the rule names functions) a function of the
    /// same power (an allowance or a transfer). Argument conditions are not read: a rule that
    /// cannot be evaluated counts as matching.
    fn deny_rule_covers(&self, rule: &Rule, d: &TypedDataSummary) -> bool {
        let on_target = rule.target.is_none_or(|t| {
            d.verifying_contract == Some(t) || d.effects.iter().any(|e| e.asset == Asset::Token(t))
        });
        let Some(functions) = &rule.functions else {
            return on_target;
        };
        on_target
            && d.effects.iter().any(|e| {
                let powers: &[[u8; 4]] = match e.kind {
                    EffectKind::Transfer | EffectKind::SwapInput => &TRANSFER_POWERS,
                    EffectKind::Approval | EffectKind::Permit | EffectKind::OperatorGrant => {
                        &ALLOWANCE_POWERS
                    }
                };
                functions.iter().any(|f| powers.contains(&f.spec.selector))
            })
    }

    fn personal_sign(&mut self, message: &[u8]) {
        match &self.policy.messages {
            // Text is what people sign; bytes could be a hash some contract honours (a
            // token's pre-signed transfer), which nothing counts.
            MessagePolicy::Allow if !self.policy.limits.spend.is_empty() && !is_text(message) => {
                self.deny(
                    Code::Undecodable,
                    "personal_sign of bytes that are not printable text (or exactly 32 bytes, \
                     the size of a hash), and a spend limit applies: Valet cannot tell what a \
                     contract would do with the signature",
                )
            }
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
                let (show, asset): (&dyn Fn(U256) -> String, String) = match limit.asset {
                    Asset::Native => (&format_native, "native".into()),
                    Asset::Token(t) => match limit.decimals {
                        Some(d) => (&move |v| format_units(v, d), format!("token {t}")),
                        None => (
                            &|v: U256| format_units(v, 0),
                            format!("token {t} (base units)"),
                        ),
                    },
                };
                self.deny(
                    Code::SpendLimitExceeded,
                    format!(
                        "limits.spend {asset}: cap {} per {}, {} already used, this request {}",
                        show(limit.amount),
                        format_duration(limit.window),
                        show(used),
                        show(this)
                    ),
                );
            }
        }
    }
}

/// Functions that move tokens: `transfer`, `transferFrom`, EIP-3009's
/// `transfer`/`receiveWithAuthorization` (v, r, s and bytes forms), Permit2's `transferFrom`
/// (single and batch) and signature transfers (with and without witness).
const TRANSFER_POWERS: [[u8; 4]; 12] = [
    [0xa9, 0x05, 0x9c, 0xbb],
    [0x23, 0xb8, 0x72, 0xdd],
    [0xe3, 0xee, 0x16, 0x0e],
    [0xcf, 0x09, 0x29, 0x95],
    [0xef, 0x55, 0xbe, 0xc6],
    [0x88, 0xb7, 0xab, 0x63],
    [0x36, 0xc7, 0x85, 0x16],
    [0x0d, 0x58, 0xb1, 0xdb],
    [0x30, 0xf2, 0x8b, 0x7a],
    [0xed, 0xd9, 0x44, 0x4b],
    [0x13, 0x7c, 0x29, 0xfe],
    [0xfe, 0x8e, 0xc1, 0xa7],
];

/// Functions that grant allowances: `approve`, `increaseAllowance`, `setApprovalForAll`,
/// EIP-2612 and DAI `permit`, Permit2's `approve` and `permit` (single and batch).
const ALLOWANCE_POWERS: [[u8; 4]; 8] = [
    [0x09, 0x5e, 0xa7, 0xb3],
    [0x39, 0x50, 0x93, 0x51],
    [0xa2, 0x2c, 0xb4, 0x65],
    [0xd5, 0x05, 0xac, 0xcf],
    [0x8f, 0xcb, 0xaf, 0x0c],
    [0x87, 0x51, 0x7c, 0x45],
    [0x2b, 0x67, 0xb5, 0x70],
    [0x2a, 0x2d, 0x80, 0xd1],
];

/// Whether a message is what people sign: UTF-8 text without control characters other than
/// line breaks and tabs, and not exactly 32 bytes (a hash some contract may honour; a hash is
/// valid text often enough to be ground until it is).
fn is_text(message: &[u8]) -> bool {
    message.len() != 32
        && std::str::from_utf8(message).is_ok_and(|t| {
            t.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        })
}

/// Where a router sends what it pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// The wallet.
    Wallet,
    /// The router itself.
    Router,
    /// Anyone else.
    Other(Address),
}

/// Ether, as a router holds it.
const ETHER: RouterAsset = RouterAsset::Named(Asset::Native);

/// What a router holds for the wallet in the middle of a router call: each asset with its
/// amount when Valet can tell.
#[derive(Debug, Default)]
struct Holdings(Vec<(RouterAsset, Option<U256>)>);

impl Holdings {
    fn add(&mut self, asset: RouterAsset, amount: Option<U256>) {
        match self.0.iter_mut().find(|(a, _)| *a == asset) {
            Some((_, held)) => *held = held.zip(amount).map(|(h, a)| h.saturating_add(a)),
            None => self.0.push((asset, amount)),
        }
    }

    /// How much of `asset` is held (`Some(None)`: some, Valet cannot tell how much).
    fn amount(&self, asset: RouterAsset) -> Option<Option<U256>> {
        self.0.iter().find(|(a, _)| *a == asset).map(|(_, n)| *n)
    }

    fn has(&self, asset: RouterAsset) -> bool {
        self.amount(asset).is_some()
    }

    /// Takes `amount` of `asset`: how much was taken (`Some(None)` when Valet cannot tell), or
    /// `None` when the router holds none of it for the wallet. What is left of an unknown
    /// amount, or after a part, stays held.
    fn take(&mut self, asset: RouterAsset, amount: Amount) -> Option<Option<U256>> {
        let i = self.0.iter().position(|(a, _)| *a == asset)?;
        let held = self.0[i].1;
        Some(match amount {
            Amount::All => {
                self.0.remove(i);
                held
            }
            Amount::Exact(n) => {
                match held {
                    Some(h) if h > n => self.0[i].1 = Some(h - n),
                    Some(_) => {
                        self.0.remove(i);
                    }
                    None => {}
                }
                Some(n)
            }
            Amount::Part => {
                self.0[i].1 = None;
                None
            }
        })
    }

    fn remove(&mut self, asset: RouterAsset) {
        self.0.retain(|(a, _)| *a != asset);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The held assets, for messages.
    fn names(&self) -> String {
        self.0
            .iter()
            .map(|(a, _)| match a {
                RouterAsset::Named(Asset::Native) => "ether".to_string(),
                RouterAsset::Named(Asset::Token(t)) => format!("token {t}"),
                RouterAsset::Weth => "WETH".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
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

#[cfg(test)]
mod tests {
    //! Calldata here is built with alloy's ABI encoder (`alloy-dyn-abi`), independent of
    //! Valet's decoder.

    use super::*;
    use crate::ledger::SpendLedger;
    use alloy_dyn_abi::{DynSolValue as V, JsonAbiExt};
    use alloy_primitives::{Bytes, address};
    use serde_json::json;

    const WALLET: Address = address!("00000000000000000000000000000000000000a1");
    const STRANGER: Address = address!("742d35Cc6634C0532925a3b844Bc454e4438f44e");
    const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
    const DAI: Address = address!("6B175474E89094C44Da98b954EedeAC495271d0F");
    const WETH: Address = address!("C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
    const BAYC: Address = address!("BC4CA0EdA7647A8aB7C2061c2E118A18a936f13D");
    const V2_ROUTER: Address = address!("7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
    const V3_ROUTER: Address = address!("E592427A0AEce92De3Edee1F18E0157C05861564");
    const SWAP_ROUTER02: Address = address!("68b3465833fb72A70ecDF485E0e4C7bD8665Fc45");
    const UR: Address = address!("3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD");
    const SUSHI: Address = address!("d9e1cE17f2641f24aE83637ab66a2cca9C378B9F");
    const NPM: Address = address!("C36442b4a4522E871399CD717aBDD847Ab11FE88");
    const ME: Address = SENTINEL_MSG_SENDER;
    const HERE: Address = SENTINEL_ADDRESS_THIS;
    const DEADLINE: u64 = 1_798_761_600;
    const ETH: u64 = 1_000_000_000_000_000_000;
    /// The Universal Router's CONTRACT_BALANCE.
    fn all() -> U256 {
        U256::from(1) << 255
    }

    fn policy(profile: &str, extra: &str) -> Policy {
        Policy::from_toml(&format!(
            "name = \"t\"\nprofile = \"{profile}\"\nexpires_at = \"2030-01-01T00:00:00Z\"\n{extra}"
        ))
        .unwrap()
    }

    fn ctx(chain_id: u64) -> Context {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        Context {
            wallet: WALLET,
            chain_id,
            now,
            issued_at: now,
            client_ip: None,
            revoked: false,
        }
    }

    fn send(p: &Policy, to: Address, value: U256, data: Bytes) -> Decision {
        let tx = TxRequest {
            to: Some(to),
            value,
            data,
            ..TxRequest::default()
        };
        let request = Request::Transaction { send: true, tx };
        evaluate(p, &request, &SpendLedger::new(), &ctx(1))
    }

    /// The violation codes of a decision (empty when allowed).
    fn codes(d: &Decision) -> Vec<Code> {
        d.violations().iter().map(|v| v.code).collect()
    }

    /// Asserts a denial with exactly these codes, one message containing `needle`.
    fn denied(d: &Decision, want: &[Code], needle: &str) {
        assert_eq!(codes(d), want, "{d:?}");
        assert!(
            d.violations().iter().any(|v| v.message.contains(needle)),
            "no message contains {needle:?}: {d:?}"
        );
    }

    fn allowed(d: &Decision) {
        assert!(d.is_allow(), "{d:?}");
    }

    /// Calldata of `sig` (a human-readable signature) with these arguments.
    fn call(sig: &str, args: &[V]) -> Bytes {
        alloy_json_abi::Function::parse(sig)
            .unwrap()
            .abi_encode_input(args)
            .unwrap()
            .into()
    }

    /// `abi.encode(args...)`: a Universal Router command input.
    fn input(args: Vec<V>) -> V {
        V::Bytes(V::Tuple(args).abi_encode_params())
    }

    fn a(x: Address) -> V {
        V::Address(x)
    }

    fn n(x: u64) -> V {
        V::Uint(U256::from(x), 256)
    }

    fn big(x: U256) -> V {
        V::Uint(x, 256)
    }

    fn fee(x: u64) -> V {
        V::Uint(U256::from(x), 24)
    }

    fn path(tokens: &[Address]) -> V {
        let mut p = tokens[0].to_vec();
        for t in &tokens[1..] {
            p.extend([0x00, 0x01, 0xf4]);
            p.extend(t.as_slice());
        }
        V::Bytes(p)
    }

    fn v2path(tokens: &[Address]) -> V {
        V::Array(tokens.iter().map(|t| a(*t)).collect())
    }

    /// SwapRouter02 `exactInputSingle(tokenIn, tokenOut, fee, recipient, amountIn, 1, 0)`.
    fn single02(input: Address, output: Address, recipient: Address, amount: U256) -> Bytes {
        call(
            "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            &[V::Tuple(vec![
                a(input),
                a(output),
                fee(500),
                a(recipient),
                big(amount),
                n(1),
                V::Uint(U256::ZERO, 160),
            ])],
        )
    }

    /// SwapRouter02 `exactOutputSingle(tokenIn, tokenOut, fee, recipient, out, maxIn, 0)`.
    fn single02_out(input: Address, output: Address, max_in: U256) -> Bytes {
        call(
            "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            &[V::Tuple(vec![
                a(input),
                a(output),
                fee(500),
                a(WALLET),
                n(1000),
                big(max_in),
                V::Uint(U256::ZERO, 160),
            ])],
        )
    }

    fn multicall(calls: &[Bytes]) -> Bytes {
        let list = calls.iter().map(|c| V::Bytes(c.to_vec())).collect();
        call("multicall(uint256,bytes[])", &[n(DEADLINE), V::Array(list)])
    }

    /// Universal Router `execute(commands, inputs, deadline)`.
    fn execute(commands: &[u8], inputs: Vec<V>) -> Bytes {
        call(
            "execute(bytes,bytes[],uint256)",
            &[V::Bytes(commands.to_vec()), V::Array(inputs), n(DEADLINE)],
        )
    }

    /// V3_SWAP_EXACT_IN / V3_SWAP_EXACT_OUT input.
    fn ur_v3(recipient: Address, amount: U256, tokens: &[Address], payer_is_user: bool) -> V {
        input(vec![
            a(recipient),
            big(amount),
            n(1),
            path(tokens),
            V::Bool(payer_is_user),
        ])
    }

    /// V2_SWAP_EXACT_IN input.
    fn ur_v2(recipient: Address, amount: U256, tokens: &[Address], payer_is_user: bool) -> V {
        input(vec![
            a(recipient),
            big(amount),
            n(1),
            v2path(tokens),
            V::Bool(payer_is_user),
        ])
    }

    /// SWEEP / TRANSFER / PAY_PORTION input: (token, recipient, amount).
    fn ur_pay(token: Address, recipient: Address, amount: U256) -> V {
        input(vec![a(token), a(recipient), big(amount)])
    }

    /// WRAP_ETH / UNWRAP_WETH input: (recipient, amount).
    fn ur_wrap(recipient: Address, amount: U256) -> V {
        input(vec![a(recipient), big(amount)])
    }

    fn usdc(x: u64) -> U256 {
        U256::from(x * 1_000_000)
    }

    fn eth(tenths: u64) -> U256 {
        U256::from(tenths * ETH / 10)
    }

    const LEFT: &str = "would be left in the router";
    const VALUE: &str = "native value may only be a swap input";
    const BURNED: &str = "the output would be burned";

    #[test]
    fn swap_output_in_the_router_must_be_forwarded_in_the_same_call() {
        let p = policy("swap-only", "");
        let arg = [Code::ArgumentNotAllowed];
        let to_router = single02(USDC, WETH, HERE, usdc(100));
        // SwapRouter02: alone, at the top level or in a multicall, the WETH stays there.
        denied(
            &send(&p, SWAP_ROUTER02, U256::ZERO, to_router.clone()),
            &arg,
            LEFT,
        );
        let alone = multicall(std::slice::from_ref(&to_router));
        denied(&send(&p, SWAP_ROUTER02, U256::ZERO, alone), &arg, LEFT);
        // Unwrapped or swept to the wallet: forwarded.
        for forward in [
            call("unwrapWETH9(uint256,address)", &[n(1), a(WALLET)]),
            call("unwrapWETH9(uint256)", &[n(1)]),
            call("sweepToken(address,uint256)", &[a(WETH), n(0)]),
        ] {
            let batch = multicall(&[to_router.clone(), forward]);
            allowed(&send(&p, SWAP_ROUTER02, U256::ZERO, batch));
        }
        // Swept: another token.
        let other = call("sweepToken(address,uint256)", &[a(DAI), n(0)]);
        let batch = multicall(&[to_router.clone(), other]);
        denied(&send(&p, SWAP_ROUTER02, U256::ZERO, batch), &arg, LEFT);
        // Swept before the swap: too early.
        let sweep = call("sweepToken(address,uint256)", &[a(WETH), n(0)]);
        let batch = multicall(&[sweep, to_router.clone()]);
        denied(&send(&p, SWAP_ROUTER02, U256::ZERO, batch), &arg, LEFT);
        // A second swap the router pays with all it holds (amountIn = 0), to the wallet.
        let hop = single02(WETH, DAI, WALLET, U256::ZERO);
        let batch = multicall(&[to_router, hop]);
        allowed(&send(&p, SWAP_ROUTER02, U256::ZERO, batch));
    }

    #[test]
    fn universal_router_plans_must_forward_what_the_router_holds() {
        let p = policy("swap-only", "");
        let arg = [Code::ArgumentNotAllowed];
        let swap = ur_v3(HERE, usdc(100), &[USDC, WETH], true);
        let d = |commands: &[u8], inputs| send(&p, UR, U256::ZERO, execute(commands, inputs));
        denied(&d(&[0x00], vec![swap.clone()]), &arg, LEFT);
        // The router's own address, like address(2).
        denied(
            &d(&[0x00], vec![ur_v3(UR, usdc(100), &[USDC, WETH], true)]),
            &arg,
            LEFT,
        );
        let sweep = |token| ur_pay(token, ME, U256::ZERO);
        allowed(&d(&[0x00, 0x04], vec![swap.clone(), sweep(WETH)]));
        allowed(&d(
            &[0x00, 0x0c],
            vec![swap.clone(), ur_wrap(WALLET, U256::ZERO)],
        ));
        denied(
            &d(&[0x00, 0x04], vec![swap.clone(), sweep(DAI)]),
            &arg,
            LEFT,
        );
        // A sweep allowed to fail may leave it there.
        denied(
            &d(&[0x00, 0x84], vec![swap.clone(), sweep(WETH)]),
            &arg,
            LEFT,
        );
        // A second hop the router pays with CONTRACT_BALANCE takes it all; an amount Valet
        // cannot match to what the first hop bought may not.
        let hop = |amount| ur_v2(WALLET, amount, &[WETH, DAI], false);
        allowed(&d(&[0x00, 0x08], vec![swap.clone(), hop(all())]));
        denied(
            &d(&[0x00, 0x08], vec![swap.clone(), hop(eth(1))]),
            &arg,
            LEFT,
        );
        // A part of it (PAY_PORTION below 100%) leaves the rest.
        let portion = ur_pay(WETH, WALLET, U256::from(5000));
        denied(&d(&[0x00, 0x06], vec![swap.clone(), portion]), &arg, LEFT);
        // PERMIT2_TRANSFER_FROM into the router: forwarded only by a swap it pays.
        let pull = input(vec![a(USDC), a(HERE), V::Uint(usdc(100), 160)]);
        denied(&d(&[0x02], vec![pull.clone()]), &arg, LEFT);
        let paid = ur_v3(WALLET, usdc(100), &[USDC, WETH], false);
        allowed(&d(&[0x02, 0x00], vec![pull, paid]));
        // A swap the router pays from someone else's balance takes nothing of the wallet's.
        allowed(&d(
            &[0x00],
            vec![ur_v3(WALLET, usdc(1), &[USDC, WETH], false)],
        ));
    }

    #[test]
    fn native_value_may_only_be_a_swap_input() {
        let p = policy("swap-only", "");
        let arg = [Code::ArgumentNotAllowed];
        let value = eth(1);
        // V2 ETH-input swaps spend all of it.
        let v2 = call(
            "swapExactETHForTokens(uint256,address[],address,uint256)",
            &[n(1), v2path(&[WETH, USDC]), a(WALLET), n(DEADLINE)],
        );
        allowed(&send(&p, V2_ROUTER, value, v2));
        // SwapRouter02: a WETH input the ether covers exactly.
        let weth_in = |amount| single02(WETH, USDC, WALLET, amount);
        allowed(&send(&p, SWAP_ROUTER02, value, weth_in(value)));
        // More ether than the swap uses: the rest stays.
        denied(
            &send(&p, SWAP_ROUTER02, value, weth_in(eth(0) + U256::from(1))),
            &arg,
            LEFT,
        );
        // Less: the router pulls the wallet's WETH and keeps all the ether.
        denied(
            &send(&p, SWAP_ROUTER02, value, weth_in(eth(2))),
            &arg,
            VALUE,
        );
        // Another input token: the ether is not spent.
        denied(
            &send(
                &p,
                SWAP_ROUTER02,
                value,
                single02(USDC, WETH, WALLET, usdc(1)),
            ),
            &arg,
            VALUE,
        );
        // Exact output: only with refundETH after it.
        let out = single02_out(WETH, USDC, value);
        denied(&send(&p, SWAP_ROUTER02, value, out.clone()), &arg, LEFT);
        let refund = call("refundETH()", &[]);
        allowed(&send(
            &p,
            SWAP_ROUTER02,
            value,
            multicall(&[out.clone(), refund.clone()]),
        ));
        // A refund alone is no swap input.
        denied(
            &send(&p, SWAP_ROUTER02, value, multicall(&[refund])),
            &arg,
            VALUE,
        );
        // Payments spend nothing.
        let sweep = call(
            "sweepToken(address,uint256,address)",
            &[a(USDC), n(0), a(WALLET)],
        );
        denied(&send(&p, SWAP_ROUTER02, value, sweep), &arg, VALUE);
        // Universal Router: WRAP_ETH to the router, then a swap the router pays.
        let ur = |commands: &[u8], inputs| send(&p, UR, value, execute(commands, inputs));
        let swap = |amount| ur_v3(WALLET, amount, &[WETH, USDC], false);
        allowed(&ur(&[0x0b, 0x00], vec![ur_wrap(HERE, value), swap(value)]));
        allowed(&ur(&[0x0b, 0x00], vec![ur_wrap(HERE, all()), swap(all())]));
        allowed(&ur(&[0x0b], vec![ur_wrap(ME, value)]));
        // Half wrapped: half the ether stays.
        denied(
            &ur(
                &[0x0b, 0x00],
                vec![ur_wrap(HERE, eth(0) + value / U256::from(2)), swap(all())],
            ),
            &arg,
            LEFT,
        );
        // Wrapped and left as WETH.
        denied(&ur(&[0x0b], vec![ur_wrap(HERE, value)]), &arg, LEFT);
        // No wrap: a swap the wallet pays, and the ether stays.
        let paid = ur_v3(ME, usdc(1), &[USDC, WETH], true);
        denied(&ur(&[0x00], vec![paid]), &arg, VALUE);
        denied(&ur(&[], vec![]), &arg, VALUE);
    }

    #[test]
    fn sentinels_only_on_routers_that_read_them() {
        let p = policy(
            "swap-only",
            "routers = [\"0xd9e1cE17f2641f24aE83637ab66a2cca9C378B9F\"]",
        );
        let arg = [Code::ArgumentNotAllowed];
        let v2 = |to| {
            call(
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                &[n(100), n(1), v2path(&[USDC, WETH]), a(to), n(DEADLINE)],
            )
        };
        denied(&send(&p, V2_ROUTER, U256::ZERO, v2(ME)), &arg, BURNED);
        denied(&send(&p, V2_ROUTER, U256::ZERO, v2(HERE)), &arg, BURNED);
        denied(&send(&p, SUSHI, U256::ZERO, v2(ME)), &arg, BURNED);
        allowed(&send(&p, SUSHI, U256::ZERO, v2(WALLET)));
        // Paying the V2 router itself: nothing forwards it.
        denied(
            &send(&p, V2_ROUTER, U256::ZERO, v2(V2_ROUTER)),
            &arg,
            "does not forward",
        );
        let sr1 = |recipient| {
            call(
                "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                &[V::Tuple(vec![
                    a(USDC),
                    a(WETH),
                    fee(3000),
                    a(recipient),
                    n(DEADLINE),
                    n(100),
                    n(1),
                    V::Uint(U256::ZERO, 160),
                ])],
            )
        };
        denied(&send(&p, V3_ROUTER, U256::ZERO, sr1(ME)), &arg, BURNED);
        allowed(&send(&p, V3_ROUTER, U256::ZERO, sr1(WALLET)));
        allowed(&send(
            &p,
            SWAP_ROUTER02,
            U256::ZERO,
            single02(USDC, WETH, ME, usdc(1)),
        ));
        // SwapRouter02's payments with a recipient argument pay it as written.
        let swap = single02(USDC, WETH, HERE, usdc(1));
        let unwrap = call("unwrapWETH9(uint256,address)", &[n(1), a(ME)]);
        denied(
            &send(&p, SWAP_ROUTER02, U256::ZERO, multicall(&[swap, unwrap])),
            &arg,
            BURNED,
        );
    }

    #[test]
    fn multicall3_is_its_own_caller() {
        let approve = call("approve(address,uint256)", &[a(UR), n(5)]);
        let agg3 = |calls: Vec<V>| call("aggregate3((address,bool,bytes)[])", &[V::Array(calls)]);
        let element =
            |to, data: &Bytes| V::Tuple(vec![a(to), V::Bool(false), V::Bytes(data.to_vec())]);
        let batch = agg3(vec![element(USDC, &approve)]);
        // swap-only: a contract like any other, unless a rule names it.
        let p = policy("swap-only", "");
        denied(
            &send(&p, MULTICALL3, U256::ZERO, batch.clone()),
            &[Code::TargetNotAllowed],
            "Multicall3",
        );
        let p = policy(
            "swap-only",
            "[[allow]]\ntarget = \"0xcA11bde05977b3631167028862bE2a173976CA11\"",
        );
        allowed(&send(&p, MULTICALL3, U256::ZERO, batch.clone()));
        // A swap inside pays its caller, Multicall3.
        let p = policy("swap-only", "");
        let swap = single02(USDC, WETH, ME, usdc(1));
        let d = send(
            &p,
            MULTICALL3,
            U256::ZERO,
            agg3(vec![element(SWAP_ROUTER02, &swap)]),
        );
        assert_eq!(
            codes(&d),
            [Code::TargetNotAllowed, Code::ArgumentNotAllowed]
        );
        // Every profile: value only as the sum of what aggregate3Value forwards.
        let p = policy("full-access", "");
        allowed(&send(&p, MULTICALL3, U256::ZERO, batch.clone()));
        denied(
            &send(&p, MULTICALL3, eth(1), batch),
            &[Code::ArgumentNotAllowed],
            "Multicall3",
        );
        let with_value = |v| {
            call(
                "aggregate3Value((address,bool,uint256,bytes)[])",
                &[V::Array(vec![V::Tuple(vec![
                    a(WETH),
                    V::Bool(false),
                    big(v),
                    V::Bytes(call("deposit()", &[]).to_vec()),
                ])])],
            )
        };
        allowed(&send(&p, MULTICALL3, eth(1), with_value(eth(1))));
        denied(
            &send(&p, MULTICALL3, eth(2), with_value(eth(1))),
            &[Code::ArgumentNotAllowed],
            "Multicall3",
        );
    }

    #[test]
    fn approvals_of_any_amount_only_to_trusted_spenders() {
        let p = policy("swap-only", "");
        let arg = [Code::ArgumentNotAllowed];
        let approve = |spender, amount| call("approve(address,uint256)", &[a(spender), n(amount)]);
        // On an ERC-721, approve(stranger, 0) grants token 0.
        denied(
            &send(&p, BAYC, U256::ZERO, approve(STRANGER, 0)),
            &arg,
            "not a trusted router",
        );
        allowed(&send(&p, USDC, U256::ZERO, approve(UR, 0)));
        let lower = call("decreaseAllowance(address,uint256)", &[a(STRANGER), n(5)]);
        allowed(&send(&p, USDC, U256::ZERO, lower));
        let p2 = |spender| {
            call(
                "approve(address,address,uint160,uint48)",
                &[
                    a(BAYC),
                    a(spender),
                    V::Uint(U256::ZERO, 160),
                    V::Uint(U256::from(DEADLINE), 48),
                ],
            )
        };
        denied(
            &send(&p, PERMIT2, U256::ZERO, p2(STRANGER)),
            &arg,
            "Permit2 allowance",
        );
        allowed(&send(&p, PERMIT2, U256::ZERO, p2(UR)));
        // Uniswap V3 positions: no approval at all, not even to a router.
        denied(
            &send(&p, NPM, U256::ZERO, approve(SWAP_ROUTER02, 12345)),
            &arg,
            "callPositionManager",
        );
        let all = |approved| {
            call(
                "setApprovalForAll(address,bool)",
                &[a(UR), V::Bool(approved)],
            )
        };
        denied(
            &send(&p, NPM, U256::ZERO, all(false)),
            &arg,
            "callPositionManager",
        );
        let base_npm = address!("03a520b32C04BF3bEEf7BEb72E919cf822Ed34f1");
        let tx = TxRequest {
            to: Some(base_npm),
            data: approve(UR, 1),
            ..TxRequest::default()
        };
        let d = evaluate(
            &p,
            &Request::Transaction { send: true, tx },
            &SpendLedger::new(),
            &ctx(8453),
        );
        denied(&d, &arg, "callPositionManager");
    }

    #[test]
    fn unknown_functions_of_the_wallet_itself_are_undecodable() {
        let p = policy("full-access", "");
        let execute = call(
            "execute(address,uint256,bytes)",
            &[a(STRANGER), n(1), V::Bytes(vec![])],
        );
        denied(
            &send(&p, WALLET, U256::ZERO, execute.clone()),
            &[Code::Undecodable],
            "wallet itself",
        );
        // Elsewhere an unknown function is a call like any other.
        allowed(&send(&p, STRANGER, U256::ZERO, execute.clone()));
        // ERC-7821 execute is a batch; a call inside it to address(0) is to the wallet.
        let mut mode = [0u8; 32];
        mode[0] = 1; // batch, revert on failure
        let mode = V::FixedBytes(mode.into(), 32);
        let inner = |to, data: &Bytes| V::Tuple(vec![a(to), n(0), V::Bytes(data.to_vec())]);
        let batch = |calls| {
            let data = V::Array(calls).abi_encode_params();
            call("execute(bytes32,bytes)", &[mode.clone(), V::Bytes(data)])
        };
        allowed(&send(
            &p,
            WALLET,
            U256::ZERO,
            batch(vec![inner(STRANGER, &execute)]),
        ));
        let d = send(
            &p,
            WALLET,
            U256::ZERO,
            batch(vec![inner(Address::ZERO, &execute)]),
        );
        denied(&d, &[Code::Undecodable], "wallet itself");
    }

    #[test]
    fn chain_id_zero_is_never_allowed() {
        let p = policy("full-access", "");
        let typed = |chain: u64| {
            let data = json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                    "Mail": [{"name": "contents", "type": "string"}]
                },
                "primaryType": "Mail",
                "domain": {"name": "Mail", "chainId": chain},
                "message": {"contents": "hi"}
            });
            Request::from_json_rpc(
                "eth_signTypedData_v4",
                &json!([WALLET.to_string(), data]),
                WALLET,
            )
            .unwrap()
        };
        let ledger = SpendLedger::new();
        assert!(evaluate(&p, &typed(1), &ledger, &ctx(1)).is_allow());
        for gateway in [0, 1] {
            let d = evaluate(&p, &typed(0), &ledger, &ctx(gateway));
            assert_eq!(codes(&d), [Code::ChainNotAllowed], "{d:?}");
        }
        let tx = Request::Transaction {
            send: true,
            tx: TxRequest {
                to: Some(STRANGER),
                chain_id: Some(0),
                ..TxRequest::default()
            },
        };
        assert_eq!(
            codes(&evaluate(&p, &tx, &ledger, &ctx(0))),
            [Code::ChainNotAllowed]
        );
    }

    #[test]
    fn a_request_with_too_many_effects_is_undecodable() {
        use crate::decode::{MAX_CALLS, MAX_EFFECTS};
        // aggregate3 of MAX_CALLS - 1 calls whose offsets all point at one Permit2 batch
        // transfer of 1000 distinct tokens of the wallet (ABI offsets may alias): 136 KB that
        // would be 255,000 effects over 1000 assets without the limit.
        let transfers = (0..1000u64)
            .map(|k| {
                let token = Address::left_padding_from(&(k + 0x1000).to_be_bytes());
                V::Tuple(vec![
                    a(WALLET),
                    a(STRANGER),
                    V::Uint(U256::from(1), 160),
                    a(token),
                ])
            })
            .collect();
        let inner = call(
            "transferFrom((address,address,uint160,address)[])",
            &[V::Array(transfers)],
        );
        let one = call(
            "aggregate3((address,bool,bytes)[])",
            &[V::Array(vec![V::Tuple(vec![
                a(PERMIT2),
                V::Bool(false),
                V::Bytes(inner.to_vec()),
            ])])],
        );
        // Re-point: selector, offset, length n, n offsets all to the single element.
        let count = MAX_CALLS - 1;
        let word = |v: usize| U256::from(v).to_be_bytes::<32>();
        let mut data = one[..4].to_vec();
        data.extend(word(0x20));
        data.extend(word(count));
        for _ in 0..count {
            data.extend(word(32 * count));
        }
        data.extend(&one[4 + 32 * 3..]);
        let data = Bytes::from(data);
        let action = decode_transaction(WALLET, Some(MULTICALL3), U256::ZERO, &data);
        assert!(action.calls.iter().map(|c| c.effects.len()).sum::<usize>() <= MAX_EFFECTS);
        let p = policy("full-access", "");
        let d = send(&p, MULTICALL3, U256::ZERO, data);
        denied(&d, &[Code::Undecodable], "too many effects");
        // ERC-7821: MAX_EFFECTS transfers, then a call whose value is one effect too many.
        let transfers = (0..MAX_EFFECTS as u64)
            .map(|_| {
                V::Tuple(vec![
                    a(WALLET),
                    a(STRANGER),
                    V::Uint(U256::from(1), 160),
                    a(USDC),
                ])
            })
            .collect();
        let inner = call(
            "transferFrom((address,address,uint160,address)[])",
            &[V::Array(transfers)],
        );
        let element =
            |to, value, data: &[u8]| V::Tuple(vec![a(to), n(value), V::Bytes(data.to_vec())]);
        let mut mode = [0u8; 32];
        mode[0] = 1;
        let calls = V::Array(vec![element(PERMIT2, 0, &inner), element(STRANGER, 1, &[])]);
        let batch = call(
            "execute(bytes32,bytes)",
            &[
                V::FixedBytes(mode.into(), 32),
                V::Bytes(calls.abi_encode_params()),
            ],
        );
        let action = decode_transaction(WALLET, Some(WALLET), U256::ZERO, &batch);
        assert_eq!(
            action.calls.last().map(|c| c.kind.clone()),
            Some(CallKind::Undecodable("too many effects in one request"))
        );
        denied(
            &send(&p, WALLET, U256::ZERO, batch),
            &[Code::Undecodable],
            "too many effects",
        );
    }

    #[test]
    fn holdings() {
        let weth = RouterAsset::Weth;
        let mut h = Holdings::default();
        assert_eq!(h.take(weth, Amount::All), None);
        h.add(ETHER, Some(U256::from(10)));
        h.add(ETHER, Some(U256::from(5)));
        assert_eq!(h.amount(ETHER), Some(Some(U256::from(15))));
        assert_eq!(
            h.take(ETHER, Amount::Exact(U256::from(4))),
            Some(Some(U256::from(4)))
        );
        assert_eq!(h.amount(ETHER), Some(Some(U256::from(11))));
        assert_eq!(
            h.take(ETHER, Amount::Exact(U256::from(11))),
            Some(Some(U256::from(11)))
        );
        assert!(h.is_empty());
        h.add(weth, None);
        h.add(weth, Some(U256::from(3)));
        assert_eq!(h.amount(weth), Some(None));
        // Of an unknown amount, an exact part leaves an unknown rest.
        assert_eq!(
            h.take(weth, Amount::Exact(U256::from(3))),
            Some(Some(U256::from(3)))
        );
        assert!(h.has(weth));
        assert_eq!(h.take(weth, Amount::Part), Some(None));
        assert!(h.has(weth));
        assert_eq!(h.take(weth, Amount::All), Some(None));
        assert!(h.is_empty());
    }
}
