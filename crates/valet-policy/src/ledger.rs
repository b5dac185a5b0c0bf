//! What a key has used so far: the [`Usage`] the evaluator reads, and [`SpendLedger`], the
//! in-memory implementation that `valet policy check` uses and the durable store mirrors.

use crate::{decision::Spend, decode::Asset};
use alloy_primitives::U256;
use jiff::Timestamp;

/// A key's usage, as of the moment of a request.
pub trait Usage {
    /// Outflow of `asset` reserved strictly after `since`.
    fn spent(&self, asset: Asset, since: Timestamp) -> U256;
    /// Requests of the key (allowed or denied) strictly after `since`, not counting the one
    /// being decided.
    fn requests_since(&self, since: Timestamp) -> u64;
    /// Signed transactions not yet mined.
    fn pending(&self) -> u32;
}

/// An in-memory, rolling-window usage record.
#[derive(Debug, Clone, Default)]
pub struct SpendLedger {
    reservations: Vec<(Timestamp, Asset, U256)>,
    requests: Vec<Timestamp>,
    pending: u32,
}

impl SpendLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request (allowed or denied) at `at`.
    pub fn record_request(&mut self, at: Timestamp) {
        self.requests.push(at);
    }

    /// Reserves an allowed request's spend at `at`.
    pub fn reserve(&mut self, spend: &Spend, at: Timestamp) {
        self.reservations
            .extend(spend.iter().map(|(asset, amount)| (at, *asset, *amount)));
    }

    /// Sets the number of signed transactions not yet mined.
    pub fn set_pending(&mut self, pending: u32) {
        self.pending = pending;
    }

    /// Forgets everything at or before `before` (no window reaches back that far).
    pub fn prune(&mut self, before: Timestamp) {
        self.reservations.retain(|(t, ..)| *t > before);
        self.requests.retain(|t| *t > before);
    }
}

impl Usage for SpendLedger {
    fn spent(&self, asset: Asset, since: Timestamp) -> U256 {
        self.reservations
            .iter()
            .filter(|(t, a, _)| *a == asset && *t > since)
            .fold(U256::ZERO, |sum, (.., amount)| sum.saturating_add(*amount))
    }

    fn requests_since(&self, since: Timestamp) -> u64 {
        self.requests.iter().filter(|t| **t > since).count() as u64
    }

    fn pending(&self) -> u32 {
        self.pending
    }
}
