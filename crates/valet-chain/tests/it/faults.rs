//! Upstream faults. A closed port is real; a node answering garbage, the wrong id or never
//! answering cannot be produced with a real anvil, so a tiny HTTP server in this file plays
//! that node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use valet_chain::{Error, Upstream};

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn closed_port_fails_fast_and_clearly() {
    let port = closed_port().await;
    let url = format!("http://user:hunter2@127.0.0.1:{port}/v3/secret-api-key");
    let started = Instant::now();
    let err = Upstream::connect(&url).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_unavailable());
    let text = err.to_string();
    assert!(text.starts_with("upstream node unreachable"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("secret-api-key"),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn bad_urls_are_refused_without_echoing_them() {
    for url in [
        "not a url",
        "ftp://user:hunter2@example.invalid/",
        "unix:/tmp/socket",
    ] {
        match Upstream::connect(url).await {
            Err(e @ Error::InvalidUrl(_)) => assert!(!e.to_string().contains("hunter2"), "{e}"),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

/// What the fake node answers to one request: HTTP status and raw body, or silence.
enum Reply {
    Http(u16, Vec<u8>),
    /// Accepts the request and never answers.
    Hang,
    /// Announces a longer body than it sends, then closes.
    Truncated,
}

/// How the fake node answers every method but `eth_chainId`.
type Answer = fn(&Value) -> Reply;

type Script = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;

/// A fake node on 127.0.0.1: each request's JSON-RPC method and id go to `script`.
async fn fake_node(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(stream, Arc::clone(&script)));
        }
    });
    url
}

async fn serve(mut stream: TcpStream, script: Script) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            break buf[end + 4..end + 4 + length].to_vec();
        }
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    match script(&method, &request["id"]) {
        Reply::Http(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Reply::Truncated => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n{\"jsonrpc\":")
                .await;
        }
    }
    let _ = stream.shutdown().await;
}

fn ok(id: &Value, result: Value) -> Reply {
    Reply::Http(
        200,
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result})).unwrap(),
    )
}

/// A fake node that answers `eth_chainId` properly and everything else with `other`.
async fn node_answering(other: Answer) -> Upstream {
    let url = fake_node(Arc::new(move |method, id| {
        if method == "eth_chainId" {
            ok(id, json!("0x1"))
        } else {
            other(id)
        }
    }))
    .await;
    Upstream::connect_with_timeouts(&url, Duration::from_millis(500), Duration::from_millis(500))
        .await
        .unwrap()
}

#[tokio::test]
async fn non_json_answer_is_a_bad_response() {
    let url = fake_node(Arc::new(|_, _| {
        Reply::Http(200, b"hello, I am not JSON".to_vec())
    }))
    .await;
    match Upstream::connect(&url).await {
        Err(Error::BadResponse(reason)) => assert!(reason.contains("not JSON"), "{reason}"),
        other => panic!("expected BadResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_rpc_answers_are_bad_responses() {
    let cases: [(&str, Answer); 8] = [
        ("html error page", |_| {
            Reply::Http(502, b"<html>bad gateway</html>".to_vec())
        }),
        ("empty body", |_| Reply::Http(200, Vec::new())),
        ("wrong id", |_| ok(&json!(999_999), json!("0x1"))),
        ("neither result nor error", |id| {
            Reply::Http(
                200,
                serde_json::to_vec(&json!({"jsonrpc":"2.0","id":id})).unwrap(),
            )
        }),
        ("error without code", |id| {
            Reply::Http(
                200,
                serde_json::to_vec(&json!({"jsonrpc":"2.0","id":id,"error":{"message":"x"}}))
                    .unwrap(),
            )
        }),
        ("batch instead of object", |id| {
            Reply::Http(
                200,
                serde_json::to_vec(&json!([{"jsonrpc":"2.0","id":id,"result":"0x1"}])).unwrap(),
            )
        }),
        ("deeply nested JSON", |_| {
            Reply::Http(200, "[".repeat(100_000).into_bytes())
        }),
        ("a number where a quantity belongs", |id| ok(id, json!(12))),
    ];
    for (name, reply) in cases {
        let upstream = node_answering(reply).await;
        let nonce = upstream.pending_nonce(Address::ZERO).await;
        assert!(
            matches!(nonce, Err(Error::BadResponse(_))),
            "{name}: {nonce:?}"
        );
    }
}

#[tokio::test]
async fn wrongly_shaped_results_are_bad_responses() {
    let upstream = node_answering(|id| ok(id, json!({"baseFeePerGas": "lots"}))).await;
    assert!(matches!(upstream.fees().await, Err(Error::BadResponse(_))));
    let upstream = node_answering(|id| ok(id, json!("0xnothex"))).await;
    assert!(matches!(
        upstream.send_raw(&[1, 2, 3]).await,
        Err(Error::BadResponse(_))
    ));
    let upstream = node_answering(|id| ok(id, json!({"status": "0x2"}))).await;
    assert!(matches!(
        upstream.receipt_status(Default::default()).await,
        Err(Error::BadResponse(_))
    ));
    let upstream = node_answering(|id| ok(id, json!({"no": "status"}))).await;
    assert!(matches!(
        upstream.receipt_status(Default::default()).await,
        Err(Error::BadResponse(_))
    ));
    let upstream = node_answering(|id| ok(id, json!("0x10000000000000000"))).await; // 2^64
    assert!(matches!(
        upstream
            .estimate_gas(Address::ZERO, None, Default::default(), &Default::default())
            .await,
        Err(Error::BadResponse(_))
    ));
}

#[tokio::test]
async fn node_errors_with_http_error_status_pass_through() {
    // Rate-limiting proxies answer 429 with a JSON-RPC error object: keep the node's error.
    let upstream = node_answering(|id| {
        let body = json!({"jsonrpc":"2.0","id":id,"error":{"code":-32005,"message":"rate limited","data":{"retry":1}}});
        Reply::Http(429, serde_json::to_vec(&body).unwrap())
    })
    .await;
    match upstream.forward("eth_blockNumber", &json!([])).await {
        Err(Error::Node {
            code: -32005,
            message,
            data,
        }) => {
            assert_eq!(message, "rate limited");
            assert_eq!(data, Some(json!({"retry": 1})));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_node_times_out() {
    let upstream = node_answering(|_| Reply::Hang).await;
    let started = Instant::now();
    let err = upstream
        .forward("eth_blockNumber", &json!([]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(err.is_unavailable());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_connection_cut_mid_answer_is_an_error_not_a_panic() {
    let upstream = node_answering(|_| Reply::Truncated).await;
    let err = upstream
        .forward("eth_blockNumber", &json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport(_) | Error::BadResponse(_)),
        "{err:?}"
    );
}
