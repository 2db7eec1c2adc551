#!/usr/bin/env bash
# Embedded chain benchmark, figures recorded in docs/BENCHMARKS.md
# ("Embedded chain: cost per transaction"): the latency of `submit_job` and
# `assign` on an EmbeddedEvm persisted in a temporary directory, at 10 and
# at 10 000 prior jobs (median, p95 and max of 50 samples at each point),
# plus the time to reopen the chain and its size on disk.
#
#   bash bench/chain.sh [--points 10,10000] [--samples 50]
#
# Builds in release mode. Work files go to $ARTHA_BENCH_DIR (default
# target/bench-chain, on the same filesystem as a default engine home) and
# are removed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIR="${ARTHA_BENCH_DIR:-$ROOT/target/bench-chain}"
mkdir -p "$DIR"
echo "rustc: $(rustc --version); $(nproc) cores; $(uname -r); $(df -T "$DIR" | awk 'NR==2 {print $2}') at $DIR"
cargo run --locked --release -p artha-engine --example chain_growth -- --dir "$DIR" "$@"
