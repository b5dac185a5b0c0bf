//! Group commit: many concurrent requests, one transaction and one fsync.

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::model::{AuditEntry, Batch};
use crate::store::Store;
use alloy_primitives::B256;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Submissions waiting for the writer; beyond this, `submit` waits for room.
const QUEUE: usize = 8192;
/// At most this many submissions go into one transaction.
const MAX_GROUP: usize = 1024;

struct Job {
    batch: Batch,
    /// The key whose revocation state the submitter wants to know once the batch is durable.
    key: Option<String>,
    reply: Reply,
}

/// What a submitter hears: its entries, and whether its key was refused (revoked or
/// suspended) when they committed.
type Outcome = Result<(Vec<AuditEntry>, bool)>;

/// Group commit: concurrent [`submit`](GroupCommit::submit)s are merged into one
/// [`Store::append`] (one transaction, one fsync), so thousands of requests per second stay
/// durable.
///
/// One writer task takes whatever has queued while the previous commit ran and appends it as
/// one batch (submissions in arrival order, each one's audit entries contiguous). With a
/// [`Checkpoint`], a second task writes the new head after each commit (overlapping the next
/// commit; several waiting heads collapse into one write) and only then answers that group's
/// submitters, so an answered entry is always covered by the checkpoint.
///
/// It fails closed: if a commit (or the checkpoint write after it) fails, every submitter of
/// that group gets an error and the writer halts for good; later submissions fail too. A failed
/// fsync is never retried, since a retry can report success for data the kernel already
/// dropped ("fsyncgate"). On a [shared](Store::shared) store (PostgreSQL, whose server owns
/// durability) a failed commit fails only its group, so the writer resumes with the database. A batch that is invalid on its own ([`Batch::validate`]) is refused
/// to its submitter without halting anything.
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
    halted: Arc<OnceLock<String>>,
    writer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("halted", &self.halted.get())
            .finish()
    }
}

impl GroupCommit {
    /// Starts the writer task on the current Tokio runtime (panics outside one). With a
    /// checkpoint, the chain head is written to it after every commit.
    pub fn new(store: Arc<dyn Store>, checkpoint: Option<Checkpoint>) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let halted = Arc::new(OnceLock::new());
        let writer = tokio::spawn(writer(store, checkpoint, jobs, Arc::clone(&halted)));
        GroupCommit {
            queue,
            halted,
            writer,
        }
    }

    /// Appends `batch` in the next group; resolves once it is durable, with its audit entries.
    pub async fn submit(&self, batch: Batch) -> Result<Vec<AuditEntry>> {
        self.send(batch, None).await.map(|(entries, _)| entries)
    }

    /// Like [`submit`](Self::submit), and also says whether `key_id` was refused in the store
    /// (revoked, suspended, or unknown) when the batch became durable. The check is read after
    /// the commit, once per group and key, so a revocation or suspension committed by any
    /// process before this batch is seen: a caller that signs only when this is false never
    /// signs for a request made durable after the key was revoked or suspended.
    pub async fn submit_for_key(
        &self,
        batch: Batch,
        key_id: &str,
    ) -> Result<(Vec<AuditEntry>, bool)> {
        self.send(batch, Some(key_id.to_string())).await
    }

    async fn send(&self, batch: Batch, key: Option<String>) -> Outcome {
        self.check()?;
        batch.validate()?;
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { batch, key, reply }).await.is_err() {
            return Err(self.halted_error());
        }
        answer.await.unwrap_or_else(|_| Err(self.halted_error()))
    }

    /// Stops accepting submissions and waits until everything already submitted has been
    /// committed (or refused) and the writer has let go of the store: for a clean shutdown.
    pub async fn shutdown(self) {
        let GroupCommit { queue, writer, .. } = self;
        drop(queue);
        // The writer only ends by finishing its queue; a panic in it already failed its callers.
        let _ = writer.await;
    }

    /// Why the writer halted, if it did. A halted writer accepts nothing more; restart the
    /// process once the cause is fixed.
    pub fn halted(&self) -> Option<&str> {
        self.halted.get().map(String::as_str)
    }

    fn check(&self) -> Result<()> {
        match self.halted.get() {
            Some(reason) => Err(Error::Halted {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn halted_error(&self) -> Error {
        Error::Halted {
            reason: self
                .halted
                .get()
                .cloned()
                .unwrap_or_else(|| "the writer task ended".into()),
        }
    }
}

type Reply = oneshot::Sender<Outcome>;

/// A committed group waiting for its checkpoint before its submitters hear of it.
struct Committed {
    replies: Vec<(Reply, Outcome)>,
    head: Option<(u64, B256)>,
}

/// Takes what has queued, commits it as one batch, and hands the result on: to the
/// checkpoint task if there is a checkpoint (which answers once the head is written), else
/// straight to the submitters. So the next group's commit overlaps the previous checkpoint
/// write, and a submitter never hears of a commit before the checkpoint covers it.
async fn writer(
    store: Arc<dyn Store>,
    checkpoint: Option<Checkpoint>,
    mut jobs: mpsc::Receiver<Job>,
    halted: Arc<OnceLock<String>>,
) {
    let (committed, checkpointer) = match checkpoint {
        Some(cp) => {
            let (tx, rx) = mpsc::unbounded_channel();
            (
                Some(tx),
                Some(tokio::spawn(checkpointer(cp, rx, Arc::clone(&halted)))),
            )
        }
        None => (None, None),
    };
    let mut group: Vec<Job> = Vec::new();
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut merged = Batch::default();
        let mut counts = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut keys = Vec::with_capacity(group.len());
        for Job { batch, key, reply } in group.drain(..) {
            counts.push(batch.audit.len());
            keys.push(key);
            merged.reservations.extend(batch.reservations);
            merged.releases.extend(batch.releases);
            merged.audit.extend(batch.audit);
            replies.push(reply);
        }
        let result = match halted.get() {
            // The checkpoint task failed: commit nothing more.
            Some(reason) => Err(Error::Halted {
                reason: reason.clone(),
            }),
            None => commit(&*store, merged).await,
        };
        let entries = match result {
            Ok(entries) => entries,
            // A shared store (PostgreSQL) reports a failed transaction as rolled back (or, on
            // a lost connection, unknown): nothing of it is answered as durable, and the next
            // group tries again, so service resumes when the database does. There is no
            // fsync of ours to distrust.
            Err(e) if store.shared() && !matches!(e, Error::Halted { .. }) => {
                tracing::error!(target: "valet_store", error = %e, "audit commit failed; its requests get an error");
                let reason = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Database(reason.clone())));
                }
                continue;
            }
            Err(e) => {
                let reason = match e {
                    Error::Halted { reason } => reason,
                    e => e.to_string(),
                };
                tracing::error!(target: "valet_store", error = %reason, "audit commit failed; the writer halts");
                let _ = halted.set(reason.clone());
                jobs.close();
                for reply in replies {
                    let _ = reply.send(Err(Error::Halted {
                        reason: reason.clone(),
                    }));
                }
                while let Some(job) = jobs.recv().await {
                    let _ = job.reply.send(Err(Error::Halted {
                        reason: reason.clone(),
                    }));
                }
                break;
            }
        };
        let head = entries.last().map(|e| (e.seq, e.hash));
        let revoked = revocations(&*store, &keys).await;
        let mut entries = entries.into_iter();
        let replies: Vec<_> = replies
            .into_iter()
            .zip(counts)
            .zip(keys)
            .map(|((r, n), key)| {
                let mine: Vec<AuditEntry> = entries.by_ref().take(n).collect();
                let outcome = match key.and_then(|k| revoked.iter().find(|(id, _)| *id == k)) {
                    None => Ok((mine, false)),
                    Some((_, Ok(is_revoked))) => Ok((mine, *is_revoked)),
                    Some((id, Err(e))) => Err(Error::Database(format!(
                        "committed, but the revocation of key {id} could not be read: {e}"
                    ))),
                };
                (r, outcome)
            })
            .collect();
        match &committed {
            Some(tx) => {
                // The checkpoint task only ends when this sender is dropped.
                let _ = tx.send(Committed { replies, head });
            }
            None => answer(replies),
        }
    }
    drop(committed);
    if let Some(task) = checkpointer {
        let _ = task.await;
    }
}

