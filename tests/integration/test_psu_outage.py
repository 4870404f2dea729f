"""Writes during a serial outage, made explicit (issue 13, point 5), end to end as users run it:
``psu-timing-ioc`` with a st.cmd, ``e3631a-sim`` on a real pty with its ``no_reply`` fault, and
EPICS base's ``caput``/``caget``/``camonitor``. What reached the instrument is read from the
simulator's own counters, so "nothing sent after recovery" and "sent once" are checked where they
happen.

* ``outage=fail`` (the default): a ``caput -c`` during the outage completes at once (well within
  the transaction timeout) with WRITE/INVALID, and nothing of it reaches the supply afterwards;
* ``outage=hold``: the put is held (``$(P)PENDING`` 1, the put-callback waits) and goes out once
  after recovery;
* setpoints are COMM/INVALID during the outage and NO_ALARM after; a readback's INVALID update
  carries the time of the failure, later than its last good stamp, and the first good update
  after recovery is later again (archivers see the outage, time never goes back).
"""
from __future__ import annotations

import subprocess
import time
from datetime import datetime

import pytest

from ..conftest import ROOT, _client_env, caput, epics_bin, stop_process, wait_for
from .test_psu_ioc import cainfo, rail, value, writes

TIMEOUT_MS = 300          # the transaction timeout the IOCs here run with
SETPOINTS = ["PSU1:P25V:VOLT", "PSU1:P6V:CURR", "PSU1:OUT"]


def stcmd(tmp_path, device: str, options: str) -> str:
    path = tmp_path / "st.cmd"
    path.write_text(f'cd "{ROOT}"\n'
                    f'E3631AConfigure("psu1", "{device}", "{options}")\n'
                    'dbLoadRecords("db/e3631a.db", "P=PSU1:,PORT=psu1")\n'
                    "iocInit\n")
    return str(path)


@pytest.fixture
def background():
    """Popen EPICS clients (camonitor, a waiting caput -c); all stopped at the end."""
    procs: list[subprocess.Popen] = []

    def start(*argv: str, port: int, **kw) -> subprocess.Popen:
        p = subprocess.Popen([str(epics_bin() / argv[0]), *argv[1:]], env=_client_env(port),
                             start_new_session=True, text=True, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        stop_process(p)


def start_psu(start_ioc, sim, tmp_path, options: str):
    ioc = start_ioc(stcmd(tmp_path, str(sim.link), options), "-S", ready_pv="PSU1:COMM")
    p = ioc.port
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 15, what="PSU1:COMM OK")
    wait_for(lambda: cainfo("PSU1:N25V:MODE", p)[2] == "NO_ALARM", 15, what="a full refresh")
    return ioc


def begin_outage(sim, p: int) -> None:
    sim.control("fault no_reply on")
    wait_for(lambda: value("PSU1:COMM", p) != "OK", 5, what="the outage seen")
    for pv in SETPOINTS:
        wait_for(lambda pv=pv: cainfo(pv, p)[1:] == ("COMM", "INVALID"), 5,
                 what=f"{pv} COMM/INVALID during the outage")


def end_outage(sim, p: int) -> None:
    sim.control("fault no_reply off")
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 20, what="COMM OK again")
    for pv in SETPOINTS:
        wait_for(lambda pv=pv: cainfo(pv, p)[1:] == ("NO_ALARM", "NO_ALARM"), 5,
                 what=f"{pv} NO_ALARM after the outage")


def barrier(p: int) -> None:
    """A put through the same queue after recovery: a held or leftover setting would have gone
    out before it completes (settings keep their order), so "nothing later" is checked then."""
    r = caput("-c", "PSU1:P6V:VOLT", "1.5", port=p)
    assert r.returncode == 0, r.stdout + r.stderr


OPTS = f"timeout_ms={TIMEOUT_MS} backoff_max_ms=500"


def test_fail_completes_at_once_and_sends_nothing_later(start_ioc, sim, tmp_path):
    ioc = start_psu(start_ioc, sim, tmp_path, OPTS)        # outage=fail is the default
    p = ioc.port
    assert caput("-c", "PSU1:P25V:VOLT", "3.0", port=p).returncode == 0
    before = writes(sim.state(), "P25V")
    begin_outage(sim, p)
    t0 = time.monotonic()
    r = caput("-c", "-w", "5", "PSU1:P25V:VOLT", "4.25", port=p)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    # the put-callback came back at once: the whole caput process (start, CA search and
    # connect, put, callback) in less than one transaction timeout plus a margin
    assert elapsed < TIMEOUT_MS / 1000.0 + 1.0, elapsed
    assert cainfo("PSU1:P25V:VOLT", p)[1:] == ("WRITE", "INVALID")
    assert int(value("PSU1:PENDING", p)) == 0
    assert writes(sim.state(), "P25V") == before
    end_outage(sim, p)
    # the setpoint follows the instrument again (bumpless): the refused value is gone
    wait_for(lambda: float(value("PSU1:P25V:VOLT", p)) == pytest.approx(3.0), 10,
             what="P25V:VOLT back to the instrument's setting")
    barrier(p)
    st = sim.state()
    assert writes(st, "P25V") == before
    assert rail(st, "P25V")["volt"] == pytest.approx(3.0)
    assert "4.25" not in " ".join(st["rx_log"])
    assert ioc.proc.poll() is None
    assert "unexpected error in the port thread" not in ioc.output()


