"""CA over UDP: the name server (search replies) and the beacons, as rsrv's cast_server.c and
online_notify.c do them.

Search: a datagram is a sequence of messages; it must begin with VERSION (the client's minor
version, and from V4.11 a sequence number echoed in the reply); each SEARCH for a name this IOC
has is answered (one reply datagram per request datagram, a VERSION message first). Anything
else — an unknown command, a misaligned or truncated message, an old version — ends the handling
of that datagram silently, as rsrv does; names not found get no answer over UDP.

Beacons: RSRV_IS_UP to every beacon address, starting at 20 ms and doubling up to
``EPICS_CAS_BEACON_PERIOD`` (else ``EPICS_CA_BEACON_PERIOD``, 15 s), on ``EPICS_CAS_BEACON_PORT``
or, when that is unset, ``EPICS_CA_REPEATER_PORT`` (5065). A failing address is reported once
per kind of error, and once when it works again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from typing import TYPE_CHECKING

from . import protocol as P

if TYPE_CHECKING:
    from .server import CaServer

log = logging.getLogger("ioc.ca")

_VERSION_REPLY = struct.Struct(">HHHHII")


class SearchProtocol(asyncio.DatagramProtocol):
    """The UDP name server on one interface."""

    def __init__(self, server: "CaServer"):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.n_bad = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            reply = self.handle(data)
        except Exception:   # noqa: BLE001 - no datagram may stop the name server
            log.exception("CA search datagram from %s could not be handled", addr)
            return
        if reply and self.transport is not None:
            try:
                self.transport.sendto(reply, addr)
            except OSError as exc:
                log.debug("search reply to %s failed: %s", addr, exc)

    def error_received(self, exc) -> None:
        log.debug("CA UDP error: %s", exc)

    def handle(self, data: bytes) -> bytes:
        """The reply datagram for one request datagram (b"" for none)."""
        server = self.server
        n = len(data)
        pos = 0
        minor = 0
        seq = 0
        replies: list[bytes] = []
        while n - pos >= P.HEADER_SIZE:
            cmd, size, dtype, count, p1, p2 = P.unpack_header(data, pos)
            msgsize = P.HEADER_SIZE + size
            if cmd != P.VERSION and minor < P.MINIMUM_SUPPORTED_VERSION:
                break
            if msgsize & 7 or n - pos < msgsize:
                self._bad(pos, "misaligned or truncated message")
                break
            if cmd == P.VERSION:
                minor = count
                if minor < P.MINIMUM_SUPPORTED_VERSION:
                    break
                seq = p1 if minor >= 11 else 0
            elif cmd == P.SEARCH:
                if count < P.MINIMUM_SUPPORTED_VERSION:
                    break
                if size > 1:
                    name = data[pos + P.HEADER_SIZE:pos + msgsize - 1].split(b"\0", 1)[0]
                    if server.find(name.decode("latin-1")):
                        replies.append(P.pack_header(P.SEARCH, 8, server.port, 0, 0xFFFFFFFF,
                                                     p2) + struct.pack(">H6x",
                                                                       P.MINOR_VERSION))
            else:
                self._bad(pos, f"command {cmd} is not a UDP request")
                break
            pos += msgsize
        if not replies:
            return b""
        return _VERSION_REPLY.pack(P.VERSION, 0, 0, P.MINOR_VERSION, seq, 0) + b"".join(replies)

    def _bad(self, pos: int, what: str) -> None:
        self.n_bad += 1
        if self.n_bad <= 3 or self.n_bad % 1000 == 0:
            log.debug("CA search datagram ignored (%s at byte %d); %d so far", what, pos,
                      self.n_bad)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def beacon_port() -> int:
    """EPICS_CAS_BEACON_PORT, else EPICS_CA_REPEATER_PORT, else 5065 (rsrv_init)."""
    return P.env_param(("EPICS_CAS_BEACON_PORT", "EPICS_CA_REPEATER_PORT"), P.parse_port,
                       5065, "a port")


def beacon_period_s() -> float:
    return P.env_param(("EPICS_CAS_BEACON_PERIOD", "EPICS_CA_BEACON_PERIOD"),
                       P.parse_positive, 15.0, "a positive number")


def _broadcast_addresses(interfaces: list[str]) -> list[str]:
    """Broadcast addresses of this host's IPv4 interfaces (those in ``interfaces`` when it
    names specific addresses), as osiSockDiscoverBroadcastAddresses finds them."""
    import fcntl
    out = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            req = struct.pack("256s", name.encode()[:15])
            try:
                addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])
                flags = struct.unpack("H", fcntl.ioctl(s.fileno(), 0x8913, req)[16:18])[0]
            except OSError:
                continue
            if not flags & 0x1:            # IFF_UP
                continue
            if interfaces and "0.0.0.0" not in interfaces and addr not in interfaces:
                continue
            if flags & 0x2:                # IFF_BROADCAST
                try:
                    bcast = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8919, req)[20:24])
                except OSError:
                    continue
                out.append(bcast)
            elif flags & 0x8 and interfaces and addr in interfaces:   # loopback named
                out.append(addr)
    finally:
        s.close()
    return out


def beacon_addresses(interfaces: list[str], port: int) -> list[tuple[str, int]]:
    """EPICS_CAS_BEACON_ADDR_LIST (else EPICS_CA_ADDR_LIST) plus, unless
    EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO, the interfaces' broadcast addresses."""
    text = _env("EPICS_CAS_BEACON_ADDR_LIST") or _env("EPICS_CA_ADDR_LIST")
    auto_text = _env("EPICS_CAS_AUTO_BEACON_ADDR_LIST") or _env("EPICS_CA_AUTO_ADDR_LIST")
    auto = auto_text.upper() not in ("NO", "N", "0", "FALSE")
    addrs: list[tuple[str, int]] = []
    for item in text.split():
        host, _, p = item.partition(":")
        try:
            addrs.append((socket.gethostbyname(host), int(p) if p else port))
        except (OSError, ValueError):
            log.warning("beacon address %r is not usable; ignored", item)
    if auto:
        addrs += [(a, port) for a in _broadcast_addresses(interfaces)]
    seen = set()
    return [a for a in addrs if not (a in seen or seen.add(a))]


async def send_beacons(server: "CaServer") -> None:
    """The beacon task: runs until cancelled."""
    port = beacon_port()
    addrs = beacon_addresses(server.interfaces, port)
    if not addrs:
        log.warning("CA server has an empty beacon address list")
        return
    period = beacon_period_s()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setblocking(False)
    last_error: dict[tuple[str, int], int] = {}
    delay = 0.02
    counter = 0
    try:
        while True:
            msg = P.pack_header(P.RSRV_IS_UP, 0, P.MINOR_VERSION, server.port, counter, 0)
            for addr in addrs:
                try:
                    sock.sendto(msg, addr)
                except OSError as exc:
                    if last_error.get(addr) != exc.errno:
                        log.warning("CA beacon send to %s:%d failed: %s", addr[0], addr[1],
                                    exc.strerror or exc)
                        last_error[addr] = exc.errno
                else:
                    if last_error.pop(addr, None):
                        log.info("CA beacon send to %s:%d ok", *addr)
            await asyncio.sleep(delay)
            delay = min(delay * 2, period)
            counter = (counter + 1) & 0xFFFFFFFF
    finally:
        sock.close()
