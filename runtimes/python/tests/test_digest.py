"""Canonical tensor digests and named-tensor digests against the shared
vectors (runtimes/vectors.json, artha-core/tests/vectors/proofs.json)."""
import json
import struct

import numpy as np
import pytest

from artha_runtime import digest
from conftest import ROOT

VECTORS = json.loads((ROOT / "runtimes" / "vectors.json").read_text(encoding="utf-8"))
PROOFS = json.loads((ROOT / "artha-core" / "tests" / "vectors" / "proofs.json").read_text())
NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "u8": np.uint8,
      "f16": np.float16}


def test_vector_files_have_cases():
    assert len(VECTORS["named_tensors"]) >= 5
    assert len(PROOFS["tensors"]) >= 5


@pytest.mark.parametrize("case", VECTORS["named_tensors"], ids=lambda c: c["comment"])
def test_named_tensor_vectors(case, backend):
    items = [(t["name"], np.array(t["values"], dtype=NP[t["dtype"]]).reshape(t["shape"]))
             for t in case["tensors"]]
    assert digest.named_digest(items) == case["digest"]
    # The same through push_digest of each tensor's canonical digest.
    d = digest.NamedDigest()
    for name, a in items:
        d.push_digest(name, digest.tensor_digest(a))
    assert d.hexdigest() == case["digest"]


@pytest.mark.parametrize("case", PROOFS["tensors"], ids=lambda c: f"{c['dtype']}{c['shape']}")
def test_core_tensor_vectors(case, backend):
    raw = bytes.fromhex(case["data_hex"])
    assert digest.raw_tensor_digest(case["dtype"], case["shape"], raw).hex() == case["digest"]
    a = np.frombuffer(raw, dtype=digest.DTYPES[case["dtype"]][2]).reshape(case["shape"])
    assert digest.tensor_digest(a).hex() == case["digest"]


def test_header_layout():
    h = digest.header("i64", [3, 1])
    assert h == b"artha-tensor-v1\0" + bytes([5]) + struct.pack("<I", 2) + struct.pack("<QQ", 3, 1)
    assert len(digest.NAMED_DOMAIN) == 23


def test_layout_and_byte_order_do_not_matter_values_do():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    base = digest.tensor_digest(a)
    # A transposed view hashes as its row-major copy, not as a's memory.
    t = a.T
    assert not t.flags.c_contiguous
    assert digest.tensor_digest(t) == digest.tensor_digest(np.ascontiguousarray(t))
    assert digest.tensor_digest(t) != base
    # Big-endian storage of the same values gives the same digest.
    assert digest.tensor_digest(a.astype(">f4")) == base
    # Shape and dtype are part of the digest.
    assert digest.tensor_digest(a.reshape(4, 3)) != base
    assert digest.tensor_digest(a.astype(np.float64)) != base
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.float32(100))
    assert digest.tensor_digest(b) != base


def test_named_digest_order_names_and_boundaries():
    x = np.ones(2, np.float32)
    y = np.zeros(2, np.float32)
    base = digest.named_digest([("a", x), ("b", y)])
    assert base != digest.named_digest([("b", y), ("a", x)])
    assert base != digest.named_digest([("a", x), ("c", y)])
    assert digest.named_digest({"a": x, "b": y}) == base  # a mapping in its own order
    e = np.zeros(0, np.float32)
    assert digest.named_digest([("ab", e), ("", e)]) != digest.named_digest([("a", e), ("b", e)])
    assert digest.batch_digest(x, y) == digest.named_digest([("x", x), ("y", y)])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs 24"):
        digest.raw_tensor_digest("f32", [2, 3], b"\0" * 23)
    with pytest.raises(ValueError, match="dtype `f8`"):
        digest.raw_tensor_digest("f8", [1], b"\0" * 8)
    with pytest.raises(TypeError, match="bool"):
        digest.tensor_digest(np.array([True]))
    with pytest.raises(ValueError, match="32 bytes"):
        digest.NamedDigest().push_digest("w", b"short")



# ---- sampled step digests (runtimes/PROOFS.md) ------------------------------


def _arrays(case):
    return [(t["name"], np.array(t["values"], dtype=NP[t["dtype"]]).reshape(t["shape"]))
            for t in case["tensors"]]


