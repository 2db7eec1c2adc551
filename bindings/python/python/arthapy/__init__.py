"""arthapy: the Artha engine for Python.

The same engine a Rust program embeds (``artha_engine``), as a native
extension: push data to content-addressed storage, register datasets and
models, train and infer with a budget, follow a job's events, read its
proofs and settle it on chain.

    import arthapy
    with arthapy.connect("~/.artha") as engine:
        data = engine.store.push("iris.csv")
        ds = engine.datasets.register(data["uri"], name="iris")
        job = engine.train(dataset=ds["id"], epochs=2)
        print(job.wait(), job.status()["receipts"])

``connect(home)`` talks to the ``arthai serve`` daemon of the home when one
runs (so many programs share it), else embeds the engine in this process;
``Engine.open(home)`` always embeds it. Every engine error is an
``arthapy.ArthaError`` subclass named after its kind (``InvalidInput``,
``NotFound``, …). ``arthapy.core`` checks content ids, specs, proof
records, Merkle and window proofs and credentials without an engine. The
surface is the same as ``arthajs`` and the Rust
``Connection`` (docs/BINDINGS.md).
"""

import sys as _sys

from ._native import Engine, EventStream, Job, Store, Datasets, Models, connect, __version__
from ._native import core

# `import arthapy.core` finds the extension's submodule.
_sys.modules[__name__ + ".core"] = core
from .errors import (
    ArthaError,
    AlreadyExists,
    Cancelled,
    Conflict,
    Corrupted,
    InsufficientFunds,
    Internal,
    InvalidInput,
    JobFailed,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Reverted,
    Timeout,
    Unavailable,
    Unsupported,
)
from .events import (
    ArtifactEvent,
    JobEvent,
    LogEvent,
    PhaseEvent,
    ProgressEvent,
    ReceiptEvent,
)

__all__ = [
    "Engine",
    "EventStream",
    "Job",
    "Store",
    "Datasets",
    "Models",
    "connect",
    "core",
    "__version__",
    "ArthaError",
    "AlreadyExists",
    "Cancelled",
    "Conflict",
    "Corrupted",
    "InsufficientFunds",
    "Internal",
    "InvalidInput",
    "JobFailed",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Reverted",
    "Timeout",
    "Unavailable",
    "Unsupported",
    "ArtifactEvent",
    "JobEvent",
    "LogEvent",
    "PhaseEvent",
    "ProgressEvent",
    "ReceiptEvent",
]
