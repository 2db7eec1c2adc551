"""Writes runtimes/vectors.json: named-tensor digest vectors shared by the
Rust runtime (runtimes/native/src/digest.rs) and the Python helper, and
(`sampled_named_tensors`) named digests of sampled steps (runtimes/PROOFS.md):
each case gives `seed`, `step`, the tensors, per tensor its entry (the
canonical or sampled tensor digest, and the sampled positions or null), the
named digest at that sampled step (`digest`) and at a full step
(`full_digest`).

Computed here from first principles (struct + the `blake3` package), not
through either implementation:  python3 runtimes/python/tests/make_vectors.py
"""
import json
import pathlib
import struct

import blake3

CODES = {"f32": (1, "<f"), "i64": (5, "<q")}


def tensor_digest(dtype, shape, values):
    code, fmt = CODES[dtype]
    h = blake3.blake3(b"artha-tensor-v1\0")
    h.update(bytes([code]))
    h.update(struct.pack("<I", len(shape)))
    for d in shape:
        h.update(struct.pack("<Q", d))
    for v in values:
        h.update(struct.pack(fmt, v))
    return h.digest()


def named(tensors):
    h = blake3.blake3(b"artha-named-tensors-v1\0")
    h.update(struct.pack("<I", len(tensors)))
    for t in tensors:
        name = t["name"].encode()
        h.update(struct.pack("<I", len(name)) + name)
        h.update(tensor_digest(t["dtype"], t["shape"], t["values"]))
    return h.hexdigest()


CASES = [
    ("no tensors", []),
    ("one scalar", [{"name": "w", "dtype": "f32", "shape": [], "values": [1.5]}]),
    (
        "a 2-layer MLP's parameters, in state_dict order",
        [
            {"name": "fc.0.weight", "dtype": "f32", "shape": [2, 3],
             "values": [0.5, -0.25, 1.0, 0.0, -2.0, 0.125]},
            {"name": "fc.0.bias", "dtype": "f32", "shape": [2], "values": [0.0, -0.5]},
            {"name": "fc.1.weight", "dtype": "f32", "shape": [1, 2], "values": [3.0, -1.0]},
            {"name": "fc.1.bias", "dtype": "f32", "shape": [1], "values": [0.75]},
        ],
    ),
    (
        "a batch: inputs and class labels",
        [
            {"name": "x", "dtype": "f32", "shape": [2, 2], "values": [1.0, 2.0, -3.5, 4.25]},
            {"name": "y", "dtype": "i64", "shape": [2], "values": [0, 7]},
        ],
    ),
    ("an empty tensor and a non-ASCII name",
     [{"name": "poids·é", "dtype": "f32", "shape": [0, 3], "values": []}]),
]

# ---- sampled step digests (runtimes/PROOFS.md) ----------------------------

M64 = (1 << 64) - 1
S = 64


def stream_key(seed, domain, index):
    h = blake3.blake3(b"artha-rng-v1\0" + domain.encode() + b"\0" + struct.pack("<QQ", seed, index))
    return int.from_bytes(h.digest()[:8], "little")


def u64_at(key, n):
    z = (key + (n + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def positions(seed, step, ordinal, numel):
    key = stream_key(seed, "sample", step)
    return [(u64_at(key, ordinal * S + i) * numel) >> 64 for i in range(S)]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def sampled_case(comment, seed, step, tensors):
    """A sampled step's digest: one BLAKE3 over each tensor's entry (name,
    dtype, shape, then all of its elements if it has at most S, else the S
    at its positions, ordinal t) and the count."""
    h = blake3.blake3(b"artha-sampled-tensors-v1\0")
    entries = []
    for t, ten in enumerate(tensors):
        code, fmt = CODES[ten["dtype"]]
        n = numel(ten["shape"])
        pos = None if n <= S else positions(seed, step, t, n)
        name = ten["name"].encode()
        h.update(struct.pack("<I", len(name)) + name + bytes([code]))
        h.update(struct.pack("<I", len(ten["shape"])))
        for d in ten["shape"]:
            h.update(struct.pack("<Q", d))
        for p in (range(n) if pos is None else pos):
            h.update(struct.pack(fmt, ten["values"][p]))
        entries.append({"positions": pos})
    h.update(struct.pack("<I", len(tensors)))
    return {"comment": comment, "seed": seed, "step": step, "tensors": tensors,
            "entries": entries, "digest": h.hexdigest(), "full_digest": named(tensors)}


def f32_values(n, mul, add):
    # Exact in f32: multiples of 1/8 in a small range.
    return [((i * mul + add) % 101 - 50) / 8.0 for i in range(n)]


SAMPLED = [
    sampled_case(
        "weights at a sampled step: a large matrix (sampled, t=0), a bias (whole, t=1), "
        "a 65-element vector (sampled, t=2)",
        42, 7,
        [
            {"name": "w0", "dtype": "f32", "shape": [3, 100], "values": f32_values(300, 37, 5)},
            {"name": "b0", "dtype": "f32", "shape": [4], "values": [0.5, -1.0, 2.25, 0.0]},
            {"name": "w1", "dtype": "f32", "shape": [65], "values": f32_values(65, 11, 3)},
        ],
    ),
    sampled_case(
        "an LM batch at a sampled step: x and y, i64 [2, 150] (both sampled, t=0 and 1)",
        (1 << 64) - 1, 3,
        [
            {"name": "x", "dtype": "i64", "shape": [2, 150], "values": [(i * 7) % 256 for i in range(300)]},
            {"name": "y", "dtype": "i64", "shape": [2, 150], "values": [(i * 7 + 7) % 256 for i in range(300)]},
        ],
    ),
    sampled_case(
        "exactly S = 64 elements: whole even at a sampled step",
        1, 1,
        [{"name": "w", "dtype": "f32", "shape": [8, 8], "values": f32_values(64, 3, 1)}],
    ),
]

out = {
    "format": "artha-runtime-vectors/1",
    "named_tensors": [
        {"comment": c, "tensors": t, "digest": named(t)} for c, t in CASES
    ],
    "sampled_named_tensors": SAMPLED,
}
path = pathlib.Path(__file__).resolve().parents[2] / "vectors.json"
path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print(path)
