// The browser example of artha-wasm: a file's CID (hashed chunk by chunk, so
// large files never sit in memory at once), a job spec check that lists
// every problem by field, and a self-test of the shared vectors.
//
// Serve the repository root and open /examples/browser/ (tests/lib/wasm.sh
// builds ../../bindings/wasm/pkg/web and does this in headless Chromium).

import init, * as artha from "../../bindings/wasm/pkg/web/artha_wasm.js";
import { checkVectors, tampered } from "../../bindings/wasm/js/check_vectors.mjs";

const $ = (id) => document.getElementById(id);

async function cidOfFile(file, onProgress) {
  const hasher = new artha.CidHasher();
  try {
    const reader = file.stream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hasher.update(value);
      onProgress(hasher.bytesHashed, file.size);
    }
    return hasher.finalize();
  } finally {
    hasher.free();
  }
}

function showSpec(text) {
  const list = $("spec-result");
  list.replaceChildren();
  const item = (cls, text) => {
    const li = document.createElement("li");
    li.className = cls;
    li.textContent = text;
    list.append(li);
  };
  const verdict = artha.validateSpec(text);
  if (verdict.ok) item("good", "The spec is valid.");
  else for (const e of verdict.errors) item("bad", `${e.field}: ${e.message}`);
}

async function selftest(params) {
  const out = $("selftest");
  try {
    const load = async (url) => {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return r.json();
    };
    let vectors = await load("../../artha-core/tests/vectors/proofs.json");
    const creds = await load("../../bindings/wasm/tests/fixtures/credentials.json");
    if (params.has("tamper")) vectors = tampered(vectors);
    const { passed, failures } = checkVectors(artha, vectors, creds);
    out.textContent = failures.length
      ? `FAIL ${failures.length} of ${passed + failures.length}\n${failures.join("\n")}`
      : `PASS ${passed}`;
  } catch (e) {
    out.textContent = `FAIL ${e && e.stack ? e.stack : e}`;
  }
}

async function main() {
  await init();
  $("file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    $("cid").textContent = "hashing…";
    try {
      const cid = await cidOfFile(file, (done, total) => {
        $("cid-bytes").textContent = `(${done} of ${total} bytes)`;
      });
      $("cid").textContent = cid;
    } catch (e) {
      $("cid").textContent = `error: ${e.message}`;
    }
  });
  $("check").addEventListener("click", () => showSpec($("spec").value));
  showSpec($("spec").value);
  const params = new URLSearchParams(location.search);
  if (params.has("selftest")) await selftest(params);
}

main().catch((e) => {
  $("selftest").textContent = `FAIL ${e && e.stack ? e.stack : e}`;
});