def test_sampled_vector_file_has_cases():
    cases = VECTORS["sampled_named_tensors"]
    assert len(cases) >= 3
    assert any(e["positions"] is None for c in cases for e in c["entries"])
    assert any(e["positions"] is not None for c in cases for e in c["entries"])


@pytest.mark.parametrize("case", VECTORS["sampled_named_tensors"], ids=lambda c: c["comment"][:40])
def test_sampled_named_tensor_vectors(case, backend):
    items = _arrays(case)
    seed, step = case["seed"], case["step"]
    assert digest.named_digest_at(items, seed, step, full=False).hex() == case["digest"]
    assert digest.named_digest_at(items, seed, step, full=True).hex() == case["full_digest"]
    assert digest.named_digest(items) == case["full_digest"]
    for t, ((name, a), e) in enumerate(zip(items, case["entries"])):
        if e["positions"] is not None:
            assert digest.sample_positions(seed, step, t, a.size).tolist() == e["positions"]


def test_sampled_digests_of_torch_tensors_match_numpy():
    torch = pytest.importorskip("torch")
    for case in VECTORS["sampled_named_tensors"]:
        items = _arrays(case)
        tt = [(n, torch.from_numpy(a.copy())) for n, a in items]
        assert digest.named_digest_at(tt, case["seed"], case["step"], False).hex() == case["digest"]
    # A non-contiguous tensor is sampled as its row-major copy.
    a = torch.arange(600, dtype=torch.float32).reshape(20, 30)
    assert digest.sampled_named_digest([("a", a.t())], 3, 5) == \
        digest.sampled_named_digest([("a", a.t().contiguous().numpy())], 3, 5)


def test_full_steps():
    assert digest.is_full_step(10, 10, 95)
    assert digest.is_full_step(95, 10, 95)  # the last step
    assert not digest.is_full_step(9, 10, 95)
    assert digest.is_full_step(3, 1, 95)
    with pytest.raises(ValueError):
        digest.is_full_step(3, 0, 95)


def test_sampled_digest_layout_and_what_it_covers():
    a = (np.arange(1000, dtype=np.float32) / 7).reshape(10, 100)
    bias = np.array([0.5, -1.0], dtype=np.float32)
    seed, step = 9, 4
    pos = digest.sample_positions(seed, step, 1, a.size)
    assert pos.dtype == np.uint64 and len(pos) == digest.SAMPLE_SIZE and pos.max() < a.size
    raw = (b"artha-sampled-tensors-v1\0"
           + struct.pack("<I", 1) + b"b" + bytes([1]) + struct.pack("<IQ", 1, 2) + bias.tobytes()
           + struct.pack("<I", 1) + b"w" + bytes([1]) + struct.pack("<IQQ", 2, 10, 100)
           + a.reshape(-1)[pos.astype(np.intp)].astype("<f4").tobytes()
           + struct.pack("<I", 2))
    assert len(digest.SAMPLED_DOMAIN) == 25
    got = digest.sampled_named_digest([("b", bias), ("w", a)], seed, step)
    assert got == digest.hashing.new(raw).digest()
    # The step and the ordinal move the positions; the seed too.
    assert got != digest.sampled_named_digest([("b", bias), ("w", a)], seed, step + 1)
    assert got != digest.sampled_named_digest([("b", bias), ("w", a)], seed + 1, step)
    # A sampled element changes it; an element outside the sample does not.
    outside = sorted(set(range(a.size)) - set(pos.tolist()))[0]
    b = a.copy().reshape(-1)
    b[outside] += 1
    assert digest.sampled_named_digest([("b", bias), ("w", b.reshape(10, 100))], seed, step) == got
    b[int(pos[0])] += 1
    assert digest.sampled_named_digest([("b", bias), ("w", b.reshape(10, 100))], seed, step) != got
    # The shape, the names and every element of a small tensor are hashed.
    assert digest.sampled_named_digest([("b", bias), ("w", a.reshape(100, 10))], seed, step) != got
    assert digest.sampled_named_digest([("c", bias), ("w", a)], seed, step) != got
    assert digest.sampled_named_digest([("b", bias * 2), ("w", a)], seed, step) != got
