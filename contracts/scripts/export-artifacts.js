#!/usr/bin/env node
// Writes artifacts/<Name>.json = {abi, bytecode, deployedBytecode} for each
// deployable contract, from forge's output directory (default ./out).
// Usage: node scripts/export-artifacts.js [OUT_DIR] [ARTIFACTS_DIR]
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
const out = path.resolve(process.argv[2] || path.join(root, "out"));
const dest = path.resolve(process.argv[3] || path.join(root, "artifacts"));
fs.mkdirSync(dest, { recursive: true });
for (const name of CONTRACTS) {
  const src = path.join(out, `${name}.sol`, `${name}.json`);
  const j = JSON.parse(fs.readFileSync(src, "utf8"));
  const art = {
    contractName: name,
    abi: j.abi,
    bytecode: j.bytecode.object,
    deployedBytecode: j.deployedBytecode.object,
  };
  fs.writeFileSync(path.join(dest, `${name}.json`), JSON.stringify(art, null, 2) + "\n");
}
console.log(`exported ${CONTRACTS.length} artifacts to ${path.relative(process.cwd(), dest) || "."}`);
