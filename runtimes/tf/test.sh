#!/usr/bin/env bash
# The TensorFlow image (artha/tf:<recipe hash>) running runtimes/tf/train.py under Docker, hardened like
# the engine's Docker executor, checked against the native runtime: valid events, losses and batch
# digests step for step, checkpoints crossing over both ways, exit codes and error events on bad
# input (runtimes/images/test_py_images.py).
#
#   bash runtimes/tf/test.sh [PYTEST ARGS]   # from anywhere; CI=true makes every skip a failure
#
# Installs what is missing (the test venv, dockerd, debootstrap), builds the image once per machine
# (tests/lib/py_images.sh) and the native runtime (cargo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../tests/lib/py_images.sh
. tests/lib/py_images.sh
py_image_test tf "$@"
