//! `valet init`: create the home directory, the wallet, the database and the admin token.

use crate::home::{self, HomeArgs, write_private};
use anyhow::{Context as _, bail};
use std::{path::PathBuf, process::ExitCode};
use valet_keys::{KeystoreLimits, Wallet};

/// Create the home directory, the wallet, the database and the admin token
///
/// Creates Valet's home: `valet.toml`, the SQLite database, the admin token (mode 0600) and
/// the wallet, a new random key or an imported keystore, stored as a keystore v3 file.
/// Refuses to touch an existing home. Asks the node for its chain id and records it; a node
/// that does not answer is a warning (start it before `valet serve`).
///
/// The node is --rpc-url, else env ETH_RPC_URL, else http://127.0.0.1:8545. An https:// node
/// is checked against the system's roots, plus --rpc-ca-file for a private CA.
///
/// Examples:
///   valet init --home ./demo
///   valet init --rpc-url https://eth-mainnet.example/v2/$API_KEY
///   VALET_PASSWORD=... valet init --import-keystore ~/.foundry/keystores/bot --rpc-url http://127.0.0.1:8545
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Import this keystore v3 file (geth, foundry) instead of creating a new key.
    #[arg(long, value_name = "FILE")]
    import_keystore: Option<PathBuf>,
    /// Where `valet serve` will listen.
    #[arg(long, value_name = "ADDR", default_value = home::DEFAULT_LISTEN)]
    listen: String,
    /// `sqlite://PATH` or `postgres://…` (default: valet.db in the home).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let dir = home_args.dir()?;
        if dir.join(home::CONFIG).exists() {
            bail!(
                "{} is already initialized; refusing to overwrite it",
                dir.display()
            );
        }
        const FILES: [&str; 7] = [
            home::KEYSTORE,
            home::ADMIN_TOKEN,
            home::CONFIG,
            home::DATABASE,
            "valet.db-wal",
            "valet.db-shm",
            home::CHECKPOINT,
        ];
        if let Some(f) = FILES.iter().find(|f| dir.join(f).exists()) {
            bail!(
                "{} holds {f} but no valet.toml: remove it (or choose another --home) and run init again",
                dir.display()
            );
        }
        let result = self.init(&dir, home_args).await;
        if result.is_err() {
            // Leave nothing half-made behind, so that init can simply be run again.
            for f in FILES {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
        result
    }

    async fn init(self, dir: &std::path::Path, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let (wallet, imported) = match &self.import_keystore {
            Some(src) => {
                let pass = home_args.passphrase("Passphrase of the keystore to import: ", false)?;
                let (w, _) = Wallet::import_keystore(
                    src,
                    pass.as_bytes(),
                    KeystoreLimits::default(),
                    &dir,
                    home::KEYSTORE,
                )?;
                (w, true)
            }
            None => {
                let pass = home_args.passphrase("New wallet passphrase: ", true)?;
                if pass.len() < 8 {
                    bail!("the passphrase must have at least 8 characters");
                }
                let (w, _) = Wallet::create_keystore(&dir, home::KEYSTORE, pass.as_bytes())?;
                (w, false)
            }
        };
        let token = {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            alloy::primitives::hex::encode(b)
        };
        write_private(
            &dir.join(home::ADMIN_TOKEN),
            format!("{token}\n").as_bytes(),
        )?;
        let rpc_url = home_args
            .rpc_url
            .clone()
            .unwrap_or_else(|| home::DEFAULT_RPC_URL.to_string());
        let rpc_ca_file = home_args
            .rpc_ca_file
            .as_deref()
            .map(home::absolute)
            .transpose()?;
        let config = home::Config {
            listen: self.listen.clone(),
            rpc_url,
            rpc_ca_file,
            chain_id: None,
            database_url: self
                .database_url
                .unwrap_or_else(|| format!("sqlite://{}", home::DATABASE)),
            wallet: home::WalletConfig {
                custody: "keystore".into(),
                keystore: home::KEYSTORE.into(),
                address: wallet.address().to_string(),
            },
            anomaly: None,
            alerts: None,
        };
        let mut home = home::Home {
            dir: dir.clone(),
            config,
        };
        home.config.chain_id = check_node(&home).await;
        let store = home.store(None).await?;
        let record = valet_server::admin_record(
            jiff::Timestamp::now(),
            "wallet.init",
            None,
            serde_json::json!({ "wallet": wallet.address(), "imported": imported }),
        );
        let entries = store
            .append(valet_store::Batch {
                audit: vec![record],
                ..Default::default()
            })
            .await?;
        if let Some(e) = entries.last() {
            valet_store::Checkpoint::new(home.checkpoint()).write(e.seq, e.hash)?;
        }
        // Last: valet.toml marks the home as complete.
        write_private(
            &dir.join(home::CONFIG),
            toml::to_string(&home.config)?.as_bytes(),
        )?;
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "home": dir,
                    "wallet": wallet.address(),
                    "imported": imported,
                    "chain_id": home.config.chain_id,
                })
            );
        } else {
            println!("home:   {}", dir.display());
            println!(
                "wallet: {}{}",
                wallet.address(),
                if imported { " (imported)" } else { "" }
            );
            eprintln!(
                "admin token written to {} (mode 0600)",
                dir.join(home::ADMIN_TOKEN).display()
            );
            if let Some(id) = home.config.chain_id {
                println!("chain:  {id}");
            }
            eprintln!("next: fund the wallet, then `valet serve` and `valet key issue`");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The node's chain id, or `None` with a warning on stderr when it does not answer.
async fn check_node(home: &home::Home) -> Option<u64> {
    let node = home::redact_url(&home.config.rpc_url);
    match home.upstream().await {
        Ok(upstream) => {
            eprintln!("node {node} answers: chain {}", upstream.chain_id());
            Some(upstream.chain_id())
        }
        Err(e) => {
            eprintln!(
                "warning: the node at {node} did not answer ({}); recorded anyway: start it \
                 (or fix rpc_url in valet.toml) before `valet serve`",
                e.root_cause()
            );
            None
        }
    }
}