/// Writes the head of every committed group (only the latest, when several are waiting), then
/// answers their submitters. After a failed write it writes nothing more and fails everyone.
async fn checkpointer(
    checkpoint: Checkpoint,
    mut committed: mpsc::UnboundedReceiver<Committed>,
    halted: Arc<OnceLock<String>>,
) {
    let checkpoint = Arc::new(checkpoint);
    let mut failed: Option<String> = None;
    let mut groups = Vec::new();
    while committed.recv_many(&mut groups, MAX_GROUP).await > 0 {
        if failed.is_none()
            && let Some((seq, hash)) = groups.iter().rev().find_map(|g: &Committed| g.head)
        {
            let cp = Arc::clone(&checkpoint);
            let written = tokio::task::spawn_blocking(move || cp.write(seq, hash))
                .await
                .map_err(|e| Error::Database(format!("checkpoint task failed: {e}")))
                .and_then(|r| r);
            if let Err(e) = written {
                let reason = format!("audit seq {seq} committed, but {e}");
                tracing::error!(target: "valet_store", error = %reason, "checkpoint write failed; the writer halts");
                let _ = halted.set(reason.clone());
                failed = Some(reason);
            }
        }
        for group in groups.drain(..) {
            match &failed {
                None => answer(group.replies),
                Some(reason) => {
                    for (reply, _) in group.replies {
                        let _ = reply.send(Err(Error::Halted {
                            reason: reason.clone(),
                        }));
                    }
                }
            }
        }
    }
}

fn answer(replies: Vec<(Reply, Outcome)>) {
    for (reply, outcome) in replies {
        // A submitter that went away still had its entries committed.
        let _ = reply.send(outcome);
    }
}

/// Whether each distinct key of a group is refused in the store (revoked, suspended or gone),
/// read after the commit.
async fn revocations(store: &dyn Store, keys: &[Option<String>]) -> Vec<(String, Result<bool>)> {
    let mut out: Vec<(String, Result<bool>)> = Vec::new();
    for key in keys.iter().flatten() {
        if out.iter().any(|(k, _)| k == key) {
            continue;
        }
        let revoked = store
            .key(key)
            .await
            .map(|k| k.is_none_or(|k| k.revoked_at.is_some() || k.suspended_at.is_some()));
        out.push((key.clone(), revoked));
    }
    out
}

async fn commit(store: &dyn Store, batch: Batch) -> Result<Vec<AuditEntry>> {
    let expected = batch.audit.len();
    let entries = store.append(batch).await?;
    if entries.len() != expected {
        return Err(Error::Database(format!(
            "append returned {} audit entries for {expected} records",
            entries.len()
        )));
    }
    Ok(entries)
}
