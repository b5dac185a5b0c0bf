//! `valet serve`: run the gateway.

use crate::home::HomeArgs;
use anyhow::Context as _;
use std::process::ExitCode;
use valet_keys::{KeystoreLimits, Wallet};

/// Run the gateway
///
/// Runs the gateway: agents talk JSON-RPC to `/rpc` with their agent key, the owner uses
/// `/api/v1` with the admin token. Binds 127.0.0.1 unless told otherwise. The upstream chain
/// id is read at start and pinned. It records where it listens in the home, so the other
/// commands find it; on a SQLite home a second `valet serve` refuses to start. In the
/// background (`valet serve &`) it cannot prompt for the passphrase (the shell would stop it):
/// give --password-file FILE or VALET_PASSWORD.
///
/// Examples:
///   valet serve
///   valet serve --listen 127.0.0.1:9000 --rpc-url http://127.0.0.1:8545
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Address to listen on (default: valet.toml's `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Database (default: valet.toml's `database_url`).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    #[arg(long)]
    trust_proxy: bool,
    /// The account that pays the gas of on-chain keys' relayed calls (passphrase in env
    /// VALET_RELAYER_PASSWORD, else a prompt). Without it, on-chain keys cannot send.
    #[arg(long, value_name = "FILE")]
    relayer_keystore: Option<std::path::PathBuf>,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let database_url = home.database_url(self.database_url.as_deref());
        // A second gateway on one SQLite home is refused before anything else happens.
        let serve_lock = if database_url.starts_with("sqlite:") {
            Some(crate::gateways::lock_sqlite_home(&home.dir)?)
        } else {
            None
        };
        // Bad thresholds or an unsigned webhook fail before the passphrase is asked for.
        let anomaly = home.anomaly_config()?;
        let relayer = self
            .relayer_keystore
            .as_deref()
            .map(crate::onchain::relayer)
            .transpose()?;
        if home_args.password_file.is_none() && std::env::var_os("VALET_PASSWORD").is_none() {
            // Seen even when backgrounded: the shell stops a background job only when it reads
            // the terminal, which the prompt is about to do.
            eprintln!(
                "valet serve: asking for the wallet passphrase; to run it in the background \
                 (valet serve &), give --password-file FILE or VALET_PASSWORD instead"
            );
        }
        let pass = home_args.passphrase("Wallet passphrase: ", false)?;
        let wallet = Wallet::open(&home.keystore(), pass.as_bytes(), KeystoreLimits::default())?;
        // Session keys of on-chain keys are kept under the wallet's passphrase.
        let session_pass = zeroize::Zeroizing::new(pass.as_bytes().to_vec());
        drop(pass);
        let store = home.store(self.database_url.as_deref()).await?;
        let journal = valet_store::GroupCommit::new(
            store.clone(),
            Some(valet_store::Checkpoint::new(home.checkpoint())),
        );
        let upstream = home.upstream().await?;
        let listen = self.listen.unwrap_or_else(|| home.config.listen.clone());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        let running = crate::gateways::Running {
            listen: local.to_string(),
            pid: std::process::id(),
            instance: crate::gateways::instance_id(),
            chain_id: upstream.chain_id(),
        };
        let _registration = crate::gateways::register(&home.dir, &running, serve_lock)?;
        let gateway = valet_server::Gateway::with_anomaly(
            valet_server::GatewayParts {
                store,
                journal,
                upstream: upstream.clone(),
                wallet,
                admin_token: home.admin_token()?,
                trust_proxy: self.trust_proxy,
                checkpoint: Some(home.checkpoint()),
                onchain: Some(valet_server::Onchain::new(
                    home.dir.join(crate::onchain::SESSIONS),
                    session_pass,
                    relayer.map(|r| (r, &upstream)),
                )?),
            },
            anomaly,
        );
        eprintln!(
            "valet gateway on http://{local} (rpc: /rpc, admin: /api/v1); chain {}, wallet {}, \
             instance {} (pid {})",
            upstream.chain_id(),
            gateway.wallet(),
            running.instance,
            running.pid,
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        valet_server::serve(gateway, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    }
}
