//! The audit hash chain: the canonical form of a record, the entry hash, the verifier and the
//! JSON-lines export format.

use crate::error::{Error, Result};
use crate::model::{AuditEntry, AuditRecord};
use alloy_primitives::{B256, Keccak256, hex, keccak256};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The hash of an audit entry:
/// `keccak256(seq as 8 bytes big-endian ‖ prev_hash ‖ keccak256(canonical JSON of record))`.
/// The first entry's `prev_hash` is [`B256::ZERO`].
///
/// The canonical JSON of a record is one object without whitespace, keys in this order:
///
/// ```text
/// {"at":"2026-11-29T10:00:00.000000000Z","request_id":"…","actor":"…","key_id":"…"|null,
///  "action":"…","decision":"…"|null,"violations":["…",…],"detail":…,"client_ip":"…"|null,
///  "tx_hash":"0x…"|null}
/// ```
///
/// `at` is RFC 3339 in UTC with exactly nine fractional digits; `tx_hash` is `0x` and 64
/// lowercase hex digits; `detail` is written with every object's keys sorted (by their UTF-8
/// bytes, recursively); strings are escaped as `serde_json` escapes them (`"`, `\` and control
/// characters; everything else as UTF-8) and numbers printed as `serde_json` prints them.
/// Amounts inside `detail` are decimal strings by convention, so no precision is at stake.
pub fn entry_hash(seq: u64, prev_hash: B256, record: &AuditRecord) -> B256 {
    let body = keccak256(canonical_json(record).as_bytes());
    let mut h = Keccak256::new();
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(body);
    h.finalize()
}

/// The canonical JSON text of a record (see [`entry_hash`]).
pub fn canonical_json(record: &AuditRecord) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"at\":");
    push_string(&mut out, &rfc3339(record.at));
    out.push_str(",\"request_id\":");
    push_string(&mut out, &record.request_id);
    out.push_str(",\"actor\":");
    push_string(&mut out, &record.actor);
    out.push_str(",\"key_id\":");
    push_opt_string(&mut out, record.key_id.as_deref());
    out.push_str(",\"action\":");
    push_string(&mut out, &record.action);
    out.push_str(",\"decision\":");
    push_opt_string(&mut out, record.decision.as_deref());
    out.push_str(",\"violations\":[");
    for (i, v) in record.violations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, v);
    }
    out.push_str("],\"detail\":");
    push_sorted(&mut out, &record.detail);
    out.push_str(",\"client_ip\":");
    push_opt_string(&mut out, record.client_ip.as_deref());
    out.push_str(",\"tx_hash\":");
    push_opt_string(
        &mut out,
        record.tx_hash.map(hex::encode_prefixed).as_deref(),
    );
    out.push('}');
    out
}

/// RFC 3339 in UTC with nine fractional digits, as hashed and exported.
fn rfc3339(ts: Timestamp) -> String {
    format!("{ts:.9}")
}

fn push_string(out: &mut String, s: &str) {
    // `Value`'s Display is serde_json's compact writer, which cannot fail.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

fn push_opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_string(out, s),
        None => out.push_str("null"),
    }
}

/// Writes a JSON value with every object's keys sorted, whatever order the map keeps.
fn push_sorted(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_sorted(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                push_sorted(out, &map[k.as_str()]);
            }
            out.push('}');
        }
        Value::String(s) => push_string(out, s),
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&v.to_string()),
    }
}

