#!/usr/bin/env bash
# Native runtime vs the PyTorch runtime: training steps/s on the same model, data, seed and
# hyper-parameters, measured in the same run (docs/BENCHMARKS.md, "Runtimes: native vs torch").
#
#   bash bench/runtimes.sh [--model mlp|lm] [--runs N] [--epochs N] [--threads "1 2"]
#                          [--hidden W] [--batch B] [--layers N] [--seq L] [--native PATH]
#
# --model mlp (default): an MLP 784 → W (128) → 10 on 8192 rows, batch 64.
# --model lm: the llama LM of runtimes/LM.md, byte tokens, hidden_size W (128), N (2) layers of
# 4 heads, L (64)-token examples, batch B (16), over ~51 KB of text (800 examples: 50 steps an
# epoch), AdamW.
# --native PATH: time that artha-runtime binary instead of building the release one.
#
# Both runtimes record every step as a job does (gradient, weight and batch digests, events
# file, a checkpoint every 100 steps). The rate compared is each runtime's own report of its
# training loop ("trained N steps in S s (R steps/s)" in its events), so neither start-up (Python
# and torch import, the container) nor data loading counts; whole-run wall times are printed
# too. Runs alternate native/torch (order flipped each round) and the ratio is the median of
# the per-round ratios. The native binary is the release build; the torch runtime runs in the
# Debian-built torch image under Docker (tests/lib/torch_image.sh), hardened like a job.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../tests/lib/torch_image.sh
. tests/lib/torch_image.sh

model=mlp runs=3 epochs="" threads="1 2" hidden=128 batch="" rows=8192 features=784 classes=10
layers=2 seq=64 lm_rows=800 native=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --hidden) hidden="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    --native) native="$2"; shift 2 ;;
    *) echo "usage: bench/runtimes.sh [--model mlp|lm] [--runs N] [--epochs N] [--threads \"1 2\"] [--hidden W] [--batch B] [--layers N] [--seq L] [--native PATH]" >&2
       exit 2 ;;
  esac
done
case "$model" in
  mlp) epochs="${epochs:-4}" batch="${batch:-64}" ;;
  lm) epochs="${epochs:-2}" batch="${batch:-16}" ;;
  *) echo "bench/runtimes.sh: --model is mlp or lm" >&2; exit 2 ;;
esac

ensure_venv
docker_up
image="$(torch_image)"
if [ -z "$native" ]; then
  cargo build --quiet --release --locked -p artha-runtime
  native="$ROOT/target/release/artha-runtime"
fi
py="$ARTHA_VENV/bin/python"

work="$ROOT/target/bench-runtimes"
rm -rf "$work"
mkdir -p "$work/model" "$work/data"
if [ "$model" = lm ]; then
# English-like text: random words of a small vocabulary, $lm_rows examples of $seq bytes (+1).
"$py" - "$work/data/train.txt" "$((lm_rows * seq + 1))" <<'PY'
import sys
import numpy as np
path, n = sys.argv[1], int(sys.argv[2])
words = ("the of and to in is was that for on with as by at from his her they which this be "
         "are not have one had were all there when an their would what so up out if about "
         "who them then she into time more these two may first water been called over").split()
r = np.random.default_rng(11)
text = ""
while len(text) <= n:
    text += " ".join(words[i] for i in r.integers(0, len(words), 4096)) + ". "
open(path, "w").write(text[:n])
PY
printf '{"kind": "llama", "hidden_size": %s, "num_hidden_layers": %s, "num_attention_heads": 4, "max_position_embeddings": %s}\n' \
  "$hidden" "$layers" "$seq" >"$work/model/config.json"
else
# $classes well-separated classes in $features dimensions, as x.npy / y.npy (both runtimes read NPY).
"$py" - "$work/data" "$rows" "$features" "$classes" <<'PY'
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
printf '{"kind": "mlp", "task": "classify", "hidden": [%s], "classes": %s}\n' "$hidden" "$classes" \
  >"$work/model/config.json"
fi
chmod -R a+rX "$work/model" "$work/data"

job_env=(EPOCHS="$epochs" BATCH_SIZE="$batch" LEARNING_RATE=0.001 ARTHA_SEED=7 ARTHA_PROOF_WINDOW=100
  ARTHA_LOG_EVERY=0 ARTHA_JOB_ID=bench)
if [ "$model" = lm ]; then job_env+=(ARTHA_SEQ_LEN="$seq"); fi

