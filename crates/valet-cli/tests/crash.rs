//! Crash recovery: `kill -9` the gateway while `eth_sendTransaction`s are in flight, restart
//! it on the same home, and check that nothing a client was told was lost.
//!
//! The real binary end to end: anvil, `valet init`, `valet serve` as a child process, a
//! `custom` key allowing plain native sends to one address under a native cap, many
//! concurrent sends, SIGKILL once some hashes have come back. After each crash (three in a
//! row on the same home):
//!
//! - `valet audit verify` passes, on the crashed state and after the restart;
//! - every tx hash a client received is in the audit log (`valet audit export`, `tx_hash`);
//! - the key's reserved native spend (`valet key show --json`, as the restarted gateway
//!   loads it from the store) is at least the value plus `gas × maxFeePerGas` of every
//!   transaction a client received a hash for;
//! - every received hash was mined, with distinct nonces;
//! - a new send after the restart works and takes the next nonce (no reuse, no gap): it is
//!   mined.
//!
//! A process kill keeps what the kernel already has (it is not a power cut): this proves the
//! ordering (reservation and audit durable before a signature, the hash audited before the
//! answer) and the recovery, not fsync itself.

use serde_json::{Value, json};
use std::{
    collections::{HashMap, HashSet},
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

const PASSWORD: &str = "crash-test-passphrase";
/// The only address the key may pay.
const RECIPIENT: &str = "0x00000000000000000000000000000000000c0ffe";
const GAS: u64 = 21_000;
const MAX_FEE: u64 = 20_000_000_000; // 20 gwei
const PRIORITY_FEE: u64 = 1_000_000_000;
/// Concurrent senders.
const SENDERS: usize = 24;
/// Crashes in a row on the same home.
const ROUNDS: usize = 3;
/// Hashes received before the kill, at least.
const KILL_AFTER: usize = 12;

/// A child process killed (SIGKILL) and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn valet(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_valet"));
    c.env("VALET_HOME", home)
        .env("VALET_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

/// Runs a valet command; (exit code, stdout). Panics with its stderr if it cannot run.
fn run_valet(home: &Path, args: &[&str]) -> (i32, String) {
    let out = valet(home)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("valet {args:?} does not run: {e}"));
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!(
            "valet {args:?} exited {code}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn valet_ok(home: &Path, args: &[&str]) -> String {
    let (code, out) = run_valet(home, args);
    assert_eq!(code, 0, "valet {args:?} failed");
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `valet serve` (stderr appended to `log`) and waits until it accepts connections.
async fn serve(home: &Path, port: u16, log: &Path) -> Proc {
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("serve log opens");
    let child = valet(home)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("valet serve starts");
    let mut proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = proc.0.try_wait().expect("try_wait") {
            panic!(
                "valet serve exited with {status}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return proc;
        }
        assert!(
            Instant::now() < deadline,
            "valet serve did not listen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One JSON-RPC call; the whole response object.
async fn rpc(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> reqwest::Result<Value> {
    let mut req = client
        .post(url)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await?.json().await
}

fn quantity(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a quantity: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("a hex quantity")
}

/// What the clients were told: tx hash → value sent.
type Received = Arc<Mutex<HashMap<String, u64>>>;

/// A send of `value` wei to the recipient with fixed gas and fees.
fn send_params(wallet: &str, value: u64) -> Value {
    json!([{
        "from": wallet,
        "to": RECIPIENT,
        "value": format!("0x{value:x}"),
        "gas": format!("0x{GAS:x}"),
        "maxFeePerGas": format!("0x{MAX_FEE:x}"),
        "maxPriorityFeePerGas": format!("0x{PRIORITY_FEE:x}"),
    }])
}

/// The native spend the gateway reserves for a send of `value`.
fn reserved_for(value: u64) -> u128 {
    u128::from(value) + u128::from(GAS) * u128::from(MAX_FEE)
}

/// Waits for a receipt; panics after 10 s.
async fn receipt(client: &reqwest::Client, node: &str, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = rpc(
            client,
            node,
            None,
            "eth_getTransactionReceipt",
            json!([hash]),
        )
        .await
        .expect("anvil answers");
        if !r["result"].is_null() {
            return r["result"].clone();
        }
        assert!(Instant::now() < deadline, "{hash} was not mined: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Setup {
    home: PathBuf,
    log: PathBuf,
    port: u16,
    gateway_url: String,
    node: String,
    wallet: String,
    key_id: String,
    token: String,
}

/// Checks everything that must hold after a crash, with the gateway restarted. Returns the
/// hash of the send it made (of 7 wei).
async fn check_recovery(
    s: &Setup,
    client: &reqwest::Client,
    received: &HashMap<String, u64>,
    round: usize,
) -> String {
    // The audit chain is intact (and its checkpoint consistent).
    let (code, said) = run_valet(&s.home, &["audit", "verify"]);
    assert_eq!(code, 0, "round {round}: audit verify after restart: {said}");

    // Every hash a client received is in the log.
    let export = valet_ok(&s.home, &["audit", "export"]);
    let audited: HashSet<String> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["tx_hash"].as_str().map(str::to_lowercase))
        .collect();
    let missing: Vec<&String> = received
        .keys()
        .filter(|h| !audited.contains(&h.to_lowercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: {} of {} received hashes are not in the audit log: {missing:?}",
        missing.len(),
        received.len()
    );

    // The reservations cover every transaction a client heard of.
    let key: Value =
        serde_json::from_str(&valet_ok(&s.home, &["key", "show", &s.key_id, "--json"]))
            .expect("key show --json is JSON");
    let spend = &key["permissions"]["limits"]["spend"];
    let native = spend
        .as_array()
        .and_then(|a| a.iter().find(|l| l["asset"] == "native"))
        .unwrap_or_else(|| panic!("round {round}: no native limit in {key}"));
    let used: u128 = native["used"]
        .as_str()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("round {round}: no native `used` in {native}"));
    let owed: u128 = received.values().map(|v| reserved_for(*v)).sum();
    assert!(
        used >= owed,
        "round {round}: reserved {used} wei < {owed} wei owed for {} received hashes",
        received.len()
    );

    // Every received hash was mined, each with its own nonce.
    let mut nonces = HashSet::new();
    for hash in received.keys() {
        let r = receipt(client, &s.node, hash).await;
        assert_eq!(r["status"], "0x1", "round {round}: {hash} failed: {r}");
        let tx = rpc(
            client,
            &s.node,
            None,
            "eth_getTransactionByHash",
            json!([hash]),
        )
        .await
        .expect("anvil answers");
        assert!(
            nonces.insert(quantity(&tx["result"]["nonce"])),
            "round {round}: nonce reused by {hash}"
        );
    }

    // A new request works and takes the next nonce.
    let count = |tag: &'static str| {
        let (client, node, wallet) = (client.clone(), s.node.clone(), s.wallet.clone());
        async move {
            quantity(
                &rpc(
                    &client,
                    &node,
                    None,
                    "eth_getTransactionCount",
                    json!([wallet, tag]),
                )
                .await
                .expect("anvil answers")["result"],
            )
        }
    };
    let before = count("pending").await;
    // Not asserted, reported: transactions the node has that the log names by hash, and
    // allowed sends with no outcome (cut off between the reservation and the answer).
    let entries: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let sent = entries.iter().filter(|e| e["tx_hash"].is_string()).count();
    let outcomes: HashSet<&str> = entries
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("tx.")))
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    let cut_off = entries
        .iter()
        .filter(|e| e["action"] == "eth_sendTransaction" && e["decision"] == "allow")
        .filter(|e| {
            !e["request_id"]
                .as_str()
                .is_some_and(|r| outcomes.contains(r))
        })
        .count();
    eprintln!(
        "round {round}: {before} txs on chain, {sent} audited with their hash, {cut_off} allowed \
         sends without an outcome; reserved {used} wei >= {owed} wei owed"
    );
    let resp = rpc(
        client,
        &s.gateway_url,
        Some(&s.token),
        "eth_sendTransaction",
        send_params(&s.wallet, 7),
    )
    .await
    .expect("the restarted gateway answers");
    let hash = resp["result"]
        .as_str()
        .unwrap_or_else(|| panic!("round {round}: a send after restart failed: {resp}"))
        .to_string();
    let r = receipt(client, &s.node, &hash).await;
    assert_eq!(r["status"], "0x1", "round {round}: the new tx failed: {r}");
    let tx = rpc(
        client,
        &s.node,
        None,
        "eth_getTransactionByHash",
        json!([hash]),
    )
    .await
    .expect("anvil answers");
    assert_eq!(
        quantity(&tx["result"]["nonce"]),
        before,
        "round {round}: the new tx does not take the next nonce"
    );
    assert_eq!(count("latest").await, before + 1);
    hash
}

/// Fires sends from [`SENDERS`] tasks and kills the gateway once `KILL_AFTER` hashes came
/// back (plus a jitter that differs per round). Returns the hashes received and how many
/// requests were answered with an error or not at all.
async fn fire_and_kill(
    s: &Setup,
    gateway: Proc,
    round: usize,
    next_value: &Arc<AtomicU64>,
) -> (HashMap<String, u64>, u64) {
    let received: Received = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (received, stop, failed, next_value) = (
                received.clone(),
                stop.clone(),
                failed.clone(),
                next_value.clone(),
            );
            let (url, token, wallet) = (s.gateway_url.clone(), s.token.clone(), s.wallet.clone());
            tokio::spawn(async move {
                // One keep-alive connection per sender.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("client");
                while !stop.load(Ordering::Acquire) {
                    let value = next_value.fetch_add(1, Ordering::Relaxed);
                    match rpc(
                        &client,
                        &url,
                        Some(&token),
                        "eth_sendTransaction",
                        send_params(&wallet, value),
                    )
                    .await
                    {
                        Ok(v) if v["result"].is_string() => {
                            let hash = v["result"].as_str().unwrap_or_default().to_string();
                            received.lock().expect("lock").insert(hash, value);
                        }
                        Ok(v) => {
                            // Not a crash symptom: a refusal while the gateway is up is a bug.
                            panic!("a send was refused: {v}");
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().expect("lock").len() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "round {round}: only {} sends answered in 15 s; log: {}",
            received.lock().expect("lock").len(),
            fs::read_to_string(&s.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(3 * round as u64)).await;
    drop(gateway); // SIGKILL, then reaped
    stop.store(true, Ordering::Release);
    for t in tasks {
        t.await.expect("a sender panicked");
    }
    let received = std::mem::take(&mut *received.lock().expect("lock"));
    (received, failed.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_sends_in_flight_loses_nothing_a_client_was_told() {
    let started = Instant::now();
    let anvil = valet_chain::Anvil::spawn()
        .await
        .expect("anvil starts (run ./tools/install.sh)");
    let client = reqwest::Client::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let init: Value = serde_json::from_str(&valet_ok(
        &home,
        &[
            "init",
            "--rpc-url",
            &anvil.url(),
            "--listen",
            &listen,
            "--json",
        ],
    ))
    .expect("init --json is JSON");
    let wallet = init["wallet"].as_str().expect("wallet").to_string();
    let funded = rpc(
        &client,
        &anvil.url(),
        None,
        "anvil_setBalance",
        json!([wallet, "0x3635c9adc5dea00000"]), // 1000 ETH
    )
    .await
    .expect("anvil answers");
    assert!(funded.get("error").is_none(), "{funded}");

    let log = tmp.path().join("serve.log");
    let mut gateway = serve(&home, port, &log).await;
    let policy = tmp.path().join("policy.toml");
    fs::write(
        &policy,
        format!(
            r#"
            name = "crash"
            profile = "custom"
            chains = [{chain}]
            expires_in = "1h"
            [[allow]]
            target = "{RECIPIENT}"
            [[limits.spend]]
            asset = "native"
            amount = "100 ether"
            window = "24h"
            "#,
            chain = anvil.chain_id()
        ),
    )
    .expect("policy written");
    let issued: Value = serde_json::from_str(&valet_ok(
        &home,
        &[
            "key",
            "issue",
            "--name",
            "crash",
            "--policy",
            policy.to_str().expect("utf-8 path"),
            "--json",
        ],
    ))
    .expect("key issue --json is JSON");
    let setup = Setup {
        home: home.clone(),
        log: log.clone(),
        port,
        gateway_url: format!("http://{listen}/rpc"),
        node: anvil.url(),
        wallet,
        key_id: issued["id"].as_str().expect("id").to_string(),
        token: issued["agent_key"].as_str().expect("agent_key").to_string(),
    };

    let next_value = Arc::new(AtomicU64::new(1_000));
    let mut all_received: HashMap<String, u64> = HashMap::new();
    for round in 1..=ROUNDS {
        let (received, failed) = fire_and_kill(&setup, gateway, round, &next_value).await;
        eprintln!(
            "round {round}: killed with {} hashes received, {failed} requests cut off",
            received.len()
        );
        all_received.extend(received);

        // The crashed state verifies as it is (the database may be ahead of the checkpoint,
        // never behind it).
        let (code, said) = run_valet(&setup.home, &["audit", "verify"]);
        assert_eq!(
            code, 0,
            "round {round}: audit verify right after the kill: {said}"
        );
        let leftovers: Vec<String> = fs::read_dir(&setup.home)
            .expect("home")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        if !leftovers.is_empty() {
            eprintln!("round {round}: checkpoint temporaries left by the kill: {leftovers:?}");
        }

        gateway = serve(&setup.home, setup.port, &setup.log).await;
        let new_hash = check_recovery(&setup, &client, &all_received, round).await;
        // The check's own send counts from here on.
        all_received.insert(new_hash, 7);
    }
    drop(gateway);
    eprintln!(
        "{ROUNDS} crashes, {} hashes checked, in {:.1} s",
        all_received.len(),
        started.elapsed().as_secs_f64()
    );
}
