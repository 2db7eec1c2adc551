#!/usr/bin/env node
// The behaviour suite's Node runner: every scenario of
// tests/behaviour/scenarios.json (format: docs/BINDINGS.md, "The behaviour
// suite") against arthajs, each on a fresh embedded engine in a temporary
// home. Calls are named as in Python (`store.push`, `job.wait`,
// `dev_advance`); their `args` map to the JavaScript methods below.
//
//   node tests/behaviour/run.mjs [SCENARIOS.json] [--only NAME]
//
// Exits 1 when a step fails, 2 when the suite cannot run.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
process.env.ARTHA_NATIVE_RUNTIME ||= join(
  process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'artha-runtime');

const argv = process.argv.slice(2);
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? argv.splice(onlyAt, 2)[1] : null;
const file = resolve(argv[0] || join(here, 'scenarios.json'));
const fixtures = join(dirname(file), 'fixtures');

const { Engine } = createRequire(import.meta.url)(join(root, 'bindings', 'node', 'index.js'));

// Python call name → how to make it on the JavaScript surface. `pos`: the
// arguments passed positionally, by name; `opts`: the rest of `args`
// goes as one options object (`rest`), or the named keys as
// `{jsName: value}` (`options`).
const job = (method, pos = []) => ({
  run: (e, a) => e.job(a.job)[method](...pos.map((p) => a[p])),
  takes: ['job', ...pos],
});
const plain = (path, pos = []) => ({
  run: (e, a) => member(e, path)(...pos.map((p) => a[p])),
  takes: pos,
});
const withRest = (path, pos, restOptions = {}) => ({
  run: (e, a) => {
    const rest = {};
    const opts = {};
    for (const [k, v] of Object.entries(a)) {
      if (pos.includes(k)) continue;
      if (k in restOptions) opts[restOptions[k]] = v;
      else rest[k] = v;
    }
    const args = [...pos.map((p) => a[p]), rest];
    if (Object.keys(restOptions).length) args.push(opts);
    return member(e, path)(...args);
  },
  takes: null,
});
const submitted = (p) => p.then((j) => ({ id: j.id }));

const CALLS = {
  'info': plain('info'),
  'is_remote': { run: (e) => e.isRemote, takes: [] },
  'store.push': plain('store.push', ['path']),
  'store.get': plain('store.get', ['uri', 'dest']),
  'store.ls': plain('store.ls', ['uri']),
  'datasets.register': withRest('datasets.register', ['uri']),
  'datasets.list': plain('datasets.list'),
  'datasets.get': plain('datasets.get', ['id']),
  'models.register': withRest('models.register', ['uri']),
  'models.list': plain('models.list'),
  'models.get': plain('models.get', ['id']),
  'models.lineage': plain('models.lineage', ['id']),
  'train': { ...withRest('train', [], { hold: 'hold' }), wrap: submitted },
  'infer': { ...withRest('infer', [], { hold: 'hold' }), wrap: submitted },
  'submit': {
    run: (e, a) => e.submit(a.spec, 'hold' in a ? { hold: a.hold } : undefined),
    takes: ['spec', 'hold'],
    wrap: submitted,
  },
  'estimate': withRest('estimate', []),
  'jobs': plain('jobs'),
  'settle': plain('settle'),
  'due': plain('due'),
  'dev_advance': plain('devAdvance', ['secs']),
  'stats': plain('stats'),
  'nodes': plain('nodes'),
  'close': plain('close'),
  'job.status': job('status'),
  'job.logs': job('logs', ['since']),
  'job.wait': job('wait'),
  'job.cancel': job('cancel'),
  'job.release': job('release'),
  'job.proofs': job('proofs'),
  'job.events': {
    run: async (e, a) => {
      const out = [];
      const opts = 'progress_only' in a ? { progressOnly: a.progress_only } : undefined;
      for await (const ev of e.job(a.job).events(opts)) out.push(ev);
      return out;
    },
    takes: ['job', 'progress_only'],
  },
};

function member(engine, path) {
  const parts = path.split('.');
  let owner = engine;
  for (const p of parts.slice(0, -1)) owner = owner[p];
  const f = owner[parts.at(-1)];
  if (typeof f !== 'function') throw new Error(`no method ${path}`);
  return f.bind(owner);
}

function resolveValue(v, saved, tmp) {
  if (typeof v === 'string') {
    if (v.startsWith('$')) {
      const [name, ...path] = v.slice(1).split('.');
      if (!(name in saved)) throw new Error(`no saved value ${name}`);
      let x = saved[name];
      for (const p of path) {
        if (x == null) throw new Error(`${v}: nothing at ${p}`);
        x = x[p];
      }
      return x;
    }
    if (v.startsWith('@fixture/')) return join(fixtures, v.slice('@fixture/'.length));
    if (v.startsWith('@tmp/')) return join(tmp, v.slice('@tmp/'.length));
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => resolveValue(x, saved, tmp));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveValue(x, saved, tmp)]));
  }
  return v;
}

