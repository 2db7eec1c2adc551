#!/usr/bin/env bash
# Engine benchmark (issue 8), figures recorded in docs/BENCHMARKS.md: what
# the whole job lifecycle costs on top of the training itself.
#
#   bash bench/engine.sh [--runs 5] [--epochs 3]
#
# Peer, in the same run and on the same data and hyper-parameters: the
# native runtime run bare (`arthai runtime train` with the protocol's
# environment, no engine). Measured: `arthai train` end to end — policy,
# chain submit + assign, placement, staging from the SVDB, the run, every
# checkpoint pushed to the store, proofs built and stored, commit and model
# registration on the embedded chain — and `arthai quickstart` on a fresh
# home (which also deploys the contracts). Release build; median of --runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS=5
EPOCHS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
cargo build --quiet --locked --release -p arthai
BIN="$ROOT/target/release/arthai"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
echo "rustc: $(rustc --version); $(nproc) cores; $(uname -r); runs $RUNS, epochs $EPOCHS"

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# A fresh home per quickstart (contract deployment included).
qs=()
for i in $(seq "$RUNS"); do
  t0=$(now_ms)
  "$BIN" --home "$DIR/qs-$i" quickstart >/dev/null 2>&1
  qs+=($(( $(now_ms) - t0 )))
done

# One home, one dataset; N trainings through the engine.
HOME_DIR="$DIR/home"
"$BIN" --home "$HOME_DIR" quickstart >/dev/null 2>&1
DATA="$HOME_DIR/quickstart/data.csv"
DS=$("$BIN" --home "$HOME_DIR" --json dataset-register "$DATA" --name bench |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
eng=()
for i in $(seq "$RUNS"); do
  t0=$(now_ms)
  "$BIN" --home "$HOME_DIR" train --dataset "$DS" --epochs "$EPOCHS" --batch-size 32 \
    --learning-rate 0.05 --seed "$i" --proof-window 16 --gpus 1 >/dev/null 2>&1
  eng+=($(( $(now_ms) - t0 )))
done

# The bare runtime on the same data and settings.
bare=()
for i in $(seq "$RUNS"); do
  run="$DIR/bare-$i"
  mkdir -p "$run/data" "$run/ckpt" "$run/artha"
  cp "$DATA" "$run/data/data.csv"
  t0=$(now_ms)
  env -i PATH=/usr/bin:/bin ARTHA_JOB_KIND=train EPOCHS="$EPOCHS" BATCH_SIZE=32 LEARNING_RATE=0.05 \
    ARTHA_SEED="$i" ARTHA_PROOF_WINDOW=16 ARTHA_MODEL_KIND=mlp \
    ARTHA_EVENTS="$run/artha/events.jsonl" ARTHA_DATA_DIR="$run/data" \
    ARTHA_CHECKPOINT_DIR="$run/ckpt" "$BIN" runtime train >/dev/null 2>&1
  bare+=($(( $(now_ms) - t0 )))
done

q=$(printf '%s\n' "${qs[@]}" | median)
e=$(printf '%s\n' "${eng[@]}" | median)
b=$(printf '%s\n' "${bare[@]}" | median)
echo "quickstart (fresh home, deploy included): median ${q} ms  [${qs[*]}]"
echo "arthai train (whole lifecycle):           median ${e} ms  [${eng[*]}]"
echo "bare runtime (same data and settings):    median ${b} ms  [${bare[*]}]"
awk -v e="$e" -v b="$b" 'BEGIN { printf "engine overhead per job: %.0f ms (%.1fx the bare run)\n", e - b, e / b }'
