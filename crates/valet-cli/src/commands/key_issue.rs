//! `valet key issue`: issue an agent key under a policy file or a profile with shorthand flags.

use crate::{admin::Admin, home::HomeArgs, onchain::OwnerChain};
use anyhow::{Context as _, bail};
use std::{path::PathBuf, process::ExitCode};
use toml::{Table, Value};
use valet_store::KeyMode;

/// Issue an agent key (shown once)
///
/// Issues an agent key and prints it exactly once. Give a policy file, or a profile with
/// shorthand flags (which build the same policy file). A key lives 24h unless --expires
/// (or the policy file) says otherwise.
///
/// With --policy, the shorthand flags are merged explicitly: --expires, --chain, --ip,
/// --max-value and --hours/--days/--timezone replace the file's setting, --spend and --deny
/// add to it, each change is named on stderr; --target is refused (edit the file to widen).
/// A key whose chains exclude the node's chain is refused unless --allow-other-chain.
///
/// Examples:
///   valet key issue --name swap-bot --policy swap-bot.toml
///   valet key issue --name reader --profile read-only --expires 1h
///   valet key issue --name bot --profile swap-only --chain 1 --expires 24h \
///     --spend 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48:1000000000/24h --max-value 0.05ether
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// A name for the key.
    #[arg(long)]
    name: String,
    /// The policy file (TOML).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    shorthand: Shorthand,
    /// Issue the key even though its chains exclude the chain of the node Valet uses.
    #[arg(long)]
    allow_other_chain: bool,
    /// `gateway` (Valet enforces the policy) or `onchain` (also an EIP-7702 session key whose
    /// scope the wallet's account contract enforces; run `valet wallet delegate` first).
    #[arg(long, default_value = "gateway", value_parser = ["gateway", "onchain"])]
    mode: String,
    /// Print one JSON object: id, agent_key, wallet, expires_at.
    #[arg(long)]
    json: bool,
}

/// Flags that build a policy (SPEC section 2).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct Shorthand {
    /// read-only | swap-only | full-access | custom.
    #[arg(long, value_parser = ["read-only", "swap-only", "full-access", "custom"])]
    pub(crate) profile: Option<String>,
    /// A chain id the key may sign for (repeatable).
    #[arg(long = "chain", value_name = "ID")]
    pub(crate) chains: Vec<u64>,
    /// How long the key lives (`30m`, `24h`, `7d`) [default: 24h, or the policy file's].
    #[arg(long, value_name = "DURATION")]
    pub(crate) expires: Option<String>,
    /// Allow calls to ADDR, optionally only these functions: `ADDR[:SIG,...]` (repeatable).
    #[arg(long = "target", value_name = "ADDR[:SIG,...]")]
    pub(crate) targets: Vec<String>,
    /// Deny this function on every target (repeatable).
    #[arg(long = "deny", value_name = "SIG")]
    pub(crate) denies: Vec<String>,
    /// Native value cap per transaction (`0.05ether`).
    #[arg(long, value_name = "AMOUNT")]
    pub(crate) max_value: Option<String>,
    /// A rolling spend cap: `ASSET:AMOUNT/WINDOW`, ASSET `native` or a token address, a token
    /// amount in base units (repeatable).
    #[arg(long = "spend", value_name = "ASSET:AMOUNT/WINDOW")]
    pub(crate) spends: Vec<String>,
    /// Signing hours, local time (`09:00-17:00`).
    #[arg(long)]
    pub(crate) hours: Option<String>,
    /// Signing days (`mon-fri`, `sat,sun`).
    #[arg(long)]
    pub(crate) days: Option<String>,
    /// IANA time zone of --hours and --days.
    #[arg(long)]
    pub(crate) timezone: Option<String>,
    /// Allowed client network (repeatable).
    #[arg(long = "ip", value_name = "CIDR")]
    pub(crate) ips: Vec<String>,
}

/// Puts a space between a number and its unit (`0.5ether` → `0.5 ether`).
fn spaced(amount: &str) -> String {
    let split = amount
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(amount.len());
    let (n, unit) = amount.split_at(split);
    if unit.is_empty() {
        n.trim().to_string()
    } else {
        format!("{} {}", n.trim(), unit.trim())
    }
}

