// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {ValetAccount} from "../src/ValetAccount.sol";
import {ValetAccountBase, MiniToken} from "./ValetAccount.t.sol";

/// A token with the ways real tokens move balances besides the four ERC-20 functions the caps
/// count: ERC-677 `transferAndCall`, DSToken-style `push`/`move`, ERC-777 `send` and
/// `authorizeOperator`/`operatorSend`, EIP-2612 `permit` (a stub that trusts its caller, worse
/// than any real one), EIP-3009 `transferWithAuthorization` (the same), and a fallback that
/// pays out on any other calldata, including empty calldata.
contract AliasToken is MiniToken {
    mapping(address => mapping(address => bool)) public isOperatorFor;

    function transferAndCall(address to, uint256 amount, bytes calldata) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function push(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    function move(address from, address to, uint256 amount) external {
        require(from == msg.sender, "not yours");
        _move(from, to, amount);
    }

    function send(address to, uint256 amount, bytes calldata) external {
        _move(msg.sender, to, amount);
    }

    function authorizeOperator(address operator) external {
        isOperatorFor[operator][msg.sender] = true;
    }

    function operatorSend(address from, address to, uint256 amount, bytes calldata, bytes calldata) external {
        require(isOperatorFor[msg.sender][from], "not an operator");
        _move(from, to, amount);
    }

    function permit(address owner, address spender, uint256 value, uint256, uint8, bytes32, bytes32) external {
        require(owner == msg.sender, "stub: the owner itself");
        allowance[owner][spender] = value;
    }

    function transferWithAuthorization(address from, address to, uint256 value, uint256, uint256, bytes32, bytes calldata)
        external
    {
        require(from == msg.sender, "stub: the holder itself");
        _move(from, to, value);
    }

    function decreaseAllowance(address spender, uint256 subtracted) external returns (bool) {
        allowance[msg.sender][spender] -= subtracted;
        return true;
    }

    /// Any other calldata (empty, or starting with four zero bytes) sends the caller's whole
    /// balance to the address in its last 20 bytes (or to the caller's first recipient).
    fallback() external {
        address to = msg.data.length >= 24 ? address(bytes20(msg.data[msg.data.length - 20:])) : address(0xdead);
        _move(msg.sender, to, balanceOf[msg.sender]);
    }

    function _move(address from, address to, uint256 amount) internal {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
}

/// The SwapRouter02 functions a stolen key would use on a standing allowance: `pull` (takes the
/// caller's tokens on its allowance), `sweepToken` (pays the router's balance to anyone),
/// `multicall` (runs both in one call), and a swap that pays `amountIn` of `path[0]` from the
/// caller to `to` (a swap whose output is the input, which is all these tests need).
contract MockRouter {
    function pull(address token, uint256 value) external payable {
        MiniToken(token).transferFrom(msg.sender, address(this), value);
    }

    function sweepToken(address token, uint256, address recipient) external payable {
        MiniToken(token).transfer(recipient, MiniToken(token).balanceOf(address(this)));
    }

    function multicall(bytes[] calldata data) external payable returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i; i < data.length; ++i) {
            (bool ok, bytes memory ret) = address(this).delegatecall(data[i]);
            if (!ok) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            results[i] = ret;
        }
    }

    function swapExactTokensForTokens(uint256 amountIn, uint256, address[] calldata path, address to)
        external
        payable
        returns (uint256)
    {
        MiniToken(path[0]).transferFrom(msg.sender, to, amountIn);
        return amountIn;
    }
}

/// Permit2's allowance transfer: `approve` (the owner's call) and `transferFrom` (the spender's),
/// which moves tokens on the owner's ERC-20 allowance to Permit2.
contract MockPermit2 {
    mapping(address => mapping(address => mapping(address => uint160))) public allowance;

    function approve(address token, address spender, uint160 amount, uint48) external {
        allowance[msg.sender][token][spender] = amount;
    }

    function transferFrom(address from, address to, uint160 amount, address token) external {
        allowance[from][token][msg.sender] -= amount;
        MiniToken(token).transferFrom(from, to, amount);
    }
}

