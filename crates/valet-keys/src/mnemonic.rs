//! Custody from a BIP-39 phrase (English word list, no BIP-39 password).
//!
//! At rest: the key derived at the derivation path is a standard keystore v3 file (`dir/name`,
//! which `cast wallet` and geth can open), and the phrase itself is a second keystore v3 file
//! (`dir/name.mnemonic`) whose ciphertext is the phrase's UTF-8 bytes, encrypted under the same
//! passphrase, with a clear-text `valet` object naming the derivation path and address. Both are
//! mode 0600. Opening the wallet decrypts only the derived key; the phrase stays encrypted until
//! someone asks for it ([`Wallet::reveal_mnemonic`]). In memory the phrase is zeroized on drop.

use crate::{
    Custody, Error, KeystoreLimits, Result, Wallet,
    wallet::{Inner, display, restrict},
};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The derivation path of the first account, as `cast wallet` and most wallets use.
pub const DEFAULT_DERIVATION_PATH: &str = "m/44'/60'/0'/0/0";

/// The phrase file of the keystore `path`: `path` with `.mnemonic` appended.
pub fn phrase_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".mnemonic");
    PathBuf::from(name)
}

fn derive(phrase: &str, derivation_path: &str) -> Result<PrivateKeySigner> {
    let words = Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
    // Errors deliberately drop the inner text: a word-list error may quote a word of the phrase.
    let builder = MnemonicBuilder::<English>::default()
        .phrase(words.as_str())
        .derivation_path(derivation_path)
        .map_err(|_| Error::Mnemonic(format!("invalid derivation path {derivation_path:?}")))?;
    builder
        .build()
        .map_err(|_| Error::Mnemonic("not a valid BIP-39 English phrase".into()))
}

impl Wallet {
    /// Derives the key of `phrase` at `derivation_path` (see [`DEFAULT_DERIVATION_PATH`]) and
    /// stores it as the keystore `dir/name` plus the encrypted phrase `dir/name.mnemonic`, both
    /// under `passphrase`. Returns the wallet and the keystore's path.
    pub fn import_mnemonic(
        phrase: &str,
        derivation_path: &str,
        dir: &Path,
        name: &str,
        passphrase: &[u8],
    ) -> Result<(Self, PathBuf)> {
        let signer = derive(phrase, derivation_path)?;
        let path = dir.join(name);
        let phrase_file = phrase_path(&path);
        let key = Zeroizing::new(signer.to_bytes().0);
        encrypt_to(dir, name, key.as_slice(), passphrase)?;
        let words = Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
        let phrase_name = phrase_file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Mnemonic("keystore name is not UTF-8".into()))?;
        encrypt_to(dir, phrase_name, words.as_bytes(), passphrase)?;
        annotate(&phrase_file, derivation_path, &signer)?;
        let wallet = Self::new(
            Inner::Local(signer),
            Custody::Mnemonic {
                path: path.clone(),
                phrase_path: phrase_file,
                derivation_path: derivation_path.to_owned(),
            },
        );
        Ok((wallet, path))
    }

    /// Opens a wallet made by [`Wallet::import_mnemonic`]: decrypts the keystore `path` (its
    /// KDF bounded by `limits`); the phrase file only supplies the derivation path.
    pub fn open_mnemonic(path: &Path, passphrase: &[u8], limits: KeystoreLimits) -> Result<Self> {
        let phrase_file = phrase_path(path);
        let meta = read_meta(&phrase_file)?;
        let mut wallet = Self::open(path, passphrase, limits)?;
        if meta.address != wallet.address() {
            return Err(Error::Mnemonic(format!(
                "{} belongs to {}, not to the keystore's {}",
                display(&phrase_file),
                meta.address,
                wallet.address()
            )));
        }
        wallet.custody = Custody::Mnemonic {
            path: path.to_path_buf(),
            phrase_path: phrase_file,
            derivation_path: meta.derivation_path,
        };
        Ok(wallet)
    }

    /// Decrypts the phrase of a mnemonic wallet (for a backup the owner asked for), checking
    /// that it still derives this wallet's address. Zeroized when dropped.
    pub fn reveal_mnemonic(
        path: &Path,
        passphrase: &[u8],
        limits: KeystoreLimits,
    ) -> Result<Zeroizing<String>> {
        let phrase_file = phrase_path(path);
        let meta = read_meta(&phrase_file)?;
        let bytes = crate::keystore::decrypt(&phrase_file, passphrase, limits)?;
        let phrase = Zeroizing::new(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::Mnemonic("the decrypted phrase is not UTF-8".into()))?,
        );
        if derive(&phrase, &meta.derivation_path)?.address() != meta.address {
            return Err(Error::Mnemonic(format!(
                "{} does not derive {}",
                display(&phrase_file),
                meta.address
            )));
        }
        Ok(phrase)
    }
}

fn encrypt_to(dir: &Path, name: &str, secret: &[u8], passphrase: &[u8]) -> Result<()> {
    let path = dir.join(name);
    if path.exists() {
        return Err(Error::Keystore {
            path: display(&path),
            reason: "already exists".into(),
        });
    }
    eth_keystore::encrypt_key(dir, &mut rand::rngs::OsRng, secret, passphrase, Some(name))
        .map_err(|e| Error::Keystore {
            path: display(&path),
            reason: e.to_string(),
        })?;
    restrict(&path)
}

/// The clear-text part of a phrase file.
struct Meta {
    derivation_path: String,
    address: alloy::primitives::Address,
}

fn annotate(phrase_file: &Path, derivation_path: &str, signer: &PrivateKeySigner) -> Result<()> {
    let io = |source| Error::Io {
        path: display(phrase_file),
        source,
    };
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phrase_file).map_err(io)?)
            .map_err(|e| Error::Mnemonic(e.to_string()))?;
    json["valet"] = serde_json::json!({
        "kind": "bip39-phrase",
        "derivation_path": derivation_path,
        "address": signer.address(),
    });
    std::fs::write(phrase_file, json.to_string()).map_err(io)
}

fn read_meta(phrase_file: &Path) -> Result<Meta> {
    let bad = |reason: &str| Error::Mnemonic(format!("{}: {reason}", display(phrase_file)));
    let text = std::fs::read_to_string(phrase_file).map_err(|source| Error::Io {
        path: display(phrase_file),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad("not JSON"))?;
    let valet = &json["valet"];
    Ok(Meta {
        derivation_path: valet["derivation_path"]
            .as_str()
            .ok_or_else(|| bad("no derivation path"))?
            .to_owned(),
        address: valet["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| bad("no address"))?,
    })
}
