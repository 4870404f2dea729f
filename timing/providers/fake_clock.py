"""TEST FACILITY -- a steerable time provider, so tests can make time go backwards or fail in a
running IOC. Not for production: nothing registers it unless a test asks for it.

A :class:`FakeClock` answers the OS clock plus an offset that can be changed at any time (a
negative change makes the provider go backwards) and can be told to fail. The shell commands
``testTimeProviderAdd`` / ``testTimeProviderSet`` (``timing.shell``) drive it from a st.cmd or
the IOC's stdin.
"""
from __future__ import annotations

import threading
import time

from ..registry import POSIX_TIME_AT_EPICS_EPOCH, GeneralTime, Stamp

_NS = 1_000_000_000
_EPOCH_NS = POSIX_TIME_AT_EPICS_EPOCH * _NS


class FakeClock:
    """OS clock + ``offset_ns``; answers None while ``failing``. Event times are its current
    time (every event "happened now")."""

    def __init__(self, name: str, offset_ns: int = 0):
        self.name = name
        self.offset_ns = offset_ns
        self.failing = False

    def get_current(self) -> Stamp | None:
        if self.failing:
            return None
        return divmod(time.time_ns() - _EPOCH_NS + self.offset_ns, _NS)  # type: ignore[return-value]

    def get_event(self, event: int) -> Stamp | None:
        return self.get_current()


_clocks: dict[str, FakeClock] = {}
_lock = threading.Lock()


def add(registry: GeneralTime, name: str, priority: int, events: bool = False) -> FakeClock:
    """Create test clock ``name`` and register it as current provider (and event provider)."""
    with _lock:
        if name in _clocks:
            raise ValueError(f"test time provider {name!r} exists already")
        clock = _clocks[name] = FakeClock(name)
    registry.register_current_provider(name, priority, clock.get_current)
    if events:
        registry.register_event_provider(name, priority, clock.get_event)
    return clock


def get(name: str) -> FakeClock | None:
    return _clocks.get(name)
