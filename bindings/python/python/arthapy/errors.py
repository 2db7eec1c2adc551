"""Exceptions of arthapy: one class per engine error kind.

Every class derives from :class:`ArthaError`, whose instances carry the
engine's structured error: ``kind`` (``"invalid_input"``, ``"not_found"``,
…), ``message``, ``field`` (the input at fault, when one is), ``context``
(a dict) and ``retryable``. Kinds that have a natural Python counterpart
also derive from it, so ``except ValueError`` catches a bad value and
``except LookupError`` a missing thing.
"""

from typing import Any, Dict, Optional


class ArthaError(Exception):
    """An error of the Artha engine."""

    kind: str = "internal"
    message: str = ""
    field: Optional[str] = None
    context: Dict[str, Any] = {}
    retryable: bool = False

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.message = text


class InvalidInput(ArthaError, ValueError):
    """An argument, spec, file or request is malformed; ``field`` names it."""


class NotFound(ArthaError, LookupError):
    """What was named does not exist (a blob, job, dataset, model, path)."""


class AlreadyExists(ArthaError, FileExistsError):
    """A destination or record already exists."""


class Corrupted(ArthaError):
    """Stored data failed its integrity check."""


class PermissionDenied(ArthaError, PermissionError):
    """Policy refused the call (identity, credential, budget cap, rate)."""


class InsufficientFunds(ArthaError):
    """The budget does not cover the estimate, or escrow was refused."""


class ResourceExhausted(ArthaError):
    """No node, GPU, memory or disk for the request now."""


class Conflict(ArthaError):
    """The call does not fit the current state (e.g. cancelling a finished job)."""


class Unavailable(ArthaError, ConnectionError):
    """A service is unreachable, or the engine is closed."""


class Timeout(ArthaError, TimeoutError):
    """A deadline passed."""


class Cancelled(ArthaError):
    """The work was cancelled."""


class Reverted(ArthaError):
    """A chain transaction reverted."""


class Unsupported(ArthaError, NotImplementedError):
    """This engine cannot do what was asked (e.g. no executor for the runtime)."""


class Internal(ArthaError, RuntimeError):
    """A bug or an unexpected state inside the engine."""


class JobFailed(ArthaError):
    """A job ended in failure."""


__all__ = [
    "ArthaError",
    "InvalidInput",
    "NotFound",
    "AlreadyExists",
    "Corrupted",
    "PermissionDenied",
    "InsufficientFunds",
    "ResourceExhausted",
    "Conflict",
    "Unavailable",
    "Timeout",
    "Cancelled",
    "Reverted",
    "Unsupported",
    "Internal",
    "JobFailed",
]
