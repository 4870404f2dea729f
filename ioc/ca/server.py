"""The Channel Access server of the IOC: TCP circuits, the UDP name server and the beacons,
serving the records of one :class:`~ioc.database.db.Database` on the IOC's asyncio loop.

Environment, as rsrv reads it: ``EPICS_CAS_SERVER_PORT`` (else ``EPICS_CA_SERVER_PORT``, 5064),
``EPICS_CAS_INTF_ADDR_LIST`` (the interfaces to serve; all when empty),
``EPICS_CA_MAX_ARRAY_BYTES`` and ``EPICS_CA_AUTO_ARRAY_BYTES`` (the largest request taken), the
beacon variables (see ``ioc.ca.udp``). When the TCP port is taken the server falls back to a
port of the system's choosing (as rsrv does) and says so; the UDP port is shared
(SO_REUSEADDR/SO_REUSEPORT) so that several IOCs on one host answer searches.

Channel names: ``REC``, ``REC.FIELD``, then the EPICS 7 modifiers: ``$`` (a string or link field
as a CHAR array), ``[s:i:e]`` and JSON5 filters (``ioc.filters``). A name that does not
resolve, or whose modifiers are malformed, fails CREATE_CHAN with CREATE_CH_FAIL.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import socket
from typing import TYPE_CHECKING

from . import protocol as P
from .. import filters
from .channel import ClientChannel, FieldChannel
from .circuit import Circuit
from .events import EventTask
from ..filters import split_pv_name
from .udp import SearchProtocol, send_beacons

if TYPE_CHECKING:
    from ..database.db import Database
    from ..records.base import Record

log = logging.getLogger("ioc.ca")

_MAX_TCP = 16 * 1024                # rsrv's MAX_TCP: the smallest request limit
_AUTO_ARRAY_LIMIT = 64 * 1024 * 1024


def _env_port() -> int:
    return P.env_param(("EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT"), P.parse_port, 5064,
                       "a port")


def _env_interfaces() -> list[str]:
    text = os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "").strip()
    out = []
    for item in text.split():
        host = item.partition(":")[0]
        try:
            out.append(socket.gethostbyname(host))
        except OSError:
            log.warning("EPICS_CAS_INTF_ADDR_LIST entry %r is not an address; ignored", item)
    return out or ["0.0.0.0"]


def max_payload_bytes() -> int:
    """The largest message (header and payload) taken or sent: rsrv's buffer size,
    EPICS_CA_MAX_ARRAY_BYTES plus the largest header, at least MAX_TCP; with
    EPICS_CA_AUTO_ARRAY_BYTES (the default) base grows its buffers as needed, here up to
    64 MiB so that no single request can exhaust the IOC's memory."""
    text = os.environ.get("EPICS_CA_MAX_ARRAY_BYTES", "").strip()
    try:
        configured = int(text) if text else _MAX_TCP
    except ValueError:
        configured = _MAX_TCP
    configured = max(configured + P.EXT_HEADER_SIZE, _MAX_TCP)
    auto = os.environ.get("EPICS_CA_AUTO_ARRAY_BYTES", "YES").strip().upper()
    if auto in ("NO", "N", "0", "FALSE"):
        return configured
    return max(configured, _AUTO_ARRAY_LIMIT)


