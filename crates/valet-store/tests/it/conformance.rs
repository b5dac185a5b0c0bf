//! The conformance suite: every test runs against SQLite (always) and PostgreSQL (when
//! `VALET_TEST_DATABASE_URL` is set), each on a fresh database.

use crate::harness::*;
use alloy_primitives::{Address, B256, U256};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use valet_policy::Asset;
use valet_store::{
    AuditFilter, Batch, Checkpoint, Error, GroupCommit, KeyMode, NonceClaim, Store, entry_hash,
    verify,
};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Harness::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = crate::harness::Harness::postgres().await {
                        super::$name(h).await
                    }
                }
            )*
        }
    };
}

conformance!(
    keys_insert_get_and_list_in_creation_order,
    a_duplicate_key_id_is_refused_and_writes_nothing,
    revoke_key_revokes_once_and_audits_only_then,
    revoke_all_revokes_the_rest_and_counts_them,
    suspend_and_resume_are_reversible_audited_and_never_touch_revoked_keys,
    session_signer_round_trips,
    audit_filters_by_action,
    append_chains_entries_in_order,
    a_batch_whose_audit_insert_fails_leaves_no_reservation,
    a_reservation_for_an_unknown_key_fails_the_whole_batch,
    invalid_records_are_refused_before_the_database,
    reservations_are_strictly_inside_the_window_and_releases_remove_them,
    audit_filters_by_key_since_and_latest_n,
    audit_records_round_trip_exactly,
    the_database_refuses_to_update_or_delete_audit_entries,
    verify_passes_a_clean_log,
    verify_detects_an_edited_entry,
    verify_detects_a_deleted_middle_entry,
    verify_detects_a_reordered_pair,
    verify_detects_truncation_against_the_checkpoint,
    group_commit_500_concurrent_submits_are_durable_and_chained,
    group_commit_fails_closed_after_a_failed_commit,
    group_commit_halts_when_the_checkpoint_cannot_be_written,
    group_commit_refuses_an_invalid_batch_without_halting,
    two_handles_to_one_database_never_fork_the_chain,
    decide_reserves_exactly_up_to_a_cap_across_two_handles,
    decide_reads_revocation_and_counts_requests,
    decide_sums_reservations_per_window_and_asset,
    next_nonce_is_distinct_and_consecutive_across_two_handles,
    reap_nonces_rewinds_only_an_abandoned_lowest_nonce,
);

async fn keys_insert_get_and_list_in_creation_order(h: Harness) {
    let s = &h.store;
    let mut onchain = key("kb", 20);
    onchain.mode = KeyMode::Onchain;
    onchain.wallet = Address::repeat_byte(0x42);
    let (ka, kc) = (key("ka", 30), key("kc", 10));
    let e1 = s
        .insert_key(&ka, admin("r1", Some("ka"), "key.issue"))
        .await
        .unwrap();
    let e2 = s
        .insert_key(&onchain, admin("r2", Some("kb"), "key.issue"))
        .await
        .unwrap();
    s.insert_key(&kc, admin("r3", Some("kc"), "key.issue"))
        .await
        .unwrap();
    assert_eq!((e1.seq, e2.seq), (1, 2));
    assert_eq!(e2.prev_hash, e1.hash);

    assert_eq!(s.key("ka").await.unwrap(), Some(ka.clone()));
    assert_eq!(s.key("kb").await.unwrap(), Some(onchain.clone()));
    assert_eq!(s.key("nope").await.unwrap(), None);
    let ids: Vec<String> = s.keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["kc", "kb", "ka"]);

    let log = s.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0], e1);
    assert_eq!(s.audit_head().await.unwrap(), Some((3, log[2].hash)));
}

async fn a_duplicate_key_id_is_refused_and_writes_nothing(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r1", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let mut other = key("k1", 5);
    other.name = "impostor".into();
    let err = s
        .insert_key(&other, admin("r2", Some("k1"), "key.issue"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateKey { id } if id == "k1"),
        "{err}"
    );
    assert!(err.to_string().contains("k1"), "{err}");
    assert_eq!(s.key("k1").await.unwrap().unwrap().name, "key k1");
    assert_eq!(s.audit(&AuditFilter::default()).await.unwrap().len(), 1);
    // The chain goes on where it was.
    let e = s
        .insert_key(&key("k2", 0), admin("r3", Some("k2"), "key.issue"))
        .await
        .unwrap();
    assert_eq!(e.seq, 2);
}

