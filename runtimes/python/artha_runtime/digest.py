"""Canonical BLAKE3 tensor digests, identical to the Rust side.

**Tensor digest** (`artha_core::tensor_digest`, artha-core/src/hash.rs)::

    BLAKE3( "artha-tensor-v1\\0"          16 bytes
          ‖ dtype code                    1 byte: f32 1, f64 2, f16 3, bf16 4,
                                                  i64 5, i32 6, u8 7
          ‖ rank                          u32 little endian
          ‖ each dimension                u64 little endian
          ‖ elements in row-major (C) order, each little endian )

The digest depends on the values, dtype and shape only: a transposed or
otherwise strided numpy array or torch tensor hashes as its row-major copy,
and a tensor on a GPU is read back first.

**Named-tensor digest** (runtimes/native/src/digest.rs), what a step
record's `grad_digest`, `weight_digest` and `batch_digest` are::

    BLAKE3( "artha-named-tensors-v1\\0"   23 bytes
          ‖ count                         u32 little endian
          ‖ for each tensor, in order:
              name length u32 LE ‖ name (UTF-8) ‖ tensor digest (32 bytes) )

The order is the model's parameter order — a PyTorch `state_dict`'s order
(`fc.0.weight`, `fc.0.bias`, `fc.1.weight`, …); a batch is
`[("x", inputs), ("y", targets)]`. Shared test vectors:
runtimes/vectors.json and artha-core/tests/vectors/proofs.json.

**Sampled step digests** (runtimes/PROOFS.md): at a *full step* (`k` a
multiple of the proof window, or the job's last step) a step record's
digests are named-tensor digests as above; at any other step each is one
hash over the tensors' entries::

    BLAKE3( "artha-sampled-tensors-v1\0"      25 bytes
          ‖ for each tensor t (ordinal 0, 1, …):
              name length u32 LE ‖ name ‖ dtype code u8 ‖ rank u32 LE ‖ each dim u64 LE
              ‖ all its elements (LE, row-major) if it has at most S = 64,
                else the S elements at p_i = Stream(seed, "sample", k).below(t·S + i, numel)
          ‖ count u32 LE )

`is_full_step` and `named_digest_at` implement it; a torch tensor is
sampled where it lives (only the S elements are read back from a GPU).
"""

from __future__ import annotations

import struct
import sys
from typing import Any, Iterable, Mapping, Tuple, Union

import numpy as np

from . import hashing, rng

TENSOR_DOMAIN = b"artha-tensor-v1\0"
NAMED_DOMAIN = b"artha-named-tensors-v1\0"
SAMPLED_DOMAIN = b"artha-sampled-tensors-v1\0"
#: Elements a sampled step reads of a larger tensor (runtimes/PROOFS.md `S`).
SAMPLE_SIZE = 64

#: dtype name → (one-byte code, element size, numpy dtype of the LE bytes).
DTYPES = {
    "f32": (1, 4, np.dtype("<f4")),
    "f64": (2, 8, np.dtype("<f8")),
    "f16": (3, 2, np.dtype("<f2")),
    "bf16": (4, 2, np.dtype("<u2")),  # bfloat16 bits; numpy has no bfloat16
    "i64": (5, 8, np.dtype("<i8")),
    "i32": (6, 4, np.dtype("<i4")),
    "u8": (7, 1, np.dtype("u1")),
}

_NUMPY_NAMES = {
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
    np.dtype(np.float16): "f16",
    np.dtype(np.int64): "i64",
    np.dtype(np.int32): "i32",
    np.dtype(np.uint8): "u8",
}

_U64_MAX = (1 << 64) - 1


