"""Event time as users run it: one master and two slaves started from the shipped st.cmd files
(iocBoot/ioctime-master, iocBoot/ioctime-slave), a real NTP server (chronyd) as the master's
reference, the real caget/caput/camonitor, and a third process flooding the UDP ports.

The group runs with its own link, ports and an authentication key (``EVT_AUTH_KEY``), so it
does not meet any other event system on this host; the PLL samples every 0.5 s to keep the test
short. The tests run in order on one group; each leaves all three IOCs valid again:

1. all valid, ``GTIM_CUR_SRC`` = EventTime, the same event stamped alike in all three;
2. stream stopped at the generator -> ``EVT_stream_lost`` everywhere; validation refused while the
   time is wrong (WRITE alarm), accepted once the stream is back;
3. a slave's tick counter frozen -> ``EVT_tick_fail`` there only;
4. the master silent (its ticks frozen, so it is invalid) -> ``EVT_sync_timeout`` on the slaves;
5. oscillator error beyond the PLL's pull range -> ``EVT_ntpLock_lost`` on the master and slaves,
   cleared by itself when the PLL locks again;
6. a flood of garbage, replays and forged masters: counters rise, nothing else changes;
7. the master stopped (its soft EVG goes with it: ``EVT_stream_lost`` on the slaves) and
   started again;
and all along, camonitor on a 10 Hz record in each IOC never sees time go backwards.
"""
from __future__ import annotations

import datetime
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..chrony import Chrony
from ..conftest import (ROOT, IocProcess, caget, caget_value, caput, epics_bin, free_port,
                        wait_for)

TS_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
KEY = "evt test key"
PROBE_DB = """\
record(calc, "$(IOC)PROBE_TICK") {
  field(SCAN, ".1 second")
  field(INPA, "$(IOC)PROBE_TICK")
  field(CALC, "A+1")
}
record(calc, "$(IOC)PROBE_EVT5") {
  field(SCAN, "Event")
  field(EVNT, "5")
  field(TSE,  "5")
  field(INPA, "$(IOC)PROBE_EVT5")
  field(CALC, "A+1")
}
"""
SLACK_S = 0.6                     # caget polling and process start-up on a loaded machine


