"""The same user database in psu-timing-ioc and in EPICS base's softIoc: real caput/caget/camonitor
must see the same values, clamping, alarms, field values, FLNK/CP processing and monitor updates.

Each scenario step runs against both IOCs; the observations (with the PV prefix stripped) must be
identical. Time stamps are not compared (they differ by nature) except that both must be set.
"""
from __future__ import annotations

import datetime
import os
import queue
import subprocess
import threading
import time

import pytest

from ..conftest import ROOT, caget, caput, epics_bin, wait_for

DB = str(ROOT / "tests" / "data" / "user.db")

pytestmark = pytest.mark.oracle

# (action, pv-suffix, value) steps; "get" observes value, STAT and SEVR of each listed PV.
SCENARIO = [
    ("get", "AO AI DOUBLE LI ONLYHIHI BO BI MBBI SO SI PINI WF", None),
    ("get_fields", "AO.EGU AO.DRVH AO.PREC AI.HIHI AI.HHSV AI.SCAN TICK.SCAN AO.DESC BI.OSV "
                   "MBBI.TWST LI.HIGH", None),
    ("put", "AO", "20"),            # beyond DRVH: clamped to 10
    ("get", "AO AI DOUBLE LI", None),
    ("put", "AO", "-5"),            # below DRVL: clamped to 0
    ("get", "AO AI DOUBLE LI", None),
    ("put", "AO", "6"),             # HIGH/MINOR
    ("get", "AI", None),
    ("put", "AO", "4.8"),           # within HYST of HIGH: stays MINOR
    ("get", "AI", None),
    ("put", "AO", "4.2"),           # below HIGH-HYST: clears
    ("get", "AI", None),
    ("put", "AO", "0.7"),           # LOW/MINOR
    ("get", "AI", None),
    ("put", "AO.DRVH", "7"),        # field writes take effect
    ("put", "AO", "9"),
    ("get", "AO AI", None),
    ("put", "AI.HIHI", "6.5"),
    ("put", "AO", "6.9"),
    ("get", "AI", None),
    ("get_fields", "AI.HIHI", None),
    ("put", "ONLYHIHI", "0"),       # an unset LOLO never alarms
    ("get", "ONLYHIHI", None),
    ("put", "ONLYHIHI", "-3"),
    ("get", "ONLYHIHI", None),
    ("put", "ONLYHIHI", "10"),
    ("get", "ONLYHIHI", None),
    ("put", "BO", "On"),            # CP: BI follows, STATE alarm
    ("wait", "BI", "Open"),
    ("get", "BO BI", None),
    ("put", "DISABLED.PROC", "1"),  # SDIS from BO=1 -> disabled
    ("get", "DISABLED", None),
    ("put", "BO", "Off"),
    ("wait", "BI", "Closed"),
    ("put", "DISABLED.PROC", "1"),
    ("get", "BO BI DISABLED", None),
    ("put", "MBBI", "2"),
    ("get", "MBBI", None),
    ("put", "MBBI.PROC", "1"),
    ("get", "MBBI", None),
    ("put", "MBBI", "1"),
    ("put", "MBBI.PROC", "1"),
    ("get", "MBBI", None),
    ("put", "SO", "hello world"),   # OUT PP to stringin
    ("get", "SO SI", None),
    ("put", "AO.EGU", "mA"),
    ("get_ctrl", "AO", None),
    ("put", "LO", "1000"),          # longout DRVH
    ("get", "LO", None),
    ("putarray", "WF", "1 2.5 3"),
    ("get_array", "WF WF.NORD", None),
]


def _observe(kind: str, pvs: list[str], port: int) -> list[str]:
    if kind == "get":
        names = [x for pv in pvs for x in (pv, pv + ".STAT", pv + ".SEVR")]
        return caget("-t", *names, port=port).split("\n")
    if kind == "get_fields":
        return caget("-t", *pvs, port=port).split("\n")
    if kind == "get_ctrl":
        out = caget("-d", "DBR_CTRL_DOUBLE", *pvs, port=port)
        return [ln.strip() for ln in out.splitlines()[1:] if ln.strip()]
    if kind == "get_array":
        return caget("-t", *pvs, port=port).split("\n")
    raise ValueError(kind)


def run_scenario(prefix: str, port: int) -> list[tuple]:
    obs = []
    for kind, what, value in SCENARIO:
        pvs = [prefix + x for x in what.split()]
        if kind == "put":
            r = caput("-c", pvs[0], value, port=port)
            assert r.returncode == 0, r.stdout + r.stderr
        elif kind == "putarray":
            r = caput("-c", "-a", pvs[0], str(len(value.split())), *value.split(), port=port)
            assert r.returncode == 0, r.stdout + r.stderr
        elif kind == "wait":
            wait_for(lambda: caget("-t", pvs[0], port=port).strip() == value, 5,
                     what=f"{pvs[0]} == {value}")
        else:
            obs.append((kind, what, [ln.strip() for ln in _observe(kind, pvs, port)]))
    return obs


