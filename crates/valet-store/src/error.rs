//! The store's error type. Every message names what it is about (a key id, a path, a seq) and
//! none carries a secret: database URLs are shown without their credentials.

use std::path::PathBuf;

/// The result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed an operation; the message says which one (and the key
    /// id or seq involved), then the driver's error.
    #[error("database: {0}")]
    Database(String),
    /// A key with this id already exists.
    #[error("key {id} already exists")]
    DuplicateKey {
        /// The id that was taken.
        id: String,
    },
    /// Something named does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `key k7f3a9c2e1b4d`.
        what: String,
    },
    /// Stored data that cannot be read back (a column, a checkpoint file, an export line).
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Where, e.g. `audit seq 12: tx_hash` or a checkpoint path.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value the store will not write, or a database URL it cannot use. Nothing was written.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which value, e.g. `audit record of request r-1: decision`.
        what: String,
        /// Why.
        reason: String,
    },
    /// A file operation failed (the checkpoint, the SQLite file).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `writing checkpoint`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The group-commit writer halted after a failed commit and accepts nothing more (fail
    /// closed: a failed fsync is never retried). Restart the process once the cause is fixed.
    #[error(
        "audit writer halted after a failed commit ({reason}); restart once the cause is fixed"
    )]
    Halted {
        /// The failure that halted it.
        reason: String,
    },
}

impl Error {
    /// A database error with its context (what was being done, for which key id or seq).
    pub(crate) fn db(context: impl std::fmt::Display, err: sqlx::Error) -> Self {
        Error::Database(format!("{context}: {err}"))
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
