//! SPEC section 4, "accounting is exhaustive or it denies", on a real chain: a full-access
//! key with a token cap, whose wallet approved the real Uniswap V2 router for free, cannot move
//! the token past the cap through the router's liquidity functions, the token's other
//! functions, or signatures.

use crate::env::{Env, code, violations};
use alloy::{
    primitives::{Address, U256, hex},
    sol_types::SolCall,
};
use serde_json::{Value, json};
use std::time::Duration;
use valet_chain::contracts::abi::{ITestStablecoin, IUniswapV2Router02};

const STRANGER: Address = Address::with_last_byte(0xcc);
const DEADLINE: u64 = 4_000_000_000;
const TUSD: u64 = 1_000_000;

/// With its gas given, so that what the policy decides is not hidden behind a failed
/// estimate (the sandbox token has no `transferAndCall`, but a real one may).
fn tx(from: Address, to: Address, value: U256, data: Vec<u8>) -> Value {
    let data = hex::encode_prefixed(data);
    json!([{ "from": from, "to": to, "value": value, "data": data, "gas": "0x60000" }])
}

async fn mined(env: &Env, resp: &Value) {
    let hash = resp["result"].as_str().unwrap_or_else(|| panic!("{resp}"));
    let upstream = valet_chain::Upstream::connect(&env.anvil.url())
        .await
        .unwrap();
    let ok = upstream
        .wait_for_receipt(hash.parse().unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(ok, "{hash} reverted");
}

fn add_liquidity(token: Address, amount: u64, to: Address) -> Vec<u8> {
    IUniswapV2Router02::addLiquidityETHCall {
        token,
        amountTokenDesired: U256::from(amount),
        amountTokenMin: U256::ZERO,
        amountETHMin: U256::ZERO,
        to,
        deadline: U256::from(DEADLINE),
    }
    .abi_encode()
}

#[tokio::test]
async fn liquidity_pulled_through_a_free_router_approval_is_counted() {
    let env = Env::start().await;
    let (token, router, pair) = (env.sandbox.token, env.sandbox.router, env.sandbox.pair);
    let (_, key) = env
        .issue(&format!(
            r#"
            name = "full"
            profile = "full-access"
            chains = [31337]
            expires_in = "1h"
            routers = ["{router}"]
            [[limits.spend]]
            asset = "{token}"
            amount = "1000"
            decimals = 6
            window = "24h"
            "#
        ))
        .await;
    let send =
        |to, value, data| env.rpc(&key, "eth_sendTransaction", tx(env.wallet, to, value, data));
    let url = env.anvil.url();
    let lp = |owner| valet_chain::contracts::token_balance(&url, pair, owner);

    // An unlimited approval to the trusted router: free, as swaps through it are counted.
    let approve = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::MAX,
    };
    mined(&env, &send(token, U256::ZERO, approve.abi_encode()).await).await;

    // addLiquidityETH of 5 000 tUSD with the pool's shares minted to a stranger: the router
    // would pull it through the free approval. Counted, so over the cap, and nothing moves.
    let before = env.token_balance(env.wallet).await;
    let eth = U256::from(10u64.pow(17));
    let resp = send(router, eth, add_liquidity(token, 5_000 * TUSD, STRANGER)).await;
    assert_eq!(code(&resp), Some(4001), "{resp}");
    assert_eq!(violations(&resp), ["spend_limit_exceeded"], "{resp}");
    assert_eq!(env.token_balance(env.wallet).await, before);
    assert_eq!(lp(STRANGER).await.unwrap(), U256::ZERO);

    // 300 tUSD: within the cap, mined (the stranger gets the shares), and counted.
    let resp = send(router, eth, add_liquidity(token, 300 * TUSD, STRANGER)).await;
    mined(&env, &resp).await;
    assert!(lp(STRANGER).await.unwrap() > U256::ZERO);
    let spent = before - env.token_balance(env.wallet).await;
    assert!(
        spent > U256::ZERO && spent <= U256::from(300 * TUSD),
        "{spent}"
    );
    let perms = env.rpc(&key, "valet_getPermissions", json!([])).await;
    assert_eq!(
        perms["result"]["limits"]["spend"][0]["remaining"],
        (700 * TUSD).to_string(),
        "{perms}"
    );

    // 800 more through a plain transfer: 300 + 800 > 1 000.
    let transfer = ITestStablecoin::transferCall {
        to: STRANGER,
        amount: U256::from(800 * TUSD),
    };
    let resp = send(token, U256::ZERO, transfer.abi_encode()).await;
    assert_eq!(violations(&resp), ["spend_limit_exceeded"], "{resp}");

    // A function of the capped token that Valet does not count (ERC-677 transferAndCall),
    // and a router function it does not count (removeLiquidityETH): denied, whatever the
    // profile grants.
    let alias = [
        &alloy::primitives::keccak256("transferAndCall(address,uint256,bytes)")[..4],
        &[0u8; 96][..],
    ]
    .concat();
    let resp = send(token, U256::ZERO, alias).await;
    assert_eq!(violations(&resp), ["undecodable"], "{resp}");
    let remove = [
        &alloy::primitives::keccak256(
            "removeLiquidityETH(address,uint256,uint256,uint256,address,uint256)",
        )[..4],
        &[0u8; 192][..],
    ]
    .concat();
    let resp = send(router, U256::ZERO, remove).await;
    assert_eq!(violations(&resp), ["undecodable"], "{resp}");

    // An EIP-3009 transfer by signature over the token's domain counts too.
    let domain = json!({ "name": "Valet Test USD", "version": "1", "chainId": 31337, "verifyingContract": token });
    let authorization = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}
            ]
        },
        "primaryType": "TransferWithAuthorization",
        "domain": domain,
        "message": {
            "from": env.wallet, "to": STRANGER, "value": (5_000 * TUSD).to_string(),
            "validAfter": 0, "validBefore": DEADLINE, "nonce": format!("0x{}", "11".repeat(32))
        }
    });
    let resp = env
        .rpc(
            &key,
            "eth_signTypedData_v4",
            json!([env.wallet, authorization]),
        )
        .await;
    assert_eq!(violations(&resp), ["spend_limit_exceeded"], "{resp}");
    assert!(resp["result"].is_null(), "no signature: {resp}");
}
