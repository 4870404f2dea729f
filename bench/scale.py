"""Scale benchmark: one IOC with N = 1, 10, 50 simulated E3631A ports.

    python -m bench.scale          (or: python bench/scale.py)      [--keep-logs]

For each N, one ``psu-timing-ioc -S`` process (bench/_psu_ioc.py: ``ioc.main:main`` with its OS
threads named, nothing else changed) runs a generated st.cmd with N times::

    E3631AConfigure("psu<i>", "sim://", "profile=spec busy=spec")
    dbLoadRecords("db/e3631a.db", "P=S<N>:PSU<i>:,PORT=psu<i>")

(in-process simulators at profile spec; the ``S<N>:`` qualifier keeps the three IOCs' PV names
apart for the one CA client). Figures per N:

* ``start_s``: from just before the process is spawned until every port's ``$(P)COMM`` is
  connected and reads OK (a pyepics monitor on each). Those channels are created when the IOC
  prints ``iocRun:`` (its CA server is up): a libca client that has been searching since before
  the server existed backs its searches off and connects up to ~1.5 s later whatever the server
  does; that client is measured too (``$(P)IDN`` of every port, searched from the spawn on).
* ``rss_mb``: VmRSS from /proc/<pid>/status at the end of the window (and VmHWM, the peak).
* ``cpu_cores``: utime+stime from /proc/<pid>/stat over a measurement window after start-up,
  divided by the window; per port; and split by OS thread name: port threads (``psu:*``, the
  IOC's port/driver/transport plus the simulator's ``sim://`` port class they call), the
  simulators' engine threads (``e3631a-engine``: the simulated instruments, not the IOC's cost),
  and the rest (CA server, record processing, ...).
* ``refresh_ratio``: per port the median of its ``$(P)REFRESH_S`` monitor updates in the window
  over the spec refresh bound (bench/_psu_bound.py); the worst port is reported.

Targets (bench.md §5): 50 ports start in <= 5 s, use <= 0.5 core, and every port keeps
refresh_ratio <= 1.05. Not a test: exit status 0 whatever the figures. Last line:
``RESULT scale ports=50 start_s=... cpu_cores=... worst_refresh_ratio=...``.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):            # python bench/scale.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _psu_bound as bound                                      # noqa: E402
from bench._psu_common import (CLK_TCK, NAN, ROOT, CaSetup, log_warnings,  # noqa: E402
                               mean, median, proc_cpu_s, proc_rss_kb)
from bench._common import Proc, bench_main, fmt, ratio                                      # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOTAL_BUDGET_S = 170.0
SIZES = (1, 10, 50)
WINDOW_S = {1: 12.0, 10: 15.0, 50: 20.0}     # CPU and refresh window after start-up
SUB_S = 4.0                                  # CPU also sampled over sub-windows this long
SETTLE_S = 1.0                               # after start-up, before the window opens
START_TIMEOUT_S = 40.0
OPTIONS = "profile=spec busy=spec"

TARGET_START_S = 5.0
TARGET_CORES = 0.5
TARGET_RATIO = 1.05


def vm_kb(pid: int, key: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return NAN


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user+system) per thread group, from /proc/<pid>/task/*."""
    out = {"port": 0.0, "sim": 0.0, "other": 0.0}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue          # the thread ended
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        group = ("port" if comm.startswith("psu:") else
                 "sim" if comm.startswith("e3631a") else "other")
        out[group] += cpu
    return out


def stcmd(n: int) -> str:
    lines = [f'cd "{ROOT}"']
    for i in range(1, n + 1):
        lines.append(f'E3631AConfigure("psu{i}", "sim://", "{OPTIONS}")')
        lines.append(f'dbLoadRecords("db/e3631a.db", "P=S{n}:PSU{i}:,PORT=psu{i}")')
    lines.append("iocInit")
    return "\n".join(lines) + "\n"


