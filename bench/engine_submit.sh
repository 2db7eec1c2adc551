#!/usr/bin/env bash
# Engine::submit and a whole job's life as the engine's history grows
# (issue 13), figures in docs/BENCHMARKS.md.
#
#   bash bench/engine_submit.sh [--points 10,10000] [--samples 20]
#
# Release build. Jobs of one step on the scriptable test runtime
# (artha-testrt), one after the other, settled every 100 (see
# artha-engine/examples/engine_submit.rs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --quiet --locked --release -p artha-testrt
cargo build --quiet --locked --release -p artha-engine --features gpu,s3 --example engine_submit
echo "rustc: $(rustc --version); $(nproc) cores; $(uname -r)"
"$ROOT/target/release/examples/engine_submit" "$ROOT/target/release/artha-testrt" "$@"
