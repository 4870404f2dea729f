"""The soft event system on a real multicast link (loopback, a free port per test): the EVG's
timeline, the EVRs' counters and events, fault injection, and garbage on the link.

To keep tests short the generator is programmed for 50 ticks per sync and clocked at 1000 Hz:
a sync event every 50 ms.
"""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from timing.evt.hw import ERR_HEARTBEAT, SYNC_EVENT, ReceiverHW, TransmitterHW
from timing.evt.soft import Frame, LinkError, SoftEvg, SoftEvr, parse_link

from ..conftest import free_port, wait_for

PERIOD_TICKS, HZ = 50, 1000          # 50 ms sync period


class Recorder:
    def __init__(self, evr: SoftEvr):
        self.evr = evr
        self.events: list[tuple[int, int, float]] = []   # (code, ticks in the handler, mono)
        self.errors: list[tuple[int, float]] = []
        evr.register_event_handler(self.on_event)
        evr.register_error_handler(lambda code: self.errors.append((code, time.monotonic())))

    def on_event(self, code: int) -> None:
        self.events.append((code, self.evr.get_ticks(), time.monotonic()))

    def syncs(self) -> int:
        return sum(1 for c, _, _ in self.events if c == SYNC_EVENT)


@pytest.fixture
def link():
    return ("239.255.18.1", free_port())


@pytest.fixture
def system(link):
    made = []

    def make(ppm: float = 0.0, evrs: int = 1, start: bool = True, loss_s: float = 0.3):
        evg = SoftEvg(link, ppm)
        evg.program_sync(1, PERIOD_TICKS)
        evg.set_clock_hz(HZ)
        rxs = [SoftEvr(link, local_evg=evg if i == 0 else None, loss_s=loss_s)
               for i in range(evrs)]
        recs = [Recorder(r) for r in rxs]
        for r in rxs:
            r.init()
        made.extend(rxs + [evg])
        if start:
            evg.force_sync()
        return evg, rxs, recs
    yield make
    for obj in made:
        obj.stop()


def test_protocols_and_link_parsing(link):
    evg, evr = SoftEvg(link), SoftEvr(link)
    assert isinstance(evr, ReceiverHW) and isinstance(evg, TransmitterHW)
    assert evr.sync_event() == 0x7D and not evr.direct_time() and evr.have_rx() > 0
    assert parse_link("239.255.18.1:18324") == ("239.255.18.1", 18324)
    for bad in ("127.0.0.1:5", "239.255.18.1", "239.1.1.1:0", "x:1"):
        with pytest.raises(LinkError):
            parse_link(bad)


def test_ticks_count_at_the_link_rate_and_reset_at_each_sync(system):
    evg, (rx, rx2), (rec, rec2) = system(evrs=2)
    wait_for(lambda: rec.syncs() >= 6 and rec2.syncs() >= 6, 3, what="6 sync events")
    # In the handler the counter has just been reset: only the receive latency has counted.
    assert all(t < 15 for c, t, _ in rec.events if c == SYNC_EVENT), rec.events
    # Between sync events the counter only rises, and reads match the wall clock.
    last, t0 = rx.get_ticks(), time.monotonic()
    for _ in range(2000):
        t = rx.get_ticks()
        assert t >= last or t < 15, (last, t)
        last = t
    gaps = [b[2] - a[2] for a, b in zip(rec.events, rec.events[1:])]
    assert 0.03 < sorted(gaps)[len(gaps) // 2] < 0.07, gaps
    assert time.monotonic() - t0 < 1


def test_counter_reset_is_atomic_with_the_handlers(system):
    """A reader never sees the reset count before the sync handlers ran (what makes event time
    continuous): count syncs with a handler; a read between two equal counts (the driver's
    read pattern) belongs to that sync period and never goes backwards within it."""
    evg, (rx,), (rec,) = system()
    seen = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            n = rec.syncs()
            t = rx.get_ticks()
            if rec.syncs() == n:
                seen.append((n, t))
    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.4)
    stop.set()
    th.join()
    prev = None
    for n, t in seen:
        if prev is not None and n == prev[0]:
            assert t >= prev[1], (prev, (n, t))       # same sync period: never backwards
        prev = (n, t)


