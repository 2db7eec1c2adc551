# shellcheck shell=bash
# The TensorFlow and JAX runtime images, built on this machine from PyPI
# wheels into a Debian bookworm root (no image registry is reachable).
# Source it; `tf_image` and `jax_image` print the tags.
#
# Three layers, each tagged by a hash of its recipe so a machine builds each
# once:
#   artha/py-base:<hash>      Debian bookworm `minbase` with python3 only,
#                             made by debootstrap and `docker import`
#                             (~1 min, ~130 MB), shared by both images;
#   artha/<tf|jax>-deps:<hash>  that plus the wheels of
#                             runtimes/images/<tf|jax>/wheels.txt (every
#                             wheel pinned by version and hash), installed
#                             on the host by `pip install --target` for the
#                             image's CPython 3.11 on x86-64 and copied in;
#   artha/<tf|jax>:<hash>     that plus the `artha_runtime` helper and
#                             runtimes/<tf|jax>/train.py (seconds), from
#                             runtimes/images/<tf|jax>/local.Dockerfile.
# The image needs no network at run time: everything is in it.
#
# `py_lock_wheels tf|jax` rewrites a wheels.txt from its requirement
# (`_py_recipe`; resolved by pip for CPython 3.11, manylinux x86-64, pinned by
# the files' hashes).
#
# Under CI=true every failure (debootstrap missing and not installable, no
# Debian mirror, no PyPI, a failed build) is an error, never a skip.
# shellcheck source=torch_image.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_image.sh"

PY_SUITE="bookworm"
PY_PACKAGES="python3"
# The wheels' target: bookworm's CPython 3.11 on x86-64 (glibc 2.36).
PY_WHEEL_TARGET=(--only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --python-version 3.11
  --implementation cp --abi cp311 --abi abi3 --abi none)
# _py_recipe NAME FIELD: what `py_lock_wheels` resolves for image NAME
# (`requirement`; blake3 for the helper's fast digests, as in the torch
# image), the resolved wheels it leaves out (`exclude`: libclang, ~80 MB,
# serves TensorFlow's code generators, nothing a training imports) and the
# installed paths the image drops (`prune`: TensorFlow's C++ headers, ~290
# MB, for building custom ops).
_py_recipe() {
  case "$1:$2" in
    tf:requirement) echo "tensorflow-cpu==2.21.0 blake3==1.0.11" ;;
    tf:exclude) echo "libclang" ;;
    tf:prune) echo "tensorflow/include tensorflow/xla_aot_runtime_src" ;;
    jax:requirement) echo "jax[cpu]==0.10.2 blake3==1.0.11" ;;
    jax:exclude | jax:prune) echo "" ;;
    *) echo "py_image: no recipe \`$2\` for image \`$1\` (tf, jax)" >&2; return 1 ;;
  esac
}

# _py_build_rootfs DIR MIRROR: debootstraps the base system into DIR and
# trims what a runtime never reads (package caches, docs, man pages, locales).
_py_build_rootfs() {
  local dir="$1" mirror="$2"
  debootstrap --variant=minbase --include="$PY_PACKAGES" "$PY_SUITE" "$dir" "$mirror" || return 1
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
}

# py_base_image: prints the tag of the debootstrapped base, building it when
# absent. Its hash covers the suite, the package list and the builder.
py_base_image() {
  local hash tag mirror root log rc
  hash="$(printf '%s\n%s\n%s\n' "$PY_SUITE" "$PY_PACKAGES" "$(declare -f _py_build_rootfs)" |
    sha256sum | cut -c1-16)"
  tag="artha/py-base:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  apt_install debootstrap >&2 || { echo "py_image: cannot install debootstrap" >&2; return 1; }
  mirror="$(debian_mirror)" || return 1
  root="$(mktemp -d /var/tmp/artha-py-rootfs.XXXXXX)"
  log="$root.log"
  echo "py_image: debootstrap $PY_SUITE with $PY_PACKAGES (about a minute; log $log)" >&2
  if ! _py_build_rootfs "$root" "$mirror" >"$log" 2>&1; then
    echo "py_image: debootstrap failed; last lines of $log:" >&2
    tail -20 "$log" >&2
    _torch_remove_rootfs "$root"
    return 1
  fi
  tar --numeric-owner -C "$root" -c . |
    docker import --change "LABEL artha.recipe=$hash" --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/sh"]' - "$tag" >&2
  rc=$?
  _torch_remove_rootfs "$root"
  [ "$rc" -eq 0 ] || { echo "py_image: docker import failed" >&2; return 1; }
  rm -f "$log"
  echo "$tag"
}

