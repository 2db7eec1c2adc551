#!/usr/bin/env bash
# Verifiable compute figures (docs/BENCHMARKS.md, issue 15):
#   1. detection of a node faking 10 % of its windows, over 20 000 simulated
#      audits per row, against 1 − (1 − f)^m and the exact probability;
#   2. an audit by replay against the training it checks (8 and 44 windows
#      drawn from the chain's seed, and every window), release builds;
#   3. the time from a challenge to its resolution by a jury of three on
#      the embedded chain (each juror replays the disputed window).
# Usage: bash bench/verify.sh [ROWS EPOCHS WINDOW HIDDEN]   (default 4096 16 2 256,256)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS="${1:-4096}" EPOCHS="${2:-16}" WINDOW="${3:-2}" HIDDEN="${4:-256,256}"
cargo build --release --offline -q -p artha-runtime -p artha-testrt
cargo build --release --offline -q -p artha-core --example detection
cargo build --release --offline -q -p artha-engine --example verify_bench
./target/release/examples/detection
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
./target/release/examples/verify_bench "$home" "$ROWS" "$EPOCHS" "$WINDOW" "$HIDDEN" "$PWD/target/release/artha-cheat"
