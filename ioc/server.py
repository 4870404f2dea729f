"""Records -> Channel Access, on caproto's asyncio server (caproto 1.3.0).

caproto serves the protocol; the record layer is ours. Each ``REC.FIELD`` a client connects to
becomes a :class:`RecordChannel` (created on first search, shared by all clients and aliases):

* reads are built from the record at the moment of the read: value, STAT/SEVR, the record's
  TIME, and units/precision/limits from the record support (``Record.metadata``);
* writes go through ``Record.put_and_process`` (dbPutField semantics); a refused put raises,
  and caproto answers the client with ECA_PUTFAIL and our message; a put-with-callback
  (``caput -c``) completes only when the processing it started has finished (PutNotify);
* monitors are posted by the record (``Record.post(field, mask)``) and filtered by each
  subscription's event mask (DBE_VALUE/LOG/ALARM/PROPERTY) — caproto itself ignores masks.

Three caproto 1.3.0 server behaviours are replaced (subclasses below, no patching of caproto):

1. ``VirtualCircuit.subscription_queue_loop`` waits up to 10 ms for more updates before sending
   one (``HIGH_LOAD_TIMEOUT``), so every isolated monitor is 10 ms late. Ours sends what is queued
   as soon as the queue is empty (batching still happens naturally under load).
2. ``Context._subscription_queue_iteration`` iterates over a subscription deque while awaiting;
   a client cancelling its subscription meanwhile raised "deque mutated during iteration" and
   shut the server down (caproto 1.3.0 server/common.py:970). Ours iterates over a snapshot; the
   circuit already drops updates for cancelled subscriptions before sending.
3. Accepted CA connections keep Nagle's algorithm on (see ``IocCircuit.__init__``).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import socket

import numpy as np
from caproto import (DBR_TYPES, AccessRights, ChannelData, ChannelType,
                     native_type, native_types, time_types)
from caproto import backend
from caproto._data import SubscriptionUpdate
from caproto._dbr import DBR_STSACK_STRING
from caproto._dbr import _channel_type_by_name
from caproto._utils import ConversionDirection
from caproto.asyncio.server import Context as _AsyncioContext
from caproto.asyncio.server import VirtualCircuit as _AsyncioCircuit
from caproto.server.common import SUB_BATCH_THRESH, DisconnectedCircuit

from .database.db import Database
from .records.base import PutError, PutNotify, Record
from .records.constants import DBE_VALUE
from .records.fields import CA_TYPES, ENUM_TYPES, FLOAT_TYPES

log = logging.getLogger(__name__)

_FLOAT_CA = (ChannelType.DOUBLE, ChannelType.FLOAT)
_LIMIT_KEYS = ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
               "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit",
               "upper_ctrl_limit", "lower_ctrl_limit")


def format_double(value: float, precision: int) -> str:
    """DBR_STRING of a double, as EPICS's cvtDoubleToString with the record's PREC."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    precision = max(0, min(int(precision), 17))
    if value != 0 and (abs(value) >= 1e15 or abs(value) < 10 ** -precision):
        return f"{value:.{precision}e}"
    return f"{value:.{precision}f}"