# _py_install_wheels WHEELS_TXT DIR [PRUNE...]: the wheels of WHEELS_TXT
# (checked against their pinned hashes, no dependency resolution: the file
# lists every wheel) installed into DIR as site-packages for the image's
# Python, without bytecode (compiled in the image), test suites, pip's cache
# or the PRUNE paths (relative to DIR).
_py_install_wheels() {
  local req="$1" dir="$2" py p
  shift 2
  py="$(command -v python3)" || { echo "py_image: python3 (with pip) is needed" >&2; return 1; }
  "$py" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps --root-user-action=ignore \
    --require-hashes --no-compile "${PY_WHEEL_TARGET[@]}" --target "$dir" -r "$req" || return 1
  # Test suites shipped inside the packages, and the console scripts (they
  # name the host's interpreter).
  find "$dir" -mindepth 2 -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
  rm -rf "${dir:?}/bin"
  for p in "$@"; do rm -rf "${dir:?}/$p"; done
}

# _py_deps_image NAME: prints the tag of base + the wheels of
# runtimes/images/NAME/wheels.txt, building it when absent.
_py_deps_image() {
  local name="$1" base hash tag ctx rc req prune
  local -a pruned
  req="$ARTHA_ROOT/runtimes/images/$name/wheels.txt"
  prune="$(_py_recipe "$name" prune)" || return 1
  read -ra pruned <<<"$prune"
  base="$(py_base_image)" || return 1
  hash="$( { cat "$req"; echo "${pruned[*]}"; declare -f _py_install_wheels _py_deps_image
    echo "$base"; } | sha256sum | cut -c1-16)"
  tag="artha/$name-deps:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  ctx="$(mktemp -d "/var/tmp/artha-$name-deps.XXXXXX")"
  echo "py_image: installing the wheels of runtimes/images/$name/wheels.txt" >&2
  if ! _py_install_wheels "$req" "$ctx/site" "${pruned[@]}" >&2; then
    echo "py_image: cannot install the wheels of runtimes/images/$name/wheels.txt" >&2
    rm -rf "$ctx"
    return 1
  fi
  # Bytecode compiled here, once: the image's root is read-only at run time.
  cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
COPY site/ /usr/local/lib/python3.11/dist-packages/
RUN python3 -m compileall -q -j 0 /usr/local/lib/python3.11/dist-packages >/dev/null
EOF
  docker build --quiet --build-arg "BASE=$base" --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2
  rc=$?
  rm -rf "$ctx"
  [ "$rc" -eq 0 ] || { echo "py_image: docker build of $tag failed" >&2; return 1; }
  echo "$tag"
}

