"""Datasets from the data directory: CSV or NPY, read exactly as the native
runtime reads them (runtimes/native/src/data.rs), so both see the same
numbers and their batch digests agree.

- **CSV**: comma separated, one sample per line, the first line a header of
  column names (a first line made only of numbers is taken as data). For
  training the **last column is the target**: a class index (a
  non-negative integer below 2^24) for classification, a number for
  regression. Every value must parse as a finite number that fits `f32`;
  inputs are parsed as f64 and rounded to f32.
- **NPY** (numpy's `.npy`, versions 1–3, C order, little endian): `x.npy`
  of shape `[n, features]` (`<f4`, `<f8`, `<i4`, `<i8` or `|u1`) and for
  training `y.npy` beside it of shape `[n]` (class indices, or regression
  targets) or `[n, outputs]` (regression).

Which file: `ARTHA_DATA_FILE` (a name inside the data directory) when set;
else the first of `train.csv`, `data.csv`, `x.npy` (training) or
`inputs.csv`, `inputs.npy`, `x.npy`, `data.csv` (inference); else the
directory's only `.csv` file. Every problem is a `BadInput` naming the file
and, for CSV, the line and column.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Optional

import numpy as np

from .digest import NamedDigest
from .errors import BadInput

#: Largest data file read, bytes (the whole file is held in memory).
MAX_DATA_BYTES = 8 << 30
_F32_MAX = float(np.finfo(np.float32).max)
_NUMBER = re.compile(r"[+-]?(inf|infinity|nan|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)", re.I)


@dataclasses.dataclass
class Dataset:
    """Samples in memory: `x` is `f32 [rows, features]`; `y` is `i64 [rows]`
    (classes), `f32 [rows, dim]` (regression) or None (inference inputs)."""

    x: np.ndarray
    y: Optional[np.ndarray]
    source: str

    @property
    def rows(self) -> int:
        return self.x.shape[0]

    @property
    def features(self) -> int:
        return self.x.shape[1]

    def classes_needed(self) -> Optional[int]:
        """`max label + 1` for class labels, else None."""
        if self.y is None or self.y.dtype != np.int64 or self.y.size == 0:
            return None
        return int(self.y.max()) + 1

    def digest(self) -> str:
        """Named-tensor digest of the whole dataset (`x`, and `y` if present):
        what a checkpoint records so a resume on other data is refused."""
        d = NamedDigest().push("x", self.x)
        if self.y is not None:
            d.push("y", self.y)
        return d.hexdigest()


def _bad(path: str, msg: str) -> BadInput:
    return BadInput(msg, field="data", file=path)


def check_relative(var: str, name: str) -> None:
    """`name` must be a plain relative path inside a mount."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BadInput(f"`{name}` must be a relative path without `..`", field=var)


def find(directory: str, explicit: Optional[str], training: bool) -> str:
    """The data file in `directory` (see the module docs)."""
    if explicit is not None:
        check_relative("ARTHA_DATA_FILE", explicit)
        p = os.path.join(directory, explicit)
        if not os.path.isfile(p):
            raise BadInput("data file not found", field="ARTHA_DATA_FILE", file=p)
        return p
    names = ["train.csv", "data.csv", "x.npy"] if training else \
        ["inputs.csv", "inputs.npy", "x.npy", "data.csv"]
    for n in names:
        p = os.path.join(directory, n)
        if os.path.isfile(p):
            return p
    try:
        entries = sorted(os.listdir(directory))
    except OSError as e:
        raise BadInput(f"cannot read the data directory: {e.strerror}", field="data",
                       file=directory) from None
    csvs = [os.path.join(directory, e) for e in entries
            if e.endswith(".csv") and os.path.isfile(os.path.join(directory, e))]
    if len(csvs) == 1:
        return csvs[0]
    if not csvs:
        raise BadInput(f"no data file: looked for {', '.join(names)} or a single .csv file",
                       field="data", file=directory)
    raise BadInput("several .csv files and none named train.csv/data.csv: set ARTHA_DATA_FILE",
                   field="data", file=directory)


def _read(path: str) -> bytes:
    try:
        if os.path.getsize(path) > MAX_DATA_BYTES:
            raise _bad(path, f"larger than {MAX_DATA_BYTES} bytes")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"cannot read the data file: {e.strerror}", field="data", file=path) from None


def _number(s: str) -> Optional[float]:
    """A finite number that fits f32, parsed as Rust's `f64::from_str`."""
    s = s.strip()
    if not _NUMBER.fullmatch(s):
        return None
    v = float(s)
    if not math.isfinite(v) or abs(v) > _F32_MAX and not math.isfinite(_to_f32(v)):
        return None
    return v


