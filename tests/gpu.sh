#!/usr/bin/env bash
# The GPU path, ready to check (issue 17 item 6; docs/GPU.md).
#
#   bash tests/gpu.sh             # on a machine with an NVIDIA GPU: the four sections below
#   bash tests/gpu.sh --prepare   # here (no GPU needed): build the carryable pieces
#   bash tests/gpu.sh --force     # run the sections even where no GPU is found (to test this
#                                 # script: the GPU checks then FAIL or SKIP, never PASS)
#   options: --epochs N --rows N --features N --hidden N --classes N --batch N (the MLP job)
#
# Exit codes:
#   0  every section that ran PASSed (SKIPs allowed); or no GPU here: exactly one line
#      `no GPU: <why>` (no nvidia-smi on PATH and no /dev/nvidia* nodes); or --prepare built
#      everything it could
#   1  at least one section FAILed
#   2  usage error, or --prepare could not build a required piece
#   3  a GPU is expected (nvidia-smi or /dev/nvidia* present) but `nvidia-smi -L` lists none
#
# Sections, each printed as `== N name` and ending `PASS`, `FAIL (why)` or `SKIP (why)`:
#   1 inventory  the engine's NVML discovery (example `gpu_inventory`, artha-engine feature
#                `gpu`) against `nvidia-smi --query-gpu`: same count, names, UUIDs, memory
#   2 docker     one container through the engine's DockerExecutor with an NVML inventory, so
#                the GPU reaches it as the executor's DeviceRequest; runs `nvidia-smi -L`
#                inside and expects the host's GPUs. Needs dockerd with the NVIDIA container
#                toolkit. (The engine's `exec::gpu` tests use a simulated inventory and only
#                build the request body, so they prove nothing on a GPU; not used here.)
#   3 candle     artha-runtime built with `--features cuda`, the same MLP trained twice with
#                ARTHA_DEVICE=cuda: every step record (loss, gradient/weight/batch digests) and
#                the final weights digest must be identical across the two runs; steps/s
#                against the CPU build on the same job (figures, not pass criteria)
#   4 torch      runtimes/torch/train.py with ARTHA_DEVICE=cuda, twice: both complete, the
#                step records agree across the runs, the batch digests equal the native CPU
#                run's; steps/s
# Figures go to $OUT/gpu-results.{txt,json} when OUT is set (the device tool brings $OUT
# back), else target/gpu/; the whole log to gpu.log beside them.
#
# Where the binaries come from, per piece, first found wins:
#   a. target/gpu-carry/ (made by --prepare on a build machine; pass it in the device tool's
#      `carry`): artha-runtime, gpu_inventory, artha-runtime-cuda (only where --prepare had
#      nvcc), wheels/ (the blake3 wheel for the torch runtime), BUILD_INFO;
#   b. target/release/ (artha-runtime, examples/gpu_inventory; CUDA: target/gpu-cuda/release/);
#   c. `cargo build --release --offline` here, when cargo and a filled registry are present
#      (the CUDA build also needs nvcc);
#   d. else the section SKIPs and names what was missing.
#
# candle's `cuda` feature cannot be built without nvcc (checked 2026-12-02, candle 0.11.1,
# cudarc 0.19.10, on a machine without the CUDA toolkit): `cargo check -p artha-runtime
# --features cuda` fails first in cudarc's build script ("`nvcc --version` failed": its
# `cuda-version-from-build-system` asks nvcc for the CUDA version), and with
# CUDARC_CUDA_VERSION=13000 set to skip that, in candle-kernels' build script
# ("NvccNotFound"): cudaforge compiles the .cu kernels to PTX and a static libmoe.a with nvcc
# and links `cudart` and `stdc++`. The binary then links libcudart, libcublas, libcublasLt,
# libcurand and libnvrtc of that CUDA major dynamically (cudarc `dynamic-linking`), so a CUDA
# build made elsewhere runs only where the same CUDA major's libraries are found; section 3
# checks `ldd` first. NVML (section 1) is loaded with dlopen at run time: the inventory
# example builds and starts without a GPU (it then reports that NVML cannot initialise).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
CARRY="$ROOT/target/gpu-carry"

