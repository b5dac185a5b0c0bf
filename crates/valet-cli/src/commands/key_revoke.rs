//! `valet key revoke`: revoke one key, or every key at once.

use crate::{admin::Admin, home::HomeArgs};
use anyhow::bail;
use std::process::ExitCode;

/// Revokes a key; its very next request is refused (4100 `revoked`). `--all` is the kill
/// switch. Goes through the running gateway when there is one.
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
        let admin = Admin::connect(&home_args.open()?).await?;
        match (&self.id, self.all) {
            (_, true) => {
                let r = admin.revoke_all().await?;
                println!("revoked {} keys", r["revoked"]);
            }
            (Some(id), false) => {
                let r = admin.revoke(id).await?;
                if r["already_revoked"] == true {
                    println!("{id} was already revoked");
                } else {
                    println!("revoked {id}");
                }
            }
            (None, false) => bail!("give a key id or --all"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
