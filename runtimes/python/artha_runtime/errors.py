"""Errors a runtime reports, with the exit codes of the native runtime.

Exit codes: 0 done; 2 bad input (configuration, data, checkpoint); 3 the
loss went non-finite; 4 a file could not be written; 1 anything else.
Every message names what was wrong: the environment variable, the file
(and line), or the field.
"""

from __future__ import annotations


class ArthaError(Exception):
    """A failure the runtime reports as an `error` event; exit code 1."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, file: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.file = file

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.file and self.file not in text:
            text += f" [file: {self.file}]"
        return text


class BadInput(ArthaError):
    """The job's configuration, data or checkpoint is wrong; exit code 2."""

    exit_code = 2


class LossNotFinite(ArthaError):
    """Training diverged; exit code 3. No step is reported for it."""

    exit_code = 3


class WriteFailed(ArthaError):
    """A checkpoint, events or output file could not be written; exit code 4."""

    exit_code = 4
