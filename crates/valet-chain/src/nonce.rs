//! Per-wallet nonce allocation: never reuse, never skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy::primitives::Address;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::debug;

use crate::{Result, Upstream};

const TARGET: &str = "valet_chain::nonce";

/// Hands out the nonces of one wallet's transactions, one request at a time.
///
/// A [`NonceLease`] holds the wallet's lock from the moment a nonce is chosen until the
/// transaction is accepted by the node (or signed, for sign-only requests) and the lease is
/// [committed](NonceLease::commit), so two requests never sign with the same nonce and a
/// failed request leaves no gap. The cached next nonce comes from the node's pending count
/// (`eth_getTransactionCount(wallet, "pending")`) on the first lease and on the first lease
/// after [`resync`](NonceManager::resync).
///
/// Cheap to clone; clones share the lock and the cache. Keep exactly one manager (or its
/// clones) per wallet in a process.
#[derive(Clone)]
pub struct NonceManager {
    upstream: Upstream,
    wallet: Address,
    next: Arc<Mutex<Option<u64>>>,
    stale: Arc<AtomicBool>,
}

impl std::fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceManager")
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

/// The right to sign one transaction with [`nonce`](NonceLease::nonce); holds the wallet's
/// nonce lock until committed or dropped.
///
/// [`commit`](NonceLease::commit) once the node accepted the transaction (or once it is signed
/// and handed out, for `eth_signTransaction`): the next lease gets the next nonce. Dropping the
/// lease without committing (policy denial, signing or broadcast failure) gives the same nonce
/// to the next lease, so nothing is skipped.
#[must_use = "a lease is released when dropped: commit it once the transaction is accepted"]
pub struct NonceLease {
    guard: OwnedMutexGuard<Option<u64>>,
    nonce: u64,
}

impl std::fmt::Debug for NonceLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceLease")
            .field("nonce", &self.nonce)
            .finish()
    }
}

impl NonceManager {
    /// A manager for `wallet`'s nonces on `upstream`. Reads nothing until the first lease.
    pub fn new(upstream: Upstream, wallet: Address) -> Self {
        Self {
            upstream,
            wallet,
            next: Arc::new(Mutex::new(None)),
            stale: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The wallet whose nonces this manager hands out.
    pub fn wallet(&self) -> Address {
        self.wallet
    }

    /// Waits for the wallet's lock (fairly, first come first served) and leases the next
    /// nonce, reading the node's pending count first if nothing is cached. Fails only if that
    /// read fails; the lock is then released.
    pub async fn lease(&self) -> Result<NonceLease> {
        let mut guard = Arc::clone(&self.next).lock_owned().await;
        if self.stale.swap(false, Ordering::AcqRel) {
            *guard = None;
        }
        let nonce = match *guard {
            Some(nonce) => nonce,
            None => {
                let nonce = self.upstream.pending_nonce(self.wallet).await?;
                debug!(target: TARGET, wallet = %self.wallet, nonce, "read pending nonce from the node");
                *guard = Some(nonce);
                nonce
            }
        };
        Ok(NonceLease { guard, nonce })
    }

    /// Forgets the cached nonce: the next lease reads the node's pending count again. Call it
    /// when the node says "nonce too low" ([`Error::is_nonce_too_low`](crate::Error::is_nonce_too_low))
    /// or after transactions were sent from the wallet outside Valet. Does not wait for the
    /// lock, so it is safe to call while holding a lease; it takes effect on the next lease.
    pub async fn resync(&self) {
        debug!(target: TARGET, wallet = %self.wallet, "nonce cache forgotten");
        self.stale.store(true, Ordering::Release);
    }
}

impl NonceLease {
    /// The nonce to sign with.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Marks the nonce used: the next lease gets `nonce + 1`. Releases the lock.
    pub fn commit(mut self) {
        *self.guard = Some(self.nonce.saturating_add(1));
    }
}
