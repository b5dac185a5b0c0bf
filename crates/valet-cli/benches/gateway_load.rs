//! Load benchmark of the whole gateway, the real binary end to end:
//!
//! ```sh
//! cargo bench -p valet-cli --bench gateway_load
//! VALET_LOAD_SECS=30 VALET_LOAD_CONNS=64 cargo bench -p valet-cli --bench gateway_load
//! VALET_LOAD_SSE=4 cargo bench -p valet-cli --bench gateway_load   # with 4 live-feed readers
//! ```
//!
//! Starts anvil, `valet init`s a temporary home (SQLite, the durable default), runs
//! `valet serve` as a child process, issues a full-access key with a huge native cap
//! (`valet key issue --json`), then drives `eth_signTransaction` (gas, fees and chain id
//! given, so the gateway never asks the node) from `VALET_LOAD_CONNS` (64) concurrent
//! keep-alive connections: a warm-up of `VALET_LOAD_WARMUP_SECS` (2), then
//! `VALET_LOAD_SECS` (10) measured. Prints requests/s, p50/p99/max latency, errors, the
//! gateway's peak RSS and CPU, the raw signing rate of this machine on one core and the
//! ratio, the targets beside them, and what `valet audit verify` says afterwards. It asserts
//! nothing about speed; it fails only if the set-up fails or the audit log does not verify.
//!
//! With `VALET_LOAD_SSE=N` (N > 0) the load runs twice on the same gateway: once as above, then
//! with N subscribers reading the dashboard's live feed (`GET /api/v1/events`, one event per
//! audit entry) for the whole run. It prints both throughputs, their ratio (target: at most a
//! 10% drop), and how many of the measured requests' events each subscriber received. The
//! table above that ratio is from the run with subscribers.
//!
//! With `VALET_LOAD_REPLICAS=N` (N > 0) and `VALET_LOAD_DATABASE_URL=postgres://…` it runs N
//! `valet serve` replicas of one home on a fresh schema of that database instead (SPEC
//! section 7), issues `VALET_LOAD_KEYS` (8) keys, and spreads the connections round-robin
//! over replicas and keys; it prints signed requests/s and p50/p99 across keys and per key,
//! the replicas' CPU and PostgreSQL's, and what `valet audit verify` says:
//!
//! ```sh
//! VALET_LOAD_REPLICAS=3 VALET_LOAD_DATABASE_URL=$(tools/postgres.sh) \
//!     cargo bench -p valet-cli --bench gateway_load
//! ```
//!
//! The load generator runs on the same machine and takes CPU from the gateway; the figures
//! are a floor, not a ceiling.

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::eip2718::Encodable2718,
    primitives::{Address, Bytes, TxKind, U256},
};
use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use std::{
    fs,
    hint::black_box,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use valet_keys::Wallet;

const PASSWORD: &str = "load-bench-passphrase";
/// Where the load receives its transactions (never broadcast).
const TO: &str = "0x000000000000000000000000000000000000dEaD";

/// Targets, printed beside the figures (not asserted).
const TARGET_RPS: f64 = 5_000.0;
const TARGET_P99_MS: f64 = 20.0;
const TARGET_RSS_MB: f64 = 100.0;
const TARGET_RATIO: f64 = 0.25;
/// Throughput with live-feed subscribers over throughput without.
const TARGET_SSE_RATIO: f64 = 0.90;

/// Phases the load tasks follow.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) do nothing. A
    // filter that does not name us means "not me".
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "gateway_load: skipped (run it with `cargo bench -p valet-cli --bench gateway_load`)"
        );
        return Ok(());
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !"gateway_load".contains(filter.as_str())
    {
        return Ok(());
    }
    if args.iter().any(|a| a == "--list") {
        println!("gateway_load: bench");
        return Ok(());
    }
    let secs = env_num("VALET_LOAD_SECS", 10).max(1);
    let warmup = env_num("VALET_LOAD_WARMUP_SECS", 2);
    let conns = env_num("VALET_LOAD_CONNS", 64).max(1) as usize;
    let sse = env_num("VALET_LOAD_SSE", 0) as usize;
    let replicas = env_num("VALET_LOAD_REPLICAS", 0) as usize;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if replicas > 0 {
        let db = std::env::var("VALET_LOAD_DATABASE_URL")
            .context("VALET_LOAD_REPLICAS needs VALET_LOAD_DATABASE_URL=postgres://…")?;
        let keys = env_num("VALET_LOAD_KEYS", 8).max(1) as usize;
        let shape = Shape {
            secs,
            warmup,
            conns,
            replicas,
            keys,
        };
        return runtime.block_on(replicated::run(shape, &db));
    }
    runtime.block_on(run(secs, warmup, conns, sse))
}

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

