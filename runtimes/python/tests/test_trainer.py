"""artha_runtime.trainer, the half that runtimes/tf/train.py and
runtimes/jax/train.py share, driven by a NumPy framework (the native
runtime's arithmetic written out in numpy): the optimizer's scalars, the
initial weights, the training loop, checkpoints, resume and errors. With
`ARTHA_NATIVE_RUNTIME` (set by tests/run.sh) the run is also checked
against the native runtime."""

import json
import os
import subprocess

import numpy as np
import pytest

from artha_runtime import checkpoint, env, rng, trainer
from artha_runtime.events import read_events

NATIVE = os.environ.get("ARTHA_NATIVE_RUNTIME", "")
JOB = {"EPOCHS": "2", "BATCH_SIZE": "32", "LEARNING_RATE": "0.05", "ARTHA_SEED": "3",
       "ARTHA_PROOF_WINDOW": "8"}


class NumpyFramework(trainer.Framework):
    """The native MLP and its AdamW / SGD in float32 numpy."""

    name, version = "NumPy", np.__version__

    def __init__(self, cfg):
        self.cfg = cfg

    def describe(self):
        return "cpu"

    def load(self, mc, params, oc, t, state):
        self.names, self.oc, self.mc = list(params), oc, mc
        self.ps = [params[n].copy() for n in self.names]
        self.slots = {s: [state[f"optim.{s}.{n}"].copy() if state else np.zeros_like(p)
                          for n, p in zip(self.names, self.ps)] for s in oc.state_slots()}

    def compute(self, x, y):
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
            return self._compute(x, y)

    def _compute(self, x, y):
        layers, a, inputs, pre = len(self.ps) // 2, x, [], []
        for i in range(layers):
            inputs.append(a)
            z = a @ self.ps[2 * i].T + self.ps[2 * i + 1]
            if i + 1 < layers:
                pre.append(z)
                a = np.maximum(z, 0)
            else:
                a = z
        rows = np.float32(len(x))
        if self.mc["task"] == "classify":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            loss = float(np.mean(-np.log(p[np.arange(len(y)), y])))
            dz = p.copy()
            dz[np.arange(len(y)), y] -= 1
            dz = (dz / rows).astype(np.float32)
            correct = int((a.argmax(axis=1) == y).sum())
        else:
            loss = float(np.mean((a - y) ** 2))
            dz = (2 * (a - y) / np.float32(a.size)).astype(np.float32)
            correct = 0
        grads = [None] * len(self.ps)
        for i in reversed(range(layers)):
            grads[2 * i], grads[2 * i + 1] = dz.T @ inputs[i], dz.sum(axis=0)
            if i > 0:
                dz = (dz @ self.ps[2 * i]) * (pre[i - 1] > 0)
        return loss, correct, grads

    def update(self, grads, t):
        oc, f = self.oc, np.float32
        if oc.kind == "adamw":
            c = {k: f(v) for k, v in trainer.adamw_scalars(oc, t).items()}
            for i, g in enumerate(grads):
                m = self.slots["exp_avg"][i] * c["beta1"] + g * c["one_minus_beta1"]
                v = self.slots["exp_avg_sq"][i] * c["beta2"] + g * g * c["one_minus_beta2"]
                upd = m / (np.sqrt(v) * c["inv_sqrt_bc2"] + c["eps"]) * c["step_size"]
                self.ps[i] = self.ps[i] * c["decay"] - upd
                self.slots["exp_avg"][i], self.slots["exp_avg_sq"][i] = m, v
        else:
            for i, g in enumerate(grads):
                d = g + self.ps[i] * f(oc.weight_decay)
                if oc.momentum > 0:
                    buf = self.slots["momentum_buffer"]
                    buf[i] = d = d if t == 1 else buf[i] * f(oc.momentum) + d
                self.ps[i] = self.ps[i] - d * f(oc.lr)

    def grads_np(self, grads):
        return dict(zip(self.names, grads))

    def params(self):
        return dict(zip(self.names, self.ps))

    def optimizer_state(self):
        return {f"optim.{s}.{n}": a for s, arrs in self.slots.items()
                for n, a in zip(self.names, arrs)}


def test_pow_and_adamw_scalars():
    assert trainer.pow_u64(0.999, 0) == 1.0
    assert trainer.pow_u64(0.5, 10) == 0.5 ** 10
    oc = env.OptimizerConfig.defaults("adamw", 0.01)
    c = trainer.adamw_scalars(oc, 1)
    assert c["step_size"] == pytest.approx(0.01 / 0.1)
    assert c["inv_sqrt_bc2"] == pytest.approx(1 / 0.001 ** 0.5)
    assert c["decay"] == 1 - 0.01 * 0.01