/// Why an audit log failed verification, and the first entry that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log invalid at seq {first_bad_seq}: {reason}")]
pub struct VerifyError {
    /// The first seq that is missing, out of place, or does not hash correctly.
    pub first_bad_seq: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Verifies a whole log, given in seq order from the first entry: seqs contiguous from 1,
/// each `prev_hash` equal to the previous entry's hash (zero for the first), each hash
/// recomputed with [`entry_hash`], and the entry at the checkpoint's seq carrying the
/// checkpoint's hash. Returns how many entries were verified.
///
/// A log may run ahead of its checkpoint (the checkpoint is written after each commit, so a
/// crash in between leaves it one group behind); a checkpoint ahead of the log means the log
/// was truncated and is reported with `first_bad_seq` = the first missing seq.
pub fn verify(
    entries: &[AuditEntry],
    checkpoint: Option<(u64, B256)>,
) -> std::result::Result<u64, VerifyError> {
    let bad = |seq: u64, reason: String| VerifyError {
        first_bad_seq: seq,
        reason,
    };
    let mut prev = B256::ZERO;
    let mut expected = 1u64;
    for e in entries {
        if e.seq != expected {
            let reason = if e.seq > expected {
                format!(
                    "entry {expected} is missing (the next entry is seq {})",
                    e.seq
                )
            } else {
                format!(
                    "seq {} appears again or out of order after seq {}",
                    e.seq,
                    expected - 1
                )
            };
            return Err(bad(expected, reason));
        }
        if e.prev_hash != prev {
            return Err(bad(
                expected,
                "prev_hash is not the previous entry's hash (an entry was removed, inserted or moved)"
                    .into(),
            ));
        }
        if entry_hash(e.seq, e.prev_hash, &e.record) != e.hash {
            return Err(bad(
                expected,
                "hash does not match the entry's contents (edited)".into(),
            ));
        }
        prev = e.hash;
        expected += 1;
    }
    let last = expected - 1;
    if let Some((cseq, chash)) = checkpoint {
        if cseq > last {
            return Err(bad(
                last + 1,
                format!(
                    "the checkpoint records seq {cseq} but the log ends at seq {last} (truncated)"
                ),
            ));
        }
        if cseq >= 1 {
            let at = &entries[(cseq - 1) as usize];
            if at.hash != chash {
                return Err(bad(
                    cseq,
                    format!(
                        "hash {} differs from the checkpoint's {} (the log was rewritten)",
                        at.hash, chash
                    ),
                ));
            }
        }
    }
    Ok(last)
}

/// An entry in the JSON-lines export format: one object with `seq`, `at`, `request_id`,
/// `actor`, `key_id`, `action`, `decision`, `violations`, `detail`, `client_ip`, `tx_hash`,
/// `prev_hash` and `hash` (hashes `0x`-hex, `at` RFC 3339 with nanoseconds).
pub fn entry_to_json(e: &AuditEntry) -> Value {
    let r = &e.record;
    json!({
        "seq": e.seq,
        "at": rfc3339(r.at),
        "request_id": r.request_id,
        "actor": r.actor,
        "key_id": r.key_id,
        "action": r.action,
        "decision": r.decision,
        "violations": r.violations,
        "detail": r.detail,
        "client_ip": r.client_ip,
        "tx_hash": r.tx_hash.map(hex::encode_prefixed),
        "prev_hash": hex::encode_prefixed(e.prev_hash),
        "hash": hex::encode_prefixed(e.hash),
    })
}

/// Parses one line of the export format written by [`entry_to_json`]. The hashes are taken as
/// written; run [`verify`] to check them.
pub fn entry_from_json(v: &Value) -> Result<AuditEntry> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::corrupt("audit export line", "not a JSON object"))?;
    let seq = obj.get("seq").and_then(Value::as_u64).ok_or_else(|| {
        Error::corrupt(
            "audit export line",
            "seq is missing or not an unsigned integer",
        )
    })?;
    let what = |field: &str| format!("audit export seq {seq}: {field}");
    let field = |name: &str| obj.get(name).unwrap_or(&Value::Null);
    let string = |name: &str| -> Result<String> {
        field(name)
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::corrupt(what(name), "missing or not a string"))
    };
    let opt_string = |name: &str| -> Result<Option<String>> {
        match field(name) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(Error::corrupt(what(name), "not a string or null")),
        }
    };
    let hash = |name: &str, s: &str| -> Result<B256> {
        s.parse::<B256>()
            .map_err(|e| Error::corrupt(what(name), e.to_string()))
    };
    let at = string("at")?
        .parse::<Timestamp>()
        .map_err(|e| Error::corrupt(what("at"), e.to_string()))?;
    let violations = match field("violations") {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::corrupt(what("violations"), "an item is not a string"))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => {
            return Err(Error::corrupt(
                what("violations"),
                "missing or not an array",
            ));
        }
    };
    let tx_hash = opt_string("tx_hash")?
        .map(|s| hash("tx_hash", &s))
        .transpose()?;
    Ok(AuditEntry {
        seq,
        record: AuditRecord {
            at,
            request_id: string("request_id")?,
            actor: string("actor")?,
            key_id: opt_string("key_id")?,
            action: string("action")?,
            decision: opt_string("decision")?,
            violations,
            detail: obj
                .get("detail")
                .cloned()
                .unwrap_or(Value::Object(Map::new())),
            client_ip: opt_string("client_ip")?,
            tx_hash,
        },
        prev_hash: hash("prev_hash", &string("prev_hash")?)?,
        hash: hash("hash", &string("hash")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> AuditRecord {
        AuditRecord {
            at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
            request_id: format!("r-{n}"),
            actor: "agent".into(),
            key_id: Some("k1".into()),
            action: "eth_sendTransaction".into(),
            decision: Some("allow".into()),
            violations: vec![],
            detail: json!({"n": n, "z": {"b": 1, "a": [true, null]}, "amount": "1000"}),
            client_ip: Some("127.0.0.1".into()),
            tx_hash: None,
        }
    }

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = B256::ZERO;
        (1..=n)
            .map(|seq| {
                let record = record(seq);
                let hash = entry_hash(seq, prev, &record);
                let e = AuditEntry {
                    seq,
                    record,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn canonical_json_has_fixed_order_sorted_detail_and_nanosecond_time() {
        let mut r = record(1);
        r.tx_hash = Some(B256::repeat_byte(0xab));
        r.violations = vec!["spend_limit_exceeded".into(), "rate_limited".into()];
        r.detail = json!({"z": 1, "a": {"y": "\"q\"\n", "b": 2.5}});
        assert_eq!(
            canonical_json(&r),
            concat!(
                r#"{"at":"2027-01-15T08:00:01.000000000Z","request_id":"r-1","actor":"agent","#,
                r#""key_id":"k1","action":"eth_sendTransaction","decision":"allow","#,
                r#""violations":["spend_limit_exceeded","rate_limited"],"#,
                r#""detail":{"a":{"b":2.5,"y":"\"q\"\n"},"z":1},"client_ip":"127.0.0.1","#,
                r#""tx_hash":"0xabababababababababababababababababababababababababababababababab"}"#
            )
        );
    }

    #[test]
    fn entry_hash_is_pinned() {
        // Pinned so that a change to the canonical form (which would orphan every existing
        // log) cannot go unnoticed. Cross-checked with foundry's cast:
        //   body=$(cast keccak '<canonical JSON>')
        //   cast keccak 0x0000000000000001<64 zeros>${body#0x}
        let h = entry_hash(1, B256::ZERO, &record(1));
        assert_eq!(
            hex::encode_prefixed(h),
            "0x916194cb4bdafc98904adc98e0efdcf4502bdbeb029fe45c5db7f7e10935e734",
            "update only together with a migration of existing logs"
        );
    }

    #[test]
    fn entry_hash_covers_seq_prev_and_every_field() {
        let base = entry_hash(1, B256::ZERO, &record(1));
        assert_ne!(base, entry_hash(2, B256::ZERO, &record(1)));
        assert_ne!(base, entry_hash(1, B256::repeat_byte(1), &record(1)));
        let mut r = record(1);
        r.at = Timestamp::from_nanosecond(r.at.as_nanosecond() + 1).unwrap();
        assert_ne!(base, entry_hash(1, B256::ZERO, &r));
        let mut r = record(1);
        r.key_id = None;
        assert_ne!(base, entry_hash(1, B256::ZERO, &r));
        let mut r = record(1);
        r.detail["n"] = json!(2);
        assert_ne!(base, entry_hash(1, B256::ZERO, &r));
    }

    #[test]
    fn a_clean_log_verifies() {
        let log = chain(5);
        assert_eq!(verify(&log, None), Ok(5));
        assert_eq!(verify(&log, Some((5, log[4].hash))), Ok(5));
        assert_eq!(
            verify(&log, Some((3, log[2].hash))),
            Ok(5),
            "log ahead of checkpoint"
        );
        assert_eq!(verify(&[], None), Ok(0));
    }

    #[test]
    fn verify_names_the_first_bad_seq() {
        let log = chain(6);
        let head = Some((6, log[5].hash));

        let mut edited = log.clone();
        edited[2].record.detail["n"] = json!(99);
        assert_eq!(verify(&edited, head).unwrap_err().first_bad_seq, 3);

        let mut deleted = log.clone();
        deleted.remove(3);
        assert_eq!(verify(&deleted, head).unwrap_err().first_bad_seq, 4);

        let mut renumbered = deleted.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(verify(&renumbered, None).unwrap_err().first_bad_seq, 4);

        let mut swapped = log.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped, head).unwrap_err().first_bad_seq, 2);
        let mut contents_swapped = log.clone();
        let r1 = contents_swapped[1].record.clone();
        contents_swapped[1].record = contents_swapped[2].record.clone();
        contents_swapped[2].record = r1;
        assert_eq!(
            verify(&contents_swapped, head).unwrap_err().first_bad_seq,
            2
        );

        let truncated = &log[..4];
        let err = verify(truncated, head).unwrap_err();
        assert_eq!(err.first_bad_seq, 5);
        assert!(err.reason.contains("truncated"), "{err}");
        assert_eq!(verify(&[], head).unwrap_err().first_bad_seq, 1);

        // Rewritten wholesale (every hash recomputed): only the checkpoint can tell.
        let mut rewritten = log.clone();
        rewritten[0].record.actor = "admin".into();
        let mut prev = B256::ZERO;
        for e in &mut rewritten {
            e.prev_hash = prev;
            e.hash = entry_hash(e.seq, prev, &e.record);
            prev = e.hash;
        }
        assert_eq!(verify(&rewritten, None), Ok(6));
        assert_eq!(verify(&rewritten, head).unwrap_err().first_bad_seq, 6);
    }

    #[test]
    fn export_round_trips() {
        let mut log = chain(2);
        log[1].record.tx_hash = Some(B256::repeat_byte(7));
        log[1].record.key_id = None;
        log[1].record.decision = None;
        log[1].record.violations = vec!["undecodable".into()];
        for e in &log {
            let line = entry_to_json(e).to_string();
            let back = entry_from_json(&serde_json::from_str(&line).unwrap()).unwrap();
            assert_eq!(&back, e);
        }
        let v = entry_to_json(&log[0]);
        for k in [
            "seq",
            "at",
            "request_id",
            "actor",
            "key_id",
            "action",
            "decision",
            "violations",
            "detail",
            "client_ip",
            "tx_hash",
            "prev_hash",
            "hash",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let err = entry_from_json(&json!({"seq": 3, "at": "yesterday"})).unwrap_err();
        assert!(err.to_string().contains("seq 3: at"), "{err}");
    }
}
