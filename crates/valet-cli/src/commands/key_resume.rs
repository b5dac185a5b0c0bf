//! `valet key resume`: lift a suspended key's quarantine.

use crate::{admin::Admin, home::HomeArgs};
use std::process::ExitCode;

/// Resume a key suspended after an anomaly
///
/// Resumes a key the gateway suspended after an anomaly (`on_anomaly = "suspend"`); its next
/// request works again. A revoked key cannot be resumed. Goes through the running gateway when
/// there is one. Review the anomaly first: `valet report` or `GET /api/v1/anomalies`.
///
/// Examples:
///   valet key resume k1a2b3c4d5e6f
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The key id.
    id: String,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let admin = Admin::connect(&home_args.open()?).await?;
        admin.resume(&self.id).await?;
        println!("resumed {}", self.id);
        Ok(ExitCode::SUCCESS)
    }
}
