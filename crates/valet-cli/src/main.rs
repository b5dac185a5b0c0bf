//! `valet`: smart agent keys for Ethereum wallets. One file per command under `commands/`.
//!
//! Exit codes: 0 success, 1 error, 2 usage error; `policy check` also exits 3 when a
//! request is denied. Results go to stdout, everything else to stderr.

mod admin;
mod commands;
mod gateways;
mod home;
mod onchain;
mod units;

use clap::Parser;
use std::io::IsTerminal as _;
use std::process::ExitCode;

/// Smart agent keys: temporary, permissioned credentials that let AI agents act for an
/// Ethereum wallet without holding its key.
#[derive(Debug, Parser)]
#[command(name = "valet", version, about, propagate_version = true, after_help = ENVIRONMENT)]
struct Cli {
    #[command(flatten)]
    home: home::HomeArgs,
    #[command(subcommand)]
    command: commands::Command,
}

/// What `valet --help` says about the environment.
const ENVIRONMENT: &str = "\
Environment:
  VALET_HOME          the home directory (default ~/.valet)
  VALET_PASSWORD      the wallet passphrase (else --password-file, else a prompt)
  ETH_RPC_URL         the node, as foundry reads it (else valet.toml's rpc_url)
  VALET_RPC_CA_FILE   extra CA certificates (PEM) for an https:// node
  RUST_LOG            what is logged to stderr (default warn,valet=info; e.g. valet=debug)

Docs: README.md and docs/command-line.md";

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    // Colour only for a person at a terminal: redirected logs stay plain text.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,valet=info")),
        )
        .init();
    // RUST_LOG (e.g. `valet=debug`, `valet_chain=debug`) sets what is logged to stderr.
    match cli.command.run(&cli.home) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `valet report | head -1`: when the reader of stdout goes away, `println!` panics with a
/// broken pipe. That is the reader's choice, not an error: exit quietly (status 0), as
/// programs killed by SIGPIPE do without a word. Every other panic keeps the default report.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