class RecordChannel(ChannelData):
    """One field of one record, as a CA channel."""

    def __init__(self, record: Record, field: str):
        self.record = record
        self.field = field
        dbf = "DBF_STRING" if field == "RTYP" else record.field_type(field)
        self.dbf = dbf
        self.data_type = CA_TYPES[dbf]
        self.is_array = field == "VAL" and hasattr(record, "array")
        nelm = record.f["NELM"] if self.is_array else 1
        super().__init__(value=0, max_length=nelm, reported_record_type=record.rtype,
                         string_encoding="latin-1")

    # -- value access
    def _current(self):
        rec, field = self.record, self.field
        if field == "RTYP":
            return rec.rtype
        if self.is_array:
            return rec.array()
        return rec.f[field]

    def calculate_length(self, value) -> int:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return 1
        return len(value)

    @property
    def length(self) -> int:
        return self.record.f["NORD"] if self.is_array else 1

    @property
    def max_length(self) -> int:
        return self.record.f["NELM"] if self.is_array else 1

    def check_access(self, hostname: str, username: str) -> AccessRights:
        if self.field != "RTYP" and self.record.is_writable(self.field):
            return AccessRights.READ | AccessRights.WRITE
        return AccessRights.READ

    # -- reads
    async def _read(self, data_type):
        return self.read_now(data_type)

    def read_now(self, data_type):
        """(metadata, values) for ``data_type`` from the record as it is now."""
        rec = self.record
        f = rec.f
        if data_type == ChannelType.STSACK_STRING:
            dbr = DBR_STSACK_STRING()
            dbr.status, dbr.severity = f["STAT"], f["SEVR"]
            dbr.ackt, dbr.acks = f["ACKT"], f["ACKS"]
            dbr.value = str(self._as_strings()[0]).encode("latin-1")[:39]
            return dbr, b""
        if data_type == ChannelType.CLASS_NAME:
            dbr = DBR_TYPES[data_type]()
            dbr.value = rec.rtype.encode()
            return dbr, b""
        native_to = native_type(data_type)
        enum_strs = rec.choices(self.field) if self.dbf in ENUM_TYPES else None
        if native_to == ChannelType.STRING and (self.data_type in _FLOAT_CA or enum_strs is not None):
            values = backend.convert_values(self._as_strings(), ChannelType.STRING,
                                            ChannelType.STRING, string_encoding="latin-1",
                                            direction=ConversionDirection.TO_WIRE)
        else:
            # Enum indices go out as plain integers: an index beyond the state strings is
            # legal in EPICS (mbbi with no strings), caproto's enum conversion would refuse it.
            from_dtype = ChannelType.LONG if self.data_type == ChannelType.ENUM else self.data_type
            values = backend.convert_values(
                values=self._current(), from_dtype=from_dtype, to_dtype=native_to,
                string_encoding="latin-1", enum_strings=enum_strs,
                direction=ConversionDirection.TO_WIRE)
        if data_type in native_types:
            return b"", values
        md = DBR_TYPES[data_type]()
        md.status, md.severity = f["STAT"], f["SEVR"]
        if data_type in time_types:
            md.stamp.secondsSinceEpoch, md.stamp.nanoSeconds = rec.time
        if hasattr(md, "strs"):
            strs = [s.encode("latin-1")[:25] for s in (enum_strs or [])][:16]
            md.enum_strings = strs
        info = rec.metadata(self.field) if (hasattr(md, "units") or hasattr(md, "precision")
                                              or hasattr(md, "upper_disp_limit")) else {}
        if hasattr(md, "units"):
            md.units = str(info.get("units", "")).encode("latin-1")[:7]
        if hasattr(md, "precision"):
            md.precision = int(info.get("precision", 0))
        is_float = native_to in _FLOAT_CA
        for key in _LIMIT_KEYS:
            if hasattr(md, key):
                v = info.get(key, math.nan if "alarm" in key or "warning" in key else 0.0)
                if not is_float:
                    v = 0 if not math.isfinite(v) else int(v)
                setattr(md, key, v)
        return md, values

    def _as_strings(self) -> list[str]:
        v = self._current()
        if self.data_type in _FLOAT_CA:
            prec = self.record.metadata(self.field).get("precision", 0)
            if self.is_array:
                return [format_double(float(x), prec) for x in v] or [""]
            return [format_double(float(v), prec)]
        if self.dbf in ENUM_TYPES:
            return [self.record.enum_string(self.field, v)]
        if self.is_array:
            return [str(x) for x in v] or [""]
        return [str(v)]

    # -- monitors
    async def subscribe(self, queue, sub_spec, sub):
        by_sync = self._queues[queue][sub_spec.channel_filter.sync]
        by_sync[sub_spec.data_type_name].add(sub_spec)
        md, values = self.read_now(_channel_type_by_name[sub_spec.data_type_name])
        await queue.put(SubscriptionUpdate((sub_spec,), md, values, 0, sub))

    def post(self, mask: int) -> None:
        """db_post_events for this field: queue an update for every subscription whose mask
        matches. Synchronous (the Context queue is unbounded) so record code can call it."""
        cache: dict = {}
        for queue, syncs in self._queues.items():
            for data_types in syncs.values():
                for dt_name, specs in data_types.items():
                    eligible = tuple(ss for ss in specs if ss.mask & mask)
                    if not eligible:
                        continue
                    if dt_name not in cache:
                        cache[dt_name] = self.read_now(_channel_type_by_name[dt_name])
                    md, values = cache[dt_name]
                    queue.put_nowait(SubscriptionUpdate(eligible, md, values, mask, None))

    async def publish(self, flags):
        self.post(flags or DBE_VALUE)

    # -- writes
    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        rec = self.record
        f = rec.f
        if data_type == ChannelType.PUT_ACKS:
            if metadata.value >= f["ACKS"]:
                f["ACKS"] = 0
                rec.post("ACKS", DBE_VALUE)
            return
        if data_type == ChannelType.PUT_ACKT:
            f["ACKT"] = int(bool(metadata.value))
            if not f["ACKT"] and f["ACKS"] > f["SEVR"]:
                f["ACKS"] = f["SEVR"]
                rec.post("ACKS", DBE_VALUE)
            rec.post("ACKT", DBE_VALUE)
            return
        if data_type in (ChannelType.STSACK_STRING, ChannelType.CLASS_NAME):
            raise PutError("bad request type")
        value = self._from_wire(data, native_type(data_type))
        loop = asyncio.get_running_loop()
        notify = PutNotify(loop)
        rec.put_and_process(self.field, value, notify)
        notify.check()
        await notify.future
        return True

    def _from_wire(self, data, native_from):
        if native_from == ChannelType.STRING:
            items = [d.decode("latin-1") if isinstance(d, bytes) else str(d) for d in data]
            items = [s.split("\0", 1)[0] for s in items]
            if not items:
                raise PutError("empty put")
            return items if self.is_array else items[0]
        arr = np.asarray(data)
        if self.is_array:
            return arr
        if arr.size == 0:
            raise PutError("empty put")
        if native_from == ChannelType.CHAR and self.dbf == "DBF_STRING":
            # a long-string put (caput -S) to a string field
            return bytes(arr.astype(np.uint8)).split(b"\0", 1)[0].decode("latin-1")
        item = arr.reshape(-1)[0].item()
        if self.dbf in FLOAT_TYPES or isinstance(item, float):
            return item
        return int(item)

    def get_field(self, field: str) -> "RecordChannel":
        return channel_for(self.record, field)


