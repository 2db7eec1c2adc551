# artha-wasm in Node and in headless Chromium. Source it; call wasm_suite.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Where wasm-bindgen writes the packages (git-ignored): pkg/node
# (--target nodejs) and pkg/web (--target web).
ARTHA_WASM_PKG_DIR="${ARTHA_WASM_PKG_DIR:-$ARTHA_ROOT/bindings/wasm/pkg}"

# _wasm_missing WHAT: a missing prerequisite fails under CI=true, and is
# reported and skipped otherwise.
_wasm_missing() {
  if [ "${CI:-false}" = "true" ]; then
    echo "wasm_suite: missing prerequisite: $1" >&2
    return 1
  fi
  echo "wasm_suite: SKIP (missing prerequisite: $1; under CI=true this fails)" >&2
  return 0
}

# wasm_bindgen_cli: prints the path of wasm-bindgen-cli at exactly the
# version artha-wasm pins, installing it under $ARTHA_CACHE once.
wasm_bindgen_cli() {
  local ver root
  ver="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$ARTHA_ROOT/bindings/wasm/Cargo.toml")"
  [ -n "$ver" ] || { echo "wasm_bindgen_cli: no exact wasm-bindgen pin in bindings/wasm/Cargo.toml" >&2; return 1; }
  root="$ARTHA_CACHE/wasm-bindgen-$ver"
  if [ ! -x "$root/bin/wasm-bindgen" ]; then
    echo "installing wasm-bindgen-cli $ver into $root" >&2
    # --locked first; the registry this machine sees may lack a locked
    # dependency's newest patch release, then resolve afresh.
    cargo install wasm-bindgen-cli --version "$ver" --locked --root "$root" >&2 ||
      cargo install wasm-bindgen-cli --version "$ver" --root "$root" >&2 || return 1
  fi
  "$root/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $ver" || {
    echo "wasm_bindgen_cli: $root/bin/wasm-bindgen is not version $ver" >&2
    return 1
  }
  echo "$root/bin/wasm-bindgen"
}

# wasm_build: builds artha-wasm for wasm32 (dev profile: it shares the
# wasm32 build of artha-core and is fast enough for tests) and generates
# both packages.
wasm_build() {
  local cli="$1" wasm
  cargo build -p artha-wasm --target wasm32-unknown-unknown --locked || return 1
  wasm="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/wasm32-unknown-unknown/debug/artha_wasm.wasm"
  rm -rf "$ARTHA_WASM_PKG_DIR"
  "$cli" --target nodejs --out-dir "$ARTHA_WASM_PKG_DIR/node" "$wasm" || return 1
  "$cli" --target web --out-dir "$ARTHA_WASM_PKG_DIR/web" "$wasm" || return 1
}

# wasm_node_tests: node --test against pkg/node.
wasm_node_tests() {
  ARTHA_WASM_PKG="$ARTHA_WASM_PKG_DIR/node" \
    node --test "$ARTHA_ROOT/bindings/wasm/tests/node/artha_wasm.test.mjs"
}

# _wasm_serve: a static server for the repository on 127.0.0.1 (a free
# port) with the MIME types modules and WebAssembly need; sets
# _WASM_PORT and _WASM_SERVER_PID.
_wasm_serve() {
  local portfile i
  portfile="$(mktemp)"
  (cd "$ARTHA_ROOT" && exec python3 -c '
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm", ".js": "text/javascript",
        ".mjs": "text/javascript", ".json": "application/json"}
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
' "$portfile") &
  _WASM_SERVER_PID=$!
  for i in $(seq 1 50); do
    _WASM_PORT="$(cat "$portfile" 2>/dev/null)"
    [ -n "$_WASM_PORT" ] && break
    sleep 0.1
  done
  rm -f "$portfile"
  [ -n "$_WASM_PORT" ] || { echo "wasm_suite: the static server did not start" >&2; return 1; }
}

# _wasm_page QUERY: the DOM of examples/browser/?QUERY after headless
# Chromium ran it.
_wasm_page() {
  local profile out
  profile="$(mktemp -d)"
  out="$(timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=10000 \
    --dump-dom "http://127.0.0.1:$_WASM_PORT/examples/browser/index.html?$1" 2>/dev/null)"
  rm -rf "$profile"
  printf '%s' "$out"
}

# wasm_browser_test: the example page's self-test in headless Chromium must
# say PASS, and with one vector tampered FAIL (so the test can fail).
wasm_browser_test() {
  local rc=0 ctype dom
  _wasm_serve || return 1
  ctype="$(curl -sI "http://127.0.0.1:$_WASM_PORT/bindings/wasm/pkg/web/artha_wasm_bg.wasm" |
    tr -d '\r' | sed -n 's/^[Cc]ontent-[Tt]ype: *//p')"
  if [ "$ctype" != "application/wasm" ]; then
    echo "wasm_suite: .wasm served as '$ctype', not application/wasm" >&2
    rc=1
  fi
  if [ $rc -eq 0 ]; then
    dom="$(_wasm_page selftest)"
    if printf '%s' "$dom" | grep -Eq '<pre id="selftest">PASS [0-9]+</pre>'; then
      printf '%s\n' "$dom" | grep -Eo 'PASS [0-9]+' | sed 's/^/browser self-test: /'
    else
      echo "wasm_suite: browser self-test did not pass:" >&2
      printf '%s\n' "$dom" | sed -n '/id="selftest"/,/<\/pre>/p' >&2
      rc=1
    fi
  fi
  # The page checks its sample spec on load: the problems are listed by field.
  if [ $rc -eq 0 ] && ! printf '%s' "$dom" | grep -q '<li class="bad">resources.gpus: '; then
    echo "wasm_suite: the example page did not list the sample spec's problem with resources.gpus" >&2
    rc=1
  fi
  if [ $rc -eq 0 ]; then
    dom="$(_wasm_page 'selftest&tamper')"
    if printf '%s' "$dom" | grep -Eq '<pre id="selftest">FAIL [0-9]+ of [0-9]+' &&
      printf '%s' "$dom" | grep -q '^step_records\[0\] leaf: got'; then
      echo "browser self-test with a tampered vector: FAIL as expected"
    else
      echo "wasm_suite: the tampered self-test did not report the wrong vector:" >&2
      printf '%s\n' "$dom" | sed -n '/id="selftest"/,/<\/pre>/p' >&2
      rc=1
    fi
  fi
  kill "$_WASM_SERVER_PID" 2>/dev/null
  wait "$_WASM_SERVER_PID" 2>/dev/null
  return $rc
}

# wasm_suite: installs wasm-bindgen-cli (the pinned version) and Debian
# chromium when missing, builds artha-wasm and both packages, runs the
# Rust fixture test, the Node tests and the browser self-test. Non-zero on
# any failure.
wasm_suite() {
  local cli rc=0
  command -v node >/dev/null 2>&1 || { _wasm_missing node; return; }
  command -v curl >/dev/null 2>&1 || apt_install curl || { _wasm_missing curl; return; }
  cli="$(wasm_bindgen_cli)" || { _wasm_missing wasm-bindgen-cli; return; }
  # The credential fixture the JS tests use is what artha-core signs.
  cargo test -p artha-wasm --locked --test fixtures -q || return 1
  wasm_build "$cli" || return 1
  wasm_node_tests || rc=1
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium || true
  fi
  if [ -x /usr/bin/chromium ]; then
    wasm_browser_test || rc=1
  else
    _wasm_missing chromium || rc=1
  fi
  return $rc
}
