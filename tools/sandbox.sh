#!/usr/bin/env bash
# The demo in one command: installs the pinned tools, builds valet, and runs `valet sandbox`
# (extra arguments, e.g. --keep, are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/valet/target}"
./tools/install.sh
cargo build --release --locked -p valet-cli >&2
exec "$CARGO_TARGET_DIR/release/valet" sandbox "$@"
