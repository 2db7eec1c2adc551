"""The events file: one JSON object per line in `$ARTHA_EVENTS` (DESIGN §5).

Each line is exactly what `artha_core::protocol::RuntimeEvent` accepts
(artha-core/src/protocol.rs), with the `"event"` tag first::

    {"event":"step","step":1,"epoch":0,"loss":0.69,"grad_digest":"…","weight_digest":"…","batch_digest":"…"}
    {"event":"checkpoint","path":"step-00000010.safetensors","step":10}
    {"event":"infer","input_digest":"…","output_digest":"…"}
    {"event":"log","message":"…"}
    {"event":"complete","steps":16,"final_weights":"…"}
    {"event":"error","message":"…"}

Digests are 64 lower-case hex digits; `step`/`steps` are u64, `epoch` u32;
`loss` must be finite (a runtime reports an `error` instead of a step with
a non-finite loss); a checkpoint `path` is relative to the checkpoint
directory, with no empty, `.` or `..` segment; a line is at most 64 KiB.
`EventWriter` refuses to write anything else; `parse_line` checks a line
the way the engine does.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from typing import Optional, Union

from .errors import ArthaError, WriteFailed

#: Longest accepted events line, bytes (`protocol::MAX_EVENT_LINE`).
MAX_EVENT_LINE = 64 * 1024
#: Longest time a step line stays buffered before it reaches the file.
STEP_FLUSH_SECONDS = 0.2
#: Longest `log`/`error` message written, characters (keeps lines short).
MAX_MESSAGE = 8 * 1024

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")

#: Fields of each event, in the order serde writes them.
FIELDS = {
    "step": ("step", "epoch", "loss", "grad_digest", "weight_digest", "batch_digest"),
    "checkpoint": ("path", "step"),
    "infer": ("input_digest", "output_digest"),
    "log": ("message",),
    "complete": ("steps", "final_weights"),
    "error": ("message",),
}


class EventError(ArthaError):
    """An event that the engine would reject."""


Digest = Union[bytes, bytearray, str]


def hex_digest(field: str, d: Digest) -> str:
    """A digest as 64 lower-case hex digits (from 32 bytes or hex text)."""
    if isinstance(d, (bytes, bytearray)):
        if len(d) != 32:
            raise EventError(f"a digest is 32 bytes, got {len(d)}", field=field)
        return bytes(d).hex()
    if isinstance(d, str) and _HEX64.fullmatch(d):
        return d
    raise EventError(f"must be 32 bytes or 64 lower-case hex digits, got {d!r:.80}", field=field)


def _uint(field: str, v, top: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
        raise EventError(f"must be an integer in 0..={top}, got {v!r:.40}", field=field)
    return v


def check_path(path: str) -> str:
    """Checks a checkpoint path the way `artha_core::uri::validate_path` does."""
    if not isinstance(path, str):
        raise EventError("must be a string", field="path")
    if path.startswith("/"):
        raise EventError(f"must be relative (no leading `/`): {path!r:.80}", field="path")
    for i, seg in enumerate(path.split("/")):
        problem = None
        if seg == "":
            problem = "empty segment (`//` or trailing `/`)"
        elif seg in (".", ".."):
            problem = "`.` and `..` are not allowed"
        elif "\0" in seg:
            problem = "contains NUL"
        elif "\\" in seg:
            problem = "contains `\\`"
        elif len(seg.encode("utf-8")) > 255:
            problem = "longer than 255 bytes"
        if problem:
            raise EventError(f"segment {i}: {problem}: {path!r:.80}", field="path")
    return path


def _check(ev: dict) -> dict:
    """Checks an event object's tag, fields and values; returns it."""
    kind = ev.get("event")
    if kind not in FIELDS:
        raise EventError(f"unknown event {kind!r:.40} (one of {', '.join(FIELDS)})", field="event")
    want = set(FIELDS[kind]) | {"event"}
    missing = [f for f in FIELDS[kind] if f not in ev]
    extra = sorted(set(ev) - want)
    if missing:
        raise EventError(f"`{kind}` event lacks {', '.join(missing)}", field=missing[0])
    if extra:
        raise EventError(f"`{kind}` event has unknown field(s) {', '.join(extra)}", field=extra[0])
    if kind == "step":
        _uint("step", ev["step"], _U64_MAX)
        _uint("epoch", ev["epoch"], _U32_MAX)
        loss = ev["loss"]
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
            raise EventError(f"must be a finite number, got {loss!r:.40}", field="loss")
        for f in ("grad_digest", "weight_digest", "batch_digest"):
            hex_digest(f, ev[f])
    elif kind == "checkpoint":
        check_path(ev["path"])
        _uint("step", ev["step"], _U64_MAX)
    elif kind == "infer":
        hex_digest("input_digest", ev["input_digest"])
        hex_digest("output_digest", ev["output_digest"])
    elif kind == "complete":
        _uint("steps", ev["steps"], _U64_MAX)
        hex_digest("final_weights", ev["final_weights"])
    elif not isinstance(ev["message"], str):
        raise EventError("must be a string", field="message")
    return ev


