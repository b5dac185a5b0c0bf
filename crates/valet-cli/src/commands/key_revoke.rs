//! `valet key revoke`: revoke one key, or every key at once.

use crate::{admin::Admin, home::HomeArgs, onchain::OwnerChain};
use anyhow::bail;
use serde_json::Value;
use std::process::ExitCode;

/// Revoke a key, or every key
///
/// Revokes a key; its very next request is refused (4100 `revoked`). `--all` is the kill
/// switch: in a terminal it asks you to type "revoke all"; elsewhere it needs --yes. Goes
/// through this home's running gateway when there is one. An on-chain key's session signer
/// is revoked on chain as well (progress on stderr, the transaction printed).
///
/// Examples:
///   valet key revoke k1a2b3c4d5e6f
///   valet key revoke --all
///   valet key revoke --all --yes --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The key id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Revoke every key.
    #[arg(long)]
    all: bool,
    /// Do not ask (needed for --all when not run in a terminal).
    #[arg(long)]
    yes: bool,
    /// One JSON object: what the gateway or the store answered.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        if self.all && !self.yes {
            confirm_all()?;
        }
        let admin = Admin::connect(&home).await?;
        let onchain = match &self.id {
            Some(id) if !self.all => admin.key(id, &home).await?["mode"] == "onchain",
            _ => admin.keys().await?.iter().any(|k| k["mode"] == "onchain"),
        };
        // Without a gateway, on-chain revocations are sent from here with the owner's custody.
        let chain = match onchain && admin.is_direct() {
            true => Some(OwnerChain::open(&home, home_args).await?),
            false => None,
        };
        let chain = chain.as_ref().map(OwnerChain::parts);
        if onchain {
            eprintln!(
                "revoking: refused off-chain at once, then on chain (waiting for the \
                 transaction to be mined)…"
            );
        }
        let r = match (&self.id, self.all) {
            (_, true) => admin.revoke_all(chain).await?,
            (Some(id), false) => admin.revoke(id, chain).await?,
            (None, false) => bail!("give a key id or --all"),
        };
        if self.json {
            println!("{r}");
        } else if self.all {
            println!("revoked {} keys", r["revoked"]);
        } else if r["already_revoked"] == true {
            println!(
                "{} was already revoked",
                self.id.as_deref().unwrap_or_default()
            );
        } else {
            println!("revoked {}", self.id.as_deref().unwrap_or_default());
        }
        match (&r["onchain"]["tx"], &r["onchain"]["error"]) {
            (Value::String(tx), _) if !self.json => println!("revoked on chain in {tx}"),
            (_, Value::String(e)) => bail!(
                "revoked off-chain, but the on-chain revocation failed: {e} (run the same command again)"
            ),
            _ => {}
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The kill switch asks a person to type "revoke all"; a script must say --yes.
fn confirm_all() -> anyhow::Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        bail!("--all revokes every key: add --yes to confirm (no terminal to ask in)");
    }
    eprint!("This revokes EVERY key of this wallet. Type \"revoke all\" to go on: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "revoke all" {
        bail!("not confirmed: nothing was revoked");
    }
    Ok(())
}
