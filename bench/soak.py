"""Server memory under churn: our IOC against EPICS base's softIoc in the same run.

    python -m bench.soak [--subs 200000] [--chans 50000] [--conns 5000] [--pyepics-subs 10000]
                         [--servers ours,softioc[,pysoftioc]] [--ours-cmd "psu-timing-ioc -S"]

Each server (one after the other, each a subprocess on its own random port, loopback only, with
one caRepeater for the run) serves one ao record. A fast raw client (bench/_ca_common.RawCA:
caproto's messages over a plain socket, 20 requests in flight) then churns, phase by phase:

* ``sub``:  N subscriptions (DBR_DOUBLE, DBE_VALUE|DBE_ALARM) created and cleared on one channel,
  20 at a time (20 EVENT_ADD, their 20 initial updates, 20 EVENT_CANCEL, their 20 replies);
* ``chan``: M channels to the record created and cleared, 20 at a time;
* ``conn``: K TCP circuits opened 10 at a time (VERSION/HOST/CLIENT, one channel, one get)
  and closed;
* ``pyepics``: (optional) subscriptions created and cleared one by one with pyepics
  (``ca.create_subscription`` / ``ca.clear_subscription``), for a figure an ordinary client gets;
  libca queues the requests without waiting for replies, so the phase ends with a get (answered
  after everything before it on the circuit).

Before the measured phases a warm-up does a little of each (2 % of it, at least one batch;
1000 connections at least) so that one-off allocations are not counted as growth: softIoc's
RSS grows by ~35 MB over its first ~1000 circuits (it runs two threads per client) and is flat
after that (measured: +4 MB over 2000 more after a 500-circuit warm-up, +0 after 1000). The
server's resident memory (VmRSS) is read before and after each phase once it has settled
(polled until it stays within 128 kB for 1 s, at most 10 s). Growth is scaled to MB (2^20
bytes) per 100 000 subscriptions / channels and kB per 1000 connections; throughput is
pairs (or connections) per second. ``client_cpu`` is the client's CPU time over the phase's wall
time: near 1.0 means the client, not the server, set the pace. Each phase stops at
``--phase-timeout-s`` (the figures are then scaled from what was done, and say so).
Last line: ``RESULT soak sub_mb_per_100k=... chan_mb_per_100k=... conn_kb_per_1k=...
softioc_sub_mb_per_100k=... ... sub_pairs_per_s=... softioc_sub_pairs_per_s=... ratio=...``
(``ratio`` = sub_pairs_per_s / softioc_sub_pairs_per_s).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

if __package__ in (None, ""):            # python bench/soak.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._ca_common import (SERVER_LABEL, CAError, Churn, RawCA, conn_churn,  # noqa: E402
                              server_argv, settled_rss_kb, wait_ca_ready)
from bench._psu_common import CaSetup  # noqa: E402
from bench._common import NAN, Proc, bench_main, fmt, ratio, release_logdir  # noqa: E402

DB_TEXT = 'record(ao, "$(P)REC") {\n    field(PREC, "3")\n}\n'
PREFIX = {"ours": "SO:", "softioc": "SB:", "pysoftioc": "SP:"}
READY_TIMEOUT_S = 30.0
WARMUP_FRACTION = 0.02
WARMUP_MIN = {"conn": 1000}  # softIoc's RSS grows over its first ~1000 circuits, then stays
PHASES = ("sub", "chan", "conn", "pyepics")
UNIT = {"sub": (1e5, 1024.0, "MB per 100k"), "chan": (1e5, 1024.0, "MB per 100k"),
        "conn": (1e3, 1.0, "kB per 1k"), "pyepics": (1e5, 1024.0, "MB per 100k")}
KEY = {"sub": "sub_mb_per_100k", "chan": "chan_mb_per_100k", "conn": "conn_kb_per_1k",
       "pyepics": "pyepics_sub_mb_per_100k"}
RATE_KEY = {"sub": "sub_pairs_per_s", "chan": "chan_pairs_per_s", "conn": "conn_per_s",
            "pyepics": "pyepics_sub_pairs_per_s"}


class Phase:
    """One measured phase on one server: churn result and RSS before/after (kB)."""

    def __init__(self, churn: Churn, rss0_kb: float, rss1_kb: float, settled: bool):
        self.churn = churn
        self.rss0_kb, self.rss1_kb, self.settled = rss0_kb, rss1_kb, settled

    def growth(self, phase: str) -> float:
        """Growth in the phase's unit (MB per 100k or kB per 1k), scaled from the pairs done."""
        per, div, _ = UNIT[phase]
        if not self.churn.pairs:
            return NAN
        return (self.rss1_kb - self.rss0_kb) / div * per / self.churn.pairs


