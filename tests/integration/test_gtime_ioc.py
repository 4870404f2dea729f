"""generalTime in a running IOC, seen as users see it: a st.cmd, the shell on stdin, the real
caget/caput/camonitor, and a real NTP server (chronyd on loopback, tests/chrony.py).

The backwards-going provider is the test facility ``testTimeProviderAdd``/``testTimeProviderSet``
(timing/providers/fake_clock.py): the OS clock plus an offset we change while the IOC runs.
"""
from __future__ import annotations

import datetime
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from ..chrony import Chrony
from ..conftest import ROOT, caget, caget_value, caput, epics_bin, free_port, wait_for

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
TS_RE = re.compile(TS)
EPICS_EPOCH_POSIX = 631152000

# NTP timing for the tests (the defaults are 60 s / 5 s / 4 s).
NTP_SYNC_S, NTP_RETRY_S, NTP_TIMEOUT_S = 0.3, 0.1, 0.2
NTP_FALLBACK_BOUND_S = NTP_SYNC_S + 5 * (NTP_TIMEOUT_S + NTP_RETRY_S)   # ntp.py's docstring


def posix(stamp_text: str) -> float:
    """caget/camonitor time stamp (local time, microseconds) -> POSIX seconds."""
    return datetime.datetime.strptime(stamp_text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def stamp_of(pv: str, port: int, *args: str) -> tuple[float, str]:
    """(time stamp as POSIX seconds, the rest of the line) from ``caget -a``."""
    line = caget("-a", *args, pv, port=port)
    m = TS_RE.search(line)
    assert m, f"no time stamp in {line!r}"
    return posix(m.group()), line[m.end():].strip()


def write_stcmd(tmp_path: Path, ioc: str, before_init: str = "") -> Path:
    st = tmp_path / "st.cmd"
    st.write_text(f'epicsEnvSet("IOC", "{ioc}")\n'
                  f"{before_init}"
                  'dbLoadRecords("db/generalTime.db", "IOC=$(IOC)")\n'
                  'dbLoadRecords("tests/data/gtime_test.db", "IOC=$(IOC)")\n'
                  "iocInit\n")
    return st


def shell(ioc, command: str, until: str, timeout_s: float = 10.0) -> str:
    """Type ``command`` into the IOC's shell; the output that follows, once ``until`` shows."""
    mark = len(ioc.output())
    ioc.proc.stdin.write(command + "\n")
    ioc.proc.stdin.flush()
    wait_for(lambda: until in ioc.output()[mark:], timeout_s, what=f"{command!r} output")
    time.sleep(0.05)                      # the rest of a multi-line report, already printed
    return ioc.output()[mark:]


class Camonitor:
    """The real camonitor on one PV, its output in a file."""

    def __init__(self, pv: str, port: int, path: Path):
        self.path = path
        env = dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}")
        with open(path, "w") as out:
            self.proc = subprocess.Popen([str(epics_bin() / "camonitor"), pv], stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def stamps(self) -> list[str]:
        return [m.group() for m in map(TS_RE.search, self.path.read_text().splitlines()) if m]

    def wait_count(self, n: int, timeout_s: float = 10.0) -> list[str]:
        return wait_for(lambda: len(self.stamps()) >= n and self.stamps(), timeout_s,
                        what=f"{n} monitor updates")

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        return self.stamps()


@pytest.fixture
def camonitor(tmp_path):
    mons: list[Camonitor] = []

    def start(pv: str, port: int) -> Camonitor:
        m = Camonitor(pv, port, tmp_path / f"camonitor{len(mons)}.txt")
        mons.append(m)
        return m
    yield start
    for m in mons:
        m.stop()


@pytest.fixture
def chrony(tmp_path):
    servers: list[Chrony] = []

    def start(synced: bool = True) -> Chrony:
        s = Chrony(tmp_path / f"chrony{len(servers)}", free_port(), synced=synced)
        servers.append(s)
        return s.start()
    yield start
    for s in servers:
        s.stop()


def ntp_env(server: Chrony) -> dict:
    return {"EPICS_TS_NTP_INET": server.address,
            "EPICS_TS_NTP_SYNC_INTERVAL_S": str(NTP_SYNC_S),
            "EPICS_TS_NTP_RETRY_INTERVAL_S": str(NTP_RETRY_S),
            "EPICS_TS_NTP_TIMEOUT_S": str(NTP_TIMEOUT_S)}


def value_is(pv: str, port: int, want: str):
    return lambda: caget_value(pv, port) == want


def assert_never_backwards(stamps: list[str]) -> None:
    bad = [(a, b) for a, b in zip(stamps, stamps[1:]) if b < a]
    assert not bad, f"time went backwards: {bad[:3]}"


# ======================================================================== no NTP
def test_report_sources_backwards_provider_and_reset(start_ioc, camonitor, tmp_path):
    ioc = start_ioc(str(write_stcmd(tmp_path, "GT1:")), ready_pv="GT1:GTIM_HI_SRC",
                    stdin=subprocess.PIPE)
    port = ioc.port
    # The OS clock alone is a working provider: no false "No working providers" MAJOR (7.0).
    wait_for(lambda: caget("-a", "GT1:GTIM_CUR_SRC", port=port).rstrip().endswith(" OS Clock"),
             5, what="GTIM_CUR_SRC = OS Clock without alarm")
    assert caget_value("GT1:GTIM_HI_SRC", port) == "OS Clock"
    out = shell(ioc, "generalTimeReport(1)", "Event Time Providers:")
    assert re.search(r"Backwards time errors prevented 0 times\.\n\n"
                     r"Current Time Providers:\n"
                     r'    "OS Clock", priority = 999\n'
                     rf"\tCurrent Time is {TS}\.\n\n"
                     r"Event Time Providers:\n"
                     r"\tNo Providers registered\.\n", out), out

    # A higher-priority provider (current and event time) wins and is listed first.
    shell(ioc, "testTimeProviderAdd Test 50 1", "")
    wait_for(value_is("GT1:GTIM_CUR_SRC", port, "Test"), 5, what="GTIM_CUR_SRC = Test")
    assert caget_value("GT1:GTIM_HI_SRC", port) == "Test"
    out = shell(ioc, "generalTimeReport 1", "Event Time Providers:")
    assert re.search(r"Current Time Providers:\n"
                     r'    "Test", priority = 50\n'
                     rf"\tCurrent Time is {TS}\.\n"
                     r'    "OS Clock", priority = 999\n'
                     rf"\tCurrent Time is {TS}\.\n\n"
                     r"Event Time Providers:\n"
                     r'    "Test", priority = 50\n\n', out), out
    wait_for(value_is("GT1:GTIM_EVT_SRC", port, "Test"), 5, what="GTIM_EVT_SRC = Test")

    # The provider goes 100 s backwards: clients see time stand still, never go back.
    mon = camonitor("GT1:TICK", port)
    mon.wait_count(5)
    shell(ioc, "testTimeProviderSet Test -100 0", "")
    wait_for(lambda: int(caget_value("GT1:GTIM_ERR_CNT", port)) >= 20, 5,
             what="backwards errors counted")
    n = len(mon.stamps())
    frozen = mon.wait_count(n + 5)[-5:]
    assert len(set(frozen)) == 1, f"time moved while the provider was behind: {frozen}"
    _, rest = stamp_of("GT1:GTIM_ERR_CNT", port)
    assert rest.endswith("HIHI MAJOR"), rest
    assert caget_value("GT1:GTIM_CUR_SRC", port) == "Test"   # last provider that answered
    out = shell(ioc, "generalTimeReport 0", "Event Time Providers:")
    assert re.search(r"Backwards time errors prevented [1-9]\d* times\.", out), out
    shell(ioc, "testTimeProviderSet Test 0 0", "")          # back on time
    wait_for(lambda: mon.stamps()[-1] > frozen[-1], 5, what="time to move on")
    stamps = mon.stop()
    assert_never_backwards(stamps)

    # GTIM_RESET clears the count (and its alarm).
    r = caput("GT1:GTIM_RESET", "1", port=port)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: stamp_of("GT1:GTIM_ERR_CNT", port)[1] == "0", 5, what="error count 0")
    assert int(caget_value("GT1:GTIM_ERR_CNT", port)) == 0

    # The provider fails: generalTime falls through to the OS clock.
    shell(ioc, "testTimeProviderSet Test 0 1", "")
    wait_for(value_is("GT1:GTIM_CUR_SRC", port, "OS Clock"), 5, what="fallback to OS Clock")
    assert caget_value("GT1:GTIM_HI_SRC", port) == "Test"


