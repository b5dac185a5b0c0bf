//! `valet key revoke`: revoke one key, or every key at once.

use crate::{admin::Admin, home::HomeArgs, onchain::OwnerChain};
use anyhow::bail;
use serde_json::Value;
use std::process::ExitCode;

/// Revokes a key; its very next request is refused (4100 `revoked`). `--all` is the kill
/// switch. Goes through the running gateway when there is one. An on-chain key's session
/// signer is revoked on chain as well (and the transaction printed).
///
/// Examples:
///   valet key revoke k1a2b3c4d5e6f
///   valet key revoke --all
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The key id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Revoke every key.
    #[arg(long)]
    all: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let admin = Admin::connect(&home).await?;
        // Without a gateway, on-chain revocations are sent from here with the owner's custody.
        let needs_chain = admin.is_direct()
            && match &self.id {
                Some(id) if !self.all => admin.key(id, &home).await?["mode"] == "onchain",
                _ => admin.keys().await?.iter().any(|k| k["mode"] == "onchain"),
            };
        let chain = match needs_chain {
            true => Some(OwnerChain::open(&home, home_args).await?),
            false => None,
        };
        let chain = chain.as_ref().map(OwnerChain::parts);
        let r = match (&self.id, self.all) {
            (_, true) => {
                let r = admin.revoke_all(chain).await?;
                println!("revoked {} keys", r["revoked"]);
                r
            }
            (Some(id), false) => {
                let r = admin.revoke(id, chain).await?;
                if r["already_revoked"] == true {
                    println!("{id} was already revoked");
                } else {
                    println!("revoked {id}");
                }
                r
            }
            (None, false) => bail!("give a key id or --all"),
        };
        match (&r["onchain"]["tx"], &r["onchain"]["error"]) {
            (Value::String(tx), _) => println!("revoked on chain in {tx}"),
            (_, Value::String(e)) => bail!(
                "revoked off-chain, but the on-chain revocation failed: {e} (run the same command again)"
            ),
            _ => {}
        }
        Ok(ExitCode::SUCCESS)
    }
}
