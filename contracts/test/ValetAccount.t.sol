// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {ValetAccount} from "../src/ValetAccount.sol";

/// The few foundry cheatcodes these tests use (forge-std is not available offline).
interface Vm {
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function signAndAttachDelegation(address implementation, uint256 privateKey) external;
    function etch(address target, bytes calldata code) external;
    function prank(address sender) external;
    function warp(uint256 timestamp) external;
    function chainId(uint256 newChainId) external;
    function deal(address account, uint256 balance) external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert() external;
    function expectEmit() external;
    function assume(bool condition) external pure;
    function label(address account, string calldata name) external;
    function cool(address target) external;
    function load(address target, bytes32 slot) external view returns (bytes32);
    function store(address target, bytes32 slot, bytes32 value) external;
}

/// A tiny ERC-20 with the four functions the caps count.
contract MiniToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function increaseAllowance(address spender, uint256 added) external returns (bool) {
        allowance[msg.sender][spender] += added;
        return true;
    }

    function name() external pure returns (string memory) {
        return "Mini";
    }
}

/// A contract with other storage, to re-delegate to in between.
contract OtherDelegate {
    function wipe(bytes32 slot) external {
        assembly {
            sstore(slot, 0)
        }
    }
}

contract Reverter {
    error Nope();

    function fail() external pure {
        revert Nope();
    }
}

/// State and helpers shared by the account's test suites.
abstract contract ValetAccountBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant OWNER_PK = 0xA11CE;
    uint256 internal constant KEY_PK = 0xB0B;
    uint256 internal constant KEY2_PK = 0xC0FFEE;
    uint256 internal constant OTHER_PK = 0xD00D;
    uint256 internal constant N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
    uint256 internal constant T0 = 1_750_000_000; // a day boundary is at T0 - T0 % 1 days

    address internal owner;
    address internal key;
    address internal key2;
    ValetAccount internal impl;
    ValetAccount internal acct; // the owner's EOA, seen through the delegate's ABI
    MiniToken internal token;
    address internal bob = address(0xB0B0);

    event SpendRecorded(address indexed key, address indexed token, uint256 amount, uint256 spentInPeriod);

    function setUp() public virtual {
        vm.warp(T0);
        owner = vm.addr(OWNER_PK);
        key = vm.addr(KEY_PK);
        key2 = vm.addr(KEY2_PK);
        impl = new ValetAccount();
        token = new MiniToken();
        _delegate(OWNER_PK, address(impl));
        acct = ValetAccount(payable(owner));
        token.mint(owner, 1_000_000e6);
        vm.deal(owner, 100 ether);
        vm.label(owner, "owner");
        vm.label(address(token), "token");
    }

    // ------------------------------------------------------------ helpers

    function _delegate(uint256 pk, address to) internal {
        vm.signAndAttachDelegation(to, pk);
        // The delegation is applied with the next call; any call will do.
        (bool ok,) = vm.addr(pk).call("");
        ok;
    }

    function _perm(address target, bytes4 selector) internal pure returns (ValetAccount.Permission memory) {
        return ValetAccount.Permission(target, selector);
    }

    /// A day-period scope: the four ERC-20 functions on `token` under a 1,000e6 cap, plain
    /// transfers to bob, 1 ether per call and 2 ether per day.
    function _scope() internal view returns (ValetAccount.Scope memory s) {
        s.period = 1 days;
        s.maxCalls = type(uint32).max;
        s.maxValuePerCall = 1 ether;
        s.nativeCapPerPeriod = 2 ether;
        s.allowed = new ValetAccount.Permission[](5);
        s.allowed[0] = _perm(address(token), MiniToken.transfer.selector);
        s.allowed[1] = _perm(address(token), MiniToken.approve.selector);
        s.allowed[2] = _perm(address(token), MiniToken.increaseAllowance.selector);
        s.allowed[3] = _perm(address(token), MiniToken.transferFrom.selector);
        s.allowed[4] = _perm(bob, bytes4(0));
        s.tokenCaps = new ValetAccount.TokenCap[](1);
        s.tokenCaps[0] = ValetAccount.TokenCap(address(token), 1_000e6);
    }

    function _grant(address k, ValetAccount.Scope memory s) internal {
        _grantOn(acct, k, s);
    }

    function _grantOn(ValetAccount a, address k, ValetAccount.Scope memory s) internal {
        vm.prank(address(a));
        a.authorizeKey(k, uint40(block.timestamp), uint40(block.timestamp + 30 days), s);
    }

    function _one(address target, uint256 value, bytes memory data) internal pure returns (ValetAccount.Call[] memory c) {
        c = new ValetAccount.Call[](1);
        c[0] = ValetAccount.Call(target, value, data);
    }

    function _transfer(address to, uint256 amount) internal view returns (ValetAccount.Call[] memory) {
        return _one(address(token), 0, abi.encodeCall(MiniToken.transfer, (to, amount)));
    }

    function _sig(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signed(ValetAccount a, uint256 pk, ValetAccount.Call[] memory calls, uint256 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _sig(pk, a.hashExecute(calls, nonce, block.timestamp + 1 hours));
    }

    /// Signs `calls` with `pk` at the key's next lane-0 nonce and submits them; expects `err`
    /// (empty = success).
    function _exec(uint256 pk, ValetAccount.Call[] memory calls, bytes memory err) internal {
        uint256 nonce = acct.getNonce(vm.addr(pk), 0);
        bytes memory sig = _signed(acct, pk, calls, nonce);
        if (err.length != 0) vm.expectRevert(err);
        acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig);
    }

    function _ok(uint256 pk, ValetAccount.Call[] memory calls) internal {
        _exec(pk, calls, "");
    }

    function _eq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": values differ"));
    }

    function _true(bool c, string memory what) internal pure {
        if (!c) revert(what);
    }

}