def test_initial_params_are_the_native_ones():
    mc = trainer.model_config("mlp", "classify", 4, 3, [5])
    ps = trainer.initial_params(mc, 7)
    assert list(ps) == checkpoint.param_names(2)
    assert [p.shape for p in ps.values()] == [(5, 4), (5,), (3, 5), (3,)]
    assert np.array_equal(ps["fc.1.bias"], rng.init_param(7, 3, (3,), fan_in=5))
    assert trainer.param_count(mc) == 5 * 4 + 5 + 3 * 5 + 3


def blobs(rows=256, seed=21):
    r = np.random.default_rng(seed)
    lines = ["x0,x1,x2,x3,label"]
    for i in range(rows):
        x = r.standard_normal(4) + 1.5 * (i % 2)
        lines.append(",".join(f"{v:.6f}" for v in x) + f",{i % 2}")
    return "\n".join(lines) + "\n"


def job(tmp_path, name, extra=None):
    root = tmp_path / name
    for d in ("model", "data", "checkpoints", "artha"):
        (root / d).mkdir(parents=True)
    (root / "model" / "config.json").write_text(json.dumps({"hidden": [16], "classes": 2}))
    (root / "data" / "train.csv").write_text(blobs())
    e = {**JOB, **(extra or {}), "ARTHA_MODEL_DIR": str(root / "model"),
         "ARTHA_DATA_DIR": str(root / "data"), "ARTHA_CHECKPOINT_DIR": str(root / "checkpoints"),
         "ARTHA_EVENTS": str(root / "artha" / "events.jsonl")}
    return root, e


def run(monkeypatch, environ):
    for k in list(os.environ):
        if k.startswith("ARTHA_") or k in JOB:
            monkeypatch.delenv(k)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    return trainer.main([], NumpyFramework, "artha-numpy")


def steps(root):
    return [e for e in read_events(root / "artha" / "events.jsonl") if e["event"] == "step"]


def test_trains_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    root, e = job(tmp_path, "run")
    assert run(monkeypatch, e) == 0
    evs = read_events(root / "artha" / "events.jsonl")
    assert [x["event"] for x in evs] == ["log"] + ["step"] * 8 + ["checkpoint"] + \
        ["step"] * 8 + ["checkpoint", "checkpoint", "log", "complete"]
    got = steps(root)
    assert got[-1]["loss"] < 0.5 * got[0]["loss"]
    final = checkpoint.load(str(root / "checkpoints" / "final.safetensors"))
    assert final["weights_digest"] == evs[-1]["final_weights"] == got[-1]["weight_digest"]
    assert "Artha NumPy runtime - training" in capsys.readouterr().out
    again, e2 = job(tmp_path, "resumed", {"ARTHA_RESUME": "step-00000008.safetensors"})
    os.link(root / "checkpoints" / "step-00000008.safetensors",
            again / "model" / "step-00000008.safetensors")
    assert run(monkeypatch, e2) == 0
    assert steps(again) == got[8:]


@pytest.mark.parametrize("extra, code, start", [
    ({"EPOCHS": "x"}, 2, "EPOCHS:"),
    ({"ARTHA_MAX_STEPS": "3", "ARTHA_RESUME": "nope.safetensors"}, 2, "ARTHA_RESUME:"),
    ({"ARTHA_OPTIMIZER": "sgd", "LEARNING_RATE": "1e30"}, 3, "loss:"),
])
def test_errors_are_events_with_exit_codes(tmp_path, monkeypatch, extra, code, start):
    root, e = job(tmp_path, "bad", extra)
    assert run(monkeypatch, e) == code
    last = read_events(root / "artha" / "events.jsonl")[-1]
    assert last["event"] == "error" and last["message"].startswith(start), last


@pytest.mark.parametrize("extra", [{}, {"ARTHA_OPTIMIZER": "sgd", "ARTHA_MOMENTUM": "0.9",
                                        "ARTHA_WEIGHT_DECAY": "0.001"}])
def test_agrees_with_the_native_runtime(tmp_path, monkeypatch, extra):
    if not NATIVE:
        pytest.skip("ARTHA_NATIVE_RUNTIME not set (tests/run.sh sets it)")
    ours, e = job(tmp_path, "ours", extra)
    assert run(monkeypatch, e) == 0
    theirs, e = job(tmp_path, "native", extra)
    proc = subprocess.run([NATIVE], env={**os.environ, **e}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    a, b = steps(ours), steps(theirs)
    assert [s["batch_digest"] for s in a] == [s["batch_digest"] for s in b]
    for x, y in zip(a, b):
        assert abs(x["loss"] - y["loss"]) <= 1e-5 * max(1.0, abs(y["loss"])), (x, y)
