// The arthajs surface end to end on an embedded engine, and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { arthajs, rejectsWith, tempHome, writeBlobs, writeModel } from './helpers.mjs';

const { Engine } = arthajs;

const LIFECYCLE = [
  'submitted', 'accepted', 'scheduled', 'staging', 'running', 'proving', 'completed', 'settled',
];

test('the quickstart flow: push, register, train, events, status, proofs, settle', async (t) => {
  const home = tempHome(t);
  const engine = await Engine.open(join(home, 'engine'));
  t.after(() => engine.close());
  assert.equal(engine.isRemote, false);
  const info = await engine.info();
  assert.equal(typeof info, 'object');

  const pushed = await engine.store.push(writeBlobs(join(home, 'blobs.csv')));
  assert.match(pushed.uri, /^artha:\/\//);
  assert.equal(pushed.files, 1);
  const listing = await engine.store.ls(pushed.uri);
  assert.equal(typeof listing, 'object');
  await engine.store.get(pushed.uri, join(home, 'copy.csv'));

  const dataset = await engine.datasets.register(pushed.uri, { name: 'blobs', tags: 'test' });
  assert.match(dataset.id, /^dataset-/);
  assert.equal((await engine.datasets.get(dataset.id)).id, dataset.id);
  assert.ok((await engine.datasets.list()).some((d) => d.id === dataset.id));

  const weights = await engine.store.push(writeModel(join(home, 'model')));
  const model = await engine.models.register(weights.uri, {
    name: 'node-mlp', architecture: 'mlp', dataset: dataset.id,
  });
  assert.match(model.id, /^model-/);
  assert.equal((await engine.models.get(model.id)).id, model.id);
  assert.equal((await engine.models.lineage(model.id)).length, 1);
  assert.ok((await engine.models.list()).some((m) => m.id === model.id));

  const request = {
    model: model.id, dataset: dataset.id, epochs: 2, batch_size: 32,
    learning_rate: 0.05, proof_window: 4, max_duration_secs: 120,
  };
  const estimate = await engine.estimate(request);
  assert.equal(typeof estimate, 'object');

  const job = await engine.train(request);
  assert.match(job.id, /^job-/);
  const events = [];
  for await (const ev of job.events()) events.push(ev);
  const phases = events.filter((e) => e.event === 'phase').map((e) => e.phase);
  assert.ok(phases.length > 0, 'phase events arrive');
  const order = phases.map((p) => LIFECYCLE.indexOf(p));
  assert.ok(order.every((i) => i >= 0), `known phases: ${phases}`);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), `lifecycle order: ${phases}`);
  assert.equal(phases.at(-1), 'completed', `ends after the terminal phase: ${phases}`);
  assert.ok(events.every((e) => typeof e.event === 'string'));

  const outcome = await job.wait();
  assert.equal(outcome.outcome, 'completed');
  const status = await job.status();
  assert.equal(status.job_id, job.id);
  assert.ok(status.artifacts.length > 0, 'status has artifacts');
  assert.ok(status.receipts.length > 0, 'status has receipts');
  const proofs = await job.proofs();
  assert.equal(proofs.window, 4);
  assert.ok(proofs.steps > 0 && proofs.window_roots.length > 0);
  assert.ok(Array.isArray(await job.logs()));
  assert.ok(Array.isArray(await job.logs(0)));
  assert.ok((await engine.jobs()).some((j) => j.job_id === job.id));

  // The same job, progress only: phases and progress, then the end.
  const again = [];
  for await (const ev of engine.job(job.id).events({ progressOnly: true })) again.push(ev.event);
  assert.ok(again.every((e) => e === 'phase' || e === 'progress'), `${again}`);

  const before = await engine.settle();
  assert.ok(before.pending.some((d) => d.job_id === job.id), 'committed, waiting');
  const due = await engine.due();
  assert.ok(due.some((d) => d.job_id === job.id));
  const time = await engine.devAdvance(before.challenge_period_secs + 1);
  assert.equal(typeof time, 'number');
  assert.ok(time >= before.chain_time, `${time} >= ${before.chain_time}`);
  const after = await engine.settle();
  assert.ok(after.settled >= 1, `settled: ${JSON.stringify(after)}`);
  assert.equal((await job.status()).settled, true);
  const stats = await engine.stats();
  assert.ok(stats.finalized >= 1 && stats.proof_commits >= 1);
  assert.ok(Array.isArray(await engine.nodes()));
});

