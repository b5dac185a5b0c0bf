//! A node over HTTPS, as every hosted node is: `valet init` checks it and records its chain,
//! `valet serve` signs through it. The endpoint is a real TLS reverse proxy in front of anvil
//! with a certificate from a test CA made for the test.

use crate::support::{Home, STRANGER, node_call};
use serde_json::json;
use valet_chain::Anvil;

#[path = "../../../valet-chain/tests/it/tls_proxy.rs"]
mod tls_proxy;
use tls_proxy::TlsProxy;

async fn anvil_behind_tls() -> (Anvil, TlsProxy) {
    let anvil = Anvil::spawn()
        .await
        .expect("anvil starts (run ./tools/install.sh)");
    let addr = anvil.url().trim_start_matches("http://").parse().unwrap();
    let proxy = TlsProxy::start(addr).await;
    (anvil, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_node_with_a_private_ca_serves_an_agent_end_to_end() {
    let (anvil, proxy) = anvil_behind_tls().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = proxy.write_ca(ca_dir.path());
    let ca = ca.to_str().unwrap();
    let (home, init) = Home::init_with(&proxy.url(), &["--rpc-ca-file", ca]);
    assert_eq!(init["chain_id"], 31337, "{init}");
    let config = std::fs::read_to_string(home.path().join("valet.toml")).unwrap();
    assert!(config.contains("chain_id = 31337"), "{config}");
    assert!(
        config.contains("ca.pem"),
        "the CA file is recorded: {config}"
    );

    node_call(
        &anvil.url(),
        "anvil_setBalance",
        json!([home.wallet, "0x8ac7230489e80000"]),
    )
    .await;
    // No --rpc-ca-file here: serve reads it from valet.toml.
    let server = home.serve();
    let target = format!("{STRANGER}");
    let key = home.issue(&[
        "--name",
        "tls",
        "--profile",
        "custom",
        "--chain",
        "31337",
        "--expires",
        "10m",
        "--target",
        &target,
        "--max-value",
        "0.05ether",
    ]);
    let key = key["agent_key"].as_str().unwrap();
    let sent = server
        .rpc(
            key,
            "eth_sendTransaction",
            json!([{ "from": home.wallet, "to": STRANGER, "value": "0x2386f26fc10000" }]),
        )
        .await;
    assert!(sent["result"].is_string(), "{sent}\n{}", server.log());
    let balance = node_call(&anvil.url(), "eth_getBalance", json!([STRANGER, "latest"])).await;
    assert_eq!(
        balance, "0x2386f26fc10000",
        "the transfer went through the HTTPS node"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_warning_at_init_and_an_error_at_serve() {
    let (_anvil, proxy) = anvil_behind_tls().await;
    let url = proxy.url().replace("https://", "https://user:hunter2@") + "/v3/secret-key";
    let (home, init) = Home::init_with(&url, &[]);
    assert!(init["chain_id"].is_null(), "{init}");
    let log = home.init_stderr();
    assert!(
        log.contains("warning") && log.contains("certificate"),
        "{log}"
    );
    assert!(
        !log.contains("hunter2") && !log.contains("secret-key"),
        "{log}"
    );
    let serve = home.run(&["serve"]);
    assert_eq!(serve.code, 1, "{serve:?}");
    assert!(serve.stderr.contains("certificate"), "{serve:?}");
    assert!(!serve.stderr.contains("hunter2"), "{serve:?}");

    // The system's roots are honoured: SSL_CERT_FILE names the test CA as the store.
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = proxy.write_ca(ca_dir.path());
    let show = home
        .command(&["wallet", "show", "--json", "--rpc-url", &proxy.url()])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    let show = crate::support::Run::from(show).ok("wallet show");
    assert_eq!(show.json()["delegation"], "none", "{show:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_warns_when_the_node_does_not_answer_and_eth_rpc_url_is_honoured() {
    let anvil = Anvil::spawn().await.unwrap();
    let (home, init) = Home::init_with("http://127.0.0.1:1", &[]);
    assert!(init["chain_id"].is_null());
    assert!(
        home.init_stderr().contains("did not answer"),
        "{}",
        home.init_stderr()
    );
    let show = |env: Option<&str>| {
        let mut c = home.command(&["wallet", "show", "--json"]);
        if let Some(url) = env {
            c.env("ETH_RPC_URL", url);
        }
        crate::support::Run::from(c.output().unwrap())
            .ok("wallet show")
            .json()
    };
    assert!(
        show(None)["delegation"]
            .as_str()
            .unwrap()
            .starts_with("unknown")
    );
    // ETH_RPC_URL, as foundry reads it, names the node when --rpc-url is absent.
    assert_eq!(show(Some(&anvil.url()))["delegation"], "none");
}

/// A plain HTTP receiver (behind the TLS proxy) that answers 200 and hands each request's
/// raw text to the test.
async fn receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut text = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as content-length says.
                loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    text.extend_from_slice(&buf[..n]);
                    let s = String::from_utf8_lossy(&text).to_string();
                    if let Some(end) = s.find("\r\n\r\n") {
                        let len = s
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if text.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_an_https_webhook() {
    let anvil = Anvil::spawn().await.unwrap();
    let (plain, mut received) = receiver().await;
    let proxy = TlsProxy::start(plain).await;
    let (home, _) = Home::init(&anvil.url());
    let config = home.path().join("valet.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[anomaly]\ndenial_burst = 2\n\n[alerts]\nwebhook_url = \"{}/hook\"\n",
        proxy.url()
    ));
    std::fs::write(&config, text).unwrap();
    std::fs::write(home.path().join("webhook.secret"), "s3cret\n").unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = proxy.write_ca(ca_dir.path());
    // The system's roots are the test CA here (SSL_CERT_FILE, as on any Linux).
    let server = home.serve_with(&[], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let key = home.issue(&["--name", "r", "--profile", "read-only", "--expires", "10m"]);
    let key = key["agent_key"].as_str().unwrap();
    for _ in 0..3 {
        let denied = server
            .rpc(
                key,
                "eth_sendTransaction",
                json!([{ "from": home.wallet, "to": STRANGER, "value": "0x1" }]),
            )
            .await;
        assert_eq!(crate::support::code(&denied), Some(4001), "{denied}");
    }
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(15), received.recv())
        .await
        .unwrap_or_else(|_| panic!("no webhook delivery over HTTPS:\n{}", server.log()))
        .unwrap();
    let lower = delivery.to_ascii_lowercase();
    assert!(lower.starts_with("post /hook http/1.1"), "{delivery}");
    assert!(lower.contains("x-valet-signature: sha256="), "{delivery}");
    assert!(delivery.contains("denial_burst"), "{delivery}");
}
