//! [`Sender`]: signs and sends set-up transactions from one account, one at a time, and waits
//! for each to be mined (sandbox deployments, EIP-7702 delegation, owner calls to the account
//! contract).

use std::time::Duration;

use alloy::consensus::{TxEip1559, TxEip7702, TypedTransaction};
use alloy::eips::Encodable2718;
use alloy::eips::eip7702::SignedAuthorization;
use alloy::network::{Ethereum, EthereumWallet, NetworkWallet};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use tracing::debug;

use crate::error::{Error, Result};
use crate::nonce::NonceManager;
use crate::upstream::{Upstream, gas_with_margin};

/// How long to wait for each transaction to be mined.
const MINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Gas for a type-4 transaction that only carries authorizations: 21 000 base, plus 25 000
/// per authorization (EIP-7702's `PER_EMPTY_ACCOUNT_COST`), with room to spare.
const GAS_PER_AUTHORIZATION: u64 = 30_000;

const TARGET: &str = "valet_chain::send";

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its hash.
    pub hash: B256,
    /// The sender's nonce it used.
    pub nonce: u64,
}

/// Sends transactions from one account and waits for each (see the module docs).
pub struct Sender {
    upstream: Upstream,
    wallet: EthereumWallet,
    from: Address,
    nonces: NonceManager,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Connects to `url` and sends from `wallet`'s default signer.
    pub async fn new(url: &str, wallet: EthereumWallet) -> Result<Self> {
        Ok(Self::on(Upstream::connect(url).await?, wallet))
    }

    /// Sends from `wallet`'s default signer through `upstream`.
    pub fn on(upstream: Upstream, wallet: EthereumWallet) -> Self {
        let from = NetworkWallet::<Ethereum>::default_signer_address(&wallet);
        let nonces = NonceManager::new(upstream.clone(), from);
        Self::with_nonces(upstream, wallet, nonces)
    }

    /// Sends from `wallet` taking nonces from `nonces` (shared with other senders of the same
    /// account, such as the gateway's).
    pub fn with_nonces(upstream: Upstream, wallet: EthereumWallet, nonces: NonceManager) -> Self {
        Self {
            from: nonces.wallet(),
            upstream,
            wallet,
            nonces,
        }
    }

    /// The sending account.
    pub fn from(&self) -> Address {
        self.from
    }

    /// The upstream node.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Deploys `code`; returns the new contract's address.
    pub async fn deploy(&self, what: &str, code: Vec<u8>) -> Result<Address> {
        let sent = self
            .send(what, None, U256::ZERO, code.into(), Vec::new())
            .await?;
        Ok(self.from.create(sent.nonce))
    }

    /// Calls `to` with `value` and `data`.
    pub async fn call(&self, what: &str, to: Address, value: U256, data: Vec<u8>) -> Result<Sent> {
        self.send(what, Some(to), value, data.into(), Vec::new())
            .await
    }

    /// The sender's next nonce as the node counts it (pending included).
    pub async fn next_nonce(&self) -> Result<u64> {
        self.upstream.pending_nonce(self.from).await
    }

    /// Sends one transaction (EIP-1559, or EIP-7702 when `authorizations` is not empty) and
    /// waits until it is mined; a revert is [`Error::Reverted`].
    pub async fn send(
        &self,
        what: &str,
        to: Option<Address>,
        value: U256,
        input: Bytes,
        authorizations: Vec<SignedAuthorization>,
    ) -> Result<Sent> {
        let gas_limit = if authorizations.is_empty() {
            let estimate = self
                .upstream
                .estimate_gas(self.from, to, value, &input)
                .await?;
            gas_with_margin(estimate)
        } else {
            // eth_estimateGas cannot see the authorizations; a plain delegation needs no more.
            21_000 + GAS_PER_AUTHORIZATION * authorizations.len() as u64 + 16 * input.len() as u64
        };
        let fees = self.upstream.fees().await?;
        // The nonce manager's cached nonce is stale when the account's nonce moved outside
        // this process: another `valet` process sent from it, or an EIP-7702 authorization
        // (`valet wallet delegate`) bumped it. The node then answers "nonce too low" without
        // accepting anything, so one retry with a freshly read nonce is safe. ("already
        // known" is not retried: that transaction is in the pool. Nor are authorizations: a
        // self-sponsored one names the nonce after the transaction's.)
        let mut retried = !authorizations.is_empty();
        let (hash, nonce) = loop {
            let tx = Unsigned {
                to,
                value,
                input: &input,
                authorizations: &authorizations,
                gas_limit,
                fees,
            };
            match self.sign_and_send(tx).await {
                Err(e) if !retried && is_stale_nonce(&e) => {
                    debug!(target: TARGET, what, error = %e, "stale nonce; reading it again");
                    retried = true;
                }
                other => break other?,
            }
        };
        if !self.upstream.wait_for_receipt(hash, MINE_TIMEOUT).await? {
            return Err(Error::Reverted {
                what: what.into(),
                hash,
            });
        }
        debug!(target: TARGET, what, %hash, nonce, "mined");
        Ok(Sent { hash, nonce })
    }

    /// Leases a nonce, signs `tx` and hands it to the node; returns its hash and nonce. On a
    /// refusal the lease is dropped and the nonce cache forgotten.
    async fn sign_and_send(&self, tx: Unsigned<'_>) -> Result<(B256, u64)> {
        let Unsigned {
            to,
            value,
            input,
            authorizations,
            gas_limit,
            fees,
        } = tx;
        let input = input.clone();
        let authorizations = authorizations.to_vec();
        let lease = self.nonces.lease().await?;
        let nonce = lease.nonce();
        let chain_id = self.upstream.chain_id();
        let tx = match (to, authorizations.is_empty()) {
            (to, true) => TypedTransaction::Eip1559(TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                to: to.map_or(TxKind::Create, TxKind::Call),
                value,
                access_list: Default::default(),
                input,
            }),
            (Some(to), false) => TypedTransaction::Eip7702(TxEip7702 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                to,
                value,
                access_list: Default::default(),
                authorization_list: authorizations,
                input,
            }),
            (None, false) => {
                return Err(Error::Signing(
                    "an EIP-7702 transaction cannot create a contract".into(),
                ));
            }
        };
        let signed = NetworkWallet::<Ethereum>::sign_transaction_from(&self.wallet, self.from, tx)
            .await
            .map_err(|e| Error::Signing(e.to_string()))?;
        match self.upstream.send_raw(&signed.encoded_2718()).await {
            Ok(hash) => {
                lease.commit();
                Ok((hash, nonce))
            }
            Err(e) => {
                drop(lease);
                self.nonces.resync().await;
                Err(e)
            }
        }
    }
}

/// What [`Sender::sign_and_send`] signs.
struct Unsigned<'a> {
    to: Option<Address>,
    value: U256,
    input: &'a Bytes,
    authorizations: &'a [SignedAuthorization],
    gas_limit: u64,
    fees: crate::Fees,
}

/// Whether the node refused a transaction only because its nonce was already used (and so
/// accepted nothing): "nonce too low", not "already known".
fn is_stale_nonce(e: &Error) -> bool {
    match e {
        Error::Node { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("nonce too low") || m.contains("nonce is too low") || m.contains("oldnonce")
        }
        _ => false,
    }
}
