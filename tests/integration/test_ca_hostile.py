"""Hostile Channel Access input: EPICS base's softIoc is the oracle for what our IOC must answer.

Both servers load tests/data/hostile.db (P=HX:) and get the same requests, case by case
(hostile_cases.py: malformed headers, unknown ids and commands, every DBR type on every kind of
field, odd writes, filters, names, UDP garbage, and the real EPICS clients). Where softIoc
answers, ours must answer the same, after normalisation (tests/ca_raw.py, hostile_side.py):
server-assigned ids and time stamps are masked, nothing else.

After every case our IOC must still be (a) running, (b) answering a sentinel read on a fresh
circuit and (c) delivering updates to a monitor opened at the start of the module (on HX:CNT,
bumped by a put in every check): a wedged event loop or circuit shows there. A case after which
ours exited or wedged fails as such, and ours is restarted for the next case.

Outcomes are counted (exited / wedged / differed / matched) and printed at the end of the module;
with ``CA_HOSTILE_REPORT=path`` they are also written there as JSON.

``CA_HOSTILE_OURS`` chooses "ours": unset, the installed ``psu-timing-ioc``; ``softioc``, a second
softIoc (the harness self-check: every case must then match, which proves the normalisation
masks only what differs by nature); a directory, ``python -m ioc`` run from that source tree
(e.g. an exported older commit, to measure another server).
"""
from __future__ import annotations

import collections
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

from .. import ca_raw as ca
from ..conftest import ROOT, IocProcess, epics_bin
from .hostile_cases import CASES, SETUP, Case
from .hostile_side import HOST, Side, long_value

pytestmark = pytest.mark.oracle

DB = str(ROOT / "tests" / "data" / "hostile.db")
# Fixed array limit for both servers: rsrv answers ECA_TOLARGE beyond it (with the default
# EPICS_CA_AUTO_ARRAY_BYTES=YES it would allocate whatever a request announces).
SERVER_ENV = {"EPICS_CA_AUTO_ARRAY_BYTES": "NO", "EPICS_CA_MAX_ARRAY_BYTES": "16384"}
OURS = os.environ.get("CA_HOSTILE_OURS", "")
OURS_IS_SOFTIOC = OURS == "softioc"
RESULTS: list[dict] = []


