#!/usr/bin/env bash
# Storage benchmark (issue 4), figures recorded in docs/BENCHMARKS.md:
#   - ingest of a 1 GiB file into the local store vs `b3sum` on the same file
#     in the same run, with the same thread count (and chunk sizes 1/2/4 MiB);
#   - a second push of the same file (must write 0 bytes);
#   - materialize of a 10 000-file tree vs `cp -a`.
#
#   bash bench/store.sh [--size-mib 1024] [--files 10000] [--runs 3] [--chunk-mib 1,2,4]
#
# Installs Debian's `b3sum` if missing; builds in release mode (cargo bench).
# Work files go to $ARTHA_BENCH_DIR (default target/bench-store, on the same
# filesystem as a default engine home would be); about 3 GiB free space needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"
command -v b3sum >/dev/null 2>&1 || apt_install b3sum || {
  echo "cannot install b3sum (Debian package b3sum)" >&2
  exit 1
}
DIR="${ARTHA_BENCH_DIR:-$ROOT/target/bench-store}"
mkdir -p "$DIR"
echo "b3sum: $(b3sum --version); rustc: $(rustc --version); $(nproc) cores; $(uname -r)"
cargo bench --locked -p artha-engine --bench store -- --dir "$DIR" "$@"
