"""The event master's PLL: keeps event time on the reference time by trimming the tick rate.

No public source of EventTime's PLL exists; this design follows the seed's text and the nearest
EPICS precedent, the Windows "PerfCounter" provider (``reference/generaltime.md`` section 3.5).

**Measurement.** Every ``interval_s`` (default 2 s, ``EVT_PLL_INTERVAL_S``) the master reads its
event time, the reference ``generalTime.get_except_priority(70)`` (NTP, else the OS clock; never
itself) and its event time again; the phase error is ``e = mean(event times) - reference``. The
PLL does not run while the time is invalid for another reason (stream lost, tick fail): it would
only be measuring the fault.

**Loop.** A type-2 loop on the phase error. With ``u`` the frequency trim (fractional; the tick
rate set is ``initial_hz * (1 + u)``) and ``x`` the oscillator's unknown error, the error moves
as ``de/dt = u + x``. The controller keeps an integrator ``I`` (an estimate of ``x``)::

    I += ki * e / T            u = -I - kp * e / T       (|u|, |I| <= pull range)

so each interval removes ``kp`` of the phase error while ``I`` settles on ``x``; ``kp = 0.5``,
``ki = 0.15`` give poles at ``|z| = 0.81`` (no overshoot worth the name). After (re)acquisition a
frequency-locked first step sets ``I`` directly from two samples, ``I = (e1 - e0) / T - u``, so
a 50 ppm oscillator is caught in two intervals instead of ten. The integrator sees the error
clipped to the lock threshold: a large error is a phase error (the reference stepped, e.g. NTP
corrected itself by a millisecond) and is slewed out by the proportional path, at most at the
pull rate, without winding the frequency estimate up (which would overshoot by a third of the
step and take half a minute to settle). The trim is limited to the pull range (``pull_ppm``,
default 200 ppm): an oscillator further off cannot be held.

**Lock detector, with hysteresis.** *Locked* after ``lock_count`` (3) samples in a row with
``|e| < lock_ns`` (100 us); *lost* after ``unlock_count`` (2) samples in a row with
``|e| > unlock_ns`` (1 ms) -- the thresholds are ten times apart so jitter near one of them
cannot toggle the state. A sample beyond 1 ms that is shrinking (by 10 % an interval, and below
``slew_limit_ns``, 10 ms) does not count: that is the loop slewing out a step of the reference,
not a loop that cannot follow (an NTP correction of 1.3 ms would otherwise take the time down). Lost (whether it was locked or still acquiring): the master goes invalid
with ``EVT_ntpLock_lost`` (and says so in its sync messages), the tick rate goes back to its
initial value, the integrator is cleared, and the PLL keeps trying.

**Acquisition while invalid.** Only when event time is not in use (invalid) may the PLL *step*
the phase: an error beyond ``step_ns`` (500 us) is removed at once by moving the sync stamp (a
backwards step of a valid clock would be a backwards step of generalTime). While valid it only
slews. On re-lock after ``EVT_ntpLock_lost`` the master validates itself again (the one fault
that needs no operator, as in the seed).

The class is pure logic (no threads, no clocks): :mod:`timing.evt.master` feeds it samples;
tests feed it a simulated oscillator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

_NS = 1_000_000_000


@dataclass
class PllConfig:
    interval_s: float = 2.0
    lock_ns: int = 100_000
    unlock_ns: int = 1_000_000
    step_ns: int = 500_000
    pull_ppm: float = 200.0
    lock_count: int = 3
    unlock_count: int = 2
    slew_limit_ns: int = 10_000_000
    kp: float = 0.5
    ki: float = 0.15


class PllDecision(NamedTuple):
    trim: float        #: fractional frequency trim to apply now (0 = the initial rate)
    step_ns: int       #: add this to event time now (0: no step)
    event: str | None  #: "locked", "lost", "step" or None


class Pll:
    """The loop filter and lock detector; ``update()`` once per interval."""

    def __init__(self, cfg: PllConfig | None = None):
        self.cfg = cfg or PllConfig()
        self.locked = False
        self.trim = 0.0
        self.integ = 0.0
        self._prev: tuple[float, float] | None = None   # (t_s, e_s) of the last sample
        self._fll_pending = True
        self._good = 0
        self._bad = 0
        self._last_abs: int | None = None
        self.last_err_ns: int | None = None
        self.samples = 0
        self.locks = 0
        self.losses = 0
        self.steps = 0

    def _clamp(self, v: float) -> float:
        p = self.cfg.pull_ppm * 1e-6
        return max(-p, min(p, v))

    def reset(self) -> None:
        """Back to the initial rate and a fresh acquisition."""
        self.trim = 0.0
        self.integ = 0.0
        self._prev = None
        self._fll_pending = True
        self._good = self._bad = 0
        self._last_abs = None

    def resume(self) -> None:
        """Sampling resumes after a pause (a stream or tick fault): the last sample is stale,
        so the next one starts a new phase history; the frequency estimate is kept."""
        self._prev = None
        self._good = self._bad = 0
        self._last_abs = None

    def update(self, err_ns: int, t_s: float, can_step: bool) -> PllDecision:
        """One sample: phase error ``err_ns`` (event time minus reference) at time ``t_s``
        (any monotonic seconds); ``can_step``: the time is invalid, so a phase step is allowed."""
        cfg = self.cfg
        self.samples += 1
        self.last_err_ns = err_ns
        if not self.locked and can_step and abs(err_ns) > cfg.step_ns:
            self.steps += 1
            self._prev = (t_s, 0.0)          # after the step the error is ~0
            self._fll_pending = True
            self._good = self._bad = 0
            self._last_abs = 0
            return PllDecision(self.trim, -err_ns, "step")
        e = err_ns / _NS
        T = cfg.interval_s
        if self._prev is not None and self._fll_pending:
            dt = t_s - self._prev[0]
            if dt > 0:
                # Frequency-locked first step: the drift seen with the trim in force.
                self.integ = self._clamp((e - self._prev[1]) / dt - self.trim)
                self._fll_pending = False
        self._prev = (t_s, e)
        lim = cfg.lock_ns / _NS                # a large error is phase, not frequency
        self.integ = self._clamp(self.integ + cfg.ki * max(-lim, min(lim, e)) / T)
        self.trim = self._clamp(-self.integ - cfg.kp * e / T)
        self._good = self._good + 1 if abs(err_ns) < cfg.lock_ns else 0
        # Beyond the unlock threshold is "bad" unless the loop is visibly pulling the error in
        # (shrinking by 10 % an interval) and it is not huge: a reference step being slewed out.
        last = self._last_abs
        converging = (last is not None and abs(err_ns) < 0.9 * last
                      and abs(err_ns) <= cfg.slew_limit_ns)
        self._bad = self._bad + 1 if abs(err_ns) > cfg.unlock_ns and not converging else 0
        self._last_abs = abs(err_ns)
        event = None
        if not self.locked and self._good >= cfg.lock_count and not self._fll_pending:
            self.locked = True
            self.locks += 1
            event = "locked"
        elif self._bad >= cfg.unlock_count:
            self.locked = False
            self.losses += 1
            self.reset()
            event = "lost"
        return PllDecision(self.trim, 0, event)

    def state_text(self) -> str:
        return "locked" if self.locked else "acquiring"
