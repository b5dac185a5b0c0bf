//! The home directory (`--home`, `VALET_HOME`, default `~/.valet`): `valet.toml`, the SQLite
//! database, the wallet keystore, the admin token and the audit checkpoint.

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

/// File names inside the home directory.
pub(crate) const CONFIG: &str = "valet.toml";
pub(crate) const ADMIN_TOKEN: &str = "admin.token";
pub(crate) const KEYSTORE: &str = "wallet.json";
pub(crate) const DATABASE: &str = "valet.db";
pub(crate) const CHECKPOINT: &str = "audit.head";
pub(crate) const WEBHOOK_SECRET: &str = "webhook.secret";

/// Default gateway address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8547";
/// Default upstream node.
pub(crate) const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";

/// Global options every command shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HomeArgs {
    /// Valet's home directory.
    #[arg(long, global = true, env = "VALET_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Read the wallet passphrase from this file (else env VALET_PASSWORD, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// The upstream node (http:// or https://) for this run, over valet.toml's `rpc_url`
    /// (`valet init` records it; default http://127.0.0.1:8545).
    #[arg(long, global = true, env = "ETH_RPC_URL", value_name = "URL")]
    pub(crate) rpc_url: Option<String>,
    /// A PEM file of CA certificates to trust for an https:// node, besides the system's
    /// roots (a private node's CA). `valet init` records it in valet.toml.
    #[arg(long, global = true, env = "VALET_RPC_CA_FILE", value_name = "FILE")]
    pub(crate) rpc_ca_file: Option<PathBuf>,
}

impl HomeArgs {
    /// The home directory path.
    pub(crate) fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.home {
            Some(h) => Ok(h.clone()),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set: pass --home DIR")?;
                Ok(PathBuf::from(home).join(".valet"))
            }
        }
    }

    /// Opens an initialized home.
    pub(crate) fn open(&self) -> anyhow::Result<Home> {
        let dir = self.dir()?;
        let path = dir.join(CONFIG);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: run `valet init --home {}` first",
                path.display(),
                dir.display()
            )
        })?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        if let Some(url) = &self.rpc_url {
            config.rpc_url = url.clone();
        }
        if let Some(ca) = &self.rpc_ca_file {
            config.rpc_ca_file = Some(absolute(ca)?);
        }
        Ok(Home { dir, config })
    }

    /// The wallet passphrase: `--password-file`, `VALET_PASSWORD`, or a prompt.
    /// The passphrase is wiped from memory when the returned value is dropped.
    pub(crate) fn passphrase(
        &self,
        prompt: &str,
        confirm: bool,
    ) -> anyhow::Result<Zeroizing<String>> {
        if let Some(file) = &self.password_file {
            let text = Zeroizing::new(
                fs::read_to_string(file)
                    .with_context(|| format!("cannot read password file {}", file.display()))?,
            );
            return Ok(Zeroizing::new(
                text.trim_end_matches(['\n', '\r']).to_string(),
            ));
        }
        if let Ok(p) = std::env::var("VALET_PASSWORD") {
            return Ok(Zeroizing::new(p));
        }
        let first = Zeroizing::new(rpassword::prompt_password(prompt).context(
            "no passphrase: give --password-file FILE, set VALET_PASSWORD, or run in a terminal",
        )?);
        if confirm
            && *Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?) != *first
        {
            bail!("the passphrases differ");
        }
        Ok(first)
    }
}

/// `valet.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where `valet serve` listens.
    pub(crate) listen: String,
    /// The upstream node.
    pub(crate) rpc_url: String,
    /// Extra CA certificates (PEM) trusted for an https:// node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rpc_ca_file: Option<PathBuf>,
    /// The chain id the node reported at `valet init` (absent if it did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chain_id: Option<u64>,
    /// `sqlite://PATH` (relative to the home) or `postgres://…`.
    pub(crate) database_url: String,
    /// The wallet's custody.
    pub(crate) wallet: WalletConfig,
    /// Anomaly detection thresholds (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) anomaly: Option<AnomalyToml>,
    /// Where anomalies are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alerts: Option<AlertsToml>,
}

/// `[anomaly]` in `valet.toml`: every key optional, defaults as in
/// [`valet_server::AnomalyConfig::default`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomalyToml {
    /// At most one anomaly per kind per key within this duration (`10m`).
    pub(crate) cooldown: Option<String>,
    /// `rate_spike`: last-minute requests above this × the key's baseline (5)…
    pub(crate) rate_factor: Option<f64>,
    /// …and above this many (60).
    pub(crate) rate_floor: Option<u64>,
    /// The baseline's horizon (`1h`): a moving average of requests per minute.
    pub(crate) rate_baseline: Option<String>,
    /// `denial_burst`: this many denials (10)…
    pub(crate) denial_burst: Option<u64>,
    /// …within this duration (`1m`).
    pub(crate) denial_window: Option<String>,
}

/// `[alerts]` in `valet.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsToml {
    /// `http://…`: each anomaly is POSTed here, signed with the secret from `webhook.secret`
    /// or `VALET_WEBHOOK_SECRET`.
    pub(crate) webhook_url: Option<String>,
}

/// `[wallet]` in `valet.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WalletConfig {
    /// The custody backend (`keystore`).
    pub(crate) custody: String,
    /// The keystore file, relative to the home.
    pub(crate) keystore: String,
    /// The wallet's address (public; for display without the passphrase).
    pub(crate) address: String,
}

