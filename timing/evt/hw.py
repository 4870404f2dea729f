"""The timing hardware interface of EventTime: the seed's ``devTSrxHW`` and ``devTStxHW``.

An event receiver (EVR) and, on the event master, an event generator (EVG) are what EventTime
needs from the hardware. The C structures of function pointers become two Python protocols; a
hardware driver (here only :mod:`timing.evt.soft`, the soft event system) provides objects with
these methods and EventTime uses nothing else.

Receiver (``devTSrxHW``), needed by both roles:

==========================  ======================================================================
``card``                    card number (informational)
``have_rx()``               > 0 if the receiver is present (the number of event codes it handles)
``get_ticks()``             tick counter now: ticks since the last sync event (0x7d), as an int
``register_event_handler``  ``fn(event)`` is called for every event received (``register_signal_
                            handler``); read the ticks latched for it with ``user_get(event)``
``register_error_handler``  ``fn(code)`` on a link error: :data:`ERR_TAXI` (1), :data:`ERR_HEARTBEAT`
                            (2, stream lost), :data:`ERR_LOST_EVENTS` (3) -- drvTS's codes
``direct_time()``           True if the receiver knows absolute time itself (GPS-like):
                            EventTime then runs as a *direct* master/slave on ``get_time()``
``init()``                  hardware-specific start (``ts_drv_init``); called last at start-up,
                            after the handlers are registered
``get_time()``              absolute time (EPICS stamp) of a direct-time receiver, else None
``user_get(event)``         ticks latched at the last occurrence of ``event`` (counted from the
                            sync event before it), or None if it was never seen (``ts_user_get``)
``sync_event()``            the tick-counter reset event number (``ts_sync_signal``, default 0x7d)
==========================  ======================================================================

Transmitter (``devTStxHW``), needed by a sync master:

==========================  ======================================================================
``card``                    card number
``have_tx()``               True if the generator is present
``force_sync()``            emit a sync event now; EventTime calls it once at start so the sync
                            sequence (and event time) starts at a known moment
``set_clock_hz(hz)``        set the tick generator's frequency (the PLL steers through this)
``get_clock_hz()``          the frequency last set
==========================  ======================================================================

Optional: ``program_sync(sync_rate_s, clock_hz)`` on a transmitter whose sync sequence the
driver programs (emit the sync event every ``sync_rate_s * clock_hz`` ticks), and ``stop()`` on
both, called at IOC exit.

**Timing contract of a receiver** (what makes event time continuous): handlers run on the
receiver's own thread; for the sync event the counter reset and the calls of the event handlers
are one atomic step for ``get_ticks()`` -- no caller can read the new (reset) count before the
handlers have returned, and the handlers themselves may call ``get_ticks()``/``user_get()``
(re-entrant). Handlers must be quick and must not block. ``get_ticks()`` is called from many
threads at once and never goes backwards between two sync events.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

Stamp = tuple[int, int]

#: The tick-counter reset ("sync") event: drvTS's ER_EVENT_RESET_TICK, MRF's TS_COUNTER_RST.
SYNC_EVENT = 0x7D
#: Error codes given to error handlers (drvTS ErRegisterErrorHandler).
ERR_TAXI = 1
ERR_HEARTBEAT = 2
ERR_LOST_EVENTS = 3


@runtime_checkable
class ReceiverHW(Protocol):
    card: int

    def have_rx(self) -> int: ...
    def get_ticks(self) -> int: ...
    def register_event_handler(self, fn: Callable[[int], None]) -> None: ...
    def register_error_handler(self, fn: Callable[[int], None]) -> None: ...
    def direct_time(self) -> bool: ...
    def init(self) -> None: ...
    def get_time(self) -> Stamp | None: ...
    def user_get(self, event: int) -> int | None: ...
    def sync_event(self) -> int: ...


@runtime_checkable
class TransmitterHW(Protocol):
    card: int

    def have_tx(self) -> bool: ...
    def force_sync(self) -> None: ...
    def set_clock_hz(self, hz: float) -> None: ...
    def get_clock_hz(self) -> float: ...
