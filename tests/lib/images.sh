# Test images, built locally (no registry is reachable) and tagged by a hash
# of their recipe so that a machine builds each one once. Source it.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# recipe_hash FILE_OR_DIR...: a short hash of the named sources.
recipe_hash() {
  (cd "$ARTHA_ROOT" && find "$@" -type f ! -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum) |
    sha256sum | cut -c1-16
}

# testrt_image: prints the tag of the `FROM scratch` image holding the static
# musl build of tests/testrt, building it when absent.
testrt_image() {
  local hash tag ctx bin
  hash="$(recipe_hash tests/testrt artha-core/src artha-core/Cargo.toml Cargo.lock tests/lib/images.sh)"
  tag="artha/testrt:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl >&2 || return 1
  (cd "$ARTHA_ROOT" && CARGO_TARGET_DIR="$ARTHA_ROOT/target/musl" \
    cargo build --quiet --locked --release -p artha-testrt --target x86_64-unknown-linux-musl) >&2 || return 1
  bin="$ARTHA_ROOT/target/musl/x86_64-unknown-linux-musl/release/artha-testrt"
  ctx="$(mktemp -d)"
  cp "$bin" "$ctx/artha-testrt"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY artha-testrt /artha-testrt
USER 65534:65534
ENTRYPOINT ["/artha-testrt"]
DOCKERFILE
  docker build --quiet --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2 || { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
  echo "$tag"
}

# native_image: prints the tag of the `FROM scratch` image holding the static
# musl build of the native runtime (runtimes/native, `artha-runtime`),
# building it when absent. It runs as user 65534 with the runtime protocol's
# fixed mounts (/model, /data read-only; /checkpoints, /artha writable).
native_image() {
  local hash tag ctx bin
  hash="$(recipe_hash runtimes/native/src runtimes/native/Cargo.toml artha-core/src artha-core/Cargo.toml \
    Cargo.toml Cargo.lock tests/lib/images.sh)"
  tag="artha/native:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl >&2 || return 1
  (cd "$ARTHA_ROOT" && CARGO_TARGET_DIR="$ARTHA_ROOT/target/musl" \
    cargo build --quiet --locked --release -p artha-runtime --target x86_64-unknown-linux-musl) >&2 || return 1
  bin="$ARTHA_ROOT/target/musl/x86_64-unknown-linux-musl/release/artha-runtime"
  ctx="$(mktemp -d)"
  cp "$bin" "$ctx/artha-runtime"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY artha-runtime /artha-runtime
USER 65534:65534
ENTRYPOINT ["/artha-runtime"]
DOCKERFILE
  docker build --quiet --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2 || { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
  echo "$tag"
}

# native_image_test: builds the native image when absent, then runs the test
# that runs it under Docker (hardened like the Docker executor) and checks it
# reports the same step records, checkpoints and inferences as the host build.
# Needs a Docker daemon (docker_up).
native_image_test() {
  local tag
  tag="$(native_image)" || return 1
  (cd "$ARTHA_ROOT" && ARTHA_NATIVE_IMAGE="$tag" \
    cargo test --quiet --locked -p artha-runtime --test image -- --ignored)
}