def test_hold_sends_once_after_recovery_and_counts_pending(start_ioc, sim, tmp_path, background):
    ioc = start_psu(start_ioc, sim, tmp_path, OPTS + " outage=hold")
    p = ioc.port
    assert int(value("PSU1:PENDING", p)) == 0
    before = writes(sim.state(), "P25V")
    begin_outage(sim, p)
    put = background("caput", "-c", "-w", "60", "PSU1:P25V:VOLT", "4.25", port=p,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: int(value("PSU1:PENDING", p)) == 1, 5, what="PENDING 1")
    assert put.poll() is None             # the put-callback waits for the instrument
    assert writes(sim.state(), "P25V") == before
    sim.control("fault no_reply off")
    out, _ = put.communicate(timeout=30)
    assert put.returncode == 0, out
    st = sim.state()                      # the callback came when the instrument had it
    assert rail(st, "P25V")["volt"] == pytest.approx(4.25)
    assert writes(st, "P25V") == before + 1
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 5)
    wait_for(lambda: int(value("PSU1:PENDING", p)) == 0, 5, what="PENDING back to 0")
    for pv in SETPOINTS:
        wait_for(lambda pv=pv: cainfo(pv, p)[1:] == ("NO_ALARM", "NO_ALARM"), 5,
                 what=f"{pv} NO_ALARM after the outage")
    barrier(p)
    assert writes(sim.state(), "P25V") == before + 1     # exactly once
    assert float(value("PSU1:P25V:VOLT", p)) == pytest.approx(4.25)


def test_bad_outage_option_is_refused(tmp_path, sim):
    from ..conftest import run_ioc_to_exit
    r = run_ioc_to_exit(stcmd(tmp_path, str(sim.link), "outage=maybe"), stdin_text="exit\n")
    assert "outage=maybe" in r.stdout + r.stderr and "fail|hold" in r.stdout + r.stderr


def _updates(text: str, pv: str) -> list[tuple[float, str]]:
    """camonitor lines -> (server time stamp as a POSIX time, the rest: value [STAT SEVR])."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] != pv:
            continue
        try:
            ts = datetime.strptime(f"{parts[1]} {parts[2]}", "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        out.append((ts, " ".join(parts[3:])))
    return out


def test_readback_invalid_update_carries_the_failure_time(start_ioc, sim, tmp_path, background):
    ioc = start_psu(start_ioc, sim, tmp_path, OPTS)
    p = ioc.port
    pv = "PSU1:P6V:VOLT_RBV"               # changes only when set: its last good stamp is old
    assert caput("-c", "PSU1:P6V:VOLT", "2.0", port=p).returncode == 0
    wait_for(lambda: float(value(pv, p)) == pytest.approx(2.0), 10, what="VOLT_RBV 2.0")
    log = tmp_path / "camonitor.txt"
    with open(log, "w") as f:
        background("camonitor", pv, "PSU1:P6V:VOLT_MEAS", port=p, stdout=f,
                   stderr=subprocess.STDOUT)
        wait_for(lambda: _updates(log.read_text(), pv), 5, what="camonitor's first update")
        t_fault = time.time()
        sim.control("fault no_reply on")
        wait_for(lambda: any("INVALID" in u for _, u in _updates(log.read_text(), pv)), 5,
                 what="the INVALID update")
        t_seen = time.time()
        end_outage(sim, p)
        wait_for(lambda: _updates(log.read_text(), pv)[-1][1].split()[-1] != "INVALID"
                 and any("INVALID" in u for _, u in _updates(log.read_text(),
                                                             "PSU1:P6V:VOLT_MEAS"))
                 and "INVALID" not in _updates(log.read_text(), "PSU1:P6V:VOLT_MEAS")[-1][1],
                 10, what="good updates after recovery")
    for name in (pv, "PSU1:P6V:VOLT_MEAS"):
        ups = _updates(log.read_text(), name)
        first_bad = next(i for i, (_, u) in enumerate(ups) if "INVALID" in u)
        last_good_ts = ups[first_bad - 1][0] if first_bad else None
        bad_ts = ups[first_bad][0]
        if last_good_ts is not None:
            assert bad_ts > last_good_ts, (name, ups)
        # the failure's time: after the fault began, by the time it was seen
        assert t_fault - 0.05 <= bad_ts <= t_seen + 0.05, (name, t_fault, bad_ts, t_seen, ups)
        # the first good update after the outage is later again (time never goes back)
        after = [ts for ts, u in ups[first_bad:] if "INVALID" not in u]
        assert after and after[0] > bad_ts, (name, ups)
