//! The upstream node over HTTPS: a real TLS endpoint (a test CA, a reverse proxy) in front of
//! anvil.

use serde_json::json;
use valet_chain::{Anvil, Error, HttpOptions, Upstream};

use crate::tls_proxy::TlsProxy;

async fn anvil_behind_tls() -> (Anvil, TlsProxy) {
    let anvil = Anvil::spawn().await.unwrap();
    let addr = anvil.url().trim_start_matches("http://").parse().unwrap();
    let proxy = TlsProxy::start(addr).await;
    (anvil, proxy)
}

#[tokio::test]
async fn an_https_node_signed_by_a_trusted_ca_answers() {
    let (_anvil, proxy) = anvil_behind_tls().await;
    let dir = tempfile::tempdir().unwrap();
    let options = HttpOptions {
        ca_file: Some(proxy.write_ca(dir.path())),
        ..HttpOptions::default()
    };
    // Credentials in the URL (as hosted nodes use) travel as Basic auth; anvil ignores them.
    let url = proxy.url().replace("https://", "https://user:hunter2@");
    let upstream = Upstream::connect_with(&url, &options).await.unwrap();
    assert_eq!(upstream.chain_id(), 31337);
    assert_eq!(upstream.endpoint(), proxy.url());
    let block = upstream
        .forward("eth_blockNumber", &json!([]))
        .await
        .unwrap();
    assert!(block.as_str().unwrap().starts_with("0x"), "{block}");
    // The IP address is in the certificate too.
    let by_ip = format!("https://127.0.0.1:{}", proxy.addr.port());
    assert!(Upstream::connect_with(&by_ip, &options).await.is_ok());
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_without_the_credentials() {
    let (_anvil, proxy) = anvil_behind_tls().await;
    let url = proxy.url().replace("https://", "https://user:hunter2@") + "/v3/key";
    let err = Upstream::connect(&url).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Transport(_)), "{text}");
    assert!(text.contains("certificate"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("/v3/key"),
        "{text}"
    );
}
