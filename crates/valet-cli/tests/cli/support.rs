//! The parts every end-to-end test uses: a chain (anvil and the sandbox contracts), a home made
//! by the real `valet init`, the real `valet serve` as a child process, and plain JSON-RPC.

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use std::{
    fs,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};
use valet_chain::{Anvil, contracts::Sandbox};

/// The wallet passphrase of every test home (given as `VALET_PASSWORD`).
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// Someone the agent must not pay.
pub(crate) const STRANGER: Address = Address::with_last_byte(0x5a);
/// One tUSD in base units (6 decimals).
pub(crate) const TUSD: u64 = 1_000_000;
/// The tUSD every test wallet starts with: 10 000.
pub(crate) const FUNDED_TUSD: u64 = 10_000 * TUSD;

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a finished `valet` run left.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// What a finished process left.
    pub(crate) fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics unless the exit status was 0.
    pub(crate) fn ok(self, what: &str) -> Self {
        assert_eq!(
            self.code, 0,
            "`valet {what}` failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout as exactly one JSON value on one line (nothing else on stdout).
    pub(crate) fn json(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one JSON line on stdout, got: {:?}",
            self.stdout
        );
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

/// A free port on 127.0.0.1 (bound and released: good enough for tests on one machine).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A home directory made by `valet init`, inside a temporary directory.
pub(crate) struct Home {
    /// The temporary directory: the home is `home/`, logs and policy files sit beside it.
    pub(crate) tmp: tempfile::TempDir,
    /// `127.0.0.1:<port>`: where `valet serve` listens.
    pub(crate) listen: String,
    /// The wallet `valet init` created.
    pub(crate) wallet: Address,
    /// What `valet init` printed on stderr.
    init_stderr: String,
}

impl Home {
    /// The path of the home directory.
    pub(crate) fn path(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// `valet --home H <args>` with the passphrase in the environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        command(&self.path(), args)
    }

    /// Runs `valet --home H <args>` to its end.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("valet runs"))
    }

    /// Runs `valet --home H <args>` and panics unless it exits 0.
    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        self.run(args).ok(&args.join(" "))
    }

    /// `valet init --json` against `rpc_url`, listening on a free port; returns the home and
    /// init's JSON output.
    pub(crate) fn init(rpc_url: &str) -> (Self, Value) {
        Self::init_with(rpc_url, &[])
    }

    /// [`Home::init`] with more arguments to `valet init`.
    pub(crate) fn init_with(rpc_url: &str, extra: &[&str]) -> (Self, Value) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let dir = tmp.path().join("home");
        let mut args = vec!["init", "--rpc-url", rpc_url, "--listen", &listen, "--json"];
        args.extend_from_slice(extra);
        let out = Run::from(command(&dir, &args).output().expect("valet runs")).ok("init");
        let json = out.json();
        let wallet = json["wallet"]
            .as_str()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("init --json names the wallet: {json}"));
        (
            Self {
                tmp,
                listen,
                wallet,
                init_stderr: out.stderr.clone(),
            },
            json,
        )
    }

    /// What `valet init` printed on stderr.
    pub(crate) fn init_stderr(&self) -> &str {
        &self.init_stderr
    }

    /// Writes a file beside the home and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.tmp.path().join(name);
        fs::write(&path, text).expect("write file");
        path.display().to_string()
    }

    /// `valet key issue --json <args>`: the issued key's JSON.
    pub(crate) fn issue(&self, args: &[&str]) -> Value {
        let mut all = vec!["key", "issue", "--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// Starts `valet serve` and waits until it accepts connections.
    pub(crate) fn serve(&self) -> Server {
        self.serve_with(&[], &[])
    }

    /// Starts `valet serve <args>` with `env` added and waits until it accepts connections.
    pub(crate) fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        self.serve_at(&self.listen, args, env)
    }

    /// Starts `valet serve --listen <listen> <args>` and waits until it accepts connections.
    pub(crate) fn serve_at(&self, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let log = self
            .tmp
            .path()
            .join(format!("serve-{}.log", listen.replace(':', "_")));
        let file = fs::File::create(&log).expect("create serve.log");
        let mut all = vec!["serve", "--listen", listen];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(file)
            .spawn()
            .expect("valet serve starts");
        let mut server = Server {
            child,
            log,
            url: format!("http://{listen}"),
        };
        let addr: SocketAddr = listen.parse().expect("listen address");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "valet serve exited ({status}) before listening:\n{}",
                    server.log()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return server;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "valet serve did not listen on {addr} within 30 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_valet"));
    c.arg("--home")
        .arg(home)
        .args(args)
        .env("VALET_PASSWORD", PASSWORD)
        .env_remove("VALET_HOME")
        .env_remove("ETH_RPC_URL")
        .env_remove("VALET_RPC_CA_FILE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

/// A running `valet serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
}

