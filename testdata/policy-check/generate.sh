#!/usr/bin/env bash
# Rebuilds testdata/policy-check/<case>/requests.jsonl from <case>/requests.src.
#
#   testdata/policy-check/generate.sh           rewrite every requests.jsonl
#   testdata/policy-check/generate.sh --check   regenerate into a temp dir; exit 1 with a diff
#                                               when a committed requests.jsonl is stale
#
# A requests.src is a bash fragment sourced from its case directory: one helper call per
# request line, in order (helpers below). Every calldata byte is produced by the pinned foundry
# `cast` (an ABI encoder independent of Valet's decoder), never by Valet. python3 only
# normalises the JSON of each line. The output is deterministic: no clock, no randomness.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CAST_BIN="$ROOT/tools/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
export LC_ALL=C TZ=UTC
[[ -x $CAST_BIN ]] || { echo "generate.sh: $CAST_BIN is missing: run ./tools/install.sh" >&2; exit 1; }

# A cast failure inside "$(...)" cannot stop the script, so it leaves this marker in the line
# and the normaliser refuses the case.
FAILED='@@cast-failed@@'

# ---------------------------------------------------------------------------------------------
# Well-known addresses (Ethereum mainnet unless noted)
WALLET_DEFAULT=0x00000000000000000000000000000000000000a1 # `policy check --wallet` default
STRANGER=0x742d35Cc6634C0532925a3b844Bc454e4438f44e       # an address no policy names
B0=0x00000000000000000000000000000000000000b0             # recipients named by custom rules
B1=0x00000000000000000000000000000000000000b1
USDC=0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48
USDC_BASE=0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913
WETH=0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
DAI=0x6B175474E89094C44Da98b954EedeAC495271d0F
SDAI=0x83F20F44975D03b1b09e64809B757c47f942BEeA           # ERC-4626 vault
AAVE_POOL=0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2
BAYC=0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D
TORNADO=0x722122dF12D4e14e13Ac3b6895a86e84145b6967
BUILDER=0x4838B106FCe9647Bdf1E7877BF73cE8B0BAD5f97
V2_ROUTER=0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D      # Uniswap V2 Router02
V3_ROUTER=0xE592427A0AEce92De3Edee1F18E0157C05861564      # Uniswap V3 SwapRouter
SWAP_ROUTER02=0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45
UR=0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD             # Universal Router 1.2
UR2=0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af            # Universal Router 2.0
SUSHI_ROUTER=0xd9e1cE17f2641f24aE83637ab66a2cca9C378B9F   # a V2 fork, not built in
PERMIT2=0x000000000022D473030F116dDEE9F6B43aC78BA3
MULTICALL3=0xcA11bde05977b3631167028862bE2a173976CA11
MSG_SENDER=0x0000000000000000000000000000000000000001     # router sentinel: the caller
ADDRESS_THIS=0x0000000000000000000000000000000000000002   # router sentinel: the router
DEADLINE=1798761600                                        # 2027-01-01T00:00:00Z
ERC7821_BATCH=0x0100000000000000000000000000000000000000000000000000000000000000
ERC7821_DELEGATECALL=0xff00000000000000000000000000000000000000000000000000000000000000

