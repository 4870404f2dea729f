"""The CA requests a circuit serves, handler by handler as rsrv's camessage.c (tcpJumpTable).

:class:`RequestHandlers` is mixed into :class:`ioc.ca.circuit.Circuit`, which parses the byte
stream, owns the transport, the channels and the event queue, and calls the handler of each
complete message with its header ``(command, size, type, count, p1, p2)`` and payload. A
handler answers into ``self.out``; :class:`CloseCircuit` ends the circuit after what is queued
(rsrv's RSRV_ERROR).
"""
from __future__ import annotations

import struct

from ..access.context import putting_as
from ..records.base import PutError, PutNotify
from . import dbr
from . import protocol as P
from . import puts
from .channel import ClientChannel, Subscription

_pack_hdr = P.pack_header
_MON_MASK = struct.Struct(">H").unpack_from


class CloseCircuit(Exception):
    """Raised by a handler: flush what is queued, then close (rsrv's RSRV_ERROR)."""


class RequestHandlers:
    """Request handlers of a circuit (see the module doc); state lives on the circuit."""

    def _bad_command(self, hdr: tuple, payload) -> None:
        text = "invalid (damaged?) request code from TCP"
        self._log(text, hdr)
        self.send_error(hdr, P.ECA_INTERNAL, text)
        raise CloseCircuit

    def _ack(self, cmd: int, dtype: int, count: int, p1: int, p2: int) -> bool:
        """A header-only reply carrying the request's type and count (cas_copy_in_header):
        extended when the count does not fit 16 bits, as rsrv sends it. A client older than
        CA 4.9 cannot take that (ECA_16KARRAYCLIENT): nothing is sent, False."""
        if count >= 0xFFFF and self.minor < 9:
            return False
        self.out.append(P.header(cmd, 0, dtype, count, p1, p2))
        return True

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
        if not self._ack(cmd, dtype, count, p1, p2):
            raise CloseCircuit

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

    def _renamed(self) -> None:
        """The client's names are about to change after it had channels (rsrv counts live
        channels only, so once the last one is cleared it takes names again). Puts from now
        on come from the new names, as rsrv hands the client's current names to
        asTrapWriteWithData at each put; for the control token the old names have gone, the
        new ones count from their first channel."""
        self._putter = None
        if self.as_counted:
            self.as_counted = False
            self.server.db.access.circuit_closed(self.user, self.as_host)

    def _host_name(self, hdr, payload) -> None:
        name = self._name(hdr, payload, "host")
        if name is not None and not self.server.db.access.check_client_ip:
            # (under asCheckClientIP rsrv ignores the name the client gives)
            if name != self.as_host:
                self._renamed()
            self.host = name
            self.as_host = name

    def _client_name(self, hdr, payload) -> None:
        name = self._name(hdr, payload, "user")
        if name is not None:
            if name != self.user:
                self._renamed()
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
        if not self.channels and not self.as_counted:
            # The client's names are fixed from its first channel on: now it counts as
            # connected for the control token.
            self.as_counted = True
            self.server.db.access.circuit_opened(self.user, self.as_host)
        self.channels[chan.sid] = chan
        rights = chan.rights()
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
        if not self._ack(P.CLEAR_CHANNEL, dtype, count, sid, cid):
            raise CloseCircuit

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
        if not chan.readable:
            self.send_error(hdr, P.ECA_NORDACCESS, chan.record.name, chan.cid)
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
        if not chan.readable:
            return self.no_read_reply(cmd, dtype, count, p2)
        plain = not chan.ls and chan.chain is None
        if chan.ls:
            if dtype % 7 == 4 and dtype < 35:
                fl = chan.finish_ls(fl, count)
        elif plain:
            # Every plain channel on a field encodes a log alike: reuse it within an epoch.
            enc = fl.enc
            if enc is not None and enc[0] == dtype and enc[1] == count and \
                    enc[2] == self.server.db.put_count and enc[3] is chan.fc:
                n, body = enc[4], enc[5]
                return P.header(cmd, len(body), dtype, n, P.ECA_NORMAL, p2) + body
        try:
            body, n = dbr.encode(dtype, count, fl, chan)
            status = P.ECA_NORMAL
            if plain:
                fl.enc = (dtype, count, self.server.db.put_count, chan.fc, n, body)
        except dbr.ConvertError:
            n = count
            body = P.padded(b"\0" * dbr.dbr_size_n(dtype, count))
            status = P.ECA_GETFAIL
        return P.header(cmd, len(body), dtype, n, status, p2) + body

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

    # -- writes
    def _write(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, ioid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        if not chan.writable:
            self._refused(chan)
            self.send_error(hdr, P.ECA_NOWTACCESS, chan.record.name, chan.cid)
            return
        if dtype > P.LAST_BUFFER_TYPE:
            self._log("invalid data type", hdr)
            self.send_error(hdr, P.ECA_BADTYPE, chan.name, chan.cid)
            raise CloseCircuit
        putter = self.putter
        pending = self._log_before(chan, putter)
        try:
            with putting_as(putter):
                puts.do_put(chan, dtype, count, payload, None)
        except PutError as exc:
            self._log_after(pending, False, str(exc))
            self.send_error(hdr, P.ECA_PUTFAIL, f"{chan.name}: {exc}", chan.cid)
        else:
            self._log_after(pending, True)

    # -- the put log (caPutLog's asTrapWrite listener)
    def _log_before(self, chan: ClientChannel, putter):
        pl = getattr(self.server.db, "putlog", None)
        if pl is None:
            return None
        asc = chan.asc
        return pl.before(putter, chan.name, chan.record, chan.field,
                         asc is not None and asc.trapwrite)

    def _log_after(self, pending, ok: bool, reason: str = "") -> None:
        if pending is not None:
            self.server.db.putlog.after(pending, ok, reason)

    def _refused(self, chan: ClientChannel) -> None:
        pl = getattr(self.server.db, "putlog", None)
        if pl is not None:
            reason = "field is not writable (SPC_NOMOD)" if not chan.write_ok else \
                self.server.db.access.refusal(chan.asc)
            pl.refused(self.putter, chan.name, chan.record, chan.field, reason)

    def _write_notify(self, hdr, payload) -> None:
        cmd, size, dtype, count, sid, ioid = hdr
        chan = self.channels.get(sid)
        if chan is None:
            self._bad_id(hdr)
        if dtype > P.LAST_BUFFER_TYPE:
            self._log("bad put notify data type", hdr)
            self._ack(P.WRITE_NOTIFY, dtype, count, P.ECA_BADTYPE, ioid)
            raise CloseCircuit
        if not chan.writable:
            self._refused(chan)
            self._ack(P.WRITE_NOTIFY, dtype, count, P.ECA_NOWTACCESS, ioid)
            return
        if chan.put_busy:
            # rsrv serialises put-callbacks per channel: wait for the one in progress, and
            # handle nothing else from this client meanwhile (ordering).
            self.blocked = True
            return
        notify = PutNotify(self.loop)
        putter = self.putter
        pending = self._log_before(chan, putter)
        try:
            if dtype > P.DBR_DOUBLE and dtype not in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
                raise PutError("put-callback takes plain DBR types only")
            with putting_as(putter):
                puts.do_put(chan, dtype, count, payload, notify)
            notify.check()
        except PutError as exc:
            self._log_after(pending, False, str(exc))
            self._log(f"put-callback refused: {exc}", hdr)
            self._ack(P.WRITE_NOTIFY, dtype, count, P.ECA_PUTFAIL, ioid)
            return
        fut = notify.future
        if fut.done():
            self._put_logged(pending, fut)
            self._ack(P.WRITE_NOTIFY, dtype, count, P.ECA_NORMAL, ioid)
            return
        chan.put_busy = True
        fut.add_done_callback(lambda f, c=chan, d=dtype, n=count, i=ioid, p=pending:
                              self._put_done(c, d, n, i, f, p))

    def _put_logged(self, pending, fut) -> None:
        """asTrapWriteAfter of a put-callback: when it has completed."""
        if pending is not None:
            exc = None if fut.cancelled() else fut.exception()
            self._log_after(pending, not fut.cancelled() and exc is None,
                            "cancelled" if fut.cancelled() else str(exc or ""))

    def _put_done(self, chan: ClientChannel, dtype: int, count: int, ioid: int, fut,
                  pending=None) -> None:
        chan.put_busy = False
        self._put_logged(pending, fut)
        if self.closed:
            return
        status = P.ECA_NORMAL if not fut.cancelled() and fut.exception() is None \
            else P.ECA_PUTFAIL
        self._ack(P.WRITE_NOTIFY, dtype, count, status, ioid)
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
bad_command = RequestHandlers._bad_command
_TCP_TABLE = {
    P.VERSION: RequestHandlers._version,
    P.EVENT_ADD: RequestHandlers._event_add,
    P.EVENT_CANCEL: RequestHandlers._event_cancel,
    P.READ: RequestHandlers._read,
    P.WRITE: RequestHandlers._write,
    P.SEARCH: RequestHandlers._search,
    P.EVENTS_OFF: RequestHandlers._events_off,
    P.EVENTS_ON: RequestHandlers._events_on,
    P.READ_SYNC: RequestHandlers._read_sync,
    P.CLEAR_CHANNEL: RequestHandlers._clear_channel,
    P.READ_NOTIFY: RequestHandlers._read_notify,
    P.CREATE_CHAN: RequestHandlers._create_chan,
    P.WRITE_NOTIFY: RequestHandlers._write_notify,
    P.CLIENT_NAME: RequestHandlers._client_name,
    P.HOST_NAME: RequestHandlers._host_name,
    P.ECHO: RequestHandlers._echo,
}
