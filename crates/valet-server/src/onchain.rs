//! On-chain mode: each `onchain` agent key has its own session signing key, kept encrypted in
//! custody (`sessions/<key id>.json`, keystore v3 under the wallet's passphrase) and granted on
//! the wallet's EIP-7702 account contract with the part of its policy the chain can express
//! ([`scope`]). The gateway still enforces the whole policy; the chain enforces the scope even
//! against a compromised gateway. Agent transactions become `executeWithKey` calls signed by
//! the session key and paid for by a relayer account.

use alloy::primitives::{Address, B256, Bytes, U256};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};
use valet_chain::account::{
    self, ANY_SELECTOR, ANY_TARGET, Call, Delegation, ExecuteWithKey, MAX_CAP, Permission, Scope,
    TokenCap, UNLIMITED,
};
use valet_chain::{NonceManager, Sender, Upstream};
use valet_keys::{KeystoreLimits, Wallet};
use valet_policy::{Asset, Policy, Profile};

/// How long a relayed `executeWithKey` signature stays valid.
pub const RELAY_DEADLINE_SECS: u64 = 600;

/// Selectors swap-only keys may never call on-chain, whatever a router wildcard allows:
/// token and NFT transfers and blanket approvals.
const SWAP_ONLY_DENIED: [[u8; 4]; 6] = [
    [0xa9, 0x05, 0x9c, 0xbb], // transfer(address,uint256)
    [0x23, 0xb8, 0x72, 0xdd], // transferFrom(address,address,uint256)
    [0xa2, 0x2c, 0xb4, 0x65], // setApprovalForAll(address,bool)
    [0x42, 0x84, 0x2e, 0x0e], // safeTransferFrom(address,address,uint256)
    [0xb8, 0x8d, 0x4f, 0xde], // safeTransferFrom(address,address,uint256,bytes)
    [0xf2, 0x42, 0x43, 0x2a], // safeTransferFrom(address,address,uint256,uint256,bytes)
];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];

/// What a capped token's contract admits on chain whatever the grant (the account contract's
/// rule): the four functions its cap counts and `decreaseAllowance`.
const CAPPED_TOKEN_FUNCTIONS: [[u8; 4]; 5] = [
    [0xa9, 0x05, 0x9c, 0xbb], // transfer(address,uint256)
    [0x23, 0xb8, 0x72, 0xdd], // transferFrom(address,address,uint256)
    APPROVE,
    INCREASE_ALLOWANCE,
    [0xa4, 0x57, 0xc2, 0xd7], // decreaseAllowance(address,uint256)
];

/// What a swap-only key may call on a trusted router on chain: its swap functions and the
/// batch entry points honest swaps use (V3 `multicall`, the Universal Router's `execute`), not
/// its helpers (`pull`, `sweepToken`, liquidity...). A router can move the wallet's tokens only
/// on the wallet's allowances; the grant clears the standing ones ([`OwnerChain::grant`]), so
/// what is left is what the key approved, which the cap counts. A built-in router gets the
/// part for its kind ([`router_functions`]; each exact grant costs a storage slot at grant
/// time), a router the policy adds all of them.
const ROUTER_SWAP_FUNCTIONS: [[u8; 4]; 24] = [
    // Uniswap V2 Router02
    [0x38, 0xed, 0x17, 0x39], // swapExactTokensForTokens(uint256,uint256,address[],address,uint256)
    [0x88, 0x03, 0xdb, 0xee], // swapTokensForExactTokens(uint256,uint256,address[],address,uint256)
    [0x7f, 0xf3, 0x6a, 0xb5], // swapExactETHForTokens(uint256,address[],address,uint256)
    [0x4a, 0x25, 0xd9, 0x4a], // swapTokensForExactETH(uint256,uint256,address[],address,uint256)
    [0x18, 0xcb, 0xaf, 0xe5], // swapExactTokensForETH(uint256,uint256,address[],address,uint256)
    [0xfb, 0x3b, 0xdb, 0x41], // swapETHForExactTokens(uint256,address[],address,uint256)
    [0x5c, 0x11, 0xd7, 0x95], // swapExactTokensForTokensSupportingFeeOnTransferTokens(...)
    [0xb6, 0xf9, 0xde, 0x95], // swapExactETHForTokensSupportingFeeOnTransferTokens(...)
    [0x79, 0x1a, 0xc9, 0x47], // swapExactTokensForETHSupportingFeeOnTransferTokens(...)
    // SwapRouter02's V2 swaps
    [0x47, 0x2b, 0x43, 0xf3], // swapExactTokensForTokens(uint256,uint256,address[],address)
    [0x42, 0x71, 0x2a, 0x67], // swapTokensForExactTokens(uint256,uint256,address[],address)
    // V3 SwapRouter
    [0x41, 0x4b, 0xf3, 0x89], // exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))
    [0xc0, 0x4b, 0x8d, 0x59], // exactInput((bytes,address,uint256,uint256,uint256))
    [0xdb, 0x3e, 0x21, 0x98], // exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))
    [0xf2, 0x8c, 0x04, 0x98], // exactOutput((bytes,address,uint256,uint256,uint256))
    // SwapRouter02's V3 swaps
    [0x04, 0xe4, 0x5a, 0xaf], // exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))
    [0xb8, 0x58, 0x18, 0x3f], // exactInput((bytes,address,uint256,uint256))
    [0x50, 0x23, 0xb4, 0xdf], // exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))
    [0x09, 0xb8, 0x13, 0x46], // exactOutput((bytes,address,uint256,uint256))
    // batches
    [0xac, 0x96, 0x50, 0xd8], // multicall(bytes[])
    [0x5a, 0xe4, 0x01, 0xdc], // multicall(uint256,bytes[])
    [0x1f, 0x04, 0x64, 0xd1], // multicall(bytes32,bytes[])
    [0x24, 0x85, 0x6b, 0xc3], // execute(bytes,bytes[])
    [0x35, 0x93, 0x56, 0x4c], // execute(bytes,bytes[],uint256)
];

