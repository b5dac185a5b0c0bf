//! Normalization: a JSON-RPC method and its params become a [`Request`], or a
//! [`RequestError`] (the JSON-RPC `-32602` invalid-params case).

use crate::decode::{TypedDataSummary, decode_typed_data};
use alloy_primitives::{Address, Bytes, U256};
use serde_json::Value;

/// Params that do not describe a valid request (JSON-RPC `-32602`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid params: {0}")]
pub struct RequestError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, RequestError> {
    Err(RequestError(msg.into()))
}

/// Read methods passed to the upstream node unchanged.
pub const READ_METHODS: &[&str] = &[
    "eth_call",
    "eth_estimateGas",
    "eth_getBalance",
    "eth_blockNumber",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_getCode",
    "eth_getLogs",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_getBlockByNumber",
];

/// Methods Valet answers itself without signing.
pub const LOCAL_METHODS: &[&str] = &[
    "eth_accounts",
    "eth_requestAccounts",
    "eth_chainId",
    "net_version",
    "valet_getPermissions",
];

/// A transaction an agent asks Valet to sign (`eth_sendTransaction` params).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxRequest {
    /// Target; `None` creates a contract.
    pub to: Option<Address>,
    /// Native value in wei.
    pub value: U256,
    /// Calldata (`data` or `input`).
    pub data: Bytes,
    /// Gas limit, when given.
    pub gas: Option<u64>,
    /// `maxFeePerGas` (or legacy `gasPrice`), when given.
    pub max_fee_per_gas: Option<u128>,
    /// `maxPriorityFeePerGas`, when given.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Nonce, when given.
    pub nonce: Option<u64>,
    /// Chain id, when given.
    pub chain_id: Option<u64>,
    /// Whether the legacy `gasPrice` form was used.
    pub legacy: bool,
    /// Number of EIP-7702 authorizations attached (`authorizationList`).
    pub authorizations: usize,
}

/// A normalized agent request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Answered by Valet without signing (`eth_accounts`, `eth_chainId`, `valet_getPermissions` …).
    Local(&'static str),
    /// Passed to the upstream node (`eth_call`, `eth_getBalance` …).
    Read(&'static str),
    /// `eth_sendTransaction` / `wallet_sendTransaction` (`send = true`) or `eth_signTransaction`.
    Transaction {
        /// Broadcast after signing.
        send: bool,
        /// The transaction.
        tx: TxRequest,
    },
    /// `eth_signTypedData_v4` / `eth_signTypedData`.
    TypedData(Box<TypedDataSummary>),
    /// `personal_sign`: the message bytes.
    PersonalSign(Bytes),
    /// `eth_sign`: always denied.
    EthSign,
    /// `eth_sendRawTransaction`: denied, agents sign through Valet.
    SendRawTransaction,
    /// A method Valet does not support (JSON-RPC `-32601`).
    Unsupported,
}

impl Request {
    /// Normalizes a JSON-RPC call made for `wallet`. `params` may be absent (`Value::Null`).
    pub fn from_json_rpc(
        method: &str,
        params: &Value,
        wallet: Address,
    ) -> Result<Self, RequestError> {
        if let Some(m) = LOCAL_METHODS.iter().find(|m| **m == method) {
            return Ok(Self::Local(m));
        }
        if let Some(m) = READ_METHODS.iter().find(|m| **m == method) {
            return Ok(Self::Read(m));
        }
        let list = || match params {
            Value::Array(items) => Ok(items.as_slice()),
            _ => bad(format!("{method} takes an array of params")),
        };
        Ok(match method {
            "eth_sendTransaction" | "wallet_sendTransaction" | "eth_signTransaction" => {
                let Some(Value::Object(tx)) = list()?.first() else {
                    return bad(format!(
                        "{method} takes a transaction object as its first param"
                    ));
                };
                Self::Transaction {
                    send: method != "eth_signTransaction",
                    tx: parse_tx(tx, wallet)?,
                }
            }
            "eth_signTypedData_v4" | "eth_signTypedData" => {
                let items = list()?;
                let (address, data) = match items {
                    [a, d] if a.is_string() && is_address_like(a) => (a, d),
                    [d, a] if is_address_like(a) => (a, d),
                    _ => return bad(format!("{method} takes [address, typedData]")),
                };
                check_signer(address, wallet)?;
                Self::TypedData(Box::new(
                    decode_typed_data(data, wallet).map_err(RequestError)?,
                ))
            }
            "personal_sign" => {
                let items = list()?;
                let (message, address) = match items {
                    [m, a] | [m, a, _] if is_address_like(a) => (m, a),
                    [a, m] | [a, m, _] if is_address_like(a) => (m, a),
                    _ => return bad("personal_sign takes [message, address]"),
                };
                check_signer(address, wallet)?;
                let Some(text) = message.as_str() else {
                    return bad("personal_sign: message must be a string");
                };
                Self::PersonalSign(match text.strip_prefix("0x") {
                    Some(hex) => alloy_primitives::hex::decode(hex)
                        .map_err(|_| {
                            RequestError("personal_sign: message is not valid hex".into())
                        })?
                        .into(),
                    None => Bytes::copy_from_slice(text.as_bytes()),
                })
            }
            "eth_sign" => Self::EthSign,
            "eth_sendRawTransaction" => Self::SendRawTransaction,
            _ => Self::Unsupported,
        })
    }

    /// Whether answering needs the wallet's signature.
    pub fn is_signing(&self) -> bool {
        matches!(
            self,
            Self::Transaction { .. } | Self::TypedData(_) | Self::PersonalSign(_) | Self::EthSign
        )
    }
}

fn is_address_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 42 && s.starts_with("0x") && s.parse::<Address>().is_ok())
}

