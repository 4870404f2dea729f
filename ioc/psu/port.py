"""The port thread: one per serial port, one transaction at a time, a priority queue, link state.

Priorities (``../shared/spec/psu.md``), highest first:

a. **pending settings**, coalesced per setting (the newest value wins, none is lost, arrival order
   kept: a key written again moves behind the others, so ``*RST`` then ``VOLT`` stays in that
   order). A setting is *taken* when its message is on the wire and the instrument's busy time
   (the driver's budget) has passed; the put completes then. If the port is polling when a
   setting arrives, the poll is cut short with the RS-232 device clear (Ctrl-C, UG07 p.87: it
   aborts the operation in progress and drops pending output) and redone later, so a setting
   never waits for a 230 ms measurement (``preempt=0`` turns this off). A setting in progress is
   never cut: only queries are preempted.
b. **readbacks of what was just written** (``APPL? ch`` after a voltage, ``OUTP?`` after OUT...),
   and the error queue while it holds errors;
c. **round-robin polling** of the driver's queries, back to back (the rate the instrument allows:
   each query waits only for the instrument's own processing and the wire); the slow group (MODE,
   TRACK) every ``slow_every`` cycles.

Link state (NUT staleness): ``OK``; ``STALE`` (a transaction failed; values kept, readbacks
INVALID; the port probes with ``*IDN?`` and on an answer re-initialises: remote, settings read
back); ``DISCONNECTED`` (the port failed or cannot open: reopen with back-off); ``NO_DEVICE``
(the port opens but no E3631A answers). Every transition is logged once; comm failures are logged
as NUT's ``ser_comm_fail`` does (the first 10, then every 10th, with a warning at 10 and every
100th) and recovery once. A query that gets no reply right after a setting is resent once (the
real unit's "lost first query", reference §8) before the link counts as failed.

Settings while the link is not OK follow ``PortOptions.outage`` (``E3631AConfigure`` option
``outage=fail|hold``, default ``fail``): ``fail`` refuses a new setting at once
(:class:`LinkDownError` out of ``submit``) and fails the settings still queued when the link
goes down, so nothing of them reaches the instrument after recovery; ``hold`` keeps them
queued, sends each once after recovery and publishes their number as ``PENDING``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

from ..timesrc import OsClock
from .driver import Command, E3631ADriver, NoDeviceError, PsuDriver, Query, ReplyError
from .transport import ReplyTimeout, SerialSettings, SerialTransport, TransportError

log = logging.getLogger("ioc.psu")
_OS_CLOCK = OsClock()

COMM_ERR_LIMIT = 10          # NUT serial.h SER_ERR_LIMIT
COMM_ERR_RATE = 100          # NUT serial.h SER_ERR_RATE


class LinkState(IntEnum):
    OK = 0
    STALE = 1
    DISCONNECTED = 2
    NO_DEVICE = 3


#: Why readbacks are INVALID: an EPICS alarm status name per failure kind.
STAT_TIMEOUT, STAT_READ, STAT_COMM = "TIMEOUT", "READ", "COMM"


@dataclass
class PortOptions:
    timeout_s: float = 0.5            # reply deadline after the query is on the wire
    busy: str = "observed"            # driver busy-time table: observed | spec | none
    preempt: bool = True              # device-clear a poll when a setting arrives
    slow_every: int = 10              # MODE/TRACK every N refresh cycles
    backoff_min_s: float = 0.25
    backoff_max_s: float = 5.0
    init_wait_s: float = 5.0          # E3631AConfigure waits this long for the first connect
    outage: str = "fail"              # settings while the link is not OK: fail | hold


OUTAGE_POLICIES = ("fail", "hold")


class LinkDownError(Exception):
    """``submit`` under ``outage=fail`` while the link is not OK: nothing was queued."""


@dataclass
class Setpoint:
    value: Any
    t_submit: float
    waiters: list[Callable[[bool, str, float], None]] = field(default_factory=list)


@dataclass
class TxStats:
    count: int = 0
    total_s: float = 0.0
    min_s: float = float("inf")
    max_s: float = 0.0

    def add(self, dt: float) -> None:
        self.count += 1
        self.total_s += dt
        self.min_s = min(self.min_s, dt)
        self.max_s = max(self.max_s, dt)


class CommLog:
    """NUT's ser_comm_fail / ser_comm_good rate limiting (drivers/serial.c)."""

    def __init__(self, name: str):
        self.name = name
        self.failures = 0
        self.total = 0

    def fail(self, why: str) -> None:
        self.failures += 1
        self.total += 1
        n = self.failures
        if n == COMM_ERR_LIMIT or n % COMM_ERR_RATE == 0:
            log.warning("%s: warning: excessive comm failures, limiting error reporting", self.name)
        if n > COMM_ERR_LIMIT and n % 10 != 0:
            return
        log.warning("%s: communications with the instrument lost: %s", self.name, why)

    def good(self) -> None:
        if self.failures:
            log.warning("%s: communications with the instrument re-established", self.name)
            self.failures = 0


