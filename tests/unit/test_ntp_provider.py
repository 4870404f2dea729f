"""The NTP provider: validation, the failure count, extrapolation, slewing, the sync thread --
with a scripted server and clock, then against a real chronyd on loopback."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from timing.providers import ntp
from timing.providers.ntp import NtpConfigError, NtpProvider, NtpReply, parse_server
from timing.registry import GeneralTime

from ..chrony import Chrony
from ..conftest import free_port, wait_for

S = 1_000_000_000
T0 = 1_100_000_000 * S          # an NTP time, ns past the EPICS epoch


class FakeClock:
    def __init__(self):
        self.mono = 5 * S

    def __call__(self) -> int:
        return self.mono


class FakeServer:
    """Answers what ``next`` says: an NtpReply built from (server time, stratum, leap), or an
    exception to raise."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.time_ns = T0
        self.stratum, self.leap = 2, 0
        self.error: Exception | None = None

    def __call__(self) -> NtpReply:
        if self.error is not None:
            raise self.error
        return NtpReply(time_ns=self.time_ns, mono_ns=self.clock.mono, stratum=self.stratum,
                        leap=self.leap, offset_s=0.001, delay_s=0.0002)

    def advance(self, ns: int) -> None:
        """Real time passes: the local monotonic clock and the server's time alike."""
        self.clock.mono += ns
        self.time_ns += ns


@pytest.fixture
def setup():
    clock = FakeClock()
    server = FakeServer(clock)
    prov = NtpProvider("ntp.example", 123, query=server, monotonic_ns=clock)
    return prov, server, clock


def ns_of(stamp) -> int:
    return stamp[0] * S + stamp[1]


# ------------------------------------------------------------------ configuration
def test_parse_server():
    assert parse_server("ntp.example") == ("ntp.example", 123)
    assert parse_server(" 127.0.0.1:11123 ") == ("127.0.0.1", 11123)
    assert parse_server("[::1]:1234") == ("::1", 1234)
    assert parse_server("[::1]") == ("::1", 123)
    for bad in ("", "host:", "host:x", "host:70000", ":123", "[::1]x"):
        with pytest.raises(NtpConfigError):
            parse_server(bad)


def test_init_reads_the_environment_and_runs_once(monkeypatch):
    monkeypatch.setattr(ntp, "_instance", None)
    gt = GeneralTime()
    with pytest.raises(NtpConfigError, match="EPICS_TS_NTP_INET"):
        ntp.ntp_time_init(100, gt, environ={})
    with pytest.raises(NtpConfigError, match="RETRY"):
        ntp.ntp_time_init(100, gt, environ={"EPICS_TS_NTP_INET": "h",
                                             "EPICS_TS_NTP_RETRY_INTERVAL_S": "0"})
    port = free_port()                     # nobody answers there
    env = {"EPICS_TS_NTP_INET": f"127.0.0.1:{port}", "EPICS_TS_NTP_SYNC_INTERVAL_S": "30",
           "EPICS_TS_NTP_RETRY_INTERVAL_S": "20", "EPICS_TS_NTP_TIMEOUT_S": "0.05"}
    prov, created = ntp.ntp_time_init(100, gt, environ=env)
    try:
        assert created and prov.running and ntp.instance() is prov
        assert (prov.sync_interval_s, prov.retry_interval_s, prov.timeout_s) == (30, 20, 0.05)
        assert prov.server == f"127.0.0.1:{port}"
        assert [(p.name, p.priority) for p in gt.current_providers()] == [("NTP", 100)]
        assert prov.failures == 1 and not prov.synchronized     # the initial sync failed
        assert gt.get_current() is None
        again, created = ntp.ntp_time_init(50, gt, environ=env)
        assert again is prov and not created and len(gt.current_providers()) == 1
    finally:
        prov.shutdown()
    assert not prov.running


