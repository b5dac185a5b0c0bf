#!/usr/bin/env bash
# Every check CI runs, in the order a developer wants to see them fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/valet/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "format"
cargo fmt --all -- --check
step "clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "fixtures are fresh (calldata re-encoded by the pinned cast)"
testdata/policy-check/generate.sh --check
step "tests"
cargo test --workspace --locked
step "benchmarks and fuzz targets build"
cargo bench --workspace --locked --no-run
cargo check --locked --manifest-path fuzz/Cargo.toml