class CaServer:
    """CA server for ``db``; :meth:`start` binds, :meth:`stop` closes every circuit."""

    def __init__(self, db: "Database", interfaces: list[str] | None = None,
                 port: int | None = None):
        self.db = db
        self.interfaces = interfaces or _env_interfaces()
        self.want_port = port if port is not None else _env_port()
        self.port: int | None = None
        self.max_payload = max_payload_bytes()
        self.circuits: set[Circuit] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._beacons: asyncio.Task | None = None
        self._sids = itertools.count(0)     # as rsrv's bucket ids: 0, 1, 2... for all clients
        # Bumped whenever records may have changed (each batch of requests, each put): the
        # read log of a field taken within one epoch is shared (FieldChannel.current_log).
        self.epoch = 0

    # ------------------------------------------------------------------ names
    def resolve(self, name: str) -> tuple["Record", str, str] | None:
        """(record, field, rest) for a channel name, or None when the record or field does
        not exist (dbChannelTest: the record part, then the field part; "VAL" by default)."""
        recname, field, tail = split_pv_name(name)
        rec = self.db.lookup(recname)
        if rec is None:
            return None
        if field != "RTYP" and not rec.has_field(field):
            return None
        return rec, field, tail

    def find(self, name: str) -> bool:
        """Whether a search for ``name`` is answered (the record and field exist)."""
        return self.resolve(name) is not None

    def create_channel(self, circuit: Circuit, cid: int, name: str) -> ClientChannel | None:
        """A new client channel, or None (logged) where base answers CREATE_CH_FAIL."""
        found = self.resolve(name)
        if found is None:
            return None
        rec, field, tail = found
        long_string = False
        factory = None
        if tail:
            try:
                parsed = filters.parse_channel_name(name)
            except filters.FilterError as exc:
                log.warning("CA channel %r from %s@%s refused: %s", name, circuit.user,
                            circuit.host, exc)
                return None
            long_string = parsed.long_string
            dbf = "DBF_STRING" if field == "RTYP" else rec.field_type(field)
            if long_string and not (dbf == "DBF_STRING" or dbf.endswith("LINK")):
                log.warning("CA channel %r: '$' applies to string and link fields only", name)
                return None
            specs = parsed.filters
            if specs:
                def make_chain(chan: ClientChannel, specs=specs):
                    info = filters.FieldInfo(dbf=chan.dbf, nelm=chan.nelm,
                                             is_array=chan.fc.is_array or chan.ls,
                                             read_array=chan.read_array, name=name)
                    return filters.build_chain(specs, info, now=self.db.time_source.
                                               get_current)
                factory = make_chain
        fc = rec.channels.get(field) or FieldChannel(rec, field)
        try:
            chan = ClientChannel(circuit, cid, next(self._sids) & 0xFFFFFFFF, fc, name,
                                 long_string, factory)
        except filters.FilterError as exc:
            log.warning("CA channel %r from %s@%s refused: %s", name, circuit.user,
                        circuit.host, exc)
            return None
        rec.channels[field] = fc
        fc.nchan += 1
        # asAddClient: the channel's rights from the client's user and host names
        chan.asc = self.db.access.add_client(rec, field, circuit.user, circuit.as_host,
                                             circuit.rights_changed, chan)
        chan.readable = chan.asc.can_read
        return chan

    def channel_closed(self, chan: ClientChannel) -> None:
        fc = chan.fc
        fc.nchan -= 1
        if fc.nchan <= 0 and fc.record.channels.get(fc.field) is fc:
            # No client has the field open any more: forget its channel, so that a field once
            # opened costs nothing after every client has gone.
            del fc.record.channels[fc.field]
            fc._now = None          # (its cached log refers back to it)

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        loop = self.loop
        self.events = EventTask(loop)
        tcp_socks = []
        port = self.want_port
        for iface in self.interfaces:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((iface, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or tcp_socks:
                    s.close()
                    raise
                log.warning("CA server port %d on %s is in use; using a free port instead",
                            port, iface)
                s.bind((iface, 0))
            port = s.getsockname()[1]
            s.listen(128)
            s.setblocking(False)
            tcp_socks.append(s)
        self.port = port
        for s in tcp_socks:
            self._servers.append(await loop.create_server(lambda: Circuit(self), sock=s))
        for iface in self.interfaces:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            u.bind((iface, self.want_port))
            u.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(lambda: SearchProtocol(self),
                                                               sock=u)
            self._udp.append(transport)
        self._beacons = loop.create_task(send_beacons(self), name="ca-beacons")

    async def stop(self) -> None:
        if self._beacons is not None:
            self._beacons.cancel()
            try:
                await self._beacons
            except (asyncio.CancelledError, Exception):   # noqa: BLE001
                pass
        for t in self._udp:
            t.close()
        for s in self._servers:
            s.close()
        for c in list(self.circuits):
            c.close()
        for s in self._servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):     # noqa: BLE001
                pass
        self._servers.clear()
        self._udp.clear()

    def report(self, level: int = 0) -> str:
        """casr: the server's port, and each client with its channel count."""
        lines = [f"Channel Access Server V4.{P.MINOR_VERSION}",
                 f"Connected circuits: {len(self.circuits)}; server port {self.port}"]
        for c in sorted(self.circuits, key=lambda c: c.peer):
            lines.append(f"TCP client at {c.peer[0]}:{c.peer[1]} '{c.host}': User '{c.user}'"
                         f" V4.{c.minor} Priority={c.priority} Channel count={len(c.channels)}")
            if level > 0:
                for ch in c.channels.values():
                    lines.append(f"    {ch.name} ({len(ch.subs)} subscriptions)")
        return "\n".join(lines)
