//! Valet's EIP-7702 account contract (`contracts/src/ValetAccount.sol`): its committed
//! artifact, its deterministic address, the [EIP-7702] delegation check, the calls an owner and
//! a relayer send to it, the [EIP-712] digest a session key signs for `executeWithKey`, and
//! the on-chain state of a session key.
//!
//! The contract is deployed with CREATE2 through the standard deterministic deployer
//! ([`CREATE2_DEPLOYER`], present on anvil and on most public chains) with a zero salt, so its
//! address depends only on its bytecode and is the same on every chain.
//!
//! [EIP-7702]: https://eips.ethereum.org/EIPS/eip-7702
//! [EIP-712]: https://eips.ethereum.org/EIPS/eip-712

use alloy::primitives::{Address, B256, Bytes, U256, address, keccak256};
use alloy::sol_types::{Eip712Domain, SolCall, SolInterface, SolStruct};

use crate::error::{Error, Result};
use crate::upstream::Upstream;

/// Solidity bindings of the account contract (the parts Valet calls).
pub mod abi {
    #![allow(missing_docs)]

    alloy::sol! {
        /// One call (ERC-7821 layout).
        #[derive(Debug, PartialEq, Eq)]
        struct Call {
            address target;
            uint256 value;
            bytes data;
        }

        /// What a session key signs for `executeWithKey` (EIP-712 primary type).
        #[derive(Debug)]
        struct ExecuteWithKey {
            Call[] calls;
            uint256 nonce;
            uint256 deadline;
        }

        /// What the owner signs for `executeSigned` (EIP-712 primary type); a call to
        /// address(0) is a call to the account itself.
        #[derive(Debug)]
        struct OwnerExecute {
            Call[] calls;
            uint256 nonce;
            uint256 deadline;
        }

        /// The account contract's surface.
        interface IValetAccount {
            struct Permission {
                address target;
                bytes4 selector;
            }
            struct TokenCap {
                address token;
                uint256 limit;
            }
            struct Scope {
                uint32 period;
                uint32 maxCalls;
                uint256 maxValuePerCall;
                uint256 nativeCapPerPeriod;
                Permission[] allowed;
                bytes4[] denied;
                TokenCap[] tokenCaps;
            }
            struct Key {
                uint40 generation;
                uint32 epoch;
                uint40 validAfter;
                uint40 validUntil;
                uint32 period;
                uint32 maxCalls;
                uint32 calls;
                bool revoked;
            }

            function authorizeKey(address key, uint40 validAfter, uint40 validUntil, Scope scope) external returns (uint256 generation);
            function revokeKey(address key) external;
            function revokeAll() external;
            function executeWithKey(Call[] calls, uint256 nonce, uint256 deadline, bytes signature) external;
            function executeSigned(Call[] calls, uint256 nonce, uint256 deadline, bytes signature) external payable;
            function execute(bytes32 mode, bytes executionData) external payable;
            function hashExecute(Call[] calls, uint256 nonce, uint256 deadline) external view returns (bytes32);
            function getKey(address key) external view returns (Key k, bool active);
            function spendInfo(address key, address token) external view returns (bool capped, uint256 limit, uint256 spentThisPeriod, uint256 periodStart);

            error Unauthorized();
            error UnsupportedExecutionMode();
            error InvalidScope();
            error InvalidSignature();
            error InvalidNonce(address key, uint256 nonce);
            error DeadlineExpired();
            error KeyUnknown();
            error KeyRevoked();
            error KeyExpired();
            error KeyNotYetValid();
            error CallLimitExceeded();
            error TargetNotAllowed(address target);
            error FunctionNotAllowed(address target, bytes4 selector);
            error FunctionDenied(address target, bytes4 selector);
            error ValueTooHigh(address target, uint256 value, uint256 max);
            error SpendLimitExceeded(address token, uint256 amount, uint256 remaining);
            error Undecodable(address target);
        }

        /// The two ERC-20 functions a grant uses to clear the wallet's standing allowances.
        interface IErc20Allowance {
            function allowance(address owner, address spender) external view returns (uint256);
            function approve(address spender, uint256 amount) external returns (bool);
        }
    }
}

