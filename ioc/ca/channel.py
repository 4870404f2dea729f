"""Channels and subscriptions: how a record's fields meet CA clients.

* :class:`FieldChannel` — one per ``REC.FIELD`` that any client has open (kept in
  ``record.channels[field]``, shared by aliases and by every client). ``Record.post`` calls its
  :meth:`FieldChannel.post` (db_post_events): a field log is taken once per post and offered to
  every subscription whose event mask matches.
* :class:`ClientChannel` — one per CREATE_CHAN of one circuit (a dbChannel): the field, the
  long-string modifier, its own filter chain, and the final type and element count the client
  was told.
* :class:`Subscription` — one EVENT_ADD: data type, count, mask. Updates go into its circuit's
  event queue (see ``ioc.ca.circuit``), bounded per subscription as EPICS's event queue is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..records.fields import CA_TYPES, ENUM_TYPES, LINK_TYPES
from ..records.links import link_text
from ..filters.fieldlog import FieldLog
from .protocol import ACCESS_READ as P_ACCESS_READ, ACCESS_WRITE as P_ACCESS_WRITE

if TYPE_CHECKING:
    from ..records.base import Record
    from .circuit import Circuit
    from ..filters import FilterChain
    from ..access.runtime import AsClient

PVLINK_STRINGSZ = 1024      # a link field read as a long string (dbChannel.c)
_ENUM_RECORDS = frozenset({"bi", "bo", "mbbi", "mbbo"})


class FieldChannel:
    """Server side of one record field; posts go from here to the subscriptions."""

    __slots__ = ("record", "field", "dbf", "is_array", "subs", "nchan", "_now", "_now_epoch")

    def __init__(self, record: "Record", field: str):
        self.record = record
        self.field = field
        self.dbf = "DBF_STRING" if field == "RTYP" else record.field_type(field)
        self.is_array = field == "VAL" and hasattr(record, "array")
        self.subs: dict[Subscription, None] = {}
        self.nchan = 0                  # client channels open on this field
        self._now: FieldLog | None = None
        self._now_epoch = -1

    @property
    def nelm(self) -> int:
        """The element count a client sees: the array's capacity (NELM; subArray: MALM)."""
        if not self.is_array:
            return 1
        cap = getattr(self.record, "capacity", None)
        return cap() if cap is not None else self.record.f["NELM"]

    def value_now(self):
        """The field's value: a scalar, or the array of its NORD used elements."""
        rec = self.record
        if self.field == "RTYP":
            return rec.rtype
        if self.is_array:
            return rec.array()
        if self.dbf in LINK_TYPES:
            return link_text(rec.f[self.field], self.dbf)
        return rec.f[self.field]

    def make_log(self, mask: int) -> FieldLog:
        """db_create_event_log: scalars copied (immutable Python values), arrays referenced."""
        rec = self.record
        f = rec.f
        if self.is_array:
            return FieldLog(None, self.dbf, f["NORD"], f["STAT"], f["SEVR"], rec.time, mask,
                            f.get("AMSG", ""), f.get("UTAG", 0))
        return FieldLog(self.value_now(), "RTYP" if self.field == "RTYP" else self.dbf, 1,
                        f["STAT"], f["SEVR"], rec.time, mask, f.get("AMSG", ""),
                        f.get("UTAG", 0))

    def current_log(self, epoch: int) -> FieldLog:
        """A read log of the field now; within one server epoch (in which no record changes)
        every caller gets the same one, so its encoding can be shared."""
        if self._now_epoch != epoch or self._now is None:
            self._now = self.make_log(0)
            self._now_epoch = epoch
        return self._now

    def post(self, mask: int) -> None:
        """db_post_events for this field (called by ``Record.post`` on the loop thread)."""
        if not self.subs:
            return
        fl = None
        for sub in self.subs:
            m = sub.mask & mask
            if not m:
                continue
            if fl is None:
                fl = self.make_log(mask)
            chan = sub.chan
            if not chan.readable:
                continue            # rsrv disables the events of a channel it may not read
            if chan.ls or chan.chain is not None:
                log = chan.prepare(fl, m)
                if log is None:
                    continue
                sub.circuit.queue_event(sub, log)
            else:
                sub.circuit.queue_event(sub, fl)