def test_user_db_matches_softioc(start_ioc, start_softioc):
    ours = start_ioc("-S", "-m", "P=OURS:", "-d", DB, ready_pv="OURS:AO")
    base = start_softioc("-S", "-m", "P=BASE:", "-d", DB, ready_pv="BASE:AO")
    got_base = run_scenario("BASE:", base.port)
    got_ours = run_scenario("OURS:", ours.port)
    for b, o in zip(got_base, got_ours):
        assert o == b, f"step {b[0]} {b[1]}:\n softIoc: {b[2]}\n ours:    {o[2]}"
    assert len(got_ours) == len(got_base)


def _camonitor_values(pv: str, port: int, actions, expect_last: str, timeout_s: float = 10):
    """Run camonitor on ``pv``, perform ``actions()`` once it printed its first update, and
    collect the values (with alarm text) until ``expect_last`` arrived plus a short grace."""
    env = {**os.environ, "EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}"}
    p = subprocess.Popen([str(epics_bin() / "camonitor"), "-t", "n", "-g", "6", pv],
                         stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in p.stdout], daemon=True)
    reader.start()
    values: list[str] = []
    try:
        first = lines.get(timeout=timeout_s)
        values.append(" ".join(first.split()[1:]))
        actions()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ln = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            values.append(" ".join(ln.split()[1:]))
            if ln.split()[1:2] == [expect_last]:
                break
        # Anything after the last value would be a spurious update: collect it too.
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            try:
                values.append(" ".join(lines.get(timeout=0.05).split()[1:]))
            except queue.Empty:
                pass
    finally:
        p.terminate()
        p.wait(5)
    return values


def test_monitor_updates_match_softioc(start_ioc, start_softioc):
    """MDEL deadband and alarm transitions produce the same camonitor stream as EPICS base."""
    ours = start_ioc("-S", "-m", "P=OURS:", "-d", DB, ready_pv="OURS:AO")
    base = start_softioc("-S", "-m", "P=BASE:", "-d", DB, ready_pv="BASE:AO")
    steps = ["2", "2.5", "2.9", "3.2", "5.5", "5.6", "4.8", "4.4", "3.0"]

    def stream(prefix, port):
        def act():
            for v in steps:
                r = caput("-c", prefix + "AO", v, port=port)
                assert r.returncode == 0
        return _camonitor_values(prefix + "AI", port, act, "3")

    got_base = stream("BASE:", base.port)
    got_ours = stream("OURS:", ours.port)
    assert len(got_base) > 3
    assert got_ours == got_base


def test_put_callback_waits_for_async_processing(start_ioc, start_softioc):
    """calcout with ODLY stays active (PACT); ``caput -c`` returns only after the delay."""
    ours = start_ioc("-S", "-m", "P=OURS:", "-d", DB, ready_pv="OURS:AO")
    base = start_softioc("-S", "-m", "P=BASE:", "-d", DB, ready_pv="BASE:AO")
    for prefix, port in (("BASE:", base.port), ("OURS:", ours.port)):
        t0 = time.monotonic()
        r = caput("-c", prefix + "DELAY.PROC", "1", port=port)
        elapsed = time.monotonic() - t0
        assert r.returncode == 0
        assert elapsed >= 0.5, f"{prefix}: caput -c returned after {elapsed:.3f} s"
        assert caget("-t", prefix + "LO", port=port).strip() == "1"
        # without callback the put returns at once
        t0 = time.monotonic()
        r = caput(prefix + "DELAY.PROC", "1", port=port)
        assert time.monotonic() - t0 < 0.45 + 0.3
        wait_for(lambda: caget("-t", prefix + "LO", port=port).strip() == "2", 5)


def test_periodic_scan_and_timestamps(start_ioc):
    ours = start_ioc("-S", "-m", "P=OURS:", "-d", DB, ready_pv="OURS:AO")
    first = int(float(caget("-t", "OURS:TICK", port=ours.port)))
    wait_for(lambda: int(float(caget("-t", "OURS:TICK", port=ours.port))) >= first + 5, 3,
             what="TICK to advance at 10 Hz")
    # The record's TIME comes from the time source at processing: within a second of now.
    name, date, clock, value, *_ = caget("-a", "OURS:TICK", port=ours.port).split()
    stamp = datetime.datetime.fromisoformat(f"{date} {clock}")
    assert abs((datetime.datetime.now() - stamp).total_seconds()) < 1.0
