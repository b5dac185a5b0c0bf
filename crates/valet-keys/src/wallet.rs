//! The wallet signer. Its key lives in one of several custody backends ([`Custody`]): a
//! keystore v3 file (scrypt or pbkdf2, AES-128-CTR; geth and foundry compatible), a BIP-39
//! phrase, a PKCS#11 token, an AWS KMS key, or an OpenBao/Vault KV secret. Whatever the backend, the key never
//! leaves [`Wallet`] (nor, for PKCS#11, the token), and the signing API is the same.

use crate::{Custody, Error, Probe, Result, kms::KmsKey, pkcs11::HsmKey};
use alloy::{
    consensus::SignableTransaction,
    dyn_abi::TypedData,
    eips::eip7702::{Authorization, SignedAuthorization},
    network::{EthereumWallet, TxSignerSync},
    primitives::{Address, B256, Signature, U256, keccak256},
    signers::SignerSync,
    sol_types::{Eip712Domain, SolStruct},
};
use alloy_signer_local::{LocalSigner, PrivateKeySigner};
use std::{
    fmt,
    path::{Path, PathBuf},
    time::Instant,
};

/// Upper bounds on the key-derivation work a keystore file may ask for. A file from an
/// untrusted source could otherwise ask for gigabytes of memory or hours of CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeystoreLimits {
    /// Largest scrypt `n` (geth's standard is 2^18).
    pub max_scrypt_n: u64,
    /// Largest scrypt `r`.
    pub max_scrypt_r: u64,
    /// Largest scrypt `p`.
    pub max_scrypt_p: u64,
    /// Largest pbkdf2 iteration count.
    pub max_pbkdf2_c: u64,
}

impl Default for KeystoreLimits {
    fn default() -> Self {
        Self {
            max_scrypt_n: 1 << 18,
            max_scrypt_r: 8,
            max_scrypt_p: 4,
            max_pbkdf2_c: 1 << 20,
        }
    }
}

/// The signer behind a [`Wallet`]: a key in this process's memory, a token's or KMS's.
#[derive(Clone)]
pub(crate) enum Inner {
    /// Keystore, mnemonic, Vault, memory: the key is in (zeroized-on-drop) memory.
    Local(PrivateKeySigner),
    /// PKCS#11: the key stays in the token.
    Hsm(LocalSigner<HsmKey>),
    /// AWS KMS: the key stays in KMS.
    Kms(LocalSigner<KmsKey>),
}

/// Runs `$body` with `$s` bound to whichever alloy signer the wallet holds.
macro_rules! with_signer {
    ($self:expr, $s:ident => $body:expr) => {
        match &$self.signer {
            Inner::Local($s) => $body,
            Inner::Hsm($s) => $body,
            Inner::Kms($s) => $body,
        }
    };
}

/// The digest [`Wallet::probe`] signs: fixed, and not a transaction or message hash.
const PROBE_DIGEST_INPUT: &[u8] = b"valet custody probe: this is not a transaction";

/// The wallet's signing key. `Debug` shows only the address.
pub struct Wallet {
    signer: Inner,
    pub(crate) custody: Custody,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address())
            .field("custody", &self.custody)
            .finish_non_exhaustive()
    }
}

pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

impl Wallet {
    pub(crate) fn new(signer: Inner, custody: Custody) -> Self {
        Self { signer, custody }
    }

    /// A new random key, in memory only (tests).
    pub fn random() -> Self {
        Self::new(Inner::Local(PrivateKeySigner::random()), Custody::Memory)
    }

    pub(crate) fn signer_ref(&self) -> &Inner {
        &self.signer
    }

