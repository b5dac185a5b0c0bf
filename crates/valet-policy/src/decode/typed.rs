//! EIP-712 typed data (`eth_signTypedData_v4`): structure checks and the effects of the
//! permits Valet knows (EIP-2612, DAI, Permit2 allowance and signature transfers).

use super::{Asset, Effect, EffectKind, permit2};
use alloy_primitives::{Address, U256};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// How deeply EIP-712 struct types may nest (a struct field of a struct type counts one level).
pub(crate) const MAX_TYPE_DEPTH: usize = 16;

/// What an EIP-712 signing request is and what it grants over the wallet's assets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedDataSummary {
    /// The `primaryType` (`Permit`, `PermitSingle`, `Order`, ...).
    pub primary_type: String,
    /// `domain.name`, if present.
    pub domain_name: Option<String>,
    /// `domain.chainId`, if present.
    pub chain_id: Option<u64>,
    /// `domain.verifyingContract`, if present.
    pub verifying_contract: Option<Address>,
    /// `message.spender`, if present.
    pub spender: Option<Address>,
    /// What a signature grants: [`EffectKind::Permit`] effects for the permits Valet knows
    /// (EIP-2612 and DAI `Permit`, Permit2's `PermitSingle`, `PermitBatch`,
    /// `PermitTransferFrom`, `PermitBatchTransferFrom` and their witness forms); none otherwise.
    pub effects: Vec<Effect>,
}

/// Checks and summarises EIP-712 typed data signed by `wallet`.
///
/// `v` is the typed-data object (`types`, `primaryType`, `domain`, `message`) or a JSON string
/// holding it, as `eth_signTypedData_v4` takes it. Every struct type a field refers to must be
/// defined, the types must not be recursive, and struct types may nest at most 16 deep. Numbers may be JSON numbers, decimal strings or `0x` hex strings.
pub fn decode_typed_data(v: &Value, wallet: Address) -> Result<TypedDataSummary, String> {
    let parsed;
    let v = match v {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("typed data: not valid JSON: {e}"))?;
            &parsed
        }
        v => v,
    };
    let root = v.as_object().ok_or("typed data: must be a JSON object")?;
    let types = root
        .get("types")
        .and_then(Value::as_object)
        .ok_or("typed data: `types` must be an object")?;
    let primary_type = root
        .get("primaryType")
        .and_then(Value::as_str)
        .ok_or("typed data: `primaryType` must be a string")?;
    if !types.contains_key(primary_type) {
        return Err(format!(
            "typed data: primary type `{primary_type}` is not defined in `types`"
        ));
    }
    let domain = root
        .get("domain")
        .and_then(Value::as_object)
        .ok_or("typed data: `domain` must be an object")?;
    let message = root
        .get("message")
        .and_then(Value::as_object)
        .ok_or("typed data: `message` must be an object")?;
    check_types(types)?;

    let domain_name = match domain.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("typed data: `domain.name` must be a string".into()),
    };
    let chain_id = match domain.get("chainId") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let id = uint(c, "domain.chainId")?;
            Some(
                u64::try_from(id)
                    .map_err(|_| "typed data: `domain.chainId` is too large".to_string())?,
            )
        }
    };
    let verifying_contract = optional_address(domain, "verifyingContract", "domain")?;
    let spender = optional_address(message, "spender", "message")?;

    let effects = effects(
        primary_type,
        domain_name.as_deref(),
        verifying_contract,
        message,
        wallet,
    )?;
    Ok(TypedDataSummary {
        primary_type: primary_type.to_string(),
        domain_name,
        chain_id,
        verifying_contract,
        spender,
        effects,
    })
}

