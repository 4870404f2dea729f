"""The soft event system: a soft EVG and soft EVRs meeting on a UDP multicast "link".

It is the embedded default of EventTime and its test bed. Several IOC processes share one event
stream, as EVRs share a fibre: ``EvtSoftHwConfigure("239.255.18.1:18324", PPM)`` gives each
process a :class:`SoftEvr` (receiver) and a :class:`SoftEvg` (transmitter), which only transmits
once an event master starts it (``force_sync``).

**The link is host-local.** Frames go to a multicast group on the loopback interface (TTL 1,
``IP_MULTICAST_IF 127.0.0.1``; multicast on ``lo`` was checked to work in the build container).
A frame does not carry "now"; it carries the generator's *timeline*: an anchor
``(monotonic ns, ticks since the last sync event, ticks per second)``. Every EVR computes its
tick counter from the anchor with the host's ``CLOCK_MONOTONIC``, which all processes of a host
share -- the soft equivalent of a fibre with fixed, compensated latency: every EVR latches the
same count for the same event, however late its thread runs. That is why slave and master event
times agree to the tick.

**The generator** (:class:`SoftEvg`) has an oscillator whose rate is ``set_clock_hz(hz) * (1 +
ppm * 1e-6)`` ticks per second of the monotonic clock: ``ppm`` is its error (injected with
``EVG_SIM:PPM``), ``set_clock_hz`` the trim the PLL steers. It emits the sync event 0x7d every
``sync_rate_s * clock_hz`` of its own ticks (``program_sync``), a heartbeat frame every
:data:`HEARTBEAT_S`, a rate frame at each trim, and user events on demand (``send_event``).
Stopping the stream (``set_streaming(False)``) silences it; the oscillator keeps counting, so
when the stream returns, receivers see how many sync events they missed.

**A receiver** (:class:`SoftEvr`) follows one generator (its own process's once an event master
has programmed it, else the first it hears, until that stream is lost); frames of other
generators are counted and ignored -- so two event masters on one link do not mix. Its counter never goes backwards between sync events; missed sync events are delivered
one by one when the stream returns, so a driver adding ``sync_rate`` per sync keeps the right
time. Faults: no frame for :data:`LOSS_S` -> error handler ``ERR_HEARTBEAT`` (stream lost) and
the counter holds (nothing to recover a clock from); ``freeze(True)`` stops the counter (a sync
event then resets it to 0, where it stays) -- a broken tick clock.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .hw import ERR_HEARTBEAT, SYNC_EVENT

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.1
#: A receiver that hears no frame for this long reports the stream lost.
LOSS_S = 0.5
LINK_IF = "127.0.0.1"
LINK_MAGIC = b"EVL1"
KIND_HEARTBEAT, KIND_SYNC, KIND_EVENT, KIND_RATE = range(4)
KIND_NAMES = ("heartbeat", "sync", "event", "rate")
#: At most this many missed sync events are delivered at once (a longer gap is a new timeline).
MAX_CATCHUP = 64
_NS = 1_000_000_000
_FRAME = struct.Struct("!4sBBHIQQqddqd")


class LinkError(ValueError):
    """A bad LINK argument."""


def parse_link(text: str) -> tuple[str, int]:
    """``"239.255.18.1:18324"`` -> (group, port); the group must be IPv4 multicast."""
    group, sep, port = (text or "").strip().rpartition(":")
    try:
        port_n = int(port) if sep else -1
        first = int(socket.inet_aton(group)[0])
    except (ValueError, OSError):
        raise LinkError(f"bad link {text!r} (want a multicast group:port, e.g. "
                        "239.255.18.1:18324)") from None
    if not 224 <= first <= 239 or not 0 < port_n < 65536:
        raise LinkError(f"bad link {text!r} (want a multicast group:port, e.g. "
                        "239.255.18.1:18324)")
    return group, port_n


@dataclass(frozen=True)
class Frame:
    """One link frame: the generator's timeline plus what happened."""
    kind: int
    code: int
    evg_id: int
    seq: int
    sync_count: int          # sync events emitted since the generator started
    anchor_mono_ns: int      # timeline: at this monotonic time ...
    anchor_ticks: float      # ... the counter (since the last sync event) was this ...
    rate_tps: float          # ... and counts this many ticks per second
    event_mono_ns: int = 0   # KIND_EVENT: when it was emitted ...
    event_ticks: float = 0.0  # ... and the count then

    def pack(self) -> bytes:
        return _FRAME.pack(LINK_MAGIC, self.kind, self.code, 0, self.evg_id, self.seq,
                           self.sync_count, self.anchor_mono_ns, self.anchor_ticks,
                           self.rate_tps, self.event_mono_ns, self.event_ticks)

    @classmethod
    def unpack(cls, data: bytes) -> "Frame":
        if len(data) != _FRAME.size:
            raise ValueError("bad frame length")
        (magic, kind, code, _flags, evg_id, seq, syncs, a_mono, a_ticks, rate, e_mono,
         e_ticks) = _FRAME.unpack(data)
        if magic != LINK_MAGIC or kind > KIND_RATE:
            raise ValueError("not a link frame")
        if not (rate > 0 and rate < 1e12) or not 0 <= a_ticks < 1e15 or e_ticks != e_ticks:
            raise ValueError("bad timeline")
        return cls(kind, code, evg_id, seq, syncs, a_mono, a_ticks, rate, e_mono, e_ticks)


