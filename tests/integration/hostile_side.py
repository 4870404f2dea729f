"""One server as a hostile-input case sees it (:class:`Side`), and the exchange primitive the
cases are written with: send requests on a raw circuit, collect every answer they provoke, and
return it normalised (see ``tests/ca_raw.py``) plus whether the server closed the circuit or
stopped answering on it.

Ordering: replies a CA server makes synchronously (in request order) are compared in order.
Subscription updates, put-callback completions and errors about either are made by rsrv's event
task, concurrently with the request thread, so their order relative to the synchronous replies
(and across different ids) is not fixed even on softIoc: they are compared as a separate list,
grouped by (command, id), arrival order kept within a group.
"""
from __future__ import annotations

import os
import queue
import re
import struct
import subprocess
import threading
import time

from .. import ca_raw as ca
from ..conftest import epics_bin, stop_process

HOST = "127.0.0.1"
ASYNC_CMDS = (ca.EVENT_ADD, ca.WRITE_NOTIFY)


class Side:
    """One server under test: where it listens and the circuits a case opened on it (closed by
    :meth:`close_all` after the case)."""

    def __init__(self, label: str, port: int, timeout_s: float = 1.0):
        self.label = label
        self.port = port
        self.timeout_s = timeout_s
        self._circuits: list[ca.RawCircuit] = []

    def circuit(self, **kw) -> ca.RawCircuit:
        """A new RawCircuit (handshake done unless ``handshake=False``)."""
        c = ca.RawCircuit(HOST, self.port, timeout_s=self.timeout_s, **kw)
        self._circuits.append(c)
        return c

    def close_all(self) -> None:
        for c in self._circuits:
            c.close()
        self._circuits.clear()

    def open(self, c: ca.RawCircuit, name: str | bytes) -> tuple[ca.Created | None, list]:
        """Create a channel; (Created or None, the normalised create answers)."""
        got = c.create(name, self.timeout_s)
        out = c.norm(c.last_create)
        if c.closed():
            out.append(("CLOSED",))
        return (got if isinstance(got, ca.Created) else None), out

    def exchange(self, c: ca.RawCircuit, *reqs: bytes, settle_s: float = 0.0) -> list:
        """Send ``reqs``; return what they provoked, normalised.

        Waits for the ECHO barrier, then for an answer to every READ_NOTIFY / WRITE_NOTIFY /
        EVENT_ADD id among the (well-formed) requests, then, with ``settle_s``, until the
        circuit has been quiet that long (for updates whose number is not known). Ends with
        ("CLOSED",) when the server closed the circuit, ("NO_ECHO",) when it is still open but
        did not answer the echo."""
        msgs, ok = c.barrier(self.timeout_s, prefix=b"".join(reqs))
        want = _expected_ids(b"".join(reqs))
        if ok and want:
            msgs += c.recv_until(lambda ms: want <= _answered(msgs + ms), self.timeout_s)
        if ok and settle_s:
            msgs += c.recv_all(self.timeout_s, settle_s)
        return transcript(c, msgs, ok)

    def client(self, tool: str, *args: str, timeout_s: float = 10.0) -> tuple[int, str]:
        """Run an EPICS base command-line client against this server only: (exit code, stdout
        with the variable parts masked)."""
        env = {**os.environ, "EPICS_CA_ADDR_LIST": f"{HOST}:{self.port}",
               "EPICS_CA_AUTO_ADDR_LIST": "NO"}
        try:
            p = subprocess.run([str(epics_bin() / tool), *args], capture_output=True, text=True,
                               env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return -999, "timeout"
        return p.returncode, mask_text(p.stdout)

    def camonitor(self, pv: str, act, expect_last: str) -> list[str]:
        """camonitor ``pv``; call ``act()`` after its first update; lines until one ends with
        ``expect_last`` (or a deadline), plus a short grace for spurious extra updates."""
        env = {**os.environ, "EPICS_CA_ADDR_LIST": f"{HOST}:{self.port}"}
        p = subprocess.Popen([str(epics_bin() / "camonitor"), "-t", "n", pv],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(ln) for ln in p.stdout], daemon=True).start()
        out: list[str] = []
        try:
            try:
                out.append(lines.get(timeout=3.0).rstrip())
            except queue.Empty:
                return ["no first update"]
            act()
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not out[-1].endswith(expect_last):
                try:
                    out.append(lines.get(timeout=0.05).rstrip())
                except queue.Empty:
                    pass
            grace = time.monotonic() + 0.2
            while time.monotonic() < grace:
                try:
                    out.append(lines.get(timeout=0.05).rstrip())
                except queue.Empty:
                    pass
        finally:
            stop_process(p)
        return [mask_text(x) for x in out]

    def put(self, name: str, dtype: int, values: list, count: int | None = None) -> list:
        """WRITE_NOTIFY ``values`` to ``name`` on a fresh circuit; the normalised answer."""
        c = self.circuit()
        ch, out = self.open(c, name)
        if ch is None:
            return out
        n = len(values) if count is None else count
        return self.exchange(c, ca.write_notify(ch.sid, c.new_ioid(), dtype, n,
                                                ca.encode_values(dtype, values)))


def transcript(c: ca.RawCircuit, msgs: list[ca.Msg], echoed: bool) -> list:
    """Normalised synchronous replies in order, then the asynchronous ones (module doc), then
    the circuit's state."""
    sync = [m for m in msgs if _async_key(m) is None]
    asyn = sorted((m for m in msgs if _async_key(m) is not None), key=_async_key)
    out = c.norm(sync)
    if asyn:
        out.append(("async",))
        out += c.norm(asyn)
    if c.closed():
        out.append(("CLOSED",))
    elif not echoed:
        out.append(("NO_ECHO",))
    return out


def _async_key(m: ca.Msg):
    if m.command in ASYNC_CMDS:
        return (m.command, m.p2)
    if m.command == ca.ERROR and len(m.payload) >= 16:
        cmd, _, _, _, _, p2 = ca.HDR.unpack_from(m.payload)
        if cmd in ASYNC_CMDS:
            return (cmd, p2)
    return None


def _expected_ids(data: bytes) -> set:
    msgs, _ = ca.parse(data)
    return {(m.command, m.p2) for m in msgs
            if m.command in (ca.READ_NOTIFY, ca.WRITE_NOTIFY, ca.EVENT_ADD)}


def _answered(msgs: list[ca.Msg]) -> set:
    got = set()
    for m in msgs:
        if m.command in (ca.READ_NOTIFY, ca.WRITE_NOTIFY, ca.EVENT_ADD):
            got.add((m.command, m.p2))
        elif m.command == ca.ERROR and len(m.payload) >= 16:
            cmd, _, _, _, _, p2 = ca.HDR.unpack_from(m.payload)
            got.add((cmd, p2))
    return got


_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+|<undefined>")
_HOSTPORT = re.compile(r"(localhost|127\.0\.0\.1):\d+")


def mask_text(s: str) -> str:
    """Client output without date/time stamps, server hosts and ports (they differ by nature).

    The host is masked too: libca names the server by a reverse lookup that finishes in the
    background, so cainfo prints "127.0.0.1" or "localhost" depending on timing alone.
    """
    return _HOSTPORT.sub("<host>:<port>", _STAMP.sub("<stamp>", s))


def long_value(m: ca.Msg) -> int:
    """The first element of a DBR_LONG payload."""
    return struct.unpack(">i", m.payload[:4])[0]
