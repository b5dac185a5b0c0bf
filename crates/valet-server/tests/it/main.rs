//! Gateway tests against real parts: anvil, the real ERC-20 and Uniswap V2 contracts, a
//! SQLite file, and HTTP on loopback.

// The fixture helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used)]

mod anomaly;
mod caps;
mod dashboard;
mod env;
mod errors;
mod flow;
