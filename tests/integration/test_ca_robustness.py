"""Channel Access robustness and latency of the record layer on caproto 1.3.0.

The crash: with caproto's stock server, a subscriber that cancels its subscription while the
server is flooded with updates kills the server ("deque mutated during iteration"). The producer
here is pure EPICS: a calc record that re-processes itself through a CP link on its own VAL, so
it runs flat out. The test first shows the defect with caproto's stock Context (diagnostic switch
PSU_IOC_STOCK_CAPROTO=1), then that our Context survives the same client behaviour.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time

import pytest

from ..conftest import caget, caput

FLOOD_DB = textwrap.dedent("""\
    record(calc, "$(P)CNT") {
        field(INPA, "$(P)CNT CP")
        field(CALC, "A+1")
    }
    record(ao, "$(P)SP") { field(FLNK, "$(P)RB") }
    record(ai, "$(P)RB") { field(INP, "$(P)SP") }
    """)

# A pyepics client in its own process: subscribe, let the backlog build, cancel, repeat.
CLIENT = textwrap.dedent("""\
    import sys, time, epics
    pv = sys.argv[1]
    for i in range(4):
        chid = epics.ca.create_channel(pv, connect=True, auto_cb=False)
        cb, uarg, evid = epics.ca.create_subscription(chid, callback=lambda **kw: None)
        time.sleep(0.7)
        epics.ca.clear_subscription(evid)
        epics.ca.clear_channel(chid)
        time.sleep(0.05)
    epics.ca.finalize_libca()
    """)


def _flood_and_cancel(ioc, pv: str, clients: int = 3) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, pv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(clients)]
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_stock_caproto_dies_when_unsubscribing_under_load(start_ioc, tmp_path):
    db = tmp_path / "flood.db"
    db.write_text(FLOOD_DB)
    ioc = start_ioc("-S", "-m", "P=FL:", "-d", str(db), ready_pv="FL:SP",
                    extra_env={"PSU_IOC_STOCK_CAPROTO": "1"})
    _flood_and_cancel(ioc, "FL:CNT")
    time.sleep(0.5)
    alive = subprocess.run(["true"]).returncode == 0 and \
        "deque mutated during iteration" not in ioc.output()
    if alive:
        pytest.skip("stock caproto survived this run (the race did not trigger); "
                    "the guarded test below still runs")
    assert "Server error. Will shut down" in ioc.output() or \
        "deque mutated during iteration" in ioc.output()


def test_our_server_survives_unsubscribing_under_load(start_ioc, tmp_path):
    db = tmp_path / "flood.db"
    db.write_text(FLOOD_DB)
    ioc = start_ioc("-S", "-m", "P=FL:", "-d", str(db), ready_pv="FL:SP")
    _flood_and_cancel(ioc, "FL:CNT")
    assert "deque mutated" not in ioc.output()
    assert ioc.proc.poll() is None
    # still serving, and still processing
    a = float(caget("-t", "FL:CNT", port=ioc.port))
    b = float(caget("-t", "FL:CNT", port=ioc.port))
    assert b > a
    assert caput("-c", "FL:SP", "3", port=ioc.port).returncode == 0
    assert caget("-t", "FL:RB", port=ioc.port).strip() == "3"


def test_put_to_monitor_latency_is_low(start_ioc, tmp_path):
    """Functional check that monitors are not held back by caproto's 10 ms batching; the
    figure itself is measured by bench/ca.py."""
    import epics
    db = tmp_path / "lat.db"
    db.write_text(FLOOD_DB.split("record(ao")[0].replace("CNT", "UNUSED") +
                  'record(ao, "$(P)SP") { field(FLNK, "$(P)RB") }\n'
                  'record(ai, "$(P)RB") { field(INP, "$(P)SP") }\n')
    start_ioc("-S", "-m", "P=LAT:", "-d", str(db), ready_pv="LAT:SP")
    sp = epics.PV("LAT:SP")
    rb = epics.PV("LAT:RB", auto_monitor=True)
    assert sp.wait_for_connection(5) and rb.wait_for_connection(5)
    got = {}
    rb.add_callback(lambda value=None, **kw: got.setdefault(value, time.perf_counter()))
    lat = []
    for i in range(1, 41):
        t0 = time.perf_counter()
        sp.put(float(i))
        deadline = t0 + 2
        while float(i) not in got and time.perf_counter() < deadline:
            time.sleep(0.0002)
        assert float(i) in got, f"monitor for {i} never arrived"
        lat.append(got[float(i)] - t0)
    sp.disconnect()
    rb.disconnect()
    # caproto's stock batching alone adds 10 ms to every isolated update
    assert statistics.median(lat) < 0.008, f"median put->monitor {statistics.median(lat)*1e3:.2f} ms"