# ---------------------------------------------------------------------------------------------
# Encoding helpers (all cast)
cast() {
    local out
    if out=$("$CAST_BIN" "$@"); then
        printf '%s' "$out"
    else
        printf 'generate.sh: cast %s failed\n' "$*" >&2
        printf '%s' "$FAILED"
    fi
}
hex() { cast to-hex "$1"; }                           # decimal -> 0x quantity
ether() { hex "$(cast to-wei "$1" ether)"; }          # "0.5" -> wei as a 0x quantity
gwei() { hex "$(cast to-wei "$1" gwei)"; }
units() { cast parse-units "$1" "$2"; }               # units 100 6 -> 100000000 (decimal)
maxuint() { cast max-uint "${1:-uint256}"; }
calldata() { cast calldata "$@"; }                     # calldata 'f(address)' 0x...
abi() { cast abi-encode "$@"; }                        # abi-encoded arguments, no selector
concat() { cast concat-hex "$@"; }
# A Uniswap V3 path: token fee token [fee token ...]
v3path() {
    local parts=("$1") i
    shift
    while (($#)); do
        parts+=("$(cast to-uint256 "$1" | sed 's/^0x.\{58\}/0x/')" "$2") # fee as 3 bytes
        shift 2
    done
    concat "${parts[@]}"
}

# ---------------------------------------------------------------------------------------------
# Request helpers: each prints one line of JSON (normalised afterwards).
#
#   tx AT TO DATA [value=0x..] [gas=0x..] [fee=0x..] [gasprice=0x..] [prio=0x..] [chain=ID|none]
#                 [ip=IP|none] [method=M] [extra='"k": v'] [id=N]
#       eth_sendTransaction. TO `none` creates a contract; DATA `-` sends none. Defaults:
#       chain $CHAIN, gas $GAS, maxFeePerGas $FEE, maxPriorityFeePerGas $PRIO, ip $IP.
#   rpc AT METHOD PARAMS-JSON|none [ip=IP|none] [id=N]     any JSON-RPC method
#   typed AT TYPED-DATA-JSON [ip=..]                        eth_signTypedData_v4 [wallet, data]
#   psign AT TEXT [ip=..]                                   personal_sign [hex(TEXT), wallet]
#
# AT is an RFC 3339 moment put in the {"at","ip","request"} wrapper, or `-` for a bare
# JSON-RPC request (the moment is then --at from the case's args file).
emit() { printf '%s\n' "$1"; }
wrap() {
    local at=$1 ip=$2 req=$3
    if [[ $at == - ]]; then
        emit "$req"
    else
        local w="{\"at\": \"$at\""
        [[ $ip == none ]] || w+=", \"ip\": \"$ip\""
        emit "$w, \"request\": $req}"
    fi
}
options() { # the key=value arguments of a helper, into the caller's locals
    local kv
    for kv in "$@"; do
        if [[ $kv != *=* || ! -v ${kv%%=*} ]]; then
            echo "generate.sh: unknown option '$kv'" >&2
            emit "$FAILED"
            return
        fi
        printf -v "${kv%%=*}" '%s' "${kv#*=}"
    done
}
tx() {
    local at=$1 to=$2 data=$3
    shift 3
    local value="" gas=$GAS fee=$FEE gasprice="" prio=$PRIO chain=$CHAIN ip=$IP
    local method=eth_sendTransaction extra="" id=1
    options "$@"
    local o="\"from\": \"$WALLET\""
    [[ $to == none ]] || o+=", \"to\": \"$to\""
    [[ -z $value ]] || o+=", \"value\": \"$value\""
    [[ $data == - ]] || o+=", \"data\": \"$data\""
    [[ $chain == none ]] || o+=", \"chainId\": \"$(hex "$chain")\""
    [[ $gas == none ]] || o+=", \"gas\": \"$gas\""
    if [[ -n $gasprice ]]; then
        o+=", \"gasPrice\": \"$gasprice\""
    else
        [[ $fee == none ]] || o+=", \"maxFeePerGas\": \"$fee\""
        [[ $prio == none ]] || o+=", \"maxPriorityFeePerGas\": \"$prio\""
    fi
    [[ -z $extra ]] || o+=", $extra"
    wrap "$at" "$ip" "{\"jsonrpc\": \"2.0\", \"id\": $id, \"method\": \"$method\", \"params\": [{$o}]}"
}
rpc() {
    local at=$1 method=$2 params=$3
    shift 3
    local ip=$IP id=1
    options "$@"
    local req="{\"jsonrpc\": \"2.0\", \"id\": $id, \"method\": \"$method\""
    [[ $params == none ]] || req+=", \"params\": $params"
    wrap "$at" "$ip" "$req}"
}
typed() {
    local at=$1 data=$2
    shift 2
    rpc "$at" eth_signTypedData_v4 "[\"$WALLET\", $data]" "$@"
}
psign() {
    local at=$1 text=$2
    shift 2
    rpc "$at" personal_sign "[\"$(cast from-utf8 "$text")\", \"$WALLET\"]" "$@"
}

# ---------------------------------------------------------------------------------------------
# EIP-712 documents. CHAIN `none` leaves chainId out of the domain.
domain_json() { # NAME VERSION|- CHAIN|none VERIFYING-CONTRACT -> "types-entry" and "domain"
    local name=$1 version=$2 chain=$3 vc=$4
    DOMAIN_TYPE='{"name": "name", "type": "string"}'
    DOMAIN="\"name\": \"$name\""
    if [[ $version != - ]]; then
        DOMAIN_TYPE+=', {"name": "version", "type": "string"}'
        DOMAIN+=", \"version\": \"$version\""
    fi
    if [[ $chain != none ]]; then
        DOMAIN_TYPE+=', {"name": "chainId", "type": "uint256"}'
        DOMAIN+=", \"chainId\": $chain"
    fi
    DOMAIN_TYPE+=', {"name": "verifyingContract", "type": "address"}'
    DOMAIN+=", \"verifyingContract\": \"$vc\""
}
# Permit2 PermitSingle: permit2_single CHAIN TOKEN AMOUNT SPENDER
permit2_single() {
    local chain=$1 token=$2 amount=$3 spender=$4
    domain_json Permit2 - "$chain" "$PERMIT2"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"PermitSingle\": [{\"name\": \"details\", \"type\": \"PermitDetails\"}, {\"name\": \"spender\", \"type\": \"address\"}, {\"name\": \"sigDeadline\", \"type\": \"uint256\"}], \
\"PermitDetails\": [{\"name\": \"token\", \"type\": \"address\"}, {\"name\": \"amount\", \"type\": \"uint160\"}, {\"name\": \"expiration\", \"type\": \"uint48\"}, {\"name\": \"nonce\", \"type\": \"uint48\"}]}, \
\"primaryType\": \"PermitSingle\", \"domain\": {$DOMAIN}, \
\"message\": {\"details\": {\"token\": \"$token\", \"amount\": \"$amount\", \"expiration\": \"$DEADLINE\", \"nonce\": \"0\"}, \"spender\": \"$spender\", \"sigDeadline\": \"$DEADLINE\"}}"
}
# EIP-2612 Permit: permit2612 CHAIN TOKEN NAME VERSION SPENDER VALUE
permit2612() {
    local chain=$1 token=$2 name=$3 version=$4 spender=$5 value=$6
    domain_json "$name" "$version" "$chain" "$token"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"Permit\": [{\"name\": \"owner\", \"type\": \"address\"}, {\"name\": \"spender\", \"type\": \"address\"}, {\"name\": \"value\", \"type\": \"uint256\"}, {\"name\": \"nonce\", \"type\": \"uint256\"}, {\"name\": \"deadline\", \"type\": \"uint256\"}]}, \
\"primaryType\": \"Permit\", \"domain\": {$DOMAIN}, \
\"message\": {\"owner\": \"$WALLET\", \"spender\": \"$spender\", \"value\": \"$value\", \"nonce\": \"0\", \"deadline\": \"$DEADLINE\"}}"
}
# EIP-3009: eip3009 CHAIN TOKEN PRIMARY-TYPE FROM TO VALUE [VALUE-TYPE]
# (TransferWithAuthorization or ReceiveWithAuthorization; VALUE-TYPE uint256 unless a look-alike)
eip3009() {
    local chain=$1 token=$2 primary=$3 from=$4 to=$5 value=$6 vtype=${7:-uint256}
    domain_json 'USD Coin' 2 "$chain" "$token"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"$primary\": [{\"name\": \"from\", \"type\": \"address\"}, {\"name\": \"to\", \"type\": \"address\"}, {\"name\": \"value\", \"type\": \"$vtype\"}, {\"name\": \"validAfter\", \"type\": \"uint256\"}, {\"name\": \"validBefore\", \"type\": \"uint256\"}, {\"name\": \"nonce\", \"type\": \"bytes32\"}]}, \
\"primaryType\": \"$primary\", \"domain\": {$DOMAIN}, \
\"message\": {\"from\": \"$from\", \"to\": \"$to\", \"value\": \"$value\", \"validAfter\": \"0\", \"validBefore\": \"$DEADLINE\", \"nonce\": \"0x$(printf '11%.0s' {1..32})\"}}"
}
# EIP-3009 CancelAuthorization: eip3009_cancel CHAIN TOKEN
eip3009_cancel() {
    domain_json 'USD Coin' 2 "$1" "$2"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"CancelAuthorization\": [{\"name\": \"authorizer\", \"type\": \"address\"}, {\"name\": \"nonce\", \"type\": \"bytes32\"}]}, \
\"primaryType\": \"CancelAuthorization\", \"domain\": {$DOMAIN}, \
\"message\": {\"authorizer\": \"$WALLET\", \"nonce\": \"0x$(printf '11%.0s' {1..32})\"}}"
}
# ValetAccount's OwnerExecute (executeSigned), over the domain of VERIFYING-CONTRACT:
# owner_execute CHAIN VERIFYING-CONTRACT TO VALUE
owner_execute() {
    domain_json ValetAccount 1 "$1" "$2"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"OwnerExecute\": [{\"name\": \"calls\", \"type\": \"Call[]\"}, {\"name\": \"nonce\", \"type\": \"uint256\"}, {\"name\": \"deadline\", \"type\": \"uint256\"}], \
\"Call\": [{\"name\": \"target\", \"type\": \"address\"}, {\"name\": \"value\", \"type\": \"uint256\"}, {\"name\": \"data\", \"type\": \"bytes\"}]}, \
\"primaryType\": \"OwnerExecute\", \"domain\": {$DOMAIN}, \
\"message\": {\"calls\": [{\"target\": \"$3\", \"value\": \"$4\", \"data\": \"0x\"}], \"nonce\": \"0\", \"deadline\": \"$DEADLINE\"}}"
}
# Permit2 PermitWitnessTransferFrom: permit2_witness_transfer CHAIN TOKEN AMOUNT SPENDER
permit2_witness_transfer() {
    domain_json Permit2 - "$1" "$PERMIT2"
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], \
\"PermitWitnessTransferFrom\": [{\"name\": \"permitted\", \"type\": \"TokenPermissions\"}, {\"name\": \"spender\", \"type\": \"address\"}, {\"name\": \"nonce\", \"type\": \"uint256\"}, {\"name\": \"deadline\", \"type\": \"uint256\"}, {\"name\": \"witness\", \"type\": \"Order\"}], \
\"TokenPermissions\": [{\"name\": \"token\", \"type\": \"address\"}, {\"name\": \"amount\", \"type\": \"uint256\"}], \
\"Order\": [{\"name\": \"recipient\", \"type\": \"address\"}]}, \
\"primaryType\": \"PermitWitnessTransferFrom\", \"domain\": {$DOMAIN}, \
\"message\": {\"permitted\": {\"token\": \"$2\", \"amount\": \"$3\"}, \"spender\": \"$4\", \"nonce\": \"0\", \"deadline\": \"$DEADLINE\", \"witness\": {\"recipient\": \"$4\"}}}"
}
# A chain of DEPTH struct types L1 -> L2 -> ... -> L<DEPTH> (L<DEPTH> holds only a uint256):
# nested DEPTH levels deep. nested_typed CHAIN DEPTH
nested_typed() {
    local chain=$1 depth=$2 i types="" message="{\"v\": \"1\"}"
    domain_json Nested 1 "$chain" "$B0"
    for ((i = 1; i < depth; i++)); do
        types+="\"L$i\": [{\"name\": \"next\", \"type\": \"L$((i + 1))\"}], "
    done
    types+="\"L$depth\": [{\"name\": \"v\", \"type\": \"uint256\"}]"
    for ((i = 1; i < depth; i++)); do message="{\"next\": $message}"; done
    printf '%s' "{\"types\": {\"EIP712Domain\": [$DOMAIN_TYPE], $types}, \"primaryType\": \"L1\", \"domain\": {$DOMAIN}, \"message\": $message}"
}
# An EIP-4361 (SIWE) message: siwe DOMAIN ADDRESS CHAIN
siwe() {
    printf '%s wants you to sign in with your Ethereum account:\n%s\n\nSign in to the app.\n\nURI: https://%s/login\nVersion: 1\nChain ID: %s\nNonce: 32891756\nIssued At: 2026-12-01T10:00:00Z' \
        "$1" "$2" "$1" "$3"
}

# ---------------------------------------------------------------------------------------------
NORMALISE=$(
    cat <<'PY'
import json, sys
case, out = sys.argv[1], sys.argv[2]
lines = []
for n, raw in enumerate(sys.stdin.read().splitlines(), 1):
    if "@@cast-failed@@" in raw:
        sys.exit(f"generate.sh: {case}: request {n}: an encoding step failed")
    try:
        lines.append(json.dumps(json.loads(raw)))
    except ValueError as e:
        sys.exit(f"generate.sh: {case}: request {n} is not JSON ({e}): {raw[:200]}")
with open(out, "w") as f:
    f.write("".join(l + "\n" for l in lines))
PY
)

generate_case() { # CASE-DIR OUT-FILE
    local dir=$1 out=$2 raw
    raw=$(
        cd "$dir"
        WALLET=$WALLET_DEFAULT CHAIN=1 IP=192.0.2.1 GAS=0x10000 FEE=0x3b9aca00 PRIO=0x1
        # shellcheck source=/dev/null
        source ./requests.src
    )
    printf '%s\n' "$raw" | python3 -c "$NORMALISE" "$(basename "$dir")" "$out"
}

main() {
    local check=0
    case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: generate.sh [--check]" >&2; exit 2 ;;
    esac
    local tmp src dir name status=0
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for src in "$HERE"/*/requests.src; do
        dir=$(dirname "$src")
        name=$(basename "$dir")
        mkdir -p "$tmp/$name"
        generate_case "$dir" "$tmp/$name/requests.jsonl"
        if ((check)); then
            if ! diff -u "$dir/requests.jsonl" "$tmp/$name/requests.jsonl" \
                --label "committed $name/requests.jsonl" --label "regenerated $name/requests.jsonl"; then
                status=1
            fi
        else
            cp "$tmp/$name/requests.jsonl" "$dir/requests.jsonl"
        fi
    done
    for dir in "$HERE"/*/; do
        if [[ -e $dir/requests.jsonl && ! -e $dir/requests.src ]]; then
            echo "generate.sh: $(basename "$dir")/requests.jsonl has no requests.src" >&2
            status=1
        fi
    done
    if ((check && status)); then
        echo "generate.sh: fixtures are stale: run testdata/policy-check/generate.sh" >&2
    fi
    exit "$status"
}

main "$@"
