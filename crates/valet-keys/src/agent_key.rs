//! Agent keys: `valet_<id>_<secret>` bearer credentials. The secret is 32 random bytes; only
//! its SHA-256 hash is ever stored, and hashes are compared in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The SHA-256 hash of an agent key's secret.
pub type SecretHash = [u8; 32];

const PREFIX: &str = "valet_";

/// A newly issued agent key. The full token is shown once and never stored.
pub struct AgentKey {
    id: String,
    token: Zeroizing<String>,
}

impl AgentKey {
    /// Generates a key: a 12-hex-digit public id and a 32-byte secret from the OS RNG.
    pub fn generate() -> Self {
        let mut id = [0u8; 6];
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut id);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let id = format!("k{}", hex(&id));
        let token = Zeroizing::new(format!("{PREFIX}{id}_{}", hex(secret.as_ref())));
        Self { id, token }
    }

    /// The public id (`k` and 12 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bearer token to hand to the agent, once.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The hash to store.
    pub fn secret_hash(&self) -> SecretHash {
        // A token made by `generate` always parses.
        PresentedKey::parse(&self.token).map_or([0; 32], |k| k.secret_hash)
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A token presented by a client, split into its id and the hash of its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// The public id it claims.
    pub id: String,
    secret_hash: SecretHash,
}

impl PresentedKey {
    /// Parses `valet_<id>_<secret>`; `None` for anything else (without saying why: the
    /// caller answers "unknown key" either way).
    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let valid_id = id.len() == 13
            && id.starts_with('k')
            && id[1..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !valid_id || secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let secret_hash = Sha256::digest(secret.to_ascii_lowercase().as_bytes()).into();
        Some(Self {
            id: id.to_string(),
            secret_hash,
        })
    }

    /// Whether the secret matches a stored hash, in constant time.
    pub fn matches(&self, stored: &SecretHash) -> bool {
        self.secret_hash.ct_eq(stored).into()
    }
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_verify_and_others_do_not() {
        let key = AgentKey::generate();
        assert!(key.token().starts_with(&format!("valet_{}_", key.id())));
        assert_eq!(key.token().len(), 6 + 13 + 1 + 64);
        let presented = PresentedKey::parse(key.token()).unwrap();
        assert_eq!(presented.id, key.id());
        assert!(presented.matches(&key.secret_hash()));

        let other = AgentKey::generate();
        assert_ne!(other.id(), key.id());
        assert!(!presented.matches(&other.secret_hash()));
        let mut forged = key.token().to_string();
        forged.pop();
        forged.push(if key.token().ends_with('0') { '1' } else { '0' });
        assert!(
            !PresentedKey::parse(&forged)
                .unwrap()
                .matches(&key.secret_hash())
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let key = AgentKey::generate();
        for bad in [
            "",
            "valet_",
            "Bearer x",
            &key.token()[1..],
            &key.token().replace("valet_", "valet-"),
            &format!("{}00", key.token()),
            &key.token().replace('_', "__"),
        ] {
            assert!(PresentedKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = AgentKey::generate();
        let secret = key.token().rsplit('_').next().unwrap().to_string();
        assert!(!format!("{key:?}").contains(&secret));
        assert!(!format!("{:?}", PresentedKey::parse(key.token()).unwrap()).contains(&secret));
    }
}