class PsuPort:
    """One serial port, its driver and its I/O thread.

    Thread-safety: ``submit``, ``stop``, ``snapshot`` and ``report`` may be called from any
    thread; everything else runs on the port thread. Listeners are called on the port thread
    and must only hand work to another thread (the IOC loop), never block.
    """

    def __init__(self, name: str, url: str, *, options: PortOptions | None = None,
                 settings: SerialSettings | None = None,
                 driver_cls: type[PsuDriver] = E3631ADriver,
                 resolve: Callable[[], str] | None = None,
                 clock: Callable[[], tuple[int, int]] | None = None):
        self.name = name
        self.url = url
        self.options = options or PortOptions()
        self.serial_settings = settings or SerialSettings()
        self.driver_cls = driver_cls
        self._resolve = resolve              # auto-detect: returns the URL to open, or raises
        self.clock = clock
        self.transport: SerialTransport | None = None
        self.driver: PsuDriver | None = None
        self.identity = None
        self.state: LinkState | None = None
        self.stat = STAT_COMM
        self.message = "not connected yet"
        self.values: dict[str, tuple[Any, tuple[int, int]]] = {"PENDING": (0, self.now_stamp())}
        #: the port's now stamp at the latest link state change, and at the latest change from
        #: OK (or start) to not OK: INVALID readbacks carry the first, and a value older than the
        #: second is from before the outage (not a good reading after it)
        self.state_stamp: tuple[int, int] | None = None
        self.down_stamp: tuple[int, int] | None = None
        self.listeners: list[Callable[[dict[str, Any], tuple[int, int], bool], None]] = []
        self.state_listeners: list[Callable[[LinkState, str, str], None]] = []
        self.comm = CommLog(name)
        self.stats: dict[str, TxStats] = {}
        self.counters = {"preempts": 0, "retries": 0, "reconnects": 0, "settings": 0,
                         "cycles": 0}
        self.refresh_s: float | None = None
        self.err_count = 0
        self.cmd_latency_s: list[float] = []
        self._cv = threading.Condition()
        self._pending: OrderedDict[str, Setpoint] = OrderedDict()
        self._pending_shown = 0              # the last PENDING published
        self._readbacks: list[Query] = []
        self._inflight: set[str] = set()
        self._queries: list[Query] = []
        self._rr = 0
        self._cycle_start = 0.0
        self._ready_at = 0.0
        self._after_write = False
        self._polling = False
        self._preempt = False
        self._stopping = False
        self._backoff_s = self.options.backoff_min_s
        self._first_attempt = threading.Event()
        self._open_attempt = threading.Event()
        self._thread: threading.Thread | None = None

    # ================================================================ public API
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"psu:{self.name}", daemon=True)
        self._thread.start()

    def wait_first_attempt(self, timeout_s: float) -> bool:
        """Wait until the first connection attempt is over (connected, or failed once)."""
        return self._first_attempt.wait(timeout_s)

    def wait_opened(self, timeout_s: float) -> bool:
        """Wait until the port has been opened once, or failed to open."""
        return self._open_attempt.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        t = self.transport
        if t is not None:
            t.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.driver is not None:
            self.driver.close()
        with self._cv:
            pending, self._pending = self._pending, OrderedDict()
        for sp in pending.values():
            for w in sp.waiters:
                w(False, "IOC stopping", 0.0)

    def check(self, key: str, value: Any) -> None:
        """Raise ValueError if the instrument would refuse ``value`` (nothing is sent then)."""
        self.driver_cls.check(key, value)
        if key not in ("REMOTE", "CLEAR") and self.snapshot().get("REMOTE") == 0:
            raise ValueError(f"{key}: the instrument is in local mode and would refuse it "
                             "(error 550); set REMOTE to 1 first")

    def submit(self, key: str, value: Any, done: Callable[[bool, str, float], None] | None = None
               ) -> None:
        """Queue a setting (thread-safe). ``done(ok, message, latency_s)`` is called on the port
        thread once the instrument has taken it (or the port stops, or under ``outage=fail`` the
        link goes down first). Under ``outage=fail`` with the link not OK nothing is queued and
        :class:`LinkDownError` is raised."""
        now = time.monotonic()
        with self._cv:
            if self.state != LinkState.OK and self.options.outage == "fail":
                raise LinkDownError(self._outage_reason())
            sp = self._pending.pop(key, None)
            if sp is None:
                sp = Setpoint(value, now)
            else:
                sp.value = value      # coalesced: the newest value wins, earlier puts complete too
            if done is not None:
                sp.waiters.append(done)
            self._pending[key] = sp
            preempt = self._polling and self.options.preempt
            if preempt:
                self._preempt = True
            self._cv.notify_all()
        if preempt and self.transport is not None:
            self.transport.cancel_read()
        if self.state != LinkState.OK:
            self._update_pending()

    def _outage_reason(self) -> str:
        state = self.state.name if self.state is not None else "not connected"
        return f"link {state}: not sent (outage=fail)"

    def _update_pending(self) -> None:
        """Publish PENDING: the settings held while the link is not OK (``outage=hold``), down
        to 0 once they have gone out after recovery. Thread-safe."""
        with self._cv:
            n = len(self._pending) + len(self._inflight - set(self._pending))
            if self.state == LinkState.OK and self._pending_shown == 0:
                n = 0           # link OK: settings in flight for a few ms are not "held"
            if n == self._pending_shown:
                return
            self._pending_shown = n
        self._publish({"PENDING": n}, self.now_stamp(), settings=False)

    def snapshot(self) -> dict[str, Any]:
        with self._cv:
            return {k: v for k, (v, _) in self.values.items()}

    def pending_keys(self) -> set[str]:
        """Settings queued or being written (thread-safe)."""
        with self._cv:
            return set(self._pending) | self._inflight

    @property
    def pending_count(self) -> int:
        with self._cv:
            return len(self._pending)

    # ================================================================ thread
    def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    if self.transport is None or not self.transport.is_open:
                        self._connect()
                    elif self.state != LinkState.OK:
                        self._recover()
                    else:
                        self._step()
                except TransportError as exc:
                    self._disconnect(str(exc))
                except Exception as exc:  # noqa: BLE001 - a bug must not end the port
                    log.exception("%s: unexpected error in the port thread", self.name)
                    self._disconnect(f"internal error: {exc!r}")
        finally:
            self._open_attempt.set()
            self._first_attempt.set()

    def _sleep_until(self, t: float) -> bool:
        """Wait until monotonic ``t`` (or stop). False if stopping."""
        with self._cv:
            while not self._stopping:
                remaining = t - time.monotonic()
                if remaining <= 0:
                    return True
                self._cv.wait(remaining)
        return False

    def _backoff(self) -> None:
        self._sleep_until(time.monotonic() + self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, self.options.backoff_max_s)

    # ---------------------------------------------------------------- connect
    def _attempt_failed(self, state: LinkState, stat: str, why: str) -> None:
        """A connection attempt failed: publish the state, log it (rate-limited), back off."""
        self._open_attempt.set()
        self._set_state(state, stat, why)
        self.comm.fail(why)
        self._first_attempt.set()
        self._backoff()

    def _connect(self) -> None:
        url = self.url
        if self._resolve is not None:
            try:
                url = self._resolve()
            except NoDeviceError as exc:
                self._attempt_failed(LinkState.NO_DEVICE, STAT_COMM, str(exc))
                return
            self.url = url
        self.transport = SerialTransport(url, self.serial_settings)
        self.driver = self.driver_cls(self.transport, busy=self.options.busy)
        try:
            self.driver.open()
        except TransportError as exc:       # PortBusyError included: its message says why
            self.transport = None
            self._attempt_failed(LinkState.DISCONNECTED, STAT_COMM, str(exc))
            return
        self._open_attempt.set()
        self.counters["reconnects"] += 1
        self._publish({"PORT": url}, self.now_stamp(), settings=False)
        self._identify_and_init(LinkState.NO_DEVICE)

    def _identify_and_init(self, fail_state: LinkState) -> None:
        assert self.driver is not None
        try:
            self._wait_ready()
            ident = self.driver.identify(self.options.timeout_s)
        except NoDeviceError as exc:
            # Drop a late or partial reply before the next attempt.
            self.transport.device_clear()
            self._attempt_failed(fail_state, STAT_COMM if fail_state == LinkState.NO_DEVICE
                                 else exc.stat, str(exc))
            return
        self.identity = ident
        self._publish({"IDN": ident.idn, "FW_VERS": ident.version, "ERR_CNT": self.err_count,
                       "ERR_MSG": self.values.get("ERR_MSG", ("", None))[0]},
                      self.now_stamp(), settings=False)
        # Remote first: settings over RS-232 need it (UG07 p.87).
        self._ready_at = self.driver.take_control() + self.driver.busy["other"]
        self._after_write = True
        self._publish({"REMOTE": 1}, self.now_stamp(), settings=True)
        # Bumpless: read every setting back before anything may be written.
        for q in self.driver.setting_queries():
            if not self._query(q, settings=True):
                self._first_attempt.set()
                return
        self._queries = self.driver.queries()
        self._rr = 0
        self._cycle_start = time.monotonic()
        self.counters["cycles"] = 0
        self._backoff_s = self.options.backoff_min_s
        self.comm.good()
        self._set_state(LinkState.OK, "", f"connected to {ident.idn} on {self.url}")
        self._first_attempt.set()

    def _recover(self) -> None:
        """STALE/NO_DEVICE with the port open: clear the instrument, re-identify, re-init
        (after a power cycle the supply is in local with *RST settings)."""
        assert self.transport is not None
        self._backoff()
        if self._stopping:
            return
        self.transport.device_clear()
        self._identify_and_init(self.state if self.state is not None else LinkState.STALE)

    def _disconnect(self, why: str) -> None:
        if self.driver is not None:
            self.driver.close()
        self.transport = None
        self._polling = False
        self._attempt_failed(LinkState.DISCONNECTED, STAT_COMM, why)

    # ---------------------------------------------------------------- main step
    def _step(self) -> None:
        with self._cv:
            batch = self._pending
            self._pending = OrderedDict()
            self._preempt = False
        if batch:
            self._apply(batch)
            if self._pending_shown:
                self._update_pending()
            return
        if self._readbacks:
            q = self._readbacks.pop(0)
            if not self._query(q, preemptible=True) and self._preempted_last:
                self._readbacks.insert(0, q)      # after the new setting (deduplicated there)
            return
        self._poll_next()

    def _wait_ready(self) -> None:
        if self._ready_at > time.monotonic():
            self._sleep_until(self._ready_at)

    def _apply(self, batch: "OrderedDict[str, Setpoint]") -> None:
        assert self.driver is not None
        cmds: list[Command] = self.driver.build({k: sp.value for k, sp in batch.items()})
        with self._cv:
            self._inflight = set(batch)
        try:
            self._send_commands(cmds, batch)
        finally:
            with self._cv:
                self._inflight = set()

    def _send_commands(self, cmds: list[Command], batch) -> None:
        for cmd in cmds:
            self._wait_ready()
            if self._stopping:
                self._requeue(batch)
                return
            try:
                on_wire = self.driver.send(cmd.text)
            except TransportError:
                self._requeue({k: batch[k] for k in cmd.keys if k in batch})
                raise
            self.counters["settings"] += 1
            self._ready_at = on_wire + cmd.budget_s
            self._after_write = True
            # Taken = on the wire and the instrument's busy time over.
            self._sleep_until(self._ready_at)
            now = time.monotonic()
            for k in cmd.keys:
                sp = batch.pop(k, None)
                if sp is None:
                    continue
                latency = now - sp.t_submit
                self.cmd_latency_s.append(latency)
                del self.cmd_latency_s[:-1000]
                for w in sp.waiters:
                    w(True, "", latency)
                self._publish({"CMD_LATENCY_MS": latency * 1000.0}, self.now_stamp(),
                              settings=False)
            if "REMOTE" in cmd.keys:
                # No query reads remote/local back: the command taken is the new state.
                self._publish({"REMOTE": int(bool(self._last_values(cmd, "REMOTE")))},
                              self.now_stamp(), settings=False)
            for q in cmd.readbacks:
                if all(q.text != r.text for r in self._readbacks):
                    self._readbacks.append(q)

    @staticmethod
    def _last_values(cmd: Command, key: str):
        return cmd.values.get(key)

    def _requeue(self, batch) -> None:
        """Put settings back in front of newer ones (a newer value of the same key wins)."""
        with self._cv:
            merged: OrderedDict[str, Setpoint] = OrderedDict()
            for k, sp in batch.items():
                newer = self._pending.pop(k, None)
                if newer is not None:
                    newer.waiters[:0] = sp.waiters
                    newer.t_submit = sp.t_submit
                    merged[k] = newer
                else:
                    merged[k] = sp
            merged.update(self._pending)
            self._pending = merged

    def _poll_next(self) -> None:
        qs = self._queries
        if not qs:
            return
        # Skip the slow group except every slow_every-th cycle (and the first).
        for _ in range(len(qs)):
            if not qs[self._rr].slow or self.counters["cycles"] % self.options.slow_every == 0:
                break
            self._advance()
        ok = self._query(qs[self._rr], preemptible=True)
        if ok or not self._preempted_last:
            self._advance()           # a preempted query is done again after the setting

    def _advance(self) -> None:
        self._rr += 1
        if self._rr >= len(self._queries):
            self._rr = 0
            self._end_cycle()

    def _end_cycle(self) -> None:
        now = time.monotonic()
        self.refresh_s = now - self._cycle_start
        self._cycle_start = now
        self.counters["cycles"] += 1
        self._publish({"REFRESH_S": self.refresh_s}, self.now_stamp(), settings=False)

    _preempted_last = False

    def _query(self, q: Query, *, preemptible: bool = False, settings: bool = False) -> bool:
        """One query transaction with the failure policy. True if values were published."""
        assert self.driver is not None and self.transport is not None
        self._preempted_last = False
        attempts = 2 if self._after_write else 1
        for attempt in range(attempts):
            self._wait_ready()
            if preemptible:
                with self._cv:
                    if self._pending or self._stopping:
                        self._preempted_last = True
                        return False
                    self._polling = True
            t0 = time.monotonic()
            try:
                text, t_done = self.driver.transact(
                    q.text, self.options.timeout_s,
                    (lambda: self._preempt or self._stopping) if preemptible else None)
            except ReplyError as exc:          # e.g. non-ASCII bytes: a garbled line
                self._fail(STAT_READ, f"{q.text}: {exc}")
                return False
            except ReplyTimeout as exc:
                self._polling = False
                if str(exc) == "cancelled":
                    self.counters["preempts"] += 1
                    self._preempted_last = True
                    if not self._stopping:
                        # Abort the measurement in progress and drop its reply (UG07 p.87).
                        self.transport.device_clear()
                    return False
                if attempt + 1 < attempts:
                    self.counters["retries"] += 1
                    self._after_write = False
                    continue
                why = f"no reply to {q.text} within {self.options.timeout_s * 1000:.0f} ms"
                if exc.partial:
                    why += f" (partial line {exc.partial!r})"
                self._fail(STAT_TIMEOUT if not exc.partial else STAT_READ, why)
                return False
            finally:
                self._polling = False
            self._after_write = False
            self.stats.setdefault(q.text, TxStats()).add(t_done - t0)
            try:
                values = q.parse(text)
            except ReplyError as exc:
                self._fail(STAT_READ, f"{q.text}: {exc}")
                return False
            if "ERR" in values:
                code, msg = values.pop("ERR")
                if code != 0:
                    self.err_count += 1
                    values["ERR_MSG"] = f"{code},\"{msg}\""
                    values["ERR_CNT"] = self.err_count
                    # Drain the queue before polling on.
                    self._readbacks.insert(0, self.driver.error_query())
            if "TRACK_RBV" in values and isinstance(self.driver, E3631ADriver):
                self.driver._tracking_hint = bool(values["TRACK_RBV"])
            self._publish(values, self.now_stamp(), settings=settings)
            return True
        return False

    def _fail(self, stat: str, why: str) -> None:
        """A transaction failed on an open port: STALE, readbacks INVALID, drop late replies."""
        self.comm.fail(why)
        self._set_state(LinkState.STALE, stat, why)
        self.transport.device_clear()

    # ---------------------------------------------------------------- publishing
    def now_stamp(self) -> tuple[int, int]:
        """Now as an EPICS (sec, nsec) from the IOC's time registry (the OS clock before the
        port is bound to a database, or if every provider fails)."""
        if self.clock is not None:
            stamp = self.clock()
            if stamp is not None:
                return stamp
        return _OS_CLOCK.get_current()

    def _publish(self, values: dict[str, Any], stamp: tuple[int, int], *, settings: bool) -> None:
        with self._cv:
            for k, v in values.items():
                self.values[k] = (v, stamp)
        for fn in self.listeners:
            fn(values, stamp, settings)

    def _set_state(self, state: LinkState, stat: str, message: str) -> None:
        changed = state != self.state
        failed: list[Setpoint] = []
        stamp = self.now_stamp() if changed else None
        with self._cv:
            self.stat, self.message = stat, message
            old = self.state
            if changed:
                self.state_stamp = stamp
                if state != LinkState.OK and (old is None or old == LinkState.OK):
                    self.down_stamp = stamp
                self.state = state
            if state != LinkState.OK and self.options.outage == "fail" and self._pending:
                # Queued before the link went down: failed now, never sent after recovery.
                failed = list(self._pending.values())
                self._pending = OrderedDict()
        if changed and (old is not None or state != LinkState.OK):
            log.warning("%s: link %s -> %s: %s", self.name,
                        old.name if old is not None else "START", state.name, message)
        if failed:
            log.warning("%s: %d queued setting(s) not sent: the link went down (outage=fail)",
                        self.name, len(failed))
        for sp in failed:
            for w in sp.waiters:
                w(False, self._outage_reason(), 0.0)
        for fn in self.state_listeners:
            fn(state, stat, message)
        if changed:
            self._update_pending()

    # ---------------------------------------------------------------- report
    def report(self, level: int = 0) -> str:
        lines = [f"Port {self.name}: {self.state.name if self.state is not None else 'START'}"
                 f" on {self.url}"]
        if self.state != LinkState.OK:
            lines.append(f"    why: {self.message}")
        if self.identity is not None:
            lines.append(f"    identity: {self.identity.idn} (SYST:VERS {self.identity.version})")
        lat = sorted(self.cmd_latency_s)
        p50 = f"{lat[len(lat) // 2] * 1000:.1f} ms" if lat else "-"
        refresh = f"{self.refresh_s:.3f} s" if self.refresh_s else "-"
        lines.append(f"    queue: {self.pending_count} pending settings "
                     f"(outage={self.options.outage}), "
                     f"{len(self._readbacks)} readbacks; refresh {refresh}; setpoint p50 {p50}")
        c = self.counters
        lines.append(f"    comm failures: {self.comm.total} (now {self.comm.failures}); "
                     f"settings {c['settings']}, preempts {c['preempts']}, retries {c['retries']}, "
                     f"reconnects {c['reconnects']}, cycles {c['cycles']}")
        if level >= 1:
            t = self.transport
            if t is not None and t.is_open:
                try:
                    lines_ = t.modem_lines()
                except TransportError:
                    lines_ = {}
                shown = ", ".join(f"{k.upper()} {'n/a' if v is None else int(v)}"
                                  for k, v in lines_.items())
                lines.append(f"    modem lines: {shown} (n/a: the port cannot report it; "
                             "a pty or an adapter without them)")
            for text, st in sorted(self.stats.items()):
                lines.append(f"    {text:<32} n={st.count:<7} mean {st.total_s / st.count * 1e3:7.1f} ms"
                             f"  min {st.min_s * 1e3:7.1f}  max {st.max_s * 1e3:7.1f}")
        if level >= 2:
            for k, (v, _) in sorted(self.snapshot_items()):
                lines.append(f"    {k} = {v!r}")
        return "\n".join(lines)

    def snapshot_items(self):
        with self._cv:
            return list(self.values.items())
