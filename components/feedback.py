"""Running a service call from a page: engine errors become a notification (and, when the error names
a field, a message for that field), never a crash or a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from nicegui import ui

from engine.errors import NimbusError

log = logging.getLogger("nimbus.console")

T = TypeVar("T")


class Failed:
    """The outcome of a call that failed (falsy), with the error's message and field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field

    def __bool__(self) -> bool:
        return False


async def attempt(call: Awaitable[T], *, success: str | None = None, notify: bool = True) -> T | Failed:
    """Await `call`; on a NimbusError notify its message and return a Failed. `success` is shown when
    the call worked."""
    try:
        result = await call
    except NimbusError as exc:
        if notify:
            ui.notify(exc.message, type="negative", multi_line=True)
        return Failed(exc.message, exc.field)
    if success:
        ui.notify(success, type="positive")
    return result
