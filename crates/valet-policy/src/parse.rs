//! Policy files: TOML in, a checked [`Policy`] out, or an error naming the key and the line.

use crate::{
    decode::Asset,
    policy::*,
    units::{parse_duration, parse_native, parse_token},
};
use alloy_dyn_abi::DynSolType;
use alloy_json_abi::Function;
use alloy_primitives::{Address, U256};
use ipnet::IpNet;
use jiff::{Timestamp, tz::TimeZone};
use serde::Deserialize;
use std::{collections::BTreeMap, ops::Range};
use toml::{Spanned, Value};

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PolicyError {
    /// 1-based line of the offending key or value (0 when the file as a whole is wrong).
    pub line: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Most rules, typed-data entries and spend caps one policy may hold.
const MAX_ENTRIES: usize = 256;

impl Policy {
    /// Parses and checks a TOML policy (SPEC section 3). Unknown keys, bad addresses, amounts,
    /// durations, times, networks, time zones and signatures are refused with their line.
    pub fn from_toml(src: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(src).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(src, s.start));
            let message = e.message().trim().replace('\n', " ");
            PolicyError { line, message }
        })?;
        Checker { src }.policy(raw)
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Option<String>,
    profile: Option<Spanned<String>>,
    chains: Option<Vec<u64>>,
    expires_in: Option<Spanned<String>>,
    expires_at: Option<Spanned<RawTime>>,
    not_before: Option<Spanned<RawTime>>,
    #[serde(default)]
    ip_allow: Vec<Spanned<String>>,
    #[serde(default)]
    routers: Vec<Spanned<String>>,
    #[serde(default)]
    limits: RawLimits,
    schedule: Option<RawSchedule>,
    #[serde(default)]
    allow: Vec<Spanned<RawRule>>,
    #[serde(default)]
    deny: Vec<Spanned<RawRule>>,
    typed_data: Option<RawTypedData>,
    messages: Option<RawMessages>,
    on_anomaly: Option<Spanned<String>>,
}

