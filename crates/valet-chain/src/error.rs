//! The crate's error type.

use alloy::primitives::B256;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to the chain or starting local tools.
///
/// No variant ever carries the upstream node's URL: URLs of hosted nodes embed API keys or
/// credentials. Messages say "upstream node" instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The upstream node could not be reached, or the connection broke (refused, reset, DNS,
    /// TLS): the request may or may not have arrived.
    #[error("upstream node unreachable: {0}")]
    Transport(String),
    /// The node answered with a JSON-RPC error object (e.g. "nonce too low", an execution
    /// revert from `eth_estimateGas`). Passed through as the node sent it.
    #[error("upstream node error {code}: {message}")]
    Node {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's error message.
        message: String,
        /// The error object's `data` member, if any (revert data, for instance).
        data: Option<serde_json::Value>,
    },
    /// The node answered, but not with a usable JSON-RPC response (not JSON, wrong id, neither
    /// `result` nor `error`, a value of the wrong shape, a body too large).
    #[error("upstream node sent a bad response: {0}")]
    BadResponse(String),
    /// The node did not answer within the request timeout.
    #[error("upstream node did not answer in time")]
    Timeout,
    /// The TLS settings cannot be used (an unreadable or empty CA file).
    #[error("TLS: {0}")]
    Tls(String),
    /// The upstream URL cannot be used (the reason only, never the URL).
    #[error("invalid upstream node URL: {0}")]
    InvalidUrl(String),
    /// A local file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path if there is one.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local tool (anvil) is missing or did not start.
    #[error("{0}")]
    Spawn(String),
    /// A contract artifact is missing or unreadable.
    #[error("contract artifact {name}: {reason}")]
    Artifact {
        /// The artifact's name or path.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signer refused or failed to sign.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A transaction was mined but reverted.
    #[error("transaction {hash} ({what}) reverted")]
    Reverted {
        /// What the transaction was for.
        what: String,
        /// Its hash.
        hash: B256,
    },
    /// A sent transaction was not mined within the time allowed.
    #[error("transaction {0} was not mined in time")]
    NotMined(B256),
}

impl Error {
    /// Whether the node rejected a transaction because its nonce was already used: the
    /// caller should [`NonceManager::resync`](crate::NonceManager::resync) and build the
    /// transaction again. Matches the messages of geth, reth, erigon, nethermind and anvil.
    pub fn is_nonce_too_low(&self) -> bool {
        match self {
            Self::Node { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("nonce too low")
                    || m.contains("nonce is too low")
                    || m.contains("oldnonce")
                    || m.contains("already known")
            }
            _ => false,
        }
    }

    /// Whether the failure happened before or while reaching the node, so the node may be
    /// momentarily unavailable ([`Error::Transport`] or [`Error::Timeout`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::Timeout)
    }
}
