//! Custody in a PKCS#11 token (an HSM, SoftHSM2, a smart card): the secp256k1 key is
//! generated in (or imported into) the token as sensitive and non-extractable, and every
//! signature is made by the token. [`HsmKey`] is a k256 [`PrehashSigner`], so alloy's
//! `LocalSigner<HsmKey>` provides every alloy signer trait. The token returns raw `r‖s`; the
//! signature is normalized to low-s and its recovery id found by trial recovery against the
//! token's public key.

use crate::{
    Custody, Error, KeystoreLimits, Result, Wallet,
    wallet::{Inner, display},
};
use alloy::signers::k256::ecdsa::{
    RecoveryId, Signature, SigningKey, VerifyingKey, signature::hazmat::PrehashSigner,
};
use alloy_signer_local::LocalSigner;
use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    mechanism::Mechanism,
    object::{Attribute, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    slot::Slot,
    types::AuthPin,
};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// DER of the secp256k1 curve's OID (1.3.132.0.10), the `CKA_EC_PARAMS` of every key here.
const SECP256K1_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

/// Which token and key hold the wallet. The PIN is passed separately (from a
/// [`SecretSource`](crate::SecretSource)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token (slots are found by label: their ids can change).
    pub token_label: String,
    /// The key's `CKA_LABEL` (private and public key objects share it).
    pub key_label: String,
}

impl Pkcs11Config {
    fn custody(&self) -> Custody {
        Custody::Pkcs11 {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            key_label: self.key_label.clone(),
        }
    }
}

fn err(context: &str) -> impl Fn(cryptoki::error::Error) -> Error + '_ {
    move |e| Error::Pkcs11(format!("{context}: {e}"))
}

/// A PKCS#11 module may be initialized once per process: one context per module, shared.
fn context(module: &Path) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Error::Pkcs11("module registry poisoned".into()))?;
    if let Some(ctx) = contexts.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| Error::Pkcs11(format!("cannot load module {}: {e}", display(module))))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err("initialize"))?;
    contexts.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A token: its module and label.
type TokenId = (PathBuf, String);
/// SHA-256 of a PIN.
type PinDigest = [u8; 32];

/// Opens a logged-in read-write session on the token labelled `config.token_label`.
///
/// A PKCS#11 login belongs to the token and the whole process: once one session logged in,
/// the token answers "already logged in" to any PIN. So this remembers a hash of the PIN each
/// token was opened with, and a later open must present the same PIN.
fn login(config: &Pkcs11Config, pin: &str) -> Result<Session> {
    static LOGINS: OnceLock<Mutex<HashMap<TokenId, PinDigest>>> = OnceLock::new();
    let ctx = context(&config.module)?;
    let slot = find_slot(&ctx, &config.token_label)?;
    let session = ctx.open_rw_session(slot).map_err(err("open session"))?;
    let digest: [u8; 32] = Sha256::digest(pin.as_bytes()).into();
    let mut logins = LOGINS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Error::Pkcs11("login registry poisoned".into()))?;
    let id = (config.module.clone(), config.token_label.clone());
    match session.login(UserType::User, Some(&AuthPin::from(pin))) {
        Ok(()) => {
            logins.insert(id, digest);
            Ok(session)
        }
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _))
            if logins
                .get(&id)
                .is_some_and(|known| bool::from(known.ct_eq(&digest))) =>
        {
            Ok(session)
        }
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
            Err(Error::Pkcs11(format!(
                "login: wrong PIN for token {:?} (already open with another)",
                config.token_label
            )))
        }
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _)) => {
            Err(Error::Pkcs11(format!(
                "login: wrong PIN for token {:?}",
                config.token_label
            )))
        }
        Err(e) => Err(err("login")(e)),
    }
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot> {
    for slot in ctx.get_slots_with_token().map_err(err("list slots"))? {
        let info = ctx.get_token_info(slot).map_err(err("token info"))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(Error::Pkcs11(format!("no token labelled {label:?}")))
}

fn find(session: &Session, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(err("find key"))
}

/// The one object of `class` labelled `label`; refuses none or several.
fn find_one(session: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle> {
    let noun = if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else {
        "public key"
    };
    match find(session, class, label)?.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::Pkcs11(format!("no EC {noun} labelled {label:?}"))),
        many => Err(Error::Pkcs11(format!(
            "{} EC {noun}s labelled {label:?}: ambiguous",
            many.len()
        ))),
    }
}

