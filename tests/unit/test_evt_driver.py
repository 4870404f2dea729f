"""The EventTime driver: validity and fault rules, the slave's acceptance of sync messages
(foreign masters, replays, authentication, the master's lock loss), the jam, the validating ao's
rule and the clock watch -- on a scripted receiver, without threads or waiting. Then a master and
a slave in this process on the soft event system over real UDP, flooded with garbage."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from timing.evt import wire
from timing.evt.driver import EventTime, EvtConfig, Fault, Role
from timing.evt.slave import SlaveRole
from timing.evt.soft import SoftEventSystem
from timing.evt.watch import ClockWatch
from timing.providers import os_clock
from timing.registry import GeneralTime

from ..conftest import free_port, wait_for

NS = 1_000_000_000
KEY = b"k3y"
MASTER = ("127.0.0.1", 18323)


class FakeRx:
    """A receiver whose tick counter the test sets."""
    card = 0

    def __init__(self):
        self.ticks = 0
        self.handlers, self.error_handlers = [], []

    def have_rx(self): return 256
    def get_ticks(self): return self.ticks
    def register_event_handler(self, fn): self.handlers.append(fn)
    def register_error_handler(self, fn): self.error_handlers.append(fn)
    def direct_time(self): return False
    def init(self): pass
    def get_time(self): return None
    def user_get(self, event): return None
    def sync_event(self): return 0x7D

    def sync(self):
        self.ticks = 0
        for fn in self.handlers:
            fn(0x7D)


def os_registry() -> GeneralTime:
    gt = GeneralTime()
    gt.register_current_provider(os_clock.NAME, os_clock.PRIORITY, os_clock.get_current)
    return gt


def now_ns() -> int:
    s, n = os_clock.get_current()
    return s * NS + n


def slave(key: bytes | None = None):
    cfg = EvtConfig.from_args(0, environ={"EVT_SYNC_ADDR_LIST": "127.0.0.1",
                                          "EVT_MASTER_ADDR": "127.0.0.1"})
    cfg.key = key
    rx = FakeRx()
    evt = EventTime(cfg, rx, None, os_registry())
    evt.role_impl = SlaveRole(evt)
    rx.register_event_handler(evt._on_event)
    rx.register_error_handler(evt._on_error)
    return evt, rx, evt.role_impl


def sync_msg(master_ns: int, since_ns: int = 200_000, valid: bool = True, fault: int = 0,
             seq: int | None = 100, key: bytes | None = None) -> bytes:
    m = wire.TsMessage(wire.TYPE_SYNC_MSG, wire.stamp_of_ns(master_ns),
                       wire.stamp_of_ns(master_ns + since_ns), 1, 1_000_000,
                       wire.make_mask(valid, fault), seq=seq)
    return wire.encode(m, key)


def test_config_defaults_and_environment():
    cfg = EvtConfig.from_args(1, environ={})
    assert (cfg.sync_rate_s, cfg.clock_hz, cfg.master_port, cfg.slave_port,
            cfg.time_out_ms) == (1, 1_000_000, 18323, 18322, 250)
    assert all(port == 18322 for _, port in cfg.sync_addrs) and cfg.key is None
    cfg = EvtConfig.from_args(0, 2, 1000, 5000, 5001, 50, environ={
        "EVT_SYNC_ADDR_LIST": "127.255.255.255", "EVT_MASTER_ADDR": "127.0.0.1:7",
        "EVT_AUTH_KEY": "s", "EVT_PLL_INTERVAL_S": "0.5"})
    assert cfg.sync_addrs == [("127.255.255.255", 5001)] and cfg.master_addrs == [("127.0.0.1", 7)]
    assert cfg.key == b"s" and cfg.pll.interval_s == 0.5 and cfg.sync_rate_s == 2
    for bad in ((2,), (1, -1), (0, 0, 0, 70000)):
        with pytest.raises(ValueError):
            EvtConfig.from_args(*bad, environ={})


def test_slave_jams_to_the_master_whichever_side_saw_the_sync_first():
    evt, rx, role = slave()
    m = now_ns()
    rx.ticks = 250                                   # 250 us since our sync: same sync event
    assert role.handle_sync(sync_msg(m, since_ns=200_000), MASTER)
    assert evt.valid and evt.role == Role.SYNC_SLAVE and evt.sync_state().stamp_ns == m
    assert role.master == MASTER and evt.sync_count == 1
    # Next message arrives before our receiver handled the sync event: ticks run past 1 s.
    rx.ticks = 1_000_300
    assert role.handle_sync(sync_msg(m + NS, seq=101), MASTER)
    assert evt.sync_state().stamp_ns == m                    # still the previous period's stamp
    rx.sync()                                                 # now our sync event comes
    assert evt.sync_state().stamp_ns == m + NS
    rx.ticks = 100
    evt.set_stamp(evt.sync_state(), m + NS + 7_000)           # drift by 7 us
    assert role.handle_sync(sync_msg(m + 2 * NS - NS, since_ns=50_000, seq=102), MASTER) is False
    rx.sync()
    assert role.handle_sync(sync_msg(m + 2 * NS, since_ns=50_000, seq=103), MASTER)
    assert role.last_jam_ns == 7_000 and evt.offset_us() == 7.0


def test_slave_drops_foreign_masters_replays_and_garbage():
    evt, rx, role = slave()
    m = now_ns()
    assert role.handle_sync(sync_msg(m, seq=10), MASTER)
    forged = ("127.0.0.1", 40000)
    assert not role.handle_sync(sync_msg(m + 10 * NS, seq=11), forged)      # foreign master
    assert not role.handle_sync(sync_msg(m, seq=10), MASTER)                # replay (time)
    assert not role.handle_sync(sync_msg(m + NS, seq=9), MASTER)            # replay (seq)
    assert not role.handle_sync(b"\0" * 52, MASTER)
    assert not role.handle_sync(os.urandom(30), MASTER)
    req = wire.encode(wire.TsMessage(wire.TYPE_TIME_REQUEST, seq=1))
    assert not role.handle_sync(req, MASTER)                                # wrong type
    assert evt.bad_msgs == 6 and evt.sync_state().stamp_ns == m
    assert evt.bad_reasons["foreign master"] == 1 and evt.bad_reasons["replay"] == 2
    assert role.master == MASTER and evt.valid
    # A silent master is given up: after 3 intervals another one may take over.
    role.last_msg_mono -= 3.5
    role.check_timeout()
    assert evt.fault == Fault.SYNC_TIMEOUT and not evt.valid
    ok, msg = evt.validate(10.0)                              # times agree, but no master
    assert not ok and "sync timeout" in msg
    assert role.handle_sync(sync_msg(m + 5 * NS, seq=1), forged) and role.master == forged
    assert not evt.valid                                      # latched until validated


def test_with_a_key_forged_messages_never_take_effect():
    evt, rx, role = slave(KEY)
    m = now_ns()
    assert role.handle_sync(sync_msg(m, key=KEY), MASTER)
    for data in (sync_msg(m + NS, seq=200), sync_msg(m + NS, seq=None),
                 sync_msg(m + 100 * NS, seq=201, key=b"wrong"),
                 sync_msg(m + NS, seq=202, key=KEY)[:-1] + b"\0"):
        assert not role.handle_sync(data, MASTER)             # even from the master's address
    assert evt.sync_state().stamp_ns == m and evt.bad_msgs == 4
    assert set(evt.bad_reasons) == {"unauthenticated", "authentication failed"}


def test_master_lock_loss_is_mirrored_and_clears_itself():
    evt, rx, role = slave()
    m = now_ns()
    role.handle_sync(sync_msg(m, seq=1), MASTER)
    assert role.handle_sync(sync_msg(m + NS, valid=False, fault=3, seq=2), MASTER)
    assert evt.fault == Fault.NTP_LOCK_LOST and not evt.valid
    rx.sync()
    assert role.handle_sync(sync_msg(m + 2 * NS, seq=3), MASTER)
    assert evt.valid and evt.fault == Fault.OK


def test_first_fault_latches_until_an_operator_validates_within_tolerance():
    evt, rx, role = slave()
    evt.invalidate(Fault.STREAM_LOST, "before the first sync")      # only shows the condition
    assert evt.fault == Fault.STREAM_LOST
    rx.ticks = 100
    role.handle_sync(sync_msg(now_ns() - 100_000, since_ns=0, seq=1), MASTER)
    assert evt.valid and evt.fault == Fault.OK                       # first validation clears it
    evt._on_error(2)
    evt.invalidate(Fault.TICK_FAIL, "later fault")
    assert evt.fault == Fault.STREAM_LOST and not evt.valid          # the first one latched
    assert evt.get_current() is None and evt.get_event(-1) is None
    assert not evt.set_valid("x", only_fault=Fault.NTP_LOCK_LOST)    # not a self-clearing fault
    # Event time 5 ms off generalTime: 1 ms tolerance refuses, 10 ms accepts.
    st = evt.sync_state()
    evt.set_stamp(st, now_ns() - 100_000 + 5_000_000)
    ok, msg = evt.validate(0.001)
    assert not ok and "differs from generalTime by 0.00" in msg and not evt.valid
    ok, _ = evt.validate(0.010)
    assert ok and evt.valid and evt.fault == Fault.OK
    assert evt.validate(0.0)[0]                                      # valid: nothing to do
    assert abs(evt.get_current()[0] * NS + evt.get_current()[1] - now_ns()) < 20_000_000


def test_clock_watch_finds_a_counter_standing_still():
    evt, rx, role = slave()
    role.handle_sync(sync_msg(now_ns(), seq=1), MASTER)
    watch = ClockWatch(evt)
    stop = threading.Event()

    def count():
        while not stop.is_set():
            rx.ticks += 1
            time.sleep(0.0005)
    th = threading.Thread(target=count)
    th.start()
    try:
        watch.check()
        assert evt.valid and watch.failures == 0
    finally:
        stop.set()
        th.join()
    watch.check()                                             # nobody counts any more
    assert evt.fault == Fault.TICK_FAIL and not evt.valid and watch.failures == 1


# ======================================================================= real UDP
@pytest.fixture
def pair():
    """A master (+50 ppm) and a slave in this process, soft event system on a free link."""
    port = free_port()
    p_master, p_slave = free_port(), free_port()
    env = {"EVT_SYNC_ADDR_LIST": f"127.255.255.255:{p_slave}",
           "EVT_MASTER_ADDR": f"127.0.0.1:{p_master}", "EVT_PLL_INTERVAL_S": "0.5"}
    made = []

    def make(master: int):
        hw = SoftEventSystem(f"239.255.18.1:{port}", 50 if master else 0)
        cfg = EvtConfig.from_args(master, 1, 1_000_000, p_master, p_slave, 100, environ=env)
        evt = EventTime(cfg, hw.rx, hw.tx if master else None, os_registry())
        made.append((evt, hw))
        return evt
    m, s = make(1), make(0)
    m.start()
    s.start()
    yield m, s, p_master, p_slave
    for evt, hw in made:
        evt.stop()
        hw.stop()
    for evt, _ in made:
        assert not [t for t in (evt.watch._thread,) if t.is_alive()]


def test_master_and_slave_agree_and_survive_a_flood(pair):
    m, s, p_master, p_slave = pair
    wait_for(lambda: m.valid and s.valid, 3, what="master and slave valid")
    assert [p.name for p in m.registry.current_providers()][0] == "EventTime"
    assert m.registry.get_current() is not None and m.registry.current_provider_name() == "EventTime"
    assert s.role_impl.master == ("127.0.0.1", p_master)
    # Same instant: slave read between two master reads.
    diffs = []
    for _ in range(200):
        a, b, c = m.now_ns(), s.now_ns(), m.now_ns()
        diffs.append(abs(b - (a + c) // 2) - (c - a) // 2)
    assert sorted(diffs)[len(diffs) // 2] < 50_000, sorted(diffs)[-5:]
    # Flood both ports with garbage and with forged masters; nothing stops, nothing changes.
    good = sync_msg(now_ns() + 100 * NS, seq=None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fl:
        fl.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for i in range(300):
            for port in (p_master, p_slave):
                fl.sendto(os.urandom(i % 100), ("127.0.0.1", port))
                fl.sendto(good, ("127.255.255.255", port))
            if i % 10 == 9:
                time.sleep(0.002)               # a flood, not a socket buffer overrun
    wait_for(lambda: m.bad_msgs >= 200 and s.bad_msgs >= 200, 3, what="bad messages counted")
    n = s.sync_count
    wait_for(lambda: s.sync_count >= n + 1, 3, what="sync messages after the flood")
    assert m.valid and s.valid and s.role_impl.master == ("127.0.0.1", p_master)
    a, b = m.now_ns(), s.now_ns()
    assert abs(b - a) < 5_000_000
    # Provider answers never go backwards across sync events.
    last, t_end = None, time.monotonic() + 1.2
    while time.monotonic() < t_end:
        ts = s.get_current()
        assert ts is not None and (last is None or ts >= last), (last, ts)
        last = ts
    assert "sync_slave, valid" in s.report(1) and "PLL:" in m.report(1)


def test_host_offset_uses_the_tightest_host_clock_pair_and_is_none_while_invalid():
    from timing.evt.devsup import host_offset_ns
    evt, rx, role = slave()
    epoch_ns = 631152000 * NS
    evt.set_stamp(evt.sync_state(), 1_000 * NS)
    rx.ticks = 250_000                                  # event time 1000.25 s past the epoch
    # Host reads: the first try spans 40 us (a thread switch), the second 2 us.
    host = iter([epoch_ns + 1_000_240_000_000, epoch_ns + 1_000_280_000_000,
                 epoch_ns + 1_000_249_990_000, epoch_ns + 1_000_249_992_000,
                 epoch_ns + 1_000_260_000_000, epoch_ns + 1_000_290_000_000])
    assert host_offset_ns(evt, host_ns=lambda: next(host)) is None     # never valid yet
    evt.valid = True
    host = iter([epoch_ns + 1_000_249_900_000, epoch_ns + 1_000_249_940_000,
                 epoch_ns + 1_000_249_990_000, epoch_ns + 1_000_249_992_000,
                 epoch_ns + 1_000_250_000_000, epoch_ns + 1_000_250_030_000])
    off, ev = host_offset_ns(evt, host_ns=lambda: next(host))
    assert ev == 1_000_250_000_000 and off == 9_000       # against the 2 us pair's midpoint
    evt.set_stamp(evt.sync_state(), now_ns() - 250_000_000)       # event time = host clock
    off, _ = host_offset_ns(evt)                          # the real host clock
    assert abs(off) < 10_000_000, off
