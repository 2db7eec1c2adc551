"""The framework-independent half of a Python trainer for the native
runtime's models (runtimes/native): what runtimes/tf/train.py and
runtimes/jax/train.py share.

A script supplies a `Framework` — the model's arithmetic (forward, loss,
gradients, the optimizer update) in its library, and the step record's
digests — and calls `main(argv, make_framework, prog)`. This module does the
rest exactly as the native runtime and runtimes/torch/train.py do:

- the job's environment (artha_runtime.env), the data (artha_runtime.data),
  the architecture from the environment over `config.json` over defaults,
  sized by the data, and the checks a checkpoint must pass to resume;
- the initial weights (artha_runtime.rng, bit for bit the native ones) and
  the batch order: step k takes batch (k − 1) mod steps-per-epoch of its
  epoch's permutation, so its `batch_digest` equals the native one;
- the optimizer's scalars as the native runtime computes them (f64 on the
  host, `pow` by squaring; `adamw_scalars`), for the framework's update;
- checkpoints in the native format (`step-00000010.safetensors` every
  ARTHA_CHECKPOINT_EVERY steps and `final.safetensors`), ARTHA_RESUME,
  ARTHA_MAX_STEPS, the `step`/`checkpoint`/`log`/`complete` events, and an
  `error` event with exit code 2 (bad input), 3 (non-finite loss), 4
  (cannot write) or 1 (other), never a step that was not computed.

Parameters travel between this module and the framework as numpy float32
arrays keyed by their native names (`fc.0.weight`, `fc.0.bias`, …, in that
order); optimizer state as `optim.<slot>.<param>`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from . import checkpoint, data, env, rng
from .digest import is_full_step, named_digest_at
from .errors import ArthaError, BadInput, LossNotFinite, WriteFailed
from .events import EventWriter

DEFAULT_HIDDEN = 64
MAX_WIDTH = 1 << 16
MAX_HIDDEN_LAYERS = 16

Arrays = Dict[str, np.ndarray]


def say(text: str = "") -> None:
    print(text, flush=True)


class Framework:
    """What a trainer script implements (see runtimes/tf/train.py).

    `load` is called once with the model, its parameters, the optimizer's
    settings, its update count and state (None: fresh zeros). A step is
    `compute` (loss and gradients of a batch, no update), then — when the
    loss is finite — `update`; `params` and `optimizer_state` read the
    current values back as numpy arrays. The step records' digests are made
    here, from those arrays (`record_digests`), the same for every
    framework.
    """

    name = "framework"
    version = "?"

    def describe(self) -> str:
        """Device and threads, for the banner."""
        raise NotImplementedError

    def load(self, mc: dict, params: Arrays, oc: env.OptimizerConfig, t: int,
             state: Optional[Arrays]) -> None:
        raise NotImplementedError

    def compute(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, int, object]:
        """`(loss, correct predictions, gradients)` of a batch; the
        gradients in the framework's own form, for `update` and `grads_np`."""
        raise NotImplementedError

    def update(self, grads, t: int) -> None:
        """Applies the optimizer's update number `t` (1, 2, …)."""
        raise NotImplementedError

    def grads_np(self, grads) -> Arrays:
        raise NotImplementedError

    def params(self) -> Arrays:
        raise NotImplementedError

    def optimizer_state(self) -> Arrays:
        raise NotImplementedError



# ---- the native optimizer's scalars (runtimes/native/src/optim.rs) --------


def record_digests(seed: int, step: int, full: bool, x: np.ndarray, y: np.ndarray,
                   grads: Arrays, weights: Arrays) -> Tuple[str, str, str]:
    """A step record's `(grad_digest, weight_digest, batch_digest)` as hex:
    named-tensor digests of the gradients and the weights after the update
    (native names and order) and of the batch `[("x", x), ("y", y)]`, full
    at a full step, sampled otherwise (runtimes/PROOFS.md)."""
    return (named_digest_at(grads, seed, step, full).hex(),
            named_digest_at(weights, seed, step, full).hex(),
            named_digest_at([("x", x), ("y", y)], seed, step, full).hex())


def pow_u64(base: float, exp: int) -> float:
    """`base ** exp` by squaring in f64, as the native runtime computes it."""
    acc, b = 1.0, base
    while exp > 0:
        if exp & 1:
            acc *= b
        b *= b
        exp >>= 1
    return acc


