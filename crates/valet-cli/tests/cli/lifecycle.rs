//! The owner's life with the real binary: init, serve, issue, use, revoke, read and verify the
//! audit log, and catch tampering with the database.

use crate::support::{Chain, Home, STRANGER, code, violations};
use alloy::{
    primitives::{Address, B256, U256, hex},
    sol_types::SolCall,
};
use serde_json::{Value, json};
use std::{fs, os::unix::fs::PermissionsExt, path::Path, time::Duration};
use valet_chain::contracts::abi::ITestStablecoin;

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn address(v: &Value) -> Address {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {v}"))
}

/// Opens the home's SQLite database as an attacker with file access would.
async fn open_db(home: &Home) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", home.path().join("valet.db").display());
    sqlx::SqlitePool::connect(&url)
        .await
        .expect("open valet.db")
}

/// Edits one audit row behind Valet's back (dropping the append-only guard first).
async fn tamper_detail(home: &Home, seq: u64) {
    let db = open_db(home).await;
    sqlx::query("DROP TRIGGER audit_append_only_update")
        .execute(&db)
        .await
        .unwrap();
    let done = sqlx::query("UPDATE audit SET detail = '{\"tampered\":true}' WHERE seq = ?")
        .bind(seq as i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    db.close().await;
}

/// Deletes the audit rows after `keep` behind Valet's back.
async fn truncate_audit(home: &Home, keep: u64) {
    let db = open_db(home).await;
    sqlx::query("DROP TRIGGER audit_append_only_delete")
        .execute(&db)
        .await
        .unwrap();
    let done = sqlx::query("DELETE FROM audit WHERE seq > ?")
        .bind(keep as i64)
        .execute(&db)
        .await
        .unwrap();
    assert!(done.rows_affected() >= 1);
    db.close().await;
}

/// `audit log --json`: one entry per line.
fn audit_log(home: &Home, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "log", "--json"];
    args.extend_from_slice(extra);
    home.ok(&args)
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn cli_lifecycle() {
    let chain = Chain::start().await;

    // init: the files, their modes, the config.
    let (home, init) = Home::init(&chain.anvil.url());
    let dir = home.path();
    assert_eq!(init["imported"], false, "{init}");
    assert_eq!(Path::new(init["home"].as_str().unwrap()), dir);
    for f in ["valet.toml", "wallet.json", "admin.token", "valet.db"] {
        assert!(dir.join(f).is_file(), "init makes {f}");
    }
    assert_eq!(mode(&dir), 0o700, "the home is private");
    assert_eq!(mode(&dir.join("wallet.json")), 0o600);
    assert_eq!(mode(&dir.join("admin.token")), 0o600);
    let token = fs::read_to_string(dir.join("admin.token")).unwrap();
    assert!(
        token.trim().len() >= 32 && token.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "admin token {token:?}"
    );
    let config: toml::Table = fs::read_to_string(dir.join("valet.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["listen"].as_str(), Some(home.listen.as_str()));
    assert_eq!(config["rpc_url"].as_str(), Some(chain.anvil.url().as_str()));
    let wallet: Address = config["wallet"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wallet, home.wallet, "valet.toml and init --json agree");
    let keystore: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("wallet.json")).unwrap()).unwrap();
    assert_eq!(keystore["version"], 3, "a keystore v3 file");

    // init again: refused, naming the home, nothing touched.
    let before = fs::read(dir.join("wallet.json")).unwrap();
    let again = home.run(&["init", "--rpc-url", &chain.anvil.url()]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains(&dir.display().to_string()),
        "the refusal names the home: {}",
        again.stderr
    );
    assert_eq!(fs::read(dir.join("wallet.json")).unwrap(), before);

    // A policy file with a typo: exit 1, the line named, nothing on stdout.
    let typo = home.write(
        "typo.toml",
        "name = \"typo\"\nprofile = \"swap-only\"\nexpires_inn = \"1h\"\n",
    );
    let out = home.run(&[
        "key", "issue", "--name", "typo", "--policy", &typo, "--json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr.contains("line 3"),
        "names the line: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("expires_inn"),
        "names the key: {}",
        out.stderr
    );

    chain.fund(home.wallet).await;
    let server = home.serve();

    // Issue with a policy file: one JSON object, exactly the documented fields.
    let policy = home.write("swap.toml", &chain.swap_policy());
    let bot = home.issue(&["--name", "bot", "--policy", &policy]);
    let mut fields: Vec<&str> = bot
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["agent_key", "expires_at", "id", "wallet"], "{bot}");
    let bot_id = bot["id"].as_str().unwrap().to_string();
    let bot_key = bot["agent_key"].as_str().unwrap().to_string();
    assert!(
        bot_key.starts_with(&format!("valet_{bot_id}_")),
        "agent key {bot_key} for id {bot_id}"
    );
    assert_eq!(address(&bot["wallet"]), home.wallet);
    let expires: jiff::Timestamp = bot["expires_at"].as_str().unwrap().parse().unwrap();
    let in_an_hour = expires.duration_since(jiff::Timestamp::now()).as_secs();
    assert!(
        (3500..=3600).contains(&in_an_hour),
        "expires in {in_an_hour} s"
    );

    // Issue with the shorthand flags.
    let spend = format!("{}:1000000000/24h", chain.sandbox.token);
    let short = home.issue(&[
        "--name",
        "short",
        "--profile",
        "swap-only",
        "--chain",
        "31337",
        "--expires",
        "1h",
        "--spend",
        &spend,
    ]);
    let short_id = short["id"].as_str().unwrap().to_string();
    let short_key = short["agent_key"].as_str().unwrap().to_string();

    // key list / key show.
    let list = home.ok(&["key", "list", "--json"]).json();
    let list = list.as_array().expect("key list --json is an array");
    assert_eq!(list.len(), 2, "{list:?}");
    for (id, name) in [(&bot_id, "bot"), (&short_id, "short")] {
        let k = list
            .iter()
            .find(|k| k["id"] == **id)
            .unwrap_or_else(|| panic!("{id} listed: {list:?}"));
        assert_eq!(k["name"], name);
        assert_eq!(k["status"], "active");
        assert_eq!(k["profile"], "swap-only");
        assert_eq!(address(&k["wallet"]), home.wallet);
    }
    let shown = home.ok(&["key", "show", &short_id, "--json"]).json();
    assert_eq!(shown["id"], short_id.as_str());
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["permissions"]["chains"], json!([31337]), "{shown}");
    let limit = &shown["permissions"]["limits"]["spend"][0];
    assert_eq!(
        address(&limit["asset"]),
        chain.sandbox.token,
        "the --spend cap: {shown}"
    );
    assert_eq!(limit["amount"], "1000000000", "{shown}");
    assert_eq!(limit["remaining"], "1000000000", "{shown}");
    assert!(
        shown["policy_toml"].as_str().unwrap().contains("swap-only"),
        "{shown}"
    );

    // The key works: reads, an allowed approval (mined), a denied transfer.
    let accounts = server.rpc(&bot_key, "eth_accounts", json!([])).await;
    assert_eq!(
        accounts["result"].as_array().map(|a| address(&a[0])),
        Some(home.wallet),
        "{accounts}"
    );
    let approve = ITestStablecoin::approveCall {
        spender: chain.sandbox.router,
        amount: U256::MAX,
    }
    .abi_encode();
    let resp = server
        .rpc(
            &bot_key,
            "eth_sendTransaction",
            json!([{ "from": home.wallet, "to": chain.sandbox.token, "data": hex::encode_prefixed(approve) }]),
        )
        .await;
    let hash: B256 = resp["result"]
        .as_str()
        .unwrap_or_else(|| panic!("approve allowed: {resp}"))
        .parse()
        .unwrap();
    let upstream = valet_chain::Upstream::connect(&chain.anvil.url())
        .await
        .unwrap();
    assert!(
        upstream
            .wait_for_receipt(hash, Duration::from_secs(10))
            .await
            .unwrap(),
        "the approval is mined and succeeds"
    );
    let transfer = ITestStablecoin::transferCall {
        to: STRANGER,
        amount: U256::from(1),
    }
    .abi_encode();
    let resp = server
        .rpc(
            &bot_key,
            "eth_sendTransaction",
            json!([{ "from": home.wallet, "to": chain.sandbox.token, "data": hex::encode_prefixed(transfer) }]),
        )
        .await;
    assert_eq!(code(&resp), Some(4001), "{resp}");
    assert_eq!(violations(&resp), ["function_not_allowed"], "{resp}");

    let shown = home.ok(&["key", "show", &bot_id, "--json"]).json();
    assert!(shown["last_used"].is_string(), "last_used is set: {shown}");

    // Revoke: the very next request is refused.
    let out = home.ok(&["key", "revoke", &bot_id]);
    assert!(out.stdout.contains(&bot_id), "{out:?}");
    let resp = server.rpc(&bot_key, "eth_accounts", json!([])).await;
    assert_eq!(code(&resp), Some(4100), "{resp}");
    assert_eq!(resp["error"]["data"]["reason"], "revoked", "{resp}");
    let out = home.ok(&["key", "revoke", &bot_id]);
    assert!(out.stdout.contains("already revoked"), "{out:?}");
    let out = home.run(&["key", "revoke", "knosuchkey000"]);
    assert_eq!(out.code, 1, "revoking an unknown key fails: {out:?}");

    // The kill switch.
    let resp = server.rpc(&short_key, "eth_chainId", json!([])).await;
    assert_eq!(resp["result"], "0x7a69", "{resp}");
    let out = home.ok(&["key", "revoke", "--all", "--yes"]);
    assert!(out.stdout.contains("revoked 1 keys"), "{out:?}");
    let resp = server.rpc(&short_key, "eth_chainId", json!([])).await;
    assert_eq!(code(&resp), Some(4100), "{resp}");
    assert_eq!(resp["error"]["data"]["reason"], "revoked", "{resp}");

    // A key that lives one second: expired, then refused with 4100 `expired`. A full-access key
    // warns on stderr only, so --json stdout stays one object.
    let out = home.ok(&[
        "key",
        "issue",
        "--name",
        "brief",
        "--profile",
        "full-access",
        "--expires",
        "1s",
        "--json",
    ]);
    assert!(out.stderr.contains("warning"), "{out:?}");
    let brief = out.json();
    assert!(brief.get("warning").is_none(), "{brief}");
    let expires: jiff::Timestamp = brief["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires.duration_since(jiff::Timestamp::now());
    if left.is_positive() {
        tokio::time::sleep(Duration::try_from(left).unwrap() + Duration::from_millis(50)).await;
    }
    let resp = server
        .rpc(
            brief["agent_key"].as_str().unwrap(),
            "eth_chainId",
            json!([]),
        )
        .await;
    assert_eq!(code(&resp), Some(4100), "{resp}");
    assert_eq!(resp["error"]["data"]["reason"], "expired", "{resp}");

    let list = home.ok(&["key", "list", "--json"]).json();
    let status = |id: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == *id)
            .map(|k| k["status"].clone())
    };
    assert_eq!(status(&json!(bot_id)), Some(json!("revoked")), "{list}");
    assert_eq!(status(&json!(short_id)), Some(json!("revoked")), "{list}");
    assert_eq!(status(&brief["id"]), Some(json!("expired")), "{list}");

    // The audit log: every line JSON, seq 1, 2, 3, …, every step there.
    let log = audit_log(&home, &[]);
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
    }
    let actions: Vec<&str> = log.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions[0], "wallet.init", "{actions:?}");
    for a in [
        "key.issue",
        "key.revoke",
        "key.revoke_all",
        "eth_sendTransaction",
    ] {
        assert!(actions.contains(&a), "{a} is audited: {actions:?}");
    }
    let hash_hex = hash.to_string();
    assert!(
        log.iter().any(|e| e["tx_hash"] == hash_hex.as_str()),
        "the mined approval is audited with its hash"
    );
    let bot_log = audit_log(&home, &["--key", &bot_id]);
    assert!(bot_log.iter().all(|e| e["key_id"] == bot_id.as_str()));
    assert!(
        bot_log
            .iter()
            .any(|e| e["decision"] == "deny" && e["violations"] == json!(["function_not_allowed"])),
        "the denial is audited: {bot_log:?}"
    );
    let out = home.ok(&["audit", "verify"]);
    assert!(out.stdout.contains("intact"), "{out:?}");

    // Tampering: one row's detail edited behind Valet's back.
    drop(server);
    let victim = log
        .iter()
        .find(|e| e["action"] == "key.issue")
        .and_then(|e| e["seq"].as_u64())
        .unwrap();
    tamper_detail(&home, victim).await;
    let out = home.run(&["audit", "verify"]);
    assert_eq!(out.code, 1, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!("entry {victim}")),
        "names seq {victim}: {said}"
    );
}

