#!/usr/bin/env bash
# `arthai serve` under a loopback load generator (wrk, Debian) side by side
# with the same calls on the embedded engine (issue 14), figures in
# docs/BENCHMARKS.md.
#
#   bash bench/serve.sh [SECONDS]
#
# Release builds. Calls:
# - GET /job/{id}/status of a finished job vs Engine::status;
# - POST /ai/train?hold=true (checked, estimated, recorded; not started)
#   vs Engine::submit_estimated(spec, hold). The engine's own credential
#   admits 600 submissions a minute, so each submission run makes 500, on
#   a fresh home.
# With 1 caller (one connection) and 4 (four keep-alive connections).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECS="${1:-10}"
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
cargo build --quiet --locked --release -p arthai
cargo build --quiet --locked --release -p artha-engine --features gpu,s3 --example api_bench
ARTHAI="$ROOT/target/release/arthai"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
echo "rustc: $(rustc --version); $(nproc) cores; $(uname -r); $(wrk --version 2>&1 | head -1)"

echo "== embedded (artha-engine/examples/api_bench)"
for c in 1 4; do
  "$ROOT/target/release/examples/api_bench" "$TMP/embedded-$c" "$ARTHAI" --status 20000 --submits 500 --callers "$c"
done

# serve HOME: starts a daemon (no rate limit), sets URL and TOKEN.
serve() {
  "$ARTHAI" --home "$1" --json serve --addr 127.0.0.1:0 --rate-limit 0 >"$1.serve" &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$1.serve" ] && break; sleep 0.1; done
  URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$1.serve")"
  TOKEN="$(cat "$1/serve.token")"
}

printf 'x0,x1,label\n' >"$TMP/bench.csv"
for i in $(seq 0 63); do printf '%s.%s,%s.5,%s\n' $(( (i % 2) * 2 )) $(( i % 7 )) $(( 1 - i % 2 )) $(( i % 2 )) >>"$TMP/bench.csv"; done
SPEC_DS() { printf '{"runtime":{"native":"mlp"},"dataset":"%s","hyper":{"epochs":1,"batch_size":16},"resources":{"max_duration_secs":120}}' "$1"; }

echo "== daemon: GET /job/{id}/status (wrk, ${SECS}s)"
serve "$TMP/status"
DS="$("$ARTHAI" --home "$TMP/status" dataset-register "$TMP/bench.csv" --name bench)"
JOB="$("$ARTHAI" --home "$TMP/status" train --data "$DS" --epochs 1 --batch 16 --max-duration 120 --detach)"
"$ARTHAI" --home "$TMP/status" job-status "$JOB" --wait >/dev/null
for c in 1 4; do
  echo "-- callers $c"
  wrk -t1 -c"$c" -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/job/$JOB/status" |
    grep -E "Requests/sec|^ +(50|99)%|Non-2xx"
done

for c in 1 4; do
  echo "== daemon: POST /ai/train?hold=true, 500 requests, callers $c (wrk)"
  serve "$TMP/submit-$c"
  DS="$("$ARTHAI" --home "$TMP/submit-$c" dataset-register "$TMP/bench.csv" --name bench)"
  cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$(SPEC_DS "$DS")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local n = 0
local limit = math.floor(500 / $c)
response = function(status, headers, body)
  n = n + 1
  if n >= limit then wrk.thread:stop() end
end
LUA
  # wrk runs for its whole -d once the threads stop, so its Requests/sec
  # is not the rate: with C closed-loop callers the rate is C / mean
  # latency.
  wrk -t"$c" -c"$c" -d60s --latency -s "$TMP/post.lua" "$URL/ai/train?hold=true" >"$TMP/wrk.out"
  grep -E "requests in|^ +(50|99)%|Non-2xx" "$TMP/wrk.out"
  awk -v c="$c" '$1 == "Latency" && $2 ~ /^[0-9]/ {
      v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
      ms = (u == "us") ? v / 1000 : (u == "ms") ? v : v * 1000;
      printf "  mean %.3f ms -> %.0f requests/s (callers / mean latency)\n", ms, c * 1000 / ms }' "$TMP/wrk.out"
done
