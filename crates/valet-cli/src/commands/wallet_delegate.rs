//! `valet wallet delegate`: EIP-7702-delegate the wallet to Valet's account contract.

use crate::home::HomeArgs;
use alloy::primitives::U256;
use anyhow::bail;
use serde_json::json;
use std::{path::PathBuf, process::ExitCode};
use valet_chain::account::{self, Delegation};
use valet_keys::{KeystoreLimits, Wallet};

/// Delegate the wallet to Valet's account contract (EIP-7702), for on-chain keys
///
/// Delegates the wallet to Valet's account contract with EIP-7702, so that on-chain keys
/// (`valet key issue --mode onchain`) can be granted on it. Deploys the contract first if the
/// chain lacks it (CREATE2 through the standard deterministic deployer, so it has the same
/// address on every chain). The authorization names the chain (never chain id 0) and the
/// wallet's current nonce. A relayer pays for both transactions; without one the wallet pays
/// and sends the type-4 transaction itself. Safe to run again: an account already delegated to
/// the contract is left as it is.
///
/// Examples:
///   valet wallet delegate
///   VALET_RELAYER_PASSWORD=… valet wallet delegate --relayer-keystore relayer.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The account that pays the gas (passphrase in env VALET_RELAYER_PASSWORD).
    #[arg(long, value_name = "FILE")]
    relayer_keystore: Option<PathBuf>,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let relayer = self
            .relayer_keystore
            .as_deref()
            .map(crate::onchain::relayer)
            .transpose()?;
        let pass = home_args.passphrase("Wallet passphrase: ", false)?;
        let wallet = Wallet::open(&home.keystore(), pass.as_bytes(), KeystoreLimits::default())?;
        drop(pass);
        let payer = relayer.as_ref().unwrap_or(&wallet);
        let sender = home.sender(payer.network_wallet()).await?;
        let upstream = sender.upstream().clone();
        let target = account::account_address()?;

        let mut deployed_tx = None;
        if account::code(&upstream, target).await?.is_empty() {
            if account::code(&upstream, account::CREATE2_DEPLOYER)
                .await?
                .is_empty()
            {
                bail!(
                    "chain {} has no deterministic deployer at {}: Valet's account contract \
                     cannot be deployed at its address there",
                    upstream.chain_id(),
                    account::CREATE2_DEPLOYER
                );
            }
            eprintln!(
                "deploying Valet's account contract at {target} (waiting for the transaction to \
                 be mined)…"
            );
            let sent = sender
                .send(
                    "deploy the account contract",
                    Some(account::CREATE2_DEPLOYER),
                    U256::ZERO,
                    account::deploy_calldata()?,
                    vec![],
                )
                .await?;
            if account::code(&upstream, target).await?.is_empty() {
                bail!("the deployment {} left no code at {target}", sent.hash);
            }
            deployed_tx = Some(sent.hash);
        }

        let mut delegated_tx = None;
        match account::delegation(&upstream, wallet.address()).await? {
            Delegation::To(a) if a == target => {
                eprintln!("the wallet is already delegated to {target}");
            }
            Delegation::Contract => bail!(
                "{} holds contract code: it is not an EOA and cannot be delegated",
                wallet.address()
            ),
            _ => {
                // Sent by the wallet itself, the transaction takes the current nonce first and
                // the authorization is checked against the next one.
                let nonce =
                    upstream.pending_nonce(wallet.address()).await? + u64::from(relayer.is_none());
                let auth = wallet.sign_authorization(upstream.chain_id(), target, nonce)?;
                eprintln!(
                    "delegating the wallet to {target} (EIP-7702; waiting for the transaction to \
                     be mined)…"
                );
                let sent = sender
                    .send(
                        "delegate the wallet",
                        Some(wallet.address()),
                        U256::ZERO,
                        Default::default(),
                        vec![auth],
                    )
                    .await?;
                match account::delegation(&upstream, wallet.address()).await? {
                    Delegation::To(a) if a == target => {}
                    other => bail!(
                        "transaction {} was mined but the wallet's delegation is {other:?}",
                        sent.hash
                    ),
                }
                delegated_tx = Some(sent.hash);
            }
        }
        if self.json {
            println!(
                "{}",
                json!({
                    "wallet": wallet.address(),
                    "account": target,
                    "deploy_tx": deployed_tx,
                    "delegate_tx": delegated_tx,
                })
            );
        } else {
            println!("wallet:     {}", wallet.address());
            println!("delegation: delegated to {target}");
            if let Some(tx) = deployed_tx {
                println!("deployed:   {tx}");
            }
            if let Some(tx) = delegated_tx {
                println!("delegated:  {tx}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
