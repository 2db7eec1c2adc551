#!/usr/bin/env node
// The committed artifacts: artifacts/<Name>.json = {contractName, abi,
// bytecode, deployedBytecode} for each deployable contract, taken from
// forge's output directory. The Rust engine embeds them (alloy `sol!`, and
// the bytecode it deploys on its embedded EVM).
//
//   node scripts/export-artifacts.js [OUT_DIR]           write artifacts/ from OUT_DIR (default ./out)
//   node scripts/export-artifacts.js --check [OUT_DIR]   compare instead; exit 1 and say what differs
"use strict";
const fs = require("fs");
const path = require("path");

const CONTRACTS = [
  "NodeCertRegistry",
  "DatasetRegistry",
  "ModelRegistry",
  "DealMarket",
  "AIJobManager",
  "ProofOfCompute",
];
const root = path.resolve(__dirname, "..");
const argv = process.argv.slice(2);
const check = argv[0] === "--check";
if (check) argv.shift();
const out = path.resolve(argv[0] || path.join(root, "out"));
const dest = path.join(root, "artifacts");

function fresh(name) {
  const src = path.join(out, `${name}.sol`, `${name}.json`);
  if (!fs.existsSync(src)) {
    console.error(`no compiled ${name} at ${src}: run forge build first`);
    process.exit(1);
  }
  const j = JSON.parse(fs.readFileSync(src, "utf8"));
  const art = {
    contractName: name,
    abi: j.abi,
    bytecode: j.bytecode.object,
    deployedBytecode: j.deployedBytecode.object,
  };
  return JSON.stringify(art, null, 2) + "\n";
}

/// `name(type,type)` for an ABI item, as an indexer or `sol!` sees it.
function signature(item) {
  const types = (xs) =>
    (xs || []).map((x) => (x.components ? `(${types(x.components)})${x.type.slice("tuple".length)}` : x.type)).join(",");
  const outs = item.outputs && item.outputs.length ? ` returns (${types(item.outputs)})` : "";
  return `${item.type} ${item.name || ""}(${types(item.inputs)})${outs}`;
}

if (!check) {
  fs.mkdirSync(dest, { recursive: true });
  for (const name of CONTRACTS) fs.writeFileSync(path.join(dest, `${name}.json`), fresh(name));
  console.log(`exported ${CONTRACTS.length} artifacts to ${path.relative(process.cwd(), dest) || "."}`);
  process.exit(0);
}

let stale = 0;
for (const name of CONTRACTS) {
  const file = path.join(dest, `${name}.json`);
  const now = fresh(name);
  const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
  if (committed === now) continue;
  stale++;
  if (committed === null) {
    console.error(`artifacts/${name}.json: missing`);
    continue;
  }
  const a = JSON.parse(committed);
  const b = JSON.parse(now);
  const was = new Set(a.abi.map(signature));
  const is = new Set(b.abi.map(signature));
  const removed = [...was].filter((s) => !is.has(s));
  const added = [...is].filter((s) => !was.has(s));
  const what = [];
  if (removed.length || added.length) what.push("ABI");
  else if (JSON.stringify(a.abi) !== JSON.stringify(b.abi)) what.push("ABI (names or order)");
  if (a.bytecode !== b.bytecode) what.push("bytecode");
  if (a.deployedBytecode !== b.deployedBytecode) what.push("deployedBytecode");
  if (!what.length) what.push("formatting");
  console.error(`artifacts/${name}.json differs from a fresh compile: ${what.join(", ")}`);
  for (const s of removed) console.error(`  - ${s}`);
  for (const s of added) console.error(`  + ${s}`);
}
if (stale) {
  console.error(`${stale} artifact(s) out of date with contracts/src.`);
  console.error("Regenerate: (cd contracts && bash scripts/export-artifacts.sh), then rebuild the Rust side.");
  process.exit(1);
}
console.log(`artifacts match a fresh compile (${CONTRACTS.length} contracts)`);
