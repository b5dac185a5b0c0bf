//! The upstream node: raw JSON-RPC over HTTP, and the typed calls the signing path needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256, hex};
use serde_json::{Value, json};
use tracing::debug;

use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpOptions};

/// How long one JSON-RPC request to the node may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection to the node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest response body accepted from the node (large `eth_getLogs` answers fit).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The highest gas limit [`gas_with_margin`] returns: a common block gas limit, and the
/// transaction gas cap of EIP-7825 (2^24 ≈ 16.7 M) is below it, so chains that enforce that
/// cap reject an over-large estimate themselves.
pub const GAS_LIMIT_CAP: u64 = 30_000_000;

const TARGET: &str = "valet_chain::upstream";

/// The upstream node, pinned to the chain id it reported at [`Upstream::connect`].
///
/// Cheap to clone (one shared HTTP connection pool). Its `Debug` output and its errors never
/// show the URL, which for hosted nodes usually embeds an API key.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
    chain_id: u64,
}

struct Inner {
    client: HttpClient,
    url: reqwest::Url,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("endpoint", &self.endpoint())
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

/// EIP-1559 fee caps for a transaction about to be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas`: twice the current base fee plus the priority fee, enough to stay
    /// includable while the base fee rises for about six full blocks (12.5 % each, EIP-1559).
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`: the node's suggestion (`eth_maxPriorityFeePerGas`).
    pub max_priority_fee_per_gas: u128,
}

/// The gas limit Valet signs for an `eth_estimateGas` result: `estimate × 1.25 + 50 000`,
/// capped at [`GAS_LIMIT_CAP`].
///
/// The fixed 50 000 covers state that changes between the estimate and inclusion: the classic
/// case is a Uniswap V2 swap estimated in the same second as the pool's last update, which
/// then runs in a later block and writes two cumulative prices from zero (2 × 20 000 more
/// gas; seen here as out-of-gas reverts with a 10 000 margin). The 25 % covers larger calls
/// that grow with state, and the 63/64 rule of EIP-150. Unused gas is refunded, so the margin
/// costs nothing on chain; it makes a spend limit's `gas × maxFeePerGas` count conservative.
pub fn gas_with_margin(estimate: u64) -> u64 {
    let with_margin = u128::from(estimate) * 5 / 4 + 50_000;
    u64::try_from(with_margin)
        .unwrap_or(u64::MAX)
        .min(GAS_LIMIT_CAP)
}

impl Upstream {
    /// Connects to the node at `url` (`http://` or `https://`, credentials allowed in it) and
    /// pins the chain id it reports (`eth_chainId`). Requests time out after
    /// [`REQUEST_TIMEOUT`], connections after [`CONNECT_TIMEOUT`]; TLS trusts the system's
    /// roots.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &HttpOptions::default()).await
    }

    /// [`Upstream::connect`] with explicit timeouts.
    pub async fn connect_with_timeouts(
        url: &str,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self> {
        let options = HttpOptions {
            request_timeout,
            connect_timeout,
            ca_file: None,
        };
        Self::connect_with(url, &options).await
    }

    /// [`Upstream::connect`] with explicit timeouts and trusted roots (`options.ca_file` for
    /// a private node's CA).
    pub async fn connect_with(url: &str, options: &HttpOptions) -> Result<Self> {
        let url = reqwest::Url::parse(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Error::InvalidUrl(format!(
                    "scheme {other:?} is not supported; use http:// or https://"
                )));
            }
        }
        if url.host_str().is_none() {
            return Err(Error::InvalidUrl("no host".into()));
        }
        let client = HttpClient::new(options)?;
        let mut upstream = Self {
            inner: Arc::new(Inner {
                client,
                url,
                next_id: AtomicU64::new(1),
            }),
            chain_id: 0,
        };
        let chain_id = upstream.forward("eth_chainId", &json!([])).await?;
        upstream.chain_id = quantity_u64(&chain_id, "chain id")?;
        let chain_id = upstream.chain_id;
        debug!(target: TARGET, endpoint = %upstream.endpoint(), chain_id, "connected");
        Ok(upstream)
    }

    /// The chain id the node reported when connecting.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The node's scheme, host and port, for logs: never its path, query or credentials
    /// (where API keys live).
    pub fn endpoint(&self) -> String {
        let url = &self.inner.url;
        match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => format!("{}://", url.scheme()),
        }
    }

    /// Sends one JSON-RPC request and returns its `result` (which may be `null`, e.g. a
    /// receipt not found). A JSON-RPC error from the node is [`Error::Node`] with the node's
    /// code, message and data; anything that is not a JSON-RPC response to this request is
    /// [`Error::BadResponse`].
    pub async fn forward(&self, method: &str, params: &Value) -> Result<Value> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = self
            .inner
            .client
            .post(
                &self.inner.url,
                &[],
                body.to_string().into_bytes(),
                MAX_RESPONSE_BYTES,
            )
            .await?;
        let (status, bytes) = (response.status, response.body);
        let parsed = parse_response(&bytes, id);
        if !(200..300).contains(&status) {
            // Some nodes and proxies send a JSON-RPC error with a 4xx/5xx status; keep it.
            if let Err(node @ Error::Node { .. }) = parsed {
                return Err(node);
            }
            return Err(Error::BadResponse(format!("HTTP status {status}")));
        }
        if let Err(e) = &parsed {
            debug!(target: TARGET, method, error = %e, "request failed");
        }
        parsed
    }

    /// The wallet's next nonce including pending transactions
    /// (`eth_getTransactionCount(address, "pending")`).
    pub async fn pending_nonce(&self, address: Address) -> Result<u64> {
        let v = self
            .forward("eth_getTransactionCount", &json!([address, "pending"]))
            .await?;
        quantity_u64(&v, "transaction count")
    }

    /// `eth_estimateGas` for a call from `from` to `to` (`None` deploys `data`) with `value`.
    pub async fn estimate_gas(
        &self,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: &Bytes,
    ) -> Result<u64> {
        let mut call = json!({ "from": from, "value": value, "data": data });
        if let (Some(to), Some(obj)) = (to, call.as_object_mut()) {
            obj.insert("to".into(), json!(to));
        }
        let v = self.forward("eth_estimateGas", &json!([call])).await?;
        quantity_u64(&v, "gas estimate")
    }

    /// `eth_call` against the latest block; returns the call's output.
    pub async fn call(&self, to: Address, data: &Bytes) -> Result<Bytes> {
        let v = self
            .forward("eth_call", &json!([{ "to": to, "data": data }, "latest"]))
            .await?;
        hex_bytes(&v, "call output")
    }

    /// EIP-1559 fees: the base fee (the higher of the latest and the next block's, from
    /// `eth_feeHistory`) × 2 plus the node's priority fee (`eth_maxPriorityFeePerGas`).
    /// See [`Fees`].
    pub async fn fees(&self) -> Result<Fees> {
        let history_params = json!(["0x1", "latest", []]);
        let no_params = json!([]);
        let (history, priority) = tokio::try_join!(
            self.forward("eth_feeHistory", &history_params),
            self.forward("eth_maxPriorityFeePerGas", &no_params),
        )?;
        let base_fees = history
            .get("baseFeePerGas")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::BadResponse(
                    "eth_feeHistory has no baseFeePerGas (is the chain before London?)".into(),
                )
            })?;
        // The entries are the latest block's base fee and the next block's (computed by the
        // node): take the higher, so a fee that is about to rise is covered.
        let mut base_fee = 0u128;
        for fee in base_fees {
            base_fee = base_fee.max(quantity_u128(fee, "base fee")?);
        }
        let priority = quantity_u128(&priority, "priority fee")?;
        Ok(Fees {
            max_fee_per_gas: base_fee.saturating_mul(2).saturating_add(priority),
            max_priority_fee_per_gas: priority,
        })
    }

    /// Broadcasts a signed transaction (`eth_sendRawTransaction`, EIP-2718 encoding) and
    /// returns its hash as the node reported it.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256> {
        let v = self
            .forward(
                "eth_sendRawTransaction",
                &json!([hex::encode_prefixed(raw)]),
            )
            .await?;
        let text = v
            .as_str()
            .ok_or_else(|| Error::BadResponse("transaction hash is not a string".into()))?;
        text.parse()
            .map_err(|_| Error::BadResponse("transaction hash is not 32 hex bytes".into()))
    }

    /// Whether the transaction succeeded (`Some(true)`), reverted (`Some(false)`), or has no
    /// receipt yet (`None`: pending, dropped, or unknown to the node).
    pub async fn receipt_status(&self, hash: B256) -> Result<Option<bool>> {
        let v = self
            .forward("eth_getTransactionReceipt", &json!([hash]))
            .await?;
        if v.is_null() {
            return Ok(None);
        }
        let status = v
            .get("status")
            .ok_or_else(|| Error::BadResponse("receipt has no status".into()))?;
        match quantity_u64(status, "receipt status")? {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            other => Err(Error::BadResponse(format!("receipt status {other}"))),
        }
    }

    /// Polls [`Upstream::receipt_status`] until the transaction is mined or `timeout`
    /// passes ([`Error::NotMined`]). Returns whether it succeeded.
    pub async fn wait_for_receipt(&self, hash: B256, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(ok) = self.receipt_status(hash).await? {
                return Ok(ok);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(Error::NotMined(hash));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

/// Interprets a JSON-RPC response body to the request with `id`.
fn parse_response(body: &[u8], id: u64) -> Result<Value> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::BadResponse(format!("not JSON ({e})")))?;
    let Value::Object(mut obj) = value else {
        return Err(Error::BadResponse("not a JSON-RPC response object".into()));
    };
    match obj.remove("error") {
        None | Some(Value::Null) => {}
        Some(error) => return Err(node_error(error)),
    }
    if obj.get("id") != Some(&json!(id)) {
        return Err(Error::BadResponse(
            "response id does not match the request".into(),
        ));
    }
    obj.remove("result")
        .ok_or_else(|| Error::BadResponse("neither result nor error".into()))
}

