#!/usr/bin/env bash
# Every check CI runs, in the order a developer wants to see them fail. Installs what it needs
# first (pinned tools, a local PostgreSQL), so on a fresh machine this one command does it all.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/valet/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "pinned tools"
./tools/install.sh --browser
if [ -z "${VALET_TEST_DATABASE_URL:-}" ]; then
  step "PostgreSQL for the store's conformance suite"
  VALET_TEST_DATABASE_URL="$(tools/postgres.sh)"
  export VALET_TEST_DATABASE_URL
fi
step "format"
cargo fmt --all -- --check
step "clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "fixtures are fresh (calldata re-encoded by the pinned cast)"
testdata/policy-check/generate.sh --check
step "the committed contract artifacts match their sources"
node tools/compile-contracts.js --check
step "forge tests of the EIP-7702 delegate (offline, solc through tools/solc-shim.js)"
tools/forge-test.sh
step "tests (the dashboard's among them, in headless Chromium)"
cargo test --workspace --locked
step "benchmarks and fuzz targets build"
cargo bench --workspace --locked --no-run
cargo check --locked --manifest-path fuzz/Cargo.toml
