#!/usr/bin/env bash
# Installs what Corral needs on Debian 12 (idempotent): Debian packages, room for many
# processes (kernel.pid_max), one build of `corral` (debug by default, `--release` for
# the server people run), and the sandbox images (`minimal`, `default`) made with that
# same binary. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_profile=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo_profile=(--release)
fi

IMAGE_DIR="${CORRAL_IMAGE_DIR:-/var/lib/corral/images}"
packages=(runsc debootstrap wrk e2fsprogs iproute2 ca-certificates pkg-config gcc curl jq skopeo tmux chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Each running sprite is about 46 host tasks (gVisor's Go threads, its gofer, a ptrace
# stub per process inside): the kernel's usual pid_max of 32768 stops a box near 650
# running sprites with forks failing (EAGAIN), whatever its memory.
if [ "$(cat /proc/sys/kernel/pid_max)" -lt 4194304 ]; then
  echo "==> raising kernel.pid_max to 4194304 (room for thousands of running sprites)"
  echo "kernel.pid_max = 4194304" > /etc/sysctl.d/90-corral.conf
  sysctl -q -w kernel.pid_max=4194304 ||
    echo "    could not: running sprites stay limited to about pid_max / 46" >&2
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

echo "==> building corral ($profile)"
cargo build --quiet "${cargo_profile[@]}" --bin corral

if [ ! -e "$IMAGE_DIR/default/bin/sh" ] || [ ! -e "$IMAGE_DIR/minimal/bin/sh" ]; then
  echo "==> building the sprite images in $IMAGE_DIR (Debian bookworm: minimal, then default; about a minute)"
  "./target/$profile/corral" image build default --dir "$IMAGE_DIR"
fi
echo "==> ready"
