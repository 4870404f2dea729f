"""DTYP "Soft Timestamp" (base's devTimestamp.c) for ai and stringin.

Each read takes the record's time stamp as recGblGetTimeStamp does (TSE/TSEL, from the IOC's
generalTime registry), then:

* ai: VAL = that time in seconds past the EPICS epoch (1990-01-01 UTC), ``sec + nsec*1e-9``,
  UDF cleared, no conversion (ASLO/AOFF/LINR unused).
* stringin: VAL = that time formatted with the INP text after ``@`` (epicsTimeToStrftime:
  strftime in local time, plus ``%<n>f``/``%0<n>f`` for the fraction of a second rounded to n
  digits, ``%f`` for nine; see :func:`epics_strftime` for what does not fit in 39 characters).
  No INP (or ``@`` alone) gives an empty VAL.

Registered after "General Time" is, then the menus are put back in base's order
(:func:`ioc.devsup.soft_misc.order_like_base`: Soft Timestamp comes before General Time).
"""
from __future__ import annotations

import re
import time

from ioc.devsup.registry import DeviceSupport, register
from ioc.devsup.soft_misc import order_like_base
from ioc.records.constants import NO_CONVERT, Stat
from ioc.records.links import InstioLink
from ioc.timesrc import POSIX_TIME_AT_EPICS_EPOCH

_STRING_SIZE = 40                # stringin VAL is char[40], NUL included
_FRACTION = re.compile(r"%(?:0?([1-9]))?f")


def epics_strftime(fmt: str, stamp: tuple[int, int], size: int = _STRING_SIZE) -> str:
    """epicsTimeToStrftime of an EPICS (sec, nsec) stamp, in local time, into a buffer of
    ``size`` bytes, as base 7.0.8 behaves (observed): the format is cut at its fraction codes
    (``%f`` 9 digits, ``%<n>f``/``%0<n>f`` n digits, rounded, never carrying into the seconds);
    a strftime piece that does not fit in what is left adds nothing, a fraction that does not
    fit fills what is left with ``*``."""
    sec, nsec = stamp
    tm = time.localtime(sec + POSIX_TIME_AT_EPICS_EPOCH)
    out = ""
    pos = 0
    pieces = list(_FRACTION.finditer(fmt)) + [None]
    for m in pieces:
        chunk = fmt[pos:m.start() if m else len(fmt)]
        if chunk:
            text = time.strftime(chunk, tm)
            if len(text.encode()) < size - len(out.encode()):
                out += text
        if m is None:
            break
        pos = m.end()
        n = int(m.group(1) or 9)
        div = 10 ** (9 - n)
        frac = min((nsec + div // 2) // div, 10 ** n - 1)
        left = size - len(out.encode())
        out += f"{frac:0{n}d}" if n < left else "*" * (left - 1)
    return out


class AiTimestamp(DeviceSupport):
    """ai "Soft Timestamp" (see the module docstring)."""

    link_type = "INST_IO"

    def read(self) -> int:
        rec = self.record
        rec.get_timestamp()
        sec, nsec = rec.time
        rec.f["VAL"] = sec + nsec * 1e-9
        rec.f["UDF"] = 0
        return NO_CONVERT


class SiTimestamp(DeviceSupport):
    """stringin "Soft Timestamp" (see the module docstring)."""

    link_type = "INST_IO"

    def init_record(self) -> None:
        link = self.record.links.get("INP")
        self._fmt = link.parm if isinstance(link, InstioLink) else ""

    def read(self) -> int:
        rec = self.record
        rec.get_timestamp()
        text = epics_strftime(self._fmt, rec.time)
        if len(text.encode()) >= _STRING_SIZE:
            rec.f["UDF"] = 1
            rec.set_sevr(Stat.UDF, rec.f["UDFS"])
            return -1
        rec.f["VAL"] = text
        rec.f["UDF"] = 0
        return NO_CONVERT


register("ai", "Soft Timestamp", AiTimestamp, link_type="INST_IO")
register("stringin", "Soft Timestamp", SiTimestamp, link_type="INST_IO")
order_like_base()