/// The public key of the key pair labelled `label`, from its `CKA_EC_POINT`.
fn public_key(session: &Session, label: &str) -> Result<VerifyingKey> {
    let handle = find_one(session, ObjectClass::PUBLIC_KEY, label)?;
    let attrs = session
        .get_attributes(
            handle,
            &[
                cryptoki::object::AttributeType::EcParams,
                cryptoki::object::AttributeType::EcPoint,
            ],
        )
        .map_err(err("read public key"))?;
    let (mut params, mut point) = (None, None);
    for attr in attrs {
        match attr {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    if params.as_deref() != Some(&SECP256K1_OID[..]) {
        return Err(Error::Pkcs11(format!("key {label:?} is not on secp256k1")));
    }
    let point = point.ok_or_else(|| Error::Pkcs11("public key has no EC point".into()))?;
    // DER OCTET STRING (04 41 04…) as the standard says, or the bare SEC1 point.
    let sec1 = match point.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        raw => raw,
    };
    VerifyingKey::from_sec1_bytes(sec1)
        .map_err(|_| Error::Pkcs11(format!("key {label:?} has an invalid EC point")))
}

/// A secp256k1 key inside a PKCS#11 token, with a few logged-in sessions to sign on.
/// Cloning shares them.
#[derive(Clone)]
pub struct HsmKey {
    inner: Arc<HsmSession>,
}

struct HsmSession {
    /// Logged-in sessions: a signer takes a free one, else waits for its turn on one.
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    key: ObjectHandle,
    public: VerifyingKey,
}

/// How many sessions a wallet keeps open on its token, so that concurrent signers do not
/// queue behind one (a token that allows fewer gets fewer).
const SESSIONS: usize = 4;

impl HsmSession {
    fn sign(&self, prehash: &[u8]) -> Result<Vec<u8>, alloy::signers::k256::ecdsa::Error> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..n).find_map(|i| self.sessions.get((start + i) % n)?.try_lock().ok());
        let session = match free {
            Some(session) => session,
            None => self
                .sessions
                .get(start % n.max(1))
                .ok_or_else(alloy::signers::k256::ecdsa::Error::new)?
                .lock()
                .map_err(|_| alloy::signers::k256::ecdsa::Error::new())?,
        };
        session
            .sign(&Mechanism::Ecdsa, self.key, prehash)
            .map_err(alloy::signers::k256::ecdsa::Error::from_source)
    }
}

impl fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmKey").finish_non_exhaustive()
    }
}

impl PrehashSigner<(Signature, RecoveryId)> for HsmKey {
    fn sign_prehash(
        &self,
        prehash: &[u8],
    ) -> Result<(Signature, RecoveryId), alloy::signers::k256::ecdsa::Error> {
        let raw = self.inner.sign(prehash)?;
        let sig = Signature::from_slice(&raw)?;
        let sig = sig.normalize_s().unwrap_or(sig);
        let id = RecoveryId::trial_recovery_from_prehash(&self.inner.public, prehash, &sig)?;
        Ok((sig, id))
    }
}