pub use abi::IValetAccount::{Permission, Scope, TokenCap};
pub use abi::{Call, ExecuteWithKey, OwnerExecute};

/// The committed artifact of `contracts/src/ValetAccount.sol`.
const ARTIFACT: &str = include_str!("../../../contracts/artifacts/ValetAccount.json");

/// The deterministic CREATE2 deployer (Arachnid's proxy): calldata `salt ‖ initcode` deploys
/// `initcode` at `create2(salt, keccak256(initcode))`.
pub const CREATE2_DEPLOYER: Address = address!("0x4e59b44847b379578588920ca78fbf26c0b4956c");

/// `Permission.target` wildcard: any target.
pub const ANY_TARGET: Address = address!("0x3232323232323232323232323232323232323232");
/// `Permission.selector` wildcard: any function.
pub const ANY_SELECTOR: [u8; 4] = [0x32; 4];
/// "No cap" for `Scope.maxValuePerCall` and `Scope.nativeCapPerPeriod`.
pub const UNLIMITED: U256 = U256::MAX;
/// The largest cap the contract stores (caps are `uint104`).
pub const MAX_CAP: U256 = U256::from_limbs([u64::MAX, (1 << 40) - 1, 0, 0]);

/// The account contract's creation code.
pub fn creation_code() -> Result<Vec<u8>> {
    crate::contracts::bytecode_of("ValetAccount.json", ARTIFACT)
}

/// Where [`deploy`] puts the account contract on any chain.
pub fn account_address() -> Result<Address> {
    Ok(CREATE2_DEPLOYER.create2(B256::ZERO, keccak256(creation_code()?)))
}

/// The calldata that deploys the account through [`CREATE2_DEPLOYER`].
pub fn deploy_calldata() -> Result<Bytes> {
    let mut data = B256::ZERO.to_vec();
    data.extend_from_slice(&creation_code()?);
    Ok(data.into())
}

/// What an EOA's code says about its EIP-7702 delegation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delegation {
    /// No code: a plain EOA.
    None,
    /// Delegated to this contract (code `0xef0100 ‖ address`).
    To(Address),
    /// The address holds ordinary contract code.
    Contract,
}

/// Reads `account`'s delegation from its code.
pub async fn delegation(upstream: &Upstream, account: Address) -> Result<Delegation> {
    let code = code(upstream, account).await?;
    Ok(match code.as_ref() {
        [] => Delegation::None,
        [0xef, 0x01, 0x00, rest @ ..] if rest.len() == 20 => {
            Delegation::To(Address::from_slice(rest))
        }
        _ => Delegation::Contract,
    })
}

/// The code at `address`.
pub async fn code(upstream: &Upstream, address: Address) -> Result<Bytes> {
    let v = upstream
        .forward("eth_getCode", &serde_json::json!([address, "latest"]))
        .await?;
    v.as_str()
        .and_then(|s| alloy::primitives::hex::decode(s).ok())
        .map(Bytes::from)
        .ok_or_else(|| Error::BadResponse(format!("eth_getCode returned {v}")))
}

/// The EIP-712 domain of the account contract as delegated to `account` on `chain_id`.
pub fn domain(chain_id: u64, account: Address) -> Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: "ValetAccount",
        version: "2",
        chain_id: chain_id,
        verifying_contract: account,
    }
}

/// The digest a session key signs so that `account` runs `calls` (`executeWithKey`).
pub fn execute_digest(
    chain_id: u64,
    account: Address,
    calls: &[Call],
    nonce: U256,
    deadline: U256,
) -> B256 {
    ExecuteWithKey {
        calls: calls.to_vec(),
        nonce,
        deadline,
    }
    .eip712_signing_hash(&domain(chain_id, account))
}

