//! A running gateway in front of anvil with the sandbox contracts deployed.

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use std::sync::Arc;
use valet_chain::{Anvil, contracts::Sandbox};
use valet_keys::Wallet;
use valet_server::{Gateway, GatewayParts};
use valet_store::{GroupCommit, KeyMode, Store};

pub(crate) const ADMIN: &str = "test-admin-token";

pub(crate) struct Env {
    pub(crate) anvil: Anvil,
    pub(crate) sandbox: Sandbox,
    pub(crate) wallet: Address,
    pub(crate) url: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: reqwest::Client,
    /// Kept alive for the database file and the gateway task.
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Env {
    /// Anvil, the sandbox contracts, a funded wallet (100 ETH, 10 000 tUSD), and the gateway.
    pub(crate) async fn start() -> Self {
        Self::start_with(valet_server::AnomalyConfig::default()).await
    }

    /// [`Env::start`] with these anomaly thresholds and webhook.
    pub(crate) async fn start_with(anomaly: valet_server::AnomalyConfig) -> Self {
        let anvil = Anvil::spawn()
            .await
            .expect("anvil starts (run ./tools/install.sh)");
        let deployer = alloy::network::EthereumWallet::from(anvil.dev_key(0));
        let sandbox = valet_chain::contracts::deploy_sandbox(&anvil.url(), deployer.clone())
            .await
            .expect("sandbox deploys");
        let wallet = Wallet::random();
        valet_chain::contracts::fund(
            &anvil.url(),
            deployer,
            &sandbox,
            wallet.address(),
            U256::from(10_000_000_000u64),
            U256::from(100u128 * 10u128.pow(18)),
        )
        .await
        .expect("funding works");
        let dir = tempfile::tempdir().unwrap();
        let store = valet_store::open(&format!(
            "sqlite://{}",
            dir.path().join("valet.db").display()
        ))
        .await
        .unwrap();
        let checkpoint = dir.path().join("audit.head");
        let journal = GroupCommit::new(
            store.clone(),
            Some(valet_store::Checkpoint::new(&checkpoint)),
        );
        let upstream = valet_chain::Upstream::connect(&anvil.url()).await.unwrap();
        let address = wallet.address();
        let gateway = Gateway::with_anomaly(
            GatewayParts {
                store: store.clone(),
                journal,
                upstream,
                wallet,
                admin_token: ADMIN.into(),
                trust_proxy: true,
                checkpoint: Some(checkpoint),
                onchain: None,
            },
            anomaly,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(valet_server::serve(
            gateway,
            listener,
            std::future::pending(),
        ));
        Self {
            anvil,
            sandbox,
            wallet: address,
            url,
            store,
            client: reqwest::Client::new(),
            _dir: dir,
            _server: server,
        }
    }

    /// Issues a key under `policy` (TOML) and returns (id, agent key).
    pub(crate) async fn issue(&self, policy: &str) -> (String, String) {
        let k = valet_server::issue(
            self.store.as_ref(),
            self.wallet,
            Some("test"),
            policy,
            KeyMode::Gateway,
            jiff::Timestamp::now(),
            None,
        )
        .await
        .expect("key issues");
        (k.record.id.clone(), k.agent_key.token().to_string())
    }

    /// Posts a raw body to /rpc.
    pub(crate) async fn post(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self.client.post(format!("{}/rpc", self.url)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = req.header("content-type", "application/json");
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// One JSON-RPC call; the whole response object.
    pub(crate) async fn rpc(&self, token: &str, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        self.post(Some(token), body.to_string()).await.1
    }

    /// An admin API call.
    pub(crate) async fn admin(&self, method: reqwest::Method, path: &str) -> Value {
        self.client
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn token_balance(&self, owner: Address) -> U256 {
        valet_chain::contracts::token_balance(&self.anvil.url(), self.sandbox.token, owner)
            .await
            .unwrap()
    }

    /// The swap-only policy of the sandbox: the local router is trusted, 1 000 tUSD a day.
    pub(crate) fn swap_policy(&self) -> String {
        format!(
            r#"
            name = "swap-bot"
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

/// The error code of a response, if it is an error.
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