# fresh DIR: empty, container-writable checkpoint and events directories under DIR.
fresh() {
  rm -rf "$1"
  mkdir -p "$1/checkpoints" "$1/artha"
  chmod 777 "$1/checkpoints" "$1/artha"
}

# rate EVENTS: the steps/s a runtime reported for its training loop.
rate() {
  "$py" -c '
import json, re, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev["event"] == "log" and ev["message"].startswith("trained "):
        print(re.search(r"\(([0-9.]+) steps/s\)", ev["message"]).group(1)); break
else:
    sys.exit("no rate reported in " + sys.argv[1])' "$1"
}

run_native() { # DIR THREADS
  fresh "$1"
  env "${job_env[@]}" RAYON_NUM_THREADS="$2" ARTHA_MODEL_DIR="$work/model" ARTHA_DATA_DIR="$work/data" \
    ARTHA_CHECKPOINT_DIR="$1/checkpoints" ARTHA_EVENTS="$1/artha/events.jsonl" "$native" >"$1/out.txt"
}

run_torch() { # DIR THREADS
  fresh "$1"
  local e=() kv
  for kv in "${job_env[@]}"; do e+=(-e "$kv"); done
  docker run --rm --network none --read-only --tmpfs /tmp:rw,noexec,nosuid,size=64m --cap-drop ALL \
    --security-opt no-new-privileges --user 65534:65534 \
    -v "$work/model:/model:ro" -v "$work/data:/data:ro" -v "$1/checkpoints:/checkpoints:rw" \
    -v "$1/artha:/artha:rw" -e ARTHA_EVENTS=/artha/events.jsonl -e ARTHA_THREADS="$2" "${e[@]}" \
    "$image" >"$1/out.txt"
}

timed() { # FN DIR THREADS -> prints wall seconds
  local t0 t1
  t0="$(date +%s.%N)"
  "$@"
  t1="$(date +%s.%N)"
  "$py" -c "print(f'{$t1 - $t0:.2f}')"
}

if [ "$model" = lm ]; then
  echo "LM (llama, byte tokens) hidden $hidden, $layers layers × 4 heads, $seq-token examples, batch $batch," \
    "$epochs epochs of $(((lm_rows + batch - 1) / batch)) steps, AdamW;"
else
  echo "MLP $features → $hidden → $classes, batch $batch, $epochs epochs of $((rows / batch)) steps, AdamW;"
fi
echo "native: $native; torch: $image ($(docker run --rm --entrypoint python3 "$image" -c 'import torch; print("torch", torch.__version__)'))"
summary=()
for t in $threads; do
  ratios=()
  printf '\nthreads %s\n%-6s %14s %14s %8s %12s %12s\n' "$t" round "native st/s" "torch st/s" ratio \
    "native wall" "torch wall"
  for r in $(seq 1 "$runs"); do
    if [ $((r % 2)) -eq 1 ]; then
      wn="$(timed run_native "$work/native" "$t")"
      wt="$(timed run_torch "$work/torch" "$t")"
    else
      wt="$(timed run_torch "$work/torch" "$t")"
      wn="$(timed run_native "$work/native" "$t")"
    fi
    n="$(rate "$work/native/artha/events.jsonl")"
    p="$(rate "$work/torch/artha/events.jsonl")"
    ratio="$("$py" -c "print(f'{$n / $p:.2f}')")"
    ratios+=("$ratio")
    printf '%-6s %14s %14s %7sx %11ss %11ss\n' "$r" "$n" "$p" "$ratio" "$wn" "$wt"
  done
  median="$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
  summary+=("threads $t: native/torch steps/s ratio, median of $runs: ${median}x")
done

# Same job, same batches: the runtimes' batch digests agree step for step.
"$py" - "$work/native/artha/events.jsonl" "$work/torch/artha/events.jsonl" <<'PY'
import json, sys
def steps(p):
    return [e for e in map(json.loads, open(p)) if e["event"] == "step"]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
same = len(a) == len(b) and all(x["batch_digest"] == y["batch_digest"] for x, y in zip(a, b))
gap = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
print(f"\nsteps: {len(a)} native, {len(b)} torch; batch digests identical: {same}; "
      f"largest loss difference {gap:.2e}; final loss native {a[-1]['loss']:.4f}, torch {b[-1]['loss']:.4f}")
sys.exit(0 if same else 1)
PY
printf '%s\n' "${summary[@]}"
