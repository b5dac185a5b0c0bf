#!/usr/bin/env bash
# One-time set-up: the pinned development tools (anvil, cast, forge, solc) and the contract
# packages the sandbox deploys (OpenZeppelin, Uniswap V2), from the npm registry.
# Idempotent and quick when already installed.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -d node_modules/@uniswap/v2-periphery ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing pinned tools under tools/node_modules" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/@foundry-rs/cast-linux-amd64/bin/cast --version >&2
