"""Checkpoints: atomic writes, safetensors files, and the checkpoint format
the native runtime reads and writes (runtimes/native/src/checkpoint.rs).

**Atomic write**: bytes go to a temporary file beside the target
(`.<name>.tmp-<pid>`), which is fsynced, renamed into place, and the
directory fsynced: a reader (or a crash) never sees half a checkpoint.

**safetensors** (https://huggingface.co/docs/safetensors): u64 LE header
length ‖ JSON header ‖ tensor data. `encode_safetensors` writes tensors
sorted by name with sorted metadata keys and the header padded with spaces
to a multiple of 8 bytes, so the same tensors always give the same bytes
(and the same checkpoint CID).

**artha-runtime checkpoint** (`format` = `artha-runtime-checkpoint/1`):
F32 tensors — the parameters under their model names (`fc.0.weight`, …) and
the optimizer state as `optim.<slot>.<parameter>` — and string metadata
`model` (architecture JSON), `weights_digest` (named-tensor digest of the
parameters), and for a training checkpoint `train` (position and settings
JSON) and `optimizer_digest` (named-tensor digest of the `optim.*`
tensors, in parameter then slot order). Checkpoints written here load in
the native runtime and the other way round.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from . import lm
from .digest import NamedDigest
from .errors import BadInput, WriteFailed

FORMAT = "artha-runtime-checkpoint/1"
#: Largest safetensors header read, bytes.
MAX_HEADER = 100 << 20

_ST_DTYPES = {
    "F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "U8": np.dtype("u1"),
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def write_atomic(path: str, data: bytes) -> None:
    """Writes `data` to `path` through a synced temporary file and a rename."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise WriteFailed(f"cannot write checkpoint: {e.strerror or e}", file=path) from None
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not open directories; the rename stands
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def torch_save_atomic(obj, path: str) -> None:
    """`torch.save(obj, path)` through a synced temporary file and a rename."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    write_atomic(path, buf.getvalue())


def encode_safetensors(tensors: Mapping[str, np.ndarray],
                       metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """The safetensors encoding of numpy arrays (byte-for-byte reproducible)."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        dt = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
        if dt not in _ST_NAMES:
            raise TypeError(f"tensor `{name}`: dtype {a.dtype} is not supported")
        raw = np.asarray(a, dtype=dt, order="C").tobytes()
        header[name] = {"dtype": _ST_NAMES[dt], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _corrupt(path: str, msg: str) -> BadInput:
    return BadInput(msg, field="checkpoint", file=path)


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """`(tensors in file order, metadata)` of a safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise BadInput(f"cannot read checkpoint: {e.strerror or e}", field="checkpoint",
                       file=path) from None
    if len(raw) < 8:
        raise _corrupt(path, "not a safetensors file: too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        raise _corrupt(path, "not a safetensors file: bad header length")
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise _corrupt(path, f"not a safetensors file: {e}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "not a safetensors file: header is not an object")
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            dt = _ST_DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            start, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise _corrupt(path, f"tensor `{name}`: bad or unsupported header entry") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= start <= end <= len(data) or end - start != count * dt.itemsize:
            raise _corrupt(path, f"tensor `{name}`: data offsets do not fit its shape")
        tensors[name] = np.frombuffer(data[start:end], dtype=dt).reshape(shape).copy()
    return tensors, {str(k): str(v) for k, v in meta.items()}


# ---- the artha-runtime checkpoint format --------------------------------


def param_names(layers: int) -> List[str]:
    """`fc.0.weight`, `fc.0.bias`, … for `layers` linear layers."""
    return [f"fc.{i}.{w}" for i in range(layers) for w in ("weight", "bias")]


def save(path: str, model_config: dict, params: Mapping[str, np.ndarray],
         optimizer: Optional[Tuple[List[str], Mapping[str, np.ndarray], dict]] = None) -> str:
    """Writes an artha-runtime checkpoint atomically; returns the weight
    digest (hex).

    `model_config` is the architecture (`kind`, `task`, `inputs`, `outputs`,
    `hidden`); `params` the parameters in canonical order (float32). For a
    training checkpoint, `optimizer` is `(slots, state, train)`: the slot
    names, the state tensors keyed `optim.<slot>.<param>` and the train
    state JSON object (step, epoch, seed, batch_size, optimizer,
    optimizer_t, data_digest, rows).
    """
    tensors: Dict[str, np.ndarray] = {}
    wd = NamedDigest()
    for name, a in params.items():
        a = np.asarray(a, dtype=np.float32, order="C")
        wd.push(name, a)
        tensors[name] = a
    weights_digest = wd.hexdigest()
    meta = {
        "format": FORMAT,
        "model": json.dumps(model_config, separators=(",", ":")),
        "weights_digest": weights_digest,
    }
    if optimizer is not None:
        slots, state, train = optimizer
        od = NamedDigest()
        for pname in params:
            for slot in slots:
                key = f"optim.{slot}.{pname}"
                a = np.asarray(state[key], dtype=np.float32, order="C")
                od.push(key, a)
                tensors[key] = a
        meta["optimizer_digest"] = od.hexdigest()
        meta["train"] = json.dumps(train, separators=(",", ":"))
    write_atomic(path, encode_safetensors(tensors, meta))
    return weights_digest


def load(path: str) -> dict:
    """Reads and checks an artha-runtime checkpoint: its format, the weight
    digest and (with training state) the optimizer digest. Returns
    `{"model", "params", "weights_digest", "train", "optimizer"}` (the last
    two None for a weights-only file)."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise _corrupt(path, f"not an artha-runtime checkpoint (format must be `{FORMAT}`)")

    def field(key):
        if key not in meta:
            raise _corrupt(path, f"metadata `{key}` is missing")
        try:
            return json.loads(meta[key])
        except ValueError as e:
            raise _corrupt(path, f"metadata `{key}`: {e}") from None

    model = field("model")
    if lm.is_config(model):
        shapes = dict(lm.param_shapes(lm.from_checkpoint_config(model, path)))
        names = list(shapes)
        for name, shape in shapes.items():
            if name in tensors and tuple(tensors[name].shape) != shape:
                raise _corrupt(path, f"tensor `{name}` has shape {list(tensors[name].shape)}, "
                                     f"the configuration needs {list(shape)}")
    elif not (isinstance(model, dict) and set(model) == set(MODEL_KEYS)
            and model["kind"] in ("mlp", "logreg") and model["task"] in ("classify", "regress")
            and all(_is_uint(model[k]) for k in ("inputs", "outputs"))
            and isinstance(model["hidden"], list) and all(map(_is_uint, model["hidden"]))):
        raise _corrupt(path, f"metadata `model` is not a model configuration ({', '.join(MODEL_KEYS)})")
    else:
        names = param_names(len(model["hidden"]) + 1)
    params = {}
    wd = NamedDigest()
    for name in names:
        if name not in tensors:
            raise _corrupt(path, f"tensor `{name}` is missing")
        if tensors[name].dtype != np.float32:
            raise _corrupt(path, f"tensor `{name}` is not F32")
        params[name] = tensors[name]
        wd.push(name, tensors[name])
    if wd.hexdigest() != meta.get("weights_digest"):
        raise _corrupt(path, "weights do not match the checkpoint's weights_digest")
    train = field("train") if "train" in meta else None
    if train is not None and not (isinstance(train, dict) and set(train) == set(TRAIN_KEYS) and all(
            _is_uint(train[k]) for k in TRAIN_KEYS if k not in ("optimizer", "data_digest"))
            and isinstance(train["data_digest"], str) and re.fullmatch(r"[0-9a-f]{64}", train["data_digest"])):
        raise _corrupt(path, f"metadata `train` is not a training state ({', '.join(TRAIN_KEYS)})")
    optimizer = None
    if train is not None:
        from .env import OptimizerConfig

        try:
            opt = OptimizerConfig(**train["optimizer"])
        except (TypeError, KeyError):
            raise _corrupt(path, "metadata `train`: bad optimizer settings") from None
        od = NamedDigest()
        optimizer = {}
        for name in params:
            for slot in opt.state_slots():
                key = f"optim.{slot}.{name}"
                if key not in tensors:
                    raise _corrupt(path, f"tensor `{key}` is missing")
                od.push(key, tensors[key])
                optimizer[key] = tensors[key]
        if od.hexdigest() != meta.get("optimizer_digest"):
            raise _corrupt(path, "optimizer state does not match the checkpoint's optimizer_digest")
    return {"model": model, "params": params, "weights_digest": wd.hexdigest(),
            "train": train, "optimizer": optimizer}


#: Fields of the `model` metadata (the native `ModelConfig`).
MODEL_KEYS = ("kind", "task", "inputs", "outputs", "hidden")
#: Fields of the `train` metadata (the native `TrainState`).
TRAIN_KEYS = ("step", "epoch", "seed", "batch_size", "optimizer", "optimizer_t", "data_digest", "rows")


def _is_uint(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def step_file(step: int) -> str:
    """The checkpoint file name after `step`: `step-00000010.safetensors`."""
    return f"step-{step:08d}.safetensors"


def latest(directory: str) -> Optional[str]:
    """The `step-*.safetensors` in `directory` with the highest step, if any."""
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise BadInput(f"cannot list the checkpoint directory: {e.strerror}",
                       field="ARTHA_RESUME", file=directory) from None
    best = None
    for n in names:
        if n.startswith("step-") and n.endswith(".safetensors") and n[5:-12].isdigit():
            s = int(n[5:-12])
            if best is None or s > best[0]:
                best = (s, os.path.join(directory, n))
    return None if best is None else best[1]
