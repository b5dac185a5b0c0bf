//! `valet policy check` against the table of fixtures in `testdata/policy-check/<case>/`, and
//! its refusals of unusable input.
//!
//! A case directory holds `policy.toml`, `requests.jsonl` (built by `generate.sh` with foundry's
//! `cast`, never by Valet), `expected.jsonl` (one line per request, written from SPEC.md and the
//! README, not from the binary's output), an optional `args` file (extra flags, one per line;
//! `--flag value` on one line is split at the first space) and an optional `exit` file (the
//! expected exit status; derived from `expected.jsonl` when absent: 1 if any line is an error,
//! else 3 if any is denied, else 0).
//!
//! An expected line is `{"decision": "allow"|"deny", "violations": [{"code": "..."}, ...]}`
//! (codes compared as a multiset, messages ignored) or `{"decision": "error", "error": {"code": N}}`.
//! It may add `"message_contains": "..."`: some violation (or error) message must contain it.

use serde_json::Value;
use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/policy-check")
}

fn valet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_valet"))
}

/// A scratch directory of this test binary, empty, named after the test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("policy_check")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn non_blank_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// The extra flags of a case: one per line, `--flag value` split at the first space.
fn case_args(dir: &Path) -> Vec<String> {
    let path = dir.join("args");
    if !path.exists() {
        return Vec::new();
    }
    let mut args = Vec::new();
    for line in read(&path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.split_once(char::is_whitespace) {
            Some((flag, value)) => {
                args.push(flag.to_string());
                args.push(value.trim().to_string());
            }
            None => args.push(line.to_string()),
        }
    }
    args
}

fn codes(line: &Value) -> Vec<String> {
    let mut codes: Vec<String> = line
        .get("violations")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("code").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    codes.sort();
    codes
}

fn messages(line: &Value) -> Vec<String> {
    let mut out: Vec<String> = line
        .get("violations")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("message").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = line.pointer("/error/message").and_then(Value::as_str) {
        out.push(m.to_string());
    }
    out
}

/// Why `actual` does not match `expected`, if it does not.
fn mismatch(expected: &Value, actual: &Value) -> Option<String> {
    const KNOWN: &[&str] = &["decision", "violations", "error", "message_contains"];
    if let Some(obj) = expected.as_object()
        && let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str()))
    {
        return Some(format!("expected.jsonl: unknown key `{k}`"));
    }
    let want = expected.get("decision").and_then(Value::as_str);
    let got = actual.get("decision").and_then(Value::as_str);
    if want.is_none() {
        return Some("expected.jsonl: the line has no \"decision\"".into());
    }
    if want != got {
        return Some(format!("decision {got:?}, expected {want:?}"));
    }
    if want == Some("error") {
        if let Some(code) = expected.pointer("/error/code")
            && actual.pointer("/error/code") != Some(code)
        {
            return Some(format!(
                "error code {:?}, expected {code}",
                actual.pointer("/error/code")
            ));
        }
    } else {
        if actual.get("violations").and_then(Value::as_array).is_none() {
            return Some("no \"violations\" array".into());
        }
        let (want, got) = (codes(expected), codes(actual));
        if want != got {
            return Some(format!("violation codes {got:?}, expected {want:?}"));
        }
    }
    if let Some(needle) = expected.get("message_contains").and_then(Value::as_str)
        && !messages(actual).iter().any(|m| m.contains(needle))
    {
        return Some(format!("no message contains {needle:?}"));
    }
    None
}

