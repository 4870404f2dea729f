"""The put log of one database: caPutLog's "record of every change" (see :mod:`ioc.putlog`).

Threads: :meth:`PutLog.before`, :meth:`PutLog.after` and :meth:`PutLog.refused` run on the
IOC's event-loop thread (the CA server calls them around a put) and only read the field and
hand an entry to a bounded queue: they never block and never raise. One worker thread
("putlog") takes the entries, merges bursts, formats the lines and writes them to the outputs
(file, log servers, Python logging, the in-memory ring the "PutLog" device support shows), so a
slow disk or log server never holds the loop up.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from ..scan import IoScanList
from .format import (DEFAULT_TIME_FMT, Captured, capture, escape, format_time, format_value,
                     is_numeric)

if TYPE_CHECKING:
    from ..access.context import Putter
    from ..records.base import Record

__all__ = ["PutLog", "Pending", "Output", "CONFIG_NONE", "CONFIG_ON_CHANGE", "CONFIG_ALL",
           "CONFIG_ALL_NO_FILTER", "CONFIG_NAMES", "DEFAULT_BURST_TIMEOUT"]

log = logging.getLogger("ioc.putlog")

# caPutLogInit/caPutLogReconf's config (caPutLog.h)
CONFIG_NONE, CONFIG_ON_CHANGE, CONFIG_ALL, CONFIG_ALL_NO_FILTER = -1, 0, 1, 2
CONFIG_NAMES = {
    CONFIG_NONE: "disabled", CONFIG_ON_CHANGE: "default (on change, squash bursts)",
    CONFIG_ALL: "all (same value too, squash bursts)",
    CONFIG_ALL_NO_FILTER: "no filter (every single put)",
}
DEFAULT_BURST_TIMEOUT = 5.0     # seconds, caPutLog's default
QUEUE_SIZE = 10000              # entries waiting for the worker (caPutLog: 1000 messages)
#: after a wake-up the worker lets this long pass before it takes what is waiting: a run of
#: puts costs one thread switch, not one per put (each costs the IOC loop a GIL hand-over;
#: put-callback p50 with the put log on was 1.12x of off when woken per put)
COALESCE_S = 0.02
RING_SIZE = 100                 # lines kept in memory


class Output(Protocol):
    """Where lines go. ``write`` runs on the worker thread and must not raise; ``show``
    returns report lines for caPutLogShow; ``close`` releases it (idempotent)."""

    def write(self, line: str) -> None: ...

    def show(self, level: int) -> list[str]: ...

    def close(self) -> None: ...


@dataclass
class Pending:
    """A put seen by :meth:`PutLog.before`: who, which field, the value before the put."""
    user: str
    host: str
    pv: str
    record: "Record"
    field: str
    old: Captured


@dataclass
class _Entry:
    """One put or refusal handed to the worker."""
    user: str
    host: str
    pv: str
    stamp: tuple[int, int]
    arrived: float                  # time.monotonic() when queued
    old: Optional[Captured] = None
    new: Optional[Captured] = None
    failed: Optional[str] = None    # reason of a failed put
    refused: Optional[str] = None   # reason of a refused put

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user, self.host, self.pv)


@dataclass
class _Burst:
    """Puts of one client to one PV merged into one line (caPutLog's burst filter)."""
    first: _Entry
    last: _Entry
    deadline: float
    count: int = 1
    lo: Any = None
    hi: Any = None


@dataclass
class _Flush:
    done: threading.Event = dc_field(default_factory=threading.Event)


_STOP = object()


class PutLog:
    """The put log of ``db`` (``db.putlog``).

    Contract:

    * Off until something wants lines: :meth:`add_output` (caPutLogInit, caPutLogFile),
      :meth:`attach` (a record with DTYP "PutLog") or :meth:`enable`. While off, ``before``
      returns None at once.
    * Selection: when an access-security configuration is in force (``db.access.active``) only
      puts whose ACF rule has TRAPWRITE are logged, as caPutLog does. When none is in force
      every put is logged -- our extension (caPutLog refuses to start without access security).
      Refused puts are always logged.
    * ``config`` as caPutLog: -1 nothing, 0 a single put that left the value unchanged is not
      logged, 1 all puts, 2 all puts without burst merging. Bursts: puts by the same client
      (user, host) to the same PV, each arriving within ``burst_timeout`` seconds of the first,
      with no other entry in between, make one line: the first old value, the last new value,
      min/max for numeric scalars and ``burst=<puts merged after the first>``. The line is
      written when the window ends or another entry arrives.
    * Nothing is lost silently: entries that do not fit the queue are counted and a line
      saying how many were dropped is written as soon as the worker can.
    """

    def __init__(self, db: Any, ring_size: int = RING_SIZE) -> None:
        self.db = db
        self.config = CONFIG_ON_CHANGE
        self.burst_timeout = DEFAULT_BURST_TIMEOUT
        self.time_fmt = DEFAULT_TIME_FMT
        self.initialized = False        # caPutLogInit or caPutLogFile was called
        self.outputs: list[Output] = []
        self.ring: deque[str] = deque(maxlen=ring_size)
        self.latest = ""
        self.ioscan = IoScanList("putlog")
        self.total = 0                  # puts seen (caPutLog's Total Count)
        self.lines = 0                  # lines written
        self.unchanged = 0              # single puts not logged under config 0
        self.dropped = 0                # entries the queue had no room for
        self._reported_drops = 0
        self._enabled = False
        self._consumers = 0
        self._lock = threading.Lock()   # ring, latest, counters
        # entries and control items (flush, stop) for the worker: a deque the loop appends to
        # without a lock, and an event that wakes the worker when it is idle
        self._pending: "deque[Any]" = deque()
        self._wake = threading.Event()
        self._unshown = False           # lines written since the records last processed
        self._worker: Optional[threading.Thread] = None
        self._listeners: list[Callable[[str], None]] = []

    # ----------------------------------------------------------- configuration
    @property
    def enabled(self) -> bool:
        """Puts are being logged (something wants lines and config is not -1)."""
        return self._enabled and self.config != CONFIG_NONE

    def enable(self) -> None:
        """Start logging (the worker thread is started on first use)."""
        with self._lock:
            self._enabled = True
            if self._worker is None or not self._worker.is_alive():
                self._pending = deque()
                self._worker = threading.Thread(target=self._run, name="putlog", daemon=True)
                self._worker.start()

    def add_output(self, out: Output) -> None:
        """Send every line to ``out`` from now on; enables the log."""
        self.outputs.append(out)
        self.enable()

    def attach(self) -> IoScanList:
        """A reader of the in-memory lines (the "PutLog" device support) is there; enables
        the log and returns the I/O Intr scan list requested after each line."""
        self._consumers += 1
        self.enable()
        return self.ioscan

    def add_listener(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(line)`` on the worker thread after each line (tests, other consumers)."""
        self._listeners.append(fn)

    def reconf(self, config: int, timeout: Optional[float] = None) -> None:
        """caPutLogReconf: a new config (-1..2) and, if given and > 0, burst timeout."""
        if config not in CONFIG_NAMES:
            raise ValueError(f"config must be -1, 0, 1 or 2, not {config}")
        self.config = config
        if timeout is not None and timeout > 0:
            self.burst_timeout = float(timeout)
        self.flush()

    def set_burst_timeout(self, timeout: float) -> bool:
        """caPutLogSetBurstTimeout: False (and the default set) if ``timeout`` <= 0."""
        ok = timeout > 0
        self.burst_timeout = float(timeout) if ok else DEFAULT_BURST_TIMEOUT
        return ok

    # --------------------------------------------------------- the put hooks
    def before(self, putter: Optional["Putter"], pv_name: str, record: "Record", field: str,
               trapwrite: bool) -> Optional[Pending]:
        """asTrapWrite before the put: None if this put is not logged, else the old value
        captured. Loop thread; never raises."""
        if not self.enabled:
            return None
        try:
            access = getattr(self.db, "access", None)
            if access is not None and access.active and not trapwrite:
                return None
            user, host = _who(putter)
            return Pending(user, host, pv_name, record, field, capture(record, field))
        except Exception:           # noqa: BLE001
            log.exception("put log: before %s", pv_name)
            return None

    def after(self, pending: Optional[Pending], ok: bool, reason: str = "") -> None:
        """asTrapWrite after the put and its processing: read the new value and queue the
        entry (``ok`` False: the put failed for ``reason``). Loop thread; never raises."""
        if pending is None or self.config == CONFIG_NONE:
            return
        try:
            new = capture(pending.record, pending.field)
            stamp = self._stamp(getattr(pending.record, "time", None))
            self._send(_Entry(pending.user, pending.host, pending.pv, stamp, time.monotonic(),
                              pending.old, new, None if ok else (reason or "put failed")))
        except Exception:           # noqa: BLE001
            log.exception("put log: after %s", pending.pv)

    def refused(self, putter: Optional["Putter"], pv_name: str, record: "Record",
                field: str, reason: str) -> None:
        """A put that was not done (no write access, token held...): always logged while the
        log is enabled. Loop thread; never raises."""
        if not self.enabled:
            return
        try:
            user, host = _who(putter)
            self._send(_Entry(user, host, pv_name, self._stamp(None), time.monotonic(),
                              refused=reason or "refused"))
        except Exception:           # noqa: BLE001
            log.exception("put log: refused %s", pv_name)

    def _stamp(self, rec_time: Optional[tuple[int, int]]) -> tuple[int, int]:
        """caPutLog's time: the record's time stamp after the put, or now if that is from
        an earlier second (a put that did not process the record)."""
        now = None
        ts = getattr(self.db, "time_source", None)
        if ts is not None:
            try:
                now = ts.get_current()
            except Exception:       # noqa: BLE001
                now = None
        if now is None:
            ns = time.time_ns()
            now = (ns // 1_000_000_000 - 631152000, ns % 1_000_000_000)
        if rec_time is not None and rec_time[0] >= now[0]:
            return rec_time
        return now

    def _send(self, entry: _Entry) -> None:
        if len(self._pending) >= QUEUE_SIZE:
            with self._lock:
                self.dropped += 1
            return
        self._pending.append(entry)
        if not self._wake.is_set():
            self._wake.set()

    def _control(self, item: Any) -> None:
        """Hand the worker a flush or stop request (never dropped)."""
        self._pending.append(item)
        self._wake.set()

    # ------------------------------------------------------------- the worker
    def flush(self, timeout: float = 5.0) -> bool:
        """Write the burst being held and everything queued before this call; wait (at most
        ``timeout`` s) until done. Not from the loop thread when outputs may be slow."""
        w = self._worker
        if w is None or not w.is_alive():
            return True
        f = _Flush()
        self._control(f)
        return f.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is held, stop the worker and close the outputs. Idempotent; the log is
        off afterwards (outputs must be added again)."""
        self._enabled = False
        w = self._worker
        if w is not None and w.is_alive():
            self._control(_STOP)
            w.join(timeout)
        self._worker = None
        outs, self.outputs = self.outputs, []
        for out in outs:
            try:
                out.close()
            except Exception:       # noqa: BLE001
                log.exception("put log: closing %r", out)

    def _run(self) -> None:
        held: Optional[_Burst] = None
        pending = self._pending
        while True:
            if not pending:
                if self._unshown:
                    # the records show new lines once per batch: they read the latest line
                    # and the whole history, so one processing shows every line written
                    self._unshown = False
                    self.ioscan.request()
                wait = None if held is None else max(0.0, held.deadline - time.monotonic())
                if not self._wake.wait(wait):
                    held = self._emit_burst(held)       # the burst's time is up
                    continue
                time.sleep(COALESCE_S)
                self._wake.clear()      # (anything appended from now on sets it again)
                continue
            item = pending.popleft()
            self._report_drops()
            if item is _STOP:
                self._emit_burst(held)
                return
            if isinstance(item, _Flush):
                held = self._emit_burst(held)
                item.done.set()
                continue
            try:
                held = self._take(held, item)
            except Exception:       # noqa: BLE001
                log.exception("put log: worker")

    def _take(self, held: Optional[_Burst], e: _Entry) -> Optional[_Burst]:
        if e.refused is None:
            with self._lock:
                self.total += 1
        if e.refused is not None or e.failed is not None:
            self._emit_burst(held)
            self._write(self._line(e, e.old, e.new))
            return None
        if (held is not None and self.config != CONFIG_ALL_NO_FILTER
                and held.first.key == e.key and e.arrived <= held.deadline):
            held.last = e
            held.count += 1
            if held.lo is not None and is_numeric(e.new):
                held.lo = min(held.lo, e.new.value)
                held.hi = max(held.hi, e.new.value)
            return held
        self._emit_burst(held)
        if self.config == CONFIG_ALL_NO_FILTER:
            self._write(self._line(e, e.old, e.new))
            return None
        num = is_numeric(e.new)
        return _Burst(e, e, e.arrived + self.burst_timeout,
                      lo=e.new.value if num else None, hi=e.new.value if num else None)

    def _emit_burst(self, b: Optional[_Burst]) -> None:
        if b is None:
            return None
        old, new = b.first.old, b.last.new
        if b.count == 1 and self.config == CONFIG_ON_CHANGE and old == new:
            with self._lock:
                self.unchanged += 1
            return None
        extra = ""
        if b.count > 1:
            if b.lo is not None:
                c = b.last.new
                extra = (f" min={format_value(Captured(c.dbf, b.lo))}"
                         f" max={format_value(Captured(c.dbf, b.hi))}")
            extra += f" burst={b.count - 1}"
        self._write(self._line(b.last, old, new) + extra)
        return None

    def _line(self, e: _Entry, old: Optional[Captured], new: Optional[Captured]) -> str:
        head = f"{format_time(self.time_fmt, e.stamp)} {e.host} {e.user} {e.pv}"
        if e.refused is not None:
            return f'{head} refused="{escape(e.refused)}"'
        assert old is not None and new is not None
        text = f"{head} new={format_value(new)}"
        if new.is_array:
            text += f" new-size={new.size}"
        text += f" old={format_value(old)}"
        if old.is_array:
            text += f" old-size={old.size}"
        if e.failed is not None:
            text += f' failed="{escape(e.failed)}"'
        return text

    def _report_drops(self) -> None:
        with self._lock:
            n = self.dropped - self._reported_drops
            self._reported_drops = self.dropped
        if n:
            stamp = self._stamp(None)
            self._write(f"{format_time(self.time_fmt, stamp)} caPutLog: {n} put(s) not "
                        f"logged (queue of {QUEUE_SIZE} full)", level=logging.WARNING)

    def _write(self, line: str, level: int = logging.INFO) -> None:
        """Send one line everywhere (worker thread)."""
        with self._lock:
            self.lines += 1
            self.latest = line
            self.ring.append(line)
        log.log(level, "%s", line)
        for out in list(self.outputs):
            try:
                out.write(line)
            except Exception:       # noqa: BLE001
                log.exception("put log: output %r", out)
        for fn in list(self._listeners):
            try:
                fn(line)
            except Exception:       # noqa: BLE001
                log.exception("put log: listener")
        self._unshown = True

    # ---------------------------------------------------------------- readers
    def history(self, n: Optional[int] = None) -> list[str]:
        """The last ``n`` lines (all kept if None), oldest first."""
        with self._lock:
            lines = list(self.ring)
        return lines if n is None else lines[-n:] if n > 0 else []

    def resize_ring(self, n: int) -> None:
        """Keep at least ``n`` lines in memory (a history record with NELM n)."""
        with self._lock:
            if self.ring.maxlen is None or n > self.ring.maxlen:
                self.ring = deque(self.ring, maxlen=n)

    def show(self, level: int = 0) -> list[str]:
        """caPutLogShow: mode and total count, then each output; level 1 adds settings and
        counters, level 2 the lines in memory."""
        level = max(0, min(2, level))
        out = [f"caPutLog mode: {self.config} = {CONFIG_NAMES.get(self.config, 'invalid')}",
               f"caPutLog Total Count: {self.total}"]
        for o in self.outputs:
            out.extend(o.show(level))
        if level >= 1:
            access = getattr(self.db, "access", None)
            sel = ("TRAPWRITE puts (access security in force)"
                   if access is not None and access.active else "every put (no access security)")
            out += [f"caPutLog logs: {sel}",
                    f"caPutLog burst timeout: {self.burst_timeout:g} s, time format: "
                    f"\"{self.time_fmt}\"",
                    f"caPutLog lines: {self.lines}, unchanged not logged: {self.unchanged}, "
                    f"dropped: {self.dropped}, kept in memory: {len(self.ring)}"]
        if level >= 2:
            out += [f"  {line}" for line in self.history()]
        return out


def _who(putter: Optional["Putter"]) -> tuple[str, str]:
    if putter is None:
        return ("?", "?")
    return (putter.user or "?", putter.host or "?")

