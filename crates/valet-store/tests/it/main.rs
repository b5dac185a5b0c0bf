//! Integration tests of valet-store: the conformance suite run against both engines, plus
//! engine-specific checks and a group-commit throughput probe.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod conformance;
mod harness;
mod open;
mod rate;