mode=check force=0
epochs=2 rows=8192 features=128 hidden=256 classes=10 batch=64
usage() {
  echo "usage: tests/gpu.sh [--prepare | --force] [--epochs N] [--rows N] [--features N]" \
    "[--hidden N] [--classes N] [--batch N]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) mode=prepare; shift ;;
    --force) force=1; shift ;;
    --epochs | --rows | --features | --hidden | --classes | --batch)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then usage; fi
      printf -v "${1#--}" '%s' "$2"
      shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done

# ---- --prepare: build the carryable pieces (no GPU needed) -----------------------------------

# strip_copy SRC DST: DST is SRC without symbols (a plain copy where `strip` is missing).
strip_copy() {
  if command -v strip >/dev/null 2>&1; then strip -o "$2" "$1"; else cp "$1" "$2"; fi
}

prepare() {
  local rc=0 cargo_flags=(--release --locked --offline)
  command -v cargo >/dev/null || { echo "--prepare needs cargo" >&2; return 2; }
  rm -rf "$CARRY"
  mkdir -p "$CARRY/wheels"
  echo "== building artha-runtime (release, CPU)"
  if cargo build "${cargo_flags[@]}" -p artha-runtime; then
    strip_copy target/release/artha-runtime "$CARRY/artha-runtime"
  else
    echo "FAILED: cargo build -p artha-runtime" >&2; rc=2
  fi
  echo "== building the inventory example (artha-engine, features gpu,docker)"
  if cargo build "${cargo_flags[@]}" -p artha-engine --no-default-features --features gpu,docker \
    --example gpu_inventory; then
    strip_copy target/release/examples/gpu_inventory "$CARRY/gpu_inventory"
  else
    echo "FAILED: cargo build --example gpu_inventory" >&2; rc=2
  fi
  echo "== building artha-runtime with --features cuda"
  local cuda_note
  if command -v nvcc >/dev/null 2>&1; then
    # No GPU here to ask: CUDA_COMPUTE_CAP picks the target (90: H100/H200); override to taste.
    if CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" cargo build "${cargo_flags[@]}" \
      --target-dir target/gpu-cuda -p artha-runtime --features cuda; then
      strip_copy target/gpu-cuda/release/artha-runtime "$CARRY/artha-runtime-cuda"
      cuda_note="built with $(nvcc --version | tail -1), compute cap ${CUDA_COMPUTE_CAP:-90}"
    else
      cuda_note="cargo build --features cuda failed"; rc=2
    fi
  else
    cuda_note="not built: no nvcc here (candle-kernels compiles its kernels with nvcc)"
  fi
  echo "   $cuda_note"
  echo "== the blake3 wheel for the torch runtime (python 3.12, x86_64; pure-Python BLAKE3 is ~1 MB/s)"
  local py wheel_note
  py="$(pick_python)"
  if [ -n "$py" ] && "$py" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$CARRY/wheels" blake3 >/dev/null 2>&1; then
    wheel_note="$(cd "$CARRY/wheels" && ls)"
  else
    wheel_note="not downloaded (no pip or no network): the torch runtime falls back to pure-Python BLAKE3"
  fi
  echo "   $wheel_note"
  {
    echo "built: $(date -u +%FT%TZ) on $(uname -srm)"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "rustc: $(rustc --version 2>/dev/null)"
    echo "cuda: $cuda_note"
    echo "wheels: $wheel_note"
  } >"$CARRY/BUILD_INFO"
  echo "== $CARRY"
  (cd "$CARRY" && ls -l . wheels)
  echo "carry size: $(du -sh "$CARRY" | cut -f1) ($(du -sb "$CARRY" | cut -f1) bytes; the device tool's limit is 64 MiB with the working tree)"
  echo "device tool: run(command=\"bash tests/gpu.sh\", carry=[\"target/gpu-carry\"])"
  return "$rc"
}

