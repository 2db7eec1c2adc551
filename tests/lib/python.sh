# The arthapy suite (stage `python`). Source it; do not run it.
#
# Installs the package the way a user does, `pip install ./bindings/python`
# (maturin from PyPI as the PEP 517 backend), into the test venv — in the
# dev profile and the workspace's target directory, so it shares the
# workspace's build (a user's install builds in release). Then: the stub
# drift check, the binding's own tests, the behaviour suite and the
# Python example.

# python_suite: returns non-zero on any failure.
python_suite() {
  local root="$ARTHA_ROOT" py="$ARTHA_VENV/bin/python"
  # A stray extension copied into the source tree by hand would shadow the
  # build in the wheel.
  rm -f "$root"/bindings/python/python/arthapy/_native*.so
  CARGO_TARGET_DIR="$root/target" MATURIN_PEP517_ARGS="--profile dev" \
    "$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$root/bindings/python" || { echo "python: pip install ./bindings/python failed" >&2; return 1; }
  local env=(ARTHA_NATIVE_RUNTIME="$root/target/debug/artha-runtime" ARTHAI="$root/target/debug/arthai")
  (cd "$root" && env "${env[@]}" "$py" bindings/python/stubgen.py --check) &&
    (cd "$root" && env "${env[@]}" "$py" -m pytest -q -p no:cacheprovider bindings/python/tests) &&
    (cd "$root" && env "${env[@]}" "$py" tests/behaviour/run.py) &&
    (cd "$root" && env "${env[@]}" "$py" examples/python/quickstart.py >/dev/null)
}
