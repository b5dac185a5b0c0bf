//! `valet key list`: every key with its status.

use crate::{admin::Admin, home::HomeArgs};
use std::process::ExitCode;

/// List keys
///
/// Lists every key: id, name, profile, status (active, suspended, expired, revoked) and expiry.
///
/// Examples:
///   valet key list
///   valet key list --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// One JSON array.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let keys = Admin::connect(&home_args.open()?).await?.keys().await?;
        if self.json {
            println!("{}", serde_json::Value::Array(keys));
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<14} {:<20} {:<12} {:<8} {:<10} EXPIRES",
            "ID", "NAME", "PROFILE", "MODE", "STATUS"
        );
        for k in keys {
            let s = |f: &str| k[f].as_str().unwrap_or("-").to_string();
            println!(
                "{:<14} {:<20} {:<12} {:<8} {:<10} {}",
                s("id"),
                s("name"),
                s("profile"),
                s("mode"),
                s("status"),
                crate::units::seconds(&s("expires_at"))
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
