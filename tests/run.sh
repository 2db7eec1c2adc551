#!/usr/bin/env bash
# The one test entry point: installs what is missing, then runs every check.
#
#   bash tests/run.sh            # everything
#   STAGES="fmt unit" bash tests/run.sh   # a subset (names below)
#
# Under CI=true a prerequisite that cannot be installed is a failure, never a
# skip. Ends with a line `summary: N passed, N failed`.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/images.sh
. "$ROOT/tests/lib/images.sh"
# shellcheck source=lib/anvil.sh
. "$ROOT/tests/lib/anvil.sh"
# shellcheck source=lib/torch_image.sh
. "$ROOT/tests/lib/torch_image.sh"
# shellcheck source=lib/python.sh
. "$ROOT/tests/lib/python.sh"
# shellcheck source=lib/node.sh
. "$ROOT/tests/lib/node.sh"
# shellcheck source=lib/wasm.sh
. "$ROOT/tests/lib/wasm.sh"
CI="${CI:-false}"
ALL_STAGES="fmt clippy unit doc wasm gpu-feature store-s3 contracts runtimes examples cli api python node"
STAGES="${STAGES:-$ALL_STAGES}"

passed=0
failed=0
failures=()
stage_times=()
total_start=$SECONDS

log() { printf '\n==> %s\n' "$*"; }

# need NAME CHECK-CMD INSTALL-CMD: make sure a prerequisite is present.
need() {
  local name="$1" check="$2" install="$3"
  if eval "$check" >/dev/null 2>&1; then return 0; fi
  log "installing prerequisite: $name"
  if eval "$install" && eval "$check" >/dev/null 2>&1; then return 0; fi
  echo "missing prerequisite: $name (install with: $install)" >&2
  return 1
}

run_stage() {
  local name="$1"; shift
  case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
  log "$name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "--- $name: ok ($((SECONDS - start))s)"
    stage_times+=("$name=$((SECONDS - start))s")
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "--- $name: FAILED ($((SECONDS - start))s)"
    stage_times+=("$name=$((SECONDS - start))s!")
  fi
}

prereqs() {
  local ok=0
  need cargo "command -v cargo" "false" || ok=1
  need rustfmt "cargo fmt --version" "rustup component add rustfmt" || ok=1
  need clippy "cargo clippy --version" "rustup component add clippy" || ok=1
  need wasm32-target "rustup target list --installed | grep -qx wasm32-unknown-unknown" \
    "rustup target add wasm32-unknown-unknown" || ok=1
  need cargo-nextest "cargo nextest --version" "cargo install cargo-nextest --locked" || ok=1
  # The compilation cache every clone on this machine shares (RUSTC_WRAPPER).
  need sccache "ensure_sccache" "false" || ok=1
  # A Docker daemon (Debian docker.io, started in the background) and the
  # locally built test image the executor suite runs.
  need dockerd "docker info" "docker_up" || ok=1
  # The test venv (pytest, moto, numpy, blake3).
  ensure_venv || ok=1
  if docker info >/dev/null 2>&1; then
    ARTHA_TESTRT_IMAGE="$(testrt_image)" && export ARTHA_TESTRT_IMAGE || ok=1
    # The PyTorch runtime image (Debian packages, debootstrap + docker
    # import, ~2 min once per machine): the torch e2e job and the
    # runtimes stage run it.
    ARTHA_TORCH_IMAGE="$(torch_image)" && export ARTHA_TORCH_IMAGE || ok=1
  fi
  # anvil (npm @foundry-rs/anvil, pinned in contracts/) on loopback for the
  # JSON-RPC chain suite; stopped when this script exits.
  anvil_up || ok=1
  return $ok
}

# One feature set for every cargo command of this script: the features that
# only add code (NVML inventory, S3 backend, the public test suites of
# `artha_engine::testing`, which the integration tests run) are enabled
# together, so clippy, the tests, the doc tests, the binaries and the examples
# share one build of the workspace and no stage recompiles the engine with
# another set. The one
# other build is the wasm32 target (stage wasm) and the static musl images
# (tests/lib/images.sh), which need another target.
FEATURES=(--features "artha-engine/gpu,artha-engine/s3,artha-engine/testing")
CARGO_FLAGS=(--workspace --locked "${FEATURES[@]}")
# The S3 suite needs a server on loopback (stage store-s3); the other test
# stages leave it out.
S3_TESTS='binary(store_s3) | test(store::s3::) | binary(config_store)'

# ws_bins: the workspace's binaries and examples (arthai, artha-runtime,
# artha-testrt, examples) from the one shared build; a no-op when built.
ws_bins() { cargo build --quiet "${CARGO_FLAGS[@]}" --bins --examples; }

