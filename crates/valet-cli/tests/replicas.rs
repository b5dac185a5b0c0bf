//! Several gateways, one truth (SPEC section 7): three real `valet serve` processes on one
//! home and one PostgreSQL, in front of anvil, act as one gateway.
//!
//! - a 1 000-unit cap, 600 concurrent `eth_signTransaction` of 10 % each, round-robin: exactly
//!   10 signed, exactly 10 reservations in the store;
//! - 300 `eth_signTransaction` over the three: nonces distinct and consecutive;
//! - revocation by the command line, and the kill switch through one replica's admin API: the
//!   very next request on every replica is `4100`, whether the policy would allow it, deny
//!   it, or it only reads;
//! - `kill -9` of one replica and a crash-restart of PostgreSQL (a private cluster on its own
//!   port, so nobody else's server is touched) under load: service resumes by itself, every
//!   signature a client received has its durable audit entry and reservation, `valet audit
//!   verify` passes.
//!
//! Each test works in its own PostgreSQL schema of `VALET_TEST_DATABASE_URL`'s database and
//! skips (saying so) when that variable is unset.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "cli/support.rs"]
mod support;

use alloy::{consensus::TxEnvelope, eips::eip2718::Decodable2718};
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    fs,
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};
use support::{Home, code, free_port};

const ENV: &str = "VALET_TEST_DATABASE_URL";
/// Where the test transactions go (never broadcast).
const TO: &str = "0x000000000000000000000000000000000000dEaD";
const GAS: u64 = 21_000;
const MAX_FEE: u64 = 1_000_000_000;
/// The cap of the capped key, in wei.
const CAP: u128 = 1_000_000_000_000_000_000;

/// A fresh schema in the test database (left behind if a test fails, for a look).
struct Schema {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl Schema {
    async fn new() -> Option<Self> {
        let Ok(base) = std::env::var(ENV) else {
            eprintln!("replicas: {ENV} is not set; the multi-replica tests were skipped");
            return None;
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "valet_replicas_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            jiff::Timestamp::now().as_millisecond()
        );
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .expect("create a schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Some(Self { admin, name, url })
    }

    /// How many rows `table` holds.
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {}.{table}", self.name);
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.admin)
            .await
            .unwrap();
        n
    }

    async fn drop(self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await;
    }
}