/// What went wrong in on-chain mode.
#[derive(Debug, thiserror::Error)]
pub enum OnchainError {
    /// The wallet is not delegated to this Valet's account contract.
    #[error(
        "the wallet {wallet} is not delegated to Valet's account contract {account} ({found}): \
         run `valet wallet delegate` first"
    )]
    NotDelegated {
        /// The wallet.
        wallet: Address,
        /// The account contract it should be delegated to.
        account: Address,
        /// What its code says instead.
        found: String,
    },
    /// No relayer is configured, so nothing can be relayed.
    #[error("no relayer: start `valet serve` with --relayer-keystore FILE to relay on-chain keys")]
    NoRelayer,
    /// The key has no session signer on record.
    #[error("key {0} has no session signer")]
    NoSessionSigner(String),
    /// The chain refused the call (a revert, named when it is one of the account's errors).
    #[error("the chain refused it: {0}")]
    Refused(String),
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] valet_chain::Error),
    /// Session key custody failed.
    #[error(transparent)]
    Keys(#[from] valet_keys::Error),
}

/// The relayer: an account that pays the gas of relayed calls.
struct Relayer {
    wallet: Wallet,
    nonces: NonceManager,
}

/// On-chain mode's custody and relaying (see the module docs).
pub struct Onchain {
    account: Address,
    sessions: PathBuf,
    passphrase: zeroize::Zeroizing<Vec<u8>>,
    relayer: Option<Relayer>,
    /// Decrypted session signers, by key id.
    signers: Mutex<HashMap<String, Arc<Wallet>>>,
}

impl std::fmt::Debug for Onchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onchain")
            .field("account", &self.account)
            .field("sessions", &self.sessions)
            .field(
                "relayer",
                &self.relayer.as_ref().map(|r| r.wallet.address()),
            )
            .finish_non_exhaustive()
    }
}

/// A relayed `executeWithKey` transaction, signed and not yet sent.
pub(crate) struct Relayed {
    /// The relayer's signed transaction (EIP-2718 bytes).
    pub(crate) raw: Vec<u8>,
    /// Its hash.
    pub(crate) hash: B256,
    /// The relayer's nonce it uses, leased until the node takes it.
    pub(crate) lease: valet_chain::NonceLease,
}

impl Onchain {
    /// On-chain mode with session keystores under `sessions` (created if missing), encrypted
    /// with `passphrase`, and an optional relayer.
    pub fn new(
        sessions: PathBuf,
        passphrase: zeroize::Zeroizing<Vec<u8>>,
        relayer: Option<(Wallet, &Upstream)>,
    ) -> Result<Self, OnchainError> {
        Ok(Self {
            account: account::account_address()?,
            sessions,
            passphrase,
            relayer: relayer.map(|(wallet, upstream)| Relayer {
                nonces: NonceManager::new(upstream.clone(), wallet.address()),
                wallet,
            }),
            signers: Mutex::new(HashMap::new()),
        })
    }

    /// The account contract the wallet must be delegated to.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The relayer's address, if there is one.
    pub fn relayer(&self) -> Option<Address> {
        self.relayer.as_ref().map(|r| r.wallet.address())
    }

    /// Fails unless `wallet` is delegated to [`Self::account`].
    pub async fn check_delegated(
        &self,
        upstream: &Upstream,
        wallet: Address,
    ) -> Result<(), OnchainError> {
        match account::delegation(upstream, wallet).await? {
            Delegation::To(a) if a == self.account => Ok(()),
            other => Err(OnchainError::NotDelegated {
                wallet,
                account: self.account,
                found: match other {
                    Delegation::None => "no delegation".into(),
                    Delegation::To(a) => format!("delegated to {a}"),
                    Delegation::Contract => "it holds contract code".into(),
                },
            }),
        }
    }

    /// Key `key_id`'s session signer, decrypted from custody on first use.
    fn session(&self, key_id: &str) -> Result<Arc<Wallet>, OnchainError> {
        if let Some(s) = lock(&self.signers).get(key_id) {
            return Ok(s.clone());
        }
        let path = self.sessions.join(file_name(key_id));
        let wallet = Arc::new(Wallet::open(
            &path,
            &self.passphrase,
            KeystoreLimits::default(),
        )?);
        lock(&self.signers).insert(key_id.to_string(), wallet.clone());
        Ok(wallet)
    }

