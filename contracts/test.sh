#!/usr/bin/env bash
# Contracts: install the pinned toolchain from npm (forge, anvil, solc-js)
# when missing, then build, run every forge test (unit, fuzz, gas, vectors),
# simulate the deploy script, and check the committed artifacts are fresh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
stamp=node_modules/.artha-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -x node_modules/.bin/forge ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
./node_modules/.bin/forge --version | head -1
./node_modules/.bin/forge build --use ./bin/solc
./node_modules/.bin/forge test --use ./bin/solc -vv
./node_modules/.bin/forge script script/Deploy.s.sol --use ./bin/solc >/dev/null
echo "deploy script simulates cleanly"
bash scripts/check-artifacts.sh