test('held jobs start on release; cancel', async (t) => {
  const home = tempHome(t);
  const engine = await Engine.open(join(home, 'engine'));
  t.after(() => engine.close());
  const pushed = await engine.store.push(writeBlobs(join(home, 'blobs.csv')));
  const dataset = await engine.datasets.register(pushed.uri, { name: 'blobs' });
  const job = await engine.train({ dataset: dataset.id, epochs: 1 }, { hold: true });
  const held = (await job.status()).phase;
  assert.ok(['submitted', 'accepted'].includes(held), `held: ${held}`);
  const cancelled = await job.cancel();
  assert.ok(['cancelled', 'settled'].includes(cancelled.phase), `cancelled: ${cancelled.phase}`);
  assert.equal((await job.wait()).outcome, 'cancelled');
  await rejectsWith(assert, job.release(), { code: 'ARTHA_CONFLICT' });

  // A whole JobSpec (its JSON), held, then released.
  const spec = {
    kind: 'train', runtime: { native: 'mlp' }, dataset: dataset.id,
    hyper: { epochs: 1, batch_size: 32 }, budget: '0 wei', proof_window: 4,
  };
  const submitted = await engine.submit(spec, { hold: true });
  assert.ok(['submitted', 'accepted'].includes((await submitted.status()).phase));
  await submitted.release();
  assert.equal((await submitted.wait()).outcome, 'completed');
  await rejectsWith(assert, engine.submit('spec'), { code: 'ARTHA_INVALID_INPUT', type: TypeError, field: 'spec' });
  await rejectsWith(assert, engine.submit({ kind: 'train', budget: '0 wei' }),
    { code: 'ARTHA_INVALID_INPUT', field: 'runtime' });
  await rejectsWith(assert, engine.submit({ ...spec, gpus: 1 }), { code: 'ARTHA_INVALID_INPUT', field: 'gpus' });
});

test('bad inputs: TypeErrors name the argument, engine errors carry their kind', async (t) => {
  const home = tempHome(t);
  const engine = await Engine.open(join(home, 'engine'));
  t.after(() => engine.close());

  const typeError = { code: 'ARTHA_INVALID_INPUT', type: TypeError };
  await rejectsWith(assert, engine.store.push(42), { ...typeError, field: 'path' });
  await rejectsWith(assert, engine.store.push(), { ...typeError, field: 'path' });
  const pushed = await engine.store.push(writeBlobs(join(home, 'blobs.csv')));
  await rejectsWith(assert, engine.store.get(pushed.uri, 5), { ...typeError, field: 'dest' });
  await rejectsWith(assert, engine.train('epochs=2'), { ...typeError, field: 'request' });
  await rejectsWith(assert, engine.train({}, 'hold'), { ...typeError, field: 'options' });
  await rejectsWith(assert, engine.devAdvance(-1), { ...typeError, field: 'secs' });
  await rejectsWith(assert, engine.devAdvance('10'), { ...typeError, field: 'secs' });
  await rejectsWith(assert, engine.datasets.register(1, {}), { ...typeError, field: 'uri' });
  const missing = 'job-' + '0'.repeat(32);
  await rejectsWith(assert, engine.job(missing).logs(-3), { ...typeError, field: 'since' });
  assert.throws(() => engine.job(7), (e) => e instanceof TypeError && e.field === 'id');
  // A malformed id: an engine error naming the argument.
  assert.throws(() => engine.job('job-nope'),
    (e) => !(e instanceof TypeError) && e.code === 'ARTHA_INVALID_INPUT' && e.field === 'id');

  // Options objects: unknown keys and wrong values name the key.
  const invalid = { code: 'ARTHA_INVALID_INPUT' };
  await rejectsWith(assert, engine.train({ epochs: 2, epoch: 3 }), { ...invalid, field: 'epoch' });
  await rejectsWith(assert, engine.train({ seed: 1, epochs: 'two' }), { ...invalid, field: 'epochs' });
  await rejectsWith(assert, engine.train({}, { hodl: true }), { ...invalid, field: 'hodl' });
  await rejectsWith(assert, engine.estimate({ budget: 'lots' }), { ...invalid, field: 'budget' });
  await rejectsWith(assert, engine.models.register(pushed.uri, { name: 'x', arch: 'mlp' }),
    { ...invalid, field: 'arch' });
  await rejectsWith(assert, engine.store.ls('not a uri'), { ...invalid, field: 'uri' });
  await rejectsWith(assert, engine.datasets.get('model-1'), { ...invalid, field: 'id' });
  const events = engine.job(missing).events({ progress: true });
  await rejectsWith(assert, events[Symbol.asyncIterator]().next(), { ...invalid, field: 'progress' });

  // Unknown ids: not_found.
  await rejectsWith(assert, engine.job(missing).status(), { code: 'ARTHA_NOT_FOUND' });
  await rejectsWith(assert, engine.job(missing).wait(), { code: 'ARTHA_NOT_FOUND' });
  await rejectsWith(assert, engine.datasets.get('dataset-' + '0'.repeat(32)),
    { code: 'ARTHA_NOT_FOUND' });
  await rejectsWith(assert, engine.models.get('model-' + '0'.repeat(32)),
    { code: 'ARTHA_NOT_FOUND' });
});

