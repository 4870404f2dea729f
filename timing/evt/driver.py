"""The EventTime driver: configuration, event time, validity and faults, the provider functions.

**Event time** (sync roles) is ``sync stamp + ticks / clock_hz``: the sync stamp is the time of
the last sync event (0x7d), the ticks come from the receiver (``get_ticks()``, reset by each sync
event). The master takes its first sync stamp from generalTime without itself
(``get_except_priority(70)``, minus the ticks already counted) and then adds ``sync_rate`` per
sync event; a slave adds ``sync_rate`` too and *jams* the stamp to each accepted sync message of
its master (:mod:`timing.evt.slave`). The stamp and a sequence number live in one immutable
tuple; a reader takes the tuple, the ticks, and the tuple again, and retries if it changed --
the receiver changes the stamp (through the sync handler) and resets its counter as one atomic
step, so a reader never pairs a new stamp with old ticks or the reverse. No lock on the fast path.

**Validity and faults** (the fault mbbi ``EVT_FAULT``): ``EVT_time_OK``, ``EVT_stream_lost``
(receiver error handler: lost heartbeat), ``EVT_sync_timeout`` (slave: no sync message for
3 x sync_rate), ``EVT_ntpLock_lost`` (master PLL lost its lock; a slave mirrors its master's),
``EVT_tick_fail`` (clock watch: the tick counter stood still).

* Until the first time it becomes valid (master: first sync event; slave: first accepted sync
  message) the time is invalid and faults only show the current condition; that first validation
  clears them (a sync event proves the stream works).
* After that the **first fault latches**: the time stays invalid, later faults do not overwrite
  it, until an operator validates (``EVT_VALIDATE``) -- except ``EVT_ntpLock_lost``, which clears
  itself when the PLL locks again (master) or the master says it is valid again (slave), as in
  the seed.
* While invalid the provider functions return None: generalTime falls through to NTP or the OS
  clock (and its ratchet keeps time from going backwards).

**Validation** (``EVT_VALIDATE``, the seed's validating ao): processing it while invalid asks
generalTime for the current time (which is then not EventTime), immediately reads event time
directly, and validates only if they differ by less than VAL seconds; otherwise the record gets
a WRITE alarm and the time stays invalid. A slave also refuses while no sync message of its
master has arrived for 3 intervals (the cause of a sync timeout is then still there, and the
time would fall again at once). Processing it while valid does nothing.

Configuration beyond ``EvtTimeConfigure``'s arguments comes from the environment (read there):

=========================  =====================================================================
``EVT_SYNC_ADDR_LIST``     master: where sync messages go, ``host[:port] ...`` (port: slave_port);
                           default the broadcast address of every interface, as CA does
``EVT_MASTER_ADDR``        slave: where time requests go (port: master_port); default broadcast
``EVT_AUTH_KEY``           shared key: messages carry an HMAC-SHA256, unauthenticated ones are
                           dropped and counted (see :mod:`timing.evt.wire`)
``EVT_PLL_INTERVAL_S``     master PLL sample interval, s (default 2)
=========================  =====================================================================
"""
from __future__ import annotations

import enum
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from . import wire
from .hw import ERR_HEARTBEAT, ReceiverHW, TransmitterHW
from .pll import PllConfig

log = logging.getLogger("timing.evt")

NAME = "EventTime"
PRIORITY = 70
DEFAULT_SYNC_RATE_S = 1
DEFAULT_CLOCK_HZ = 1_000_000
DEFAULT_TIME_OUT_MS = 250
SYNC_TIMEOUT_INTERVALS = 3
_NS = 1_000_000_000


class Fault(enum.IntEnum):
    """TSfault_type, the states of ``EVT_FAULT``."""
    OK = 0
    STREAM_LOST = 1
    SYNC_TIMEOUT = 2
    NTP_LOCK_LOST = 3
    TICK_FAIL = 4

    @property
    def label(self) -> str:
        return ("EVT_time_OK", "EVT_stream_lost", "EVT_sync_timeout", "EVT_ntpLock_lost",
                "EVT_tick_fail")[self]