    /// Builds and signs the relayed transaction that runs `calls` from `wallet` under key
    /// `key_id`'s session signer: `executeWithKey(calls, nonce, deadline, signature)` sent by
    /// the relayer. Each request uses a fresh random nonce lane, so relayed calls never wait
    /// on each other and a reverted one blocks nothing. Gas is estimated first: a call the
    /// account contract refuses is [`OnchainError::Refused`], before anything is signed by the
    /// relayer.
    pub(crate) async fn relay(
        &self,
        upstream: &Upstream,
        wallet: Address,
        key_id: &str,
        calls: Vec<Call>,
        fees: (u128, u128),
        now: Timestamp,
    ) -> Result<Relayed, OnchainError> {
        let relayer = self.relayer.as_ref().ok_or(OnchainError::NoRelayer)?;
        let session = self.session(key_id)?;
        let chain_id = upstream.chain_id();
        let lane = U256::from(rand::random::<u128>());
        let nonce = lane << 64;
        let deadline = U256::from(now.as_second().max(0) as u64 + RELAY_DEADLINE_SECS);
        let payload = ExecuteWithKey {
            calls,
            nonce,
            deadline,
        };
        let sig = session.sign_struct(&payload, &account::domain(chain_id, wallet))?;
        let data = account::execute_with_key_calldata(
            payload.calls,
            nonce,
            deadline,
            Bytes::from(sig.as_bytes().to_vec()),
        );
        let from = relayer.wallet.address();
        let estimate = upstream
            .estimate_gas(from, Some(wallet), U256::ZERO, &data)
            .await
            .map_err(refusal)?;
        let lease = relayer.nonces.lease().await?;
        let mut tx = alloy::consensus::TxEip1559 {
            chain_id,
            nonce: lease.nonce(),
            gas_limit: valet_chain::gas_with_margin(estimate),
            max_fee_per_gas: fees.0,
            max_priority_fee_per_gas: fees.1,
            to: alloy::primitives::TxKind::Call(wallet),
            value: U256::ZERO,
            access_list: Default::default(),
            input: data,
        };
        let sig = relayer.wallet.sign_transaction(&mut tx)?;
        let envelope = alloy::consensus::TxEnvelope::Eip1559(
            alloy::consensus::SignableTransaction::into_signed(tx, sig),
        );
        Ok(Relayed {
            hash: *envelope.tx_hash(),
            raw: alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope),
            lease,
        })
    }

    /// The relayer's nonce manager (to resync after a failed broadcast).
    pub(crate) fn relayer_nonces(&self) -> Option<&NonceManager> {
        self.relayer.as_ref().map(|r| &r.nonces)
    }
}

/// What an owner action on chain needs: on-chain mode, the wallet (the owner, who signs) and
/// the wallet's own sender. With a relayer, owner actions are signed by the wallet as
/// `OwnerExecute` and relayed through `executeSigned` (the relayer pays the gas); without one
/// the wallet sends them to itself and pays.
#[derive(Clone, Copy)]
pub struct OwnerChain<'a> {
    /// On-chain mode.
    pub onchain: &'a Onchain,
    /// The wallet's key.
    pub wallet: &'a Wallet,
    /// The wallet as a sender of its own transactions.
    pub sender: &'a Sender,
}

impl std::fmt::Debug for OwnerChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerChain")
            .field("wallet", &self.wallet.address())
            .finish_non_exhaustive()
    }
}

