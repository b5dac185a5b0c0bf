//! On-chain mode end to end: the wallet delegated with EIP-7702 to Valet's account contract, an
//! on-chain key whose session signer is granted on chain, swaps relayed through the gateway,
//! and the proof that the scope holds on chain: the session key's own signature, sent around
//! the gateway, cannot move a token, and after `valet key revoke` cannot do anything at all.

use crate::support::{Chain, Home, PASSWORD, STRANGER, TUSD, code, violations};
use alloy::{
    primitives::{Address, B256, Bytes, U256, hex},
    sol_types::SolCall,
};
use serde_json::{Value, json};
use std::time::Duration;
use valet_chain::{
    Upstream,
    account::{self, Call, ExecuteWithKey},
    contracts::abi::{ITestStablecoin, IUniswapV2Router02},
};
use valet_keys::{KeystoreLimits, Wallet};

const RELAYER_PASSWORD: &str = "relayer passphrase";

fn address(v: &Value) -> Address {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {v}"))
}

/// Sends an agent transaction through the gateway and waits for it: (hash, succeeded).
async fn send(server: &crate::support::Server, up: &Upstream, key: &str, tx: Value) -> Value {
    let resp = server.rpc(key, "eth_sendTransaction", json!([tx])).await;
    if let Some(hash) = resp["result"].as_str() {
        let hash: B256 = hash.parse().unwrap();
        assert!(
            up.wait_for_receipt(hash, Duration::from_secs(10))
                .await
                .unwrap(),
            "relayed transaction {hash} succeeds: {resp}"
        );
    }
    resp
}

/// The wallet's owner approves `spender` for `amount` tUSD with a transaction of its own (anvil
/// impersonates the wallet), as an owner does outside Valet.
async fn owner_approves(
    chain: &Chain,
    up: &Upstream,
    wallet: Address,
    spender: Address,
    amount: U256,
) {
    chain
        .node("anvil_impersonateAccount", json!([wallet]))
        .await;
    let data = ITestStablecoin::approveCall { spender, amount }.abi_encode();
    let tx =
        json!({ "from": wallet, "to": chain.sandbox.token, "data": hex::encode_prefixed(&data) });
    let hash: B256 = chain
        .node("eth_sendTransaction", json!([tx]))
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up.wait_for_receipt(hash, Duration::from_secs(10))
            .await
            .unwrap()
    );
    chain
        .node("anvil_stopImpersonatingAccount", json!([wallet]))
        .await;
}