/// The Universal Router's PERMIT2_TRANSFER_FROM command (0x02): (token, recipient, amount) paid
/// from the caller's Permit2 allowance to the router.
contract MockUniversalRouter {
    MockPermit2 internal immutable permit2;

    constructor(MockPermit2 p) {
        permit2 = p;
    }

    function execute(bytes calldata commands, bytes[] calldata inputs) external payable {
        for (uint256 i; i < commands.length; ++i) {
            require(uint8(commands[i]) == 0x02, "only PERMIT2_TRANSFER_FROM");
            (address token, address recipient, uint160 amount) = abi.decode(inputs[i], (address, address, uint160));
            permit2.transferFrom(msg.sender, recipient, amount, token);
        }
    }
}

/// Calls back into the account that called it, as a malicious target would.
contract CallsBack {
    function poke(bytes calldata data) external {
        (bool ok, bytes memory ret) = msg.sender.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}

/// What a stolen session key could do on chain, around the gateway, to move a capped asset out
/// of the wallet or to act as its owner. Each test is an attack; each must be counted against
/// the cap or refused. The list these tests back is in ARCHITECTURE.md ("How a capped asset
/// could leave the wallet: on-chain").
contract ValetAccountAttackTest is ValetAccountBase {
    address internal constant THIEF = address(0x7111EF);
    uint256 internal constant CAP = 1_000e6;
    uint256 internal constant HOARD = 50_000e6;

    AliasToken internal alias_;
    MockRouter internal router;
    MockPermit2 internal permit2;
    MockUniversalRouter internal ur;

    function setUp() public override {
        super.setUp();
        alias_ = new AliasToken();
        alias_.mint(owner, 1_000_000e6);
        router = new MockRouter();
        permit2 = new MockPermit2();
        ur = new MockUniversalRouter(permit2);
    }

    // ------------------------------------------------------------ helpers

    /// The scope `onchain::scope` derives for a swap-only policy with a 1 000 cap on `t`: the
    /// routers' swap functions (and batch entry points) only, approvals on the capped token,
    /// transfers and blanket approvals denied.
    function _swapOnly(address t) internal view returns (ValetAccount.Scope memory s) {
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = type(uint256).max;
        s.nativeCapPerPeriod = type(uint256).max;
        s.allowed = new ValetAccount.Permission[](5);
        s.allowed[0] = _perm(address(router), MockRouter.swapExactTokensForTokens.selector);
        s.allowed[1] = _perm(address(router), MockRouter.multicall.selector);
        s.allowed[2] = _perm(address(ur), MockUniversalRouter.execute.selector);
        s.allowed[3] = _perm(t, MiniToken.approve.selector);
        s.allowed[4] = _perm(t, MiniToken.increaseAllowance.selector);
        s.denied = new bytes4[](2);
        s.denied[0] = MiniToken.transfer.selector;
        s.denied[1] = MiniToken.transferFrom.selector;
        s.tokenCaps = new ValetAccount.TokenCap[](1);
        s.tokenCaps[0] = ValetAccount.TokenCap(t, CAP);
    }

    /// Full access (any target, any function) with a 1 000 cap on `t`.
    function _fullAccess(address t) internal view returns (ValetAccount.Scope memory s) {
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = type(uint256).max;
        s.nativeCapPerPeriod = type(uint256).max;
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(acct.ANY_TARGET(), acct.ANY_SELECTOR());
        s.tokenCaps = new ValetAccount.TokenCap[](1);
        s.tokenCaps[0] = ValetAccount.TokenCap(t, CAP);
    }

    /// The owner's grant as Valet sends it (`OwnerChain::grant`): one owner-signed batch that
    /// first clears the wallet's standing allowances of the capped token to the spenders a key
    /// could reach (routers, Permit2), then grants the key. Relayed by anyone.
    function _grantClearing(ValetAccount.Scope memory s, address t, address[] memory spenders) internal {
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](spenders.length + 1);
        for (uint256 i; i < spenders.length; ++i) {
            calls[i] = ValetAccount.Call(t, 0, abi.encodeCall(MiniToken.approve, (spenders[i], 0)));
        }
        calls[spenders.length] = ValetAccount.Call(
            address(0),
            0,
            abi.encodeCall(
                ValetAccount.authorizeKey, (key, uint40(block.timestamp), uint40(block.timestamp + 30 days), s)
            )
        );
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(OWNER_PK, acct.hashOwnerExecute(calls, 0, deadline));
        acct.executeSigned(calls, 0, deadline, sig);
    }

    /// The owner's standing allowances a wallet typically has: unlimited to the router and to
    /// Permit2, and an unlimited Permit2 allowance to the Universal Router.
    function _standingAllowances(address t) internal {
        vm.prank(owner);
        MiniToken(t).approve(address(router), type(uint256).max);
        vm.prank(owner);
        MiniToken(t).approve(address(permit2), type(uint256).max);
        vm.prank(owner);
        permit2.approve(t, address(ur), type(uint160).max, type(uint48).max);
    }

    function _spenders() internal view returns (address[] memory s) {
        s = new address[](3);
        s[0] = address(router);
        s[1] = address(permit2);
        s[2] = address(ur);
    }

    function _pullAndSweep(uint256 amount) internal view returns (ValetAccount.Call[] memory) {
        bytes[] memory inner = new bytes[](2);
        inner[0] = abi.encodeCall(MockRouter.pull, (address(token), amount));
        inner[1] = abi.encodeCall(MockRouter.sweepToken, (address(token), 0, THIEF));
        return _one(address(router), 0, abi.encodeCall(MockRouter.multicall, (inner)));
    }

    function _permit2Pull(uint256 amount) internal view returns (ValetAccount.Call[] memory) {
        bytes[] memory inputs = new bytes[](1);
        inputs[0] = abi.encode(address(token), THIEF, uint160(amount));
        return _one(address(ur), 0, abi.encodeCall(MockUniversalRouter.execute, (hex"02", inputs)));
    }

    function _undecodable(address t) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ValetAccount.Undecodable.selector, t);
    }

    // ------------------------------------------------------------ 1. standing router allowances

    /// Before: swap-only granted the routers every function and left the wallet's standing
    /// allowances alone, so `pull` + `sweepToken` (50 000 under a 1 000 cap) went through
    /// uncounted. After: `pull` and `sweepToken` are not granted at the top level, and the grant
    /// batch clears the standing allowance, so the router can only spend what the key approved,
    /// which the cap counts.
    function test_attack_routerPullOfAStandingAllowance() public {
        _standingAllowances(address(token));
        _grantClearing(_swapOnly(address(token)), address(token), _spenders());
        _eq(token.allowance(owner, address(router)), 0, "the grant cleared the router allowance");
        // pull at the top level: not a swap function
        _exec(
            KEY_PK,
            _one(address(router), 0, abi.encodeCall(MockRouter.pull, (address(token), HOARD))),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(router), MockRouter.pull.selector)
        );
        // pull + sweep inside a granted multicall, or a swap paid to the thief: no allowance left
        ValetAccount.Call[] memory calls = _pullAndSweep(HOARD);
        uint256 nonce = acct.getNonce(key, 0);
        bytes memory sig = _signed(acct, KEY_PK, calls, nonce);
        vm.expectRevert();
        acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig);
        address[] memory path = new address[](2);
        path[0] = address(token);
        path[1] = address(token);
        calls = _one(address(router), 0, abi.encodeCall(MockRouter.swapExactTokensForTokens, (HOARD, 0, path, THIEF)));
        sig = _signed(acct, KEY_PK, calls, nonce);
        vm.expectRevert();
        acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig);
        // what the key approves is counted, so the router can take at most the cap
        _ok(KEY_PK, _one(address(token), 0, abi.encodeCall(MiniToken.approve, (address(router), CAP))));
        _ok(KEY_PK, _pullAndSweep(CAP));
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.approve, (address(router), 1))),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 1, 0)
        );
        _eq(token.balanceOf(THIEF), CAP, "the thief got the cap, no more");
    }

    /// Before: a Permit2 allowance to the Universal Router let a `PERMIT2_TRANSFER_FROM` plan
    /// empty it uncounted. After: the grant batch clears the token's allowance to Permit2, so a
    /// Permit2 pull needs an approval of Permit2 by the key, which the cap counts.
    function test_attack_permit2TransferFromThroughTheUniversalRouter() public {
        _standingAllowances(address(token));
        _grantClearing(_swapOnly(address(token)), address(token), _spenders());
        ValetAccount.Call[] memory calls = _permit2Pull(HOARD);
        uint256 nonce = acct.getNonce(key, 0);
        bytes memory sig = _signed(acct, KEY_PK, calls, nonce);
        vm.expectRevert();
        acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig);
        // Permit2's own approve is no swap: not granted to a swap-only key
        _exec(
            KEY_PK,
            _one(address(permit2), 0, abi.encodeCall(MockPermit2.approve, (address(token), THIEF, type(uint160).max, 0))),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(permit2), MockPermit2.approve.selector)
        );
        // re-approving Permit2 is counted: at most the cap can follow
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.approve, (address(permit2), HOARD))),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), HOARD, CAP)
        );
        _ok(KEY_PK, _one(address(token), 0, abi.encodeCall(MiniToken.approve, (address(permit2), CAP))));
        _ok(KEY_PK, _permit2Pull(CAP));
        _eq(token.balanceOf(THIEF), CAP, "the thief got the cap, no more");
    }

    /// Under full access, Permit2's `approve` is callable directly; it only moves what the
    /// token's allowance to Permit2 allows, which the grant cleared and the cap counts.
    function test_attack_permit2ApproveUnderFullAccess() public {
        _standingAllowances(address(token));
        _grantClearing(_fullAccess(address(token)), address(token), _spenders());
        _ok(KEY_PK, _one(address(permit2), 0, abi.encodeCall(MockPermit2.approve, (address(token), THIEF, type(uint160).max, 0))));
        vm.prank(THIEF);
        vm.expectRevert();
        permit2.transferFrom(owner, THIEF, uint160(HOARD), address(token));
        _eq(token.balanceOf(THIEF), 0, "nothing moved");
    }

    // ------------------------------------------------------------ 2. a capped token's own functions

    /// Before: a wildcard (full access, or a token grant without functions) reached the token's
    /// own transfer aliases, which the cap does not count. After: on a capped token only the
    /// counted functions (and decreaseAllowance) run.
    function test_attack_cappedTokenAliasesUnderAWildcard() public {
        ValetAccount.Scope memory s = _fullAccess(address(alias_));
        _grant(key, s);
        _aliasesRefused();
        // a grant of the whole token (`[[allow]]` naming it without functions) is the same
        s.allowed[0] = _perm(address(alias_), acct.ANY_SELECTOR());
        _grant(key, s);
        _aliasesRefused();
        // so is a function granted on any target
        s.allowed[0] = _perm(acct.ANY_TARGET(), AliasToken.push.selector);
        _grant(key, s);
        _exec(KEY_PK, _one(address(alias_), 0, abi.encodeCall(AliasToken.push, (THIEF, HOARD))), _undecodable(address(alias_)));
        _eq(alias_.balanceOf(THIEF), 0, "nothing moved");
    }

    function _aliasesRefused() internal {
        address t = address(alias_);
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.transferAndCall, (THIEF, HOARD, ""))), _undecodable(t));
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.push, (THIEF, HOARD))), _undecodable(t));
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.move, (owner, THIEF, HOARD))), _undecodable(t));
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.send, (THIEF, HOARD, ""))), _undecodable(t));
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.authorizeOperator, (THIEF))), _undecodable(t));
        _exec(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.permit, (owner, THIEF, HOARD, 0, 0, 0, 0))), _undecodable(t));
        _exec(
            KEY_PK,
            _one(t, 0, abi.encodeCall(AliasToken.transferWithAuthorization, (owner, THIEF, HOARD, 0, 0, 0, ""))),
            _undecodable(t)
        );
        _exec(KEY_PK, _one(t, 0, ""), _undecodable(t)); // the fallback
        _exec(KEY_PK, _one(t, 0, abi.encodePacked(bytes4(0), THIEF)), _undecodable(t));
        // an ERC-7821-style batch does not hide one either
        ValetAccount.Call[] memory two = new ValetAccount.Call[](2);
        two[0] = ValetAccount.Call(t, 0, abi.encodeCall(MiniToken.transfer, (THIEF, 1)));
        two[1] = ValetAccount.Call(t, 0, abi.encodeCall(AliasToken.push, (THIEF, HOARD)));
        _exec(KEY_PK, two, _undecodable(t));
        // the counted functions still work and count; decreaseAllowance is free
        _ok(KEY_PK, _one(t, 0, abi.encodeCall(MiniToken.transfer, (THIEF, CAP))));
        _ok(KEY_PK, _one(t, 0, abi.encodeCall(AliasToken.decreaseAllowance, (THIEF, 0))));
        _exec(
            KEY_PK,
            _one(t, 0, abi.encodeCall(MiniToken.transfer, (THIEF, 1))),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, t, 1, 0)
        );
        _eq(alias_.balanceOf(THIEF), CAP, "the cap, no more");
        vm.prank(THIEF);
        alias_.transfer(owner, CAP); // give it back for the next grant
    }

    /// An exact grant of an uncounted function on a capped token is a contradiction: refused.
    function test_attack_exactGrantOfAnAliasOnACappedTokenIsRefused() public {
        ValetAccount.Scope memory s = _fullAccess(address(alias_));
        s.allowed[0] = _perm(address(alias_), AliasToken.transferAndCall.selector);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, uint40(block.timestamp), uint40(block.timestamp + 1 days), s);
        s.allowed[0] = _perm(address(alias_), bytes4(0)); // empty calldata (the fallback)
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, uint40(block.timestamp), uint40(block.timestamp + 1 days), s);
        // the same grant on an uncapped token is fine
        s.tokenCaps = new ValetAccount.TokenCap[](0);
        s.allowed[0] = _perm(address(alias_), AliasToken.transferAndCall.selector);
        _grant(key, s);
    }

    // ------------------------------------------------------------ 3. the empty-calldata selector

    /// Before: a grant of 0x00000000 (a plain native transfer) also admitted calldata that
    /// merely starts with four zero bytes (here: the token's fallback paying out everything).
    /// After: 0x00000000 in a grant means empty calldata only.
    function test_attack_emptyCalldataGrantIsNotTheZeroSelector() public {
        ValetAccount.Scope memory s = _fullAccess(address(token));
        s.allowed = new ValetAccount.Permission[](2);
        s.allowed[0] = _perm(address(alias_), bytes4(0));
        s.allowed[1] = _perm(acct.ANY_TARGET(), bytes4(0));
        _grant(key, s);
        bytes memory zeroSel = abi.encodePacked(bytes4(0), THIEF);
        bytes memory notAllowed =
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(alias_), bytes4(0));
        _exec(KEY_PK, _one(address(alias_), 0, zeroSel), notAllowed);
        _exec(KEY_PK, _one(address(alias_), 0, abi.encodePacked(bytes32(0))), notAllowed);
        _eq(alias_.balanceOf(THIEF), 0, "nothing moved");
        // empty calldata is what the grant names
        _ok(KEY_PK, _one(bob, 1 ether, ""));
        // a function wildcard still admits four zero bytes (uncapped target)
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(address(alias_), acct.ANY_SELECTOR());
        _grant(key2, s);
        _ok(KEY2_PK, _one(address(alias_), 0, zeroSel));
    }

    // ------------------------------------------------------------ 4. owner power

    /// No session-key path reaches the owner: calls to the account itself (its admin functions,
    /// ERC-7821 `execute`, `executeSigned`, a nested `executeWithKey`) are refused; a session
    /// key's signature is neither an owner batch nor an ERC-1271 signature of the wallet; a target
    /// calling back into the account is not the account.
    function test_attack_ownerPowerIsUnreachable() public {
        _grant(key, _fullAccess(address(token)));
        ValetAccount.Call[] memory inner = _one(address(token), 0, abi.encodeCall(MiniToken.transfer, (THIEF, HOARD)));
        bytes[] memory selfCalls = new bytes[](6);
        selfCalls[0] = abi.encodeCall(ValetAccount.execute, (bytes32(uint256(1) << 248), abi.encode(inner)));
        selfCalls[1] = abi.encodeCall(ValetAccount.authorizeKey, (key2, 0, type(uint40).max, _fullAccess(bob)));
        selfCalls[2] = abi.encodeCall(ValetAccount.revokeAll, ());
        selfCalls[3] = abi.encodeCall(ValetAccount.executeSigned, (inner, 0, block.timestamp, ""));
        selfCalls[4] = abi.encodeCall(ValetAccount.executeWithKey, (inner, 1, block.timestamp, ""));
        selfCalls[5] = "";
        bytes memory toSelf = abi.encodeWithSelector(ValetAccount.TargetNotAllowed.selector, owner);
        for (uint256 i; i < selfCalls.length; ++i) {
            _exec(KEY_PK, _one(owner, 0, selfCalls[i]), toSelf);
        }
        // the session key signing an owner batch
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory keySig = _sig(KEY_PK, acct.hashOwnerExecute(inner, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(inner, 0, deadline, keySig);
        // the session key's signature as the wallet's ERC-1271 signature (Permit2, permits...)
        bytes32 h = keccak256("PermitSingle");
        _true(acct.isValidSignature(h, _sig(KEY_PK, h)) == bytes4(0xffffffff), "not the wallet's");
        // a granted target that calls back into the account's owner functions
        CallsBack cb = new CallsBack();
        for (uint256 i; i < 4; ++i) {
            _exec(
                KEY_PK,
                _one(address(cb), 0, abi.encodeCall(CallsBack.poke, (selfCalls[i]))),
                i == 3
                    ? abi.encodeWithSelector(ValetAccount.InvalidSignature.selector)
                    : abi.encodeWithSelector(ValetAccount.Unauthorized.selector)
            );
        }
        _eq(token.balanceOf(THIEF), 0, "nothing moved");
        (ValetAccount.Key memory k,) = acct.getKey(key2);
        _eq(k.generation, 0, "no key granted");
    }

    /// A key granted by the previous version (namespace valet.account.v1, whose wildcards
    /// reached a capped token's aliases) is not honoured after the wallet re-delegates to this
    /// one: storage survives re-delegation, so the rules moved to a new namespace.
    function test_attack_grantsUnderTheOldRulesAreNotHonoured() public {
        bytes32 v1 = 0xe14ae175464b737515ab631ca298d2669873f6f2312897d1e7ec3b9941e82a00;
        // v1's key record: generation 1, epoch 0, valid from 0 until far ahead
        uint256 hot = 1 | (uint256(type(uint40).max) << 112);
        vm.store(owner, keccak256(abi.encode(key, uint256(v1) + 1)), bytes32(hot));
        _exec(KEY_PK, _transfer(THIEF, 1), abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
    }

    // ------------------------------------------------------------ other paths

    /// Native value is counted on every call, in a batch too, whatever the call is.
    function test_attack_valueInABatchIsCounted() public {
        ValetAccount.Scope memory s = _fullAccess(address(token));
        s.nativeCapPerPeriod = 1 ether;
        _grant(key, s);
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](3);
        calls[0] = ValetAccount.Call(THIEF, 0.5 ether, "");
        calls[1] = ValetAccount.Call(address(router), 0.5 ether, abi.encodeCall(MockRouter.sweepToken, (address(token), 0, THIEF)));
        calls[2] = ValetAccount.Call(address(token), 1, abi.encodeCall(MiniToken.transfer, (THIEF, 1)));
        _exec(
            KEY_PK,
            calls,
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(0), 1, 0)
        );
        _eq(THIEF.balance, 0, "nothing moved");
    }

    /// Approvals to any spender (not only routers) and `transferFrom` of the wallet's own tokens
    /// are counted; a batch of approvals cannot add up past the cap.
    function test_attack_approvalsToStrangersAreCounted() public {
        _grant(key, _fullAccess(address(token)));
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](3);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.approve, (THIEF, 600e6)));
        calls[1] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.increaseAllowance, (THIEF, 300e6)));
        calls[2] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transferFrom, (owner, THIEF, 200e6)));
        _exec(
            KEY_PK,
            calls,
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 200e6, 100e6)
        );
        _eq(token.allowance(owner, THIEF), 0, "no allowance left behind");
    }
}
