//! The dashboard as the server serves it: the page and its scripts under a strict CSP, the
//! forgery checks on state-changing admin requests, and the usage endpoints the page draws.
//! (The page itself runs in a real browser in `valet-cli`'s `tests/browser/dashboard.mjs`.)

use crate::env::{ADMIN, Env};
use serde_json::{Value, json};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[tokio::test]
async fn the_page_and_its_assets_carry_a_strict_csp_and_revalidate_by_etag() {
    let env = Env::start().await;
    let page = env
        .client
        .get(format!("{}/", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-security-policy"], CSP);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let etag = h["etag"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );

    // Every asset the page and its modules name loads, same headers; nothing from elsewhere.
    let mut total = html.len();
    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/api.js", "text/javascript"),
        ("/assets/feed.js", "text/javascript"),
        ("/assets/keys.js", "text/javascript"),
        ("/assets/chart.js", "text/javascript"),
        ("/assets/util.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let r = env
            .client
            .get(format!("{}{path}", env.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert_eq!(r.headers()["content-security-policy"], CSP, "{path}");
        let body = r.text().await.unwrap();
        // The SVG namespace is a name, not a place anything is loaded from.
        let urls = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !urls.contains("http://") && !urls.contains("https://"),
            "{path} names no other origin"
        );
        total += body.len();
    }
    assert!(total < 300 * 1024, "the first load is {total} bytes");
    println!("dashboard first load: {total} bytes uncompressed");

    let again = env
        .client
        .get(format!("{}/", env.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let missing = env
        .client
        .get(format!("{}/assets/nope.js", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// A POST to the admin API with the right token and the given extra headers and body.
async fn admin_post(
    env: &Env,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = env
        .client
        .post(format!("{}/api/v1{path}", env.url))
        .bearer_auth(ADMIN);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn admin_posts_from_another_origin_or_with_a_form_body_are_refused() {
    let env = Env::start().await;
    let (id, _) = env
        .issue("profile = \"read-only\"\nexpires_in = \"1h\"\n")
        .await;
    let host = env.url.trim_start_matches("http://").to_string();
    let revoke = format!("/keys/{id}/revoke");

    for forged in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("origin", &*format!("http://{host}.evil.example"))],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let (status, body) = admin_post(&env, &revoke, &forged, None).await;
        assert_eq!(status, 403, "{forged:?}: {body}");
    }
    let key = env
        .admin(reqwest::Method::GET, &format!("/keys/{id}"))
        .await;
    assert_eq!(key["status"], "active", "a refused request changed nothing");

    // A form can only send text/plain, URL-encoded or multipart bodies.
    let policy =
        json!({ "policy_toml": "profile = \"read-only\"\nexpires_in = \"1h\"\n" }).to_string();
    for kind in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, _) = admin_post(&env, "/keys", &[("content-type", kind)], Some(&policy)).await;
        assert_eq!(status, 403, "{kind}");
    }
    // What the command line, scripts and the dashboard send still works.
    let (status, body) = admin_post(
        &env,
        "/keys",
        &[("content-type", "application/json")],
        Some(&policy),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin_post(
        &env,
        "/keys",
        &[("content-type", "application/toml")],
        Some("profile = \"read-only\"\nexpires_in = \"1h\"\n"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let same = format!("http://{host}");
    let (status, body) = admin_post(
        &env,
        &revoke,
        &[("origin", &same), ("sec-fetch-site", "same-origin")],
        None,
    )
    .await;
    assert_eq!((status, &body["revoked"]), (200, &json!(true)), "{body}");
    let (status, body) = admin_post(&env, "/keys/revoke-all", &[], None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn usage_reports_what_remains_where_requests_came_from_and_the_spend_series() {
    let env = Env::start().await;
    let (id, key) = env
        .issue(
            r#"
            profile = "full-access"
            expires_in = "1h"
            [[limits.spend]]
            asset = "native"
            amount = "1 ether"
            window = "24h"
            [limits.rate]
            max_requests = 100
            window = "1m"
            "#,
        )
        .await;
    let params = json!([{
        "to": "0x00000000000000000000000000000000000000bb", "value": "0x2386f26fc10000", "gas": "0x5208",
        "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1"
    }]);
    let resp = env.rpc(&key, "eth_signTransaction", params).await;
    assert!(resp["result"].is_string(), "{resp}");
    env.rpc(&key, "eth_sign", json!([env.wallet, "0x00"])).await;

    let u = env
        .admin(reqwest::Method::GET, &format!("/keys/{id}/usage"))
        .await;
    let spent = 10_000_000_000_000_000u128 + 21_000 * 1_000_000_000;
    assert_eq!(u["limits"][0]["asset"], "native", "{u}");
    assert_eq!(u["limits"][0]["cap"], "1000000000000000000");
    assert_eq!(u["limits"][0]["spent"], spent.to_string());
    assert_eq!(
        u["limits"][0]["remaining"],
        (10u128.pow(18) - spent).to_string()
    );
    assert_eq!(u["rate"]["remaining"], 98);
    assert_eq!(u["ips"], json!(["127.0.0.1"]));
    assert!(u["last_used_at"].is_string());
    assert_eq!(u["spend_series"].as_array().unwrap().len(), 1);
    assert_eq!(u["spend_series"][0]["amount"], spent.to_string());
    let recent = u["recent"].as_array().unwrap();
    assert_eq!(recent[0]["action"], "eth_sign", "newest first: {u}");
    assert_eq!(recent[0]["violations"], json!(["method_not_allowed"]));
    assert_eq!(u["key"]["id"], id);
    assert!(u["policy_toml"].as_str().unwrap().contains("full-access"));
    assert_eq!(u["permissions"]["profile"], "full-access");

    let all = env.admin(reqwest::Method::GET, "/usage").await;
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id.as_str())
        .unwrap();
    assert_eq!(mine["limits"], u["limits"]);
    assert_eq!(mine["ips"], u["ips"]);
    assert!(mine.get("recent").is_none() && mine.get("permissions").is_none());

    let missing = env
        .client
        .get(format!("{}/api/v1/keys/knope/usage", env.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let anonymous = env
        .client
        .get(format!("{}/api/v1/usage", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
