#!/usr/bin/env node
// Example: the quickstart flow through arthajs — push a dataset, register
// it and a model, train on the native runtime while following the job's
// events, print its status with artifacts and receipts, check its proofs
// and settle it on the engine's development chain.
//
// Run: `node examples/node/quickstart.mjs [HOME]` (a fresh temporary home
// when none is given) after building the addon (bindings/node/README.md).
// The engine runs jobs with `artha-runtime`: set ARTHA_NATIVE_RUNTIME to it
// (the workspace's target/debug/artha-runtime is used when it exists).
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let arthajs;
try {
  arthajs = require('arthajs'); // installed
} catch {
  arthajs = require(join(repo, 'bindings', 'node')); // in the repository
}
const runtime = join(repo, 'target', 'debug', 'artha-runtime');
if (!process.env.ARTHA_NATIVE_RUNTIME && existsSync(runtime)) {
  process.env.ARTHA_NATIVE_RUNTIME = runtime;
}

const home = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'arthajs-quickstart-'));
const engine = await arthajs.Engine.open(join(home, 'engine'));
try {
  // A small two-class dataset and an MLP's config, pushed and registered.
  let csv = 'x0,x1,label\n';
  for (let i = 0; i < 128; i++) {
    const c = i % 2;
    const t = i / 128;
    csv += `${(c * 2 - 1 + t).toFixed(3)},${(t - c).toFixed(3)},${c}\n`;
  }
  writeFileSync(join(home, 'blobs.csv'), csv);
  mkdirSync(join(home, 'model'), { recursive: true });
  writeFileSync(join(home, 'model', 'config.json'),
    '{"kind": "mlp", "task": "classify", "hidden": [8], "classes": 2}\n');

  const data = await engine.store.push(join(home, 'blobs.csv'));
  console.log(`pushed    ${data.uri} (${data.size} bytes)`);
  const dataset = await engine.datasets.register(data.uri, { name: 'blobs', tags: 'example' });
  console.log(`dataset   ${dataset.id}`);
  const weights = await engine.store.push(join(home, 'model'));
  const model = await engine.models.register(weights.uri, { name: 'example-mlp', architecture: 'mlp' });
  console.log(`model     ${model.id}`);

  // Train; the budget defaults to the estimate.
  const request = {
    model: model.id, dataset: dataset.id, epochs: 2, batch_size: 32,
    learning_rate: 0.05, proof_window: 4, max_duration_secs: 120,
  };
  const estimate = await engine.estimate(request);
  console.log(`estimate  ${JSON.stringify(estimate)}`);
  const job = await engine.train(request);
  console.log(`job       ${job.id}`);
  for await (const ev of job.events({ progressOnly: true })) {
    if (ev.event === 'phase') console.log(`  phase   ${ev.phase}${ev.reason ? ` (${ev.reason})` : ''}`);
  }
  const outcome = await job.wait();
  if (outcome.outcome !== 'completed') throw new Error(`the job did not complete: ${JSON.stringify(outcome)}`);

  const status = await job.status();
  console.log(`status    ${status.phase}, ${status.artifacts.length} artifacts, ${status.receipts.length} receipts`);
  for (const a of status.artifacts) console.log(`  artifact ${JSON.stringify(a)}`);
  for (const r of status.receipts) console.log(`  receipt  ${JSON.stringify(r)}`);
  if (!status.artifacts.length || !status.receipts.length) throw new Error('no artifacts or receipts');
  const proofs = await job.proofs();
  console.log(`proofs    ${proofs.steps} steps in ${proofs.window_roots.length} windows, root ${proofs.job_root}`);

  // Settle: past the challenge period on the development chain.
  const pending = await engine.settle();
  await engine.devAdvance(pending.challenge_period_secs + 1);
  const settled = await engine.settle();
  console.log(`settled   ${settled.settled} job(s)`);
  if (!(await job.status()).settled) throw new Error('the job was not settled');
} finally {
  await engine.close();
}
