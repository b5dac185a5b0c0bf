//! `valet run`: the command gets a temporary key in its environment, the key is revoked when
//! the command exits, and valet exits with the command's status.

use crate::support::{Chain, Home, code};
use serde_json::json;

#[tokio::test]
async fn run_hands_out_a_key_and_revokes_it() {
    let chain = Chain::start().await;
    let (home, _) = Home::init(&chain.anvil.url());
    let server = home.serve();
    // The command proves it can use the key, keeps it for later, and exits 7.
    let keyfile = home.path().join("kept.key");
    let script = format!(
        "test -n \"$VALET_KEY_ID\" && curl -sf -H \"Authorization: Bearer $VALET_AGENT_KEY\" \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}}' \"$ETH_RPC_URL\" \
         | grep -q 0x7a69 && printf %s \"$VALET_AGENT_KEY\" > {} && exit 7",
        keyfile.display()
    );
    let out = home.run(&[
        "run",
        "--profile",
        "read-only",
        "--expires",
        "5m",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        out.code, 7,
        "valet exits with the command's status: {}",
        out.stderr
    );
    let key = std::fs::read_to_string(&keyfile)
        .expect("the command saw its key and the gateway answered");
    let resp = server.rpc(&key, "eth_chainId", json!([])).await;
    assert_eq!(code(&resp), Some(4100), "revoked after the command: {resp}");
    assert_eq!(resp["error"]["data"]["reason"], "revoked");
    // Without --expires there is no key at all: a usage error.
    let out = home.run(&["run", "--profile", "read-only", "--", "true"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--expires"), "{}", out.stderr);
}
