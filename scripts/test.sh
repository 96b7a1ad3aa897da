#!/usr/bin/env bash
# The whole test suite: install what is missing, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CORRAL_IMAGE_DIR="${CORRAL_IMAGE_DIR:-/var/lib/corral/images}"
scripts/install.sh
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --quiet --workspace --all-targets -- -D warnings
echo "==> cargo test"
cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1
