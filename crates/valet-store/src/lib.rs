#![doc = include_str!("../README.md")]

mod chain;
mod checkpoint;
mod error;
mod group;
mod model;
mod postgres;
mod sql;
mod sqlite;
mod store;

pub use chain::{VerifyError, canonical_json, entry_from_json, entry_hash, entry_to_json, verify};
pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use group::GroupCommit;
pub use model::{
    AuditEntry, AuditFilter, AuditRecord, Batch, Decider, KeyMode, KeyRecord, KeyTruth, NonceClaim,
    Reservation,
};
pub use store::{Store, open};
