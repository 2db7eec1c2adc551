#!/usr/bin/env node
// solc-js wrapper so forge can compile offline: `--version` prints
// `Version: <version>`; otherwise reads standard JSON on stdin and prints
// the compiler's standard JSON output, resolving imports against
// --base-path / --include-path / the current directory.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
const roots = [];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === "--base-path" || args[i] === "--include-path") && args[i + 1]) roots.push(args[++i]);
}
roots.push(process.cwd());
function findImports(p) {
  for (const r of roots) {
    const full = path.resolve(r, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  }
  return { error: `File not found: ${p}` };
}
const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
