#!/usr/bin/env bash
# The newcomer's first command: install everything (one release build), put `corral` on
# the PATH, then run `corral serve` from this checkout (data in ./corral-data).
set -euo pipefail
cd "$(dirname "$0")/.."
export CORRAL_IMAGE_DIR="${CORRAL_IMAGE_DIR:-/var/lib/corral/images}"
BIN_DIR="${CORRAL_BIN_DIR:-/usr/local/bin}"
scripts/install.sh --release
# A copy, not a link: the running server and sprites' agents keep using the binary they
# started with while the checkout is rebuilt.
install -m 0755 target/release/corral "$BIN_DIR/corral.tmp"
mv -f "$BIN_DIR/corral.tmp" "$BIN_DIR/corral"
echo "==> installed $BIN_DIR/corral: in another shell, type the README's \"Using it\" commands"
echo "==> starting corral serve on ${CORRAL_LISTEN:-127.0.0.1:8080} with data in $(pwd)/corral-data (Ctrl-C stops it)"
exec "$BIN_DIR/corral" serve
