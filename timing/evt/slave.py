"""The event slave: clock set from the master, then the sync client (the seed's
EVTsetClockFromMaster and EVTstartSyncClient; drvTS's TSgetMasterTime and sync client).

* **Clock from the master** (at start, on the sync client's thread, so ``iocInit`` never waits):
  a time request to ``EVT_MASTER_ADDR`` (default: broadcast), stale datagrams flushed first, up
  to 4 tries of ``time_out_ms`` each. The first valid reply names the master (its address) and
  its clock and sync rates, which the slave adopts; the stamp becomes ``current_time + RTT/2 -
  ticks / clock_hz``. The request carries a random nonce that the reply must echo.
* **Sync client** (thread ``EVTsyncClient``) on ``slave_port``: each accepted sync message
  *jams* the sync stamp. A sync message says ``master_time`` (master's stamp of its last sync
  event) and ``current_time`` (its event time when sending), so the master had counted
  ``d = current - master`` when it sent. The slave reads its own ticks ``t``: if its receiver
  has handled the same sync event, ``t/hz ~ d``; if not yet, ``t/hz ~ d + sync_rate`` (ticks
  run past the period until the receiver handles it). So its stamp is ``master_time - k *
  sync_rate`` with ``k = round((t/hz - d) / sync_rate)``, whatever its stamp was before -- which
  also sets the clock when no time request was answered. ``EVT_OFFSET_US`` is the jam's
  correction (slave stamp minus master's, for the same sync event).
* **Accepting a sync message**: a valid drvTS message (see :mod:`timing.evt.wire`), type sync,
  from the master this slave follows (others are *foreign* -- counted and dropped -- unless that
  master has been silent for 3 sync intervals, when the slave follows the new one), newer than
  the last one (``master_time`` and, with a trailer, the sequence number: replays are dropped).
  A message of an invalid master is not jammed; if it announces ``EVT_ntpLock_lost`` the slave
  takes the same fault, and is valid again at the master's first valid message after that.
* **Sync timeout**: no accepted message for 3 x sync_rate (checked every 50 ms) ->
  ``EVT_sync_timeout`` (detected within 3 x sync_rate + 0.05 s of the last message).
"""
from __future__ import annotations

import logging
import select
import socket
import threading

from . import wire
from .driver import SYNC_TIMEOUT_INTERVALS, EventTime, Fault, _Sync

log = logging.getLogger("timing.evt")
_NS = 1_000_000_000
TIME_REQUEST_TRIES = 4
POLL_S = 0.05
#: Jams larger than this are logged (drvTS: "Time checked with master, adjusted by ...").
JAM_LOG_NS = 1_000_000


