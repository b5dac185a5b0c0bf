//! EIP-712 typed data (`eth_signTypedData_v4`): structure checks and the effects of the
//! signatures Valet knows to move or expose tokens (EIP-2612 and DAI permits, EIP-3009
//! transfers by authorization, Permit2 allowance and signature transfers).

use super::{Asset, Effect, EffectKind, MAX_EFFECTS, permit2};
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
    /// What a signature grants: [`EffectKind::Permit`] for allowances (EIP-2612 and DAI
    /// `Permit`, Permit2's `PermitSingle` and `PermitBatch`), [`EffectKind::Transfer`] for
    /// transfers by signature (EIP-3009 `TransferWithAuthorization` and
    /// `ReceiveWithAuthorization`, Permit2's `PermitTransferFrom`, `PermitBatchTransferFrom`
    /// and their witness forms), when the wallet is the one who pays; none otherwise.
    pub effects: Vec<Effect>,
    /// Whether the message is one of the forms above (or EIP-3009's harmless
    /// `CancelAuthorization`), declared with its exact fields, so that [`Self::effects`] is
    /// everything it can move. A token or Permit2 may honour other forms Valet cannot count.
    pub recognised: bool,
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
    // Only a declared field is signed: an undeclared `spender` key is not part of the message.
    let declares_spender = types[primary_type].as_array().is_some_and(|fields| {
        fields.iter().any(|f| {
            f.get("name").and_then(Value::as_str) == Some("spender")
                && f.get("type").and_then(Value::as_str) == Some("address")
        })
    });
    let spender = if declares_spender {
        optional_address(message, "spender", "message")?
    } else {
        None
    };

    let (effects, recognised) = effects(
        types,
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
        recognised,
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

/// EIP-2612 `Permit`.
const EIP2612_PERMIT: &[(&str, &str)] = &[
    ("owner", "address"),
    ("spender", "address"),
    ("value", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
];
/// DAI's `Permit`.
const DAI_PERMIT: &[(&str, &str)] = &[
    ("holder", "address"),
    ("spender", "address"),
    ("nonce", "uint256"),
    ("expiry", "uint256"),
    ("allowed", "bool"),
];
/// EIP-3009 `TransferWithAuthorization` and `ReceiveWithAuthorization` (same fields).
const EIP3009_TRANSFER: &[(&str, &str)] = &[
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("validAfter", "uint256"),
    ("validBefore", "uint256"),
    ("nonce", "bytes32"),
];
/// EIP-3009 `CancelAuthorization`: only cancels an unused authorization.
const EIP3009_CANCEL: &[(&str, &str)] = &[("authorizer", "address"), ("nonce", "bytes32")];
/// Permit2's `PermitDetails`.
const PERMIT_DETAILS: &[(&str, &str)] = &[
    ("token", "address"),
    ("amount", "uint160"),
    ("expiration", "uint48"),
    ("nonce", "uint48"),
];
/// Permit2's `PermitSingle`.
const PERMIT_SINGLE: &[(&str, &str)] = &[
    ("details", "PermitDetails"),
    ("spender", "address"),
    ("sigDeadline", "uint256"),
];
/// Permit2's `PermitBatch`.
const PERMIT_BATCH: &[(&str, &str)] = &[
    ("details", "PermitDetails[]"),
    ("spender", "address"),
    ("sigDeadline", "uint256"),
];
/// Permit2's `TokenPermissions`.
const TOKEN_PERMISSIONS: &[(&str, &str)] = &[("token", "address"), ("amount", "uint256")];
/// Permit2's `PermitTransferFrom` (the witness form adds one field of any name and type).
const PERMIT_TRANSFER_FROM: &[(&str, &str)] = &[
    ("permitted", "TokenPermissions"),
    ("spender", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
];
/// Permit2's `PermitBatchTransferFrom` (the witness form adds one field of any name and type).
const PERMIT_BATCH_TRANSFER_FROM: &[(&str, &str)] = &[
    ("permitted", "TokenPermissions[]"),
    ("spender", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
];

/// Whether `types[name]` declares exactly `fields` (names and types, in order), followed by
/// `extra` more fields of any name and type. What is signed is the declared struct: a message
/// key that is not one of its fields is not part of the signature.
fn declares(types: &Map<String, Value>, name: &str, fields: &[(&str, &str)], extra: usize) -> bool {
    let Some(list) = types.get(name).and_then(Value::as_array) else {
        return false;
    };
    list.len() == fields.len() + extra
        && list.iter().zip(fields).all(|(f, (n, t))| {
            f.get("name").and_then(Value::as_str) == Some(n)
                && f.get("type").and_then(Value::as_str) == Some(t)
        })
}

/// The effects of the signatures Valet knows, read only from the structs they are signed as,
/// and whether the message is one of them.
fn effects(
    types: &Map<String, Value>,
    primary_type: &str,
    domain_name: Option<&str>,
    verifying_contract: Option<Address>,
    m: &Map<String, Value>,
    wallet: Address,
) -> Result<(Vec<Effect>, bool), String> {
    let effect = |kind, token, amount, counterparty| Effect {
        asset: Asset::Token(token),
        amount,
        kind,
        counterparty,
    };
    let permit = |token, amount, spender| effect(EffectKind::Permit, token, amount, spender);
    let permit2_token = |o: &Map<String, Value>, within: &str| -> Result<(Address, U256), String> {
        let token = address(field(o, "token", within)?, &format!("{within}.token"))?;
        let amount = uint(field(o, "amount", within)?, &format!("{within}.amount"))?;
        Ok((token, permit2::allowance(amount)))
    };
    let is =
        |name: &str, fields: &[(&str, &str)], extra: usize| declares(types, name, fields, extra);
    // Permit2's structs, with the struct they nest; the witness forms add one field.
    let permit2 = domain_name == Some("Permit2");
    let witness = usize::from(primary_type.contains("Witness"));
    let with_details = permit2 && is("PermitDetails", PERMIT_DETAILS, 0);
    let with_permissions = permit2 && is("TokenPermissions", TOKEN_PERMISSIONS, 0);
    let spender = || address(field(m, "spender", "message")?, "message.spender");
    let token = || {
        verifying_contract.ok_or_else(|| {
            format!("typed data: a `{primary_type}` needs `domain.verifyingContract`")
        })
    };
    // A Permit2 signature transfer pays whoever the spender names: all of it is outflow.
    let signature_transfers = |permitted: Vec<&Map<String, Value>>| {
        let spender = spender()?;
        bounded(permitted)?
            .into_iter()
            .map(|p| {
                permit2_token(p, "message.permitted")
                    .map(|(t, a)| effect(EffectKind::Transfer, t, a, spender))
            })
            .collect::<Result<Vec<_>, String>>()
    };
    let effects = match primary_type {
        "Permit" if is("Permit", EIP2612_PERMIT, 0) => {
            let owner = address(field(m, "owner", "message")?, "message.owner")?;
            let spender = spender()?;
            let value = uint(field(m, "value", "message")?, "message.value")?;
            let token = token()?;
            if owner == wallet {
                vec![permit(token, value, spender)]
            } else {
                vec![]
            }
        }
        "Permit" if is("Permit", DAI_PERMIT, 0) => {
            let holder = address(field(m, "holder", "message")?, "message.holder")?;
            let spender = spender()?;
            let allowed = field(m, "allowed", "message")?
                .as_bool()
                .ok_or("typed data: `message.allowed` must be a boolean")?;
            let token = token()?;
            let amount = if allowed { U256::MAX } else { U256::ZERO };
            if holder == wallet {
                vec![permit(token, amount, spender)]
            } else {
                vec![]
            }
        }
        "TransferWithAuthorization" | "ReceiveWithAuthorization"
            if is(primary_type, EIP3009_TRANSFER, 0) =>
        {
            let from = address(field(m, "from", "message")?, "message.from")?;
            let to = address(field(m, "to", "message")?, "message.to")?;
            let value = uint(field(m, "value", "message")?, "message.value")?;
            let token = token()?;
            if from == wallet {
                vec![effect(EffectKind::Transfer, token, value, to)]
            } else {
                vec![]
            }
        }
        "CancelAuthorization" if is(primary_type, EIP3009_CANCEL, 0) => {
            address(field(m, "authorizer", "message")?, "message.authorizer")?;
            vec![]
        }
        "PermitSingle" if with_details && is(primary_type, PERMIT_SINGLE, 0) => {
            let spender = spender()?;
            let (token, amount) =
                permit2_token(object(m, "details", "message")?, "message.details")?;
            vec![permit(token, amount, spender)]
        }
        "PermitBatch" if with_details && is(primary_type, PERMIT_BATCH, 0) => {
            let spender = spender()?;
            bounded(objects(m, "details", "message")?)?
                .into_iter()
                .map(|d| permit2_token(d, "message.details[]").map(|(t, a)| permit(t, a, spender)))
                .collect::<Result<_, String>>()?
        }
        "PermitTransferFrom" | "PermitWitnessTransferFrom"
            if with_permissions && is(primary_type, PERMIT_TRANSFER_FROM, witness) =>
        {
            signature_transfers(vec![object(m, "permitted", "message")?])?
        }
        "PermitBatchTransferFrom" | "PermitBatchWitnessTransferFrom"
            if with_permissions && is(primary_type, PERMIT_BATCH_TRANSFER_FROM, witness) =>
        {
            signature_transfers(objects(m, "permitted", "message")?)?
        }
        _ => return Ok((Vec::new(), false)),
    };
    Ok((effects, true))
}

/// `list`, unless it grants more tokens than one request may have effects.
fn bounded<T>(list: Vec<T>) -> Result<Vec<T>, String> {
    if list.len() > MAX_EFFECTS {
        Err(format!(
            "typed data: more than {MAX_EFFECTS} tokens in one permit"
        ))
    } else {
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use serde_json::json;

    /// The EIP712Domain type with every field.
    fn domain_type() -> Value {
        json!([
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"}
        ])
    }

    /// An EIP-2612 permit of USDC by `owner` to ALICE.
    fn eip2612(owner: Address) -> Value {
        json!({
            "types": {
                "EIP712Domain": domain_type(),
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}
                ]
            },
            "primaryType": "Permit",
            "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC.to_string()},
            "message": {
                "owner": owner.to_string(),
                "spender": ALICE.to_string(),
                "value": "1000000",
                "nonce": 0,
                "deadline": "0x6553f100"
            }
        })
    }

    #[test]
    fn eip2612_permit() {
        let summary = decode_typed_data(&eip2612(WALLET), WALLET).unwrap();
        assert_eq!(
            summary,
            TypedDataSummary {
                primary_type: "Permit".into(),
                domain_name: Some("USD Coin".into()),
                chain_id: Some(1),
                verifying_contract: Some(USDC),
                spender: Some(ALICE),
                effects: vec![fx(tok(USDC), u(1_000_000), EffectKind::Permit, ALICE)],
                recognised: true,
            }
        );
        // Someone else's permit grants nothing over the wallet.
        assert!(
            decode_typed_data(&eip2612(BOB), WALLET)
                .unwrap()
                .effects
                .is_empty()
        );
        // The same object as a JSON string (eth_signTypedData_v4 takes either).
        let text = Value::String(eip2612(WALLET).to_string());
        assert_eq!(
            decode_typed_data(&text, WALLET).unwrap(),
            decode_typed_data(&eip2612(WALLET), WALLET).unwrap()
        );
        // The token is the verifying contract: without it there is no telling what is granted.
        let mut v = eip2612(WALLET);
        v["domain"]
            .as_object_mut()
            .unwrap()
            .remove("verifyingContract");
        assert_eq!(
            decode_typed_data(&v, WALLET).unwrap_err(),
            "typed data: a `Permit` needs `domain.verifyingContract`"
        );
        let mut v = eip2612(WALLET);
        v["message"]["value"] = json!("-5");
        assert_eq!(
            decode_typed_data(&v, WALLET).unwrap_err(),
            "typed data: `message.value` must be an unsigned integer"
        );
    }

    #[test]
    fn dai_permit_allowed_is_unlimited() {
        let v = json!({
            "types": {
                "EIP712Domain": domain_type(),
                "Permit": [
                    {"name": "holder", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "expiry", "type": "uint256"},
                    {"name": "allowed", "type": "bool"}
                ]
            },
            "primaryType": "Permit",
            "domain": {"name": "Dai Stablecoin", "version": "1", "chainId": "1", "verifyingContract": DAI.to_string()},
            "message": {"holder": WALLET.to_string(), "spender": ALICE.to_string(), "nonce": 3, "expiry": 0, "allowed": true}
        });
        let summary = decode_typed_data(&v, WALLET).unwrap();
        assert_eq!(
            summary.effects,
            vec![fx(tok(DAI), U256::MAX, EffectKind::Permit, ALICE)]
        );
    }

    #[test]
    fn permit2_permit_single() {
        let v = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "PermitSingle": [
                    {"name": "details", "type": "PermitDetails"},
                    {"name": "spender", "type": "address"},
                    {"name": "sigDeadline", "type": "uint256"}
                ],
                "PermitDetails": [
                    {"name": "token", "type": "address"},
                    {"name": "amount", "type": "uint160"},
                    {"name": "expiration", "type": "uint48"},
                    {"name": "nonce", "type": "uint48"}
                ]
            },
            "primaryType": "PermitSingle",
            "domain": {"name": "Permit2", "chainId": "0x1", "verifyingContract": PERMIT2.to_string()},
            "message": {
                "details": {
                    "token": USDC.to_string(),
                    "amount": "1461501637330902918203684832716283019655932542975",
                    "expiration": "1700000000",
                    "nonce": "0"
                },
                "spender": UNIVERSAL_ROUTER.to_string(),
                "sigDeadline": "1700000000"
            }
        });
        let summary = decode_typed_data(&v, WALLET).unwrap();
        assert_eq!(summary.domain_name.as_deref(), Some("Permit2"));
        assert_eq!(summary.chain_id, Some(1));
        assert_eq!(summary.verifying_contract, Some(PERMIT2));
        assert_eq!(summary.spender, Some(UNIVERSAL_ROUTER));
        // uint160 max is Permit2's unlimited.
        assert_eq!(
            summary.effects,
            vec![fx(
                tok(USDC),
                U256::MAX,
                EffectKind::Permit,
                UNIVERSAL_ROUTER
            )]
        );
    }

    #[test]
    fn permit2_batch_witness_transfer() {
        let v = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "PermitBatchWitnessTransferFrom": [
                    {"name": "permitted", "type": "TokenPermissions[]"},
                    {"name": "spender", "type": "address"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                    {"name": "witness", "type": "Order"}
                ],
                "TokenPermissions": [
                    {"name": "token", "type": "address"},
                    {"name": "amount", "type": "uint256"}
                ],
                "Order": [
                    {"name": "recipient", "type": "address"},
                    {"name": "minOut", "type": "uint256"}
                ]
            },
            "primaryType": "PermitBatchWitnessTransferFrom",
            "domain": {"name": "Permit2", "chainId": 8453, "verifyingContract": PERMIT2.to_string()},
            "message": {
                "permitted": [
                    {"token": USDC.to_string(), "amount": 1000},
                    {"token": DAI.to_string(), "amount": "0x7d0"}
                ],
                "spender": ALICE.to_string(),
                "nonce": "7",
                "deadline": "1700000000",
                "witness": {"recipient": WALLET.to_string(), "minOut": "1"}
            }
        });
        let summary = decode_typed_data(&v, WALLET).unwrap();
        assert_eq!(summary.chain_id, Some(8453));
        assert_eq!(summary.spender, Some(ALICE));
        assert_eq!(
            summary.effects,
            vec![
                fx(tok(USDC), u(1000), EffectKind::Transfer, ALICE),
                fx(tok(DAI), u(2000), EffectKind::Transfer, ALICE)
            ]
        );
    }

    #[test]
    fn other_forms_have_no_effects() {
        let v = json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}],
                "Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}]
            },
            "primaryType": "Mail",
            "domain": {"name": "Ether Mail"},
            "message": {"to": ALICE.to_string(), "contents": "hi"}
        });
        let summary = decode_typed_data(&v, WALLET).unwrap();
        assert_eq!(summary.primary_type, "Mail");
        assert_eq!(
            (
                summary.chain_id,
                summary.verifying_contract,
                summary.spender
            ),
            (None, None, None)
        );
        assert!(summary.effects.is_empty());
        assert!(!summary.recognised);
    }

    /// An EIP-3009 authorization of `value` USDC from `from` to ALICE.
    fn eip3009(primary_type: &str, from: Address, value: &str) -> Value {
        json!({
            "types": {
                "EIP712Domain": domain_type(),
                primary_type: [
                    {"name": "from", "type": "address"},
                    {"name": "to", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "validAfter", "type": "uint256"},
                    {"name": "validBefore", "type": "uint256"},
                    {"name": "nonce", "type": "bytes32"}
                ]
            },
            "primaryType": primary_type,
            "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC.to_string()},
            "message": {
                "from": from.to_string(), "to": ALICE.to_string(), "value": value,
                "validAfter": 0, "validBefore": "1800000000", "nonce": format!("0x{}", "11".repeat(32))
            }
        })
    }

    #[test]
    fn eip3009_authorizations_are_transfers() {
        for primary in ["TransferWithAuthorization", "ReceiveWithAuthorization"] {
            let summary =
                decode_typed_data(&eip3009(primary, WALLET, "5000000000"), WALLET).unwrap();
            assert!(summary.recognised);
            assert_eq!(
                summary.effects,
                vec![fx(tok(USDC), u(5_000_000_000), EffectKind::Transfer, ALICE)]
            );
            // Someone else's authorization moves nothing of the wallet's, but is understood.
            let other = decode_typed_data(&eip3009(primary, BOB, "1"), WALLET).unwrap();
            assert!(other.recognised && other.effects.is_empty());
        }
        // A look-alike with a field retyped is not the struct the token verifies.
        let mut v = eip3009("TransferWithAuthorization", WALLET, "1");
        v["types"]["TransferWithAuthorization"][2]["type"] = json!("uint128");
        let summary = decode_typed_data(&v, WALLET).unwrap();
        assert!(!summary.recognised && summary.effects.is_empty());
        let cancel = json!({
            "types": {
                "EIP712Domain": domain_type(),
                "CancelAuthorization": [
                    {"name": "authorizer", "type": "address"},
                    {"name": "nonce", "type": "bytes32"}
                ]
            },
            "primaryType": "CancelAuthorization",
            "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC.to_string()},
            "message": {"authorizer": WALLET.to_string(), "nonce": format!("0x{}", "11".repeat(32))}
        });
        let summary = decode_typed_data(&cancel, WALLET).unwrap();
        assert!(summary.recognised && summary.effects.is_empty());
    }

    #[test]
    fn permits_are_read_only_from_their_exact_structs() {
        // The Uniswap V3 position manager's Permit(spender, tokenId, nonce, deadline), with
        // `owner` and `value` added to the message: not fields of the signed struct.
        let npm = json!({
            "types": {
                "EIP712Domain": domain_type(),
                "Permit": [
                    {"name": "spender", "type": "address"},
                    {"name": "tokenId", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}
                ]
            },
            "primaryType": "Permit",
            "domain": {"name": "Uniswap V3 Positions NFT-V1", "version": "1", "chainId": 1, "verifyingContract": NFT.to_string()},
            "message": {"spender": ALICE.to_string(), "tokenId": "1", "nonce": "0", "deadline": "1", "owner": WALLET.to_string(), "value": "1"}
        });
        let summary = decode_typed_data(&npm, WALLET).unwrap();
        assert!(summary.effects.is_empty());
        assert_eq!(summary.spender, Some(ALICE));
        // EIP-2612's fields in another order, or with another type, or one more.
        type Edit = fn(&mut Value);
        let edits: [Edit; 3] = [
            |v| v["types"]["Permit"].as_array_mut().unwrap().swap(2, 3),
            |v| v["types"]["Permit"][2]["type"] = json!("uint128"),
            |v| {
                let extra = json!({"name": "memo", "type": "string"});
                v["types"]["Permit"].as_array_mut().unwrap().push(extra);
            },
        ];
        for edit in edits {
            let mut v = eip2612(WALLET);
            edit(&mut v);
            assert!(
                decode_typed_data(&v, WALLET).unwrap().effects.is_empty(),
                "{v}"
            );
        }
    }

    /// A Permit2 `PermitWitnessTransferFrom` of 1000 USDC to ALICE, with `witness_fields`
    /// after the four of `PermitTransferFrom`.
    fn permit2_witness(witness_fields: Vec<Value>) -> Value {
        let mut fields = vec![
            json!({"name": "permitted", "type": "TokenPermissions"}),
            json!({"name": "spender", "type": "address"}),
            json!({"name": "nonce", "type": "uint256"}),
            json!({"name": "deadline", "type": "uint256"}),
        ];
        fields.extend(witness_fields);
        json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "PermitWitnessTransferFrom": fields,
                "TokenPermissions": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}],
                "Order": [{"name": "minOut", "type": "uint256"}]
            },
            "primaryType": "PermitWitnessTransferFrom",
            "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2.to_string()},
            "message": {
                "permitted": {"token": USDC.to_string(), "amount": "1000"},
                "spender": ALICE.to_string(), "nonce": "1", "deadline": "1",
                "witness": {"minOut": "1"}, "extra": {"minOut": "1"}
            }
        })
    }

    #[test]
    fn permit2_structs_are_read_only_when_canonical() {
        let witness = json!({"name": "witness", "type": "Order"});
        let v = permit2_witness(vec![witness.clone()]);
        assert_eq!(
            decode_typed_data(&v, WALLET).unwrap().effects,
            vec![fx(tok(USDC), u(1000), EffectKind::Transfer, ALICE)]
        );
        // No witness, or two: not the struct Permit2 signs.
        for fields in [
            vec![],
            vec![witness.clone(), json!({"name": "extra", "type": "Order"})],
        ] {
            let v = permit2_witness(fields);
            assert!(decode_typed_data(&v, WALLET).unwrap().effects.is_empty());
        }
        // A TokenPermissions of another shape.
        let mut v = permit2_witness(vec![witness]);
        v["types"]["TokenPermissions"][1]["type"] = json!("uint160");
        assert!(decode_typed_data(&v, WALLET).unwrap().effects.is_empty());
    }

    #[test]
    fn a_permit_of_more_tokens_than_effects_allowed_is_refused() {
        let batch = |n: usize| {
            let details: Vec<Value> = (0..n)
                .map(|_| json!({"token": USDC.to_string(), "amount": "1", "expiration": "1", "nonce": "0"}))
                .collect();
            json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                    "PermitBatch": [
                        {"name": "details", "type": "PermitDetails[]"},
                        {"name": "spender", "type": "address"},
                        {"name": "sigDeadline", "type": "uint256"}
                    ],
                    "PermitDetails": [
                        {"name": "token", "type": "address"},
                        {"name": "amount", "type": "uint160"},
                        {"name": "expiration", "type": "uint48"},
                        {"name": "nonce", "type": "uint48"}
                    ]
                },
                "primaryType": "PermitBatch",
                "domain": {"name": "Permit2", "chainId": 1},
                "message": {"details": details, "spender": ALICE.to_string(), "sigDeadline": "1"}
            })
        };
        let ok = decode_typed_data(&batch(MAX_EFFECTS), WALLET).unwrap();
        assert_eq!(ok.effects.len(), MAX_EFFECTS);
        assert_eq!(
            decode_typed_data(&batch(MAX_EFFECTS + 1), WALLET).unwrap_err(),
            format!("typed data: more than {MAX_EFFECTS} tokens in one permit")
        );
    }

    /// Typed data whose primary type `Root` heads a chain of `n` struct types.
    fn chain(n: usize) -> Value {
        let mut types = Map::new();
        let name = |i: usize| {
            if i == 0 {
                "Root".to_string()
            } else {
                format!("L{i:05}")
            }
        };
        for i in 0..n {
            let mut fields = vec![json!({"name": "x", "type": "uint256"})];
            if i + 1 < n {
                fields.push(json!({"name": "next", "type": format!("{}[]", name(i + 1))}));
            }
            types.insert(name(i), Value::Array(fields));
        }
        json!({"types": types, "primaryType": "Root", "domain": {}, "message": {}})
    }

    #[test]
    fn struct_nesting_deeper_than_16_is_rejected() {
        assert!(decode_typed_data(&chain(16), WALLET).is_ok());
        // `Root` sorts after its chain, so the depth is found through a finished type's height.
        let err = decode_typed_data(&chain(17), WALLET).unwrap_err();
        assert!(
            err.starts_with("typed data: struct types nest deeper than 16 levels"),
            "{err}"
        );
        // Long chains are walked without recursion.
        assert!(decode_typed_data(&chain(20_000), WALLET).is_err());
    }

    #[test]
    fn cyclic_types_are_rejected() {
        let v = json!({
            "types": {
                "A": [{"name": "b", "type": "B"}],
                "B": [{"name": "a", "type": "A[2]"}]
            },
            "primaryType": "A",
            "domain": {},
            "message": {}
        });
        assert!(
            decode_typed_data(&v, WALLET)
                .unwrap_err()
                .contains("(a cycle)")
        );
        let v = json!({"types": {"A": [{"name": "a", "type": "A"}]}, "primaryType": "A", "domain": {}, "message": {}});
        assert_eq!(
            decode_typed_data(&v, WALLET).unwrap_err(),
            "typed data: type `A` refers to itself (a cycle)"
        );
    }

    #[test]
    fn malformed_structures_are_rejected() {
        let base = || eip2612(WALLET);
        type Edit = fn(&mut Value);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |v| v["types"] = json!([]),
                "typed data: `types` must be an object",
            ),
            (
                |v| v["primaryType"] = json!(1),
                "typed data: `primaryType` must be a string",
            ),
            (
                |v| v["primaryType"] = json!("Nope"),
                "typed data: primary type `Nope` is not defined in `types`",
            ),
            (
                |v| v["domain"] = json!("x"),
                "typed data: `domain` must be an object",
            ),
            (
                |v| v["message"] = json!(null),
                "typed data: `message` must be an object",
            ),
            (
                |v| v["types"]["Permit"][0]["type"] = json!("Owner"),
                "typed data: field `Permit.owner` refers to undefined type `Owner`",
            ),
            (
                |v| v["types"]["Permit"][0]["type"] = json!("address[x]"),
                "typed data: field `Permit.owner` has a malformed type `address[x]`",
            ),
            (
                |v| v["types"]["Permit"][0] = json!({"name": "owner"}),
                "typed data: every field of type `Permit` must be {\"name\", \"type\"} strings",
            ),
            (
                |v| v["domain"]["chainId"] = json!("0x10000000000000000"),
                "typed data: `domain.chainId` is too large",
            ),
            (
                |v| v["domain"]["chainId"] = json!(1.5),
                "typed data: `domain.chainId` must be an unsigned integer",
            ),
            (
                |v| v["message"]["spender"] = json!("0x1234"),
                "typed data: `message.spender` must be an address",
            ),
        ];
        for (edit, want) in cases {
            let mut v = base();
            edit(&mut v);
            assert_eq!(decode_typed_data(&v, WALLET).unwrap_err(), want);
        }
        assert!(
            decode_typed_data(&Value::String("{".into()), WALLET)
                .unwrap_err()
                .starts_with("typed data: not valid JSON")
        );
        assert_eq!(
            decode_typed_data(&json!([]), WALLET).unwrap_err(),
            "typed data: must be a JSON object"
        );
    }

    #[test]
    fn type_names() {
        assert_eq!(base_type("Person[2][]"), Some("Person"));
        assert_eq!(base_type("uint256"), Some("uint256"));
        assert_eq!(base_type("a[1]b"), None);
        assert_eq!(base_type("[]"), None);
        for t in [
            "address", "bool", "string", "bytes", "bytes1", "bytes32", "uint8", "uint256", "int128",
        ] {
            assert!(is_atomic(t), "{t}");
        }
        for t in [
            "bytes0", "bytes33", "uint7", "uint264", "uint08", "int", "Address",
        ] {
            assert!(!is_atomic(t), "{t}");
        }
    }
}
