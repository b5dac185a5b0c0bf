//! `valet wallet show`: the wallet's address, custody backend and EIP-7702 delegation state.

use crate::home::HomeArgs;
use serde_json::json;
use std::process::ExitCode;

/// Show the wallet
///
/// Shows the wallet: its address, where its key is kept, and whether the account is delegated
/// with EIP-7702 (read from the upstream node; "unknown" when the node cannot be reached).
/// Needs no passphrase.
///
/// Examples:
///   valet wallet show
///   valet wallet show --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let wallet = &home.config.wallet;
        let delegation = match home.upstream().await {
            Ok(upstream) => match upstream
                .forward("eth_getCode", &json!([wallet.address, "latest"]))
                .await
            {
                // EIP-7702: a delegated account's code is 0xef0100 followed by the delegate.
                Ok(code) => match code.as_str().unwrap_or("0x") {
                    "0x" => "none".to_string(),
                    c if c.len() == 48 && c.starts_with("0xef0100") => {
                        format!("delegated to 0x{}", &c[8..])
                    }
                    _ => "the address has contract code".to_string(),
                },
                Err(_) => "unknown (the node refused eth_getCode)".to_string(),
            },
            Err(_) => "unknown (the node cannot be reached)".to_string(),
        };
        let keystore = home.keystore();
        if self.json {
            println!(
                "{}",
                json!({
                    "address": wallet.address,
                    "custody": wallet.custody,
                    "keystore": keystore,
                    "delegation": delegation,
                })
            );
        } else {
            println!("address:    {}", wallet.address);
            println!("custody:    {} ({})", wallet.custody, keystore.display());
            println!("delegation: {delegation}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
