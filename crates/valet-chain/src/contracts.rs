//! Real contracts deployed onto a chain: an OpenZeppelin ERC-20 test stablecoin, WETH9, and
//! Uniswap V2 (factory, Router02, one tUSD/WETH pair with liquidity).
//!
//! Uniswap's and WETH9's bytecode come from the compiled builds of the pinned npm packages
//! `@uniswap/v2-core` and `@uniswap/v2-periphery` under `tools/node_modules`, read at run time
//! (found like [`Anvil`](crate::Anvil)'s binary). The test stablecoin is compiled from
//! `contracts/src/TestStablecoin.sol` by `tools/compile-contracts.js` into the committed
//! `contracts/artifacts/TestStablecoin.json`, embedded here.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256, b256, keccak256, uint};
use alloy::sol_types::{SolCall, SolValue};
use std::path::Path;
use tracing::debug;

use crate::error::{Error, Result};
use crate::send::Sender;
use crate::tools;
use crate::upstream::Upstream;

/// Solidity interfaces of the sandbox contracts, for building calldata and reading results
/// (`alloy::sol!` bindings: `abi::IERC20::balanceOfCall { .. }.abi_encode()`).
pub mod abi {
    #![allow(missing_docs)]

    alloy::sol! {
        /// The ERC-20 surface of the test stablecoin, plus its owner-only `mint`.
        interface ITestStablecoin {
            function mint(address to, uint256 amount) external;
            function approve(address spender, uint256 amount) external returns (bool);
            function transfer(address to, uint256 amount) external returns (bool);
            function balanceOf(address owner) external view returns (uint256);
            function decimals() external view returns (uint8);
            function symbol() external view returns (string);
            function owner() external view returns (address);
        }

        /// Uniswap V2 factory: the pair of two tokens.
        interface IUniswapV2Factory {
            function getPair(address tokenA, address tokenB) external view returns (address pair);
        }

        /// Uniswap V2 pair: its reserves.
        interface IUniswapV2Pair {
            function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
            function token0() external view returns (address);
        }

        /// The Uniswap V2 Router02 functions the sandbox and its tests use.
        interface IUniswapV2Router02 {
            function addLiquidityETH(address token, uint256 amountTokenDesired, uint256 amountTokenMin, uint256 amountETHMin, address to, uint256 deadline) external payable returns (uint256 amountToken, uint256 amountETH, uint256 liquidity);
            function swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline) external payable returns (uint256[] amounts);
            function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline) external returns (uint256[] amounts);
            function swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline) external returns (uint256[] amounts);
            function getAmountsOut(uint256 amountIn, address[] path) external view returns (uint256[] amounts);
        }
    }
}

/// The test stablecoin's name.
pub const TOKEN_NAME: &str = "Valet Test USD";
/// The test stablecoin's symbol.
pub const TOKEN_SYMBOL: &str = "tUSD";
/// The test stablecoin's decimals.
pub const TOKEN_DECIMALS: u8 = 6;
/// tUSD put into the pool by [`deploy_sandbox`]: 1 000 000 tUSD, in base units.
pub const LIQUIDITY_TOKEN: U256 = uint!(1_000_000_000_000_U256);
/// ETH put into the pool by [`deploy_sandbox`]: 500 ETH, in wei (so 1 ETH ≈ 2 000 tUSD).
pub const LIQUIDITY_ETH: U256 = uint!(500_000_000_000_000_000_000_U256);
/// keccak256 of the `UniswapV2Pair` creation code, the pair init code hash built into
/// Router02 (`UniswapV2Library.pairFor`). [`deploy_sandbox`] checks that the deployed factory
/// creates its pair at the address this hash predicts.
pub const PAIR_INIT_CODE_HASH: B256 =
    b256!("96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f");

/// The committed artifact of `contracts/src/TestStablecoin.sol`.
const TEST_STABLECOIN_ARTIFACT: &str =
    include_str!("../../../contracts/artifacts/TestStablecoin.json");

const TARGET: &str = "valet_chain::contracts";

