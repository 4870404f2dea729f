"""The time source records take their timestamps from (generalTime's consumer side).

The IOC (``ioc/app.py``) gives its database the timing package's generalTime registry
(``timing.general_time()``, see ``timing/registry.py``); any object with the two methods of
:class:`TimeSource` will do, and a database given none uses :class:`OsClock`. :class:`OsClock` is the plain OS clock, for code that
needs a time without a registry.
"""
from __future__ import annotations

import time
from typing import Protocol

#: POSIX seconds at the EPICS epoch, 1990-01-01 00:00:00 UTC.
POSIX_TIME_AT_EPICS_EPOCH = 631152000


class TimeSource(Protocol):
    def get_current(self) -> tuple[int, int] | None:
        """Current time as (seconds, nanoseconds) since the EPICS epoch, or None."""

    def get_event(self, event: int) -> tuple[int, int] | None:
        """Time of event ``event`` (0: current time, -1: best event time), or None if unknown."""


class OsClock:
    """The OS clock; ``get_event`` knows only event 0 (the current time), as generalTime does
    when no event provider is registered."""

    name = "OS Clock"

    def get_current(self) -> tuple[int, int]:
        ns = time.time_ns()
        sec, nsec = divmod(ns, 1_000_000_000)
        return sec - POSIX_TIME_AT_EPICS_EPOCH, nsec

    def get_event(self, event: int) -> tuple[int, int] | None:
        return self.get_current() if event == 0 else None


def epics_to_posix(stamp: tuple[int, int]) -> float:
    return stamp[0] + POSIX_TIME_AT_EPICS_EPOCH + stamp[1] * 1e-9