# ======================================================================= chronyd
def test_ntp_wins_falls_back_and_recovers(start_ioc, camonitor, chrony, tmp_path):
    server = chrony(synced=True)
    st = write_stcmd(tmp_path, "GT2:", 'NTPTime_Init(100)\n'
                                       'dbLoadRecords("db/ntp.db", "IOC=$(IOC)")\n')
    ioc = start_ioc(str(st), ready_pv="GT2:GTIM_HI_SRC", stdin=subprocess.PIPE,
                    extra_env=ntp_env(server))
    port = ioc.port
    wait_for(value_is("GT2:GTIM_CUR_SRC", port, "NTP"), 5, what="NTP in use")
    assert caget_value("GT2:GTIM_HI_SRC", port) == "NTP"
    wait_for(value_is("GT2:NTP_SYNCED", port, "Synced"), 5, what="NTP_SYNCED")
    assert caget_value("GT2:NTP_STRATUM", port) == "10"
    assert caget_value("GT2:NTP_SERVER", port) == server.address
    assert abs(float(caget_value("GT2:NTP_OFFSET_MS", port))) < 100
    out = shell(ioc, "NTPTime_Report 1", "NTP Server =")
    assert "NTP driver is synchronized with server\n" in out
    assert f"NTP Server = {server.address}\n" in out
    out = shell(ioc, "generalTimeReport 1", "Event Time Providers:")
    assert re.search(rf'    "NTP", priority = 100\n\tCurrent Time is {TS}\.\n'
                     rf'    "OS Clock", priority = 999\n\tCurrent Time is {TS}\.\n', out), out
    mon = camonitor("GT2:TICK", port)
    mon.wait_count(3)

    def fallback(what: str) -> float:
        t0 = time.monotonic()
        wait_for(value_is("GT2:NTP_SYNCED", port, "Unsynced"), 10, what=f"{what}: unsynced")
        elapsed = time.monotonic() - t0
        wait_for(value_is("GT2:GTIM_CUR_SRC", port, "OS Clock"), 5,
                 what=f"{what}: OS Clock in use")
        return elapsed

    def recover(what: str) -> None:
        wait_for(value_is("GT2:NTP_SYNCED", port, "Synced"), 5, what=f"{what}: synced")
        wait_for(value_is("GT2:GTIM_CUR_SRC", port, "NTP"), 5, what=f"{what}: NTP in use")

    # The server stops answering: OS clock after more than 4 failed syncs.
    server.stop()
    elapsed = fallback("server stopped")
    assert elapsed < NTP_FALLBACK_BOUND_S + 1.0, elapsed      # + processing/caget slack
    assert "NTPTimeSync: NTP requests failed since" in ioc.output()
    assert "NTP driver is *not* synchronized" in shell(ioc, "NTPTime_Report 0", "NTP driver")
    server.start()
    recover("server back")
    assert "NTPTimeSync: Sync recovered at" in ioc.output()

    # The server loses its own sync (leap 3, stratum 0): the same fallback.
    server.stop()
    server.synced = False
    server.start()
    fallback("server unsynchronized")
    wait_for(value_is("GT2:NTP_STRATUM", port, "0"), 5, what="stratum 0 shown")
    assert stamp_of("GT2:NTP_STRATUM", port)[1].endswith("READ INVALID")
    server.stop()
    server.synced = True
    server.start()
    recover("server synchronized again")

    n = len(mon.stamps())
    stamps = mon.wait_count(n + 3)
    mon.stop()
    assert_never_backwards(stamps)
    assert posix(stamps[-1]) - posix(stamps[0]) > 1.0          # it covered the whole story

    # The sync thread stops with the IOC (an at_exit hook): a clean, prompt exit.
    t0 = time.monotonic()
    assert ioc.stop() == 0
    assert time.monotonic() - t0 < 3.0
    assert "did not stop" not in ioc.output()