/// Splits `a(b,c),d()` at commas outside parentheses.
fn split_signatures(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Shorthand {
    /// The policy file these flags describe.
    pub(crate) fn to_toml(&self, name: &str) -> anyhow::Result<String> {
        let Some(profile) = &self.profile else {
            bail!("give --policy FILE or --profile PROFILE");
        };
        let mut t = self.fields()?;
        t.insert("name".into(), name.into());
        t.insert("profile".into(), profile.as_str().into());
        if !t.contains_key("expires_in") {
            t.insert("expires_in".into(), DEFAULT_EXPIRES.into());
        }
        Ok(toml::to_string(&t)?)
    }

    /// A policy file's text with these flags applied: each flag replaces the file's setting
    /// of the same name (`--spend` and `--deny` add to the file's lists, which only narrows
    /// the key); returns the new text and one line per change, for stderr. `--target` is
    /// refused: a policy file's allow list is changed in the file, never widened by a flag.
    pub(crate) fn merge_into(&self, text: &str) -> anyhow::Result<(String, Vec<String>)> {
        if !self.targets.is_empty() {
            bail!(
                "--target cannot be combined with --policy: add the target to the policy file's \
                 [[allow]] rules instead"
            );
        }
        let mut file: Table = toml::from_str(text)?;
        let mut notes = Vec::new();
        for (key, value) in self.fields()? {
            match (key.as_str(), value) {
                // Tables merge key by key: --hours keeps the file's days and time zone.
                (table @ ("limits" | "schedule"), Value::Table(flags)) => {
                    let section = file
                        .entry(table)
                        .or_insert_with(|| Value::Table(Table::new()));
                    let Value::Table(section) = section else {
                        bail!("the policy file's `{table}` is not a table");
                    };
                    for (k, v) in flags {
                        notes.push(apply(section, &format!("{table}.{k}"), &k, v)?);
                    }
                }
                (_, value) => {
                    if key == "expires_in" && file.remove("expires_at").is_some() {
                        notes.push("--expires replaces the policy file's expires_at".into());
                    }
                    notes.push(apply(&mut file, &key, &key, value)?);
                }
            }
        }
        Ok((toml::to_string(&file)?, notes))
    }

    /// Whether any shorthand flag other than --profile was given.
    pub(crate) fn any(&self) -> bool {
        match self.fields() {
            Ok(t) => !t.is_empty(),
            Err(_) => true,
        }
    }

    /// The policy settings the flags name (and only those).
    fn fields(&self) -> anyhow::Result<Table> {
        let mut t = Table::new();
        if !self.chains.is_empty() {
            t.insert(
                "chains".into(),
                Value::Array(
                    self.chains
                        .iter()
                        .map(|c| Value::Integer(*c as i64))
                        .collect(),
                ),
            );
        }
        if let Some(expires) = &self.expires {
            t.insert("expires_in".into(), expires.as_str().into());
        }
        if !self.ips.is_empty() {
            t.insert(
                "ip_allow".into(),
                Value::Array(self.ips.iter().map(|i| i.as_str().into()).collect()),
            );
        }
        let mut limits = Table::new();
        if let Some(v) = &self.max_value {
            limits.insert("max_value_per_tx".into(), spaced(v).into());
        }
        let mut spend = Vec::new();
        for s in &self.spends {
            let (asset, rest) = s
                .split_once(':')
                .with_context(|| format!("--spend {s}: use ASSET:AMOUNT/WINDOW"))?;
            let (amount, window) = rest
                .rsplit_once('/')
                .with_context(|| format!("--spend {s}: use ASSET:AMOUNT/WINDOW"))?;
            let mut entry = Table::new();
            entry.insert("asset".into(), asset.into());
            entry.insert("amount".into(), spaced(amount).into());
            entry.insert("window".into(), window.into());
            spend.push(Value::Table(entry));
        }
        if !spend.is_empty() {
            limits.insert("spend".into(), Value::Array(spend));
        }
        if !limits.is_empty() {
            t.insert("limits".into(), Value::Table(limits));
        }
        if self.hours.is_some() || self.days.is_some() || self.timezone.is_some() {
            let mut s = Table::new();
            if let Some(h) = &self.hours {
                s.insert("hours".into(), h.as_str().into());
            }
            if let Some(d) = &self.days {
                s.insert(
                    "days".into(),
                    Value::Array(d.split(',').map(|d| d.trim().into()).collect()),
                );
            }
            if let Some(z) = &self.timezone {
                s.insert("timezone".into(), z.as_str().into());
            }
            t.insert("schedule".into(), Value::Table(s));
        }
        let allow: Vec<Value> = self
            .targets
            .iter()
            .map(|target| {
                let mut rule = Table::new();
                let (addr, sigs) = target.split_once(':').unwrap_or((target, ""));
                rule.insert("target".into(), addr.into());
                if !sigs.is_empty() {
                    rule.insert(
                        "functions".into(),
                        Value::Array(
                            split_signatures(sigs)
                                .into_iter()
                                .map(Value::from)
                                .collect(),
                        ),
                    );
                }
                Value::Table(rule)
            })
            .collect();
        if !allow.is_empty() {
            t.insert("allow".into(), Value::Array(allow));
        }
        if !self.denies.is_empty() {
            let rules = self
                .denies
                .iter()
                .map(|sig| {
                    let mut rule = Table::new();
                    rule.insert("functions".into(), Value::Array(vec![sig.as_str().into()]));
                    Value::Table(rule)
                })
                .collect();
            t.insert("deny".into(), Value::Array(rules));
        }
        Ok(t)
    }
}

/// How long a key issued from flags lives when --expires is not given.
pub(crate) const DEFAULT_EXPIRES: &str = "24h";

/// Sets `table[key]` from a flag: lists (`spend`, `deny`) are extended, anything else
/// replaced. Returns the line that tells the user what changed.
fn apply(table: &mut Table, shown: &str, key: &str, value: Value) -> anyhow::Result<String> {
    let flag = flag_name(key);
    match (table.get_mut(key), value) {
        (Some(Value::Array(old)), Value::Array(new)) if matches!(key, "spend" | "deny") => {
            let n = new.len();
            old.extend(new);
            Ok(format!("{flag} adds {n} to the policy file's {shown}"))
        }
        (Some(old), new) => {
            let line = format!("{flag} replaces the policy file's {shown} = {old} with {new}");
            *old = new;
            Ok(line)
        }
        (None, new) => {
            let line = format!("{flag} sets {shown} = {new} (the policy file has none)");
            table.insert(key.to_string(), new);
            Ok(line)
        }
    }
}

/// The shorthand flag that writes a policy key.
fn flag_name(key: &str) -> &'static str {
    match key {
        "chains" => "--chain",
        "expires_in" => "--expires",
        "ip_allow" => "--ip",
        "max_value_per_tx" => "--max-value",
        "spend" => "--spend",
        "hours" => "--hours",
        "days" => "--days",
        "timezone" => "--timezone",
        "deny" => "--deny",
        _ => "a flag",
    }
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let policy_toml = policy_text(self.policy.as_deref(), &self.shorthand, &self.name)?;
        let mode = KeyMode::parse(&self.mode).unwrap_or(KeyMode::Gateway);
        let admin = Admin::connect(&home).await?;
        check_chain(&home, &admin, &policy_toml, self.allow_other_chain).await?;
        // Without a gateway, an on-chain grant is sent from here with the owner's custody.
        let chain = match (mode, admin.is_direct()) {
            (KeyMode::Onchain, true) => Some(OwnerChain::open(&home, home_args).await?),
            _ => None,
        };
        if mode == KeyMode::Onchain {
            eprintln!(
                "granting the session key on chain (waiting for the transaction to be mined)…"
            );
        }
        let issued = admin
            .issue(
                &self.name,
                &policy_toml,
                mode,
                chain.as_ref().map(OwnerChain::parts),
            )
            .await?;
        if let Some(w) = issued["warning"].as_str() {
            eprintln!("warning: {w}");
        }
        if self.json {
            let mut v = issued.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("warning");
            }
            println!("{v}");
        } else {
            println!("id:         {}", issued["id"].as_str().unwrap_or_default());
            println!(
                "agent key:  {}",
                issued["agent_key"].as_str().unwrap_or_default()
            );
            println!(
                "wallet:     {}",
                issued["wallet"].as_str().unwrap_or_default()
            );
            println!(
                "expires at: {}",
                issued["expires_at"].as_str().unwrap_or_default()
            );
            if let Some(session) = issued["session_signer"].as_str() {
                println!(
                    "session:    {session} (granted on chain in {})",
                    issued["grant_tx"].as_str().unwrap_or("?")
                );
            }
            eprintln!("the agent key is shown only now: give it to the agent as VALET_AGENT_KEY");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The policy to issue: the file with the flags merged into it (each change named on
/// stderr), or the flags alone; checked locally so that a typo is reported with its line.
pub(crate) fn policy_text(
    file: Option<&std::path::Path>,
    flags: &Shorthand,
    name: &str,
) -> anyhow::Result<String> {
    let Some(path) = file else {
        let text = flags.to_toml(name)?;
        valet_policy::Policy::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("the flags make an invalid policy: {}", e.message))?;
        return Ok(text);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    valet_policy::Policy::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("policy file {}: {e}", path.display()))?;
    if !flags.any() {
        return Ok(text);
    }
    let (merged, notes) = flags.merge_into(&text)?;
    for note in notes {
        eprintln!("{note}");
    }
    valet_policy::Policy::from_toml(&merged).map_err(|e| {
        anyhow::anyhow!(
            "policy file {} with the flags is invalid: {}",
            path.display(),
            e.message
        )
    })?;
    Ok(merged)
}

/// Refuses a key whose `chains` exclude the chain Valet signs for (the running gateway's, else
/// the node's, else the one `valet init` recorded), unless `allow` (--allow-other-chain).
pub(crate) async fn check_chain(
    home: &crate::home::Home,
    admin: &Admin,
    policy_toml: &str,
    allow: bool,
) -> anyhow::Result<()> {
    let policy = valet_policy::Policy::from_toml(policy_toml)
        .map_err(|e| anyhow::anyhow!("invalid policy: {}", e.message))?;
    if policy.chains.is_empty() || allow {
        return Ok(());
    }
    let chain = match admin.running() {
        Some(gateway) => Some(gateway.chain_id),
        None => match home.upstream().await {
            Ok(up) => Some(up.chain_id()),
            Err(_) => home.config.chain_id,
        },
    };
    match chain {
        Some(id) if !policy.chains.contains(&id) => bail!(
            "the key would be for chain {:?} but the node is on chain {id}: every request would \
             be denied (chain_not_allowed). Fix --chain / the policy's chains, or pass \
             --allow-other-chain if you mean it",
            policy.chains
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    const FILE: &str = r#"name = "bot"
profile = "swap-only"
expires_at = "2027-01-01T00:00:00Z"

[schedule]
hours = "09:00-17:00"
days = ["mon", "tue"]
timezone = "Europe/Berlin"

[[limits.spend]]
asset = "native"
amount = "1 ether"
window = "24h"
"#;

    #[test]
    fn flags_replace_or_add_key_by_key_and_say_so() {
        let flags = Shorthand {
            expires: Some("1h".into()),
            hours: Some("10:00-12:00".into()),
            spends: vec!["native:0.1ether/1h".into()],
            ..Shorthand::default()
        };
        let (text, notes) = flags.merge_into(FILE).unwrap();
        let merged: Table = toml::from_str(&text).unwrap();
        assert!(merged.get("expires_at").is_none());
        assert_eq!(merged["expires_in"].as_str(), Some("1h"));
        let schedule = merged["schedule"].as_table().unwrap();
        assert_eq!(schedule["hours"].as_str(), Some("10:00-12:00"));
        assert_eq!(schedule["timezone"].as_str(), Some("Europe/Berlin"));
        assert_eq!(schedule["days"].as_array().unwrap().len(), 2);
        assert_eq!(merged["limits"]["spend"].as_array().unwrap().len(), 2);
        let notes = notes.join("\n");
        for expected in [
            "--expires replaces the policy file's expires_at",
            "--hours replaces the policy file's schedule.hours",
            "--spend adds 1 to the policy file's limits.spend",
        ] {
            assert!(notes.contains(expected), "{notes}");
        }
        let widen = Shorthand {
            targets: vec!["0x0000000000000000000000000000000000000001".into()],
            ..Shorthand::default()
        };
        assert!(widen.merge_into(FILE).is_err());
        assert!(!Shorthand::default().any());
    }
}
