#![doc = include_str!("../README.md")]

mod agent_key;
mod custody;
mod keystore;
mod kms;
mod mnemonic;
mod pkcs11;
mod vault;
mod wallet;

pub use agent_key::{AgentKey, PresentedKey, SecretHash};
pub use custody::{Custody, Probe, SecretSource};
pub use keystore::MAX_KEYSTORE_BYTES;
pub use kms::{AwsCredentials, KmsConfig, KmsKey};
pub use mnemonic::{DEFAULT_DERIVATION_PATH, phrase_path};
pub use pkcs11::{HsmKey, Pkcs11Config};
pub use vault::VaultConfig;
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
    /// A PIN, token or passphrase could not be read (names its source, never its value).
    #[error("secret: {0}")]
    Secret(String),
    /// A BIP-39 phrase or derivation path is unusable (never quotes the phrase).
    #[error("mnemonic: {0}")]
    Mnemonic(String),
    /// The PKCS#11 module, token or key failed.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// AWS KMS refused or failed (never carries the credentials).
    #[error("AWS KMS: {0}")]
    Kms(String),
    /// OpenBao / Vault refused or failed.
    #[error("vault: {0}")]
    Vault(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