def adamw_scalars(oc: env.OptimizerConfig, t: int) -> dict:
    """The scalars of AdamW update number `t` (f64, as the native runtime):

        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
        w ← w·(1 − lr·wd) − step_size · m / (√v · inv_sqrt_bc2 + eps)

    with step_size = lr / (1 − β1^t) and inv_sqrt_bc2 = 1 / √(1 − β2^t)."""
    bc1 = 1.0 - pow_u64(oc.beta1, t)
    bc2 = 1.0 - pow_u64(oc.beta2, t)
    return {"beta1": oc.beta1, "one_minus_beta1": 1.0 - oc.beta1,
            "beta2": oc.beta2, "one_minus_beta2": 1.0 - oc.beta2,
            "step_size": oc.lr / bc1, "inv_sqrt_bc2": 1.0 / math.sqrt(bc2), "eps": oc.eps,
            "decay": 1.0 - oc.lr * oc.weight_decay}


# ---- model configuration (runtimes/native/src/model.rs, train.rs) --------


def model_config(kind, task, inputs, outputs, hidden) -> dict:
    """The architecture in the checkpoint's `model` JSON (field order as
    the native runtime writes it)."""
    return {"kind": kind, "task": task, "inputs": inputs, "outputs": outputs,
            "hidden": list(hidden)}


def dims_of(mc: dict) -> List[int]:
    return [mc["inputs"], *mc["hidden"], mc["outputs"]]


def validate_model(mc: dict) -> dict:
    if mc["kind"] == "logreg" and mc["hidden"]:
        raise BadInput("logistic regression has no hidden layers", field="ARTHA_HIDDEN")
    if len(mc["hidden"]) > MAX_HIDDEN_LAYERS:
        raise BadInput(f"at most {MAX_HIDDEN_LAYERS} hidden layers", field="ARTHA_HIDDEN")
    for what, w in [("inputs", mc["inputs"]), ("outputs", mc["outputs"])] + \
            [("ARTHA_HIDDEN", h) for h in mc["hidden"]]:
        if not 1 <= w <= MAX_WIDTH:
            raise BadInput(f"layer width {w} is not in 1..={MAX_WIDTH}", field=what)
    if mc["task"] == "classify" and mc["outputs"] < 2:
        raise BadInput("classification needs at least 2 classes", field="ARTHA_CLASSES")
    return mc


def wanted_model(cfg: env.RunConfig, file: env.ModelFile, ds: data.Dataset) -> dict:
    """The environment over config.json over defaults, sized by the data."""
    kind = cfg.kind or file.kind or "mlp"
    task = cfg.task or file.task or "classify"
    hidden = cfg.hidden if cfg.hidden is not None else file.hidden
    if hidden is None:
        hidden = [DEFAULT_HIDDEN] if kind == "mlp" else []
    if task == "classify":
        outputs = cfg.classes or file.classes or ds.classes_needed() or 2
        outputs = max(outputs, 2)
    else:
        outputs = ds.y.shape[1]
    return validate_model(model_config(kind, task, ds.features, outputs, hidden))


def _mismatch(what, have, want) -> BadInput:
    return BadInput(f"the checkpoint is of another {what}: it has {have!r}, this job has {want!r}",
                    field="checkpoint")


def check_model(have: dict, cfg: env.RunConfig, file: env.ModelFile, ds: data.Dataset) -> None:
    """A checkpoint's architecture must fit what the job set and the data."""
    for what, want, key in (("model kind", cfg.kind or file.kind, "kind"),
                            ("task", cfg.task or file.task, "task")):
        if want is not None and want != have[key]:
            raise _mismatch(what, have[key], want)
    hidden = cfg.hidden if cfg.hidden is not None else file.hidden
    if hidden is not None and list(hidden) != have["hidden"]:
        raise _mismatch("architecture (hidden layers)", have["hidden"], hidden)
    classes = cfg.classes or file.classes
    if classes is not None and have["task"] == "classify" and classes != have["outputs"]:
        raise _mismatch("number of classes", have["outputs"], classes)
    if have["inputs"] != ds.features:
        raise _mismatch("input width", have["inputs"], ds.features)
    if have["task"] == "regress" and ds.y is not None and ds.y.ndim == 2 \
            and ds.y.shape[1] != have["outputs"]:
        raise _mismatch("output width", have["outputs"], ds.y.shape[1])


def check_labels(mc: dict, ds: data.Dataset) -> None:
    need = ds.classes_needed()
    if mc["task"] == "classify" and need is not None and need > mc["outputs"]:
        raise BadInput(f"label {need - 1} is out of range for a model with {mc['outputs']} classes",
                       field="data", file=ds.source)


