"""One CA client's TCP circuit: parse, dispatch, answer, and deliver subscription updates.

Requests are handled as EPICS base's rsrv handles them (camessage.c), answer for answer: the
same replies, the same CA status codes, and the same choice between "send an error and go on"
and "send an error and close this circuit" (a bad resource id, an unknown command, a misaligned
message or an invalid request type close it, as in rsrv). Any exception while serving one
message is caught here: the client gets ECA_INTERNAL for it, the circuit is closed, the event
is logged once with the client's host and user, and nothing else in the IOC is affected.

Subscription updates go through a per-circuit event queue bounded as dbEvent.c's (see
``ioc.ca.events``): once a circuit holds 96 queued updates per 32 subscriptions, or while the
client is in flow control (EVENTS_OFF) or not reading (its transport's write buffer is full), a
subscription that already has an update queued gets its last one replaced by the newest. So a
slow client gets the newest values, in order, and never makes record processing or other
clients wait. The event task writes a circuit's updates in one ``write`` call, at a lower
priority than record processing; updates produced while serving a client's requests go out
with the replies.

The request handlers are in ``ioc.ca.requests`` and the put conversions in ``ioc.ca.puts``.

This replaces caproto 1.3.0's ``VirtualCircuit`` (caproto.server.common / caproto.asyncio.server)
for TCP entirely: its per-message command objects and unbounded, context-wide subscription
queue were the cost and the leak of subscription churn, and the source of the "deque mutated
during iteration" crash. caproto's message classes remain the reference the tests build raw
requests with.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
from typing import TYPE_CHECKING

from . import protocol as P
from .dbr import dbr_size_n as _dbr_size_n
from ..access.acf import ascii_lower
from ..access.context import Putter
from .channel import ClientChannel, Subscription
from .events import queue_limit
from .requests import _TCP_TABLE, CloseCircuit, RequestHandlers, bad_command

if TYPE_CHECKING:
    from .server import CaServer

log = logging.getLogger("ioc.ca")

WRITE_HIGH_WATER = 256 * 1024
MAX_LOGGED_PER_CIRCUIT = 5

_unpack_hdr = P.unpack_header
_unpack_ext = P.unpack_ext
_pack_hdr = P.pack_header
_HDR_SIZE = P.HEADER_SIZE
_MON_MASK = struct.Struct(">H").unpack_from
_CHANNEL_REQUESTS = frozenset({P.EVENT_ADD, P.EVENT_CANCEL, P.READ, P.READ_NOTIFY, P.WRITE,
                               P.WRITE_NOTIFY})


class Circuit(RequestHandlers, asyncio.Protocol):
    """The server end of one client's TCP connection."""

    def __init__(self, server: "CaServer"):
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.drain = 0                   # bytes of an oversized message still to discard
        self.minor = 0                   # CA_UKN_MINOR_VERSION until VERSION arrives
        self.priority = 0
        self.peer = ("?", 0)
        self.host = ""                   # for reports: the peer's address until HOST_NAME
        self.user = ""
        #: the host name access security matches (asAddClient's pHostName): the client's
        #: HOST_NAME message, or its dotted address under asCheckClientIP; "" until then
        self.as_host = ""
        self._putter: Putter | None = None
        self.as_counted = False          # told access security it is connected
        self.channels: dict[int, ClientChannel] = {}
        self.evq: collections.deque = collections.deque()
        self.flow_control = False
        self.nsubs = 0
        self.evq_limit = queue_limit(0)
        self.write_paused = False
        self.closed = False
        self.blocked = False             # waiting for a put-callback on a busy channel
        self.flush_handle: bool | None = None    # an event-task run is requested
        self.out: list[bytes] = []
        self.n_logged = 0
        self._cur: tuple = (0, 0, 0, 0, 0, 0)      # the request being served

    # ----------------------------------------------------------------- transport
    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = peer[:2]
        self.host = str(self.peer[0])
        if self.server.db.access.check_client_ip:
            # rsrv under asCheckClientIP: the host is the client's address, whatever it says
            self.as_host = self.host
        if sock is not None:
            try:
                # rsrv sets TCP_NODELAY: without it a reply followed by a monitor update
                # waits for the client's delayed ACK (asyncio does not set it here because
                # the listening socket was created with protocol 0).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.server.circuits.add(self)
        # rsrv announces its version as soon as a client connects.
        transport.write(_pack_hdr(P.VERSION, 0, 0, P.MINOR_VERSION, 0, 0))

    def connection_lost(self, exc) -> None:
        self._teardown()

    def pause_writing(self) -> None:
        # The client is not reading: stop reading its requests too (rsrv blocks in send), and
        # let its subscriptions coalesce in the event queue.
        self.write_paused = True
        if self.transport is not None and not self.closed:
            try:
                self.transport.pause_reading()
            except (RuntimeError, AttributeError):
                pass

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.closed:
            if not self.blocked:
                try:
                    self.transport.resume_reading()
                except (RuntimeError, AttributeError):
                    pass
            self.schedule_flush()

    def close(self) -> None:
        """Send what is queued and close the connection (rsrv's forced disconnect)."""
        if self.closed:
            return
        self._send_out()
        if self.transport is not None:
            self.transport.close()
        self._teardown()

    def _teardown(self) -> None:
        if self.closed:
            return
        self.closed = True
        for chan in self.channels.values():
            self._drop_channel(chan)
        self.channels.clear()
        if self.as_counted:
            self.as_counted = False
            self.server.db.access.circuit_closed(self.user, self.as_host)
        self.evq.clear()
        self.out.clear()
        self.buf = bytearray()
        self.flush_handle = None
        self.server.events.pending.pop(self, None)
        self.server.circuits.discard(self)

    def _count_subs(self, delta: int) -> None:
        self.nsubs += delta
        self.evq_limit = queue_limit(self.nsubs)

    def _drop_channel(self, chan: ClientChannel) -> None:
        if chan.asc is not None:
            self.server.db.access.remove_client(chan.asc)
            chan.asc = None
        subs = chan.fc.subs
        for sub in chan.subs.values():
            sub.dead = True
            subs.pop(sub, None)
        self._count_subs(-len(chan.subs))
        chan.subs.clear()
        self.server.channel_closed(chan)

    # ------------------------------------------------------------ access security
    @property
    def putter(self) -> Putter:
        """Who this circuit's puts come from (user, host as access security matches it).
        The names cannot change once a channel exists (rsrv refuses it), and a put needs a
        channel, so the first put fixes it."""
        p = self._putter
        if p is None:
            p = self._putter = Putter(self.user, ascii_lower(self.as_host), "CA")
        return p

    def rights_changed(self, asc) -> None:
        """casAccessRightsCB: a channel's rights changed (reload, CALC input, ASG, token).

        The client gets CA_PROTO_ACCESS_RIGHTS, and every subscription of the channel one
        event: the current value when it may read, else one ECA_NORDACCESS event, after which
        its events stop until read access comes back."""
        chan = asc.owner
        if self.closed or self.channels.get(chan.sid) is not chan:
            return
        chan.readable = asc.can_read
        self.out.append(_pack_hdr(P.ACCESS_RIGHTS, 0, 0, 0, chan.cid, chan.rights()))
        if chan.subs:
            fl = chan.fc.current_log(self.server.epoch)
            for sub in chan.subs.values():
                log_ = chan.prepare(fl, sub.mask) if (chan.ls or chan.chain is not None) \
                    else fl
                if log_ is not None:
                    self.queue_event(sub, log_)
        if not self.evq or self.flow_control or self.write_paused:
            self._send_out()

    def no_read_reply(self, cmd: int, dtype: int, count: int, p2: int) -> bytes:
        """no_read_access_event: the answer to a read or an update the client may not see,
        ECA_NORDACCESS in the status field and a zeroed value of the size it asked for."""
        size = P.pad8(_dbr_size_n(dtype, count))
        return P.header(cmd, size, dtype, count, P.ECA_NORDACCESS, p2) + bytes(size)

    # ------------------------------------------------------------------- receive
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.drain:
            if len(data) <= self.drain:
                self.drain -= len(data)
                return
            data = data[self.drain:]
            self.drain = 0
        buf = self.buf
        buf += data
        if not self.blocked:
            self._process()

    def _process(self) -> None:
        """Handle every complete message in the buffer (camessage)."""
        buf = self.buf
        pos = 0
        n = len(buf)
        server = self.server
        server.epoch += 1
        try:
            while n - pos >= _HDR_SIZE and not self.blocked and not self.closed:
                cmd, size, dtype, count, p1, p2 = _unpack_hdr(buf, pos)
                hsize = _HDR_SIZE
                if size == 0xFFFF and self.minor >= 9:
                    if n - pos < P.EXT_HEADER_SIZE:
                        break
                    size, count = _unpack_ext(buf, pos + _HDR_SIZE)
                    hsize = P.EXT_HEADER_SIZE
                msgsize = (hsize + size) & 0xFFFFFFFF    # rsrv's unsigned arithmetic
                hdr = (cmd, size, dtype, count, p1, p2)
                if cmd != P.VERSION and self.minor < P.MINIMUM_SUPPORTED_VERSION:
                    # Too old (or no VERSION yet): rsrv answers ECA_DEFUNCT and keeps the
                    # connection (to avoid a reconnect loop), but its drain count underflows
                    # and it never serves that circuit again: neither do we.
                    self.send_error(hdr, P.ECA_DEFUNCT,
                                    f"CAS: Client version {self.minor} too old")
                    self._log(f"client version {self.minor} too old; ignoring this client",
                              hdr)
                    self.drain = 1 << 62
                    pos = n
                    break
                if msgsize < hsize:
                    # The size wrapped around (a 4 GB payload): base closes such a circuit.
                    self._log("message size out of range", hdr)
                    raise CloseCircuit
                if msgsize & 7:
                    self.send_error(hdr, P.ECA_INTERNAL, "CAS: Missaligned protocol rejected")
                    self._log("misaligned message", hdr)
                    raise CloseCircuit
                if msgsize > self.server.max_payload:
                    self.send_error(hdr, P.ECA_TOLARGE,
                                    "CAS: Server unable to load large request message. "
                                    f"Max bytes={self.server.max_payload}")
                    self._log("request larger than the largest message this server takes",
                              hdr)
                    if n - pos >= msgsize:
                        pos += msgsize
                        continue
                    self.drain = msgsize - (n - pos)
                    pos = n
                    break
                if n - pos < msgsize:
                    break
                payload = buf[pos + hsize:pos + msgsize] if size else b""
                pos += msgsize
                self._cur = hdr
                _TCP_TABLE.get(cmd, bad_command)(self, hdr, payload)
                if self.blocked:
                    # A put-callback waits for the busy channel: keep this message for later.
                    pos -= msgsize
                    if self.transport is not None:
                        self.transport.pause_reading()
                    break
        except CloseCircuit:
            self.close()
            return
        except Exception:   # noqa: BLE001 - a bad request costs this circuit, never the IOC
            log.exception("CA circuit %s (%s@%s): internal error serving a request; closing",
                          self.peer, self.user, self.host)
            try:
                self.send_error(self._cur, P.ECA_INTERNAL, "server internal error")
            finally:
                self.close()
            return
        if pos:
            del buf[:pos]
        if self.evq and not (self.flow_control or self.write_paused or self.closed):
            # Updates these requests produced (initial values, puts' monitors) go out in the
            # same write as the replies, without waiting for another loop turn.
            self.server.events.pending.pop(self, None)
            self.flush_events()
        else:
            self._send_out()

    def _send_out(self) -> None:
        if self.out and self.transport is not None and not self.transport.is_closing():
            out = self.out
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            self.out = []
        elif self.out:
            self.out = []

    def _log(self, what: str, hdr: tuple) -> None:
        if self.n_logged < MAX_LOGGED_PER_CIRCUIT:
            self.n_logged += 1
            log.warning("CA request from %s:%s (user %r, host %r) => %s "
                        "(cmd=%d size=%d type=%d count=%d p1=0x%x p2=0x%x)%s",
                        self.peer[0], self.peer[1], self.user, self.host, what, *hdr,
                        "; further reports from this client suppressed"
                        if self.n_logged == MAX_LOGGED_PER_CIRCUIT else "")

    # -------------------------------------------------------------------- replies
    def send_error(self, hdr: tuple, status: int, text: str, cid: int | None = None) -> None:
        """CA_PROTO_ERROR: the request's header echoed, then a message (vsend_err). Its p1
        is the client's cid when the request names a channel of this circuit (0xFFFFFFFF
        otherwise), the search's own id for a search."""
        cmd, size, dtype, count, p1, p2 = hdr
        if cid is None:
            if cmd in _CHANNEL_REQUESTS:
                cid = self._cid_of(hdr)
            elif cmd == P.SEARCH:
                cid = p1
            else:
                cid = 0xFFFFFFFF
        if (size >= 0xFFFF or count >= 0xFFFF) and self.minor >= 9:
            req = struct.pack(">HHHHIIII", cmd, 0xFFFF, dtype, 0, p1, p2, size, count)
        else:
            req = _pack_hdr(cmd, size & 0xFFFF, dtype, count & 0xFFFF, p1, p2)
        body = req + text.encode("latin-1", "replace")[:400] + b"\0"
        self.out.append(P.message(P.ERROR, 0, 0, cid, status, body))

    def _cid_of(self, hdr: tuple) -> int:
        chan = self.channels.get(hdr[4])
        return chan.cid if chan is not None else 0xFFFFFFFF

    def _bad_id(self, hdr: tuple) -> None:
        self._log("bad resource ID", hdr)
        self.send_error(hdr, P.ECA_INTERNAL, "Bad Resource ID", self._cid_of(hdr))
        raise CloseCircuit

    def queue_event(self, sub: Subscription, fl) -> None:
        """db_queue_event_log for one subscription of this circuit."""
        if self.closed:
            return
        if sub.npend and (self.flow_control or self.write_paused or
                          len(self.evq) >= self.evq_limit):
            sub.last[1] = fl
            return
        entry = [sub, fl]
        self.evq.append(entry)
        sub.last = entry
        sub.npend += 1
        if self.flush_handle is None and not self.flow_control and not self.write_paused:
            self.schedule_flush()

    def schedule_flush(self) -> None:
        if self.flush_handle is not None or self.closed or not self.evq:
            return
        self.flush_handle = True
        self.server.events.request(self)

    def flush_events(self) -> None:
        """event_read: send queued updates (post-chain, encode) in one write."""
        self.flush_handle = None
        if self.closed or self.flow_control or self.write_paused:
            return
        q = self.evq
        out = self.out
        nbytes = 0
        try:
            while q:
                sub, fl = q.popleft()
                sub.npend -= 1
                if not sub.npend:
                    sub.last = None
                if sub.dead:
                    continue
                chain = sub.chan.chain
                if chain is not None and sub.chan.readable:
                    fl = chain.post(fl)
                    if fl is None:
                        continue
                msg = self._reply(P.EVENT_ADD, sub.dtype, sub.count, sub.subid, sub.chan, fl)
                out.append(msg)
                nbytes += len(msg)
                if nbytes >= WRITE_HIGH_WATER:
                    break
        except Exception:   # noqa: BLE001 - never let one update stop the others
            log.exception("CA circuit %s: failed to deliver an update; closing", self.peer)
            self.close()
            return
        self._send_out()
        if q and not self.write_paused:
            self.schedule_flush()
