#!/usr/bin/env bash
# The contracts' test entry point (tests/run.sh calls it):
#   1. installs the pinned toolchain from npm (forge, anvil, solc-js) when
#      node_modules is missing or older than package-lock.json;
#   2. builds, runs every forge test (unit, access control, fuzz, gas,
#      cross-language vectors) and prints forge's summary;
#   3. simulates the deploy script, runs whole job lives as real
#      transactions on anvil (gas table), and checks that the committed
#      artifacts match a fresh compile.
# Idempotent; exits non-zero on any failure. Under CI=true a missing tool is
# a failure; otherwise it is reported and the stage is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CI="${CI:-false}"

missing() {
  if [ "$CI" = "true" ]; then
    echo "contracts: FAILED: $1 is missing (CI=true: a missing tool is a failure)" >&2
    exit 1
  fi
  echo "contracts: SKIPPED: $1 is missing (install Node.js 18+ and npm, e.g. apt-get install nodejs npm)" >&2
  exit 0
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nodejs and npm (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1; } || true
  fi
  command -v node >/dev/null 2>&1 || missing node
  command -v npm >/dev/null 2>&1 || missing npm
fi

# npm ci when node_modules does not match package-lock.json (stamped by hash).
stamp=node_modules/.artha-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
# shellcheck source=scripts/tools.sh
. scripts/tools.sh
if [ -z "$FORGE" ] || [ -z "$ANVIL" ] || [ ! -d node_modules/solc ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the contracts toolchain (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
  . scripts/tools.sh
fi
[ -n "$FORGE" ] || missing "forge (npm @foundry-rs/forge)"
[ -n "$ANVIL" ] || missing "anvil (npm @foundry-rs/anvil)"

echo "$("$FORGE" --version | head -1); solc $(./bin/solc --version | sed -n 's/^Version: //p')"
"$FORGE" fmt --check
"$FORGE" build --use ./bin/solc
"$FORGE" test --use ./bin/solc -vv
"$FORGE" script script/Deploy.s.sol --use ./bin/solc >/dev/null
echo "deploy script simulates cleanly"
bash scripts/gas-anvil.sh
bash scripts/check-artifacts.sh
echo "contracts: ok"