/// One `valet serve` of the shared home, killed when dropped.
struct Replica {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Replica {
    fn start(home: &Home, n: usize) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = home.tmp.path().join(format!("serve-{n}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = home
            .command(&["serve", "--listen", &listen])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("valet serve starts");
        let mut replica = Replica {
            child,
            log,
            url: format!("http://{listen}/rpc"),
        };
        let addr: SocketAddr = listen.parse().unwrap();
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("replica {n} exited ({status}):\n{}", replica.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "replica {n} did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn rpc(&self, client: &reqwest::Client, key: &str, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let resp = client
            .post(&self.url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the gateway answers: {e}\n{}", self.log()));
        resp.json().await.expect("the gateway answers JSON")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A home on the schema's database, anvil upstream, and three replicas on it.
struct Cluster {
    home: Home,
    replicas: Vec<Replica>,
    chain_id: u64,
    _anvil: valet_chain::Anvil,
}

impl Cluster {
    async fn start(schema: &Schema) -> Self {
        let anvil = valet_chain::Anvil::spawn()
            .await
            .expect("anvil starts (run ./tools/install.sh)");
        let (home, _) = Home::init(&anvil.url());
        let config = home.path().join("valet.toml");
        let text = fs::read_to_string(&config).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.starts_with("database_url") {
                true => format!("database_url = {:?}", schema.url),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        fs::write(&config, text + "\n").unwrap();
        Self {
            chain_id: anvil.chain_id(),
            home,
            replicas: vec![],
            _anvil: anvil,
        }
    }

    fn serve(&mut self) {
        self.replicas = (0..3).map(|n| Replica::start(&self.home, n)).collect();
    }

    /// Issues a key allowing native sends to [`TO`] under a cap of `cap` wei a day.
    fn issue(&self, name: &str, cap: u128) -> (String, String) {
        self.issue_with(name, cap, "")
    }

    /// [`issue`](Self::issue) with `limits` (TOML lines of the `[limits]` table) added.
    fn issue_with(&self, name: &str, cap: u128, limits: &str) -> (String, String) {
        let policy = self.home.write(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\nprofile = \"custom\"\nchains = [{}]\nexpires_in = \"1h\"\n\
                 [limits]\n{limits}\n\
                 [[allow]]\ntarget = \"{TO}\"\n\
                 [[limits.spend]]\nasset = \"native\"\namount = \"{cap} wei\"\nwindow = \"24h\"\n",
                self.chain_id
            ),
        );
        let issued = self.home.issue(&["--name", name, "--policy", &policy]);
        let id = issued["id"].as_str().unwrap().to_string();
        (id, issued["agent_key"].as_str().unwrap().to_string())
    }

    /// `eth_signTransaction` params of a send worth `total` wei with its gas.
    fn sign_params(&self, total: u128) -> Value {
        let value = total - u128::from(GAS * MAX_FEE);
        json!([{
            "from": self.home.wallet,
            "to": TO,
            "value": format!("0x{value:x}"),
            "gas": format!("0x{GAS:x}"),
            "maxFeePerGas": format!("0x{MAX_FEE:x}"),
            "maxPriorityFeePerGas": "0x1",
            "chainId": format!("0x{:x}", self.chain_id),
            "type": "0x2",
        }])
    }

    /// `n` concurrent `eth_signTransaction`s of `total` wei, round-robin over the replicas;
    /// the answers in request order.
    async fn sign_many(&self, key: &str, n: usize, total: u128) -> Vec<Value> {
        let client = reqwest::Client::new();
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "eth_signTransaction",
            "params": self.sign_params(total),
        });
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let request = client
                    .post(&self.replicas[i % self.replicas.len()].url)
                    .bearer_auth(key)
                    .json(&body);
                tokio::spawn(async move {
                    let resp = request.send().await.expect("the gateway answers");
                    resp.json::<Value>()
                        .await
                        .expect("the gateway answers JSON")
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(n);
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    }
}

/// The nonce of a signed raw transaction.
fn nonce_of(raw: &str) -> u64 {
    let bytes = alloy::primitives::hex::decode(raw).unwrap();
    let tx = TxEnvelope::decode_2718(&mut bytes.as_slice()).expect("a signed transaction");
    alloy::consensus::Transaction::nonce(&tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_hold_one_cap_and_hand_out_consecutive_nonces() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let mut cluster = Cluster::start(&schema).await;
    let (capped_id, capped) = cluster.issue("capped", CAP);
    let (_, open) = cluster.issue("open", CAP * 1_000_000);
    cluster.serve();

    // 600 requests at 10 % of the cap: exactly 10 signed, the rest denied by the cap.
    let answers = cluster.sign_many(&capped, 600, CAP / 10).await;
    let signed: Vec<&Value> = answers
        .iter()
        .filter(|a| a.get("result").is_some())
        .collect();
    for a in answers.iter().filter(|a| a.get("result").is_none()) {
        assert_eq!(code(a), Some(4001), "{a}");
        assert_eq!(support::violations(a), ["spend_limit_exceeded"], "{a}");
    }
    assert_eq!(
        signed.len(),
        10,
        "exactly 10 of 600 fit the cap across three replicas"
    );
    let reserved: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.reservations WHERE key_id = $1 AND NOT released",
        schema.name
    )))
    .bind(&capped_id)
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    assert_eq!(reserved.0, 10, "exactly 10 reservations in the store");

    // 300 more signatures over the three: nonces distinct and consecutive after those 10.
    let answers = cluster.sign_many(&open, 300, CAP / 1000).await;
    let mut nonces = BTreeSet::new();
    for a in &answers {
        let raw = a["result"]
            .as_str()
            .unwrap_or_else(|| panic!("signed: {a}"));
        assert!(nonces.insert(nonce_of(raw)), "a nonce was handed out twice");
    }
    for a in &signed {
        assert!(nonces.insert(nonce_of(a["result"].as_str().unwrap())));
    }
    assert_eq!(
        nonces,
        (0..310).collect(),
        "consecutive from the node's count"
    );
    assert_eq!(schema.count("pending").await, 310);

    let verify = cluster.home.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "audit verify: {verify:?}");
    drop(cluster);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_max_pending_hold_across_replicas() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let mut cluster = Cluster::start(&schema).await;
    let (_, rated) = cluster.issue_with(
        "rated",
        CAP,
        "[limits.rate]\nmax_requests = 7\nwindow = \"1h\"",
    );
    let (_, pending) = cluster.issue_with("pending", CAP, "max_pending = 4");
    cluster.serve();

    // Every request counts, allowed or denied: 7 of 30 pass the rate limit, all replicas
    // together.
    let answers = cluster.sign_many(&rated, 30, CAP / 1000).await;
    let passed = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert_eq!(passed, 7, "{answers:?}");
    for a in answers.iter().filter(|a| a.get("result").is_none()) {
        assert_eq!(code(a), Some(-32005), "{a}");
    }
    // Signed and not yet mined: 4 of 30, all replicas together.
    let answers = cluster.sign_many(&pending, 30, CAP / 1000).await;
    let signed = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert_eq!(signed, 4, "{answers:?}");
    drop(cluster);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_replica_refuses_the_next_request_on_every_one() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let mut cluster = Cluster::start(&schema).await;
    let (id, key) = cluster.issue("revoked", CAP);
    let (_, other) = cluster.issue("killed", CAP);
    cluster.serve();
    let client = reqwest::Client::new();
    // Every replica has the key cached (and allows it) before the revocation.
    for r in &cluster.replicas {
        let ok = r
            .rpc(
                &client,
                &key,
                "eth_signTransaction",
                cluster.sign_params(CAP / 10),
            )
            .await;
        assert!(ok.get("result").is_some(), "{ok}");
    }
    // Revoked by the command line (through a gateway of the home if it finds one, else
    // straight in the store: the truth either way).
    let revoked = cluster.home.run(&["key", "revoke", &id]).code == 0;
    assert!(revoked, "the revocation committed");
    let allowed = cluster.sign_params(CAP / 10);
    let denied = cluster.sign_params(CAP * 2);
    for r in &cluster.replicas {
        for (method, params) in [
            ("eth_signTransaction", allowed.clone()),
            ("eth_signTransaction", denied.clone()),
            ("eth_blockNumber", json!([])),
            ("eth_chainId", json!([])),
        ] {
            let a = r.rpc(&client, &key, method, params).await;
            assert_eq!(code(&a), Some(4100), "{method} after revocation: {a}");
            assert_eq!(a["error"]["data"]["reason"], "revoked", "{a}");
        }
    }
    // The kill switch through replica 2's admin API: the other key, on every replica.
    for r in &cluster.replicas {
        let ok = r.rpc(&client, &other, "eth_blockNumber", json!([])).await;
        assert!(ok.get("result").is_some(), "{ok}");
    }
    let token = fs::read_to_string(cluster.home.path().join("admin.token")).unwrap();
    let kill = cluster.replicas[2]
        .url
        .replace("/rpc", "/api/v1/keys/revoke-all");
    let resp = client
        .post(kill)
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    for r in &cluster.replicas {
        for (method, params) in [
            ("eth_signTransaction", allowed.clone()),
            ("eth_chainId", json!([])),
        ] {
            let a = r.rpc(&client, &other, method, params).await;
            assert_eq!(code(&a), Some(4100), "{method} after the kill switch: {a}");
        }
    }
    drop(cluster);
    schema.drop().await;
}

/// A private PostgreSQL cluster (initdb in a temporary directory, its own port), so that this
/// test may stop and restart the server without disturbing anyone else's. `None` (said on
/// stderr) without the server binaries or the `postgres` system user to run them as.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let usable = root
            && std::path::Path::new(PG_BIN).join("initdb").exists()
            && std::process::Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
        if !usable {
            eprintln!(
                "replicas: no {PG_BIN}/initdb or no postgres user; the restart test was skipped"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let initdb = Self::as_postgres(&format!(
            "{PG_BIN}/initdb -D {} -A trust -U postgres >/dev/null",
            data.display()
        ));
        assert!(initdb, "initdb");
        let pg = Self { dir, port };
        pg.ctl("start");
        Some(pg)
    }

    fn as_postgres(script: &str) -> bool {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", "sh", "-c", script])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl start` (waiting until it accepts connections) or `pg_ctl stop -m immediate` (a
    /// crash: no clean shutdown).
    fn ctl(&self, what: &str) {
        let dir = self.dir.path();
        let script = match what {
            "start" => format!(
                "{PG_BIN}/pg_ctl -D {d}/data -l {d}/log -w -o \"-p {p} -k {d} -c listen_addresses=127.0.0.1\" start >/dev/null",
                d = dir.display(),
                p = self.port
            ),
            _ => format!(
                "{PG_BIN}/pg_ctl -D {}/data -m immediate -w stop >/dev/null",
                dir.display()
            ),
        };
        assert!(Self::as_postgres(&script), "pg_ctl {what}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let dir = self.dir.path();
        Self::as_postgres(&format!(
            "{PG_BIN}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            dir.display()
        ));
    }
}

/// Sends `eth_signTransaction`s round-robin from `workers` loops until `stop`; the signed raw
/// transactions received.
fn load(
    cluster: &Cluster,
    key: &str,
    workers: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_signTransaction",
        "params": cluster.sign_params(CAP / 1000),
    });
    let urls: Vec<String> = cluster.replicas.iter().map(|r| r.url.clone()).collect();
    (0..workers)
        .map(|w| {
            let (urls, body, key, stop) =
                (urls.clone(), body.clone(), key.to_string(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut signed = vec![];
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = client
                        .post(&urls[i % urls.len()])
                        .bearer_auth(&key)
                        .timeout(Duration::from_secs(20))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(resp) = sent else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if let Ok(v) = resp.json::<Value>().await
                        && let Some(raw) = v["result"].as_str()
                    {
                        signed.push(raw.to_string());
                    }
                }
                signed
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_and_the_database_restarted_under_load_lose_nothing() {
    if std::env::var(ENV).is_err() {
        eprintln!("replicas: {ENV} is not set; the restart test was skipped");
        return;
    }
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let schema = Schema {
        admin: sqlx::PgPool::connect(&pg.url()).await.unwrap(),
        name: "public".into(),
        url: pg.url(),
    };
    let mut cluster = Cluster::start(&schema).await;
    let (_, key) = cluster.issue("faults", CAP * 1_000_000);
    cluster.serve();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = load(&cluster, &key, 12, stop.clone());

    tokio::time::sleep(Duration::from_secs(2)).await;
    // kill -9 one replica mid-load.
    let _ = cluster.replicas[0].child.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The database crashes and comes back mid-load.
    pg.ctl("stop");
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.ctl("start");
    // Service resumes by itself: the survivors sign again.
    let client = reqwest::Client::new();
    let start = Instant::now();
    for r in &cluster.replicas[1..] {
        loop {
            let a = r
                .rpc(
                    &client,
                    &key,
                    "eth_signTransaction",
                    cluster.sign_params(CAP / 1000),
                )
                .await;
            if a.get("result").is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no recovery: {a}\n{}",
                r.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut received = vec![];
    for w in workers {
        received.extend(w.await.unwrap());
    }
    assert!(
        received.len() > 10,
        "the load ran: {} signed",
        received.len()
    );

    // Every signature a client received has its durable audit entry and reservation.
    let admin = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let audited: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT tx_hash FROM audit WHERE tx_hash IS NOT NULL AND decision = 'allow'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    let audited: BTreeSet<Vec<u8>> = audited.into_iter().map(|(h,)| h).collect();
    let (reserved,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT request_id) FROM reservations WHERE NOT released")
            .fetch_one(&admin)
            .await
            .unwrap();
    // (Nonces are not compared here: signatures never broadcast are abandoned after 30 s and
    // their nonces given back, which a slow run reaches; the first test checks them.)
    for raw in &received {
        let bytes = alloy::primitives::hex::decode(raw).unwrap();
        let tx = TxEnvelope::decode_2718(&mut bytes.as_slice()).unwrap();
        assert!(
            audited.contains(tx.tx_hash().as_slice()),
            "a signature without its audit entry"
        );
    }
    assert!(
        reserved as usize >= received.len(),
        "reserved {reserved} < signed {}",
        received.len()
    );
    let verify = cluster.home.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "audit verify: {verify:?}");
    eprintln!(
        "replicas: {} signed under faults, {} audited, {reserved} reserved",
        received.len(),
        audited.len()
    );
}
