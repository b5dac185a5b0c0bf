//! BIP-39: addresses identical to cast's; the phrase encrypted at rest; nothing leaks.

use crate::{assert_mined, assert_no_leak, assert_signs, cast, run_cast, skip};
use valet_keys::{Custody, DEFAULT_DERIVATION_PATH, KeystoreLimits, Wallet, phrase_path};

const PHRASE: &str = "test test test test test test test test test test test junk";
const PASS: &str = "mnemonic pass phrase 2718";

#[test]
fn addresses_match_cast_for_the_test_mnemonic() {
    let Some(cast) = cast() else {
        return skip("cast is not installed");
    };
    for path in [
        DEFAULT_DERIVATION_PATH,
        "m/44'/60'/0'/0/7",
        "m/44'/60'/2'/0/1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (wallet, _) =
            Wallet::import_mnemonic(PHRASE, path, dir.path(), "w.json", PASS.as_bytes()).unwrap();
        let expected = run_cast(
            &cast,
            &[
                "wallet",
                "address",
                "--mnemonic",
                PHRASE,
                "--mnemonic-derivation-path",
                path,
            ],
        );
        assert_eq!(wallet.address().to_checksum(None), expected, "{path}");
    }
}

#[tokio::test]
async fn the_phrase_is_encrypted_at_rest_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    // Extra whitespace is normalized, as every wallet does.
    let messy = format!("  {}\n", PHRASE.replace(' ', "   "));
    let (wallet, path) = Wallet::import_mnemonic(
        &messy,
        DEFAULT_DERIVATION_PATH,
        dir.path(),
        "wallet.json",
        PASS.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        wallet.address().to_checksum(None),
        crate::keystore::ADDR0,
        "m/44'/60'/0'/0/0 of the test mnemonic is anvil's first account"
    );
    let phrase_file = phrase_path(&path);
    let on_disk =
        std::fs::read_to_string(&phrase_file).unwrap() + &std::fs::read_to_string(&path).unwrap();
    assert_no_leak(
        &[on_disk],
        &[
            PHRASE.as_bytes(),
            b"junk",
            &alloy::hex::decode(crate::keystore::KEY0).unwrap(),
        ],
    );

    let reopened =
        Wallet::open_mnemonic(&path, PASS.as_bytes(), KeystoreLimits::default()).unwrap();
    assert_eq!(reopened.address(), wallet.address());
    assert_eq!(
        reopened.custody(),
        &Custody::Mnemonic {
            path: path.clone(),
            phrase_path: phrase_file,
            derivation_path: DEFAULT_DERIVATION_PATH.into(),
        }
    );
    let revealed =
        Wallet::reveal_mnemonic(&path, PASS.as_bytes(), KeystoreLimits::default()).unwrap();
    assert_eq!(revealed.as_str(), PHRASE);
    // The derived key is a plain keystore too (cast and geth open it).
    let plain = Wallet::open(&path, PASS.as_bytes(), KeystoreLimits::default()).unwrap();
    assert_eq!(plain.address(), wallet.address());
    assert_signs(&reopened);
    assert_mined(&reopened).await;
}

#[test]
fn errors_and_debug_never_quote_the_phrase() {
    let dir = tempfile::tempdir().unwrap();
    let typo = PHRASE.replace("junk", "jumk");
    let bad_word = Wallet::import_mnemonic(
        &typo,
        DEFAULT_DERIVATION_PATH,
        dir.path(),
        "a.json",
        PASS.as_bytes(),
    )
    .unwrap_err();
    let bad_path =
        Wallet::import_mnemonic(PHRASE, "m/44'/x", dir.path(), "b.json", PASS.as_bytes())
            .unwrap_err();
    let (wallet, path) = Wallet::import_mnemonic(
        PHRASE,
        DEFAULT_DERIVATION_PATH,
        dir.path(),
        "c.json",
        PASS.as_bytes(),
    )
    .unwrap();
    let again = Wallet::import_mnemonic(
        PHRASE,
        DEFAULT_DERIVATION_PATH,
        dir.path(),
        "c.json",
        PASS.as_bytes(),
    )
    .unwrap_err();
    let wrong = Wallet::reveal_mnemonic(&path, b"nope", KeystoreLimits::default()).unwrap_err();
    let wrong_open = Wallet::open_mnemonic(&path, b"nope", KeystoreLimits::default()).unwrap_err();
    assert!(
        bad_word.to_string().contains("not a valid BIP-39"),
        "{bad_word}"
    );
    assert!(again.to_string().contains("already exists"), "{again}");
    let texts: Vec<String> = [&bad_word, &bad_path, &again, &wrong, &wrong_open]
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .chain([format!("{wallet:?}"), wallet.custody().to_string()])
        .collect();
    assert_no_leak(
        &texts,
        &[
            b"jumk",
            b"junk",
            PASS.as_bytes(),
            &alloy::hex::decode(crate::keystore::KEY0).unwrap(),
        ],
    );
}
