"""Soft device support of the control records: event "Soft Channel" (devEventSoft.c), printf
"Soft Channel", "Async Soft Channel" (devPrintfSoft*.c) and "stdio" (devStdio.c).

event Soft Channel: a constant INP names the event once at iocInit (and defines VAL); a DB/CA
INP is read as a string into VAL at each processing (a successful read defines VAL), with the
target's time stamp when TSE is -2 and TSEL is not linked.

printf Soft Channel writes VAL to OUT as dbPutLinkLS does: the whole string to a CHAR/UCHAR array
field, else as a DBR_STRING (39 characters). Async Soft Channel is the same here: its
asynchronous put exists only for CA links, and a DB link (all we link to) falls back to the
synchronous put in base too. stdio (``@stdout``, ``@stderr``, ``@errlog``) prints VAL and a
newline on that stream; any other parameter refuses the record.
"""
from __future__ import annotations

import logging
import sys

from ..records.constants import NO_CONVERT
from ..records.io import READ_FAILED
from ..records.links import ConstantLink, DbLink, InstioLink, LinkError
from .registry import DeviceSupport, DevSupError, register
from .soft import take_link_time


def _as_text(rec, v) -> str:
    """A link value as the record's VAL string (DBR_STRING of the source)."""
    if isinstance(v, list):
        v = v[0] if v else ""
    return rec.coerce_field("VAL", v)


class EventSoft(DeviceSupport):
    """devEventSoft: INP -> VAL (the event's name)."""

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get("INP")
        if isinstance(link, ConstantLink):
            try:
                v = link.load_value()
            except LinkError as exc:
                raise DevSupError(str(exc)) from None
            if v is not None:
                rec.f["VAL"] = _as_text(rec, v)
                rec.f["UDF"] = 0

    def read(self) -> int:
        rec = self.record
        link = rec.links.get("INP")
        if link is None or link.is_constant:
            return NO_CONVERT
        v = link.get_value(rec, as_string=True)
        if v is None:
            return READ_FAILED
        rec.f["VAL"] = _as_text(rec, v)
        rec.f["UDF"] = 0
        take_link_time(rec, link)
        return NO_CONVERT


class PrintfSoft(DeviceSupport):
    """devPrintfSoft / devPrintfSoftCallback: VAL -> OUT (dbPutLinkLS)."""

    def write(self) -> None:
        rec = self.record
        link = rec.links.get("OUT")
        if link is None or link.is_constant:
            return
        val = rec.f["VAL"]
        if isinstance(link, DbLink) and link.target.field_type(link.field) not in (
                "DBF_CHAR", "DBF_UCHAR"):
            val = val[:39]          # one DBR_STRING
        link.put_value(rec, val)


_STREAMS = {"stdout": lambda text: print(text, file=sys.stdout, flush=True),
            "stderr": lambda text: print(text, file=sys.stderr, flush=True),
            "errlog": lambda text: logging.getLogger("errlog").error("%s", text)}


class PrintfStdio(DeviceSupport):
    """devPrintfStdio: VAL and a newline on the stream INST_IO names."""

    link_type = "INST_IO"

    def init_record(self) -> None:
        link = self.record.links.get("OUT")
        name = link.parm.strip() if isinstance(link, InstioLink) else None
        if name not in _STREAMS:
            raise DevSupError(f"printf stdio: unknown stream {name!r} "
                              f"(expected @{', @'.join(_STREAMS)})")
        self._print = _STREAMS[name]

    def write(self) -> None:
        self._print(self.record.f["VAL"])


register("event", "Soft Channel", EventSoft)
register("printf", "Soft Channel", PrintfSoft)
register("printf", "Async Soft Channel", PrintfSoft)
register("printf", "stdio", PrintfStdio, link_type="INST_IO")
