#!/usr/bin/env bash
# Cross-check of the forge gas table with real transactions on anvil (--hardfork prague): the
# receipts' gasUsed of an ERC-20 transfer sent by the EOA itself versus executeWithKey batches of
# 1-4 transfers relayed by another account, in steady state (the key has spent in this period,
# its nonce lane is in use, owner and recipient hold tokens). Uses the committed artifacts
# (TestStablecoin, an OpenZeppelin ERC-20 that emits Transfer, so its per-call figures are higher
# than the forge test's MiniToken) and the pinned anvil/cast in tools/node_modules. Not part of
# CI. Usage: bash contracts/gas/anvil-gas.sh   (ROOT=<checkout> to point at another tree)
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
NM=$ROOT/tools/node_modules/@foundry-rs
ANVIL=$NM/anvil-linux-amd64/bin/anvil; CAST=$NM/cast-linux-amd64/bin/cast
PORT=$((20000 + RANDOM % 20000)); RPC=http://127.0.0.1:$PORT
$ANVIL --host 127.0.0.1 --port $PORT --hardfork prague --silent & APID=$!
trap 'kill $APID' EXIT
sleep 1.5
K0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80   # deployer / relayer
K1=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d # anvil account 1 = owner
KEYPK=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a # anvil account 2 = session key
OWNER=$($CAST wallet address $K1); KEY=$($CAST wallet address $KEYPK); BOB=0x000000000000000000000000000000000000b0b0
code() { node -e "console.log(require('$ROOT/contracts/artifacts/$1.json').bytecode)"; }
deploy() { $CAST send --rpc-url $RPC --private-key $K0 --json --create "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).contractAddress))'; }
gas() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(r.status!=="0x1"&&r.status!==1&&r.status!=="1")throw new Error("failed tx "+s);console.log(parseInt(r.gasUsed))})'; }
TOKEN=$(deploy "$(code TestStablecoin)"); IMPL=$(deploy "$(code ValetAccount)")
$CAST send -q --rpc-url $RPC --private-key $K0 $TOKEN "mint(address,uint256)" $OWNER 1000000000000
$CAST send -q --rpc-url $RPC --private-key $K0 $TOKEN "mint(address,uint256)" $BOB 1
$CAST send -q --rpc-url $RPC --private-key $K1 $OWNER --auth $IMPL
NOW=$($CAST block --rpc-url $RPC latest -f timestamp)
SCOPE="(86400,4294967295,1000000000000000000,2000000000000000000,[($TOKEN,0xa9059cbb)],[],[($TOKEN,1000000000)])"
$CAST send -q --rpc-url $RPC --private-key $K1 $OWNER "authorizeKey(address,uint40,uint40,(uint32,uint32,uint256,uint256,(address,bytes4)[],bytes4[],(address,uint256)[]))" $KEY $NOW $((NOW+86400*30)) "$SCOPE"
XFER=$($CAST calldata "transfer(address,uint256)" $BOB 1000000)
ewk() { # n transfers; prints gasUsed
  local n=$1 calls="[" i
  for ((i=0;i<n;i++)); do calls+="($TOKEN,0,$XFER)"; [ $i -lt $((n-1)) ] && calls+=","; done; calls+="]"
  local nonce=$($CAST call --rpc-url $RPC $OWNER "getNonce(address,uint192)(uint256)" $KEY 0)
  local dl=$((NOW+86400))
  local digest=$($CAST call --rpc-url $RPC $OWNER "hashExecute((address,uint256,bytes)[],uint256,uint256)(bytes32)" "$calls" $nonce $dl)
  local sig=$($CAST wallet sign --no-hash --private-key $KEYPK $digest)
  $CAST send --rpc-url $RPC --private-key $K0 --json $OWNER "executeWithKey((address,uint256,bytes)[],uint256,uint256,bytes)" "$calls" $nonce $dl $sig | gas
}
ewk 1 >/dev/null   # steady state: nonce and spend slot in use
D1=$($CAST send --rpc-url $RPC --private-key $K1 --json $TOKEN "transfer(address,uint256)" $BOB 1000000 | gas)
D2=$($CAST send --rpc-url $RPC --private-key $K1 --json $TOKEN "transfer(address,uint256)" $BOB 1000000 | gas)
E1=$(ewk 1); E2=$(ewk 2); E3=$(ewk 3); E4=$(ewk 4)
echo "direct transfer tx gasUsed           $D1 (again: $D2)"
echo "executeWithKey 1..4 transfers gasUsed $E1 $E2 $E3 $E4"
echo "overhead 1 call                       $((E1-D1))"
echo "marginal per extra call               $(( (E2-E1) )) $(( (E3-E2) )) $(( (E4-E3) ))"
OG=$(( (E4-E1)/3 ))
echo "mean marginal calls 2..4              $OG"
# Owner grants: sent by the EOA to itself, versus signed by the owner and relayed (executeSigned).
SIG_AUTH="authorizeKey(address,uint40,uint40,(uint32,uint32,uint256,uint256,(address,bytes4)[],bytes4[],(address,uint256)[]))"
K2=0x0000000000000000000000000000000000000000000000000000000000000a11
K3=0x0000000000000000000000000000000000000000000000000000000000000a12
G1=$($CAST send --rpc-url $RPC --private-key $K1 --json $OWNER "$SIG_AUTH" $($CAST wallet address $K2) $NOW $((NOW+86400*30)) "$SCOPE" | gas)
GRANT=$($CAST calldata "$SIG_AUTH" $($CAST wallet address $K3) $NOW $((NOW+86400*30)) "$SCOPE")
OCALLS="[(0x0000000000000000000000000000000000000000,0,$GRANT)]"
ON=$($CAST call --rpc-url $RPC $OWNER "getOwnerNonce(uint192)(uint256)" 0)
OD=$($CAST call --rpc-url $RPC $OWNER "hashOwnerExecute((address,uint256,bytes)[],uint256,uint256)(bytes32)" "$OCALLS" $ON $((NOW+86400)))
OSIG=$($CAST wallet sign --no-hash --private-key $K1 $OD)
G2=$($CAST send --rpc-url $RPC --private-key $K0 --json $OWNER "executeSigned((address,uint256,bytes)[],uint256,uint256,bytes)" "$OCALLS" $ON $((NOW+86400)) $OSIG | gas)
echo "authorizeKey sent by the EOA itself   $G1"
echo "authorizeKey via executeSigned relay  $G2"
