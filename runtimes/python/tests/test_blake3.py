"""The bundled pure-Python BLAKE3 against the `blake3` package."""
import os
import random

import blake3
import pytest

from artha_runtime import hashing
from artha_runtime._blake3 import Blake3

# Lengths on both sides of every boundary: block (64), chunk (1024), and
# the tree's power-of-two chunk counts.
LENGTHS = [0, 1, 63, 64, 65, 127, 128, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 3073,
           4095, 4096, 4097, 5 * 1024, 8 * 1024 + 1, 16 * 1024, 16 * 1024 + 63, 31 * 1024 + 7]


def test_known_vector():
    # BLAKE3("") from the reference implementation's test vectors.
    assert Blake3().hexdigest() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


@pytest.mark.parametrize("n", LENGTHS)
def test_matches_the_blake3_package(n):
    data = os.urandom(n)
    want = blake3.blake3(data).hexdigest()
    assert Blake3(data).hexdigest() == want
    # Fed in uneven pieces, and through a copy taken half way.
    rnd = random.Random(n)
    h, i = Blake3(), 0
    while i < n:
        step = rnd.choice([1, 7, 64, 100, 1024, 1500])
        h.update(data[i:i + step])
        i += step
        if i >= n // 2 and n and not hasattr(h, "_copied"):
            c = h.copy()
            c.update(data[i:])
            assert c.hexdigest() == want
            h._copied = True
    assert h.hexdigest() == want
    assert h.hexdigest() == want  # digest() does not consume the state


def test_memoryview_and_bytearray_inputs():
    data = bytearray(os.urandom(3000))
    assert Blake3(memoryview(data)[10:2500]).digest() == blake3.blake3(bytes(data[10:2500])).digest()


def test_backend_switch(monkeypatch):
    monkeypatch.setenv("ARTHA_PURE_BLAKE3", "1")
    assert hashing.backend() == "pure-python"
    assert isinstance(hashing.new(), Blake3)
    monkeypatch.setenv("ARTHA_PURE_BLAKE3", "0")
    assert hashing.backend() == "blake3"
    assert hashing.blake3_hex(b"artha") == blake3.blake3(b"artha").hexdigest()
