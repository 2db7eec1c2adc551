#!/usr/bin/env bash
# What a binding call adds (issue 16): the same calls on the Rust
# `Connection` in-process (artha-engine/examples/binding_bench.rs), through
# arthapy (bench/bindings_bench.py) and through arthajs
# (bench/bindings_bench.mjs), each on a fresh home:
# `store.push` of N small files, one call each, and `job.status` of one
# (held) job ×M. Release builds. Figures in docs/BINDINGS.md and
# docs/BENCHMARKS.md.
#
#   bash bench/bindings.sh [FILES] [STATUS_CALLS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FILES="${1:-1000}"
CALLS="${2:-10000}"
VENV="${ARTHA_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/artha/bench-venv}"
cargo build --quiet --locked --release -p artha-engine --example binding_bench
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
(cd bindings/node && npm ci --silent --no-audit --no-fund && node scripts/build.mjs --release)
CARGO_TARGET_DIR="$ROOT/target" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  --force-reinstall --no-deps ./bindings/python
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/files"
for i in $(seq 1 "$FILES"); do printf 'x0,x1,label\n%d,%d,%d\n' "$i" "$((i * 7))" "$((i % 2))" >"$TMP/files/f$i.csv"; done
echo "rustc: $(rustc --version); $(nproc) cores; $("$VENV/bin/python" --version); node $(node --version)"
printf '%-8s %-12s %7s %9s %12s\n' binding call calls total_s per_call_us
"$ROOT/target/release/examples/binding_bench" "$TMP/rust" "$TMP/files" --status "$CALLS" | sed 's/^/rust     /'
"$VENV/bin/python" bench/bindings_bench.py "$TMP/python" "$TMP/files" --status "$CALLS" | sed 's/^/python   /'
node bench/bindings_bench.mjs "$TMP/node" "$TMP/files" --status "$CALLS" | sed 's/^/node     /'
