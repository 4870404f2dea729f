"""E3631A benchmark: the IOC's refresh period and setpoint latency against the simulator on a pty,
each against its physical lower bound, and the software cost of one SCPI transaction.

    python -m bench.psu          (or: python bench/psu.py)      [--keep-logs]

Set-up (all in this run, loopback CA on random ports, a caRepeater of EPICS base of our own):
three ``e3631a-sim --pty`` processes (real termios on the IOC side, pyserial, 9600 8N2) and three
``psu-timing-ioc -S st.cmd`` processes, one per simulator:

* ``spec``       profile spec,      ``E3631AConfigure(... "busy=spec")``;
* ``realistic``  profile realistic, ``busy=observed`` (the fixed RESULT keys);
* ``nopreempt``  profile realistic, ``busy=observed preempt=0`` (does the Ctrl-C preemption pay?).

Figures:

* ``refresh_s``: the values of ``$(P)REFRESH_S`` (the IOC's own measured period of a full
  refresh cycle) received by a monitor, over every cycle during which that IOC had no setpoint
  in flight. Every ``slow_every`` (10) cycles the IOC also reads MODE and TRACK, which makes that
  cycle longer: the median is the refresh period, the mean includes the slow cycles. The bound
  (bench/_psu_bound.py) is the sum over the 11 queries of query wire time + the profile's
  processing time + reply wire time. ``refresh_ratio = median / bound``; the mean is compared
  with the bound plus the slow group's share.
* ``cmd_latency_ms``: ``$(P)P6V:VOLT`` put with callback (pyepics, ``caput -c`` semantics),
  from the put to the callback, 3.4 and 3.3 alternately (``APPL P6V,3.4`` and ``APPL P6V,3.3``,
  same length), each after a random pause of 0..250 ms while polling runs. Bound: wire time of
  the command + LF + the profile's busy time for it. ``cmd_ratio = p50 / bound``. The IOC's own
  figure (``$(P)CMD_LATENCY_MS``, port queue to taken) is shown next to it: the difference is
  Channel Access and the record.
* ``tx_overhead_us``: bench/_psu_tx.py -- the port thread's CPU time per transaction polling an
  in-process ``sim://`` simulator at profile ideal; the wall time per transaction (which also
  holds the simulator's engine thread), the same through a pty to an out-of-process simulator,
  and where the port thread's time goes (cProfile).

Anchors: psud (reference e3631a.md §11) took 216 ms per one-rail update and 128.6 ms per
SET VOLTAGE (40 ms expected). Not a test: the exit status is 0 whether or not the targets are met
(1 only if the bench itself broke). The last line is ``RESULT psu key=value ...``.
"""
from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid

if __package__ in (None, ""):            # python bench/psu.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _psu_bound as bound                                     # noqa: E402
from bench import _psu_tx as txo                                          # noqa: E402
from bench._psu_common import (NAN, CaSetup, SimProc, log_warnings,       # noqa: E402
                               mean, median, start_ioc)
from bench._common import bench_main, fmt, percentile, ratio                               # noqa: E402

TOTAL_BUDGET_S = 170.0          # the whole run stays under 3 minutes
READY_TIMEOUT_S = 20.0
TX_ROUNDS, TX_WINDOW_S = 3, 1.2  # transaction overhead: median of 3 windows of 1.2 s each
N_CMD = 200                     # realistic, preempt=1 (the fixed keys)
N_CMD_SPEC = 100
N_CMD_NOPREEMPT = 60
GAP_MAX_S = 0.25                # random pause before each setpoint
PUT_TIMEOUT_S = 5.0
CMD_TEXT = "APPL P6V,3.3"       # what the IOC sends for 3.3 (3.4: same length)
VALUES = (3.4, 3.3)
SLOW_EVERY = 10

TARGET_REFRESH_RATIO = 1.05
TARGET_CMD_RATIO = 1.2
TARGET_TX_US = 100.0
TARGET_TX_PER_S = 10000.0
ANCHOR_PSUD_RAIL_MS = 216.0
ANCHOR_PSUD_SET_MS = 128.6
ANCHOR_PSUD_SET_EXPECTED_MS = 40.0