impl OwnerChain<'_> {
    /// Creates key `key_id`'s session signer (encrypted in custody) and grants it on chain
    /// with `policy`'s [`scope`]; returns the session signer's address and the grant's
    /// transaction hash once it is mined. The same owner batch first sets to zero the wallet's
    /// standing allowances of each capped token that the key could have spent
    /// (`standing_allowances`), so that what any contract can spend for the key is only what
    /// the key itself approves, which its cap counts; if one survives, the key is revoked again
    /// and the grant fails.
    pub async fn grant(
        &self,
        key_id: &str,
        policy: &Policy,
        expires_at: Timestamp,
    ) -> Result<(Address, B256), OnchainError> {
        let onchain = self.onchain;
        let upstream = self.sender.upstream();
        onchain
            .check_delegated(upstream, self.wallet.address())
            .await?;
        create_private_dir(&onchain.sessions)?;
        let (session, _) =
            Wallet::create_keystore(&onchain.sessions, &file_name(key_id), &onchain.passphrase)?;
        let (scope, valid_after) = scope(policy, upstream.chain_id());
        let valid_until = expires_at.as_second().max(0) as u64;
        let wallet = self.wallet.address();
        let granted = async {
            let standing = standing_allowances(upstream, wallet, policy, &scope).await?;
            let mut calls: Vec<Call> = standing.iter().map(|&a| clear_call(a)).collect();
            calls.push(own_call(account::authorize_key_calldata(
                session.address(),
                valid_after,
                valid_until,
                scope,
            )));
            let hash = self.send_calls("grant the session key", calls).await?;
            if let Err(e) = still_standing(upstream, wallet, &standing).await {
                // The cap would not bound what is left: the key must not live.
                let _ = self.revoke(session.address()).await;
                return Err(e);
            }
            Ok(hash)
        };
        let hash = match granted.await {
            Ok(hash) => hash,
            Err(e) => {
                // Never granted: its key is of no use to anyone.
                let _ = std::fs::remove_file(onchain.sessions.join(file_name(key_id)));
                return Err(e);
            }
        };
        let address = session.address();
        lock(&onchain.signers).insert(key_id.to_string(), Arc::new(session));
        Ok((address, hash))
    }

    /// Revokes `session` on chain; the transaction hash.
    pub async fn revoke(&self, session: Address) -> Result<B256, OnchainError> {
        self.send(
            "revoke the session key",
            account::revoke_key_calldata(session),
        )
        .await
    }

    /// Revokes every session key at once (the account's epoch bump); the transaction hash.
    pub async fn revoke_all(&self) -> Result<B256, OnchainError> {
        self.send("revoke all session keys", account::revoke_all_calldata())
            .await
    }

    /// Runs `data` as a call of the account to itself, relayed when there is a relayer.
    async fn send(&self, what: &str, data: Bytes) -> Result<B256, OnchainError> {
        self.send_calls(what, vec![own_call(data)]).await
    }

    /// Runs `calls` as one owner batch (atomic): relayed as `executeSigned` when there is a
    /// relayer, else sent by the wallet to itself (one call to itself as it is, several as an
    /// ERC-7821 `execute`).
    async fn send_calls(&self, what: &str, calls: Vec<Call>) -> Result<B256, OnchainError> {
        let wallet = self.wallet.address();
        let upstream = self.sender.upstream();
        let Some(relayer) = &self.onchain.relayer else {
            let data = match calls.as_slice() {
                [one] if one.target == Address::ZERO => one.data.clone(),
                _ => account::execute_batch_calldata(calls),
            };
            let sent = self
                .sender
                .send(what, Some(wallet), U256::ZERO, data, vec![])
                .await
                .map_err(refusal)?;
            return Ok(sent.hash);
        };
        let payload = account::OwnerExecute {
            calls,
            nonce: U256::from(rand::random::<u64>()) << 64,
            deadline: U256::from(Timestamp::now().as_second().max(0) as u64 + RELAY_DEADLINE_SECS),
        };
        let sig = self
            .wallet
            .sign_struct(&payload, &account::domain(upstream.chain_id(), wallet))?;
        let data = account::execute_signed_calldata(
            payload.calls,
            payload.nonce,
            payload.deadline,
            Bytes::from(sig.as_bytes().to_vec()),
        );
        let relayer = Sender::with_nonces(
            upstream.clone(),
            relayer.wallet.network_wallet(),
            relayer.nonces.clone(),
        );
        let sent = relayer
            .send(what, Some(wallet), U256::ZERO, data, vec![])
            .await
            .map_err(refusal)?;
        Ok(sent.hash)
    }
}

/// A call of the account to itself (target `address(0)` in an owner batch).
fn own_call(data: Bytes) -> Call {
    Call {
        target: Address::ZERO,
        value: U256::ZERO,
        data,
    }
}

/// Creates `dir` (mode 0700) if it is missing.
fn create_private_dir(dir: &std::path::Path) -> Result<(), OnchainError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| {
        OnchainError::Keys(valet_keys::Error::Io {
            path: dir.display().to_string(),
            source,
        })
    })
}

/// The on-chain state of a session signer, as `valet_getPermissions` and `valet key show`
/// report it: `{account, session_signer, granted, active, revoked, valid_after, valid_until,
/// period, caps: [{asset, limit, spent_this_period, period_start}]}`, or `{error}` when the
/// node cannot say.
pub async fn state(
    upstream: &Upstream,
    wallet: Address,
    session: Address,
    policy: &Policy,
) -> Value {
    match read_state(upstream, wallet, session, policy).await {
        Ok(v) => v,
        Err(e) => json!({ "session_signer": session, "error": e.to_string() }),
    }
}

async fn read_state(
    upstream: &Upstream,
    wallet: Address,
    session: Address,
    policy: &Policy,
) -> Result<Value, valet_chain::Error> {
    let key = account::key_state(upstream, wallet, session).await?;
    let mut assets: Vec<Option<Address>> = vec![None];
    for l in &policy.limits.spend {
        if let Asset::Token(t) = l.asset
            && !assets.contains(&Some(t))
        {
            assets.push(Some(t));
        }
    }
    let mut caps = Vec::new();
    for token in assets {
        if let Some(c) = account::cap_state(upstream, wallet, session, token).await? {
            caps.push(json!({
                "asset": c.token.map_or("native".to_string(), |t| t.to_string()),
                "limit": c.limit.to_string(),
                "spent_this_period": c.spent.to_string(),
                "period_start": c.period_start,
            }));
        }
    }
    Ok(json!({
        "account": wallet,
        "session_signer": session,
        "granted": key.granted,
        "active": key.active,
        "revoked": key.revoked,
        "valid_after": key.valid_after,
        "valid_until": key.valid_until,
        "period": key.period,
        "caps": caps,
        "scope": scope_json(&scope(policy, upstream.chain_id()).0),
    }))
}

