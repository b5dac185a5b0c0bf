//! `open`: URLs, file creation and modes, errors that name what failed and hide credentials.

use crate::harness::{admin, key};
use valet_store::{AuditFilter, Error};

#[tokio::test]
async fn a_new_sqlite_file_is_private_and_reopens_without_remigrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valet.db");
    let url = format!("sqlite://{}", path.display());
    let store = valet_store::open(&url).await.unwrap();
    store
        .insert_key(&key("k1", 0), admin("r1", Some("k1"), "key.issue"))
        .await
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["valet.db", "valet.db-wal", "valet.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    drop(store);
    let again = valet_store::open(&url).await.unwrap();
    assert!(again.key("k1").await.unwrap().is_some());
    assert_eq!(again.audit(&AuditFilter::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_in_memory_store_works() {
    let store = valet_store::open("sqlite::memory:").await.unwrap();
    store
        .insert_key(&key("k1", 0), admin("r1", Some("k1"), "key.issue"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(store.key("k1").await.unwrap().is_some());
    assert_eq!(store.audit_head().await.unwrap().map(|h| h.0), Some(1));
}

#[tokio::test]
async fn errors_name_the_path_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("valet.db");
    let err = valet_store::open(&format!("sqlite://{}", missing.display()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    eprintln!("{err}");

    let err = valet_store::open("mysql://root:hunter2@localhost/valet")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    // A malformed PostgreSQL URL: refused without echoing it.
    let err = valet_store::open("postgres://valet:s3cr3t-pw@127.0.0.1:notaport/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"), "{err:?}");
}

#[tokio::test]
async fn a_refused_postgres_login_names_the_server_not_the_password() {
    let Ok(base) = std::env::var(crate::harness::ENV) else {
        return;
    };
    let mut url = url_with_password(&base, "wr0ng-s3cr3t");
    url.push_str(if url.contains('?') {
        "&application_name=x"
    } else {
        "?application_name=x"
    });
    let err = valet_store::open(&url).await.err().unwrap();
    let msg = format!("{err} {err:?}");
    assert!(
        msg.contains("127.0.0.1") || msg.contains("localhost"),
        "{msg}"
    );
    assert!(!msg.contains("wr0ng-s3cr3t"), "{msg}");
    eprintln!("{err}");
}

/// `base` with its password replaced.
fn url_with_password(base: &str, password: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}
