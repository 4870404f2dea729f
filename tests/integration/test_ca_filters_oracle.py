"""Channel filters over CA: the same database in psu-timing-ioc and in EPICS base's softIoc 7.0.8,
the same filtered channel names monitored with the real camonitor, the same puts and dbState
changes (typed into each IOC's shell on stdin): the value streams must be equal.

Covered: ``dbnd`` (abs, rel, d/m, alarm updates passing), ``dec``, ``arr`` and the ``[s:i:e]``
shorthand on a waveform whose length changes, ``$`` long strings with sub-arrays, ``ts`` (plain:
the time of the post, on a record that never processed; ``str`` and ``num`` value modes),
``sync`` in all six modes driven by ``dbStateSet``/``dbStateClear``, chains of several filters;
gets through filters (caget -S), the served type/count (cainfo), names that must fail.

Monitor set A uses camonitor's default mask; set B (the sync channels) adds DBE_PROPERTY so that
every channel's initial update passes sync (base passes property updates), which tells the test
the channel is subscribed. Time stamps are compared only as "set"/"<undefined>", except that the
plain ``ts`` channel's must be the current time. Steps are synchronised by polling (dbStateShow
output, camonitor output) with deadlines.

``FILTERS_ORACLE_SELF=1`` runs softIoc on both sides (validates this harness).
"""
from __future__ import annotations

import datetime
import os
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import caput, epics_bin, wait_for

pytestmark = pytest.mark.oracle

DB_TEXT = """\
record(ao, "F:ao") { field(PREC, "2") }
record(waveform, "F:wf") { field(FTVL, "DOUBLE") field(NELM, "10") }
record(stringin, "F:si") { field(VAL, "hello world") }
record(ai, "F:never") { }
record(ao, "F:end") { }
"""

MON_A = [
    "F:ao", 'F:ao.{"dbnd":{"abs":1.5}}', "F:ao.{dbnd:{rel:20}}",
    'F:ao.{"dbnd":{"d":0.5,"m":"abs"}}',
    'F:ao.{"dec":{"n":3}}', 'F:ao.{"dbnd":{"d":1},"dec":{"n":2}}',
    "F:wf", "F:wf.[1:3]", "F:wf.[-2:-1]", "F:wf.[::2]", 'F:wf.{"arr":{"s":1,"i":2,"e":-1}}',
    'F:wf.[1:8]{"arr":{"s":1}}', 'F:wf.{"ts":{},"arr":{"s":-1}}',
    "F:si.$", "F:si.$[0:4]", "F:si.$[-3:-1]", "F:si.VAL$[2:]",
    "F:never", 'F:never.{"ts":{}}', 'F:never.{"ts":{"str":"epics"}}',
    'F:never.{"ts":{"num":"sec"}}', "F:end",
]
SYNC_MODES = ("while", "unless", "first", "after", "before", "last")
MON_B = [f'F:ao.{{"sync":{{"{m}":"red"}}}}' for m in SYNC_MODES] + [
    'F:ao.{sync:{m:"while",s:"red"},"dbnd":{"d":1}}', 'F:ao.{"dec":{"n":2}}', "F:end"]
TS_PLAIN = 'F:never.{"ts":{}}'

GETS = ['F:ao.{"dbnd":{"abs":1.5}}', "F:wf.[1:3]", "F:si.$[0:4]", "F:si.$[-3:-1]",
        'F:never.{"ts":{"str":"epics"}}', 'F:ao.{"sync":{"while":"red"}}', 'F:ao.{"dec":{"n":3}}',
        'F:ao.{"dbnd":{"d":1},"ts":{"num":"dbl"}}']
INFO = ['F:ao.{"ts":{"num":"sec"}}', 'F:ao.{"ts":{"num":"ts"}}', 'F:ao.{"ts":{"str":"iso"}}',
        "F:wf.[1:3]", "F:wf.[5:2]", "F:si.$", 'F:ao.{"arr":{"s":1}}']
BAD = ['F:ao.{"nosuch":{}}', "F:ao.VAL{", 'F:ao.{"sync":{"m":"while","s":"blue"}}', "F:ao.VAL$",
       "F:wf.[1:2", 'F:ao.{"dec":{"n":0}}', 'F:ao.{"ts":{"num":"bogus"}}']

# (what, argument): puts to F:ao unless noted; ("set"/"clear", None) changes state "red"
STEPS = ([("ao", v) for v in ("1", "1.2", "2", "2.4", "3.1", "0", "-5", "-5.5", "10")]
         + [("clear", None)] + [("ao", v) for v in ("11", "12", "13")]
         + [("set", None)] + [("ao", v) for v in ("14", "15", "16")]
         + [("clear", None)] + [("ao", v) for v in ("17", "18", "19")]
         + [("set", None), ("ao", "20"), ("clear", None), ("ao", "21")]
         + [("wf", "5 1 2 3 4 5"), ("wf", "3 7 8 9"), ("wf", "10 0 1 2 3 4 5 6 7 8 9")]
         + [("si", "abcdef"), ("si", "a longer string, 30 characters")])

DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
READY_S = 20.0
STEP_S = 10.0


def _env(port: int) -> dict:
    return dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}")