/// An initialized home directory.
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
}

impl Home {
    /// The database URL with a relative SQLite path resolved against the home.
    pub(crate) fn database_url(&self, override_url: Option<&str>) -> String {
        let url = override_url.unwrap_or(&self.config.database_url);
        match url.strip_prefix("sqlite://") {
            Some(path) if !Path::new(path).is_absolute() => {
                format!("sqlite://{}", self.dir.join(path).display())
            }
            _ => url.to_string(),
        }
    }

    /// How to reach the node: the system's roots plus `rpc_ca_file`.
    pub(crate) fn http_options(&self) -> valet_chain::HttpOptions {
        valet_chain::HttpOptions {
            ca_file: self.config.rpc_ca_file.clone(),
            ..valet_chain::HttpOptions::default()
        }
    }

    /// Connects to the upstream node (never naming its URL, which may hold an API key).
    pub(crate) async fn upstream(&self) -> anyhow::Result<valet_chain::Upstream> {
        valet_chain::Upstream::connect_with(&self.config.rpc_url, &self.http_options())
            .await
            .with_context(|| {
                format!(
                    "cannot reach the node at {} (check --rpc-url, ETH_RPC_URL or valet.toml's rpc_url)",
                    redact_url(&self.config.rpc_url)
                )
            })
    }

    /// A sender from `wallet` on the upstream node.
    pub(crate) async fn sender(
        &self,
        wallet: alloy::network::EthereumWallet,
    ) -> anyhow::Result<valet_chain::Sender> {
        Ok(valet_chain::Sender::on(self.upstream().await?, wallet))
    }

    /// The admin token.
    pub(crate) fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.dir.join(ADMIN_TOKEN);
        Ok(fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string())
    }

    /// The audit checkpoint file.
    pub(crate) fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT)
    }

    /// The keystore file.
    pub(crate) fn keystore(&self) -> PathBuf {
        self.dir.join(&self.config.wallet.keystore)
    }

    /// The gateway's anomaly settings from `[anomaly]` and `[alerts]`, with the webhook secret
    /// from `VALET_WEBHOOK_SECRET` or the home's `webhook.secret`.
    pub(crate) fn anomaly_config(&self) -> anyhow::Result<valet_server::AnomalyConfig> {
        let mut c = valet_server::AnomalyConfig::default();
        let t = self.config.anomaly.clone().unwrap_or_default();
        let duration = |v: &Option<String>, key: &str, default: u64| -> anyhow::Result<u64> {
            match v {
                None => Ok(default),
                Some(text) => match valet_policy::units::parse_duration(text) {
                    Ok(0) => bail!("valet.toml: anomaly.{key} must be longer than 0s"),
                    Ok(secs) => Ok(secs),
                    Err(e) => bail!("valet.toml: anomaly.{key}: {e}"),
                },
            }
        };
        c.cooldown_secs = duration(&t.cooldown, "cooldown", c.cooldown_secs)?;
        c.denial_window_secs = duration(&t.denial_window, "denial_window", c.denial_window_secs)?;
        c.rate_baseline_minutes = duration(
            &t.rate_baseline,
            "rate_baseline",
            c.rate_baseline_minutes * 60,
        )?
        .div_ceil(60);
        if let Some(f) = t.rate_factor {
            if !(f.is_finite() && f >= 1.0) {
                bail!("valet.toml: anomaly.rate_factor must be a number >= 1 (got {f})");
            }
            c.rate_factor = f;
        }
        if let Some(n) = t.rate_floor {
            c.rate_floor = n;
        }
        if let Some(n) = t.denial_burst {
            if n == 0 {
                bail!("valet.toml: anomaly.denial_burst must be at least 1");
            }
            c.denial_burst = n;
        }
        let url = self
            .config
            .alerts
            .as_ref()
            .and_then(|a| a.webhook_url.clone());
        if let Some(url) = url {
            let secret = match std::env::var("VALET_WEBHOOK_SECRET") {
                Ok(s) => Zeroizing::new(s),
                Err(_) => {
                    let path = self.dir.join(WEBHOOK_SECRET);
                    Zeroizing::new(fs::read_to_string(&path).with_context(|| {
                        format!(
                            "alerts.webhook_url is set but there is no secret: write it to {} or set VALET_WEBHOOK_SECRET",
                            path.display()
                        )
                    })?)
                }
            };
            let secret = secret.trim_end_matches(['\n', '\r']);
            c.webhook = Some(
                valet_server::Webhook::new(&url, secret.as_bytes())
                    .context("valet.toml: alerts")?,
            );
        }
        Ok(c)
    }

    /// Opens the store named by the config (or an override).
    pub(crate) async fn store(
        &self,
        override_url: Option<&str>,
    ) -> anyhow::Result<std::sync::Arc<dyn valet_store::Store>> {
        let url = self.database_url(override_url);
        valet_store::open(&url)
            .await
            .context("cannot open the database")
    }
}

/// A URL's scheme, host and port only: paths, queries and credentials of hosted nodes hold
/// API keys.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}://", u.scheme()),
        },
        Err(_) => "(an unparsable URL)".into(),
    }
}

/// `path` made absolute against the current directory (a CA file named on the command line
/// must still be found when `valet serve` runs elsewhere).
pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Writes a file only the owner can read (0600), refusing to overwrite.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}
