#!/usr/bin/env bash
# Fails, naming each contract and ABI entry that changed, when the committed
# artifacts differ from a fresh compile of contracts/src.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools.sh
. scripts/tools.sh
[ -n "$FORGE" ] || { echo "forge missing: run npm ci in contracts/" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! "$FORGE" build --use ./bin/solc --out "$tmp/out" --cache-path "$tmp/cache" >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  exit 1
fi
node scripts/export-artifacts.js --check "$tmp/out"