# A python with numpy (data and comparisons): $ARTHA_GPU_PYTHON, python3, the test venv.
pick_python() {
  local p
  for p in "${ARTHA_GPU_PYTHON:-}" python3 "$HOME/.cache/artha/venv/bin/python"; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy' >/dev/null 2>&1; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

if [ "$mode" = prepare ]; then
  prepare
  exit $?
fi

# ---- is there a GPU? --------------------------------------------------------------------------

gpu_nodes="$(compgen -G '/dev/nvidia[0-9]*' | tr '\n' ' ')"
if [ "$force" = 0 ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 && [ -z "$gpu_nodes" ]; then
    echo "no GPU: no nvidia-smi on PATH and no /dev/nvidia* device nodes"
    exit 0
  fi
  if ! smi_list="$(nvidia-smi -L 2>&1)" || ! grep -q '^GPU [0-9]' <<<"$smi_list"; then
    echo "GPU expected (nvidia-smi: $(command -v nvidia-smi || echo absent); nodes: ${gpu_nodes:-none}) but \`nvidia-smi -L\` lists none: $(head -1 <<<"$smi_list")"
    exit 3
  fi
fi

# ---- results ----------------------------------------------------------------------------------

RES="${OUT:-$ROOT/target/gpu}"
mkdir -p "$RES"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/artha-gpu.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
: >"$RES/gpu-results.txt"

# Everything below runs in sections(), its output also in $RES/gpu.log.
sections() {

declare -A verdict
names=(inventory docker candle torch)
# fig SECTION KEY VALUE: one figure, printed and kept.
fig() {
  printf '   %s.%s = %s\n' "$1" "$2" "$3"
  printf '%s.%s=%s\n' "$1" "$2" "$3" >>"$RES/gpu-results.txt"
}
pass() { verdict[$1]="PASS"; echo "-- $1: PASS"; }
fail() { verdict[$1]="FAIL ($2)"; echo "-- $1: FAIL ($2)"; }
skip() { verdict[$1]="SKIP ($2)"; echo "-- $1: SKIP ($2)"; }

PY="$(pick_python || true)"
has_cargo=0
command -v cargo >/dev/null 2>&1 && has_cargo=1

# find_bin NAME RELEASE BUILD-ARGS...: path of a usable binary ($CARRY/NAME, then RELEASE (the
# release build), then cargo build --offline BUILD-ARGS); prints nothing and returns 1 when none.
find_bin() {
  local carried="$CARRY/$1" release="$2"
  shift 2
  if [ -x "$carried" ]; then echo "$carried"; return 0; fi
  if [ -x "$release" ]; then echo "$release"; return 0; fi
  if [ "$has_cargo" = 1 ] && cargo build --release --locked --offline "$@" >&2; then
    [ -x "$release" ] && { echo "$release"; return 0; }
  fi
  return 1
}

echo "tests/gpu.sh on $(uname -n) ($(uname -srm)), $(date -u +%FT%TZ)"
fig host kernel "$(uname -r)"
if command -v nvidia-smi >/dev/null 2>&1; then
  fig host driver "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
  fig host gpus "$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')"
else
  fig host gpus "0 (no nvidia-smi)"
fi
fig host carry "$( [ -f "$CARRY/BUILD_INFO" ] && sed -n 's/^commit: //p' "$CARRY/BUILD_INFO" || echo 'none')"
fig host python "${PY:-none}"
fig host cargo "$( [ "$has_cargo" = 1 ] && cargo --version || echo none)"
fig host nvcc "$(command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -1 || echo none)"

# ---- 1 inventory ------------------------------------------------------------------------------

echo
echo "== 1 inventory: the engine's NVML discovery against nvidia-smi"
inv_bin="$(find_bin gpu_inventory target/release/examples/gpu_inventory -p artha-engine \
  --no-default-features --features gpu,docker --example gpu_inventory)"
if [ -z "$inv_bin" ]; then
  skip inventory "no gpu_inventory binary: not in target/gpu-carry or target/release, and $( [ "$has_cargo" = 1 ] && echo 'cargo build --offline failed' || echo 'no cargo here')"
elif [ -z "$PY" ]; then
  skip inventory "no python with numpy to compare the JSON"
else
  fig inventory binary "$inv_bin"
  inv_json="$(timeout 60 "$inv_bin" 2>&1)"
  inv_rc=$?
  echo "   $inv_json"
  smi_csv="$(nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits 2>&1)"
  if [ "$inv_rc" != 0 ]; then
    fail inventory "gpu_inventory exited $inv_rc"
  elif why="$("$PY" - "$inv_json" "$smi_csv" <<'PY'
import json, sys
inv = json.loads(sys.argv[1])
smi = [[f.strip() for f in l.split(",")] for l in sys.argv[2].splitlines() if l.strip()]
bad = []
if inv.get("source") != "nvml":
    bad.append(f"source is {inv.get('source')!r}, not nvml")
devs = inv.get("devices", [])
if len(devs) != len(smi) or not devs:
    bad.append(f"{len(devs)} devices from NVML, {len(smi)} from nvidia-smi")
for d, s in zip(devs, smi):
    want = {"index": int(s[0]), "name": s[1], "memory_mib": int(s[2]), "uuid": s[3]}
    for k, v in want.items():
        if d.get(k) != v:
            bad.append(f"GPU {s[0]} {k}: engine {d.get(k)!r}, nvidia-smi {v!r}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
  )"; then
    fig inventory devices "$("$PY" -c 'import json,sys; print(", ".join(f"{d["index"]}: {d["name"]} {d["memory_mib"]} MiB" for d in json.loads(sys.argv[1])["devices"]))' "$inv_json")"
    pass inventory
  else
    fail inventory "${why:-the comparison failed}"
  fi
fi

# ---- 2 docker ---------------------------------------------------------------------------------

echo
echo "== 2 docker: a container with the engine's GPU device request"
# gpu_image: a local image holding only the C library nvidia-smi needs (the NVIDIA toolkit
# mounts nvidia-smi and the driver's libraries in); images are never pulled. ARTHA_GPU_IMAGE
# names another local image that has or receives nvidia-smi.
gpu_image() {
  if [ -n "${ARTHA_GPU_IMAGE:-}" ]; then echo "$ARTHA_GPU_IMAGE"; return 0; fi
  local tag=artha/gpu-check:local stage="$WORK/image" lib
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  mkdir -p "$stage"/{usr/bin,tmp,etc,proc,sys,dev}
  for lib in $(ldd "$(command -v nvidia-smi)" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib" || return 1
  done
  : >"$stage/etc/ld.so.conf"
  tar -C "$stage" -c . | docker import - "$tag" >/dev/null || return 1
  echo "$tag"
}
docker_runtimes="$(timeout 20 docker info --format '{{json .Runtimes}}' 2>&1)"
docker_rc=$?
if ! command -v docker >/dev/null 2>&1; then
  skip docker "no docker CLI"
elif [ "$docker_rc" != 0 ]; then
  skip docker "no dockerd answering: $(head -1 <<<"$docker_runtimes")"
elif ! grep -q nvidia <<<"$docker_runtimes" && ! command -v nvidia-container-runtime-hook >/dev/null 2>&1; then
  skip docker "dockerd answers but has no NVIDIA runtime (the NVIDIA container toolkit is not installed)"
elif [ -z "$inv_bin" ]; then
  skip docker "no gpu_inventory binary (see section 1)"
elif ! image="$(gpu_image)"; then
  fail docker "could not make a local image for nvidia-smi"
else
  fig docker image "$image"
  fig docker runtimes "$docker_runtimes"
  job_json="$(timeout 180 "$inv_bin" docker "$image" nvidia-smi -L 2>&1)"
  job_rc=$?
  echo "   $job_json"
  want="$(nvidia-smi -L | grep -c '^GPU ')"
  got="$("$PY" -c 'import json,sys; print(sum(l.startswith("GPU ") for l in json.loads(sys.argv[1]).get("logs", [])))' "$job_json" 2>/dev/null || echo 0)"
  fig docker gpus_in_container "$got (host: $want)"
  if [ "$job_rc" = 0 ] && [ "$got" = "$want" ]; then
    pass docker
  else
    # The plain CLI path, as a lead for why the engine's failed.
    plain="$(timeout 60 docker run --rm --gpus all "$image" nvidia-smi -L 2>&1 | head -3)"
    fig docker plain_cli_gpus_all "$(tr '\n' ' ' <<<"$plain")"
    fail docker "engine job exited $job_rc, $got GPU lines in the container, $want on the host"
  fi
fi

# ---- the MLP job shared by sections 3 and 4 ---------------------------------------------------

JOB="$WORK/job"
steps_expected=$(( epochs * ((rows + batch - 1) / batch) ))  # the last batch may be short
job_env=(EPOCHS="$epochs" BATCH_SIZE="$batch" LEARNING_RATE=0.001 ARTHA_SEED=7
  ARTHA_PROOF_WINDOW=100 ARTHA_LOG_EVERY=0 ARTHA_JOB_ID=gpu-check
  ARTHA_MODEL_DIR="$JOB/model" ARTHA_DATA_DIR="$JOB/data")
job_ready=0
if [ -n "$PY" ]; then
  mkdir -p "$JOB/model" "$JOB/data"
  # $classes well-separated classes in $features dimensions (bench/runtimes.sh's data).
  if "$PY" - "$JOB/data" "$rows" "$features" "$classes" <<'PY'
import sys
import numpy as np
out, rows, features, classes = sys.argv[1], *map(int, sys.argv[2:])
r = np.random.default_rng(11)
centers = r.standard_normal((classes, features)).astype(np.float32)
y = r.integers(0, classes, rows)
x = centers[y] + r.standard_normal((rows, features)).astype(np.float32)
np.save(f"{out}/x.npy", x.astype(np.float32))
np.save(f"{out}/y.npy", y.astype(np.int64))
PY
  then
    printf '{"kind": "mlp", "task": "classify", "hidden": [%s], "classes": %s}\n' "$hidden" \
      "$classes" >"$JOB/model/config.json"
    job_ready=1
  fi
fi
echo
echo "== the MLP job for sections 3 and 4, and its CPU baseline"
echo "MLP job: $features → $hidden → $classes, $rows rows, batch $batch, $epochs epochs" \
  "= $steps_expected steps, AdamW, seed 7"

# train_run NAME DEVICE CMD...: one training run in $WORK/NAME; its exit code.
train_run() {
  local d="$WORK/$1" dev="$2"
  shift 2
  rm -rf "$d"
  mkdir -p "$d/checkpoints"
  env "${job_env[@]}" ARTHA_DEVICE="$dev" ARTHA_CHECKPOINT_DIR="$d/checkpoints" \
    ARTHA_EVENTS="$d/events.jsonl" timeout 300 "$@" >"$d/out.txt" 2>&1
}

# events_check MODE ARGS...: comparisons over events files (prints a line; exit 1 on a mismatch).
#   rate EVENTS                  the steps/s a runtime reported for its training loop
#   same EVENTS_A EVENTS_B N     both complete with N steps; step records and final weights equal
#   batches EVENTS_A EVENTS_B    batch digests equal step for step; largest loss difference
events_check() {
  "$PY" - "$@" <<'PY'
import json, re, sys
mode, *args = sys.argv[1:]
def events(p):
    try:
        return [json.loads(l) for l in open(p)]
    except OSError as e:
        sys.exit(f"no events: {e}")
def steps(p):
    return [e for e in events(p) if e["event"] == "step"]
def complete(p):
    return next((e for e in events(p) if e["event"] == "complete"), None)
if mode == "rate":
    for e in events(args[0]):
        if e["event"] == "log" and e["message"].startswith("trained "):
            print(re.search(r"\(([0-9.]+) steps/s\)", e["message"]).group(1))
            sys.exit(0)
    sys.exit("no rate reported")
if mode == "same":
    a, b, n = steps(args[0]), steps(args[1]), int(args[2])
    ca, cb = complete(args[0]), complete(args[1])
    bad = []
    if len(a) != n or len(b) != n:
        bad.append(f"{len(a)} and {len(b)} steps, {n} expected")
    if ca is None or cb is None:
        bad.append("a run did not complete")
    elif ca["final_weights"] != cb["final_weights"]:
        bad.append("final weights differ")
    diff = [x["step"] for x, y in zip(a, b) if x != y]
    if diff:
        bad.append(f"{len(diff)} step records differ, first at step {diff[0]}")
    print("; ".join(bad) or f"{len(a)} step records and the final weights identical")
    sys.exit(1 if bad else 0)
if mode == "batches":
    a, b = steps(args[0]), steps(args[1])
    same = len(a) == len(b) and all(x["batch_digest"] == y["batch_digest"] for x, y in zip(a, b))
    gap = max((abs(x["loss"] - y["loss"]) for x, y in zip(a, b)), default=float("nan"))
    print(f"batch digests identical: {same}; largest loss difference {gap:.2e}; "
          f"final loss {a[-1]['loss'] if a else 'n/a'} vs {b[-1]['loss'] if b else 'n/a'}")
    sys.exit(0 if same else 1)
PY
}

# The CPU baseline: the release artha-runtime on the same job.
cpu_bin="$(find_bin artha-runtime target/release/artha-runtime -p artha-runtime)"
cpu_rate=""
if [ "$job_ready" = 1 ] && [ -n "$cpu_bin" ]; then
  if train_run native-cpu cpu "$cpu_bin"; then
    cpu_rate="$(events_check rate "$WORK/native-cpu/events.jsonl")"
    fig baseline cpu_binary "$cpu_bin"
    fig baseline cpu_steps_per_s "$cpu_rate ($(nproc) threads)"
  else
    fig baseline cpu_steps_per_s "n/a: the CPU run failed: $(tail -1 "$WORK/native-cpu/out.txt")"
  fi
fi

# ---- 3 candle CUDA ----------------------------------------------------------------------------

echo
echo "== 3 candle: artha-runtime --features cuda, twice on one GPU"
cuda_bin=""
if [ -x "$CARRY/artha-runtime-cuda" ]; then
  cuda_bin="$CARRY/artha-runtime-cuda"
elif [ -x target/gpu-cuda/release/artha-runtime ]; then
  cuda_bin="$ROOT/target/gpu-cuda/release/artha-runtime"
elif [ "$has_cargo" = 1 ] && command -v nvcc >/dev/null 2>&1; then
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)"
  if CUDA_COMPUTE_CAP="$cap" cargo build --release --locked --offline --target-dir target/gpu-cuda \
    -p artha-runtime --features cuda; then
    cuda_bin="$ROOT/target/gpu-cuda/release/artha-runtime"
  fi
fi
# cuda_libs_check BIN: sets cuda_missing to the shared libraries BIN lacks here; where some
# are missing, first adds the CUDA libraries of Python's `nvidia` wheels (the lent machines'
# PyTorch has them) to LD_LIBRARY_PATH.
cuda_libs_check() {
  local dirs="" p
  cuda_missing="$(ldd "$1" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')"
  [ -n "$cuda_missing" ] || return 0
  for p in "$PY" python3; do
    [ -n "$p" ] || continue
    dirs="$("$p" -c 'import nvidia; print(*nvidia.__path__, sep="\n")' 2>/dev/null |
      xargs -r -I{} find {} -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)"
    [ -n "$dirs" ] && break
  done
  if [ -n "$dirs" ]; then
    export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fig candle ld_library_path "$dirs"
    cuda_missing="$(ldd "$1" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')"
  fi
}
if [ "$job_ready" != 1 ]; then
  skip candle "no python with numpy to make the job's data"
elif [ -z "$cuda_bin" ]; then
  if [ "$has_cargo" = 0 ]; then
    skip candle "no CUDA build of artha-runtime carried (--prepare needs nvcc to make one) and no cargo here to build it"
  elif ! command -v nvcc >/dev/null 2>&1; then
    skip candle "no CUDA build of artha-runtime carried and no nvcc here (candle-kernels needs it)"
  else
    fail candle "cargo build --offline -p artha-runtime --features cuda failed"
  fi
elif cuda_libs_check "$cuda_bin"; [ -n "$cuda_missing" ]; then
  skip candle "$cuda_bin needs libraries this machine lacks: $cuda_missing(built for another CUDA version?)"
else
  fig candle binary "$cuda_bin"
  if ! train_run cuda-a cuda "$cuda_bin" || ! train_run cuda-b cuda "$cuda_bin"; then
    echo "   $(tail -3 "$WORK/cuda-a/out.txt" "$WORK/cuda-b/out.txt" 2>/dev/null)"
    fail candle "a CUDA training run failed"
  else
    same="$(events_check same "$WORK/cuda-a/events.jsonl" "$WORK/cuda-b/events.jsonl" "$steps_expected")"
    same_rc=$?
    fig candle determinism "$same"
    gpu_rate_a="$(events_check rate "$WORK/cuda-a/events.jsonl")"
    gpu_rate_b="$(events_check rate "$WORK/cuda-b/events.jsonl")"
    fig candle cuda_steps_per_s "$gpu_rate_a, $gpu_rate_b"
    if [ -n "$cpu_rate" ]; then
      fig candle cpu_steps_per_s "$cpu_rate ($(nproc) threads)"
      fig candle cuda_over_cpu "$("$PY" -c "print(f'{$gpu_rate_b / $cpu_rate:.2f}x')")"
      fig candle vs_cpu "$(events_check batches "$WORK/native-cpu/events.jsonl" "$WORK/cuda-a/events.jsonl")"
    else
      fig candle cpu_steps_per_s "n/a (no CPU baseline)"
    fi
    if [ "$same_rc" = 0 ]; then pass candle; else fail candle "runs differ: $same"; fi
  fi
fi

# ---- 4 torch CUDA -----------------------------------------------------------------------------

echo
echo "== 4 torch: runtimes/torch/train.py with ARTHA_DEVICE=cuda"
torch_py=""
for p in "${ARTHA_TORCH_PYTHON:-}" "$PY" python3; do
  [ -n "$p" ] || continue
  if "$p" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    torch_py="$p"; break
  fi
done
if [ "$job_ready" != 1 ]; then
  skip torch "no python with numpy to make the job's data"
elif [ -z "$torch_py" ]; then
  skip torch "no python whose torch sees a CUDA device (ARTHA_TORCH_PYTHON names one)"
else
  pypath="$ROOT/runtimes/python"
  if ! "$torch_py" -c 'import blake3' >/dev/null 2>&1 && compgen -G "$CARRY/wheels/blake3-*.whl" >/dev/null; then
    "$torch_py" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" \
      "$CARRY"/wheels/blake3-*.whl && pypath="$pypath:$WORK/site"
  fi
  fig torch python "$torch_py ($(PYTHONPATH="$pypath" "$torch_py" -c 'import torch; from artha_runtime import hashing; print("torch", torch.__version__, "cuda", torch.version.cuda, "blake3", hashing.backend())'))"
  ok=1
  for r in torch-a torch-b; do
    if ! train_run "$r" cuda env PYTHONPATH="$pypath" "$torch_py" "$ROOT/runtimes/torch/train.py"; then
      echo "   $(tail -3 "$WORK/$r/out.txt")"; ok=0
    fi
  done
  if [ "$ok" = 0 ]; then
    fail torch "a torch CUDA run failed"
  else
    fig torch cuda_steps_per_s "$(events_check rate "$WORK/torch-a/events.jsonl"), $(events_check rate "$WORK/torch-b/events.jsonl")"
    same="$(events_check same "$WORK/torch-a/events.jsonl" "$WORK/torch-b/events.jsonl" "$steps_expected")"
    same_rc=$?
    fig torch determinism "$same"
    batches_rc=0
    if [ -f "$WORK/native-cpu/events.jsonl" ]; then
      b="$(events_check batches "$WORK/native-cpu/events.jsonl" "$WORK/torch-a/events.jsonl")"
      batches_rc=$?
      fig torch vs_native_cpu "$b"
    else
      fig torch vs_native_cpu "n/a (no CPU baseline)"
    fi
    if [ "$same_rc" != 0 ]; then fail torch "runs differ: $same"
    elif [ "$batches_rc" != 0 ]; then fail torch "batch digests differ from the native runtime's"
    else pass torch; fi
  fi
fi

# ---- summary ----------------------------------------------------------------------------------

echo
echo "== summary"
rc=0
for s in "${names[@]}"; do
  printf '%-10s %s\n' "$s" "${verdict[$s]}"
  printf 'verdict.%s=%s\n' "$s" "${verdict[$s]}" >>"$RES/gpu-results.txt"
  case "${verdict[$s]}" in FAIL*) rc=1 ;; esac
done
if [ -n "$PY" ]; then
  "$PY" - "$RES/gpu-results.txt" "$RES/gpu-results.json" <<'PY'
import json, sys
out = {}
for line in open(sys.argv[1]):
    key, _, value = line.rstrip("\n").partition("=")
    section, _, name = key.partition(".")
    out.setdefault(section, {})[name] = value
json.dump(out, open(sys.argv[2], "w"), indent=2)
PY
fi
echo "results: $RES/gpu-results.txt$( [ -n "$PY" ] && echo " and gpu-results.json"), log $RES/gpu.log; exit $rc"
return "$rc"
}

sections 2>&1 | tee "$RES/gpu.log"
exit "${PIPESTATUS[0]}"