/// What the grant lets the session key call, as `valet key show` prints it: what a stolen
/// session key could do without the gateway (`*` = any target or function).
fn scope_json(scope: &Scope) -> Value {
    let target = |t: Address| match t {
        ANY_TARGET => "*".to_string(),
        t => t.to_string(),
    };
    let selector = |s: [u8; 4]| match s {
        ANY_SELECTOR => "*".to_string(),
        s => alloy::primitives::hex::encode_prefixed(s),
    };
    let max = |v: U256| (v != UNLIMITED).then(|| v.to_string());
    json!({
        "allowed": scope.allowed.iter().map(|p| json!({ "target": target(p.target), "selector": selector(p.selector.0) })).collect::<Vec<_>>(),
        "denied": scope.denied.iter().map(|s| selector(s.0)).collect::<Vec<_>>(),
        "max_value_per_call": max(scope.maxValuePerCall),
    })
}

/// The part of `policy` the account contract can enforce, and the Unix second it is valid
/// from. The chain's scope is never wider than the policy:
///
/// - targets and functions: swap-only grants its trusted routers (the built-in ones of
///   `chain_id` and `routers`) their swap functions and batch entry points only
///   (`ROUTER_SWAP_FUNCTIONS`), `approve`/`increaseAllowance` only on tokens that have a
///   spend limit (so the cap bounds them), and denies token and NFT transfers and
///   `setApprovalForAll`; full-access grants everything; `[[allow]]` rules add their
///   (target, function) pairs, a missing target or function list being a wildcard; read-only
///   and custom grant nothing else. Every `[[deny]]` function is denied on every target, and a
///   `[[deny]]` of a whole target drops the grants naming it. On a capped token the contract
///   admits only the functions the cap counts (and `decreaseAllowance`) whatever the grant,
///   so exact grants of other functions there are dropped.
/// - `max_value_per_tx` caps each call's native value; native and token spend limits become
///   per-period caps (the smallest amount per asset; tokens count `transfer`,
///   `transferFrom`, `approve` and `increaseAllowance`), all over one fixed period equal to
///   the longest window.
/// - validity: from `not_before` (or at once) to the key's expiry.
///
/// Argument conditions, schedules, IP ranges, rate and pending limits, fees, typed data and
/// messages stay with the gateway.
pub fn scope(policy: &Policy, chain_id: u64) -> (Scope, u64) {
    let mut allowed: BTreeSet<(Address, [u8; 4])> = BTreeSet::new();
    let capped_tokens: Vec<Address> = policy
        .limits
        .spend
        .iter()
        .filter_map(|l| match l.asset {
            Asset::Token(t) => Some(t),
            Asset::Native => None,
        })
        .collect();
    let mut denied: BTreeSet<[u8; 4]> = BTreeSet::new();
    match policy.profile {
        Profile::ReadOnly | Profile::Custom => {}
        Profile::FullAccess => {
            allowed.insert((ANY_TARGET, ANY_SELECTOR));
        }
        Profile::SwapOnly => {
            for router in trusted_routers(policy, chain_id) {
                let functions = router_functions(router, chain_id);
                allowed.extend(functions.into_iter().map(|s| (router, s)));
            }
            for &token in &capped_tokens {
                allowed.insert((token, APPROVE));
                allowed.insert((token, INCREASE_ALLOWANCE));
            }
            denied.extend(SWAP_ONLY_DENIED);
        }
    }
    for rule in &policy.allow {
        let target = rule.target.unwrap_or(ANY_TARGET);
        match &rule.functions {
            None => {
                allowed.insert((target, ANY_SELECTOR));
            }
            Some(fs) => allowed.extend(fs.iter().map(|f| (target, f.spec.selector))),
        }
    }
    let mut denied_targets = BTreeSet::new();
    for rule in &policy.deny {
        match (&rule.functions, rule.target) {
            (Some(fs), _) => denied.extend(fs.iter().map(|f| f.spec.selector)),
            (None, Some(t)) => {
                denied_targets.insert(t);
            }
            // Deny everything: grant nothing.
            (None, None) => allowed.clear(),
        }
    }
    // The contract refuses an exact grant of a denied selector (deny wins anyway) and of a
    // function of a capped token its cap does not count (never callable there).
    allowed.retain(|(t, s)| {
        !denied_targets.contains(t)
            && (*s == ANY_SELECTOR || !denied.contains(s))
            && (*s == ANY_SELECTOR
                || !capped_tokens.contains(t)
                || CAPPED_TOKEN_FUNCTIONS.contains(s))
    });

    let cap = |asset: Asset| {
        policy
            .limits
            .spend
            .iter()
            .filter(|l| l.asset == asset)
            .map(|l| l.amount.min(MAX_CAP))
            .min()
    };
    let mut token_caps: Vec<TokenCap> = Vec::new();
    for &token in &capped_tokens {
        if !token_caps.iter().any(|c| c.token == token)
            && let Some(limit) = cap(Asset::Token(token))
        {
            token_caps.push(TokenCap { token, limit });
        }
    }
    let period = policy
        .limits
        .spend
        .iter()
        .map(|l| l.window)
        .max()
        .unwrap_or(0)
        .min(u64::from(u32::MAX)) as u32;
    let scope = Scope {
        period,
        maxCalls: u32::MAX,
        maxValuePerCall: policy.limits.max_value_per_tx.unwrap_or(UNLIMITED),
        nativeCapPerPeriod: cap(Asset::Native).unwrap_or(UNLIMITED),
        allowed: allowed
            .into_iter()
            .map(|(target, selector)| Permission {
                target,
                selector: selector.into(),
            })
            .collect(),
        denied: denied.into_iter().map(Into::into).collect(),
        tokenCaps: token_caps,
    };
    let valid_after = policy.not_before.map_or(0, |t| t.as_second().max(0) as u64);
    (scope, valid_after)
}