# =========================================================================== generator
class SoftEvg:
    """The soft event generator (transmitter protocol of :mod:`timing.evt.hw`)."""

    card = 0

    def __init__(self, link: tuple[str, int], ppm: float = 0.0, *,
                 mono_ns: Callable[[], int] = time.monotonic_ns):
        self.link = link
        self._mono = mono_ns
        self.evg_id = int.from_bytes(os.urandom(4), "big") or 1
        self._cond = threading.Condition()
        self._ppm = float(ppm)
        self._clock_hz = 1_000_000.0          # as set (trimmed by the PLL)
        self._nominal_hz = 1_000_000          # programmed: ticks per sync period / sync_rate
        self._sync_rate_s = 1
        self._anchor = (0, 0.0)                # (mono ns, ticks since last sync)
        self._sync_count = 0
        self._seq = 0
        self._streaming = True
        self.claimed = False
        self._running = False
        self._stop = False
        self._last_sent = 0
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.frames_sent = 0

    # ------------------------------------------------------------ transmitter API
    def have_tx(self) -> bool:
        return True

    def program_sync(self, sync_rate_s: int, clock_hz: int) -> None:
        """Program the sync sequence; from now on this generator belongs to an event master, so
        the receiver of this process listens to it only."""
        with self._cond:
            self.claimed = True
            self._sync_rate_s = int(sync_rate_s)
            self._nominal_hz = int(clock_hz)
            if not self._running:
                self._clock_hz = float(clock_hz)

    def set_clock_hz(self, hz: float) -> None:
        with self._cond:
            if hz <= 0:
                raise ValueError("clock rate must be > 0")
            self._reanchor()
            self._clock_hz = float(hz)
            self._send(KIND_RATE)
            self._cond.notify()

    def get_clock_hz(self) -> float:
        return self._clock_hz

    def force_sync(self) -> None:
        """Start the generator (first call) or emit a sync event now (later calls)."""
        with self._cond:
            if self._sock is None:
                self._sock = _sender_socket()
            self._anchor = (self._mono(), 0.0)
            self._sync_count += 1
            self._send(KIND_SYNC, SYNC_EVENT)
            if not self._running:
                self._running = True
                self._stop = False
                self._thread = threading.Thread(target=self._run, name="EVTsoftEvg", daemon=True)
                self._thread.start()
            self._cond.notify()

    # ------------------------------------------------------------ simulation controls
    @property
    def running(self) -> bool:
        return self._running

    @property
    def ppm(self) -> float:
        return self._ppm

    def set_ppm(self, ppm: float) -> None:
        """Oscillator error against the monotonic clock (fault injection: beyond the PLL's pull
        range it cannot lock)."""
        with self._cond:
            self._reanchor()
            self._ppm = float(ppm)
            self._send(KIND_RATE)
            self._cond.notify()

    @property
    def streaming(self) -> bool:
        return self._streaming

    def set_streaming(self, on: bool) -> None:
        """Stop or run the event stream (the oscillator keeps counting either way)."""
        with self._cond:
            self._streaming = bool(on)
            if on:
                self._send(KIND_HEARTBEAT)
            self._cond.notify()

    def send_event(self, code: int) -> None:
        """Emit event ``code`` (1..255, not the sync event) now."""
        if not 0 < code < 256 or code == SYNC_EVENT:
            raise ValueError(f"event code {code} not allowed (1..255, not 0x7d)")
        with self._cond:
            if not self._running:
                raise RuntimeError("the soft EVG is not running (no event master here)")
            now = self._mono()
            self._send(KIND_EVENT, code, now, self._ticks_at(now))

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)
        self._running = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ------------------------------------------------------------ internals
    @property
    def rate_tps(self) -> float:
        """Ticks per second of the monotonic clock: the set rate with the oscillator error."""
        return self._clock_hz * (1.0 + self._ppm * 1e-6)

    def _ticks_at(self, mono: int) -> float:
        a_mono, a_ticks = self._anchor
        return a_ticks + (mono - a_mono) * self.rate_tps / _NS

    def _reanchor(self) -> None:
        if self._running:
            now = self._mono()
            self._anchor = (now, self._ticks_at(now))

    def _period_ticks(self) -> int:
        return max(1, self._sync_rate_s * self._nominal_hz)

    def _next_sync_ns(self) -> int:
        a_mono, a_ticks = self._anchor
        return a_mono + int((self._period_ticks() - a_ticks) * _NS / self.rate_tps) + 1

    def _send(self, kind: int, code: int = 0, e_mono: int = 0, e_ticks: float = 0.0) -> None:
        """Send a frame (with the lock held, so frames leave in timeline order)."""
        if not self._streaming or self._sock is None:
            return
        self._seq += 1
        a_mono, a_ticks = self._anchor
        frame = Frame(kind, code, self.evg_id, self._seq, self._sync_count, a_mono, a_ticks,
                      self.rate_tps, e_mono, e_ticks)
        try:
            self._sock.sendto(frame.pack(), self.link)
            self.frames_sent += 1
        except OSError as exc:
            log.warning("soft EVG: send failed: %s", exc)
        self._last_sent = self._mono()

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                now = self._mono()
                next_sync = self._next_sync_ns()
                if now >= next_sync:
                    # The sync event happened at next_sync exactly (the frame says so).
                    self._anchor = (next_sync, 0.0)
                    self._sync_count += 1
                    self._send(KIND_SYNC, SYNC_EVENT)
                    continue
                next_hb = self._last_sent + int(HEARTBEAT_S * _NS)
                if now >= next_hb:
                    self._send(KIND_HEARTBEAT)
                    self._last_sent = now
                    continue
                self._cond.wait((min(next_sync, next_hb) - now) / _NS)

    def report(self) -> str:
        state = ("running" if self._running else "idle (no event master here)")
        return (f"soft EVG {self.evg_id:08x} on {self.link[0]}:{self.link[1]}: {state}, "
                f"stream {'on' if self._streaming else 'STOPPED'}, clock {self._clock_hz:.3f} Hz"
                f" set, oscillator error {self._ppm:+.3f} ppm, sync every {self._sync_rate_s} s "
                f"({self._period_ticks()} ticks), {self._sync_count} syncs, "
                f"{self.frames_sent} frames")


