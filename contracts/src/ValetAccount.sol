// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// @title ValetAccount: Valet's EIP-7702 delegate with scoped session keys
/// @notice An EOA delegates to this contract with EIP-7702. The EOA's own key (the owner) keeps
///         full power: it sends transactions directly, batches through ERC-7821 `execute`, signs
///         ERC-1271 messages, signs owner batches (`executeSigned`) that anyone may relay, and
///         grants and revokes session keys. A session key can only make the calls its scope
///         allows, within its caps and its validity window, through `executeWithKey`, which anyone
///         (a relayer) may submit with the key's EIP-712 signature.
///
/// Design notes:
/// - All state lives in one ERC-7201 namespace, so another delegate used before or after this one
///   cannot misread it. EIP-7702 runs no initcode and this contract needs no initializer.
/// - The namespace and the EIP-712 version change whenever what a grant or a signature means
///   changes (v2: a capped token admits only counted calls; 0x00000000 names empty calldata), so
///   grants and signatures made under older rules are not honoured once the wallet re-delegates
///   to this version: its keys must be granted again.
/// - Every grant gets a fresh `generation`; scope and spend counters are keyed by it, so a revoked
///   and re-granted key never inherits old allowances or counters. Nonces are kept per key address
///   across grants, so a signature used under an old grant stays used.
/// - `revokeAll` bumps an epoch; keys granted under an older epoch are dead. Storage survives
///   re-delegation (EIP-7702), so they stay dead if the EOA delegates away and back.
/// - A capped token's contract admits only the calls its cap counts (`transfer`,
///   `transferFrom`, `approve`, `increaseAllowance`) and `decreaseAllowance`; anything else
///   there is refused whatever the grant, since it could move the token uncounted.
/// - Session calls to the account itself are always refused: they would run with
///   msg.sender == address(this), i.e. with the owner's power. Owner batches (`execute`,
///   `executeSigned`) may call the account itself (target address(0)), which is how a relayed,
///   owner-signed batch reaches the onlySelf functions.
/// - Spend caps use fixed windows: period index = block.timestamp / period (period 0 = lifetime).
/// - Gas: a capped ERC-20 call under an exact grant touches three slots (the account epoch, the
///   key's word with its lane-0 nonce, the (grant, token) word with permission bits, cap and
///   spend); see `KeyRecord` and `Layout.targets`.
///
/// Custom errors mirror the violation codes of SPEC section 5:
///   KeyUnknown -> (4100 "unknown"), KeyExpired -> key_expired, KeyNotYetValid -> key_not_yet_valid,
///   KeyRevoked -> key_revoked, TargetNotAllowed -> target_not_allowed,
///   FunctionNotAllowed -> function_not_allowed, FunctionDenied -> function_denied,
///   ValueTooHigh -> value_too_high, SpendLimitExceeded -> spend_limit_exceeded,
///   CallLimitExceeded -> rate_limited, Undecodable -> undecodable.
/// @custom:storage-location erc7201:valet.account.v2
contract ValetAccount {
    // ---------------------------------------------------------------- types

    /// @notice One call (ERC-7821 layout).
    struct Call {
        address target;
        uint256 value;
        bytes data;
    }

    /// @notice An allowed (target, selector) pair. `ANY_TARGET` / `ANY_SELECTOR` are wildcards.
    ///         Selector 0x00000000 means a call with empty calldata (a plain native transfer)
    ///         only: calldata that merely starts with four zero bytes needs a wildcard.
    ///         On a capped token, only the functions its cap counts (and `decreaseAllowance`)
    ///         can be called, whatever the grant: an exact grant of anything else there is refused
    ///         (`InvalidScope`) and a wildcard does not reach it (`Undecodable`).
    struct Permission {
        address target;
        bytes4 selector;
    }

    /// @notice A per-period cap on an ERC-20 token: the sum of `transfer`, `transferFrom`,
    ///         `approve` and `increaseAllowance` amounts in one period. Every other call to the
    ///         token's contract (its own transfer aliases, `transferAndCall`, `permit`, ERC-777
    ///         `send`, empty calldata...) is refused, so nothing moves it uncounted.
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

    /// @notice A session key's record as `getKey` returns it (storage packs it differently).
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

    /// @dev A key's two storage words. `hot` is read and written by every `executeWithKey`:
    ///      generation (bits 0-39), epoch (40-71), validAfter (72-111), validUntil (112-151),
    ///      period (152-183), the next sequence number of nonce lane 0 (184-247), revoked
    ///      (bit 248), call-limited (bit 249), caps a token (bit 250). `cold` is read only for calls with value or keys
    ///      with a call limit: maxCalls (0-31), calls (32-63), maxValuePerCall (64-255, all ones
    ///      = unlimited).
    struct KeyRecord {
        uint256 hot;
        uint256 cold;
    }

    /// @custom:storage-location erc7201:valet.account.v2
    struct Layout {
        uint32 epoch;
        uint40 generations;
        mapping(address key => KeyRecord) keys;
        /// One word per (grant, target): the cap on token `target` (target 0 = native value) and
        /// its spend, plus exact grants of the four ERC-20 functions the caps count, so a capped
        /// ERC-20 call reads and writes a single slot: limit (bits 0-103), spent in the period
        /// (104-207), period index (208-247), capped (bit 248), allowed transfer (249), approve
        /// (250), increaseAllowance (251), transferFrom (252).
        mapping(uint40 generation => mapping(address target => uint256)) targets;
        mapping(uint40 generation => mapping(address target => mapping(bytes4 selector => bool))) allowed;
        mapping(uint40 generation => mapping(bytes4 selector => bool)) denied;
        mapping(address key => mapping(uint192 lane => uint64 seq)) nonces; // lanes other than 0
        mapping(uint192 lane => uint64 seq) ownerNonces;
    }

    // ---------------------------------------------------------------- constants

    /// keccak256(abi.encode(uint256(keccak256("valet.account.v2")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant LAYOUT_SLOT = 0xd42b5f31ce02ef584b6be268be445af21e03a0e0a3e192c0b8ae547a83907800;

    address public constant ANY_TARGET = 0x3232323232323232323232323232323232323232;
    bytes4 public constant ANY_SELECTOR = 0x32323232;
    uint256 public constant UNLIMITED = type(uint256).max;

    /// ERC-7821 "batch, no opData" mode.
    bytes32 internal constant MODE_BATCH = 0x0100000000000000000000000000000000000000000000000000000000000000;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("ValetAccount");
    bytes32 internal constant VERSION_HASH = keccak256("2");
    bytes32 public constant CALL_TYPEHASH = keccak256("Call(address target,uint256 value,bytes data)");
    bytes32 public constant EXECUTE_TYPEHASH = keccak256(
        "ExecuteWithKey(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
    );
    bytes32 public constant REVOKE_SELF_TYPEHASH = keccak256("RevokeSelf(address key,uint256 generation)");
    bytes32 public constant OWNER_EXECUTE_TYPEHASH = keccak256(
        "OwnerExecute(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
    );

    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    bytes4 internal constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)
    bytes4 internal constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    bytes4 internal constant DECREASE_ALLOWANCE = 0xa457c2d7; // decreaseAllowance(address,uint256)

    // Bit fields of KeyRecord.hot, KeyRecord.cold and Layout.targets (see there).
    uint256 internal constant M32 = 0xffffffff;
    uint256 internal constant M40 = 0xffffffffff;
    uint256 internal constant M64 = 0xffffffffffffffff;
    uint256 internal constant M104 = 0xffffffffffffffffffffffffff;
    uint256 internal constant M192 = 0xffffffffffffffffffffffffffffffffffffffffffffffff;
    uint256 internal constant SEQ_SHIFT = 184;
    uint256 internal constant SEQ_ONE = 1 << 184;
    uint256 internal constant SEQ_MASK = M64 << 184;
    uint256 internal constant REVOKED = 1 << 248;
    uint256 internal constant LIMITED = 1 << 249;
    uint256 internal constant TOKEN_CAPS = 1 << 250;
    uint256 internal constant CAPPED = 1 << 248;
    uint256 internal constant ALLOW_TRANSFER = 1 << 249;
    uint256 internal constant ALLOW_APPROVE = 1 << 250;
    uint256 internal constant ALLOW_INCREASE_ALLOWANCE = 1 << 251;
    uint256 internal constant ALLOW_TRANSFER_FROM = 1 << 252;
    uint256 internal constant SPEND_FIELDS = (M104 << 104) | (M40 << 208);

    // ---------------------------------------------------------------- events

    event SessionKeyAuthorized(address indexed key, uint256 generation, uint256 epoch, uint256 validAfter, uint256 validUntil);
    event SessionKeyRevoked(address indexed key, uint256 generation, bool bySelf);
    event KeysInvalidated(uint256 newEpoch);
    event ExecutedWithKey(address indexed key, uint256 nonce);
    event SpendRecorded(address indexed key, address indexed token, uint256 amount, uint256 spentInPeriod);
    event ExecutedByOwner(uint256 nonce);

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

    /// @dev The owner acts as the account itself: a transaction the EOA sends to itself, a call
    ///      from `execute`, or a call from `executeSigned` (a self-call, so msg.sender is the
    ///      account there too).
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
            (bool ok, bytes memory ret) = target.call{value: calls[i].value}(calls[i].data);
            if (!ok) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }

    /// @notice The owner's batch, signed by the owner (the account's own key) with EIP-712
    ///         OwnerExecute(calls, nonce, deadline) and relayed by anyone. A call to address(0)
    ///         means a call to the account itself, so `authorizeKey`, `revokeKey` and `revokeAll`
    ///         can be reached without the EOA sending a transaction. `nonce` = lane << 64 |
    ///         sequence, on the owner's own nonce lanes (separate from session keys').
    function executeSigned(Call[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
        payable
    {
        if (block.timestamp > deadline) revert DeadlineExpired();
        bytes32 digest = _hashTypedData(_structHash(OWNER_EXECUTE_TYPEHASH, calls, nonce, deadline));
        if (_tryRecover(digest, signature) != address(this)) revert InvalidSignature();
        mapping(uint192 => uint64) storage lanes = _layout().ownerNonces;
        uint192 lane = uint192(nonce >> 64);
        uint64 seq = lanes[lane];
        if (uint64(nonce) != seq) revert InvalidNonce(address(this), nonce);
        lanes[lane] = seq + 1; // before any call runs: a reentrant replay finds the nonce used
        uint256 n = calls.length;
        uint256 base = _offsetOf(calls);
        for (uint256 i; i < n; ++i) {
            (address target, uint256 value, uint256 data, uint256 len) = _callAt(base, i);
            _call(target == address(0) ? address(this) : target, value, data, len);
        }
        emit ExecutedByOwner(nonce);
    }

    function supportsExecutionMode(bytes32 mode) external pure returns (bool) {
        return mode == MODE_BATCH;
    }

    /// @notice ERC-1271: valid when the account's own key signed `hash` (low-s only).
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        return _tryRecover(hash, signature) == address(this) ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }

    /// @notice Grants (or replaces) a session key. A re-grant starts from a clean scope and clean
    ///         counters (the key's nonces carry on, so old signatures stay used). Owner only.
    function authorizeKey(address key, uint40 validAfter, uint40 validUntil, Scope calldata scope)
        external
        onlySelf
        returns (uint256 generation)
    {
        if (key == address(0) || key == address(this) || validUntil <= validAfter) revert InvalidScope();
        Layout storage $ = _layout();
        uint40 gen = ++$.generations;
        uint32 e = $.epoch;
        KeyRecord storage rec = $.keys[key];
        bool limited = scope.maxCalls != type(uint32).max;
        rec.hot = uint256(gen) | (uint256(e) << 40) | (uint256(validAfter) << 72) | (uint256(validUntil) << 112)
            | (uint256(scope.period) << 152) | (rec.hot & SEQ_MASK) | (limited ? LIMITED : 0)
            | (scope.tokenCaps.length != 0 ? TOKEN_CAPS : 0);
        uint256 maxValue = scope.maxValuePerCall > M192 ? M192 : scope.maxValuePerCall;
        rec.cold = uint256(scope.maxCalls) | (maxValue << 64);

        mapping(address => uint256) storage targets = $.targets[gen];
        // Caps first: a grant on a capped token is checked against its cap below.
        if (scope.nativeCapPerPeriod != UNLIMITED) _setCap(targets, address(0), scope.nativeCapPerPeriod);
        for (uint256 i; i < scope.tokenCaps.length; ++i) {
            if (scope.tokenCaps[i].token == address(0)) revert InvalidScope();
            _setCap(targets, scope.tokenCaps[i].token, scope.tokenCaps[i].limit);
        }
        for (uint256 i; i < scope.denied.length; ++i) {
            $.denied[gen][scope.denied[i]] = true;
        }
        for (uint256 i; i < scope.allowed.length; ++i) {
            Permission calldata p = scope.allowed[i];
            // An exact selector that is also denied is a contradiction; refuse it so that an
            // exact match in `_checkCall` never needs to consult the deny list.
            if (p.target == address(this)) revert InvalidScope();
            if (p.selector != ANY_SELECTOR && $.denied[gen][p.selector]) revert InvalidScope();
            uint256 bit = _erc20Bit(p.selector);
            if (bit != 0 && p.target != address(0) && p.target != ANY_TARGET) {
                targets[p.target] |= bit;
            } else {
                // An exact grant of a function a capped token's cap does not count is a
                // contradiction (`_checkFunction` would refuse it anyway).
                if (
                    p.selector != ANY_SELECTOR && p.selector != DECREASE_ALLOWANCE && p.target != address(0)
                        && targets[p.target] & CAPPED != 0
                ) revert InvalidScope();
                $.allowed[gen][p.target][p.selector] = true;
            }
        }
        emit SessionKeyAuthorized(key, gen, e, validAfter, validUntil);
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
        uint256 gen = _layout().keys[key].hot & M40;
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
        address key = _recover(_hashTypedData(_structHash(EXECUTE_TYPEHASH, calls, nonce, deadline)), signature);
        uint256 n = calls.length;
        uint256 hot = _useKey(key, nonce, n);
        uint256 gen = hot & M40;
        uint256 period = (hot >> 152) & M32;
        // gen (bits 0-39) and this period's index (40-79) travel together (stack depth)
        uint256 genIdx = period == 0 ? gen : gen | ((block.timestamp / period) << 40);
        mapping(address => uint256) storage targets = _layout().targets[uint40(gen)];
        uint256 base = _offsetOf(calls);
        for (uint256 i; i < n; ++i) {
            if (!_fastCheck(targets, key, genIdx, base, i)) _checkCall(targets, key, genIdx, base, i);
        }
        // Run the calls. `_structHash` already refused dirty targets and data out of calldata.
        assembly ("memory-safe") {
            let m := mload(0x40)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let c := add(base, calldataload(add(base, shl(5, i))))
                let d := add(c, calldataload(add(c, 0x40)))
                let len := calldataload(d)
                calldatacopy(m, add(d, 0x20), len)
                if iszero(call(gas(), calldataload(c), calldataload(add(c, 0x20)), m, len, 0, 0)) {
                    returndatacopy(m, 0, returndatasize())
                    revert(m, returndatasize())
                }
            }
        }
        emit ExecutedWithKey(key, nonce);
    }

    // ---------------------------------------------------------------- views

    /// @notice The EIP-712 digest a session key signs for `executeWithKey`.
    function hashExecute(Call[] calldata calls, uint256 nonce, uint256 deadline) external view returns (bytes32) {
        return _hashTypedData(_structHash(EXECUTE_TYPEHASH, calls, nonce, deadline));
    }

    /// @notice The EIP-712 digest the owner signs for `executeSigned`.
    function hashOwnerExecute(Call[] calldata calls, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _hashTypedData(_structHash(OWNER_EXECUTE_TYPEHASH, calls, nonce, deadline));
    }

    /// @notice The EIP-712 digest a session key signs for `revokeSelfSigned`.
    function hashRevokeSelf(address key) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(REVOKE_SELF_TYPEHASH, key, _layout().keys[key].hot & M40)));
    }

    function domainSeparator() public view returns (bytes32) {
        bytes32 separator;
        bytes32 typehash = DOMAIN_TYPEHASH;
        bytes32 nameHash = NAME_HASH;
        bytes32 versionHash = VERSION_HASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), nameHash)
            mstore(add(m, 0x40), versionHash)
            mstore(add(m, 0x60), chainid())
            mstore(add(m, 0x80), address())
            separator := keccak256(m, 0xa0)
        }
        return separator;
    }

    function epoch() external view returns (uint256) {
        return _layout().epoch;
    }

    /// @notice A key's record and whether it can be used now.
    function getKey(address key) external view returns (Key memory k, bool active) {
        Layout storage $ = _layout();
        KeyRecord storage rec = $.keys[key];
        uint256 hot = rec.hot;
        uint256 cold = rec.cold;
        k = Key({
            generation: uint40(hot),
            epoch: uint32(hot >> 40),
            validAfter: uint40(hot >> 72),
            validUntil: uint40(hot >> 112),
            period: uint32(hot >> 152),
            maxCalls: uint32(cold),
            calls: uint32(cold >> 32),
            revoked: hot & REVOKED != 0
        });
        active = k.generation != 0 && !k.revoked && k.epoch == $.epoch && block.timestamp >= k.validAfter
            && block.timestamp < k.validUntil;
    }

    /// @notice The next sequence number of `key` on nonce lane `lane`.
    function getNonce(address key, uint192 lane) external view returns (uint256) {
        Layout storage $ = _layout();
        uint256 seq = lane == 0 ? ($.keys[key].hot >> SEQ_SHIFT) & M64 : $.nonces[key][lane];
        return (uint256(lane) << 64) | seq;
    }

    /// @notice The owner's next sequence number on owner nonce lane `lane` (for `executeSigned`).
    function getOwnerNonce(uint192 lane) external view returns (uint256) {
        return (uint256(lane) << 64) | _layout().ownerNonces[lane];
    }

    /// @notice A key's cap on `token` (address(0) = native) and what it spent this period.
    function spendInfo(address key, address token)
        external
        view
        returns (bool capped, uint256 limit, uint256 spentThisPeriod, uint256 periodStart)
    {
        Layout storage $ = _layout();
        uint256 hot = $.keys[key].hot;
        uint256 t = $.targets[uint40(hot)][token];
        uint256 period = (hot >> 152) & M32;
        uint256 idx = period == 0 ? 0 : block.timestamp / period;
        capped = t & CAPPED != 0;
        limit = t & M104;
        spentThisPeriod = (t >> 208) & M40 == idx ? (t >> 104) & M104 : 0;
        periodStart = idx * period;
    }

    // ---------------------------------------------------------------- internals

    function _layout() internal pure returns (Layout storage $) {
        assembly {
            $.slot := LAYOUT_SLOT
        }
    }

    /// @dev The targets-word bit that grants `selector` exactly, or 0 if it is not one of the four
    ///      ERC-20 functions the caps count.
    function _erc20Bit(bytes4 selector) internal pure returns (uint256) {
        if (selector == TRANSFER) return ALLOW_TRANSFER;
        if (selector == APPROVE) return ALLOW_APPROVE;
        if (selector == INCREASE_ALLOWANCE) return ALLOW_INCREASE_ALLOWANCE;
        if (selector == TRANSFER_FROM) return ALLOW_TRANSFER_FROM;
        return 0;
    }

    function _setCap(mapping(address => uint256) storage targets, address token, uint256 limit) internal {
        if (limit > M104) revert InvalidScope();
        // keeps the allow bits; a later cap on the same token replaces an earlier one
        targets[token] = (targets[token] & ~(M104 | SPEND_FIELDS)) | CAPPED | limit;
    }

    function _revoke(address key, bool bySelf) internal {
        KeyRecord storage rec = _layout().keys[key];
        uint256 hot = rec.hot;
        if (hot & M40 == 0) revert KeyUnknown();
        rec.hot = hot | REVOKED;
        emit SessionKeyRevoked(key, hot & M40, bySelf);
    }

    /// @dev Checks that `key` is usable now, consumes its nonce and counts `n` calls against it;
    ///      returns the key's hot word as it was read.
    function _useKey(address key, uint256 nonce, uint256 n) internal returns (uint256 hot) {
        // The common case in one pass: a granted, unrevoked key of the current epoch inside its
        // window, nonce lane 0 at the expected sequence, no call limit. Anything else (and every
        // error) takes the full path below, which re-reads the record.
        bool done;
        assembly ("memory-safe") {
            mstore(0x00, key)
            mstore(0x20, add(LAYOUT_SLOT, 1)) // Layout.keys
            let slot := keccak256(0x00, 0x40)
            hot := sload(slot)
            // generation != 0, lane 0, not revoked (bit 248), not call-limited (bit 249)
            if and(and(and(hot, M40), iszero(shr(64, nonce))), iszero(and(hot, shl(248, 3)))) {
                // epoch (Layout slot 0, low 32 bits), validity window, sequence (< max: no wrap)
                if and(
                    and(eq(and(shr(40, hot), M32), and(sload(LAYOUT_SLOT), M32)), lt(nonce, M64)),
                    and(
                        iszero(lt(timestamp(), and(shr(72, hot), M40))),
                        and(lt(timestamp(), and(shr(112, hot), M40)), eq(nonce, and(shr(184, hot), M64)))
                    )
                ) {
                    sstore(slot, add(hot, shl(184, 1)))
                    done := 1
                }
            }
        }
        if (done) return hot;
        Layout storage $ = _layout();
        KeyRecord storage rec = $.keys[key];
        hot = rec.hot;
        if (hot & M40 == 0) revert KeyUnknown();
        if (hot & REVOKED != 0 || (hot >> 40) & M32 != $.epoch) revert KeyRevoked();
        if (block.timestamp < (hot >> 72) & M40) revert KeyNotYetValid();
        if (block.timestamp >= (hot >> 112) & M40) revert KeyExpired();
        if (nonce >> 64 == 0) {
            // lane 0 lives in the key's own word: one slot read and written for key and nonce
            if (nonce != (hot >> SEQ_SHIFT) & M64 || nonce == M64) revert InvalidNonce(key, nonce);
            rec.hot = hot + SEQ_ONE;
        } else {
            _useLane($.nonces[key], key, nonce);
        }
        if (hot & LIMITED != 0) {
            uint256 cold = rec.cold;
            uint256 used = ((cold >> 32) & M32) + n;
            if (used > cold & M32) revert CallLimitExceeded();
            rec.cold = (cold & ~(M32 << 32)) | (used << 32);
        }
    }

    /// @dev Consumes `nonce` on a lane other than 0.
    function _useLane(mapping(uint192 => uint64) storage lanes, address key, uint256 nonce) internal {
        uint192 lane = uint192(nonce >> 64);
        uint64 seq = lanes[lane];
        if (uint64(nonce) != seq) revert InvalidNonce(key, nonce);
        lanes[lane] = seq + 1;
    }

    /// @dev Checks call `i` against the key's scope and records what it spends (the full path,
    ///      for whatever `_fastCheck` does not take).
    function _checkCall(mapping(address => uint256) storage targets, address key, uint256 genIdx, uint256 base, uint256 i)
        internal
    {
        address target;
        uint256 value;
        uint256 bit;
        uint256 t;
        uint256 amount;
        {
            uint256 data;
            uint256 len;
            (target, value, data, len) = _callAt(base, i);
            if (target == address(this)) revert TargetNotAllowed(target);
            (bit, t, amount) = _checkFunction(targets, key, uint40(genIdx), target, data, len);
        }
        if (value != 0) {
            _checkValue(targets, key, genIdx, target, value);
            if (target == address(0)) t = targets[address(0)]; // the native word just changed
        }
        if (bit != 0 && t & CAPPED != 0) targets[target] = _spend(t, key, target, amount, genIdx >> 40);
    }

    /// @dev The common case in one pass: no value, `transfer`/`approve`/`increaseAllowance` with
    ///      full arguments on a target whose word grants that function exactly, and (if the token
    ///      is capped) an amount within what is left. Records the spend and returns true; returns
    ///      false, having changed nothing, for anything else, which `_checkCall` then handles in
    ///      full (and reverts with the precise error where it must).
    function _fastCheck(mapping(address => uint256) storage targets, address key, uint256 genIdx, uint256 base, uint256 i)
        internal
        returns (bool done)
    {
        bytes32 spendTopic = SpendRecorded.selector;
        // bit positions as in Layout.targets: CAPPED 248, ALLOW_TRANSFER 249, ALLOW_APPROVE 250,
        // ALLOW_INCREASE_ALLOWANCE 251 (the optimizer folds the shifts)
        assembly ("memory-safe") {
            let target := 0
            let d := 0
            {
                let c := add(base, calldataload(add(base, shl(5, i))))
                target := calldataload(c) // clean: hashing refused dirty upper bits
                // value or the account itself: not for the fast path (d stays 0)
                if iszero(or(calldataload(add(c, 0x20)), eq(target, address()))) {
                    d := add(c, calldataload(add(c, 0x40)))
                }
            }
            let bit := 0
            if d {
                if gt(calldataload(d), 67) {
                    switch shr(224, calldataload(add(d, 0x20)))
                    case 0xa9059cbb { bit := shl(249, 1) }
                    case 0x095ea7b3 { bit := shl(250, 1) }
                    case 0x39509351 { bit := shl(251, 1) }
                }
            }
            if bit {
                mstore(0x00, target)
                mstore(0x20, targets.slot)
                let slot := keccak256(0x00, 0x40)
                let t := sload(slot)
                if and(t, bit) {
                    switch and(t, shl(248, 1))
                    case 0 { done := 1 }
                    default {
                        let amount := calldataload(add(d, 0x44))
                        // spent this period (0 if the word's period index is an older one)
                        let spent := mul(eq(and(shr(208, t), M40), shr(40, genIdx)), and(shr(104, t), M104))
                        if iszero(or(gt(spent, and(t, M104)), gt(amount, sub(and(t, M104), spent)))) {
                            spent := add(spent, amount)
                            sstore(
                                slot,
                                or(and(t, not(or(shl(104, M104), shl(208, M40)))), or(shl(104, spent), shl(208, shr(40, genIdx))))
                            )
                            mstore(0x00, amount)
                            mstore(0x20, spent)
                            log3(0x00, 0x40, spendTopic, key, target)
                            done := 1
                        }
                    }
                }
            }
        }
    }

    /// @dev Whether the key may call `target` with this calldata. For the four ERC-20 functions the
    ///      caps count, returns the function's bit, the target's word and the amount. A call a
    ///      wildcard admits to a capped token's contract, other than those four and
    ///      `decreaseAllowance`, is refused: it could move the token without being counted.
    function _checkFunction(
        mapping(address => uint256) storage targets,
        address key,
        uint40 gen,
        address target,
        uint256 data,
        uint256 len
    ) internal view returns (uint256 bit, uint256 t, uint256 amount) {
        bytes4 sel;
        if (len >= 4) {
            assembly {
                sel := and(calldataload(data), 0xffffffff00000000000000000000000000000000000000000000000000000000)
            }
        } else if (len != 0) {
            revert Undecodable(target);
        }
        bit = _erc20Bit(sel);
        if (bit != 0) t = targets[target];
        // Exact grants never name a denied selector nor an uncounted function of a capped token
        // (authorizeKey refuses both), so an exact match is final; anything else must pass the
        // deny list before a wildcard can allow it, and then must not be an uncounted call to a
        // capped token.
        if (t & bit == 0 && _checkGeneric(gen, target, sel, len == 0) && bit == 0) {
            // (the key's word is warm; a key that caps no token skips the target's cold word)
            if (
                sel != DECREASE_ALLOWANCE && target != address(0) && _layout().keys[key].hot & TOKEN_CAPS != 0
                    && targets[target] & CAPPED != 0
            ) revert Undecodable(target);
        }
        if (bit != 0) {
            // a short call cannot dodge the cap
            uint256 pos = bit == ALLOW_TRANSFER_FROM ? 68 : 36;
            if (len < pos + 32) revert Undecodable(target);
            assembly {
                amount := calldataload(add(data, pos))
            }
        }
    }

    /// @dev The per-call value cap and the native per-period cap (targets word of address 0).
    function _checkValue(
        mapping(address => uint256) storage targets,
        address key,
        uint256 genIdx,
        address target,
        uint256 value
    ) internal {
        uint256 maxValue = _layout().keys[key].cold >> 64;
        if (maxValue != M192 && value > maxValue) revert ValueTooHigh(target, value, maxValue);
        uint256 native = targets[address(0)];
        if (native & CAPPED != 0) targets[address(0)] = _spend(native, key, address(0), value, genIdx >> 40);
    }

    /// @dev Reverts unless the grant admits `sel` on `target`; returns whether a wildcard (not an
    ///      exact (target, selector) grant) admitted it. The selector 0x00000000 of a grant
    ///      means empty calldata: calldata that starts with four zero bytes (`empty` false) is
    ///      admitted only by a function wildcard.
    function _checkGeneric(uint40 gen, address target, bytes4 sel, bool empty) internal view returns (bool wildcard) {
        Layout storage $ = _layout();
        mapping(address => mapping(bytes4 => bool)) storage allowed = $.allowed[gen];
        bool named = sel != ANY_SELECTOR && (sel != 0 || empty); // a selector a grant can name
        if (named && allowed[target][sel]) return false;
        if ($.denied[gen][sel]) revert FunctionDenied(target, sel);
        if (
            !allowed[target][ANY_SELECTOR] && !(named && allowed[ANY_TARGET][sel])
                && !allowed[ANY_TARGET][ANY_SELECTOR]
        ) revert FunctionNotAllowed(target, sel);
        return true;
    }

    /// @dev Adds `amount` to the spend in targets-word `t` for period `idx`; returns the new word.
    function _spend(uint256 t, address key, address token, uint256 amount, uint256 idx)
        internal
        returns (uint256)
    {
        uint256 spent = (t >> 208) & M40 == idx ? (t >> 104) & M104 : 0;
        uint256 remaining = (t & M104) - spent;
        if (amount > remaining) revert SpendLimitExceeded(token, amount, remaining);
        unchecked {
            spent += amount; // <= limit < 2**104
        }
        emit SpendRecorded(key, token, amount, spent);
        return (t & ~SPEND_FIELDS) | (spent << 104) | (idx << 208);
    }

    function _offsetOf(Call[] calldata calls) internal pure returns (uint256 offset) {
        assembly {
            offset := calls.offset
        }
    }

    /// @dev Call `i` of a calldata Call[] at `offset`: its target, value, and where its data
    ///      starts in calldata and how long it is. Hashing, checking and running all read calls
    ///      through here, so they see the same bytes. A target with dirty upper bits is refused.
    function _callAt(uint256 offset, uint256 i)
        internal
        pure
        returns (address target, uint256 value, uint256 data, uint256 len)
    {
        assembly {
            let c := add(offset, calldataload(add(offset, shl(5, i))))
            let t := calldataload(c)
            if shr(160, t) { revert(0, 0) }
            target := t
            value := calldataload(add(c, 0x20))
            let d := add(c, calldataload(add(c, 0x40)))
            len := calldataload(d)
            data := add(d, 0x20)
            if gt(add(data, len), calldatasize()) { revert(0, 0) }
        }
    }

    /// @dev Calls `target` with `value` and the `len` calldata bytes at `data`; bubbles a revert.
    function _call(address target, uint256 value, uint256 data, uint256 len) internal {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, data, len)
            if iszero(call(gas(), target, value, m, len, 0, 0)) {
                returndatacopy(m, 0, returndatasize())
                revert(m, returndatasize())
            }
        }
    }

    /// @dev keccak256(abi.encode(typehash, hash(calls), nonce, deadline)) with EIP-712's
    ///      hash(Call[]) = keccak256 of the concatenated keccak256(abi.encode(CALL_TYPEHASH,
    ///      target, value, keccak256(data))).
    function _structHash(bytes32 typehash, Call[] calldata calls, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32 h)
    {
        uint256 n = calls.length;
        uint256 offset = _offsetOf(calls);
        bytes32 callTypehash = CALL_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40) // 0x80 bytes of struct encoding, then n hashes, then data
            let hashes := add(m, 0x80)
            let buf := add(hashes, shl(5, n))
            mstore(m, callTypehash)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let c := add(offset, calldataload(add(offset, shl(5, i))))
                let t := calldataload(c)
                if shr(160, t) { revert(0, 0) }
                let d := add(c, calldataload(add(c, 0x40)))
                let len := calldataload(d)
                if gt(add(add(d, 0x20), len), calldatasize()) { revert(0, 0) }
                calldatacopy(buf, add(d, 0x20), len)
                mstore(add(m, 0x20), t)
                mstore(add(m, 0x40), calldataload(add(c, 0x20)))
                mstore(add(m, 0x60), keccak256(buf, len))
                mstore(add(hashes, shl(5, i)), keccak256(m, 0x80))
            }
            mstore(m, typehash)
            mstore(add(m, 0x20), keccak256(hashes, shl(5, n)))
            mstore(add(m, 0x40), nonce)
            mstore(add(m, 0x60), deadline)
            h := keccak256(m, 0x80)
        }
    }

    function _hashTypedData(bytes32 structHash) internal view returns (bytes32 digest) {
        bytes32 separator = domainSeparator();
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x1901000000000000000000000000000000000000000000000000000000000000)
            mstore(add(m, 0x02), separator)
            mstore(add(m, 0x22), structHash)
            digest := keccak256(m, 0x42)
        }
    }

    /// @dev Recovers a 65-byte r‖s‖v signature; reverts on a malformed, high-s or unrecoverable one.
    function _recover(bytes32 digest, bytes calldata signature) internal view returns (address signer) {
        signer = _tryRecover(digest, signature);
        if (signer == address(0)) revert InvalidSignature();
    }

    /// @dev v may be 27/28 or 0/1; s must be in the lower half of the curve order (no malleable
    ///      twin). Returns address(0) for anything invalid.
    function _tryRecover(bytes32 digest, bytes calldata signature) internal view returns (address signer) {
        if (signature.length != 65) return address(0);
        assembly ("memory-safe") {
            let r := calldataload(signature.offset)
            let s := calldataload(add(signature.offset, 0x20))
            let v := byte(0, calldataload(add(signature.offset, 0x40)))
            if lt(v, 27) { v := add(v, 27) }
            if and(iszero(gt(s, HALF_N)), or(eq(v, 27), eq(v, 28))) {
                let m := mload(0x40)
                mstore(m, digest)
                mstore(add(m, 0x20), v)
                mstore(add(m, 0x40), r)
                mstore(add(m, 0x60), s)
                mstore(0x00, 0) // the precompile returns nothing for an unrecoverable signature
                pop(staticcall(gas(), 1, m, 0x80, 0x00, 0x20))
                signer := mload(0x00)
            }
        }
    }
}
