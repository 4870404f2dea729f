"""Software cost of one SCPI transaction (bench/psu.py ``tx_overhead_us``).

The port thread (``ioc.psu.port.PsuPort``, the IOC's own code with its E3631A driver and
transport) polls a simulator at profile ``ideal`` (no wire time, no processing time) as fast as
it can, for a few seconds; ``busy=none``. No records are attached (the IOC's record processing is
not in these figures). Three ways, each separating our time from the simulator's:

* ``inprocess``: ``sim://`` in this process. Wall time per transaction includes the simulator's
  engine thread, which shares the GIL. Thread CPU clocks split it: the port thread (our code +
  pyserial's role, played here by the simulator's ``sim://`` port class) and the engine thread
  (the simulated instrument).
* ``pty``: ``e3631a-sim --profile ideal`` in another process, on a pty. This process's port
  thread CPU time is then ours alone (our code + pyserial + the kernel's tty calls); wall time
  includes the round trip through the pty and the simulator process.
* ``profile``: ``inprocess`` again under cProfile with the port thread's CPU clock, the time
  grouped by where it is spent.

Figures are medians over a few back-to-back windows (machine noise only adds). Also here:
``simurl_cmd_ms``, setpoint latency through ``sim://``, whose ``flush()`` waits for the wire as
tcdrain does on a real UART (a pty's returns at once).
"""
from __future__ import annotations

import cProfile
import os
import pstats
import threading
import time

from bench._psu_common import proc_cpu_s


def _thread_cpu_s(th: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(th.ident))


def _tx_count(port) -> int:
    return sum(s.count for s in list(port.stats.values()))


def _start(url: str, port_cls=None):
    from ioc.psu.port import LinkState, PortOptions, PsuPort
    cls = port_cls or PsuPort
    port = cls("bench", url, options=PortOptions(busy="none", timeout_s=0.5))
    port.start()
    port.wait_first_attempt(5.0)
    if port.state != LinkState.OK:
        port.stop()
        raise RuntimeError(f"port on {url} not OK: {port.message}")
    return port


def _windows(sample, rounds: int, window_s: float) -> list[dict]:
    """``rounds`` back-to-back windows: per window, the differences of ``sample()``'s values
    divided by the transactions done in it (``n`` stays a count, ``wall_us`` comes from ``t``).
    """
    out = []
    prev = sample()
    for _ in range(rounds):
        time.sleep(window_s)
        cur = sample()
        n = max(1, cur["n"] - prev["n"])
        w = {k: (cur[k] - prev[k]) / n * 1e6 for k in cur if k not in ("n", "t")}
        w["wall_us"] = (cur["t"] - prev["t"]) / n * 1e6
        w["n"] = n
        out.append(w)
        prev = cur
    return out


