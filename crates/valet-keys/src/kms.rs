//! Custody in AWS KMS: an `ECC_SECG_P256K1` key that never leaves KMS; every signature is a
//! KMS `Sign` call (`MessageType=DIGEST`, `ECDSA_SHA_256`) signed with SigV4.
//!
//! KMS is reached over HTTP, which is async, while [`Wallet`]'s API is sync (the gateway signs
//! inside its request line). So each KMS wallet owns one thread with its own single-threaded
//! runtime that makes the calls, each as its own task (concurrent signers overlap their round
//! trips); `sign_prehash` hands it the digest and waits for the answer.
//! The caller's thread blocks for one KMS round trip, as it does for a PKCS#11 token; nothing
//! ever nests runtimes. Region, endpoint and credentials come from the standard AWS
//! environment (`AWS_REGION`, `AWS_ENDPOINT_URL_KMS`/`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). `https://` endpoints
//! (real AWS) need the TLS features of the workspace's `reqwest`.

use crate::{Custody, Error, Result, Wallet, wallet::Inner};
use alloy::signers::k256::ecdsa::{
    RecoveryId, Signature, VerifyingKey, signature::hazmat::PrehashSigner,
};
use alloy_signer_local::LocalSigner;
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::{
    fmt,
    sync::{Arc, mpsc},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use zeroize::Zeroizing;

/// DER prefix of a secp256k1 SubjectPublicKeyInfo (id-ecPublicKey, secp256k1, 65-byte point).
const SPKI_PREFIX: [u8; 23] = [
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
];

/// Which KMS key holds the wallet, and where KMS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsConfig {
    /// Key id, ARN or alias of the `ECC_SECG_P256K1` / `SIGN_VERIFY` key.
    pub key_id: String,
    /// The AWS region, e.g. `us-east-1`.
    pub region: String,
    /// The KMS endpoint, e.g. `https://kms.us-east-1.amazonaws.com` or a local emulator.
    pub endpoint: String,
}

impl KmsConfig {
    /// `key_id` with region and endpoint from the standard AWS environment (`AWS_REGION` or
    /// `AWS_DEFAULT_REGION`; `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, else AWS's own).
    pub fn from_env(key_id: &str) -> Result<Self> {
        let region = env_any(&["AWS_REGION", "AWS_DEFAULT_REGION"])
            .ok_or_else(|| Error::Kms("AWS_REGION is not set".into()))?;
        let endpoint = env_any(&["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"])
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        Ok(Self {
            key_id: key_id.to_owned(),
            region,
            endpoint,
        })
    }

