//! Real Ethereum client libraries, written by others, pointed at `valet serve`: viem (Node)
//! and web3.py (Python). Each runs the same story as a script under `tests/clients/`: approve
//! the router, swap tUSD for ETH paid to the wallet, then try a forbidden transfer.
//!
//! A missing interpreter or package fails the test (never skips it): run ./tools/install.sh.

use crate::support::{Chain, FUNDED_TUSD, Home, STRANGER, TUSD, workspace};
use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use std::process::Command;

/// 400 tUSD: well inside the key's 1 000 tUSD daily cap.
const SWAP: u64 = 400 * TUSD;

const INSTALL: &str = "run ./tools/install.sh (CI runs it)";

/// The version `file` pins for `package` (`tools/package.json` or `tools/requirements.txt`).
fn pinned(file: &str, package: &str) -> String {
    let path = workspace().join("tools").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if file.ends_with(".json") {
        let v: Value = serde_json::from_str(&text).unwrap();
        v["devDependencies"][package]
            .as_str()
            .unwrap_or_else(|| panic!("{file} does not pin {package}"))
            .to_string()
    } else {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{package}==")))
            .unwrap_or_else(|| panic!("{file} does not pin {package}"))
            .trim()
            .to_string()
    }
}

/// Runs `program args` for its output; `None` when it cannot be started or fails.
fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Node and the pinned viem, or a failure saying how to get them.
fn require_viem() {
    assert!(
        probe("node", &["--version"]).is_some(),
        "node is not installed: the viem client test needs Node.js; {INSTALL}"
    );
    let want = pinned("package.json", "viem");
    let manifest = workspace().join("tools/node_modules/viem/package.json");
    let have = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    assert_eq!(
        have.as_deref(),
        Some(want.as_str()),
        "viem {want} is not installed under tools/node_modules: {INSTALL}"
    );
}

/// Python 3 and the pinned web3.py, or a failure saying how to get them.
fn require_web3() {
    assert!(
        probe("python3", &["--version"]).is_some(),
        "python3 is not installed: the web3.py client test needs Python 3; {INSTALL}"
    );
    let want = pinned("requirements.txt", "web3");
    let have = probe("python3", &["-c", "import web3; print(web3.__version__)"]);
    assert_eq!(
        have.as_deref(),
        Some(want.as_str()),
        "web3 {want} is not installed for python3: {INSTALL}"
    );
}

/// Starts the chain and the gateway, issues a swap-only key with a daily tUSD cap, runs the
/// client script and checks what it printed and what happened on chain.
async fn client_story(program: &str, script: &str) {
    let chain = Chain::start().await;
    let (home, _) = Home::init(&chain.anvil.url());
    chain.fund(home.wallet).await;
    let server = home.serve();
    let policy = home.write("swap.toml", &chain.swap_policy());
    let key = home.issue(&["--name", "client", "--policy", &policy]);
    let eth_before = chain
        .node("eth_getBalance", json!([home.wallet, "latest"]))
        .await;

    let script_path = workspace()
        .join("crates/valet-cli/tests/clients")
        .join(script);
    let out = Command::new(program)
        .arg(&script_path)
        .current_dir(workspace())
        .env("VALET_RPC_URL", server.rpc_url())
        .env("VALET_AGENT_KEY", key["agent_key"].as_str().unwrap())
        .env("TOKEN", chain.sandbox.token.to_string())
        .env("ROUTER", chain.sandbox.router.to_string())
        .env("WETH", chain.sandbox.weth.to_string())
        .env("STRANGER", STRANGER.to_string())
        .env("SWAP_AMOUNT", SWAP.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "{program} {script} exited {}\nstdout: {stdout}\nstderr: {stderr}\ngateway log:\n{}",
        out.status,
        server.log()
    );
    assert_ne!(out.status.code(), Some(2), "{context}\n{INSTALL}");
    assert!(out.status.success(), "{context}");
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary: {context}"));

    eprintln!("{program} {script}: {summary}");

    // What the client saw.
    assert_eq!(summary["failures"], json!([]), "{context}");
    let account: Address = summary["account"].as_str().unwrap().parse().unwrap();
    assert_eq!(account, home.wallet, "{summary}");
    assert_eq!(summary["chain_id"], 31337, "{summary}");
    let steps = summary["steps"].as_array().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no {name} step: {summary}"))
            .clone()
    };
    let (approve, swap, transfer) = (step("approve"), step("swap"), step("transfer"));
    assert!(
        approve["status"] == "success" || approve["status"] == 1,
        "{approve}"
    );
    assert!(swap["status"] == "success" || swap["status"] == 1, "{swap}");
    assert_eq!(swap["eth_gained"], true, "{swap}");
    assert_eq!(transfer["code"], 4001, "{transfer}");
    assert_eq!(
        transfer["violations"][0], "function_not_allowed",
        "{transfer}"
    );
    assert!(transfer["request_id"].is_string(), "{transfer}");
    assert_eq!(
        summary["remaining"],
        json!([(1000 * TUSD - SWAP).to_string()]),
        "{summary}"
    );

    // What happened on chain, read from anvil directly.
    for s in [&approve, &swap] {
        let hash = s["hash"].as_str().unwrap();
        let tx = chain.node("eth_getTransactionByHash", json!([hash])).await;
        let from: Address = tx["from"].as_str().unwrap().parse().unwrap();
        assert_eq!(from, home.wallet, "{tx}");
        let receipt = chain.node("eth_getTransactionReceipt", json!([hash])).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
    }
    assert_eq!(
        chain.token_balance(home.wallet).await,
        U256::from(FUNDED_TUSD - SWAP),
        "the swap moved exactly {SWAP} tUSD and the denied transfer nothing"
    );
    assert_eq!(
        chain.token_balance(STRANGER).await,
        U256::ZERO,
        "the stranger got nothing"
    );
    let eth_after = chain
        .node("eth_getBalance", json!([home.wallet, "latest"]))
        .await;
    let wei =
        |v: &Value| U256::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(
        wei(&eth_after) > wei(&eth_before),
        "the swap paid the wallet more ETH than the gas cost"
    );
    let nonce = chain
        .node("eth_getTransactionCount", json!([home.wallet, "latest"]))
        .await;
    assert_eq!(nonce, "0x2", "exactly two transactions were sent");
}

#[tokio::test]
async fn viem_client() {
    require_viem();
    client_story("node", "viem_agent.mjs").await;
}

#[tokio::test]
async fn web3py_client() {
    require_web3();
    client_story("python3", "web3_agent.py").await;
}