def _to_f32(v: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def _parse_csv(path: str):
    """`(values f64 [rows, cols], 1-based line number of each row)`."""
    raw = _read(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(path, f"not UTF-8 text: {e}") from None
    rows, lines, cols, header_seen = [], [], 0, False
    # Rust's str::lines splits on \n only (a \r before it is stripped).
    for i, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        if not line.strip():
            continue
        fields = line.split(",")
        values = [_number(f) for f in fields]
        if not header_seen:
            header_seen = True
            cols = len(fields)
            if any(v is None for v in values):
                continue  # a header
        if len(fields) != cols:
            raise _bad(path, f"line {i}: {len(fields)} columns, the header has {cols}")
        for c, v in enumerate(values):
            if v is None:
                raise _bad(path, f"line {i}, column {c + 1}: `{fields[c].strip()[:40]}` "
                                 "is not a finite number")
        rows.append(values)
        lines.append(i)
    if not rows:
        raise _bad(path, "no data rows")
    return np.array(rows, dtype=np.float64).reshape(len(rows), cols), lines


def _labels(path: str, y: np.ndarray, where) -> np.ndarray:
    ok = (y >= 0) & (np.floor(y) == y) & (y < float(1 << 24))
    if not ok.all():
        i = int(np.argmin(ok))
        v = y[i]
        shown = int(v) if math.isfinite(v) and v == int(v) else v
        raise _bad(path, f"{where(i)}: label {shown} is not a class index (0, 1, 2, …)")
    return y.astype(np.int64)


def _finite_f32(path: str, v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        f = v.astype(np.float32)
    bad = ~np.isfinite(f)
    if bad.any():
        i = int(np.argmax(bad.reshape(-1)))
        raise _bad(path, f"element {i} ({v.reshape(-1)[i]}) is not a finite f32")
    return f


def _header_value(header: str, key: str) -> Optional[str]:
    pat = f"'{key}':"
    at = header.find(pat)
    return None if at < 0 else header[at + len(pat):].lstrip()


_NPY_DTYPES = {"<f4": "<f4", "<i4": "<i4", "<f8": "<f8", "<i8": "<i8", "|u1": "u1", "<u1": "u1"}


def load_npy(path: str):
    """`(values f64 array of the file's shape)` of a `.npy` file."""
    raw = _read(path)
    if len(raw) < 10 or raw[:6] != b"\x93NUMPY":
        raise _bad(path, "not a .npy file (bad magic)")
    if raw[6] == 1:
        hlen, hstart = int.from_bytes(raw[8:10], "little"), 10
    elif raw[6] in (2, 3) and len(raw) >= 12:
        hlen, hstart = int.from_bytes(raw[8:12], "little"), 12
    else:
        raise _bad(path, f"unsupported .npy version {raw[6]}")
    try:
        header = raw[hstart:hstart + hlen].decode("utf-8")
        if len(raw) < hstart + hlen:
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise _bad(path, "truncated .npy header") from None
    descr = _header_value(header, "descr")
    if descr is None or not descr.startswith("'"):
        raise _bad(path, "no `descr` in the .npy header")
    descr = descr[1:].split("'")[0]
    fortran = _header_value(header, "fortran_order")
    if fortran is None:
        raise _bad(path, "no `fortran_order` in the .npy header")
    if fortran.startswith("True"):
        raise _bad(path, "Fortran-order arrays are not supported: save with C order")
    shape_txt = _header_value(header, "shape")
    if shape_txt is None or not shape_txt.startswith("("):
        raise _bad(path, "no `shape` in the .npy header")
    shape = []
    for s in shape_txt[1:].split(")")[0].split(","):
        s = s.strip()
        if s:
            if not s.isdigit():
                raise _bad(path, f"bad dimension `{s}`")
            shape.append(int(s))
    if descr not in _NPY_DTYPES:
        raise _bad(path, f"dtype `{descr}` is not supported (use <f4, <f8, <i4, <i8 or |u1)")
    dt = np.dtype(_NPY_DTYPES[descr])
    count = math.prod(shape)
    data = raw[hstart + hlen:]
    if len(data) != count * dt.itemsize:
        raise _bad(path, f"{len(data)} data bytes, shape {shape} of {descr} needs {count * dt.itemsize}")
    return np.frombuffer(data, dtype=dt).astype(np.float64).reshape(shape)


def _npy_x(path: str) -> np.ndarray:
    a = load_npy(path)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    elif a.ndim != 2:
        raise _bad(path, f"inputs must be 1-D or 2-D, got shape {list(a.shape)}")
    if a.shape[0] == 0:
        raise _bad(path, "no data rows")
    return _finite_f32(path, a)


def load_train(path: str, task: str) -> Dataset:
    """Training data (inputs and targets) for `task` (`classify`/`regress`)."""
    if path.endswith(".npy"):
        x = _npy_x(path)
        ypath = os.path.join(os.path.dirname(path), "y.npy")
        y = load_npy(ypath)
        if y.ndim == 0 or y.shape[0] != x.shape[0] or y.ndim > 2:
            raise _bad(ypath, f"targets of shape {list(y.shape)} do not match {x.shape[0]} input rows")
        if task == "classify":
            if y.ndim != 1:
                raise _bad(ypath, "class labels must be one-dimensional")
            targets = _labels(ypath, y, lambda i: f"row {i}")
        else:
            targets = _finite_f32(ypath, y.reshape(y.shape[0], -1))
        return Dataset(x=x, y=targets, source=path)
    table, lines = _parse_csv(path)
    if table.shape[1] < 2:
        raise _bad(path, "need at least one input column and a target column")
    x = table[:, :-1].astype(np.float32)
    yv = table[:, -1]
    if task == "classify":
        targets = _labels(path, yv, lambda i: f"line {lines[i]}")
    else:
        targets = yv.astype(np.float32).reshape(-1, 1)
    return Dataset(x=np.ascontiguousarray(x), y=targets, source=path)


def load_inputs(path: str, features: int) -> Dataset:
    """Inference inputs with `features` columns (a CSV may carry one extra,
    last column, e.g. the labels of a training file: it is ignored)."""
    if path.endswith(".npy"):
        x = _npy_x(path)
    else:
        table, _ = _parse_csv(path)
        if table.shape[1] == features + 1:
            table = table[:, :features]
        x = np.ascontiguousarray(table.astype(np.float32))
    if x.shape[1] != features:
        raise _bad(path, f"inputs have {x.shape[1]} columns, the model takes {features}")
    return Dataset(x=x, y=None, source=path)


def npy_bytes(a: np.ndarray) -> bytes:
    """A version-1 `.npy` encoding of `a` (C order, little endian)."""
    import io
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, order="C"), allow_pickle=False)
    return buf.getvalue()
