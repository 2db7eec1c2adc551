# An S3-compatible server on loopback for the storage tests. Source it.
#
#   s3_up     installs `moto[server]` into the venv (tests/requirements.txt),
#             starts `moto_server` on 127.0.0.1 with a free port, creates the
#             test bucket, and exports ARTHA_TEST_S3_ENDPOINT and
#             ARTHA_TEST_S3_BUCKET (read by artha-engine/tests/store_s3.rs)
#   s3_down   stops the server that s3_up started
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ARTHA_S3_PID=""

s3_up() {
  ensure_venv || { echo "s3_up: cannot install tests/requirements.txt into $ARTHA_VENV" >&2; return 1; }
  local py="$ARTHA_VENV/bin/python" port log i
  port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" || return 1
  log="${TMPDIR:-/tmp}/artha-moto-$port.log"
  "$ARTHA_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  ARTHA_S3_PID=$!
  for i in $(seq 1 100); do
    if ! kill -0 "$ARTHA_S3_PID" 2>/dev/null; then
      echo "s3_up: moto_server exited; log:" >&2; tail -20 "$log" >&2; ARTHA_S3_PID=""; return 1
    fi
    "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.2
  done
  export ARTHA_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  export ARTHA_TEST_S3_BUCKET="artha-test"
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "$py" - <<PY || { s3_down; return 1; }
import boto3
boto3.client("s3", endpoint_url="$ARTHA_TEST_S3_ENDPOINT", region_name="us-east-1").create_bucket(Bucket="$ARTHA_TEST_S3_BUCKET")
PY
  echo "moto_server listening on $ARTHA_TEST_S3_ENDPOINT (pid $ARTHA_S3_PID, log $log)"
}

s3_down() {
  if [ -n "$ARTHA_S3_PID" ]; then
    kill "$ARTHA_S3_PID" 2>/dev/null
    wait "$ARTHA_S3_PID" 2>/dev/null
    ARTHA_S3_PID=""
  fi
  unset ARTHA_TEST_S3_ENDPOINT ARTHA_TEST_S3_BUCKET
}
