#!/usr/bin/env python3
"""Artha's PyTorch runtime: trains the native runtime's models with PyTorch.

Usage: `python3 train.py [train]` (or ARTHA_MODE=infer for the language
model's generations), the job described by the environment of
the runtime protocol (artha_runtime.env lists every variable): EPOCHS,
BATCH_SIZE, LEARNING_RATE, ARTHA_SEED, ARTHA_PROOF_WINDOW, ARTHA_EVENTS,
ARTHA_MODEL_DIR / ARTHA_DATA_DIR / ARTHA_CHECKPOINT_DIR (default /model,
/data, /checkpoints), ARTHA_HIDDEN, ARTHA_OPTIMIZER, ARTHA_RESUME, …

It mirrors the native runtime (runtimes/native) so that the two are
interchangeable on the same job:

- data: the same CSV/NPY files, read the same way (artha_runtime.data);
- model: `fc = nn.ModuleList([nn.Linear(d0, d1), …])` with ReLU between
  hidden layers — the native parameter names and order (`fc.0.weight`,
  `fc.0.bias`, …), which is this module's `state_dict` order; softmax
  cross-entropy (mean over the batch) or mean squared error;
- initial weights and batch order: the native counter-based generator
  (artha_runtime.rng), so step k consumes the same rows and its
  `batch_digest` equals the native one for the same seed;
- the language model (`kind: "llama"`, runtimes/LM.md) in llama.py: the
  same text examples and batches, parameters and initial weights, trained
  through this file's loop and optimizer; `ARTHA_MODE=infer` turns
  prompts.txt into generations.jsonl;
- optimizer: torch.optim.AdamW / SGD with the native defaults;
- checkpoints: the native safetensors format (`step-00000010.safetensors`
  every ARTHA_CHECKPOINT_EVERY steps, default the proof window, and
  `final.safetensors`), readable by either runtime; ARTHA_RESUME continues
  from one.

Every step computed is reported as a `step` event with its loss and the
named-tensor digests of its gradients, of the weights after the update and
of its batch — full at the window ends and the last step, sampled between
(runtimes/PROOFS.md); then `checkpoint` events, a `complete` event and a summary.
Bad input gives an `error` event and a non-zero exit (2 bad input, 3
non-finite loss, 4 cannot write, 1 other), never a step that was not
computed. Training is deterministic for a seed on a given machine: one CPU
thread by default (ARTHA_THREADS), deterministic algorithms, no other
randomness. It is not bit-identical to the native runtime (PyTorch sums in
another order); the native runtime is what replays audited windows.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from artha_runtime import checkpoint, data, env, rng
from artha_runtime import lm as lm_config
from artha_runtime.digest import is_full_step, named_digest_at
from artha_runtime.errors import ArthaError, BadInput, LossNotFinite, WriteFailed
from artha_runtime.events import EventWriter

DEFAULT_HIDDEN = 64
MAX_WIDTH = 1 << 16
MAX_HIDDEN_LAYERS = 16


def say(text: str = "") -> None:
    print(text, flush=True)


# ---- model configuration (runtimes/native/src/model.rs, train.rs) --------


def model_config(kind, task, inputs, outputs, hidden) -> dict:
    """The architecture in the checkpoint's `model` JSON (field order as
    the native runtime writes it)."""
    return {"kind": kind, "task": task, "inputs": inputs, "outputs": outputs,
            "hidden": list(hidden)}


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


def resume_path(cfg: env.RunConfig):
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


# ---- PyTorch ---------------------------------------------------------------


def import_torch(cfg: env.RunConfig):
    if cfg.device.startswith("cuda"):
        # Deterministic cuBLAS needs a fixed workspace (set before CUDA starts).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except ImportError as e:
        raise ArthaError(f"PyTorch is not installed: {e}") from None
    torch.set_num_threads(cfg.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed by an earlier parallel region
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"`{cfg.device}` requested but PyTorch sees no CUDA device",
                       field="ARTHA_DEVICE")
    return torch


def build_model(torch, mc: dict):
    nn = torch.nn

    class Net(nn.Module):
        """Linear layers with ReLU between them (the native MLP / logreg)."""

        def __init__(self, dims):
            super().__init__()
            self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))

        def forward(self, x):
            last = len(self.fc) - 1
            for i, layer in enumerate(self.fc):
                x = layer(x)
                if i < last:
                    x = torch.relu(x)
            return x

    return Net([mc["inputs"], *mc["hidden"], mc["outputs"]])


def initial_params(mc: dict, seed: int) -> dict:
    """The native runtime's initial weights for `seed` (bit for bit)."""
    dims = [mc["inputs"], *mc["hidden"], mc["outputs"]]
    out, p = {}, 0
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        for name, shape in ((f"fc.{i}.weight", (b, a)), (f"fc.{i}.bias", (b,))):
            out[name] = rng.init_param(seed, p, shape, fan_in=a)
            p += 1
    return out


