//! The main job: `valet sandbox` (gateway mode) and `valet sandbox --onchain`, as the README's
//! quick start runs them, end to end with their own anvil.

use std::process::{Command, Stdio};

fn sandbox(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_valet"))
        .arg("sandbox")
        .args(args)
        .env_remove("VALET_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("valet runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "valet sandbox {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("unexpected"), "{stdout}");
    assert!(
        stdout.contains("tUSD spent by the allowed swap: 100.000000 tUSD"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hash chain and checkpoint verified"),
        "{stdout}"
    );
    stdout
}

#[test]
fn the_sandbox_allows_then_blocks_in_both_modes() {
    let gateway = sandbox(&[]);
    for row in [
        "denied 4001 function_not_allowed",
        "denied 4001 argument_not_allowed",
        "denied 4001 spend_limit_exceeded",
        "denied 4100 revoked",
    ] {
        assert!(gateway.contains(row), "{row}: {gateway}");
    }
    let onchain = sandbox(&["--onchain"]);
    assert!(
        onchain.contains("signs that transfer itself")
            && onchain.contains("reverted FunctionDenied"),
        "{onchain}"
    );
    assert!(onchain.contains("reverted KeyRevoked"), "{onchain}");
}
