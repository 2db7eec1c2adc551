// Checks artha-wasm against the shared cross-language vectors
// (artha-core/tests/vectors/proofs.json) and the credential fixture
// (bindings/wasm/tests/fixtures/credentials.json). Used by the Node tests
// and by the browser self-test (examples/browser/?selftest), so both run
// the same checks.
//
//   checkVectors(artha, vectors, credentials) -> { passed, failures }
//
// `artha` is the artha-wasm module (Node: the `--target nodejs` output;
// browser: the `--target web` output after `init()`).

export function fromHex(text) {
  const s = text.startsWith("0x") ? text.slice(2) : text;
  if (s.length % 2 !== 0 || /[^0-9a-f]/.test(s)) throw new Error(`bad hex: ${text}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Returns the error `fn` throws, or null.
function thrown(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    return e;
  }
}

// JSON text with object keys sorted, to compare values whatever their key order.
function canon(value) {
  return JSON.stringify(value, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
      : x,
  );
}

export function checkVectors(artha, v, creds) {
  let passed = 0;
  const failures = [];
  const check = (name, ok, detail = "") => {
    if (ok) passed++;
    else failures.push(`${name}${detail ? ": " + detail : ""}`);
  };
  const eq = (name, got, want) =>
    check(name, Object.is(got, want), `got ${String(got)}, want ${String(want)}`);
  const eqJson = (name, got, want) => eq(name, canon(got), canon(want));
  // An entry that throws is one failure, not the end of the run.
  const each = (name, list, fn) => {
    if (!Array.isArray(list) || list.length === 0) {
      failures.push(`${name}: no entries`);
      return;
    }
    list.forEach((e, i) => {
      try {
        fn(e, i, `${name}[${i}]`);
      } catch (err) {
        failures.push(`${name}[${i}]: threw ${err && err.message}`);
      }
    });
  };
  const throwsField = (name, fn, field, kind) => {
    const e = thrown(fn);
    check(name, e !== null, "did not throw");
    if (e) {
      eq(`${name} field`, e.field, field);
      if (kind) {
        eq(`${name} kind`, e.kind, kind);
        eq(`${name} code`, e.code, "ARTHA_" + kind.toUpperCase());
      }
    }
  };

  eq("format", v.format, "artha-proof-vectors/1");

  each("cids", v.cids, (c, _i, n) => {
    const data = fromHex(c.data_hex);
    eq(`${n} cid`, artha.cid(data), c.cid);
    eq(`${n} parseCid`, artha.parseCid(c.cid), c.cid);
    // The same CID in uneven chunks.
    const h = new artha.CidHasher();
    for (let at = 0; at < data.length; at += 7) h.update(data.subarray(at, at + 7));
    eq(`${n} CidHasher`, h.finalize(), c.cid);
    eq(`${n} bytesHashed`, h.bytesHashed, data.length);
    h.free();
  });

  each("tensors", v.tensors, (t, _i, n) =>
    eq(n, artha.tensorDigest(t.dtype, t.shape, fromHex(t.data_hex)), t.digest),
  );

  const records = [
    ["step_records", ["step", "epoch", "loss", "grad_digest", "weight_digest", "batch_digest"],
      artha.encodeStepRecord, artha.decodeStepRecord, artha.stepRecordLeaf],
    ["infer_records", ["input_digest", "output_digest"],
      artha.encodeInferRecord, artha.decodeInferRecord, artha.inferRecordLeaf],
    ["complete_records", ["steps", "gpu_seconds", "final_weights"],
      artha.encodeCompleteRecord, artha.decodeCompleteRecord, artha.completeRecordLeaf],
  ];
  for (const [key, fields, encode, decode, leafOf] of records) {
    each(key, v[key], (e, _i, n) => {
      const rec = Object.fromEntries(fields.map((f) => [f, e[f]]));
      eq(`${n} encoding`, toHex(encode(rec)), e.encoding);
      eq(`${n} leaf`, leafOf(rec), e.leaf);
      eq(`${n} leafHash`, artha.leafHash(fromHex(e.encoding)), e.leaf);
      const back = decode(fromHex(e.encoding));
      for (const f of fields) eq(`${n} decode ${f}`, back[f], e[f]);
    });
  }

  each("merkle", v.merkle, (m, _i, n) => {
    eq(`${n} root`, artha.merkleRoot(m.leaves), m.root);
    m.proofs.forEach((p, j) => {
      const proof = { index: p.index, leaf_count: m.leaves.length, siblings: p.siblings };
      eqJson(`${n}.proofs[${j}] cut`, artha.merkleProof(m.leaves, p.index), proof);
      check(`${n}.proofs[${j}] verifies`,
        artha.verifyMerkleProof(m.leaves[p.index], proof, m.root) === true);
      // Another leaf, or the proof moved to another position, must fail.
      const other = m.leaves[(p.index + 1) % m.leaves.length];
      if (m.leaves.length > 1) {
        check(`${n}.proofs[${j}] other leaf fails`,
          artha.verifyMerkleProof(other, proof, m.root) === false);
      }
    });
  });

  each("job_trees", v.job_trees, (jt, _i, n) => {
    const t = artha.jobTree(jt.step_leaves, jt.window);
    eqJson(`${n} window_roots`, t.window_roots, jt.window_roots);
    eq(`${n} job_root`, t.job_root, jt.job_root);
    eq(`${n} window roots tree`, artha.merkleRoot(jt.window_roots), jt.job_root);
    jt.window_roots.forEach((root, w) => {
      const steps = jt.step_leaves.slice(w * jt.window, (w + 1) * jt.window);
      const proof = artha.proveStep(jt.step_leaves, jt.window, w * jt.window).window_proof;
      eq(`${n} window ${w}`, artha.verifyWindow(jt.job_root, w, steps, proof), root);
      const forged = [...steps];
      forged[0] = jt.step_leaves[(w * jt.window + 1) % jt.step_leaves.length];
      throwsField(`${n} window ${w} forged step`,
        () => artha.verifyWindow(jt.job_root, w, forged, proof), "windowProof", "corrupted");
    });
    jt.step_leaves.forEach((leaf, s) => {
      const sp = artha.proveStep(jt.step_leaves, jt.window, s);
      check(`${n} step ${s}`, artha.verifyStepProof(leaf, sp, jt.job_root) === true);
    });
  });

  each("money", v.money, (m, _i, n) => {
    const c = artha.costOf(m.gpu_seconds, `${m.rate_wei} wei`);
    eq(`${n} wei`, c.wei, m.cost_wei);
    eq(`${n} text`, c.text, m.cost);
  });

  if (creds) {
    eq("credentials format", creds.format, "artha-wasm-credentials/1");
    const claims = artha.verifyCredential(creds.valid, creds.now);
    eqJson("credential claims", claims, creds.valid.credential);
    eqJson("credential from JSON text",
      artha.verifyCredential(JSON.stringify(creds.valid), creds.now), creds.valid.credential);
    eq("issuer key", artha.parseDid(creds.valid.credential.issuer).public_key,
      creds.issuer_public_key);
    throwsField("forged credential", () => artha.verifyCredential(creds.forged, creds.now),
      "credential.signature", "permission_denied");
    throwsField("altered credential", () => artha.verifyCredential(creds.altered, creds.now),
      "credential.signature", "permission_denied");
    throwsField("expired credential",
      () => artha.verifyCredential(creds.valid, creds.valid.credential.expires_at),
      "credential.expires_at", "permission_denied");
    throwsField("early credential",
      () => artha.verifyCredential(creds.valid, creds.valid.credential.not_before - 1),
      "credential.not_before", "permission_denied");
  }

  return { passed, failures };
}

// A copy of `vectors` with one expected value changed: the checks must
// report it (the self-test's `tamper` mode proves the test can fail).
export function tampered(vectors) {
  const v = structuredClone(vectors);
  const leaf = v.step_records[0].leaf;
  v.step_records[0].leaf = leaf.slice(0, -1) + (leaf.endsWith("0") ? "1" : "0");
  return v;
}