    /// Where the key lives (no secret in it).
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// Proves the backend can sign right now: signs a fixed digest and checks that the
    /// signature recovers to [`Wallet::address`]. Returns how long that took.
    pub fn probe(&self) -> Result<Probe> {
        let digest = keccak256(PROBE_DIGEST_INPUT);
        let start = Instant::now();
        let sig = self.sign_hash(&digest)?;
        let recovered = sig
            .recover_address_from_prehash(&digest)
            .map_err(|e| Error::Sign(format!("probe signature does not recover: {e}")))?;
        let latency = start.elapsed();
        if recovered != self.address() {
            return Err(Error::Sign(format!(
                "probe signature recovers to {recovered}, not the wallet {}",
                self.address()
            )));
        }
        Ok(Probe { latency })
    }

    fn sign_hash(&self, digest: &B256) -> Result<Signature> {
        with_signer!(self, s => s.sign_hash_sync(digest)).map_err(|e| Error::Sign(e.to_string()))
    }

    /// Creates a new random key and stores it encrypted as `dir/name` (mode 0600).
    pub fn create_keystore(dir: &Path, name: &str, passphrase: &[u8]) -> Result<(Self, PathBuf)> {
        let path = dir.join(name);
        let (signer, _) =
            PrivateKeySigner::new_keystore(dir, &mut rand::rngs::OsRng, passphrase, Some(name))
                .map_err(|e| Error::Keystore {
                    path: display(&path),
                    reason: e.to_string(),
                })?;
        restrict(&path)?;
        Ok((Self::keystore(signer, &path), path))
    }

    /// Opens a keystore file (read once, at most 64 KiB), refusing KDF parameters above
    /// `limits` before doing any work.
    pub fn open(path: &Path, passphrase: &[u8], limits: KeystoreLimits) -> Result<Self> {
        let key = crate::keystore::decrypt(path, passphrase, limits)?;
        let signer = PrivateKeySigner::from_slice(&key).map_err(|_| Error::Keystore {
            path: display(path),
            reason: "the decrypted key is not a secp256k1 private key".into(),
        })?;
        Ok(Self::keystore(signer, path))
    }

    fn keystore(signer: PrivateKeySigner, path: &Path) -> Self {
        Self::new(
            Inner::Local(signer),
            Custody::Keystore {
                path: path.to_path_buf(),
            },
        )
    }

    /// Opens `src` with `passphrase` and copies it to `dir/name` (mode 0600), unchanged, so
    /// the same passphrase keeps working and geth or foundry can still read it.
    pub fn import_keystore(
        src: &Path,
        passphrase: &[u8],
        limits: KeystoreLimits,
        dir: &Path,
        name: &str,
    ) -> Result<(Self, PathBuf)> {
        let mut wallet = Self::open(src, passphrase, limits)?;
        let dest = dir.join(name);
        std::fs::copy(src, &dest).map_err(|source| Error::Io {
            path: display(&dest),
            source,
        })?;
        restrict(&dest)?;
        wallet.custody = Custody::Keystore { path: dest.clone() };
        Ok((wallet, dest))
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        with_signer!(self, s => s.address())
    }

    /// Signs a transaction (EIP-155 chain id taken from the transaction).
    pub fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> Result<Signature> {
        with_signer!(self, s => s.sign_transaction_sync(tx)).map_err(|e| Error::Sign(e.to_string()))
    }

    /// Signs EIP-712 typed data.
    pub fn sign_typed_data(&self, data: &TypedData) -> Result<Signature> {
        with_signer!(self, s => s.sign_dynamic_typed_data_sync(data))
            .map_err(|e| Error::Sign(e.to_string()))
    }

    /// Signs an EIP-191 personal message.
    pub fn sign_message(&self, message: &[u8]) -> Result<Signature> {
        with_signer!(self, s => s.sign_message_sync(message))
            .map_err(|e| Error::Sign(e.to_string()))
    }