class Role(enum.IntEnum):
    """TStime_type, the states of ``EVT_ROLE``."""
    SYNC_MASTER = 0
    SYNC_SLAVE = 1
    DIRECT_MASTER = 2
    DIRECT_SLAVE = 3

    @property
    def label(self) -> str:
        return ("sync_master", "sync_slave", "direct_master", "direct_slave")[self]


class ConfigError(ValueError):
    pass


@dataclass
class EvtConfig:
    """EvtTimeConfigure's arguments (0 = default) plus the environment."""
    master: bool
    sync_rate_s: int = DEFAULT_SYNC_RATE_S
    clock_hz: int = DEFAULT_CLOCK_HZ
    master_port: int = wire.DEFAULT_MASTER_PORT
    slave_port: int = wire.DEFAULT_SLAVE_PORT
    time_out_ms: int = DEFAULT_TIME_OUT_MS
    sync_addrs: list[tuple[str, int]] = field(default_factory=list)
    master_addrs: list[tuple[str, int]] = field(default_factory=list)
    key: bytes | None = None
    pll: PllConfig = field(default_factory=PllConfig)

    @classmethod
    def from_args(cls, master: int, sync_rate_s: int = 0, clock_hz: int = 0,
                  master_port: int = 0, slave_port: int = 0, time_out_ms: int = 0,
                  environ=None) -> "EvtConfig":
        env = os.environ if environ is None else environ
        for name, v in (("sync_rate_sec", sync_rate_s), ("clock_rate_hz", clock_hz),
                        ("master_port", master_port), ("slave_port", slave_port),
                        ("time_out_ms", time_out_ms)):
            if v < 0:
                raise ConfigError(f"{name} must be >= 0 (0: default), got {v}")
        if master not in (0, 1):
            raise ConfigError(f"master must be 1 (master) or 0 (slave), got {master}")
        cfg = cls(bool(master), sync_rate_s or DEFAULT_SYNC_RATE_S, clock_hz or DEFAULT_CLOCK_HZ,
                  master_port or wire.DEFAULT_MASTER_PORT, slave_port or wire.DEFAULT_SLAVE_PORT,
                  time_out_ms or DEFAULT_TIME_OUT_MS)
        if cfg.master_port > 65535 or cfg.slave_port > 65535:
            raise ConfigError("ports must be < 65536")
        try:
            cfg.sync_addrs = wire.parse_address_list(
                env.get("EVT_SYNC_ADDR_LIST", "") or " ".join(wire.broadcast_addresses()),
                cfg.slave_port)
            cfg.master_addrs = wire.parse_address_list(
                env.get("EVT_MASTER_ADDR", "") or " ".join(wire.broadcast_addresses()),
                cfg.master_port)
        except wire.AddressError as exc:
            raise ConfigError(str(exc)) from None
        cfg.key = wire.auth_key(env)
        text = env.get("EVT_PLL_INTERVAL_S", "").strip()
        if text:
            try:
                cfg.pll.interval_s = float(text)
            except ValueError:
                raise ConfigError(f"EVT_PLL_INTERVAL_S={text!r} is not a number") from None
            if not cfg.pll.interval_s > 0:
                raise ConfigError("EVT_PLL_INTERVAL_S must be > 0")
        return cfg

    @property
    def sync_rate_ns(self) -> int:
        return self.sync_rate_s * _NS


class _Sync(NamedTuple):
    seq: int                 # sync events handled
    stamp_ns: int | None     # time of the last sync event, ns past the EPICS epoch


