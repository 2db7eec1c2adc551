#!/usr/bin/env bash
# Gas of whole job lives as real transactions: starts anvil (npm
# @foundry-rs/anvil) on a free loopback port, broadcasts
# script/JobLifeGas.s.sol to it, and prints each transaction's receipt
# gasUsed (intrinsic, calldata and cold-access costs included).
#
#   bash contracts/scripts/gas-anvil.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools.sh
. scripts/tools.sh
[ -n "$FORGE" ] && [ -n "$ANVIL" ] || { echo "forge/anvil missing: run npm ci in contracts/" >&2; exit 1; }

work="$(mktemp -d)"
anvil_pid=""
cleanup() {
  if [ -n "$anvil_pid" ]; then kill "$anvil_pid" 2>/dev/null || true; wait "$anvil_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$ANVIL" --host 127.0.0.1 --port 0 >"$work/anvil.log" 2>&1 &
anvil_pid=$!
port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's/^Listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/anvil.log")"
  [ -n "$port" ] && break
  kill -0 "$anvil_pid" 2>/dev/null || { cat "$work/anvil.log" >&2; echo "anvil exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "anvil did not start listening" >&2; exit 1; }

# Broadcast records go to broadcast/ (git-ignored); the run's own file is read back.
"$FORGE" script script/JobLifeGas.s.sol --use ./bin/solc \
  --rpc-url "http://127.0.0.1:$port" --broadcast --slow >"$work/forge.log" 2>&1 ||
  { cat "$work/forge.log" >&2; exit 1; }

node - broadcast/JobLifeGas.s.sol/31337/run-latest.json "$("$ANVIL" --version | head -1)" <<'EOF'
"use strict";
const fs = require("fs");
const run = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const gas = new Map(run.receipts.map((r) => [r.transactionHash, BigInt(r.gasUsed)]));
const ok = run.receipts.every((r) => BigInt(r.status) === 1n);
if (!ok) { console.error("a transaction failed"); process.exit(1); }
const calls = run.transactions
  .filter((t) => t.transactionType === "CALL")
  .map((t) => ({ fn: (t.function || "").split("(")[0], gas: gas.get(t.hash) }));
const names = ["submitJob", "assign", "commit", "finalize"];
const life = calls.filter((c) => names.includes(c.fn));
const labels = ["first job (1)", "100", "10 000", "1 000 000"];
const pad = (v, w) => String(v).padStart(w);
console.log(`real transactions on ${process.argv[3]} (receipt gasUsed)`);
console.log("steps          |  submit |  assign |  commit | finalize |   total");
let totals = [];
for (let i = 0; i * 4 < life.length; i++) {
  const g = life.slice(i * 4, i * 4 + 4);
  if (g.map((c) => c.fn).join() !== names.join()) { console.error("unexpected order", g); process.exit(1); }
  const t = g.reduce((a, c) => a + c.gas, 0n);
  totals.push(t);
  console.log(`${labels[i].padEnd(14)} |${g.map((c, k) => pad(c.gas, k === 3 ? 9 : 8)).join(" |")} |${pad(t, 8)}`);
}
const max = totals.reduce((a, b) => (a > b ? a : b), 0n);
if (max >= 400000n) { console.error(`a job life costs ${max} gas, over the 400 000 budget`); process.exit(1); }
EOF
