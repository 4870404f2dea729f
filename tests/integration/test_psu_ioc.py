"""The E3631A support end to end, as users run it: ``psu-timing-ioc`` with a st.cmd, the
``e3631a-sim`` console script on a real pty (pyserial on the IOC side, termios and all), and the
real ``caget``/``caput`` of EPICS base. The simulator's control channel shows what reached the
instrument, so "nothing was sent" and "applied exactly once" are checked where they happen."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from ..conftest import ROOT, caget, caput, run_ioc_to_exit, wait_for


def rail(state: dict, name: str) -> dict:
    return state["rails"][name]


def writes(state: dict, name: str) -> int:
    return state["counters"]["setting_writes"][name]


def stcmd(tmp_path, device: str, options: str = "timeout_ms=300", extra: str = "") -> str:
    path = tmp_path / "st.cmd"
    path.write_text(f'cd "{ROOT}"\n'
                    f'E3631AConfigure("psu1", "{device}", "{options}")\n'
                    'dbLoadRecords("db/e3631a.db", "P=PSU1:,PORT=psu1")\n'
                    f"{extra}iocInit\n")
    return str(path)


def cainfo(pv: str, port: int) -> tuple[str, str, str]:
    """(value, STAT, SEVR) through one caget -d DBR_STS (what an alarm handler sees)."""
    out = caget("-d", "DBR_STS_STRING", pv, port=port)
    val = re.search(r"Value:\s*(.*)", out).group(1).strip()
    stat = re.search(r"Status:\s*(\S+)", out).group(1)
    sevr = re.search(r"Severity:\s*(\S+)", out).group(1)
    return val, stat, sevr


def value(pv: str, port: int) -> str:
    return caget("-t", pv, port=port).strip()


@pytest.fixture
def psu(start_ioc, sim, tmp_path):
    ioc = start_ioc(stcmd(tmp_path, str(sim.link)), "-S", ready_pv="PSU1:COMM")
    wait_for(lambda: value("PSU1:COMM", ioc.port) == "OK", 15, what="PSU1:COMM OK")
    # one full refresh: every readback has a value
    wait_for(lambda: cainfo("PSU1:N25V:MODE", ioc.port)[2] == "NO_ALARM", 15, what="MODE read")
    return ioc


def test_default_ioc_serves_the_simulated_supply(start_ioc):
    ioc = start_ioc("-S", ready_pv="PSU1:COMM")
    p = ioc.port
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 15, what="COMM OK")
    assert "E3631A" in value("PSU1:IDN", p)
    assert value("PSU1:FW_VERS", p) == "1995.0"
    r = caput("-c", "PSU1:P6V:VOLT", "3.3", port=p)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: abs(float(value("PSU1:P6V:VOLT_RBV", p)) - 3.3) < 1e-3, 10, what="VOLT_RBV")
    assert float(value("PSU1:CMD_LATENCY_MS", p)) > 0
    assert caput("-c", "PSU1:OUT", "1", port=p).returncode == 0
    wait_for(lambda: abs(float(value("PSU1:P6V:VOLT_MEAS", p)) - 3.3) < 0.02, 15,
             what="VOLT_MEAS follows once OUT is 1")
    # Readbacks carry the time of the reply that brought them, from the IOC's clock.
    out = caget("-a", "PSU1:P6V:VOLT_MEAS", port=p)
    assert time.strftime("%Y-%m-%d") in out


def test_put_callback_returns_when_the_instrument_has_taken_it(psu, sim):
    p = psu.port
    before = writes(sim.state(), "P6V")
    r = caput("-c", "PSU1:P6V:VOLT", "2.5", port=p)
    assert r.returncode == 0, r.stderr
    st = sim.state()                       # right after caput -c returned: no polling here
    assert rail(st, "P6V")["volt"] == pytest.approx(2.5)
    assert writes(st, "P6V") == before + 1
    r = caput("-c", "PSU1:P25V:CURR", "0.25", port=p)
    st = sim.state()
    assert rail(st, "P25V")["curr"] == pytest.approx(0.25)
    wait_for(lambda: abs(float(value("PSU1:P25V:CURR_RBV", p)) - 0.25) < 1e-4, 10)


def test_setpoints_start_from_the_instrument_bumpless(start_ioc, sim, tmp_path):
    sim.control("panel P25V VOLT 7.4")
    sim.control("panel P25V CURR 0.5")
    before = sim.state()
    ioc = start_ioc(stcmd(tmp_path, str(sim.link)), "-S", ready_pv="PSU1:COMM")
    wait_for(lambda: value("PSU1:COMM", ioc.port) == "OK", 15)
    assert float(value("PSU1:P25V:VOLT", ioc.port)) == pytest.approx(7.4)
    assert float(value("PSU1:P25V:CURR", ioc.port)) == pytest.approx(0.5)
    after = sim.state()
    assert after["counters"]["setting_writes"] == before["counters"]["setting_writes"]


def test_non_finite_setpoints_are_refused_and_nothing_is_sent(psu, sim):
    p = psu.port
    caput("-c", "PSU1:P6V:VOLT", "1.5", port=p)
    before = sim.state()
    for bad in ("nan", "inf", "-inf"):
        r = caput("-c", "PSU1:P6V:VOLT", bad, port=p)
        assert r.returncode != 0 or "rror" in (r.stdout + r.stderr), (bad, r.stdout, r.stderr)
    assert float(value("PSU1:P6V:VOLT", p)) == pytest.approx(1.5)
    r = caput("-c", "PSU1:SAVE", "7", port=p)
    assert r.returncode != 0 or "rror" in (r.stdout + r.stderr)
    after = sim.state()
    assert after["counters"]["setting_writes"] == before["counters"]["setting_writes"]
    assert not [ln for ln in after["rx_log"] if ln not in before["rx_log"]
                and not ln.rstrip().endswith("?")], after["rx_log"]


def test_out_of_range_setpoints_end_at_the_rail_limit(psu, sim):
    p = psu.port
    assert caput("-c", "PSU1:P6V:VOLT", "10", port=p).returncode == 0
    assert float(value("PSU1:P6V:VOLT", p)) == pytest.approx(6.18)
    assert rail(sim.state(), "P6V")["volt"] == pytest.approx(6.18)
    assert caput("-c", "PSU1:N25V:VOLT", "5", port=p).returncode == 0
    assert float(value("PSU1:N25V:VOLT", p)) == pytest.approx(0.0)
    assert caput("-c", "PSU1:N25V:VOLT", "-30", port=p).returncode == 0
    assert rail(sim.state(), "N25V")["volt"] == pytest.approx(-25.75)


FAULTS = [  # (fault on, fault off, expected STAT of readbacks)
    ("fault no_reply on", "fault no_reply off", {"TIMEOUT"}),
    ("fault garble on", "fault garble off", {"READ"}),
    ("fault partial on", "fault partial off", {"READ", "TIMEOUT"}),
    ("fault delay_ms 800", "fault delay_ms 0", {"TIMEOUT"}),
]


@pytest.mark.parametrize("on,off,stats", FAULTS, ids=[f[0].split()[1] for f in FAULTS])
def test_fault_goes_invalid_and_recovers_by_itself(psu, sim, on, off, stats):
    p = psu.port
    readbacks = ["PSU1:P6V:VOLT_MEAS", "PSU1:P25V:CURR_RBV", "PSU1:OUT_RBV", "PSU1:N25V:MODE"]
    sim.control(on)
    t0 = time.monotonic()
    wait_for(lambda: cainfo("PSU1:P6V:VOLT_MEAS", p)[1] in stats, 5, what="INVALID")
    # within one transaction timeout (300 ms) of the first failed query, plus a poll period
    assert time.monotonic() - t0 < 2.5
    for pv in readbacks:
        _, stat, sevr = cainfo(pv, p)
        assert sevr == "INVALID" and stat in stats, (pv, stat, sevr)
    assert value("PSU1:COMM", p) in ("STALE", "NO_DEVICE")
    assert value("PSU1:COMM_MSG", p)
    # a setpoint written during the outage (outage=fail, the default) completes at once with
    # WRITE/INVALID and is never sent, not even after recovery (outage=hold, which sends it
    # once after recovery, and the timings: test_psu_outage.py)
    before = writes(sim.state(), "P25V")
    assert caput("-c", "PSU1:P25V:VOLT", "4.25", port=p).returncode == 0
    assert cainfo("PSU1:P25V:VOLT", p)[1:] == ("WRITE", "INVALID")
    assert writes(sim.state(), "P25V") == before
    sim.control(off)
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 15, what="COMM OK again")
    for pv in readbacks:
        wait_for(lambda pv=pv: cainfo(pv, p)[2] == "NO_ALARM", 10, what=f"{pv} recovers")
    # a later put goes through the same queue: anything left of 4.25 would have gone first
    assert caput("-c", "PSU1:P6V:VOLT", "1.5", port=p).returncode == 0
    assert writes(sim.state(), "P25V") == before
    assert rail(sim.state(), "P25V")["volt"] != pytest.approx(4.25)
    assert psu.proc.poll() is None
    assert "unexpected error in the port thread" not in psu.output()


def test_power_cycle_reidentifies_and_rereads_settings(psu, sim):
    p = psu.port
    caput("-c", "PSU1:P6V:VOLT", "2", port=p)
    caput("-c", "PSU1:OUT", "1", port=p)
    sim.control("power_cycle")
    wait_for(lambda: value("PSU1:COMM", p) != "OK", 5, what="outage seen")
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 20, what="back after the power cycle")
    # *RST state read back: the setpoints follow the instrument, the IOC re-applied nothing
    wait_for(lambda: float(value("PSU1:P6V:VOLT", p)) == 0.0, 10)
    wait_for(lambda: value("PSU1:OUT_RBV", p) == "Off", 10)
    assert value("PSU1:OUT", p) == "Off"
    assert sim.state()["remote"] in (True, 1)


def test_port_vanishing_and_returning(psu, sim):
    p = psu.port
    sim.control("vanish")
    wait_for(lambda: cainfo("PSU1:P6V:VOLT_MEAS", p)[1:] == ("COMM", "INVALID"), 5)
    assert value("PSU1:COMM", p) == "DISCONNECTED"
    sim.control("return")
    wait_for(lambda: value("PSU1:COMM", p) == "OK", 20, what="reopened")
    wait_for(lambda: cainfo("PSU1:P6V:VOLT_MEAS", p)[2] == "NO_ALARM", 10)


def test_comm_failures_are_logged_rate_limited(start_ioc, sim, tmp_path):
    psu = start_ioc(stcmd(tmp_path, str(sim.link), "timeout_ms=200 backoff_max_ms=200"), "-S",
                    ready_pv="PSU1:COMM")
    wait_for(lambda: value("PSU1:COMM", psu.port) == "OK", 15)
    sim.control("fault no_reply on")
    wait_for(lambda: "limiting error reporting" in psu.output()
             and psu.output().count("communications with the instrument lost") >= 11, 30,
             interval_s=0.2, what="many failures")
    sim.control("fault no_reply off")
    wait_for(lambda: "re-established" in psu.output(), 20, interval_s=0.2)
    out = psu.output()
    lost = out.count("communications with the instrument lost")
    assert "limiting error reporting" in out
    assert out.count("re-established") == 1
    # failures 1..10 logged, then only every 10th: far fewer lines than failures
    assert 11 <= lost <= 10 + 3, out[-3000:]


def test_lost_first_query_quirk_is_retried_without_an_alarm(psu, sim):
    p = psu.port
    sim.control("fault lost_first_query on")
    assert caput("-c", "PSU1:P6V:VOLT", "1.25", port=p).returncode == 0
    wait_for(lambda: abs(float(value("PSU1:P6V:VOLT_RBV", p)) - 1.25) < 1e-4, 10)
    assert value("PSU1:COMM", p) == "OK"


def test_instrument_errors_reach_err_msg(psu, sim):
    p = psu.port
    sim.control("error -222")
    wait_for(lambda: value("PSU1:ERR_MSG", p).startswith("-222"), 10)
    assert int(value("PSU1:ERR_CNT", p)) >= 1


def test_auto_detect_finds_the_simulator_on_a_pty(start_ioc, sim, tmp_path):
    other = tmp_path / "not-a-port"
    ioc = start_ioc(stcmd(tmp_path, f"auto:{other},{sim.link}"), "-S", ready_pv="PSU1:COMM")
    wait_for(lambda: value("PSU1:COMM", ioc.port) == "OK", 15)
    assert value("PSU1:PORT", ioc.port) == str(sim.link)
    assert caput("-c", "PSU1:P6V:VOLT", "1", port=ioc.port).returncode == 0
    assert rail(sim.state(), "P6V")["volt"] == pytest.approx(1.0)


def test_a_second_ioc_on_the_same_port_is_refused(psu, sim, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    r = run_ioc_to_exit("-S", stcmd(second, str(sim.link)))
    assert r.returncode == 1
    assert "in use by another process" in (r.stdout + r.stderr)


def test_e3631a_report(tmp_path, sim):
    r = run_ioc_to_exit(stcmd(tmp_path, str(sim.link)), stdin_text="E3631AReport psu1 1\nexit\n")
    out = r.stdout + r.stderr
    assert "Port psu1: OK" in out and "HEWLETT-PACKARD,E3631A" in out
    assert "APPL? P6V" in out


def test_generated_db_matches_the_rail_template():
    r = subprocess.run(["python", str(ROOT / "tools" / "gen_e3631a_db.py"), "--check"])
    assert r.returncode == 0, "db/e3631a.db is out of date: run tools/gen_e3631a_db.py"
