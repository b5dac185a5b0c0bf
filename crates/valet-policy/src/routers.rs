//! The built-in registry of trusted DEX routers, Uniswap V3 position managers and
//! wrapped-native tokens per known chain (Ethereum mainnet, Base, Arbitrum One, OP Mainnet),
//! extended by a policy's `routers`.

use alloy_primitives::{Address, address};

/// The canonical Permit2 contract (the same address on every chain).
pub const PERMIT2: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");

/// The canonical Multicall3 contract (the same address on every chain).
pub const MULTICALL3: Address = address!("0xcA11bde05977b3631167028862bE2a173976CA11");

/// A built-in trusted router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    /// Its address.
    pub address: Address,
    /// Whether it reads the recipient sentinels: `address(1)` as its caller and `address(2)`
    /// as itself (SwapRouter02's swaps, the Universal Router's commands). Uniswap V2 Router02
    /// and the original V3 SwapRouter pay those addresses as written: the output is burned.
    pub reads_sentinels: bool,
}

const fn literal(address: Address) -> Router {
    Router {
        address,
        reads_sentinels: false,
    }
}

const fn sentinels(address: Address) -> Router {
    Router {
        address,
        reads_sentinels: true,
    }
}

const ETHEREUM: &[Router] = &[
    literal(address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D")), // Uniswap V2 Router02
    literal(address!("0xE592427A0AEce92De3Edee1F18E0157C05861564")), // V3 SwapRouter
    sentinels(address!("0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45")), // SwapRouter02
    sentinels(address!("0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD")), // Universal Router 1.2
    sentinels(address!("0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af")), // Universal Router 2.0
];
const BASE: &[Router] = &[
    literal(address!("0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24")), // Uniswap V2 Router02
    sentinels(address!("0x2626664c2603336E57B271c5C0b26F421741e481")), // SwapRouter02
    sentinels(address!("0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD")), // Universal Router 1.2
    sentinels(address!("0x6fF5693b99212Da76ad316178A184AB56D299b43")), // Universal Router 2.0
];
const ARBITRUM: &[Router] = &[
    literal(address!("0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24")), // Uniswap V2 Router02
    literal(address!("0xE592427A0AEce92De3Edee1F18E0157C05861564")), // V3 SwapRouter
    sentinels(address!("0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45")), // SwapRouter02
    sentinels(address!("0x5E325eDA8064b456f4781070C0738d849c824258")), // Universal Router 1.2
    sentinels(address!("0xA51afAFe0263b40EdaEf0Df8781eA9aa03E381a3")), // Universal Router 2.0
];
const OPTIMISM: &[Router] = &[
    literal(address!("0x4A7b5Da61326A6379179b40d00F57E5bbDC962c2")), // Uniswap V2 Router02
    literal(address!("0xE592427A0AEce92De3Edee1F18E0157C05861564")), // V3 SwapRouter
    sentinels(address!("0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45")), // SwapRouter02
    sentinels(address!("0xCb1355ff08Ab38bBCE60111F1bb2B784bE25D7e8")), // Universal Router 1.2
    sentinels(address!("0x851116D9223fabED8E56C0E6b8Ad0c31d98B3507")), // Universal Router 2.0
];

/// The built-in trusted routers of a chain (empty for an unknown chain). Routers a policy adds
/// with `routers = [...]` are not in this list and are assumed not to read sentinels.
pub fn builtin_routers(chain_id: u64) -> &'static [Router] {
    match chain_id {
        1 => ETHEREUM,
        8453 => BASE,
        42161 => ARBITRUM,
        10 => OPTIMISM,
        _ => &[],
    }
}

/// The Uniswap V3 NonfungiblePositionManager of a known chain: its positions are ERC-721
/// tokens, and SwapRouter02's permissionless `callPositionManager` lets anyone use an approval
/// of a position to a router, so no approval on it is ever granted by swap-only.
pub fn builtin_position_manager(chain_id: u64) -> Option<Address> {
    match chain_id {
        1 | 42161 | 10 => Some(address!("0xC36442b4a4522E871399CD717aBDD847Ab11FE88")),
        8453 => Some(address!("0x03a520b32C04BF3bEEf7BEb72E919cf822Ed34f1")),
        _ => None,
    }
}

/// The canonical wrapped-native token (WETH) of a known chain.
pub fn builtin_weth(chain_id: u64) -> Option<Address> {
    match chain_id {
        1 => Some(address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2")),
        8453 | 10 => Some(address!("0x4200000000000000000000000000000000000006")),
        42161 => Some(address!("0x82aF49447D8a07e3bd95BD0d56f35241523fBab1")),
        _ => None,
    }
}
