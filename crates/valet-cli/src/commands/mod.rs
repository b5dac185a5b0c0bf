//! The subcommands, one file each.

mod audit_export;
mod audit_log;
mod audit_verify;
mod init;
pub(crate) mod key_issue;
mod key_list;
mod key_resume;
mod key_revoke;
mod key_show;
mod policy_check;
mod report;
mod run;
mod sandbox;
mod serve;
mod wallet_delegate;
mod wallet_show;

use crate::home::HomeArgs;
use clap::Subcommand;
use std::process::ExitCode;

/// Every `valet` subcommand (parsed once, so variant sizes do not matter).
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Create the home directory, the wallet, the database and the admin token.
    Init(init::Args),
    /// Run the gateway.
    Serve(serve::Args),
    /// The wallet: address, custody, delegation.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Issue, list, show, revoke and resume agent keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read, verify and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The periodic audit checklist: keys, last use, addresses, spend, anomalies, unused keys.
    Report(report::Args),
    /// Run a command with a temporary key, revoked when it exits.
    Run(run::Args),
    /// The demo: a local chain, a real token and DEX, an agent allowed and then blocked.
    Sandbox(sandbox::Args),
}

/// `valet wallet …`
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Show the wallet.
    Show(wallet_show::Args),
    /// Delegate the wallet to Valet's account contract (EIP-7702), for on-chain keys.
    Delegate(wallet_delegate::Args),
}

/// `valet key …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum KeyCommand {
    /// Issue an agent key (shown once).
    Issue(key_issue::Args),
    /// List keys.
    List(key_list::Args),
    /// Show one key.
    Show(key_show::Args),
    /// Revoke a key, or every key.
    Revoke(key_revoke::Args),
    /// Resume a key suspended after an anomaly.
    Resume(key_resume::Args),
}

/// `valet policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide requests against a policy offline, in order, with an in-memory spend ledger.
    Check(policy_check::Args),
}

/// `valet audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print audit entries.
    Log(audit_log::Args),
    /// Verify the hash chain and the checkpoint.
    Verify(audit_verify::Args),
    /// Export every entry as JSON lines.
    Export(audit_export::Args),
}

impl Command {
    pub(crate) fn run(self, home: &HomeArgs) -> anyhow::Result<ExitCode> {
        // policy check is pure and needs no runtime.
        if let Self::Policy(PolicyCommand::Check(args)) = self {
            return args.run();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            match self {
                Self::Init(a) => a.run(home).await,
                Self::Serve(a) => a.run(home).await,
                Self::Wallet(WalletCommand::Show(a)) => a.run(home).await,
                Self::Wallet(WalletCommand::Delegate(a)) => a.run(home).await,
                Self::Key(KeyCommand::Issue(a)) => a.run(home).await,
                Self::Key(KeyCommand::List(a)) => a.run(home).await,
                Self::Key(KeyCommand::Show(a)) => a.run(home).await,
                Self::Key(KeyCommand::Revoke(a)) => a.run(home).await,
                Self::Key(KeyCommand::Resume(a)) => a.run(home).await,
                Self::Report(a) => a.run(home).await,
                Self::Audit(AuditCommand::Log(a)) => a.run(home).await,
                Self::Audit(AuditCommand::Verify(a)) => a.run(home).await,
                Self::Audit(AuditCommand::Export(a)) => a.run(home).await,
                Self::Run(a) => a.run(home).await,
                Self::Sandbox(a) => a.run().await,
                Self::Policy(PolicyCommand::Check(a)) => a.run(),
            }
        })
    }
}
