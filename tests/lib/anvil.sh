# anvil on loopback for the chain suite. Source it; call anvil_up.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# anvil_up: installs the contracts' npm toolchain if needed, starts anvil on
# 127.0.0.1 at a free port, waits until it answers, exports
# ARTHA_TEST_ANVIL_URL, and stops it when the calling shell exits.
anvil_up() {
  local dir="$ARTHA_ROOT/contracts" port log i
  command -v curl >/dev/null 2>&1 || apt_install curl || return 1
  # shellcheck source=../../contracts/scripts/tools.sh
  . "$dir/scripts/tools.sh"
  if [ -z "$ANVIL" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    . "$dir/scripts/tools.sh"
  fi
  [ -n "$ANVIL" ] || { echo "anvil_up: no anvil binary after npm ci" >&2; return 1; }
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  log="$(mktemp)"
  "$ANVIL" --host 127.0.0.1 --port "$port" --silent >"$log" 2>&1 &
  ARTHA_ANVIL_PID=$!
  trap 'kill "$ARTHA_ANVIL_PID" 2>/dev/null || true' EXIT
  for i in $(seq 1 50); do
    if curl -s -X POST -H 'content-type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "http://127.0.0.1:$port" |
      grep -q result; then
      export ARTHA_TEST_ANVIL_URL="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "anvil did not start:" >&2
  cat "$log" >&2
  return 1
}