def resume_path(cfg: env.RunConfig) -> Optional[str]:
    """ARTHA_RESUME: `latest`, an absolute path, or a name in the
    checkpoint directory, then the model directory."""
    r = cfg.resume
    if r is None:
        return None
    if r == "latest":
        return checkpoint.latest(cfg.checkpoint_dir)
    if os.path.isabs(r):
        return r
    data.check_relative("ARTHA_RESUME", r)
    for d in (cfg.checkpoint_dir, cfg.model_dir):
        if os.path.isfile(os.path.join(d, r)):
            return os.path.join(d, r)
    raise BadInput(f"checkpoint to resume from not found: `{r}`", field="ARTHA_RESUME")


def param_shapes(mc: dict) -> Dict[str, Tuple[int, ...]]:
    """Parameter names and shapes in canonical order: weights [out, in]
    and biases [out] of each layer."""
    dims = dims_of(mc)
    out: Dict[str, Tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        out[f"fc.{i}.weight"] = (b, a)
        out[f"fc.{i}.bias"] = (b,)
    return out


def initial_params(mc: dict, seed: int) -> Arrays:
    """The native runtime's initial weights for `seed` (bit for bit); a
    layer's weight and bias share its fan-in."""
    dims = dims_of(mc)
    return {name: rng.init_param(seed, p, shape, fan_in=dims[p // 2])
            for p, (name, shape) in enumerate(param_shapes(mc).items())}


def zero_state(mc: dict, oc: env.OptimizerConfig) -> Arrays:
    """The optimizer state before any update: zeros per slot and parameter."""
    return {f"optim.{slot}.{n}": np.zeros(s, np.float32)
            for n, s in param_shapes(mc).items() for slot in oc.state_slots()}


# ---- training ---------------------------------------------------------------


class Trainer:
    """A model in a framework, its data and its position (global step)."""

    def __init__(self, fw: Framework, cfg: env.RunConfig, ds: data.Dataset):
        self.fw, self.cfg, self.ds = fw, cfg, ds
        file = env.read_model_file(cfg.model_dir)
        self.data_digest = ds.digest()
        self.steps_per_epoch = -(-ds.rows // cfg.batch_size)
        self.started_from = None
        init_path = os.path.join(cfg.model_dir, "model.safetensors")
        path = resume_path(cfg)
        saved_opt, step = None, 0
        if path is not None:
            ck = checkpoint.load(path)
            check_model(ck["model"], cfg, file, ds)
            st = ck["train"]
            if st is None:
                raise BadInput("the checkpoint holds weights only, no training state",
                               field="ARTHA_RESUME")
            saved = env.OptimizerConfig(**st["optimizer"])
            for what, have, want in (("run (seed)", st["seed"], cfg.seed),
                                     ("run (batch size)", st["batch_size"], cfg.batch_size),
                                     ("run (optimizer settings)", saved, cfg.optimizer),
                                     ("dataset", st["data_digest"], self.data_digest),
                                     ("dataset (rows)", st["rows"], ds.rows)):
                if have != want:
                    raise _mismatch(what, have, want)
            mc, params, saved_opt = ck["model"], ck["params"], ck["optimizer"]
            step, self.opt_t = int(st["step"]), int(st["optimizer_t"])
            self.started_from = path
        elif os.path.isfile(init_path):
            ck = checkpoint.load(init_path)
            check_model(ck["model"], cfg, file, ds)
            mc, params, self.opt_t = ck["model"], ck["params"], 0
            self.started_from = init_path
        else:
            mc = wanted_model(cfg, file, ds)
            params, self.opt_t = initial_params(mc, cfg.seed), 0
        validate_model(mc)
        check_labels(mc, ds)
        self.mc, self.step = mc, step
        names = checkpoint.param_names(len(mc["hidden"]) + 1)
        params = {n: np.ascontiguousarray(params[n], np.float32) for n in names}
        if saved_opt is not None and self.opt_t > 0:
            state = {k: np.ascontiguousarray(saved_opt[k], np.float32)
                     for k in zero_state(mc, cfg.optimizer)}
        else:
            state = None
        fw.load(mc, params, cfg.optimizer, self.opt_t, state)
        self._perm = None

    def full_step(self, k: int) -> bool:
        """Whether step k records full digests (runtimes/PROOFS.md): the
        window ends and the job's last step."""
        return is_full_step(k, self.cfg.proof_window, self.cfg.epochs * self.steps_per_epoch)

    def epoch_of(self, step: int) -> int:
        return (max(step, 1) - 1) // self.steps_per_epoch

    def batch_rows(self, k: int) -> np.ndarray:
        """Rows of step k: batch (k − 1) mod steps-per-epoch of its epoch's
        permutation (the last batch of an epoch may be short)."""
        epoch = self.epoch_of(k)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, rng.permutation(self.cfg.seed, epoch, self.ds.rows))
        b = (k - 1) % self.steps_per_epoch
        start = b * self.cfg.batch_size
        return self._perm[1][start:start + self.cfg.batch_size]

    def advance(self) -> dict:
        """Runs the next step; returns its record and counts. A non-finite
        loss raises before any update (and before any record)."""
        k = self.step + 1
        rows = self.batch_rows(k)
        xb, yb = self.ds.x[rows], self.ds.y[rows]
        loss, correct, grads = self.fw.compute(xb, yb)
        if not math.isfinite(loss):
            raise LossNotFinite(f"the loss is not finite ({loss}) at step {k}: training diverged "
                                "(lower LEARNING_RATE?)", field="loss")
        grads_np = self.fw.grads_np(grads)
        self.fw.update(grads, self.opt_t + 1)
        self.opt_t += 1
        self.step = k
        g, w, b = record_digests(self.cfg.seed, k, self.full_step(k), xb, yb, grads_np,
                                 self.fw.params())
        return {"step": k, "epoch": self.epoch_of(k), "loss": loss, "grad_digest": g,
                "weight_digest": w, "batch_digest": b, "rows": int(len(rows)),
                "correct": int(correct)}

    def save(self, path: str) -> str:
        """A training checkpoint in the native format; returns the weight digest."""
        oc = self.cfg.optimizer
        train = {
            "step": self.step, "epoch": self.epoch_of(self.step), "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size, "optimizer": oc.to_json(),
            "optimizer_t": self.opt_t, "data_digest": self.data_digest, "rows": self.ds.rows,
        }
        state = self.fw.optimizer_state() if self.opt_t > 0 else zero_state(self.mc, oc)
        return checkpoint.save(path, self.mc, self.fw.params(), (oc.state_slots(), state, train))


def check_writable(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".artha-write-probe-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise WriteFailed(f"the checkpoint directory is not writable: {e.strerror or e}",
                          file=directory) from None


def task_of_job(cfg: env.RunConfig, file: env.ModelFile) -> str:
    """How targets parse: the job's choice, else the checkpoint's or initial
    weights', else classification."""
    if cfg.task or file.task:
        return cfg.task or file.task
    init = os.path.join(cfg.model_dir, "model.safetensors")
    path = resume_path(cfg) or (init if os.path.isfile(init) else None)
    if path is None:
        return "classify"
    _, meta = checkpoint.read_safetensors(path)
    try:
        return json.loads(meta["model"])["task"]
    except (KeyError, ValueError, TypeError):
        raise BadInput("metadata `model` is missing or malformed", field="checkpoint",
                       file=path) from None


def param_count(mc: dict) -> int:
    dims = dims_of(mc)
    return sum(b * a + b for a, b in zip(dims, dims[1:]))


def banner(cfg: env.RunConfig, tr: Trainer, end: int) -> None:
    line = "-" * 60
    mc = tr.mc
    say(line)
    say(f"  Artha {tr.fw.name} runtime - training")
    say(line)
    say(f"  Job ID:      {cfg.job_id}")
    say(f"  Model:       {mc['kind']} {mc['task']} {dims_of(mc)}")
    say(f"  Parameters:  {param_count(mc)}")
    say(f"  Epochs:      {cfg.epochs}")
    say(f"  Batch size:  {cfg.batch_size}")
    say(f"  LR:          {cfg.optimizer.lr}")
    say(f"  Optimizer:   {cfg.optimizer.kind}")
    say(f"  Seed:        {cfg.seed}")
    say(f"  Samples:     {tr.ds.rows}")
    say(f"  Batches:     {tr.steps_per_epoch} per epoch")
    say(f"  Device:      {tr.fw.describe()}, {tr.fw.name} {tr.fw.version}")
    if tr.started_from:
        say(f"  Started from {tr.started_from} (step {tr.step})")
    say(f"  Steps:       {tr.step + 1}..={end}")
    say(line)


def train(cfg: env.RunConfig, events: EventWriter,
          make_framework: Callable[[env.RunConfig], Framework]) -> None:
    t0 = time.monotonic()
    check_writable(cfg.checkpoint_dir)
    file = env.read_model_file(cfg.model_dir)
    task = task_of_job(cfg, file)
    path = data.find(cfg.data_dir, cfg.data_file, training=True)
    ds = data.load_train(path, task)
    fw = make_framework(cfg)
    tr = Trainer(fw, cfg, ds)
    total = cfg.epochs * tr.steps_per_epoch
    if cfg.max_steps is not None and cfg.max_steps < tr.step:
        raise BadInput(f"step {cfg.max_steps} is before the step the run resumes from ({tr.step})",
                       field="ARTHA_MAX_STEPS")
    end = total if cfg.max_steps is None else min(cfg.max_steps, total)
    banner(cfg, tr, end)
    events.log(f"training {tr.mc['kind']} {tr.mc['task']} ({param_count(tr.mc)} parameters) on "
               f"{ds.rows} rows of {path} with {fw.name} {fw.version}, "
               f"steps {tr.step + 1}..={end}")
    log_every = cfg.log_every if cfg.log_every is not None else max(tr.steps_per_epoch // 10, 1)
    first, ran = tr.step, 0
    ep_loss, ep_rows, ep_correct = 0.0, 0, 0
    last_loss = float("nan")
    start = time.monotonic()
    while tr.step < end:
        k = tr.step + 1
        epoch = tr.epoch_of(k)
        in_epoch = (k - 1) % tr.steps_per_epoch
        r = tr.advance()
        events.step(r["step"], r["epoch"], r["loss"], r["grad_digest"], r["weight_digest"],
                    r["batch_digest"])
        ran += 1
        last_loss = r["loss"]
        ep_loss += r["loss"] * r["rows"]
        ep_rows += r["rows"]
        ep_correct += r["correct"]
        if log_every > 0 and (in_epoch % log_every == 0 or in_epoch + 1 == tr.steps_per_epoch):
            rate = ran / max(time.monotonic() - start, 1e-9)
            say(f"epoch {epoch + 1}/{cfg.epochs} step {k}/{end} loss {r['loss']:.4f} "
                f"({rate:.1f} steps/s)")
        if cfg.checkpoint_every > 0 and k % cfg.checkpoint_every == 0:
            name = checkpoint.step_file(k)
            tr.save(os.path.join(cfg.checkpoint_dir, name))
            events.checkpoint(name, k)
            say(f"   checkpoint saved: {name}")
        if in_epoch + 1 == tr.steps_per_epoch or k == end:
            acc = (f", accuracy {100.0 * ep_correct / max(ep_rows, 1):.2f}%"
                   if tr.mc["task"] == "classify" else "")
            say(f"epoch {epoch + 1}/{cfg.epochs} summary: average loss "
                f"{ep_loss / max(ep_rows, 1):.4f}{acc}")
            ep_loss, ep_rows, ep_correct = 0.0, 0, 0
    secs = time.monotonic() - start
    final = "final.safetensors"
    final_weights = tr.save(os.path.join(cfg.checkpoint_dir, final))
    events.checkpoint(final, tr.step)
    rate = ran / secs if secs > 0 else 0.0
    events.log(f"trained {ran} steps in {secs:.3f} s ({rate:.1f} steps/s)")
    events.complete(first + ran, final_weights)
    events.flush()
    say("\nTraining complete.")
    say(f"   Final model saved: {final}")
    say(f"   Steps this run: {ran} (global step {tr.step})")
    if math.isfinite(last_loss):
        say(f"   Final loss: {last_loss:.4f}")
    say(f"   Steps/s: {rate:.1f}")
    say(f"   Final weights: {final_weights}")
    say(f"   Wall time: {time.monotonic() - t0:.2f} s")


def main(argv: List[str], make_framework: Callable[[env.RunConfig], Framework], prog: str) -> int:
    """Runs the training job of the environment; returns the exit code.
    `prog` prefixes messages on stderr (`artha-tf: error: …`)."""
    events_path = os.environ.get("ARTHA_EVENTS", "").strip() or env.EVENTS_PATH
    try:
        events = EventWriter(events_path)
    except ArthaError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        if argv not in ([], ["train"]):
            raise BadInput(f"unexpected arguments `{' '.join(argv)[:200]}` "
                           "(usage: train.py [train])", field="arguments")
        cfg = env.from_env()
        if cfg.mode != "train" and argv != ["train"]:
            raise BadInput(f"this runtime trains; `{cfg.mode}` jobs run on the native runtime",
                           field="ARTHA_MODE")
        train(cfg, events, make_framework)
        events.close()
        return 0
    except ArthaError as e:
        error = e
    except Exception as e:  # a bug, but the engine must still hear why the job ended
        error = ArthaError(f"internal error: {type(e).__name__}: {e}")
    print(f"{prog}: error: {error}", file=sys.stderr)
    try:
        events.error(str(error))
        events.close()
    except ArthaError as w:
        print(f"{prog}: cannot report the error event: {w}", file=sys.stderr)
    return error.exit_code
