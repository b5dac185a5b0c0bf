//! Reading a keystore v3 file that may come from anyone: read once (at most
//! [`MAX_KEYSTORE_BYTES`]), every field checked before any work, the KDF bounded by
//! [`KeystoreLimits`], the MAC compared in constant time, and every intermediate secret
//! zeroized. (eth-keystore's reader reads the path a second time after our checks, panics on
//! a short IV and leaves the derived key in memory.)

use crate::{Error, KeystoreLimits, Result, wallet::display};
use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::primitives::keccak256;
use hmac::Hmac;
use serde_json::Value;
use sha2::Sha256;
use std::{io::Read, path::Path};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The largest keystore file read (a real one is about 500 bytes).
pub const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;
/// The largest ciphertext or salt accepted (a key is 32 bytes, a BIP-39 phrase under 300).
const MAX_FIELD_BYTES: usize = 1024;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Decrypts the keystore at `path` with `passphrase`, refusing KDF work above `limits`.
pub(crate) fn decrypt(
    path: &Path,
    passphrase: &[u8],
    limits: KeystoreLimits,
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: String| Error::Keystore {
        path: display(path),
        reason,
    };
    let json = read(path)?;
    let crypto = json
        .get("crypto")
        .or_else(|| json.get("Crypto"))
        .ok_or_else(|| bad("no `crypto` section".into()))?;
    if crypto["cipher"].as_str() != Some("aes-128-ctr") {
        return Err(bad("cipher must be aes-128-ctr".into()));
    }
    let iv =
        hex_field(&crypto["cipherparams"]["iv"], 16..=16).ok_or_else(|| bad("bad iv".into()))?;
    let ciphertext = hex_field(&crypto["ciphertext"], 1..=MAX_FIELD_BYTES)
        .ok_or_else(|| bad("bad ciphertext".into()))?;
    let mac = hex_field(&crypto["mac"], 32..=32).ok_or_else(|| bad("bad mac".into()))?;
    let key = derive(crypto, passphrase, limits).map_err(bad)?;

    let mut macced = Zeroizing::new(key[16..32].to_vec());
    macced.extend_from_slice(&ciphertext);
    if !bool::from(keccak256(macced.as_slice()).as_slice().ct_eq(&mac)) {
        return Err(Error::WrongPassphrase {
            path: display(path),
        });
    }
    let mut plain = Zeroizing::new(ciphertext);
    Aes128Ctr::new(key[..16].into(), iv.as_slice().into()).apply_keystream(&mut plain);
    Ok(plain)
}

