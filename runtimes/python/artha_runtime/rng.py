"""The native runtime's seeded, counter-based random numbers
(runtimes/native/src/rng.rs), so a Python runtime starts from the same
initial weights and visits the same batches as the native one for a seed.

- A stream key is the first 8 bytes (little endian) of
  `BLAKE3("artha-rng-v1\\0" ‖ domain ‖ 0x00 ‖ seed u64 LE ‖ index u64 LE)`.
- Number `n` of a stream is SplitMix64's output function applied to
  `key + (n + 1) · 0x9E3779B97F4A7C15` (wrapping).
- `f32_at(n)` is the top 24 bits times 2⁻²⁴; `below(n, bound)` the high
  half of the 128-bit product with `bound`.
- Epoch `e` visits the rows in `permutation(seed, e, rows)`: Fisher–Yates
  driven by stream `("shuffle", e)`, draw `i` for position `i`.
- Parameter `p` of a model starts as `(2·f32_at(i) − 1) · 1/√fan_in` over
  stream `("init", p)`, in f32 arithmetic (PyTorch's `nn.Linear` default
  distribution).
"""

from __future__ import annotations

import struct

import numpy as np

from . import hashing

GAMMA = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 values (wrapping)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class Stream:
    """One independent stream of random numbers, addressed by counter."""

    def __init__(self, seed: int, domain: str, index: int):
        h = hashing.new(b"artha-rng-v1\0")
        h.update(domain.encode("utf-8"))
        h.update(b"\0")
        h.update(struct.pack("<QQ", seed & _M64, index & _M64))
        self.key = int.from_bytes(h.digest()[:8], "little")

    def u64_at(self, n) -> np.ndarray:
        """Numbers `n` (an int or an array of counters) as uint64."""
        n = np.asarray(n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            x = np.uint64(self.key) + (n + np.uint64(1)) * np.uint64(GAMMA)
        return mix64(x)

    def f32_at(self, n) -> np.ndarray:
        """Numbers `n` as uniform float32 in [0, 1) (exact)."""
        return (self.u64_at(n) >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)

    def below(self, n, bound) -> np.ndarray:
        """Numbers `n` mapped to `0..bound` (per element, bound < 2⁶⁴): the
        high 64 bits of the 128-bit product `u64_at(n) · bound`, as the
        Rust `Stream::below`. Bounds below 2³² are computed in two 32-bit
        halves; larger ones exactly with Python integers."""
        a = self.u64_at(n)
        b = np.asarray(bound, dtype=np.uint64)
        if np.any(b >= np.uint64(1 << 32)):
            a, b = np.broadcast_arrays(a, b)
            out = [(int(x) * int(y)) >> 64 for x, y in zip(a.reshape(-1), b.reshape(-1))]
            return np.asarray(out, dtype=np.uint64).reshape(a.shape)
        hi, lo = a >> np.uint64(32), a & np.uint64(0xFFFFFFFF)
        # a·b = hi·b·2³² + lo·b; both products fit in 64 bits, and so does
        # hi·b + (lo·b >> 32), so its top 32 bits are (a·b) >> 64.
        return (hi * b + ((lo * b) >> np.uint64(32))) >> np.uint64(32)


def permutation(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The order in which epoch `epoch` visits `rows` samples (int64)."""
    p = np.arange(rows, dtype=np.int64)
    if rows < 2:
        return p
    s = Stream(seed, "shuffle", epoch)
    i = np.arange(rows - 1, 0, -1, dtype=np.uint64)
    js = s.below(i, i + np.uint64(1)).tolist()
    perm = p.tolist()
    for pos, j in zip(range(rows - 1, 0, -1), js):
        perm[pos], perm[j] = perm[j], perm[pos]
    return np.asarray(perm, dtype=np.int64)


def init_param(seed: int, p: int, shape, fan_in: int) -> np.ndarray:
    """Initial values (float32) of parameter number `p` of a model."""
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    bound = np.float32(1.0) / np.sqrt(np.float32(fan_in))
    u = Stream(seed, "init", p).f32_at(np.arange(n, dtype=np.uint64))
    return ((u * np.float32(2.0) - np.float32(1.0)) * bound).astype(np.float32).reshape(shape)
