//! End-to-end tests of the real `valet` binary: `valet init` makes a home, `valet serve` runs as
//! a child process in front of anvil with the sandbox contracts (a real ERC-20 and Uniswap V2),
//! the owner works through `valet key …` and `valet audit …`, and agents talk to `/rpc` with
//! plain JSON-RPC and with real client libraries (viem, web3.py) that nobody here wrote.
//!
//! Node with the pinned viem and Python 3 with the pinned web3.py come from
//! `./tools/install.sh`; without them the client tests fail and say so.

// Helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used)]

#[path = "cli/clients.rs"]
mod clients;
#[path = "cli/dashboard.rs"]
mod dashboard;
#[path = "cli/lifecycle.rs"]
mod lifecycle;
#[path = "cli/newuser.rs"]
mod newuser;
#[path = "cli/onchain.rs"]
mod onchain;
#[path = "cli/readme.rs"]
mod readme;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/run.rs"]
mod run;
#[path = "cli/sandbox.rs"]
mod sandbox;
#[path = "cli/signing.rs"]
mod signing;
#[path = "cli/support.rs"]
mod support;
#[path = "cli/tls.rs"]
mod tls;
