// The Node side of bench/bindings.sh: the calls of
// artha-engine/examples/binding_bench.rs made through arthajs.
//
//   node bench/bindings_bench.mjs HOME FILES_DIR [--status N]
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { Engine } = createRequire(import.meta.url)(join(repo, 'bindings', 'node'));

const [home, files, flag, n] = process.argv.slice(2);
const statusCalls = flag === '--status' ? Number(n) : 10000;

function report(call, count, secs) {
  const perCall = (secs * 1e6) / Math.max(count, 1);
  console.log(`${call.padEnd(12)} ${String(count).padStart(7)} ${secs.toFixed(3).padStart(9)} ${perCall.toFixed(1).padStart(12)}`);
}

const engine = await Engine.open(home);
const paths = readdirSync(files).sort().map((f) => join(files, f));
let t = process.hrtime.bigint();
let first;
for (const p of paths) {
  const r = await engine.store.push(p);
  first ??= r.uri;
}
report('store.push', paths.length, Number(process.hrtime.bigint() - t) / 1e9);
const job = await engine.train({ dataset: first }, { hold: true });
t = process.hrtime.bigint();
for (let i = 0; i < statusCalls; i++) await job.status();
report('job.status', statusCalls, Number(process.hrtime.bigint() - t) / 1e9);
await engine.close();
