//! Gateway tests against real parts: anvil, the real ERC-20 and Uniswap V2 contracts, a
//! SQLite file, and HTTP on loopback.

mod env;
mod errors;
mod flow;
