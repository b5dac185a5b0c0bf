//! What on-chain mode needs on the command line: the relayer's keystore and the owner's
//! custody and sender (for grants and revocations sent without a running gateway).

use crate::home::{Home, HomeArgs};
use anyhow::Context as _;
use std::path::Path;
use valet_keys::{KeystoreLimits, Wallet};
use zeroize::Zeroizing;

/// The directory of session keystores inside the home.
pub(crate) const SESSIONS: &str = "sessions";

/// Opens the relayer's keystore; its passphrase comes from env `VALET_RELAYER_PASSWORD`, else
/// a prompt.
pub(crate) fn relayer(path: &Path) -> anyhow::Result<Wallet> {
    let pass =
        match std::env::var("VALET_RELAYER_PASSWORD") {
            Ok(p) => Zeroizing::new(p),
            Err(_) => Zeroizing::new(rpassword::prompt_password("Relayer passphrase: ").context(
                "no relayer passphrase: set VALET_RELAYER_PASSWORD or run in a terminal",
            )?),
        };
    Wallet::open(path, pass.as_bytes(), KeystoreLimits::default())
        .with_context(|| format!("cannot open the relayer keystore {}", path.display()))
}

/// The owner's side of on-chain mode, opened from the home: the wallet (for signing its own
/// set-up transactions), the session key custody, and a sender on the configured node.
pub(crate) struct OwnerChain {
    /// Session key custody.
    pub(crate) onchain: valet_server::Onchain,
    /// The wallet (the owner).
    pub(crate) wallet: Wallet,
    /// The wallet sending to itself.
    pub(crate) sender: valet_chain::Sender,
}

impl OwnerChain {
    /// Opens the wallet (asks for its passphrase) and connects to the home's node.
    pub(crate) async fn open(home: &Home, home_args: &HomeArgs) -> anyhow::Result<Self> {
        let pass = home_args.passphrase("Wallet passphrase: ", false)?;
        let wallet = Wallet::open(&home.keystore(), pass.as_bytes(), KeystoreLimits::default())?;
        let onchain = valet_server::Onchain::new(
            home.dir.join(SESSIONS),
            Zeroizing::new(pass.as_bytes().to_vec()),
            None,
        )?;
        let sender = home.sender(wallet.network_wallet()).await?;
        Ok(Self {
            onchain,
            wallet,
            sender,
        })
    }

    /// As [`valet_server::issue`] and the revocations take it.
    pub(crate) fn parts(&self) -> valet_server::OwnerChain<'_> {
        valet_server::OwnerChain {
            onchain: &self.onchain,
            wallet: &self.wallet,
            sender: &self.sender,
        }
    }
}
