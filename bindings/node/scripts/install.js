#!/usr/bin/env node
// `npm install` of arthajs: nothing to do when the addon for this platform
// is already here (a packed tarball carries it); else, inside the Artha
// repository, build it from source with cargo (release profile; set
// ARTHAJS_PROFILE=dev for a quicker debug build, ARTHAJS_CARGO_ARGS for
// other cargo arguments than `-p arthajs`).
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');
const { platformArchABI } = require('./platform.js');

const pkgDir = join(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));


const addon = join(pkgDir, `${pkg.napi.binaryName}.${platformArchABI()}.node`);
if (existsSync(addon)) process.exit(0);

const workspace = join(pkgDir, '..', '..', 'Cargo.toml');
if (!existsSync(workspace) || !existsSync(join(pkgDir, 'Cargo.toml'))
    || !existsSync(join(pkgDir, 'scripts', 'build.mjs'))) {
  console.error(`arthajs: no prebuilt addon for ${platformArchABI()} in this package, and no `
    + 'Artha source tree to build one from; install from the repository '
    + '(npm install ./bindings/node) or from a tarball packed on this platform.');
  process.exit(1);
}
const flags = process.env.ARTHAJS_PROFILE === 'dev' ? [] : ['--release'];
// ARTHAJS_CARGO_ARGS: cargo's package selection and features instead of
// `-p arthajs` (e.g. the workspace's flags, to reuse a workspace build).
const cargoArgs = (process.env.ARTHAJS_CARGO_ARGS || '').split(/\s+/).filter(Boolean);
if (cargoArgs.length) flags.push('--', ...cargoArgs);
console.error(`arthajs: building the addon from source (cargo${flags.includes('--release') ? ', release profile' : ', dev profile'}); this takes a while`);
const r = spawnSync(process.execPath, [join(pkgDir, 'scripts', 'build.mjs'), ...flags], {
  cwd: pkgDir, stdio: 'inherit',
});
process.exit(r.status ?? 1);
