#!/usr/bin/env bash
# Runs the delegate contract's forge tests offline with the pinned forge and the solcjs shim
# (contracts/foundry.toml points `solc` at tools/solc-shim.js). Extra arguments go to
# `forge test` (e.g. -vvvv, --match-test NAME, --gas-report). Exit status is forge's.
set -euo pipefail
cd "$(dirname "$0")/.."
FORGE=tools/node_modules/@foundry-rs/forge-linux-amd64/bin/forge
if [ ! -x "$FORGE" ]; then
  echo "forge-test: $FORGE missing; run ./tools/install.sh" >&2
  exit 1
fi
cd contracts
exec "../$FORGE" test --offline "$@"
