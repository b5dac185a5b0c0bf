//! `valet run`: run a command with a temporary agent key, revoked when it exits.

use crate::{
    admin::Admin,
    commands::key_issue::{Shorthand, check_chain, policy_text},
    home::HomeArgs,
};
use anyhow::{Context as _, bail};
use std::{path::PathBuf, process::ExitCode};
use valet_store::KeyMode;

/// Run a command with a temporary key, revoked when it exits
///
/// Issues a temporary key, starts COMMAND with VALET_AGENT_KEY, ETH_RPC_URL (this home's
/// gateway's /rpc), ETH_RPC_HEADERS ("Authorization: Bearer <key>", which cast and forge send)
/// and VALET_KEY_ID in its environment, and revokes the key when COMMAND exits, whatever its
/// exit status. Exits with COMMAND's status. Needs a running `valet serve`; --expires is
/// required.
///
/// Examples:
///   valet run --profile read-only --expires 10m -- python3 agent.py
///   valet run --policy swap-bot.toml --expires 1h -- node bot.mjs --live
///   valet run --profile read-only --expires 5m -- sh -c 'cast block-number'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("expires", |a| a.required(true).help("How long the key lives (`5m`, `1h`); required: the key must not outlive the command by much")))]
pub(crate) struct Args {
    /// The policy file (the shorthand flags are merged into it as for `key issue`; --expires
    /// replaces its expiry).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    shorthand: Shorthand,
    /// Issue the key even though its chains exclude the gateway's chain.
    #[arg(long)]
    allow_other_chain: bool,
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
        let policy_toml = policy_text(self.policy.as_deref(), &self.shorthand, &name)?;
        let admin = Admin::connect(&home).await?;
        let Some(gateway) = admin.running().cloned() else {
            bail!("no gateway of this home is running: start `valet serve` first");
        };
        check_chain(&home, &admin, &policy_toml, self.allow_other_chain).await?;
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
            .env("ETH_RPC_URL", format!("{}/rpc", gateway.url()))
            // Foundry (cast, forge) sends this header with every request to ETH_RPC_URL.
            .env("ETH_RPC_HEADERS", format!("Authorization: Bearer {key}"))
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
