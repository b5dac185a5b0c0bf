#![doc = include_str!("../README.md")]

mod agent_key;
mod wallet;

pub use agent_key::{AgentKey, PresentedKey, SecretHash};
pub use wallet::{KeystoreLimits, Wallet};

/// A custody or credential failure. Never contains key bytes, passphrases or agent secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a keystore file failed.
    #[error("keystore {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The keystore file is not a usable v3 keystore (or asks for unsafe KDF work).
    #[error("keystore {path}: {reason}")]
    Keystore {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The passphrase does not open the keystore.
    #[error("keystore {path}: wrong passphrase")]
    WrongPassphrase {
        /// The file.
        path: String,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