class ClientChannel:
    """One client's channel on a field (dbChannel): modifiers, filters, final type/count."""

    __slots__ = ("cid", "sid", "circuit", "fc", "record", "field", "ls", "ls_size", "chain",
                 "dbf", "nelm", "ca_type", "subs", "name", "write_ok", "put_busy", "server",
                 "native", "_md", "_md_epoch", "asc", "readable")

    def __init__(self, circuit: "Circuit", cid: int, sid: int, fc: FieldChannel, name: str,
                 long_string: bool, chain_factory):
        self.circuit = circuit
        self.server = circuit.server
        self._md: dict = {}
        self._md_epoch = -1
        self.cid = cid
        self.sid = sid
        self.fc = fc
        self.record = fc.record
        self.field = fc.field
        self.name = name
        self.ls = long_string
        self.ls_size = 0
        if long_string:
            if fc.dbf == "DBF_STRING":
                size = fc.record.field_spec(fc.field).size if fc.field != "RTYP" else 40
                self.ls_size = size or 40
            else:
                self.ls_size = PVLINK_STRINGSZ
            self.nelm = self.ls_size
            self.dbf = "DBF_CHAR"
        else:
            self.nelm = fc.nelm
            self.dbf = fc.dbf
        self.chain: FilterChain | None = None
        if chain_factory is not None:
            self.chain = chain_factory(self)
            if self.chain is not None:
                self.dbf = self.chain.final_dbf
                self.nelm = self.chain.final_count
        self.ca_type = int(CA_TYPES[self.dbf])
        # The client sees the field's own values (so its units, limits, states apply).
        self.native = not long_string and self.ca_type == int(CA_TYPES[fc.dbf])
        self.subs: dict[int, Subscription] = {}
        # rsrvCheckPut: only SPC_NOMOD fields deny write access (without an ACF); a put
        # to another field that cannot take it fails as the put itself (ECA_PUTFAIL).
        self.write_ok = fc.field == "RTYP" or \
            fc.record.field_spec(fc.field).special != "SPC_NOMOD"
        self.put_busy = False
        #: access security (asAddClient): set by the server when the channel is made
        self.asc: "AsClient | None" = None
        self.readable = True            # asCheckGet, kept in step with ``asc``

    @property
    def writable(self) -> bool:
        """rsrvCheckPut: not an SPC_NOMOD field, and access security grants WRITE."""
        asc = self.asc
        return self.write_ok and (asc is None or asc.access.level >= 2)

    def rights(self) -> int:
        """The CA_PROTO_ACCESS_RIGHTS bits of this channel now."""
        return (P_ACCESS_READ if self.readable else 0) | \
            (P_ACCESS_WRITE if self.writable else 0)

    # -- the long-string view of a string or link field
    def _ls_log(self, fl: FieldLog) -> FieldLog:
        """The long-string view of a DBF_STRING field: its whole NUL-padded buffer, as base's
        dbGet copies the field's bytes (then ``finish_ls`` cuts it as dbGet does). A link
        field keeps its text: getLinkValue reads it for any request (``ioc.ca.dbr``)."""
        text = fl.value if isinstance(fl.value, str) else str(fl.value)
        size = self.ls_size
        raw = text.encode("latin-1", "replace")[: size - 1]
        raw = raw + b"\0" * (size - len(raw))
        arr = np.frombuffer(raw, dtype=np.uint8)
        return FieldLog(arr, "DBF_CHAR", len(arr), fl.stat, fl.sevr, fl.time, fl.mask,
                        fl.amsg, fl.utag)

    def prepare(self, fl: FieldLog, mask: int) -> FieldLog | None:
        """A posted log as this channel sees it: long-string view, then the pre-chain."""
        if self.ls:
            if self.fc.dbf != "DBF_STRING":
                return fl           # a link is read as its text whatever the filters say
            fl = self._ls_log(fl)
        if self.chain is None:
            return fl
        if fl.mask != mask:
            fl = fl.copy()
            fl.mask = mask
        return self.chain.pre(fl)

    def finish_ls(self, fl: FieldLog, count: int) -> FieldLog:
        """dbGet's last step for a long string read as chars (DBR_CHAR): of the ``count``
        elements read (all when 0), the last one is made NUL and the count cut to the string's
        length + 1."""
        if self.fc.dbf != "DBF_STRING":
            return fl               # links: getLinkValue does this (ioc.ca.dbr.encode)
        v = self.read_array() if fl.value is None else fl.value
        n = len(v) if count == 0 else min(count, len(v))
        if n == 0:
            return fl
        raw = bytes(np.asarray(v[:n], dtype=np.uint8))
        raw = raw[: n - 1].split(b"\0", 1)[0] + b"\0"
        return FieldLog(np.frombuffer(raw, dtype=np.uint8), "DBF_CHAR", len(raw), fl.stat,
                        fl.sevr, fl.time, fl.mask, fl.amsg, fl.utag)

    def read_log(self) -> FieldLog | None:
        """The field now, as a get on this channel returns it (read log through the chain)."""
        fl = self.fc.current_log(self.server.epoch)
        if self.ls:
            if self.fc.dbf != "DBF_STRING":
                return fl
            fl = self._ls_log(fl)
        if self.chain is not None:
            out = self.chain.read(fl)
            return out if out is not None else fl
        return fl

    # -- dbr.Source
    def read_array(self) -> np.ndarray:
        if self.ls and self.fc.dbf == "DBF_STRING":
            return self._ls_log(self.fc.make_log(0)).value
        return self.record.array()

    def meta(self) -> dict:
        """rset metadata of the field (units, precision, limits), read again only after a
        field put somewhere in the IOC (``Database.put_count``): only puts change them."""
        if not self.native:
            return {}
        epoch = self.record.db.put_count
        if self._md_epoch != epoch:
            self._md = self.record.metadata(self.field)
            self._md_epoch = epoch
        return self._md

    def enum_strs(self) -> list[str] | None:
        if self.fc.dbf in ENUM_TYPES and self.native:
            return self.record.choices(self.field)
        return None

    def precision(self) -> int:
        if not self.native:
            return 0
        return int(self.meta().get("precision", 0))

    def record_states(self) -> list[str] | None:
        """The record's state strings where its record support converts strings to states
        (rset put_enum_str: bi, bo, mbbi, mbbo), else None."""
        if self.record.rtype in _ENUM_RECORDS:
            return self.record.enum_strings()
        return None


class Subscription:
    """One EVENT_ADD. ``npend``/``last`` track its entries in the circuit's event queue."""

    __slots__ = ("circuit", "chan", "subid", "dtype", "count", "mask", "npend", "last",
                 "dead")

    def __init__(self, circuit: "Circuit", chan: ClientChannel, subid: int, dtype: int,
                 count: int, mask: int):
        self.circuit = circuit
        self.chan = chan
        self.subid = subid
        self.dtype = dtype
        self.count = count
        self.mask = mask
        self.npend = 0
        self.last: list | None = None
        self.dead = False