def encode(ev: dict) -> str:
    """One checked event as its JSON line (without the newline)."""
    _check(ev)
    ordered = {"event": ev["event"]}
    for f in FIELDS[ev["event"]]:
        ordered[f] = ev[f]
    line = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(line.encode("utf-8")) > MAX_EVENT_LINE:
        raise EventError(f"line longer than {MAX_EVENT_LINE} bytes", field="events")
    return line


def parse_line(line_no: int, line: str) -> dict:
    """Parses and checks one events line as the engine does; the error
    names the line number."""
    try:
        if len(line.encode("utf-8")) > MAX_EVENT_LINE:
            raise EventError(f"line longer than {MAX_EVENT_LINE} bytes", field="events")

        def no_constants(name):
            raise EventError(f"malformed event: {name} is not JSON", field="events")

        def no_duplicates(pairs):
            keys = [k for k, _ in pairs]
            for k in keys:
                if keys.count(k) > 1:
                    raise EventError(f"malformed event: duplicate field `{k}`", field="events")
            return dict(pairs)

        try:
            ev = json.loads(line, parse_constant=no_constants, object_pairs_hook=no_duplicates)
        except json.JSONDecodeError as e:
            raise EventError(f"malformed event: {e}", field="events") from None
        if not isinstance(ev, dict):
            raise EventError("malformed event: not a JSON object", field="events")
        return _check(ev)
    except EventError as e:
        e.message = f"line {line_no}: {e.message}"
        raise


def read_events(path: Union[str, os.PathLike]) -> list:
    """Every event of an events file, checked (raises on the first bad line)."""
    with open(path, encoding="utf-8") as f:
        return [parse_line(i, line.rstrip("\n")) for i, line in enumerate(f, 1) if line.strip()]


def _clip(message: str) -> str:
    message = str(message)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


class EventWriter:
    """Appends events to `$ARTHA_EVENTS` (created if missing).

    Step lines are buffered and reach the file at least every 0.2 s (the
    engine tails the file); every other event is written through at once,
    so a `checkpoint` line never precedes the steps before it on disk.
    """

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = os.fspath(path)
        try:
            self._f = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise WriteFailed(f"cannot open the events file: {e}", file=self.path) from None
        self._last_flush = time.monotonic()

    def _write(self, ev: dict, *, through: bool) -> None:
        line = encode(ev) + "\n"
        try:
            self._f.write(line)
            if through or time.monotonic() - self._last_flush >= STEP_FLUSH_SECONDS:
                self.flush()
        except OSError as e:
            raise WriteFailed(f"cannot write the events file: {e}", file=self.path) from None

    def step(self, step: int, epoch: int, loss: float, grad_digest: Digest,
             weight_digest: Digest, batch_digest: Digest) -> None:
        """A training step (digests as 32 bytes or hex)."""
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
            raise EventError(f"refusing a step with a non-finite loss ({loss})", field="loss")
        self._write({
            "event": "step", "step": step, "epoch": epoch, "loss": float(loss),
            "grad_digest": hex_digest("grad_digest", grad_digest),
            "weight_digest": hex_digest("weight_digest", weight_digest),
            "batch_digest": hex_digest("batch_digest", batch_digest),
        }, through=False)

    def checkpoint(self, path: str, step: int) -> None:
        """A checkpoint file (relative to the checkpoint directory) was
        written after `step`."""
        self._write({"event": "checkpoint", "path": path, "step": step}, through=True)

    def infer(self, input_digest: Digest, output_digest: Digest) -> None:
        """An inference request was served."""
        self._write({
            "event": "infer",
            "input_digest": hex_digest("input_digest", input_digest),
            "output_digest": hex_digest("output_digest", output_digest),
        }, through=True)

    def log(self, message: str) -> None:
        """Free-form progress text."""
        self._write({"event": "log", "message": _clip(message)}, through=True)

    def complete(self, steps: int, final_weights: Digest) -> None:
        """The run finished after `steps` steps (the job's last step number)."""
        self._write({
            "event": "complete", "steps": steps,
            "final_weights": hex_digest("final_weights", final_weights),
        }, through=True)

    def error(self, message: str) -> None:
        """The run failed, because of `message`."""
        self._write({"event": "error", "message": _clip(message)}, through=True)

    def flush(self) -> None:
        self._f.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            try:
                self.flush()
            finally:
                self._f.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_events(path: Optional[str] = None) -> EventWriter:
    """An `EventWriter` on `path`, else `$ARTHA_EVENTS`, else
    `/artha/events.jsonl`."""
    if path is None:
        path = os.environ.get("ARTHA_EVENTS", "").strip() or "/artha/events.jsonl"
    return EventWriter(path)