/// Runs a valet command to completion; its stdout, or an error with its stderr.
fn run_valet(home: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = valet(home)
        .args(args)
        .output()
        .with_context(|| format!("running valet {args:?}"))?;
    if !out.status.success() {
        bail!(
            "valet {args:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `valet serve` and waits until it accepts connections.
async fn serve(home: &Path, port: u16, log: &Path) -> anyhow::Result<Proc> {
    serve_on(home, port, log, &[]).await
}

/// Starts `valet serve <args>` and waits until it accepts connections on `port`.
async fn serve_on(home: &Path, port: u16, log: &Path, args: &[&str]) -> anyhow::Result<Proc> {
    let child = valet(home)
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(fs::File::create(log)?)
        .spawn()
        .context("starting valet serve")?;
    let mut proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = proc.0.try_wait()? {
            bail!(
                "valet serve exited with {status}: {}",
                fs::read_to_string(log).unwrap_or_default().trim()
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(proc);
        }
        if Instant::now() > deadline {
            bail!("valet serve did not listen on port {port} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `/proc/<pid>/status` field in kB (e.g. `VmHWM`).
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User and system CPU seconds a process has used so far.
fn proc_cpu_secs(pid: u32) -> Option<(f64, f64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here; in clock ticks.
    let tick = 100.0; // USER_HZ on Linux
    Some((
        f.get(11)?.parse::<f64>().ok()? / tick,
        f.get(12)?.parse::<f64>().ok()? / tick,
    ))
}

/// Signs EIP-1559 transactions like the gateway does (build, sign, envelope, encode) on
/// this thread for `dur`; returns signatures per second.
fn raw_signing_rate(dur: Duration) -> anyhow::Result<f64> {
    let wallet = Wallet::random();
    let to: Address = TO.parse()?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        let mut tx = TxEip1559 {
            chain_id: 31337,
            nonce: n,
            gas_limit: 21_000,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(to),
            value: U256::from(1),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let sig = wallet.sign_transaction(&mut tx)?;
        let envelope = TxEnvelope::Eip1559(tx.into_signed(sig));
        black_box(envelope.encoded_2718());
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// What one connection saw while measuring.
#[derive(Default)]
struct ConnStats {
    /// Latencies in microseconds of requests completed inside the measured window.
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// Every completed request, warm-up and tail included (for the audit count).
    total_ok: u64,
}

async fn connection(
    url: String,
    token: String,
    body: &'static str,
    phase: Arc<AtomicU8>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            stats.errors += 1;
            stats.first_error = Some(e.to_string());
            return stats;
        }
    };
    let auth = format!("Bearer {token}");
    loop {
        let started_in = phase.load(Ordering::Acquire);
        if started_in == STOP {
            break;
        }
        let t = Instant::now();
        let result = client
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let outcome = match result {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(b) if status.is_success() && contains(&b, b"\"result\":\"0x") => Ok(()),
                    Ok(b) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&b))),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let elapsed = t.elapsed();
        let counted = started_in == MEASURE && phase.load(Ordering::Acquire) == MEASURE;
        match outcome {
            Ok(()) => {
                stats.total_ok += 1;
                if counted {
                    stats
                        .latencies
                        .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
                }
            }
            Err(e) => {
                if counted || started_in == WARMUP {
                    stats.errors += 1;
                }
                if stats.first_error.is_none() {
                    stats.first_error = Some(e);
                }
                // Do not spin on a dead gateway.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// The 1-minute load average: other work on the machine skews every figure.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}

async fn run(secs: u64, warmup: u64, conns: usize, sse: usize) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "gateway_load: {conns} keep-alive connections, eth_signTransaction, {warmup} s warm-up, \
         {secs} s measured, {cpus} CPUs shared by anvil, the gateway and this load generator{}",
        if sse > 0 {
            format!("; then again with {sse} live-feed (SSE) subscribers")
        } else {
            String::new()
        }
    );

    // The raw signing rate of this machine, on one core, before any load.
    let raw_before = raw_signing_rate(Duration::from_secs(2))?;

    let anvil = valet_chain::Anvil::spawn()
        .await
        .context("anvil starts (run ./tools/install.sh)")?;
    let tmp = tempfile::tempdir()?;
    let home: PathBuf = tmp.path().join("home");
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let init: Value = serde_json::from_str(&run_valet(
        &home,
        &[
            "init",
            "--rpc-url",
            &anvil.url(),
            "--listen",
            &listen,
            "--json",
        ],
    )?)?;
    let wallet = init["wallet"]
        .as_str()
        .context("valet init --json names the wallet")?
        .to_string();
    let log = tmp.path().join("serve.log");
    let mut gateway = serve(&home, port, &log).await?;
    let pid = gateway.0.id();

    let chain = anvil.chain_id().to_string();
    let issued: Value = serde_json::from_str(&run_valet(
        &home,
        &[
            "key",
            "issue",
            "--name",
            "load",
            "--profile",
            "full-access",
            "--chain",
            &chain,
            "--expires",
            "24h",
            "--spend",
            "native:1000000000ether/24h",
            "--json",
        ],
    )?)?;
    let token = issued["agent_key"]
        .as_str()
        .context("valet key issue --json prints agent_key")?
        .to_string();

    // Leaked once: every request sends the same static bytes, no copy.
    let body: &'static str = Box::leak(
        json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_signTransaction",
            "params": [{
                "from": wallet,
                "to": TO,
                "value": "0x1",
                "gas": "0x5208",
                "maxFeePerGas": "0x3b9aca00",
                "maxPriorityFeePerGas": "0x3b9aca00",
                "chainId": format!("0x{:x}", anvil.chain_id()),
                "type": "0x2",
            }],
        })
        .to_string()
        .into_boxed_str(),
    );
    let url = format!("http://{listen}/rpc");

    // One request first: the set-up works, or we stop here with the reason.
    let probe = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        probe.contains("\"result\":\"0x"),
        "the first eth_signTransaction failed: {probe}"
    );

    let spec = Load {
        url: &url,
        token: &token,
        body,
        conns,
        warmup,
        secs,
        pid,
    };
    // With live-feed subscribers: a run without them first, for the ratio.
    let (baseline, feed) = if sse > 0 {
        let baseline = spec.run(&[]).await?;
        let admin = fs::read_to_string(home.join("admin.token"))?;
        let feed = subscribe(&listen, admin.trim(), sse).await?;
        (Some(baseline), Some(feed))
    } else {
        (None, None)
    };
    let counters: Vec<Arc<AtomicU64>> = feed.iter().flat_map(|f| f.counts.clone()).collect();
    let Measured {
        mut latencies,
        errors,
        total_ok,
        first_error,
        window,
        cpu0,
        cpu1,
        me0,
        me1,
        load0,
        load1,
        delivered,
    } = spec.run(&counters).await?;
    let total_ok = total_ok + 1 + baseline.as_ref().map_or(0, |b| b.total_ok);
    // Read before the gateway stops (which ends every stream).
    let dropped = feed
        .as_ref()
        .map_or(0, |f| f.dropped.load(Ordering::Relaxed));
    let hwm_kb = proc_status_kb(pid, "VmHWM");
    let rss_kb = proc_status_kb(pid, "VmRSS");

    // A clean stop (SIGINT: axum's graceful shutdown), then the audit log.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while gateway.0.try_wait()?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(gateway);

    let raw_after = raw_signing_rate(Duration::from_secs(2))?;
    let raw = (raw_before + raw_after) / 2.0;

    latencies.sort_unstable();
    let n = latencies.len();
    let rps = n as f64 / window;
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let max = latencies
        .last()
        .map_or(f64::NAN, |&m| f64::from(m) / 1000.0);
    let hwm_mb = hwm_kb.map_or(f64::NAN, |k| k as f64 / 1024.0);
    let ratio = rps / raw;

    println!();
    println!("{:<34} {:>14}   target", "figure", "measured");
    println!(
        "{:<34} {:>14.0}   >= {TARGET_RPS:.0} ({})",
        "throughput (requests/s)",
        rps,
        verdict(rps >= TARGET_RPS)
    );
    println!("{:<34} {:>14.2}", "latency p50 (ms)", p50);
    println!(
        "{:<34} {:>14.2}   <= {TARGET_P99_MS} ({})",
        "latency p99 (ms)",
        p99,
        verdict(p99 <= TARGET_P99_MS)
    );
    println!("{:<34} {:>14.2}", "latency max (ms)", max);
    println!(
        "{:<34} {:>14}",
        "requests measured / errors",
        format!("{n} / {errors}")
    );
    println!(
        "{:<34} {:>14.1}   <= {TARGET_RSS_MB} ({})",
        "gateway peak RSS, VmHWM (MB)",
        hwm_mb,
        verdict(hwm_mb <= TARGET_RSS_MB)
    );
    if let Some(k) = rss_kb {
        println!(
            "{:<34} {:>14.1}",
            "gateway RSS at the end (MB)",
            k as f64 / 1024.0
        );
    }
    if let (Some((u0, s0)), Some((u1, s1))) = (cpu0, cpu1) {
        let (u, s) = (u1 - u0, s1 - s0);
        println!(
            "{:<34} {:>14}",
            "gateway CPU user+sys (s, cores)",
            format!("{u:.1}+{s:.1}, {:.2}", (u + s) / window)
        );
        if n > 0 {
            println!(
                "{:<34} {:>14.0}",
                "gateway CPU per request (us)",
                (u + s) * 1e6 / n as f64
            );
        }
    }
    if let (Some((u0, s0)), Some((u1, s1))) = (me0, me1) {
        println!(
            "{:<34} {:>14.2}",
            "load generator CPU (cores)",
            (u1 - u0 + s1 - s0) / window
        );
    }
    println!(
        "{:<34} {:>14}",
        "raw signing, 1 core (sig/s)",
        format!("{raw:.0} ({raw_before:.0}|{raw_after:.0})")
    );
    println!(
        "{:<34} {:>13.1}%   >= {:.0}% ({})",
        "throughput / raw signing",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        verdict(ratio >= TARGET_RATIO)
    );
    if let (Some(b), Some(feed)) = (&baseline, &feed) {
        let base_rps = b.latencies.len() as f64 / b.window;
        let sse_ratio = rps / base_rps;
        println!(
            "{:<34} {:>14.0}",
            "throughput, no feed subscriber", base_rps
        );
        println!(
            "{:<34} {:>14.0}",
            format!("throughput, {} feed subscribers", feed.counts.len()),
            rps
        );
        println!(
            "{:<34} {:>13.1}%   >= {:.0}% ({})",
            "with feed / without",
            sse_ratio * 100.0,
            TARGET_SSE_RATIO * 100.0,
            verdict(sse_ratio >= TARGET_SSE_RATIO)
        );
        // Events that arrived during the measured window, per measured request (boundary
        // effects make it approximate; well below 100% means events were dropped).
        let shares: Vec<f64> = delivered
            .iter()
            .map(|&d| d as f64 / n.max(1) as f64)
            .collect();
        let min = shares.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{:<34} {:>13.1}%   (events/s per subscriber {:.0})",
            "feed events delivered, worst reader",
            min * 100.0,
            delivered.iter().copied().min().unwrap_or(0) as f64 / window
        );
        if dropped > 0 {
            println!("feed subscribers disconnected during the run: {dropped}");
        }
    }
    println!(
        "{:<34} {:>14}",
        "machine load average (1 min)",
        format!("{load0} -> {load1}")
    );
    if let Some(e) = &first_error {
        println!("first error: {}", e.chars().take(300).collect::<String>());
    }

    let verify = valet(&home)
        .args(["audit", "verify"])
        .output()
        .context("running valet audit verify")?;
    let said = String::from_utf8_lossy(&verify.stdout);
    println!("valet audit verify: {} ({})", said.trim(), verify.status);
    let entries: u64 = said
        .split_whitespace()
        .zip(said.split_whitespace().skip(1))
        .find_map(|(a, b)| b.starts_with("entries").then(|| a.parse().ok()).flatten())
        .unwrap_or(0);
    println!(
        "audit entries: {entries} (requests answered in all: {total_ok}; one entry per request, with its tx hash)"
    );
    ensure!(verify.status.success(), "the audit log does not verify");
    drop(anvil);
    Ok(())
}

/// How to drive one measured run.
struct Load<'a> {
    url: &'a str,
    token: &'a str,
    body: &'static str,
    conns: usize,
    warmup: u64,
    secs: u64,
    /// The gateway's process id (for its CPU time).
    pid: u32,
}

/// What one measured run saw.
struct Measured {
    latencies: Vec<u32>,
    errors: u64,
    total_ok: u64,
    first_error: Option<String>,
    window: f64,
    cpu0: Option<(f64, f64)>,
    cpu1: Option<(f64, f64)>,
    me0: Option<(f64, f64)>,
    me1: Option<(f64, f64)>,
    load0: String,
    load1: String,
    /// Per feed subscriber: events received during the measured window.
    delivered: Vec<u64>,
}

impl Load<'_> {
    /// Warm-up, then the measured window; `feed` counts each subscriber's events.
    async fn run(&self, feed: &[Arc<AtomicU64>]) -> anyhow::Result<Measured> {
        let phase = Arc::new(AtomicU8::new(WARMUP));
        let tasks: Vec<_> = (0..self.conns)
            .map(|_| {
                tokio::spawn(connection(
                    self.url.to_string(),
                    self.token.to_string(),
                    self.body,
                    phase.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(self.warmup)).await;
        let load0 = loadavg();
        let cpu0 = proc_cpu_secs(self.pid);
        let me0 = proc_cpu_secs(std::process::id());
        let seen0: Vec<u64> = feed.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let t0 = Instant::now();
        phase.store(MEASURE, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(self.secs)).await;
        phase.store(STOP, Ordering::Release);
        let window = t0.elapsed().as_secs_f64();
        let cpu1 = proc_cpu_secs(self.pid);
        let me1 = proc_cpu_secs(std::process::id());
        // Events already in flight for requests of the window still count.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let delivered = feed
            .iter()
            .zip(seen0)
            .map(|(c, s)| c.load(Ordering::Relaxed) - s)
            .collect();
        let load1 = loadavg();
        let mut latencies = Vec::new();
        let (mut errors, mut total_ok, mut first_error) = (0u64, 0u64, None);
        for t in tasks {
            let s = t.await?;
            latencies.extend(s.latencies);
            errors += s.errors;
            total_ok += s.total_ok;
            first_error = first_error.or(s.first_error);
        }
        Ok(Measured {
            latencies,
            errors,
            total_ok,
            first_error,
            window,
            cpu0,
            cpu1,
            me0,
            me1,
            load0,
            load1,
            delivered,
        })
    }
}

/// Live-feed subscribers reading `GET /api/v1/events` as the dashboard does.
struct Feed {
    /// Events each subscriber has received.
    counts: Vec<Arc<AtomicU64>>,
    /// Subscribers whose stream ended or failed.
    dropped: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Connects `n` subscribers to the live feed and counts the events each receives.
async fn subscribe(listen: &str, admin_token: &str, n: usize) -> anyhow::Result<Feed> {
    let client = reqwest::Client::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let mut counts = vec![];
    let mut tasks = vec![];
    for _ in 0..n {
        let mut resp = client
            .get(format!("http://{listen}/api/v1/events"))
            .bearer_auth(admin_token)
            .send()
            .await
            .context("subscribing to the live feed")?;
        ensure!(
            resp.status().is_success(),
            "GET /api/v1/events: {}",
            resp.status()
        );
        let count = Arc::new(AtomicU64::new(0));
        let (c, d) = (count.clone(), dropped.clone());
        tasks.push(tokio::spawn(async move {
            // Each event is one audit entry: count its `"seq":` (a chunk may split it).
            const NEEDLE: &[u8] = b"\"seq\":";
            let mut carry: Vec<u8> = vec![];
            while let Ok(Some(chunk)) = resp.chunk().await {
                carry.extend_from_slice(&chunk);
                let found = carry.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
                c.fetch_add(found as u64, Ordering::Relaxed);
                let keep = carry.len().min(NEEDLE.len() - 1);
                carry.drain(..carry.len() - keep);
            }
            d.fetch_add(1, Ordering::Relaxed);
        }));
        counts.push(count);
    }
    Ok(Feed {
        counts,
        dropped,
        tasks,
    })
}

/// The shape of a run over several replicas.
struct Shape {
    secs: u64,
    warmup: u64,
    conns: usize,
    replicas: usize,
    keys: usize,
}

/// Several `valet serve` replicas on one PostgreSQL (`VALET_LOAD_REPLICAS`).
mod replicated {
    use super::*;

    /// The body of every request: a signature of a 1-wei send with gas and fees given.
    fn body(wallet: &str, chain_id: u64) -> &'static str {
        Box::leak(
            json!({
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_signTransaction",
                "params": [{
                    "from": wallet,
                    "to": TO,
                    "value": "0x1",
                    "gas": "0x5208",
                    "maxFeePerGas": "0x3b9aca00",
                    "maxPriorityFeePerGas": "0x3b9aca00",
                    "chainId": format!("0x{chain_id:x}"),
                    "type": "0x2",
                }],
            })
            .to_string()
            .into_boxed_str(),
        )
    }

    /// A fresh schema of `base`'s database, and the URL that uses it.
    async fn schema(base: &str) -> anyhow::Result<(sqlx::PgPool, String, String)> {
        let admin = sqlx::PgPool::connect(base)
            .await
            .context("connecting to PostgreSQL")?;
        let name = format!(
            "valet_load_{}_{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(rand::random::<u32>())
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok((
            admin,
            format!("{base}{sep}options[search_path]={name}"),
            name,
        ))
    }

    /// CPU seconds (user + system) of every `postgres` process, from /proc.
    fn postgres_cpu() -> f64 {
        let Ok(dir) = fs::read_dir("/proc") else {
            return f64::NAN;
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            .filter_map(proc_cpu_secs)
            .map(|(u, s)| u + s)
            .sum()
    }

    pub(super) async fn run(shape: Shape, base: &str) -> anyhow::Result<()> {
        let Shape {
            secs,
            warmup,
            conns,
            replicas,
            keys,
        } = shape;
        println!(
            "gateway_load: {replicas} replicas on one PostgreSQL, {keys} keys, {conns} keep-alive \
             connections round-robin, eth_signTransaction, {warmup} s warm-up, {secs} s measured"
        );
        let anvil = valet_chain::Anvil::spawn()
            .await
            .context("anvil starts (run ./tools/install.sh)")?;
        let (admin, url, name) = schema(base).await?;
        let tmp = tempfile::tempdir()?;
        let home: PathBuf = tmp.path().join("home");
        let init: Value = serde_json::from_str(&run_valet(
            &home,
            &[
                "init",
                "--rpc-url",
                &anvil.url(),
                "--database-url",
                &url,
                "--json",
            ],
        )?)?;
        let wallet = init["wallet"]
            .as_str()
            .context("init names the wallet")?
            .to_string();
        let chain = anvil.chain_id().to_string();
        let mut tokens = vec![];
        for k in 0..keys {
            let issued: Value = serde_json::from_str(&run_valet(
                &home,
                &[
                    "key",
                    "issue",
                    "--name",
                    &format!("load{k}"),
                    "--profile",
                    "full-access",
                    "--chain",
                    &chain,
                    "--expires",
                    "24h",
                    "--spend",
                    "native:1000000000ether/24h",
                    "--json",
                ],
            )?)?;
            tokens.push(
                issued["agent_key"]
                    .as_str()
                    .context("agent_key")?
                    .to_string(),
            );
        }
        let mut procs = vec![];
        let mut urls = vec![];
        for r in 0..replicas {
            let port = free_port()?;
            let listen = format!("127.0.0.1:{port}");
            let log = tmp.path().join(format!("serve-{r}.log"));
            procs.push(serve_on(&home, port, &log, &["--listen", &listen]).await?);
            urls.push(format!("http://{listen}/rpc"));
        }
        let pids: Vec<u32> = procs.iter().map(|p| p.0.id()).collect();
        let body = body(&wallet, anvil.chain_id());

        let phase = Arc::new(AtomicU8::new(WARMUP));
        let tasks: Vec<_> = (0..conns)
            .map(|c| {
                let (url, token) = (urls[c % replicas].clone(), tokens[c % keys].clone());
                tokio::spawn(connection(url, token, body, phase.clone()))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        let cpu = |pids: &[u32]| -> f64 {
            pids.iter()
                .filter_map(|p| proc_cpu_secs(*p))
                .map(|(u, s)| u + s)
                .sum()
        };
        let (cpu0, pg0, load0) = (cpu(&pids), postgres_cpu(), loadavg());
        let t0 = Instant::now();
        phase.store(MEASURE, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        phase.store(STOP, Ordering::Release);
        let window = t0.elapsed().as_secs_f64();
        let (cpu1, pg1, load1) = (cpu(&pids), postgres_cpu(), loadavg());
        let mut per_key: Vec<Vec<u32>> = vec![vec![]; keys];
        let (mut errors, mut first_error) = (0, None);
        for (c, t) in tasks.into_iter().enumerate() {
            let s = t.await?;
            per_key[c % keys].extend(s.latencies);
            errors += s.errors;
            first_error = first_error.or(s.first_error);
        }
        let mut all: Vec<u32> = per_key.iter().flatten().copied().collect();
        all.sort_unstable();
        println!();
        println!("{:<34} {:>14}", "figure", "measured");
        println!(
            "{:<34} {:>14.0}   (target >= 3000)",
            "signed requests/s, all keys",
            all.len() as f64 / window
        );
        println!(
            "{:<34} {:>14.2}",
            "latency p50 (ms)",
            percentile(&all, 0.50)
        );
        println!(
            "{:<34} {:>14.2}   (target <= 50)",
            "latency p99 (ms)",
            percentile(&all, 0.99)
        );
        println!(
            "{:<34} {:>14}",
            "requests measured / errors",
            format!("{} / {errors}", all.len())
        );
        for (k, l) in per_key.iter_mut().enumerate() {
            l.sort_unstable();
            println!(
                "{:<34} {:>14}",
                format!("key {k}: req/s, p99 (ms)"),
                format!("{:.0}, {:.2}", l.len() as f64 / window, percentile(l, 0.99))
            );
        }
        println!(
            "{:<34} {:>14.2}",
            "replicas' CPU (cores)",
            (cpu1 - cpu0) / window
        );
        println!(
            "{:<34} {:>14.2}",
            "PostgreSQL CPU (cores)",
            (pg1 - pg0) / window
        );
        println!(
            "{:<34} {:>14}",
            "machine load average (1 min)",
            format!("{load0} -> {load1}")
        );
        if let Some(e) = &first_error {
            println!("first error: {}", e.chars().take(300).collect::<String>());
        }
        drop(procs);
        let verify = valet(&home).args(["audit", "verify"]).output()?;
        println!(
            "valet audit verify: {} ({})",
            String::from_utf8_lossy(&verify.stdout).trim(),
            verify.status
        );
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
            .execute(&admin)
            .await;
        ensure!(verify.status.success(), "the audit log does not verify");
        drop(anvil);
        Ok(())
    }
}
