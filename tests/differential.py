"""Differential scenarios: the same database and the same client steps against our IOC and
EPICS base's softIoc, observed with base's own caget/caput/camonitor, compared step by step.

A scenario is a list of steps; each observation is made on both IOCs with the PV prefix
stripped, so the lists must be identical::

    run_differential(start_ioc, start_softioc, tmp_path, DB_TEXT, [
        ("put", "SEQ", "1"),                 # caput -c (put with completion), output compared
        ("put_nowait", "SEQ", "1"),          # caput without completion
        ("put_array", "WF", "1 2 3"),        # caput -c -a
        ("put_string", "LSO", "a long string ..."),   # caput -c -S (long strings)
        ("get", "A B"),                      # value, STAT, SEVR of each (caget -t)
        ("fields", "A.NELM B.DESC"),         # caget -t of fields
        ("caget", "-d DBR_CTRL_DOUBLE", "A"),   # any caget options; output compared
        ("wait", "A", "5"),                  # poll until caget -t A prints 5 (10 s deadline)
    ], monitor="A B.VAL")

``DB_TEXT`` names its records ``$(P)NAME``; the IOCs get ``P=OURS:`` and ``P=BASE:``.
``monitor``: camonitor runs through the whole scenario on these PVs; its streams (time stamps
dropped) are compared at the end. A sentinel record is appended to the database and put last,
so a stream is complete when the sentinel's update arrives (CA keeps order on a circuit): no
sleeping for quiet.
"""
from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from .conftest import _client_env, caget, caput, epics_bin, wait_for

SENTINEL = "_DIFF_SENTINEL"
_STAMP = re.compile(r"\s\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+|\s<undefined>")


class _Monitor:
    """camonitor on some PVs, collecting its lines in a thread."""

    def __init__(self, pvs: list[str], port: int):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(epics_bin() / "camonitor"), "-w", "5", *pvs],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=_client_env(port), start_new_session=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> list[str]:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._t.join(5)
        return list(self.lines)


def _strip(text: str, prefix: str) -> list[str]:
    return [ln.replace(prefix, "").strip() for ln in text.strip("\n").split("\n")]


def run_steps(prefix: str, port: int, steps: list[tuple], monitor: str = "") -> list[tuple]:
    """Run ``steps`` against the IOC serving ``prefix`` on ``port``; returns the observations
    (and, with ``monitor``, the camonitor stream last, as ("monitor", pvs, lines))."""
    obs: list[tuple] = []
    mon = None
    if monitor:
        pvs = [prefix + x for x in monitor.split()] + [prefix + SENTINEL]
        mon = _Monitor(pvs, port)
        # Connected when every PV has sent its first update.
        wait_for(lambda: len(mon.lines) >= len(pvs), 10, what=f"camonitor {pvs}")
    for step in steps:
        kind, what = step[0], step[1]
        rest = list(step[2:])
        pvs = [prefix + x for x in what.split()] if kind != "caget" else []
        if kind in ("put", "put_nowait", "put_array", "put_string"):
            opts = {"put": ["-c"], "put_nowait": [], "put_array": ["-c", "-a"],
                    "put_string": ["-c", "-S"]}[kind]
            value = rest[0]
            args = [pvs[0], str(len(value.split())), *value.split()] if kind == "put_array" \
                else [pvs[0], value]
            r = caput(*opts, *args, port=port)
            obs.append((kind, what, r.returncode, _strip(r.stdout + r.stderr, prefix)))
        elif kind == "get":
            names = [x for pv in pvs for x in (pv, pv + ".STAT", pv + ".SEVR")]
            obs.append((kind, what, _strip(caget("-t", *names, port=port, check=False),
                                           prefix)))
        elif kind == "fields":
            obs.append((kind, what, _strip(caget("-t", *pvs, port=port, check=False), prefix)))
        elif kind == "caget":
            opts, names = what.split(), [prefix + x for x in rest[0].split()]
            out = caget(*opts, *names, port=port, check=False)
            obs.append((kind, what + " " + rest[0], _strip(out, prefix)))
        elif kind == "wait":
            value = rest[0]
            wait_for(lambda: caget("-t", pvs[0], port=port, check=False).strip() == value, 10,
                     what=f"{pvs[0]} == {value!r}")
        else:
            raise ValueError(f"unknown step kind {kind!r}")
    if mon is not None:
        r = caput("-c", prefix + SENTINEL, "1", port=port)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: any(ln.startswith(prefix + SENTINEL) and ln.rstrip().endswith(" 1")
                             for ln in mon.lines), 10, what="sentinel update")
        lines = [_STAMP.sub("", ln).replace(prefix, "") for ln in mon.stop()
                 if not ln.startswith(prefix + SENTINEL)]
        obs.append(("monitor", monitor, [" ".join(ln.split()) for ln in lines]))
    return obs


def write_db(tmp_path: Path, db_text: str, name: str = "diff.db") -> Path:
    path = tmp_path / name
    path.write_text(db_text + f'\nrecord(longout, "$(P){SENTINEL}") {{}}\n')
    return path


def run_differential(start_ioc, start_softioc, tmp_path: Path, db_text: str,
                     steps: list[tuple], monitor: str = "", macros: str = "",
                     ready: str = SENTINEL) -> list[tuple]:
    """Load ``db_text`` in both IOCs, run ``steps`` on both, assert the observations are the
    same; returns ours. ``macros``: more macros for the db ("A=1,B=2")."""
    path = write_db(tmp_path, db_text)
    m = ("," + macros) if macros else ""
    base = start_softioc("-S", "-m", f"P=BASE:{m}", "-d", str(path), ready_pv="BASE:" + ready)
    ours = start_ioc("-S", "-m", f"P=OURS:{m}", "-d", str(path), ready_pv="OURS:" + ready)
    got_base = run_steps("BASE:", base.port, steps, monitor)
    got_ours = run_steps("OURS:", ours.port, steps, monitor)
    for b, o in zip(got_base, got_ours):
        assert o == b, (f"step {b[0]} {b[1]}:\n softIoc: {b[2:]}\n ours:    {o[2:]}\n"
                        f"--- our IOC's output:\n{ours.output()[-3000:]}")
    assert len(got_ours) == len(got_base)
    return got_ours


__all__ = ["run_differential", "run_steps", "write_db", "SENTINEL"]