/// Calldata of `executeWithKey(calls, nonce, deadline, signature)`.
pub fn execute_with_key_calldata(
    calls: Vec<Call>,
    nonce: U256,
    deadline: U256,
    signature: Bytes,
) -> Bytes {
    abi::IValetAccount::executeWithKeyCall {
        calls,
        nonce,
        deadline,
        signature,
    }
    .abi_encode()
    .into()
}

/// ERC-7821 batch mode, the one `execute` accepts: call type 0x01 (batch), revert on failure,
/// no op data.
pub const MODE_BATCH: B256 = B256::new([
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/// The calls of an ERC-7821 `execute(MODE_BATCH, abi.encode(calls))` (an owner batch sent to
/// the account itself), with `address(0)` resolved to `account`; `None` for any other calldata
/// or mode.
pub fn batch_calls(account: Address, data: &[u8]) -> Option<Vec<Call>> {
    let call = abi::IValetAccount::executeCall::abi_decode(data).ok()?;
    if call.mode != MODE_BATCH {
        return None;
    }
    let mut calls =
        <Vec<Call> as alloy::sol_types::SolValue>::abi_decode(&call.executionData).ok()?;
    for c in &mut calls {
        if c.target == Address::ZERO {
            c.target = account;
        }
    }
    Some(calls)
}

/// Calldata of `executeSigned(calls, nonce, deadline, signature)`: owner calls signed by the
/// account's own key ([`OwnerExecute`]) and relayed by anyone.
pub fn execute_signed_calldata(
    calls: Vec<Call>,
    nonce: U256,
    deadline: U256,
    signature: Bytes,
) -> Bytes {
    abi::IValetAccount::executeSignedCall {
        calls,
        nonce,
        deadline,
        signature,
    }
    .abi_encode()
    .into()
}

/// Calldata of `authorizeKey(key, validAfter, validUntil, scope)`.
pub fn authorize_key_calldata(
    key: Address,
    valid_after: u64,
    valid_until: u64,
    scope: Scope,
) -> Bytes {
    abi::IValetAccount::authorizeKeyCall {
        key,
        validAfter: alloy::primitives::Uint::<40, 1>::saturating_from(valid_after),
        validUntil: alloy::primitives::Uint::<40, 1>::saturating_from(valid_until),
        scope,
    }
    .abi_encode()
    .into()
}

/// Calldata of the owner's ERC-7821 batch `execute(MODE_BATCH, abi.encode(calls))`, sent by
/// the wallet to itself (a call to `address(0)` is a call to the account itself).
pub fn execute_batch_calldata(calls: Vec<Call>) -> Bytes {
    abi::IValetAccount::executeCall {
        mode: MODE_BATCH,
        executionData: alloy::sol_types::SolValue::abi_encode(&calls).into(),
    }
    .abi_encode()
    .into()
}

/// Calldata of ERC-20 `approve(spender, 0)`: clears an allowance.
pub fn clear_allowance_calldata(spender: Address) -> Bytes {
    abi::IErc20Allowance::approveCall {
        spender,
        amount: U256::ZERO,
    }
    .abi_encode()
    .into()
}

/// Reads ERC-20 `token.allowance(owner, spender)`.
pub async fn allowance(
    upstream: &Upstream,
    token: Address,
    owner: Address,
    spender: Address,
) -> Result<U256> {
    let call = abi::IErc20Allowance::allowanceCall { owner, spender };
    let out = upstream.call(token, &call.abi_encode().into()).await?;
    abi::IErc20Allowance::allowanceCall::abi_decode_returns(&out)
        .map_err(|e| Error::BadResponse(format!("allowance output of {token}: {e}")))
}

/// Calldata of `revokeKey(key)`.
pub fn revoke_key_calldata(key: Address) -> Bytes {
    abi::IValetAccount::revokeKeyCall { key }
        .abi_encode()
        .into()
}

/// Calldata of `revokeAll()`.
pub fn revoke_all_calldata() -> Bytes {
    abi::IValetAccount::revokeAllCall {}.abi_encode().into()
}

/// A session key's record on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// Ever granted on this account.
    pub granted: bool,
    /// Usable now (granted, not revoked, inside its validity window, current epoch).
    pub active: bool,
    /// Revoked (by the owner or by itself); a revoke-all shows as inactive, not revoked.
    pub revoked: bool,
    /// Valid from this Unix second.
    pub valid_after: u64,
    /// Valid until before this Unix second.
    pub valid_until: u64,
    /// Seconds per spend period (0: caps are for the key's lifetime).
    pub period: u64,
}

/// A session key's cap on one asset, with what it spent in the current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapState {
    /// The token (`None`: native).
    pub token: Option<Address>,
    /// The cap per period, in base units.
    pub limit: U256,
    /// Spent in the current period.
    pub spent: U256,
    /// When the current period started (Unix seconds).
    pub period_start: u64,
}

