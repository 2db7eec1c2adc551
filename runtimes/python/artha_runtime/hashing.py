"""Which BLAKE3 implementation the helper uses.

The `blake3` package (Rust, from PyPI) when it is installed, else the
pure-Python one in `artha_runtime._blake3`. Both give the same digests (the
tests check it); `ARTHA_PURE_BLAKE3=1` forces the pure one (for tests).
"""

from __future__ import annotations

import os

from . import _blake3

try:  # pragma: no cover - which branch runs depends on the environment
    import blake3 as _native
except ImportError:  # pragma: no cover
    _native = None


def backend() -> str:
    """`"blake3"` (the PyPI package) or `"pure-python"`."""
    if _native is not None and os.environ.get("ARTHA_PURE_BLAKE3", "") in ("", "0"):
        return "blake3"
    return "pure-python"


def new(data: bytes = b""):
    """A new BLAKE3 hasher with `update()`, `digest()` and `hexdigest()`."""
    if backend() == "blake3":
        return _native.blake3(data)
    return _blake3.Blake3(data)


def blake3_hex(data: bytes) -> str:
    """BLAKE3 of `data` as 64 lower-case hex digits."""
    return new(data).hexdigest()
