// Node tests of artha-wasm (the `--target nodejs` output of wasm-bindgen).
//
//   ARTHA_WASM_PKG=bindings/wasm/pkg/node node --test bindings/wasm/tests/node/artha_wasm.test.mjs
//
// tests/lib/wasm.sh builds the package and runs this file.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { checkVectors, fromHex, tampered } from "../../js/check_vectors.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../../..");
const pkg = path.resolve(process.env.ARTHA_WASM_PKG ?? path.join(root, "bindings/wasm/pkg/node"));
const artha = createRequire(import.meta.url)(path.join(pkg, "artha_wasm.js"));

const vectors = JSON.parse(readFileSync(path.join(root, "artha-core/tests/vectors/proofs.json"), "utf8"));
const creds = JSON.parse(
  readFileSync(path.join(root, "bindings/wasm/tests/fixtures/credentials.json"), "utf8"),
);

// Asserts that `fn` throws an artha error of `kind` naming `field`.
function throwsArtha(fn, kind, field, ctor = Error) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ctor, `expected a ${ctor.name}, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    assert.equal(e.code, "ARTHA_" + kind.toUpperCase());
    assert.equal(e.field, field, e.message);
    assert.equal(typeof e.retryable, "boolean");
    assert.equal(typeof e.context, "object");
    return true;
  });
}

const goodSpec = {
  version: 1,
  kind: "train",
  runtime: { native: "mlp" },
  dataset: "artha://b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
  hyper: { epochs: 3, batch_size: 64, learning_rate: 0.001, seed: 7 },
  resources: { gpus: 1, gpu_memory_mib: 1024, cpu_millis: 1000, memory_mib: 512, max_duration_secs: 600 },
  budget: "1 ARTH",
};

test("every shared vector and the credential fixture check out", () => {
  const { passed, failures } = checkVectors(artha, vectors, creds);
  assert.deepEqual(failures, []);
  // Every section contributed (a vectors file that lost entries fails).
  assert.ok(passed > 200, `only ${passed} checks ran`);
});

test("a wrong vector is reported", () => {
  const { failures } = checkVectors(artha, tampered(vectors), creds);
  // The record's leaf and the leaf of its encoding, both against the wrong value.
  assert.deepEqual(failures.map((f) => f.split(":")[0]), ["step_records[0] leaf", "step_records[0] leafHash"]);
  const empty = checkVectors(artha, { ...vectors, merkle: [] }, creds);
  assert.deepEqual(empty.failures, ["merkle: no entries"]);
});

test("cid: bytes, ArrayBuffer, Buffer and chunks agree", () => {
  const data = new TextEncoder().encode("artha");
  const want = "b3:252c8dfdad841d94a06e447f5e9f2b9dc3be05d5a0b5a2f8de3bff7a22cef713";
  assert.equal(artha.cid(data), want);
  assert.equal(artha.cid(data.buffer), want);
  assert.equal(artha.cid(Buffer.from("artha")), want);
  const h = new artha.CidHasher();
  h.update(data.subarray(0, 2));
  h.update(data.subarray(2));
  assert.equal(h.finalize(), want);
  assert.equal(h.finalize(), want, "finalize can be called again");
  h.reset();
  assert.equal(h.bytesHashed, 0);
  assert.equal(h.finalize(), artha.cid(new Uint8Array()));
  // A large input in 1 MiB chunks equals the one-shot CID.
  const big = new Uint8Array(5 * 1024 * 1024 + 3).map((_, i) => (i * 31) & 0xff);
  const h2 = new artha.CidHasher();
  for (let at = 0; at < big.length; at += 1 << 20) h2.update(big.subarray(at, at + (1 << 20)));
  assert.equal(h2.finalize(), artha.cid(big));
  assert.equal(h2.bytesHashed, big.length);
});

test("cid: wrong argument types are TypeErrors naming the argument", () => {
  for (const bad of [42, "artha", null, undefined, [1, 2, 3], {}]) {
    throwsArtha(() => artha.cid(bad), "invalid_input", "data", TypeError);
  }
  const h = new artha.CidHasher();
  throwsArtha(() => h.update("text"), "invalid_input", "chunk", TypeError);
  throwsArtha(() => artha.parseCid("B3:00"), "invalid_input", "cid");
  throwsArtha(() => artha.parseCid(7), "invalid_input", "text", TypeError);
});

test("validateSpec: a good spec passes with defaults filled in", () => {
  const r = artha.validateSpec(goodSpec);
  assert.equal(r.ok, true);
  assert.equal(r.errors, undefined);
  assert.equal(r.spec.proof_window, 100);
  assert.deepEqual(artha.validateSpec(JSON.stringify(goodSpec)), r);
});

test("validateSpec: a bad spec names every bad field", () => {
  const bad = structuredClone(goodSpec);
  bad.resources.gpus = 9;
  bad.hyper.epochs = 0;
  bad.hyper.learning_rate = 50;
  bad.proof_window = 0;
  bad.env = { LD_PRELOAD: "/x.so" };
  delete bad.dataset;
  const r = artha.validateSpec(bad);
  assert.equal(r.ok, false);
  const fields = r.errors.map((e) => e.field).sort();
  assert.deepEqual(fields, [
    "dataset",
    "env.LD_PRELOAD",
    "hyper.epochs",
    "hyper.learning_rate",
    "proof_window",
    "resources.gpus",
  ]);
  for (const e of r.errors) assert.ok(e.message.length > 0);
  assert.deepEqual(artha.validateSpec(JSON.stringify(bad)).errors, r.errors);
});

test("validateSpec: schema problems name the field", () => {
  const cases = [
    [{ ...goodSpec, resources: { ...goodSpec.resources, gpus: "two" } }, "resources.gpus"],
    [{ ...goodSpec, resources: { ...goodSpec.resources, gpu: 1 } }, "resources.gpu"],
    [{ ...goodSpec, colour: "red" }, "colour"],
    [{ ...goodSpec, kind: "cook" }, "kind"],
    [{ ...goodSpec, budget: "lots" }, "budget"],
    [{ ...goodSpec, dataset: "artha://nope" }, "dataset"],
    [{ ...goodSpec, hyper: { ...goodSpec.hyper, epochs: 1.5 } }, "hyper.epochs"],
  ];
  for (const [spec, field] of cases) {
    for (const input of [spec, JSON.stringify(spec)]) {
      const r = artha.validateSpec(input);
      assert.equal(r.ok, false, field);
      assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
      assert.equal(r.errors[0].field, field, JSON.stringify(r.errors));
    }
  }
  const r = artha.validateSpec("{not json");
  assert.equal(r.ok, false);
  assert.equal(r.errors[0].field, "value");
  for (const bad of [42, null, undefined, [goodSpec], true]) {
    throwsArtha(() => artha.validateSpec(bad), "invalid_input", "spec", TypeError);
  }
});

test("records: wrong fields are named, wrong encodings refused", () => {
  const rec = { ...vectors.step_records[0] };
  delete rec.encoding;
  delete rec.leaf;
  assert.equal(artha.stepRecordLeaf(rec), vectors.step_records[0].leaf);
  throwsArtha(() => artha.encodeStepRecord({ ...rec, step: "one" }), "invalid_input", "record.step");
  throwsArtha(() => artha.encodeStepRecord({ ...rec, grad_digest: "AB" }), "invalid_input",
    "record.grad_digest");
  throwsArtha(() => artha.encodeStepRecord({ ...rec, loss: NaN }), "invalid_input", "record.loss");
  throwsArtha(() => artha.encodeStepRecord({ ...rec, epoch: 2 ** 32 }), "invalid_input", "record.epoch");
  const { grad_digest: _, ...missing } = rec;
  throwsArtha(() => artha.encodeStepRecord(missing), "invalid_input", "record");
  throwsArtha(() => artha.encodeStepRecord("x"), "invalid_input", "record", TypeError);
  const enc = fromHex(vectors.step_records[0].encoding);
  throwsArtha(() => artha.decodeStepRecord(enc.subarray(1)), "invalid_input", "encoding");
  throwsArtha(() => artha.decodeInferRecord(enc), "invalid_input", "encoding");
  throwsArtha(() => artha.decodeStepRecord([1, 2]), "invalid_input", "encoding", TypeError);
});

test("merkle: malformed proofs fail, malformed hashes throw naming the field", () => {
  const m = vectors.merkle[3];
  const p = { index: 1, leaf_count: m.leaves.length, siblings: m.proofs[1].siblings };
  assert.equal(artha.verifyMerkleProof(m.leaves[1], p, m.root), true);
  assert.equal(artha.verifyMerkleProof(m.leaves[1], { ...p, siblings: p.siblings.slice(1) }, m.root), false);
  assert.equal(artha.verifyMerkleProof(m.leaves[1], { ...p, index: 99 }, m.root), false);
  assert.equal(artha.verifyMerkleProof(m.leaves[1], p, m.leaves[0]), false);
  throwsArtha(() => artha.verifyMerkleProof("0x12", p, m.root), "invalid_input", "leaf");
  throwsArtha(() => artha.verifyMerkleProof(m.leaves[1], p, m.root.toUpperCase()), "invalid_input", "root");
  throwsArtha(() => artha.verifyMerkleProof(m.leaves[1], { ...p, siblings: ["0x00"] }, m.root),
    "invalid_input", "proof.siblings[0]");
  throwsArtha(() => artha.verifyMerkleProof(m.leaves[1], { index: 1, siblings: [] }, m.root),
    "invalid_input", "proof");
  throwsArtha(() => artha.merkleRoot([]), "invalid_input", "leaves");
  throwsArtha(() => artha.merkleRoot([m.leaves[0], "0xzz"]), "invalid_input", "leaves[1]");
  throwsArtha(() => artha.merkleRoot("0x00"), "invalid_input", "leaves", TypeError);
  throwsArtha(() => artha.merkleProof(m.leaves, m.leaves.length), "not_found", "index");
  throwsArtha(() => artha.merkleProof(m.leaves, -1), "invalid_input", "index");
});

test("job trees: window claims", () => {
  const jt = vectors.job_trees[0];
  const w1 = jt.step_leaves.slice(jt.window, 2 * jt.window);
  const proof = artha.proveStep(jt.step_leaves, jt.window, jt.window).window_proof;
  assert.equal(artha.verifyWindow(jt.job_root, 1, w1, proof), jt.window_roots[1]);
  throwsArtha(() => artha.verifyWindow(jt.job_root, 1, w1.slice(1), proof), "corrupted", "windowProof");
  throwsArtha(() => artha.verifyWindow(jt.job_root, 2, w1, proof), "invalid_input", "windowProof.index");
  throwsArtha(() => artha.verifyWindow(jt.job_root, 1, [], proof), "invalid_input", "stepLeaves");
  throwsArtha(() => artha.verifyWindow(jt.window_roots[0], 1, w1, proof), "corrupted", "windowProof");
  throwsArtha(() => artha.verifyWindow(jt.job_root, 1, w1, { ...proof, siblings: [] }), "invalid_input",
    "windowProof");
  throwsArtha(() => artha.jobTree(jt.step_leaves, 0), "invalid_input", "window");
  throwsArtha(() => artha.jobTree([], 4), "invalid_input", "stepLeaves");
  throwsArtha(() => artha.proveStep(jt.step_leaves, 4, 99), "invalid_input", "position");
  const sp = artha.proveStep(jt.step_leaves, jt.window, 5);
  assert.equal(artha.verifyStepProof(jt.step_leaves[5], sp, jt.job_root), true);
  assert.equal(artha.verifyStepProof(jt.step_leaves[4], sp, jt.job_root), false);
});

test("credentials: verification, tampering, expiry and malformed input", () => {
  const c = creds.valid;
  const claims = artha.verifyCredential(c, creds.now);
  assert.equal(claims.issuer, c.credential.issuer);
  assert.equal(claims.subject, c.credential.subject);
  assert.equal(claims.budget_cap, "2.5 ARTH");
  // Any change to a claim breaks the signature.
  for (const [k, val] of [["rate_limit_per_minute", 31], ["expires_at", c.credential.expires_at + 1],
    ["subject", c.credential.issuer]]) {
    const changed = { ...c, credential: { ...c.credential, [k]: val } };
    throwsArtha(() => artha.verifyCredential(changed, creds.now), "permission_denied", "credential.signature");
  }
  throwsArtha(() => artha.verifyCredential({ ...c, signature: "zz" }, creds.now), "permission_denied",
    "credential.signature");
  throwsArtha(() => artha.verifyCredential({ ...c, signature: 5 }, creds.now), "invalid_input",
    "credential.signature");
  throwsArtha(() => artha.verifyCredential(creds.valid, c.credential.expires_at), "permission_denied",
    "credential.expires_at");
  // Without a time, now: the fixture is valid until 2030.
  assert.ok(Date.now() / 1000 < c.credential.expires_at);
  assert.equal(artha.verifyCredential(c).issuer, c.credential.issuer);
  throwsArtha(() => artha.verifyCredential({ ...c, credential: { ...c.credential, issuer: "did:key:zBad" } },
    creds.now), "invalid_input", "credential.issuer");
  throwsArtha(() => artha.verifyCredential({ ...c, credential: { ...c.credential, budget_cap: 5 } },
    creds.now), "invalid_input", "credential.budget_cap");
  throwsArtha(() => artha.verifyCredential({ ...c, extra: 1 }, creds.now), "invalid_input", "extra");
  throwsArtha(() => artha.verifyCredential(c, -5), "invalid_input", "nowSecs");
  throwsArtha(() => artha.verifyCredential(c, "soon"), "invalid_input", "nowSecs", TypeError);
  throwsArtha(() => artha.verifyCredential(42, creds.now), "invalid_input", "signed", TypeError);
  assert.deepEqual(artha.parseDid(c.credential.issuer), {
    did: c.credential.issuer,
    public_key: creds.issuer_public_key,
  });
  throwsArtha(() => artha.parseDid("did:web:example.com"), "invalid_input", "did");
  throwsArtha(() => artha.parseDid(1), "invalid_input", "did", TypeError);
});

test("tensors and money: bad input names the field", () => {
  throwsArtha(() => artha.tensorDigest("f32", [2], new Uint8Array(4)), "invalid_input", "data");
  throwsArtha(() => artha.tensorDigest("f128", [1], new Uint8Array(16)), "invalid_input", "dtype");
  throwsArtha(() => artha.tensorDigest("f32", [1.5], new Uint8Array(4)), "invalid_input", "shape[0]",
    TypeError);
  throwsArtha(() => artha.costOf(10, "5"), "invalid_input", "rate");
  throwsArtha(() => artha.costOf(1.5, "5 wei"), "invalid_input", "gpuSeconds", TypeError);
  assert.deepEqual(artha.costOf(4710n, "0.001 ARTH"), { wei: "4710000000000000000", text: "4.71 ARTH" });
});

test("audits without an engine: a step log against a commitment, the audit draw", () => {
  // A log of the vectors' records, numbered 1…n so they follow each other,
  // in windows of 2.
  const records = vectors.step_records.map((v, i) => ({
    step: i + 1,
    epoch: v.epoch,
    loss: v.loss,
    grad_digest: v.grad_digest,
    weight_digest: v.weight_digest,
    batch_digest: v.batch_digest,
  }));
  const encodings = records.map((r) => artha.encodeStepRecord(r));
  const log = new Uint8Array(encodings.reduce((n, e) => n + e.length, 0));
  let at = 0;
  for (const e of encodings) {
    log.set(e, at);
    at += e.length;
  }
  const leaves = encodings.map((e) => artha.leafHash(e));
  const root = artha.jobTree(leaves, 2).job_root;
  const back = artha.verifyStepLog(log, 2, root, records.length);
  assert.equal(back.length, records.length);
  assert.equal(back[0].step, 1);
  const flipped = log.slice();
  flipped[30] ^= 1;
  throwsArtha(() => artha.verifyStepLog(flipped, 2, root, records.length), "corrupted", "stepLog");
  throwsArtha(() => artha.verifyStepLog(log.slice(1), 2, root, records.length), "invalid_input", "stepLog");
  throwsArtha(() => artha.verifyStepLog(log, 2, root.toUpperCase(), 1), "invalid_input", "jobRoot");

  const job = "job-" + "ab".repeat(16);
  const seed = "0x" + "11".repeat(32);
  const drawn = artha.auditWindows(seed, job, 100, 8);
  assert.equal(drawn.length, 8);
  assert.equal(new Set(drawn).size, 8);
  assert.ok(drawn.every((w) => w >= 0 && w < 100));
  assert.deepEqual(artha.auditWindows(seed, job, 100, 8), drawn);
  assert.deepEqual([...artha.auditWindows(seed, job, 3, 9)].sort(), [0, 1, 2]);
  throwsArtha(() => artha.auditWindows(seed, "job-zz", 10, 1), "invalid_input", "jobId");
  throwsArtha(() => artha.auditWindows(seed, job, 0, 1), "invalid_input", "windows");
});
