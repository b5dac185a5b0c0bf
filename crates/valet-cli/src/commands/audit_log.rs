//! `valet audit log`: read the audit log.

use crate::home::HomeArgs;
use std::process::ExitCode;
use valet_store::AuditFilter;

/// Print audit entries
///
/// Prints audit entries, oldest first: every agent request (allowed or denied) and every
/// owner action. Times are UTC (RFC 3339); a header line names the columns.
///
/// Examples:
///   valet audit log --since 24h
///   valet audit log --key k1a2b3c4d5e6f --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Only this key's entries.
    #[arg(long, value_name = "ID")]
    key: Option<String>,
    /// Only entries from the last DURATION (`24h`, `7d`) or since an RFC 3339 time.
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let since = self
            .since
            .as_deref()
            .map(valet_server::parse_since)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let store = home.store(None).await?;
        let entries = store
            .audit(&AuditFilter {
                key_id: self.key,
                since,
                limit: None,
                action: None,
            })
            .await?;
        if !self.json {
            println!(
                "{:>6} {:<20} {:<6} {:<14} {:<26} DECISION [VIOLATIONS] [TX] [FROM]",
                "SEQ", "AT (UTC)", "ACTOR", "KEY", "ACTION"
            );
        }
        for e in &entries {
            if self.json {
                println!("{}", valet_store::entry_to_json(e));
                continue;
            }
            let r = &e.record;
            let mut line = format!(
                "{:>6} {:<20} {:<6} {:<14} {:<26} {}",
                e.seq,
                r.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                r.actor,
                r.key_id.as_deref().unwrap_or("-"),
                r.action,
                r.decision.as_deref().unwrap_or("-"),
            );
            if !r.violations.is_empty() {
                line.push_str(&format!(" {}", r.violations.join(",")));
            }
            if let Some(h) = r.tx_hash {
                line.push_str(&format!(" tx {h}"));
            }
            if let Some(ip) = &r.client_ip {
                line.push_str(&format!(" from {ip}"));
            }
            println!("{line}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