fn check_signer(v: &Value, wallet: Address) -> Result<(), RequestError> {
    match v.as_str().and_then(|s| s.parse::<Address>().ok()) {
        Some(a) if a == wallet => Ok(()),
        _ => bad(format!("the signer must be the key's wallet {wallet}")),
    }
}

fn parse_tx(
    tx: &serde_json::Map<String, Value>,
    wallet: Address,
) -> Result<TxRequest, RequestError> {
    let mut out = TxRequest::default();
    for (key, v) in tx {
        match key.as_str() {
            "from" if address(key, v)? != wallet => {
                return bad(format!("`from` must be the key's wallet {wallet}"));
            }
            "to" if v.is_null() => out.to = None,
            "to" => out.to = Some(address(key, v)?),
            "value" => out.value = quantity(key, v)?,
            "data" | "input" => {
                let data = bytes(key, v)?;
                if !out.data.is_empty() && out.data != data {
                    return bad("`data` and `input` differ");
                }
                out.data = data;
            }
            "gas" | "gasLimit" => out.gas = Some(small(key, v)?),
            "gasPrice" => {
                out.max_fee_per_gas = Some(small(key, v)?);
                out.legacy = true;
            }
            "maxFeePerGas" => out.max_fee_per_gas = Some(small(key, v)?),
            "maxPriorityFeePerGas" => out.max_priority_fee_per_gas = Some(small(key, v)?),
            "nonce" => out.nonce = Some(small(key, v)?),
            "chainId" => out.chain_id = Some(small(key, v)?),
            "type" => {
                let t: u8 = small(key, v)?;
                if t > 4 || t == 3 {
                    return bad(format!("transaction type {t} is not supported"));
                }
            }
            "accessList" if !v.is_array() && !v.is_null() => {
                return bad("`accessList` must be an array");
            }
            "authorizationList" => match v {
                Value::Array(a) => out.authorizations = a.len(),
                Value::Null => {}
                _ => return bad("`authorizationList` must be an array"),
            },
            "blobVersionedHashes" | "maxFeePerBlobGas" | "blobs" | "sidecar" => {
                return bad("blob transactions are not supported");
            }
            _ => {}
        }
    }
    if tx.contains_key("gasPrice") && tx.contains_key("maxFeePerGas") {
        return bad("give either gasPrice or maxFeePerGas, not both");
    }
    Ok(out)
}

fn address(key: &str, v: &Value) -> Result<Address, RequestError> {
    v.as_str()
        .filter(|s| s.len() == 42)
        .and_then(|s| s.parse::<Address>().ok())
        .ok_or_else(|| RequestError(format!("`{key}` must be a 0x-prefixed 20-byte address")))
}

/// A JSON-RPC quantity: a 0x hex string (a plain JSON integer or decimal string is accepted too).
fn quantity(key: &str, v: &Value) -> Result<U256, RequestError> {
    let err = || RequestError(format!("`{key}` must be a hex quantity like \"0x1\""));
    match v {
        Value::String(s) => match s.strip_prefix("0x") {
            Some("") => Err(err()),
            Some(hex) if hex.len() <= 64 => U256::from_str_radix(hex, 16).map_err(|_| err()),
            Some(_) => Err(err()),
            None if !s.is_empty() && s.len() <= 78 && s.bytes().all(|b| b.is_ascii_digit()) => {
                U256::from_str_radix(s, 10).map_err(|_| err())
            }
            None => Err(err()),
        },
        Value::Number(n) => n.as_u64().map(U256::from).ok_or_else(err),
        _ => Err(err()),
    }
}

fn small<T: TryFrom<U256>>(key: &str, v: &Value) -> Result<T, RequestError> {
    T::try_from(quantity(key, v)?).map_err(|_| RequestError(format!("`{key}` is too large")))
}

fn bytes(key: &str, v: &Value) -> Result<Bytes, RequestError> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|hex| alloy_primitives::hex::decode(hex).ok())
        .map(Bytes::from)
        .ok_or_else(|| RequestError(format!("`{key}` must be 0x-prefixed hex bytes")))
}
