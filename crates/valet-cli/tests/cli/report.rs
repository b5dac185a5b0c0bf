//! `valet report` on a prepared audit history: keys issued and used days apart, addresses,
//! denials, an anomaly and reservations written into the store as the gateway would, then the
//! real binary reads them back (no gateway running).

use crate::support::Home;
use alloy::primitives::U256;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use valet_policy::Asset;
use valet_store::{AuditRecord, Batch, KeyMode, Reservation, Store};

const ETHER: u128 = 1_000_000_000_000_000_000;

fn ago(now: Timestamp, hours: i64) -> Timestamp {
    now - SignedDuration::from_hours(hours)
}

fn request(at: Timestamp, key: &str, ip: &str, decision: &str, rid: &str) -> AuditRecord {
    AuditRecord {
        at,
        request_id: rid.into(),
        actor: "agent".into(),
        key_id: Some(key.into()),
        action: "eth_sendTransaction".into(),
        decision: Some(decision.into()),
        violations: if decision == "deny" {
            vec!["function_not_allowed".into()]
        } else {
            vec![]
        },
        detail: json!({}),
        client_ip: Some(ip.into()),
        tx_hash: None,
    }
}

async fn issue(store: &dyn Store, home: &Home, name: &str, policy: &str, at: Timestamp) -> String {
    valet_server::issue(
        store,
        home.wallet,
        Some(name),
        policy,
        KeyMode::Gateway,
        at,
        None,
    )
    .await
    .unwrap()
    .record
    .id
}

/// Keys `busy` (used today from two addresses, a denial, an anomaly, 0.25 ETH reserved in the
/// last day and 0.5 ETH three days ago), `idle` (last used 10 days ago), `never` (issued 9 days
/// ago, never used), `fresh` (issued yesterday) and `gone` (revoked).
async fn prepare(home: &Home) -> (String, String, String, String) {
    let url = format!("sqlite://{}", home.path().join("valet.db").display());
    let store = valet_store::open(&url).await.unwrap();
    let now = Timestamp::now();
    let capped = "expires_in = \"60d\"\nprofile = \"full-access\"\n[[limits.spend]]\nasset = \"native\"\namount = \"1 ether\"\nwindow = \"24h\"\n";
    let plain = "expires_in = \"60d\"\nprofile = \"read-only\"\n";
    let busy = issue(store.as_ref(), home, "busy", capped, ago(now, 240)).await;
    let idle = issue(store.as_ref(), home, "idle", plain, ago(now, 480)).await;
    let never = issue(store.as_ref(), home, "never", plain, ago(now, 216)).await;
    let fresh = issue(store.as_ref(), home, "fresh", plain, ago(now, 24)).await;
    let gone = issue(store.as_ref(), home, "gone", plain, ago(now, 480)).await;
    let revoke = valet_server::admin_record(ago(now, 2), "key.revoke", Some(&gone), json!({}));
    assert!(store.revoke_key(&gone, ago(now, 2), revoke).await.unwrap());

    let reserve = |rid: &str, at, wei: u128| Reservation {
        key_id: busy.clone(),
        request_id: rid.into(),
        at,
        asset: Asset::Native,
        amount: U256::from(wei),
    };
    let anomaly = AuditRecord {
        at: ago(now, 1),
        request_id: "v1".into(),
        actor: "valet".into(),
        key_id: Some(busy.clone()),
        action: "anomaly".into(),
        decision: None,
        violations: vec![],
        detail: json!({ "kind": "new_ip", "message": "request from 203.0.113.9, an address this key was never used from", "action_taken": "alert", "ip": "203.0.113.9" }),
        client_ip: Some("203.0.113.9".into()),
        tx_hash: None,
    };
    store
        .append(Batch {
            reservations: vec![
                reserve("r1", ago(now, 72), ETHER / 2),
                reserve("r4", ago(now, 1), ETHER / 4),
            ],
            audit: vec![
                request(ago(now, 240), &idle, "198.51.100.20", "allow", "r0"),
                request(ago(now, 72), &busy, "198.51.100.7", "allow", "r1"),
                request(ago(now, 3), &busy, "198.51.100.7", "allow", "r2"),
                request(ago(now, 2), &busy, "198.51.100.7", "deny", "r3"),
                anomaly,
                request(ago(now, 1), &busy, "203.0.113.9", "allow", "r4"),
            ],
            ..Batch::default()
        })
        .await
        .unwrap();
    let (seq, hash) = store.audit_head().await.unwrap().unwrap();
    valet_store::Checkpoint::new(home.path().join("audit.head"))
        .write(seq, hash)
        .unwrap();
    (busy, idle, never, fresh)
}

fn key<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {report}"))
}

