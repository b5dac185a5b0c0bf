//! `valet sandbox`: a local chain, a real token and DEX, a gateway, and an agent that is
//! allowed and then blocked.

use alloy::{
    primitives::{Address, B256, U256, hex},
    sol_types::SolCall,
};
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::{process::ExitCode, time::Duration};
use valet_chain::contracts::abi::{ITestStablecoin, IUniswapV2Router02};
use valet_keys::Wallet;
use valet_store::{Checkpoint, GroupCommit, KeyMode};

/// The demo: a local chain, a real token and DEX, an agent allowed and then blocked
///
/// Starts anvil (Prague), deploys a real OpenZeppelin ERC-20 stablecoin (tUSD, 6 decimals),
/// WETH9 and Uniswap V2 with a funded pool, funds a fresh wallet, starts the gateway, issues a
/// swap-only key with a 1 000 tUSD daily cap, and runs a scripted agent that speaks plain
/// JSON-RPC: what it tried and what happened is printed as a table, then the audit log is
/// verified. With --keep everything stays up and the URLs are printed.
///
/// With --onchain the wallet is first delegated with EIP-7702 to Valet's account contract and
/// the key is an on-chain key (its session key granted on chain, its transactions relayed and
/// paid by a relayer); the agent then also plays a stolen session key signing around the
/// gateway, and the chain refuses it.
///
/// Examples:
///   valet sandbox
///   valet sandbox --onchain
///   valet sandbox --keep
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Leave the chain and the gateway running and print how to reach them.
    #[arg(long)]
    keep: bool,
    /// Use an on-chain key (EIP-7702 session key) and show the chain enforcing its scope.
    #[arg(long)]
    onchain: bool,
}

const STRANGER: Address = Address::with_last_byte(0x5a);
const DEADLINE: u64 = 4_000_000_000;
const TUSD: u64 = 1_000_000;

fn step(n: usize, what: &str) {
    eprintln!("[{n}/7] {what}");
}

/// The scripted agent: plain JSON-RPC with the bearer header, as any client library sends.
struct Agent {
    client: reqwest::Client,
    url: String,
    key: String,
    wallet: Address,
}

impl Agent {
    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    async fn send(&self, to: Address, data: Vec<u8>) -> anyhow::Result<Value> {
        self.call(
            "eth_sendTransaction",
            json!([{ "from": self.wallet, "to": to, "data": hex::encode_prefixed(data) }]),
        )
        .await
    }

    /// As [`Self::send`] with the gas limit given, so Valet does not estimate it (an estimate
    /// of a swap beyond the router's allowance would fail before the policy is asked).
    async fn send_with_gas(&self, to: Address, data: Vec<u8>, gas: u64) -> anyhow::Result<Value> {
        self.call(
            "eth_sendTransaction",
            json!([{ "from": self.wallet, "to": to, "data": hex::encode_prefixed(data), "gas": format!("0x{gas:x}") }]),
        )
        .await
    }
}

