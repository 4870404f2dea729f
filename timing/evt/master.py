"""The event master: sync server, stamp server and PLL (the seed's EVTstartSyncServer,
EVTstartStampServer and EVTstartPLL).

* **First sync.** Event time is invalid until the first sync event; its stamp is generalTime
  without EventTime (``get_except_priority(70)``) minus the ticks counted since the event. The
  master starts the generator's sync sequence with ``force_sync()`` at start-up, so this comes
  within one receiver latency of ``iocInit``.
* **Sync server** (thread ``EVTsyncServer``): after each sync event it sends a sync message
  (``master_time`` = the new stamp, ``current_time`` = event time now) to every address of
  ``EVT_SYNC_ADDR_LIST``, from the stamp server's socket (so slaves see one master address).
  While invalid it sends nothing -- slaves then time out and give the master up -- except with
  ``EVT_ntpLock_lost``, which it announces (mask: invalid, fault 3) so slaves give up at once.
* **Stamp server** (thread ``EVTstampServer``) on ``master_port``: answers each time request with
  the sync stamp and the current event time, echoing the request's sequence number (the nonce
  that makes a reply unforgeable to replay). Silent while invalid. Sync requests (drvTS's remote
  ``force_sync``) are ignored: a sync event out of sequence would break "each sync adds
  sync_rate". The port is bound without SO_REUSEADDR so no other process can send from it; if
  it is taken (another master on this host) the master runs without a stamp server.
* **PLL** (thread ``EVTpll``): see :mod:`timing.evt.pll` for the loop and lock detector. Here:
  sample, apply the trim with ``set_clock_hz(initial * (1 + trim))``, step the stamp when the
  PLL says so (only while invalid), invalidate with ``EVT_ntpLock_lost`` on lock loss (restoring
  the initial rate), validate again on re-lock. A lost lock with a tick counter standing still
  is the clock watch's ``EVT_tick_fail`` (found early), not a lock problem.
"""
from __future__ import annotations

import logging
import select
import socket
import threading

from . import wire
from .driver import EventTime, Fault, _Sync
from .pll import Pll

log = logging.getLogger("timing.evt")
_NS = 1_000_000_000


