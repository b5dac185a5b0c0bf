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

/// Starts anvil (Prague), deploys a real OpenZeppelin ERC-20 stablecoin (tUSD, 6 decimals),
/// WETH9 and Uniswap V2 with a funded pool, funds a fresh wallet, starts the gateway, issues a
/// swap-only key with a 1 000 tUSD daily cap, and runs a scripted agent that speaks plain
/// JSON-RPC: what it tried and what happened is printed as a table, then the audit log is
/// verified. With --keep everything stays up and the URLs are printed.
///
/// Examples:
///   valet sandbox
///   valet sandbox --keep
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Leave the chain and the gateway running and print how to reach them.
    #[arg(long)]
    keep: bool,
}

const STRANGER: Address = Address::with_last_byte(0x5a);
const DEADLINE: u64 = 4_000_000_000;
const TUSD: u64 = 1_000_000;

fn step(n: usize, what: &str) {
    eprintln!("[{n}/6] {what}");
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
            (false, format!("denied {} {detail}", e["code"]))
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

        step(3, "starting the gateway");
        let dir = tempfile::tempdir()?;
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
            onchain: None,
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
            4,
            "issuing a swap-only key: the local router, 1 000 tUSD a day",
        );
        let policy = format!(
            "name = \"sandbox-swap-bot\"\nprofile = \"swap-only\"\nchains = [{}]\nexpires_in = \"24h\"\nrouters = [\"{}\"]\n\n[[limits.spend]]\nasset = \"{}\"\namount = \"1000\"\ndecimals = 6\nwindow = \"24h\"\n",
            upstream.chain_id(),
            sandbox.router,
            sandbox.token
        );
        let issued = valet_server::issue(
            store.as_ref(),
            address,
            None,
            &policy,
            KeyMode::Gateway,
            jiff::Timestamp::now(),
            None,
        )
        .await?;
        let agent = Agent {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("{gateway_url}/rpc"),
            key: issued.agent_key.token().to_string(),
            wallet: address,
        };

        step(5, "running the agent");
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
        let approve = ITestStablecoin::approveCall {
            spender: router,
            amount: U256::MAX,
        }
        .abi_encode();
        let resp = agent.send(token, approve).await?;
        if record("approve the router to spend tUSD", true, &resp) {
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
            &agent.send(router, swap(950 * TUSD, address)).await?,
        );
        let revoked = reqwest::Client::new()
            .post(format!(
                "{gateway_url}/api/v1/keys/{}/revoke",
                issued.record.id
            ))
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

        step(6, "verifying the audit log");
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