/// Addresses of the contracts [`deploy_sandbox`] deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sandbox {
    /// "Valet Test USD" (tUSD): an OpenZeppelin ERC-20 with 6 decimals and an owner-only
    /// `mint`, owned by the deployer.
    pub token: Address,
    /// WETH9.
    pub weth: Address,
    /// The Uniswap V2 factory.
    pub factory: Address,
    /// The Uniswap V2 Router02.
    pub router: Address,
    /// The tUSD/WETH Uniswap V2 pair, holding [`LIQUIDITY_TOKEN`] and [`LIQUIDITY_ETH`].
    pub pair: Address,
}

/// Deploys the test stablecoin, WETH9, the Uniswap V2 factory and Router02 with `deployer`
/// (its default signer pays), mints [`LIQUIDITY_TOKEN`] to the deployer and adds it with
/// [`LIQUIDITY_ETH`] as liquidity, so swaps through the router work. The deployer needs a
/// little over 500 ETH. Seven transactions, each waited for; on anvil this takes well under a
/// second.
pub async fn deploy_sandbox(url: &str, deployer: EthereumWallet) -> Result<Sandbox> {
    let factory_code = node_artifact("@uniswap/v2-core/build/UniswapV2Factory.json")?;
    let router_code = node_artifact("@uniswap/v2-periphery/build/UniswapV2Router02.json")?;
    let weth_code = node_artifact("@uniswap/v2-periphery/build/WETH9.json")?;
    let token_code = bytecode_of("TestStablecoin.json", TEST_STABLECOIN_ARTIFACT)?;

    let sender = Sender::new(url, deployer).await?;
    let owner = sender.from();
    let token = sender.deploy("deploy TestStablecoin", token_code).await?;
    let weth = sender.deploy("deploy WETH9", weth_code).await?;
    let factory = sender
        .deploy(
            "deploy UniswapV2Factory",
            with_args(factory_code, owner.abi_encode()),
        )
        .await?;
    let router = sender
        .deploy(
            "deploy UniswapV2Router02",
            with_args(router_code, (factory, weth).abi_encode_params()),
        )
        .await?;

    sender
        .call(
            "mint liquidity tUSD",
            token,
            U256::ZERO,
            abi::ITestStablecoin::mintCall {
                to: owner,
                amount: LIQUIDITY_TOKEN,
            }
            .abi_encode(),
        )
        .await?;
    sender
        .call(
            "approve the router",
            token,
            U256::ZERO,
            abi::ITestStablecoin::approveCall {
                spender: router,
                amount: LIQUIDITY_TOKEN,
            }
            .abi_encode(),
        )
        .await?;
    sender
        .call(
            "add liquidity",
            router,
            LIQUIDITY_ETH,
            abi::IUniswapV2Router02::addLiquidityETHCall {
                token,
                amountTokenDesired: LIQUIDITY_TOKEN,
                amountTokenMin: LIQUIDITY_TOKEN,
                amountETHMin: LIQUIDITY_ETH,
                to: owner,
                deadline: U256::MAX,
            }
            .abi_encode(),
        )
        .await?;

    let get_pair = abi::IUniswapV2Factory::getPairCall {
        tokenA: token,
        tokenB: weth,
    };
    let output = sender
        .upstream()
        .call(factory, &get_pair.abi_encode().into())
        .await?;
    let pair = abi::IUniswapV2Factory::getPairCall::abi_decode_returns(&output)
        .map_err(|e| Error::BadResponse(format!("getPair output: {e}")))?;
    let expected = pair_address(factory, token, weth);
    if pair != expected {
        return Err(Error::Artifact {
            name: "UniswapV2Pair".into(),
            reason: format!(
                "the factory created the pair at {pair}, but Router02's init code hash \
                 predicts {expected}: the Uniswap builds do not match"
            ),
        });
    }
    let sandbox = Sandbox {
        token,
        weth,
        factory,
        router,
        pair,
    };
    debug!(target: TARGET, ?sandbox, "sandbox deployed");
    Ok(sandbox)
}

