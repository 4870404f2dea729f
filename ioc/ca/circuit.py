"""One CA client's TCP circuit: parse, dispatch, answer, and deliver subscription updates.

Requests are handled as EPICS base's rsrv handles them (camessage.c), answer for answer: the
same replies, the same CA status codes, and the same choice between "send an error and go on"
and "send an error and close this circuit" (a bad resource id, an unknown command, a misaligned
message or an invalid request type close it, as in rsrv). Any exception while serving one
message is caught here: the client gets ECA_INTERNAL for it, the circuit is closed, the event
is logged once with the client's host and user, and nothing else in the IOC is affected.

Subscription updates go through a per-circuit event queue shaped like dbEvent.c's: each
subscription holds at most ``EVENT_ENTRIES`` queued updates and, past that or while the client
is in flow control (EVENTS_OFF) or not reading (the transport's write buffer is full), the
newest update replaces its last queued one. So a slow client gets the newest values, in order,
and never makes record processing or other clients wait. Updates are written once per loop
turn (and, under sustained load, at most every ``FLUSH_INTERVAL_S``), in one ``write`` call.

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
import time
from typing import TYPE_CHECKING

import numpy as np

from ..records.base import NO_VALUE, PutError, PutNotify
from ..records.fields import FLOAT_TYPES, INT_RANGES, LINK_TYPES
from ..records.constants import DBE_ALARM, DBE_VALUE
from . import dbr
from . import protocol as P
from .channel import ClientChannel, Subscription

if TYPE_CHECKING:
    from .server import CaServer

log = logging.getLogger("ioc.ca")

# dbEvent.c: each event queue serves EVENTSPERQUE (32) subscriptions with EVENTENTRIES (4)
# slots each, in one ring shared by them; a subscription that already has an update queued
# has its newest one replaced once no more than EVENTSPERQUE slots are free. One busy
# subscription may so hold up to 96 updates, and a client's backlog stays bounded.
EVENTS_PER_QUE = 32
EVENT_ENTRIES = 4


def queue_limit(nsubs: int) -> int:
    """Queued updates of a circuit with ``nsubs`` subscriptions past which they coalesce."""
    nques = max(1, (nsubs + EVENTS_PER_QUE - 1) // EVENTS_PER_QUE)
    return nques * EVENTS_PER_QUE * (EVENT_ENTRIES - 1)
MAX_DEFER_S = 0.010           # longest an update waits for the loop to have nothing else ready
WRITE_HIGH_WATER = 256 * 1024
MAX_LOGGED_PER_CIRCUIT = 5

_unpack_hdr = P.unpack_header
_unpack_ext = P.unpack_ext
_pack_hdr = P.pack_header
_HDR_SIZE = P.HEADER_SIZE
_MON_MASK = struct.Struct(">H").unpack_from
_NUMERIC_DBF = FLOAT_TYPES | frozenset(INT_RANGES)
_CHANNEL_REQUESTS = frozenset({P.EVENT_ADD, P.EVENT_CANCEL, P.READ, P.READ_NOTIFY, P.WRITE,
                               P.WRITE_NOTIFY})


def _put_precision(rec, field: str) -> int:
    """The precision a double written to a string field is printed with: the record
    support's get_precision where the record type has one, else 6 (dbFastLinkConv)."""
    fn = getattr(rec, "rset_precision", None)
    p = fn(field) if fn is not None else None
    return 6 if p is None else int(p)