class Monitor:
    """The real camonitor on several channels, its output in a file."""

    def __init__(self, names: list[str], port: int, path: Path, *opts: str):
        self.names = names
        self.path = path
        self.out = open(path, "w")
        self.proc = subprocess.Popen([str(epics_bin() / "camonitor"), *opts, *names],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=_env(port),
                                     start_new_session=True)

    def lines(self) -> dict[str, list[str]]:
        """Per channel, its update lines without the name (white space collapsed)."""
        got: dict[str, list[str]] = {n: [] for n in self.names}
        for line in self.path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            name = line.split()[0]
            got.setdefault(name, []).append(" ".join(line[len(name):].split()))
        return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def _shell(ioc, command: str, expect: str) -> None:
    """Type ``command`` into the IOC's shell, then ``dbStateShow red``; wait for ``expect``."""
    before = len(re.findall(r"\b(?:TRUE|FALSE)\b", ioc.output()))
    ioc.proc.stdin.write(f"{command}\ndbStateShow red\n")
    ioc.proc.stdin.flush()

    def done():
        seen = re.findall(r"\b(?:TRUE|FALSE)\b", ioc.output())
        return len(seen) > before and seen[-1] == expect
    wait_for(done, STEP_S, what=f"{command!r} done (dbStateShow red = {expect})")


def _caget(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(epics_bin() / "caget"), "-w", "2", *args], capture_output=True,
                          text=True, env=_env(port), timeout=30)


def run_scenario(ioc, tmp: Path) -> dict:
    port = ioc.port
    _shell(ioc, "dbStateCreate red", "FALSE")
    mon_a = Monitor(MON_A, port, tmp / "a.txt", "-S")
    mon_b = Monitor(MON_B, port, tmp / "b.txt", "-m", "vap")
    try:
        for mon in (mon_a, mon_b):
            wait_for(lambda: all(mon.lines()[n] for n in mon.names), READY_S,
                     what=f"initial updates of {mon.path.name}")
        for what, arg in STEPS:
            if what in ("set", "clear"):
                _shell(ioc, f"dbState{what.capitalize()} red", "TRUE" if what == "set" else "FALSE")
                continue
            pv = {"ao": "F:ao", "wf": "F:wf", "si": "F:si"}[what]
            args = ["-a", pv, *arg.split()] if what == "wf" else [pv, arg]
            r = caput(*args, port=port)
            assert r.returncode == 0, r.stdout + r.stderr
        r = caput("F:end", "1", port=port)
        assert r.returncode == 0, r.stdout + r.stderr
        for mon in (mon_a, mon_b):
            wait_for(lambda: len(mon.lines()["F:end"]) >= 2, STEP_S, what="the end marker")
    finally:
        mon_a.stop()
        mon_b.stop()
    streams = {**mon_a.lines(), **mon_b.lines()}
    now = datetime.datetime.now()
    for line in streams[TS_PLAIN]:                 # ts: the time of the post, i.e. about now
        m = DATE.search(line)
        assert m, f"{TS_PLAIN}: no time stamp in {line!r}"
        stamp = datetime.datetime.strptime(m.group(0)[:26], "%Y-%m-%d %H:%M:%S.%f")
        assert abs((now - stamp).total_seconds()) < 300, f"{TS_PLAIN}: {line!r} is not now"
    obs: dict = {n: [DATE.sub("<set>", ln) for ln in lines] for n, lines in streams.items()}
    for name in GETS:
        r = _caget(port, "-S", name)
        obs["get " + name] = (r.returncode, DATE.sub("<set>", " ".join(r.stdout.split())))
    for name in INFO:
        r = subprocess.run([str(epics_bin() / "cainfo"), "-w", "2", name], capture_output=True,
                           text=True, env=_env(port), timeout=30)
        obs["info " + name] = [ln.strip() for ln in r.stdout.splitlines()
                               if "type" in ln or "count" in ln]
    for name in BAD:
        obs["bad " + name] = _caget(port, "-w", "1", name).returncode != 0
    return obs


def test_filters_same_as_softioc(start_ioc, start_softioc, tmp_path):
    db = tmp_path / "filters.db"
    db.write_text(DB_TEXT)
    soft = start_softioc("-d", str(db), ready_pv="F:ao", stdin=subprocess.PIPE)
    (tmp_path / "soft").mkdir()
    expected = run_scenario(soft, tmp_path / "soft")
    assert all(expected["bad " + n] for n in BAD)
    if os.environ.get("FILTERS_ORACLE_SELF"):
        ours = start_softioc("-d", str(db), ready_pv="F:ao", stdin=subprocess.PIPE)
    else:
        ours = start_ioc("-d", str(db), ready_pv="F:ao", stdin=subprocess.PIPE)
    (tmp_path / "ours").mkdir()
    got = run_scenario(ours, tmp_path / "ours")
    diffs = [f"{k}:\n  softIoc: {expected.get(k)!r}\n  ours:    {got.get(k)!r}"
             for k in expected.keys() | got.keys() if expected.get(k) != got.get(k)]
    assert not diffs, "differences from softIoc 7.0.8:\n" + "\n".join(sorted(diffs))