#: name -> (simulator profile, E3631AConfigure options, PV prefix tag)
IOCS = {
    "spec": ("spec", "busy=spec preempt=1", "S"),
    "realistic": ("realistic", "busy=observed preempt=1", "R"),
    "nopreempt": ("realistic", "busy=observed preempt=0", "N"),
}
PVS = ("COMM", "REFRESH_S", "CMD_LATENCY_MS", "P6V:VOLT")


class Ioc:
    """One simulator + IOC pair and what was received from it."""

    def __init__(self, name: str, profile: str, options: str, prefix: str):
        self.name, self.profile, self.options, self.prefix = name, profile, options, prefix
        self.sim: SimProc | None = None
        self.proc = None
        self.chids: dict[str, int] = {}
        self.subs: list = []
        self.refresh: list[tuple[float, float]] = []      # (arrival time.time(), value s)
        self.ioc_latency_ms: list[tuple[float, float]] = []
        self.busy: list[tuple[float, float]] = []         # put activity windows (time.time())
        self.lat_ms: list[float] = []
        self.gap_s: list[float] = []
        self.failed_puts = 0
        self.t_sub = 0.0
        self.error = ""

    def idle_refresh(self) -> list[float]:
        """REFRESH_S values of cycles with no setpoint in flight (margin 50 ms)."""
        out = []
        for t, v in self.refresh:
            if t < self.t_sub + 0.05 or not v or v != v:
                continue
            start = t - v - 0.05
            if any(b0 < t and start < b1 + 0.05 for b0, b1 in self.busy):
                continue
            out.append(v)
        return out


