//! `valet report`: the periodic audit checklist, read from the store.

use crate::{admin::Admin, home::HomeArgs};
use alloy_primitives::U256;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead as _, IsTerminal as _, Write as _},
    process::ExitCode,
};
use valet_policy::{Asset, Policy};
use valet_store::{AuditEntry, AuditFilter, KeyRecord, Store};

/// The periodic audit checklist: keys, last use, addresses, spend, anomalies, unused keys
///
/// The owner's periodic checklist, read from the store (no gateway needed): whether the audit
/// log verifies, every active or suspended key with its last use, the addresses it was used
/// from, its spend against each cap, the anomalies of the period, and the keys unused for N
/// days with the command that revokes each. Exits 1 when the audit log does not verify.
///
/// `--revoke-unused` then revokes the unused keys after a y/N question on stderr (`--yes`
/// skips it; without a terminal and without `--yes` it refuses, exit 2).
///
/// Examples:
///   valet report
///   valet report --since 7d --json
///   valet report --unused-days 14 --revoke-unused
///   valet report --revoke-unused --yes
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The period: a duration back from now (`30d`, `24h`) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    since: String,
    /// One JSON object.
    #[arg(long)]
    json: bool,
    /// A key unused for this many days (issued at least that long ago) is listed as unused.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    unused_days: u64,
    /// Revoke the unused keys (asks first).
    #[arg(long)]
    revoke_unused: bool,
    /// With --revoke-unused: do not ask.
    #[arg(long, requires = "revoke_unused")]
    yes: bool,
}

/// What one key did, from the audit log.
#[derive(Default)]
struct Usage {
    last_used: Option<Timestamp>,
    requests: u64,
    denied: u64,
    anomalies: u64,
    /// address → (requests in the period, last seen).
    ips: BTreeMap<String, (u64, Timestamp)>,
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let since = match valet_server::parse_since(&self.since) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --since {}: {e}", self.since);
                return Ok(ExitCode::from(2));
            }
        };
        let home = home_args.open()?;
        let store = home.store(None).await?;
        let now = Timestamp::now();

        let entries = store.audit(&AuditFilter::default()).await?;
        let head = valet_store::Checkpoint::new(home.checkpoint()).read()?;
        let audit = match valet_store::verify(&entries, head) {
            Ok(n) => json!({ "ok": true, "entries": n }),
            Err(e) => json!({ "ok": false, "first_bad_seq": e.first_bad_seq, "reason": e.reason }),
        };
        let usage = usage(&entries, since);
        let anomalies: Vec<Value> = entries
            .iter()
            .filter(|e| e.record.at >= since)
            .filter_map(valet_server::anomaly_json)
            .collect();

        let unused_before = now
            .checked_sub(SignedDuration::from_hours(
                i64::try_from(self.unused_days.saturating_mul(24)).unwrap_or(i64::MAX),
            ))
            .unwrap_or(Timestamp::MIN);
        let home_flag = match &home_args.home {
            Some(dir) => format!(" --home {}", dir.display()),
            None => String::new(),
        };
        let mut keys = vec![];
        let mut unused = vec![];
        for record in store.keys().await? {
            let status = valet_server::key_json(&record, now)["status"].clone();
            if !matches!(status.as_str(), Some("active" | "suspended")) {
                continue;
            }
            let u = usage.get(&record.id);
            let last_used = u.and_then(|u| u.last_used);
            let ips: Vec<Value> = u
                .map(|u| {
                    u.ips
                        .iter()
                        .map(|(ip, (n, at))| json!({ "ip": ip, "requests": n, "last_seen": at.to_string() }))
                        .collect()
                })
                .unwrap_or_default();
            if last_used.unwrap_or(record.created_at) < unused_before {
                unused.push(json!({
                    "id": record.id,
                    "name": record.name,
                    "mode": record.mode.as_str(),
                    "last_used": last_used.map(|t| t.to_string()),
                    "created_at": record.created_at.to_string(),
                    "revoke_command": format!("valet key revoke {}{home_flag}", record.id),
                }));
            }
            keys.push(json!({
                "id": record.id,
                "name": record.name,
                "status": status,
                "profile": valet_server::key_json(&record, now)["profile"],
                "created_at": record.created_at.to_string(),
                "expires_at": record.expires_at.to_string(),
                "last_used": last_used.map(|t| t.to_string()),
                "requests": u.map_or(0, |u| u.requests),
                "denied": u.map_or(0, |u| u.denied),
                "anomalies": u.map_or(0, |u| u.anomalies),
                "ips": ips,
                "spend": spend(store.as_ref(), &record, now).await?,
            }));
        }
        let mut report = json!({
            "generated_at": now.to_string(),
            "since": since.to_string(),
            "audit": audit,
            "keys": keys,
            "anomalies": anomalies,
            "unused_days": self.unused_days,
            "unused": unused,
        });
        let broken = report["audit"]["ok"] != true;

        if self.json {
            if self.revoke_unused {
                match self
                    .revoke(&home_args.open()?, home_args, &report["unused"])
                    .await?
                {
                    Some(revoked) => report["revoked"] = json!(revoked),
                    None => return Ok(ExitCode::from(2)),
                }
            }
            println!("{report}");
        } else {
            humanize(&home, &mut report).await;
            print_table(&report);
            if self.revoke_unused {
                match self
                    .revoke(&home_args.open()?, home_args, &report["unused"])
                    .await?
                {
                    Some(revoked) => {
                        for id in revoked {
                            println!("revoked {id}");
                        }
                    }
                    None => return Ok(ExitCode::from(2)),
                }
            }
        }
        if broken {
            eprintln!("error: the audit log does not verify: run `valet audit verify`");
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Revokes the unused keys once confirmed; `None` when confirmation is impossible (no
    /// terminal, no `--yes`).
    async fn revoke(
        &self,
        home: &crate::home::Home,
        home_args: &HomeArgs,
        unused: &Value,
    ) -> anyhow::Result<Option<Vec<String>>> {
        let ids: Vec<String> = unused
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["id"].as_str().map(str::to_string))
            .collect();
        if ids.is_empty() {
            eprintln!("no unused keys to revoke");
            return Ok(Some(vec![]));
        }
        if !self.yes {
            let stdin = std::io::stdin();
            if !stdin.is_terminal() {
                eprintln!(
                    "error: --revoke-unused asks for confirmation and stdin is not a terminal: add --yes"
                );
                return Ok(None);
            }
            eprint!(
                "Revoke {} unused keys ({})? [y/N] ",
                ids.len(),
                ids.join(", ")
            );
            std::io::stderr().flush()?;
            let mut answer = String::new();
            stdin.lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
                eprintln!("nothing revoked");
                return Ok(Some(vec![]));
            }
        }
        let admin = Admin::connect(home).await?;
        // Without a gateway, on-chain keys' session signers are revoked from here.
        let onchain = unused
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["mode"] == "onchain");
        let chain = match onchain && admin.is_direct() {
            true => Some(crate::onchain::OwnerChain::open(home, home_args).await?),
            false => None,
        };
        for id in &ids {
            let r = admin
                .revoke(id, chain.as_ref().map(crate::onchain::OwnerChain::parts))
                .await?;
            if let Some(e) = r["onchain"]["error"].as_str() {
                eprintln!("warning: {id} is revoked off-chain, but not on chain: {e}");
            }
        }
        Ok(Some(ids))
    }
}