def make_optimizer(torch, model, oc: env.OptimizerConfig):
    params = list(model.parameters())
    if oc.kind == "adamw":
        return torch.optim.AdamW(params, lr=oc.lr, betas=(oc.beta1, oc.beta2), eps=oc.eps,
                                 weight_decay=oc.weight_decay)
    return torch.optim.SGD(params, lr=oc.lr, momentum=oc.momentum, weight_decay=oc.weight_decay)


def restore_optimizer(torch, opt, model, oc: env.OptimizerConfig, t: int, saved: dict) -> None:
    """Puts saved slot tensors (and the update count) into torch's state."""
    if t == 0:
        return
    for name, p in model.named_parameters():
        st = {slot: torch.from_numpy(saved[f"optim.{slot}.{name}"].copy()).to(p.device)
              for slot in oc.state_slots()}
        if oc.kind == "adamw":
            st["step"] = torch.tensor(float(t))
        opt.state[p] = st


def optimizer_state(opt, model, oc: env.OptimizerConfig) -> dict:
    """The slot tensors keyed `optim.<slot>.<param>` (zeros before any update)."""
    out = {}
    for name, p in model.named_parameters():
        st = opt.state.get(p, {})
        for slot in oc.state_slots():
            v = st.get(slot)
            out[f"optim.{slot}.{name}"] = (np.zeros(tuple(p.shape), np.float32) if v is None
                                           else v.detach().cpu().numpy())
        # (SGD's momentum buffer appears after the first update.)
    return out


def params_np(model) -> dict:
    return {n: t.detach().cpu().numpy() for n, t in model.state_dict().items()}


# ---- training ---------------------------------------------------------------


