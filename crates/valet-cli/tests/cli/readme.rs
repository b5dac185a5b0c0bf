//! The README cannot drift: its "Quick start" and "A tour" shell blocks run, in order, in one
//! bash session against a real anvil, with the real `valet` on PATH and the pinned cast.
//!
//! Which blocks run: fenced blocks whose info string is exactly `sh` in those two sections.
//! A block marked `sh no-run` is shown but not run (installing, starting anvil: the test
//! starts its own). The harness does only three things the README does not say: it points
//! `ETH_RPC_URL` at the test's anvil and `HOME` at a temporary directory, moves the gateway
//! from the default port to a free one right after `valet init` (tests run in parallel), and
//! waits after a block that starts `valet serve` until the gateway has recorded itself.

use crate::support::{free_port, workspace};
use valet_chain::Anvil;

/// The runnable blocks of `section` (an `## ` heading) of the README.
fn blocks(readme: &str, section: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("README has no section {section:?}"));
    let rest = &readme[start + 4..];
    let body = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if info == "sh" {
            out.push(block.join("\n"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quick_start_and_tour_run_as_written() {
    let anvil = Anvil::spawn()
        .await
        .expect("anvil starts (run ./tools/install.sh)");
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let quick = blocks(&readme, "Quick start");
    let tour = blocks(&readme, "A tour");
    assert!(!quick.is_empty() && tour.len() >= 4, "{quick:?} {tour:?}");

    let port = free_port();
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for block in quick.iter().chain(&tour) {
        script.push_str(block);
        script.push('\n');
        if block.contains("valet init") {
            script.push_str(&format!(
                "sed -i 's/^listen = .*/listen = \"127.0.0.1:{port}\"/' \"$VALET_HOME/valet.toml\"\n"
            ));
        }
        if block.contains("valet serve") {
            script.push_str(
                "for _ in $(seq 300); do ls \"$VALET_HOME\"/gateways/*.lock >/dev/null 2>&1 && break; sleep 0.1; done\n",
            );
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_valet"))
        .parent()
        .unwrap()
        .to_path_buf();
    // The native binaries, as the README's Install puts them on PATH (the npm wrappers in
    // node_modules/.bin exit 0 when the tool fails).
    let foundry = workspace().join("tools/node_modules/@foundry-rs");
    let path = format!(
        "{}:{}:{}:{}",
        bin.display(),
        foundry.join("anvil-linux-amd64/bin").display(),
        foundry.join("cast-linux-amd64/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(tmp.path())
        .env("HOME", tmp.path())
        .env("PATH", path)
        .env("ETH_RPC_URL", anvil.url())
        .env("RUST_LOG", "warn")
        .env_remove("VALET_HOME")
        .env_remove("VALET_PASSWORD")
        .env_remove("VALET_RPC_CA_FILE")
        .env_remove("ETH_RPC_HEADERS")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let serve_log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default();
    let all =
        format!("{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- serve.log\n{serve_log}");
    assert!(out.status.success(), "the README's commands failed:\n{all}");
    // What the tour says happens, happens.
    assert!(
        stdout.contains("read chain id after revocation") || stdout.contains("revoked"),
        "{all}"
    );
    assert!(
        stderr.contains("value_too_high"),
        "the second payment is refused by policy:\n{all}"
    );
    assert!(stdout.contains("refused: denied by policy"), "{all}");
    assert!(stdout.contains("audit log intact"), "{all}");
    let dead = crate::support::node_call(
        &anvil.url(),
        "eth_getBalance",
        serde_json::json!(["0x000000000000000000000000000000000000dEaD", "latest"]),
    )
    .await;
    assert_eq!(
        dead, "0x11c37937e08000",
        "exactly the 0.005 ether payment went through:\n{all}"
    );
}