class Bench:
    def __init__(self, keep_logs: bool = False):
        self.keep_logs = keep_logs
        self.t_start = time.monotonic()
        self.logdir = tempfile.mkdtemp(prefix="bpsu", dir="/tmp")   # short pty link paths
        self.ca_setup = CaSetup(len(IOCS), self.logdir)
        token = uuid.uuid4().hex[:6].upper()
        self.iocs = {name: Ioc(name, prof, opts, f"B{token}{tag}:")
                     for name, (prof, opts, tag) in IOCS.items()}
        self.ca = None
        self.notes: list[str] = []
        self.tx: dict = {}
        self.rng = random.Random(20240611)

    def left(self) -> float:
        return TOTAL_BUDGET_S - (time.monotonic() - self.t_start)

    def say(self, text: str) -> None:
        print(text, flush=True)

    # ---------------------------------------------------------------- transaction overhead
    def measure_tx(self) -> None:
        """Before any IOC starts, so the machine is as quiet as it gets."""
        try:
            self.tx["inproc"] = txo.inprocess(TX_ROUNDS, TX_WINDOW_S)
        except Exception as exc:  # noqa: BLE001 - a broken part must not stop the bench
            self.notes.append(f"in-process transaction run failed: {exc!r}")
        sim = None
        try:
            sim = SimProc("sim-ideal", os.path.join(self.logdir, "ideal"), "ideal", self.logdir)
            self.tx["pty"] = txo.pty(sim, TX_ROUNDS, TX_WINDOW_S)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"pty transaction run failed: {exc!r}")
        finally:
            if sim is not None:
                sim.stop()
        try:
            self.tx["profile"] = txo.profile(1.5)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"profiled transaction run failed: {exc!r}")
        try:
            self.tx["simurl_cmd"] = txo.simurl_cmd_ms(8)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"sim:// setpoint run failed: {exc!r}")

    # ---------------------------------------------------------------- processes
    def start(self) -> None:
        self.ca_setup.apply_client_env()
        self.ca_setup.start_repeater()
        self.notes.extend(self.ca_setup.notes)
        for k, ioc in enumerate(self.iocs.values()):
            try:
                ioc.sim = SimProc(f"sim-{ioc.name}", os.path.join(self.logdir, ioc.name),
                                  ioc.profile, self.logdir, seed=k + 1)
            except Exception as exc:  # noqa: BLE001
                ioc.error = f"simulator did not start: {exc}"
                continue
            st = (f'E3631AConfigure("psu1", "{ioc.sim.link}", "baud=9600 stop=2 timeout_ms=500 '
                  f'slow_every={SLOW_EVERY} {ioc.options}")\n'
                  f'dbLoadRecords("db/e3631a.db", "P={ioc.prefix},PORT=psu1")\n'
                  "iocInit\n")
            ioc.proc = start_ioc(f"ioc-{ioc.name}", st, self.ca_setup.server_env(k), self.logdir)

    def connect(self) -> None:
        from epics import ca
        self.ca = ca
        ca.initialize_libca()
        live = [i for i in self.iocs.values() if not i.error]
        for ioc in live:
            ioc.chids = {pv: ca.create_channel(ioc.prefix + pv, connect=False, auto_cb=False)
                         for pv in PVS}
        pending = set(i.name for i in live)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                ioc = self.iocs[name]
                if not ioc.proc.alive():
                    ioc.error = f"IOC exited ({ioc.proc.p.returncode}): {ioc.proc.tail()}"
                    pending.discard(name)
                    continue
                if all(ca.connect_channel(c, timeout=0.3) for c in ioc.chids.values()) and \
                        ca.get(ioc.chids["COMM"], timeout=0.5) == 0:
                    pending.discard(name)
            time.sleep(0.05)
        for name in pending:
            ioc = self.iocs[name]
            ioc.error = f"COMM not OK after {READY_TIMEOUT_S:.0f} s: {ioc.proc.tail()}"
        for ioc in self.iocs.values():
            if not ioc.error:
                self.subscribe(ioc)

    def subscribe(self, ioc: Ioc) -> None:
        ca = self.ca

        def on_refresh(value=None, **_kw):
            ioc.refresh.append((time.time(), float(value)))

        def on_latency(value=None, **_kw):
            ioc.ioc_latency_ms.append((time.time(), float(value)))

        ioc.t_sub = time.time()
        ioc.subs.append(ca.create_subscription(ioc.chids["REFRESH_S"], callback=on_refresh))
        ioc.subs.append(ca.create_subscription(ioc.chids["CMD_LATENCY_MS"],
                                               callback=on_latency))

    # ---------------------------------------------------------------- setpoints
    def run_setpoints(self, ioc: Ioc, n: int, reserve_s: float) -> None:
        """``n`` puts with callback at random moments; stops early to keep ``reserve_s``."""
        if ioc.error:
            return
        ca = self.ca
        chid = ioc.chids["P6V:VOLT"]
        t_begin = time.time()
        last_done = time.perf_counter()
        for k in range(n):
            if self.left() < reserve_s:
                self.notes.append(f"{ioc.name}: setpoints cut at {k}/{n} (time budget)")
                break
            time.sleep(self.rng.uniform(0.0, GAP_MAX_S))
            done = threading.Event()
            box = {}

            def cb(**_kw):
                box["t"] = time.perf_counter()
                done.set()

            t0 = time.perf_counter()
            try:
                ret = ca.put(chid, VALUES[k % 2], wait=True, timeout=PUT_TIMEOUT_S, callback=cb)
            except Exception as exc:  # noqa: BLE001
                ret = -1
                self.notes.append(f"{ioc.name}: put failed: {exc!r}")
            if ret is not None and ret < 0 or not done.wait(0.5):
                ioc.failed_puts += 1
                last_done = time.perf_counter()
                continue
            ioc.lat_ms.append((box["t"] - t0) * 1e3)
            ioc.gap_s.append(t0 - last_done)
            last_done = box["t"]
        ioc.busy.append((t_begin, time.time()))

    # ---------------------------------------------------------------- report
    def report(self) -> None:
        say = self.say
        spec, real, nopre = (self.iocs[n] for n in ("spec", "realistic", "nopreempt"))
        say(f"# logs in {self.logdir}" if self.keep_logs else "# set-up: 3 x (e3631a-sim --pty "
            "+ psu-timing-ioc -S), 9600 8N2; CA on 127.0.0.1 ports "
            + ", ".join(str(p) for p in self.ca_setup.ports))
        for ioc in self.iocs.values():
            if ioc.error:
                say(f"# {ioc.name}: FAILED: {ioc.error}")

        # ---- bounds
        settings = {}
        for ioc in self.iocs.values():
            try:
                settings[ioc.name] = (bound.settings_from_state(ioc.sim.state())
                                      if ioc.sim and not ioc.error else None)
            except Exception as exc:  # noqa: BLE001
                settings[ioc.name] = None
                self.notes.append(f"{ioc.name}: simulator state unavailable: {exc!r}")
        rb = {name: bound.refresh_bound_s(prof, settings.get(name))
              for name, (prof, _, _) in IOCS.items()}
        slow = {p: bound.slow_group_bound_s(p) for p in ("spec", "realistic")}
        cb = {p: bound.cmd_bound_s(p, CMD_TEXT) * 1e3 for p in ("spec", "realistic")}
        say(f"refresh_bound_s spec={rb['spec']:.4f} realistic={rb['realistic']:.4f} "
            f"(11 queries: {', '.join(bound.REFRESH_QUERIES)}; wire 11 bits/char at 9600 + "
            f"the profile's processing time; replies from sim:// at profile ideal)")
        say(f"slow_group_bound_s spec={slow['spec']:.4f} realistic={slow['realistic']:.4f} "
            f"(MODE x3 + TRACK, every {SLOW_EVERY} cycles in the IOC)")

        # ---- refresh
        res: dict[str, float] = {}
        for ioc in (spec, real, nopre):
            vals = ioc.idle_refresh()
            prof = ioc.profile
            med, avg = median(vals), mean(vals)
            amort = rb[ioc.name] + slow[prof] / SLOW_EVERY
            res[f"{ioc.name}_refresh_med"] = med
            res[f"{ioc.name}_refresh_mean"] = avg
            res[f"{ioc.name}_refresh_ratio"] = ratio(med, rb[ioc.name])
            res[f"{ioc.name}_refresh_mean_ratio"] = ratio(avg, amort)
            res[f"{ioc.name}_refresh_n"] = len(vals)
            say(f"refresh_s {ioc.name} ({prof}): median={fmt(med, 4)} mean={fmt(avg, 4)} "
                f"min={fmt(min(vals) if vals else NAN, 4)} max={fmt(max(vals) if vals else NAN, 4)}"
                f" over {len(vals)} idle cycles")
            say(f"refresh_ratio {ioc.name}: median/bound = {fmt(med, 4)}/{rb[ioc.name]:.4f} = "
                f"{fmt(res[f'{ioc.name}_refresh_ratio'], 3)} (the ratio uses the MEDIAN: cycles "
                f"with the slow group are longer); mean/(bound + slow/{SLOW_EVERY}) = "
                f"{fmt(avg, 4)}/{amort:.4f} = {fmt(res[f'{ioc.name}_refresh_mean_ratio'], 3)}")

        # ---- setpoints
        rbw = {p: sum(c.total_s for c in bound.query_costs(
            p, ("APPL? P6V", "STAT:QUES:INST:ISUM1:COND?"))) for p in ("spec", "realistic")}
        say(f"cmd_bound_ms spec={cb['spec']:.1f} realistic={cb['realistic']:.1f} "
            f"({CMD_TEXT!r} + LF on the wire + the profile's busy time)")
        for ioc in (real, spec, nopre):
            lat = ioc.lat_ms
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            inner = [v for t, v in ioc.ioc_latency_ms
                     if any(b0 <= t <= b1 + 0.5 for b0, b1 in ioc.busy)]
            res[f"{ioc.name}_p50"], res[f"{ioc.name}_p99"] = p50, p99
            res[f"{ioc.name}_cmd_ratio"] = ratio(p50, cb[ioc.profile])
            res[f"{ioc.name}_inner_p50"] = percentile(inner, 50)
            say(f"cmd_latency_ms {ioc.name} ({ioc.profile}, {ioc.options.split()[-1]}): "
                f"p50={fmt(p50, 1)} p99={fmt(p99, 1)} min={fmt(min(lat) if lat else NAN, 1)} "
                f"max={fmt(max(lat) if lat else NAN, 1)} n={len(lat)} failed={ioc.failed_puts}; "
                f"IOC's own CMD_LATENCY_MS p50={fmt(percentile(inner, 50), 1)} "
                f"p99={fmt(percentile(inner, 99), 1)}")
            say(f"cmd_ratio {ioc.name}: p50/bound = {fmt(p50, 1)}/{cb[ioc.profile]:.1f} = "
                f"{fmt(res[f'{ioc.name}_cmd_ratio'], 3)}")
            # A put that comes less than the readback time after the previous one finds the
            # IOC reading back what it just wrote (APPL? P6V, then the rail's MODE).
            win = rbw[ioc.profile]
            early = [v for v, g in zip(ioc.lat_ms, ioc.gap_s) if g < win]
            late = [v for v, g in zip(ioc.lat_ms, ioc.gap_s) if g >= win]
            say(f"cmd_latency_ms {ioc.name} by pause since the previous callback: "
                f"< {win * 1e3:.0f} ms (IOC still reading back APPL? P6V + ISUM1:COND?) "
                f"p50={fmt(percentile(early, 50), 1)} n={len(early)}; >= {win * 1e3:.0f} ms "
                f"p50={fmt(percentile(late, 50), 1)} n={len(late)}")
        saved = res["nopreempt_p50"] - res["realistic_p50"]
        say(f"preemption (realistic): p50 {fmt(res['realistic_p50'], 1)} ms with Ctrl-C "
            f"preemption vs {fmt(res['nopreempt_p50'], 1)} ms without (saves {fmt(saved, 1)} ms"
            f"); p99 {fmt(res['realistic_p99'], 1)} vs {fmt(res['nopreempt_p99'], 1)} ms")

        # ---- transaction overhead
        ip, pt = self.tx.get("inproc", {}), self.tx.get("pty", {})
        port_us, wall_us = ip.get("port_cpu_us", NAN), ip.get("wall_us", NAN)
        say(f"tx_overhead_us (in-process sim://, profile ideal, busy=none, no records; median of"
            f" {ip.get('rounds', 0)} windows): port thread CPU {fmt(port_us, 1)} us/tx (windows "
            f"{fmt(ip.get('port_cpu_us_min', NAN), 1)}..{fmt(ip.get('port_cpu_us_max', NAN), 1)};"
            f" the IOC's port+driver+transport, plus the "
            f"simulator's sim:// port class in pyserial's place); simulator engine thread "
            f"{fmt(ip.get('engine_cpu_us', NAN), 1)} us/tx; wall {fmt(wall_us, 1)} us/tx = "
            f"{fmt(ratio(1e6, wall_us))} tx/s with the simulator, "
            f"{fmt(ratio(1e6, port_us))} tx/s for our side alone; n={ip.get('n', 0)}")
        say(f"tx_overhead_us through a pty (e3631a-sim --profile ideal in its own process): our "
            f"port thread CPU {fmt(pt.get('port_cpu_us', NAN), 1)} us/tx (user "
            f"{fmt(pt.get('user_us', NAN), 1)} + kernel {fmt(pt.get('sys_us', NAN), 1)}); "
            f"simulator process {fmt(pt.get('sim_cpu_us', NAN), 1)} us/tx; wall "
            f"{fmt(pt.get('wall_us', NAN), 1)} us/tx = {fmt(ratio(1e6, pt.get('wall_us', NAN)))}"
            f" tx/s; n={pt.get('n', 0)}")
        if "profile" in self.tx:
            n, groups = self.tx["profile"]
            own = dict(groups).get("ioc.psu (port, driver, transport)", NAN)
            say("tx port thread CPU by where it goes (cProfile on the thread's CPU clock, "
                f"{n} tx; locks and built-ins charged to their callers): "
                + ", ".join(f"{g} {s * 100:.0f}%" for g, s in groups if s >= 0.005)
                + f" => ioc.psu's own code ~{fmt(own * port_us, 0)} us/tx of the "
                f"{fmt(port_us, 1)}")
        sc = self.tx.get("simurl_cmd", [])
        res["simurl_p50"] = median(sc)
        say(f"cmd_latency_ms on in-process sim:// (spec, busy=spec, port idle between polls): "
            f"p50={fmt(median(sc), 1)} n={len(sc)} vs bound {cb['spec']:.1f} "
            f"(sim:// flush() waits for the wire like tcdrain on a UART; a pty's does not)")

        # ---- anchors
        say(f"anchor psud: {ANCHOR_PSUD_RAIL_MS:.0f} ms per one-rail update; SET VOLTAGE "
            f"{ANCHOR_PSUD_SET_MS:.1f} ms ({ANCHOR_PSUD_SET_EXPECTED_MS:.0f} ms expected)")
        say(f"ours (realistic): {fmt(res['realistic_refresh_med'] * 1e3)} ms for all 3 rails "
            f"+ output + error queue ({fmt(res['realistic_refresh_med'] * 1e3 / 3)} ms per rail "
            f"incl. a third of OUTP?/SYST:ERR?); SET VOLTAGE (caput -c) p50 "
            f"{fmt(res['realistic_p50'], 1)} ms; spec: {fmt(res['spec_refresh_med'] * 1e3)} ms,"
            f" {fmt(res['spec_p50'], 1)} ms")

        # ---- targets
        def verdict(x, lim, le=True):
            if x != x:
                return "n/a"
            return "met" if (x <= lim if le else x >= lim) else "NOT met"

        for key, name in (("refresh_ratio", "realistic"), ("refresh_ratio", "spec")):
            v = res[f"{name}_{key}"]
            say(f"target {name} refresh_ratio <= {TARGET_REFRESH_RATIO}: {fmt(v, 3)} "
                f"{verdict(v, TARGET_REFRESH_RATIO)}")
        for name in ("realistic", "spec", "nopreempt"):
            v = res[f"{name}_cmd_ratio"]
            say(f"target {name} cmd_ratio <= {TARGET_CMD_RATIO}: {fmt(v, 3)} "
                f"{verdict(v, TARGET_CMD_RATIO)}")
        say(f"target tx_overhead_us <= {TARGET_TX_US:.0f}: {fmt(port_us, 1)} "
            f"{verdict(port_us, TARGET_TX_US)} (port thread CPU); >= {TARGET_TX_PER_S:.0f} tx/s:"
            f" {fmt(ratio(1e6, port_us))} {verdict(ratio(1e6, port_us), TARGET_TX_PER_S, False)}"
            f" for our side, {fmt(ratio(1e6, wall_us))} "
            f"{verdict(ratio(1e6, wall_us), TARGET_TX_PER_S, False)} with the in-process "
            f"simulator")
        self.log_notes()
        for n in self.notes:
            say(f"# note: {n}")
        keys = [
            ("refresh_ratio", fmt(res["realistic_refresh_ratio"], 3)),
            ("cmd_ratio", fmt(res["realistic_cmd_ratio"], 3)),
            ("tx_overhead_us", fmt(port_us, 1)),
            ("refresh_s", fmt(res["realistic_refresh_med"], 4)),
            ("cmd_latency_ms_p50", fmt(res["realistic_p50"], 1)),
            ("spec_refresh_ratio", fmt(res["spec_refresh_ratio"], 3)),
            ("spec_cmd_ratio", fmt(res["spec_cmd_ratio"], 3)),
            ("nopreempt_cmd_latency_ms_p50", fmt(res["nopreempt_p50"], 1)),
            ("nopreempt_cmd_ratio", fmt(res["nopreempt_cmd_ratio"], 3)),
            ("cmd_latency_ms_p99", fmt(res["realistic_p99"], 1)),
            ("nopreempt_cmd_latency_ms_p99", fmt(res["nopreempt_p99"], 1)),
            ("refresh_bound_s", fmt(rb["realistic"], 4)),
            ("refresh_mean_s", fmt(res["realistic_refresh_mean"], 4)),
            ("refresh_mean_ratio", fmt(res["realistic_refresh_mean_ratio"], 3)),
            ("refresh_cycles", str(res["realistic_refresh_n"])),
            ("cmd_bound_ms", fmt(cb["realistic"], 1)),
            ("ioc_cmd_latency_ms_p50", fmt(res["realistic_inner_p50"], 1)),
            ("spec_refresh_s", fmt(res["spec_refresh_med"], 4)),
            ("spec_refresh_bound_s", fmt(rb["spec"], 4)),
            ("spec_cmd_latency_ms_p50", fmt(res["spec_p50"], 1)),
            ("spec_cmd_bound_ms", fmt(cb["spec"], 1)),
            ("tx_wall_us", fmt(wall_us, 1)),
            ("tx_per_s", fmt(ratio(1e6, wall_us))),
            ("tx_sim_us", fmt(ip.get("engine_cpu_us", NAN), 1)),
            ("tx_pty_cpu_us", fmt(pt.get("port_cpu_us", NAN), 1)),
            ("tx_pty_wall_us", fmt(pt.get("wall_us", NAN), 1)),
            ("simurl_cmd_ms_p50", fmt(res["simurl_p50"], 1)),
            ("elapsed_s", fmt(time.monotonic() - self.t_start, 1)),
        ]
        say("RESULT psu " + " ".join(f"{k}={v}" for k, v in keys))

    def log_notes(self) -> None:
        """Warnings and errors the IOCs and simulators logged (informative)."""
        for ioc in self.iocs.values():
            for proc in (ioc.proc, ioc.sim):
                if proc is None:
                    continue
                bad = log_warnings(proc.log_path)
                if bad:
                    self.notes.append(f"{os.path.basename(proc.log_path)}: {len(bad)} "
                                      f"warning/error lines, e.g. {bad[0]}")

    # ---------------------------------------------------------------- main
    def run(self) -> int:
        self.say("# transaction overhead (in process, then through a pty), before the IOCs start")
        self.measure_tx()
        self.say(f"# starting 3 simulators and 3 IOCs ({time.monotonic() - self.t_start:.1f} s)")
        self.start()
        self.connect()
        t_ready = time.monotonic() - self.t_start
        self.say(f"# IOCs ready at {t_ready:.1f} s; setpoints: spec {N_CMD_SPEC}, realistic "
                 f"{N_CMD}, realistic preempt=0 {N_CMD_NOPREEMPT} (the idle IOCs' REFRESH_S "
                 f"monitors run meanwhile)")
        # Each IOC is idle (its refresh measured) while another one takes setpoints.
        self.run_setpoints(self.iocs["spec"], N_CMD_SPEC, reserve_s=110.0)
        self.run_setpoints(self.iocs["realistic"], N_CMD, reserve_s=35.0)
        self.run_setpoints(self.iocs["nopreempt"], N_CMD_NOPREEMPT, reserve_s=8.0)
        self.report()
        return 0

    def close(self) -> None:
        if self.ca is not None:
            try:
                self.ca.finalize_libca(maxtime=2.0)
            except Exception:  # noqa: BLE001
                pass
        for ioc in self.iocs.values():
            if ioc.proc is not None:
                ioc.proc.stop()
            if ioc.sim is not None:
                ioc.sim.stop()
        self.ca_setup.stop()
        if not self.keep_logs:
            shutil.rmtree(self.logdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    return bench_main(Bench, argv, __doc__.split("\n\n")[0], "keep the IOCs' and simulators' logs and st.cmd files")


if __name__ == "__main__":
    sys.exit(main())
