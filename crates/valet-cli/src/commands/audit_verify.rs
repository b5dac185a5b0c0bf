//! `valet audit verify`: prove the audit log intact.

use crate::home::HomeArgs;
use std::process::ExitCode;

/// Verify the hash chain and the checkpoint
///
/// Recomputes the hash chain of the whole audit log and compares its head with the checkpoint
/// kept outside the database. Names the first bad entry when any entry was edited, deleted,
/// reordered or truncated; exits 1 then.
///
/// Examples:
///   valet audit verify
///   valet audit verify --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// One JSON object: `{"intact":true,"entries":N}` or
    /// `{"intact":false,"first_bad_seq":N,"reason":"…"}`.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let store = home.store(None).await?;
        let checkpoint = valet_store::Checkpoint::new(home.checkpoint());
        match valet_server::verify_audit(store.as_ref(), Some(&checkpoint)).await? {
            Ok(n) => {
                if self.json {
                    println!("{}", serde_json::json!({ "intact": true, "entries": n }));
                } else {
                    println!("audit log intact: {n} entries, chain and checkpoint verified");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "intact": false,
                            "first_bad_seq": e.first_bad_seq,
                            "reason": e.reason,
                        })
                    );
                } else {
                    println!(
                        "audit log BROKEN at entry {}: {}",
                        e.first_bad_seq, e.reason
                    );
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}