/// Checks `types`: arrays of `{name, type}`, every referenced struct defined, no cycles, and
/// nesting at most [`MAX_TYPE_DEPTH`]: all without recursion.
fn check_types(types: &Map<String, Value>) -> Result<(), String> {
    let index: HashMap<&str, usize> = types
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(types.len());
    for (name, fields) in types {
        let fields = fields
            .as_array()
            .ok_or_else(|| format!("typed data: type `{name}` must be an array of fields"))?;
        let mut children = Vec::new();
        for field in fields {
            let field_name = field.get("name").and_then(Value::as_str);
            let field_type = field.get("type").and_then(Value::as_str);
            let (Some(field_name), Some(field_type)) = (field_name, field_type) else {
                return Err(format!(
                    "typed data: every field of type `{name}` must be {{\"name\", \"type\"}} strings"
                ));
            };
            let base = base_type(field_type).ok_or_else(|| {
                format!(
                    "typed data: field `{name}.{field_name}` has a malformed type `{field_type}`"
                )
            })?;
            if let Some(&child) = index.get(base) {
                children.push(child);
            } else if !is_atomic(base) {
                return Err(format!(
                    "typed data: field `{name}.{field_name}` refers to undefined type `{base}`"
                ));
            }
        }
        edges.push(children);
    }

    // Depth-first search with an explicit stack: 0 = unseen, 1 = on the stack, 2 = done, with
    // each finished type's height (1 + its deepest struct field's height).
    let names: Vec<&str> = types.keys().map(String::as_str).collect();
    let too_deep = |at: usize| {
        format!(
            "typed data: struct types nest deeper than {MAX_TYPE_DEPTH} levels (at `{}`)",
            names[at]
        )
    };
    let mut state = vec![0u8; edges.len()];
    let mut height = vec![0usize; edges.len()];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..edges.len() {
        if state[root] != 0 {
            continue;
        }
        state[root] = 1;
        stack.push((root, 0));
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let Some(&child) = edges[node].get(*next) else {
                let h = 1 + edges[node].iter().map(|&c| height[c]).max().unwrap_or(0);
                if h > MAX_TYPE_DEPTH {
                    return Err(too_deep(node));
                }
                height[node] = h;
                state[node] = 2;
                stack.pop();
                continue;
            };
            *next += 1;
            match state[child] {
                0 if stack.len() >= MAX_TYPE_DEPTH => return Err(too_deep(child)),
                0 => {
                    state[child] = 1;
                    stack.push((child, 0));
                }
                1 => {
                    return Err(format!(
                        "typed data: type `{}` refers to itself (a cycle)",
                        names[child]
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The base type of an EIP-712 field type (`Person[2][]` → `Person`), if its array suffixes
/// are well formed.
fn base_type(t: &str) -> Option<&str> {
    let (base, mut rest) = match t.find('[') {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    while !rest.is_empty() {
        let close = rest.find(']')?;
        let len = rest.get(1..close)?;
        if !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = rest.get(close + 1..)?;
        if !rest.is_empty() && !rest.starts_with('[') {
            return None;
        }
    }
    (!base.is_empty()).then_some(base)
}

/// Whether `t` is an EIP-712 atomic or dynamic type.
fn is_atomic(t: &str) -> bool {
    let sized = |prefix: &str, min: u32, max: u32, step: u32| {
        t.strip_prefix(prefix)
            .filter(|n| !n.starts_with('0'))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (min..=max).contains(&n) && n % step == 0)
    };
    matches!(t, "address" | "bool" | "string" | "bytes")
        || sized("bytes", 1, 32, 1)
        || sized("uint", 8, 256, 8)
        || sized("int", 8, 256, 8)
}

/// An unsigned integer: a JSON number, a decimal string or a `0x` hex string.
fn uint(v: &Value, what: &str) -> Result<U256, String> {
    let bad = || format!("typed data: `{what}` must be an unsigned integer");
    match v {
        Value::Number(n) => n.as_u64().map(U256::from).ok_or_else(bad),
        Value::String(s) => {
            let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => (hex, 16),
                None => (s.as_str(), 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return Err(bad());
            }
            U256::from_str_radix(digits, radix as u64)
                .map_err(|_| format!("typed data: `{what}` is too large"))
        }
        _ => Err(bad()),
    }
}

/// An address given as a hex string.
fn address(v: &Value, what: &str) -> Result<Address, String> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")))
        .filter(|hex| hex.len() == 40)
        .and_then(|hex| hex.parse::<Address>().ok())
        .ok_or_else(|| format!("typed data: `{what}` must be an address"))
}

/// `obj.key` as an address, if present.
fn optional_address(
    obj: &Map<String, Value>,
    key: &str,
    within: &str,
) -> Result<Option<Address>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => address(v, &format!("{within}.{key}")).map(Some),
    }
}

/// `obj.key`, which must be present.
fn field<'a>(obj: &'a Map<String, Value>, key: &str, within: &str) -> Result<&'a Value, String> {
    obj.get(key)
        .ok_or_else(|| format!("typed data: `{within}.{key}` is missing"))
}

/// `obj.key` as an object.
fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    within: &str,
) -> Result<&'a Map<String, Value>, String> {
    field(obj, key, within)?
        .as_object()
        .ok_or_else(|| format!("typed data: `{within}.{key}` must be an object"))
}

