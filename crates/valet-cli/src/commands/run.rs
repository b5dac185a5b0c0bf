//! `valet run`: run a command with a temporary agent key, revoked when it exits.

use crate::{admin::Admin, commands::key_issue::Shorthand, home::HomeArgs};
use anyhow::{Context as _, bail};
use std::{path::PathBuf, process::ExitCode};
use valet_store::KeyMode;

/// Issues a temporary key, starts COMMAND with VALET_AGENT_KEY, ETH_RPC_URL (the gateway's
/// /rpc) and VALET_KEY_ID in its environment, and revokes the key when COMMAND exits, whatever
/// its exit status. Exits with COMMAND's status. Needs a running `valet serve`.
///
/// Examples:
///   valet run --profile read-only --expires 10m -- python3 agent.py
///   valet run --policy swap-bot.toml --expires 1h -- node bot.mjs --live
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The policy file (its expiry is replaced by --expires).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    shorthand: Shorthand,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let Some(expires) = self.shorthand.expires.clone() else {
            bail!("--expires DURATION is required: the key must not outlive the command by much");
        };
        let home = home_args.open()?;
        let program = std::path::Path::new(&self.command[0])
            .file_name()
            .map_or_else(
                || self.command[0].clone(),
                |n| n.to_string_lossy().into_owned(),
            );
        let name = format!("run {program}");
        let policy_toml = match &self.policy {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read policy file {}", p.display()))?;
                valet_policy::Policy::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("policy file {}: {e}", p.display()))?;
                let mut table: toml::Table = toml::from_str(&text)?;
                table.remove("expires_at");
                table.insert("expires_in".into(), expires.clone().into());
                toml::to_string(&table)?
            }
            None => self.shorthand.to_toml(&name)?,
        };
        valet_policy::Policy::from_toml(&policy_toml)
            .map_err(|e| anyhow::anyhow!("invalid policy: {e}"))?;
        let admin = Admin::connect(&home).await?;
        if !matches!(admin, Admin::Api { .. }) {
            bail!(
                "no gateway answers at {}: start `valet serve` first",
                home.config.listen
            );
        }
        let issued = admin
            .issue(&name, &policy_toml, KeyMode::Gateway, None)
            .await?;
        let id = issued["id"]
            .as_str()
            .context("the gateway returned no key id")?
            .to_string();
        let key = issued["agent_key"]
            .as_str()
            .context("the gateway returned no agent key")?
            .to_string();
        eprintln!(
            "valet run: key {id} issued for {expires}; starting {}",
            self.command[0]
        );
        let status = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .env("VALET_AGENT_KEY", &key)
            .env("VALET_KEY_ID", &id)
            .env("ETH_RPC_URL", format!("http://{}/rpc", home.config.listen))
            .status()
            .await;
        // Revoke whatever happened to the command.
        let revoked = admin.revoke(&id, None).await;
        match &revoked {
            Ok(_) => eprintln!("valet run: key {id} revoked"),
            Err(e) => {
                eprintln!("valet run: REVOKING key {id} FAILED: {e:#}; run `valet key revoke {id}`")
            }
        }
        let status = status.with_context(|| format!("cannot start {}", self.command[0]))?;
        revoked?;
        Ok(match status.code() {
            Some(code) => ExitCode::from(code.clamp(0, 255) as u8),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    ExitCode::from(128u8.saturating_add(status.signal().unwrap_or(0) as u8))
                }
                #[cfg(not(unix))]
                ExitCode::from(1)
            }
        })
    }
}