# ------------------------------------------------------------------ validation
def test_accepted_sync_answers_and_extrapolates(setup):
    prov, server, clock = setup
    assert prov.get_current() is None                 # not synchronised before a sync
    assert prov.sync_once()
    assert prov.synchronized and prov.syncs == 1
    assert ns_of(prov.get_current()) == T0
    clock.mono += 1_234_567_891
    assert ns_of(prov.get_current()) == T0 + 1_234_567_891      # nanoseconds survive


@pytest.mark.parametrize("field,value,reason", [
    ("leap", 3, "leap indicator 3"),
    ("stratum", 0, "stratum 0"),
    ("stratum", 16, "stratum 16"),
    ("time_ns", -5, "Bad time"),
])
def test_unusable_replies_are_failed_syncs(setup, field, value, reason):
    prov, server, clock = setup
    setattr(server, field, value)
    assert not prov.sync_once()
    assert reason in prov.last_error
    assert not prov.synchronized and prov.get_current() is None
    assert prov.last_reply is not None                # still shown (stratum on NTP_STRATUM)


def test_stratum_1_and_15_are_fine(setup):
    prov, server, clock = setup
    for s in (1, 15):
        server.stratum = s
        server.advance(S)
        assert prov.sync_once(), prov.last_error


def test_time_not_increasing_is_a_failed_sync(setup):
    prov, server, clock = setup
    assert prov.sync_once()
    clock.mono += S                                   # server time stands still
    assert not prov.sync_once()
    assert "not increasing" in prov.last_error
    assert prov.synchronized                          # one failure is not a loss of sync


def test_unsynchronised_after_more_than_four_failures_in_a_row(setup, caplog):
    prov, server, clock = setup
    assert prov.sync_once()
    server.error = OSError("No response received from 127.0.0.1.")
    with caplog.at_level(logging.INFO, logger="timing.providers.ntp"):
        for n in range(1, 5):
            server.advance(S)
            assert not prov.sync_once()
            assert prov.synchronized and prov.fails_in_row == n
            assert prov.get_current() is not None     # still extrapolating
        server.advance(S)
        assert not prov.sync_once()                   # the 5th: more than 4
        assert not prov.synchronized and prov.get_current() is None
        for _ in range(3):
            server.advance(S)
            prov.sync_once()
        server.error = None
        server.advance(S)
        assert prov.sync_once() and prov.synchronized and prov.fails_in_row == 0
    msgs = [r.getMessage() for r in caplog.records]
    # transitions only: one loss, one recovery
    assert len(msgs) == 2, msgs
    assert "NTP requests failed since" in msgs[0] and "No response" in msgs[0]
    assert "Sync recovered at" in msgs[1]


def test_mixed_failures_count_together_and_a_success_resets(setup):
    prov, server, clock = setup
    assert prov.sync_once()
    for field, value in (("leap", 3), ("stratum", 0), ("leap", 3), ("stratum", 0)):
        server.advance(S)
        setattr(server, field, value)
        assert not prov.sync_once()
        server.stratum, server.leap = 2, 0
    assert prov.fails_in_row == 4 and prov.synchronized
    server.advance(S)
    assert prov.sync_once() and prov.fails_in_row == 0


# ------------------------------------------------------------ stepping and slewing
def test_ahead_server_steps_forward(setup):
    prov, server, clock = setup
    prov.sync_once()
    server.advance(10 * S)
    server.time_ns += 2 * S                           # the server is 2 s ahead of our clock
    assert prov.sync_once()
    assert ns_of(prov.get_current()) == server.time_ns
    assert prov.slew_left_ns() == 0


def test_behind_server_is_slewed_never_stepped_back(setup):
    prov, server, clock = setup
    prov.sync_once()
    server.advance(10 * S)
    before = ns_of(prov.get_current())
    server.time_ns -= 2 * S                           # the server is now 2 s behind us
    assert prov.sync_once()
    assert ns_of(prov.get_current()) == before        # no step back
    assert prov.slew_left_ns() == 2 * S
    last = before
    for _ in range(40):                               # 2 s at 1/10 takes 20 s
        clock.mono += S
        now = ns_of(prov.get_current())
        assert now > last and now - last >= 0.9 * S   # keeps running, at >= 90 %
        last = now
    assert prov.slew_left_ns() == 0
    assert ns_of(prov.get_current()) == server.time_ns + 40 * S   # back on the server's time


