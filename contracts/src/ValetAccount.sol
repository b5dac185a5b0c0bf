// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// @title ValetAccount: Valet's EIP-7702 delegate with scoped session keys
/// @notice An EOA delegates to this contract with EIP-7702. The EOA's own key (the owner) keeps
///         full power: it sends transactions directly, batches through ERC-7821 `execute`, signs
///         ERC-1271 messages, and grants and revokes session keys. A session key can only make the
///         calls its scope allows, within its caps and its validity window, through
///         `executeWithKey`, which anyone (a relayer) may submit with the key's EIP-712 signature.
///
/// Design notes:
/// - All state lives in one ERC-7201 namespace, so another delegate used before or after this one
///   cannot misread it. EIP-7702 runs no initcode and this contract needs no initializer.
/// - Every grant gets a fresh `generation`; scope and spend counters are keyed by it, so a revoked
///   and re-granted key never inherits old allowances or counters.
/// - `revokeAll` bumps an epoch; keys granted under an older epoch are dead. Storage survives
///   re-delegation (EIP-7702), so they stay dead if the EOA delegates away and back.
/// - Session calls to the account itself are always refused: they would run with
///   msg.sender == address(this), i.e. with the owner's power.
/// - Spend caps use fixed windows: period index = block.timestamp / period (period 0 = lifetime).
///
/// Custom errors mirror the violation codes of SPEC section 5:
///   KeyUnknown -> (4100 "unknown"), KeyExpired -> key_expired, KeyNotYetValid -> key_not_yet_valid,
///   KeyRevoked -> key_revoked, TargetNotAllowed -> target_not_allowed,
///   FunctionNotAllowed -> function_not_allowed, FunctionDenied -> function_denied,
///   ValueTooHigh -> value_too_high, SpendLimitExceeded -> spend_limit_exceeded,
///   CallLimitExceeded -> rate_limited, Undecodable -> undecodable.
/// @custom:storage-location erc7201:valet.account.v1
contract ValetAccount {
    // ---------------------------------------------------------------- types

    /// @notice One call (ERC-7821 layout).
    struct Call {
        address target;
        uint256 value;
        bytes data;
    }

    /// @notice An allowed (target, selector) pair. `ANY_TARGET` / `ANY_SELECTOR` are wildcards.
    ///         Selector 0x00000000 means a call with empty calldata (a plain native transfer).
    struct Permission {
        address target;
        bytes4 selector;
    }

    /// @notice A per-period cap on an ERC-20 token: the sum of `transfer`, `transferFrom`,
    ///         `approve` and `increaseAllowance` amounts in one period.
    struct TokenCap {
        address token;
        uint256 limit;
    }

    /// @notice What a session key may do. Use `UNLIMITED` (type(uint256).max) for "no cap" on
    ///         `maxValuePerCall` / `nativeCapPerPeriod`, and type(uint32).max for no call limit.
    struct Scope {
        uint32 period; // seconds per spend period; 0 = caps are for the key's lifetime
        uint32 maxCalls; // total calls over the key's life; type(uint32).max = unlimited
        uint256 maxValuePerCall; // native value per call
        uint256 nativeCapPerPeriod; // native value per period
        Permission[] allowed;
        bytes4[] denied; // beats any allow, wildcard or not
        TokenCap[] tokenCaps;
    }

    /// @notice A session key's record (one storage slot).
    struct Key {
        uint40 generation; // 0 = never granted
        uint32 epoch; // the account epoch it was granted under
        uint40 validAfter; // valid from this second ...
        uint40 validUntil; // ... until before this second
        uint32 period;
        uint32 maxCalls;
        uint32 calls; // calls made so far (counted only when maxCalls is limited)
        bool revoked;
    }

    /// @notice A cap and what was spent against it in its current period (one storage slot).
    struct Spend {
        uint104 limit;
        uint104 spent;
        uint40 periodIndex;
        bool set;
    }

    /// @custom:storage-location erc7201:valet.account.v1
    struct Layout {
        uint32 epoch;
        uint40 generations;
        mapping(address key => Key) keys;
        mapping(uint40 generation => uint256) maxValuePerCall;
        mapping(uint40 generation => mapping(address target => mapping(bytes4 selector => bool))) allowed;
        mapping(uint40 generation => mapping(bytes4 selector => bool)) denied;
        mapping(uint40 generation => mapping(address token => Spend)) caps; // token 0 = native
        mapping(address key => mapping(uint192 lane => uint64 seq)) nonces;
    }

    // ---------------------------------------------------------------- constants

    /// keccak256(abi.encode(uint256(keccak256("valet.account.v1")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant LAYOUT_SLOT = 0xe14ae175464b737515ab631ca298d2669873f6f2312897d1e7ec3b9941e82a00;

    address public constant ANY_TARGET = 0x3232323232323232323232323232323232323232;
    bytes4 public constant ANY_SELECTOR = 0x32323232;
    uint256 public constant UNLIMITED = type(uint256).max;

    /// ERC-7821 "batch, no opData" mode.
    bytes32 internal constant MODE_BATCH = 0x0100000000000000000000000000000000000000000000000000000000000000;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("ValetAccount");
    bytes32 internal constant VERSION_HASH = keccak256("1");
    bytes32 public constant CALL_TYPEHASH = keccak256("Call(address target,uint256 value,bytes data)");
    bytes32 public constant EXECUTE_TYPEHASH = keccak256(
        "ExecuteWithKey(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
    );
    bytes32 public constant REVOKE_SELF_TYPEHASH = keccak256("RevokeSelf(address key,uint256 generation)");

    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    bytes4 internal constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)
    bytes4 internal constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)

    // ---------------------------------------------------------------- events

    event SessionKeyAuthorized(address indexed key, uint256 generation, uint256 epoch, uint256 validAfter, uint256 validUntil);
    event SessionKeyRevoked(address indexed key, uint256 generation, bool bySelf);
    event KeysInvalidated(uint256 newEpoch);
    event ExecutedWithKey(address indexed key, uint256 nonce, bytes32 callsHash);
    event SpendRecorded(
        address indexed key, address indexed token, uint256 amount, uint256 periodStart, uint256 spentInPeriod
    );

    // ---------------------------------------------------------------- errors

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

    // ---------------------------------------------------------------- owner path

    modifier onlySelf() {
        if (msg.sender != address(this)) revert Unauthorized();
        _;
    }

    receive() external payable {}

    /// @notice ERC-7821 batch execution for the owner (the EOA sends a transaction to itself).
    ///         A call to address(0) means a call to the account itself, as ERC-7821 specifies.
    function execute(bytes32 mode, bytes calldata executionData) external payable onlySelf {
        if (mode != MODE_BATCH) revert UnsupportedExecutionMode();
        Call[] memory calls = abi.decode(executionData, (Call[]));
        for (uint256 i; i < calls.length; ++i) {
            address target = calls[i].target == address(0) ? address(this) : calls[i].target;
            _call(target, calls[i].value, calls[i].data);
        }
    }

    function supportsExecutionMode(bytes32 mode) external pure returns (bool) {
        return mode == MODE_BATCH;
    }

    /// @notice ERC-1271: valid when the account's own key signed `hash` (low-s only).
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        return _tryRecover(hash, signature) == address(this) ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }

    /// @notice Grants (or replaces) a session key. A re-grant starts from a clean scope and clean
    ///         counters. Owner only.
    function authorizeKey(address key, uint40 validAfter, uint40 validUntil, Scope calldata scope)
        external
        onlySelf
        returns (uint256 generation)
    {
        if (key == address(0) || key == address(this) || validUntil <= validAfter) revert InvalidScope();
        Layout storage $ = _layout();
        uint40 gen = ++$.generations;
        $.keys[key] = Key({
            generation: gen,
            epoch: $.epoch,
            validAfter: validAfter,
            validUntil: validUntil,
            period: scope.period,
            maxCalls: scope.maxCalls,
            calls: 0,
            revoked: false
        });
        $.maxValuePerCall[gen] = scope.maxValuePerCall;
        for (uint256 i; i < scope.denied.length; ++i) {
            $.denied[gen][scope.denied[i]] = true;
        }
        for (uint256 i; i < scope.allowed.length; ++i) {
            Permission calldata p = scope.allowed[i];
            // An exact selector that is also denied is a contradiction; refuse it so that the
            // exact-match fast path in `_checkCall` never needs to consult the deny list.
            if (p.target == address(this)) revert InvalidScope();
            if (p.selector != ANY_SELECTOR && $.denied[gen][p.selector]) revert InvalidScope();
            $.allowed[gen][p.target][p.selector] = true;
        }
        if (scope.nativeCapPerPeriod != UNLIMITED) _setCap($, gen, address(0), scope.nativeCapPerPeriod);
        for (uint256 i; i < scope.tokenCaps.length; ++i) {
            if (scope.tokenCaps[i].token == address(0)) revert InvalidScope();
            _setCap($, gen, scope.tokenCaps[i].token, scope.tokenCaps[i].limit);
        }
        emit SessionKeyAuthorized(key, gen, $.epoch, validAfter, validUntil);
        return gen;
    }

    /// @notice Revokes one session key. Owner only.
    function revokeKey(address key) external onlySelf {
        _revoke(key, false);
    }

    /// @notice Revokes every session key granted so far by bumping the epoch. Owner only.
    function revokeAll() external onlySelf {
        Layout storage $ = _layout();
        uint32 e = ++$.epoch;
        emit KeysInvalidated(e);
    }

    // ---------------------------------------------------------------- session path

    /// @notice A session key revokes itself (sent by the key).
    function revokeSelf() external {
        _revoke(msg.sender, true);
    }

    /// @notice A session key revokes itself with an EIP-712 signature over
    ///         RevokeSelf(key, generation); anyone may relay it. Bound to one grant.
    function revokeSelfSigned(address key, bytes calldata signature) external {
        uint256 gen = _layout().keys[key].generation;
        bytes32 digest = _hashTypedData(keccak256(abi.encode(REVOKE_SELF_TYPEHASH, key, gen)));
        if (_recover(digest, signature) != key) revert InvalidSignature();
        _revoke(key, true);
    }

    /// @notice Runs `calls` on behalf of the session key that signed
    ///         ExecuteWithKey(calls, nonce, deadline) under this account's EIP-712 domain. Every
    ///         call is checked against the key's scope and caps before any runs; any breach or any
    ///         failing call reverts the whole batch. `nonce` = lane << 64 | sequence, per key.
    function executeWithKey(Call[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
    {
        if (block.timestamp > deadline) revert DeadlineExpired();
        bytes32 callsHash = _hashCalls(calls);
        address key =
            _recover(_hashTypedData(keccak256(abi.encode(EXECUTE_TYPEHASH, callsHash, nonce, deadline))), signature);
        Layout storage $ = _layout();
        Key memory k = _useKey($, key, nonce, calls.length);
        for (uint256 i; i < calls.length; ++i) {
            _checkCall($, key, k, calls[i]);
        }
        for (uint256 i; i < calls.length; ++i) {
            _call(calls[i].target, calls[i].value, calls[i].data);
        }
        emit ExecutedWithKey(key, nonce, callsHash);
    }

    // ---------------------------------------------------------------- views

    /// @notice The EIP-712 digest a session key signs for `executeWithKey`.
    function hashExecute(Call[] calldata calls, uint256 nonce, uint256 deadline) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(EXECUTE_TYPEHASH, _hashCalls(calls), nonce, deadline)));
    }

    /// @notice The EIP-712 digest a session key signs for `revokeSelfSigned`.
    function hashRevokeSelf(address key) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(REVOKE_SELF_TYPEHASH, key, uint256(_layout().keys[key].generation))));
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function epoch() external view returns (uint256) {
        return _layout().epoch;
    }

    /// @notice A key's record and whether it can be used now.
    function getKey(address key) external view returns (Key memory k, bool active) {
        Layout storage $ = _layout();
        k = $.keys[key];
        active = k.generation != 0 && !k.revoked && k.epoch == $.epoch && block.timestamp >= k.validAfter
            && block.timestamp < k.validUntil;
    }

    /// @notice The next sequence number of `key` on nonce lane `lane`.
    function getNonce(address key, uint192 lane) external view returns (uint256) {
        return (uint256(lane) << 64) | _layout().nonces[key][lane];
    }

    /// @notice A key's cap on `token` (address(0) = native) and what it spent this period.
    function spendInfo(address key, address token)
        external
        view
        returns (bool capped, uint256 limit, uint256 spentThisPeriod, uint256 periodStart)
    {
        Layout storage $ = _layout();
        Key memory k = $.keys[key];
        Spend memory s = $.caps[k.generation][token];
        uint40 idx = k.period == 0 ? 0 : uint40(block.timestamp / k.period);
        return (s.set, s.limit, s.periodIndex == idx ? s.spent : 0, uint256(idx) * k.period);
    }

    // ---------------------------------------------------------------- internals

    function _layout() internal pure returns (Layout storage $) {
        assembly {
            $.slot := LAYOUT_SLOT
        }
    }

    function _setCap(Layout storage $, uint40 gen, address token, uint256 limit) internal {
        if (limit > type(uint104).max) revert InvalidScope();
        $.caps[gen][token] = Spend({limit: uint104(limit), spent: 0, periodIndex: 0, set: true});
    }

    function _revoke(address key, bool bySelf) internal {
        Key storage k = _layout().keys[key];
        if (k.generation == 0) revert KeyUnknown();
        k.revoked = true;
        emit SessionKeyRevoked(key, k.generation, bySelf);
    }

    /// @dev Checks the key is usable now, consumes its nonce and counts `n` calls against it.
    function _useKey(Layout storage $, address key, uint256 nonce, uint256 n) internal returns (Key memory k) {
        k = $.keys[key];
        _checkKey($, k);
        uint192 lane = uint192(nonce >> 64);
        uint64 seq = $.nonces[key][lane];
        if (uint64(nonce) != seq) revert InvalidNonce(key, nonce);
        $.nonces[key][lane] = seq + 1;
        if (k.maxCalls != type(uint32).max) {
            uint256 used = uint256(k.calls) + n;
            if (used > k.maxCalls) revert CallLimitExceeded();
            $.keys[key].calls = uint32(used);
        }
    }

    function _checkKey(Layout storage $, Key memory k) internal view {
        if (k.generation == 0) revert KeyUnknown();
        if (k.revoked || k.epoch != $.epoch) revert KeyRevoked();
        if (block.timestamp < k.validAfter) revert KeyNotYetValid();
        if (block.timestamp >= k.validUntil) revert KeyExpired();
    }

    function _checkCall(Layout storage $, address key, Key memory k, Call calldata c) internal {
        address target = c.target;
        if (target == address(this)) revert TargetNotAllowed(target);
        uint256 len = c.data.length;
        bytes4 sel;
        if (len >= 4) sel = bytes4(c.data[:4]);
        else if (len != 0) revert Undecodable(target);

        uint40 gen = k.generation;
        // Exact grants never name a denied selector (authorizeKey refuses that), so an exact match
        // is final; anything else must pass the deny list before a wildcard can allow it.
        if (sel == ANY_SELECTOR || !$.allowed[gen][target][sel]) {
            if ($.denied[gen][sel]) revert FunctionDenied(target, sel);
            if (
                !$.allowed[gen][target][ANY_SELECTOR] && !$.allowed[gen][ANY_TARGET][sel]
                    && !$.allowed[gen][ANY_TARGET][ANY_SELECTOR]
            ) revert FunctionNotAllowed(target, sel);
        }

        if (c.value != 0) {
            uint256 maxValue = $.maxValuePerCall[gen];
            if (c.value > maxValue) revert ValueTooHigh(target, c.value, maxValue);
            _spend($, key, k.period, gen, address(0), c.value);
        }
        if (sel == TRANSFER || sel == APPROVE || sel == INCREASE_ALLOWANCE) {
            if (len < 68) revert Undecodable(target);
            _spend($, key, k.period, gen, target, uint256(bytes32(c.data[36:68])));
        } else if (sel == TRANSFER_FROM) {
            if (len < 100) revert Undecodable(target);
            _spend($, key, k.period, gen, target, uint256(bytes32(c.data[68:100])));
        }
    }

    function _spend(Layout storage $, address key, uint32 period, uint40 gen, address token, uint256 amount)
        internal
    {
        Spend storage slot = $.caps[gen][token];
        Spend memory s = slot;
        if (!s.set) return;
        uint40 idx = period == 0 ? 0 : uint40(block.timestamp / period);
        uint256 spent = s.periodIndex == idx ? s.spent : 0;
        uint256 remaining = s.limit - spent;
        if (amount > remaining) revert SpendLimitExceeded(token, amount, remaining);
        spent += amount;
        slot.spent = uint104(spent);
        slot.periodIndex = idx;
        emit SpendRecorded(key, token, amount, uint256(idx) * period, spent);
    }

    function _call(address target, uint256 value, bytes memory data) internal {
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    function _hashCalls(Call[] calldata calls) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            hashes[i] =
                keccak256(abi.encode(CALL_TYPEHASH, calls[i].target, calls[i].value, keccak256(calls[i].data)));
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function _hashTypedData(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @dev Recovers a 65-byte r‖s‖v signature; reverts on a malformed, high-s or unrecoverable one.
    function _recover(bytes32 digest, bytes calldata signature) internal pure returns (address signer) {
        signer = _tryRecover(digest, signature);
        if (signer == address(0)) revert InvalidSignature();
    }

    function _tryRecover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
