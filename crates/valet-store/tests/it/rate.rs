//! How many audit entries per second group commit makes durable with 64 concurrent
//! submitters (each waiting for its own commit before submitting again). Printed, not
//! asserted: run with `--nocapture`, ideally `--release`.

use crate::harness::{Harness, admin, key, record, reservation};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use valet_store::{AuditFilter, Batch, GroupCommit, verify};

const SUBMITTERS: usize = 64;
/// Small in debug builds (plain `cargo test`), enough for a steady figure in release.
const PER_SUBMITTER: usize = if cfg!(debug_assertions) { 20 } else { 150 };

async fn measure(h: Harness, engine: &str) {
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let gc = Arc::new(GroupCommit::new(Arc::clone(&h.store), Some(h.checkpoint())));
    let start = Instant::now();
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|w| {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move {
                for i in 0..PER_SUBMITTER {
                    let rid = format!("w{w}-{i}");
                    gc.submit(Batch {
                        reservations: vec![reservation("k1", &rid, 100, 1)],
                        releases: vec![],
                        audit: vec![record(&rid, Some("k1"), "eth_sendTransaction")],
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let n = SUBMITTERS * PER_SUBMITTER;
    let _ = writeln!(
        std::io::stderr(),
        "valet-store group commit ({engine}, {}): {n} entries by {SUBMITTERS} submitters in {:.2?} = {:.0} entries/s",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
        elapsed,
        n as f64 / elapsed.as_secs_f64()
    );
    let log = h.store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        verify(&log, h.checkpoint().read().unwrap()),
        Ok(n as u64 + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_rate_sqlite() {
    measure(Harness::sqlite().await, "SQLite file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_rate_postgres() {
    if let Some(h) = Harness::postgres().await {
        measure(h, "PostgreSQL").await;
    }
}
