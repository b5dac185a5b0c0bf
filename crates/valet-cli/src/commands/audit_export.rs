//! `valet audit export`: the whole audit log as JSON lines.

use crate::home::HomeArgs;
use std::{io::Write, process::ExitCode};
use valet_store::AuditFilter;

/// Export every entry as JSON lines
///
/// Writes every audit entry as one JSON object per line (with its hashes, so the chain can be
/// verified elsewhere).
///
/// Examples:
///   valet audit export > audit.jsonl
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let store = home_args.open()?.store(None).await?;
        let mut out = std::io::stdout().lock();
        for e in store.audit(&AuditFilter::default()).await? {
            writeln!(out, "{}", valet_store::entry_to_json(&e))?;
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    }
}
