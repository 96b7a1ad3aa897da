#!/usr/bin/env bash
# Installs what Corral needs on Debian 12 (idempotent): Debian packages, the release and
# test builds, and the sandbox base image. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_DIR="${CORRAL_IMAGE_DIR:-/var/lib/corral/images}"
packages=(runsc debootstrap wrk e2fsprogs iproute2 ca-certificates pkg-config gcc chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

echo "==> building corral"
cargo build --quiet --bin corral

if [ ! -d "$IMAGE_DIR/base" ]; then
  echo "==> building the sandbox base image in $IMAGE_DIR (Debian bookworm, about a minute)"
  ./target/debug/corral image build --dir "$IMAGE_DIR"
fi
echo "==> ready"