/// Uniswap V2 Router02 and the original V3 SwapRouter among the built-in routers (the other
/// built-in routers that read sentinels are SwapRouter02 and the Universal Routers).
const V2_ROUTERS: [Address; 3] = [
    alloy::primitives::address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"),
    alloy::primitives::address!("0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24"),
    alloy::primitives::address!("0x4A7b5Da61326A6379179b40d00F57E5bbDC962c2"),
];
const V3_SWAP_ROUTER: Address =
    alloy::primitives::address!("0xE592427A0AEce92De3Edee1F18E0157C05861564");
const SWAP_ROUTER_02: [Address; 2] = [
    alloy::primitives::address!("0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45"),
    alloy::primitives::address!("0x2626664c2603336E57B271c5C0b26F421741e481"),
];

/// The part of [`ROUTER_SWAP_FUNCTIONS`] router `router` has (all of it for a router that is
/// not a built-in one of `chain_id`).
fn router_functions(router: Address, chain_id: u64) -> Vec<[u8; 4]> {
    let f = &ROUTER_SWAP_FUNCTIONS;
    let builtin = valet_policy::routers::builtin_routers(chain_id)
        .iter()
        .any(|r| r.address == router);
    if !builtin {
        f.to_vec()
    } else if V2_ROUTERS.contains(&router) {
        f[..9].to_vec()
    } else if router == V3_SWAP_ROUTER {
        [&f[11..15], &f[19..20]].concat()
    } else if SWAP_ROUTER_02.contains(&router) {
        [&f[9..11], &f[15..22]].concat()
    } else {
        f[22..].to_vec() // the Universal Routers
    }
}

/// The trusted routers of `policy` on `chain_id`: the built-in ones and the policy's own.
fn trusted_routers(policy: &Policy, chain_id: u64) -> impl Iterator<Item = Address> + '_ {
    let builtin = valet_policy::routers::builtin_routers(chain_id)
        .iter()
        .map(|r| r.address);
    policy.routers.iter().copied().chain(builtin)
}

/// The contracts a key granted `scope` could call that may spend the wallet's allowances for
/// its own caller: the trusted routers, Permit2, the built-in position manager, and every
/// target the scope names. Their standing allowances on capped tokens are cleared in the grant.
fn allowance_spenders(policy: &Policy, chain_id: u64, scope: &Scope) -> BTreeSet<Address> {
    let mut spenders: BTreeSet<Address> = trusted_routers(policy, chain_id).collect();
    spenders.insert(valet_policy::routers::PERMIT2);
    spenders.extend(valet_policy::routers::builtin_position_manager(chain_id));
    spenders.extend(
        scope
            .allowed
            .iter()
            .map(|p| p.target)
            .filter(|t| *t != ANY_TARGET && *t != Address::ZERO),
    );
    spenders
}

/// The (token, spender) pairs of `wallet`'s standing allowances on the capped tokens of
/// `scope` to [`allowance_spenders`], which the grant clears: an allowance given before the
/// grant is not counted by the key's cap, and a router or Permit2 would let the key spend it
/// (`pull`, `PERMIT2_TRANSFER_FROM`, a swap paid to a stranger). A grant that reaches any
/// target (a target wildcard) also clears the allowances to every contract the token's
/// `Approval` logs show the wallet approved. Reads fail closed: no grant without knowing.
async fn standing_allowances(
    upstream: &Upstream,
    wallet: Address,
    policy: &Policy,
    scope: &Scope,
) -> Result<Vec<(Address, Address)>, OnchainError> {
    let named = allowance_spenders(policy, upstream.chain_id(), scope);
    let any_target = scope.allowed.iter().any(|p| p.target == ANY_TARGET);
    let mut standing = Vec::new();
    for cap in &scope.tokenCaps {
        let mut spenders = named.clone();
        if any_target {
            spenders.extend(approved_contracts(upstream, cap.token, wallet).await?);
        }
        for &spender in &spenders {
            if account::allowance(upstream, cap.token, wallet, spender).await? != U256::ZERO {
                standing.push((cap.token, spender));
            }
        }
    }
    Ok(standing)
}

/// `Approval(address indexed owner, address indexed spender, uint256)`.
const APPROVAL_TOPIC: B256 =
    alloy::primitives::b256!("0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");