impl Wallet {
    /// Opens the key labelled `config.key_label` in the token, logging in with `pin`, and
    /// proves it signs for the address of its public key.
    pub fn open_pkcs11(config: &Pkcs11Config, pin: &str) -> Result<Self> {
        let session = login(config, pin)?;
        let key = find_one(&session, ObjectClass::PRIVATE_KEY, &config.key_label)?;
        let public = public_key(&session, &config.key_label)?;
        let address = alloy::primitives::Address::from_public_key(&public);
        let mut sessions = vec![Mutex::new(session)];
        while sessions.len() < SESSIONS {
            match login(config, pin) {
                Ok(more) => sessions.push(Mutex::new(more)),
                Err(_) => break,
            }
        }
        let hsm = HsmKey {
            inner: Arc::new(HsmSession {
                sessions,
                next: AtomicUsize::new(0),
                key,
                public,
            }),
        };
        let wallet = Self::new(
            Inner::Hsm(LocalSigner::new_with_credential(hsm, address, None)),
            config.custody(),
        );
        wallet.probe()?;
        Ok(wallet)
    }

    /// Generates a new secp256k1 key pair in the token (private key sensitive, never
    /// extractable), labelled `config.key_label`; refuses a label already in use.
    pub fn generate_pkcs11(config: &Pkcs11Config, pin: &str) -> Result<Self> {
        {
            let session = login(config, pin)?;
            refuse_existing(&session, &config.key_label)?;
            let label = Attribute::Label(config.key_label.as_bytes().to_vec());
            let public = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(SECP256K1_OID.to_vec()),
                Attribute::Verify(true),
                label.clone(),
            ];
            session
                .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private_template(label))
                .map_err(err("generate key pair"))?;
        }
        Self::open_pkcs11(config, pin)
    }

    /// Copies the key of the keystore `src` into the token (sensitive, never extractable from
    /// it again), labelled `config.key_label`, and opens it from the token. The keystore file
    /// is left as it is: delete it once the token is backed up.
    pub fn import_keystore_into_pkcs11(
        config: &Pkcs11Config,
        pin: &str,
        src: &Path,
        passphrase: &[u8],
        limits: KeystoreLimits,
    ) -> Result<Self> {
        let local = Self::open(src, passphrase, limits)?;
        let Inner::Local(signer) = local.signer_ref() else {
            return Err(Error::Pkcs11("only a local key can be imported".into()));
        };
        {
            let session = login(config, pin)?;
            refuse_existing(&session, &config.key_label)?;
            store_key(&session, signer.credential(), &config.key_label)?;
        }
        let wallet = Self::open_pkcs11(config, pin)?;
        if wallet.address() != local.address() {
            return Err(Error::Pkcs11(
                "the imported key signs for another address".into(),
            ));
        }
        Ok(wallet)
    }
}

fn private_template(label: Attribute) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        label,
    ]
}

fn refuse_existing(session: &Session, label: &str) -> Result<()> {
    if find(session, ObjectClass::PRIVATE_KEY, label)?.is_empty()
        && find(session, ObjectClass::PUBLIC_KEY, label)?.is_empty()
    {
        Ok(())
    } else {
        Err(Error::Pkcs11(format!(
            "the token already holds a key labelled {label:?}"
        )))
    }
}

fn store_key(session: &Session, key: &SigningKey, label: &str) -> Result<()> {
    let label = Attribute::Label(label.as_bytes().to_vec());
    let point = key.verifying_key().to_encoded_point(false);
    let mut der_point = vec![0x04, 0x41];
    der_point.extend_from_slice(point.as_bytes());
    let public = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::EcParams(SECP256K1_OID.to_vec()),
        Attribute::EcPoint(der_point),
        Attribute::Verify(true),
        label.clone(),
    ];
    let mut private = private_template(label);
    private.extend([
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(SECP256K1_OID.to_vec()),
        Attribute::Value(key.to_bytes().to_vec()),
    ]);
    let result = session
        .create_object(&private)
        .and_then(|_| session.create_object(&public));
    for attr in &mut private {
        if let Attribute::Value(v) = attr {
            v.zeroize();
        }
    }
    result.map(|_| ()).map_err(err("store key"))
}