class MasterRole:
    def __init__(self, evt: EventTime):
        self.evt = evt
        self.cfg = evt.cfg
        self.pll = Pll(self.cfg.pll)
        self.initial_hz: float | None = None
        self.sock: socket.socket | None = None
        self.send_sock: socket.socket | None = None
        self.stamp_server_error = ""
        self._sync_ready = threading.Event()
        self._from_ref = False
        self._seq = wire.initial_seq()
        self._threads: list[threading.Thread] = []
        self.requests_answered = 0
        self.requests_ignored = 0
        self.last_err_ns: int | None = None
        self.ref_priority: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(("", self.cfg.master_port))
            self.sock = s
            self.send_sock = s
        except OSError as exc:
            s.close()
            self.stamp_server_error = f"can't bind UDP port {self.cfg.master_port}: {exc.strerror}"
            log.error("EventTime master: %s; no stamp server (is another master running on "
                      "this host?)", self.stamp_server_error)
            self.send_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.send_sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._spawn("EVTsyncServer", self._sync_server)
        if self.sock is not None:
            self._spawn("EVTstampServer", self._stamp_server)
        tx = self.evt.tx
        if tx is not None:
            # Program the generator before the receiver starts (a soft receiver then listens
            # to its own generator only).
            program = getattr(tx, "program_sync", None)
            if program is not None:
                program(self.cfg.sync_rate_s, self.cfg.clock_hz)
            tx.set_clock_hz(self.cfg.clock_hz)
            self.initial_hz = tx.get_clock_hz()

    def after_hw_init(self) -> None:
        """The receiver runs: start the generator's sync sequence, and the PLL."""
        tx = self.evt.tx
        if tx is None:
            return
        tx.force_sync()
        self._spawn("EVTpll", self._pll_loop)

    def _spawn(self, name: str, target) -> None:
        t = threading.Thread(target=self._guard, args=(name, target), name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, name: str, target) -> None:
        while not self.evt._stop.is_set():
            try:
                target()
                return
            except Exception:                  # noqa: BLE001 - restart, never die
                log.exception("EventTime %s: unexpected error; restarting", name)
                self.evt._stop.wait(0.5)

    def stop(self) -> None:
        self._sync_ready.set()
        for t in self._threads:
            t.join(3.0)
            if t.is_alive():
                log.warning("EventTime: thread %s did not stop", t.name)
        for s in {self.sock, self.send_sock}:
            if s is not None:
                s.close()

    def on_validated(self) -> None:
        pass

    def validation_blocker(self) -> str | None:
        return None

    # ------------------------------------------------------------------ sync handler
    def on_sync(self) -> _Sync:
        """Receiver thread, at each sync event (under the receiver's lock)."""
        evt = self.evt

        def first_stamp() -> int | None:
            ref = evt.registry.get_except_priority(evt.priority)
            if ref is None:
                return None
            (sec, nsec), _prio = ref
            return sec * _NS + nsec - evt.rx.get_ticks() * _NS // evt.clock_hz

        st = evt._advance_sync(first_stamp)
        if st.stamp_ns is not None:
            if not evt.ever_valid:
                self._from_ref = True
                evt.set_valid("first sync event")
            self._sync_ready.set()
        return st

    # ------------------------------------------------------------------ sync server
    def _message(self, typ: int, seq: int | None, st: _Sync | None = None) -> wire.TsMessage:
        evt = self.evt
        st = st or evt.sync_state()
        now = evt.now_ns()
        stamp = st.stamp_ns if st.stamp_ns is not None else 0
        return wire.TsMessage(typ, wire.stamp_of_ns(stamp), wire.stamp_of_ns(now or 0),
                              evt.sync_rate_s, evt.clock_hz,
                              wire.make_mask(evt.valid, int(evt.fault), self._from_ref), seq=seq)

    def _sync_server(self) -> None:
        evt = self.evt
        while not evt._stop.is_set():
            if not self._sync_ready.wait(0.5):
                continue
            self._sync_ready.clear()
            if evt._stop.is_set():
                return
            if not evt.valid and evt.fault != Fault.NTP_LOCK_LOST:
                continue                       # silent: slaves give this master up
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            data = wire.encode(self._message(wire.TYPE_SYNC_MSG, self._seq), self.cfg.key)
            self._from_ref = False
            sent = False
            for addr in self.cfg.sync_addrs:
                try:
                    self.send_sock.sendto(data, addr)
                    sent = True
                except OSError as exc:
                    log.debug("EventTime: sync message to %s failed: %s", addr, exc)
            if sent:
                evt.sync_count += 1

    # ------------------------------------------------------------------ stamp server
    def _stamp_server(self) -> None:
        evt = self.evt
        sock = self.sock
        while not evt._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                data, addr = sock.recvfrom(2048)
            except OSError:
                continue
            self.handle_request(data, addr)

    def handle_request(self, data: bytes, addr) -> None:
        evt = self.evt
        msg = evt.decode(data)
        if msg is None:
            return
        if msg.type == wire.TYPE_SYNC_REQUEST:
            self.requests_ignored += 1
            return
        if msg.type != wire.TYPE_TIME_REQUEST:
            evt.count_bad("unexpected type")
            return
        if not evt.valid:
            return                             # silent while invalid
        reply = self._message(wire.TYPE_TIME_REQUEST, msg.seq)
        try:
            self.sock.sendto(wire.encode(reply, self.cfg.key), addr)
            self.requests_answered += 1
        except OSError as exc:
            log.debug("EventTime: reply to %s failed: %s", addr, exc)

    # ------------------------------------------------------------------ PLL
    def measure_ns(self, tries: int = 5) -> int | None:
        """Event time minus the reference now, ns (None if either is missing).

        Each try reads event time, the reference and event time again; the reference is
        compared with the mean of the two, which is off by at most half their spread. A thread
        switch between the reads (Python's GIL) makes one try's spread large, so the try with
        the smallest spread wins (NTP's minimum-delay filter)."""
        evt = self.evt
        best = None
        for _ in range(tries):
            e1 = evt.now_ns()
            ref = evt.registry.get_except_priority(evt.priority)
            e2 = evt.now_ns()
            if e1 is None or e2 is None or ref is None:
                return None
            (sec, nsec), prio = ref
            if best is None or e2 - e1 < best[0]:
                best = (e2 - e1, (e1 + e2) // 2 - (sec * _NS + nsec), prio)
        self.ref_priority = best[2]
        return best[1]

    def _pll_loop(self) -> None:
        evt = self.evt
        interval = self.cfg.pll.interval_s
        paused = False
        while not evt._stop.wait(interval):
            if evt.fault not in (Fault.OK, Fault.NTP_LOCK_LOST) or not evt.ever_valid:
                paused = True                  # measuring a stream/tick fault is pointless
                continue
            if paused:
                self.pll.resume()
                paused = False
            err = self.measure_ns()
            if err is None:
                continue
            self.last_err_ns = err
            watch = evt.watch
            if abs(err) > self.cfg.pll.unlock_ns and watch is not None \
                    and watch.advancing() is False:
                # Not a lock problem: event time stopped because the counter did.
                evt.invalidate(Fault.TICK_FAIL, "the tick counter is not advancing (PLL)")
                continue
            self.apply(self.pll.update(err, evt.mono(), can_step=not evt.valid))

    def apply(self, d) -> None:
        evt = self.evt
        tx = evt.tx
        if d.step_ns:
            for _ in range(8):
                st = evt.sync_state()
                if st.stamp_ns is None or evt.set_stamp(st, st.stamp_ns + d.step_ns):
                    break
            self._from_ref = True
            log.info("EventTime PLL: phase step %+.6f s (time invalid)", d.step_ns / _NS)
        if tx is not None and self.initial_hz is not None:
            hz = self.initial_hz * (1.0 + d.trim)
            if hz != tx.get_clock_hz():
                tx.set_clock_hz(hz)
        if d.event == "locked":
            log.info("EventTime PLL: locked (error %+.1f us, trim %+.3f ppm)",
                     (self.last_err_ns or 0) / 1e3, d.trim * 1e6)
            evt.set_valid("PLL locked", only_fault=Fault.NTP_LOCK_LOST)
            evt.notify()
        elif d.event == "lost":
            log.warning("EventTime PLL: lock lost (error %+.1f us); initial rate %.3f Hz "
                        "restored", (self.last_err_ns or 0) / 1e3, self.initial_hz or 0)
            evt.invalidate(Fault.NTP_LOCK_LOST, "PLL cannot follow the reference time")
            evt.notify()

    # ------------------------------------------------------------------ records, report
    def offset_us(self) -> float | None:
        err = self.measure_ns()
        return None if err is None else err / 1e3

    def clock_hz_now(self) -> float:
        tx = self.evt.tx
        return float(tx.get_clock_hz()) if tx is not None else float(self.evt.clock_hz)

    def master_text(self) -> str:
        return "this IOC"

    def pll_locked(self) -> bool:
        return self.pll.locked

    def report_lines(self, level: int) -> list[str]:
        p = self.pll
        err = "none yet" if p.last_err_ns is None else f"{p.last_err_ns / 1e3:+.1f} us"
        lines = [f"PLL: {p.state_text()}, trim {p.trim * 1e6:+.3f} ppm, last error {err}, "
                 f"reference priority {self.ref_priority}, interval {self.cfg.pll.interval_s:g}"
                 f" s, {p.samples} samples, {p.locks} locks, {p.losses} losses, {p.steps} steps",
                 "sync messages to " + " ".join(map(wire.format_address, self.cfg.sync_addrs)),
                 (f"stamp server on UDP {self.cfg.master_port}: {self.requests_answered} time "
                  f"requests answered, {self.requests_ignored} sync requests ignored")
                 if self.sock is not None else f"stamp server: NONE ({self.stamp_server_error})"]
        if level >= 1:
            c = self.cfg.pll
            lines.append(f"PLL thresholds: lock < {c.lock_ns / 1e3:g} us x{c.lock_count}, "
                         f"unlock > {c.unlock_ns / 1e3:g} us x{c.unlock_count}, step > "
                         f"{c.step_ns / 1e3:g} us (invalid only), pull range "
                         f"+-{c.pull_ppm:g} ppm, initial rate {self.initial_hz} Hz")
        return lines
