#!/usr/bin/env python3
"""Artha's TensorFlow runtime: trains the native runtime's models with
TensorFlow.

Usage: `python3 train.py [train]`, the job described by the environment of
the runtime protocol (artha_runtime.env lists every variable), exactly as
runtimes/torch/train.py: same data, architecture, initial weights, batch
order, optimizer, checkpoints (the native format), events and exit codes —
the framework-independent half lives in artha_runtime.trainer; this file is
the arithmetic in TensorFlow:

- model: linear layers `x·Wᵀ + b` with ReLU between hidden layers, one
  `tf.Variable` per parameter in native order (`fc.0.weight`, `fc.0.bias`,
  …);
- loss: softmax cross-entropy, mean over the batch (classification), or the
  mean squared error over every output (regression); gradients by
  `tf.GradientTape`, in a `tf.function` traced once for any batch size;
- optimizer: the native AdamW (bias-corrected, decoupled weight decay) and
  SGD (weight decay added to the gradient, momentum buffer starting at the
  first gradient) on the variables, their scalars computed on the host in
  f64 like the native runtime's (artha_runtime.trainer.adamw_scalars);
- float32 throughout; one CPU thread by default (ARTHA_THREADS), op
  determinism on, so runs are deterministic for a seed on a machine.

It is not bit-identical to the native runtime (Eigen sums in another
order): losses agree to about 1e-6 relative, batch digests exactly; audits
replay with the native runtime.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from artha_runtime import trainer
from artha_runtime.errors import ArthaError, BadInput


def import_tf(cfg):
    """TensorFlow with `cfg.threads` threads and deterministic ops; the
    device name for `tf.device`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's kernels pick their blocking by CPU; Eigen's are the same
    # everywhere for a thread count.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ArthaError(f"TensorFlow is not installed: {e}") from None
    tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    if cfg.device == "cpu":
        return tf, "/CPU:0"
    index = int(cfg.device.split(":")[1]) if ":" in cfg.device else 0
    gpus = tf.config.list_physical_devices("GPU")
    if index >= len(gpus):
        raise BadInput(f"`{cfg.device}` requested but TensorFlow sees {len(gpus)} GPU(s)",
                       field="ARTHA_DEVICE")
    return tf, f"/GPU:{index}"


class TfFramework(trainer.Framework):
    name = "TensorFlow"

    def __init__(self, cfg):
        self.tf, self.device = import_tf(cfg)
        self.version = self.tf.__version__
        self.threads = cfg.threads

    def describe(self):
        return f"{self.device}, {self.threads} thread(s)"

    def load(self, mc, params, oc, t, state):
        tf = self.tf
        self.names = list(params)
        self.oc, self.classify = oc, mc["task"] == "classify"
        with tf.device(self.device):
            self.vars = [tf.Variable(params[n], name=n.replace(".", "_")) for n in self.names]
            self.slots = {
                slot: [tf.Variable(state[f"optim.{slot}.{n}"] if state is not None
                                   else np.zeros(params[n].shape, np.float32),
                                   name=f"{slot}_{n.replace('.', '_')}") for n in self.names]
                for slot in oc.state_slots()}
        layers = len(self.names) // 2
        classify, ws = self.classify, self.vars
        y_spec = (tf.TensorSpec([None], tf.int64) if classify
                  else tf.TensorSpec([None, mc["outputs"]], tf.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, mc["inputs"]], tf.float32), y_spec])
        def grad_fn(x, y):
            with tf.GradientTape() as tape:
                a = x
                for i in range(layers):
                    z = tf.matmul(a, ws[2 * i], transpose_b=True) + ws[2 * i + 1]
                    a = tf.nn.relu(z) if i + 1 < layers else z
                if classify:
                    loss = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=a))
                    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(a, axis=1), y), tf.int32))
                else:
                    loss = tf.reduce_mean(tf.square(a - y))
                    correct = tf.constant(0, tf.int32)
            return loss, correct, tape.gradient(loss, ws)

        @tf.function
        def adamw(grads, c):
            for w, g, m, v in zip(ws, grads, self.slots["exp_avg"], self.slots["exp_avg_sq"]):
                m.assign(m * c["beta1"] + g * c["one_minus_beta1"])
                v.assign(v * c["beta2"] + tf.square(g) * c["one_minus_beta2"])
                upd = m / (tf.sqrt(v) * c["inv_sqrt_bc2"] + c["eps"]) * c["step_size"]
                w.assign(w * c["decay"] - upd)

        bufs = self.slots.get("momentum_buffer", [])

        @tf.function
        def sgd(grads, c, first):
            for i, (w, g) in enumerate(zip(ws, grads)):
                d = g + w * c["weight_decay"]
                if bufs:
                    d = d if first else bufs[i] * c["momentum"] + d
                    bufs[i].assign(d)
                w.assign(w - d * c["lr"])

        self._grad, self._adamw, self._sgd = grad_fn, adamw, sgd

    def _scalars(self, values):
        return {k: self.tf.constant(np.float32(v)) for k, v in values.items()}

    def compute(self, x, y):
        with self.tf.device(self.device):
            loss, correct, grads = self._grad(x, y)
        return float(loss.numpy()), int(correct.numpy()), grads

    def update(self, grads, t):
        oc = self.oc
        with self.tf.device(self.device):
            if oc.kind == "adamw":
                self._adamw(grads, self._scalars(trainer.adamw_scalars(oc, t)))
            else:
                c = self._scalars({"lr": oc.lr, "momentum": oc.momentum,
                                   "weight_decay": oc.weight_decay})
                self._sgd(grads, c, t == 1)

    def grads_np(self, grads):
        return {n: g.numpy() for n, g in zip(self.names, grads)}

    def params(self):
        return {n: v.numpy() for n, v in zip(self.names, self.vars)}

    def optimizer_state(self):
        return {f"optim.{slot}.{n}": v.numpy()
                for slot, vs in self.slots.items() for n, v in zip(self.names, vs)}



if __name__ == "__main__":
    sys.exit(trainer.main(sys.argv[1:], TfFramework, "artha-tf"))
