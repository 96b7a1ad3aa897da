#!/usr/bin/env bash
# The newcomer's first command: install everything, then run `corral serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CORRAL_IMAGE_DIR="${CORRAL_IMAGE_DIR:-/var/lib/corral/images}"
scripts/install.sh
cargo build --quiet --release --bin corral
echo "==> starting corral serve on ${CORRAL_LISTEN:-127.0.0.1:8080} (Ctrl-C stops it)"
exec ./target/release/corral serve
