//! Owner actions for the command line: through the running gateway's admin API when it is up
//! (so that a revocation reaches the very next request), else directly on the store.

use crate::home::Home;
use anyhow::{Context as _, bail};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use valet_store::{KeyMode, Store};

/// Where owner actions go.
pub(crate) enum Admin {
    /// The gateway is running: its API.
    Api {
        base: String,
        token: String,
        client: reqwest::Client,
        running: crate::gateways::Running,
    },
    /// No gateway: the store itself.
    Store {
        store: Arc<dyn Store>,
        wallet: alloy::primitives::Address,
        checkpoint: std::path::PathBuf,
    },
}

impl Admin {
    /// Uses this home's running gateway (found through its record in the home, wherever it
    /// listens), else opens the store. Never probes an address no gateway of this home
    /// recorded, so the admin token never goes to another home's gateway.
    pub(crate) async fn connect(home: &Home) -> anyhow::Result<Self> {
        if let Some(running) = crate::gateways::running(&home.dir).into_iter().next() {
            return Self::api(home, running).await;
        }
        let wallet = home
            .config
            .wallet
            .address
            .parse()
            .context("valet.toml: wallet.address is not an address")?;
        Ok(Self::Store {
            store: home.store(None).await?,
            wallet,
            checkpoint: home.checkpoint(),
        })
    }

    /// The admin API of a running gateway of this home.
    async fn api(home: &Home, running: crate::gateways::Running) -> anyhow::Result<Self> {
        // The identity check before the token leaves: the process that holds this home's lock
        // is the one listening at the recorded address.
        if crate::gateways::listens(running.pid, &running.listen) == Some(false) {
            bail!(
                "this home's gateway (pid {}) recorded {} but does not listen there: refusing \
                 to send it the admin token; restart `valet serve`",
                running.pid,
                running.listen
            );
        }
        let token = home.admin_token()?;
        let base = format!("{}/api/v1", running.url());
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()?;
        let probe = client
            .get(format!("{base}/keys"))
            .bearer_auth(&token)
            .send()
            .await
            .with_context(|| {
                format!(
                    "this home's gateway (pid {}, {}) did not answer",
                    running.pid, running.listen
                )
            })?;
        if !probe.status().is_success() {
            bail!(
                "this home's gateway (pid {}, {}) refused the admin token ({}): was admin.token \
                 replaced while it runs? restart `valet serve`",
                running.pid,
                running.listen,
                probe.status()
            );
        }
        Ok(Self::Api {
            base,
            token,
            client,
            running,
        })
    }

    /// The running gateway's address and chain, when there is one.
    pub(crate) fn running(&self) -> Option<&crate::gateways::Running> {
        match self {
            Self::Api { running, .. } => Some(running),
            Self::Store { .. } => None,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let Self::Api {
            base,
            token,
            client,
            ..
        } = self
        else {
            unreachable!("api call without api")
        };
        let mut req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.context("the gateway did not answer")?;
        let status = resp.status();
        let value: Value = resp
            .json()
            .await
            .context("the gateway answered with non-JSON")?;
        if !status.is_success() {
            bail!(
                "{}",
                value["error"]
                    .as_str()
                    .unwrap_or("the gateway refused the request")
            );
        }
        Ok(value)
    }

    /// True when owner actions go to the store directly (no gateway is running), so that
    /// on-chain actions need the owner's custody here.
    pub(crate) fn is_direct(&self) -> bool {
        matches!(self, Self::Store { .. })
    }

    /// Brings the out-of-database checkpoint up to the store's head after a direct write.
    async fn checkpoint(&self) -> anyhow::Result<()> {
        if let Self::Store {
            store, checkpoint, ..
        } = self
            && let Some((seq, hash)) = store.audit_head().await?
        {
            valet_store::Checkpoint::new(checkpoint).write(seq, hash)?;
        }
        Ok(())
    }

    /// Issues a key: `{id, agent_key, wallet, mode, expires_at, warning}` (and the session
    /// signer and grant transaction of an on-chain key, granted through `chain` when there is
    /// no gateway).
    pub(crate) async fn issue(
        &self,
        name: &str,
        policy_toml: &str,
        mode: KeyMode,
        chain: Option<valet_server::OwnerChain<'_>>,
    ) -> anyhow::Result<Value> {
        match self {
            Self::Api { .. } => {
                self.call(
                    reqwest::Method::POST,
                    "/keys",
                    Some(
                        json!({ "name": name, "policy_toml": policy_toml, "mode": mode.as_str() }),
                    ),
                )
                .await
            }
            Self::Store { store, wallet, .. } => {
                let k = valet_server::issue(
                    store.as_ref(),
                    *wallet,
                    Some(name),
                    policy_toml,
                    mode,
                    Timestamp::now(),
                    chain,
                )
                .await?;
                self.checkpoint().await?;
                Ok(k.to_json())
            }
        }
    }

    /// Every key.
    pub(crate) async fn keys(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Api { .. } => Ok(self
                .call(reqwest::Method::GET, "/keys", None)
                .await?
                .as_array()
                .cloned()
                .unwrap_or_default()),
            Self::Store { store, .. } => {
                let now = Timestamp::now();
                Ok(store
                    .keys()
                    .await?
                    .iter()
                    .map(|k| valet_server::key_json(k, now))
                    .collect())
            }
        }
    }

