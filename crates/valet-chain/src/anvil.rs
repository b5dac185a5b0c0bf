//! A local anvil node for tests and the sandbox.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use tokio::sync::oneshot;
use tracing::debug;

use crate::error::{Error, Result};
use crate::tools;
use crate::upstream::Upstream;

/// Environment variable naming the anvil binary to run instead of the pinned one.
pub const ANVIL_ENV: &str = "VALET_ANVIL";

/// How long anvil may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

const TARGET: &str = "valet_chain::anvil";

/// The private keys of anvil's default accounts, derived from the public test mnemonic
/// `test test test test test test test test test test test junk` (`m/44'/60'/0'/0/i`).
/// Known to everyone: test and sandbox use only.
const DEV_KEYS: [&str; 10] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// A local anvil (`--hardfork prague`) listening on a free port of 127.0.0.1, killed when
/// dropped. Its ten default accounts ([`Anvil::dev_key`]) hold 10 000 ETH each, and it mines
/// every transaction as it arrives unless started otherwise ([`Anvil::spawn_with_args`]).
///
/// Its output is read by two plain threads, not by async tasks, so an `Anvil` may outlive the
/// async runtime that started it (a fixture shared between tests) without anvil ever blocking
/// on a full pipe.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
    chain_id: u64,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    /// Starts the pinned anvil and waits until it answers JSON-RPC.
    ///
    /// The binary is `$VALET_ANVIL` if set, else
    /// `tools/node_modules/@foundry-rs/anvil-<platform>/bin/anvil` found by walking up from
    /// this crate's source directory, the running executable and the current directory (or
    /// under `$VALET_NODE_MODULES`). Missing: [`Error::Spawn`] saying to run
    /// `./tools/install.sh`.
    pub async fn spawn() -> Result<Self> {
        Self::spawn_with_args(&[]).await
    }

    /// [`Anvil::spawn`] with extra command-line arguments, e.g. `["--no-mining"]` or
    /// `["--block-time", "1"]` to keep transactions pending.
    pub async fn spawn_with_args(extra: &[&str]) -> Result<Self> {
        let binary = binary()?;
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--hardfork", "prague"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Spawn(format!("cannot start anvil ({}): {e}", binary.display())))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Spawn("anvil's output is not captured".into()));
        };
        // From here on, dropping `anvil` kills the process.
        let mut anvil = Self {
            child,
            url: String::new(),
            chain_id: 0,
        };

        // anvil prints `Listening on <address>` once ready, then logs every request: read it
        // all, so anvil never blocks on a full pipe.
        let (ready, listening) = oneshot::channel();
        spawn_reader("anvil-stdout", move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.trim().strip_prefix("Listening on ")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(address.trim().to_owned());
                }
            }
        })?;
        let (tail_tx, tail) = oneshot::channel();
        spawn_reader("anvil-stderr", move || {
            let _ = tail_tx.send(read_tail(stderr));
        })?;

        let address = match tokio::time::timeout(START_TIMEOUT, listening).await {
            Ok(Ok(address)) => address,
            Ok(Err(_)) => {
                // stdout closed before anvil listened: it is exiting; say why.
                let detail = tokio::time::timeout(Duration::from_secs(5), tail)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                let status = anvil
                    .child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(Error::Spawn(format!(
                    "anvil ({}) exited before listening ({status}): {}",
                    binary.display(),
                    detail.trim()
                )));
            }
            Err(_) => {
                return Err(Error::Spawn(format!(
                    "anvil did not start listening within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
        };

        anvil.url = format!("http://{address}");
        let upstream = Upstream::connect(&anvil.url).await?;
        anvil.chain_id = upstream.chain_id();
        debug!(target: TARGET, url = %anvil.url, chain_id = anvil.chain_id, pid = anvil.pid(), "anvil started");
        Ok(anvil)
    }

    /// The JSON-RPC URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The chain id anvil reports (31337 unless started with `--chain-id`).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The process id of the anvil process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The key of anvil's default account `i` (0 to 9), from the public test mnemonic. Every
    /// one of them is funded on a fresh anvil. Test and sandbox use only: these keys are
    /// public knowledge.
    ///
    /// # Panics
    ///
    /// If `i` is 10 or more.
    pub fn dev_key(&self, i: usize) -> PrivateKeySigner {
        let Some(hex_key) = DEV_KEYS.get(i) else {
            panic!(
                "anvil has {} default accounts; there is no account {i}",
                DEV_KEYS.len()
            );
        };
        match hex_key.parse() {
            Ok(key) => key,
            Err(e) => panic!("built-in anvil dev key {i} does not parse: {e}"),
        }
    }
}

/// The anvil binary to run.
fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ANVIL_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Spawn(format!(
                "{ANVIL_ENV} names {}, which is not a file",
                path.display()
            )))
        };
    }
    let exe = if cfg!(windows) { "anvil.exe" } else { "anvil" };
    let relative: PathBuf = [
        "@foundry-rs",
        &format!("anvil-{}", tools::FOUNDRY_PLATFORM),
        "bin",
        exe,
    ]
    .iter()
    .collect();
    tools::find(&relative).ok_or_else(|| {
        Error::Spawn(format!(
            "anvil not found (tools/node_modules/{}): run ./tools/install.sh, or set {ANVIL_ENV}",
            relative.display()
        ))
    })
}

/// Runs `read` on a named thread of its own.
fn spawn_reader(name: &str, read: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(read)
        .map(drop)
        .map_err(|source| Error::Io {
            context: format!("starting thread {name}"),
            source,
        })
}

/// Reads a pipe to its end; returns the last 4 KiB.
fn read_tail(mut pipe: impl Read) -> String {
    let mut tail = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                let excess = tail.len().saturating_sub(4096);
                tail.drain(..excess);
            }
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}