def _sender_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LINK_IF))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return s


def _receiver_socket(link: tuple[str, int]) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(link)
    mreq = socket.inet_aton(link[0]) + socket.inet_aton(LINK_IF)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(0.05)
    return s


# ============================================================================ receiver
class SoftEvr:
    """The soft event receiver (receiver protocol of :mod:`timing.evt.hw`)."""

    card = 0

    def __init__(self, link: tuple[str, int], *, local_evg: SoftEvg | None = None,
                 loss_s: float = LOSS_S, mono_ns: Callable[[], int] = time.monotonic_ns):
        self.link = link
        self.local_evg = local_evg
        self.loss_s = loss_s
        self._mono = mono_ns
        self._lock = threading.RLock()
        self._event_handlers: list[Callable[[int], None]] = []
        self._error_handlers: list[Callable[[int], None]] = []
        self._evg_id: int | None = None
        self._sync_count = 0
        self._anchor: tuple[int, float, float] | None = None   # (mono ns, ticks, ticks/s)
        self._hold: int | None = None      # counter held (stream lost / frozen)
        self._frozen = False
        self._floor = 0                    # never return less than this (until a reset)
        self._latched: dict[int, int] = {}
        self._listening = True
        self.stream_ok = False
        self._loss_reported = False
        self._last_frame = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames = 0
        self.foreign_frames = 0
        self.bad_frames = 0
        self.losses = 0

    # ------------------------------------------------------------ receiver API
    def have_rx(self) -> int:
        return 256

    def sync_event(self) -> int:
        return SYNC_EVENT

    def direct_time(self) -> bool:
        return False

    def get_time(self):
        return None

    def register_event_handler(self, fn: Callable[[int], None]) -> None:
        self._event_handlers.append(fn)

    def register_error_handler(self, fn: Callable[[int], None]) -> None:
        self._error_handlers.append(fn)

    def get_ticks(self) -> int:
        with self._lock:
            if self._hold is not None:
                return self._hold
            a = self._anchor
            if a is None:
                return 0
            t = int(a[1] + (self._mono() - a[0]) * a[2] / _NS)
            if t < self._floor:
                t = self._floor
            self._floor = t
            return t

    def user_get(self, event: int) -> int | None:
        return self._latched.get(event)

    def init(self) -> None:
        """Open the link and start the receiver thread (idempotent)."""
        if self._thread is not None:
            return
        if self._sock is None:
            self._sock = _receiver_socket(self.link)
        self._last_frame = self._mono()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="EVTsoftEvr", daemon=True)
        self._thread.start()

    def open(self) -> None:
        """Bind the link socket now (so a bad link fails at configuration time)."""
        if self._sock is None:
            self._sock = _receiver_socket(self.link)

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ------------------------------------------------------------ simulation controls
    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self, on: bool) -> None:
        """Stop (True) or run (False) the tick counter: a failing tick clock."""
        with self._lock:
            if on and not self._frozen:
                self._hold = self.get_ticks()
            elif not on and self._frozen:
                self._hold = None if self.stream_ok else self._hold
            self._frozen = bool(on)

    @property
    def listening(self) -> bool:
        return self._listening

    def set_listening(self, on: bool) -> None:
        """Ignore the link (False): this receiver's stream is lost (a pulled fibre)."""
        self._listening = bool(on)

    @property
    def rate_tps(self) -> float:
        a = self._anchor
        return a[2] if a is not None else 0.0

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                data = sock.recv(256)
            except socket.timeout:
                data = None
            except OSError:
                if self._stop.is_set():
                    return
                data = None
                self._stop.wait(0.05)
            if data is not None and self._listening:
                try:
                    self.handle(data)
                except Exception:          # noqa: BLE001 - no frame may stop the receiver
                    log.exception("soft EVR: frame handling failed")
            self._check_loss()

    def _check_loss(self) -> None:
        if self._loss_reported or self._mono() - self._last_frame < self.loss_s * _NS:
            return
        with self._lock:
            if not self._frozen:
                self._hold = self.get_ticks()
            self.stream_ok = False
            self._loss_reported = True
            self.losses += 1
        log.warning("soft EVR: event stream lost (no frame for %.2f s)", self.loss_s)
        self._call(self._error_handlers, ERR_HEARTBEAT)

    def _accepts(self, f: Frame) -> bool:
        local = self.local_evg
        if local is not None and f.evg_id == local.evg_id:
            return True
        if local is not None and (local.running or local.claimed):
            return False
        return f.evg_id == self._evg_id or not self.stream_ok

    def handle(self, data: bytes) -> None:
        """Process one datagram from the link (also called directly by tests)."""
        try:
            f = Frame.unpack(data)
        except (ValueError, struct.error):
            self.bad_frames += 1
            return
        if not self._accepts(f):
            self.foreign_frames += 1
            return
        event = None
        with self._lock:
            self.frames += 1
            self._last_frame = self._mono()
            if f.evg_id != self._evg_id:
                # A new timeline: follow it; a sync frame is delivered as the first event.
                if self._evg_id is not None:
                    log.warning("soft EVR: following EVG %08x (was %08x)", f.evg_id,
                                self._evg_id)
                self._evg_id = f.evg_id
                self._sync_count = f.sync_count - (1 if f.kind == KIND_SYNC else 0)
                self._anchor = None
                self._floor = 0
            if not self.stream_ok:
                self.stream_ok = True
                self._loss_reported = False
                if not self._frozen:
                    self._hold = None
            missed = f.sync_count - self._sync_count
            anchor = (f.anchor_mono_ns, f.anchor_ticks, f.rate_tps)
            if missed > 0:
                self._sync_count = f.sync_count
                self._anchor = anchor
                self._floor = 0
                if self._frozen:
                    self._hold = 0
                # Counter reset and handler calls are one step for get_ticks (the lock).
                for _ in range(min(missed, MAX_CATCHUP)):
                    self._call(self._event_handlers, SYNC_EVENT)
            elif self._anchor is None or f.anchor_mono_ns >= self._anchor[0]:
                self._anchor = anchor
            if f.kind == KIND_EVENT and f.sync_count == self._sync_count:
                self._latched[f.code] = int(f.event_ticks)
                event = f.code
        if event is not None:
            self._call(self._event_handlers, event)

    @staticmethod
    def _call(handlers: list[Callable[[int], None]], arg: int) -> None:
        for fn in list(handlers):
            try:
                fn(arg)
            except Exception:              # noqa: BLE001 - a handler must not stop the EVR
                log.exception("soft EVR: handler %r failed", fn)

    def report(self) -> str:
        evg = f"{self._evg_id:08x}" if self._evg_id is not None else "none"
        return (f"soft EVR on {self.link[0]}:{self.link[1]}: following EVG {evg}, stream "
                f"{'OK' if self.stream_ok else 'LOST'}{'' if self._listening else ' (ignored)'}"
                f", ticks {'FROZEN' if self._frozen else 'running'} at {self.rate_tps:.3f}/s, "
                f"{self.frames} frames, {self.foreign_frames} foreign, {self.bad_frames} bad, "
                f"{self.losses} losses")


# ====================================================================== the system
class SoftEventSystem:
    """``EvtSoftHwConfigure(LINK, PPM)``: one soft EVG and one soft EVR on ``link``."""

    def __init__(self, link: str, ppm: float = 0.0, *, loss_s: float = LOSS_S):
        self.link_text = link
        self.link = parse_link(link)
        self.tx = SoftEvg(self.link, ppm)
        self.rx = SoftEvr(self.link, local_evg=self.tx, loss_s=loss_s)
        self.rx.open()

    def stop(self) -> None:
        self.rx.stop()
        self.tx.stop()

    def report(self) -> str:
        return self.tx.report() + "\n" + self.rx.report() + "\n"


_instance: SoftEventSystem | None = None


def instance() -> SoftEventSystem | None:
    """The soft event system ``EvtSoftHwConfigure`` created in this process, or None."""
    return _instance


def configure(link: str, ppm: float) -> SoftEventSystem:
    global _instance
    if _instance is not None:
        raise RuntimeError("EvtSoftHwConfigure: the soft event system is already configured")
    _instance = SoftEventSystem(link, ppm)
    return _instance
