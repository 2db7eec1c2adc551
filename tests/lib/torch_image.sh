# shellcheck shell=bash
# The PyTorch runtime image, built on this machine from Debian packages (no
# image registry is reachable). Source it; `torch_image` prints the tag.
#
# Two layers, each tagged by a hash of its recipe so a machine builds each
# once:
#   artha/torch-base:<hash>  Debian bookworm `minbase` with python3,
#                            python3-torch, python3-numpy and OpenBLAS,
#                            made by debootstrap and `docker import`
#                            (~2 min, ~1.2 GB);
#   artha/torch:<hash>       that plus the `artha_runtime` helper and
#                            runtimes/torch/train.py and llama.py (seconds), from
#                            runtimes/images/torch/local.Dockerfile.
# Debian bookworm has no python3-blake3: the image gets the `blake3` wheel
# from PyPI (runtimes/images/torch/wheels.txt, pinned by hash; pip is the
# one client used besides debootstrap). Without it the helper would fall
# back to its pure-Python BLAKE3, correct but about 1 MB/s.
#
# Under CI=true every failure (debootstrap missing and not installable, no
# Debian mirror, a failed build) is an error, never a skip.
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TORCH_SUITE="bookworm"
# OpenBLAS (the OpenMP build, which follows torch's thread setting) becomes
# the system BLAS; without it Debian's torch uses the reference libblas3,
# about 7x slower on the benchmark MLP (bench/runtimes.sh).
TORCH_PACKAGES="python3,python3-torch,python3-numpy,libopenblas0-openmp"

# _torch_files_hash PATH...: a short hash of the named files and directories
# (bytecode caches left by local runs are not part of a recipe).
_torch_files_hash() {
  (cd "$ARTHA_ROOT" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# debian_mirror: the Debian archive this machine's apt uses for the main
# suite ($ARTHA_DEBIAN_MIRROR overrides it).
debian_mirror() {
  if [ -n "${ARTHA_DEBIAN_MIRROR:-}" ]; then echo "$ARTHA_DEBIAN_MIRROR"; return 0; fi
  local uri
  # deb822 sources: the first `URIs:` of a stanza that is not the security archive.
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /-security/ { print u; exit }')"
  if [ -z "$uri" ]; then
    uri="$(grep -hE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://' /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v -- '-security' |
      sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{ print $1; exit }')"
  fi
  if [ -z "$uri" ]; then
    echo "torch_image: no Debian mirror in /etc/apt/sources.list*; set ARTHA_DEBIAN_MIRROR" >&2
    return 1
  fi
  echo "$uri"
}

# _torch_build_rootfs DIR MIRROR: debootstraps the base system into DIR and
# trims what a runtime never reads (package caches, docs, man pages, locales).
_torch_build_rootfs() {
  local dir="$1" mirror="$2"
  debootstrap --variant=minbase --include="$TORCH_PACKAGES" "$TORCH_SUITE" "$dir" "$mirror" || return 1
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
}

# torch_base_image: prints the tag of the debootstrapped base, building it
# when absent. Its hash covers the suite, the package list and the builder.
torch_base_image() {
  local hash tag mirror root log rc
  hash="$(printf '%s\n%s\n%s\n' "$TORCH_SUITE" "$TORCH_PACKAGES" "$(declare -f _torch_build_rootfs)" |
    sha256sum | cut -c1-16)"
  tag="artha/torch-base:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  apt_install debootstrap >&2 || { echo "torch_image: cannot install debootstrap" >&2; return 1; }
  mirror="$(debian_mirror)" || return 1
  root="$(mktemp -d /var/tmp/artha-torch-rootfs.XXXXXX)"
  log="$root.log"
  echo "torch_image: debootstrap $TORCH_SUITE with $TORCH_PACKAGES (about 2 minutes; log $log)" >&2
  if ! _torch_build_rootfs "$root" "$mirror" >"$log" 2>&1; then
    echo "torch_image: debootstrap failed; last lines of $log:" >&2
    tail -20 "$log" >&2
    _torch_remove_rootfs "$root"
    return 1
  fi
  tar --numeric-owner -C "$root" -c . |
    docker import --change "LABEL artha.recipe=$hash" --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/sh"]' - "$tag" >&2
  rc=$?
  _torch_remove_rootfs "$root"
  [ "$rc" -eq 0 ] || { echo "torch_image: docker import failed" >&2; return 1; }
  rm -f "$log"
  echo "$tag"
}

# _torch_remove_rootfs DIR: removes a debootstrap tree, unmounting what a
# failed run may have left mounted inside it first.
_torch_remove_rootfs() {
  local dir="$1" m
  for m in proc sys dev/pts dev; do
    mountpoint -q "$dir/$m" 2>/dev/null && umount -l "$dir/$m"
  done
  rm -rf --one-file-system "$dir"
}

# torch_image: prints the tag of the PyTorch runtime image, building it (and
# its base) when absent. It runs `python3 /opt/artha/train.py` as user
# 65534 with the runtime protocol's mounts.
torch_image() {
  local base hash tag ctx rc py
  base="$(torch_base_image)" || return 1
  hash="$(_torch_files_hash runtimes/python/artha_runtime runtimes/python/pyproject.toml \
    runtimes/torch/train.py runtimes/torch/llama.py runtimes/images/torch/local.Dockerfile runtimes/images/torch/wheels.txt \
    tests/lib/torch_image.sh | { cat; echo "$base"; } | sha256sum | cut -c1-16)"
  tag="artha/torch:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  py="$(command -v python3)" || { echo "torch_image: python3 (with pip) is needed" >&2; return 1; }
  ctx="$(mktemp -d)"
  mkdir -p "$ctx/site" "$ctx/wheels"
  # The wheels of wheels.txt, for the image's CPython 3.11 on x86-64, checked
  # against their pinned hashes, unpacked as site-packages.
  if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
    --implementation cp --abi cp311 -r "$ARTHA_ROOT/runtimes/images/torch/wheels.txt" \
    -d "$ctx/wheels" >&2; then
    echo "torch_image: cannot download the wheels of runtimes/images/torch/wheels.txt" >&2
    rm -rf "$ctx"
    return 1
  fi
  for w in "$ctx"/wheels/*.whl; do "$py" -m zipfile -e "$w" "$ctx/site/" || { rm -rf "$ctx"; return 1; }; done
  cp -r "$ARTHA_ROOT/runtimes/python/artha_runtime" "$ctx/site/artha_runtime"
  find "$ctx/site" -name '__pycache__' -prune -exec rm -rf {} +
  cp "$ARTHA_ROOT/runtimes/torch/train.py" "$ctx/train.py"
  cp "$ARTHA_ROOT/runtimes/torch/llama.py" "$ctx/llama.py"
  cp "$ARTHA_ROOT/runtimes/images/torch/local.Dockerfile" "$ctx/Dockerfile"
  rm -rf "$ctx/wheels"
  docker build --quiet --build-arg "BASE=$base" --label "artha.recipe=$hash" -t "$tag" "$ctx" >&2
  rc=$?
  rm -rf "$ctx"
  [ "$rc" -eq 0 ] || { echo "torch_image: docker build failed" >&2; return 1; }
  echo "$tag"
}
