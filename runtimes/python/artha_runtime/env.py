"""The run configuration, read from the environment of the runtime protocol.

The same variables, defaults and checks as the native runtime
(runtimes/native/src/config.rs); an empty value counts as unset, and every
error names its variable:

| variable | meaning | default |
|---|---|---|
| `ARTHA_MODE` (or `ARTHA_JOB_KIND`) | `train` or `infer` | `train` |
| `ARTHA_JOB_ID` | shown in the banner | `local` |
| `EPOCHS`, `BATCH_SIZE`, `LEARNING_RATE`, `ARTHA_SEED` | training | 1, 32, 0.001, 0 |
| `ARTHA_PROOF_WINDOW` | proof window; the default checkpoint interval | 100 |
| `ARTHA_EVENTS` | events file | `/artha/events.jsonl` |
| `ARTHA_MODEL_DIR`, `ARTHA_DATA_DIR`, `ARTHA_CHECKPOINT_DIR` | the mounts | `/model`, `/data`, `/checkpoints` |
| `ARTHA_OUTPUT_DIR` | where inference writes | the checkpoint dir |
| `ARTHA_MODEL_KIND` | `mlp`, `logreg` or `llama` (runtimes/LM.md) | `mlp` |
| `ARTHA_TASK` | `classify` or `regress` | `classify` |
| `ARTHA_HIDDEN` | hidden widths, e.g. `128,64` | `64` (none for `logreg`) |
| `ARTHA_CLASSES` | number of classes | largest label + 1 |
| `ARTHA_OPTIMIZER` | `adamw` or `sgd` | `adamw` |
| `ARTHA_WEIGHT_DECAY`, `ARTHA_MOMENTUM` | optimizer settings | 0.01 (AdamW) / 0, 0 |
| `ARTHA_CHECKPOINT_EVERY` | steps between checkpoints (0 = final only) | the proof window |
| `ARTHA_RESUME` | `latest`, or a checkpoint file | none |
| `ARTHA_MAX_STEPS` | stop after this global step | none |
| `ARTHA_DATA_FILE` | data file name in the data dir | see `data.find` |
| `ARTHA_WEIGHTS` | weights file name in the model dir (inference) | |
| `ARTHA_LOG_EVERY` | progress line every N steps | a tenth of an epoch |
| `ARTHA_DEVICE` | `cpu`, `cuda` or `cuda:N` | `cpu` |
| `ARTHA_THREADS` | CPU threads (Python runtimes only) | 1 |
| `ARTHA_SEQ_LEN` | LM sequence length | `max_position_embeddings` |
| `ARTHA_MAX_NEW_TOKENS` | LM inference: tokens generated per prompt | 64 |
| `ARTHA_TEMPERATURE` | LM inference: 0 = greedy, else seeded sampling | 0 |
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Callable, List, Mapping, Optional

from .errors import ArthaError, BadInput

MODEL_MOUNT = "/model"
DATA_MOUNT = "/data"
CHECKPOINT_MOUNT = "/checkpoints"
EVENTS_PATH = "/artha/events.jsonl"

#: Largest batch accepted.
MAX_BATCH = 1 << 20
_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
_INT = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(r"[+-]?(inf|infinity|nan|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)", re.I)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer hyper-parameters, PyTorch's defaults (stored in
    checkpoints; a resume must use the same ones)."""

    kind: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    @staticmethod
    def defaults(kind: str, lr: float) -> "OptimizerConfig":
        return OptimizerConfig(kind=kind, lr=lr, weight_decay=0.01 if kind == "adamw" else 0.0)

    def validate(self) -> "OptimizerConfig":
        for var, v, ok in (
            ("LEARNING_RATE", self.lr, self.lr > 0),
            ("ARTHA_WEIGHT_DECAY", self.weight_decay, self.weight_decay >= 0),
            ("ARTHA_MOMENTUM", self.momentum, 0 <= self.momentum < 1),
            ("beta1", self.beta1, 0 <= self.beta1 < 1),
            ("beta2", self.beta2, 0 <= self.beta2 < 1),
            ("eps", self.eps, self.eps > 0),
        ):
            if not (math.isfinite(v) and ok):
                raise BadInput(f"{v} is out of range", field=var)
        return self

    def state_slots(self) -> List[str]:
        """Names of the state tensors kept per parameter."""
        if self.kind == "adamw":
            return ["exp_avg", "exp_avg_sq"]
        return ["momentum_buffer"] if self.momentum > 0 else []

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to know (see the module docs)."""

    mode: str = "train"
    job_id: str = "local"
    epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    proof_window: int = 100
    optimizer: OptimizerConfig = OptimizerConfig()
    kind: Optional[str] = None
    task: Optional[str] = None
    hidden: Optional[List[int]] = None
    classes: Optional[int] = None
    checkpoint_every: int = 100
    resume: Optional[str] = None
    max_steps: Optional[int] = None
    data_file: Optional[str] = None
    weights: Optional[str] = None
    log_every: Optional[int] = None
    device: str = "cpu"
    threads: int = 1
    model_dir: str = MODEL_MOUNT
    data_dir: str = DATA_MOUNT
    checkpoint_dir: str = CHECKPOINT_MOUNT
    output_dir: str = CHECKPOINT_MOUNT
    events: str = EVENTS_PATH
    seq_len: Optional[int] = None
    max_new_tokens: int = 64
    temperature: float = 0.0


def _clip(v: str) -> str:
    return v if len(v) <= 64 else v[:64] + "…"


def parse_uint(var: str, v: str, top: int = _U64_MAX) -> int:
    """A non-negative integer, or a `BadInput` naming `var`."""
    t = v.strip()
    if not _INT.fullmatch(t) or int(t) > top:
        raise BadInput(f"`{_clip(v)}` is not valid: expected an integer in 0..={top}", field=var)
    return int(t)


def parse_float(var: str, v: str) -> float:
    """A number (range checks are the caller's), or a `BadInput` naming `var`."""
    t = v.strip()
    if not _FLOAT.fullmatch(t):
        raise BadInput(f"`{_clip(v)}` is not valid: expected a number", field=var)
    return float(t)


def _choice(var: str, v: Optional[str], choices: Mapping[str, str], what: str) -> Optional[str]:
    if v is None:
        return None
    if v not in choices:
        names = ", ".join(sorted(set(choices.values())))
        raise BadInput(f"`{_clip(v)}` is not {what} ({names})", field=var)
    return choices[v]


def from_lookup(get: Callable[[str], Optional[str]]) -> RunConfig:
    """Reads the configuration through `get` (a `dict.get`, `os.environ.get`)."""

    def var(k: str) -> Optional[str]:
        v = get(k)
        return v if v is not None and v.strip() else None

    def num(k: str, top: int = _U64_MAX) -> Optional[int]:
        v = var(k)
        return None if v is None else parse_uint(k, v, top)

    def flt(k: str) -> Optional[float]:
        v = var(k)
        return None if v is None else parse_float(k, v)

    mode_var = "ARTHA_MODE" if var("ARTHA_MODE") else "ARTHA_JOB_KIND"
    mode = _choice(mode_var, var(mode_var), {"train": "train", "infer": "infer"},
                   "a mode of this runtime") or "train"
    epochs = num("EPOCHS", _U32_MAX)
    batch = num("BATCH_SIZE")
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise BadInput(f"must be in 1..={MAX_BATCH}", field="BATCH_SIZE")
    window = num("ARTHA_PROOF_WINDOW")
    if window == 0:
        raise BadInput("must be ≥ 1", field="ARTHA_PROOF_WINDOW")
    window = 100 if window is None else window
    opt_kind = _choice("ARTHA_OPTIMIZER", var("ARTHA_OPTIMIZER"),
                       {"adamw": "adamw", "adam": "adamw", "sgd": "sgd"}, "an optimizer") or "adamw"
    lr = flt("LEARNING_RATE")
    opt = OptimizerConfig.defaults(opt_kind, 1e-3 if lr is None else lr)
    wd, mom = flt("ARTHA_WEIGHT_DECAY"), flt("ARTHA_MOMENTUM")
    if wd is not None:
        opt = dataclasses.replace(opt, weight_decay=wd)
    if mom is not None:
        opt = dataclasses.replace(opt, momentum=mom)
    opt.validate()
    hidden = var("ARTHA_HIDDEN")
    hidden_list = None if hidden is None else [parse_uint("ARTHA_HIDDEN", w) for w in hidden.split(",")]
    task = _choice("ARTHA_TASK", var("ARTHA_TASK"),
                   {"classify": "classify", "classification": "classify",
                    "regress": "regress", "regression": "regress"}, "a task")
    kind = _choice("ARTHA_MODEL_KIND", var("ARTHA_MODEL_KIND"),
                   {"mlp": "mlp", "logreg": "logreg", "linear": "logreg", "llama": "llama"},
                   "a model")
    device = var("ARTHA_DEVICE") or "cpu"
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", device.strip()):
        raise BadInput(f"`{_clip(device)}` is not a device (cpu, cuda, cuda:N)", field="ARTHA_DEVICE")
    threads = num("ARTHA_THREADS")
    if threads == 0:
        raise BadInput("must be ≥ 1", field="ARTHA_THREADS")
    every = num("ARTHA_CHECKPOINT_EVERY")
    seq_len = num("ARTHA_SEQ_LEN")
    if seq_len == 0:
        raise BadInput("must be ≥ 1", field="ARTHA_SEQ_LEN")
    new_tokens = num("ARTHA_MAX_NEW_TOKENS")
    temperature = flt("ARTHA_TEMPERATURE")
    if temperature is not None and not (math.isfinite(temperature) and temperature >= 0):
        raise BadInput("must be a finite number ≥ 0", field="ARTHA_TEMPERATURE")
    checkpoint_dir = var("ARTHA_CHECKPOINT_DIR") or CHECKPOINT_MOUNT
    return RunConfig(
        mode=mode,
        job_id=var("ARTHA_JOB_ID") or "local",
        epochs=1 if epochs is None else epochs,
        batch_size=32 if batch is None else batch,
        seed=num("ARTHA_SEED") or 0,
        proof_window=window,
        optimizer=opt,
        kind=kind,
        task=task,
        hidden=hidden_list,
        classes=num("ARTHA_CLASSES"),
        checkpoint_every=window if every is None else every,
        resume=var("ARTHA_RESUME"),
        max_steps=num("ARTHA_MAX_STEPS"),
        data_file=var("ARTHA_DATA_FILE"),
        weights=var("ARTHA_WEIGHTS"),
        log_every=num("ARTHA_LOG_EVERY"),
        device=device.strip(),
        threads=threads or 1,
        model_dir=var("ARTHA_MODEL_DIR") or MODEL_MOUNT,
        data_dir=var("ARTHA_DATA_DIR") or DATA_MOUNT,
        checkpoint_dir=checkpoint_dir,
        output_dir=var("ARTHA_OUTPUT_DIR") or checkpoint_dir,
        events=var("ARTHA_EVENTS") or EVENTS_PATH,
        seq_len=seq_len,
        max_new_tokens=64 if new_tokens is None else new_tokens,
        temperature=0.0 if temperature is None else temperature,
    )


def from_env(environ: Optional[Mapping[str, str]] = None) -> RunConfig:
    """Reads the process environment (or `environ`)."""
    env = os.environ if environ is None else environ
    return from_lookup(env.get)


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """Architecture choices from `$ARTHA_MODEL_DIR/config.json` (all
    optional; the environment overrides them)."""

    kind: Optional[str] = None
    task: Optional[str] = None
    hidden: Optional[List[int]] = None
    classes: Optional[int] = None
    #: For `kind: "llama"`: the whole object (checked by `artha_runtime.lm`).
    lm: Optional[dict] = None
    #: The file read (None when there was none).
    path: Optional[str] = dataclasses.field(default=None, compare=False)


def read_model_file(model_dir: str, kind: Optional[str] = None) -> ModelFile:
    """Reads `config.json` from the model directory when it exists (a
    missing model directory is no model file); unknown keys are errors.
    A file with `kind: "llama"` (or any file when `kind`, the job's
    ARTHA_MODEL_KIND, is `llama`) is a language model's configuration
    (runtimes/LM.md), returned whole in `lm`."""
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return ModelFile()
    except NotADirectoryError:
        return ModelFile()
    except OSError as e:
        raise ArthaError(f"cannot read config.json: {e}", file=path) from None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"malformed model configuration: {e}", field="config.json", file=path) from None
    if not isinstance(obj, dict):
        raise BadInput("malformed model configuration: not a JSON object", field="config.json", file=path)
    if obj.get("kind") == "llama" or (kind == "llama" and "kind" not in obj):
        return ModelFile(kind="llama", lm=obj, path=path)
    unknown = sorted(set(obj) - {"kind", "task", "hidden", "classes"})
    if unknown:
        raise BadInput(f"malformed model configuration: unknown field `{unknown[0]}` "
                       "(expected kind, task, hidden, classes)", field="config.json", file=path)

    def bad(key, want):
        return BadInput(f"malformed model configuration: `{key}` must be {want}",
                        field="config.json", file=path)

    kind, task, hidden, classes = (obj.get(k) for k in ("kind", "task", "hidden", "classes"))
    if kind is not None and kind not in ("mlp", "logreg", "llama"):
        raise bad("kind", "\"mlp\", \"logreg\" or \"llama\"")
    if task is not None and task not in ("classify", "regress"):
        raise bad("task", "\"classify\" or \"regress\"")
    if hidden is not None and not (isinstance(hidden, list) and all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in hidden)):
        raise bad("hidden", "a list of layer widths")
    if classes is not None and not (isinstance(classes, int) and not isinstance(classes, bool)
                                    and classes >= 0):
        raise bad("classes", "a non-negative integer")
    return ModelFile(kind=kind, task=task, hidden=hidden, classes=classes, path=path)
