// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {ValetAccount} from "../src/ValetAccount.sol";
import {Vm, MiniToken} from "./ValetAccount.t.sol";

/// forge prints calls to the console address (hardhat's console.log ABI) with -vv.
library console {
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory s) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string)", s));
        ok;
    }

    function log(string memory s, uint256 v) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", s, v));
        ok;
    }
}

/// Gas of `executeWithKey` against the same ERC-20 transfer sent by the EOA itself, like for like.
///
/// How it measures, and why it is fair:
/// - Steady state. setUp (its own transaction) grants the key, then makes one transfer per token
///   through the key, so the nonce lane, the key's spend slot and bob's balance are all non-zero
///   already; the owner holds tokens. Both paths pay for the same token code, the same sender and
///   recipient balance slots, cold at the start.
/// - Warmth of a real transaction. forge runs each test function as one transaction, and vm.cool
///   cools storage but not account access, so each batch size uses its own token (same code, same
///   state), first touched inside the measured call: cold, as in a relayed transaction, where the
///   token is not `to`. The direct transfer's token is warmed first (EXTCODESIZE), as `to` is in a
///   real transaction. The account and its implementation are warm for `executeWithKey`: `to`,
///   and the client warms a delegated `to`'s target (geth state_transition.go; revm charges no
///   access for the first frame's delegated code).
/// - Figures are execution gas measured with gasleft() around the call plus the calldata's
///   intrinsic gas (EIP-2028); the 21,000 base of a transaction is the same on both sides and left
///   out. EIP-7623's calldata floor does not bind for these sizes.
contract ValetAccountGasTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant OWNER_PK = 0xA11CE;
    uint256 internal constant KEY_PK = 0xB0B;
    uint256 internal constant KEY2_PK = 0xC0FFEE;
    uint256 internal constant RELAYER_PK = 0xBEEF;
    uint256 internal constant KEY3_PK = 0xD1CE;
    uint256 internal constant KEY4_PK = 0xD1CE2;
    uint256 internal constant T0 = 1_750_000_000;
    uint256 internal constant BATCHES = 4;

    address internal owner;
    address internal key;
    ValetAccount internal impl;
    ValetAccount internal acct;
    MiniToken[BATCHES + 1] internal tokens; // tokens[0]: direct transfers; tokens[n]: batches of n
    address internal bob = address(0xB0B0);
    uint256 internal sink;

    function setUp() public {
        vm.warp(T0);
        owner = vm.addr(OWNER_PK);
        key = vm.addr(KEY_PK);
        impl = new ValetAccount();
        vm.signAndAttachDelegation(address(impl), OWNER_PK);
        (bool ok,) = owner.call("");
        ok;
        acct = ValetAccount(payable(owner));
        vm.deal(owner, 100 ether);

        ValetAccount.Scope memory s;
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = 1 ether;
        s.nativeCapPerPeriod = 2 ether;
        s.allowed = new ValetAccount.Permission[](BATCHES + 1);
        s.tokenCaps = new ValetAccount.TokenCap[](BATCHES + 1);
        for (uint256 i; i <= BATCHES; ++i) {
            tokens[i] = new MiniToken();
            tokens[i].mint(owner, 1_000_000e6);
            s.allowed[i] = ValetAccount.Permission(address(tokens[i]), MiniToken.transfer.selector);
            s.tokenCaps[i] = ValetAccount.TokenCap(address(tokens[i]), 1_000e6);
        }
        vm.prank(owner);
        acct.authorizeKey(key, uint40(block.timestamp), uint40(block.timestamp + 30 days), s);
        for (uint256 i; i <= BATCHES; ++i) {
            ValetAccount.Call[] memory one = new ValetAccount.Call[](1);
            one[0] = ValetAccount.Call(address(tokens[i]), 0, abi.encodeCall(MiniToken.transfer, (bob, 1)));
            uint256 nonce = acct.getNonce(key, 0);
            acct.executeWithKey(one, nonce, block.timestamp + 1 hours, _sig(KEY_PK, acct.hashExecute(one, nonce, block.timestamp + 1 hours)));
        }
    }

    function _sig(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    /// Intrinsic calldata gas (EIP-2028): 4 per zero byte, 16 per non-zero byte.
    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    /// Warms an account without touching its storage (EXTCODESIZE; the result is kept so the
    /// optimizer cannot drop the opcode).
    function _touch(address a) internal {
        uint256 size;
        assembly {
            size := extcodesize(a)
        }
        sink += size;
    }

    /// Execution gas of `target.call(data)` plus the calldata's intrinsic gas.
    function _measure(address target, bytes memory data) internal returns (uint256 total) {
        uint256 g0 = gasleft();
        (bool ok,) = target.call(data);
        total = g0 - gasleft(); // kept apart from the sum below: operand order is unspecified
        if (!ok) revert("measured call failed");
        total += _calldataGas(data);
    }

    /// One `executeWithKey` of `n` transfers of tokens[n] to bob.
    function _executeWithKey(uint256 n) internal returns (uint256 total) {
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](n);
        for (uint256 i; i < n; ++i) {
            calls[i] = ValetAccount.Call(address(tokens[n]), 0, abi.encodeCall(MiniToken.transfer, (bob, 1e6 + i)));
        }
        uint256 nonce = acct.getNonce(key, 0);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory data = abi.encodeCall(
            ValetAccount.executeWithKey, (calls, nonce, deadline, _sig(KEY_PK, acct.hashExecute(calls, nonce, deadline)))
        );
        vm.cool(owner); // the views above warmed the key's slots; a transaction starts cold
        total = _measure(owner, data);
    }

    function test_gas_executeWithKeyVersusDirect() public {
        uint256[BATCHES + 1] memory ewk;
        for (uint256 n = 1; n <= BATCHES; ++n) {
            ewk[n] = _executeWithKey(n);
        }
        // Direct: the EOA sends token.transfer itself; `to` (the token) is warm, its storage cold.
        MiniToken t = tokens[0];
        _touch(address(t));
        vm.prank(owner);
        uint256 direct = _measure(address(t), abi.encodeCall(MiniToken.transfer, (bob, 1e6)));
        // One more transfer in the same frame, everything warm: what a call of a batch costs by
        // itself (the part of a batch's marginal gas that is not Valet's).
        vm.prank(owner);
        uint256 directWarm = _measure(address(t), abi.encodeCall(MiniToken.transfer, (bob, 1e6 + 1)));

        uint256 overhead = ewk[1] - direct;
        uint256 worstExtra;
        for (uint256 n = 2; n <= BATCHES; ++n) {
            uint256 extra = (ewk[n] - ewk[1]) / (n - 1) - directWarm;
            if (extra > worstExtra) worstExtra = extra;
        }

        console.log("== gas: one ERC-20 transfer under one token cap, steady state (add 21000 base to each) ==");
        console.log("direct transfer sent by the EOA                      ", direct);
        console.log("executeWithKey, 1 transfer                           ", ewk[1]);
        console.log("overhead, 1 call with 1 cap check (target <= 25000)  ", overhead);
        console.log("executeWithKey, 2 transfers                          ", ewk[2]);
        console.log("executeWithKey, 3 transfers                          ", ewk[3]);
        console.log("executeWithKey, 4 transfers                          ", ewk[4]);
        console.log("one more direct transfer in the same frame (warm)    ", directWarm);
        console.log("overhead per additional call, worst of 2..4 (<= 8000)", worstExtra);
        console.log("executeSigned: owner grants a key (authorizeKey)     ", _executeSignedGrant());
        console.log("executeWithKey, 1 uncounted call, wildcard, no caps  ", _wildcardCall(KEY3_PK, false));
        console.log("executeWithKey, 1 uncounted call, wildcard, capped   ", _wildcardCall(KEY4_PK, true));
    }

    /// One `executeWithKey` of a call the caps do not count (`mint` on an uncapped token),
    /// admitted by a full wildcard: the slow path. Under a key that caps a token (`capped`), it
    /// must also check that the target is not a capped token (one more cold slot).
    function _wildcardCall(uint256 pk, bool capped) internal returns (uint256) {
        ValetAccount.Scope memory s;
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = type(uint256).max;
        s.nativeCapPerPeriod = type(uint256).max;
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = ValetAccount.Permission(acct.ANY_TARGET(), acct.ANY_SELECTOR());
        s.tokenCaps = new ValetAccount.TokenCap[](capped ? 1 : 0);
        if (capped) s.tokenCaps[0] = ValetAccount.TokenCap(address(tokens[0]), 1_000e6);
        vm.prank(owner);
        acct.authorizeKey(vm.addr(pk), uint40(block.timestamp), uint40(block.timestamp + 30 days), s);
        MiniToken other = new MiniToken();
        other.mint(bob, 1);
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](1);
        calls[0] = ValetAccount.Call(address(other), 0, abi.encodeCall(MiniToken.mint, (bob, 1)));
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(pk, acct.hashExecute(calls, 0, deadline));
        acct.executeWithKey(calls, 0, deadline, sig); // steady state: the nonce word in use
        sig = _sig(pk, acct.hashExecute(calls, 1, deadline));
        bytes memory data = abi.encodeCall(ValetAccount.executeWithKey, (calls, 1, deadline, sig));
        vm.cool(owner);
        vm.cool(address(other));
        return _measure(owner, data);
    }

    /// An owner-signed, relayed grant of a key with one exact permission and one token cap (the
    /// account and its implementation warm as `to`; the key's slots fresh).
    function _executeSignedGrant() internal returns (uint256) {
        ValetAccount.Scope memory s;
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = 0;
        s.nativeCapPerPeriod = type(uint256).max;
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = ValetAccount.Permission(address(tokens[0]), MiniToken.transfer.selector);
        s.tokenCaps = new ValetAccount.TokenCap[](1);
        s.tokenCaps[0] = ValetAccount.TokenCap(address(tokens[0]), 1_000e6);
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](1);
        calls[0] = ValetAccount.Call(
            address(0),
            0,
            abi.encodeCall(
                ValetAccount.authorizeKey,
                (vm.addr(KEY2_PK), uint40(block.timestamp), uint40(block.timestamp + 30 days), s)
            )
        );
        uint256 nonce = acct.getOwnerNonce(0);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory data = abi.encodeCall(
            ValetAccount.executeSigned,
            (calls, nonce, deadline, _sig(OWNER_PK, acct.hashOwnerExecute(calls, nonce, deadline)))
        );
        vm.cool(owner);
        return _measure(owner, data);
    }
}