class EventTask:
    """The circuits' event delivery, at a lower priority than record processing (rsrv's event
    tasks run below the scan tasks): queued updates are written when the loop has nothing
    else ready to run, or once they have waited ``MAX_DEFER_S``. Isolated updates go out at
    once; under a flat-out producer each client gets the newest values, coalesced, and record
    processing keeps its rate."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: dict["Circuit", None] = {}
        self._handle = None
        self._since = 0.0
        # CPython's event loop keeps its ready callbacks in ``_ready``; without it (another
        # loop implementation) updates simply go out on the next loop turn.
        self._ready = getattr(loop, "_ready", None)

    def request(self, circuit: "Circuit") -> None:
        self.pending[circuit] = None
        if self._handle is None:
            self._since = time.monotonic()
            self._handle = self.loop.call_soon(self._run)

    def _run(self) -> None:
        self._handle = None
        if not self.pending:
            return
        if self._ready and time.monotonic() - self._since < MAX_DEFER_S:
            self._handle = self.loop.call_soon(self._run)     # after what is waiting
            return
        pending, self.pending = self.pending, {}
        for circuit in pending:
            circuit.flush_events()


class CloseCircuit(Exception):
    """Raised by a handler: flush what is queued, then close (rsrv's RSRV_ERROR)."""


class Circuit(asyncio.Protocol):
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
        self.host = ""
        self.user = ""
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
        self.n_msgs = 0
        self._cur: tuple = (0, 0, 0, 0, 0, 0)      # the request being served

    # ----------------------------------------------------------------- transport
    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = peer[:2]
        self.host = str(self.peer[0])
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
        subs = chan.fc.subs
        for sub in chan.subs.values():
            sub.dead = True
            subs.pop(sub, None)
        self._count_subs(-len(chan.subs))
        chan.subs.clear()
        self.server.channel_closed(chan)

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
                self.n_msgs += 1
                self._cur = hdr
                _TCP_TABLE.get(cmd, _bad)(self, hdr, payload)
                if self.blocked:
                    # A put-callback waits for the busy channel: keep this message for later.
                    pos -= msgsize
                    self.n_msgs -= 1
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

    def _bad_command(self, hdr: tuple, payload) -> None:
        text = "invalid (damaged?) request code from TCP"
        self._log(text, hdr)
        self.send_error(hdr, P.ECA_INTERNAL, text)
        raise CloseCircuit

    # ------------------------------------------------------------------ handlers
    def _version(self, hdr, payload) -> None:
        cmd, size, dtype, count, p1, p2 = hdr
        self.minor = count
        if count < P.MINIMUM_SUPPORTED_VERSION or dtype > P.PRIORITY_MAX:
            raise CloseCircuit
        self.priority = dtype

    def _echo(self, hdr, payload) -> None:
        cmd, size, dtype, count, p1, p2 = hdr
        self.out.append(P.header(cmd, size, dtype, count, p1, p2) + bytes(payload))

    def _events_off(self, hdr, payload) -> None:
        self.flow_control = True

    def _events_on(self, hdr, payload) -> None:
        self.flow_control = False
        self.schedule_flush()

    def _read_sync(self, hdr, payload) -> None:
        cmd, size, dtype, count, p1, p2 = hdr
        self.out.append(_pack_hdr(cmd, 0, dtype, count & 0xFFFF, p1, p2))

    def _name(self, hdr, payload, what: str) -> str | None:
        if self.channels:
            self.send_error(hdr, P.ECA_INTERNAL,
                            f"attempts to use protocol to set {what} name "
                            "after creating first channel ignored by server")
            return None
        raw = bytes(payload)
        text = raw.split(b"\0", 1)[0]
        if len(text) + 1 > 512 or len(text) + 1 > len(raw):
            msg = "bad (very long) host name" if what == "host" else \
                "a very long user name was specified"
            self._log(msg, hdr)
            self.send_error(hdr, P.ECA_INTERNAL, msg)
            raise CloseCircuit
        return text.decode("latin-1")

    def _host_name(self, hdr, payload) -> None:
        name = self._name(hdr, payload, "host")
        if name is not None:
            self.host = name

    def _client_name(self, hdr, payload) -> None:
        name = self._name(hdr, payload, "user")
        if name is not None:
            self.user = name

    def _search(self, hdr, payload) -> None:
        cmd, size, dtype, count, p1, p2 = hdr
        if count < P.MINIMUM_SUPPORTED_VERSION:
            raise CloseCircuit
        if size <= 1:
            return
        name = bytes(payload[:size - 1]).split(b"\0", 1)[0].decode("latin-1")
        if self.server.find(name):
            self.out.append(_pack_hdr(P.SEARCH, 0, self.server.port, 0, 0xFFFFFFFF, p2))
        elif dtype == P.DOREPLY:
            self.out.append(_pack_hdr(P.NOT_FOUND, 0, dtype, count, p1, p2))

    def _create_chan(self, hdr, payload) -> None:
        cmd, size, dtype, count, cid, minor = hdr
        self.minor = minor
        if minor < P.MINIMUM_SUPPORTED_VERSION:
            raise CloseCircuit
        if size <= 1:
            self._log("empty PV name in channel create request", hdr)
            return
        # rsrv NUL-terminates the name at the payload's last byte, whatever it was.
        name = bytes(payload[:size - 1]).split(b"\0", 1)[0].decode("latin-1")
        chan = self.server.create_channel(self, cid, name)
        if chan is None:
            self.out.append(_pack_hdr(P.CREATE_CH_FAIL, 0, 0, 0, cid, 0))
            return
        self.channels[chan.sid] = chan
        rights = P.ACCESS_READ | (P.ACCESS_WRITE if chan.write_ok else 0)
        nelm = chan.nelm
        if minor < 9 and nelm >= 0xFFFF:
            nelm = 0xFFFE
        self.out.append(_pack_hdr(P.ACCESS_RIGHTS, 0, 0, 0, cid, rights) +
                        P.header(P.CREATE_CHAN, 0, chan.ca_type, nelm, cid, chan.sid))

    def _clear_channel(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, cid = hdr
        chan = self.channels.pop(sid, None)
        if chan is None:
            self._bad_id(hdr)
        self._drop_channel(chan)
        self.out.append(_pack_hdr(P.CLEAR_CHANNEL, 0, dtype, count & 0xFFFF, sid, cid))

    # -- reads
    def _too_large(self, dtype: int, count: int) -> bool:
        """Whether the reply would not fit rsrv's send buffer (cas_copy_in_header): header,
        extended when needed, plus the payload padded to 8."""
        size = P.pad8(dbr.dbr_size_n(dtype, count))
        msg = size + (P.EXT_HEADER_SIZE if size >= 0xFFFF or count >= 0xFFFF else
                      P.HEADER_SIZE)
        return msg > self.server.max_payload

    def _read(self, hdr, payload) -> None:
        """CA_PROTO_READ (the old, non-notify read): failures are ERROR messages."""
        cmd, size, dtype, count, sid, ioid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        if not P.valid_dbr_request(dtype):
            self.send_error(hdr, P.ECA_BADTYPE, chan.name, chan.cid)
            raise CloseCircuit
        if self._too_large(dtype, count):
            self.send_error(hdr, P.ECA_TOLARGE, "server unable to load read response into "
                            f"protocol buffer PV=\"{chan.name}\"", chan.cid)
            return
        fl = chan.read_log()
        if chan.ls and dtype % 7 == 4 and dtype < 35:
            fl = chan.finish_ls(fl, count)
        try:
            if count == 0:
                # dbGet with nRequest 0: the metadata, no value
                body = P.padded(dbr.encode(dtype, 1, fl, chan)[0][:dbr.dbr_size_n(dtype, 0)])
            else:
                body, n = dbr.encode(dtype, count, fl, chan)
        except dbr.ConvertError:
            self.send_error(hdr, P.ECA_GETFAIL, chan.name, chan.cid)
            return
        if dtype == P.DBR_STRING and count == 1:
            end = body.find(b"\0")
            body = P.padded(body[: end + 1]) if end >= 0 else body
        self.out.append(P.header(P.READ, len(body), dtype, count, chan.cid, ioid) + body)

    def _read_notify(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, ioid = hdr
        if not P.valid_dbr_request(dtype):
            raise CloseCircuit
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        self.out.append(self._reply(P.READ_NOTIFY, dtype, count, ioid, chan, chan.read_log()))

    def _reply(self, cmd: int, dtype: int, count: int, p2: int, chan: ClientChannel, fl):
        """read_reply: one READ_NOTIFY answer or subscription update (status in p1)."""
        if (count > 1 or (count == 0 and chan.nelm > 1)) and \
                self._too_large(dtype, count if count else chan.nelm):
            self.send_error((cmd, 16 if cmd == P.EVENT_ADD else 0, dtype, count, chan.sid, p2),
                            P.ECA_TOLARGE,
                            "server unable to load read (or subscription update) response "
                            f"into protocol buffer PV=\"{chan.name}\"", chan.cid)
            return b""
        plain = not chan.ls and chan.chain is None
        if chan.ls:
            if dtype % 7 == 4 and dtype < 35:
                fl = chan.finish_ls(fl, count)
        elif plain:
            # Every plain channel on a field encodes a log alike: reuse it within an epoch.
            enc = fl.enc
            if enc is not None and enc[0] == dtype and enc[1] == count and \
                    enc[2] == self.server.db.put_count and enc[3] is chan.fc:
                return _pack_hdr(cmd, enc[4], dtype, enc[5], P.ECA_NORMAL, p2) + enc[6] \
                    if enc[4] < 0xFFFF and enc[5] < 0xFFFF else \
                    P.header(cmd, enc[4], dtype, enc[5], P.ECA_NORMAL, p2) + enc[6]
        try:
            body, n = dbr.encode(dtype, count, fl, chan)
            status = P.ECA_NORMAL
            if plain:
                fl.enc = (dtype, count, self.server.db.put_count, chan.fc, len(body), n, body)
        except dbr.ConvertError:
            n = count
            body = P.padded(b"\0" * dbr.dbr_size_n(dtype, count))
            status = P.ECA_GETFAIL
        size = len(body)
        if size < 0xFFFF and n < 0xFFFF:
            return _pack_hdr(cmd, size, dtype, n, status, p2) + body
        return P.header(cmd, size, dtype, n, status, p2) + body

    # -- subscriptions
    def _event_add(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, subid = hdr
        if not P.valid_dbr_request(dtype):
            raise CloseCircuit
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        mask = _MON_MASK(payload, 12)[0] if len(payload) >= 14 else 0
        if not mask:
            # db_add_event refuses an empty mask; rsrv reports it as no memory and closes.
            self.send_error(hdr, P.ECA_ALLOCMEM,
                            f"subscription install into record {chan.record.name} failed",
                            chan.cid)
            raise CloseCircuit
        old = chan.subs.get(subid)
        if old is not None:
            # A client reusing a live id replaces it (rsrv would keep both; the old one could
            # never be cancelled again, so it would leak).
            old.dead = True
            chan.fc.subs.pop(old, None)
        else:
            self._count_subs(1)
        sub = Subscription(self, chan, subid, dtype, count, mask)
        chan.subs[subid] = sub
        chan.fc.subs[sub] = None
        # db_post_single_event: the current value, through the pre-chain, always sent once.
        fl = chan.fc.current_log(self.server.epoch)
        log_ = chan.prepare(fl, mask) if (chan.ls or chan.chain is not None) else fl
        if log_ is not None:
            self.queue_event(sub, log_)

    def _event_cancel(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, subid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        sub = chan.subs.pop(subid, None)
        if sub is None:
            self._log("unknown subscription id", hdr)
            self.send_error(hdr, P.ECA_BADMONID, chan.name, chan.cid)
            raise CloseCircuit
        sub.dead = True
        chan.fc.subs.pop(sub, None)
        self._count_subs(-1)
        self.out.append(_pack_hdr(P.EVENT_ADD, 0, sub.dtype, sub.count, sid, subid)
                        if sub.count < 0xFFFF else
                        P.header(P.EVENT_ADD, 0, sub.dtype, sub.count, sid, subid))

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
        self.server.epoch += 1
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
                if chain is not None:
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

    # -- writes
    def _put_value(self, chan: ClientChannel, dtype: int, count: int, payload):
        """The Python value a put of ``dtype``/``count`` carries, converted as dbPut's
        conversion routines would for the field (PutError where base's put fails)."""
        if dtype in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
            return np.frombuffer(bytes(payload[:2]), ">u2")
        if dtype == P.DBR_TIME_STRING:
            # db_access maps it to DBR_TIME, which no field takes (a base quirk, kept: a
            # client cannot rely on it working elsewhere either)
            raise PutError("DBR_TIME_STRING cannot be written")
        kind = dtype % 7
        skip = dbr.dbr_size_n(dtype, 1) - dbr.dbr_size_n(kind, 1) if dtype >= 7 else 0
        items = dbr.decode(kind, count, payload[skip:])
        fc = chan.fc
        dbf = fc.dbf
        if len(items) == 0 and not fc.is_array:
            return NO_VALUE
        if dbf in LINK_TYPES:
            # dbPutFieldLink: a string, or chars ending in a NUL
            if kind == 0:
                return items[0]
            if kind == 4 and items[-1] == 0:
                return bytes(items.astype(np.uint8)).split(b"\0", 1)[0].decode("latin-1")
            raise PutError("a link field takes a string")
        if fc.is_array:
            if dbf == "DBF_STRING" and kind != 0:
                # numbers into a string waveform: as text, doubles with its precision
                prec = _put_precision(chan.record, chan.field)
                return [dbr.format_double(x, prec) if isinstance(x, float) else str(int(x))
                        for x in items.tolist()]
            return items
        if kind == 0:
            text = items[0]
            try:
                if dbf in _NUMERIC_DBF:
                    return dbr.put_string_number(text, dbf)
                if dbf in dbr.ENUM_DBF:
                    return dbr.put_string_state(text, chan.record.choices(chan.field) or [])
            except dbr.ConvertError as exc:
                raise PutError(str(exc)) from None
            return text
        if chan.ls:
            # A long-string put (caput -S on REC.FIELD$): the chars up to the first NUL.
            raw = bytes(items.astype(np.int64).astype(np.uint8))
            return raw.split(b"\0", 1)[0].decode("latin-1")
        item = items[0].item()
        if dbf == "DBF_STRING":
            # cvt_*_st: a number written as text, doubles with the record's precision
            if isinstance(item, float):
                return dbr.format_double(item, _put_precision(chan.record, chan.field))
            return str(int(item))
        if dbf in INT_RANGES:
            return dbr.c_cast(item, dbf)
        if dbf in dbr.ENUM_DBF:
            return dbr.c_cast(item, "DBF_USHORT")
        if dbf in dbr.FLOAT_DBF or isinstance(item, float):
            return item
        return int(item)

    def _do_put(self, chan: ClientChannel, dtype: int, count: int, payload,
                notify: PutNotify | None) -> None:
        rec = chan.record
        f = rec.f
        if dtype == P.DBR_PUT_ACKS or dtype == P.DBR_PUT_ACKT:
            if chan.fc.dbf in LINK_TYPES:
                raise PutError("a link field takes a string")   # dbPutFieldLink
            v = int(self._put_value(chan, dtype, count, payload)[0]) if count else 0
            # dbAccess putAcks/putAckt: the fields change, each is posted (value and alarm),
            # then every monitored field of the record gets an alarm event.
            both = DBE_VALUE | DBE_ALARM
            if dtype == P.DBR_PUT_ACKS:
                if v < f["ACKS"]:
                    return self._ack_done(notify)
                f["ACKS"] = 0
                rec.post("ACKS", both)
            else:
                if v == f["ACKT"]:
                    return self._ack_done(notify)
                f["ACKT"] = v          # stored as sent, as base does (0/1 in practice)
                rec.post("ACKT", both)
                if not f["ACKT"] and f["ACKS"] > f["SEVR"]:
                    f["ACKS"] = f["SEVR"]
                    rec.post("ACKS", both)
            for fc in list(rec.channels.values()):
                fc.post(DBE_ALARM)
            return self._ack_done(notify)
        if dtype in (P.DBR_STSACK_STRING, P.DBR_CLASS_NAME):
            raise PutError("type cannot be written")
        value = self._put_value(chan, dtype, count, payload)
        try:
            rec.put_and_process(chan.field, value, notify)
        finally:
            self.server.epoch += 1

    @staticmethod
    def _ack_done(notify: PutNotify | None) -> None:
        if notify is not None:
            notify.check()

    def _write(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, ioid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        if not chan.write_ok:
            self.send_error(hdr, P.ECA_NOWTACCESS, chan.name, chan.cid)
            return
        if dtype > P.LAST_BUFFER_TYPE:
            self._log("invalid data type", hdr)
            self.send_error(hdr, P.ECA_BADTYPE, chan.name, chan.cid)
            raise CloseCircuit
        try:
            self._do_put(chan, dtype, count, payload, None)
        except PutError as exc:
            self.send_error(hdr, P.ECA_PUTFAIL, f"{chan.name}: {exc}", chan.cid)

    def _write_notify(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, ioid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        if dtype > P.LAST_BUFFER_TYPE:
            self._log("bad put notify data type", hdr)
            self.out.append(_pack_hdr(P.WRITE_NOTIFY, 0, dtype, count & 0xFFFF,
                                      P.ECA_BADTYPE, ioid))
            raise CloseCircuit
        if not chan.write_ok:
            self.out.append(_pack_hdr(P.WRITE_NOTIFY, 0, dtype, count & 0xFFFF,
                                      P.ECA_NOWTACCESS, ioid))
            return
        if chan.put_busy:
            # rsrv serialises put-callbacks per channel: wait for the one in progress, and
            # handle nothing else from this client meanwhile (ordering).
            self.blocked = True
            return
        notify = PutNotify(self.loop)
        try:
            if dtype > P.DBR_DOUBLE and dtype not in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
                raise PutError("put-callback takes plain DBR types only")
            self._do_put(chan, dtype, count, payload, notify)
            notify.check()
        except PutError as exc:
            self._log(f"put-callback refused: {exc}", hdr)
            self.out.append(_pack_hdr(P.WRITE_NOTIFY, 0, dtype, count & 0xFFFF,
                                      P.ECA_PUTFAIL, ioid))
            return
        fut = notify.future
        if fut.done():
            self.out.append(_pack_hdr(P.WRITE_NOTIFY, 0, dtype, count & 0xFFFF,
                                      P.ECA_NORMAL, ioid))
            return
        chan.put_busy = True
        fut.add_done_callback(lambda f, c=chan, d=dtype, n=count, i=ioid:
                              self._put_done(c, d, n, i, f))

    def _put_done(self, chan: ClientChannel, dtype: int, count: int, ioid: int, fut) -> None:
        chan.put_busy = False
        if self.closed:
            return
        status = P.ECA_NORMAL if not fut.cancelled() and fut.exception() is None \
            else P.ECA_PUTFAIL
        self.out.append(_pack_hdr(P.WRITE_NOTIFY, 0, dtype, count & 0xFFFF, status, ioid))
        if self.blocked:
            self.blocked = False
            if not self.write_paused and self.transport is not None:
                try:
                    self.transport.resume_reading()
                except (RuntimeError, AttributeError):
                    pass
            self._process()
        else:
            self._send_out()


# rsrv's tcpJumpTable; every other command is bad_tcp_cmd_action.
_bad = Circuit._bad_command
_TCP_TABLE = {
    P.VERSION: Circuit._version,
    P.EVENT_ADD: Circuit._event_add,
    P.EVENT_CANCEL: Circuit._event_cancel,
    P.READ: Circuit._read,
    P.WRITE: Circuit._write,
    P.SEARCH: Circuit._search,
    P.EVENTS_OFF: Circuit._events_off,
    P.EVENTS_ON: Circuit._events_on,
    P.READ_SYNC: Circuit._read_sync,
    P.CLEAR_CHANNEL: Circuit._clear_channel,
    P.READ_NOTIFY: Circuit._read_notify,
    P.CREATE_CHAN: Circuit._create_chan,
    P.WRITE_NOTIFY: Circuit._write_notify,
    P.CLIENT_NAME: Circuit._client_name,
    P.HOST_NAME: Circuit._host_name,
    P.ECHO: Circuit._echo,
}
