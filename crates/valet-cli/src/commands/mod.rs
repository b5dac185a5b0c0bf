//! The subcommands, one file each.

mod policy_check;

use clap::Subcommand;
use std::process::ExitCode;

/// Every `valet` subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// `valet policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide requests against a policy offline, in order, with an in-memory spend ledger.
    Check(policy_check::Args),
}

impl Command {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Self::Policy(PolicyCommand::Check(args)) => args.run(),
        }
    }
}