# _py_image NAME: prints the tag of the NAME runtime image (building it and
# its layers when absent): `python3 /opt/artha/train.py` as user 65534 with
# the runtime protocol's mounts.
_py_image() {
  local name="$1" deps hash tag ctx rc
  deps="$(_py_deps_image "$name")" || return 1
  hash="$(_torch_files_hash runtimes/python/artha_runtime runtimes/python/pyproject.toml \
    "runtimes/$name/train.py" "runtimes/images/$name/local.Dockerfile" tests/lib/py_images.sh |
    { cat; echo "$deps"; } | sha256sum | cut -c1-16)"
  tag="artha/$name:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  ctx="$(mktemp -d)"
  mkdir -p "$ctx/site"
  cp -r "$ARTHA_ROOT/runtimes/python/artha_runtime" "$ctx/site/artha_runtime"
  find "$ctx/site" -name '__pycache__' -prune -exec rm -rf {} +
  cp "$ARTHA_ROOT/runtimes/$name/train.py" "$ctx/train.py"
  cp "$ARTHA_ROOT/runtimes/images/$name/local.Dockerfile" "$ctx/Dockerfile"
  docker build --quiet --build-arg "BASE=$deps" --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2
  rc=$?
  rm -rf "$ctx"
  [ "$rc" -eq 0 ] || { echo "py_image: docker build of $tag failed" >&2; return 1; }
  echo "$tag"
}

# tf_image / jax_image: the tags of the TensorFlow and JAX runtime images.
tf_image() { _py_image tf; }
jax_image() { _py_image jax; }

# py_lock_wheels tf|jax: resolves the image's requirement for its
# Python and rewrites runtimes/images/<name>/wheels.txt with every wheel
# pinned by version and sha256 (review the diff; the next build uses it).
py_lock_wheels() {
  local name="$1" requirement exclude dir out f project
  local -a reqs
  requirement="$(_py_recipe "$name" requirement)" || return 1
  exclude="$(_py_recipe "$name" exclude)" || return 1
  read -ra reqs <<<"$requirement"
  dir="$(mktemp -d)"
  python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir "${PY_WHEEL_TARGET[@]}" \
    -d "$dir" "${reqs[@]}" || { rm -rf "$dir"; return 1; }
  out="$ARTHA_ROOT/runtimes/images/$name/wheels.txt"
  {
    echo "# Every wheel of the $name image (tests/lib/py_images.sh), resolved from \`$requirement\`"
    echo "# for CPython 3.11 on manylinux x86-64 by \`py_lock_wheels $name\` (left out: ${exclude:-none});"
    echo "# installed with --no-deps --require-hashes."
    for f in "$dir"/*.whl; do
      f="${f##*/}"
      project="$(echo "${f%%-*}" | tr '_' '-')"
      case " $exclude " in *" $project "*) continue ;; esac
      printf '%s==%s --hash=sha256:%s\n' "$project" \
        "$(echo "$f" | cut -d- -f2)" "$(sha256sum "$dir/$f" | cut -d' ' -f1)"
    done
  } >"$out"
  rm -rf "$dir"
  echo "$out"
}

# py_image_test tf|jax [PYTEST ARGS...]: builds the image (once per machine)
# and the native runtime (unless $ARTHA_NATIVE_RUNTIME names a built one, as
# tests/run.sh does), then runs runtimes/images/test_py_images.py against
# them (runtimes/tf/test.sh, runtimes/jax/test.sh). A missing Docker daemon
# that cannot be started is a failure, as for the torch image.
py_image_test() {
  local name="$1" tag start native="${ARTHA_NATIVE_RUNTIME:-}"
  shift
  ensure_venv || return 1
  docker_up || { echo "py_image_test: Docker is needed for the $name image" >&2; return 1; }
  start="$(date +%s)"
  tag="$("${name}_image")" || return 1
  echo "$name image: $tag (ready in $(($(date +%s) - start)) s)"
  if [ -z "$native" ]; then
    (cd "$ARTHA_ROOT" && cargo build --quiet --locked -p artha-runtime) || return 1
    native="$ARTHA_ROOT/target/debug/artha-runtime"
  fi
  ARTHA_PY_RUNTIME="$name" ARTHA_PY_IMAGE="$tag" ARTHA_NATIVE_RUNTIME="$native" \
    "$ARTHA_VENV/bin/python" -m pytest -q -s -p no:cacheprovider \
    "$ARTHA_ROOT/runtimes/images/test_py_images.py" "$@"
}
