// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Valet Test USD (tUSD)
/// @notice A 6-decimals test stablecoin for Valet's sandbox and tests. Only its owner (the
///         deployer) mints. It has no value anywhere: never deploy it where real funds live.
contract TestStablecoin is ERC20, Ownable {
    constructor() ERC20("Valet Test USD", "tUSD") Ownable(msg.sender) {}

    /// @notice Six decimals, like USDC and USDT.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Creates `amount` base units for `to`. Owner only.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
