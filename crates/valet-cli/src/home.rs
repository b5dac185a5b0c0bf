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
        let config: Config =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
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
    /// `sqlite://PATH` (relative to the home) or `postgres://…`.
    pub(crate) database_url: String,
    /// The wallet's custody.
    pub(crate) wallet: WalletConfig,
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
