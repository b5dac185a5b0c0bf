//! Amounts, times and functions as a person reads them: `0.05 ETH`, `900 tUSD`,
//! `2026-12-04T18:00:00Z`, `transfer(address,uint256)`. Machine output (`--json`) keeps base
//! units, unix seconds and selectors.

use alloy::primitives::{Address, Bytes, U256, keccak256, utils::format_units};
use alloy::sol_types::SolValue as _;
use std::collections::HashMap;
use std::time::Duration;

use crate::home::Home;

/// Functions often named in policies, so that their selectors read as names even when the
/// policy at hand does not spell them out.
const KNOWN: &[&str] = &[
    "transfer(address,uint256)",
    "approve(address,uint256)",
    "transferFrom(address,address,uint256)",
    "increaseAllowance(address,uint256)",
    "setApprovalForAll(address,bool)",
    "safeTransferFrom(address,address,uint256)",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
    "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
    "swapExactETHForTokens(uint256,address[],address,uint256)",
    "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
    "swapETHForExactTokens(uint256,address[],address,uint256)",
    "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
    "deposit()",
    "withdraw(uint256)",
    "multicall(bytes[])",
];

/// Names tokens (symbol and decimals, read from the chain once each) and functions.
pub(crate) struct Units {
    upstream: Option<valet_chain::Upstream>,
    tokens: HashMap<Address, Option<(String, u8)>>,
    functions: HashMap<String, String>,
}

impl Units {
    /// Units for `home`'s node (amounts of tokens stay in base units if it does not answer)
    /// and the functions named in `policies` (TOML texts) besides the well-known ones.
    pub(crate) async fn new(home: &Home, policies: &[&str]) -> Self {
        let options = valet_chain::HttpOptions {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            ca_file: home.config.rpc_ca_file.clone(),
        };
        let upstream = valet_chain::Upstream::connect_with(&home.config.rpc_url, &options)
            .await
            .ok();
        let mut functions = HashMap::new();
        let named = policies.iter().flat_map(|p| signatures(p));
        for sig in KNOWN.iter().map(|s| s.to_string()).chain(named) {
            let selector = format!(
                "0x{}",
                alloy::primitives::hex::encode(&keccak256(&sig)[..4])
            );
            functions.insert(selector, sig);
        }
        Self {
            upstream,
            tokens: HashMap::new(),
            functions,
        }
    }

    /// `base` units of `asset` (`native` or a token address) as `1.5 ETH` / `900 tUSD`; base
    /// units with the token's address when its symbol cannot be read.
    pub(crate) async fn amount(&mut self, asset: &str, base: &str) -> String {
        let Ok(value) = base.parse::<U256>() else {
            return base.to_string();
        };
        if asset == "native" {
            return decimal(value, 18, "ETH");
        }
        let Ok(token) = asset.parse::<Address>() else {
            return format!("{base} {asset}");
        };
        match self.token(token).await {
            Some((symbol, decimals)) => decimal(value, decimals, &symbol),
            None => format!("{base} (base units of {token})"),
        }
    }

    /// `0x12345678` as `name(types)` when known, else as it is.
    pub(crate) fn function(&self, selector: &str) -> String {
        self.functions
            .get(&selector.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| selector.to_string())
    }

    async fn token(&mut self, token: Address) -> Option<(String, u8)> {
        if let Some(known) = self.tokens.get(&token) {
            return known.clone();
        }
        let found = match &self.upstream {
            Some(up) => read_token(up, token).await,
            None => None,
        };
        self.tokens.insert(token, found.clone());
        found
    }
}

/// `symbol()` and `decimals()` of an ERC-20.
async fn read_token(up: &valet_chain::Upstream, token: Address) -> Option<(String, u8)> {
    // symbol() = 0x95d89b41, decimals() = 0x313ce567
    let symbol = up
        .call(token, &Bytes::from_static(&[0x95, 0xd8, 0x9b, 0x41]))
        .await
        .ok()?;
    let decimals = up
        .call(token, &Bytes::from_static(&[0x31, 0x3c, 0xe5, 0x67]))
        .await
        .ok()?;
    let symbol = String::abi_decode(&symbol).ok()?;
    let decimals = u8::try_from(U256::abi_decode(&decimals).ok()?).ok()?;
    let printable = !symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_graphic());
    printable.then_some((symbol, decimals))
}

/// `value / 10^decimals` without trailing zeros, then the unit.
pub(crate) fn decimal(value: U256, decimals: u8, unit: &str) -> String {
    let text = format_units(value, decimals).unwrap_or_else(|_| value.to_string());
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text} {unit}")
}

/// Unix seconds as RFC 3339 (UTC); the number itself if out of range.
pub(crate) fn rfc3339(secs: &serde_json::Value) -> String {
    secs.as_i64()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| secs.to_string(), |t| t.to_string())
}

/// An RFC 3339 time to the second (`2026-12-04T18:00:00Z`); anything else as it is.
pub(crate) fn seconds(text: &str) -> String {
    text.parse::<jiff::Timestamp>().map_or_else(
        |_| text.to_string(),
        |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Every function signature written in a policy's rules (`functions = […]`).
fn signatures(policy_toml: &str) -> Vec<String> {
    let Ok(table) = policy_toml.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect(&toml::Value::Table(table), &mut out);
    out
}

fn collect(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                if k == "functions"
                    && let Some(list) = v.as_array()
                {
                    out.extend(
                        list.iter()
                            .filter_map(|s| s.as_str())
                            .map(|s| s.replace(' ', "")),
                    );
                } else {
                    collect(v, out);
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_decimals() {
        let wei = U256::from(60_000_000_000_000_000u64);
        assert_eq!(decimal(wei, 18, "ETH"), "0.06 ETH");
        assert_eq!(decimal(U256::from(900_000_000u64), 6, "tUSD"), "900 tUSD");
        assert_eq!(decimal(U256::from(1_500_000u64), 6, "tUSD"), "1.5 tUSD");
        assert_eq!(decimal(U256::ZERO, 18, "ETH"), "0 ETH");
        assert_eq!(
            rfc3339(&serde_json::json!(1796405104)),
            "2026-12-04T17:25:04Z"
        );
        assert_eq!(
            seconds("2026-12-04T19:17:50.507157852Z"),
            "2026-12-04T19:17:50Z"
        );
        assert_eq!(seconds("k1a2b3c4d5e6f"), "k1a2b3c4d5e6f");
    }

    #[test]
    fn signatures_come_from_the_rules() {
        let sigs = signatures(
            "name='x'\n[[allow]]\ntarget='0x01'\nfunctions=['foo(uint256)', 'bar(address, bool)']\n[[deny]]\nfunctions=['baz()']\n",
        );
        assert_eq!(sigs, ["foo(uint256)", "bar(address,bool)", "baz()"]);
    }
}
