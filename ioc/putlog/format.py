"""Values and text of the put log: what is read from a field, and how a line looks.

The line format is caPutLog's original (non-JSON) one::

    <time> <host> <user> <pv> new=<value> old=<value>[ min=<value> max=<value> burst=<n>]

* ``<time>`` is strftime of the put's time stamp in local time, default ``%d-%b-%y %H:%M:%S``
  (``caPutLogSetTimeFmt`` changes it); ``%f`` / ``%0<n>f`` give fractional seconds (9 or n
  digits), as epicsTimeToStrftime does.
* numbers print as C's ``%d`` / ``%u`` / ``%g``; DBF_ENUM as its index; strings, menu and
  device choices and links in double quotes with epicsStrnEscapedFromRaw's escapes.
* arrays (not in caPutLog's text format; its JSON logger has them) print as ``[e1,e2,...]``
  followed by ``new-size=<n>`` / ``old-size=<n>``; at most caPutLog's 400 bytes of elements
  are shown (a trailing ``...`` says some were left out). A CHAR array and a long string are one
  quoted string of at most 400 characters.

Our extensions (never in caPutLog): ``burst=<n>`` also for non-numeric bursts (caPutLog merges
those silently), `` failed="<reason>"`` after a put that failed, and refused puts::

    <time> <host> <user> <pv> refused="<reason>"
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..records.fields import LINK_TYPES
from ..records.links import link_text
from ..timesrc import POSIX_TIME_AT_EPICS_EPOCH

if TYPE_CHECKING:
    from ..records.base import Record

__all__ = ["DEFAULT_TIME_FMT", "MAX_ARRAY_BYTES", "Captured", "capture", "format_time",
           "format_value", "is_numeric", "escape"]

DEFAULT_TIME_FMT = "%d-%b-%y %H:%M:%S"
MAX_ARRAY_BYTES = 400           # caPutLog's MAX_ARRAY_SIZE_BYTES: what one value may keep
NOT_ACCESSIBLE = "Not Accessible"

_ELEM_BYTES = {
    "DBF_STRING": 40, "DBF_CHAR": 1, "DBF_UCHAR": 1, "DBF_SHORT": 2, "DBF_USHORT": 2,
    "DBF_ENUM": 2, "DBF_LONG": 4, "DBF_ULONG": 4, "DBF_FLOAT": 4, "DBF_INT64": 8,
    "DBF_UINT64": 8, "DBF_DOUBLE": 8,
}
_INTS = frozenset({"DBF_CHAR", "DBF_UCHAR", "DBF_SHORT", "DBF_USHORT", "DBF_LONG",
                   "DBF_ULONG", "DBF_INT64", "DBF_UINT64", "DBF_ENUM"})
_FLOATS = frozenset({"DBF_FLOAT", "DBF_DOUBLE"})
_NUMERIC = _INTS | _FLOATS


@dataclass(frozen=True)
class Captured:
    """One reading of a field: its DBF type as logged (menus, devices and links become
    DBF_STRING, as caPutLog reads them as DBR_STRING), the value (a number, a str, or for an
    array a tuple copy of its first elements: as many as 400 bytes hold, plus one), and for
    arrays the element count in use. Two readings compare equal when what they keep does
    (caPutLog's on-change test compares its 400 bytes too)."""
    dbf: str
    value: Any
    is_array: bool = False
    size: int = 1


def capture(record: "Record", field: str) -> Captured:
    """Read ``record.field`` now, as the CA server's FieldChannel.value_now does (RTYP, the
    used part of an array VAL, link text, enum index) and copy it. Never raises: a field that
    cannot be read gives caPutLog's ``"Not Accessible"`` string."""
    try:
        if field == "RTYP":
            return Captured("DBF_STRING", record.rtype)
        dbf = record.field_type(field)
        if field == "VAL" and hasattr(record, "array"):
            arr = record.array()
            size = len(arr)
            # only what a line can show (and one more, for the "..."), as caPutLog keeps
            # 400 bytes: a large array is not copied at every put
            arr = arr[:MAX_ARRAY_BYTES // _ELEM_BYTES.get(dbf, 1) + 1]
            if isinstance(arr, (list, tuple)):
                items = tuple(str(v) for v in arr)
            else:
                items = tuple(v.item() if hasattr(v, "item") else v for v in arr)
            return Captured(dbf, items, True, size)
        raw = record.f[field]
        if dbf in LINK_TYPES:
            return Captured("DBF_STRING", link_text(raw, dbf))
        if dbf in ("DBF_MENU", "DBF_DEVICE"):
            return Captured("DBF_STRING", record.enum_string(field, int(raw)))
        if dbf in _NUMERIC:
            return Captured(dbf, raw.item() if hasattr(raw, "item") else raw)
        return Captured("DBF_STRING", raw if isinstance(raw, str) else str(raw))
    except Exception:               # noqa: BLE001  (a log must never break a put)
        return Captured("DBF_STRING", NOT_ACCESSIBLE)


def is_numeric(c: Captured) -> bool:
    """A numeric scalar: caPutLog keeps min/max of a burst only for these."""
    return not c.is_array and c.dbf in _NUMERIC and isinstance(c.value, (int, float))


def escape(text: str) -> str:
    """epicsStrnEscapedFromRaw: C escapes for the specials, ``\\xHH`` for other
    non-printable characters."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch in _ESC:
            out.append(_ESC[ch])
        elif o < 0x20 or 0x7F <= o <= 0xFF:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out)


_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
        "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"'}


def _scalar(v: Any, dbf: str) -> str:
    if dbf in _FLOATS and isinstance(v, (int, float)):
        return _g(float(v))
    if dbf in _INTS and isinstance(v, (int, float)):
        return str(int(v))
    text = v if isinstance(v, str) else str(v)
    return '"' + escape(text[:MAX_ARRAY_BYTES]) + '"'


def _g(x: float) -> str:
    """C's ``%g`` (glibc spells NaN and infinities nan, inf, -inf)."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%g" % x


def format_value(c: Captured) -> str:
    """The text of one value in a line (see the module docstring)."""
    if not c.is_array:
        return _scalar(c.value, c.dbf)
    items = c.value
    if c.dbf == "DBF_CHAR":
        raw = bytes(int(v) & 0xFF for v in items)
        raw = raw.split(b"\0", 1)[0][:MAX_ARRAY_BYTES]
        return '"' + escape(raw.decode("latin-1")) + '"'
    keep = max(1, MAX_ARRAY_BYTES // _ELEM_BYTES.get(c.dbf, 8))
    parts = [_scalar(v, c.dbf) for v in items[:keep]]
    if len(items) > keep:
        parts.append("...")
    return "[" + ",".join(parts) + "]"


_FRAC = re.compile(r"%%|%(0?\d)?f")


def format_time(fmt: str, stamp: tuple[int, int]) -> str:
    """epicsTimeToStrftime of an EPICS time stamp (seconds, nanoseconds) in local time."""
    sec, nsec = stamp
    posix = sec + POSIX_TIME_AT_EPICS_EPOCH

    def frac(m: "re.Match[str]") -> str:
        if m.group(0) == "%%":
            return "%%"
        digits = int(m.group(1)) if m.group(1) else 9
        digits = max(1, min(9, digits))
        return f"{nsec:09d}"[:digits]

    try:
        return time.strftime(_FRAC.sub(frac, fmt), time.localtime(posix))
    except (ValueError, OverflowError):
        return time.strftime(DEFAULT_TIME_FMT, time.localtime(posix))