/// The contracts (addresses with code) `owner` ever approved on `token`, from its `Approval`
/// logs over the whole chain.
async fn approved_contracts(
    upstream: &Upstream,
    token: Address,
    owner: Address,
) -> Result<BTreeSet<Address>, OnchainError> {
    let filter = json!([{
        "address": token,
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": [APPROVAL_TOPIC, owner.into_word()],
    }]);
    let logs = upstream.forward("eth_getLogs", &filter).await?;
    let bad = |what: &str| valet_chain::Error::BadResponse(format!("eth_getLogs: {what}"));
    let mut spenders = BTreeSet::new();
    for log in logs.as_array().ok_or_else(|| bad("not a list"))? {
        let topic: B256 = log["topics"][2]
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("an Approval log without a spender"))?;
        spenders.insert(Address::from_word(topic));
    }
    let mut contracts = BTreeSet::new();
    for spender in spenders {
        if !account::code(upstream, spender).await?.is_empty() {
            contracts.insert(spender);
        }
    }
    Ok(contracts)
}

/// Fails if any of the `cleared` allowances is still there (a token whose `approve(spender,
/// 0)` returned false instead of reverting).
async fn still_standing(
    upstream: &Upstream,
    wallet: Address,
    cleared: &[(Address, Address)],
) -> Result<(), OnchainError> {
    for &(token, spender) in cleared {
        if account::allowance(upstream, token, wallet, spender).await? != U256::ZERO {
            return Err(OnchainError::Refused(format!(
                "token {token} kept the wallet's allowance to {spender} after approve(spender, 0); \
                 the session key was revoked again"
            )));
        }
    }
    Ok(())
}

/// The owner call `token.approve(spender, 0)`.
fn clear_call((token, spender): (Address, Address)) -> Call {
    Call {
        target: token,
        value: U256::ZERO,
        data: account::clear_allowance_calldata(spender),
    }
}

/// A node error with the account contract's revert named, as [`OnchainError::Refused`];
/// anything else as it is.
fn refusal(e: valet_chain::Error) -> OnchainError {
    match &e {
        valet_chain::Error::Node { message, .. } => {
            OnchainError::Refused(account::revert_of(&e).unwrap_or_else(|| message.clone()))
        }
        valet_chain::Error::Reverted { what, hash } => {
            OnchainError::Refused(format!("{what}: transaction {hash} reverted"))
        }
        _ => OnchainError::Chain(e),
    }
}

