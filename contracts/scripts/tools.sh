# shellcheck shell=bash
# Sourced by the contract scripts: FORGE and ANVIL point at the native
# binaries that npm installed (@foundry-rs/<tool>-<os>-<arch>).
#
# Not node_modules/.bin/<tool>: that Node shim of @foundry-rs 1.7.1 does not
# pass the tool's exit status on (it exits 0 even when tests fail), so a
# script calling it would never notice a failure.

# foundry_bin TOOL: the path of TOOL's native binary, or nothing.
foundry_bin() {
  local tool="$1" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local c
  for c in "$root"/node_modules/@foundry-rs/"$tool"-*/bin/"$tool" \
    "$root"/node_modules/@foundry-rs/"$tool"/dist/"$tool"; do
    if [ -x "$c" ]; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

FORGE="$(foundry_bin forge || true)"
ANVIL="$(foundry_bin anvil || true)"
export FORGE ANVIL