/// Per key: last use (ever), and in the period its requests, denials, anomalies and addresses.
fn usage(entries: &[AuditEntry], since: Timestamp) -> HashMap<String, Usage> {
    let mut out: HashMap<String, Usage> = HashMap::new();
    for e in entries {
        let r = &e.record;
        let Some(key) = &r.key_id else { continue };
        let u = out.entry(key.clone()).or_default();
        if r.action == "anomaly" {
            if r.at >= since {
                u.anomalies += 1;
            }
            continue;
        }
        if r.actor != "agent" {
            continue;
        }
        u.last_used = Some(u.last_used.map_or(r.at, |t| t.max(r.at)));
        if r.at < since {
            continue;
        }
        u.requests += 1;
        if r.decision.as_deref() == Some("deny") {
            u.denied += 1;
        }
        if let Some(ip) = &r.client_ip {
            let seen = u.ips.entry(ip.clone()).or_insert((0, r.at));
            seen.0 += 1;
            seen.1 = seen.1.max(r.at);
        }
    }
    out
}

/// The key's spend against each cap: reservations not released within the cap's window.
async fn spend(store: &dyn Store, record: &KeyRecord, now: Timestamp) -> anyhow::Result<Value> {
    let Ok(policy) = Policy::from_toml(&record.policy_toml) else {
        return Ok(json!([]));
    };
    let mut caps = vec![];
    for cap in &policy.limits.spend {
        let from = now
            .checked_sub(SignedDuration::from_secs(
                i64::try_from(cap.window).unwrap_or(i64::MAX),
            ))
            .unwrap_or(Timestamp::MIN);
        let used = store
            .reservations(&record.id, from)
            .await?
            .into_iter()
            .filter(|(_, asset, _)| *asset == cap.asset)
            .fold(U256::ZERO, |sum, (_, _, amount)| sum.saturating_add(amount));
        caps.push(json!({
            "asset": match cap.asset { Asset::Native => "native".to_string(), Asset::Token(t) => t.to_string() },
            "window": valet_policy::units::format_duration(cap.window),
            "cap": cap.amount.to_string(),
            "used": used.to_string(),
            "remaining": cap.amount.saturating_sub(used).to_string(),
        }));
    }
    Ok(Value::Array(caps))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS` (UTC), `never` when absent.
fn when(v: &Value) -> String {
    v.as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or_else(
            || "never".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// Adds `used_text`/`cap_text` to each spend line: amounts in ether or the token's symbol.
async fn humanize(home: &crate::home::Home, report: &mut Value) {
    let mut units = crate::units::Units::new(home, &[]).await;
    let keys = report["keys"].as_array_mut().into_iter().flatten();
    for line in keys.flat_map(|k| k["spend"].as_array_mut().into_iter().flatten()) {
        let asset = line["asset"].as_str().unwrap_or("?").to_string();
        for (base, text) in [("used", "used_text"), ("cap", "cap_text")] {
            let amount = line[base].as_str().unwrap_or("?").to_string();
            line[text] = json!(units.amount(&asset, &amount).await);
        }
    }
}

fn print_table(r: &Value) {
    println!(
        "VALET REPORT {} UTC, since {} UTC",
        when(&r["generated_at"]),
        when(&r["since"])
    );
    println!();
    let a = &r["audit"];
    if a["ok"] == true {
        println!(
            "AUDIT LOG  intact: {} entries, chain and checkpoint verified",
            s(&a["entries"])
        );
    } else {
        println!(
            "AUDIT LOG  BROKEN at entry {}: {}",
            s(&a["first_bad_seq"]),
            s(&a["reason"])
        );
    }
    let empty = vec![];
    let keys = r["keys"].as_array().unwrap_or(&empty);
    println!();
    println!("KEYS ({} active or suspended)", keys.len());
    println!(
        "{:<14} {:<20} {:<10} {:<19}  {:>8} {:>6} {:>9}",
        "ID", "NAME", "STATUS", "LAST USED", "REQUESTS", "DENIED", "ANOMALIES"
    );
    for k in keys {
        println!(
            "{:<14} {:<20} {:<10} {:<19}  {:>8} {:>6} {:>9}",
            s(&k["id"]),
            s(&k["name"]),
            s(&k["status"]),
            when(&k["last_used"]),
            s(&k["requests"]),
            s(&k["denied"]),
            s(&k["anomalies"])
        );
    }
    println!();
    println!("ADDRESSES SEEN");
    println!(
        "{:<14} {:<39} {:>8}  LAST SEEN",
        "ID", "ADDRESS", "REQUESTS"
    );
    for k in keys {
        for ip in k["ips"].as_array().unwrap_or(&empty) {
            println!(
                "{:<14} {:<39} {:>8}  {}",
                s(&k["id"]),
                s(&ip["ip"]),
                s(&ip["requests"]),
                when(&ip["last_seen"])
            );
        }
    }
    println!();
    println!("SPEND AGAINST CAPS (reservations not released within the window count as used)");
    println!(
        "{:<14} {:<42} {:>6} {:>26} {:>26}",
        "ID", "ASSET", "WINDOW", "USED", "CAP"
    );
    for k in keys {
        for c in k["spend"].as_array().unwrap_or(&empty) {
            println!(
                "{:<14} {:<42} {:>6} {:>26} {:>26}",
                s(&k["id"]),
                s(&c["asset"]),
                s(&c["window"]),
                s(&c["used_text"]),
                s(&c["cap_text"])
            );
        }
    }
    let anomalies = r["anomalies"].as_array().unwrap_or(&empty);
    println!();
    println!("ANOMALIES ({})", anomalies.len());
    println!(
        "{:>6} {:<19} {:<14} {:<12} {:<8} MESSAGE",
        "SEQ", "AT", "KEY", "KIND", "ACTION"
    );
    for a in anomalies {
        println!(
            "{:>6} {:<19} {:<14} {:<12} {:<8} {}",
            s(&a["seq"]),
            when(&a["at"]),
            s(&a["key_id"]),
            s(&a["kind"]),
            s(&a["action_taken"]),
            s(&a["message"])
        );
    }
    let unused = r["unused"].as_array().unwrap_or(&empty);
    println!();
    println!(
        "UNUSED FOR {}+ DAYS ({})",
        s(&r["unused_days"]),
        unused.len()
    );
    println!(
        "{:<14} {:<20} {:<19}  REVOKE WITH",
        "ID", "NAME", "LAST USED"
    );
    for k in unused {
        println!(
            "{:<14} {:<20} {:<19}  {}",
            s(&k["id"]),
            s(&k["name"]),
            when(&k["last_used"]),
            s(&k["revoke_command"])
        );
    }
}
