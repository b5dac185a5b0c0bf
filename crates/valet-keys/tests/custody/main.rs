//! The custody backends against real tools: `cast` (keystore and mnemonic interop), SoftHSM2
//! (PKCS#11), a `bao server -dev` (OpenBao KV v2), and anvil, which mines a transaction and
//! an EIP-7702 delegation signed by each backend. A test whose tool is missing prints why and
//! passes; `tools/install.sh` installs them all, so CI runs everything.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod keystore;
mod kms;
mod mnemonic;
mod pkcs11;
mod vault;

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::EthereumWallet,
    primitives::{Address, Bytes, TxKind, U256},
};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use valet_chain::{Anvil, Sender, Upstream};
use valet_keys::Wallet;

/// The delegate of the EIP-7702 authorizations (any address will do for the signature).
pub const DELEGATE: Address = Address::with_last_byte(0xde);

/// The pinned `cast`, if installed.
pub fn cast() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/node_modules/@foundry-rs/cast-linux-amd64/bin/cast");
    path.exists().then_some(path)
}

/// Runs `cast ARGS` and returns its trimmed stdout; panics with its stderr on failure.
pub fn run_cast(cast: &Path, args: &[&str]) -> String {
    let out = Command::new(cast).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cast {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Prints why a test does nothing.
pub fn skip(why: &str) {
    eprintln!("SKIPPED: {why} (run ./tools/install.sh)");
}

fn transfer(chain_id: u64, nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xb0)),
        value: U256::from(1),
        ..Default::default()
    }
}

/// The wallet signs an EIP-1559 transaction, an EIP-7702 authorization and a message that
/// recover to its address, and passes the probe.
pub fn assert_signs(wallet: &Wallet) {
    let mut tx = transfer(31337, 0);
    let sig = wallet.sign_transaction(&mut tx).unwrap();
    assert_eq!(
        sig.recover_address_from_prehash(&tx.signature_hash())
            .unwrap(),
        wallet.address()
    );
    let auth = wallet.sign_authorization(31337, DELEGATE, 7).unwrap();
    assert_eq!(auth.recover_authority().unwrap(), wallet.address());
    assert_eq!(auth.nonce, 7);
    let sig = wallet.sign_message(b"custody").unwrap();
    assert_eq!(
        sig.recover_address_from_msg(b"custody").unwrap(),
        wallet.address()
    );
    let probe = wallet.probe().unwrap();
    assert!(probe.latency < Duration::from_secs(2), "{probe:?}");
    eprintln!("{}: probe {:?}", wallet.custody(), probe.latency);
}

/// Four threads sign 25 distinct messages each at once (as the gateway's workers do); every
/// signature recovers to the wallet. Returns signatures per second.
pub fn assert_signs_concurrently(wallet: &Wallet) -> f64 {
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            scope.spawn(move || {
                for i in 0..25u8 {
                    let msg = [t, i];
                    let sig = wallet.sign_message(&msg).unwrap();
                    assert_eq!(sig.recover_address_from_msg(msg).unwrap(), wallet.address());
                }
            });
        }
    });
    100.0 / start.elapsed().as_secs_f64()
}

/// Anvil mines a transfer the wallet signed through the gateway's (sync) path, and an
/// EIP-7702 delegation it authorized: the account's code becomes `0xef0100 ‖ DELEGATE`.
/// (The wallet may be one of anvil's own accounts: the funder is the one no test derives.)
pub async fn assert_mined(wallet: &Wallet) {
    let anvil = Anvil::spawn().await.unwrap();
    let funder = Sender::new(&anvil.url(), EthereumWallet::from(anvil.dev_key(9)))
        .await
        .unwrap();
    let ether = U256::from(10).pow(U256::from(18));
    funder
        .call("fund", wallet.address(), ether, Vec::new())
        .await
        .unwrap();

    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let nonce = upstream.pending_nonce(wallet.address()).await.unwrap();
    let mut tx = transfer(anvil.chain_id(), nonce);
    let sig = wallet.sign_transaction(&mut tx).unwrap();
    let raw = TxEnvelope::from(tx.into_signed(sig)).encoded_2718();
    let hash = upstream.send_raw(&raw).await.unwrap();
    assert!(
        upstream
            .wait_for_receipt(hash, Duration::from_secs(30))
            .await
            .unwrap(),
        "the backend-signed transfer reverted"
    );

    let auth = wallet
        .sign_authorization(anvil.chain_id(), DELEGATE, nonce + 1)
        .unwrap();
    funder
        .send(
            "delegate",
            Some(wallet.address()),
            U256::ZERO,
            Bytes::new(),
            vec![auth],
        )
        .await
        .unwrap();
    let code = upstream
        .forward("eth_getCode", &json!([wallet.address(), "latest"]))
        .await
        .unwrap();
    assert_eq!(
        code.as_str().unwrap(),
        format!("0xef0100{}", alloy::hex::encode(DELEGATE))
    );
}

/// None of `texts` contains any of `secrets`, as raw text or as hex (either case, with or
/// without 0x).
pub fn assert_no_leak(texts: &[String], secrets: &[&[u8]]) {
    for secret in secrets {
        let hex = alloy::hex::encode(secret);
        let mut needles = vec![hex.clone(), hex.to_uppercase()];
        if let Ok(text) = std::str::from_utf8(secret) {
            needles.push(text.to_owned());
        }
        for text in texts {
            for needle in &needles {
                assert!(!text.contains(needle.as_str()), "secret leaked in {text:?}");
            }
        }
    }
}