def test_record_time_stamps_registry_and_device(start_ioc, chrony, tmp_path):
    """TSE 0 takes generalTime's time (here a test provider 1000 s ahead of the real time);
    TSE -2 takes device support's own: NTP records the server's reply time, GTIM-style ai the
    time its VAL holds; TSE 5 needs an event provider."""
    server = chrony(synced=True)
    st = write_stcmd(tmp_path, "GT3:", 'NTPTime_Init(100)\n'
                                       'testTimeProviderAdd("Ahead", 50)\n'
                                       'testTimeProviderSet("Ahead", 1000, 0)\n'
                                       'dbLoadRecords("db/ntp.db", "IOC=$(IOC)")\n')
    # Default intervals (60 s): the NTP records show the sync NTPTime_Init did (PINI).
    ioc = start_ioc(str(st), ready_pv="GT3:GTIM_HI_SRC", stdin=subprocess.PIPE,
                    extra_env={"EPICS_TS_NTP_INET": server.address})
    port = ioc.port
    wait_for(value_is("GT3:GTIM_CUR_SRC", port, "Ahead"), 5, what="Ahead in use")
    assert caget_value("GT3:NTP_SYNCED", port) == "Synced"
    assert caget_value("GT3:NTP_STRATUM", port) == "10"

    t, _ = stamp_of("GT3:TICK", port)                          # TSE 0: the registry
    assert abs(t - (time.time() + 1000)) < 5, t - time.time()
    t, _ = stamp_of("GT3:NTP_OFFSET_MS", port)                 # TSE -2: the NTP reply
    assert abs(t - time.time()) < 5, t - time.time()
    t, rest = stamp_of("GT3:DEVTIME", port, "-f", "6")         # TSE -2: the time VAL holds
    assert abs(t - (float(rest.split()[0]) + EPICS_EPOCH_POSIX)) < 2e-6, (t, rest)

    # TSE 5 with no event provider: TIME never set (and one warning in the log).
    assert "<undefined>" in caget("-a", "GT3:EVT5", port=port)
    assert "GT3:EVT5: time for event 5 not available" in ioc.output()
    shell(ioc, "installLastResortEventProvider", "")
    wait_for(lambda: "<undefined>" not in caget("-a", "GT3:EVT5", port=port), 5,
             what="event 5 time from the last-resort provider")
    t, _ = stamp_of("GT3:EVT5", port)
    assert abs(t - (time.time() + 1000)) < 5                   # = current time (registry)
    wait_for(value_is("GT3:GTIM_EVT_SRC", port, "Last Resort Event"), 5, what="GTIM_EVT_SRC")


def test_shipped_default_stcmd_loads_generaltime(start_ioc):
    ioc = start_ioc("-S", ready_pv="IOCSIM:GTIM_CUR_SRC", cwd=ROOT)
    # It runs an event master (issue 5): EventTime at 70 is the source once valid.
    wait_for(value_is("IOCSIM:GTIM_CUR_SRC", ioc.port, "EventTime"), 5, what="EventTime")
    assert caget_value("IOCSIM:GTIM_HI_SRC", ioc.port) == "EventTime"
