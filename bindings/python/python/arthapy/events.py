"""Typed job events: what ``job.events()`` yields.

Each event is the JSON form of the engine's ``JobEvent`` (tagged by
``event``), wrapped in a class per kind so code can ``isinstance`` or
``match`` on it; its fields are attributes (``ev.phase``, ``ev.line``) and
``ev.to_dict()`` gives the JSON form back.
"""

from typing import Any, Dict


class JobEvent:
    """Something that happened to a job, in order."""

    event: str = ""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = dict(data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> Dict[str, Any]:
        """The event's JSON form (as the Rust ``JobEvent`` serialises)."""
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobEvent) and other._data == self._data

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._data.items() if k != "event")
        return f"{type(self).__name__}({fields})"


class PhaseEvent(JobEvent):
    """The job entered ``phase`` (``reason`` for failures and cancellations)."""

    event = "phase"


class ProgressEvent(JobEvent):
    """The runtime reported progress: ``step``, ``epoch``, ``loss``, …"""

    event = "progress"


class LogEvent(JobEvent):
    """The runtime printed a line: ``seq``, ``line``, …"""

    event = "log"


class ReceiptEvent(JobEvent):
    """A chain transaction of the job was included: ``action``, ``receipt``."""

    event = "receipt"


class ArtifactEvent(JobEvent):
    """The job produced an artifact: ``kind``, ``name``, ``uri``."""

    event = "artifact"


_KINDS = {c.event: c for c in (PhaseEvent, ProgressEvent, LogEvent, ReceiptEvent, ArtifactEvent)}


def from_dict(data: Dict[str, Any]) -> JobEvent:
    """The typed event of a ``JobEvent`` JSON object."""
    return _KINDS.get(data.get("event", ""), JobEvent)(data)


__all__ = [
    "JobEvent",
    "PhaseEvent",
    "ProgressEvent",
    "LogEvent",
    "ReceiptEvent",
    "ArtifactEvent",
    "from_dict",
]
