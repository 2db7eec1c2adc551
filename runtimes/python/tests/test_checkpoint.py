"""Atomic writes, safetensors, and the native checkpoint format."""
import json
import os

import numpy as np
import pytest

from artha_runtime import checkpoint
from artha_runtime.digest import named_digest
from artha_runtime.errors import BadInput, WriteFailed


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    p = tmp_path / "ck.bin"
    checkpoint.write_atomic(str(p), b"first")
    checkpoint.write_atomic(str(p), b"second version")
    assert p.read_bytes() == b"second version"
    assert os.listdir(tmp_path) == ["ck.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "ck.bin"
    checkpoint.write_atomic(str(p), b"good")

    def no_sync(fd):
        raise OSError(5, "Input/output error")

    # The data never reached the disk: the old checkpoint must stand, and
    # the temporary file must be gone.
    monkeypatch.setattr(os, "fsync", no_sync)
    with pytest.raises(WriteFailed, match="Input/output error") as e:
        checkpoint.write_atomic(str(p), b"half")
    assert e.value.exit_code == 4
    assert p.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["ck.bin"]


def test_an_unwritable_target_is_reported(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(WriteFailed, match="cannot write checkpoint") as e:
        checkpoint.write_atomic(str(tmp_path / "dir"), b"x")  # a directory is in the way
    assert str(tmp_path / "dir") in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["dir"]
    with pytest.raises(WriteFailed):
        checkpoint.write_atomic(str(tmp_path / "missing" / "ck"), b"x")


def test_safetensors_round_trip_is_reproducible(tmp_path):
    tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(1.5, np.float32),
               "i": np.array([7, -7], np.int64)}
    raw = checkpoint.encode_safetensors(tensors, {"z": "1", "a": "2"})
    assert raw == checkpoint.encode_safetensors(dict(reversed(tensors.items())), {"a": "2", "z": "1"})
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert list(header) == ["__metadata__", "a", "b", "i"]
    assert header["b"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [4, 28]}
    p = tmp_path / "t.safetensors"
    p.write_bytes(raw)
    got, meta = checkpoint.read_safetensors(str(p))
    assert meta == {"a": "2", "z": "1"}
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and (got[k] == v).all()


def test_corrupt_safetensors_are_rejected(tmp_path):
    p = tmp_path / "t.safetensors"
    for raw, needle in [(b"\1\0", "too short"), (b"\xff" * 8 + b"{}", "header length"),
                        (b"\2\0\0\0\0\0\0\0{x", "not a safetensors file")]:
        p.write_bytes(raw)
        with pytest.raises(BadInput, match=needle):
            checkpoint.read_safetensors(str(p))
    good = checkpoint.encode_safetensors({"w": np.zeros(4, np.float32)})
    p.write_bytes(good[:-1])
    with pytest.raises(BadInput, match="tensor `w`: data offsets"):
        checkpoint.read_safetensors(str(p))


MODEL = {"kind": "mlp", "task": "classify", "inputs": 3, "outputs": 2, "hidden": [4]}


def params():
    r = np.random.default_rng(0)
    return {"fc.0.weight": r.standard_normal((4, 3)).astype(np.float32),
            "fc.0.bias": r.standard_normal(4).astype(np.float32),
            "fc.1.weight": r.standard_normal((2, 4)).astype(np.float32),
            "fc.1.bias": r.standard_normal(2).astype(np.float32)}


def test_native_format_round_trip_and_checks(tmp_path):
    ps = params()
    slots = ["exp_avg", "exp_avg_sq"]
    state = {f"optim.{s}.{n}": a * 0.5 for s in slots for n, a in ps.items()}
    train = {"step": 10, "epoch": 1, "seed": 3, "batch_size": 32,
             "optimizer": {"kind": "adamw", "lr": 0.05, "weight_decay": 0.01, "momentum": 0.0,
                           "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
             "optimizer_t": 10, "data_digest": "ab" * 32, "rows": 256}
    p = str(tmp_path / checkpoint.step_file(10))
    assert p.endswith("step-00000010.safetensors")
    wd = checkpoint.save(p, MODEL, ps, (slots, state, train))
    assert wd == named_digest(ps)
    ck = checkpoint.load(p)
    assert ck["model"] == MODEL and ck["train"] == train and ck["weights_digest"] == wd
    assert list(ck["params"]) == list(ps)
    assert all((ck["params"][n] == a).all() for n, a in ps.items())
    assert all((ck["optimizer"][k] == a).all() for k, a in state.items())
    _, meta = checkpoint.read_safetensors(p)
    assert meta["format"] == checkpoint.FORMAT
    assert meta["optimizer_digest"] == named_digest(
        [(f"optim.{s}.{n}", state[f"optim.{s}.{n}"]) for n in ps for s in slots])
    # Same input, same bytes (and so the same CID).
    q = str(tmp_path / "again.safetensors")
    checkpoint.save(q, MODEL, ps, (slots, state, train))
    assert open(p, "rb").read() == open(q, "rb").read()

    # A changed weight no longer matches weights_digest, a changed optimizer
    # slot no longer matches optimizer_digest.
    tensors, meta = checkpoint.read_safetensors(p)
    tensors["fc.1.bias"] = tensors["fc.1.bias"] + np.float32(1)
    open(p, "wb").write(checkpoint.encode_safetensors(tensors, meta))
    with pytest.raises(BadInput, match="weights_digest"):
        checkpoint.load(p)
    tensors["fc.1.bias"] = ps["fc.1.bias"]
    tensors["optim.exp_avg.fc.0.bias"] = tensors["optim.exp_avg.fc.0.bias"] * 2
    open(p, "wb").write(checkpoint.encode_safetensors(tensors, meta))
    with pytest.raises(BadInput, match="optimizer_digest"):
        checkpoint.load(p)
    open(p, "wb").write(checkpoint.encode_safetensors(ps, {"format": "other"}))
    with pytest.raises(BadInput, match="not an artha-runtime checkpoint"):
        checkpoint.load(p)


def test_weights_only_and_latest(tmp_path):
    checkpoint.save(str(tmp_path / "final.safetensors"), MODEL, params())
    ck = checkpoint.load(str(tmp_path / "final.safetensors"))
    assert ck["train"] is None and ck["optimizer"] is None
    assert checkpoint.latest(str(tmp_path)) is None
    for s in (2, 10, 9):
        checkpoint.save(str(tmp_path / checkpoint.step_file(s)), MODEL, params())
    assert checkpoint.latest(str(tmp_path)).endswith("step-00000010.safetensors")
    with pytest.raises(BadInput, match="ARTHA_RESUME"):
        checkpoint.latest(str(tmp_path / "nope"))


def test_malformed_metadata_is_corruption_not_a_crash(tmp_path):
    p = str(tmp_path / "ck.safetensors")
    ps = params()
    for meta, needle in [
        ({"model": json.dumps({**MODEL, "hidden": "4"})}, "metadata `model`"),
        ({"model": json.dumps({**MODEL, "extra": 1})}, "metadata `model`"),
        ({"model": "{"}, "metadata `model`"),
        ({"train": json.dumps({"step": 1})}, "metadata `train`"),
        ({"train": json.dumps({k: 0 for k in checkpoint.TRAIN_KEYS})}, "metadata `train`"),
        ({"train": json.dumps({**{k: 0 for k in checkpoint.TRAIN_KEYS}, "data_digest": "ab" * 32})},
         "optimizer settings"),
    ]:
        full = {"format": checkpoint.FORMAT, "model": json.dumps(MODEL),
                "weights_digest": named_digest(ps), **meta}
        with open(p, "wb") as f:
            f.write(checkpoint.encode_safetensors(ps, full))
        with pytest.raises(BadInput, match=needle):
            checkpoint.load(p)
