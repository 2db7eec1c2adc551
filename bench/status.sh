#!/usr/bin/env bash
# Status reads of a long job (issue 13), figures in docs/BENCHMARKS.md.
#
#   bash bench/status.sh [--steps 60000] [--runs 5]
#
# A job of --steps steps (the scriptable test runtime `artha-testrt`, so the
# steps cost nothing and the events file is what a real long run leaves:
# one JSON line per step) runs to its end. Then, while another `arthai`
# process holds the home (a second, sleeping job), `arthai job-status` of
# the finished job is timed from a second shell: the read-only view of the
# home (one ledger read with the progress persisted with the job). Peers in
# the same run: `tail -n 1` and `wc -l` of the job's events file (the least
# a reader of the events could do), and the same status through the
# engine (the home free: `arthai` opens it). Release build; median of --runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEPS=60000
RUNS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
cargo build --quiet --locked --release -p arthai -p artha-testrt
BIN="$ROOT/target/release/arthai"
export ARTHA_NATIVE_RUNTIME="$ROOT/target/release/artha-testrt"
DIR="$(mktemp -d)"
HOLDER=""
trap '[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null; rm -rf "$DIR"' EXIT
H="$DIR/home"
echo "rustc: $(rustc --version); $(nproc) cores; $(uname -r); steps $STEPS, runs $RUNS"

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_ms() { local t0; t0=$(now_ms); "$@" >/dev/null 2>&1; echo $(( $(now_ms) - t0 )); }

printf 'x0,x1,label\n0,1,0\n1,0,1\n' >"$DIR/d.csv"
DS=$("$BIN" --home "$H" --json dataset-register "$DIR/d.csv" --name d | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
spec() {
  cat <<JSON
{"kind":"train","runtime":{"native":"mlp"},"dataset":"$DS","budget":"100 ARTH",
 "hyper":{"epochs":1,"batch_size":1,"learning_rate":0.1,"seed":1,"extra":{"script":"$1"}},
 "resources":{"gpus":0,"cpu_millis":1000,"memory_mib":512,"max_duration_secs":3600},"proof_window":1000}
JSON
}
spec "steps $STEPS complete" >"$DIR/long.json"
t0=$(now_ms)
JOB=$("$BIN" --home "$H" --json train --spec "$DIR/long.json" | sed -n 's/.*"job_id": *"\([^"]*\)".*/\1/p' | head -1)
echo "job $JOB: $STEPS steps run, proved and committed in $(( $(now_ms) - t0 )) ms"
EVENTS="$H/jobs/run/$JOB/artha/events.jsonl"
echo "events file: $(wc -c <"$EVENTS") bytes, $(wc -l <"$EVENTS") lines"

# The home free: `arthai` opens the engine (home lock, ledger, chain).
eng=(); for _ in $(seq "$RUNS"); do eng+=("$(time_ms "$BIN" --home "$H" --json job-status "$JOB")"); done

# The home held by another process: a second job that sleeps.
spec "sleep 600000" >"$DIR/hold.json"
"$BIN" --home "$H" train --spec "$DIR/hold.json" >/dev/null 2>&1 &
HOLDER=$!
for _ in $(seq 100); do
  "$BIN" --home "$H" --json job-status "$JOB" 2>&1 | grep -q 'another arthai process' && break
  sleep 0.1
done
view=(); tailr=(); wcr=()
for _ in $(seq "$RUNS"); do
  view+=("$(time_ms "$BIN" --home "$H" --json job-status "$JOB")")
  tailr+=("$(time_ms tail -n 1 "$EVENTS")")
  wcr+=("$(time_ms wc -l "$EVENTS")")
done
"$BIN" --home "$H" --json job-status "$JOB" 2>/dev/null | grep -q "\"step\": $STEPS" ||
  { echo "status did not report step $STEPS" >&2; exit 1; }

printf '%-48s %8s\n' "read" "median ms"
printf '%-48s %8s\n' "job-status, home held by another arthai (view)" "$(printf '%s\n' "${view[@]}" | median)"
printf '%-48s %8s\n' "job-status, home free (opens the engine)" "$(printf '%s\n' "${eng[@]}" | median)"
printf '%-48s %8s\n' "peer: tail -n 1 events.jsonl" "$(printf '%s\n' "${tailr[@]}" | median)"
printf '%-48s %8s\n' "peer: wc -l events.jsonl" "$(printf '%s\n' "${wcr[@]}" | median)"
