"""Completes an asyncio future from the engine's runtime (called on the
future's loop through ``call_soon_threadsafe``)."""

import asyncio
from typing import Any


def resolve(fut: "asyncio.Future[Any]", ok: bool, value: Any) -> None:
    """Sets the result or exception of ``fut`` unless it was cancelled."""
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
