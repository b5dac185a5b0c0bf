//! PKCS#11 against a real SoftHSM2 token. SoftHSM reads `SOFTHSM2_CONF` (a private token
//! directory) when the module is initialized, once per process, and this crate forbids the
//! `unsafe` `set_var`: so `pkcs11_backend` makes the token, then runs `in_child` in a child
//! process of this test binary with that variable set.

use crate::{assert_mined, assert_no_leak, assert_signs, skip};
use alloy_signer_local::PrivateKeySigner;
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};
use valet_keys::{Custody, KeystoreLimits, Pkcs11Config, Wallet};

const TOKEN: &str = "valet-test";
const PIN: &str = "918273";
const SO_PIN: &str = "56473829";
/// A known key for the import and leak checks (anvil's second dev key).
const KEY1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

fn module() -> Option<PathBuf> {
    let path = std::env::var_os("VALET_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    path.exists().then_some(path)
}

fn config(key_label: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: module().unwrap(),
        token_label: TOKEN.into(),
        key_label: key_label.into(),
    }
}

#[test]
fn pkcs11_backend() {
    let Some(module) = module() else {
        return skip("SoftHSM2 is not installed (apt-get install softhsm2 opensc)");
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_conf(dir.path());
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pkcs11::in_child", "--ignored", "--nocapture"])
        .env("SOFTHSM2_CONF", &conf)
        .env("VALET_PKCS11_MODULE", &module)
        .env("VALET_TEST_PKCS11_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the PKCS#11 tests failed (output above)");
}

fn softhsm_conf(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by pkcs11_backend, with SOFTHSM2_CONF set"]
async fn in_child() {
    if std::env::var_os("VALET_TEST_PKCS11_CHILD").is_none() {
        return skip("run through pkcs11_backend");
    }
    generated_key_signs_and_stays_in_the_token().await;
    imported_key_and_secret_hygiene();
}

async fn generated_key_signs_and_stays_in_the_token() {
    let cfg = config("wallet");
    let wallet = Wallet::generate_pkcs11(&cfg, PIN).unwrap();
    assert_eq!(
        wallet.custody(),
        &Custody::Pkcs11 {
            module: cfg.module.clone(),
            token_label: TOKEN.into(),
            key_label: "wallet".into(),
        }
    );
    let reopened = Wallet::open_pkcs11(&cfg, PIN).unwrap();
    assert_eq!(reopened.address(), wallet.address());
    assert_signs(&reopened);
    // Low-s, always (EIP-2): 200 signatures, none with s above n/2.
    let half_n = alloy::primitives::U256::from_be_slice(
        &alloy::hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
            .unwrap(),
    );
    let start = Instant::now();
    for i in 0..200u32 {
        let sig = reopened.sign_message(&i.to_be_bytes()).unwrap();
        assert!(sig.s() <= half_n, "high s at {i}");
        assert_eq!(
            sig.recover_address_from_msg(i.to_be_bytes()).unwrap(),
            wallet.address()
        );
    }
    eprintln!(
        "PKCS#11 (SoftHSM2): 200 signatures + recoveries in {:?}",
        start.elapsed()
    );
    let rate = crate::assert_signs_concurrently(&reopened);
    eprintln!("PKCS#11 (SoftHSM2): {rate:.0} signatures/s from 4 threads");
    assert_mined(&reopened).await;

    let again = Wallet::generate_pkcs11(&cfg, PIN).unwrap_err();
    assert!(again.to_string().contains("already holds"), "{again}");
    // The token says the key was made there and can never be read out.
    if let Ok(out) = Command::new("pkcs11-tool")
        .args([
            "--module",
            cfg.module.to_str().unwrap(),
            "--token-label",
            TOKEN,
        ])
        .args([
            "--login",
            "--pin",
            PIN,
            "--list-objects",
            "--type",
            "privkey",
        ])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("never extractable"), "{text}");
        assert!(text.contains("sensitive"), "{text}");
    }
}

fn imported_key_and_secret_hygiene() {
    let dir = tempfile::tempdir().unwrap();
    let key = alloy::hex::decode(KEY1).unwrap();
    let pass = "import pass 1618";
    PrivateKeySigner::encrypt_keystore(
        dir.path(),
        &mut rand::rngs::OsRng,
        &key,
        pass,
        Some("src.json"),
    )
    .unwrap();
    let src = dir.path().join("src.json");
    let local = Wallet::open(&src, pass.as_bytes(), KeystoreLimits::default()).unwrap();
    let cfg = config("imported");
    let wallet = Wallet::import_keystore_into_pkcs11(
        &cfg,
        PIN,
        &src,
        pass.as_bytes(),
        KeystoreLimits::default(),
    )
    .unwrap();
    assert_eq!(wallet.address(), local.address());
    assert_signs(&wallet);

    let wrong_pin = Wallet::open_pkcs11(&cfg, "000000").unwrap_err();
    let missing = Wallet::open_pkcs11(&config("no such key"), PIN).unwrap_err();
    let no_token = Wallet::open_pkcs11(
        &Pkcs11Config {
            token_label: "absent".into(),
            ..config("imported")
        },
        PIN,
    )
    .unwrap_err();
    let twice = Wallet::import_keystore_into_pkcs11(
        &cfg,
        PIN,
        &src,
        pass.as_bytes(),
        KeystoreLimits::default(),
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("no EC private key"),
        "{missing}"
    );
    assert!(
        no_token.to_string().contains("no token labelled"),
        "{no_token}"
    );
    assert!(wrong_pin.to_string().contains("PIN"), "{wrong_pin}");
    let texts: Vec<String> = [&wrong_pin, &missing, &no_token, &twice]
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .chain([
            format!("{wallet:?}"),
            wallet.custody().to_string(),
            serde_json::to_string(wallet.custody()).unwrap(),
        ])
        .collect();
    assert_no_leak(
        &texts,
        &[&key, PIN.as_bytes(), SO_PIN.as_bytes(), pass.as_bytes()],
    );
}