class Run:
    """One IOC with ``n`` ports: start-up, then the measurement window."""

    def __init__(self, n: int, bench: "Bench", k: int):
        self.n = n
        self.bench = bench
        self.k = k
        self.res: dict[str, float] = {}
        self.notes: list[str] = []
        self.pvs: list = []
        self.ok_at: dict[int, float] = {}
        self.conn_at: dict[int, float] = {}
        self.refresh: dict[int, list[tuple[float, float]]] = {i: [] for i in range(1, n + 1)}
        self.lock = threading.Lock()
        self.proc: Proc | None = None

    def prefix(self, i: int) -> str:
        return f"S{self.n}:PSU{i}:"

    def run(self) -> None:
        import epics
        b = self.bench
        path = os.path.join(b.logdir, f"scale{self.n}.cmd")
        with open(path, "w") as f:
            f.write(stcmd(self.n))
        cmd = [sys.executable, os.path.join(HERE, "_psu_ioc.py"), "-S", path]
        t0 = time.monotonic()
        self.proc = Proc(f"ioc-{self.n}", cmd, b.ca_setup.server_env(self.k), b.logdir)
        self.t0 = t0

        # A client searching since before the process exists (the IDN of every port): libca
        # backs its searches off, so it connects up to ~1.5 s after the server is up.
        self.early_at: dict[int, float] = {}
        for i in range(1, self.n + 1):
            def on_early(pvname=None, conn=None, i=i, **_kw):
                if conn:
                    with self.lock:
                        self.early_at.setdefault(i, time.monotonic())
            self.pvs.append(epics.PV(self.prefix(i) + "IDN", connection_callback=on_early,
                                     auto_monitor=False))
        # The IOC prints "iocRun: ..." once its CA server is up; fresh channels searched from
        # then on measure the IOC, not the client's search back-off.
        deadline = t0 + START_TIMEOUT_S
        t_run = NAN
        while time.monotonic() < deadline:
            if "iocRun:" in self.proc.log_text():
                t_run = time.monotonic()
                break
            if not self.proc.alive():
                self.notes.append(f"IOC exited ({self.proc.p.returncode}): {self.proc.tail()}")
                return
            time.sleep(0.01)
        self.res["iocrun_s"] = t_run - t0
        for i in range(1, self.n + 1):
            def on_comm(value=None, i=i, **_kw):
                if value == 0:
                    with self.lock:
                        self.ok_at.setdefault(i, time.monotonic())

            def on_conn(pvname=None, conn=None, i=i, **_kw):
                if conn:
                    with self.lock:
                        self.conn_at.setdefault(i, time.monotonic())

            def on_refresh(value=None, i=i, **_kw):
                with self.lock:
                    self.refresh[i].append((time.monotonic(), float(value)))

            self.pvs.append(epics.PV(self.prefix(i) + "COMM", callback=on_comm,
                                     connection_callback=on_conn, auto_monitor=True))
            self.pvs.append(epics.PV(self.prefix(i) + "REFRESH_S", callback=on_refresh,
                                     auto_monitor=True))
        while time.monotonic() < deadline:
            with self.lock:
                done = len(self.ok_at) == self.n and len(self.conn_at) == self.n
            if done:
                break
            if not self.proc.alive():
                self.notes.append(f"IOC exited ({self.proc.p.returncode}): {self.proc.tail()}")
                return
            time.sleep(0.005)
        with self.lock:
            ok, conn = dict(self.ok_at), dict(self.conn_at)
        if len(ok) < self.n or len(conn) < self.n:
            self.notes.append(f"only {len(ok)}/{self.n} ports OK and {len(conn)}/{self.n} "
                              f"connected after {START_TIMEOUT_S:.0f} s: {self.proc.tail(3)}")
        t_ready = max(list(ok.values()) + list(conn.values()), default=NAN)
        self.res["start_s"] = t_ready - t0 if len(ok) == self.n else NAN
        self.res["first_conn_s"] = min(conn.values(), default=NAN) - t0
        self.res["last_ok_s"] = max(ok.values(), default=NAN) - t0
        self.res["ports_ok"] = len(ok)

        # ---- measurement window
        time.sleep(SETTLE_S)
        window = min(WINDOW_S[self.n], max(3.0, b.left() - 25.0))
        pid = self.proc.pid
        w0 = time.monotonic()
        u0, s0 = proc_cpu_s(pid)
        g0 = thread_cpu(pid)
        subs, t_prev, c_prev = [], w0, u0 + s0
        while time.monotonic() < w0 + window:
            time.sleep(min(SUB_S, max(0.0, w0 + window - time.monotonic())))
            t, (u, sy) = time.monotonic(), proc_cpu_s(pid)
            subs.append(((u + sy) - c_prev) / (t - t_prev))
            t_prev, c_prev = t, u + sy
        w1 = time.monotonic()
        u1, s1 = proc_cpu_s(pid)
        g1 = thread_cpu(pid)
        dt = w1 - w0
        self.res["window_s"] = dt
        self.res["cpu_cores"] = ((u1 + s1) - (u0 + s0)) / dt
        self.res["user_cores"] = (u1 - u0) / dt
        self.res["sys_cores"] = (s1 - s0) / dt
        self.res["sub_min"], self.res["sub_max"] = min(subs, default=NAN), max(subs, default=NAN)
        for g in g0:
            self.res[f"{g}_cores"] = (g1[g] - g0[g]) / dt
        self.res["rss_mb"] = proc_rss_kb(pid) / 1024
        self.res["hwm_mb"] = vm_kb(pid, "VmHWM") / 1024
        self.res["threads"] = len(os.listdir(f"/proc/{pid}/task")) if self.proc.alive() else NAN

        with self.lock:
            early = dict(self.early_at)
        self.res["early_client_s"] = (max(early.values()) - t0 if len(early) == self.n
                                      else NAN)

        # ---- refresh per port (updates inside the window)
        b_s = bound.refresh_bound_s("spec")
        ratios, cycles, meds = [], [], []
        with self.lock:
            per_port = {i: [v for t, v in r if w0 <= t <= w1 and v == v and v > 0]
                        for i, r in self.refresh.items()}
        for i, vals in per_port.items():
            cycles.append(len(vals))
            if vals:
                meds.append(median(vals))
                ratios.append(median(vals) / b_s)
        self.res["bound_s"] = b_s
        self.res["worst_ratio"] = max(ratios) if len(ratios) == self.n else NAN
        self.res["median_ratio"] = median(ratios)
        self.res["best_ratio"] = min(ratios, default=NAN)
        self.res["worst_refresh_s"] = max(meds, default=NAN)
        self.res["min_cycles"] = min(cycles, default=0)
        self.res["mean_cycles"] = mean(cycles)
        self.res["ports_measured"] = len(ratios)
        # transactions/s: 11 queries per cycle + the slow group's 4 every 10th cycle
        tx_per_s = sum(len(v) for v in per_port.values()) * (11 + 0.4) / dt
        self.res["tx_per_s"] = tx_per_s

    def stop(self) -> None:
        for pv in self.pvs:
            try:
                pv.clear_callbacks()
                pv.disconnect()
            except Exception:  # noqa: BLE001
                pass
        if self.proc is not None:
            t = time.monotonic()
            self.proc.stop()
            self.res["stop_s"] = time.monotonic() - t
            bad = log_warnings(self.proc.log_path)
            if bad:
                self.notes.append(f"IOC log: {len(bad)} warning/error lines, e.g. {bad[0]}")