fn expected_exit(dir: &Path, expected: &[Value]) -> i32 {
    let path = dir.join("exit");
    if path.exists() {
        return read(&path)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let any = |d: &str| {
        expected
            .iter()
            .any(|e| e.get("decision").and_then(Value::as_str) == Some(d))
    };
    if any("error") {
        1
    } else if any("deny") {
        3
    } else {
        0
    }
}

/// Runs one case directory; returns a description of every mismatch.
fn run_case(dir: &Path) -> Vec<String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let requests_path = dir.join("requests.jsonl");
    let requests_text = read(&requests_path);
    let requests = non_blank_lines(&requests_text);
    let expected: Vec<Value> = non_blank_lines(&read(&dir.join("expected.jsonl")))
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{name}/expected.jsonl line {}: {e}", i + 1))
        })
        .collect();
    let args = case_args(dir);
    let output = valet()
        .args(["policy", "check", "--policy"])
        .arg(dir.join("policy.toml"))
        .args(&args)
        .arg(&requests_path)
        .output()
        .expect("run valet");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let actual = non_blank_lines(&stdout);

    let mut failures = Vec::new();
    if requests.len() != expected.len() {
        failures.push(format!(
            "[{name}] requests.jsonl has {} lines but expected.jsonl {}",
            requests.len(),
            expected.len()
        ));
    }
    if actual.len() != requests.len() {
        failures.push(format!(
            "[{name}] {} output lines for {} requests\nstderr: {stderr}",
            actual.len(),
            requests.len()
        ));
    }
    for (i, want) in expected.iter().enumerate() {
        let request = requests.get(i).copied().unwrap_or("<missing>");
        let got_text = actual.get(i).copied().unwrap_or("<missing>");
        let got: Value = serde_json::from_str(got_text).unwrap_or(Value::Null);
        if let Some(why) = mismatch(want, &got) {
            failures.push(format!(
                "[{name}] line {}: {why}\n  request:  {request}\n  expected: {want}\n  actual:   {got_text}",
                i + 1
            ));
        }
    }
    let want_exit = expected_exit(dir, &expected);
    if output.status.code() != Some(want_exit) {
        failures.push(format!(
            "[{name}] exit status {:?}, expected {want_exit}\nstderr: {stderr}",
            output.status.code()
        ));
    }
    failures
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("testdata/policy-check exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("policy.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn assert_case(dir: &Path) {
    let failures = run_case(dir);
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn every_fixture_case() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= 20,
        "only {} cases under {}",
        dirs.len(),
        fixtures().display()
    );
    let mut report = String::new();
    let mut failed = Vec::new();
    for dir in &dirs {
        let failures = run_case(dir);
        if !failures.is_empty() {
            failed.push(
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            for f in failures {
                let _ = writeln!(report, "{f}\n");
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:?}\n\n{report}",
        failed.len(),
        dirs.len()
    );
}

/// The worked example of the shared contract (a copy of /work/shared/examples/policy-check).
#[test]
fn shared_example() {
    assert_case(&fixtures().join("example"));
}

/// Runs `policy check` with the given policy text and requests; returns its output.
fn check(name: &str, policy: &str, requests: &str, extra: &[&str]) -> Output {
    let dir = scratch(name);
    fs::write(dir.join("policy.toml"), policy).expect("write policy");
    fs::write(dir.join("requests.jsonl"), requests).expect("write requests");
    valet()
        .args(["policy", "check", "--policy"])
        .arg(dir.join("policy.toml"))
        .args(extra)
        .arg(dir.join("requests.jsonl"))
        .output()
        .expect("run valet")
}

const ONE_READ: &str = r#"{"at": "2026-12-01T10:00:00Z", "request": {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}}
"#;

/// Asserts exit 1, no decision printed, and a stderr naming line `line` and containing `needle`.
fn assert_policy_refused(name: &str, policy: &str, line: usize, needle: &str) {
    let out = check(name, policy, ONE_READ, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: exit status; stderr: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{name}: printed decisions for an unusable policy"
    );
    assert!(
        stderr.contains(&format!("line {line}")),
        "{name}: stderr does not name line {line}: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{name}: stderr does not mention {needle:?}: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{name}: the error is not one line: {stderr}"
    );
}

const HEAD: &str =
    "name = \"t\"\nprofile = \"custom\"\nchains = [1]\nexpires_at = \"2027-12-31T00:00:00Z\"\n";

#[test]
fn unknown_policy_key_is_refused_with_its_line() {
    assert_policy_refused(
        "unknown-key",
        &format!("{HEAD}colour = \"red\"\n"),
        5,
        "colour",
    );
    assert_policy_refused(
        "unknown-nested-key",
        &format!("{HEAD}\n[limits]\nmax_value_per_tx = \"1 ether\"\nmax_valeu = \"2 ether\"\n"),
        8,
        "max_valeu",
    );
}

#[test]
fn bad_address_is_refused_with_its_line() {
    // A mixed-case address with a wrong EIP-55 checksum (USDC with one letter's case flipped).
    assert_policy_refused(
        "bad-checksum",
        &format!("{HEAD}\n[[allow]]\ntarget = \"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48\"\n"),
        7,
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48",
    );
    assert_policy_refused(
        "short-address",
        &format!("{HEAD}routers = [\"0x1234\"]\n"),
        5,
        "0x1234",
    );
}

#[test]
fn bad_amount_is_refused_with_its_line() {
    assert_policy_refused(
        "bad-amount",
        &format!("{HEAD}\n[limits]\nmax_value_per_tx = \"0.05 eth\"\n"),
        7,
        "0.05 eth",
    );
    // A decimal amount needs `decimals`.
    assert_policy_refused(
        "amount-without-decimals",
        &format!(
            "{HEAD}\n[[limits.spend]]\nasset = \"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48\"\namount = \"2.5\"\nwindow = \"24h\"\n"
        ),
        8,
        "2.5",
    );
}

#[test]
fn bad_duration_is_refused_with_its_line() {
    assert_policy_refused(
        "bad-duration",
        &format!(
            "{HEAD}\n[[limits.spend]]\nasset = \"native\"\namount = \"1 ether\"\nwindow = \"1 fortnight\"\n"
        ),
        9,
        "1 fortnight",
    );
    assert_policy_refused(
        "bad-expires-in",
        "name = \"t\"\nprofile = \"full-access\"\nexpires_in = \"24hours\"\n",
        3,
        "24hours",
    );
}

#[test]
fn unknown_profile_is_refused_with_its_line() {
    assert_policy_refused(
        "unknown-profile",
        "name = \"t\"\nprofile = \"admin\"\nexpires_at = \"2027-12-31T00:00:00Z\"\n",
        2,
        "admin",
    );
}

#[test]
fn bad_time_zone_is_refused_with_its_line() {
    assert_policy_refused(
        "bad-time-zone",
        &format!("{HEAD}\n[schedule]\nhours = \"09:00-17:00\"\ntimezone = \"Mars/Olympus_Mons\"\n"),
        8,
        "Mars/Olympus_Mons",
    );
}

#[test]
fn read_only_policy_with_allow_rules_is_refused() {
    let policy = "name = \"t\"\nprofile = \"read-only\"\nexpires_at = \"2027-12-31T00:00:00Z\"\n\n[[allow]]\ntarget = \"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48\"\n";
    let out = check("read-only-allow", policy, ONE_READ, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_json_line_is_an_error_and_later_lines_are_decided() {
    let requests = format!(
        "{}{{\"at\": \"2026-12-01T10:00:00Z\", \"request\": {{\"jsonrpc\": \"2.0\", \n\n{}",
        ONE_READ, ONE_READ
    );
    let out = check("malformed-json", &format!("{HEAD}\n"), &requests, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let lines: Vec<Value> = non_blank_lines(&stdout)
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON output"))
        .collect();
    assert_eq!(lines.len(), 3, "one output per non-blank line: {stdout}");
    assert_eq!(lines[0]["decision"], "allow", "{stdout}");
    assert_eq!(lines[1]["decision"], "error", "{stdout}");
    assert_eq!(
        lines[1]["error"]["code"], -32700,
        "malformed JSON is a parse error: {stdout}"
    );
    assert_eq!(lines[2]["decision"], "allow", "{stdout}");
    assert!(
        stderr.contains("line 2"),
        "stderr names the request line: {stderr}"
    );
}

#[test]
fn request_without_method_is_an_error() {
    let requests = "{\"at\": \"2026-12-01T10:00:00Z\", \"request\": {\"jsonrpc\": \"2.0\", \"id\": 1, \"params\": []}}\n";
    let out = check("no-method", &format!("{HEAD}\n"), requests, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["decision"], "error", "{stdout}");
}

#[test]
fn missing_policy_flag_is_a_usage_error() {
    let dir = scratch("missing-policy");
    fs::write(dir.join("requests.jsonl"), ONE_READ).expect("write requests");
    let out = valet()
        .args(["policy", "check"])
        .arg(dir.join("requests.jsonl"))
        .output()
        .expect("run valet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--policy"),
        "stderr names the missing flag: {stderr}"
    );
}

#[test]
fn missing_policy_file_is_an_error() {
    let dir = scratch("missing-policy-file");
    fs::write(dir.join("requests.jsonl"), ONE_READ).expect("write requests");
    let out = valet()
        .args(["policy", "check", "--policy"])
        .arg(dir.join("nope.toml"))
        .arg(dir.join("requests.jsonl"))
        .output()
        .expect("run valet");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