def _median_of(windows: list[dict]) -> dict:
    """Per figure the median over the windows (and ``<key>_min``/``_max``, ``n`` summed)."""
    res: dict = {"n": sum(w["n"] for w in windows), "rounds": len(windows)}
    for k in windows[0]:
        if k == "n":
            continue
        vals = sorted(w[k] for w in windows)
        res[k] = vals[len(vals) // 2]
        res[k + "_min"], res[k + "_max"] = vals[0], vals[-1]
    return res


def inprocess(rounds: int = 3, window_s: float = 1.2, warmup_s: float = 0.5) -> dict:
    """Per-transaction figures, median over ``rounds`` windows (machine noise only adds)."""
    import ioc.psu.sim
    name = f"bench-tx-{os.getpid()}"
    port = _start(f"sim://{name}?profile=ideal")
    try:
        engine = [t for t in threading.enumerate() if t.name == "e3631a-engine"][-1]
        time.sleep(warmup_s)

        def sample():
            return {"n": _tx_count(port), "t": time.monotonic(),
                    "port_cpu_us": _thread_cpu_s(port._thread),
                    "engine_cpu_us": _thread_cpu_s(engine),
                    "proc_cpu_us": time.process_time()}
        res = _median_of(_windows(sample, rounds, window_s))
    finally:
        port.stop()
        ioc.psu.sim.close_instance(name)
    res["errors"] = port.comm.total
    return res


def pty(sim, rounds: int = 3, window_s: float = 1.2, warmup_s: float = 0.5) -> dict:
    """``sim``: a running ``SimProc`` at profile ideal. Median over ``rounds`` windows."""
    port = _start(sim.link)
    try:
        tid = port._thread.native_id
        time.sleep(warmup_s)

        def sample():
            u, s = proc_cpu_s(os.getpid(), tid)
            su, ss = proc_cpu_s(sim.pid)
            return {"n": _tx_count(port), "t": time.monotonic(),
                    "port_cpu_us": _thread_cpu_s(port._thread), "user_us": u, "sys_us": s,
                    "sim_cpu_us": su + ss}
        res = _median_of(_windows(sample, rounds, window_s))
    finally:
        port.stop()
    res["errors"] = port.comm.total
    return res


_GROUPS = (("ioc/psu/sim/", "simulator's sim:// port class"),
           ("ioc/psu/", "ioc.psu (port, driver, transport)"),
           ("ioc/", "ioc (time source)"),
           ("/serial/", "pyserial"))
_SHARED = "locks, threading, built-ins"


def _group(filename: str) -> str:
    for key, label in _GROUPS:
        if key in filename:
            return label
    if filename == "~" or filename.endswith("threading.py"):
        return _SHARED
    return "other Python"


def _attribute(stats: dict) -> dict[str, float]:
    """Own time per group; the time of built-ins and ``threading`` (locks, Condition) goes to
    the group of whoever called them, in proportion to the time each caller spent in them."""
    memo: dict = {}

    def share(key, depth=0) -> dict[str, float]:
        """Fractions of ``key``'s time to charge to each group."""
        if key in memo:
            return memo[key]
        g = _group(key[0])
        callers = stats[key][4]
        if g != _SHARED or not callers or depth > 20:
            memo[key] = {g: 1.0}
            return memo[key]
        memo[key] = {g: 1.0}                 # cycle guard
        edges = {c: v[2] for c, v in callers.items() if c in stats}
        total = sum(edges.values())
        out: dict[str, float] = {}
        for c, t in edges.items():
            w = t / total if total else 1.0 / len(edges)
            for cg, f in share(c, depth + 1).items():
                out[cg] = out.get(cg, 0.0) + w * f
        memo[key] = out or {g: 1.0}
        return memo[key]

    totals: dict[str, float] = {}
    for key, (_cc, _nc, tt, _ct, _callers) in stats.items():
        for g, f in share(key).items():
            totals[g] = totals.get(g, 0.0) + tt * f
    return totals


def profile(duration_s: float = 1.5) -> tuple[int, list[tuple[str, float]]]:
    """(transactions, [(group, share of the port thread's CPU time)]) under cProfile with the
    thread's CPU clock; see ``_attribute`` for how shared code is charged."""
    import ioc.psu.sim
    from ioc.psu.port import PsuPort
    prof = cProfile.Profile(time.thread_time)

    class ProfiledPort(PsuPort):
        def _run(self):
            prof.enable()
            try:
                super()._run()
            finally:
                prof.disable()

    name = f"bench-txprof-{os.getpid()}"
    port = _start(f"sim://{name}?profile=ideal", ProfiledPort)
    try:
        time.sleep(duration_s)
    finally:
        port.stop()
        ioc.psu.sim.close_instance(name)
    totals = _attribute(pstats.Stats(prof).stats)
    whole = sum(totals.values()) or 1.0
    return _tx_count(port), sorted(((g, t / whole) for g, t in totals.items()),
                                   key=lambda x: -x[1])


def simurl_cmd_ms(n: int = 8, gap_s: float = 0.3, profile_name: str = "spec") -> list[float]:
    """Setpoint latencies (submit to taken, ms) of a PsuPort on an in-process ``sim://`` at
    ``profile_name``, the port otherwise idle between polls. On ``sim://`` (as on a real UART)
    ``flush()`` waits until the bytes are on the wire (tcdrain); a pty's does not."""
    import random

    import ioc.psu.sim
    from ioc.psu.driver import BUSY_FOR_SIM_PROFILE
    from ioc.psu.port import LinkState, PortOptions, PsuPort
    name = f"bench-cmd-{os.getpid()}"
    port = PsuPort("bench", f"sim://{name}?profile={profile_name}",
                   options=PortOptions(busy=BUSY_FOR_SIM_PROFILE[profile_name]))
    port.start()
    port.wait_first_attempt(5.0)
    out: list[float] = []
    rng = random.Random(7)
    try:
        if port.state != LinkState.OK:
            return out
        for k in range(n):
            done = threading.Event()
            t0 = time.perf_counter()
            port.submit("P6V:VOLT", 3.3 if k % 2 else 3.4, lambda ok, msg, lat: done.set())
            if done.wait(5.0):
                out.append((time.perf_counter() - t0) * 1e3)
            time.sleep(gap_s + rng.uniform(0.0, 0.1))
    finally:
        port.stop()
        ioc.psu.sim.close_instance(name)
    return out