def header(dtype: str, shape: Iterable[int]) -> bytes:
    """The canonical header: domain tag, dtype code, rank, dimensions."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype `{dtype}` is not one of {', '.join(DTYPES)}")
    dims = [int(d) for d in shape]
    if any(d < 0 or d > _U64_MAX for d in dims):
        raise ValueError(f"shape {dims} has a dimension outside 0..2^64")
    out = bytearray(TENSOR_DOMAIN)
    out.append(DTYPES[dtype][0])
    out += struct.pack("<I", len(dims))
    for d in dims:
        out += struct.pack("<Q", d)
    return bytes(out)


def raw_tensor_digest(dtype: str, shape: Iterable[int], data_le: bytes) -> bytes:
    """The canonical digest of `data_le`, elements already in row-major
    order and little endian (the exact mirror of `artha_core::tensor_digest`,
    including its length check)."""
    dims = [int(d) for d in shape]
    elems = 1
    for d in dims:
        elems *= d
    need = elems * DTYPES[dtype][1] if dtype in DTYPES else None
    h = hashing.new(header(dtype, dims))
    data = memoryview(data_le).cast("B")
    if len(data) != need:
        raise ValueError(
            f"tensor data is {len(data)} bytes but shape {dims} of {dtype} needs {need}"
        )
    h.update(data)
    return h.digest()


def _torch_module(t):
    mod = type(t).__module__
    return sys.modules.get("torch") if mod.startswith("torch") else None


def canonical_array(t) -> Tuple[str, np.ndarray]:
    """`(dtype name, C-ordered little-endian numpy array)` of a numpy array
    or torch tensor. A contiguous little-endian CPU array is not copied."""
    torch = _torch_module(t)
    if torch is not None and isinstance(t, torch.Tensor):
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            return "bf16", t.view(torch.int16).numpy().view(np.uint16)
        names = {
            torch.float32: "f32", torch.float64: "f64", torch.float16: "f16",
            torch.int64: "i64", torch.int32: "i32", torch.uint8: "u8",
        }
        if t.dtype not in names:
            raise TypeError(f"torch dtype {t.dtype} has no canonical digest ({', '.join(DTYPES)})")
        a = t.numpy()
        name = names[t.dtype]
    else:
        a = np.asarray(t)
        name = _NUMPY_NAMES.get(a.dtype.newbyteorder("="))
        if name is None:
            raise TypeError(f"numpy dtype {a.dtype} has no canonical digest ({', '.join(DTYPES)})")
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # (np.ascontiguousarray would make a scalar 1-D)
    want = DTYPES[name][2]
    if a.dtype != want:  # big-endian data (or a big-endian machine): swap to LE
        a = a.astype(want)
    return name, a


def tensor_digest(t) -> bytes:
    """The canonical digest (32 bytes) of a numpy array or torch tensor."""
    name, a = canonical_array(t)
    h = hashing.new(header(name, a.shape))
    h.update(memoryview(a.reshape(-1).view(np.uint8)))
    return h.digest()


#: A numpy array or a torch tensor (torch is optional).
Tensor = Any


class NamedDigest:
    """Builds a named-tensor digest one tensor at a time."""

    def __init__(self):
        self._parts = []

    def push(self, name: str, tensor) -> "NamedDigest":
        """Adds a numpy array or torch tensor."""
        return self.push_digest(name, tensor_digest(tensor))

    def push_digest(self, name: str, digest: bytes) -> "NamedDigest":
        """Adds a tensor given by its canonical digest."""
        if len(digest) != 32:
            raise ValueError(f"tensor `{name}`: a digest is 32 bytes, got {len(digest)}")
        self._parts.append((name.encode("utf-8"), bytes(digest)))
        return self

    def digest(self) -> bytes:
        h = hashing.new(NAMED_DOMAIN)
        h.update(struct.pack("<I", len(self._parts)))
        for name, d in self._parts:
            h.update(struct.pack("<I", len(name)))
            h.update(name)
            h.update(d)
        return h.digest()

    def hexdigest(self) -> str:
        return self.digest().hex()


def named_digest(items: Union[Mapping[str, Tensor], Iterable[Tuple[str, Tensor]]]) -> str:
    """Named-tensor digest (hex) of `(name, tensor)` pairs in order, or of a
    mapping such as a `state_dict()` in its own order."""
    pairs = items.items() if isinstance(items, Mapping) else items
    d = NamedDigest()
    for name, t in pairs:
        d.push(name, t)
    return d.hexdigest()


def batch_digest(x, y) -> str:
    """The `batch_digest` of a step: `[("x", inputs), ("y", targets)]`."""
    return named_digest([("x", x), ("y", y)])


# ---- sampled step digests (runtimes/PROOFS.md) ------------------------------


def is_full_step(step: int, proof_window: int, total_steps: int) -> bool:
    """Whether step `step` records full digests: a window end
    (`step % proof_window == 0`) or the job's last step."""
    if proof_window < 1:
        raise ValueError("the proof window must be at least 1")
    return step % proof_window == 0 or step == total_steps


