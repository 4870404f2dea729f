"""Fan-out: 10 clients monitor one record posted flat out, one of them stalled.

The producer is bench/ca.py's: a calc ``CNT`` that re-processes itself through a CP link on its
own value until it reaches ``N`` (a put to N starts it; it then stops, posting nothing more).
The live monitors are real clients we did not write: pyepics, one subprocess each
(bench/_ca_client.py: counts the updates, prints the last value and when it arrived). The
stalled client is a raw socket (bench/_ca_common.RawCA, 4 kB receive buffer) that subscribes
10 times, reads the initial updates and then never reads again, so the server's send path to it
fills up at once.

Run 1: one live client, nothing stalled: its update rate R1 and the processing rate P1.
Run 2: 9 live clients + the stalled one. Asserted:

* every live client keeps receiving: each one's rate >= LIVE_RATE_FLOOR * R1;
* processing keeps going: the processing rate >= PROC_RATE_FLOOR * P1;
* every live client ends with the last value (no final update lost);
* the IOC stays alive, and still answers a get once the stalled client is gone.

The same test runs against EPICS base's softIoc (``oracle``), which shows the floors are met by
the reference. Measured on the shared 2-core machine (10 000 posts, 2026-12-03):

* softIoc 7.0.8, 4 runs: R1 12 900-20 700 upd/s, P1 15 700-27 300/s; run 2: slowest live client
  0.13-0.21 x R1, processing 0.47-0.67 x P1, every client got the last value;
* today's server (git 502446e, caproto 1.3.0): R1 5000 upd/s, P1 4970/s; run 2: live clients
  434 upd/s (0.087 x R1), processing 527/s (0.11 x P1: fails), and none of the 9 live clients
  got the last value (stuck at 18 185 of 20 000 five seconds after the producer finished:
  fails).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench._ca_common import DBR_TIME_DOUBLE, RawCA
from bench.ca import DB_TEXT

from ..conftest import ROOT, wait_for

CLIENT = str(ROOT / "bench" / "_ca_client.py")
P = "FO:"
N_POSTS = 10_000
N_LIVE = 9
N_STALLED_SUBS = 10
# Generous: on 2 shared cores the 9 pyepics clients compete with the IOC for CPU, so even
# softIoc's figures drop (measured: live 0.13-0.25, processing 0.47-0.6; see the module doc).
LIVE_RATE_FLOOR = 0.05       # each live client's rate in run 2 vs the single client's rate
PROC_RATE_FLOOR = 0.25       # processing rate in run 2 vs run 1
READY_TIMEOUT_S = 30.0       # all client subprocesses subscribed
RUN_TIMEOUT_S = 30.0         # the producer reaches N
GRACE_S = 5.0                # after the producer reached N, for the last value to arrive
POLL_S = 0.02


class LiveClients:
    """``n`` pyepics monitor subprocesses on ``pv``, each ending at value ``target``."""

    def __init__(self, n: int, pv: str, target: float, deadline_s: float):
        self.lines: queue.Queue = queue.Queue()
        self.procs = []
        for i in range(n):
            p = subprocess.Popen([sys.executable, CLIENT, pv, repr(target), str(deadline_s)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
            self.procs.append(p)
            threading.Thread(target=self._read, args=(i, p), daemon=True).start()
        self.ready: set[int] = set()
        self.results: dict[int, dict] = {}

    def _read(self, i: int, p: subprocess.Popen) -> None:
        for line in p.stdout:
            self.lines.put((i, line.strip()))
        self.lines.put((i, None))

    def _pump(self, until, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            try:
                i, line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if line == "READY":
                self.ready.add(i)
            elif line and line.startswith("{"):
                self.results[i] = json.loads(line)
            elif line is None and i not in self.results:
                self.results[i] = {"error": "exited without a result"}
        return until()

    def wait_ready(self, timeout_s: float) -> None:
        n = len(self.procs)
        ok = self._pump(lambda: len(self.ready) == n or
                        any("error" in r for r in self.results.values()), timeout_s)
        assert ok and len(self.ready) == n, \
            f"{len(self.ready)}/{n} clients subscribed: {list(self.results.values())[:2]}"

    def finish(self, timeout_s: float) -> list[dict]:
        """Results once every client saw the target, or after ``timeout_s`` (then told to
        stop: those report what they had)."""
        n = len(self.procs)
        if not self._pump(lambda: len(self.results) == n, timeout_s):
            for p in self.procs:
                try:
                    p.stdin.write("stop\n")
                    p.stdin.flush()
                except (OSError, ValueError):
                    pass
            self._pump(lambda: len(self.results) == n, 5.0)
        return [self.results.get(i, {"error": "no result"}) for i in range(n)]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(5)
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass


def produce(ioc, n_live: int, stalled: bool) -> dict:
    """One producer run of N_POSTS posts watched by ``n_live`` pyepics clients (and the stalled
    raw client if ``stalled``); returns the rates and the clients' results."""
    with RawCA("127.0.0.1", ioc.port, name="fanout-ctl") as ctl:
        return _produce(ioc, ctl, n_live, stalled)


