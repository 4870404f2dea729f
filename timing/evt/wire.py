"""EventTime's UDP messages: drvTS's 52-byte ``TSstampTrans`` plus our trailer.

Layout (every field a big-endian 32-bit unsigned int; times in the EPICS epoch)::

    offset  field                    meaning
     0      magic                    0x54536472 ("TSdr"); anything else is dropped
     4      type                     0 time request (and its reply), 1 sync request, 2 sync message
     8      master_time.sec/.nsec    time of the master's last sync event (its sync stamp)
    16      current_time.sec/.nsec   the master's event time when it sent the message
    24      unix_time.sec/.nsec      unused, 0 (drvTS never fills it either)
    32      sync_rate                seconds between sync events
    36      clock_hz                 tick rate
    40      mask                     bit 0: stamp taken from the reference (NTP) at this sync
                                     (drvTS's TS_STAMP_FROM_UNIX); bit 1: master invalid;
                                     bits 8-15: the master's fault code (EVT_ntpLock_lost = 3)
    44      syncReportThreshold      ms (drvTS 3.13; informational)
    48      syncUnixReportThreshold  ms
    --- our trailer ---
    52      seq                      sync messages: the master's message counter (seeded from the
                                     clock, so it keeps rising across restarts); time requests: a
                                     random nonce, echoed by the reply
    56      HMAC-SHA256              of bytes 0..55, only when a shared key is configured
                                     (``EVT_AUTH_KEY``): 88 bytes in all

A receiver **with** a key accepts only 88-byte messages whose HMAC verifies; a receiver
**without** a key accepts 52 (plain drvTS), 56 and 88-byte messages (the HMAC of the last is not
checked). Anything else -- short, long, wrong magic, unknown type, nanoseconds >= 1e9, failed
authentication -- raises :class:`BadMessage` with a short reason, which callers count and drop.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import socket
import struct
from dataclasses import dataclass, replace

Stamp = tuple[int, int]

MAGIC = 0x54536472
TYPE_TIME_REQUEST, TYPE_SYNC_REQUEST, TYPE_SYNC_MSG = 0, 1, 2
TYPE_NAMES = {0: "time request", 1: "sync request", 2: "sync message"}
MASK_STAMP_FROM_REF = 0x0001
MASK_MASTER_INVALID = 0x0002
FAULT_SHIFT = 8

LEN_DRVTS = 52
LEN_SEQ = 56
LEN_AUTH = 88

DEFAULT_SLAVE_PORT = 18322
DEFAULT_MASTER_PORT = 18323

_BODY = struct.Struct("!13I")
_SEQ = struct.Struct("!I")
_NS = 1_000_000_000


class BadMessage(ValueError):
    """A datagram that is not a usable EventTime message; ``str()`` is the reason."""


@dataclass(frozen=True)
class TsMessage:
    """One message. ``seq`` is None for a plain 52-byte drvTS message; ``authenticated`` is
    True when its HMAC was verified."""
    type: int
    master_time: Stamp = (0, 0)
    current_time: Stamp = (0, 0)
    sync_rate: int = 0
    clock_hz: int = 0
    mask: int = 0
    sync_report_ms: int = 0
    unix_report_ms: int = 10
    seq: int | None = None
    authenticated: bool = False

    @property
    def master_invalid(self) -> bool:
        return bool(self.mask & MASK_MASTER_INVALID)

    @property
    def fault(self) -> int:
        return (self.mask >> FAULT_SHIFT) & 0xFF

    @property
    def master_ns(self) -> int:
        return self.master_time[0] * _NS + self.master_time[1]

    @property
    def current_ns(self) -> int:
        return self.current_time[0] * _NS + self.current_time[1]

    def with_seq(self, seq: int | None) -> "TsMessage":
        return replace(self, seq=seq)


def make_mask(valid: bool, fault: int, from_ref: bool = False) -> int:
    return ((0 if valid else MASK_MASTER_INVALID) | (MASK_STAMP_FROM_REF if from_ref else 0)
            | ((fault & 0xFF) << FAULT_SHIFT))


def stamp_of_ns(ns: int) -> Stamp:
    sec, nsec = divmod(int(ns), _NS)
    return sec & 0xFFFFFFFF, nsec


def encode(msg: TsMessage, key: bytes | None = None) -> bytes:
    """The datagram: 52 bytes if ``msg.seq`` is None and there is no key, else with trailer."""
    body = _BODY.pack(MAGIC, msg.type, msg.master_time[0] & 0xFFFFFFFF, msg.master_time[1],
                      msg.current_time[0] & 0xFFFFFFFF, msg.current_time[1], 0, 0,
                      msg.sync_rate & 0xFFFFFFFF, msg.clock_hz & 0xFFFFFFFF,
                      msg.mask & 0xFFFFFFFF, msg.sync_report_ms & 0xFFFFFFFF,
                      msg.unix_report_ms & 0xFFFFFFFF)
    if msg.seq is None and key is None:
        return body
    data = body + _SEQ.pack((msg.seq or 0) & 0xFFFFFFFF)
    if key is not None:
        data += hmac.new(key, data, hashlib.sha256).digest()
    return data


def decode(data: bytes, key: bytes | None = None) -> TsMessage:
    """Parse and check one datagram (see the module docstring); raises BadMessage."""
    n = len(data)
    if n < LEN_DRVTS:
        raise BadMessage("short")
    (magic, typ, m_sec, m_nsec, c_sec, c_nsec, _u_sec, _u_nsec, rate, hz, mask, thr1,
     thr2) = _BODY.unpack_from(data)
    if magic != MAGIC:
        raise BadMessage("wrong magic")
    authenticated = False
    seq = None
    if key is not None:
        if n != LEN_AUTH:
            raise BadMessage("unauthenticated")
        digest = hmac.new(key, data[:LEN_SEQ], hashlib.sha256).digest()
        if not hmac.compare_digest(digest, data[LEN_SEQ:]):
            raise BadMessage("authentication failed")
        authenticated = True
        seq = _SEQ.unpack_from(data, LEN_DRVTS)[0]
    elif n in (LEN_SEQ, LEN_AUTH):
        seq = _SEQ.unpack_from(data, LEN_DRVTS)[0]
    elif n != LEN_DRVTS:
        raise BadMessage("bad length")
    if typ not in TYPE_NAMES:
        raise BadMessage("unknown type")
    if m_nsec >= _NS or c_nsec >= _NS:
        raise BadMessage("malformed time")
    return TsMessage(typ, (m_sec, m_nsec), (c_sec, c_nsec), rate, hz, mask, thr1, thr2, seq,
                     authenticated)


def seq_newer(seq: int, last: int) -> bool:
    """True if ``seq`` follows ``last`` in 32-bit serial-number arithmetic (RFC 1982)."""
    d = (seq - last) & 0xFFFFFFFF
    return 0 < d < 0x80000000


def initial_seq() -> int:
    """A master's first sequence number: 16 per second of wall-clock time, so a restarted master
    continues above what it sent before (it sends about one sync message a second)."""
    import time
    return (int(time.time()) * 16) & 0xFFFFFFFF


def random_nonce() -> int:
    return int.from_bytes(os.urandom(4), "big")


def auth_key(environ) -> bytes | None:
    """``EVT_AUTH_KEY`` as bytes, or None when unset/empty."""
    text = environ.get("EVT_AUTH_KEY", "")
    return text.encode("utf-8") if text else None


# ------------------------------------------------------------------ addresses
class AddressError(ValueError):
    pass


def parse_address_list(text: str, default_port: int) -> list[tuple[str, int]]:
    """``"host[:port] host2[:port]"`` (blanks or commas) -> [(ip, port)]; names are resolved."""
    out = []
    for item in text.replace(",", " ").split():
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        try:
            port_n = int(port)
        except ValueError:
            raise AddressError(f"bad port in address {item!r}") from None
        if not host or not 0 < port_n < 65536:
            raise AddressError(f"bad address {item!r}")
        try:
            ip = socket.gethostbyname(host)
        except OSError:
            raise AddressError(f"unknown host in address {item!r}") from None
        out.append((ip, port_n))
    return out


_SIOCGIFFLAGS = 0x8913
_SIOCGIFBRDADDR = 0x8919
_IFF_UP, _IFF_BROADCAST, _IFF_LOOPBACK = 0x1, 0x2, 0x8


def broadcast_addresses() -> list[str]:
    """The broadcast address of every interface that is up, has broadcast and is not the
    loopback (as CA's automatic address list); ``127.255.255.255`` if there is none. A
    broadcast also reaches the sockets of this host."""
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _idx, name in socket.if_nameindex():
                ifr = struct.pack("256s", name.encode()[:15])
                try:
                    flags = struct.unpack_from("H", fcntl.ioctl(s, _SIOCGIFFLAGS, ifr), 16)[0]
                    if not flags & _IFF_UP or flags & _IFF_LOOPBACK or not flags & _IFF_BROADCAST:
                        continue
                    brd = socket.inet_ntoa(fcntl.ioctl(s, _SIOCGIFBRDADDR, ifr)[20:24])
                except OSError:
                    continue
                if brd not in found and brd != "0.0.0.0":
                    found.append(brd)
    except OSError:
        pass
    return found or ["127.255.255.255"]


def format_address(addr: tuple[str, int] | None) -> str:
    return "" if addr is None else f"{addr[0]}:{addr[1]}"
