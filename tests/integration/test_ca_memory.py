"""Resident memory of our IOC under churn: what a client creates and clears must be freed.

A raw pipelined client (bench/_ca_common.RawCA: caproto's messages over a plain socket, 20
requests in flight) creates and clears N_SUBS subscriptions on one channel, N_CHANS channels,
and opens and closes N_CONNS TCP circuits (handshake, one channel, one get, 10 at a time). The
IOC's VmRSS is read before and after each, once it has settled (polled until it stays within
128 kB for 1 s, at most 10 s), after a warm-up of 2 % (1000 circuits for the connection phase)
so that one-off allocations are not counted as growth. Each phase runs against a freshly
started IOC.

Reference figures (shared 2-core machine, same client and counts, 2026-12-03):

* EPICS base 7.0.8 softIoc: subs +0.0 MB (54 000 pairs/s), channels +0.0 MB (46 000/s),
  connections +0.0 MB after a 1000-circuit warm-up (1300/s; with a 40-circuit warm-up +6.3 MB:
  its RSS grows by ~35 MB over its first ~1000 circuits and is flat after that);
* today's server (git 502446e, caproto 1.3.0): subs +260.9 MB (1.3 kB per cleared
  subscription, 4200 pairs/s: fails), channels +0.0 MB (4200/s), connections +0.4 MB (1350/s).

The bounds are the new server's: a few MB, far below today's growth.
"""
from __future__ import annotations

import pytest

from bench._ca_common import RawCA, conn_churn, settled_rss_kb

N_SUBS = 200_000
N_CHANS = 20_000
N_CONNS = 2_000
MAX_GROWTH_MB = {"subs": 8.0, "chans": 4.0, "conns": 4.0}
WARMUP = 0.02
WARMUP_MIN = {"conns": 1000}  # softIoc's RSS grows over its first ~1000 circuits, then stays
CHURN_TIMEOUT_S = 100.0     # a churn that has not finished by then fails (too slow)
P = "MEM:"
PV = P + "REC"
DB = 'record(ao, "$(P)REC") {\n    field(PREC, "3")\n}\n'


@pytest.fixture
def ioc(start_ioc, tmp_path):
    db = tmp_path / "mem.db"
    db.write_text(DB)
    return start_ioc("-S", "-m", f"P={P}", "-d", str(db), ready_pv=PV)


def churn(kind: str, ioc, circ: RawCA, sid: int, n: int):
    if kind == "subs":
        return circ.sub_churn(sid, n, CHURN_TIMEOUT_S)
    if kind == "chans":
        return circ.chan_churn(PV, n, CHURN_TIMEOUT_S)
    return conn_churn("127.0.0.1", ioc.port, PV, n, CHURN_TIMEOUT_S)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind,n", [("subs", N_SUBS), ("chans", N_CHANS), ("conns", N_CONNS)])
def test_churn_does_not_grow_memory(ioc, kind, n):
    pid = ioc.proc.pid
    with RawCA("127.0.0.1", ioc.port, name="memtest") as circ:
        sid = circ.create_channel(PV)[1]
        churn(kind, ioc, circ, sid, max(WARMUP_MIN.get(kind, 20), int(n * WARMUP)))
        rss0, _ = settled_rss_kb(pid)
        done = churn(kind, ioc, circ, sid, n)
        rss1, settled = settled_rss_kb(pid)
        assert ioc.proc.poll() is None, "IOC died:\n" + ioc.output()[-2000:]
        assert circ.get(sid) == 0.0            # still serving this circuit
    growth_mb = (rss1 - rss0) / 1024
    summary = (f"{kind}: {done.pairs}/{n} in {done.wall_s:.1f} s ({done.per_s:.0f}/s), "
               f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB (+{growth_mb:.1f} MB"
               f"{'' if settled else ', still moving'})")
    print(summary)
    assert done.complete, f"churn did not finish within {CHURN_TIMEOUT_S:.0f} s: {summary}"
    assert growth_mb <= MAX_GROWTH_MB[kind], summary
