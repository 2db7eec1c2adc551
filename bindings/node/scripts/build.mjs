#!/usr/bin/env node
// Builds the arthajs addon with cargo in the workspace's own target
// directory (no `--target` triple, so it shares every artifact with the
// workspace's other builds) and writes, next to package.json:
//
//   arthajs.<platform>.node   the addon (the cdylib, renamed)
//   index.d.ts, index.js      napi's type definitions and loader, generated
//                             by @napi-rs/cli from what napi-derive recorded
//                             while compiling (when the CLI is installed)
//
//   node scripts/build.mjs [--release] [--check] [-- CARGO-ARGS…]
//
// --release   the release profile (what `npm install` builds for users)
// --check     the drift check: generate index.d.ts and index.js into a
//             temporary directory and fail when they differ from the
//             committed files (the addon is still installed)
// CARGO-ARGS  replace the default package selection `-p arthajs` (the
//             test suite passes the workspace's flags, so the build shares
//             its features and artifacts)
//
// Exit status: 0, 1 when the build failed, 2 on bad usage, 3 when --check
// found drift (the addon was built and installed).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformArchABI } from './platform.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const binaryName = pkg.napi.binaryName;
const crateName = 'arthajs';

const argv = process.argv.slice(2);
const dashes = argv.indexOf('--');
const cargoArgs = dashes >= 0 ? argv.slice(dashes + 1) : ['-p', crateName];
const flags = dashes >= 0 ? argv.slice(0, dashes) : argv;
const release = flags.includes('--release');
const check = flags.includes('--check');
for (const f of flags) {
  if (!['--release', '--check'].includes(f)) {
    console.error(`build.mjs: unknown option ${f}`);
    process.exit(2);
  }
}


let cli = null;
try {
  cli = await import('@napi-rs/cli');
} catch {
  if (check) {
    console.error('build.mjs: --check needs @napi-rs/cli (npm install in bindings/node)');
    process.exit(2);
  }
}

const typeDefDir = mkdtempSync(join(tmpdir(), 'arthajs-typedef-'));
const args = ['build', '--message-format=json-render-diagnostics', ...cargoArgs];
if (release) args.push('--release');
const env = {
  ...process.env,
  NAPI_TYPE_DEF_TMP_FOLDER: typeDefDir,
  // napi-build reruns (and so recompiles this crate, rewriting its type
  // definitions) when this changes.
  [`NAPI_FORCE_BUILD_${crateName.toUpperCase()}`]: String(Date.now()),
};
console.error(`build.mjs: cargo ${args.join(' ')}`);
const cargo = spawnSync(process.env.CARGO || 'cargo', args, {
  cwd: pkgDir, env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 30,
});
if (cargo.status !== 0) {
  console.error(`build.mjs: cargo failed (${cargo.status ?? cargo.signal})`);
  process.exit(1);
}
let artifact = null;
for (const line of cargo.stdout.toString().split('\n')) {
  if (!line.startsWith('{')) continue;
  const msg = JSON.parse(line);
  if (msg.reason === 'compiler-artifact' && msg.target?.name === crateName
      && msg.target.kind.includes('cdylib')) {
    artifact = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f));
  }
}
if (!artifact) {
  console.error(`build.mjs: cargo built no cdylib of ${crateName} (is it selected by: ${cargoArgs.join(' ')}?)`);
  process.exit(1);
}
const dest = join(pkgDir, `${binaryName}.${platformArchABI()}.node`);
copyFileSync(artifact, `${dest}.tmp`);
renameSync(`${dest}.tmp`, dest);
console.error(`build.mjs: ${artifact} -> ${dest}`);

let status = 0;
if (cli) {
  const outDir = check ? mkdtempSync(join(tmpdir(), 'arthajs-generated-')) : pkgDir;
  const { exports, dts } = await cli.generateTypeDef({
    typeDefDir, cwd: pkgDir, declareBindingTarget: (e) => e.length > 0,
  });
  if (!exports.length) {
    console.error(`build.mjs: napi-derive recorded no type definitions in ${typeDefDir}`);
    process.exit(1);
  }
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(outDir, 'index.d.ts'), dts);
  await cli.writeJsBinding({
    platform: true, idents: exports, binaryName, packageName: pkg.name,
    version: pkg.version, outputDir: outDir, jsBinding: 'index.js',
  });
  if (check) {
    for (const f of ['index.d.ts', 'index.js']) {
      const want = readFileSync(join(outDir, f), 'utf8');
      let have = '';
      try { have = readFileSync(join(pkgDir, f), 'utf8'); } catch { /* missing: drift */ }
      if (want !== have) {
        status = 3;
        console.error(`build.mjs: ${f} drifted from what napi generates; regenerate with `
          + '`node scripts/build.mjs` and commit it. Difference:');
        spawnSync('diff', ['-u', join(pkgDir, f), join(outDir, f)], { stdio: 'inherit' });
      } else {
        console.error(`build.mjs: ${f} is what napi generates`);
      }
    }
    rmSync(outDir, { recursive: true, force: true });
  }
}
rmSync(typeDefDir, { recursive: true, force: true });
process.exit(status);