def test_clock_continues_across_a_loss_of_sync(setup):
    prov, server, clock = setup
    prov.sync_once()
    server.error = OSError("timeout")
    for _ in range(5):
        server.advance(S)
        prov.sync_once()
    assert not prov.synchronized
    server.advance(S)
    extrapolated = prov._extrapolate(prov._clock, clock.mono)
    server.error = None
    server.time_ns -= S // 2                          # recovers half a second behind
    assert prov.sync_once()
    assert ns_of(prov.get_current()) == extrapolated  # continues where it was


# ---------------------------------------------------------------- intervals, thread
def test_intervals(setup):
    prov, server, clock = setup
    prov.sync_interval_s, prov.retry_interval_s = 60.0, 5.0
    assert prov.next_interval_s() == 5.0              # not synchronised yet
    prov.sync_once()
    assert prov.next_interval_s() == 60.0
    server.error = OSError("x")
    prov.sync_once()
    assert prov.next_interval_s() == 5.0              # retry sooner after a failure


def test_thread_syncs_calls_listeners_and_stops(setup):
    prov, server, clock = setup
    prov.sync_interval_s = prov.retry_interval_s = 0.01
    calls = []
    prov.listeners.append(lambda: calls.append(threading.current_thread().name))

    def query():
        server.advance(S)
        return FakeServer.__call__(server)
    prov._query = query
    prov.start()
    try:
        wait_for(lambda: prov.syncs >= 3, 5, what="3 syncs")
        assert set(calls) == {"NTPTimeSync"}
    finally:
        prov.shutdown()
    assert not prov.running and not prov.synchronized and prov.get_current() is None
    assert prov.report(0) == "NTP synchronization thread not running.\n"


def test_report(setup):
    prov, server, clock = setup
    text = prov.report(1)
    assert text.startswith("NTP driver is *not* synchronized with server\n")
    assert "Last synchronized at never" in text
    prov.sync_once()
    server.error = OSError("timeout")
    clock.mono += 90 * S
    prov.sync_once()
    lines = prov.report(1).splitlines()
    assert lines[0] == "NTP driver is synchronized with server"
    assert lines[1] == "Last successful sync was 1.5 minutes ago"
    assert lines[2] == "Syncronization interval = 60.0 seconds"
    assert lines[3].startswith("Last synchronized at ")
    assert lines[4] == "Current OS tick rate = 1000000000 Hz"
    assert lines[5].startswith("Measured tick rate = ")
    assert lines[6] == "NTP Server = ntp.example:123"
    assert "Last error: timeout" in lines
    assert prov.report(0) == ("NTP driver is synchronized with server\n"
                              "Last successful sync was 1.5 minutes ago\n")


# ------------------------------------------------------------------- real chronyd
def test_against_chronyd(tmp_path):
    port = free_port()
    server = Chrony(tmp_path / "chrony", port, synced=True)
    prov = NtpProvider("127.0.0.1", port, timeout_s=0.3)
    with server:
        assert prov.sync_once(), prov.last_error
        r = prov.last_reply
        assert r.stratum == 10 and r.leap == 0 and abs(r.offset_s) < 0.1 and r.delay_s < 0.1
        t = prov.get_current()
        assert abs(ns_of(t) / S + 631152000 - time.time()) < 0.5
    assert not prov.sync_once()                        # stopped: timeout
    assert "No response" in prov.last_error
    server.synced = False
    with server:                                      # no `local`: lock lost
        assert not prov.sync_once()
        assert prov.last_reply.leap == 3 and prov.last_reply.stratum == 0
        assert "leap indicator 3" in prov.last_error
