import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PKG = HERE.parent
ROOT = PKG.parents[1]
sys.path.insert(0, str(PKG))


@pytest.fixture(params=["blake3", "pure-python"])
def backend(request, monkeypatch):
    """Runs a test once with the `blake3` package and once with the
    bundled pure-Python BLAKE3."""
    monkeypatch.setenv("ARTHA_PURE_BLAKE3", "1" if request.param == "pure-python" else "0")
    from artha_runtime import hashing

    assert hashing.backend() == request.param, "the blake3 package must be installed for the tests"
    return request.param
