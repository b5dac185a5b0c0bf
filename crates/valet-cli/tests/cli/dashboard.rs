//! The dashboard in a real headless Chromium (`tests/browser/dashboard.mjs`, driven with the
//! pinned playwright-core) against the real `valet serve`: log in, watch the live feed, revoke
//! with confirmation, and the agent's next request is refused with 4100 "revoked". Saves the
//! screenshot README shows (`docs/dashboard.png`, refreshed with `VALET_SCREENSHOT=docs/dashboard.png`)
//! and prints the measured figures.
//!
//! Chromium comes from apt (`./tools/install.sh` installs it as root); a missing Chromium or
//! playwright-core fails the test and says how to get them.

use crate::support::{Chain, Home, workspace};
use serde_json::Value;
use std::process::Command;

const INSTALL: &str = "run ./tools/install.sh (as root it also installs Chromium: apt-get install -y chromium chromium-driver)";

#[tokio::test]
async fn dashboard_in_a_real_browser_revokes_and_the_agent_is_cut_off() {
    let chain = Chain::start().await;
    let (home, _) = Home::init(&chain.anvil.url());
    let server = home.serve();
    let policy = home.write(
        "dash.toml",
        r#"name = "dash-bot"
profile = "full-access"
expires_in = "24h"

[limits]
max_value_per_tx = "0.05 ether"

[[limits.spend]]
asset = "native"
amount = "0.1 ether"
window = "24h"

[limits.rate]
max_requests = 600
window = "1m"
"#,
    );
    let key = home.issue(&["--name", "dash-bot", "--policy", &policy]);
    let load = home.issue(&[
        "--name",
        "load",
        "--profile",
        "read-only",
        "--chain",
        "31337",
        "--expires",
        "1h",
    ]);
    let admin = std::fs::read_to_string(home.path().join("admin.token")).unwrap();
    // `VALET_SCREENSHOT=docs/dashboard.png` refreshes the README's picture; by default the
    // screenshot stays in the test's temporary directory so a test run leaves the tree clean.
    let screenshot = match std::env::var_os("VALET_SCREENSHOT") {
        Some(path) => workspace().join(path),
        None => home.tmp.path().join("dashboard.png"),
    };
    let script = workspace().join("crates/valet-cli/tests/browser/dashboard.mjs");

    let out = Command::new("node")
        .arg(&script)
        .current_dir(workspace())
        .env("DASHBOARD_URL", &server.url)
        .env("ADMIN_TOKEN", admin.trim())
        .env("KEY_ID", key["id"].as_str().unwrap())
        .env("KEY_NAME", "dash-bot")
        .env("AGENT_KEY", key["agent_key"].as_str().unwrap())
        .env("LOAD_KEY", load["agent_key"].as_str().unwrap())
        .env("WALLET", home.wallet.to_string())
        .env("SCREENSHOT", &screenshot)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; {INSTALL}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "dashboard.mjs exited {}\nstdout: {stdout}\nstderr: {stderr}\ngateway log:\n{}",
        out.status,
        server.log()
    );
    assert_ne!(out.status.code(), Some(2), "{context}\n{INSTALL}");
    assert!(out.status.success(), "{context}");
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary: {context}"));

    // The agent, from here: revoked means 4100 with reason "revoked".
    let resp = server
        .rpc(
            key["agent_key"].as_str().unwrap(),
            "eth_chainId",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(resp["error"]["code"], 4100, "{resp}");
    assert_eq!(resp["error"]["data"]["reason"], "revoked", "{resp}");
    assert!(screenshot.is_file(), "the screenshot was saved");

    let bytes = summary["first_load_bytes"].as_u64().unwrap_or(0);
    let burst = &summary["burst"];
    println!(
        "dashboard first load: {bytes} bytes transferred in {} requests (budget 300 KB)",
        summary["first_load_requests"]
    );
    println!(
        "live feed burst: {} requests at {} requests/s, {} in the feed after {} ms, {} rows in the DOM, longest frame gap {} ms",
        burst["requests"],
        burst["requests_per_s"],
        burst["received_in_feed"],
        burst["all_in_feed_after_ms"],
        burst["feed_rows"],
        burst["max_frame_gap_ms"]
    );
    println!("{}", summary["verify"]);
    assert!(bytes > 0 && bytes < 300 * 1024, "first load {bytes} bytes");
}