// Whether `actual` contains `expected` (the format's matching rules);
// returns null when it does, else where and why not.
function mismatch(actual, expected, at = '') {
  const here = at || '(result)';
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${here}: expected an array, got ${show(actual)}`;
    if (actual.length !== expected.length) {
      return `${here}: expected ${expected.length} elements, got ${actual.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(actual[i], expected[i], `${at}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (expected && typeof expected === 'object') {
    for (const [k, v] of Object.entries(expected)) {
      if (k === '$len') {
        const n = Array.isArray(actual) || typeof actual === 'string'
          ? actual.length
          : actual && typeof actual === 'object' ? Object.keys(actual).length : undefined;
        const m = mismatch(n, v, `${at}.$len`);
        if (m) return `${m} (${show(actual)})`;
      } else if (k === '$gt') {
        if (!(typeof actual === 'number' && actual > v)) return `${here}: expected > ${v}, got ${show(actual)}`;
      } else if (k === '$has') {
        if (!Array.isArray(actual) || !actual.some((x) => mismatch(x, v) === null)) {
          return `${here}: expected an element containing ${show(v)}, got ${show(actual)}`;
        }
      } else if (k === '$any') {
        if (actual == null) return `${here}: expected a value, got ${show(actual)}`;
      } else if (k.startsWith('$')) {
        return `${here}: unknown matcher ${k}`;
      } else {
        if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
          return `${here}: expected an object with ${k}, got ${show(actual)}`;
        }
        // A missing key reads as null (serde's `None`), as in run.py.
        const m = mismatch(k in actual ? actual[k] : null, v, `${at}.${k}`);
        if (m) return m;
      }
    }
    return null;
  }
  return isDeepStrictEqual(actual, expected) ? null : `${here}: expected ${show(expected)}, got ${show(actual)}`;
}

function show(v) {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

async function runStep(engine, step, saved, tmp) {
  const call = CALLS[step.call];
  if (!call) throw new Error(`unknown call ${step.call}`);
  const args = resolveValue(step.args ?? {}, saved, tmp);
  if (call.takes) {
    for (const k of Object.keys(args)) {
      if (!call.takes.includes(k)) throw new Error(`${step.call} takes no argument ${k}`);
    }
  }
  let result;
  let error = null;
  try {
    const r = call.run(engine, args);
    result = await (call.wrap ? call.wrap(Promise.resolve(r)) : r);
  } catch (e) {
    error = e;
  }
  // Expected values may name saved ones too (`"$ds.id"`).
  const expect = resolveValue(step.expect ?? {}, saved, tmp);
  if ('error' in expect) {
    if (!error) return `expected a ${expect.error.kind} error, got ${show(result)}`;
    if (error.kind !== expect.error.kind) {
      return `expected kind ${expect.error.kind}, got ${error.kind ?? error.name}: ${error.message}`;
    }
    if ('field' in expect.error && error.field !== expect.error.field) {
      return `expected field ${expect.error.field}, got ${error.field}: ${error.message}`;
    }
    return null;
  }
  if (error) return `failed: ${error.code ?? error.name}: ${error.message}`;
  if (step.save) saved[step.save] = result;
  if ('ok' in expect) return mismatch(result, expect.ok);
  return null;
}

function scenariosOf(doc) {
  const list = Array.isArray(doc) ? doc : doc.scenarios;
  if (Array.isArray(list)) return list.map((s, i) => ({ name: s.name ?? `#${i}`, ...s }));
  if (list && typeof list === 'object') {
    return Object.entries(list).map(([name, s]) => (Array.isArray(s) ? { name, steps: s } : { name, ...s }));
  }
  throw new Error('no scenarios');
}

async function main() {
  let scenarios;
  try {
    scenarios = scenariosOf(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    console.error(`behaviour (node): cannot read ${file}: ${e.message}`);
    return 2;
  }
  if (only) scenarios = scenarios.filter((s) => s.name === only);
  let failed = 0;
  let steps = 0;
  for (const sc of scenarios) {
    const tmp = mkdtempSync(join(tmpdir(), 'artha-behaviour-'));
    const saved = {};
    let engine;
    let problem = null;
    try {
      engine = await Engine.open(join(tmp, 'home'));
      for (const [i, step] of (sc.steps ?? []).entries()) {
        const why = await runStep(engine, step, saved, tmp);
        steps += 1;
        if (why) {
          problem = `step ${i} (${step.call}): ${why}`;
          break;
        }
      }
    } catch (e) {
      problem = `${e.code ?? e.name}: ${e.message}`;
    } finally {
      if (engine) await engine.close().catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
    if (problem) {
      failed += 1;
      console.log(`FAIL ${sc.name}: ${problem}`);
    } else {
      console.log(`ok   ${sc.name}`);
    }
  }
  console.log(`behaviour (node): ${scenarios.length - failed}/${scenarios.length} scenarios passed (${steps} steps)`);
  if (scenarios.length === 0) return 2;
  return failed ? 1 : 0;
}

process.exitCode = await main();
