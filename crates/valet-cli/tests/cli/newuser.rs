//! A new user's first hour (issue 10): what the command line must never do by surprise.

use crate::support::{Chain, Home, code, free_port};
use jiff::Timestamp;
use serde_json::json;

/// Seconds from now until the RFC 3339 instant in `v`.
fn secs_until(v: &serde_json::Value) -> i64 {
    let at: Timestamp = v.as_str().unwrap().parse().unwrap();
    at.as_second() - Timestamp::now().as_second()
}

#[tokio::test(flavor = "multi_thread")]
async fn shorthand_flags_merge_into_a_policy_file_explicitly_and_the_chain_is_checked() {
    let chain = Chain::start().await;
    let (home, init) = Home::init(&chain.anvil.url());
    assert_eq!(init["chain_id"], 31337);
    let policy = home.write("swap.toml", &chain.swap_policy());

    // --expires with --policy: the key expires in 1 h, not the file's, and stderr says so.
    let out = home.ok(&[
        "key",
        "issue",
        "--json",
        "--name",
        "a",
        "--policy",
        &policy,
        "--expires",
        "10m",
    ]);
    let left = secs_until(&out.json()["expires_at"]);
    assert!((590..=600).contains(&left), "expires in {left} s: {out:?}");
    assert!(out.stderr.contains("--expires replaces"), "{out:?}");

    // --ip and --max-value are merged too, and named.
    let out = home.ok(&[
        "key",
        "issue",
        "--json",
        "--name",
        "b",
        "--policy",
        &policy,
        "--ip",
        "10.0.0.0/8",
        "--max-value",
        "0.01ether",
    ]);
    assert!(out.stderr.contains("--ip sets ip_allow"), "{out:?}");
    assert!(
        out.stderr
            .contains("--max-value sets limits.max_value_per_tx"),
        "{out:?}"
    );
    let id = out.json()["id"].as_str().unwrap().to_string();
    let shown = home.ok(&["key", "show", &id, "--json"]).json();
    let toml = shown["policy_toml"].as_str().unwrap();
    assert!(
        toml.contains("10.0.0.0/8") && toml.contains("0.01 ether"),
        "{toml}"
    );

    // --target would widen the file: refused.
    let target = home.run(&[
        "key",
        "issue",
        "--name",
        "c",
        "--policy",
        &policy,
        "--target",
        "0x0000000000000000000000000000000000000001",
    ]);
    assert_eq!(target.code, 1, "{target:?}");
    assert!(
        target
            .stderr
            .contains("--target cannot be combined with --policy"),
        "{target:?}"
    );

    // A key for chain 1 on a node of chain 31337: refused, unless asked for.
    let other = home.run(&[
        "key",
        "issue",
        "--name",
        "d",
        "--profile",
        "read-only",
        "--chain",
        "1",
    ]);
    assert_eq!(other.code, 1, "{other:?}");
    assert!(
        other.stderr.contains("chain 31337") && other.stderr.contains("--allow-other-chain"),
        "{other:?}"
    );
    assert!(other.stdout.is_empty(), "no key printed: {other:?}");
    home.ok(&[
        "key",
        "issue",
        "--name",
        "d",
        "--profile",
        "read-only",
        "--chain",
        "1",
        "--allow-other-chain",
    ]);

    // The same holds through a running gateway, and for valet run.
    let _server = home.serve();
    let run = home.run(&[
        "run",
        "--profile",
        "read-only",
        "--chain",
        "1",
        "--expires",
        "1m",
        "--",
        "true",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("chain 31337"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_uses_its_own_gateway_wherever_it_listens_and_never_another() {
    let chain = Chain::start().await;
    let (other, _) = Home::init(&chain.anvil.url());
    let other_server = other.serve();
    // This home's valet.toml names the port where another home's gateway runs.
    let (home, _) = Home::init_with(&chain.anvil.url(), &[]);
    let config = home.path().join("valet.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&home.listen, &other.listen)).unwrap();
    // (Before: "the gateway at … refused the admin token (401)", having sent it this home's
    // admin token.)
    let list = home.ok(&["key", "list", "--json"]);
    assert_eq!(list.json(), json!([]), "{list:?}");

    // A record whose lock is held (here by this test) but whose process does not listen at
    // the recorded address: the admin token is not sent there.
    let records = home.path().join("gateways");
    std::fs::create_dir_all(&records).unwrap();
    let lock = std::fs::File::create(records.join("forged.lock")).unwrap();
    lock.try_lock().unwrap();
    let forged = json!({ "listen": other.listen, "pid": std::process::id(), "instance": "forged", "chain_id": 31337 });
    std::fs::write(records.join("forged.json"), forged.to_string()).unwrap();
    let refused = home.run(&["key", "list"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("refusing to send it the admin token"),
        "{refused:?}"
    );
    drop(lock);
    // The lock released: a stale record, removed by the next command.
    home.ok(&["key", "list"]);
    assert!(!records.join("forged.json").exists());
    drop(other_server);

    // Its own gateway on a port no config names: found, and a revocation reaches the very
    // next request (the gateway's cache would miss a write to the store).
    let elsewhere = format!("127.0.0.1:{}", free_port());
    let server = home.serve_at(&elsewhere, &[], &[]);
    let issued = home.issue(&["--name", "r", "--profile", "read-only", "--expires", "10m"]);
    let key = issued["agent_key"].as_str().unwrap();
    let id = issued["id"].as_str().unwrap();
    let ok = server.rpc(key, "eth_blockNumber", json!([])).await;
    assert!(ok["result"].is_string(), "{ok}");
    home.ok(&["key", "revoke", id]);
    let refused = server.rpc(key, "eth_blockNumber", json!([])).await;
    assert_eq!(code(&refused), Some(4100), "{refused}");

    // A second gateway on this SQLite home refuses to start, saying why.
    let second = home.run(&["serve", "--listen", &format!("127.0.0.1:{}", free_port())]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second
            .stderr
            .contains("another `valet serve` is running on this home"),
        "{second:?}"
    );

    // kill -9: the lock goes with the process; the command line falls back to the store and
    // a new gateway starts.
    drop(server);
    home.ok(&["key", "list"]);
    let again = home.serve_at(&elsewhere, &[], &[]);
    let issued = home.issue(&["--name", "s", "--profile", "read-only", "--expires", "10m"]);
    let fresh = again
        .rpc(
            issued["agent_key"].as_str().unwrap(),
            "eth_chainId",
            json!([]),
        )
        .await;
    assert_eq!(fresh["result"], "0x7a69", "{fresh}");
}

/// Runs `script` so that `valet` has a terminal, typing `input`; returns what it printed.
fn in_a_terminal(home: &Home, args: &str, input: &str) -> String {
    use std::io::Write as _;
    let command = format!(
        "{} --home {} {args}",
        env!("CARGO_BIN_EXE_valet"),
        home.path().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("VALET_PASSWORD", crate::support::PASSWORD)
        .env_remove("VALET_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owners_commands_read_well_and_the_kill_switch_asks_first() {
    let chain = Chain::start().await;
    let (home, _) = Home::init(&chain.anvil.url());
    let key = home.issue(&["--name", "k", "--profile", "read-only", "--expires", "10m"]);
    let id = key["id"].as_str().unwrap();

    // Amounts in the token's own unit (symbol and decimals read from the chain), not base units.
    let policy = home.write("swap.toml", &chain.swap_policy());
    home.ok(&["key", "issue", "--name", "swap", "--policy", &policy]);
    let report = home.ok(&["report"]);
    assert!(
        report.stdout.contains("0 tUSD") && report.stdout.contains("1000 tUSD"),
        "{report:?}"
    );
    let server = home.serve();
    let swap_id = home.ok(&["key", "list", "--json"]).json()[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = home.ok(&["key", "show", &swap_id]);
    assert!(
        shown.stdout.contains("1000 tUSD of 1000 tUSD left per 1d"),
        "{shown:?}"
    );
    drop(server);

    // audit log: a header, then RFC 3339 UTC times.
    let log = home.ok(&["audit", "log"]);
    let mut lines = log.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("SEQ") && header.contains("AT (UTC)") && header.contains("ACTION"),
        "{header}"
    );
    let first = lines.next().unwrap();
    let at = first.split_whitespace().nth(1).unwrap();
    assert!(
        at.parse::<Timestamp>().is_ok() && at.ends_with('Z'),
        "{first}"
    );

    // --json on audit verify and key revoke.
    let verified = home.ok(&["audit", "verify", "--json"]).json();
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["entries"].as_u64().unwrap() >= 2, "{verified}");
    let revoked = home.ok(&["key", "revoke", id, "--json"]).json();
    assert!(revoked.is_object(), "{revoked}");

    // The kill switch: no terminal and no --yes is refused; in a terminal it asks.
    let second = home.issue(&["--name", "k2", "--profile", "read-only", "--expires", "10m"]);
    let refused = home.run(&["key", "revoke", "--all"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    let no = in_a_terminal(&home, "key revoke --all", "no\n");
    assert!(
        no.contains("Type \"revoke all\"") && no.contains("nothing was revoked"),
        "{no}"
    );
    let shown = home
        .ok(&["key", "show", second["id"].as_str().unwrap(), "--json"])
        .json();
    assert_ne!(shown["status"], "revoked", "{shown}");
    let yes = in_a_terminal(&home, "key revoke --all", "revoke all\n");
    assert!(yes.contains("revoked 2 keys"), "{yes}");

    // Logs are plain text when stderr is not a terminal.
    let logged = home
        .command(&["wallet", "show"])
        .env("RUST_LOG", "valet_chain=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&logged.stderr);
    assert!(stderr.contains("connected"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in {stderr:?}");

    // `valet audit log | true`: the reader is gone before valet writes; no panic, status 0.
    let status = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "for i in 1 2 3; do {} --home {} audit log 2>>{}/pipe.err | true; \
                 s=${{PIPESTATUS[0]}}; [ $s = 0 ] || exit $s; done",
                env!("CARGO_BIN_EXE_valet"),
                home.path().display(),
                home.tmp.path().display()
            ),
        ])
        .status()
        .unwrap();
    let err = std::fs::read_to_string(home.tmp.path().join("pipe.err")).unwrap_or_default();
    assert!(status.success(), "{status:?} {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_texts_show_examples_defaults_and_what_is_required() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_valet"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&[]);
    assert!(
        top.contains("RUST_LOG") && top.contains("ETH_RPC_URL"),
        "{top}"
    );
    let run = help(&["run"]);
    assert!(
        run.contains("Usage: valet run [OPTIONS] --expires <DURATION>"),
        "{run}"
    );
    assert!(
        run.contains("ETH_RPC_HEADERS") && run.contains("Examples:"),
        "{run}"
    );
    let issue = help(&["key", "issue"]);
    assert!(
        issue.contains("default: 24h") && issue.contains("Examples:"),
        "{issue}"
    );
    assert!(issue.contains("--allow-other-chain"), "{issue}");
    let serve = help(&["serve"]);
    assert!(
        serve.contains("VALET_PASSWORD") && serve.contains("[env: ETH_RPC_URL="),
        "{serve}"
    );
    let init = help(&["init"]);
    assert!(
        init.contains("--rpc-ca-file") && init.contains("https://"),
        "{init}"
    );
    let revoke = help(&["key", "revoke"]);
    assert!(
        revoke.contains("--yes") && revoke.contains("revoke all"),
        "{revoke}"
    );
}

#[test]
fn serve_says_how_to_run_in_the_background_before_it_prompts() {
    let (home, _) = Home::init("http://127.0.0.1:1");
    // setsid: no controlling terminal, so the prompt fails at once instead of waiting.
    let out = std::process::Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_valet"))
        .args(["--home", home.path().to_str().unwrap(), "serve"])
        .env_remove("VALET_PASSWORD")
        .env_remove("VALET_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("(valet serve &)") && stderr.contains("VALET_PASSWORD"),
        "{stderr}"
    );
}