#[tokio::test]
async fn report_lists_use_addresses_spend_anomalies_and_unused_keys() {
    let (home, _) = Home::init("http://127.0.0.1:1");
    let (busy, idle, never, fresh) = prepare(&home).await;

    let r = home.ok(&["report", "--json"]).json();
    assert_eq!(r["audit"]["ok"], true, "{r}");
    // Active keys only: the revoked one is not listed.
    let ids: Vec<&str> = r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{r}");
    for id in [&busy, &idle, &never, &fresh] {
        assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
    }

    let b = key(&r, &busy);
    assert_eq!(b["status"], "active");
    assert_eq!(
        (
            b["requests"].clone(),
            b["denied"].clone(),
            b["anomalies"].clone()
        ),
        (json!(4), json!(1), json!(1))
    );
    assert!(b["last_used"].is_string());
    assert_eq!(
        b["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["ip"].as_str().unwrap(), i["requests"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("198.51.100.7", 3), ("203.0.113.9", 1)]
    );
    // Only the reservation inside the 24h window counts against the cap.
    assert_eq!(
        b["spend"],
        json!([{ "asset": "native", "window": "1d", "cap": ETHER.to_string(),
                 "used": (ETHER / 4).to_string(), "remaining": (3 * ETHER / 4).to_string() }])
    );
    assert_eq!(key(&r, &never)["last_used"], Value::Null);

    let anomalies = r["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0]["kind"], "new_ip");
    assert_eq!(anomalies[0]["key_id"], busy.as_str());

    // Unused for 7 days: idle (last used 10 days ago) and never (issued 9 days ago); not fresh.
    let unused: Vec<(&str, &str)> = r["unused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap(),
                k["revoke_command"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(unused.len(), 2, "{unused:?}");
    let home_flag = format!(" --home {}", home.path().display());
    for id in [&idle, &never] {
        let command = format!("valet key revoke {id}{home_flag}");
        assert!(
            unused.contains(&(id.as_str(), command.as_str())),
            "{unused:?}"
        );
    }
    // A shorter period: the old addresses and requests drop out, the last use stays.
    let r = home.ok(&["report", "--json", "--since", "2d"]).json();
    assert_eq!(key(&r, &busy)["requests"], 3);
    assert!(key(&r, &idle)["last_used"].is_string());
    assert_eq!(key(&r, &idle)["ips"], json!([]));

    // The table has the same rows (compared with runs of spaces collapsed).
    let table = home.ok(&["report"]).stdout;
    let lines: Vec<String> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for needle in [
        "AUDIT LOG intact: 13 entries".to_string(),
        format!("{busy} busy active"),
        format!("{busy} 198.51.100.7 3"),
        format!("{busy} 203.0.113.9 1"),
        format!("{busy} native 1d 0.25 ETH 1 ETH"),
        format!("{busy} new_ip alert request from 203.0.113.9"),
        format!("{never} never never valet key revoke {never}{home_flag}"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&needle)),
            "{needle} in\n{table}"
        );
    }

    // Revoking unused keys: refused without a terminal and without --yes (exit 2), done with it.
    let refused = home.run(&["report", "--revoke-unused"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    let r = home
        .ok(&["report", "--json", "--revoke-unused", "--yes"])
        .json();
    let mut revoked: Vec<&str> = r["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    revoked.sort();
    let mut expected = vec![idle.as_str(), never.as_str()];
    expected.sort();
    assert_eq!(revoked, expected);
    let keys = home.ok(&["key", "list", "--json"]).json();
    let status = |id: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&idle), "revoked");
    assert_eq!(status(&never), "revoked");
    assert_eq!(status(&busy), "active");
    assert_eq!(status(&fresh), "active");
    // The log still verifies after the revocations.
    home.ok(&["audit", "verify"]);
    let r = home.ok(&["report", "--json"]).json();
    assert_eq!(r["unused"], json!([]));

    // A suspended key shows as such, and `valet key resume` lifts it (on the store: no gateway).
    let url = format!("sqlite://{}", home.path().join("valet.db").display());
    let store = valet_store::open(&url).await.unwrap();
    let at = Timestamp::now();
    let record = valet_server::admin_record(at, "key.suspend", Some(&busy), json!({}));
    assert!(store.suspend_key(&busy, at, record).await.unwrap());
    drop(store);
    let r = home.ok(&["report", "--json"]).json();
    assert_eq!(key(&r, &busy)["status"], "suspended");
    assert_eq!(
        home.ok(&["key", "resume", &busy]).stdout.trim(),
        format!("resumed {busy}")
    );
    let again = home.run(&["key", "resume", &busy]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("is not suspended"), "{again:?}");
    let revoked = home.run(&["key", "resume", &idle]);
    assert!(revoked.stderr.contains("revoked"), "{revoked:?}");
    home.ok(&["audit", "verify"]);
}

#[test]
fn serve_refuses_bad_anomaly_settings_and_an_unsigned_webhook() {
    let (home, _) = Home::init("http://127.0.0.1:1");
    let config = home.path().join("valet.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let with = |extra: &str| std::fs::write(&config, format!("{base}\n{extra}")).unwrap();

    with("[alerts]\nwebhook_url = \"http://127.0.0.1:9/hook\"\n");
    let r = home.run(&["serve"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("webhook.secret") && r.stderr.contains("VALET_WEBHOOK_SECRET"),
        "{r:?}"
    );
    with("[alerts]\nwebhook_url = \"ftp://hooks.example/valet\"\n");
    std::fs::write(home.path().join("webhook.secret"), "s3cret\n").unwrap();
    let r = home.run(&["serve"]);
    assert!(r.stderr.contains("https://"), "{r:?}");
    assert!(!r.stderr.contains("s3cret"), "{r:?}");

    with("[anomaly]\nrate_factor = 0.5\n");
    let r = home.run(&["serve"]);
    assert!(r.stderr.contains("anomaly.rate_factor"), "{r:?}");
    with("[anomaly]\ncooldown = \"10 minutes\"\n");
    let r = home.run(&["serve"]);
    assert!(r.stderr.contains("anomaly.cooldown"), "{r:?}");
    with("[anomaly]\nrate_floor = 5\n[unknown]\n");
    let r = home.run(&["serve"]);
    assert!(r.stderr.contains("valet.toml"), "{r:?}");
}
