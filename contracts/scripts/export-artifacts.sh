#!/usr/bin/env bash
# Compiles contracts/src and writes the committed artifacts
# (artifacts/<Name>.json: abi, bytecode, deployedBytecode).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools.sh
. scripts/tools.sh
[ -n "$FORGE" ] || { echo "forge missing: run npm ci in contracts/" >&2; exit 1; }
"$FORGE" build --use ./bin/solc
node scripts/export-artifacts.js out