stage_fmt() { cargo fmt --all -- --check; }
stage_clippy() { cargo clippy "${CARGO_FLAGS[@]}" --all-targets -- -D warnings; }
stage_unit() {
  # The process-executor tests run the artha-testrt binary: build the
  # binaries first (nextest builds test targets, not other packages' bins).
  ws_bins && cargo nextest run "${CARGO_FLAGS[@]}" --no-fail-fast -E "not ($S3_TESTS)"
}
stage_doc() { cargo test "${CARGO_FLAGS[@]}" --doc; }
stage_wasm() { cargo build -p artha-core --target wasm32-unknown-unknown --locked && wasm_suite; }
# The NVML inventory path (built and linted with the rest) falls back cleanly
# on a machine without an NVIDIA driver.
stage_gpu_feature() { cargo nextest run "${CARGO_FLAGS[@]}" -E 'test(exec::gpu)'; }
# The storage behaviour suite against a real S3-compatible server (moto) on
# loopback.
stage_store_s3() {
  # shellcheck source=lib/s3.sh
  . "$ROOT/tests/lib/s3.sh"
  s3_up || return 1
  cargo nextest run "${CARGO_FLAGS[@]}" --no-fail-fast -E "$S3_TESTS"
  local rc=$?
  s3_down
  return $rc
}
stage_contracts() { bash contracts/test.sh; }
# The Python runtime helper (pytest), the torch, TensorFlow and JAX images running train.py under
# Docker against the native runtime, and the native runtime's static musl
# build in its FROM-scratch image, bit for bit against the host build.
stage_runtimes() {
  ws_bins &&
    ARTHA_NATIVE_RUNTIME="$ROOT/target/debug/artha-runtime" \
      "$ARTHA_VENV/bin/python" -m pytest -q runtimes/python/tests &&
    native_image_test "${CARGO_FLAGS[@]}" &&
    ARTHA_NATIVE_RUNTIME="$ROOT/target/debug/artha-runtime" bash runtimes/tf/test.sh &&
    ARTHA_NATIVE_RUNTIME="$ROOT/target/debug/artha-runtime" bash runtimes/jax/test.sh
}
stage_examples() {
  ws_bins && "$ROOT/target/debug/examples/proofs" &&
    "$ROOT/target/debug/examples/embed" && "$ROOT/target/debug/examples/custom_parts"
}
stage_cli() {
  # The README's main command, on a throw-away home.
  local tmp
  tmp="$(mktemp -d)"
  ws_bins &&
    "$ROOT/target/debug/arthai" --home "$tmp/home" quickstart --json >"$tmp/out.json" &&
    grep -q '"status": "settled"' "$tmp/out.json" &&
    "$ROOT/target/debug/arthai" --home "$tmp/home" quickstart >/dev/null
  local rc=$?
  rm -rf "$tmp"
  return $rc
}

# The REST API of `arthai serve` fuzzed from its own OpenAPI document by
# schemathesis (PyPI, its own venv): no request may get a 5xx.
SCHEMATHESIS_VERSION="4.32.5"
stage_api() {
  local venv="$ARTHA_CACHE/schemathesis" tmp pid url token rc
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9][0-9.]*$')" != "$SCHEMATHESIS_VERSION" ]; then
    python3 -m venv "$venv" &&
      "$venv/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" || return 1
  fi
  ws_bins || return 1
  tmp="$(mktemp -d)"
  "$ROOT/target/debug/arthai" --home "$tmp/home" --json serve --addr 127.0.0.1:0 --rate-limit 0 >"$tmp/serve.json" &
  pid=$!
  for _ in $(seq 1 100); do [ -s "$tmp/serve.json" ] && break; sleep 0.2; done
  url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$tmp/serve.json")" || { kill "$pid"; return 1; }
  token="$(cat "$tmp/home/serve.token")"
  "$venv/bin/schemathesis" run "$url/openapi.json" -H "Authorization: Bearer $token" \
    --checks not_a_server_error --max-examples "${API_FUZZ_EXAMPLES:-25}" --workers 1 \
    --generation-deterministic --request-timeout 60 --no-color --suppress-health-check all
  rc=$?
  kill -TERM "$pid"; wait "$pid" || rc=1
  rm -rf "$tmp"
  return $rc
}

# arthapy (PyO3): installed with pip from the checkout, then its tests, the
# behaviour suite, the stub drift check and the example (tests/lib/python.sh).
stage_python() { ws_bins && python_suite; }
# arthajs (napi-rs): built in the shared target, its tests, the .d.ts drift
# check, the behaviour suite, the example and a fresh `npm pack` install
# (tests/lib/node.sh).
stage_node() { node_suite; }

log "prerequisites"
if ! prereqs; then
  if [ "$CI" = "true" ]; then
    failed=$((failed + 1)); failures+=("prerequisites")
    echo "summary: $passed passed, $failed failed"
    exit 1
  fi
  echo "warning: some prerequisites are missing; stages that need them will fail" >&2
fi

run_stage fmt stage_fmt
run_stage clippy stage_clippy
run_stage unit stage_unit
run_stage doc stage_doc
run_stage wasm stage_wasm
run_stage gpu-feature stage_gpu_feature
run_stage store-s3 stage_store_s3
if [ -f contracts/test.sh ]; then run_stage contracts stage_contracts; fi
run_stage runtimes stage_runtimes
run_stage examples stage_examples
run_stage cli stage_cli
run_stage api stage_api
run_stage python stage_python
run_stage node stage_node

echo
echo "stage times: ${stage_times[*]}"
echo "total: $((SECONDS - total_start))s"
if [ -n "${RUSTC_WRAPPER:-}" ]; then
  "$RUSTC_WRAPPER" --show-stats 2>/dev/null | grep -E '^(Compile requests|Cache hits|Cache misses) ' || true
fi
if [ "$failed" -gt 0 ]; then echo "failed stages: ${failures[*]}"; fi
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
