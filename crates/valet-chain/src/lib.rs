#![doc = include_str!("../README.md")]

pub mod account;
mod anvil;
pub mod contracts;
mod error;
mod http;
mod nonce;
mod send;
mod tools;
mod upstream;

pub use anvil::{ANVIL_ENV, Anvil};
pub use error::{Error, Result};
pub use http::{HttpClient, HttpOptions, HttpResponse};
pub use nonce::{NonceLease, NonceManager};
pub use send::{Sender, Sent};
pub use tools::NODE_MODULES_ENV;
pub use upstream::{
    CONNECT_TIMEOUT, Fees, GAS_LIMIT_CAP, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT, Upstream,
    gas_with_margin,
};
