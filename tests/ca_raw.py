"""A raw Channel Access client for tests: build any request (well-formed or not) with struct, send
it on a plain TCP or UDP socket, parse what the server answers, and normalise the answers so two
servers (EPICS base's softIoc and ours) can be compared message for message.

* Requests: :func:`message` builds one CA message from header fields and a payload (padded to
  8 bytes unless told not to; the extended header is used when the size or count needs it or
  when asked). The helpers below it (``version``, ``create_chan``, ``read_notify`` ...) are the
  well-formed requests; malformed ones are made by passing odd values to :func:`message` or by
  writing bytes directly.
* :class:`RawCircuit`: one TCP circuit. ``send`` / ``recv_until`` / ``recv_all`` / ``barrier``
  (an ECHO round trip: every reply a server sends synchronously to earlier requests comes before
  the echo) / ``create`` / ``closed``. All waits are deadline-based.
* :func:`search` / :func:`udp_send`: UDP name resolution and raw datagrams.
* :meth:`RawCircuit.norm`: messages -> comparable tuples (see there for what is masked and why).

Protocol reference: EPICS base modules/ca/src/client/caProto.h and rsrv's camessage.c.
"""
from __future__ import annotations

import itertools
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable, Iterable

HDR = struct.Struct(">HHHHII")
EXT = struct.Struct(">II")

# Command numbers (caProto.h).
VERSION, EVENT_ADD, EVENT_CANCEL, READ, WRITE, SNAPSHOT, SEARCH, BUILD = range(8)
EVENTS_OFF, EVENTS_ON, READ_SYNC, ERROR, CLEAR_CHANNEL, RSRV_IS_UP, NOT_FOUND = range(8, 15)
READ_NOTIFY, READ_BUILD, REPEATER_CONFIRM, CREATE_CHAN, WRITE_NOTIFY = range(15, 20)
CLIENT_NAME, HOST_NAME, ACCESS_RIGHTS, ECHO, REPEATER_REGISTER, SIGNAL = range(20, 26)
CREATE_CH_FAIL, SERVER_DISCONN = 26, 27
CMD_NAMES = {v: k for k, v in dict(globals()).items()
             if isinstance(v, int) and k.isupper() and k not in ("HDR", "EXT") and v < 28}
DO_REPLY, NO_REPLY = 10, 5
DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY = 1, 2, 4, 8

# ECA status codes (code << 3 | severity, caerr.h), by value -> name for readable diffs.
ECA = {1: "ECA_NORMAL", 48: "ECA_ALLOCMEM", 72: "ECA_TOLARGE", 114: "ECA_BADTYPE",
       142: "ECA_INTERNAL", 152: "ECA_GETFAIL", 160: "ECA_PUTFAIL", 176: "ECA_BADCOUNT",
       186: "ECA_BADSTR", 210: "ECA_EVDISALLOW", 242: "ECA_BADMONID", 278: "ECA_DEFUNCT",
       330: "ECA_BADMASK", 362: "ECA_PUTCBINPROG", 368: "ECA_NORDACCESS",
       376: "ECA_NOWTACCESS", 400: "ECA_NOCONVERT", 410: "ECA_BADCHID",
       432: "ECA_UNAVAILINSERV", 464: "ECA_16KARRAYCLIENT"}

# DBR types: names, where the value starts in the struct and how big one element is
# (db_access.h / access.cpp dbr_value_offset, dbr_value_size).
_BASES = ["STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE"]
DBR_NAMES = ([f"DBR_{b}" for b in _BASES] + [f"DBR_{k}_{b}" for k in ("STS", "TIME", "GR", "CTRL")
                                              for b in _BASES]
             + ["DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME"])
VALUE_OFFSET = ([0] * 7 + [4, 4, 4, 4, 5, 4, 8] + [12, 14, 12, 14, 15, 12, 16]
                + [4, 24, 40, 422, 19, 36, 64] + [4, 28, 48, 422, 21, 44, 80] + [0, 0, 8, 0])
VALUE_SIZE = [(40, 2, 4, 2, 1, 4, 8)[i % 7] for i in range(35)] + [2, 2, 40, 40]
TIME_TYPES = range(14, 21)
_ALIGN = {0: 2, 1: 2, 2: 4, 3: 2, 4: 2, 5: 4, 6: 8}  # struct alignment by value class
_VALUE_FMT = {0: "40s", 1: "h", 2: "f", 3: "H", 4: "B", 5: "i", 6: "d"}