/// Reads `key`'s record on `account`.
pub async fn key_state(upstream: &Upstream, account: Address, key: Address) -> Result<KeyState> {
    let out = upstream
        .call(
            account,
            &abi::IValetAccount::getKeyCall { key }.abi_encode().into(),
        )
        .await?;
    let r = abi::IValetAccount::getKeyCall::abi_decode_returns(&out)
        .map_err(|e| Error::BadResponse(format!("getKey output: {e}")))?;
    Ok(KeyState {
        granted: r.k.generation.to::<u64>() != 0,
        active: r.active,
        revoked: r.k.revoked,
        valid_after: r.k.validAfter.to::<u64>(),
        valid_until: r.k.validUntil.to::<u64>(),
        period: u64::from(r.k.period),
    })
}

/// Reads `key`'s cap on `token` (`None`: native); `None` when it has no cap there.
pub async fn cap_state(
    upstream: &Upstream,
    account: Address,
    key: Address,
    token: Option<Address>,
) -> Result<Option<CapState>> {
    let call = abi::IValetAccount::spendInfoCall {
        key,
        token: token.unwrap_or(Address::ZERO),
    };
    let out = upstream.call(account, &call.abi_encode().into()).await?;
    let r = abi::IValetAccount::spendInfoCall::abi_decode_returns(&out)
        .map_err(|e| Error::BadResponse(format!("spendInfo output: {e}")))?;
    Ok(r.capped.then(|| CapState {
        token,
        limit: r.limit,
        spent: r.spentThisPeriod,
        period_start: r.periodStart.saturating_to(),
    }))
}

/// The account contract's error named in a node's refusal (the revert data of a failed
/// `eth_call` or `eth_estimateGas`), if it is one.
pub fn revert_of(e: &Error) -> Option<String> {
    match e {
        Error::Node {
            data: Some(data), ..
        } => data
            .as_str()
            .and_then(|d| alloy::primitives::hex::decode(d).ok())
            .and_then(|d| decode_revert(&d)),
        _ => None,
    }
}