class Trainer:
    """A model, its optimizer, its data and its position (global step)."""

    def __init__(self, torch, cfg: env.RunConfig, ds: data.Dataset):
        self.torch, self.cfg, self.ds = torch, cfg, ds
        file = env.read_model_file(cfg.model_dir)
        self.data_digest = ds.digest()
        self.steps_per_epoch = -(-ds.rows // cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
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
        self.device = torch.device(cfg.device)
        self.model = build_model(torch, mc).to(self.device)
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(torch.from_numpy(np.ascontiguousarray(params[name], np.float32)))
        self.opt = make_optimizer(torch, self.model, cfg.optimizer)
        if saved_opt is not None:
            restore_optimizer(torch, self.opt, self.model, cfg.optimizer, self.opt_t, saved_opt)
        self.x = torch.from_numpy(ds.x).to(self.device)
        self.y = torch.from_numpy(ds.y).to(self.device)
        self._perm = None

    def epoch_of(self, step: int) -> int:
        return (max(step, 1) - 1) // self.steps_per_epoch

    def batch_rows(self, k: int):
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
        torch, F = self.torch, self.torch.nn.functional
        k = self.step + 1
        full = is_full_step(k, self.cfg.proof_window, self.total_steps)
        seed = self.cfg.seed
        idx = torch.from_numpy(self.batch_rows(k)).to(self.device)
        xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
        batch = named_digest_at([("x", xb), ("y", yb)], seed, k, full)
        self.opt.zero_grad(set_to_none=False)
        out = self.model(xb)
        if self.mc["task"] == "classify":
            loss = F.cross_entropy(out, yb)
            correct = int((out.argmax(dim=1) == yb).sum())
        else:
            loss = F.mse_loss(out, yb)
            correct = 0
        value = float(loss.item())
        if not math.isfinite(value):
            raise LossNotFinite(f"the loss is not finite ({value}) at step {k}: training diverged "
                                "(lower LEARNING_RATE?)", field="loss")
        loss.backward()
        grads = named_digest_at([(n, p.grad) for n, p in self.model.named_parameters()],
                                seed, k, full)
        self.opt.step()
        self.opt_t += 1
        self.step = k
        weights = named_digest_at(self.model.state_dict(), seed, k, full)
        return {"step": k, "epoch": self.epoch_of(k), "loss": value,
                "grad_digest": grads, "weight_digest": weights,
                "batch_digest": batch, "rows": int(idx.shape[0]), "correct": correct}

    def save(self, path: str) -> str:
        """A training checkpoint in the native format; returns the weight digest."""
        oc = self.cfg.optimizer
        train = {
            "step": self.step, "epoch": self.epoch_of(self.step), "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size, "optimizer": oc.to_json(),
            "optimizer_t": self.opt_t, "data_digest": self.data_digest, "rows": self.ds.rows,
        }
        return checkpoint.save(path, self.mc, params_np(self.model),
                               (oc.state_slots(), optimizer_state(self.opt, self.model, oc), train))


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


def kind_of_job(cfg: env.RunConfig, file: env.ModelFile) -> str:
    """`llama` when the job, config.json or the checkpoint it starts from
    says so, else the MLP family."""
    if cfg.kind or file.kind:
        return cfg.kind or file.kind
    init = os.path.join(cfg.model_dir, "model.safetensors")
    path = resume_path(cfg) or (init if os.path.isfile(init) else None)
    if path is not None:
        try:
            _, meta = checkpoint.read_safetensors(path)
            if lm_config.is_config(json.loads(meta.get("model", "{}"))):
                return "llama"
        except (ValueError, TypeError, BadInput):
            pass  # the trainer reports a bad checkpoint
    return "mlp"


def banner(cfg, tr, end: int) -> None:
    line = "-" * 60
    mc = tr.mc
    n_params = sum(p.numel() for p in tr.model.parameters())
    say(line)
    say("  Artha PyTorch runtime - training")
    say(line)
    say(f"  Job ID:      {cfg.job_id}")
    if hasattr(tr, "banner_model"):
        say(f"  Model:       {tr.banner_model()}")
    else:
        dims = [mc["inputs"], *mc["hidden"], mc["outputs"]]
        say(f"  Model:       {mc['kind']} {mc['task']} {dims}")
    say(f"  Parameters:  {n_params}")
    say(f"  Epochs:      {cfg.epochs}")
    say(f"  Batch size:  {cfg.batch_size}")
    say(f"  LR:          {cfg.optimizer.lr}")
    say(f"  Optimizer:   {cfg.optimizer.kind}")
    say(f"  Seed:        {cfg.seed}")
    say(f"  Samples:     {tr.ds.rows}")
    say(f"  Batches:     {tr.steps_per_epoch} per epoch")
    say(f"  Device:      {cfg.device}, {tr.torch.get_num_threads()} thread(s), "
        f"torch {tr.torch.__version__}")
    if tr.started_from:
        say(f"  Started from {tr.started_from} (step {tr.step})")
    say(f"  Steps:       {tr.step + 1}..={end}")
    say(line)


def train(cfg: env.RunConfig, events: EventWriter) -> None:
    t0 = time.monotonic()
    check_writable(cfg.checkpoint_dir)
    file = env.read_model_file(cfg.model_dir, cfg.kind)
    if kind_of_job(cfg, file) == "llama":
        import llama

        torch = import_torch(cfg)
        tr = llama.Trainer(torch, cfg, file, sys.modules[__name__])
        described = tr.describe()
    else:
        task = task_of_job(cfg, file)
        path = data.find(cfg.data_dir, cfg.data_file, training=True)
        ds = data.load_train(path, task)
        torch = import_torch(cfg)
        tr = Trainer(torch, cfg, ds)
        n_params = sum(p.numel() for p in tr.model.parameters())
        described = (f"{tr.mc['kind']} {tr.mc['task']} ({n_params} parameters) on "
                     f"{ds.rows} rows of {path}")
    total = cfg.epochs * tr.steps_per_epoch
    if cfg.max_steps is not None and cfg.max_steps < tr.step:
        raise BadInput(f"step {cfg.max_steps} is before the step the run resumes from ({tr.step})",
                       field="ARTHA_MAX_STEPS")
    end = total if cfg.max_steps is None else min(cfg.max_steps, total)
    banner(cfg, tr, end)
    events.log(f"training {described} with torch {torch.__version__}, "
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
                   if tr.mc.get("task") == "classify" and tr.mc["kind"] != "llama" else "")
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


def infer(cfg: env.RunConfig, events: EventWriter) -> None:
    """ARTHA_MODE=infer: the language model's generations (runtimes/LM.md);
    MLP inference runs on the native runtime."""
    import llama

    torch = import_torch(cfg)
    llama.infer(torch, cfg, events, say)
    events.flush()


def main(argv) -> int:
    events_path = os.environ.get("ARTHA_EVENTS", "").strip() or env.EVENTS_PATH
    try:
        events = EventWriter(events_path)
    except ArthaError as e:
        print(f"artha-torch: error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        if argv not in ([], ["train"]):
            raise BadInput(f"unexpected arguments `{' '.join(argv)[:200]}` (usage: train.py [train])",
                           field="arguments")
        cfg = env.from_env()
        if cfg.mode != "train" and argv != ["train"]:
            infer(cfg, events)
        else:
            train(cfg, events)
        events.close()
        return 0
    except ArthaError as e:
        error = e
    except Exception as e:  # a bug, but the engine must still hear why the job ended
        error = ArthaError(f"internal error: {type(e).__name__}: {e}")
    print(f"artha-torch: error: {error}", file=sys.stderr)
    try:
        events.error(str(error))
        events.close()
    except ArthaError as w:
        print(f"artha-torch: cannot report the error event: {w}", file=sys.stderr)
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