contract ValetAccountTest is ValetAccountBase {
    // ------------------------------------------------------------ delegation, storage

    function test_delegationDesignatorAndNamespace() public view {
        _true(keccak256(owner.code) == keccak256(abi.encodePacked(hex"ef0100", address(impl))), "designator");
        bytes32 slot = keccak256(abi.encode(uint256(keccak256("valet.account.v2")) - 1)) & ~bytes32(uint256(0xff));
        _eq(uint256(slot), 0xd42b5f31ce02ef584b6be268be445af21e03a0e0a3e192c0b8ae547a83907800, "erc7201 slot");
    }

    // ------------------------------------------------------------ owner path

    function test_ownerExecuteBatch() public {
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](2);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 5)));
        calls[1] = ValetAccount.Call(bob, 1 ether, "");
        vm.prank(owner);
        acct.execute(bytes32(uint256(1) << 248), abi.encode(calls));
        _eq(token.balanceOf(bob), 5, "token");
        _eq(bob.balance, 1 ether, "native");
        _true(acct.supportsExecutionMode(bytes32(uint256(1) << 248)), "mode");
        _true(!acct.supportsExecutionMode(bytes32(0)), "mode 0");
    }

    function test_ownerExecuteRejectsOthersAndBadMode() public {
        bytes memory data = abi.encode(_transfer(bob, 5));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.execute(bytes32(uint256(1) << 248), data);
        vm.prank(key);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.execute(bytes32(uint256(1) << 248), data);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.UnsupportedExecutionMode.selector));
        acct.execute(bytes32(0), data);
    }

    function test_ownerExecuteCanAdministerKeys() public {
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](1);
        calls[0] = ValetAccount.Call(address(0), 0, abi.encodeCall(ValetAccount.revokeAll, ()));
        vm.prank(owner);
        acct.execute(bytes32(uint256(1) << 248), abi.encode(calls));
        _eq(acct.epoch(), 1, "epoch");
    }

    function test_adminFunctionsAreOwnerOnly() public {
        ValetAccount.Scope memory s = _scope();
        vm.prank(key);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.authorizeKey(key, 0, type(uint40).max, s);
        _grant(key, s);
        vm.prank(key);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.revokeKey(key);
        vm.prank(key);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.revokeAll();
        // Calling the implementation directly grants nothing on anyone's account.
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        impl.authorizeKey(key, 0, type(uint40).max, s);
    }

    function test_isValidSignature() public view {
        bytes32 h = keccak256("hello");
        _true(acct.isValidSignature(h, _sig(OWNER_PK, h)) == bytes4(0x1626ba7e), "owner");
        _true(acct.isValidSignature(h, _sig(KEY_PK, h)) == bytes4(0xffffffff), "other key");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_PK, h);
        bytes memory high = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        _true(acct.isValidSignature(h, high) == bytes4(0xffffffff), "high s");
        _true(acct.isValidSignature(h, hex"00") == bytes4(0xffffffff), "short");
    }

    function test_authorizeKeyRejectsBadScopes() public {
        ValetAccount.Scope memory s = _scope();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(address(0), 0, 1, s);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(owner, 0, 1, s);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, 10, 10, s);
        // an exact allow of a denied selector
        s.denied = new bytes4[](1);
        s.denied[0] = MiniToken.approve.selector;
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, 0, 1, s);
        // the account itself as a target
        s = _scope();
        s.allowed[0] = _perm(owner, bytes4(0));
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, 0, 1, s);
        // a cap too large for storage
        s = _scope();
        s.tokenCaps[0].limit = uint256(type(uint104).max) + 1;
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidScope.selector));
        acct.authorizeKey(key, 0, 1, s);
    }

    // ------------------------------------------------------------ scope

    function test_allowedCallRunsAndRecordsSpend() public {
        _grant(key, _scope());
        vm.expectEmit();
        emit SpendRecorded(key, address(token), 300e6, 300e6);
        _ok(KEY_PK, _transfer(bob, 300e6));
        _eq(token.balanceOf(bob), 300e6, "bob");
        (bool capped, uint256 limit, uint256 spent,) = acct.spendInfo(key, address(token));
        _true(capped, "capped");
        _eq(limit, 1_000e6, "limit");
        _eq(spent, 300e6, "spent");
        _eq(acct.getNonce(key, 0), 1, "nonce");
    }

    function test_functionNotAllowed() public {
        _grant(key, _scope());
        bytes memory data = abi.encodeCall(MiniToken.name, ());
        _exec(
            KEY_PK,
            _one(address(token), 0, data),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(token), MiniToken.name.selector)
        );
        // same selector, other target
        MiniToken other = new MiniToken();
        _exec(
            KEY_PK,
            _one(address(other), 0, abi.encodeCall(MiniToken.transfer, (bob, 1))),
            abi.encodeWithSelector(
                ValetAccount.FunctionNotAllowed.selector, address(other), MiniToken.transfer.selector
            )
        );
        // plain transfer to someone other than bob
        _exec(
            KEY_PK,
            _one(address(0xCAFE), 1, ""),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(0xCAFE), bytes4(0))
        );
        // 1-3 bytes of calldata are undecodable
        _exec(KEY_PK, _one(bob, 0, hex"aabbcc"), abi.encodeWithSelector(ValetAccount.Undecodable.selector, bob));
    }

    function test_wildcards() public {
        ValetAccount.Scope memory s = _scope();
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(address(token), acct.ANY_SELECTOR());
        _grant(key, s);
        // on a capped token a wildcard reaches only the functions the cap counts
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.name, ())),
            abi.encodeWithSelector(ValetAccount.Undecodable.selector, address(token))
        );
        _ok(KEY_PK, _transfer(bob, 1));
        _exec(
            KEY_PK,
            _one(bob, 0, ""),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, bob, bytes4(0))
        );

        s.allowed[0] = _perm(acct.ANY_TARGET(), MiniToken.name.selector);
        s.tokenCaps = new ValetAccount.TokenCap[](0);
        _grant(key2, s);
        _ok(KEY2_PK, _one(address(token), 0, abi.encodeCall(MiniToken.name, ())));
        MiniToken other = new MiniToken();
        _ok(KEY2_PK, _one(address(other), 0, abi.encodeCall(MiniToken.name, ())));
        _exec(
            KEY2_PK,
            _transfer(bob, 1),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(token), MiniToken.transfer.selector)
        );
    }

    function test_accountItselfIsNeverATarget() public {
        ValetAccount.Scope memory s = _scope();
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(acct.ANY_TARGET(), acct.ANY_SELECTOR());
        _grant(key, s);
        ValetAccount.Call[] memory calls = _one(owner, 0, abi.encodeCall(ValetAccount.revokeAll, ()));
        _exec(KEY_PK, calls, abi.encodeWithSelector(ValetAccount.TargetNotAllowed.selector, owner));
        bytes memory exec = abi.encodeCall(ValetAccount.execute, (bytes32(uint256(1) << 248), abi.encode(_transfer(bob, 1))));
        _exec(KEY_PK, _one(owner, 0, exec), abi.encodeWithSelector(ValetAccount.TargetNotAllowed.selector, owner));
        // wildcard everything still works elsewhere
        _ok(KEY_PK, _transfer(bob, 1));
    }

    function test_deniedSelectorBeatsWildcards() public {
        ValetAccount.Scope memory s = _scope();
        s.allowed = new ValetAccount.Permission[](2);
        s.allowed[0] = _perm(acct.ANY_TARGET(), acct.ANY_SELECTOR());
        s.allowed[1] = _perm(address(token), acct.ANY_SELECTOR());
        s.denied = new bytes4[](2);
        s.denied[0] = MiniToken.approve.selector;
        s.denied[1] = bytes4(0);
        _grant(key, s);
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.approve, (bob, 1))),
            abi.encodeWithSelector(ValetAccount.FunctionDenied.selector, address(token), MiniToken.approve.selector)
        );
        _exec(KEY_PK, _one(bob, 1, ""), abi.encodeWithSelector(ValetAccount.FunctionDenied.selector, bob, bytes4(0)));
        _ok(KEY_PK, _transfer(bob, 1));
    }

    // ------------------------------------------------------------ native value

    function test_valuePerCallCap() public {
        _grant(key, _scope());
        _ok(KEY_PK, _one(bob, 1 ether, ""));
        _exec(
            KEY_PK,
            _one(bob, 1 ether + 1, ""),
            abi.encodeWithSelector(ValetAccount.ValueTooHigh.selector, bob, 1 ether + 1, 1 ether)
        );
        _eq(bob.balance, 1 ether, "bob");
    }

    function test_nativePeriodCap() public {
        _grant(key, _scope());
        _ok(KEY_PK, _one(bob, 1 ether, ""));
        _ok(KEY_PK, _one(bob, 0.5 ether, ""));
        _exec(
            KEY_PK,
            _one(bob, 0.6 ether, ""),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(0), 0.6 ether, 0.5 ether)
        );
        vm.warp(block.timestamp + 1 days);
        _ok(KEY_PK, _one(bob, 1 ether, ""));
        _eq(bob.balance, 2.5 ether, "bob");
    }

    // ------------------------------------------------------------ token caps

    function test_tokenCapCountsAllFourFunctions() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](3);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 100e6)));
        calls[1] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.approve, (bob, 200e6)));
        calls[2] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.increaseAllowance, (bob, 300e6)));
        _ok(KEY_PK, calls);
        (,, uint256 spent,) = acct.spendInfo(key, address(token));
        _eq(spent, 600e6, "three counted");
        // transferFrom: bob lets the account pull 500e6 of bob's tokens
        token.mint(bob, 1_000e6);
        vm.prank(bob);
        token.approve(owner, 1_000e6);
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.transferFrom, (bob, owner, 400e6 + 1))),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 400e6 + 1, 400e6)
        );
        _ok(KEY_PK, _one(address(token), 0, abi.encodeCall(MiniToken.transferFrom, (bob, owner, 400e6))));
        (,, spent,) = acct.spendInfo(key, address(token));
        _eq(spent, 1_000e6, "four counted");
        _exec(
            KEY_PK,
            _transfer(bob, 1),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 1, 0)
        );
        // a short transfer cannot dodge the cap
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeWithSelector(MiniToken.transfer.selector, bob)),
            abi.encodeWithSelector(ValetAccount.Undecodable.selector, address(token))
        );
    }

    function test_tokenCapResetsEachPeriodButNotLifetime() public {
        _grant(key, _scope());
        _ok(KEY_PK, _transfer(bob, 1_000e6));
        _exec(
            KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 1, 0)
        );
        vm.warp(block.timestamp + 1 days);
        _ok(KEY_PK, _transfer(bob, 1_000e6));

        ValetAccount.Scope memory s = _scope();
        s.period = 0;
        _grant(key2, s);
        _ok(KEY2_PK, _transfer(bob, 1_000e6));
        vm.warp(block.timestamp + 20 days);
        _exec(
            KEY2_PK,
            _transfer(bob, 1),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 1, 0)
        );
    }

    function test_batchIsAtomic() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](2);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 600e6)));
        calls[1] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 600e6)));
        _exec(
            KEY_PK,
            calls,
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 600e6, 400e6)
        );
        _eq(token.balanceOf(bob), 0, "nothing moved");
        (,, uint256 spent,) = acct.spendInfo(key, address(token));
        _eq(spent, 0, "nothing recorded");
        _eq(acct.getNonce(key, 0), 0, "nonce unused");
        // a failing inner call reverts the batch with its own error
        ValetAccount.Scope memory s = _scope();
        Reverter r = new Reverter();
        s.allowed[4] = _perm(address(r), Reverter.fail.selector);
        _grant(key, s);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 1)));
        calls[1] = ValetAccount.Call(address(r), 0, abi.encodeCall(Reverter.fail, ()));
        _exec(KEY_PK, calls, abi.encodeWithSelector(Reverter.Nope.selector));
        _eq(token.balanceOf(bob), 0, "still nothing moved");
    }

    function test_callCountLimit() public {
        ValetAccount.Scope memory s = _scope();
        s.maxCalls = 3;
        _grant(key, s);
        ValetAccount.Call[] memory two = new ValetAccount.Call[](2);
        two[0] = _transfer(bob, 1)[0];
        two[1] = _transfer(bob, 1)[0];
        _ok(KEY_PK, two);
        _exec(KEY_PK, two, abi.encodeWithSelector(ValetAccount.CallLimitExceeded.selector));
        _ok(KEY_PK, _transfer(bob, 1));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.CallLimitExceeded.selector));
    }

    // ------------------------------------------------------------ validity window, revocation

    function test_validityWindow() public {
        vm.prank(owner);
        acct.authorizeKey(key, uint40(T0 + 100), uint40(T0 + 200), _scope());
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyNotYetValid.selector));
        vm.warp(T0 + 100);
        _ok(KEY_PK, _transfer(bob, 1));
        vm.warp(T0 + 199);
        _ok(KEY_PK, _transfer(bob, 1));
        vm.warp(T0 + 200);
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyExpired.selector));
    }

    function test_unknownKey() public {
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        vm.prank(key);
        acct.revokeSelf();
    }

    function test_revokeKeyAndRegrantStartsClean() public {
        ValetAccount.Scope memory s = _scope();
        s.denied = new bytes4[](1);
        s.denied[0] = MiniToken.name.selector;
        _grant(key, s);
        _ok(KEY_PK, _transfer(bob, 1_000e6));
        vm.prank(owner);
        acct.revokeKey(key);
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        // a re-grant with a narrower scope: old allows, denies and spend are gone
        ValetAccount.Scope memory narrow = _scope();
        narrow.allowed = new ValetAccount.Permission[](1);
        narrow.allowed[0] = _perm(address(token), MiniToken.name.selector);
        narrow.tokenCaps = new ValetAccount.TokenCap[](0);
        _grant(key, narrow);
        _ok(KEY_PK, _one(address(token), 0, abi.encodeCall(MiniToken.name, ())));
        _exec(
            KEY_PK,
            _transfer(bob, 1),
            abi.encodeWithSelector(ValetAccount.FunctionNotAllowed.selector, address(token), MiniToken.transfer.selector)
        );
        _grant(key, _scope());
        _ok(KEY_PK, _transfer(bob, 1_000e6));
    }

    function test_revokeAllKillsEveryKey() public {
        _grant(key, _scope());
        _grant(key2, _scope());
        vm.prank(owner);
        acct.revokeAll();
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        _exec(KEY2_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        (, bool active) = acct.getKey(key);
        _true(!active, "inactive");
        _grant(key, _scope()); // granted under the new epoch
        _ok(KEY_PK, _transfer(bob, 1));
    }

    function test_revokeAllSurvivesRedelegation() public {
        _grant(key, _scope());
        _ok(KEY_PK, _transfer(bob, 1));
        vm.prank(owner);
        acct.revokeAll();
        // undelegate, then delegate again to the same contract
        _delegate(OWNER_PK, address(0));
        _true(owner.code.length == 0, "undelegated");
        _delegate(OWNER_PK, address(impl));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        // through another delegate and back
        _delegate(OWNER_PK, address(new OtherDelegate()));
        _delegate(OWNER_PK, address(impl));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        // a fresh deployment of the same code reads the same namespace
        _delegate(OWNER_PK, address(new ValetAccount()));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        _eq(acct.epoch(), 1, "epoch kept");
    }

    function test_revokeKeySurvivesRedelegation() public {
        _grant(key, _scope());
        vm.prank(owner);
        acct.revokeKey(key);
        _delegate(OWNER_PK, address(0));
        _delegate(OWNER_PK, address(impl));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
    }

    function test_revokeSelfBySender() public {
        _grant(key, _scope());
        vm.prank(key);
        acct.revokeSelf();
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
    }

    function test_revokeSelfSignedIsBoundToOneGrant() public {
        _grant(key, _scope());
        bytes memory sig = _sig(KEY_PK, acct.hashRevokeSelf(key));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.revokeSelfSigned(key2, sig); // not key2's signature
        acct.revokeSelfSigned(key, sig); // anyone relays
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        _grant(key, _scope());
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.revokeSelfSigned(key, sig); // replay against the new grant fails
        _ok(KEY_PK, _transfer(bob, 1));
    }

    // ------------------------------------------------------------ signatures and replay

    function test_digestIsEip712() public view {
        ValetAccount.Call[] memory calls = _transfer(bob, 7);
        bytes32 callHash = keccak256(
            abi.encode(
                keccak256("Call(address target,uint256 value,bytes data)"), calls[0].target, calls[0].value, keccak256(calls[0].data)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "ExecuteWithKey(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
                ),
                keccak256(abi.encodePacked(callHash)),
                uint256(5),
                uint256(9)
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ValetAccount"),
                keccak256("2"),
                block.chainid,
                owner
            )
        );
        _true(acct.hashExecute(calls, 5, 9) == keccak256(abi.encodePacked("\x19\x01", domain, structHash)), "digest");
    }

    function test_usedNonceAndLanes() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        acct.executeWithKey(calls, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, key, 0));
        acct.executeWithKey(calls, 0, deadline, sig);
        // a skipped sequence number is refused too
        sig = _sig(KEY_PK, acct.hashExecute(calls, 5, deadline));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, key, 5));
        acct.executeWithKey(calls, 5, deadline, sig);
        // an independent lane (parallel agent process)
        uint256 lane7 = uint256(7) << 64;
        sig = _sig(KEY_PK, acct.hashExecute(calls, lane7, deadline));
        acct.executeWithKey(calls, lane7, deadline, sig);
        _eq(acct.getNonce(key, 7), lane7 + 1, "lane 7");
        _eq(acct.getNonce(key, 0), 1, "lane 0");
        // nonces are per key: key2 starts at 0 on lane 0
        _grant(key2, _scope());
        _ok(KEY2_PK, calls);
    }

    function test_replayAcrossChains() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        vm.chainId(block.chainid + 1);
        // the digest differs, so the signature recovers some other (unknown) address
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        acct.executeWithKey(calls, 0, deadline, sig);
        _eq(token.balanceOf(bob), 0, "nothing moved");
    }

    function test_replayAcrossAccounts() public {
        address other = vm.addr(OTHER_PK);
        _delegate(OTHER_PK, address(impl));
        ValetAccount acct2 = ValetAccount(payable(other));
        token.mint(other, 1_000e6);
        _grant(key, _scope());
        _grantOn(acct2, key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        acct2.executeWithKey(calls, 0, deadline, sig);
        acct.executeWithKey(calls, 0, deadline, sig);
        _eq(token.balanceOf(other), 1_000e6, "other untouched");
    }

    function test_highSAndMalformedSignaturesRejected() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(KEY_PK, acct.hashExecute(calls, 0, deadline));
        bytes memory high = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeWithKey(calls, 0, deadline, high);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeWithKey(calls, 0, deadline, abi.encodePacked(r, s));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeWithKey(calls, 0, deadline, abi.encodePacked(r, s, uint8(29)));
        // v as 0/1 is accepted
        acct.executeWithKey(calls, 0, deadline, abi.encodePacked(r, s, v - 27));
    }

    function test_deadlineAndTampering() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        // a relayer cannot change the recipient, amount or deadline
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        acct.executeWithKey(_transfer(address(0xEE), 1), 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.KeyUnknown.selector));
        acct.executeWithKey(calls, 0, deadline + 1, sig);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.DeadlineExpired.selector));
        acct.executeWithKey(calls, 0, deadline, sig);
    }

    // ------------------------------------------------------------ packed storage

    function test_regrantKeepsNoncesSoOldSignaturesStayUsed() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig0 = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        acct.executeWithKey(calls, 0, deadline, sig0);
        uint256 lane5 = uint256(5) << 64;
        bytes memory sig5 = _sig(KEY_PK, acct.hashExecute(calls, lane5, deadline));
        acct.executeWithKey(calls, lane5, deadline, sig5);
        vm.prank(owner);
        acct.revokeKey(key);
        vm.prank(owner);
        acct.revokeAll();
        _grant(key, _scope()); // a new grant: clean scope and spend, same nonces
        _eq(acct.getNonce(key, 0), 1, "lane 0 kept");
        _eq(acct.getNonce(key, 5), lane5 + 1, "lane 5 kept");
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, key, 0));
        acct.executeWithKey(calls, 0, deadline, sig0);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, key, lane5));
        acct.executeWithKey(calls, lane5, deadline, sig5);
        (,, uint256 spent,) = acct.spendInfo(key, address(token));
        _eq(spent, 0, "spend starts clean");
    }

    function test_getKeyReportsTheGrant() public {
        ValetAccount.Scope memory s = _scope();
        s.maxCalls = 7;
        vm.prank(owner);
        acct.authorizeKey(key, uint40(T0 - 5), uint40(T0 + 500), s);
        _ok(KEY_PK, _transfer(bob, 1));
        (ValetAccount.Key memory k, bool active) = acct.getKey(key);
        _true(active, "active");
        _eq(k.generation, 1, "generation");
        _eq(k.epoch, 0, "epoch");
        _eq(k.validAfter, T0 - 5, "validAfter");
        _eq(k.validUntil, T0 + 500, "validUntil");
        _eq(k.period, 1 days, "period");
        _eq(k.maxCalls, 7, "maxCalls");
        _eq(k.calls, 1, "calls");
        _true(!k.revoked, "not revoked");
        (bool capped, uint256 limit, uint256 spent, uint256 start) = acct.spendInfo(key, address(0));
        _true(capped, "native capped");
        _eq(limit, 2 ether, "native limit");
        _eq(spent, 0, "native spent");
        _eq(start, T0 - T0 % 1 days, "period start");
        vm.prank(key);
        acct.revokeSelf();
        (k, active) = acct.getKey(key);
        _true(k.revoked && !active, "revoked");
        _eq(acct.getNonce(key, 0), 1, "nonce survives revoke");
    }

    function test_unlimitedValueAndUncappedExactGrants() public {
        ValetAccount.Scope memory s = _scope();
        s.maxValuePerCall = type(uint256).max;
        s.nativeCapPerPeriod = type(uint256).max;
        s.tokenCaps = new ValetAccount.TokenCap[](0);
        _grant(key, s);
        _ok(KEY_PK, _one(bob, 5 ether, ""));
        _ok(KEY_PK, _transfer(bob, 5_000e6)); // exact grant, no cap on this token
        (bool capped,,,) = acct.spendInfo(key, address(token));
        _true(!capped, "uncapped");
        // a short transfer is still undecodable without a cap
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeWithSelector(MiniToken.transfer.selector, bob)),
            abi.encodeWithSelector(ValetAccount.Undecodable.selector, address(token))
        );
    }

    function test_wildcardOnACappedTokenStillCounts() public {
        ValetAccount.Scope memory s = _scope();
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(address(token), acct.ANY_SELECTOR());
        // two caps on the same token: the later one applies
        s.tokenCaps = new ValetAccount.TokenCap[](2);
        s.tokenCaps[0] = ValetAccount.TokenCap(address(token), 5_000e6);
        s.tokenCaps[1] = ValetAccount.TokenCap(address(token), 100e6);
        _grant(key, s);
        _ok(KEY_PK, _transfer(bob, 60e6));
        _exec(
            KEY_PK,
            _one(address(token), 0, abi.encodeCall(MiniToken.approve, (bob, 50e6))),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 50e6, 40e6)
        );
        // ANY_TARGET grants of ERC-20 functions work on any token and still count its cap
        s = _scope();
        s.allowed = new ValetAccount.Permission[](1);
        s.allowed[0] = _perm(acct.ANY_TARGET(), MiniToken.transfer.selector);
        _grant(key2, s);
        _ok(KEY2_PK, _transfer(bob, 900e6));
        _exec(
            KEY2_PK,
            _transfer(bob, 101e6),
            abi.encodeWithSelector(ValetAccount.SpendLimitExceeded.selector, address(token), 101e6, 100e6)
        );
    }

    function test_dirtyCallEncodingRejected() public {
        _grant(key, _scope());
        ValetAccount.Call[] memory calls = _transfer(bob, 1);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sig(KEY_PK, acct.hashExecute(calls, 0, deadline));
        bytes memory data = abi.encodeCall(ValetAccount.executeWithKey, (calls, 0, deadline, sig));
        // the target word of call 0: selector, 4 head words, array length, element offset
        uint256 pos = 4 + 32 * 6;
        data[pos] = 0x01; // dirty upper bits on the target
        (bool ok,) = owner.call(data);
        _true(!ok, "dirty target refused");
        _eq(token.balanceOf(bob), 0, "nothing moved");
        _ok(KEY_PK, calls);
    }

    /// Pins the packed layout the assembly fast paths read (Layout.keys at namespace + 1, the
    /// epoch in the low 32 bits of the namespace slot, Layout.targets at namespace + 2), so a
    /// reordering of Layout cannot silently send every call down the slow path.
    function test_storageLayoutPinned() public {
        ValetAccount.Scope memory s = _scope();
        vm.prank(owner);
        acct.authorizeKey(key, uint40(T0 - 5), uint40(T0 + 500), s);
        _ok(KEY_PK, _transfer(bob, 300e6));
        vm.prank(owner);
        acct.revokeAll();
        bytes32 ns = 0xd42b5f31ce02ef584b6be268be445af21e03a0e0a3e192c0b8ae547a83907800;
        _eq(uint256(vm.load(owner, ns)) & 0xffffffff, 1, "epoch in namespace slot");
        uint256 hot = uint256(vm.load(owner, keccak256(abi.encode(key, uint256(ns) + 1))));
        _eq(hot & 0xffffffffff, 1, "generation");
        _eq((hot >> 40) & 0xffffffff, 0, "epoch of the grant");
        _eq((hot >> 72) & 0xffffffffff, T0 - 5, "validAfter");
        _eq((hot >> 112) & 0xffffffffff, T0 + 500, "validUntil");
        _eq((hot >> 152) & 0xffffffff, 1 days, "period");
        _eq((hot >> 184) & 0xffffffffffffffff, 1, "lane-0 sequence");
        _eq(hot >> 248, 4, "flags: caps a token, not revoked, no call limit");
        bytes32 genSlot = keccak256(abi.encode(uint256(1), uint256(ns) + 2));
        uint256 t = uint256(vm.load(owner, keccak256(abi.encode(address(token), genSlot))));
        _eq(t & ((1 << 104) - 1), 1_000e6, "limit");
        _eq((t >> 104) & ((1 << 104) - 1), 300e6, "spent");
        _eq((t >> 208) & 0xffffffffff, T0 / 1 days, "period index");
        _eq(t >> 248, 0x1f, "capped + four exact ERC-20 grants");
    }

    // ------------------------------------------------------------ owner-signed, relayed

    function _ownerSigned(ValetAccount a, uint256 pk, ValetAccount.Call[] memory calls, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return _sig(pk, a.hashOwnerExecute(calls, nonce, deadline));
    }

    function _grantCall(address k) internal view returns (ValetAccount.Call[] memory) {
        return _one(
            address(0),
            0,
            abi.encodeCall(
                ValetAccount.authorizeKey, (k, uint40(block.timestamp), uint40(block.timestamp + 30 days), _scope())
            )
        );
    }

    function test_executeSignedRunsTheOwnersBatch() public {
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](2);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 5)));
        calls[1] = ValetAccount.Call(bob, 1 ether, "");
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _ownerSigned(acct, OWNER_PK, calls, 0, deadline);
        vm.prank(address(0xBEEF)); // any relayer
        acct.executeSigned(calls, 0, deadline, sig);
        _eq(token.balanceOf(bob), 5, "token");
        _eq(bob.balance, 1 ether, "native");
        _eq(acct.getOwnerNonce(0), 1, "owner nonce");
        _eq(acct.getNonce(key, 0), 0, "session nonces are separate");
        // lanes are independent
        uint256 lane3 = uint256(3) << 64;
        sig = _ownerSigned(acct, OWNER_PK, calls, lane3, deadline);
        acct.executeSigned(calls, lane3, deadline, sig);
        _eq(acct.getOwnerNonce(3), lane3 + 1, "lane 3");
        _eq(acct.getOwnerNonce(0), 1, "lane 0 unchanged");
    }

    function test_executeSignedGrantsAndRevokesKeys() public {
        uint256 deadline = block.timestamp + 1 hours;
        ValetAccount.Call[] memory calls = _grantCall(key);
        acct.executeSigned(calls, 0, deadline, _ownerSigned(acct, OWNER_PK, calls, 0, deadline));
        (ValetAccount.Key memory k, bool active) = acct.getKey(key);
        _true(active, "granted through the relayed owner path");
        _eq(k.generation, 1, "generation");
        _ok(KEY_PK, _transfer(bob, 1));
        // revokeKey and revokeAll pass onlySelf the same way
        calls = _one(address(0), 0, abi.encodeCall(ValetAccount.revokeKey, (key)));
        acct.executeSigned(calls, 1, deadline, _ownerSigned(acct, OWNER_PK, calls, 1, deadline));
        _exec(KEY_PK, _transfer(bob, 1), abi.encodeWithSelector(ValetAccount.KeyRevoked.selector));
        calls = _one(address(0), 0, abi.encodeCall(ValetAccount.revokeAll, ()));
        acct.executeSigned(calls, 2, deadline, _ownerSigned(acct, OWNER_PK, calls, 2, deadline));
        _eq(acct.epoch(), 1, "epoch");
        // the account's address named explicitly works too
        calls = _one(owner, 0, abi.encodeCall(ValetAccount.revokeAll, ()));
        acct.executeSigned(calls, 3, deadline, _ownerSigned(acct, OWNER_PK, calls, 3, deadline));
        _eq(acct.epoch(), 2, "epoch 2");
    }

    function test_executeSignedRejectsOtherSigners() public {
        _grant(key, _scope());
        uint256 deadline = block.timestamp + 1 hours;
        ValetAccount.Call[] memory calls = _grantCall(key2);
        // a session key, even an active one, is not the owner
        bytes memory sig = _ownerSigned(acct, KEY_PK, calls, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        // nor is anyone else
        sig = _ownerSigned(acct, OTHER_PK, calls, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        // a session key's ExecuteWithKey signature over the same calls is a different digest
        sig = _sig(OWNER_PK, acct.hashExecute(calls, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, hex"");
        (, bool active) = acct.getKey(key2);
        _true(!active, "nothing granted");
    }

    function test_executeSignedReplay() public {
        uint256 deadline = block.timestamp + 1 hours;
        ValetAccount.Call[] memory calls = _transfer(bob, 5);
        bytes memory sig = _ownerSigned(acct, OWNER_PK, calls, 0, deadline);
        acct.executeSigned(calls, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, owner, 0));
        acct.executeSigned(calls, 0, deadline, sig);
        // a skipped sequence number is refused too
        sig = _ownerSigned(acct, OWNER_PK, calls, 5, deadline);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidNonce.selector, owner, 5));
        acct.executeSigned(calls, 5, deadline, sig);
        _eq(token.balanceOf(bob), 5, "once");
    }

    function test_executeSignedReplayAcrossChainsAndAccounts() public {
        uint256 deadline = block.timestamp + 1 hours;
        ValetAccount.Call[] memory calls = _transfer(bob, 5);
        bytes memory sig = _ownerSigned(acct, OWNER_PK, calls, 0, deadline);
        // another chain: the domain differs
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        vm.chainId(chain);
        // another account delegated to the same implementation: its own key is not this owner
        address other = vm.addr(OTHER_PK);
        _delegate(OTHER_PK, address(impl));
        ValetAccount acct2 = ValetAccount(payable(other));
        token.mint(other, 1_000e6);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct2.executeSigned(calls, 0, deadline, sig);
        // nor does the implementation itself accept it
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        impl.executeSigned(calls, 0, deadline, sig);
        // and a batch the owner signed for its own account cannot administer another account
        ValetAccount.Call[] memory grantOther = _one(
            other,
            0,
            abi.encodeCall(ValetAccount.authorizeKey, (key, uint40(block.timestamp), uint40(block.timestamp + 1 days), _scope()))
        );
        sig = _ownerSigned(acct, OWNER_PK, grantOther, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.Unauthorized.selector));
        acct.executeSigned(grantOther, 0, deadline, sig);
        // the original still works where it was meant to
        sig = _ownerSigned(acct, OWNER_PK, calls, 0, deadline);
        acct.executeSigned(calls, 0, deadline, sig);
        _eq(token.balanceOf(bob), 5, "moved once");
        _eq(token.balanceOf(other), 1_000e6, "other untouched");
    }

    function test_executeSignedHighSAndDeadline() public {
        uint256 deadline = block.timestamp + 1 hours;
        ValetAccount.Call[] memory calls = _grantCall(key);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_PK, acct.hashOwnerExecute(calls, 0, deadline));
        bytes memory high = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.InvalidSignature.selector));
        acct.executeSigned(calls, 0, deadline, high);
        bytes memory sig = abi.encodePacked(r, s, v);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ValetAccount.DeadlineExpired.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        vm.warp(deadline);
        acct.executeSigned(calls, 0, deadline, sig); // the deadline second itself is still valid
        (, bool active) = acct.getKey(key);
        _true(active, "granted");
    }

    function test_executeSignedBubblesRevertsAndIsAtomic() public {
        uint256 deadline = block.timestamp + 1 hours;
        Reverter r = new Reverter();
        ValetAccount.Call[] memory calls = new ValetAccount.Call[](2);
        calls[0] = ValetAccount.Call(address(token), 0, abi.encodeCall(MiniToken.transfer, (bob, 5)));
        calls[1] = ValetAccount.Call(address(r), 0, abi.encodeCall(Reverter.fail, ()));
        bytes memory sig = _ownerSigned(acct, OWNER_PK, calls, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(Reverter.Nope.selector));
        acct.executeSigned(calls, 0, deadline, sig);
        _eq(token.balanceOf(bob), 0, "nothing moved");
        _eq(acct.getOwnerNonce(0), 0, "nonce unused");
    }

    function test_ownerDigestIsEip712() public view {
        ValetAccount.Call[] memory calls = _transfer(bob, 7);
        bytes32 callHash = keccak256(
            abi.encode(
                keccak256("Call(address target,uint256 value,bytes data)"), calls[0].target, calls[0].value, keccak256(calls[0].data)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "OwnerExecute(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
                ),
                keccak256(abi.encodePacked(callHash)),
                uint256(5),
                uint256(9)
            )
        );
        _true(
            acct.hashOwnerExecute(calls, 5, 9) == keccak256(abi.encodePacked("\x19\x01", acct.domainSeparator(), structHash)),
            "digest"
        );
        _true(acct.OWNER_EXECUTE_TYPEHASH() == keccak256(
            "OwnerExecute(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
        ), "typehash");
    }

    // ------------------------------------------------------------ fuzz

    /// No sequence of batches moves more than the cap out in one period, whatever the amounts,
    /// functions and time steps.
    function testFuzz_capNeverExceededInAPeriod(uint256[12] memory amounts, uint8[12] memory kinds, uint32[12] memory steps)
        public
    {
        uint256 cap = 1_000e6;
        _grant(key, _scope());
        uint256 period = 1 days;
        uint256 currentPeriod = block.timestamp / period;
        uint256 counted; // amounts that went through in the current period
        for (uint256 i; i < 12; ++i) {
            vm.warp(block.timestamp + (steps[i] % 2 days) * (steps[i] % 3 == 0 ? 1 : 0));
            if (block.timestamp / period != currentPeriod) {
                currentPeriod = block.timestamp / period;
                counted = 0;
            }
            uint256 amount = amounts[i] % (cap + cap / 2);
            bytes memory data;
            uint8 kind = kinds[i] % 3;
            if (kind == 0) data = abi.encodeCall(MiniToken.transfer, (bob, amount));
            else if (kind == 1) data = abi.encodeCall(MiniToken.approve, (bob, amount));
            else data = abi.encodeCall(MiniToken.increaseAllowance, (bob, amount));
            ValetAccount.Call[] memory calls = _one(address(token), 0, data);
            uint256 nonce = acct.getNonce(key, 0);
            bytes memory sig = _signed(acct, KEY_PK, calls, nonce);
            try acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig) {
                counted += amount;
            } catch {}
            _true(counted <= cap, "cap exceeded");
            (,, uint256 spent,) = acct.spendInfo(key, address(token));
            _eq(spent, counted, "recorded spend");
        }
    }

    /// Native value: the per-period cap holds for any sequence of values.
    function testFuzz_nativeCapNeverExceeded(uint64[10] memory values, bool[10] memory nextDay) public {
        _grant(key, _scope());
        uint256 sentToday;
        for (uint256 i; i < 10; ++i) {
            if (nextDay[i]) {
                vm.warp(block.timestamp + 1 days);
                sentToday = 0;
            }
            uint256 value = uint256(values[i]) % 1.2 ether;
            uint256 before = bob.balance;
            ValetAccount.Call[] memory calls = _one(bob, value, "");
            uint256 nonce = acct.getNonce(key, 0);
            bytes memory sig = _signed(acct, KEY_PK, calls, nonce);
            try acct.executeWithKey(calls, nonce, block.timestamp + 1 hours, sig) {} catch {}
            sentToday += bob.balance - before;
            _true(sentToday <= 2 ether, "native cap exceeded");
            _true(bob.balance - before <= 1 ether, "per-call cap exceeded");
        }
    }
}
