//! Where the wallet's key lives ([`Custody`]), where a secret that unlocks it comes from
//! ([`SecretSource`]), and the proof that it can sign right now ([`Probe`]).

use crate::{Error, Result};
use serde::Serialize;
use std::{fmt, path::PathBuf, time::Duration};
use zeroize::Zeroizing;

/// The custody backend of a [`Wallet`](crate::Wallet), without any secret: what
/// `valet wallet show` reports and what the gateway logs at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum Custody {
    /// A random key held in memory only (tests, sandbox).
    Memory,
    /// A keystore v3 file (scrypt or pbkdf2, AES-128-CTR), readable by geth and `cast wallet`.
    Keystore {
        /// The keystore file.
        path: PathBuf,
    },
    /// A key derived from a BIP-39 phrase: the derived key in a keystore v3 file, the phrase
    /// in a sibling file encrypted under the same passphrase.
    Mnemonic {
        /// The keystore v3 file of the derived key.
        path: PathBuf,
        /// The encrypted phrase.
        phrase_path: PathBuf,
        /// The BIP-32 derivation path, e.g. `m/44'/60'/0'/0/0`.
        derivation_path: String,
    },
    /// A secp256k1 key inside a PKCS#11 token (HSM); it never leaves the token.
    Pkcs11 {
        /// The PKCS#11 module (shared library).
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// The key's label (`CKA_LABEL`).
        key_label: String,
    },
    /// An `ECC_SECG_P256K1` key in AWS KMS; it never leaves KMS.
    AwsKms {
        /// Key id, ARN or alias.
        key_id: String,
        /// The AWS region.
        region: String,
        /// The KMS endpoint.
        endpoint: String,
    },
    /// Key material kept in an OpenBao / HashiCorp Vault KV v2 secret, read at start.
    Vault {
        /// The server's base URL.
        url: String,
        /// `MOUNT/PATH` of the KV v2 secret.
        path: String,
    },
}

impl fmt::Display for Custody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("in memory (not persisted)"),
            Self::Keystore { path } => write!(f, "keystore v3 {}", path.display()),
            Self::Mnemonic {
                path,
                derivation_path,
                ..
            } => write!(
                f,
                "BIP-39 mnemonic, path {derivation_path}, key in keystore v3 {}",
                path.display()
            ),
            Self::Pkcs11 {
                module,
                token_label,
                key_label,
            } => write!(
                f,
                "PKCS#11 token {token_label:?} key {key_label:?} via {}",
                module.display()
            ),
            Self::AwsKms {
                key_id,
                region,
                endpoint,
            } => write!(f, "AWS KMS key {key_id} in {region} via {endpoint}"),
            Self::Vault { url, path } => write!(f, "Vault KV v2 {url} {path}"),
        }
    }
}

/// Where a secret (PIN, token, passphrase) is read from. Its `Debug` shows the source, never
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file (the first line, without its line ending).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret; refuses an empty one. The error names the source, not the secret.
    pub fn read(&self) -> Result<Zeroizing<String>> {
        let secret = match self {
            Self::Env(name) => {
                Zeroizing::new(std::env::var(name).map_err(|_| {
                    Error::Secret(format!("environment variable {name} is not set"))
                })?)
            }
            Self::File(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
                        path: path.display().to_string(),
                        source,
                    })?);
                Zeroizing::new(text.lines().next().unwrap_or_default().to_owned())
            }
        };
        if secret.is_empty() {
            return Err(Error::Secret(format!("{self} is empty")));
        }
        Ok(secret)
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A signature over a fixed probe digest, verified by recovering the wallet's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// How long signing (and verifying) took.
    #[serde(rename = "latency_us", with = "micros")]
    pub latency: Duration,
}

mod micros {
    use serde::Serializer;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_sources_name_themselves_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        std::fs::write(&file, "4321\nsecond line\n").unwrap();
        let source = SecretSource::File(file.clone());
        assert_eq!(source.read().unwrap().as_str(), "4321");
        assert!(!format!("{source:?} {source}").contains("4321"));
        std::fs::write(&file, "\n").unwrap();
        let empty = source.read().unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
        let unset = SecretSource::Env("VALET_TEST_SURELY_UNSET_7f3a".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            unset.contains("VALET_TEST_SURELY_UNSET_7f3a is not set"),
            "{unset}"
        );
    }

    #[test]
    fn custody_serializes_without_secrets_and_displays() {
        let c = Custody::Pkcs11 {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "t".into(),
            key_label: "k".into(),
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"backend": "pkcs11", "module": "/usr/lib/softhsm/libsofthsm2.so",
                "token_label": "t", "key_label": "k"})
        );
        assert_eq!(
            c.to_string(),
            "PKCS#11 token \"t\" key \"k\" via /usr/lib/softhsm/libsofthsm2.so"
        );
        let p = Probe {
            latency: Duration::from_micros(1500),
        };
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::json!({"latency_us": 1500})
        );
    }
}
