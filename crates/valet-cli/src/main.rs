//! `valet`: smart agent keys for Ethereum wallets. One file per command under `commands/`.
//!
//! Exit codes: 0 success, 1 error, 2 usage error; `policy check` also exits 3 when a
//! request is denied. Results go to stdout, everything else to stderr.

mod admin;
mod commands;
mod gateways;
mod home;
mod onchain;

use clap::Parser;
use std::process::ExitCode;

/// Smart agent keys: temporary, permissioned credentials that let AI agents act for an
/// Ethereum wallet without holding its key.
#[derive(Debug, Parser)]
#[command(name = "valet", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    home: home::HomeArgs,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,valet=info")),
        )
        .init();
    match cli.command.run(&cli.home) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