class Servers:
    """softIoc and ours on pool ports, the long-lived monitor on ours, restarts of ours."""

    def __init__(self, pool):
        self.pool = pool
        self.count = 0
        self.monitor: ca.RawCircuit | None = None
        self.restarts = 0
        self.base = self._start(softioc=True)
        try:
            self.ours = self._start(softioc=OURS_IS_SOFTIOC)
            self._open_monitor()
        except BaseException:
            self._stop(self.base)
            raise

    def _start(self, softioc: bool) -> IocProcess:
        env, cwd = dict(SERVER_ENV), ROOT
        if softioc:
            exe = [str(epics_bin() / "softIoc")]
        elif OURS:
            exe, cwd = [sys.executable, "-m", "ioc"], Path(OURS)
            env["PYTHONPATH"] = OURS
        else:
            exe = ["psu-timing-ioc"]
        p = IocProcess(exe + ["-S", "-m", "P=HX:", "-d", DB], self.pool, cwd, None,
                       extra_env=env)
        try:
            p.wait_ready("HX:SENT", 30)
            side = Side("setup", p.port)
            for pv, dtype, values in SETUP:
                side.put("HX:" + pv, dtype, values)
            side.close_all()
        except BaseException:
            self._stop(p)
            raise
        return p

    def _open_monitor(self) -> None:
        self.monitor = ca.RawCircuit(HOST, self.ours.port)
        ch = self.monitor.create("HX:CNT")
        assert isinstance(ch, ca.Created), ch
        self.monitor.send(ca.event_add(ch.sid, 1, 5, 1))
        self.monitor.recv_until(lambda ms: any(m.command == ca.EVENT_ADD for m in ms), 3)

    def check_ours(self) -> str | None:
        """None when ours is healthy, else "exited ..." or "wedged: ..."."""
        if self.ours.proc.poll() is not None:
            return f"exited (status {self.ours.proc.returncode})"
        self.count += 1
        try:
            with ca.RawCircuit(HOST, self.ours.port, timeout_s=2.0) as c:
                sent, cnt = c.create("HX:SENT"), c.create("HX:CNT")
                if not isinstance(sent, ca.Created) or not isinstance(cnt, ca.Created):
                    return self._exited_or("wedged: sentinel channels not created on a fresh "
                                           "circuit")
                c.send(ca.read_notify(sent.sid, 1, 0, 1),
                       ca.write_notify(cnt.sid, 2, 5, 1, struct.pack(">i", self.count)))
                got = c.recv_until(lambda ms: {m.command for m in ms} >= {ca.READ_NOTIFY,
                                                                          ca.WRITE_NOTIFY}, 2.0)
                reads = [m for m in got if m.command == ca.READ_NOTIFY]
                if not reads or not reads[0].payload.startswith(b"alive\0"):
                    return f"wedged: sentinel read on a fresh circuit got {got}"
        except (OSError, TimeoutError) as exc:
            return self._exited_or(f"wedged: fresh circuit: {exc!r}")
        mon = self.monitor.recv_until(lambda ms: any(
            m.command == ca.EVENT_ADD and m.size and long_value(m) == self.count for m in ms), 2.0)
        if not any(m.command == ca.EVENT_ADD and m.size and long_value(m) == self.count
                   for m in mon):
            return self._exited_or("wedged: the long-lived monitor got no update"
                                   + (" (its circuit was closed)" if self.monitor.closed() else ""))
        return None

    def _exited_or(self, reason: str, grace_s: float = 2.0) -> str:
        """``reason``, unless ours is on its way out (an IOC whose server failed stops its
        threads first): then "exited"."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.ours.proc.poll() is not None:
                return f"exited (status {self.ours.proc.returncode})"
            time.sleep(0.05)
        return reason

    def restart_ours(self) -> str:
        """Stop ours (SIGKILL if SIGTERM is not enough), start a fresh one; its log tail."""
        self.restarts += 1
        log = self.ours.output()[-3000:]
        self._stop(self.ours)
        self.monitor.close()
        self.ours = self._start(softioc=OURS_IS_SOFTIOC)
        self._open_monitor()
        return log

    def _stop(self, p: IocProcess) -> None:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
            try:
                p.proc.wait(3)
            except Exception:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait()
        if p.port not in self.pool.free:
            self.pool.give(p.port)

    def close(self) -> None:
        if self.monitor:
            self.monitor.close()
        self._stop(self.ours)
        self._stop(self.base)


@pytest.fixture(scope="module")
def servers(ca_ports, request):
    s = Servers(ca_ports)
    yield s
    s.close()
    _summary(request.config)


def _summary(config) -> None:
    counts = collections.Counter(r["outcome"] for r in RESULTS)
    what = ("second softIoc (harness self-check)" if OURS_IS_SOFTIOC
            else f"python -m ioc from {OURS}" if OURS else "psu-timing-ioc")
    lines = [f"CA hostile-input oracle, ours = {what}: {len(RESULTS)} cases: "
             + ", ".join(f"{k} {counts.get(k, 0)}"
                         for k in ("exited", "wedged", "differed", "matched"))]
    lines += [f"  {r['outcome']:8} {r['case']}" for r in RESULTS
              if r["outcome"] in ("exited", "wedged")]
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))
    if os.environ.get("CA_HOSTILE_REPORT"):
        with open(os.environ["CA_HOSTILE_REPORT"], "w") as f:
            json.dump({"counts": counts, "results": RESULTS}, f, indent=1, default=str)


def _run(case: Case, side: Side, tolerate: bool) -> list:
    try:
        return case.run(side)
    except Exception as exc:   # noqa: BLE001 - ours may answer anything; softIoc may not
        if not tolerate:
            raise
        return [("EXCEPTION", type(exc).__name__, str(exc)[:300])]
    finally:
        side.close_all()


def _short(x) -> str:
    r = repr(x)
    return r if len(r) < 400 else r[:400] + "..."


def _diff(base: list, ours: list) -> str:
    i = next((k for k, (a, b) in enumerate(zip(base, ours)) if a != b), min(len(base), len(ours)))
    out = [f"first difference at item {i} (softIoc {len(base)} items, ours {len(ours)})"]
    for k in range(max(0, i - 2), max(len(base), len(ours))):
        if k > i + 6:
            out.append("  ...")
            break
        a = base[k] if k < len(base) else "<none>"
        b = ours[k] if k < len(ours) else "<none>"
        out.append(f"  [{k}] softIoc: {_short(a)}\n  [{k}] ours:    {_short(b)}")
        out += _field_diff(a, b)
    return "\n".join(out)


def _field_diff(a, b) -> list[str]:
    """Which fields of two same-shaped message tuples differ; for payloads, where."""
    if not (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and a != b):
        return []
    out = []
    for n, (x, y) in enumerate(zip(a, b)):
        if x == y:
            continue
        if isinstance(x, bytes) and isinstance(y, bytes):
            at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            lo = max(0, at - 8)
            out.append(f"       field {n}: payload differs from byte {at} (sizes {len(x)}, "
                       f"{len(y)}): softIoc {x[lo:at + 24]!r} ours {y[lo:at + 24]!r}")
        else:
            out.append(f"       field {n}: softIoc {x!r} ours {y!r}")
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile(servers: Servers, case: Case):
    base = _run(case, Side("softIoc", servers.base.port), tolerate=False)
    ours = _run(case, Side("ours", servers.ours.port), tolerate=True)
    assert servers.base.proc.poll() is None, "softIoc died:\n" + servers.base.output()[-3000:]
    health = servers.check_ours()
    if health is None and ("NO_ECHO",) in ours and ("NO_ECHO",) not in base:
        health = "wedged: the case's own circuit stopped answering (no ECHO reply)"
    if health:
        outcome = health.split()[0].rstrip(":")
    elif case.compare and ours != base:
        outcome = "differed"
    else:
        outcome = "matched"
    RESULTS.append({"case": case.name, "outcome": outcome, "health": health,
                    "same": ours == base})
    if health and health.startswith(("exited", "wedged: sentinel", "wedged: fresh",
                                     "wedged: the long")):
        log = servers.restart_ours()
        pytest.fail(f"ours {health} after this case; its log ends:\n{log}\n"
                    + _diff(base, ours))
    if health:
        pytest.fail(f"ours {health}\n" + _diff(base, ours))
    if outcome == "differed":
        pytest.fail("ours answered differently from softIoc\n" + _diff(base, ours))