def channel_for(rec: Record, field: str) -> RecordChannel:
    """The (shared) channel of ``rec.field``; KeyError if the field is not served."""
    ch = rec.channels.get(field)
    if ch is None:
        if field != "RTYP" and not rec.has_field(field):
            raise KeyError(f"{rec.name}.{field}")
        ch = RecordChannel(rec, field)
        rec.channels[field] = ch
    return ch


class PvDirectory(dict):
    """caproto's pvdb: ``NAME`` and ``NAME.FIELD`` resolved lazily from the Database."""

    def __init__(self, db: Database):
        super().__init__()
        self.db = db

    def __missing__(self, pvname: str) -> RecordChannel:
        recname, _, field = pvname.partition(".")
        rec = self.db.lookup(recname)
        if rec is None or (field and not field.isalnum()):
            raise KeyError(pvname)
        return channel_for(rec, field or "VAL")


class IocCircuit(_AsyncioCircuit):
    """caproto's asyncio circuit with a low-latency subscription sender (see module doc)."""

    def __init__(self, circuit, client, context, **kw):
        super().__init__(circuit, client, context, **kw)
        # caproto binds its listening socket with protocol 0, so asyncio never sets TCP_NODELAY
        # on accepted connections (it only does for proto == IPPROTO_TCP). With Nagle on, a
        # put-callback reply followed by a monitor update waits for the client's delayed ACK
        # (~40 ms). rsrv sets TCP_NODELAY; so do we.
        sock = client.writer.get_extra_info("socket") if hasattr(client, "writer") else None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    async def subscription_queue_loop(self):
        maybe = self.events_on.set()
        if maybe is not None:
            await maybe
        queue = self.subscription_queue
        while True:
            try:
                ref = await queue.get()
            except asyncio.CancelledError:
                break
            commands = []
            nbytes = 0
            while True:
                command = ref()
                if command is not None:     # None: dropped as old news by the backlog quota
                    commands.append(command)
                    nbytes += len(command)
                if nbytes > SUB_BATCH_THRESH or queue.empty():
                    break
                ref = queue.get_nowait()
            if not commands:
                continue
            live = {sub.subscriptionid for subs in self.subscriptions.values() for sub in subs}
            try:
                await self.send(*(c for c in commands if c.subscriptionid in live))
            except DisconnectedCircuit:
                await self._on_disconnect()
                self.circuit.disconnect()
                await self.context.circuit_disconnected(self)
                break


class IocContext(_AsyncioContext):
    CircuitClass = IocCircuit

    async def _subscription_queue_iteration(self, sub_specs, metadata, values, flags, sub):
        if sub is None:
            for sub_spec in sub_specs:
                # Snapshot: an EventCancel may remove subscriptions while we await below.
                for s in tuple(self.subscriptions.get(sub_spec, ())):
                    await self._subscription_queue_send(sub_spec, s, metadata=metadata,
                                                        values=values, flags=flags)
        else:
            (sub_spec,) = sub_specs
            await self._subscription_queue_send(sub_spec, sub, metadata=metadata,
                                                values=values, flags=flags)


class _BeaconFilter(logging.Filter):
    """rsrv ignores failed beacon sends (nobody listening on the repeater port); caproto logs a
    traceback for each one. Say it once, without the traceback."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Failed to send beacon"):
            if _BeaconFilter.said:
                return False
            _BeaconFilter.said = True
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "beacons are not reaching %s (no CA repeater?); not reported again"
            record.args = (os.environ.get("EPICS_CAS_BEACON_ADDR_LIST", "the beacon address list"),)
        return True


class _RejectedPutFilter(logging.Filter):
    """caproto logs every refused put with a traceback; a refused put is normal operation for
    an IOC (the client gets the error), so log it as one warning line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid write request") and record.exc_info:
            exc = record.exc_info[1]
            record.msg = "put refused: %s"
            record.args = (exc,)
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install_log_filters() -> None:
    for name in ("caproto.circ", "caproto.ctx", "caproto"):
        logging.getLogger(name).addFilter(_RejectedPutFilter())
        logging.getLogger(name).addFilter(_BeaconFilter())
