"""The counter-based generator (vectorised with numpy) against a plain
integer implementation of runtimes/native/src/rng.rs."""
import struct

import blake3
import numpy as np

from artha_runtime import rng

M64 = (1 << 64) - 1


def ref_key(seed, domain, index):
    h = blake3.blake3(b"artha-rng-v1\0" + domain.encode() + b"\0" + struct.pack("<QQ", seed, index))
    return int.from_bytes(h.digest()[:8], "little")


def ref_mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def ref_u64(key, n):
    return ref_mix((key + (n + 1) * rng.GAMMA) & M64)


def ref_permutation(seed, epoch, rows):
    p = list(range(rows))
    key = ref_key(seed, "shuffle", epoch)
    for i in range(rows - 1, 0, -1):
        j = (ref_u64(key, i) * (i + 1)) >> 64
        p[i], p[j] = p[j], p[i]
    return p


def test_streams_match_the_integer_reference():
    for seed, domain, index in [(0, "init", 0), (7, "shuffle", 3), (M64, "init", 12345)]:
        s = rng.Stream(seed, domain, index)
        assert s.key == ref_key(seed, domain, index)
        ns = [0, 1, 2, 1000, M64 - 1]
        assert s.u64_at(np.array(ns, np.uint64)).tolist() == [ref_u64(s.key, n) for n in ns]
        f = s.f32_at(np.arange(100, dtype=np.uint64))
        assert f.dtype == np.float32
        assert f.tolist() == [(ref_u64(s.key, n) >> 40) / 16777216.0 for n in range(100)]
        bounds = np.array([1, 2, 3, 1000, (1 << 32) - 1] * 20, np.uint64)
        got = s.below(np.arange(100, dtype=np.uint64), bounds).tolist()
        assert got == [(ref_u64(s.key, n) * int(b)) >> 64 for n, b in enumerate(bounds.tolist())]


def test_permutations():
    for seed, epoch, rows in [(42, 0, 100), (42, 1, 100), (3, 0, 256), (1, 5, 1), (1, 0, 0)]:
        p = rng.permutation(seed, epoch, rows)
        assert p.tolist() == ref_permutation(seed, epoch, rows)
        assert sorted(p.tolist()) == list(range(rows))
    assert rng.permutation(42, 0, 100).tolist() != rng.permutation(42, 1, 100).tolist()
    assert rng.permutation(42, 0, 100).tolist() != rng.permutation(43, 0, 100).tolist()


def test_initial_parameters_are_bounded_and_seeded():
    w = rng.init_param(1, 0, (4, 3), fan_in=3)
    assert w.dtype == np.float32 and w.shape == (4, 3)
    bound = np.float32(1) / np.sqrt(np.float32(3))
    assert (np.abs(w) <= bound).all()
    assert (w == rng.init_param(1, 0, (4, 3), fan_in=3)).all()
    assert not (w == rng.init_param(2, 0, (4, 3), fan_in=3)).all()
    assert not (w == rng.init_param(1, 1, (4, 3), fan_in=3)).all()
    # Element i is (2u − 1)·bound in f32 with u number i of stream ("init", p).
    key = ref_key(1, "init", 0)
    u = np.float32((ref_u64(key, 5) >> 40) / 16777216.0)
    assert w.reshape(-1)[5] == (u * np.float32(2) - np.float32(1)) * bound


def test_below_takes_bounds_past_32_bits():
    s = rng.Stream(5, "sample", 9)
    bounds = np.array([1 << 32, (1 << 40) + 3, M64, 7], np.uint64)
    got = s.below(np.arange(4, dtype=np.uint64), bounds).tolist()
    assert got == [(ref_u64(s.key, n) * int(b)) >> 64 for n, b in enumerate(bounds.tolist())]