/// A JSON-RPC error object as [`Error::Node`]; a malformed one is [`Error::BadResponse`].
fn node_error(error: Value) -> Error {
    let Value::Object(mut e) = error else {
        return Error::BadResponse("error member is not an object".into());
    };
    let Some(code) = e.get("code").and_then(Value::as_i64) else {
        return Error::BadResponse("error object without an integer code".into());
    };
    let message = match e.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Error::BadResponse("error object without a message".into()),
    };
    Error::Node {
        code,
        message,
        data: e.remove("data"),
    }
}

/// A `0x`-prefixed hex quantity (at most 128 bits).
fn quantity_u128(v: &Value, what: &str) -> Result<u128> {
    let bad = || Error::BadResponse(format!("{what} is not a hex quantity"));
    let text = v.as_str().ok_or_else(bad)?;
    let digits = text.strip_prefix("0x").ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 32 {
        return Err(bad());
    }
    u128::from_str_radix(digits, 16).map_err(|_| bad())
}

/// A `0x`-prefixed hex quantity that fits 64 bits.
fn quantity_u64(v: &Value, what: &str) -> Result<u64> {
    u64::try_from(quantity_u128(v, what)?)
        .map_err(|_| Error::BadResponse(format!("{what} does not fit 64 bits")))
}

/// `0x`-prefixed hex data.
fn hex_bytes(v: &Value, what: &str) -> Result<Bytes> {
    let text = v
        .as_str()
        .ok_or_else(|| Error::BadResponse(format!("{what} is not a string")))?;
    text.parse()
        .map_err(|_| Error::BadResponse(format!("{what} is not hex data")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_quarter_plus_fifty_thousand_capped() {
        assert_eq!(gas_with_margin(0), 50_000);
        assert_eq!(gas_with_margin(21_000), 76_250);
        assert_eq!(gas_with_margin(100_000), 175_000);
        assert_eq!(gas_with_margin(25_000_000), GAS_LIMIT_CAP);
        assert_eq!(gas_with_margin(u64::MAX), GAS_LIMIT_CAP);
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_u64(&json!("0x0"), "x").unwrap(), 0);
        assert_eq!(quantity_u64(&json!("0x7a69"), "x").unwrap(), 31337);
        assert_eq!(quantity_u64(&json!("0x00ff"), "x").unwrap(), 255);
        for bad in [
            json!("0x"),
            json!("7a69"),
            json!(7),
            json!(null),
            json!("0xzz"),
            json!("0x1ffffffffffffffff"),
        ] {
            assert!(
                matches!(quantity_u64(&bad, "x"), Err(Error::BadResponse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(br#"{"jsonrpc":"2.0","id":3,"result":"0x1"}"#, 3).unwrap(),
            json!("0x1")
        );
        assert_eq!(
            parse_response(br#"{"jsonrpc":"2.0","id":3,"result":null}"#, 3).unwrap(),
            json!(null)
        );
        match parse_response(br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"nonce too low","data":"0x"}}"#, 3) {
            Err(e @ Error::Node { code: -32000, .. }) => assert!(e.is_nonce_too_low()),
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"<html>"[..],
            br#"[{"jsonrpc":"2.0","id":3,"result":"0x1"}]"#,
            br#"{"jsonrpc":"2.0","id":4,"result":"0x1"}"#,
            br#"{"jsonrpc":"2.0","id":3}"#,
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":"x","message":"m"}}"#,
            br#"{"jsonrpc":"2.0","id":3,"error":"boom"}"#,
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":1}}"#,
        ] {
            assert!(
                matches!(parse_response(bad, 3), Err(Error::BadResponse(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