    /// One key (with its live permissions when the gateway runs, and an on-chain key's state
    /// read from the chain either way).
    pub(crate) async fn key(&self, id: &str, home: &crate::home::Home) -> anyhow::Result<Value> {
        match self {
            Self::Api { .. } => {
                self.call(reqwest::Method::GET, &format!("/keys/{id}"), None)
                    .await
            }
            Self::Store { store, .. } => {
                let record = store
                    .key(id)
                    .await?
                    .with_context(|| format!("no key {id}"))?;
                let mut v = valet_server::key_json(&record, Timestamp::now());
                v["policy_toml"] = json!(record.policy_toml);
                if let (Some(session), Ok(policy)) = (
                    record.session_signer,
                    valet_policy::Policy::from_toml(&record.policy_toml),
                ) {
                    v["onchain"] = match home.upstream().await {
                        Ok(up) => {
                            valet_server::onchain_state(&up, record.wallet, session, &policy).await
                        }
                        Err(e) => json!({ "session_signer": session, "error": format!("{e:#}") }),
                    };
                }
                Ok(v)
            }
        }
    }

    /// Revokes one key (and an on-chain key's session signer, through `chain` when there is no
    /// gateway).
    pub(crate) async fn revoke(
        &self,
        id: &str,
        chain: Option<valet_server::OwnerChain<'_>>,
    ) -> anyhow::Result<Value> {
        match self {
            Self::Api { .. } => {
                self.call(reqwest::Method::POST, &format!("/keys/{id}/revoke"), None)
                    .await
            }
            Self::Store { store, .. } => {
                let now = Timestamp::now();
                let audit = valet_server::admin_record(now, "key.revoke", Some(id), json!({}));
                let revoked = store.revoke_key(id, now, audit).await?;
                let Some(record) = store.key(id).await? else {
                    bail!("no key {id}");
                };
                let mut v = json!({ "id": id, "revoked": true, "already_revoked": !revoked });
                if let Some(owner) = chain {
                    v["onchain"] =
                        valet_server::revoke_onchain(store.as_ref(), owner, &record).await;
                }
                self.checkpoint().await?;
                Ok(v)
            }
        }
    }

    /// Lifts a suspended key's quarantine.
    pub(crate) async fn resume(&self, id: &str) -> anyhow::Result<Value> {
        match self {
            Self::Api { .. } => {
                self.call(reqwest::Method::POST, &format!("/keys/{id}/resume"), None)
                    .await
            }
            Self::Store { store, .. } => {
                let audit =
                    valet_server::admin_record(Timestamp::now(), "key.resume", Some(id), json!({}));
                if !store.resume_key(id, audit).await? {
                    match store.key(id).await? {
                        None => bail!("no key {id}"),
                        Some(k) if k.revoked_at.is_some() => {
                            bail!("key {id} is revoked; revocation is final")
                        }
                        Some(_) => bail!("key {id} is not suspended"),
                    }
                }
                self.checkpoint().await?;
                Ok(json!({ "id": id, "resumed": true }))
            }
        }
    }

    /// Revokes every key (the kill switch), and every session signer on chain (through
    /// `chain` when there is no gateway).
    pub(crate) async fn revoke_all(
        &self,
        chain: Option<valet_server::OwnerChain<'_>>,
    ) -> anyhow::Result<Value> {
        match self {
            Self::Api { .. } => {
                self.call(reqwest::Method::POST, "/keys/revoke-all", None)
                    .await
            }
            Self::Store { store, .. } => {
                let now = Timestamp::now();
                let audit = valet_server::admin_record(now, "key.revoke_all", None, json!({}));
                let n = store.revoke_all(now, audit).await?;
                let mut v = json!({ "revoked": n });
                if let Some(owner) = chain {
                    v["onchain"] = valet_server::revoke_all_onchain(store.as_ref(), owner).await;
                }
                self.checkpoint().await?;
                Ok(v)
            }
        }
    }
}