    fn custody(&self) -> Custody {
        Custody::AwsKms {
            key_id: self.key_id.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct AwsCredentials {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional) `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self> {
        let get = |n: &str| {
            env_any(&[n]).ok_or_else(|| Error::Kms(format!("environment variable {n} is not set")))
        };
        Ok(Self {
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: Zeroizing::new(get("AWS_SECRET_ACCESS_KEY")?),
            session_token: env_any(&["AWS_SESSION_TOKEN"]).map(Zeroizing::new),
        })
    }
}

/// One KMS JSON call: `(X-Amz-Target, body)`, answered on the enclosed channel.
type Job = (&'static str, Value, mpsc::SyncSender<Result<Value>>);

/// The KMS client thread of one wallet: a single-threaded runtime on which every call is its
/// own task, so concurrent signers wait for one round trip each, not for each other. Dropping
/// the last clone ends the thread.
#[derive(Clone)]
struct KmsClient {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// What every call of one client shares.
struct Shared {
    http: reqwest::Client,
    config: KmsConfig,
    credentials: AwsCredentials,
}

impl KmsClient {
    fn spawn(config: KmsConfig, credentials: AwsCredentials) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Kms(format!("runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Kms(format!("HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            http,
            config,
            credentials,
        });
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("valet-kms".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some((target, body, reply)) = rx.recv().await {
                        let shared = Arc::clone(&shared);
                        tokio::spawn(async move {
                            let s = &*shared;
                            let answer = call(&s.http, &s.config, &s.credentials, target, &body);
                            // The capacity-1 reply channel never blocks this task.
                            let _ = reply.send(answer.await);
                        });
                    }
                });
            })
            .map_err(|e| Error::Kms(format!("thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs one call on the client thread and waits for its answer.
    fn call(&self, target: &'static str, body: Value) -> Result<Value> {
        let gone = || Error::Kms("the KMS client thread is gone".into());
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs.send((target, body, reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// Sends one SigV4-signed KMS JSON request. Errors carry KMS's error type and status only.
async fn call(
    http: &reqwest::Client,
    config: &KmsConfig,
    credentials: &AwsCredentials,
    target: &str,
    body: &Value,
) -> Result<Value> {
    let url = reqwest::Url::parse(&config.endpoint)
        .map_err(|_| Error::Kms("the endpoint is not a URL".into()))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err(Error::Kms("the endpoint has no host".into())),
    };
    let body = body.to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Kms("the clock is before 1970".into()))?
        .as_secs();
    let request = SigV4 {
        host: &host,
        region: &config.region,
        target: &format!("TrentService.{target}"),
        body: &body,
        unix_time: now,
    };
    let mut builder = http
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", amz_date(now))
        .header("x-amz-target", request.target)
        .header("authorization", request.authorization(credentials)?);
    if let Some(token) = &credentials.session_token {
        builder = builder.header("x-amz-security-token", token.as_str());
    }
    let response = builder
        .body(body.clone())
        .send()
        .await
        .map_err(|e| Error::Kms(format!("{target}: {}", e.without_url())))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| Error::Kms(format!("{target}: {status}: {}", e.without_url())))?;
    if !status.is_success() {
        let kind = answer["__type"].as_str().unwrap_or("unknown error");
        return Err(Error::Kms(format!("{target}: {status}: {kind}")));
    }
    Ok(answer)
}

/// What SigV4 signs of a KMS request.
struct SigV4<'a> {
    host: &'a str,
    region: &'a str,
    target: &'a str,
    body: &'a str,
    unix_time: u64,
}

fn hmac(key: &[u8], data: &str) -> Result<[u8; 32]> {
    // HMAC accepts keys of any length; the error is for other MACs.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| Error::Kms("HMAC key rejected".into()))?;
    mac.update(data.as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

fn sha256_hex(data: &str) -> String {
    alloy::hex::encode(Sha256::digest(data.as_bytes()))
}

impl SigV4<'_> {
    /// The `Authorization` header (AWS Signature Version 4, service `kms`).
    fn authorization(&self, credentials: &AwsCredentials) -> Result<String> {
        let amz_date = amz_date(self.unix_time);
        let day = &amz_date[..8];
        let token = credentials.session_token.as_ref();
        let mut headers = format!(
            "content-type:application/x-amz-json-1.1\nhost:{}\nx-amz-date:{amz_date}\n",
            self.host
        );
        let mut signed = String::from("content-type;host;x-amz-date;");
        if let Some(token) = token {
            headers.push_str(&format!("x-amz-security-token:{}\n", token.as_str()));
            signed.push_str("x-amz-security-token;");
        }
        headers.push_str(&format!("x-amz-target:{}\n", self.target));
        signed.push_str("x-amz-target");
        let canonical = format!("POST\n/\n\n{headers}\n{signed}\n{}", sha256_hex(self.body));
        let scope = format!("{day}/{}/kms/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(&canonical)
        );
        let secret = Zeroizing::new(format!("AWS4{}", credentials.secret_access_key.as_str()));
        let key = Zeroizing::new(hmac(secret.as_bytes(), day)?);
        let key = Zeroizing::new(hmac(key.as_slice(), self.region)?);
        let key = Zeroizing::new(hmac(key.as_slice(), "kms")?);
        let key = Zeroizing::new(hmac(key.as_slice(), "aws4_request")?);
        let signature = alloy::hex::encode(hmac(key.as_slice(), &to_sign)?);
        Ok(format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            credentials.access_key_id
        ))
    }
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (UTC).
fn amz_date(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// A secp256k1 key in AWS KMS, signing through its client thread.
#[derive(Clone)]
pub struct KmsKey {
    client: KmsClient,
    key_id: String,
    public: VerifyingKey,
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PrehashSigner<(Signature, RecoveryId)> for KmsKey {
    fn sign_prehash(
        &self,
        prehash: &[u8],
    ) -> Result<(Signature, RecoveryId), alloy::signers::k256::ecdsa::Error> {
        let answer = self
            .client
            .call(
                "Sign",
                json!({
                    "KeyId": self.key_id,
                    "Message": B64.encode(prehash),
                    "MessageType": "DIGEST",
                    "SigningAlgorithm": "ECDSA_SHA_256",
                }),
            )
            .map_err(alloy::signers::k256::ecdsa::Error::from_source)?;
        let der = answer["Signature"]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(alloy::signers::k256::ecdsa::Error::new)?;
        let sig = Signature::from_der(&der)?;
        let sig = sig.normalize_s().unwrap_or(sig);
        let id = RecoveryId::trial_recovery_from_prehash(&self.public, prehash, &sig)?;
        Ok((sig, id))
    }
}

impl Wallet {
    /// Opens the KMS key `config.key_id` (reads its public key, checks it is secp256k1) and
    /// proves it signs for that key's address.
    pub fn open_kms(config: &KmsConfig, credentials: AwsCredentials) -> Result<Self> {
        let client = KmsClient::spawn(config.clone(), credentials)?;
        let answer = client.call("GetPublicKey", json!({ "KeyId": config.key_id }))?;
        if answer["KeySpec"].as_str() != Some("ECC_SECG_P256K1") {
            return Err(Error::Kms(format!(
                "key {} is not an ECC_SECG_P256K1 key",
                config.key_id
            )));
        }
        let der = answer["PublicKey"]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| Error::Kms("GetPublicKey: no public key".into()))?;
        let point = der
            .strip_prefix(&SPKI_PREFIX[..])
            .ok_or_else(|| Error::Kms("GetPublicKey: not a secp256k1 public key".into()))?;
        let public = VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| Error::Kms("GetPublicKey: invalid point".into()))?;
        let address = alloy::primitives::Address::from_public_key(&public);
        let key = KmsKey {
            client,
            key_id: config.key_id.clone(),
            public,
        };
        let wallet = Self::new(
            Inner::Kms(LocalSigner::new_with_credential(key, address, None)),
            config.custody(),
        );
        wallet.probe()?;
        Ok(wallet)
    }

    /// Creates a new `ECC_SECG_P256K1` signing key in KMS and opens it; `config.key_id` is
    /// ignored and the new key's id is in the returned wallet's [`Custody`].
    pub fn create_kms(config: &KmsConfig, credentials: AwsCredentials) -> Result<Self> {
        let client = KmsClient::spawn(config.clone(), credentials.clone())?;
        let answer = client.call(
            "CreateKey",
            json!({
                "KeySpec": "ECC_SECG_P256K1",
                "KeyUsage": "SIGN_VERIFY",
                "Description": "Valet wallet key",
            }),
        )?;
        let key_id = answer["KeyMetadata"]["KeyId"]
            .as_str()
            .ok_or_else(|| Error::Kms("CreateKey: no key id".into()))?;
        Self::open_kms(
            &KmsConfig {
                key_id: key_id.to_owned(),
                ..config.clone()
            },
            credentials,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected signatures computed by botocore 1.43's `SigV4Auth` for the same request.
    #[test]
    fn sigv4_matches_botocore() {
        let request = SigV4 {
            host: "127.0.0.1:4566",
            region: "us-east-1",
            target: "TrentService.GetPublicKey",
            body: r#"{"KeyId":"k1"}"#,
            unix_time: 1_440_938_160,
        };
        let mut credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: None,
        };
        assert_eq!(
            request.authorization(&credentials).unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=3867b622885fef6e638a6a5c9ded64b7b7bc5ec31a0c96092511af1bfc515962"
        );
        credentials.session_token = Some(Zeroizing::new("session-token-xyz".into()));
        assert!(request.authorization(&credentials).unwrap().ends_with(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
             Signature=bfd7c7f2e4500100c733f7d9463386f8fbb4902ab827a13543925df33df7127d"
        ));
        assert!(!format!("{credentials:?}").contains("EXAMPLEKEY"));
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(1_709_210_096), "20240229T123456Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }
}