/// Reads and parses the file, at most [`MAX_KEYSTORE_BYTES`] of it.
fn read(path: &Path) -> Result<Value> {
    let io = |source| Error::Io {
        path: display(path),
        source,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEYSTORE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_KEYSTORE_BYTES {
        return Err(Error::Keystore {
            path: display(path),
            reason: format!("larger than {MAX_KEYSTORE_BYTES} bytes"),
        });
    }
    serde_json::from_slice(&text).map_err(|e| Error::Keystore {
        path: display(path),
        reason: format!("not JSON: {e}"),
    })
}

fn hex_field(value: &Value, len: std::ops::RangeInclusive<usize>) -> Option<Vec<u8>> {
    let text = value.as_str()?;
    let bytes = alloy::hex::decode(text).ok()?;
    len.contains(&bytes.len()).then_some(bytes)
}

/// The 32-byte key the KDF derives, after checking its parameters against `limits`.
fn derive(
    crypto: &Value,
    passphrase: &[u8],
    limits: KeystoreLimits,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = &crypto["kdfparams"];
    let num = |k: &str| params[k].as_u64();
    if num("dklen") != Some(32) {
        return Err("kdf dklen must be 32".into());
    }
    let salt = hex_field(&params["salt"], 1..=MAX_FIELD_BYTES).ok_or("bad kdf salt")?;
    let mut key = Zeroizing::new([0u8; 32]);
    match crypto["kdf"].as_str() {
        Some("scrypt") => {
            let (n, r, p) = (
                num("n").unwrap_or(0),
                num("r").unwrap_or(0),
                num("p").unwrap_or(0),
            );
            if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
                return Err("invalid scrypt parameters".into());
            }
            if n > limits.max_scrypt_n || r > limits.max_scrypt_r || p > limits.max_scrypt_p {
                return Err(format!(
                    "scrypt parameters n={n} r={r} p={p} exceed the limit (n <= {}, r <= {}, p <= {})",
                    limits.max_scrypt_n, limits.max_scrypt_r, limits.max_scrypt_p
                ));
            }
            let invalid = |_| "invalid scrypt parameters".to_string();
            let log_n = u8::try_from(n.trailing_zeros()).map_err(invalid)?;
            let params = scrypt::Params::new(
                log_n,
                u32::try_from(r).map_err(invalid)?,
                u32::try_from(p).map_err(invalid)?,
            )
            .map_err(|_| "invalid scrypt parameters".to_string())?;
            scrypt::scrypt(passphrase, &salt, &params, key.as_mut_slice())
                .map_err(|_| "scrypt failed".to_string())?;
        }
        Some("pbkdf2") => {
            let c = num("c").unwrap_or(0);
            if c == 0 || c > limits.max_pbkdf2_c {
                return Err(format!(
                    "pbkdf2 iterations {c} outside 1..={}",
                    limits.max_pbkdf2_c
                ));
            }
            if params["prf"].as_str() != Some("hmac-sha256") {
                return Err("pbkdf2 prf must be hmac-sha256".into());
            }
            let c = u32::try_from(c).map_err(|_| "pbkdf2 iterations too large".to_string())?;
            pbkdf2::pbkdf2::<Hmac<Sha256>>(passphrase, &salt, c, key.as_mut_slice());
        }
        other => return Err(format!("unsupported kdf {other:?}")),
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wallet;

    /// The pbkdf2 test vector of the Web3 Secret Storage definition (password "testpassword").
    const SPEC_PBKDF2: &str = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46","kdf":"pbkdf2","kdfparams":{"c":262144,"dklen":32,"prf":"hmac-sha256","salt":"ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},"mac":"517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;

    #[test]
    fn decrypts_the_spec_vector_and_refuses_a_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        std::fs::write(&path, SPEC_PBKDF2).unwrap();
        let key = decrypt(&path, b"testpassword", KeystoreLimits::default()).unwrap();
        assert_eq!(
            alloy::hex::encode(key.as_slice()),
            "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
        );
        assert!(matches!(
            decrypt(&path, b"wrong", KeystoreLimits::default()),
            Err(Error::WrongPassphrase { .. })
        ));
    }

    /// Malformed fields are errors, never panics (eth-keystore's reader panics on a short IV).
    #[test]
    fn malformed_fields_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = Wallet::create_keystore(dir.path(), "ok.json", b"pw").unwrap();
        let good: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let cases: [(&str, &str, Value); 8] = [
            ("cipherparams", "iv", serde_json::json!("00")),
            ("cipherparams", "iv", serde_json::json!(42)),
            ("", "ciphertext", serde_json::json!("")),
            ("", "mac", serde_json::json!("abcd")),
            ("", "cipher", serde_json::json!("aes-256-gcm")),
            ("kdfparams", "salt", serde_json::json!("zz")),
            ("kdfparams", "dklen", serde_json::json!(16)),
            ("", "kdf", serde_json::json!("argon2")),
        ];
        for (section, field, value) in cases {
            let mut evil = good.clone();
            match section {
                "" => evil["crypto"][field] = value.clone(),
                s => evil["crypto"][s][field] = value.clone(),
            }
            let evil_path = dir.path().join("evil.json");
            std::fs::write(&evil_path, evil.to_string()).unwrap();
            let err = decrypt(&evil_path, b"pw", KeystoreLimits::default()).unwrap_err();
            assert!(
                matches!(err, Error::Keystore { .. }),
                "{field}={value}: {err}"
            );
        }
        let huge = dir.path().join("huge.json");
        std::fs::write(&huge, vec![b' '; MAX_KEYSTORE_BYTES as usize + 1]).unwrap();
        let err = decrypt(&huge, b"pw", KeystoreLimits::default()).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
