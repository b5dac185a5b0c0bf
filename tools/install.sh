#!/usr/bin/env bash
# One-time set-up: the pinned development tools (anvil, cast, forge) from the npm registry.
# Idempotent and quick when already installed.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/@foundry-rs/cast-linux-amd64/bin/cast ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing pinned foundry tools under tools/node_modules" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/@foundry-rs/cast-linux-amd64/bin/cast --version >&2