class SlaveRole:
    def __init__(self, evt: EventTime):
        self.evt = evt
        self.cfg = evt.cfg
        self.master: tuple[str, int] | None = None
        self.last_msg_mono: float | None = None
        self.last_master_ns: int | None = None
        self.last_seq: int | None = None
        self.last_jam_ns: int | None = None
        self.jams = 0
        self.clock_set = "not yet"
        self.sock: socket.socket | None = None
        self.sock_error = ""
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", self.cfg.slave_port))
            self.sock = s
        except OSError as exc:
            s.close()
            self.sock_error = f"can't bind UDP port {self.cfg.slave_port}: {exc.strerror}"
            log.error("EventTime slave: %s; no sync client", self.sock_error)

    def after_hw_init(self) -> None:
        """The receiver runs: start the sync client (which first asks the master)."""
        self._thread = threading.Thread(target=self._run, name="EVTsyncClient", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        t = self._thread
        if t is not None:
            t.join(3.0)
            if t.is_alive():
                log.warning("EventTime: thread EVTsyncClient did not stop")
        if self.sock is not None:
            self.sock.close()

    def on_validated(self) -> None:
        pass

    def validation_blocker(self) -> str | None:
        """Why an operator validation cannot work now (None: it may)."""
        if not self.master_alive(self.evt.mono()):
            return "no sync message from the master (sync timeout)"
        return None

    def on_sync(self) -> _Sync:
        return self.evt._advance_sync()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        evt = self.evt
        try:
            # Ask once the receiver follows a stream (its ticks mean something).
            deadline = evt.mono() + TIME_REQUEST_TRIES * self.cfg.time_out_ms / 1e3
            while evt.rx.get_ticks() == 0 and evt.mono() < deadline:
                if evt._stop.wait(0.01):
                    return
            self.set_clock_from_master()
        except Exception:                      # noqa: BLE001
            log.exception("EventTime: time request failed")
        sock = self.sock
        while not evt._stop.is_set():
            try:
                if sock is not None:
                    ready, _, _ = select.select([sock], [], [], POLL_S)
                    if ready:
                        data, addr = sock.recvfrom(2048)
                        self.handle_sync(data, addr)
                else:
                    evt._stop.wait(POLL_S)
                self.check_timeout()
            except (OSError, ValueError):
                if evt._stop.is_set():
                    return
                evt._stop.wait(POLL_S)
            except Exception:                  # noqa: BLE001 - no datagram may stop the client
                log.exception("EventTime sync client: unexpected error")

    # ------------------------------------------------------------------ time request
    def set_clock_from_master(self) -> bool:
        evt = self.evt
        if not self.cfg.master_addrs:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(("", 0))
            for attempt in range(TIME_REQUEST_TRIES):
                if evt._stop.is_set():
                    return False
                s.setblocking(False)
                try:
                    while True:
                        s.recvfrom(2048)       # flush stale replies
                except OSError:
                    pass
                nonce = wire.random_nonce()
                data = wire.encode(wire.TsMessage(wire.TYPE_TIME_REQUEST, seq=nonce),
                                   self.cfg.key)
                t0 = evt.mono()
                for addr in self.cfg.master_addrs:
                    try:
                        s.sendto(data, addr)
                    except OSError as exc:
                        log.debug("EventTime: time request to %s failed: %s", addr, exc)
                deadline = t0 + self.cfg.time_out_ms / 1e3
                while not evt._stop.is_set():
                    left = deadline - evt.mono()
                    if left <= 0:
                        break
                    ready, _, _ = select.select([s], [], [], left)
                    if not ready:
                        break
                    try:
                        reply, addr = s.recvfrom(2048)
                    except OSError:
                        continue
                    t1 = evt.mono()
                    if self._take_reply(reply, addr, nonce, t1 - t0, t1):
                        return True
        log.warning("EventTime: no master answered %d time requests (%s); waiting for sync "
                    "messages", TIME_REQUEST_TRIES,
                    " ".join(map(wire.format_address, self.cfg.master_addrs)))
        self.clock_set = "no master answered; from the first sync message"
        return False

    def _take_reply(self, data: bytes, addr, nonce: int, rtt_s: float, t1: float) -> bool:
        evt = self.evt
        msg = evt.decode(data)
        if msg is None:
            return False
        if msg.type != wire.TYPE_TIME_REQUEST or msg.seq != nonce:
            evt.count_bad("unexpected reply")
            return False
        if msg.master_invalid or msg.sync_rate <= 0 or msg.clock_hz <= 0:
            evt.count_bad("malformed")
            return False
        self.master = (addr[0], addr[1])
        self._adopt_rates(msg)
        half_rtt = int(rtt_s * _NS) // 2
        for _ in range(8):
            st = evt.sync_state()
            t = evt.rx.get_ticks()
            now = msg.current_ns + half_rtt + int((evt.mono() - t1) * _NS)
            if evt.set_stamp(st, now - t * _NS // evt.clock_hz):
                break
        self.clock_set = (f"from {wire.format_address(self.master)}, round trip "
                          f"{rtt_s * 1e3:.3f} ms")
        log.info("EventTime: clock set from master %s (round trip %.3f ms)",
                 wire.format_address(self.master), rtt_s * 1e3)
        return True

    def _adopt_rates(self, msg: wire.TsMessage) -> None:
        evt = self.evt
        if msg.clock_hz != evt.clock_hz or msg.sync_rate != evt.sync_rate_s:
            log.warning("EventTime: adopting the master's rates: clock %d Hz, sync every %d s "
                        "(configured %d Hz, %d s)", msg.clock_hz, msg.sync_rate, evt.clock_hz,
                        evt.sync_rate_s)
            evt.clock_hz = msg.clock_hz
            evt.sync_rate_s = msg.sync_rate

    # ------------------------------------------------------------------ sync client
    def master_alive(self, now: float) -> bool:
        return (self.last_msg_mono is not None
                and now - self.last_msg_mono <= SYNC_TIMEOUT_INTERVALS * self.evt.sync_rate_s)

    def handle_sync(self, data: bytes, addr) -> bool:
        """One datagram on the slave port; True if it was accepted."""
        evt = self.evt
        msg = evt.decode(data)
        if msg is None:
            return False
        if msg.type != wire.TYPE_SYNC_MSG:
            evt.count_bad("unexpected type")
            return False
        if msg.sync_rate <= 0 or msg.clock_hz <= 0:
            evt.count_bad("malformed")
            return False
        addr = (addr[0], addr[1])
        now = evt.mono()
        if self.master is not None and addr != self.master:
            if self.master_alive(now) or msg.master_invalid:
                evt.count_bad("foreign master")
                return False
            log.warning("EventTime: following master %s (%s silent)", wire.format_address(addr),
                        wire.format_address(self.master))
            self.master, self.last_master_ns, self.last_seq = addr, None, None
        if self.master is None:
            if msg.master_invalid:
                return False
            self.master = addr
            log.info("EventTime: following master %s", wire.format_address(addr))
        if (self.last_master_ns is not None and msg.master_ns <= self.last_master_ns) or \
                (msg.seq is not None and self.last_seq is not None
                 and not wire.seq_newer(msg.seq, self.last_seq)):
            evt.count_bad("replay")
            return False
        self.last_master_ns = msg.master_ns
        if msg.seq is not None:
            self.last_seq = msg.seq
        self.last_msg_mono = now
        if msg.master_invalid:
            if msg.fault == Fault.NTP_LOCK_LOST:
                evt.invalidate(Fault.NTP_LOCK_LOST, "the master lost its reference lock")
            return True
        self._adopt_rates(msg)
        self.jam(msg)
        evt.sync_count += 1
        if not evt.ever_valid:
            evt.set_valid(f"first sync message from {wire.format_address(addr)}")
        else:
            evt.set_valid("the master is valid again", only_fault=Fault.NTP_LOCK_LOST)
        return True

    def jam(self, msg: wire.TsMessage) -> None:
        evt = self.evt
        rate_ns = evt.sync_rate_s * _NS
        since_ns = msg.current_ns - msg.master_ns
        for _ in range(8):
            st = evt.sync_state()
            t_ns = evt.rx.get_ticks() * _NS // evt.clock_hz
            k = round((t_ns - since_ns) / rate_ns)
            new = msg.master_ns - k * rate_ns
            if evt.set_stamp(st, new):
                self.jams += 1
                if st.stamp_ns is not None:
                    self.last_jam_ns = st.stamp_ns - new
                    if abs(self.last_jam_ns) >= JAM_LOG_NS:
                        log.info("EventTime: time checked with master, adjusted by %f seconds",
                                 -self.last_jam_ns / _NS)
                return

    def check_timeout(self) -> None:
        evt = self.evt
        last = self.last_msg_mono
        if last is None or not evt.valid:
            return
        silent = evt.mono() - last
        if silent > SYNC_TIMEOUT_INTERVALS * evt.sync_rate_s:
            evt.invalidate(Fault.SYNC_TIMEOUT, f"no sync message from "
                           f"{wire.format_address(self.master)} for {silent:.2f} s")

    # ------------------------------------------------------------------ records, report
    def offset_us(self) -> float | None:
        return None if self.last_jam_ns is None else self.last_jam_ns / 1e3

    def clock_hz_now(self) -> float:
        w = self.evt.watch
        if w is not None and w.measured_hz:
            return w.measured_hz
        return float(self.evt.clock_hz)

    def master_text(self) -> str:
        return wire.format_address(self.master)

    def pll_locked(self) -> bool:
        return False

    def report_lines(self, level: int) -> list[str]:
        jam = "none yet" if self.last_jam_ns is None else f"{self.last_jam_ns / 1e3:+.3f} us"
        lines = [f"master {wire.format_address(self.master) or 'none yet'}; clock set "
                 f"{self.clock_set}; {self.jams} jams, last correction {jam}",
                 "time requests to " + " ".join(map(wire.format_address, self.cfg.master_addrs)),
                 (f"sync client on UDP {self.cfg.slave_port}" if self.sock is not None
                  else f"sync client: NONE ({self.sock_error})")]
        if level >= 1 and self.last_msg_mono is not None:
            lines.append(f"last sync message {self.evt.mono() - self.last_msg_mono:.3f} s ago")
        return lines