test('after close() every call rejects with kind unavailable', async (t) => {
  const home = tempHome(t);
  const engine = await Engine.open(join(home, 'engine'));
  const pushed = await engine.store.push(writeBlobs(join(home, 'blobs.csv')));
  const job = engine.job('job-' + '0'.repeat(32));
  const store = engine.store;
  await engine.close();
  await engine.close(); // twice is fine
  const closed = { code: 'ARTHA_UNAVAILABLE', message: /closed/ };
  await rejectsWith(assert, engine.info(), closed);
  await rejectsWith(assert, engine.jobs(), closed);
  await rejectsWith(assert, store.ls(pushed.uri), closed);
  await rejectsWith(assert, engine.datasets.list(), closed);
  await rejectsWith(assert, engine.train({ epochs: 1 }), closed);
  await rejectsWith(assert, job.status(), closed);
  await rejectsWith(assert, job.events()[Symbol.asyncIterator]().next(), closed);
  await assert.rejects(async () => {
    for await (const ev of job.events()) assert.fail(`an event after close: ${ev}`);
  }, (e) => e.code === 'ARTHA_UNAVAILABLE');
  await rejectsWith(assert, engine.devAdvance(1), closed);

  // The home opens again after close.
  const reopened = await Engine.open(join(home, 'engine'));
  assert.equal((await reopened.store.ls(pushed.uri)).uri ?? pushed.uri, pushed.uri);
  await reopened.close();
});

test('the native runtime is found on PATH when ARTHA_NATIVE_RUNTIME is unset', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { delimiter, dirname } = await import('node:path');
  const home = tempHome(t);
  const data = writeBlobs(join(home, 'blobs.csv'));
  const env = { ...process.env };
  const runtime = env.ARTHA_NATIVE_RUNTIME;
  delete env.ARTHA_NATIVE_RUNTIME;
  env.PATH = `${dirname(runtime)}${delimiter}${env.PATH ?? ''}`;
  const script = `
    const { Engine } = require(${JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))});
    (async () => {
      const e = await Engine.open(process.argv[1]);
      const d = await e.store.push(process.argv[2]);
      const j = await e.train({ dataset: d.uri, epochs: 1, proof_window: 4 });
      console.log((await j.wait()).outcome);
      await e.close();
    })().catch((err) => { console.error(err); process.exit(1); });`;
  const out = spawnSync(process.execPath, ['-e', script, join(home, 'engine'), data],
    { env, encoding: 'utf8', timeout: 300_000 });
  assert.equal(out.stdout.trim(), 'completed', out.stderr);
});