impl Server {
    /// The gateway's JSON-RPC endpoint.
    pub(crate) fn rpc_url(&self) -> String {
        format!("{}/rpc", self.url)
    }

    /// What the gateway printed so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One JSON-RPC call with the agent key; the whole response object.
    pub(crate) async fn rpc(&self, key: &str, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        reqwest::Client::new()
            .post(self.rpc_url())
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("the gateway answers")
            .json()
            .await
            .expect("the gateway answers JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Anvil with the sandbox contracts: tUSD, WETH9 and Uniswap V2 with a funded pool.
pub(crate) struct Chain {
    pub(crate) anvil: Anvil,
    pub(crate) sandbox: Sandbox,
}

impl Chain {
    pub(crate) async fn start() -> Self {
        let anvil = Anvil::spawn()
            .await
            .expect("anvil starts (run ./tools/install.sh)");
        let sandbox = valet_chain::contracts::deploy_sandbox(&anvil.url(), Self::deployer(&anvil))
            .await
            .expect("the sandbox contracts deploy");
        Self { anvil, sandbox }
    }

    fn deployer(anvil: &Anvil) -> alloy::network::EthereumWallet {
        alloy::network::EthereumWallet::from(anvil.dev_key(0))
    }

    /// Gives `to` 10 000 tUSD and 100 ETH.
    pub(crate) async fn fund(&self, to: Address) {
        valet_chain::contracts::fund(
            &self.anvil.url(),
            Self::deployer(&self.anvil),
            &self.sandbox,
            to,
            U256::from(FUNDED_TUSD),
            U256::from(100u128 * 10u128.pow(18)),
        )
        .await
        .expect("funding works");
    }

    pub(crate) async fn token_balance(&self, owner: Address) -> U256 {
        valet_chain::contracts::token_balance(&self.anvil.url(), self.sandbox.token, owner)
            .await
            .expect("balanceOf")
    }

    /// A call straight to anvil, bypassing the gateway; the `result`.
    pub(crate) async fn node(&self, method: &str, params: Value) -> Value {
        node_call(&self.anvil.url(), method, params).await
    }

    /// The swap-only policy of the sandbox: the local router is trusted, 1 000 tUSD a day.
    pub(crate) fn swap_policy(&self) -> String {
        format!(
            r#"name = "swap-bot"
profile = "swap-only"
chains = [31337]
expires_in = "1h"
routers = ["{router}"]

[[limits.spend]]
asset = "{token}"
amount = "1000"
decimals = 6
window = "24h"
"#,
            router = self.sandbox.router,
            token = self.sandbox.token,
        )
    }
}

/// A JSON-RPC call to a node; its `result` (panics on an error).
pub(crate) async fn node_call(url: &str, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let resp: Value = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("the node answers")
        .json()
        .await
        .expect("the node answers JSON");
    assert!(
        resp["error"].is_null(),
        "{method} failed at the node: {resp}"
    );
    resp["result"].clone()
}

/// The error code of a JSON-RPC response, if it is an error.
pub(crate) fn code(resp: &Value) -> Option<i64> {
    resp["error"]["code"].as_i64()
}

/// The violation codes of a 4001 response.
pub(crate) fn violations(resp: &Value) -> Vec<String> {
    resp["error"]["data"]["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
