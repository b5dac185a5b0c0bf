//! `valet key show`: one key, its policy and (when the gateway runs) what remains of its limits.

use crate::{admin::Admin, home::HomeArgs};
use serde_json::Value;
use std::process::ExitCode;

/// Show one key
///
/// Shows one key: status, policy, and, when the gateway is running, what remains of each
/// limit now.
///
/// Examples:
///   valet key show k1a2b3c4d5e6f
///   valet key show k1a2b3c4d5e6f --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The key id.
    id: String,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let key = Admin::connect(&home).await?.key(&self.id, &home).await?;
        if self.json {
            println!("{key}");
            return Ok(ExitCode::SUCCESS);
        }
        let policy = key["policy_toml"].as_str().unwrap_or_default();
        let mut units = crate::units::Units::new(&home, &[policy]).await;
        for field in [
            "id",
            "name",
            "wallet",
            "mode",
            "profile",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used",
        ] {
            if let Some(v) = key[field].as_str() {
                println!("{field:<11} {}", crate::units::seconds(v));
            }
        }
        if let Some(spend) = key["permissions"]["limits"]["spend"].as_array() {
            for s in spend {
                let asset = s["asset"].as_str().unwrap_or("?");
                println!(
                    "spend       {} of {} left per {}",
                    units
                        .amount(asset, s["remaining"].as_str().unwrap_or("?"))
                        .await,
                    units
                        .amount(asset, s["amount"].as_str().unwrap_or("?"))
                        .await,
                    s["window"].as_str().unwrap_or("?")
                );
            }
        }
        let onchain = &key["onchain"];
        if let Some(session) = onchain["session_signer"].as_str() {
            println!("session     {session}");
            match onchain["error"].as_str() {
                Some(e) => println!("on chain    unknown ({e})"),
                None => println!(
                    "on chain    granted {}, active {}, revoked {}, valid until {}",
                    onchain["granted"],
                    onchain["active"],
                    onchain["revoked"],
                    crate::units::rfc3339(&onchain["valid_until"])
                ),
            }
            for a in onchain["scope"]["allowed"].as_array().into_iter().flatten() {
                println!(
                    "on-chain may call {} function {}",
                    a["target"].as_str().unwrap_or("?"),
                    units.function(a["selector"].as_str().unwrap_or("?"))
                );
            }
            if let Some(denied) = onchain["scope"]["denied"]
                .as_array()
                .filter(|d| !d.is_empty())
            {
                let denied: Vec<String> = denied
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|s| units.function(s))
                    .collect();
                println!("on-chain denied functions {}", denied.join(", "));
            }
            for c in onchain["caps"].as_array().into_iter().flatten() {
                let asset = c["asset"].as_str().unwrap_or("?");
                println!(
                    "on-chain cap {} of {} spent this period",
                    units
                        .amount(asset, c["spent_this_period"].as_str().unwrap_or("?"))
                        .await,
                    units
                        .amount(asset, c["limit"].as_str().unwrap_or("?"))
                        .await,
                );
            }
        }
        println!("\n{}", policy.trim_end());
        Ok(ExitCode::SUCCESS)
    }
}
