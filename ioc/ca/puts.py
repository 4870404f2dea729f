"""CA puts: a put's payload converted as dbPut's conversion routines would for the field, and
put through the record layer (dbPutField), with base's refusals (ECA_PUTFAIL)."""
from __future__ import annotations

import numpy as np

from ..records.base import NO_VALUE, PutError, PutNotify
from ..records.constants import DBE_ALARM, DBE_VALUE
from ..records.fields import FLOAT_TYPES, INT_RANGES, LINK_TYPES
from . import dbr
from . import protocol as P
from .channel import ClientChannel

_NUMERIC_DBF = FLOAT_TYPES | frozenset(INT_RANGES)


def put_precision(rec, field: str) -> int:
    """The precision a double written to a string field is printed with: the record
    support's get_precision where the record type has one, else 6 (dbFastLinkConv)."""
    p = rec.rset_precision(field)
    return 6 if p is None else int(p)


def put_value(chan: ClientChannel, dtype: int, count: int, payload):
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
            prec = put_precision(chan.record, chan.field)
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
            return dbr.format_double(item, put_precision(chan.record, chan.field))
        return str(int(item))
    if dbf in INT_RANGES:
        return dbr.c_cast(item, dbf)
    if dbf in dbr.ENUM_DBF:
        return dbr.c_cast(item, "DBF_USHORT")
    if dbf in dbr.FLOAT_DBF or isinstance(item, float):
        return item
    return int(item)

def do_put(chan: ClientChannel, dtype: int, count: int, payload,
           notify: PutNotify | None) -> None:
    """dbPutField of one CA put on ``chan`` (PutError where base's put fails): ACKT/ACKS as
    putAckt/putAcks, everything else converted by :func:`put_value` and put (and processed)
    through the record layer; ``notify`` completes with the processing."""
    rec = chan.record
    f = rec.f
    if dtype == P.DBR_PUT_ACKS or dtype == P.DBR_PUT_ACKT:
        if chan.fc.dbf in LINK_TYPES:
            raise PutError("a link field takes a string")   # dbPutFieldLink
        v = int(put_value(chan, dtype, count, payload)[0]) if count else 0
        # dbAccess putAcks/putAckt: the fields change, each is posted (value and alarm),
        # then every monitored field of the record gets an alarm event.
        both = DBE_VALUE | DBE_ALARM
        if dtype == P.DBR_PUT_ACKS:
            if v < f["ACKS"]:
                return _ack_done(notify)
            f["ACKS"] = 0
            rec.post("ACKS", both)
        else:
            if v == f["ACKT"]:
                return _ack_done(notify)
            f["ACKT"] = v          # stored as sent, as base does (0/1 in practice)
            rec.post("ACKT", both)
            if not f["ACKT"] and f["ACKS"] > f["SEVR"]:
                f["ACKS"] = f["SEVR"]
                rec.post("ACKS", both)
        for fc in list(rec.channels.values()):
            fc.post(DBE_ALARM)
        return _ack_done(notify)
    if dtype in (P.DBR_STSACK_STRING, P.DBR_CLASS_NAME):
        raise PutError("type cannot be written")
    value = put_value(chan, dtype, count, payload)
    try:
        rec.put_and_process(chan.field, value, notify)
    finally:
        chan.server.epoch += 1

def _ack_done(notify: PutNotify | None) -> None:
    if notify is not None:
        notify.check()
