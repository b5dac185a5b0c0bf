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
    Init(init::Args),
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
    Report(report::Args),
    Run(run::Args),
    Sandbox(sandbox::Args),
}

/// `valet wallet …`
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    Show(wallet_show::Args),
    Delegate(wallet_delegate::Args),
}

/// `valet key …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum KeyCommand {
    Issue(key_issue::Args),
    List(key_list::Args),
    Show(key_show::Args),
    Revoke(key_revoke::Args),
    Resume(key_resume::Args),
}

/// `valet policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    Check(policy_check::Args),
}

/// `valet audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    Log(audit_log::Args),
    Verify(audit_verify::Args),
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
