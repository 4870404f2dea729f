"""generalTime: the registry of time providers, as EPICS base 7.0's ``epicsGeneralTime.c``.

There are two kinds of time provider. A *current-time* provider tells the wall-clock time now; an
*event-time* provider tells when event ``n`` of an event system last happened. Each provider is
registered with a **priority**: a lower number is a higher priority; providers of equal priority
keep their registration order (FIFO); 999 (:data:`LAST_RESORT_PRIORITY`) is the OS clock's.
Whenever a time is asked for, providers are tried in priority order until one answers, so a
provider that cannot answer now (not synchronised, lost its lock) simply fails and the next one
takes over.

Times are EPICS time stamps: ``(seconds, nanoseconds)`` past 1990-01-01 00:00:00 UTC, two ints
with ``0 <= nanoseconds < 1_000_000_000``; tuples compare in time order.

The two audiences have two APIs on one object (:class:`GeneralTime`), kept apart as EPICS keeps
``generalTimeSup.h`` (providers) apart from ``epicsGeneralTime.h`` (consumers):

**Provider API** -- for code that *supplies* time (OS clock, NTP, EventTime)::

    gt = timing.general_time()
    gt.register_current_provider("EventTime", 70, evt.get_current)  # () -> Stamp | None
    gt.register_event_provider("EventTime", 70, evt.get_event)       # (event) -> Stamp | None
    ref = gt.get_except_priority(70)   # best time of any *other* provider: (stamp, prio) | None

A provider function returns a :data:`Stamp`, or ``None`` to say "no valid time now" (EPICS:
a non-zero status such as ``S_time_unsynchronized``). It must be fast and must not block (it is
called on every record timestamp), and it is called from many threads at once. An exception
raised by a provider counts as a failure (logged once per provider). Register last, once the
provider can answer. There is no unregister, as in EPICS.

**Consumer API** -- for code that *uses* time (records, device support, shell):
``get_current()``, ``get_event(n)``, ``error_count()``, ``reset_error_count()``,
``current_provider_name()``, ``event_provider_name()``, ``highest_current_name()``,
``report(level)``.

Rules (EPICS 7.0, point by point; see ``../shared/reference/generaltime.md`` section 1.3):

* ``get_current()``: the first current-time provider that answers wins; a time older than the last
  one handed out is replaced by that last time (the *ratchet*) and the shared error counter goes
  up; the last-used provider is then left unchanged. If all fail, the last-used provider becomes
  ``None``.
* ``get_event(n)``: ``n == 0`` is ``get_current()``; ``n < -1`` is an error (``None``); otherwise
  the first event provider that answers wins and becomes the last-used event provider (``None``
  after a total failure); ``n == -1`` (best time) is ratcheted against the last best time,
  ``1..255`` each against that event's last time (equal times are fine), ``n >= 256`` is not
  checked (the provider validates those).
* ``get_except_priority(ignore)``: like ``get_current()`` but skipping providers of priority
  ``ignore`` (``ignore < 0``: *only* priority ``-ignore``; 0: none skipped), **without** the
  ratchet, the error count or the last-used update: a reference path must be able to go back.
* Unlike EPICS 7.0 there is no "OS clock only" short circuit: with only the OS clock registered
  the OS clock still goes through the ratchet and ``current_provider_name()`` says ``OS Clock``
  (7.0 reports a false "No working providers").

Thread safety: provider lists are immutable tuples replaced on registration (readers never lock);
the ratchet state is guarded by one lock held only for the compare-and-store, never while a
provider runs (so a provider may itself call the registry, as the last-resort event provider
does).
"""
from __future__ import annotations

import datetime
import logging
import threading
from typing import Callable, NamedTuple

log = logging.getLogger(__name__)

#: An EPICS time stamp: (seconds, nanoseconds) past 1990-01-01 00:00:00 UTC.
Stamp = tuple[int, int]
#: A current-time provider: returns the time now, or None when it has no valid time.
CurrentFn = Callable[[], "Stamp | None"]
#: An event-time provider: returns the time of event ``n``, or None.
EventFn = Callable[[int], "Stamp | None"]

#: Priority of the OS clock and of the optional last-resort event provider.
LAST_RESORT_PRIORITY = 999
#: Events 1..NUM_TIME_EVENTS-1 are ratcheted one by one; higher numbers pass unchecked.
NUM_TIME_EVENTS = 256
#: epicsTime.h event numbers.
EVENT_CURRENT_TIME = 0
EVENT_BEST_TIME = -1
EVENT_DEVICE_TIME = -2

