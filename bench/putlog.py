"""Put log benchmark: what the put log (ioc/putlog, caPutLog) costs a put.

    python -m bench.putlog          (or: python bench/putlog.py)

Three IOCs in this run, each ``psu-timing-ioc -S`` on its own random port (127.0.0.1 only)
with the same .db (one ao) and the same ACF (``RULE(1, WRITE, TRAPWRITE)``: every put is
trapped):

* ``off``  no put log;
* ``on``   the put log on, as the default IOC has it: db/putlog.template (PUTLOG, PUTLOG_HIST,
  I/O Intr) and ``caPutLogFile`` to a file in the bench's log directory, config 0 (caPutLog's
  default: a client's run of puts to one PV is one line per burst);
* ``all``  the same with config 2: every put a line of its own (the worst case).

The client is pyepics in this process (with EPICS base's caRepeater on a random port): put
with callback (``put(wait=True)``), ROUNDS rounds of N_PUT puts to each IOC, which one goes
first alternating, so machine noise hits both alike. Figures: put-callback p50/p99 of each,
``put_p50_ratio = on / off`` (target <= 1.05, not a test: exit status 0 either way, 1 if the
bench itself broke), ``all_p50_ratio = all / off``, and ``lines_ok`` (1 when ``all``'s log
file has one line per put: nothing lost). The last line is ``RESULT putlog key=value ...``.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):            # python bench/putlog.py
    sys.path.insert(0, os.path.dirname(HERE))

from bench._common import (Proc, bench_main, fmt, free_port, percentile, ratio,  # noqa: E402
                           release_logdir, start_repeater)

ROOT = os.path.dirname(HERE)
N_PUT = 200
ROUNDS = 10
TARGET = 1.05
READY_TIMEOUT_S = 15.0
DB = 'record(ao, "$(P)AO") { field(VAL, "0") }\n'
ACF = "ASG(DEFAULT) {\n    RULE(1, READ)\n    RULE(1, WRITE, TRAPWRITE)\n}\n"


class PutLogBench:
    def __init__(self, keep_logs: bool = False):
        self.keep_logs = keep_logs
        self.logdir = tempfile.mkdtemp(prefix="bench_putlog_")
        self.procs: list[Proc] = []
        self.notes: list[str] = []

    def _start(self, taken: set[int]) -> dict[str, int]:
        db = os.path.join(self.logdir, "t.db")
        acf = os.path.join(self.logdir, "t.acf")
        with open(db, "w") as f:
            f.write(DB)
        with open(acf, "w") as f:
            f.write(ACF)
        ports = {}
        for name in ("off", "on", "all"):
            port = free_port(taken)
            taken.add(port)
            ports[name] = port
            st = os.path.join(self.logdir, f"{name}.cmd")
            with open(st, "w") as f:
                f.write(f'asSetFilename("{acf}")\n'
                        f'dbLoadRecords("{db}", "P={name}:")\n')
                if name != "off":
                    log_file = os.path.join(self.logdir, f"{name}.log.txt")
                    f.write(f'dbLoadRecords("{ROOT}/db/putlog.template", "IOC={name}:")\n'
                            f'caPutLogFile("{log_file}", {2 if name == "all" else 0})\n')
                f.write("iocInit\n")
            env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port),
                       EPICS_CAS_INTF_ADDR_LIST="127.0.0.1", EPICS_CA_AUTO_ADDR_LIST="NO")
            self.procs.append(Proc(name, ["psu-timing-ioc", "-S", st], env, self.logdir))
        return ports

    def run(self) -> int:
        taken: set[int] = set()
        rep_port = free_port(taken)
        taken.add(rep_port)
        os.environ.update(EPICS_CA_REPEATER_PORT=str(rep_port), EPICS_CA_AUTO_ADDR_LIST="NO")
        rep = start_repeater(dict(os.environ), self.logdir, rep_port, self.notes)
        if rep is not None:
            self.procs.append(rep)
        ports = self._start(taken)
        os.environ["EPICS_CA_ADDR_LIST"] = " ".join(f"127.0.0.1:{p}" for p in ports.values())
        import epics
        pvs = {n: epics.PV(f"{n}:AO") for n in ports}
        for n, pv in pvs.items():
            if not pv.wait_for_connection(READY_TIMEOUT_S):
                print(f"ABORT: {n}:AO did not connect: "
                      f"{[p.tail() for p in self.procs if p.name == n]}", flush=True)
                return 1
        times: dict[str, list[float]] = {n: [] for n in ports}
        value = 0.0
        for r in range(ROUNDS):
            order = list(ports) if r % 2 else list(ports)[::-1]
            for n in order:
                pv = pvs[n]
                for _ in range(N_PUT):
                    value += 1.0
                    t0 = time.perf_counter()
                    pv.put(value, wait=True, timeout=5.0)
                    times[n].append(time.perf_counter() - t0)
        # every put of "all" must be in its file (config 2: one line per put)
        want = ROUNDS * N_PUT
        deadline = time.monotonic() + 10.0
        n_lines = 0
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.logdir, "all.log.txt")) as f:
                    n_lines = sum(1 for line in f if " all:AO new=" in line)
            except OSError:
                n_lines = 0
            if n_lines >= want:
                break
            time.sleep(0.05)
        p50 = {n: percentile(v, 50) * 1e6 for n, v in times.items()}
        p99 = {n: percentile(v, 99) * 1e6 for n, v in times.items()}
        r50 = ratio(p50["on"], p50["off"])
        a50 = ratio(p50["all"], p50["off"])
        print(f"# {ROUNDS} rounds x {N_PUT} put-callbacks to each IOC, ACF TRAPWRITE on all")
        for n in ports:
            print(f"{n:4s} put_cb p50 {fmt(p50[n])} us  p99 {fmt(p99[n])} us", flush=True)
        verdict = "met" if r50 <= TARGET else "NOT met"
        print(f"target put log on / off, put-callback p50 <= {TARGET}x: {fmt(r50, 3)} {verdict}")
        print(f"every put a line (config 2) / off: {fmt(a50, 3)}; its log file: {n_lines} lines "
              f"for {want} puts")
        for note in self.notes:
            print(f"# note: {note}")
        print(f"RESULT putlog put_cb_us_p50_off={fmt(p50['off'])} "
              f"put_cb_us_p50_on={fmt(p50['on'])} put_p50_ratio={fmt(r50, 3)} "
              f"put_p99_ratio={fmt(ratio(p99['on'], p99['off']), 3)} "
              f"put_cb_us_p50_all={fmt(p50['all'])} all_p50_ratio={fmt(a50, 3)} "
              f"all_p99_ratio={fmt(ratio(p99['all'], p99['off']), 3)} "
              f"lines_ok={int(n_lines == want)}", flush=True)
        return 0

    def close(self) -> None:
        try:
            import epics
            epics.ca.finalize_libca()
        except Exception:       # noqa: BLE001
            pass
        for p in reversed(self.procs):
            p.stop()
        release_logdir(self.logdir, self.keep_logs)


def main(argv: list[str] | None = None) -> int:
    return bench_main(PutLogBench, argv, "put log cost per put", "keep the IOC logs and put.log")


if __name__ == "__main__":
    sys.exit(main())