/// Mints `amount` base units of the sandbox token to `to` (`deployer` must be the token's
/// owner, i.e. the one that deployed the sandbox) and sends `eth` wei to `to`. Either part is
/// skipped when its amount is zero.
pub async fn fund(
    url: &str,
    deployer: EthereumWallet,
    sandbox: &Sandbox,
    to: Address,
    amount: U256,
    eth: U256,
) -> Result<()> {
    let sender = Sender::new(url, deployer).await?;
    if !amount.is_zero() {
        sender
            .call(
                "mint tUSD",
                sandbox.token,
                U256::ZERO,
                abi::ITestStablecoin::mintCall { to, amount }.abi_encode(),
            )
            .await?;
    }
    if !eth.is_zero() {
        sender.call("send ETH", to, eth, Vec::new()).await?;
    }
    Ok(())
}

/// `owner`'s balance of the ERC-20 `token` (`balanceOf`).
pub async fn token_balance(url: &str, token: Address, owner: Address) -> Result<U256> {
    let upstream = Upstream::connect(url).await?;
    let call = abi::ITestStablecoin::balanceOfCall { owner };
    let output = upstream.call(token, &call.abi_encode().into()).await?;
    abi::ITestStablecoin::balanceOfCall::abi_decode_returns(&output)
        .map_err(|e| Error::BadResponse(format!("balanceOf output: {e}")))
}

/// The address of the Uniswap V2 pair of `token_a` and `token_b` created by `factory`
/// (CREATE2 with [`PAIR_INIT_CODE_HASH`], as Router02 computes it).
pub fn pair_address(factory: Address, token_a: Address, token_b: Address) -> Address {
    let (token0, token1) = if token_a < token_b {
        (token_a, token_b)
    } else {
        (token_b, token_a)
    };
    let salt = keccak256([token0.as_slice(), token1.as_slice()].concat());
    factory.create2(salt, PAIR_INIT_CODE_HASH)
}

/// The creation bytecode (`bytecode` field) of a compiled build under `tools/node_modules`.
fn node_artifact(relative: &str) -> Result<Vec<u8>> {
    let path = tools::find(Path::new(relative)).ok_or_else(|| Error::Artifact {
        name: relative.into(),
        reason: format!(
            "not found under tools/node_modules (or ${}): run ./tools/install.sh",
            tools::NODE_MODULES_ENV
        ),
    })?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    bytecode_of(relative, &text)
}

/// The `bytecode` field of a JSON artifact, hex with or without `0x`.
pub(crate) fn bytecode_of(name: &str, json: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::Artifact {
        name: name.into(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let hex_code = value
        .get("bytecode")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("no bytecode string".into()))?;
    let code = alloy::primitives::hex::decode(hex_code)
        .map_err(|e| bad(format!("bytecode is not hex: {e}")))?;
    if code.is_empty() {
        return Err(bad("empty bytecode".into()));
    }
    Ok(code)
}

/// Creation code followed by ABI-encoded constructor arguments.
fn with_args(mut code: Vec<u8>, args: Vec<u8>) -> Vec<u8> {
    code.extend_from_slice(&args);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liquidity_constants() {
        assert_eq!(
            LIQUIDITY_TOKEN,
            U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(6))
        );
        assert_eq!(
            LIQUIDITY_ETH,
            U256::from(500u64) * U256::from(10u64).pow(U256::from(18))
        );
    }

    #[test]
    fn embedded_token_artifact_has_bytecode() {
        let code = bytecode_of("TestStablecoin.json", TEST_STABLECOIN_ARTIFACT).unwrap();
        assert!(code.len() > 1000);
    }

    /// Router02's built-in init code hash is the hash of the pair the factory build creates.
    #[test]
    fn router_init_code_hash_matches_the_pair_build() {
        let pair = node_artifact("@uniswap/v2-core/build/UniswapV2Pair.json").unwrap();
        assert_eq!(keccak256(&pair), PAIR_INIT_CODE_HASH);
        let factory = node_artifact("@uniswap/v2-core/build/UniswapV2Factory.json").unwrap();
        assert!(
            factory.windows(pair.len()).any(|w| w == pair.as_slice()),
            "factory embeds the pair build"
        );
        let router = node_artifact("@uniswap/v2-periphery/build/UniswapV2Router02.json").unwrap();
        assert!(
            router
                .windows(32)
                .any(|w| w == PAIR_INIT_CODE_HASH.as_slice()),
            "Router02 has the init code hash built in"
        );
    }
}