def sample_positions(seed: int, step: int, ordinal: int, numel: int) -> np.ndarray:
    """The `S` flat row-major positions (uint64) that tensor number
    `ordinal` of a named digest contributes at step `step`."""
    if numel < 1:
        raise ValueError("an empty tensor has no positions to sample")
    base = ordinal * SAMPLE_SIZE
    counters = np.arange(base, base + SAMPLE_SIZE, dtype=np.uint64)
    return rng.Stream(seed, "sample", step).below(counters, numel)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _sample_elements(t, positions: np.ndarray) -> Tuple[str, Tuple[int, ...], np.ndarray]:
    """`(dtype name, shape, the elements at positions as a LE numpy array)`
    without copying more than the sampled elements off a device."""
    torch = _torch_module(t)
    if torch is not None and isinstance(t, torch.Tensor):
        t = t.detach()
        shape = tuple(t.shape)
        idx = torch.from_numpy(positions.astype(np.int64)).to(t.device)
        picked = t.reshape(-1).index_select(0, idx)
        name, a = canonical_array(picked)
        return name, shape, a
    name, a = canonical_array(t)
    return name, a.shape, a.reshape(-1)[positions.astype(np.intp)]


def sampled_entry(name: str, t, seed: int, step: int, ordinal: int) -> bytes:
    """Tensor number `ordinal`'s entry in a sampled step digest: its name,
    dtype and shape, then all its elements (at most `S`) or the `S` at the
    step's positions."""
    shape = tuple(int(d) for d in t.shape)
    n = _numel(shape)
    if n <= SAMPLE_SIZE:
        dname, a = canonical_array(t)
        elems = a.reshape(-1)
    else:
        pos = sample_positions(seed, step, ordinal, n)
        dname, shape, elems = _sample_elements(t, pos)
    raw = name.encode("utf-8")
    return (struct.pack("<I", len(raw)) + raw + header(dname, shape)[len(TENSOR_DOMAIN):]
            + np.ascontiguousarray(elems).view(np.uint8).tobytes())


def sampled_named_digest(items: Union[Mapping[str, Tensor], Iterable[Tuple[str, Tensor]]],
                         seed: int, step: int) -> bytes:
    """A sampled step's digest (32 bytes) of `(name, tensor)` pairs in order
    (runtimes/PROOFS.md)."""
    pairs = list(items.items() if isinstance(items, Mapping) else items)
    h = hashing.new(SAMPLED_DOMAIN)
    for ordinal, (name, t) in enumerate(pairs):
        h.update(sampled_entry(name, t, seed, step, ordinal))
    h.update(struct.pack("<I", len(pairs)))
    return h.digest()


def named_digest_at(items: Union[Mapping[str, Tensor], Iterable[Tuple[str, Tensor]]],
                    seed: int, step: int, full: bool) -> bytes:
    """The named-tensor digest (32 bytes) of `(name, tensor)` pairs in order
    (or a mapping in its own order) as step `step` records it: full
    (`full`, see `is_full_step`) or sampled."""
    if not full:
        return sampled_named_digest(items, seed, step)
    pairs = items.items() if isinstance(items, Mapping) else items
    d = NamedDigest()
    for name, t in pairs:
        d.push(name, t)
    return d.digest()
