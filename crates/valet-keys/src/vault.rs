//! Custody in OpenBao / HashiCorp Vault: the key material is a KV v2 secret
//! (`{"private_key": "0x…", "address": "0x…"}`) read once at start with a token; the key then
//! lives in this process's memory like a keystore's. (Vault's Transit engine cannot sign with
//! secp256k1, so the key cannot stay inside Vault.)
//!
//! The HTTP client is the workspace's `reqwest`; an `https://` URL needs the TLS features of
//! that client, which plain `http://127.0.0.1` does not.

use crate::{
    Custody, Error, KeystoreLimits, Result, Wallet,
    wallet::{Inner, display},
};
use alloy::primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use serde::Deserialize;
use std::{path::Path, time::Duration};
use zeroize::{Zeroize, Zeroizing};

/// Where the wallet's KV v2 secret is. The token is passed separately (from a
/// [`SecretSource`](crate::SecretSource), usually `VAULT_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8200`.
    pub url: String,
    /// `MOUNT/PATH` of the secret, e.g. `secret/valet/wallet` (KV v2 mounted at `secret`).
    pub path: String,
}

impl VaultConfig {
    fn custody(&self) -> Custody {
        Custody::Vault {
            url: self.url.clone(),
            path: self.path.clone(),
        }
    }

    /// The KV v2 data URL of the secret: `URL/v1/MOUNT/data/PATH`.
    fn data_url(&self) -> Result<String> {
        let url = self.url.trim_end_matches('/');
        // No user info, query or fragment: the URL is shown in `Custody` and errors.
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.contains(['@', '?', '#'])
        {
            return Err(Error::Vault(
                "the URL must be http(s)://HOST[:PORT] without credentials or query".into(),
            ));
        }
        match self.path.trim_matches('/').split_once('/') {
            Some((mount, rest)) if !mount.is_empty() && !rest.is_empty() => {
                Ok(format!("{url}/v1/{mount}/data/{rest}"))
            }
            _ => Err(Error::Vault(format!(
                "path {:?} must be MOUNT/PATH (e.g. secret/valet/wallet)",
                self.path
            ))),
        }
    }
}

#[derive(Deserialize)]
struct ReadResponse {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    data: KeyMaterial,
}

#[derive(Deserialize)]
struct KeyMaterial {
    private_key: Zeroizing<String>,
    address: Option<Address>,
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Vault(format!("HTTP client: {e}")))
}

/// What a failed request says, without its body (which is the server's, not ours to echo).
fn status_error(config: &VaultConfig, status: reqwest::StatusCode) -> Error {
    let why = match status.as_u16() {
        400 => "refused the write (check-and-set: a secret is already there?)",
        403 => "permission denied (token invalid, expired or without access)",
        404 => "no secret at this path",
        _ => "unexpected answer",
    };
    Error::Vault(format!("{} {}: {status}: {why}", config.url, config.path))
}

fn http_error(config: &VaultConfig) -> impl Fn(reqwest::Error) -> Error + '_ {
    // `without_url` keeps the message free of anything but the failure itself.
    move |e| {
        Error::Vault(format!(
            "{} {}: {}",
            config.url,
            config.path,
            e.without_url()
        ))
    }
}

impl Wallet {
    /// Reads the wallet's key from the KV v2 secret `config.path` with `token`; when the
    /// secret names an `address`, checks the key signs for it.
    pub async fn open_vault(config: &VaultConfig, token: &str) -> Result<Self> {
        let response = client()?
            .get(config.data_url()?)
            .header("X-Vault-Token", token)
            .send()
            .await
            .map_err(http_error(config))?;
        if !response.status().is_success() {
            return Err(status_error(config, response.status()));
        }
        let body = response.bytes().await.map_err(http_error(config))?;
        let parsed = serde_json::from_slice::<ReadResponse>(&body);
        if let Ok(mut owned) = body.try_into_mut() {
            owned.as_mut().zeroize();
        }
        let material = parsed
            .map_err(|_| {
                Error::Vault(format!(
                    "{}: the secret has no `private_key` field",
                    config.path
                ))
            })?
            .data
            .data;
        let signer = parse_key(&material.private_key)
            .ok_or_else(|| Error::Vault(format!("{}: `private_key` is not a key", config.path)))?;
        if let Some(expected) = material.address
            && expected != signer.address()
        {
            return Err(Error::Vault(format!(
                "{}: the key signs for {}, not the recorded {expected}",
                config.path,
                signer.address()
            )));
        }
        Ok(Self::new(Inner::Local(signer), config.custody()))
    }

    /// Generates a new key and writes it to `config.path`, only if no secret is there yet
    /// (KV v2 check-and-set 0).
    pub async fn create_in_vault(config: &VaultConfig, token: &str) -> Result<Self> {
        let signer = PrivateKeySigner::random();
        write(config, token, &signer).await?;
        Ok(Self::new(Inner::Local(signer), config.custody()))
    }

    /// Copies the key of the keystore `src` to `config.path` (only if no secret is there yet).
    pub async fn import_keystore_into_vault(
        config: &VaultConfig,
        token: &str,
        src: &Path,
        passphrase: &[u8],
        limits: KeystoreLimits,
    ) -> Result<Self> {
        let local = Self::open(src, passphrase, limits)?;
        let Inner::Local(signer) = local.signer_ref() else {
            return Err(Error::Vault(format!("{}: not a local key", display(src))));
        };
        write(config, token, signer).await?;
        Ok(Self::new(Inner::Local(signer.clone()), config.custody()))
    }
}

fn parse_key(text: &str) -> Option<PrivateKeySigner> {
    let hex = text.trim().trim_start_matches("0x");
    let mut bytes = Zeroizing::new([0u8; 32]);
    alloy::hex::decode_to_slice(hex, bytes.as_mut_slice()).ok()?;
    PrivateKeySigner::from_bytes(&B256::from(*bytes)).ok()
}

async fn write(config: &VaultConfig, token: &str, signer: &PrivateKeySigner) -> Result<()> {
    let key = Zeroizing::new(format!("0x{}", alloy::hex::encode(signer.to_bytes())));
    let body = Zeroizing::new(
        serde_json::json!({
            "options": { "cas": 0 },
            "data": { "private_key": key.as_str(), "address": signer.address() },
        })
        .to_string(),
    );
    let response = client()?
        .post(config.data_url()?)
        .header("X-Vault-Token", token)
        .header("Content-Type", "application/json")
        .body(body.as_bytes().to_vec())
        .send()
        .await
        .map_err(http_error(config))?;
    if !response.status().is_success() {
        return Err(status_error(config, response.status()));
    }
    Ok(())
}