def _produce(ioc, ctl: RawCA, n_live: int, stalled: bool) -> dict:
    sid_cnt = ctl.create_channel(P + "CNT")[1]
    sid_n = ctl.create_channel(P + "N")[1]
    start = ctl.get(sid_cnt)
    target = start + N_POSTS
    clients = LiveClients(n_live, P + "CNT", target, RUN_TIMEOUT_S + GRACE_S + 10)
    stall = None
    try:
        clients.wait_ready(READY_TIMEOUT_S)
        if stalled:
            stall = RawCA("127.0.0.1", ioc.port, rcvbuf_bytes=4096, name="stalled")
            sid = stall.create_channel(P + "CNT")[1]
            stall.subscribe(sid, N_STALLED_SUBS, dtype=DBR_TIME_DOUBLE)   # then never reads
        t_trig = time.monotonic()
        ctl.put(sid_n, target)
        t_done = None
        deadline = t_trig + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            if ctl.get(sid_cnt) >= target:
                t_done = time.monotonic()
                break
            time.sleep(POLL_S)
        assert ioc.proc.poll() is None, "IOC died during the run:\n" + ioc.output()[-2000:]
        assert t_done is not None, \
            f"producer did not reach {target} in {RUN_TIMEOUT_S} s (at {ctl.get(sid_cnt)})"
        results = clients.finish(GRACE_S)
    finally:
        clients.close()
        if stall is not None:
            stall.close()
    rates = [r["n"] / (r["last_t"] - t_trig) if r.get("n") else 0.0 for r in results]
    return {"target": target, "proc_rate": N_POSTS / (t_done - t_trig), "rates": rates,
            "results": results}


def _db(tmp_path: Path) -> str:
    db = tmp_path / "fanout.db"
    db.write_text(DB_TEXT)
    return str(db)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", ["ours", pytest.param("softioc", marks=pytest.mark.oracle)])
def test_stalled_client_does_not_hold_back_the_others(server, start_ioc, start_softioc,
                                                     tmp_path):
    start = start_ioc if server == "ours" else start_softioc
    ioc = start("-S", "-m", f"P={P}", "-d", _db(tmp_path), ready_pv=P + "CNT")
    one = produce(ioc, 1, stalled=False)
    assert one["results"][0].get("last_v") == one["target"], one["results"]
    r1, p1 = one["rates"][0], one["proc_rate"]
    fan = produce(ioc, N_LIVE, stalled=True)
    summary = (f"{server}: single client {r1:.0f} upd/s, processing {p1:.0f}/s; with "
               f"{N_LIVE} live + 1 stalled: live rates {[round(r) for r in fan['rates']]}, "
               f"processing {fan['proc_rate']:.0f}/s")
    print(summary)
    lost = [r for r in fan["results"] if r.get("last_v") != fan["target"]]
    assert not lost, f"{len(lost)} live clients without the last value: {lost[:2]}; {summary}"
    assert min(fan["rates"]) >= LIVE_RATE_FLOOR * r1, summary
    assert fan["proc_rate"] >= PROC_RATE_FLOOR * p1, summary
    # alive, and serving once the stalled client has gone
    assert ioc.proc.poll() is None
    with RawCA("127.0.0.1", ioc.port, name="after") as c:
        sid = c.create_channel(P + "CNT")[1]
        wait_for(lambda: c.get(sid) == fan["target"], 10, what="CNT readable after the run")
