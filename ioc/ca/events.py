"""Subscription update delivery: EPICS's event-queue bounds and the event task.

Each circuit keeps its updates in one queue (``Circuit.evq``); the bounds below are dbEvent.c's.
The :class:`EventTask` writes them out at a lower priority than record processing, as rsrv's
event tasks run below the scan tasks.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .circuit import Circuit

# dbEvent.c: each event queue serves EVENTSPERQUE (32) subscriptions with EVENTENTRIES (4)
# slots each, in one ring shared by them; a subscription that already has an update queued
# has its newest one replaced once no more than EVENTSPERQUE slots are free. One busy
# subscription may so hold up to 96 updates, and a client's backlog stays bounded.
EVENTS_PER_QUE = 32
EVENT_ENTRIES = 4


def queue_limit(nsubs: int) -> int:
    """Queued updates of a circuit with ``nsubs`` subscriptions past which they coalesce."""
    nques = max(1, (nsubs + EVENTS_PER_QUE - 1) // EVENTS_PER_QUE)
    return nques * EVENTS_PER_QUE * (EVENT_ENTRIES - 1)
# Longest an update waits for the loop to have nothing else ready. Under a flat-out producer
# this sets how often each client is written to; 10 ms measured best on 2 cores with 10 pyepics
# clients (received updates 1.2x pythonSoftIOC's; 1 ms: 0.4x and processing no faster).
MAX_DEFER_S = 0.010

class EventTask:
    """The circuits' event delivery, at a lower priority than record processing (rsrv's event
    tasks run below the scan tasks): queued updates are written when the loop has nothing
    else ready to run, or once they have waited ``MAX_DEFER_S``. Isolated updates go out at
    once; under a flat-out producer each client gets the newest values, coalesced, and record
    processing keeps its rate."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: dict["Circuit", None] = {}
        self._handle = None
        self._since = 0.0
        # CPython's event loop keeps its ready callbacks in ``_ready``; without it (another
        # loop implementation) updates simply go out on the next loop turn.
        self._ready = getattr(loop, "_ready", None)

    def request(self, circuit: "Circuit") -> None:
        self.pending[circuit] = None
        if self._handle is None:
            self._since = time.monotonic()
            self._handle = self.loop.call_soon(self._run)

    def _run(self) -> None:
        self._handle = None
        if not self.pending:
            return
        if self._ready and time.monotonic() - self._since < MAX_DEFER_S:
            self._handle = self.loop.call_soon(self._run)     # after what is waiting
            return
        pending, self.pending = self.pending, {}
        for circuit in pending:
            circuit.flush_events()
