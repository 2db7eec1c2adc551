// connect() against a running daemon: the same surface, remote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { arthajs, rejectsWith, target, tempHome, writeBlobs } from './helpers.mjs';

const arthai = process.env.ARTHAI || join(target, 'debug', 'arthai');

test('connect() finds the daemon serving the home', async (t) => {
  const home = join(tempHome(t, 'arthajs-serve'), 'home');
  const daemon = spawn(
    arthai,
    ['--home', home, '--json', 'serve', '--addr', '127.0.0.1:0', '--rate-limit', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  daemon.stderr.on('data', (d) => { stderr += d; });
  let exited = null;
  daemon.on('exit', (code, signal) => { exited = { code, signal }; });
  try {
    const announced = join(home, 'serve.json');
    for (let i = 0; i < 300 && !existsSync(announced); i++) {
      assert.equal(exited, null, `the daemon exited: ${JSON.stringify(exited)} ${stderr}`);
      await sleep(100);
    }
    assert.ok(existsSync(announced), `the daemon announced itself: ${stderr}`);
    assert.ok(JSON.parse(readFileSync(announced, 'utf8')).url);

    const engine = await arthajs.connect(home);
    assert.equal(engine.isRemote, true);
    assert.equal(typeof (await engine.info()), 'object');
    assert.ok(Array.isArray(await engine.jobs()));
    const pushed = await engine.store.push(writeBlobs(join(home, '..', 'blobs.csv')));
    const dataset = await engine.datasets.register(pushed.uri, { name: 'remote-blobs' });
    const job = await engine.train({ dataset: dataset.id, epochs: 1 }, { hold: true });
    const status = await engine.job(job.id).status();
    assert.equal(status.job_id, job.id);
    assert.ok(['submitted', 'accepted'].includes(status.phase), status.phase);
    await rejectsWith(assert, engine.job('job-' + '0'.repeat(32)).status(),
      { code: 'ARTHA_NOT_FOUND' });
    await rejectsWith(assert, engine.train({ epochz: 1 }),
      { code: 'ARTHA_INVALID_INPUT', field: 'epochz' });
    await job.cancel();
    await engine.close();
    await rejectsWith(assert, engine.jobs(), { code: 'ARTHA_UNAVAILABLE', message: /closed/ });
  } finally {
    if (exited === null) {
      daemon.kill('SIGTERM');
      const done = new Promise((r) => daemon.once('exit', r));
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    }
  }
});

test('connect() without a daemon embeds the engine', async (t) => {
  const engine = await arthajs.connect(join(tempHome(t, 'arthajs-embed'), 'home'));
  t.after(() => engine.close());
  assert.equal(engine.isRemote, false);
  // infer goes through the same request checks as train.
  await rejectsWith(assert, engine.infer({ dataset: 'dataset-' + '0'.repeat(32) }),
    { code: 'ARTHA_INVALID_INPUT', field: 'model' });
});