class EventTime:
    """One EventTime instance (one per IOC, like the seed's driver)."""

    name = NAME
    priority = PRIORITY

    def __init__(self, cfg: EvtConfig, rx: ReceiverHW, tx: TransmitterHW | None, registry, *,
                 monotonic: Callable[[], float] = time.monotonic):
        if not rx.have_rx():
            raise ConfigError("no event receiver")
        self.cfg = cfg
        self.rx = rx
        self.tx = tx if (tx is not None and tx.have_tx()) else None
        self.registry = registry
        self.mono = monotonic
        self.direct = bool(rx.direct_time())
        if cfg.master and not self.direct and self.tx is None:
            raise ConfigError("a sync master needs an event generator")
        self.role = (Role.DIRECT_MASTER if self.direct else Role.SYNC_MASTER) if cfg.master \
            else (Role.DIRECT_SLAVE if self.direct else Role.SYNC_SLAVE)
        self.sync_event = rx.sync_event()
        self.clock_hz = cfg.clock_hz            # a slave adopts its master's
        self.sync_rate_s = cfg.sync_rate_s
        self._sync = _Sync(0, None)
        self._state_lock = threading.Lock()
        self.valid = False
        self.ever_valid = False
        self.fault = Fault.OK
        self.fault_reason = ""
        self.events: dict[int, int] = {}       # event code -> ns of its last occurrence
        self.state_listeners: list[Callable[[], None]] = []
        self.event_listeners: list[Callable[[int], None]] = []
        self.sync_count = 0                    # sync messages sent / accepted
        self.bad_msgs = 0
        self.bad_reasons: dict[str, int] = {}
        self.last_validation = ""
        self.started = False
        self.registered = False
        self._stop = threading.Event()
        self.role_impl = None
        self.watch = None

    # ================================================================ event time
    def now_ns(self) -> int | None:
        """Event time now, ns past the EPICS epoch, whatever the validity (EVTgetTimeStamp)."""
        if self.direct:
            ts = self.rx.get_time()
            return None if ts is None else ts[0] * _NS + ts[1]
        for _ in range(8):
            st = self._sync
            if st.stamp_ns is None:
                return None
            t = self.rx.get_ticks()
            if self._sync is st:
                return st.stamp_ns + t * _NS // self.clock_hz
        return None

    def sync_state(self) -> _Sync:
        return self._sync

    def set_stamp(self, expect: _Sync, stamp_ns: int) -> bool:
        """Replace the sync stamp if the state is still ``expect`` (compare and swap)."""
        with self._state_lock:
            if self._sync is not expect:
                return False
            self._sync = _Sync(expect.seq, stamp_ns)
            return True

    def _advance_sync(self, first_stamp: Callable[[], int | None] | None = None) -> _Sync:
        """A sync event: seq + 1 and stamp + sync_rate (or ``first_stamp()`` for the first)."""
        with self._state_lock:
            st = self._sync
            if st.stamp_ns is not None:
                stamp = st.stamp_ns + self.sync_rate_s * _NS
            else:
                stamp = first_stamp() if first_stamp is not None else None
            self._sync = _Sync(st.seq + 1, stamp)
            return self._sync

    # ============================================================== provider API
    def get_current(self):
        """generalTime current-time provider: event time, or None while invalid."""
        if not self.valid:
            return None
        ns = self.now_ns()
        return None if ns is None else divmod(ns, _NS)

    def get_event(self, event: int):
        """generalTime event provider: -1 best time (= now), 1..255 that event's last time."""
        if not self.valid:
            return None
        if event == -1:
            return self.get_current()
        ns = self.events.get(event)
        return None if ns is None else divmod(ns, _NS)

    # ======================================================== receiver handlers
    def _on_event(self, code: int) -> None:
        """Receiver event handler (receiver thread; for the sync event under its lock)."""
        if code == self.sync_event and not self.direct:
            st = self.role_impl.on_sync() if self.role_impl is not None else self._advance_sync()
            if st.stamp_ns is not None and self.valid:
                self.events[code] = st.stamp_ns
        else:
            ticks = self.rx.user_get(code)
            st = self._sync
            if self.valid and ticks is not None and st.stamp_ns is not None:
                self.events[code] = st.stamp_ns + ticks * _NS // self.clock_hz
        for fn in list(self.event_listeners):
            try:
                fn(code)
            except Exception:                  # noqa: BLE001 - a listener must not stop the EVR
                log.exception("EventTime: event listener failed")

    def _on_error(self, code: int) -> None:
        if code == ERR_HEARTBEAT:
            self.invalidate(Fault.STREAM_LOST, "event receiver lost the heartbeat")
        else:
            log.warning("EventTime: event receiver error %d", code)

    # ========================================================= validity, faults
    def invalidate(self, fault: Fault, reason: str) -> None:
        """A fault: time invalid; the first fault after a valid period latches."""
        with self._state_lock:
            if self.ever_valid and not self.valid and self.fault != Fault.OK:
                return                                # latched already
            changed = self.valid or self.fault != fault
            self.valid = False
            self.fault = fault
            self.fault_reason = reason
        if changed:
            if self.ever_valid:
                log.warning("EventTime: invalid: %s (%s); generalTime falls through",
                            fault.label, reason)
            else:
                log.info("EventTime: not valid yet: %s (%s)", fault.label, reason)
            self.notify()

    def set_valid(self, why: str, only_fault: Fault | None = None) -> bool:
        """Make the time valid (first sync, PLL re-lock, master valid again). With
        ``only_fault``: only if the latched fault is that one (or the time was never valid)."""
        with self._state_lock:
            if self.valid:
                return False
            if self.ever_valid and only_fault is not None and self.fault != only_fault:
                return False
            first = not self.ever_valid
            self.valid = True
            self.ever_valid = True
            self.fault = Fault.OK
            self.fault_reason = ""
        log.info("EventTime: valid (%s)%s", why, "" if first else " again")
        self.notify()
        return True

    def validate(self, tolerance_s: float) -> tuple[bool, str]:
        """EVT_VALIDATE: validate only if generalTime and event time differ by < tolerance."""
        if self.valid:
            return True, "already valid"
        blocker = self.role_impl.validation_blocker() if self.role_impl is not None else None
        ref = self.registry.get_current()
        ev = self.now_ns()
        if blocker:
            msg = blocker
        elif ev is None or ref is None:
            msg = "no event time" if ev is None else "no generalTime"
        else:
            diff_s = abs(ev - (ref[0] * _NS + ref[1])) / _NS
            if diff_s < tolerance_s:
                with self._state_lock:
                    was = self.fault
                    self.valid = True
                    self.ever_valid = True
                    self.fault = Fault.OK
                    self.fault_reason = ""
                self.last_validation = f"validated, difference {diff_s * 1e6:.1f} us"
                log.warning("EventTime: validated by operator (was %s; difference %.6f s < "
                            "%g s)", was.label, diff_s, tolerance_s)
                if self.role_impl is not None:
                    self.role_impl.on_validated()
                self.notify()
                return True, self.last_validation
            msg = f"differs from generalTime by {diff_s:.6f} s"
        self.last_validation = f"refused: {msg} (tolerance {tolerance_s:g} s)"
        log.warning("EventTime: validation refused: %s (tolerance %g s)", msg, tolerance_s)
        return False, msg

    def notify(self) -> None:
        for fn in list(self.state_listeners):
            try:
                fn()
            except Exception:                  # noqa: BLE001
                log.exception("EventTime: state listener failed")

    def count_bad(self, reason: str) -> None:
        self.bad_msgs += 1
        self.bad_reasons[reason] = self.bad_reasons.get(reason, 0) + 1

    def decode(self, data: bytes) -> "wire.TsMessage | None":
        """A received datagram as a message, or None after counting why it was dropped."""
        try:
            return wire.decode(data, self.cfg.key)
        except wire.BadMessage as exc:
            self.count_bad(str(exc))
            return None

    # ================================================================ lifecycle
    def start(self) -> None:
        """EventTime_Init: handlers, role threads, clock watch, hardware init, registration."""
        if self.started:
            return
        from .watch import ClockWatch
        self.started = True
        self.rx.register_event_handler(self._on_event)
        self.rx.register_error_handler(self._on_error)
        if self.role in (Role.SYNC_MASTER, Role.DIRECT_MASTER):
            from .master import MasterRole
            self.role_impl = MasterRole(self)
        else:
            from .slave import SlaveRole
            self.role_impl = SlaveRole(self)
        self.role_impl.start()
        self.watch = ClockWatch(self)
        self.watch.start()
        self.rx.init()
        self.role_impl.after_hw_init()
        if self.direct and self.rx.get_time() is not None:
            self.set_valid("direct time")
        self.registry.register_current_provider(NAME, PRIORITY, self.get_current)
        self.registry.register_event_provider(NAME, PRIORITY, self.get_event)
        self.registered = True

    def stop(self) -> None:
        """Stop every thread EventTime started (the hardware stops separately)."""
        self._stop.set()
        if self.watch is not None:
            self.watch.stop()
        if self.role_impl is not None:
            self.role_impl.stop()
        self.valid = False

    # =================================================================== report
    def offset_us(self) -> float | None:
        """EVT_OFFSET_US: master: event time minus the reference now; slave: last jam."""
        if self.role_impl is None:
            return None
        return self.role_impl.offset_us()

    def clock_hz_now(self) -> float:
        if self.role_impl is not None:
            return self.role_impl.clock_hz_now()
        return float(self.clock_hz)

    def master_text(self) -> str:
        return self.role_impl.master_text() if self.role_impl is not None else ""

    def pll_locked(self) -> bool:
        return bool(self.role_impl is not None and self.role_impl.pll_locked())

    def report(self, level: int = 0) -> str:
        from ..registry import format_stamp
        c = self.cfg
        out = [f"EventTime: {self.role.label}, {'valid' if self.valid else 'INVALID'}, "
               f"fault {self.fault.label}" + (f" ({self.fault_reason})" if self.fault_reason
                                             else "")]
        ns = self.now_ns()
        out.append("  event time " + (format_stamp(divmod(ns, _NS), 9) if ns is not None
                                      else "not set"))
        out.append(f"  sync rate {self.sync_rate_s} s, clock {self.clock_hz} Hz (now "
                   f"{self.clock_hz_now():.3f} Hz), master port {c.master_port}, slave port "
                   f"{c.slave_port}, time out {c.time_out_ms} ms, "
                   f"{'authenticated (EVT_AUTH_KEY)' if c.key else 'no authentication'}")
        if self.role_impl is not None:
            out.extend("  " + line for line in self.role_impl.report_lines(level))
        out.append(f"  counters: sync messages {'sent' if c.master else 'accepted'} "
                   f"{self.sync_count}, bad messages {self.bad_msgs}")
        if level >= 1:
            if self.bad_reasons:
                out.append("  bad messages by reason: " + ", ".join(
                    f"{k} {v}" for k, v in sorted(self.bad_reasons.items())))
            if self.last_validation:
                out.append(f"  last validation: {self.last_validation}")
            if self.watch is not None:
                out.append("  " + self.watch.report())
            report = getattr(self.rx, "report", None)
            if report is not None:
                out.append("  " + report())
            report = getattr(self.tx, "report", None) if self.tx is not None else None
            if report is not None and c.master:
                out.append("  " + report())
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------ one per process
_instance: EventTime | None = None


def instance() -> EventTime | None:
    """The EventTime ``EvtTimeConfigure`` created in this process, or None."""
    return _instance


def set_instance(evt: EventTime | None) -> None:
    global _instance
    _instance = evt