fn file_name(key_id: &str) -> String {
    format!("{key_id}.json")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors(scope: &Scope) -> Vec<(Address, [u8; 4])> {
        scope
            .allowed
            .iter()
            .map(|p| (p.target, p.selector.0))
            .collect()
    }

    const ROUTER: Address = Address::repeat_byte(0x77);
    const TOKEN: Address = Address::repeat_byte(0x70);

    fn swap_policy() -> Policy {
        Policy::from_toml(&format!(
            r#"name = "s"
profile = "swap-only"
expires_in = "1h"
routers = ["{ROUTER}"]
[limits]
max_value_per_tx = "1 ether"
[[limits.spend]]
asset = "{TOKEN}"
amount = "1000"
window = "24h"
[[limits.spend]]
asset = "{TOKEN}"
amount = "300"
window = "1h"
[[limits.spend]]
asset = "native"
amount = "2 ether"
window = "1h"
"#
        ))
        .unwrap()
    }

    #[test]
    fn swap_only_grants_routers_and_capped_approvals_and_denies_transfers() {
        let (scope, valid_after) = scope(&swap_policy(), 31337);
        assert_eq!(valid_after, 0);
        let mut expected = vec![(TOKEN, APPROVE), (TOKEN, INCREASE_ALLOWANCE)];
        expected.extend(ROUTER_SWAP_FUNCTIONS.iter().map(|&s| (ROUTER, s)));
        expected.sort();
        assert_eq!(selectors(&scope), expected);
        // Never every function of a router: `pull`, `sweepToken` stay out.
        assert!(!selectors(&scope).contains(&(ROUTER, ANY_SELECTOR)));
        assert!(
            !selectors(&scope).contains(&(ROUTER, [0xf2, 0xd5, 0xd5, 0x6b])),
            "pull"
        );
        // Standing allowances of the capped token to the routers and Permit2 are cleared.
        let spenders = allowance_spenders(&swap_policy(), 31337, &scope);
        assert!(spenders.contains(&ROUTER) && spenders.contains(&valet_policy::routers::PERMIT2));
        assert!(scope.denied.iter().any(|s| s.0 == [0xa9, 0x05, 0x9c, 0xbb]));
        // The smallest cap per asset, over the longest window.
        assert_eq!(scope.tokenCaps.len(), 1);
        assert_eq!(scope.tokenCaps[0].limit, U256::from(300));
        assert_eq!(scope.period, 86_400);
        assert_eq!(scope.nativeCapPerPeriod, U256::from(2u128 * 10u128.pow(18)));
        assert_eq!(scope.maxValuePerCall, U256::from(10u128.pow(18)));
    }

    #[test]
    fn custom_rules_map_to_pairs_and_deny_wins() {
        let p = Policy::from_toml(&format!(
            r#"name = "c"
profile = "custom"
expires_in = "1h"
not_before = "2030-01-01T00:00:00Z"
[[allow]]
target = "{TOKEN}"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]
[[allow]]
functions = ["deposit()"]
[[allow]]
target = "{ROUTER}"
[[deny]]
functions = ["transfer(address,uint256)"]
"#
        ))
        .unwrap();
        let (scope, valid_after) = scope(&p, 1);
        assert_eq!(valid_after, 1_893_456_000);
        assert_eq!(
            selectors(&scope),
            [
                (ANY_TARGET, [0xd0, 0xe3, 0x0d, 0xb0]),
                (TOKEN, APPROVE),
                (ROUTER, ANY_SELECTOR)
            ]
        );
        assert_eq!(scope.nativeCapPerPeriod, UNLIMITED);
        assert_eq!(scope.maxValuePerCall, UNLIMITED);
        assert!(scope.tokenCaps.is_empty());
    }

    #[test]
    fn router_swap_functions_match_their_signatures() {
        let signatures = [
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
            "swapExactETHForTokens(uint256,address[],address,uint256)",
            "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
            "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
            "swapETHForExactTokens(uint256,address[],address,uint256)",
            "swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
            "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)",
            "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
            "swapExactTokensForTokens(uint256,uint256,address[],address)",
            "swapTokensForExactTokens(uint256,uint256,address[],address)",
            "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
            "exactInput((bytes,address,uint256,uint256,uint256))",
            "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
            "exactOutput((bytes,address,uint256,uint256,uint256))",
            "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            "exactInput((bytes,address,uint256,uint256))",
            "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))",
            "exactOutput((bytes,address,uint256,uint256))",
            "multicall(bytes[])",
            "multicall(uint256,bytes[])",
            "multicall(bytes32,bytes[])",
            "execute(bytes,bytes[])",
            "execute(bytes,bytes[],uint256)",
        ];
        let selector =
            |sig: &str| -> [u8; 4] { alloy::primitives::keccak256(sig)[..4].try_into().unwrap() };
        let computed: Vec<[u8; 4]> = signatures.iter().map(|s| selector(s)).collect();
        assert_eq!(computed, ROUTER_SWAP_FUNCTIONS);
        // Each built-in router gets its own kind's functions; an added router all of them.
        let of = |router: Address| router_functions(router, 1);
        let v2 = of(V2_ROUTERS[0]);
        assert_eq!(v2.len(), 9);
        assert!(v2.contains(&selector(signatures[4])));
        let v3 = of(V3_SWAP_ROUTER);
        assert_eq!(v3.len(), 5);
        assert!(v3.contains(&selector("multicall(bytes[])")));
        let r02 = of(SWAP_ROUTER_02[0]);
        assert_eq!(r02.len(), 9);
        assert!(r02.contains(&selector("multicall(uint256,bytes[])")));
        assert!(r02.contains(&selector(signatures[15])));
        let ur = of(alloy::primitives::address!(
            "0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af"
        ));
        assert_eq!(
            ur,
            [
                selector("execute(bytes,bytes[])"),
                selector("execute(bytes,bytes[],uint256)")
            ]
        );
        assert_eq!(of(ROUTER), ROUTER_SWAP_FUNCTIONS);
        for r in valet_policy::routers::builtin_routers(1) {
            assert!(!of(r.address).is_empty());
        }
        assert_eq!(
            selector("decreaseAllowance(address,uint256)"),
            CAPPED_TOKEN_FUNCTIONS[4]
        );
        assert_eq!(
            selector("transferFrom(address,address,uint256)"),
            CAPPED_TOKEN_FUNCTIONS[1]
        );
    }

    #[test]
    fn exact_grants_of_uncounted_functions_on_a_capped_token_are_dropped() {
        let p = Policy::from_toml(&format!(
            r#"name = "c"
profile = "custom"
expires_in = "1h"
[[allow]]
target = "{TOKEN}"
functions = ["transferAndCall(address,uint256,bytes)", "approve(address,uint256)", "decreaseAllowance(address,uint256)"]
[[allow]]
target = "{ROUTER}"
functions = ["transferAndCall(address,uint256,bytes)"]
[[limits.spend]]
asset = "{TOKEN}"
amount = "1000"
window = "24h"
"#
        ))
        .unwrap();
        let transfer_and_call = [0x40, 0x00, 0xae, 0xa0];
        assert_eq!(
            selectors(&scope(&p, 1).0),
            [
                (TOKEN, APPROVE),
                (TOKEN, [0xa4, 0x57, 0xc2, 0xd7]),
                (ROUTER, transfer_and_call)
            ]
        );
    }

    #[test]
    fn read_only_grants_nothing_and_full_access_everything() {
        let read =
            Policy::from_toml("name = \"r\"\nprofile = \"read-only\"\nexpires_in = \"1h\"\n")
                .unwrap();
        assert!(scope(&read, 1).0.allowed.is_empty());
        let full =
            Policy::from_toml("name = \"f\"\nprofile = \"full-access\"\nexpires_in = \"1h\"\n")
                .unwrap();
        assert_eq!(selectors(&scope(&full, 1).0), [(ANY_TARGET, ANY_SELECTOR)]);
    }
}
