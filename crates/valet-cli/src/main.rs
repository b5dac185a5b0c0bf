//! `valet`: smart agent keys for Ethereum wallets. One file per command under `commands/`.
//!
//! Exit codes: 0 success, 1 error, 2 usage error; `policy check` also exits 3 when a
//! request is denied. Results go to stdout, everything else to stderr.

mod commands;

use clap::Parser;
use std::process::ExitCode;

/// Smart agent keys: temporary, permissioned credentials that let AI agents act for an
/// Ethereum wallet without holding its key.
#[derive(Debug, Parser)]
#[command(name = "valet", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
