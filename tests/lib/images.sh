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