/// A time (an RFC 3339 string or a TOML datetime) or an amount (a string or an integer),
/// checked after parsing so that a wrong type gets a message that says what to write.
type RawTime = Value;
type RawAmount = Value;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_value_per_tx: Option<Spanned<RawAmount>>,
    max_fee_per_gas: Option<Spanned<RawAmount>>,
    max_pending: Option<u32>,
    #[serde(default)]
    spend: Vec<Spanned<RawSpend>>,
    rate: Option<RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpend {
    asset: Spanned<String>,
    amount: Spanned<RawAmount>,
    decimals: Option<u8>,
    window: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    max_requests: Spanned<u64>,
    window: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    days: Option<Vec<Spanned<String>>>,
    hours: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    target: Option<Spanned<String>>,
    functions: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    args: BTreeMap<String, Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTypedData {
    #[serde(default)]
    allow: Vec<Spanned<RawTypedDataRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTypedDataRule {
    name: Option<String>,
    verifying_contract: Option<Spanned<String>>,
    primary_type: Option<String>,
    spender: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessages {
    personal_sign: Option<Spanned<Value>>,
}

struct Checker<'a> {
    src: &'a str,
}

type Res<T> = Result<T, PolicyError>;

impl Checker<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            line: line_of(self.src, span.start),
            message: message.into(),
        }
    }

    fn policy(&self, raw: RawPolicy) -> Res<Policy> {
        let profile = match &raw.profile {
            None => Profile::Custom,
            Some(p) => match p.get_ref().as_str() {
                "read-only" => Profile::ReadOnly,
                "swap-only" => Profile::SwapOnly,
                "full-access" => Profile::FullAccess,
                "custom" => Profile::Custom,
                other => {
                    return Err(self.err(
                        p.span(),
                        format!(
                            "profile: unknown profile `{other}`: use read-only, swap-only, full-access or custom"
                        ),
                    ));
                }
            },
        };
        let expiry = match (&raw.expires_in, &raw.expires_at) {
            (Some(_), Some(at)) => {
                return Err(self.err(at.span(), "give either expires_in or expires_at, not both"));
            }
            (Some(d), None) => Expiry::In(
                parse_duration(d.get_ref())
                    .map_err(|e| self.err(d.span(), format!("expires_in: {e}")))?,
            ),
            (None, Some(at)) => Expiry::At(self.time(at, "expires_at")?),
            (None, None) => {
                return Err(PolicyError {
                    line: 0,
                    message: "missing expiry: add expires_in = \"24h\" or expires_at = \"2026-12-01T00:00:00Z\""
                        .into(),
                });
            }
        };
        let not_before = raw
            .not_before
            .as_ref()
            .map(|t| self.time(t, "not_before"))
            .transpose()?;
        let ip_allow = raw
            .ip_allow
            .iter()
            .map(|s| {
                let text = s.get_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.err(
                            s.span(),
                            format!("ip_allow: `{text}` is not an IP address or CIDR range"),
                        )
                    })
            })
            .collect::<Res<Vec<_>>>()?;
        let routers = raw
            .routers
            .iter()
            .map(|s| self.address(s, "routers"))
            .collect::<Res<Vec<_>>>()?;
        let limits = self.limits(raw.limits)?;
        let schedule = raw.schedule.map(|s| self.schedule(s)).transpose()?;
        let allow = self.rules(raw.allow, "allow")?;
        let deny = self.rules(raw.deny, "deny")?;
        let typed_data = raw
            .typed_data
            .map(|t| self.typed_data(t))
            .transpose()?
            .unwrap_or_default();
        let messages = match raw.messages.and_then(|m| m.personal_sign) {
            None if profile == Profile::FullAccess => MessagePolicy::Allow,
            None => MessagePolicy::Deny,
            Some(v) => self.messages(&v)?,
        };
        if profile == Profile::ReadOnly
            && (!allow.is_empty() || !typed_data.is_empty() || messages != MessagePolicy::Deny)
        {
            return Err(PolicyError {
                line: 0,
                message: "profile read-only signs nothing: remove [[allow]], [typed_data] and [messages], or use profile = \"custom\"".into(),
            });
        }
        let on_anomaly = match &raw.on_anomaly {
            None => OnAnomaly::Alert,
            Some(v) => match v.get_ref().as_str() {
                "alert" => OnAnomaly::Alert,
                "suspend" => OnAnomaly::Suspend,
                other => {
                    return Err(self.err(
                        v.span(),
                        format!("on_anomaly: unknown action `{other}`: use alert or suspend"),
                    ));
                }
            },
        };
        if let Some(chains) = &raw.chains
            && chains.contains(&0)
        {
            return Err(PolicyError {
                line: 0,
                message: "chains: chain id 0 is not a chain".into(),
            });
        }
        Ok(Policy {
            name: raw.name.unwrap_or_default(),
            profile,
            chains: raw.chains.unwrap_or_default(),
            expiry,
            not_before,
            ip_allow,
            routers,
            limits,
            schedule,
            allow,
            deny,
            typed_data,
            messages,
            on_anomaly,
        })
    }

    fn time(&self, t: &Spanned<RawTime>, key: &str) -> Res<Timestamp> {
        let text = match t.get_ref() {
            Value::String(s) => s.clone(),
            Value::Datetime(d) => d.to_string(),
            _ => {
                return Err(self.err(
                    t.span(),
                    format!("{key}: expected a time like \"2026-12-01T00:00:00Z\""),
                ));
            }
        };
        text.trim().parse::<Timestamp>().map_err(|_| {
            self.err(
                t.span(),
                format!(
                    "{key}: `{text}` is not an RFC 3339 time with offset, e.g. 2026-12-01T00:00:00Z"
                ),
            )
        })
    }

    fn address(&self, s: &Spanned<String>, key: &str) -> Res<Address> {
        parse_address(s.get_ref()).map_err(|e| self.err(s.span(), format!("{key}: {e}")))
    }

    fn amount_text(&self, a: &Spanned<RawAmount>, key: &str) -> Res<String> {
        match a.get_ref() {
            Value::String(s) => Ok(s.clone()),
            Value::Integer(n) if *n >= 0 => Ok(n.to_string()),
            _ => Err(self.err(
                a.span(),
                format!("{key}: expected an amount like \"0.5 ether\", \"1000\" or an integer"),
            )),
        }
    }

    fn native(&self, a: &Spanned<RawAmount>, key: &str) -> Res<U256> {
        parse_native(&self.amount_text(a, key)?)
            .map_err(|e| self.err(a.span(), format!("{key}: {e}")))
    }

    fn limits(&self, raw: RawLimits) -> Res<Limits> {
        let max_value_per_tx = raw
            .max_value_per_tx
            .as_ref()
            .map(|a| self.native(a, "limits.max_value_per_tx"))
            .transpose()?;
        let max_fee_per_gas = raw
            .max_fee_per_gas
            .as_ref()
            .map(|a| self.native(a, "limits.max_fee_per_gas"))
            .transpose()?;
        if raw.spend.len() > MAX_ENTRIES {
            return Err(PolicyError {
                line: 0,
                message: format!("more than {MAX_ENTRIES} spend limits"),
            });
        }
        let spend = raw
            .spend
            .iter()
            .map(|s| {
                let s = s.get_ref();
                let asset_text = s.asset.get_ref().trim();
                let asset = if asset_text == "native" {
                    Asset::Native
                } else {
                    Asset::Token(self.address(&s.asset, "limits.spend.asset")?)
                };
                let amount = match asset {
                    Asset::Native if s.decimals.is_some() => {
                        return Err(self.err(
                            s.amount.span(),
                            "limits.spend: native amounts take a unit (\"0.5 ether\"), not decimals",
                        ));
                    }
                    Asset::Native => self.native(&s.amount, "limits.spend.amount")?,
                    Asset::Token(_) => parse_token(&self.amount_text(&s.amount, "limits.spend.amount")?, s.decimals)
                        .map_err(|e| self.err(s.amount.span(), format!("limits.spend.amount: {e}")))?,
                };
                let window = parse_duration(s.window.get_ref())
                    .map_err(|e| self.err(s.window.span(), format!("limits.spend.window: {e}")))?;
                Ok(SpendLimit {
                    asset,
                    amount,
                    window,
                    decimals: s.decimals,
                })
            })
            .collect::<Res<Vec<_>>>()?;
        let rate = raw
            .rate
            .map(|r| {
                let window = parse_duration(r.window.get_ref())
                    .map_err(|e| self.err(r.window.span(), format!("limits.rate.window: {e}")))?;
                if *r.max_requests.get_ref() == 0 {
                    return Err(self.err(
                        r.max_requests.span(),
                        "limits.rate.max_requests must be at least 1",
                    ));
                }
                Ok(RateLimit {
                    max_requests: *r.max_requests.get_ref(),
                    window,
                })
            })
            .transpose()?;
        Ok(Limits {
            max_value_per_tx,
            max_fee_per_gas,
            max_pending: raw.max_pending,
            spend,
            rate,
        })
    }

    fn schedule(&self, raw: RawSchedule) -> Res<Schedule> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut days = 0u8;
        match &raw.days {
            None => days = 0x7f,
            Some(list) => {
                for d in list {
                    let text = d.get_ref().trim().to_ascii_lowercase();
                    // "mon-fri" ranges are accepted as well as single days.
                    let (a, b) = text.split_once('-').unwrap_or((&text, &text));
                    let pos = |n: &str| NAMES.iter().position(|x| *x == n);
                    let (Some(a), Some(b)) = (pos(a), pos(b)) else {
                        return Err(self.err(
                            d.span(),
                            format!("schedule.days: `{text}` is not a day: use mon, tue, wed, thu, fri, sat, sun"),
                        ));
                    };
                    let mut i = a;
                    loop {
                        days |= 1 << i;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                if days == 0 {
                    return Err(PolicyError {
                        line: 0,
                        message: "schedule.days is empty".into(),
                    });
                }
            }
        }
        let hours = raw
            .hours
            .as_ref()
            .map(|h| {
                parse_hours(h.get_ref()).ok_or_else(|| {
                    self.err(
                        h.span(),
                        format!(
                            "schedule.hours: `{}` is not a range like 09:00-17:00",
                            h.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        let (timezone, timezone_name) = match &raw.timezone {
            None => (TimeZone::UTC, "UTC".to_string()),
            Some(tz) => {
                let name = tz.get_ref().trim();
                let zone = TimeZone::get(name).map_err(|_| {
                    self.err(
                        tz.span(),
                        format!("schedule.timezone: `{name}` is not an IANA time zone"),
                    )
                })?;
                (zone, name.to_string())
            }
        };
        Ok(Schedule {
            days,
            hours,
            timezone,
            timezone_name,
        })
    }

    fn rules(&self, raw: Vec<Spanned<RawRule>>, kind: &str) -> Res<Vec<Rule>> {
        if raw.len() > MAX_ENTRIES {
            return Err(PolicyError {
                line: 0,
                message: format!("more than {MAX_ENTRIES} [[{kind}]] rules"),
            });
        }
        raw.into_iter()
            .enumerate()
            .map(|(index, spanned)| {
                let span = spanned.span();
                let rule = spanned.into_inner();
                let key = format!("{kind}[{index}]");
                let target = rule.target.as_ref().map(|t| self.address(t, &format!("{key}.target"))).transpose()?;
                if kind == "deny" && target.is_none() && rule.functions.is_none() {
                    return Err(self.err(span, format!("{key}: a deny rule needs a target, functions, or both")));
                }
                let functions = match rule.functions {
                    None => {
                        if let Some((name, v)) = rule.args.iter().next() {
                            return Err(self.err(
                                v.span(),
                                format!("{key}.args.{name}: conditions need `functions` naming the parameter"),
                            ));
                        }
                        None
                    }
                    Some(fs) => {
                        if fs.is_empty() {
                            return Err(self.err(span, format!("{key}.functions is empty")));
                        }
                        Some(
                            fs.iter()
                                .map(|f| self.function(f, &rule.args, &key))
                                .collect::<Res<Vec<_>>>()?,
                        )
                    }
                };
                Ok(Rule { index, target, functions })
            })
            .collect()
    }

    fn function(
        &self,
        f: &Spanned<String>,
        args: &BTreeMap<String, Spanned<Value>>,
        key: &str,
    ) -> Res<RuleFunction> {
        let text = f.get_ref().trim();
        let bad = |why: String| self.err(f.span(), format!("{key}.functions: `{text}`: {why}"));
        let parsed = Function::parse(text)
            .map_err(|e| bad(format!("not a function signature ({})", last_line(&e))))?;
        let mut offset = 0usize;
        let mut params = Vec::with_capacity(parsed.inputs.len());
        for p in &parsed.inputs {
            let ty = DynSolType::parse(&p.selector_type()).map_err(|e| bad(last_line(&e)))?;
            params.push((p.name.clone(), ty.clone(), offset));
            offset = offset.saturating_add(head_size(&ty));
        }
        let spec = FunctionSpec {
            signature: parsed.signature(),
            selector: parsed.selector().0,
            head_len: offset,
        };
        let args = args
            .iter()
            .map(|(name, value)| {
                let Some((_, ty, offset)) = params.iter().find(|(n, ..)| n == name) else {
                    return Err(self.err(
                        value.span(),
                        format!("{key}.args.{name}: `{}` has no parameter named `{name}`", spec.signature),
                    ));
                };
                let ty = match ty {
                    DynSolType::Address => ArgType::Address,
                    DynSolType::Uint(bits) => ArgType::Uint(*bits as u16),
                    DynSolType::Bool => ArgType::Bool,
                    other => {
                        return Err(self.err(
                            value.span(),
                            format!(
                                "{key}.args.{name}: conditions on `{other}` parameters are not supported (address, uintN and bool are)"
                            ),
                        ));
                    }
                };
                let condition = self
                    .condition(value.get_ref(), ty)
                    .map_err(|e| self.err(value.span(), format!("{key}.args.{name}: {e}")))?;
                Ok(ArgCheck { name: name.clone(), ty, offset: *offset, condition })
            })
            .collect::<Res<Vec<_>>>()?;
        Ok(RuleFunction { spec, args })
    }

    fn condition(&self, v: &Value, ty: ArgType) -> Result<Condition, String> {
        match (ty, v) {
            (ArgType::Address, Value::String(s)) => {
                let s = s.trim();
                match s.strip_prefix("!=") {
                    Some(rest) => Ok(Condition::AddressNotIn(vec![parse_address_ref(
                        rest.trim(),
                    )?])),
                    None => Ok(Condition::AddressIn(vec![parse_address_ref(
                        s.trim_start_matches("=="),
                    )?])),
                }
            }
            (ArgType::Address, Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => parse_address_ref(s),
                    _ => Err("a list of addresses must hold strings".into()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Condition::AddressIn),
            (ArgType::Uint(bits), Value::Integer(n)) if *n >= 0 => {
                uint_bound(Comparison::Eq, U256::from(*n as u64), bits)
            }
            (ArgType::Uint(bits), Value::String(s)) => {
                let s = s.trim();
                let (op, rest) = [
                    ("<=", Comparison::Le),
                    (">=", Comparison::Ge),
                    ("==", Comparison::Eq),
                    ("!=", Comparison::Ne),
                    ("<", Comparison::Lt),
                    (">", Comparison::Gt),
                ]
                .iter()
                .find_map(|(p, op)| s.strip_prefix(p).map(|r| (*op, r.trim())))
                .unwrap_or((Comparison::Eq, s));
                uint_bound(op, parse_native(rest)?, bits)
            }
            (ArgType::Bool, Value::Boolean(b)) => Ok(Condition::Bool(*b)),
            (ArgType::Address, _) => Err(
                "expected an address, \"$self\", \"$router\", \"!= …\" or a list of them".into(),
            ),
            (ArgType::Uint(_), _) => {
                Err("expected a number or a comparison like \"<= 1000000\"".into())
            }
            (ArgType::Bool, _) => Err("expected true or false".into()),
        }
    }

    fn typed_data(&self, raw: RawTypedData) -> Res<Vec<TypedDataRule>> {
        if raw.allow.len() > MAX_ENTRIES {
            return Err(PolicyError {
                line: 0,
                message: format!("more than {MAX_ENTRIES} typed_data entries"),
            });
        }
        raw.allow
            .into_iter()
            .map(|entry| {
                let span = entry.span();
                let e = entry.into_inner();
                let verifying_contract = e
                    .verifying_contract
                    .as_ref()
                    .map(|v| self.address(v, "typed_data.allow.verifying_contract"))
                    .transpose()?;
                let spender = e
                    .spender
                    .as_ref()
                    .map(|s| {
                        parse_address_ref(s.get_ref()).map_err(|m| {
                            self.err(s.span(), format!("typed_data.allow.spender: {m}"))
                        })
                    })
                    .transpose()?;
                let rule = TypedDataRule {
                    name: e.name,
                    verifying_contract,
                    primary_type: e.primary_type,
                    spender,
                };
                if rule == TypedDataRule::default() {
                    return Err(self.err(
                        span,
                        "typed_data.allow: an entry must name at least one field to match",
                    ));
                }
                Ok(rule)
            })
            .collect()
    }

    fn messages(&self, v: &Spanned<Value>) -> Res<MessagePolicy> {
        let bad = || {
            self.err(
                v.span(),
                "messages.personal_sign: use \"deny\", \"allow\" or { siwe_domains = [\"app.example.com\"] }",
            )
        };
        match v.get_ref() {
            Value::String(s) if s == "deny" => Ok(MessagePolicy::Deny),
            Value::String(s) if s == "allow" => Ok(MessagePolicy::Allow),
            Value::Table(t) if t.len() == 1 => match t.get("siwe_domains") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(|s| s.trim().to_ascii_lowercase())
                            .ok_or_else(bad)
                    })
                    .collect::<Res<Vec<_>>>()
                    .map(MessagePolicy::SiweDomains),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// The last non-empty line of a parser error (the others repeat the input and a caret).
fn last_line(e: &dyn std::fmt::Display) -> String {
    let e = e.to_string();
    e.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn uint_bound(op: Comparison, bound: U256, bits: u16) -> Result<Condition, String> {
    if bits < 256 && bound >> usize::from(bits) != U256::ZERO {
        return Err(format!("{bound} does not fit in uint{bits}"));
    }
    Ok(Condition::Uint(op, bound))
}

/// Size in bytes of a type's head in an ABI tuple.
fn head_size(ty: &DynSolType) -> usize {
    match ty {
        DynSolType::Tuple(items) if !ty.is_dynamic() => items.iter().map(head_size).sum(),
        DynSolType::FixedArray(inner, n) if !ty.is_dynamic() => head_size(inner).saturating_mul(*n),
        _ => 32,
    }
}

/// Parses a 0x-prefixed 20-byte hex address (any case; a mixed-case one must carry a valid
/// EIP-55 checksum).
pub fn parse_address(s: &str) -> Result<Address, String> {
    let s = s.trim();
    let hex = s
        .strip_prefix("0x")
        .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(hex) = hex else {
        return Err(format!("`{s}` is not an address (0x and 40 hex digits)"));
    };
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(s, None)
            .map_err(|_| format!("`{s}` has a wrong EIP-55 checksum"))
    } else {
        s.parse::<Address>()
            .map_err(|_| format!("`{s}` is not an address"))
    }
}

fn parse_address_ref(s: &str) -> Result<AddressRef, String> {
    match s.trim() {
        "$self" => Ok(AddressRef::Wallet),
        "$router" => Ok(AddressRef::Router),
        other => parse_address(other).map(AddressRef::Literal),
    }
}

/// Parses `HH:MM-HH:MM` into minutes; `24:00` may end a range; an end at or before the start
/// wraps past midnight.
fn parse_hours(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.trim().split_once('-')?;
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(a)?, minutes(b)?);
    (start < 24 * 60 && start != end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name = \"t\"\nexpires_in = \"1h\"\n";

    /// Parses `HEAD + body` and expects an error on `line` (counted in the whole file)
    /// whose message contains `needle`.
    #[track_caller]
    fn refused(body: &str, line: usize, needle: &str) {
        let src = format!("{HEAD}{body}");
        let err = Policy::from_toml(&src).expect_err("policy should be refused");
        assert_eq!(err.line, line, "{err}");
        assert!(
            err.message.contains(needle),
            "`{}` lacks `{needle}`",
            err.message
        );
        assert!(!err.message.contains('\n'), "one line: {}", err.message);
    }

    #[test]
    fn typos_are_refused_with_their_line() {
        refused(
            "profile = \"custom\"\nchain = [1]\n",
            4,
            "unknown field `chain`",
        );
        refused(
            "[limits]\nmax_value_per_tx = \"1 eth\"\n",
            4,
            "unknown unit `eth`",
        );
        refused(
            "[limits]\nmax_pendng = 2\n",
            4,
            "unknown field `max_pendng`",
        );
        refused("profile = \"swap\"\n", 3, "unknown profile `swap`");
        refused(
            "profile = \"custom\"\non_anomaly = \"quarantine\"\n",
            4,
            "on_anomaly: unknown action `quarantine`",
        );
        refused("routers = [\"0x1234\"]\n", 3, "is not an address");
        refused(
            "routers = [\"0x7a250d5630B4cF539739dF2C5dAcb4c659F2488d\"]\n",
            3,
            "checksum",
        );
        refused(
            "ip_allow = [\"10.0.0.0/33\"]\n",
            3,
            "not an IP address or CIDR",
        );
        refused(
            "[[limits.spend]]\nasset = \"native\"\namount = \"1 ether\"\nwindow = \"1w\"\n",
            6,
            "invalid duration",
        );
        refused(
            "[[limits.spend]]\nasset = \"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48\"\namount = \"1.5\"\nwindow = \"1d\"\n",
            5,
            "decimals",
        );
        refused("[schedule]\ntimezone = \"Mars/Olympus\"\n", 4, "IANA");
        refused("[schedule]\nhours = \"9-17\"\n", 4, "09:00-17:00");
        refused("[schedule]\ndays = [\"monday\"]\n", 4, "not a day");
        refused(
            "[[allow]]\ntarget = \"0x1111111111111111111111111111111111111111\"\nfunctions = [\"deposit(uint256 assets, address receiver)\"]\n[allow.args]\nreciever = \"$self\"\n",
            7,
            "no parameter named `reciever`",
        );
        refused(
            "[[allow]]\nfunctions = [\"transfer(address,uint256\"]\n",
            4,
            "not a function signature",
        );
        refused("[[deny]]\n[deny.args]\n", 3, "needs a target");
        refused(
            "[[allow]]\nfunctions = [\"f(uint8 x)\"]\n[allow.args]\nx = \"<= 256\"\n",
            6,
            "does not fit in uint8",
        );
        refused(
            "[messages]\npersonal_sign = \"maybe\"\n",
            4,
            "personal_sign",
        );
        refused("expires_at = \"2026-12-01\"\n", 3, "not both");
        refused(
            "[limits]\nmax_value_per_tx = 1.5\n",
            4,
            "expected an amount",
        );
        refused("not_before = 5\n", 3, "expected a time");
    }

    #[test]
    fn on_anomaly_defaults_to_alert() {
        let p = |body: &str| Policy::from_toml(&format!("{HEAD}{body}")).map(|p| p.on_anomaly);
        assert_eq!(p(""), Ok(OnAnomaly::Alert));
        assert_eq!(p("on_anomaly = \"alert\"\n"), Ok(OnAnomaly::Alert));
        assert_eq!(p("on_anomaly = \"suspend\"\n"), Ok(OnAnomaly::Suspend));
    }

    #[test]
    fn expiry_is_required_once() {
        let err = Policy::from_toml("name = \"x\"\n").unwrap_err();
        assert!(err.message.contains("missing expiry"), "{err}");
        let err = Policy::from_toml("expires_at = \"tomorrow\"\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn read_only_cannot_grant() {
        let err = Policy::from_toml(&format!(
            "{HEAD}profile = \"read-only\"\n[[allow]]\ntarget = \"0x1111111111111111111111111111111111111111\"\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("read-only signs nothing"), "{err}");
    }

    #[test]
    fn the_spec_example_parses() {
        let src = r#"
name = "swap-bot"
profile = "swap-only"
chains = [1]
expires_in = "24h"
not_before = "2026-11-30T00:00:00Z"
ip_allow = ["203.0.113.0/24"]
routers = ["0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"]

[limits]
max_value_per_tx = "0.05 ether"
max_fee_per_gas = "300 gwei"
max_pending = 2

[[limits.spend]]
asset = "native"
amount = "0.5 ether"
window = "24h"

[[limits.spend]]
asset = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
amount = "1000"
decimals = 6
window = "24h"

[limits.rate]
max_requests = 120
window = "1m"

[schedule]
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-17:00"
timezone = "America/New_York"

[[allow]]
target = "0x1111111111111111111111111111111111111111"
functions = ["deposit(uint256 assets, address receiver)"]
[allow.args]
receiver = "$self"

[[deny]]
functions = ["transfer(address,uint256)"]

[typed_data]
allow = [{ name = "Permit2", verifying_contract = "0x000000000022D473030F116dDEE9F6B43aC78BA3", spender = "$router" }]

[messages]
personal_sign = { siwe_domains = ["app.example.com"] }
"#;
        let p = Policy::from_toml(src).unwrap();
        assert_eq!(p.profile, Profile::SwapOnly);
        assert_eq!(p.expiry, Expiry::In(86400));
        assert_eq!(p.limits.spend[1].amount, U256::from(1_000_000_000u64));
        assert_eq!(
            p.limits.max_fee_per_gas,
            Some(U256::from(300_000_000_000u64))
        );
        assert_eq!(p.schedule.as_ref().unwrap().days, 0b0011111);
        assert_eq!(p.schedule.as_ref().unwrap().hours, Some((540, 1020)));
        assert_eq!(
            p.allow[0].functions.as_ref().unwrap()[0].spec.signature,
            "deposit(uint256,address)"
        );
        assert_eq!(p.allow[0].functions.as_ref().unwrap()[0].args[0].offset, 32);
        assert_eq!(
            p.deny[0].functions.as_ref().unwrap()[0].spec.selector,
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert_eq!(
            p.messages,
            MessagePolicy::SiweDomains(vec!["app.example.com".into()])
        );
    }
}
