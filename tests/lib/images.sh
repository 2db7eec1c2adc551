# Test images, built locally (no registry is reachable) and tagged by a hash
# of their recipe so that a machine builds each one once. Source it.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# recipe_hash FILE_OR_DIR...: a short hash of the named sources.
recipe_hash() {
  (cd "$ARTHA_ROOT" && find "$@" -type f ! -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum) |
    sha256sum | cut -c1-16
}

# static_image NAME PACKAGE BINARY SOURCES...: prints the tag of a
# `FROM scratch` image holding the static musl release build of cargo
# package PACKAGE (binary BINARY, the image's entrypoint, run as user 65534),
# tagged `artha/NAME:<hash of SOURCES and this file>`; builds it when absent.
static_image() {
  local name="$1" pkg="$2" binary="$3" hash tag ctx
  shift 3
  hash="$(recipe_hash "$@" Cargo.lock tests/lib/images.sh)"
  tag="artha/$name:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl >&2 || return 1
  (cd "$ARTHA_ROOT" && CARGO_TARGET_DIR="$ARTHA_ROOT/target/musl" \
    cargo build --quiet --locked --release -p "$pkg" --target x86_64-unknown-linux-musl) >&2 || return 1
  ctx="$(mktemp -d)"
  cp "$ARTHA_ROOT/target/musl/x86_64-unknown-linux-musl/release/$binary" "$ctx/$binary"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY $binary /$binary
USER 65534:65534
ENTRYPOINT ["/$binary"]
DOCKERFILE
  docker build --quiet --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2 || { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
  echo "$tag"
}

# testrt_image: prints the tag of the `FROM scratch` image holding the static
# musl build of tests/testrt, building it when absent.
testrt_image() {
  static_image testrt artha-testrt artha-testrt tests/testrt artha-core/src artha-core/Cargo.toml
}

# native_image: prints the tag of the `FROM scratch` image holding the static
# musl build of the native runtime (runtimes/native, `artha-runtime`),
# building it when absent. It runs as user 65534 with the runtime protocol's
# fixed mounts (/model, /data read-only; /checkpoints, /artha writable).
native_image() {
  static_image native artha-runtime artha-runtime runtimes/native/src runtimes/native/Cargo.toml \
    artha-core/src artha-core/Cargo.toml Cargo.toml
}

# native_image_test: builds the native image when absent, then runs the test
# that runs it under Docker (hardened like the Docker executor) and checks it
# reports the same step records, checkpoints and inferences as the host build.
# Needs a Docker daemon (docker_up). Extra arguments go to cargo (the caller's
# feature set, so the test reuses its build).
native_image_test() {
  local tag
  tag="$(native_image)" || return 1
  (cd "$ARTHA_ROOT" && ARTHA_NATIVE_IMAGE="$tag" \
    cargo nextest run "${@:---locked}" --run-ignored only -E 'package(artha-runtime) & binary(image)')
}
