#![doc = include_str!("../README.md")]

pub mod decision;
pub mod decode;
mod evaluate;
pub mod ledger;
mod parse;
pub mod policy;
pub mod request;
pub mod routers;
pub mod units;

pub use decision::{Decision, Spend, Violation, ViolationCode};
pub use decode::{Action, Asset, Effect, EffectKind, decode_transaction};
pub use evaluate::{Context, evaluate};
pub use ledger::{SpendLedger, Usage};
pub use parse::{PolicyError, parse_address};
pub use policy::{OnAnomaly, Policy, Profile};
pub use request::{Request, RequestError, TxRequest};
