#!/usr/bin/env bash
# Fails when the committed artifacts differ from a fresh compile of src/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./node_modules/.bin/forge build --use ./bin/solc --out "$tmp/out" --cache-path "$tmp/cache" >/dev/null
node scripts/export-artifacts.js "$tmp/out" "$tmp/artifacts" >/dev/null
if ! diff -r -q artifacts "$tmp/artifacts" >/dev/null; then
  echo "contracts/artifacts is out of date with contracts/src:" >&2
  diff -r -q artifacts "$tmp/artifacts" >&2 || true
  echo "regenerate with: (cd contracts && forge build --use ./bin/solc && node scripts/export-artifacts.js)" >&2
  exit 1
fi
echo "artifacts match a fresh compile"
