//! AWS KMS against a local emulator (ministack: correct secp256k1 digest signing; moto would
//! hash the digest again). It does not check SigV4 signatures: the unit test
//! `kms::tests::sigv4_matches_botocore` pins those to botocore's.

use crate::{assert_mined, assert_no_leak, assert_signs, skip};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use valet_keys::{AwsCredentials, Custody, KmsConfig, Wallet};
use zeroize::Zeroizing;

const SECRET: &str = "kms-test-secret-access-key-5b1d";
const SESSION: &str = "kms-test-session-token-93c0";

fn ministack() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v ministack"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A ministack serving KMS only, on a free port of 127.0.0.1, killed on drop.
struct Ministack {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Ministack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ministack {
    async fn start(binary: &PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .current_dir(dir.path())
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("SERVICES", "kms")
            .env("IOT_MTLS_ENABLED", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let emulator = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return emulator;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ministack did not listen within 30 s");
    }
}

fn credentials() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIAVALETTEST".into(),
        secret_access_key: Zeroizing::new(SECRET.into()),
        session_token: Some(Zeroizing::new(SESSION.into())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_kms_backend() {
    let Some(binary) = ministack() else {
        return skip("ministack is not installed (pip install ministack)");
    };
    let emulator = Ministack::start(&binary).await;
    let config = KmsConfig {
        key_id: String::new(),
        region: "us-east-1".into(),
        endpoint: emulator.url.clone(),
    };
    let wallet = Wallet::create_kms(&config, credentials()).unwrap();
    let Custody::AwsKms { key_id, .. } = wallet.custody().clone() else {
        panic!("{:?}", wallet.custody());
    };
    let config = KmsConfig { key_id, ..config };
    let start = Instant::now();
    let reopened = Wallet::open_kms(&config, credentials()).unwrap();
    eprintln!("AWS KMS open (GetPublicKey + probe): {:?}", start.elapsed());
    assert_eq!(reopened.address(), wallet.address());
    assert_signs(&reopened);
    let start = Instant::now();
    for i in 0..50u32 {
        let sig = reopened.sign_message(&i.to_be_bytes()).unwrap();
        assert_eq!(
            sig.recover_address_from_msg(i.to_be_bytes()).unwrap(),
            wallet.address()
        );
    }
    eprintln!(
        "AWS KMS (ministack): 50 signatures + recoveries in {:?}",
        start.elapsed()
    );
    let rate = crate::assert_signs_concurrently(&reopened);
    eprintln!("AWS KMS (ministack): {rate:.0} signatures/s from 4 threads");
    assert_mined(&reopened).await;

    let missing = Wallet::open_kms(
        &KmsConfig {
            key_id: "no-such-key".into(),
            ..config.clone()
        },
        credentials(),
    )
    .unwrap_err();
    let down = Wallet::open_kms(
        &KmsConfig {
            endpoint: "http://127.0.0.1:9".into(),
            ..config.clone()
        },
        credentials(),
    )
    .unwrap_err();
    let texts: Vec<String> = [&missing, &down]
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .chain([
            format!("{reopened:?}"),
            format!("{:?}", credentials()),
            reopened.custody().to_string(),
            serde_json::to_string(reopened.custody()).unwrap(),
        ])
        .collect();
    assert!(missing.to_string().contains("GetPublicKey"), "{missing}");
    assert_no_leak(&texts, &[SECRET.as_bytes(), SESSION.as_bytes()]);
}