def posix(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def stamp(pv: str, port: int, undefined_ok: bool = False) -> tuple[float, str]:
    """(time stamp as POSIX seconds, the rest of the ``caget -a`` line)."""
    line = caget("-a", pv, port=port)
    m = TS_RE.search(line)
    if m is None and undefined_ok and "<undefined>" in line:
        return 0.0, line
    assert m, line
    return posix(m.group()), line[m.end():].strip()


class Group:
    """chronyd, the master and two slaves, started from the shipped st.cmd files."""

    def __init__(self, pool, workdir: Path):
        self.pool = pool
        self.dir = workdir
        self.ntp = Chrony(workdir / "chrony", free_port(), synced=True).start()
        self.master_port, self.slave_port = free_port(), free_port()
        self.env = {"EVT_LINK": f"239.255.18.1:{free_port()}",
                    "EVT_MASTER_PORT": str(self.master_port),
                    "EVT_SLAVE_PORT": str(self.slave_port),
                    "EVT_SYNC_ADDR_LIST": "127.255.255.255", "EVT_MASTER_ADDR": "127.0.0.1",
                    "EVT_AUTH_KEY": KEY, "EVT_PLL_INTERVAL_S": "0.5", "EVT_PPM": "37",
                    "EPICS_TS_NTP_INET": self.ntp.address,
                    "EPICS_TS_NTP_SYNC_INTERVAL_S": "2"}
        self.probe = workdir / "probe.db"
        self.probe.write_text(PROBE_DB)
        self.monitors: list[subprocess.Popen] = []
        self.master = self.start_master()
        self.slaves = [self.start(f"TIMES{i}:", "ioctime-slave") for i in (1, 2)]

    def start(self, ioc: str, boot: str, **kw) -> IocProcess:
        p = IocProcess(["psu-timing-ioc", "-S", "-m", f"IOC={ioc}", "-d", str(self.probe),
                        str(ROOT / "iocBoot" / boot / "st.cmd")], self.pool, ROOT,
                       f"{ioc}EVT_VALID", extra_env=dict(self.env, IOC=ioc), **kw)
        p.ioc = ioc
        out = self.dir / f"camonitor-{ioc}{len(self.monitors)}.txt"
        with open(out, "w") as f:
            mon = subprocess.Popen([str(epics_bin() / "camonitor"), f"{ioc}PROBE_TICK"],
                                   stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                   env=dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{p.port}"))
        mon.path = out
        self.monitors.append(mon)
        return p

    def start_master(self) -> IocProcess:
        return self.start("TIMEM:", "ioctime-master")

    @property
    def all(self) -> list[IocProcess]:
        return [self.master, *self.slaves]

    def stop(self) -> None:
        for p in self.all:
            p.stop()
        for m in self.monitors:
            if m.poll() is None:
                m.terminate()
                m.wait(5)
        self.ntp.stop()


@pytest.fixture(scope="module")
def group(ca_ports, tmp_path_factory):
    g = Group(ca_ports, tmp_path_factory.mktemp("evt"))
    yield g
    g.stop()


def pv(p: IocProcess, name: str) -> str:
    return caget_value(p.ioc + name, p.port)


def wait_pv(p: IocProcess, name: str, want: str, timeout_s: float) -> float:
    """Seconds until ``p``'s PV reads ``want``."""
    t0 = time.monotonic()
    wait_for(lambda: pv(p, name) == want, timeout_s, what=f"{p.ioc}{name} = {want}")
    return time.monotonic() - t0


def put(p: IocProcess, name: str, value: str) -> None:
    r = caput(p.ioc + name, value, port=p.port)
    assert r.returncode == 0, r.stdout + r.stderr


def validate(p: IocProcess, timeout_s: float = 8.0) -> None:
    """caput EVT_VALIDATE 0.001 until the time is valid (it is refused while it is still off)."""
    def attempt():
        put(p, "EVT_VALIDATE", "0.001")
        return pv(p, "EVT_VALID") == "Valid"
    wait_for(attempt, timeout_s, interval_s=0.2, what=f"{p.ioc} validated")
    assert stamp(p.ioc + "EVT_VALIDATE", p.port)[1].split()[-1] != "MAJOR"


def assert_all_valid(g: Group) -> None:
    for p in g.all:
        wait_pv(p, "EVT_VALID", "Valid", 10)
        assert pv(p, "EVT_FAULT") == "EVT_time_OK"
        wait_pv(p, "GTIM_CUR_SRC", "EventTime", 5)


def event_stamps(g: Group) -> list[float]:
    """Send event 5 from the master's soft EVG; its time stamp in each IOC (TSE 5 record)."""
    before = [stamp(p.ioc + "PROBE_EVT5", p.port, undefined_ok=True)[0] for p in g.all]
    put(g.master, "EVG_SIM:EVENT", "5")
    out = []
    for p, b in zip(g.all, before):
        out.append(wait_for(lambda: (t := stamp(p.ioc + "PROBE_EVT5", p.port, True)[0]) != b and t,
                            5, what=f"{p.ioc} event 5"))
    return out


def test_master_and_two_slaves_become_valid_and_agree(group):
    g = group
    assert_all_valid(g)
    assert pv(g.master, "EVT_ROLE") == "sync_master"
    for s in g.slaves:
        assert pv(s, "EVT_ROLE") == "sync_slave"
        assert pv(s, "EVT_MASTER") == f"127.0.0.1:{g.master_port}"
    assert pv(g.master, "GTIM_HI_SRC") == "EventTime"
    wait_pv(g.master, "EVT_PLL_LOCKED", "Locked", 15)
    assert abs(float(pv(g.master, "EVT_OFFSET_US"))) < 200
    for p in g.all:       # event time - host clock: the PLL steers onto chrony's (the host's)
        _, rest = stamp(p.ioc + "EVT_HOST_OFFSET_US", p.port)
        assert "INVALID" not in rest and abs(float(rest.split()[0])) < 1000, (p.ioc, rest)
    # The PLL trims the +37 ppm oscillator back to 1 MHz.
    wait_for(lambda: abs(float(pv(g.master, "EVT_CLK_HZ")) - 1e6 * (1 - 37e-6)) < 10, 15,
             interval_s=0.2, what="tick rate trimmed by -37 ppm")
    stamps = event_stamps(g)
    assert max(stamps) - min(stamps) <= 50e-6, stamps
    assert abs(stamps[0] - time.time()) < 5


def test_stream_lost_then_validation_refused_until_the_stream_is_back(group):
    g = group
    put(g.master, "EVG_SIM:STREAM", "Stop")
    for p in g.all:
        assert wait_pv(p, "EVT_FAULT", "EVT_stream_lost", 1.5 + SLACK_S) < 1.5 + SLACK_S
        line = caget("-a", p.ioc + "EVT_VALID", port=p.port)
        assert "Invalid" in line and "MAJOR" in line, line
        wait_for(lambda: "READ INVALID" in caget("-a", p.ioc + "EVT_HOST_OFFSET_US",
                                                 port=p.port), 2, what=f"{p.ioc} offset INVALID")
    wait_pv(g.master, "GTIM_CUR_SRC", "NTP", 5)
    for s in g.slaves:
        wait_pv(s, "GTIM_CUR_SRC", "OS Clock", 5)
    # The time stands still without a stream: the validating ao refuses, WRITE alarm.
    s = g.slaves[0]
    put(s, "EVT_VALIDATE", "0.001")
    _, rest = stamp(s.ioc + "EVT_VALIDATE", s.port)
    assert rest.endswith("WRITE MAJOR"), rest
    assert pv(s, "EVT_VALID") == "Invalid" and pv(s, "EVT_FAULT") == "EVT_stream_lost"
    put(g.master, "EVG_SIM:STREAM", "Run")
    for p in g.all:
        validate(p)
    assert_all_valid(g)


def test_a_frozen_tick_counter_is_a_tick_fail_on_that_ioc_only(group):
    g = group
    s = g.slaves[1]
    put(s, "EVG_SIM:TICKS", "Freeze")
    assert wait_pv(s, "EVT_FAULT", "EVT_tick_fail", 2.1 + SLACK_S) < 2.1 + SLACK_S
    assert pv(s, "EVT_VALID") == "Invalid"
    wait_pv(s, "GTIM_CUR_SRC", "OS Clock", 5)
    assert pv(g.slaves[0], "EVT_VALID") == "Valid" and pv(g.master, "EVT_VALID") == "Valid"
    put(s, "EVG_SIM:TICKS", "Run")
    validate(s)
    assert_all_valid(g)


def test_a_silent_master_is_a_sync_timeout_on_the_slaves(group):
    g = group
    put(g.master, "EVG_SIM:TICKS", "Freeze")       # invalid master: sync messages stop
    wait_pv(g.master, "EVT_FAULT", "EVT_tick_fail", 2.1 + SLACK_S)
    t_silent = time.monotonic()
    for s in g.slaves:
        wait_pv(s, "EVT_FAULT", "EVT_sync_timeout", 3 + 0.1 + SLACK_S)
    assert time.monotonic() - t_silent < 3 + 0.1 + SLACK_S
    for s in g.slaves:
        assert pv(s, "EVT_VALID") == "Invalid"
    put(g.master, "EVG_SIM:TICKS", "Run")
    validate(g.master)
    for s in g.slaves:
        validate(s)
    assert_all_valid(g)


def test_oscillator_beyond_pull_range_is_ntp_lock_lost_and_relocks_by_itself(group):
    g = group
    put(g.master, "EVG_SIM:PPM", "5000")
    for p in g.all:
        wait_pv(p, "EVT_FAULT", "EVT_ntpLock_lost", 8)
    assert pv(g.master, "EVT_PLL_LOCKED") == "Unlocked"
    put(g.master, "EVG_SIM:PPM", "37")
    for p in g.all:                                 # no operator needed for this one
        wait_pv(p, "EVT_VALID", "Valid", 15)
    wait_pv(g.master, "EVT_PLL_LOCKED", "Locked", 5)
    assert_all_valid(g)


def flood(master_port: int, slave_port: int, seconds: float) -> None:
    """The third process: garbage, replays of captured sync messages, forged masters."""
    from timing.evt import wire
    cap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cap.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    cap.bind(("", slave_port))
    cap.settimeout(2.5)
    genuine = [cap.recv(2048)]                      # one real (authenticated) sync message
    cap.close()
    now = time.time() - 631152000
    forged = [wire.encode(wire.TsMessage(2, (int(now) + 100, 0), (int(now) + 100, 5000), 1,
                                         1_000_000, 0, seq=seq), key)
              for seq, key in ((1, None), (2, b"wrong key"), (None, None))]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    n, t_end = 0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        for data in (os.urandom(n % 120), genuine[0], *forged, genuine[0][:52]):
            for addr in (("127.255.255.255", slave_port), ("127.0.0.1", master_port),
                         ("127.0.0.1", slave_port)):
                s.sendto(data, addr)
                n += 1
        time.sleep(0.01)                            # ~1800 datagrams/s
    print(f"flooded {n} datagrams")


def test_flood_of_garbage_replays_and_forged_masters_changes_nothing(group):
    g = group
    bad0 = [int(pv(p, "EVT_BAD_MSG_CNT")) for p in g.all]
    sync0 = [int(pv(p, "EVT_SYNC_CNT")) for p in g.slaves]
    code = (f"from tests.integration.test_evt_ioc import flood; "
            f"flood({g.master_port}, {g.slave_port}, 2.0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "flooded" in r.stdout, r.stderr
    for p, b in zip(g.all, bad0):
        wait_for(lambda: int(pv(p, "EVT_BAD_MSG_CNT")) > b + 100, 5, what=f"{p.ioc} bad count")
    for s, n in zip(g.slaves, sync0):
        wait_for(lambda: int(pv(s, "EVT_SYNC_CNT")) > n + 1, 5, what="syncs accepted")
        assert pv(s, "EVT_MASTER") == f"127.0.0.1:{g.master_port}"
    assert_all_valid(g)
    stamps = event_stamps(g)                       # the forged +100 s never took effect
    assert max(stamps) - min(stamps) <= 50e-6 and abs(stamps[0] - time.time()) < 5, stamps


def test_master_stopped_and_started_again(group):
    g = group
    t0 = time.monotonic()
    assert g.master.stop() == 0
    assert time.monotonic() - t0 < 5              # its threads stop promptly
    for s in g.slaves:                             # the soft EVG was in the master
        wait_pv(s, "EVT_FAULT", "EVT_stream_lost", 1.5 + SLACK_S)
        wait_pv(s, "GTIM_CUR_SRC", "OS Clock", 5)
    g.master = g.start_master()
    wait_pv(g.master, "EVT_VALID", "Valid", 10)
    for s in g.slaves:
        validate(s)
    assert_all_valid(g)
    stamps = event_stamps(g)
    assert max(stamps) - min(stamps) <= 50e-6, stamps


def test_time_never_went_backwards_in_any_ioc(group):
    g = group
    time.sleep(0.3)
    for m in g.monitors:
        stamps = [t.group() for t in map(TS_RE.search, m.path.read_text().splitlines()) if t]
        assert len(stamps) > 10, m.path
        back = [(a, b) for a, b in zip(stamps, stamps[1:]) if b < a]
        assert not back, (m.path.name, back[:3])


def test_configuration_errors_name_the_line_and_the_report_prints(tmp_path):
    from ..conftest import run_ioc_to_exit
    cases = {
        "no_hw.cmd": ("EvtTimeConfigure(1, 1, 1000000, 0, 0, 0)\n", 1, "EvtSoftHwConfigure first"),
        "bad_link.cmd": ('EvtSoftHwConfigure("127.0.0.1:5", 0)\n', 1, "multicast group:port"),
        "bad_role.cmd": ('EvtSoftHwConfigure("239.255.18.1:18344", 0)\n'
                         "EvtTimeConfigure(2)\n", 2, "master must be 1"),
        "bad_env.cmd": ('epicsEnvSet("EVT_SYNC_ADDR_LIST", "127.0.0.1:x")\n'
                        'EvtSoftHwConfigure("239.255.18.1:18344", 0)\n'
                        "EvtTimeConfigure(1)\n", 3, "bad port"),
    }
    for name, (text, line, words) in cases.items():
        st = tmp_path / name
        st.write_text(text + "iocInit\n")
        # --strict: a configuration error stops the start (by default it is reported and the
        # script goes on, as in EPICS base)
        r = run_ioc_to_exit("-S", "--strict", str(st))
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert f"{st}:{line}:" in r.stderr and words in r.stderr, (name, r.stderr)
    st = tmp_path / "ok.cmd"
    st.write_text(f'epicsEnvSet("EVT_SYNC_ADDR_LIST", "127.0.0.1:{free_port()}")\n'
                  f'EvtSoftHwConfigure("239.255.18.1:{free_port()}", 10)\n'
                  f"EvtTimeConfigure(1, 0, 0, {free_port()}, 0, 0)\niocInit\n")
    r = run_ioc_to_exit(str(st), stdin_text="EvtTimeReport 1\nexit\n")
    assert r.returncode == 0, r.stderr
    assert "EventTime: sync_master" in r.stdout and "soft EVG" in r.stdout, r.stdout
    assert "sync rate 1 s, clock 1000000 Hz" in r.stdout
