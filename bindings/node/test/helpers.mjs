// Shared set-up of the arthajs tests: the addon, the workspace's binaries,
// temporary homes and a small dataset.
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..', '..', '..');
export const target = process.env.CARGO_TARGET_DIR || join(root, 'target');

// Under node the engine cannot find `artha-runtime` next to the current
// executable (node's), so point it at the workspace build.
process.env.ARTHA_NATIVE_RUNTIME ||= join(target, 'debug', 'artha-runtime');

export const arthajs = createRequire(import.meta.url)('../index.js');

/** A fresh temporary directory, removed by `cleanup`. */
export function tempHome(t, name = 'arthajs') {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A two-class CSV (x0, x1, label) of 128 rows at `path`. */
export function writeBlobs(path) {
  let csv = 'x0,x1,label\n';
  for (let i = 0; i < 128; i++) {
    const c = i % 2;
    const t = i / 128;
    csv += `${(c * 2 - 1 + t).toFixed(3)},${(t - c).toFixed(3)},${c}\n`;
  }
  writeFileSync(path, csv);
  return path;
}

/** A model directory holding an MLP config. */
export function writeModel(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.json'),
    '{"kind": "mlp", "task": "classify", "hidden": [8], "classes": 2}\n',
  );
  return dir;
}

/** Asserts `p` rejects with an arthajs error of `code` (and `field`). */
export async function rejectsWith(assert, p, { code, field, type = Error, message }) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof type, `expected a ${type.name}, got ${e?.constructor?.name}: ${e}`);
    assert.equal(e.code, code, `code of ${e}`);
    if (field !== undefined) assert.equal(e.field, field, `field of ${e}`);
    if (message !== undefined) assert.match(e.message, message);
    assert.equal(typeof e.kind, 'string');
    assert.equal(typeof e.retryable, 'boolean');
    assert.equal(typeof e.context, 'object');
    return true;
  });
}
