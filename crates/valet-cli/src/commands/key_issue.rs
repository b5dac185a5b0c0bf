//! `valet key issue`: issue an agent key under a policy file or a profile with shorthand flags.

use crate::{admin::Admin, home::HomeArgs, onchain::OwnerChain};
use anyhow::{Context as _, bail};
use std::{path::PathBuf, process::ExitCode};
use toml::{Table, Value};
use valet_store::KeyMode;

/// Issues an agent key and prints it exactly once. Give a policy file, or a profile with
/// shorthand flags (which build the same policy file).
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
    /// How long the key lives (`30m`, `24h`, `7d`).
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
        let mut t = Table::new();
        t.insert("name".into(), name.into());
        t.insert("profile".into(), profile.as_str().into());
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
        t.insert(
            "expires_in".into(),
            self.expires.clone().unwrap_or_else(|| "24h".into()).into(),
        );
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
        Ok(toml::to_string(&t)?)
    }
}

impl Args {
    pub(crate) async fn run(self, home_args: &HomeArgs) -> anyhow::Result<ExitCode> {
        let home = home_args.open()?;
        let policy_toml = match &self.policy {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("cannot read policy file {}", p.display()))?,
            None => self.shorthand.to_toml(&self.name)?,
        };
        // Check locally first so that a typo is reported with its line.
        valet_policy::Policy::from_toml(&policy_toml).map_err(|e| match &self.policy {
            Some(p) => anyhow::anyhow!("policy file {}: {e}", p.display()),
            None => anyhow::anyhow!("the flags make an invalid policy: {}", e.message),
        })?;
        let mode = KeyMode::parse(&self.mode).unwrap_or(KeyMode::Gateway);
        let admin = Admin::connect(&home).await?;
        // Without a gateway, an on-chain grant is sent from here with the owner's custody.
        let chain = match (mode, admin.is_direct()) {
            (KeyMode::Onchain, true) => Some(OwnerChain::open(&home, home_args).await?),
            _ => None,
        };
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
