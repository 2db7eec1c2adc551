#!/usr/bin/env node
// A `solc` executable for forge, made of the npm `solc` package (solc-js),
// so contracts build with no compiler download (forge runs offline here).
//
//   solc --version                → prints `Version: <solc.version()>`
//   solc [--base-path P] [--include-path P]... [--allow-paths A,B] --standard-json
//                                 → reads standard JSON on stdin, prints
//                                   solc.compile(input, {import: resolver})
//
// Imports that are not in the input's `sources` are resolved against the
// base path, then each include path, then the current directory; a resolved
// file must lie under one of those roots or an allowed path (like solc's
// --allow-paths), so an import cannot read arbitrary files.
// bin/solc is the executable shim forge is pointed at (`--use ./bin/solc`).
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-v")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

const roots = [];
const allowed = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    if (i + 1 >= args.length) fail(`${a} needs a value`);
    return args[++i];
  };
  if (a === "--base-path" || a === "--include-path") roots.push(path.resolve(value()));
  else if (a === "--allow-paths") allowed.push(...value().split(",").filter(Boolean).map((p) => path.resolve(p)));
  // Other flags (--standard-json, ...) need nothing: standard JSON is the only mode.
}
roots.push(process.cwd());

function fail(msg) {
  process.stderr.write(`solc-wrapper: ${msg}\n`);
  process.exit(1);
}

function within(file, dir) {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

function findImports(p) {
  for (const r of roots) {
    const full = path.resolve(r, p);
    if (![...roots, ...allowed].some((d) => within(full, d))) continue;
    if (fs.existsSync(full) && fs.statSync(full).isFile()) return { contents: fs.readFileSync(full, "utf8") };
  }
  return { error: `File not found: ${p}` };
}

let input;
try {
  input = fs.readFileSync(0, "utf8");
} catch (e) {
  fail(`cannot read standard input: ${e.message}`);
}
process.stdout.write(solc.compile(input, { import: findImports }));