def test_user_events_latch_the_same_count_in_every_receiver(system):
    evg, (rx, rx2), (rec, rec2) = system(evrs=2)
    wait_for(lambda: rec.syncs() >= 1 and rec2.syncs() >= 1, 2, what="first sync")
    for code in (5, 6, 5):
        evg.send_event(code)
        time.sleep(0.01)
    wait_for(lambda: rx.user_get(6) is not None and rx2.user_get(6) is not None, 2,
             what="event 6")
    assert rx.user_get(5) == rx2.user_get(5) and rx.user_get(6) == rx2.user_get(6)
    assert [c for c, _, _ in rec.events if c != SYNC_EVENT] == [5, 6, 5]
    assert rx.user_get(7) is None
    with pytest.raises(ValueError):
        evg.send_event(SYNC_EVENT)


def test_stream_stop_holds_the_counter_and_reports_lost_heartbeat(system):
    evg, (rx,), (rec,) = system(loss_s=0.3)
    wait_for(lambda: rec.syncs() >= 2, 2, what="syncs")
    t_stop = time.monotonic()
    evg.set_streaming(False)
    wait_for(lambda: rec.errors, 2, what="stream lost")
    code, t_err = rec.errors[0]
    assert code == ERR_HEARTBEAT and 0.25 < t_err - t_stop < 0.6
    held = rx.get_ticks()
    time.sleep(0.1)
    assert rx.get_ticks() == held and not rx.stream_ok
    n = rec.syncs()
    evg.set_streaming(True)                 # the oscillator kept counting: missed syncs come
    wait_for(lambda: rx.stream_ok and rec.syncs() >= n + 5, 2, what="missed syncs delivered")
    assert len(rec.errors) == 1


def test_frozen_ticks_stay_put_and_sit_at_zero_after_a_sync(system):
    evg, (rx,), (rec,) = system()
    wait_for(lambda: rec.syncs() >= 1, 2, what="sync")
    rx.freeze(True)
    n = rec.syncs()
    wait_for(lambda: rec.syncs() >= n + 2, 2, what="syncs while frozen")
    assert rx.get_ticks() == 0
    time.sleep(0.02)
    assert rx.get_ticks() == 0
    rx.freeze(False)
    wait_for(lambda: rx.get_ticks() > 0, 1, what="ticks again")


def test_oscillator_error_and_trim_change_the_rate(system):
    evg, (rx,), (rec,) = system(ppm=0)
    wait_for(lambda: rx.rate_tps > 0, 1, what="rate")
    assert rx.rate_tps == pytest.approx(1000.0)
    evg.set_ppm(500)
    wait_for(lambda: rx.rate_tps == pytest.approx(1000.5), 1, what="ppm in the rate")
    evg.set_clock_hz(999.5)
    wait_for(lambda: rx.rate_tps == pytest.approx(999.5 * 1.0005), 1, what="trim in the rate")
    assert evg.get_clock_hz() == 999.5


def test_receiver_follows_its_local_generator_and_counts_foreign_frames(system, link):
    other = SoftEvg(link, 0)
    other.program_sync(1, PERIOD_TICKS)
    other.set_clock_hz(HZ)
    try:
        evg, (rx, rx2), (rec, rec2) = system(evrs=2, start=False)
        other.force_sync()                  # rx2 follows it; rx's own EVG is programmed
        wait_for(lambda: rec2.syncs() >= 2 and rx.foreign_frames > 3, 2, what="other's syncs")
        assert rec.syncs() == 0 and rx._evg_id is None
        evg.force_sync()                    # rx's own generator starts
        wait_for(lambda: rec.syncs() >= 2 and rx2.foreign_frames > 3, 2,
                 what="own syncs, foreign frames counted")
        assert rx._evg_id == evg.evg_id and rx2._evg_id == other.evg_id
    finally:
        other.stop()


def test_garbage_on_the_link_is_counted_and_never_stops_the_receiver(system, link):
    evg, (rx,), (rec,) = system()
    wait_for(lambda: rec.syncs() >= 1, 2, what="sync")
    good = Frame(0, 0, 1, 1, 1, 0, 0.0, 1000.0).pack()
    junk = [b"", b"EVL1", os.urandom(64), os.urandom(len(good)), good[:-1],
            b"EVL1" + bytes([9]) + good[5:], good[:40] + b"\xff" * 8 + good[48:]]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    for _ in range(50):
        for j in junk:
            s.sendto(j, link)
    s.close()
    wait_for(lambda: rx.bad_frames >= 200, 2, what="bad frames counted")
    n = rec.syncs()
    wait_for(lambda: rec.syncs() >= n + 3, 2, what="syncs after the garbage")
    assert rx.stream_ok and rx._thread.is_alive()
