//! Keystore v3: interoperable with `cast wallet` both ways; hostile KDF parameters refused fast.

use crate::{assert_mined, assert_no_leak, assert_signs, cast, run_cast, skip};
use std::time::{Duration, Instant};
use valet_keys::{Custody, KeystoreLimits, Wallet};

/// anvil's first dev key (public knowledge, used as a known secret for the leak check).
pub const KEY0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const ADDR0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const PASS: &str = "keystore pass phrase 3141";

#[test]
fn cast_keystores_open_in_valet() {
    let Some(cast) = cast() else {
        return skip("cast is not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run_cast(
        &cast,
        &[
            "wallet",
            "import",
            "imported",
            "--private-key",
            KEY0,
            "--keystore-dir",
            d,
            "--unsafe-password",
            PASS,
        ],
    );
    let path = dir.path().join("imported");
    let wallet = Wallet::open(&path, PASS.as_bytes(), KeystoreLimits::default()).unwrap();
    assert_eq!(wallet.address().to_checksum(None), ADDR0);
    assert_eq!(wallet.custody(), &Custody::Keystore { path: path.clone() });
    assert_signs(&wallet);

    run_cast(
        &cast,
        &["wallet", "new", d, "fresh", "--unsafe-password", PASS],
    );
    let fresh = dir.path().join("fresh");
    let cast_address = run_cast(
        &cast,
        &[
            "wallet",
            "address",
            "--keystore",
            fresh.to_str().unwrap(),
            "--password",
            PASS,
        ],
    );
    let wallet = Wallet::open(&fresh, PASS.as_bytes(), KeystoreLimits::default()).unwrap();
    assert_eq!(wallet.address().to_checksum(None), cast_address);

    let wrong = Wallet::open(&path, b"not it", KeystoreLimits::default()).unwrap_err();
    assert_no_leak(
        &[
            wrong.to_string(),
            format!("{wrong:?}"),
            format!("{wallet:?}"),
            wallet.custody().to_string(),
            serde_json::to_string(wallet.custody()).unwrap(),
        ],
        &[&alloy::hex::decode(KEY0).unwrap(), PASS.as_bytes()],
    );
}

#[tokio::test]
async fn valet_keystores_open_in_cast_and_sign_alike() {
    let Some(cast) = cast() else {
        return skip("cast is not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let (wallet, path) =
        Wallet::create_keystore(dir.path(), "wallet.json", PASS.as_bytes()).unwrap();
    let p = path.to_str().unwrap();
    let cast_address = run_cast(
        &cast,
        &["wallet", "address", "--keystore", p, "--password", PASS],
    );
    assert_eq!(wallet.address().to_checksum(None), cast_address);
    // RFC 6979 signatures are deterministic: the same key signs the same message identically.
    let cast_sig = run_cast(
        &cast,
        &[
            "wallet",
            "sign",
            "--keystore",
            p,
            "--password",
            PASS,
            "hello",
        ],
    );
    let sig = wallet.sign_message(b"hello").unwrap();
    assert_eq!(
        cast_sig,
        format!("0x{}", alloy::hex::encode(sig.as_bytes()))
    );
    let rate = crate::assert_signs_concurrently(&wallet);
    eprintln!("keystore: {rate:.0} signatures/s from 4 threads");
    assert_mined(&wallet).await;
}

#[test]
fn hostile_kdf_parameters_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = Wallet::create_keystore(dir.path(), "src.json", PASS.as_bytes()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Each would cost from gigabytes of memory to hours of CPU if honoured.
    let hostile = [
        ("n", serde_json::json!(1u64 << 30)),
        ("n", serde_json::json!(1u64 << 62)),
        ("r", serde_json::json!(1u64 << 20)),
        ("p", serde_json::json!(1u64 << 20)),
        ("n", serde_json::json!(3)),
        ("dklen", serde_json::json!(1u64 << 30)),
    ];
    for (field, value) in hostile {
        let mut evil = json.clone();
        evil["crypto"]["kdfparams"][field] = value.clone();
        let evil_path = dir.path().join("evil.json");
        std::fs::write(&evil_path, evil.to_string()).unwrap();
        let start = Instant::now();
        let err = Wallet::open(&evil_path, PASS.as_bytes(), KeystoreLimits::default()).unwrap_err();
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(100),
            "{field}={value}: {took:?}"
        );
        assert!(
            matches!(err, valet_keys::Error::Keystore { .. }),
            "{field}={value}: {err}"
        );
    }
    let mut pbkdf2 = json.clone();
    pbkdf2["crypto"]["kdf"] = serde_json::json!("pbkdf2");
    pbkdf2["crypto"]["kdfparams"] =
        serde_json::json!({"c": 1u64 << 40, "dklen": 32, "prf": "hmac-sha256", "salt": "00"});
    let evil_path = dir.path().join("pbkdf2.json");
    std::fs::write(&evil_path, pbkdf2.to_string()).unwrap();
    let start = Instant::now();
    let err = Wallet::open(&evil_path, PASS.as_bytes(), KeystoreLimits::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(100));
    assert!(err.to_string().contains("pbkdf2 iterations"), "{err}");
}
