#!/usr/bin/env bash
# Tests of the Python runtime side: the artha_runtime helper (vectors, events, environment,
# checkpoints, data, RNG) and the torch image running train.py under Docker, hardened like the
# engine's Docker executor, checked against the native runtime.
#
#   bash runtimes/torch/test.sh          # from anywhere; CI=true makes every skip a failure
#
# Installs what is missing (the test venv, dockerd, debootstrap), builds the torch image once per
# machine (tests/lib/torch_image.sh, ~2 min the first time) and the native runtime (cargo), then
# runs pytest on runtimes/python/tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../tests/lib/torch_image.sh
. tests/lib/torch_image.sh

ensure_venv
docker_up
ARTHA_TORCH_IMAGE="$(torch_image)"
export ARTHA_TORCH_IMAGE
echo "torch image: $ARTHA_TORCH_IMAGE"
cargo build --quiet --locked -p artha-runtime
export ARTHA_NATIVE_RUNTIME="$ROOT/target/debug/artha-runtime"
exec "$ARTHA_VENV/bin/python" -m pytest -q runtimes/python/tests "$@"
