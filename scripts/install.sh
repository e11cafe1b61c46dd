#!/bin/sh
# Installs game-gateway on a VM: the binary, a config (only if there is none) and the systemd
# unit. Safe to run again: the binary and unit are replaced, an existing config is kept.
#
#   scripts/install.sh [--binary PATH] [--prefix DIR] [--dry-run]
#
#   --binary PATH  the executable to install (default: dist/game-gateway; npm run build makes it,
#                  npm run build:all makes dist/<target>/game-gateway for other machines)
#   --prefix DIR   install under DIR instead of / (a staging root, a test); no systemctl then
#   --dry-run      print what would be done, change nothing
#
# Layout (under the prefix):
#   /usr/local/bin/game-gateway                  the binary
#   /etc/game-gateway/config/config.yaml         the config (from config/gateway.example.yaml if none)
#   /etc/systemd/system/game-gateway.service     the unit (deploy/systemd/game-gateway.service)
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
binary="$repo/dist/game-gateway"
prefix=""
dry_run=0

usage() { echo "usage: $0 [--binary PATH] [--prefix DIR] [--dry-run]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument \"$1\"" >&2; usage ;;
  esac
done
prefix=${prefix%/}

if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  echo "install.sh: --binary $binary: expected an executable file (build one with: npm run build)" >&2
  exit 1
fi
# A binary for another CPU or libc fails here rather than at the first start of the unit.
if ! version=$("$binary" --version 2>/dev/null); then
  echo "install.sh: $binary --version failed: built for another machine? (npm run build:all makes one per target)" >&2
  exit 1
fi

bin_dir="$prefix/usr/local/bin"
config_dir="$prefix/etc/game-gateway/config"
unit_dir="$prefix/etc/systemd/system"

run() {
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

echo "installing $version under ${prefix:-/}"
run install -d -m 0755 "$bin_dir" "$config_dir" "$unit_dir"
run install -m 0755 "$binary" "$bin_dir/game-gateway"
if [ -e "$config_dir/config.yaml" ]; then
  echo "  keeping the existing $config_dir/config.yaml"
else
  # 0644: the unit's DynamicUser has no fixed uid to own it (see the unit's hardening notes).
  run install -m 0644 "$repo/config/gateway.example.yaml" "$config_dir/config.yaml"
fi
run install -m 0644 "$repo/deploy/systemd/game-gateway.service" "$unit_dir/game-gateway.service"

if [ -z "$prefix" ] && [ "$dry_run" = 0 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
fi
cat <<NEXT
next:
  edit ${prefix}/etc/game-gateway/config/config.yaml (routing.rules: your game servers), then
  game-gateway --check-config ${prefix}/etc/game-gateway/config/config.yaml
  systemctl enable --now game-gateway     # start, and at every boot
  systemctl reload game-gateway           # after editing the config (checks it, then SIGHUP)
  journalctl -u game-gateway -f           # its logs
NEXT