/// Deleting the newest audit rows (which leaves a valid chain behind) is caught by the
/// checkpoint kept beside the database. No gateway: the command line writes the store itself.
#[tokio::test]
async fn audit_truncation_detected() {
    let (home, _) = Home::init("http://127.0.0.1:9");
    let a = home.issue(&["--name", "a", "--profile", "read-only", "--expires", "1h"]);
    home.issue(&["--name", "b", "--profile", "read-only", "--expires", "1h"]);
    home.ok(&["key", "revoke", a["id"].as_str().unwrap()]);
    let shown = home
        .ok(&["key", "show", a["id"].as_str().unwrap(), "--json"])
        .json();
    assert_eq!(shown["status"], "revoked", "{shown}");
    assert!(
        shown["permissions"].is_null(),
        "no live permissions without a gateway: {shown}"
    );
    let n = audit_log(&home, &[]).len() as u64;
    assert!(n >= 4, "init, two issues and a revocation: {n}");
    assert!(home.ok(&["audit", "verify"]).stdout.contains("intact"));

    truncate_audit(&home, n - 2).await;
    assert_eq!(audit_log(&home, &[]).len() as u64, n - 2);
    let out = home.run(&["audit", "verify"]);
    assert_eq!(out.code, 1, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!("entry {}", n - 1)),
        "names the first missing seq {}: {said}",
        n - 1
    );
}