def dbr_size_n(dtype: int, count: int) -> int:
    """Bytes of a DBR ``dtype`` struct holding ``count`` elements, as db_access.h's dbr_size_n
    (count 0: the struct without its value)."""
    first = VALUE_OFFSET[dtype] + VALUE_SIZE[dtype]
    if dtype < 35:
        a = 1 if dtype < 7 else _ALIGN[dtype % 7]
        first = -(-first // a) * a
    return first + (count - 1) * VALUE_SIZE[dtype]


# Unused alignment members of the DBR structs (RISC_pad*): (type -> [(start, end)]).
RISC_PADS = {11: [(4, 5)], 13: [(4, 8)], 15: [(12, 14)], 17: [(12, 14)], 18: [(12, 15)],
             20: [(12, 16)], 23: [(6, 8)], 25: [(18, 19)], 27: [(6, 8)], 30: [(6, 8)],
             32: [(20, 21)], 34: [(6, 8)]}


def encode_values(dtype: int, values: Iterable) -> bytes:
    """The payload of a put with DBR type ``dtype`` (< 35): zeroed metadata, then the values."""
    fmt = _VALUE_FMT[dtype % 7]
    out = bytearray(VALUE_OFFSET[dtype])
    for v in values:
        out += struct.pack(">" + fmt, v.encode("latin-1") if isinstance(v, str) else v)
    return bytes(out)


def pad8(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 8)


def message(command: int, payload: bytes = b"", data_type: int = 0, count: int = 0, p1: int = 0,
            p2: int = 0, *, pad: bool = True, size: int | None = None,
            extended: bool | None = None) -> bytes:
    """One CA message. ``size`` overrides the header's payload size (for malformed requests);
    ``extended`` forces (True) or forbids (False) the 24-byte header; by default it is used when
    the payload or count does not fit 16 bits (as rsrv's cas_copy_in_header does)."""
    if pad:
        payload = pad8(payload)
    n = len(payload) if size is None else size
    if extended is None:
        extended = n >= 0xFFFF or count >= 0xFFFF
    if extended:
        return HDR.pack(command, 0xFFFF, data_type, 0, p1, p2) + EXT.pack(n, count) + payload
    return HDR.pack(command, n, data_type, count, p1, p2) + payload


def cstr(s: str | bytes) -> bytes:
    return (s.encode("latin-1") if isinstance(s, str) else s) + b"\0"


def version(priority: int = 0, minor: int = 13) -> bytes:
    return message(VERSION, data_type=priority, count=minor)


def client_name(name: str) -> bytes:
    return message(CLIENT_NAME, cstr(name))


def host_name(name: str) -> bytes:
    return message(HOST_NAME, cstr(name))


def create_chan(name: str | bytes, cid: int, minor: int = 13) -> bytes:
    return message(CREATE_CHAN, cstr(name) if name else b"", p1=cid, p2=minor)


def read_notify(sid: int, ioid: int, data_type: int, count: int = 1) -> bytes:
    return message(READ_NOTIFY, data_type=data_type, count=count, p1=sid, p2=ioid)


def read(sid: int, ioid: int, data_type: int, count: int = 1) -> bytes:
    return message(READ, data_type=data_type, count=count, p1=sid, p2=ioid)


def write(sid: int, ioid: int, data_type: int, count: int, payload: bytes) -> bytes:
    return message(WRITE, payload, data_type, count, sid, ioid)


def write_notify(sid: int, ioid: int, data_type: int, count: int, payload: bytes) -> bytes:
    return message(WRITE_NOTIFY, payload, data_type, count, sid, ioid)


def event_add(sid: int, subid: int, data_type: int, count: int = 1,
              mask: int = DBE_VALUE | DBE_ALARM) -> bytes:
    return message(EVENT_ADD, struct.pack(">fffHxx", 0, 0, 0, mask), data_type, count, sid, subid)


def event_cancel(sid: int, subid: int, data_type: int = 0, count: int = 0) -> bytes:
    return message(EVENT_CANCEL, data_type=data_type, count=count, p1=sid, p2=subid)


def clear_channel(sid: int, cid: int) -> bytes:
    return message(CLEAR_CHANNEL, p1=sid, p2=cid)


def echo() -> bytes:
    return message(ECHO)


def search_msg(name: str | bytes, cid: int, reply: int = NO_REPLY, minor: int = 13) -> bytes:
    return message(SEARCH, cstr(name), reply, minor, cid, cid)


@dataclass(frozen=True)
class Msg:
    """One parsed CA message (header fields as sent, payload without the header)."""
    command: int
    size: int
    data_type: int
    count: int
    p1: int
    p2: int
    payload: bytes
    extended: bool = False


def parse(buf: bytes | bytearray) -> tuple[list[Msg], int]:
    """Complete messages at the start of ``buf`` and the number of bytes they used. A payload
    size of 0xFFFF announces the extended header (as rsrv and libca read it)."""
    out: list[Msg] = []
    pos = 0
    while len(buf) - pos >= HDR.size:
        cmd, size, dtype, count, p1, p2 = HDR.unpack_from(buf, pos)
        body = pos + HDR.size
        ext = size == 0xFFFF
        if ext:
            if len(buf) - body < EXT.size:
                break
            size, count = EXT.unpack_from(buf, body)
            body += EXT.size
        if len(buf) - body < size:
            break
        out.append(Msg(cmd, size, dtype, count, p1, p2, bytes(buf[body:body + size]), ext))
        pos = body + size
    return out, pos


@dataclass
class Created:
    """A channel the server created: its sid, native DBR type and element count."""
    sid: int
    native_type: int
    count: int
    cid: int


class RawCircuit:
    """One TCP circuit to a CA server. With ``handshake`` the client sends VERSION (priority 0,
    minor 13), CLIENT_NAME and HOST_NAME and waits for the server's VERSION (which rsrv sends on
    accept); a server that does not send it within ``timeout_s`` raises TimeoutError."""

    def __init__(self, host: str, port: int, *, handshake: bool = True, user: str = "u",
                 host_name: str = "h", timeout_s: float = 3.0):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._eof = False
        self.reset = False            # the server reset the connection (RST, not FIN)
        self.sids: dict[int, str] = {}  # server-assigned id -> stable token for comparison
        self._cids = itertools.count(1)
        self._ioids = itertools.count(1)
        self.server_version: Msg | None = None
        self.last_create: list[Msg] = []
        if handshake:
            self.send(version(), client_name(user), globals()["host_name"](host_name))
            got = self.recv_until(lambda ms: any(m.command == VERSION for m in ms), timeout_s)
            vers = [m for m in got if m.command == VERSION]
            if not vers:
                self.close()
                raise TimeoutError(f"no VERSION from {host}:{port} (got {got})")
            self.server_version = vers[0]

    # -- ids
    def new_cid(self) -> int:
        return next(self._cids)

    def new_ioid(self) -> int:
        return next(self._ioids)

    # -- I/O
    def send(self, *items: bytes) -> bool:
        """Send requests (bytes, or anything ``bytes()`` accepts such as caproto commands).
        False when the server has already closed the connection."""
        data = b"".join(i if isinstance(i, (bytes, bytearray)) else bytes(i) for i in items)
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self._eof = True
            return False

    def _fill(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for bytes; True when some arrived (or the stream ended)."""
        if self._eof:
            return False
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout_s))
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self._eof = self.reset = True
            return True
        except OSError:
            self._eof = True
            return True
        if not data:
            self._eof = True
        self._buf += data
        return True

    def _take(self) -> list[Msg]:
        msgs, used = parse(self._buf)
        del self._buf[:used]
        return msgs

    def recv_until(self, pred: Callable[[list[Msg]], bool], timeout_s: float = 2.0) -> list[Msg]:
        """Messages received until ``pred(all so far)`` holds, the server closed, or the
        deadline passed (whichever first); the caller checks which."""
        deadline = time.monotonic() + timeout_s
        msgs = self._take()
        while not pred(msgs) and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._fill(left):
                msgs += self._take()
        return msgs

    def recv_all(self, timeout_s: float = 2.0, quiet_s: float = 0.1) -> list[Msg]:
        """Messages received until the socket has been quiet for ``quiet_s``, it closed, or
        ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        msgs = self._take()
        while not self._eof and time.monotonic() < deadline:
            if not self._fill(min(quiet_s, deadline - time.monotonic())):
                break
            msgs += self._take()
        return msgs

    def barrier(self, timeout_s: float = 2.0, prefix: bytes = b"") -> tuple[list[Msg], bool]:
        """Send ``prefix`` and an ECHO (in one send, so a server reading the circuit sees them
        in one read) and collect everything up to the echo's reply: (messages without the echo
        reply, whether it came back). A server answers requests of one circuit in order, so
        what it sends synchronously to earlier requests precedes the echo. The flag is False
        when the server closed first or is not answering."""
        def mine(m: Msg) -> bool:
            # rsrv copies the request's header into the reply; a server answering with
            # zeroed ids is still answering (tests compare echo fields with other ids).
            return m.command == ECHO and not m.payload and (m.p1, m.p2) in ((tag, tag), (0, 0))

        tag = 0x0EC0
        self.send(prefix + message(ECHO, p1=tag, p2=tag))
        msgs = self.recv_until(lambda ms: any(mine(m) for m in ms), timeout_s)
        return [m for m in msgs if not mine(m)], any(mine(m) for m in msgs)

    def closed(self, grace_s: float = 0.0) -> bool:
        """Whether the server closed the connection (reads what is pending to find out; waits up
        to ``grace_s`` for the close to arrive)."""
        deadline = time.monotonic() + grace_s
        while not self._eof:
            if not self._fill(max(0.0, deadline - time.monotonic())):
                break
        return self._eof

    def pending(self) -> list[Msg]:
        """Messages already received and not yet returned."""
        self.closed()
        return self._take()

    def create(self, name: str | bytes, timeout_s: float = 2.0) -> Created | list[Msg]:
        """CREATE_CHAN and wait for the answer: a :class:`Created` (its sid is registered for
        normalisation) or, on failure, the messages that came instead (CREATE_CH_FAIL, ERROR,
        nothing). ``last_create`` keeps every message read meanwhile (ACCESS_RIGHTS too)."""
        cid = self.new_cid()
        self.send(create_chan(name, cid))
        def answered(ms: list[Msg]) -> bool:
            return any(m.command == ERROR or (m.command in (CREATE_CHAN, CREATE_CH_FAIL)
                                              and m.p1 == cid) for m in ms)

        self.last_create = msgs = self.recv_until(answered, timeout_s)
        for m in msgs:
            if m.command == CREATE_CHAN and m.p1 == cid:
                self.sids.setdefault(m.p2, f"sid{len(self.sids)}")
                return Created(m.p2, m.data_type, m.count, cid)
        return msgs

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawCircuit":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- normalisation
    def _sid(self, value: int) -> object:
        return self.sids.get(value, value)

    def norm(self, msgs: Iterable[Msg]) -> list[tuple]:
        """Messages as comparable tuples: (command name, data type, count, p1, p2, payload).

        Masked, because two correct servers differ there: server-assigned channel ids (sids,
        replaced by ``sidN`` in creation order on this circuit, also inside ERROR's copy of the
        request) and time stamps (bytes 4..12 of DBR_TIME_* payloads, replaced by "zero" or
        "set"). ERROR keeps the ECA code and the copied request header, not the text (texts
        differ between servers). A TCP SEARCH reply's data type (the server's own port) becomes
        "port". VERSION keeps priority and minor version. Nothing else is masked: payload sizes
        and bytes (including padding) are compared as sent. Whether the server closed is not
        part of this (see :meth:`closed`)."""
        out = []
        for m in msgs:
            name = CMD_NAMES.get(m.command, m.command)
            c = m.command
            if c == ERROR:
                hdr = HDR.unpack_from(m.payload.ljust(HDR.size, b"\0"))
                ext = hdr[1] == 0xFFFF and len(m.payload) >= 24
                size, count = EXT.unpack_from(m.payload, 16) if ext else (hdr[1], hdr[3])
                p1 = self._sid(hdr[4]) if hdr[0] in _SID_IN_P1 else hdr[4]
                req = (CMD_NAMES.get(hdr[0], hdr[0]), size, hdr[2], count, p1, hdr[5], ext)
                out.append((name, m.p1, ECA.get(m.p2, m.p2), req))
            elif c == CREATE_CHAN:
                self.sids.setdefault(m.p2, f"sid{len(self.sids)}")
                out.append((name, m.data_type, m.count, m.p1, self._sid(m.p2)))
            elif c == CLEAR_CHANNEL:
                out.append((name, m.data_type, m.count, self._sid(m.p1), m.p2))
            elif c == EVENT_ADD and m.size == 0:   # cancel confirmation: p1 is the sid
                out.append((name, m.data_type, m.count, self._sid(m.p1), m.p2, m.extended))
            elif c in (READ_NOTIFY, EVENT_ADD, READ, WRITE_NOTIFY):
                status = ECA.get(m.p1, m.p1) if c != READ else m.p1   # READ: p1 is the cid
                out.append((name, m.data_type, m.count, status, m.p2, m.size,
                            mask_payload(m.data_type, m.count, m.payload), m.extended))
            elif c == SEARCH:   # over TCP: data type = the server's port, p1 = 0xFFFFFFFF
                out.append((name, "port" if m.data_type == self.port else m.data_type, m.count,
                            m.p1, m.p2, m.size, m.payload))
            else:
                out.append((name, m.data_type, m.count, m.p1, m.p2, m.size, m.payload))
        return out


_SID_IN_P1 = (EVENT_ADD, EVENT_CANCEL, READ, WRITE, READ_NOTIFY, WRITE_NOTIFY, CLEAR_CHANNEL)


STRING_TYPES = (0, 7, 14, 21, 28, 37, 38)


def mask_payload(dtype: int, count: int, payload: bytes) -> bytes:
    """``payload`` (of a reply carrying ``count`` elements of ``dtype``) with what is undefined
    by nature masked.

    * A DBR_TIME_* stamp becomes b"<zero>!!" or b"<set>!!!" (8 bytes): the two servers
      processed the record at different times, but whether it ever was (stamp 0) matters.
    * Bytes that carry nothing become NULs: the RISC_pad members of the DBR structs, the
      alignment padding after the data, and in every 40-byte string element the bytes after
      its terminating NUL. rsrv builds replies in its send buffer without clearing these, so
      they hold left-overs of earlier messages (they differ between two softIoc runs too).
      A client reads a DBR_STRING up to the NUL and never reads padding."""
    b = bytearray(payload)
    if dtype < len(VALUE_OFFSET):
        for lo, hi in RISC_PADS.get(dtype, ()):
            b[lo:hi] = bytes(len(b[lo:hi]))
        end = max(0, dbr_size_n(dtype, count))
        b[end:] = bytes(len(b[end:]))
        if dtype in STRING_TYPES:
            # (the old READ shortens a DBR_STRING reply to the string: a partial element)
            for start in range(VALUE_OFFSET[dtype], min(len(b), end), 40):
                stop = min(start + 40, len(b))
                nul = b.find(0, start, stop)
                if nul >= 0:
                    b[nul:stop] = bytes(stop - nul)
        if dtype in TIME_TYPES and len(b) >= 12:
            b[4:12] = b"<zero>!!" if b[4:12] == bytes(8) else b"<set>!!!"
    return bytes(b)


# -- UDP
def udp_send(host: str, port: int, data: bytes, *, wait_s: float = 0.0) -> list[bytes]:
    """Send one datagram; return the datagrams that came back within ``wait_s``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(data, (host, port))
        got = []
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return got
            got.append(s.recv(65536))


def search(host: str, port: int, names: list[str], *, timeout_s: float = 1.0,
           minor: int = 13, version_first: bool = True) -> dict[str, list[Msg] | None]:
    """UDP-search ``names`` (one datagram, VERSION first unless told otherwise; search ids are
    1, 2, ... in order). Returns, per name, the SEARCH reply messages or None if unanswered
    within ``timeout_s`` (stops early once every name is answered)."""
    body = (version(0, minor) if version_first else b"") + b"".join(
        search_msg(n, i + 1, NO_REPLY, minor) for i, n in enumerate(names))
    found: dict[int, list[Msg]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(body, (host, port))
        deadline = time.monotonic() + timeout_s
        while len(found) < len(names):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            for m in parse(s.recv(65536))[0]:
                if m.command == SEARCH:
                    found.setdefault(m.p2, []).append(m)
    return {n: found.get(i + 1) for i, n in enumerate(names)}


def norm_search(msgs: list[Msg] | None, port: int) -> tuple | None:
    """A SEARCH reply as a comparable tuple. The data type carries the server's TCP port (each
    server has its own: replaced by "port" when it is that server's), p1 the server address or
    0xFFFFFFFF ("use the datagram's source"; both mean the same: replaced by "addr")."""
    if msgs is None:
        return None
    out = []
    for m in msgs:
        out.append(("SEARCH", "port" if m.data_type == port else m.data_type, m.count,
                    "addr" if m.p1 in (0xFFFFFFFF, 0x7F000001) else m.p1, m.p2, m.payload[:2]))
    return tuple(out)