class Bench:
    def __init__(self, keep_logs: bool = False, args=None):
        self.keep_logs = keep_logs
        self.a = args
        self.kinds = args.servers.split(",")
        self.logdir = tempfile.mkdtemp(prefix="bench_soak_")
        self.setup = CaSetup(len(self.kinds), logdir=self.logdir)
        self.server: Proc | None = None
        self.ca = None
        self.res: dict[str, dict[str, Phase]] = {k: {} for k in self.kinds}
        self.errors: dict[str, str] = {}
        self.notes: list[str] = []
        self.t0 = time.monotonic()

    def counts(self) -> dict[str, int]:
        a = self.a
        return {"sub": a.subs, "chan": a.chans, "conn": a.conns, "pyepics": a.pyepics_subs}

    def churn(self, phase: str, kind: str, port: int, n: int, circ: RawCA, sid: int,
              timeout_s: float) -> Churn:
        pv = PREFIX[kind] + "REC"
        if phase == "sub":
            return circ.sub_churn(sid, n, timeout_s)
        if phase == "chan":
            return circ.chan_churn(pv, n, timeout_s)
        if phase == "conn":
            return conn_churn("127.0.0.1", port, pv, n, timeout_s)
        return self.pyepics_churn(pv, n, timeout_s)

    def pyepics_churn(self, pv: str, n: int, timeout_s: float) -> Churn:
        """``n`` pyepics create_subscription + clear_subscription pairs on one channel."""
        ca = self.ca
        chid = ca.create_channel(pv, connect=False, auto_cb=False)
        if not ca.connect_channel(chid, timeout=5.0):
            raise CAError(f"pyepics: {pv} did not connect")

        def cb(**_kw):
            pass

        t0, c0 = time.monotonic(), time.process_time()
        end = t0 + timeout_s
        done = 0
        while done < n and time.monotonic() < end:
            sub = ca.create_subscription(chid, callback=cb)
            ca.clear_subscription(sub[2])
            done += 1
        # libca does not wait for the server: a get, answered after all of them, ends the phase
        ca.get(chid, timeout=30.0)
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        ca.clear_channel(chid)
        ca.poll()
        return Churn(done, n, wall, cpu)

    def measure(self, i: int, kind: str) -> None:
        port = self.setup.ports[i]
        dbfile = os.path.join(self.logdir, "soak.db")
        argv = server_argv(kind, dbfile, PREFIX[kind], self.a.ours_cmd)
        self.server = srv = Proc(kind, argv, self.setup.server_env(i), self.logdir)
        try:
            wait_ca_ready(port, PREFIX[kind] + "REC", READY_TIMEOUT_S, srv.alive)
            counts = self.counts()
            phases = [p for p in PHASES if counts[p] > 0]
            with RawCA("127.0.0.1", port, name="soak") as circ:
                sid = circ.create_channel(PREFIX[kind] + "REC")[1]
                for p in phases:                          # warm-up
                    n = max(WARMUP_MIN.get(p, 20), int(counts[p] * WARMUP_FRACTION))
                    self.churn(p, kind, port, n, circ, sid, self.a.phase_timeout_s)
                for p in phases:
                    rss0, _ = settled_rss_kb(srv.pid)
                    c = self.churn(p, kind, port, counts[p], circ, sid, self.a.phase_timeout_s)
                    rss1, settled = settled_rss_kb(srv.pid)
                    self.res[kind][p] = Phase(c, rss0, rss1, settled)
                    if not c.complete:
                        self.notes.append(f"{kind} {p}: cut at {c.pairs}/{c.wanted} after "
                                          f"{c.wall_s:.0f} s (figures scaled from that)")
                    if not settled:
                        self.notes.append(f"{kind} {p}: RSS still moving 10 s after the phase")
                    print(f"# {kind} {p}: {c.pairs} in {c.wall_s:.1f} s, "
                          f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB", flush=True)
                    if not srv.alive():
                        raise CAError(f"server exited (status {srv.p.returncode})")
        except (CAError, OSError) as exc:
            self.errors[kind] = f"{exc} | {srv.tail(4)}"
        finally:
            srv.stop()
            self.server = None

    def run(self) -> int:
        with open(os.path.join(self.logdir, "soak.db"), "w") as f:
            f.write(DB_TEXT)
        self.setup.apply_client_env()
        self.setup.start_repeater()
        self.notes += self.setup.notes
        if self.a.pyepics_subs > 0:
            from epics import ca
            self.ca = ca
            ca.initialize_libca()
        for i, kind in enumerate(self.kinds):
            self.measure(i, kind)
        self.report()
        return 0

    def report(self) -> None:
        a = self.a
        print(f"# servers: {', '.join(f'{k}={SERVER_LABEL[k]}' for k in self.kinds)}; "
              f"counts: sub={a.subs} chan={a.chans} conn={a.conns} pyepics={a.pyepics_subs}; "
              f"warm-up {WARMUP_FRACTION:.0%} of each first (at least "
              f"{', '.join(f'{v} {k}' for k, v in WARMUP_MIN.items())})", flush=True)
        for k, e in self.errors.items():
            print(f"# SERVER FAILED {k}: {e}", flush=True)
        ref = "softioc" if "softioc" in self.kinds else None
        for p in PHASES:
            if not any(p in self.res[k] for k in self.kinds):
                continue
            _, _, unit = UNIT[p]
            parts = []
            for k in self.kinds:
                ph = self.res[k].get(p)
                if ph is None:
                    parts.append(f"{k}=nan")
                    continue
                c = ph.churn
                parts.append(f"{k}: {fmt(ph.growth(p), 2)} {unit}, {fmt(c.per_s)}/s "
                             f"(RSS {ph.rss0_kb / 1024:.1f}->{ph.rss1_kb / 1024:.1f} MB, "
                             f"client_cpu {fmt(ratio(c.cpu_s, c.wall_s), 2)})")
            if ref and "ours" in self.kinds:
                r = ratio(self.rate("ours", p), self.rate(ref, p))
                parts.append(f"ours/softioc rate={fmt(r, 2)}")
            print(f"{p} churn: " + "; ".join(parts), flush=True)
        for n in self.notes:
            print(f"# note: {n}", flush=True)
        keys: list[tuple[str, str]] = []
        for k in self.kinds:
            pre = "" if k == "ours" else f"{k}_"
            for p in PHASES:
                ph = self.res[k].get(p)
                if ph is not None:
                    keys.append((pre + KEY[p], fmt(ph.growth(p), 2 if p != "conn" else 1)))
        for k in self.kinds:
            pre = "" if k == "ours" else f"{k}_"
            for p in PHASES:
                if p in self.res[k]:
                    keys.append((pre + RATE_KEY[p], fmt(self.rate(k, p))))
        keys.append(("ratio", fmt(ratio(self.rate("ours", "sub"), self.rate("softioc", "sub")),
                                  3)))
        for p in ("chan", "conn", "pyepics"):
            keys.append((f"{p}_ratio", fmt(ratio(self.rate("ours", p),
                                                 self.rate("softioc", p)), 3)))
        keys.append(("elapsed_s", fmt(time.monotonic() - self.t0, 1)))
        print("RESULT soak " + " ".join(f"{k}={v}" for k, v in keys), flush=True)

    def rate(self, kind: str, phase: str) -> float:
        ph = self.res.get(kind, {}).get(phase)
        return ph.churn.per_s if ph is not None else NAN

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.ca is not None:
            try:
                self.ca.finalize_libca(maxtime=2.0)
            except Exception:  # noqa: BLE001
                pass
        self.setup.stop()
        release_logdir(self.logdir, self.keep_logs)


def add_args(ap) -> None:
    ap.add_argument("--subs", type=int, default=200_000, help="subscriptions (default 200000)")
    ap.add_argument("--chans", type=int, default=50_000, help="channels (default 50000)")
    ap.add_argument("--conns", type=int, default=5_000, help="connections (default 5000)")
    ap.add_argument("--pyepics-subs", type=int, default=10_000,
                    help="pyepics subscription pairs (default 10000; 0 = skip)")
    ap.add_argument("--servers", default="ours,softioc",
                    help="comma-separated: ours, softioc, pysoftioc (default ours,softioc)")
    ap.add_argument("--phase-timeout-s", type=float, default=120.0,
                    help="a phase stops after this long (default 120)")
    ap.add_argument("--ours-cmd", default=None,
                    help="command serving a db with softIoc's -m/-d options "
                         "(default: psu-timing-ioc -S)")


def main(argv: list[str] | None = None) -> int:
    return bench_main(Bench, argv, __doc__.split("\n\n")[0],
                      "keep the servers' logs (the directory is printed)", add_args=add_args)


if __name__ == "__main__":
    sys.exit(main())