#: POSIX seconds at the EPICS epoch, 1990-01-01 00:00:00 UTC.
POSIX_TIME_AT_EPICS_EPOCH = 631152000

_NO_STAMP: Stamp = (0, 0)


class Provider(NamedTuple):
    """One registered provider (``gtProvider``)."""
    name: str
    priority: int
    get: Callable


def format_stamp(stamp: Stamp, digits: int = 6) -> str:
    """``%Y-%m-%d %H:%M:%S.%06f`` in local time, fraction truncated (epicsTimeToStrftime)."""
    sec, nsec = stamp
    dt = datetime.datetime.fromtimestamp(sec + POSIX_TIME_AT_EPICS_EPOCH)
    frac = str(nsec // 10 ** (9 - digits)).zfill(digits) if digits else ""
    return dt.strftime("%Y-%m-%d %H:%M:%S") + ("." + frac if digits else "")


class GeneralTime:
    """A generalTime registry. The IOC uses one per process (:func:`timing.general_time`);
    tests may create their own."""

    def __init__(self) -> None:
        self._current: tuple[Provider, ...] = ()
        self._event: tuple[Provider, ...] = ()
        self._reg_lock = threading.Lock()        # serialises registrations
        self._lock = threading.Lock()            # ratchet state below
        self._last_time: Stamp = _NO_STAMP       # lastProvidedTime
        self._last_best: Stamp = _NO_STAMP       # lastProvidedBestTime
        self._event_times: list[Stamp] = [_NO_STAMP] * NUM_TIME_EVENTS
        self._errors = 0                         # ErrorCounts
        self._last_current: str | None = None    # lastTimeProvider
        self._last_event: str | None = None      # lastEventProvider
        self._raised: set[str] = set()           # providers whose exception was logged

    # =============================================================== provider API
    def register_current_provider(self, name: str, priority: int, get_time: CurrentFn) -> None:
        """generalTimeRegisterCurrentProvider: add ``get_time() -> Stamp | None`` at
        ``priority`` (lower number = tried first; ties keep registration order)."""
        self._insert("_current", name, priority, get_time)

    def register_event_provider(self, name: str, priority: int, get_event: EventFn) -> None:
        """generalTimeRegisterEventProvider: add ``get_event(n) -> Stamp | None``.

        ``n`` is -1 (the provider's best time) or an event number >= 1 (``get_event(0)`` of the
        registry never reaches event providers: it is the current time)."""
        self._insert("_event", name, priority, get_event)

    def _insert(self, attr: str, name: str, priority: int, fn: Callable) -> None:
        if not name or fn is None:
            raise ValueError("a provider needs a name and a function")   # S_time_badArgs
        new = Provider(str(name), int(priority), fn)
        with self._reg_lock:
            plist: tuple[Provider, ...] = getattr(self, attr)
            # insertProvider: before the first provider of strictly greater priority number.
            i = next((k for k, p in enumerate(plist) if p.priority > new.priority), len(plist))
            # A new tuple, swapped in whole: readers walking the old one are not disturbed.
            setattr(self, attr, plist[:i] + (new,) + plist[i:])

    def get_except_priority(self, ignore_priority: int) -> tuple[Stamp, int] | None:
        """generalTimeGetExceptPriority: ``(stamp, priority)`` from the best current-time
        provider whose priority is not ``ignore_priority`` (if negative: only providers of
        priority ``-ignore_priority``; 0: any), or None if none answers.

        No ratchet (the time may go backwards), no error count, no last-used update: this is the
        reference path of providers that discipline themselves (EventTime's PLL calls it with
        70, an OS-clock sync with 999)."""
        for p in self._current:
            if (ignore_priority > 0 and p.priority == ignore_priority) or \
                    (ignore_priority < 0 and p.priority != -ignore_priority):
                continue
            ts = self._call(p)
            if ts is not None:
                return ts, p.priority
        return None

    # =============================================================== consumer API
    def get_current(self) -> Stamp | None:
        """epicsTimeGetCurrent: the current time, never older than a time handed out before
        (a provider going backwards gets the last time instead and counts an error); None if
        no provider answers."""
        for p in self._current:
            try:
                ts = p.get()
            except Exception:              # noqa: BLE001 - a broken provider is a failing one
                ts = self._provider_raised(p)
            if ts is not None:
                with self._lock:
                    if ts >= self._last_time:
                        self._last_time = ts
                        self._last_current = p.name
                        return ts
                    self._errors += 1
                    return self._last_time
        with self._lock:
            self._last_current = None
        return None

    def get_event(self, event: int) -> Stamp | None:
        """epicsTimeGetEvent: 0 -> current time; -1 -> best event time (ratcheted); 1..255 ->
        that event's last time (ratcheted per event); >= 256 -> unchecked; < -1 -> None
        (S_time_badEvent). None also when no event provider answers."""
        if event == EVENT_CURRENT_TIME:
            return self.get_current()
        if event < EVENT_BEST_TIME:
            return None
        for p in self._event:
            ts = self._call(p, event)
            if ts is None:
                continue
            with self._lock:
                self._last_event = p.name
                if event >= NUM_TIME_EVENTS:
                    return ts                  # the provider does its own checking
                if event == EVENT_BEST_TIME:
                    if ts >= self._last_best:
                        self._last_best = ts
                        return ts
                    self._errors += 1
                    return self._last_best
                if ts >= self._event_times[event]:
                    self._event_times[event] = ts
                    return ts
                self._errors += 1
                return self._event_times[event]
        with self._lock:
            self._last_event = None
        return None

    def error_count(self) -> int:
        """generalTimeGetErrorCounts: backwards times replaced by the ratchet (current time,
        best time and events 1..255 together) since start or the last reset."""
        return self._errors

    def reset_error_count(self) -> None:
        """generalTimeResetErrorCounts."""
        with self._lock:
            self._errors = 0

    def current_provider_name(self) -> str | None:
        """generalTimeCurrentProviderName: the provider that gave the last current time (kept
        when the ratchet replaced a time), None after every provider failed."""
        return self._last_current

    def event_provider_name(self) -> str | None:
        """generalTimeEventProviderName: the provider that gave the last event time, or None."""
        return self._last_event

    def highest_current_name(self) -> str | None:
        """generalTimeHighestCurrentName: the highest-priority registered current provider."""
        plist = self._current
        return plist[0].name if plist else None

    def current_providers(self) -> tuple[Provider, ...]:
        """The current-time providers in the order they are tried."""
        return self._current

    def event_providers(self) -> tuple[Provider, ...]:
        """The event-time providers in the order they are tried."""
        return self._event

    def report(self, level: int = 0) -> str:
        """generalTimeReport output, byte for byte as EPICS prints it (level >= 1 adds each
        current provider's own time, asked directly: no ratchet)."""
        out = [f"Backwards time errors prevented {self.error_count()} times.\n\n",
               "Current Time Providers:\n"]
        current = self._current
        if current:
            for p in current:
                out.append(f'    "{p.name}", priority = {p.priority}\n')
                if level:
                    ts = self._call(p)
                    if ts is not None:
                        out.append(f"\tCurrent Time is {format_stamp(ts)}.\n")
                    else:
                        out.append("\tCurrent Time not available\n")
            out.append("\n")                   # puts() of the buffer adds an empty line
        else:
            out.append("\tNo Providers registered.\n")
        out.append("Event Time Providers:\n")
        if self._event:
            for p in self._event:
                out.append(f'    "{p.name}", priority = {p.priority}\n')
            out.append("\n")
        else:
            out.append("\tNo Providers registered.\n")
        return "".join(out)

    # ------------------------------------------------------------------ helpers
    def _call(self, p: Provider, *args) -> Stamp | None:
        try:
            return p.get(*args)
        except Exception:                  # noqa: BLE001 - a broken provider is a failing one
            return self._provider_raised(p)

    def _provider_raised(self, p: Provider) -> None:
        if p.name not in self._raised:
            self._raised.add(p.name)
            log.exception("time provider %r (priority %d) raised; treated as failing",
                          p.name, p.priority)
        return None

    # ------------------------------------------------------------ site policy
    def install_last_resort_event_provider(self) -> None:
        """installLastResortEventProvider: "Last Resort Event" at 999, answering every event
        with the current time. Optional: it represents site policy."""
        self.register_event_provider("Last Resort Event", LAST_RESORT_PRIORITY,
                                     lambda _event: self.get_current())
