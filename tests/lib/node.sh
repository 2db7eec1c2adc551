# The Node checks (arthajs). Source it, then call `node_suite`; it returns
# non-zero when a check fails. Under CI=true a missing prerequisite (node,
# npm, cargo) is a failure; otherwise the suite is skipped with a warning.
#
# node_suite:
#   1. @napi-rs/cli into bindings/node/node_modules (git-ignored; `npm ci`
#      when package-lock.json changed since the last install)
#   2. the workspace's binaries (arthai, artha-runtime), examples and the
#      addon, in the dev profile in $ROOT/target, with the workspace's build
#      flags (one shared build; NODE_CARGO_FLAGS overrides them)
#   3. the drift check: index.d.ts and index.js as napi generates them now
#   4. node --test bindings/node/test/
#   5. the behaviour suite (tests/behaviour/run.mjs) when scenarios exist
#   6. examples/node/*.mjs
#   7. a fresh install: `npm pack` (the tarball carries the dev-built
#      addon) installed into a temporary project, then required and used
#
# Every step runs even when an earlier one failed (but for a failed build).

_node_root="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

_node_log() { printf -- '--- node: %s\n' "$*"; }

_node_prereqs() {
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(node)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v cargo >/dev/null 2>&1 || missing+=(cargo)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "node suite: missing prerequisite(s): ${missing[*]}" >&2
    return 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 18 ]; then
    echo "node suite: node >= 18 needed, found $(node --version)" >&2
    return 1
  fi
}

# _node_cli: installs bindings/node's devDependencies (the napi CLI) once
# per package-lock.json.
_node_cli() {
  local dir="$_node_root/bindings/node"
  local stamp="$dir/node_modules/.artha-lock.sha256"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -d "$dir/node_modules/@napi-rs/cli" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
}

_node_fresh_install() {
  local dir="$_node_root/bindings/node" tmp tarball
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  tarball="$(cd "$dir" && npm pack --silent --pack-destination "$tmp")" || return 1
  mkdir -p "$tmp/app" && cd "$tmp/app" || return 1
  npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$tmp/$tarball" || return 1
  cat >check.mjs <<'EOF'
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const { Engine, connect } = createRequire(import.meta.url)('arthajs');
if (typeof connect !== 'function') throw new Error('no connect()');
const home = mkdtempSync(join(tmpdir(), 'arthajs-install-'));
writeFileSync(join(home, 'a.txt'), 'hello\n');
const engine = await Engine.open(join(home, 'engine'));
const pushed = await engine.store.push(join(home, 'a.txt'));
if (!pushed.uri.startsWith('artha://')) throw new Error(`push: ${JSON.stringify(pushed)}`);
await engine.close();
try { await engine.info(); throw new Error('info() after close() worked'); } catch (e) {
  if (e.code !== 'ARTHA_UNAVAILABLE') throw e;
}
rmSync(home, { recursive: true, force: true });
console.log(`installed arthajs works: ${pushed.uri}`);
EOF
  node check.mjs
}

node_suite() {
  local root="$_node_root" rc=0
  if ! _node_prereqs; then
    if [ "${CI:-false}" = "true" ]; then return 1; fi
    echo "warning: skipping the node suite" >&2
    return 0
  fi
  # Where the engine finds the native runtime when the host is node.
  export ARTHA_NATIVE_RUNTIME="${ARTHA_NATIVE_RUNTIME:-$root/target/debug/artha-runtime}"
  local flags
  # shellcheck disable=SC2206
  flags=(${NODE_CARGO_FLAGS:---workspace --locked --features artha-engine/gpu,artha-engine/s3,artha-engine/testing})

  _node_log "napi CLI"
  _node_cli || { echo "node suite: npm ci of bindings/node failed" >&2; return 1; }
  _node_log "build (dev profile; binaries, addon, drift check of index.d.ts and index.js)"
  # One cargo build of the binaries, examples and the addon, with the flags of
  # tests/run.sh's own build, so it shares (rather than redoes) that build.
  local built=0
  node "$root/bindings/node/scripts/build.mjs" --check -- --quiet "${flags[@]}" --lib --bins --examples || built=$?
  case "$built" in
    0) ;;
    3) echo "node suite: index.d.ts or index.js drifted (see the diff above)" >&2; rc=1 ;;
    *) echo "node suite: the build failed" >&2; return 1 ;;
  esac

  _node_log "node --test"
  (cd "$root/bindings/node" && node --test test/*.test.mjs) || rc=1

  if [ -f "$root/tests/behaviour/scenarios.json" ]; then
    _node_log "behaviour suite"
    node "$root/tests/behaviour/run.mjs" || rc=1
  elif [ "${CI:-false}" = "true" ]; then
    echo "node suite: tests/behaviour/scenarios.json is missing" >&2
    rc=1
  fi

  local ex home
  for ex in "$root"/examples/node/*.mjs; do
    _node_log "example $(basename "$ex")"
    home="$(mktemp -d)"
    node "$ex" "$home" || rc=1
    rm -rf "$home"
  done

  _node_log "fresh install (npm pack, install in a temporary project)"
  (_node_fresh_install) || rc=1
  return "$rc"
}