    /// Signs an [EIP-7702] authorization to delegate this account to `delegate`, bound to
    /// `chain_id` (never 0: a chain-id-0 authorization is valid on every chain) and to the
    /// account's `nonce` at inclusion.
    ///
    /// [EIP-7702]: https://eips.ethereum.org/EIPS/eip-7702
    pub fn sign_authorization(
        &self,
        chain_id: u64,
        delegate: Address,
        nonce: u64,
    ) -> Result<SignedAuthorization> {
        if chain_id == 0 {
            return Err(Error::Sign(
                "an EIP-7702 authorization must name its chain (chain id 0 is valid everywhere)"
                    .into(),
            ));
        }
        let auth = Authorization {
            chain_id: U256::from(chain_id),
            address: delegate,
            nonce,
        };
        let sig = self.sign_hash(&auth.signature_hash())?;
        Ok(auth.into_signed(sig))
    }

    /// Signs an [EIP-712] struct under `domain` (a session key's `ExecuteWithKey`, say).
    ///
    /// [EIP-712]: https://eips.ethereum.org/EIPS/eip-712
    pub fn sign_struct<T: SolStruct>(
        &self,
        payload: &T,
        domain: &Eip712Domain,
    ) -> Result<Signature> {
        with_signer!(self, s => s.sign_typed_data_sync(payload, domain))
            .map_err(|e| Error::Sign(e.to_string()))
    }

    /// The wallet as an alloy network wallet, for sending set-up transactions (sandbox
    /// funding, deployments). The key stays inside the signer.
    pub fn network_wallet(&self) -> EthereumWallet {
        match &self.signer {
            Inner::Local(s) => EthereumWallet::from(s.clone()),
            Inner::Hsm(s) => EthereumWallet::from(s.clone()),
            Inner::Kms(s) => EthereumWallet::from(s.clone()),
        }
    }
}

#[cfg(unix)]
pub(crate) fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        Error::Io {
            path: display(path),
            source,
        }
    })
}

#[cfg(not(unix))]
pub(crate) fn restrict(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        consensus::TxEip1559,
        primitives::{TxKind, U256},
    };

    #[test]
    fn create_open_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let (wallet, path) =
            Wallet::create_keystore(dir.path(), "wallet.json", b"correct horse").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let reopened = Wallet::open(&path, b"correct horse", KeystoreLimits::default()).unwrap();
        assert_eq!(reopened.address(), wallet.address());
        assert!(matches!(
            Wallet::open(&path, b"wrong", KeystoreLimits::default()),
            Err(Error::WrongPassphrase { .. })
        ));

        let mut tx = TxEip1559 {
            chain_id: 31337,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::with_last_byte(0xb0)),
            value: U256::from(1),
            ..Default::default()
        };
        let sig = reopened.sign_transaction(&mut tx).unwrap();
        assert_eq!(
            sig.recover_address_from_prehash(&tx.signature_hash())
                .unwrap(),
            wallet.address()
        );
        let sig = wallet.sign_message(b"hello").unwrap();
        assert_eq!(
            sig.recover_address_from_msg(b"hello").unwrap(),
            wallet.address()
        );
        assert!(!format!("{wallet:?}").contains("signer"));
    }

    #[test]
    fn import_copies_and_refuses_expensive_kdfs() {
        let dir = tempfile::tempdir().unwrap();
        let (wallet, path) = Wallet::create_keystore(dir.path(), "src.json", b"pw").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let (imported, copy) = Wallet::import_keystore(
            &path,
            b"pw",
            KeystoreLimits::default(),
            dest.path(),
            "wallet.json",
        )
        .unwrap();
        assert_eq!(imported.address(), wallet.address());
        assert!(copy.exists());

        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["crypto"]["kdfparams"]["n"] = serde_json::json!(1u64 << 30);
        let evil = dir.path().join("evil.json");
        std::fs::write(&evil, json.to_string()).unwrap();
        let err = Wallet::open(&evil, b"pw", KeystoreLimits::default()).unwrap_err();
        assert!(err.to_string().contains("exceed the limit"), "{err}");
        std::fs::write(&evil, "not json").unwrap();
        assert!(
            Wallet::open(&evil, b"pw", KeystoreLimits::default())
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }
}