async fn revoke_key_revokes_once_and_audits_only_then(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r1", Some("k1"), "key.issue"))
        .await
        .unwrap();
    assert!(
        s.revoke_key("k1", at(50), admin("r2", Some("k1"), "key.revoke"))
            .await
            .unwrap()
    );
    assert_eq!(s.key("k1").await.unwrap().unwrap().revoked_at, Some(at(50)));
    // Already revoked: false, the first time stands, nothing audited.
    assert!(
        !s.revoke_key("k1", at(60), admin("r3", Some("k1"), "key.revoke"))
            .await
            .unwrap()
    );
    assert_eq!(s.key("k1").await.unwrap().unwrap().revoked_at, Some(at(50)));
    // Unknown: false, nothing audited.
    assert!(
        !s.revoke_key("zz", at(60), admin("r4", Some("zz"), "key.revoke"))
            .await
            .unwrap()
    );
    let log = s.audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.record.request_id.as_str()).collect();
    assert_eq!(actions, ["r1", "r2"]);
    assert_eq!(verify(&log, None), Ok(2));
}

async fn revoke_all_revokes_the_rest_and_counts_them(h: Harness) {
    let s = &h.store;
    for (i, id) in ["k1", "k2", "k3"].into_iter().enumerate() {
        s.insert_key(&key(id, i as i64), admin("r", Some(id), "key.issue"))
            .await
            .unwrap();
    }
    assert!(
        s.revoke_key("k2", at(10), admin("r", Some("k2"), "key.revoke"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.revoke_all(at(20), admin("r-all", None, "key.revoke_all"))
            .await
            .unwrap(),
        2
    );
    let revoked: Vec<_> = s
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.revoked_at)
        .collect();
    assert_eq!(revoked, [Some(at(20)), Some(at(10)), Some(at(20))]);
    // Nothing left to revoke: 0, and the kill switch is still audited.
    assert_eq!(
        s.revoke_all(at(30), admin("r-all-2", None, "key.revoke_all"))
            .await
            .unwrap(),
        0
    );
    let log = s.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(log[5].record.request_id, "r-all-2");
    assert_eq!(verify(&log, None), Ok(6));
}

async fn suspend_and_resume_are_reversible_audited_and_never_touch_revoked_keys(h: Harness) {
    let s = &h.store;
    for id in ["k1", "k2"] {
        s.insert_key(&key(id, 0), admin("r", Some(id), "key.issue"))
            .await
            .unwrap();
    }
    assert!(
        s.suspend_key("k1", at(5), admin("s1", Some("k1"), "key.suspend"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.key("k1").await.unwrap().unwrap().suspended_at,
        Some(at(5))
    );
    // Already suspended: false, the first time stands, nothing audited.
    assert!(
        !s.suspend_key("k1", at(6), admin("s2", Some("k1"), "key.suspend"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.key("k1").await.unwrap().unwrap().suspended_at,
        Some(at(5))
    );
    assert!(
        s.resume_key("k1", admin("u1", Some("k1"), "key.resume"))
            .await
            .unwrap()
    );
    assert_eq!(s.key("k1").await.unwrap().unwrap().suspended_at, None);
    // Not suspended: false.
    assert!(
        !s.resume_key("k1", admin("u2", Some("k1"), "key.resume"))
            .await
            .unwrap()
    );
    // A revoked key can be neither suspended nor resumed (revocation is final).
    s.revoke_key("k2", at(7), admin("v", Some("k2"), "key.revoke"))
        .await
        .unwrap();
    assert!(
        !s.suspend_key("k2", at(8), admin("s3", Some("k2"), "key.suspend"))
            .await
            .unwrap()
    );
    assert!(
        !s.suspend_key("zz", at(8), admin("s4", Some("zz"), "key.suspend"))
            .await
            .unwrap()
    );
    let log = s.audit(&AuditFilter::default()).await.unwrap();
    let ids: Vec<_> = log.iter().map(|e| e.record.request_id.as_str()).collect();
    assert_eq!(ids, ["r", "r", "s1", "u1", "v"]);
    assert_eq!(verify(&log, None), Ok(5));
}

async fn session_signer_round_trips(h: Harness) {
    let s = &h.store;
    let mut k = key("k1", 0);
    k.mode = KeyMode::Onchain;
    k.session_signer = Some(Address::repeat_byte(0x5e));
    s.insert_key(&k, admin("r", Some("k1"), "key.issue"))
        .await
        .unwrap();
    assert_eq!(s.key("k1").await.unwrap().unwrap(), k);
}

async fn audit_filters_by_action(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let mut records = vec![
        record("a1", Some("k1"), "anomaly"),
        record("r1", Some("k1"), "eth_call"),
        record("a2", None, "anomaly"),
    ];
    records[2].at = at(500);
    s.append(Batch {
        audit: records,
        ..Batch::default()
    })
    .await
    .unwrap();
    let ids = |f: AuditFilter| {
        let s = s.clone();
        async move {
            s.audit(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.record.request_id)
                .collect::<Vec<_>>()
        }
    };
    let anomaly = || Some("anomaly".to_owned());
    assert_eq!(
        ids(AuditFilter {
            action: anomaly(),
            ..Default::default()
        })
        .await,
        ["a1", "a2"]
    );
    assert_eq!(
        ids(AuditFilter {
            action: anomaly(),
            key_id: Some("k1".into()),
            ..Default::default()
        })
        .await,
        ["a1"]
    );
    assert_eq!(
        ids(AuditFilter {
            action: anomaly(),
            since: Some(at(400)),
            ..Default::default()
        })
        .await,
        ["a2"]
    );
    assert_eq!(
        ids(AuditFilter {
            action: anomaly(),
            limit: Some(1),
            ..Default::default()
        })
        .await,
        ["a2"]
    );
}

async fn append_chains_entries_in_order(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let batch = Batch {
        reservations: vec![reservation("k1", "r1", 100, 7)],
        releases: vec![],
        audit: vec![
            record("r1", Some("k1"), "eth_sendTransaction"),
            record("r2", Some("k1"), "eth_call"),
            record("r3", Some("k1"), "personal_sign"),
        ],
    };
    let entries = s.append(batch.clone()).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4]);
    let head = s.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(&head[1..], &entries[..]);
    let mut prev = head[0].hash;
    for (e, r) in entries.iter().zip(&batch.audit) {
        assert_eq!(&e.record, r);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.hash, entry_hash(e.seq, e.prev_hash, r));
        prev = e.hash;
    }
    assert_eq!(s.audit_head().await.unwrap(), Some((4, prev)));
    // An empty batch writes nothing.
    assert_eq!(s.append(Batch::default()).await.unwrap(), vec![]);
    assert_eq!(s.audit_head().await.unwrap(), Some((4, prev)));
}

async fn a_batch_whose_audit_insert_fails_leaves_no_reservation(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    s.append(Batch {
        reservations: vec![reservation("k1", "r-old", 10, 5)],
        releases: vec![],
        audit: vec![record("r-old", Some("k1"), "eth_sendTransaction")],
    })
    .await
    .unwrap();
    let head = s.audit_head().await.unwrap();
    h.fail_audit_action_boom().await;

    let err = s
        .append(Batch {
            reservations: vec![
                reservation("k1", "r1", 100, 1),
                reservation("k1", "r1", 100, 2),
            ],
            releases: vec!["r-old".into()],
            audit: vec![
                record("r1", Some("k1"), "eth_sendTransaction"),
                record("r1", Some("k1"), "boom"),
            ],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err}");
    assert!(
        err.to_string().contains("audit seq 3..=4"),
        "names the seqs: {err}"
    );

    // Nothing of it: no new reservation, the release undone, no audit entry.
    assert_eq!(h.count("reservations").await, 1);
    let left = s.reservations("k1", at(0)).await.unwrap();
    assert_eq!(left, vec![(at(10), Asset::Native, U256::from(5))]);
    assert_eq!(s.audit_head().await.unwrap(), head);
    // And the store carries on at the next seq.
    let e = s.append(Batch {
        audit: vec![record("r2", Some("k1"), "eth_call")],
        ..Batch::default()
    });
    assert_eq!(e.await.unwrap()[0].seq, 3);
}

async fn a_reservation_for_an_unknown_key_fails_the_whole_batch(h: Harness) {
    let s = &h.store;
    let err = s
        .append(Batch {
            reservations: vec![reservation("ghost", "r1", 100, 1)],
            releases: vec![],
            audit: vec![record("r1", Some("ghost"), "eth_sendTransaction")],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "names the key: {err}");
    assert_eq!(h.count("reservations").await, 0);
    assert_eq!(s.audit_head().await.unwrap(), None);
}

async fn invalid_records_are_refused_before_the_database(h: Harness) {
    let s = &h.store;
    let mut bad = record("r1", None, "eth_call");
    bad.decision = Some("maybe".into());
    let err = s
        .append(Batch {
            audit: vec![bad],
            ..Batch::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("r1"), "{err}");

    let mut far = key("k-far", 0);
    far.expires_at = "3000-01-01T00:00:00Z".parse().unwrap();
    let err = s
        .insert_key(&far, admin("r2", Some("k-far"), "key.issue"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains("k-far") && err.to_string().contains("expires_at"),
        "{err}"
    );

    let mut empty = record("r3", None, "eth_call");
    empty.actor = String::new();
    assert!(s.revoke_all(at(1), empty).await.is_err());
    assert_eq!(s.audit_head().await.unwrap(), None);
    assert_eq!(h.count("keys").await, 0);
}

async fn reservations_are_strictly_inside_the_window_and_releases_remove_them(h: Harness) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    s.insert_key(&key("k2", 0), admin("r0", Some("k2"), "key.issue"))
        .await
        .unwrap();
    let usdc = Asset::Token(Address::repeat_byte(0xcc));
    let mut big = reservation("k1", "r-big", 300, 0);
    big.asset = usdc;
    big.amount = U256::MAX;
    s.append(Batch {
        reservations: vec![
            reservation("k1", "r-edge", 100, 1),
            reservation("k1", "r-in", 200, 2),
            big,
            reservation("k2", "r-other", 250, 4),
            reservation("k1", "r-gone", 260, 8),
        ],
        releases: vec![],
        audit: vec![],
    })
    .await
    .unwrap();
    // Strictly after `since`: the one at exactly `since` is out.
    let got = s.reservations("k1", at(100)).await.unwrap();
    assert_eq!(
        got,
        vec![
            (at(200), Asset::Native, U256::from(2)),
            (at(260), Asset::Native, U256::from(8)),
            (at(300), usdc, U256::MAX),
        ]
    );
    assert_eq!(s.reservations("k1", at(99)).await.unwrap().len(), 4);
    assert_eq!(s.reservations("k1", at(300)).await.unwrap(), vec![]);

    s.append(Batch {
        releases: vec!["r-gone".into(), "r-never-reserved".into()],
        audit: vec![record("r-gone", Some("k1"), "tx.result")],
        ..Batch::default()
    })
    .await
    .unwrap();
    let got = s.reservations("k1", at(100)).await.unwrap();
    assert_eq!(
        got,
        vec![
            (at(200), Asset::Native, U256::from(2)),
            (at(300), usdc, U256::MAX)
        ]
    );
    assert_eq!(
        s.reservations("k2", at(0)).await.unwrap(),
        vec![(at(250), Asset::Native, U256::from(4))]
    );
    assert_eq!(s.reservations("nobody", at(0)).await.unwrap(), vec![]);
    // A window reaching before the representable range still works.
    assert_eq!(
        s.reservations("k2", "1000-01-01T00:00:00Z".parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn audit_filters_by_key_since_and_latest_n(h: Harness) {
    let s = &h.store;
    let mut audit = Vec::new();
    for i in 0..10i64 {
        let k = if i % 2 == 0 { "ka" } else { "kb" };
        let mut r = record(&format!("r{i}"), Some(k), "eth_call");
        r.at = at(i * 10);
        audit.push(r);
    }
    audit.push(admin("r-admin", None, "key.revoke_all"));
    s.append(Batch {
        audit,
        ..Batch::default()
    })
    .await
    .unwrap();
    let seqs = |v: Vec<valet_store::AuditEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();

    let all = s.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(seqs(all), (1..=11).collect::<Vec<_>>());
    let ka = AuditFilter {
        key_id: Some("ka".into()),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(s.audit(&ka).await.unwrap()), [1, 3, 5, 7, 9]);
    let since = AuditFilter {
        since: Some(at(60)),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(s.audit(&since).await.unwrap()), [7, 8, 9, 10, 11]);
    let latest = AuditFilter {
        limit: Some(3),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(s.audit(&latest).await.unwrap()), [9, 10, 11]);
    let all_three = AuditFilter {
        key_id: Some("kb".into()),
        since: Some(at(30)),
        limit: Some(2),
        action: None,
    };
    assert_eq!(seqs(s.audit(&all_three).await.unwrap()), [8, 10]);
    let none = AuditFilter {
        limit: Some(0),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(s.audit(&none).await.unwrap()), Vec::<u64>::new());
    let huge = AuditFilter {
        limit: Some(u64::MAX),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit(&huge).await.unwrap().len(), 11);
}

async fn audit_records_round_trip_exactly(h: Harness) {
    let s = &h.store;
    let mut full = record("r-full", Some("k1"), "eth_sendTransaction");
    full.at = "2026-11-29T10:11:12.123456789Z".parse().unwrap();
    full.tx_hash = Some(B256::repeat_byte(0x5e));
    full.violations = vec!["spend_limit_exceeded".into(), "rate_limited".into()];
    full.decision = Some("deny".into());
    full.detail = json!({
        "floats": [0.1, 1e-300, 123456.789, -2.5e17, 5e-324, 1.7976931348623157e308],
        "nested": {"z": [1, {"b": null, "a": true}], "a": "ünïcødé \u{1F511} \"quoted\"\n"},
        "big": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
        "int": -9007199254740993i64,
    });
    let mut bare = admin("r-bare", None, "key.revoke_all");
    bare.detail = json!({});
    bare.client_ip = None;
    bare.request_id = String::new();
    let written = s
        .append(Batch {
            audit: vec![full, bare],
            ..Batch::default()
        })
        .await
        .unwrap();
    let read = s.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(read, written);
    assert_eq!(verify(&read, None), Ok(2));
}

async fn the_database_refuses_to_update_or_delete_audit_entries(h: Harness) {
    let s = &h.store;
    s.append(Batch {
        audit: vec![record("r1", None, "eth_call")],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert!(
        h.exec("UPDATE audit SET detail = '{}' WHERE seq = 1")
            .await
            .is_err()
    );
    assert!(h.exec("DELETE FROM audit WHERE seq = 1").await.is_err());
    assert_eq!(
        verify(&s.audit(&AuditFilter::default()).await.unwrap(), None),
        Ok(1)
    );
}

/// Five entries (after one key) and a checkpoint at the head.
async fn five_entries(h: &Harness) -> (u64, B256) {
    let s = &h.store;
    s.insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let audit = (1..=4)
        .map(|i| record(&format!("r{i}"), Some("k1"), "eth_call"))
        .collect();
    s.append(Batch {
        audit,
        ..Batch::default()
    })
    .await
    .unwrap();
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!(head.0, 5);
    h.checkpoint().write(head.0, head.1).unwrap();
    h.unguard_audit().await;
    head
}

async fn verify_log(h: &Harness) -> Result<u64, valet_store::VerifyError> {
    let log = h.store.audit(&AuditFilter::default()).await.unwrap();
    verify(&log, h.checkpoint().read().unwrap())
}

async fn verify_passes_a_clean_log(h: Harness) {
    five_entries(&h).await;
    assert_eq!(verify_log(&h).await, Ok(5));
    // Log ahead of the checkpoint (crash between commit and checkpoint write): still valid.
    h.store
        .append(Batch {
            audit: vec![record("r5", None, "eth_call")],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(verify_log(&h).await, Ok(6));
}

async fn verify_detects_an_edited_entry(h: Harness) {
    five_entries(&h).await;
    h.exec(r#"UPDATE audit SET detail = '{"summary":"nothing to see"}' WHERE seq = 3"#)
        .await
        .unwrap();
    let err = verify_log(&h).await.unwrap_err();
    assert_eq!(err.first_bad_seq, 3, "{err}");
}

async fn verify_detects_a_deleted_middle_entry(h: Harness) {
    five_entries(&h).await;
    h.exec("DELETE FROM audit WHERE seq = 3").await.unwrap();
    let err = verify_log(&h).await.unwrap_err();
    assert_eq!(err.first_bad_seq, 3, "{err}");
}

async fn verify_detects_a_reordered_pair(h: Harness) {
    five_entries(&h).await;
    // Swap the whole contents (hashes included) of rows 2 and 3.
    h.exec(
        "UPDATE audit SET seq = 1002 WHERE seq = 2; \
         UPDATE audit SET seq = 2 WHERE seq = 3; \
         UPDATE audit SET seq = 3 WHERE seq = 1002;",
    )
    .await
    .unwrap();
    let err = verify_log(&h).await.unwrap_err();
    assert_eq!(err.first_bad_seq, 2, "{err}");
    // Swapping back, then swapping only the records (hashes left in place), is caught too.
    h.exec(
        r#"UPDATE audit SET seq = 1002 WHERE seq = 2;
           UPDATE audit SET seq = 2 WHERE seq = 3;
           UPDATE audit SET seq = 3 WHERE seq = 1002;
           UPDATE audit SET request_id = 'r2', detail = '{"summary":"eth_call by r2","value":"1000"}' WHERE seq = 2;
           UPDATE audit SET request_id = 'r1', detail = '{"summary":"eth_call by r1","value":"1000"}' WHERE seq = 3;"#,
    )
    .await
    .unwrap();
    let log = h.store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        (
            log[1].record.request_id.as_str(),
            log[2].record.request_id.as_str()
        ),
        ("r2", "r1")
    );
    assert_eq!(verify_log(&h).await.unwrap_err().first_bad_seq, 2);
}

async fn verify_detects_truncation_against_the_checkpoint(h: Harness) {
    five_entries(&h).await;
    h.exec("DELETE FROM audit WHERE seq > 3").await.unwrap();
    let err = verify_log(&h).await.unwrap_err();
    assert_eq!(err.first_bad_seq, 4, "{err}");
    assert!(err.reason.contains("truncated"), "{err}");
    // Without the checkpoint the shortened log would look fine: that is what it is for.
    let log = h.store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(verify(&log, None), Ok(3));
}

async fn group_commit_500_concurrent_submits_are_durable_and_chained(h: Harness) {
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let gc = Arc::new(GroupCommit::new(Arc::clone(&h.store), Some(h.checkpoint())));
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move {
                let rid = format!("r{i}");
                gc.submit(Batch {
                    reservations: vec![reservation("k1", &rid, 100 + i, 1)],
                    releases: vec![],
                    audit: vec![record(&rid, Some("k1"), "eth_sendTransaction")],
                })
                .await
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let entries = t.await.unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].record.request_id,
            format!("r{i}"),
            "each gets its own entry"
        );
        seqs.insert(entries[0].seq);
    }
    assert_eq!(seqs, (2..=501).collect::<BTreeSet<u64>>());
    let log = h.store.audit(&AuditFilter::default()).await.unwrap();
    let checkpoint = h.checkpoint().read().unwrap();
    assert_eq!(checkpoint, Some((501, log[500].hash)));
    assert_eq!(verify(&log, checkpoint), Ok(501));
    Arc::into_inner(gc).unwrap().shutdown().await;

    // Close everything and open the database afresh: all of it is there.
    let Harness { store, url, .. } = &h;
    assert_eq!(
        Arc::strong_count(store),
        1,
        "the writer let go of the store"
    );
    let reopened = valet_store::open(url).await.unwrap();
    assert_eq!(reopened.audit(&AuditFilter::default()).await.unwrap(), log);
    assert_eq!(reopened.reservations("k1", at(0)).await.unwrap().len(), 500);
    if h.engine == Engine::Sqlite {
        let (path, checkpoint) = (h.db_path(), h.checkpoint());
        let Harness { store, dir, .. } = h;
        drop((store, reopened));
        let fresh = valet_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let again = fresh.audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(verify(&again, checkpoint.read().unwrap()), Ok(501));
        drop(dir);
    }
}

async fn group_commit_fails_closed_after_a_failed_commit(h: Harness) {
    let gc = GroupCommit::new(Arc::clone(&h.store), Some(h.checkpoint()));
    gc.submit(Batch {
        audit: vec![record("r1", None, "eth_call")],
        ..Batch::default()
    })
    .await
    .unwrap();
    h.fail_audit_action_boom().await;
    let err = gc
        .submit(Batch {
            audit: vec![record("r2", None, "boom")],
            ..Batch::default()
        })
        .await;
    let later = gc
        .submit(Batch {
            audit: vec![record("r3", None, "eth_call")],
            ..Batch::default()
        })
        .await;
    if h.engine == Engine::Postgres {
        // The server owns durability: only the failed group fails, and the next commits.
        assert!(matches!(err, Err(Error::Database(_))), "{err:?}");
        assert!(gc.halted().is_none());
        assert_eq!(later.unwrap()[0].seq, 2);
        assert_eq!(h.checkpoint().read().unwrap().map(|(s, _)| s), Some(2));
        return;
    }
    assert!(matches!(err, Err(Error::Halted { .. })), "{err:?}");
    assert!(gc.halted().is_some());
    // Fail closed: a perfectly good batch is refused from now on.
    assert!(matches!(later, Err(Error::Halted { .. })), "{later:?}");
    assert_eq!(h.store.audit_head().await.unwrap().map(|(s, _)| s), Some(1));
    assert_eq!(h.checkpoint().read().unwrap().map(|(s, _)| s), Some(1));
}

async fn group_commit_halts_when_the_checkpoint_cannot_be_written(h: Harness) {
    let nowhere = Checkpoint::new(h.dir.path().join("missing-dir").join("audit.checkpoint"));
    let gc = GroupCommit::new(Arc::clone(&h.store), Some(nowhere));
    let batch = || Batch {
        audit: vec![record("r1", None, "eth_call")],
        ..Batch::default()
    };
    let err = gc.submit(batch()).await.unwrap_err();
    assert!(matches!(err, Error::Halted { .. }), "{err}");
    assert!(
        err.to_string().contains("missing-dir"),
        "names the path: {err}"
    );
    assert!(matches!(
        gc.submit(batch()).await,
        Err(Error::Halted { .. })
    ));
    // The first group did commit (no one was told so); nothing after it.
    assert_eq!(h.store.audit_head().await.unwrap().map(|(s, _)| s), Some(1));
}

async fn group_commit_refuses_an_invalid_batch_without_halting(h: Harness) {
    let gc = GroupCommit::new(Arc::clone(&h.store), None);
    let mut bad = record("r1", None, "eth_call");
    bad.decision = Some("perhaps".into());
    let err = gc
        .submit(Batch {
            audit: vec![bad],
            ..Batch::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    // A NUL in untrusted text (here a method name) would make PostgreSQL fail a whole group.
    let nul = Batch {
        audit: vec![record("r1", None, "eth_\0call")],
        ..Batch::default()
    };
    assert!(matches!(gc.submit(nul).await, Err(Error::Invalid { .. })));
    let ok = gc
        .submit(Batch {
            audit: vec![record("r2", None, "eth_call")],
            ..Batch::default()
        })
        .await;
    assert_eq!(ok.unwrap()[0].seq, 1);
    assert!(gc.halted().is_none());
}

async fn two_handles_to_one_database_never_fork_the_chain(h: Harness) {
    let other = valet_store::open(&h.url).await.unwrap();
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&h.store), other];
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move {
                let rid = format!("r{i}");
                s.append(Batch {
                    reservations: vec![reservation("k1", &rid, 100, 1)],
                    releases: vec![],
                    audit: vec![
                        record(&rid, Some("k1"), "eth_sendTransaction"),
                        record(&rid, Some("k1"), "tx.result"),
                    ],
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().unwrap();
        assert_eq!(e[1].seq, e[0].seq + 1, "a batch's entries are contiguous");
        assert_eq!(e[1].prev_hash, e[0].hash);
    }
    let log = stores[1].audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(verify(&log, None), Ok(401));
    assert_eq!(stores[0].audit(&AuditFilter::default()).await.unwrap(), log);
}

/// A cap of 10 units, 60 concurrent decisions of 1 unit each through two handles (as two
/// processes would): exactly 10 reserve, whatever the interleaving.
async fn decide_reserves_exactly_up_to_a_cap_across_two_handles(h: Harness) {
    let other = valet_store::open(&h.url).await.unwrap();
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&h.store), other];
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let s = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move {
                // The node already counts 3 transactions of the sender.
                let claim = NonceClaim {
                    sender: Address::repeat_byte(0x55),
                    chain_id: 1,
                    floor: 3,
                };
                let truth = s
                    .decide(
                        "k1",
                        &format!("r{i}"),
                        &[3600],
                        None,
                        Some(claim),
                        &mut |t| {
                            let used: U256 = t.spent.iter().map(|r| r.2).sum();
                            let allowed = used + U256::from(1) <= U256::from(10);
                            allowed.then(|| vec![(Asset::Native, U256::from(1))])
                        },
                    )
                    .await
                    .unwrap()
                    .expect("the key exists");
                assert!(!truth.refused());
                truth.nonce
            })
        })
        .collect();
    let mut nonces = BTreeSet::new();
    for t in tasks {
        if let Some(nonce) = t.await.unwrap() {
            assert!(nonces.insert(nonce), "nonce {nonce} twice");
        }
    }
    assert_eq!(
        nonces,
        (3..13).collect(),
        "one nonce per allowed decision, consecutive"
    );
    assert_eq!(h.count("reservations").await, 10);
    assert_eq!(h.count("pending").await, 10, "pending as of the decision");
    let none = stores[1]
        .decide("nope", "r", &[60], None, None, &mut |_| {
            panic!("an unknown key is never decided")
        })
        .await
        .unwrap();
    assert_eq!(none, None);
}

async fn decide_reads_revocation_and_counts_requests(h: Harness) {
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let decide = |count: bool| {
        let store = Arc::clone(&h.store);
        async move {
            store
                .decide("k1", "r", &[], count.then_some(60), None, &mut |_| None)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(decide(true).await.requests, 0);
    assert_eq!(decide(true).await.requests, 1);
    let third = decide(false).await;
    assert_eq!(third.requests, 0, "requests are read only when counted");
    assert!(
        third.now > t0() - jiff::SignedDuration::from_hours(24 * 365),
        "the database clock"
    );
    h.store
        .revoke_key("k1", at(1), admin("r1", Some("k1"), "key.revoke"))
        .await
        .unwrap();
    let revoked = decide(false).await;
    assert!(revoked.revoked && revoked.refused());
    assert_eq!(h.count("key_requests").await, 2);
}

async fn next_nonce_is_distinct_and_consecutive_across_two_handles(h: Harness) {
    let other = valet_store::open(&h.url).await.unwrap();
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&h.store), other];
    let sender = Address::repeat_byte(0x55);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = Arc::clone(&stores[i % 2]);
            // The first allocations say the node already counts 7 transactions.
            tokio::spawn(async move { s.next_nonce(sender, 1, 7, Some("k1")).await.unwrap() })
        })
        .collect();
    let mut nonces = BTreeSet::new();
    for t in tasks {
        assert!(
            nonces.insert(t.await.unwrap()),
            "a nonce was handed out twice"
        );
    }
    assert_eq!(nonces, (7..107).collect());
    assert_eq!(h.count("pending").await, 100);
    let other_chain = stores[0].next_nonce(sender, 2, 0, None).await.unwrap();
    assert_eq!(other_chain, 0, "each chain has its own nonces");
}

async fn reap_nonces_rewinds_only_an_abandoned_lowest_nonce(h: Harness) {
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let sender = Address::repeat_byte(0x55);
    for _ in 0..5 {
        h.store.next_nonce(sender, 1, 0, Some("k1")).await.unwrap();
    }
    // Nonces 0 and 1 mined, 2 unknown to the node but fresh: nothing is taken back.
    let rewound = h.store.reap_nonces(sender, 1, 2, 2, 30).await.unwrap();
    assert!(!rewound);
    assert_eq!(h.count("pending").await, 3);
    assert_eq!(h.store.next_nonce(sender, 1, 0, None).await.unwrap(), 5);
    // With no grace at all, nonce 2 is abandoned: 2.. are forgotten and 2 is next.
    let rewound = h.store.reap_nonces(sender, 1, 2, 2, 0).await.unwrap();
    assert!(rewound);
    assert_eq!(h.count("pending").await, 0);
    assert_eq!(h.store.next_nonce(sender, 1, 0, None).await.unwrap(), 2);
}

/// Totals per window and asset, releases excluded, huge windows clamped, big sums exact.
async fn decide_sums_reservations_per_window_and_asset(h: Harness) {
    h.store
        .insert_key(&key("k1", 0), admin("r0", Some("k1"), "key.issue"))
        .await
        .unwrap();
    let token = Asset::Token(Address::repeat_byte(7));
    let big = U256::from(u128::MAX);
    let windows = [60, 3600, u64::MAX];
    for (i, spend) in [
        vec![(Asset::Native, U256::from(1))],
        vec![(Asset::Native, U256::from(2)), (token, big)],
        vec![(token, big)],
        vec![(Asset::Native, U256::from(100))],
    ]
    .into_iter()
    .enumerate()
    {
        h.store
            .decide("k1", &format!("r{i}"), &windows, None, None, &mut |_| {
                Some(spend.clone())
            })
            .await
            .unwrap();
    }
    h.store
        .append(Batch {
            releases: vec!["r3".into()],
            ..Batch::default()
        })
        .await
        .unwrap();
    let truth = h
        .store
        .decide("k1", "r9", &windows, None, None, &mut |_| None)
        .await
        .unwrap()
        .unwrap();
    for w in windows {
        let total = |asset| {
            truth
                .spent
                .iter()
                .find(|(tw, a, _)| *tw == w && *a == asset)
                .map(|(_, _, t)| *t)
        };
        assert_eq!(total(Asset::Native), Some(U256::from(3)), "window {w}");
        assert_eq!(total(token), Some(big * U256::from(2)), "window {w}");
    }
    assert_eq!(truth.spent.len(), 6, "{:?}", truth.spent);
}