class Bench:
    def __init__(self, keep_logs: bool = False):
        self.keep_logs = keep_logs
        self.t_start = time.monotonic()
        self.logdir = tempfile.mkdtemp(prefix="bscale", dir="/tmp")
        self.ca_setup = CaSetup(len(SIZES), self.logdir)
        self.runs: list[Run] = []

    def left(self) -> float:
        return TOTAL_BUDGET_S - (time.monotonic() - self.t_start)

    def run(self) -> int:
        self.ca_setup.apply_client_env()
        self.ca_setup.start_repeater()
        import epics.ca
        epics.ca.initialize_libca()
        for k, n in enumerate(SIZES):
            if self.left() < 30:
                print(f"# N={n} skipped: time budget", flush=True)
                continue
            r = Run(n, self, k)
            self.runs.append(r)
            try:
                r.run()
            finally:
                r.stop()
            self.line(r)
        self.report()
        return 0

    def line(self, r: Run) -> None:
        x = r.res
        n = r.n
        print(f"N={n}: start_s={fmt(x.get('start_s', NAN), 2)} (iocRun printed at "
              f"{fmt(x.get('iocrun_s', NAN), 2)}, first channel "
              f"{fmt(x.get('first_conn_s', NAN), 2)}, last port OK "
              f"{fmt(x.get('last_ok_s', NAN), 2)}, {fmt(x.get('ports_ok', 0))}/{n} OK; a "
              f"client searching since before the start has all IDN at "
              f"{fmt(x.get('early_client_s', NAN), 2)}) "
              f"rss_mb={fmt(x.get('rss_mb', NAN), 1)} "
              f"(peak {fmt(x.get('hwm_mb', NAN), 1)}, threads {fmt(x.get('threads', NAN))})",
              flush=True)
        print(f"N={n}: cpu_cores={fmt(x.get('cpu_cores', NAN), 3)} (user "
              f"{fmt(x.get('user_cores', NAN), 3)} + sys {fmt(x.get('sys_cores', NAN), 3)}) over "
              f"{fmt(x.get('window_s', NAN), 1)} s ({SUB_S:.0f}-s sub-windows "
              f"{fmt(x.get('sub_min', NAN), 3)}..{fmt(x.get('sub_max', NAN), 3)}) = "
              f"{fmt(ratio(x.get('cpu_cores', NAN), n), 4)} "
              f"per port; by thread: port threads {fmt(x.get('port_cores', NAN), 3)}, simulator "
              f"engines {fmt(x.get('sim_cores', NAN), 3)}, other (CA, records) "
              f"{fmt(x.get('other_cores', NAN), 3)}; IOC without the simulator engines "
              f"{fmt(x.get('cpu_cores', NAN) - x.get('sim_cores', NAN), 3)}; "
              f"~{fmt(x.get('tx_per_s', NAN))} SCPI tx/s", flush=True)
        print(f"N={n}: refresh_ratio worst={fmt(x.get('worst_ratio', NAN), 3)} median="
              f"{fmt(x.get('median_ratio', NAN), 3)} best={fmt(x.get('best_ratio', NAN), 3)} "
              f"(worst port median REFRESH_S {fmt(x.get('worst_refresh_s', NAN), 4)} s vs bound "
              f"{fmt(x.get('bound_s', NAN), 4)} s; {fmt(x.get('min_cycles', 0))}.."
              f"{fmt(x.get('mean_cycles', NAN), 1)} cycles per port (min..mean), "
              f"{fmt(x.get('ports_measured', 0))}/{n} ports measured); stop took "
              f"{fmt(x.get('stop_s', NAN), 2)} s", flush=True)
        for note in r.notes:
            print(f"# note N={n}: {note}", flush=True)

    def report(self) -> None:
        by_n = {r.n: r.res for r in self.runs}
        big = by_n.get(50, {})
        one = by_n.get(1, {})

        def verdict(v, lim):
            return "n/a" if v != v else ("met" if v <= lim else "NOT met")

        start, cores, worst = (big.get("start_s", NAN), big.get("cpu_cores", NAN),
                               big.get("worst_ratio", NAN))
        print(f"target 50 ports start_s <= {TARGET_START_S:.0f}: {fmt(start, 2)} "
              f"{verdict(start, TARGET_START_S)}", flush=True)
        print(f"target 50 ports cpu_cores <= {TARGET_CORES}: {fmt(cores, 3)} "
              f"{verdict(cores, TARGET_CORES)} (in-process simulators included; without their "
              f"engine threads {fmt(cores - big.get('sim_cores', NAN), 3)})", flush=True)
        print(f"target every port refresh_ratio <= {TARGET_RATIO}: worst {fmt(worst, 3)} "
              f"{verdict(worst, TARGET_RATIO)}", flush=True)
        keys = [("ports", "50"), ("start_s", fmt(start, 2)), ("cpu_cores", fmt(cores, 3)),
                ("worst_refresh_ratio", fmt(worst, 3)),
                ("rss_mb", fmt(big.get("rss_mb", NAN), 1)),
                ("cpu_per_port", fmt(ratio(cores, 50), 4)),
                ("ioc_cores_wo_sim", fmt(cores - big.get("sim_cores", NAN), 3)),
                ("sim_cores", fmt(big.get("sim_cores", NAN), 3)),
                ("median_refresh_ratio", fmt(big.get("median_ratio", NAN), 3)),
                ("iocrun_s", fmt(big.get("iocrun_s", NAN), 2)),
                ("start_s_early_client", fmt(big.get("early_client_s", NAN), 2))]
        for n in (1, 10):
            x = by_n.get(n, {})
            keys += [(f"start_s_{n}", fmt(x.get("start_s", NAN), 2)),
                     (f"cpu_cores_{n}", fmt(x.get("cpu_cores", NAN), 3)),
                     (f"rss_mb_{n}", fmt(x.get("rss_mb", NAN), 1)),
                     (f"worst_refresh_ratio_{n}", fmt(x.get("worst_ratio", NAN), 3))]
        if one and big:
            keys.append(("rss_mb_per_port", fmt((big.get("rss_mb", NAN) - one.get("rss_mb", NAN))
                                                / 49, 2)))
        keys.append(("elapsed_s", fmt(time.monotonic() - self.t_start, 1)))
        print("RESULT scale " + " ".join(f"{k}={v}" for k, v in keys), flush=True)

    def close(self) -> None:
        for r in self.runs:
            if r.proc is not None and r.proc.alive():
                r.proc.stop()
        try:
            import epics.ca
            epics.ca.finalize_libca(maxtime=2.0)
        except Exception:  # noqa: BLE001
            pass
        self.ca_setup.stop()
        if self.keep_logs:
            print(f"# logs kept in {self.logdir}", flush=True)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    return bench_main(Bench, argv, __doc__.split("\n\n")[0], "keep the IOC logs and the generated st.cmd files")


if __name__ == "__main__":
    sys.exit(main())