/// What happened to one request, for the table.
fn outcome(resp: &Value) -> (bool, String) {
    match (&resp["result"], &resp["error"]) {
        (Value::Null, Value::Null) => (false, "no answer".into()),
        (r, Value::Null) => (true, format!("allowed {}", short(r))),
        (_, e) => {
            let codes: Vec<&str> = e["data"]["violations"]
                .as_array()
                .map(|v| v.iter().filter_map(|v| v["code"].as_str()).collect())
                .unwrap_or_default();
            let detail = match (codes.is_empty(), e["data"]["reason"].as_str()) {
                (false, _) => codes.join(", "),
                (true, Some(reason)) => reason.to_string(),
                (true, None) => e["message"].as_str().unwrap_or("error").to_string(),
            };
            let code = match &e["code"] {
                Value::String(c) => c.clone(),
                c => c.to_string(),
            };
            (false, format!("denied {code} {detail}"))
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    if s.len() > 18 {
        format!("{}…", &s[..18])
    } else {
        s
    }
}

impl Args {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        step(1, "starting anvil (--hardfork prague)");
        let anvil = valet_chain::Anvil::spawn()
            .await
            .context("cannot start anvil: run ./tools/install.sh")?;
        let rpc = anvil.url();
        step(
            2,
            "deploying tUSD (OpenZeppelin ERC-20), WETH9, Uniswap V2 factory and router, a funded pool",
        );
        let deployer = alloy::network::EthereumWallet::from(anvil.dev_key(0));
        let sandbox = valet_chain::contracts::deploy_sandbox(&rpc, deployer.clone()).await?;
        let wallet = Wallet::random();
        let address = wallet.address();
        valet_chain::contracts::fund(
            &rpc,
            deployer,
            &sandbox,
            address,
            U256::from(10_000 * TUSD),
            U256::from(10u128.pow(19)),
        )
        .await?;

        let dir = tempfile::tempdir()?;
        let onchain = match self.onchain {
            true => {
                step(
                    3,
                    "delegating the wallet (EIP-7702) to Valet's account contract",
                );
                Some(delegate(&rpc, &anvil, &wallet, dir.path()).await?)
            }
            false => {
                step(3, "gateway mode: nothing on chain to prepare");
                None
            }
        };
        step(4, "starting the gateway");
        let store = valet_store::open(&format!(
            "sqlite://{}",
            dir.path().join("valet.db").display()
        ))
        .await?;
        let checkpoint = dir.path().join("audit.head");
        let journal = GroupCommit::new(store.clone(), Some(Checkpoint::new(&checkpoint)));
        let upstream = valet_chain::Upstream::connect(&rpc).await?;
        let admin_token = format!("{:032x}", rand::random::<u128>());
        let gateway = valet_server::Gateway::new(valet_server::GatewayParts {
            store: store.clone(),
            journal,
            upstream: upstream.clone(),
            wallet,
            admin_token: admin_token.clone(),
            trust_proxy: false,
            checkpoint: Some(checkpoint.clone()),
            onchain,
        });
        let listener = tokio::net::TcpListener::bind(if self.keep {
            "127.0.0.1:8547"
        } else {
            "127.0.0.1:0"
        })
        .await
        .context("cannot listen (is another gateway on 127.0.0.1:8547?)")?;
        let gateway_url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(valet_server::serve(gateway, listener, async {
            let _ = stopped.await;
        }));

        step(
            5,
            "issuing a swap-only key: the local router, 1 000 tUSD a day",
        );
        let policy = format!(
            "name = \"sandbox-swap-bot\"\nprofile = \"swap-only\"\nchains = [{}]\nexpires_in = \"24h\"\nrouters = [\"{}\"]\n\n[[limits.spend]]\nasset = \"{}\"\namount = \"1000\"\ndecimals = 6\nwindow = \"24h\"\n",
            upstream.chain_id(),
            sandbox.router,
            sandbox.token
        );
        // Through the admin API, as an owner would: an on-chain grant is signed by the wallet
        // and relayed by the gateway.
        let mode = if self.onchain {
            KeyMode::Onchain
        } else {
            KeyMode::Gateway
        };
        let resp = reqwest::Client::new()
            .post(format!("{gateway_url}/api/v1/keys"))
            .bearer_auth(&admin_token)
            .json(&json!({ "policy_toml": policy, "mode": mode.as_str() }))
            .send()
            .await?;
        let status = resp.status();
        let issued: Value = resp.json().await?;
        if !status.is_success() {
            bail!("issuing the key failed: {}", issued["error"]);
        }
        let key_id = issued["id"].as_str().context("no key id")?.to_string();
        let agent = Agent {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("{gateway_url}/rpc"),
            key: issued["agent_key"]
                .as_str()
                .context("no agent key")?
                .to_string(),
            wallet: address,
        };
        // The session key as a thief who took it from the gateway's disk would use it.
        let session = match self.onchain {
            true => Some(Wallet::open(
                &dir.path().join("sessions").join(format!("{key_id}.json")),
                SESSION_PASSPHRASE,
                valet_keys::KeystoreLimits::default(),
            )?),
            false => None,
        };

        step(6, "running the agent");
        let (token, router, weth) = (sandbox.token, sandbox.router, sandbox.weth);
        let swap = |amount: u64, to: Address| {
            IUniswapV2Router02::swapExactTokensForETHCall {
                amountIn: U256::from(amount),
                amountOutMin: U256::from(1),
                path: vec![token, weth],
                to,
                deadline: U256::from(DEADLINE),
            }
            .abi_encode()
        };
        let balance = || valet_chain::contracts::token_balance(&rpc, token, address);
        let mut rows: Vec<(String, bool, bool, String)> = Vec::new();
        let mut record = |what: &str, expect_allowed: bool, resp: &Value| {
            let (allowed, text) = outcome(resp);
            rows.push((what.to_string(), expect_allowed, allowed, text));
            allowed
        };
        // As much as the daily cap (an on-chain key's approvals count against its on-chain cap,
        // so an unlimited one would be refused there).
        let approve = ITestStablecoin::approveCall {
            spender: router,
            amount: U256::from(1000 * TUSD),
        }
        .abi_encode();
        let resp = agent.send(token, approve).await?;
        if record("approve the router to spend 1 000 tUSD", true, &resp) {
            wait(&upstream, &resp).await?;
        }
        let before = balance().await?;
        let resp = agent.send(router, swap(100 * TUSD, address)).await?;
        if record("swap 100 tUSD for ETH, paid to the wallet", true, &resp) {
            wait(&upstream, &resp).await?;
        }
        let spent = before.saturating_sub(balance().await?);
        let transfer = ITestStablecoin::transferCall {
            to: STRANGER,
            amount: U256::from(50 * TUSD),
        }
        .abi_encode();
        record(
            "transfer 50 tUSD to a stranger",
            false,
            &agent.send(token, transfer).await?,
        );
        record(
            "swap 10 tUSD paying out to a stranger",
            false,
            &agent.send(router, swap(10 * TUSD, STRANGER)).await?,
        );
        record(
            "swap 950 tUSD (past the 1 000 tUSD daily cap)",
            false,
            &agent
                .send_with_gas(router, swap(950 * TUSD, address), 300_000)
                .await?,
        );
        let stolen_transfer = ITestStablecoin::transferCall {
            to: STRANGER,
            amount: U256::from(50 * TUSD),
        }
        .abi_encode();
        if let Some(session) = &session {
            let resp =
                around_the_gateway(&upstream, session, address, token, &stolen_transfer).await?;
            record(
                "a stolen session key signs that transfer itself",
                false,
                &resp,
            );
        }
        let revoked = reqwest::Client::new()
            .post(format!("{gateway_url}/api/v1/keys/{key_id}/revoke"))
            .bearer_auth(&admin_token)
            .send()
            .await?
            .status()
            .is_success();
        let revocation = json!({ "result": if revoked { "revoked" } else { "" } });
        record("the owner revokes the key", true, &revocation);
        record(
            "read the chain id after revocation",
            false,
            &agent.call("eth_chainId", json!([])).await?,
        );
        if let Some(session) = &session {
            let approve_more = ITestStablecoin::approveCall {
                spender: router,
                amount: U256::from(TUSD),
            }
            .abi_encode();
            let resp =
                around_the_gateway(&upstream, session, address, token, &approve_more).await?;
            record("the stolen session key approves after revoke", false, &resp);
        }

        step(7, "verifying the audit log");
        let verified =
            valet_server::verify_audit(store.as_ref(), Some(&Checkpoint::new(&checkpoint))).await?;

        println!("\n{:<48} {:<9} RESULT", "WHAT THE AGENT TRIED", "EXPECTED");
        let mut all_as_expected = true;
        for (what, expect, allowed, text) in &rows {
            let mark = if expect == allowed {
                ""
            } else {
                "   <-- unexpected"
            };
            all_as_expected &= expect == allowed;
            println!(
                "{what:<48} {:<9} {text}{mark}",
                if *expect { "allow" } else { "deny" }
            );
        }
        println!("\ntUSD spent by the allowed swap: {}", format_tusd(spent));
        match &verified {
            Ok(n) => println!("audit log: {n} entries, hash chain and checkpoint verified"),
            Err(e) => println!(
                "audit log BROKEN at entry {}: {}",
                e.first_bad_seq, e.reason
            ),
        }
        if self.keep {
            println!("\nstill running (Ctrl-C to stop):");
            println!(
                "  home (temporary, removed at exit): {}",
                dir.path().display()
            );
            println!("  chain (anvil):  {rpc}");
            println!("  gateway /rpc:   {gateway_url}/rpc");
            println!(
                "  admin API:      {gateway_url}/api/v1  (Authorization: Bearer {admin_token})"
            );
            println!("  wallet:         {address}");
            println!("  tUSD token:     {token}");
            println!("  router:         {router}");
            println!(
                "  issue a key:    curl -H 'Authorization: Bearer {admin_token}' -H 'content-type: application/toml' --data-binary @policy.toml {gateway_url}/api/v1/keys"
            );
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = stop.send(());
        let _ = server.await;
        drop(anvil);
        if !all_as_expected || verified.is_err() || spent != U256::from(100 * TUSD) {
            bail!("the sandbox did not behave as expected (see the table)");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The passphrase the sandbox keeps its session keys under (a throwaway home).
const SESSION_PASSPHRASE: &[u8] = b"sandbox";

/// Deploys the account contract if missing and delegates `wallet` to it, paid by a fresh
/// relayer; returns on-chain mode for the gateway (session keys under `dir/sessions`).
async fn delegate(
    rpc: &str,
    anvil: &valet_chain::Anvil,
    wallet: &Wallet,
    dir: &std::path::Path,
) -> anyhow::Result<valet_server::Onchain> {
    use valet_chain::account;
    let relayer = Wallet::random();
    let deployer = alloy::network::EthereumWallet::from(anvil.dev_key(0));
    let sender = valet_chain::Sender::new(rpc, deployer).await?;
    sender
        .call(
            "fund the relayer",
            relayer.address(),
            U256::from(10u128.pow(19)),
            vec![],
        )
        .await?;
    let upstream = sender.upstream().clone();
    let target = account::account_address()?;
    if account::code(&upstream, target).await?.is_empty() {
        sender
            .send(
                "deploy the account contract",
                Some(account::CREATE2_DEPLOYER),
                U256::ZERO,
                account::deploy_calldata()?,
                vec![],
            )
            .await?;
    }
    let nonce = upstream.pending_nonce(wallet.address()).await?;
    let auth = wallet.sign_authorization(upstream.chain_id(), target, nonce)?;
    let payer = valet_chain::Sender::new(rpc, relayer.network_wallet()).await?;
    payer
        .send(
            "delegate the wallet",
            Some(wallet.address()),
            U256::ZERO,
            Default::default(),
            vec![auth],
        )
        .await?;
    Ok(valet_server::Onchain::new(
        dir.join("sessions"),
        zeroize::Zeroizing::new(SESSION_PASSPHRASE.to_vec()),
        Some((relayer, &upstream)),
    )?)
}

/// `data` to `token`, signed as `executeWithKey` by the session key itself and sent to the
/// wallet without the gateway. Answers like the gateway would (a result, or an error naming
/// the account contract's revert), as seen by `eth_call`.
async fn around_the_gateway(
    upstream: &valet_chain::Upstream,
    session: &Wallet,
    wallet: Address,
    token: Address,
    data: &[u8],
) -> anyhow::Result<Value> {
    use valet_chain::account::{self, Call, ExecuteWithKey};
    let payload = ExecuteWithKey {
        calls: vec![Call {
            target: token,
            value: U256::ZERO,
            data: data.to_vec().into(),
        }],
        nonce: U256::from(rand::random::<u64>()) << 64,
        deadline: U256::from(DEADLINE),
    };
    let sig = session.sign_struct(&payload, &account::domain(upstream.chain_id(), wallet))?;
    let calldata = account::execute_with_key_calldata(
        payload.calls,
        payload.nonce,
        payload.deadline,
        sig.as_bytes().to_vec().into(),
    );
    Ok(match upstream.call(wallet, &calldata).await {
        Ok(_) => json!({ "result": "executed on chain" }),
        Err(e @ valet_chain::Error::Node { .. }) => {
            let named = account::revert_of(&e).unwrap_or_else(|| e.to_string());
            // The error's name is enough for the table.
            let named = named.split('(').next().unwrap_or_default();
            json!({ "error": { "code": "on chain", "message": format!("reverted {named}") } })
        }
        Err(e) => return Err(e.into()),
    })
}

async fn wait(upstream: &valet_chain::Upstream, resp: &Value) -> anyhow::Result<()> {
    let hash: B256 = resp["result"]
        .as_str()
        .context("no transaction hash")?
        .parse()?;
    if !upstream
        .wait_for_receipt(hash, Duration::from_secs(30))
        .await?
    {
        bail!("transaction {hash} reverted");
    }
    Ok(())
}

fn format_tusd(amount: U256) -> String {
    let whole = amount / U256::from(TUSD);
    let frac = amount % U256::from(TUSD);
    format!("{whole}.{frac:0>6} tUSD")
}
