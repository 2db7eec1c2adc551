#!/usr/bin/env bash
# Gas of whole job lives and disputes as real transactions: starts anvil
# (npm @foundry-rs/anvil) on a free loopback port, broadcasts
# script/JobLifeGas.s.sol to it, and prints each transaction's receipt
# gasUsed (intrinsic, calldata and cold-access costs included): submit,
# assign, commit, finalize per job size; challenge, drawJury, commitVote,
# revealVote, resolve per verdict. Fails when a job life (submit + assign +
# commit + finalize) reaches LIFE_LIMIT gas.
#
#   bash contracts/scripts/gas-anvil.sh
set -euo pipefail
# 400 000 before issue 15; a job now also stores its spec CID, its manifest
# CID and its sealed audit seed (three 32-byte words, ~66 000 gas).
LIFE_LIMIT=500000
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
# --skip-simulation: the script advances blocks (audit seed, jury draw),
# which the on-chain re-simulation of every transaction in one block cannot.
"$FORGE" script script/JobLifeGas.s.sol --use ./bin/solc \
  --rpc-url "http://127.0.0.1:$port" --broadcast --slow --skip-simulation >"$work/forge.log" 2>&1 ||
  { cat "$work/forge.log" >&2; exit 1; }

node - broadcast/JobLifeGas.s.sol/31337/run-latest.json "$("$ANVIL" --version | head -1)" "$LIFE_LIMIT" <<'EOF'
"use strict";
const fs = require("fs");
const run = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const LIMIT = BigInt(process.argv[4]);
const gas = new Map(run.receipts.map((r) => [r.transactionHash, BigInt(r.gasUsed)]));
const ok = run.receipts.every((r) => BigInt(r.status) === 1n);
if (!ok) { console.error("a transaction failed"); process.exit(1); }
// Contract calls only (the block-filling transfers have no function).
const calls = run.transactions
  .filter((t) => t.transactionType === "CALL" && t.function)
  .map((t) => ({ fn: t.function.split("(")[0], gas: gas.get(t.hash) }));
const fail = (m) => { console.error(m); process.exit(1); };
const pad = (v, w) => String(v).padStart(w);
const take = (n, names) => {
  const g = calls.splice(0, n);
  if (g.map((c) => c.fn).join() !== names.join()) fail(`unexpected order: ${g.map((c) => c.fn).join()}`);
  return g.map((c) => c.gas);
};
// Set-up calls (roles, node, jurors) come first.
while (calls.length && calls[0].fn !== "submitJob") calls.shift();

console.log(`real transactions on ${process.argv[3]} (receipt gasUsed)`);
console.log("steps          |  submit |  assign |  commit | finalize |   total");
let max = 0n;
for (const label of ["first job (1)", "100", "10 000", "1 000 000"]) {
  const g = take(4, ["submitJob", "assign", "commit", "finalize"]);
  const t = g.reduce((a, b) => a + b, 0n);
  if (t > max) max = t;
  console.log(`${label.padEnd(14)} |${g.map((v, k) => pad(v, k === 3 ? 9 : 8)).join(" |")} |${pad(t, 8)}`);
}
console.log("");
console.log("dispute, jury of 3 | challenge | drawJury |       commitVote × 3 |       revealVote × 3 |  resolve");
for (const verdict of ["VALID", "UNAVAILABLE", "FRAUD"]) {
  take(3, ["submitJob", "assign", "commit"]);
  const [ch, draw] = take(2, ["challenge", "drawJury"]);
  const cv = take(3, ["commitVote", "commitVote", "commitVote"]).join(" ");
  const rv = take(3, ["revealVote", "revealVote", "revealVote"]).join(" ");
  const [res] = take(1, ["resolve"]);
  console.log(`${verdict.padEnd(18)} |${pad(ch, 10)} |${pad(draw, 9)} |${pad(cv, 21)} |${pad(rv, 21)} |${pad(res, 9)}`);
}
if (calls.length) fail(`unexpected trailing calls: ${calls.map((c) => c.fn).join()}`);
if (max >= LIMIT) fail(`a job life costs ${max} gas, over the ${LIMIT} budget`);
EOF