/// The session key signs `call` itself and anyone sends it to the account, around the
/// gateway. Returns the account contract's error if the chain refuses it (checked with
/// `eth_call`, then really mined with a fixed gas limit to see it revert), or `None` if it
/// was mined and succeeded.
async fn direct(chain: &Chain, session: &Wallet, wallet: Address, call: Call) -> Option<String> {
    let up = Upstream::connect(&chain.anvil.url()).await.unwrap();
    let nonce = U256::from(rand::random::<u64>()) << 64;
    let deadline = U256::from(jiff::Timestamp::now().as_second() as u64 + 600);
    let payload = ExecuteWithKey {
        calls: vec![call],
        nonce,
        deadline,
    };
    let sig = session
        .sign_struct(&payload, &account::domain(chain.anvil.chain_id(), wallet))
        .unwrap();
    let data = account::execute_with_key_calldata(
        payload.calls,
        nonce,
        deadline,
        Bytes::from(sig.as_bytes().to_vec()),
    );
    let refused = match up.call(wallet, &data).await {
        Ok(_) => None,
        Err(e) => Some(account::revert_of(&e).unwrap_or_else(|| e.to_string())),
    };
    let outsider = chain.anvil.dev_key(3).address();
    let tx = json!({ "from": outsider, "to": wallet, "data": data, "gas": "0x7a120" });
    // Mined for real (anvil's accounts are unlocked): the receipt's status agrees.
    let hash: B256 = chain
        .node("eth_sendTransaction", json!([tx]))
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ok = up
        .wait_for_receipt(hash, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        ok,
        refused.is_none(),
        "eth_call and the mined transaction agree: {refused:?}"
    );
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onchain_key_scope_holds_on_chain_around_the_gateway() {
    let chain = Chain::start().await;
    let (home, _) = Home::init(&chain.anvil.url());
    chain.fund(home.wallet).await;
    let (relayer, relayer_path) =
        Wallet::create_keystore(home.tmp.path(), "relayer.json", RELAYER_PASSWORD.as_bytes())
            .unwrap();
    chain.fund(relayer.address()).await;
    let relayer_path = relayer_path.display().to_string();
    let relayer_env = [("VALET_RELAYER_PASSWORD", RELAYER_PASSWORD)];
    let up = Upstream::connect(&chain.anvil.url()).await.unwrap();
    let wei =
        |b: Value| U256::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let wallet_eth_before = wei(chain
        .node("eth_getBalance", json!([home.wallet, "latest"]))
        .await);

    // Before delegation an on-chain key cannot be issued: a clear error, nothing stored.
    let policy = home.write("swap.toml", &chain.swap_policy());
    let early = home.run(&[
        "key", "issue", "--name", "early", "--policy", &policy, "--mode", "onchain",
    ]);
    assert_eq!(early.code, 1, "{early:?}");
    assert!(
        early.stderr.contains("valet wallet delegate"),
        "{}",
        early.stderr
    );
    assert_eq!(home.ok(&["key", "list", "--json"]).stdout.trim(), "[]");

    // Delegate: the account contract is deployed and the wallet points at it; again is a no-op.
    let delegate = |what: &str| {
        let out = home
            .command(&[
                "wallet",
                "delegate",
                "--relayer-keystore",
                &relayer_path,
                "--json",
            ])
            .envs(relayer_env)
            .output()
            .unwrap();
        crate::support::Run::from(out).ok(what).json()
    };
    let delegated = delegate("wallet delegate");
    let target = account::account_address().unwrap();
    assert_eq!(address(&delegated["account"]), target, "{delegated}");
    assert!(delegated["delegate_tx"].is_string(), "{delegated}");
    assert_eq!(
        account::delegation(&up, home.wallet).await.unwrap(),
        account::Delegation::To(target)
    );
    let shown = home.ok(&["wallet", "show", "--json"]).json();
    assert_eq!(
        shown["delegation"].as_str().unwrap().to_lowercase(),
        format!("delegated to {target}").to_lowercase()
    );
    let again = delegate("wallet delegate again");
    assert!(
        again["delegate_tx"].is_null() && again["deploy_tx"].is_null(),
        "{again}"
    );

    // The wallet already had an unlimited approval of tUSD to the router (its owner swapped
    // before): a standing allowance no on-chain cap counts.
    let (token, router, weth) = (
        chain.sandbox.token,
        chain.sandbox.router,
        chain.sandbox.weth,
    );
    owner_approves(&chain, &up, home.wallet, router, U256::MAX).await;
    assert_eq!(
        account::allowance(&up, token, home.wallet, router)
            .await
            .unwrap(),
        U256::MAX
    );

    // The gateway with a relayer; an on-chain swap-only key (1 000 tUSD a day).
    let server = home.serve_with(&["--relayer-keystore", &relayer_path], &relayer_env);
    let issued = home.issue(&[
        "--name",
        "onchain-bot",
        "--policy",
        &policy,
        "--mode",
        "onchain",
    ]);
    assert_eq!(issued["mode"], "onchain", "{issued}");
    let id = issued["id"].as_str().unwrap().to_string();
    let key = issued["agent_key"].as_str().unwrap().to_string();
    let session_address = address(&issued["session_signer"]);
    assert!(issued["grant_tx"].is_string(), "{issued}");
    let session_file = home.path().join("sessions").join(format!("{id}.json"));
    let session = Wallet::open(
        &session_file,
        PASSWORD.as_bytes(),
        KeystoreLimits::default(),
    )
    .expect("the session key is kept encrypted under the wallet's passphrase");
    assert_eq!(session.address(), session_address);

    // The grant cleared the standing allowance in the same owner batch: a stolen session key
    // cannot swap the wallet's whole tUSD to a stranger on it, around the gateway.
    assert_eq!(
        account::allowance(&up, token, home.wallet, router)
            .await
            .unwrap(),
        U256::ZERO,
        "the grant cleared the router's standing allowance"
    );
    let hoard = chain.token_balance(home.wallet).await;
    let drain = IUniswapV2Router02::swapExactTokensForETHCall {
        amountIn: hoard,
        amountOutMin: U256::ZERO,
        path: vec![token, weth],
        to: STRANGER,
        deadline: U256::from(4_000_000_000u64),
    }
    .abi_encode();
    let drain = Call {
        target: router,
        value: U256::ZERO,
        data: drain.into(),
    };
    assert!(
        direct(&chain, &session, home.wallet, drain).await.is_some(),
        "a swap on the cleared allowance reverts"
    );
    assert_eq!(chain.token_balance(home.wallet).await, hoard);
    // Nor add liquidity minting the LP tokens to a stranger: not a swap function, not granted.
    let add_liquidity = IUniswapV2Router02::addLiquidityETHCall {
        token,
        amountTokenDesired: U256::from(1000 * TUSD),
        amountTokenMin: U256::ZERO,
        amountETHMin: U256::ZERO,
        to: STRANGER,
        deadline: U256::from(4_000_000_000u64),
    }
    .abi_encode();
    let refused = direct(
        &chain,
        &session,
        home.wallet,
        Call {
            target: router,
            value: U256::ZERO,
            data: add_liquidity.into(),
        },
    )
    .await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.starts_with("FunctionNotAllowed")),
        "{refused:?}"
    );

    // Through the gateway: approve and swap, relayed, mined, paid by the relayer.
    let approve = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::from(500 * TUSD),
    }
    .abi_encode();
    let resp = send(
        &server,
        &up,
        &key,
        json!({ "from": home.wallet, "to": token, "data": hex::encode_prefixed(&approve) }),
    )
    .await;
    assert!(resp["result"].is_string(), "approve is relayed: {resp}");
    let before = chain.token_balance(home.wallet).await;
    let swap = IUniswapV2Router02::swapExactTokensForETHCall {
        amountIn: U256::from(100 * TUSD),
        amountOutMin: U256::ZERO,
        path: vec![token, weth],
        to: home.wallet,
        deadline: U256::from(4_000_000_000u64),
    }
    .abi_encode();
    let resp = send(
        &server,
        &up,
        &key,
        json!({ "from": home.wallet, "to": router, "data": hex::encode_prefixed(&swap) }),
    )
    .await;
    assert!(resp["result"].is_string(), "the swap is relayed: {resp}");
    assert_eq!(
        before - chain.token_balance(home.wallet).await,
        U256::from(100 * TUSD),
        "the swap moved the wallet's tUSD"
    );
    let wallet_eth_after = wei(chain
        .node("eth_getBalance", json!([home.wallet, "latest"]))
        .await);
    assert!(
        wallet_eth_after > wallet_eth_before,
        "the wallet received the swap's ETH and paid no gas"
    );

    // An ERC-7821 batch to the wallet itself (approve 200 + swap 100) is relayed as one
    // executeWithKey of both calls, atomically.
    let batch_approve = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::from(200 * TUSD),
    }
    .abi_encode();
    let calls = vec![
        Call {
            target: token,
            value: U256::ZERO,
            data: batch_approve.into(),
        },
        Call {
            target: router,
            value: U256::ZERO,
            data: swap.clone().into(),
        },
    ];
    let batch = account::abi::IValetAccount::executeCall {
        mode: account::MODE_BATCH,
        executionData: alloy::sol_types::SolValue::abi_encode(&calls).into(),
    }
    .abi_encode();
    let before = chain.token_balance(home.wallet).await;
    let resp = send(&server, &up, &key, json!({ "from": home.wallet, "to": home.wallet, "data": hex::encode_prefixed(&batch), "gas": "0x7a120" })).await;
    assert!(resp["result"].is_string(), "the batch is relayed: {resp}");
    assert_eq!(
        before - chain.token_balance(home.wallet).await,
        U256::from(100 * TUSD),
        "the batched swap moved tUSD"
    );
    let relayed = chain
        .node("eth_getTransactionByHash", json!([resp["result"]]))
        .await;
    let input = hex::decode(relayed["input"].as_str().unwrap()).unwrap();
    let relayed = account::abi::IValetAccount::executeWithKeyCall::abi_decode(&input).unwrap();
    assert_eq!(relayed.calls, calls, "one executeWithKey with both calls");

    // eth_signTransaction has nothing to hand back for an on-chain key.
    let resp = server
        .rpc(
            &key,
            "eth_signTransaction",
            json!([{ "from": home.wallet, "to": token, "data": hex::encode_prefixed(&approve) }]),
        )
        .await;
    assert_eq!(violations(&resp), ["method_not_allowed"], "{resp}");

    // A transfer through the gateway: denied off-chain.
    let transfer = ITestStablecoin::transferCall {
        to: STRANGER,
        amount: U256::from(5 * TUSD),
    }
    .abi_encode();
    let resp = server
        .rpc(
            &key,
            "eth_sendTransaction",
            json!([{ "from": home.wallet, "to": token, "data": hex::encode_prefixed(&transfer) }]),
        )
        .await;
    assert_eq!(code(&resp), Some(4001), "{resp}");
    assert_eq!(violations(&resp), ["function_not_allowed"], "{resp}");

    // The on-chain state as the agent and the owner see it: granted, active, the approval
    // counted against the on-chain tUSD cap.
    let perms = server.rpc(&key, "valet_getPermissions", json!([])).await;
    let onchain = &perms["result"]["onchain"];
    assert_eq!(onchain["granted"], true, "{perms}");
    assert_eq!(onchain["active"], true, "{perms}");
    assert_eq!(address(&onchain["session_signer"]), session_address);
    let cap = onchain["caps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["asset"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(&token.to_string())
        })
        .unwrap_or_else(|| panic!("a tUSD cap: {perms}"));
    assert_eq!(cap["limit"], (1000 * TUSD).to_string(), "{perms}");
    assert_eq!(
        cap["spent_this_period"],
        (700 * TUSD).to_string(),
        "approvals of 500 and 200: {perms}"
    );

    // Around the gateway: the same transfer, signed by the session key itself, reverts on chain.
    let transfer_call = Call {
        target: token,
        value: U256::ZERO,
        data: transfer.clone().into(),
    };
    let refused = direct(&chain, &session, home.wallet, transfer_call.clone()).await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.starts_with("FunctionDenied")),
        "{refused:?}"
    );
    // So does an approval beyond the on-chain cap (700 of 1 000 tUSD already used).
    let too_much = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::from(600 * TUSD),
    }
    .abi_encode();
    let refused = direct(
        &chain,
        &session,
        home.wallet,
        Call {
            target: token,
            value: U256::ZERO,
            data: too_much.into(),
        },
    )
    .await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.starts_with("SpendLimitExceeded")),
        "{refused:?}"
    );
    // A call inside the scope goes through: the session key works on its own.
    let small = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::from(TUSD),
    }
    .abi_encode();
    let small_call = Call {
        target: token,
        value: U256::ZERO,
        data: small.into(),
    };
    assert_eq!(
        direct(&chain, &session, home.wallet, small_call.clone()).await,
        None
    );

    // Revoke: off-chain at once, and on chain (the transaction is reported).
    let out = home.ok(&["key", "revoke", &id]);
    assert!(out.stdout.contains("revoked on chain in 0x"), "{out:?}");
    assert!(
        out.stderr
            .contains("waiting for the transaction to be mined"),
        "a line on stderr before the chain wait: {out:?}"
    );
    let resp = server.rpc(&key, "eth_accounts", json!([])).await;
    assert_eq!(resp["error"]["data"]["reason"], "revoked", "{resp}");
    let refused = direct(&chain, &session, home.wallet, small_call).await;
    assert_eq!(
        refused.as_deref(),
        Some("KeyRevoked"),
        "the revoked session key is refused on chain"
    );
    let shown = home.ok(&["key", "show", &id, "--json"]).json();
    assert_eq!(shown["onchain"]["revoked"], true, "{shown}");
    // What a stolen session key could have called: the router's swap functions (not all of
    // them) and approvals of the capped token; transfers denied.
    let allowed = shown["onchain"]["scope"]["allowed"]
        .to_string()
        .to_lowercase();
    let router_fn = |selector: &str| {
        format!(
            "{{\"selector\":\"{selector}\",\"target\":\"{}\"}}",
            router.to_string().to_lowercase()
        )
    };
    assert!(allowed.contains(&router_fn("0x18cbafe5")), "{allowed}");
    assert!(!allowed.contains(&router_fn("*")), "{allowed}");
    assert!(
        allowed.contains("0x095ea7b3"),
        "approve on the token: {allowed}"
    );
    assert!(
        shown["onchain"]["scope"]["denied"]
            .as_array()
            .unwrap()
            .contains(&json!("0xa9059cbb")),
        "{shown}"
    );
    let text = home.ok(&["key", "show", &id]).stdout;
    assert!(
        text.contains("on-chain may call") && text.contains("on-chain denied functions"),
        "{text}"
    );
    assert_eq!(shown["onchain"]["active"], false, "{shown}");
    assert_eq!(
        chain.token_balance(STRANGER).await,
        U256::ZERO,
        "the stranger got nothing"
    );
    // With a relayer, the owner's grant and revocation were signed by the wallet and relayed
    // (executeSigned): the wallet sent nothing itself after its delegation (nonce 0) and its
    // owner's own approval (nonce 1), and the grant came from the relayer.
    assert_eq!(
        chain
            .node("eth_getTransactionCount", json!([home.wallet, "latest"]))
            .await,
        "0x2"
    );
    let grant = chain
        .node("eth_getTransactionByHash", json!([issued["grant_tx"]]))
        .await;
    assert_eq!(address(&grant["from"]), relayer.address(), "{grant}");
    let log = home.ok(&["audit", "log", "--key", &id, "--json"]);
    assert!(
        log.stdout.contains("key.revoke.onchain"),
        "the on-chain revocation is audited: {}",
        log.stdout
    );
    home.ok(&["audit", "verify"]);

    // Without a gateway the command line grants and revokes itself, the wallet sending to
    // itself; the kill switch bumps the account's epoch, which ends every session key.
    drop(server);
    let second = home.issue(&["--name", "direct", "--policy", &policy, "--mode", "onchain"]);
    let second_id = second["id"].as_str().unwrap().to_string();
    let grant = chain
        .node("eth_getTransactionByHash", json!([second["grant_tx"]]))
        .await;
    assert_eq!(address(&grant["from"]), home.wallet, "{grant}");
    let shown = home.ok(&["key", "show", &second_id, "--json"]).json();
    assert_eq!(shown["onchain"]["active"], true, "{shown}");
    let out = home.ok(&["key", "revoke", "--all", "--yes"]);
    assert!(out.stdout.contains("revoked on chain in 0x"), "{out:?}");
    let shown = home.ok(&["key", "show", &second_id, "--json"]).json();
    assert_eq!(shown["onchain"]["active"], false, "{shown}");
    let second_session = Wallet::open(
        &home
            .path()
            .join("sessions")
            .join(format!("{second_id}.json")),
        PASSWORD.as_bytes(),
        KeystoreLimits::default(),
    )
    .unwrap();
    let small = ITestStablecoin::approveCall {
        spender: router,
        amount: U256::from(TUSD),
    }
    .abi_encode();
    let refused = direct(
        &chain,
        &second_session,
        home.wallet,
        Call {
            target: token,
            value: U256::ZERO,
            data: small.into(),
        },
    )
    .await;
    assert_eq!(
        refused.as_deref(),
        Some("KeyRevoked"),
        "revoke-all ends every session key on chain"
    );
    home.ok(&["audit", "verify"]);

    // A full-access key reaches any contract: its grant also clears the wallet's standing
    // allowances of the capped token to every contract the token's Approval logs name (here
    // WETH, which no swap-only grant names).
    owner_approves(&chain, &up, home.wallet, weth, U256::from(5 * TUSD)).await;
    let full = home.write(
        "full.toml",
        &format!(
            "name = \"full\"\nprofile = \"full-access\"\nchains = [31337]\nexpires_in = \"1h\"\n\
             [[limits.spend]]\nasset = \"{token}\"\namount = \"1000\"\ndecimals = 6\nwindow = \"24h\"\n"
        ),
    );
    assert_eq!(
        account::allowance(&up, token, home.wallet, weth)
            .await
            .unwrap(),
        U256::from(5 * TUSD)
    );
    let full_id = home.issue(&["--name", "full", "--policy", &full, "--mode", "onchain"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        account::allowance(&up, token, home.wallet, weth)
            .await
            .unwrap(),
        U256::ZERO,
        "a wildcard grant clears allowances to every approved contract"
    );
    // Its wildcard does not reach the capped token's other functions; transfers are counted.
    let full_session = Wallet::open(
        &home.path().join("sessions").join(format!("{full_id}.json")),
        PASSWORD.as_bytes(),
        KeystoreLimits::default(),
    )
    .unwrap();
    let on_token = |data: Vec<u8>| Call {
        target: token,
        value: U256::ZERO,
        data: data.into(),
    };
    let symbol = on_token(ITestStablecoin::symbolCall {}.abi_encode());
    let refused = direct(&chain, &full_session, home.wallet, symbol).await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.starts_with("Undecodable")),
        "{refused:?}"
    );
    let pay = |amount: u64| {
        on_token(
            ITestStablecoin::transferCall {
                to: STRANGER,
                amount: U256::from(amount * TUSD),
            }
            .abi_encode(),
        )
    };
    assert_eq!(
        direct(&chain, &full_session, home.wallet, pay(600)).await,
        None
    );
    let refused = direct(&chain, &full_session, home.wallet, pay(401)).await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.starts_with("SpendLimitExceeded")),
        "{refused:?}"
    );
    assert_eq!(chain.token_balance(STRANGER).await, U256::from(600 * TUSD));
}
