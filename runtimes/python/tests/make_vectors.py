"""Writes runtimes/vectors.json: named-tensor digest vectors shared by the
Rust runtime (runtimes/native/src/digest.rs) and the Python helper.

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

out = {
    "format": "artha-runtime-vectors/1",
    "named_tensors": [
        {"comment": c, "tensors": t, "digest": named(t)} for c, t in CASES
    ],
}
path = pathlib.Path(__file__).resolve().parents[2] / "vectors.json"
path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print(path)
