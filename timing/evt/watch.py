"""The clock watch (the seed's EVTstartClkWatch): is the tick counter counting?

Every :data:`PERIOD_S` (2 s) the thread ``EVTclkWatch`` reads the tick counter twice,
``GAP_S`` apart (5 ms, at least 2 ticks), together with the number of sync events handled. If
no sync event came in between and the second count is not above the first, the counter stands
still: ``EVT_tick_fail``. Why two close reads rather than one read per period, as the seed's
text might suggest: the counter resets at every sync event, so reads a whole period apart can
match by chance (and a counter stuck at 0 behind resets would look alive through the stamp
advancing). A pair with a sync event in between proves nothing and is retaken at once. A stuck
counter is therefore found within ``PERIOD_S + GAP_S`` (<= 2.1 s) of sticking.

The watch also measures the tick rate over each period (ticks counted, sync periods included,
per second of the monotonic clock): the slave's ``EVT_CLK_HZ``.
"""
from __future__ import annotations

import logging
import threading

from .driver import EventTime, Fault

log = logging.getLogger("timing.evt")

PERIOD_S = 2.0
GAP_S = 0.005


class ClockWatch:
    def __init__(self, evt: EventTime, period_s: float = PERIOD_S):
        self.evt = evt
        self.period_s = period_s
        self.checks = 0
        self.failures = 0
        self.measured_hz = 0.0
        self._last: tuple[float, int, int] | None = None    # (mono, sync seq, ticks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="EVTclkWatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.check()
            except Exception:                  # noqa: BLE001 - the watch must not die
                log.exception("EventTime clock watch: unexpected error")

    def advancing(self) -> bool | None:
        """Two reads GAP_S apart: True counting, False stuck, None unknown (no clock yet)."""
        evt = self.evt
        if evt.direct or evt.sync_state().stamp_ns is None:
            return None
        gap = max(GAP_S, 2.0 / evt.clock_hz)
        for _ in range(3):
            seq_a, t_a = evt.sync_state().seq, evt.rx.get_ticks()
            if self._stop.wait(gap):
                return None
            seq_b, t_b = evt.sync_state().seq, evt.rx.get_ticks()
            if seq_a == seq_b:
                return t_b > t_a
        return True                            # sync events all the time: it counts

    def check(self) -> None:
        evt = self.evt
        self.checks += 1
        ok = self.advancing()
        self._measure()
        if ok is False:
            self.failures += 1
            evt.invalidate(Fault.TICK_FAIL, "the tick counter is not advancing")

    def _measure(self) -> None:
        evt = self.evt
        now = evt.mono()
        seq, ticks = evt.sync_state().seq, evt.rx.get_ticks()
        last = self._last
        self._last = (now, seq, ticks)
        if last is None or now <= last[0]:
            return
        counted = (seq - last[1]) * evt.sync_rate_s * evt.clock_hz + ticks - last[2]
        self.measured_hz = counted / (now - last[0])

    def report(self) -> str:
        return (f"clock watch: every {self.period_s:g} s, {self.checks} checks, "
                f"{self.failures} tick failures, measured {self.measured_hz:.3f} Hz")
