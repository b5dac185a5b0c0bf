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
///
/// Queries take logarithmic time: requests are kept sorted by time, and each asset's
/// reservations sorted by time with running totals, so the outflow inside a window is the
/// difference of two totals.
#[derive(Debug, Clone, Default)]
pub struct SpendLedger {
    /// Per asset: (time, running total of amounts up to and including this entry), by time.
    reservations: Vec<(Asset, Vec<(Timestamp, U256)>)>,
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
        let i = self.requests.partition_point(|t| *t <= at);
        self.requests.insert(i, at);
    }

    /// Reserves an allowed request's spend at `at`.
    pub fn reserve(&mut self, spend: &Spend, at: Timestamp) {
        for (asset, amount) in spend {
            let slot = match self.reservations.iter().position(|(a, _)| a == asset) {
                Some(slot) => slot,
                None => {
                    self.reservations.push((*asset, Vec::new()));
                    self.reservations.len() - 1
                }
            };
            let entries = &mut self.reservations[slot].1;
            // Entries after `at` (rare: requests out of time order) move up by `amount`.
            let i = entries.partition_point(|(t, _)| *t <= at);
            let before = if i == 0 { U256::ZERO } else { entries[i - 1].1 };
            entries.insert(i, (at, before.saturating_add(*amount)));
            for entry in &mut entries[i + 1..] {
                entry.1 = entry.1.saturating_add(*amount);
            }
        }
    }

    /// Releases a reservation made by [`reserve`](Self::reserve) with the same spend and time
    /// (the transaction was rejected and can never be mined).
    pub fn release(&mut self, spend: &Spend, at: Timestamp) {
        for (asset, amount) in spend {
            let Some((_, entries)) = self.reservations.iter_mut().find(|(a, _)| a == asset) else {
                continue;
            };
            let end = entries.partition_point(|(t, _)| *t <= at);
            let Some(i) = (0..end).rev().find(|&i| entries[i].0 == at) else {
                continue;
            };
            // Entry i (and every later running total) holds `amount` less.
            for entry in &mut entries[i..] {
                entry.1 = entry.1.saturating_sub(*amount);
            }
        }
    }

    /// Forgets requests and reservations at or before `before` (no window of the policy
    /// reaches back that far), so a long-lived key's ledger stays bounded. Running totals are
    /// rebased; an asset whose total saturated (an unlimited amount) is kept whole.
    pub fn prune(&mut self, before: Timestamp) {
        for (_, entries) in &mut self.reservations {
            let cut = entries.partition_point(|(t, _)| *t <= before);
            let Some(&(_, base)) = cut.checked_sub(1).and_then(|i| entries.get(i)) else {
                continue;
            };
            if base == U256::MAX {
                continue;
            }
            entries.drain(..cut);
            for entry in entries.iter_mut() {
                entry.1 -= base;
            }
        }
        self.requests
            .drain(..self.requests.partition_point(|t| *t <= before));
    }

    /// Sets the number of signed transactions not yet mined.
    pub fn set_pending(&mut self, pending: u32) {
        self.pending = pending;
    }
}

impl Usage for SpendLedger {
    fn spent(&self, asset: Asset, since: Timestamp) -> U256 {
        let Some((_, entries)) = self.reservations.iter().find(|(a, _)| *a == asset) else {
            return U256::ZERO;
        };
        let first = entries.partition_point(|(t, _)| *t <= since);
        let before = if first == 0 {
            U256::ZERO
        } else {
            entries[first - 1].1
        };
        entries.last().map_or(U256::ZERO, |(_, total)| {
            if *total == U256::MAX {
                // Totals saturate only when an unlimited amount was reserved, which a cap on
                // the asset never allows: count the window as unlimited (never under-count).
                if first < entries.len() {
                    U256::MAX
                } else {
                    U256::ZERO
                }
            } else {
                *total - before
            }
        })
    }

    fn requests_since(&self, since: Timestamp) -> u64 {
        (self.requests.len() - self.requests.partition_point(|t| *t <= since)) as u64
    }

    fn pending(&self) -> u32 {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn windows_are_strictly_after_since_even_out_of_order() {
        let token = Asset::Token(Address::with_last_byte(1));
        let mut l = SpendLedger::new();
        l.reserve(
            &vec![(Asset::Native, U256::from(5)), (token, U256::from(7))],
            t(10),
        );
        l.reserve(&vec![(Asset::Native, U256::from(3))], t(30));
        l.reserve(&vec![(Asset::Native, U256::from(11))], t(20)); // out of order
        assert_eq!(l.spent(Asset::Native, t(0)), U256::from(19));
        assert_eq!(l.spent(Asset::Native, t(10)), U256::from(14));
        assert_eq!(l.spent(Asset::Native, t(20)), U256::from(3));
        assert_eq!(l.spent(Asset::Native, t(30)), U256::ZERO);
        assert_eq!(l.spent(token, t(9)), U256::from(7));
        assert_eq!(l.spent(Asset::Token(Address::ZERO), t(0)), U256::ZERO);
        for at in [t(5), t(1), t(5)] {
            l.record_request(at);
        }
        assert_eq!(l.requests_since(t(0)), 3);
        assert_eq!(l.requests_since(t(1)), 2);
        assert_eq!(l.requests_since(t(5)), 0);
    }

    #[test]
    fn release_undoes_a_reservation() {
        let mut l = SpendLedger::new();
        l.reserve(&vec![(Asset::Native, U256::from(5))], t(10));
        l.reserve(&vec![(Asset::Native, U256::from(7))], t(20));
        l.reserve(&vec![(Asset::Native, U256::from(9))], t(30));
        l.release(&vec![(Asset::Native, U256::from(7))], t(20));
        assert_eq!(l.spent(Asset::Native, t(0)), U256::from(14));
        assert_eq!(l.spent(Asset::Native, t(15)), U256::from(9));
        l.release(&vec![(Asset::Native, U256::from(1))], t(99)); // nothing there: no change
        assert_eq!(l.spent(Asset::Native, t(0)), U256::from(14));
    }

    #[test]
    fn pruning_keeps_every_window_that_reaches_after_it() {
        let mut l = SpendLedger::new();
        for (i, amount) in [5u64, 7, 9, 11].iter().enumerate() {
            l.reserve(
                &vec![(Asset::Native, U256::from(*amount))],
                t(10 * (i as i64 + 1)),
            );
            l.record_request(t(10 * (i as i64 + 1)));
        }
        l.prune(t(20));
        assert_eq!(l.spent(Asset::Native, t(20)), U256::from(20));
        assert_eq!(l.spent(Asset::Native, t(30)), U256::from(11));
        assert_eq!(l.requests_since(t(0)), 2);
        l.reserve(&vec![(Asset::Native, U256::from(1))], t(50));
        assert_eq!(l.spent(Asset::Native, t(25)), U256::from(21));
    }

    #[test]
    fn unlimited_stays_unlimited_inside_the_window() {
        let mut l = SpendLedger::new();
        l.reserve(&vec![(Asset::Native, U256::MAX)], t(10));
        l.reserve(&vec![(Asset::Native, U256::from(1))], t(20));
        assert_eq!(l.spent(Asset::Native, t(0)), U256::MAX);
        assert_eq!(l.spent(Asset::Native, t(30)), U256::ZERO);
    }
}