/// Names the account contract's custom error in revert `data` (e.g.
/// `FunctionNotAllowed(0x…, 0xa9059cbb)`), if it is one.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    use abi::IValetAccount::IValetAccountErrors as E;
    let e = E::abi_decode(data).ok()?;
    Some(match e {
        E::FunctionNotAllowed(e) => format!(
            "FunctionNotAllowed(target {}, selector 0x{})",
            e.target,
            alloy::primitives::hex::encode(e.selector)
        ),
        E::FunctionDenied(e) => format!(
            "FunctionDenied(target {}, selector 0x{})",
            e.target,
            alloy::primitives::hex::encode(e.selector)
        ),
        E::SpendLimitExceeded(e) => format!(
            "SpendLimitExceeded(token {}, amount {}, remaining {})",
            e.token, e.amount, e.remaining
        ),
        E::ValueTooHigh(e) => format!(
            "ValueTooHigh(target {}, value {}, max {})",
            e.target, e.value, e.max
        ),
        E::TargetNotAllowed(e) => format!("TargetNotAllowed({})", e.target),
        E::Undecodable(e) => format!("Undecodable({})", e.target),
        E::InvalidNonce(e) => format!("InvalidNonce(key {}, nonce {})", e.key, e.nonce),
        E::KeyRevoked(_) => "KeyRevoked".into(),
        E::KeyExpired(_) => "KeyExpired".into(),
        E::KeyNotYetValid(_) => "KeyNotYetValid".into(),
        E::KeyUnknown(_) => "KeyUnknown".into(),
        E::CallLimitExceeded(_) => "CallLimitExceeded".into(),
        E::DeadlineExpired(_) => "DeadlineExpired".into(),
        E::InvalidSignature(_) => "InvalidSignature".into(),
        E::InvalidScope(_) => "InvalidScope".into(),
        E::Unauthorized(_) => "Unauthorized".into(),
        E::UnsupportedExecutionMode(_) => "UnsupportedExecutionMode".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_has_code_and_a_stable_address() {
        assert!(creation_code().unwrap().len() > 1000);
        assert_eq!(account_address().unwrap(), account_address().unwrap());
        assert_eq!(MAX_CAP, (U256::from(1) << 104) - U256::from(1));
    }

    #[test]
    fn the_typed_structs_are_the_contracts() {
        assert_eq!(
            OwnerExecute::eip712_encode_type(),
            "OwnerExecute(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
        );
        assert_eq!(
            ExecuteWithKey::eip712_encode_type(),
            "ExecuteWithKey(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
        );
    }

    #[test]
    fn an_owner_batch_reads_back_into_its_calls() {
        let account = Address::repeat_byte(0xaa);
        let calls = vec![
            Call {
                target: Address::repeat_byte(0x70),
                value: U256::ZERO,
                data: clear_allowance_calldata(Address::repeat_byte(0x77)),
            },
            Call {
                target: Address::ZERO,
                value: U256::ZERO,
                data: revoke_all_calldata(),
            },
        ];
        let back = batch_calls(account, &execute_batch_calldata(calls.clone())).unwrap();
        assert_eq!(back[0], calls[0]);
        assert_eq!(back[1].target, account, "address(0) is the account itself");
        assert_eq!(
            &clear_allowance_calldata(Address::ZERO)[..4],
            [0x09, 0x5e, 0xa7, 0xb3]
        );
    }

    #[test]
    fn an_erc7821_batch_is_read_back_into_its_calls() {
        use alloy::sol_types::SolValue;
        let account = Address::repeat_byte(0xac);
        let calls = vec![
            Call {
                target: Address::repeat_byte(1),
                value: U256::from(5),
                data: Bytes::from(vec![1, 2, 3]),
            },
            Call {
                target: Address::ZERO,
                value: U256::ZERO,
                data: Bytes::new(),
            },
        ];
        let data = abi::IValetAccount::executeCall {
            mode: MODE_BATCH,
            executionData: calls.abi_encode().into(),
        }
        .abi_encode();
        let read = batch_calls(account, &data).unwrap();
        assert_eq!(read[0], calls[0]);
        assert_eq!(read[1].target, account, "address(0) is the account itself");
        let other_mode = abi::IValetAccount::executeCall {
            mode: B256::with_last_byte(1),
            executionData: calls.abi_encode().into(),
        }
        .abi_encode();
        assert_eq!(batch_calls(account, &other_mode), None);
        assert_eq!(batch_calls(account, b"junk"), None);
    }

    #[test]
    fn custom_errors_are_named() {
        use alloy::sol_types::SolError;
        let data = abi::IValetAccount::FunctionNotAllowed {
            target: Address::repeat_byte(1),
            selector: [0xa9, 0x05, 0x9c, 0xbb].into(),
        }
        .abi_encode();
        let text = decode_revert(&data).unwrap();
        assert!(
            text.starts_with("FunctionNotAllowed(target 0x0101"),
            "{text}"
        );
        assert!(text.ends_with("selector 0xa9059cbb)"), "{text}");
        assert_eq!(decode_revert(b"junk"), None);
    }
}
