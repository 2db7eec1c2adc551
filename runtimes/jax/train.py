#!/usr/bin/env python3
"""Artha's JAX runtime: trains the native runtime's models with JAX.

Usage: `python3 train.py [train]`, the job described by the environment of
the runtime protocol (artha_runtime.env lists every variable), exactly as
runtimes/torch/train.py: same data, architecture, initial weights, batch
order, optimizer, checkpoints (the native format), events and exit codes —
the framework-independent half lives in artha_runtime.trainer; this file is
the arithmetic in JAX:

- model: linear layers `x·Wᵀ + b` with ReLU between hidden layers, the
  parameters a list in native order (`fc.0.weight`, `fc.0.bias`, …);
- loss: softmax cross-entropy, mean over the batch (classification), or the
  mean squared error over every output (regression); gradients by
  `jax.value_and_grad`, one jitted function per batch shape;
- optimizer: the native AdamW (bias-corrected, decoupled weight decay) and
  SGD (weight decay added to the gradient, momentum buffer starting at the
  first gradient), jitted, their scalars computed on the host in f64 like
  the native runtime's (artha_runtime.trainer.adamw_scalars);
- float32 throughout (jax_enable_x64 off); one CPU thread by default
  (ARTHA_THREADS), so runs are deterministic for a seed on a machine.

It is not bit-identical to the native runtime (XLA sums in another order
and fuses multiply-adds): losses agree to about 1e-6 relative, batch
digests exactly; audits replay with the native runtime.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from artha_runtime import trainer
from artha_runtime.errors import ArthaError, BadInput


def import_jax(cfg):
    """JAX on the job's device, float32, `cfg.threads` CPU threads."""
    platform = "gpu" if cfg.device.startswith("cuda") else "cpu"
    if platform == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (f"{flags} --xla_cpu_multi_thread_eigen="
                                   f"{'true' if cfg.threads > 1 else 'false'} "
                                   f"intra_op_parallelism_threads={cfg.threads}").strip()
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        raise ArthaError(f"JAX is not installed: {e}") from None
    jax.config.update("jax_enable_x64", False)
    try:
        devices = jax.devices(platform)
    except RuntimeError as e:
        raise BadInput(f"`{cfg.device}` requested but JAX has no {platform} backend: {e}",
                       field="ARTHA_DEVICE") from None
    index = int(cfg.device.split(":")[1]) if ":" in cfg.device else 0
    if index >= len(devices):
        raise BadInput(f"`{cfg.device}` requested but JAX sees {len(devices)} {platform} "
                       "device(s)", field="ARTHA_DEVICE")
    return jax, jnp, devices[index]


class JaxFramework(trainer.Framework):
    name = "JAX"

    def __init__(self, cfg):
        self.jax, self.jnp, self.device = import_jax(cfg)
        self.version = self.jax.__version__
        self.threads = cfg.threads

    def describe(self):
        return f"{self.device.platform}:{self.device.id}, {self.threads} thread(s)"

    def load(self, mc, params, oc, t, state):
        jax, jnp = self.jax, self.jnp
        self.names = list(params)
        self.oc, self.classify = oc, mc["task"] == "classify"

        def put(a):
            return jax.device_put(np.asarray(a, np.float32), self.device)

        self.ps = [put(params[n]) for n in self.names]
        self.slots = {s: [put(state[f"optim.{s}.{n}"] if state is not None
                              else np.zeros(params[n].shape, np.float32)) for n in self.names]
                      for s in oc.state_slots()}
        layers = len(self.names) // 2
        classify = self.classify

        def loss_fn(ps, x, y):
            a = x
            for i in range(layers):
                z = a @ ps[2 * i].T + ps[2 * i + 1]
                a = jax.nn.relu(z) if i + 1 < layers else z
            if classify:
                logp = jax.nn.log_softmax(a, axis=1)
                loss = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
                correct = jnp.sum(jnp.argmax(a, axis=1) == y)
            else:
                loss = jnp.mean(jnp.square(a - y))
                correct = jnp.zeros((), jnp.int32)
            return loss, correct

        self._grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))

        def adamw(ps, gs, ms, vs, c):
            new_p, new_m, new_v = [], [], []
            for w, g, m, v in zip(ps, gs, ms, vs):
                m = m * c["beta1"] + g * c["one_minus_beta1"]
                v = v * c["beta2"] + jnp.square(g) * c["one_minus_beta2"]
                upd = m / (jnp.sqrt(v) * c["inv_sqrt_bc2"] + c["eps"]) * c["step_size"]
                new_p.append(w * c["decay"] - upd)
                new_m.append(m)
                new_v.append(v)
            return new_p, new_m, new_v

        def sgd(ps, gs, bufs, c, first):
            new_p, new_b = [], []
            for i, (w, g) in enumerate(zip(ps, gs)):
                d = g + w * c["weight_decay"]
                if bufs:
                    d = d if first else bufs[i] * c["momentum"] + d
                    new_b.append(d)
                new_p.append(w - d * c["lr"])
            return new_p, new_b

        self._adamw = jax.jit(adamw)
        self._sgd = jax.jit(sgd, static_argnums=4)

    def _scalars(self, values):
        return {k: self.jnp.float32(v) for k, v in values.items()}

    def compute(self, x, y):
        y = y.astype(np.int32) if self.classify else y
        (loss, correct), grads = self._grad(self.ps, self.jax.device_put(x, self.device),
                                            self.jax.device_put(y, self.device))
        return float(loss), int(correct), grads

    def update(self, grads, t):
        oc = self.oc
        if oc.kind == "adamw":
            c = self._scalars(trainer.adamw_scalars(oc, t))
            self.ps, m, v = self._adamw(self.ps, grads, self.slots["exp_avg"],
                                            self.slots["exp_avg_sq"], c)
            self.slots = {"exp_avg": m, "exp_avg_sq": v}
        else:
            c = self._scalars({"lr": oc.lr, "momentum": oc.momentum,
                               "weight_decay": oc.weight_decay})
            bufs = self.slots.get("momentum_buffer", [])
            self.ps, bufs = self._sgd(self.ps, grads, bufs, c, t == 1)
            if oc.momentum > 0:
                self.slots = {"momentum_buffer": bufs}

    def grads_np(self, grads):
        return {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def params(self):
        return {n: np.asarray(p) for n, p in zip(self.names, self.ps)}

    def optimizer_state(self):
        return {f"optim.{slot}.{n}": np.asarray(a)
                for slot, arrays in self.slots.items() for n, a in zip(self.names, arrays)}



if __name__ == "__main__":
    sys.exit(trainer.main(sys.argv[1:], JaxFramework, "artha-jax"))