/// `obj.key` as an array of objects.
fn objects<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    within: &str,
) -> Result<Vec<&'a Map<String, Value>>, String> {
    let bad = || format!("typed data: `{within}.{key}` must be an array of objects");
    field(obj, key, within)?
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_object().ok_or_else(bad))
        .collect()
}

/// The effects of the permits Valet knows.
fn effects(
    primary_type: &str,
    domain_name: Option<&str>,
    verifying_contract: Option<Address>,
    m: &Map<String, Value>,
    wallet: Address,
) -> Result<Vec<Effect>, String> {
    let permit = |token, amount, spender| Effect {
        asset: Asset::Token(token),
        amount,
        kind: EffectKind::Permit,
        counterparty: spender,
    };
    let permit2_token = |o: &Map<String, Value>, within: &str| -> Result<(Address, U256), String> {
        let token = address(field(o, "token", within)?, &format!("{within}.token"))?;
        let amount = uint(field(o, "amount", within)?, &format!("{within}.amount"))?;
        Ok((token, permit2::allowance(amount)))
    };
    match (primary_type, domain_name) {
        ("Permit", _) if m.contains_key("owner") || m.contains_key("value") => {
            let owner = address(field(m, "owner", "message")?, "message.owner")?;
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            let value = uint(field(m, "value", "message")?, "message.value")?;
            let token = verifying_contract
                .ok_or("typed data: a `Permit` needs `domain.verifyingContract`")?;
            Ok(if owner == wallet {
                vec![permit(token, value, spender)]
            } else {
                vec![]
            })
        }
        ("Permit", _) if m.contains_key("holder") || m.contains_key("allowed") => {
            let holder = address(field(m, "holder", "message")?, "message.holder")?;
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            let allowed = field(m, "allowed", "message")?
                .as_bool()
                .ok_or("typed data: `message.allowed` must be a boolean")?;
            let token = verifying_contract
                .ok_or("typed data: a `Permit` needs `domain.verifyingContract`")?;
            let amount = if allowed { U256::MAX } else { U256::ZERO };
            Ok(if holder == wallet {
                vec![permit(token, amount, spender)]
            } else {
                vec![]
            })
        }
        ("PermitSingle", Some("Permit2")) => {
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            let (token, amount) =
                permit2_token(object(m, "details", "message")?, "message.details")?;
            Ok(vec![permit(token, amount, spender)])
        }
        ("PermitBatch", Some("Permit2")) => {
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            objects(m, "details", "message")?
                .into_iter()
                .map(|d| permit2_token(d, "message.details[]").map(|(t, a)| permit(t, a, spender)))
                .collect()
        }
        ("PermitTransferFrom" | "PermitWitnessTransferFrom", Some("Permit2")) => {
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            let (token, amount) =
                permit2_token(object(m, "permitted", "message")?, "message.permitted")?;
            Ok(vec![permit(token, amount, spender)])
        }
        ("PermitBatchTransferFrom" | "PermitBatchWitnessTransferFrom", Some("Permit2")) => {
            let spender = address(field(m, "spender", "message")?, "message.spender")?;
            objects(m, "permitted", "message")?
                .into_iter()
                .map(|p| {
                    permit2_token(p, "message.permitted[]").map(|(t, a)| permit(t, a, spender))
                })
                .collect()
        }
        _ => Ok(Vec::new()),
    }
}
