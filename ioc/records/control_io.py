"""Control records with device support: event and printf (eventRecord.c, printfRecord.c of
EPICS base 7.0).

event: each processing reads its name through device support (or SIOL in simulation) into VAL,
then posts that named event -- the records with ``SCAN = Event`` and that EVNT are processed
afterwards by the scanner (from the callback task in base, so not inside this processing nor a
put-callback on this record), then VAL is posted (always, DBE_VALUE) and FLNK runs.
"""
from __future__ import annotations

from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
import dataclasses
import math

from ..dbd import FieldSpec
from ..scan import event_name
from .base import Record
from .fields import format_number
from .io import InputRecord
from .links import DbLink, LinkError, as_float


class EventRecord(InputRecord):
    rtype = "event"

    def after_read(self, status: int) -> None:
        # postEvent: queued for the scanner, as base's event scan runs on the callback task.
        name = event_name(self.f["VAL"])
        if name:
            self.db.call_soon_threadsafe(lambda: self.db.scanner.post_event(name))

    def check_alarms(self) -> None:
        """eventRecord has no alarm checks (no UDF alarm either)."""

    def monitor(self) -> None:
        self.post("VAL", self.reset_alarms() | DBE_VALUE)


# printfRecord.c's conversion characters and the DBR type each reads its link as.
_INT_CONV, _UINT_CONV, _FLOAT_CONV = "cdi", "ouxX", "eEfFgG"
_INT_BITS = {"hh": 8, "h": 16, "": 32, "l": 32, "ll": 64}


def _c_int(v: float | None, bits: int, signed: bool) -> int | None:
    """A double read through a link as a C integer of ``bits`` (a C cast, wrapping)."""
    if v is None or not math.isfinite(v):
        return None if v is None else 0
    n = int(v) & ((1 << bits) - 1)
    if signed and n >> (bits - 1):
        n -= 1 << bits
    return n


class PrintfRecord(Record):
    """printf: FMT with its directives filled from INP0..INP9 into the long string VAL (SIZV
    bytes, LEN used incl. the NUL), then written by device support; VAL and LEN posted always.

    A directive whose link is missing or unreadable prints IVLS; a malformed one prints itself.
    """

    rtype = "printf"
    io_link = "OUT"

    def __init__(self, name, db):
        super().__init__(name, db)
        self.f["VAL"] = ""
        self._const_read = False        # the last _read() was of a constant link

    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        return frozenset({"VAL"})

    def field_type(self, fname: str) -> str:
        return "DBF_STRING" if fname == "VAL" else super().field_type(fname)

    def field_spec(self, fname: str) -> FieldSpec:       # type: ignore[override]
        fs = type(self).spec.fields[fname]
        if fname == "VAL":
            # cvt_dbaddr: VAL is a DBF_STRING of SIZV bytes (VAL$ reads all of them).
            return dataclasses.replace(fs, dbf="DBF_STRING", size=self.f["SIZV"])
        return super().field_spec(fname)

    def coerce_field(self, fname: str, value, strict: bool = False):
        if fname != "VAL":
            return super().coerce_field(fname, value, strict)
        if isinstance(value, bytes):
            value = value.split(b"\0", 1)[0].decode("latin-1")
        return str(value)[: self.f["SIZV"] - 1]

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            self.f["SIZV"] = max(16, min(0x7FFF, self.f["SIZV"]))
            self.f["LEN"] = 0

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            self._do_printf()
            f["UDF"] = 0
            self.get_timestamp()
        if self.dset is not None:
            self.dset.write()
            if not pact and f["PACT"]:
                return
        f["PACT"] = 1
        events = self.reset_alarms() | DBE_VALUE | DBE_LOG
        self.post("VAL", events)
        self.post("LEN", events)
        self.fwd_link()
        f["PACT"] = 0

    # ------------------------------------------------------------ formatting
    def _read(self, index: int, *, as_string: bool = False):
        """INPn's value (constants: their value), or None when unreadable or past INP9."""
        self._const_read = False
        if index >= 10:
            return None
        link = self.links.get(f"INP{index}")
        if link is None:
            return None
        self._const_read = link.is_constant
        if link.is_constant:
            try:
                v = link.load_value()
            except LinkError:
                return None
        else:
            v = link.get_value(self, as_string=as_string)
        if isinstance(v, list):
            v = v[0] if v else None
        if hasattr(v, "tolist"):
            v = v.tolist()
            if isinstance(v, list):
                v = bytes(x & 0xFF for x in v).split(b"\0", 1)[0].decode("latin-1") \
                    if as_string else (v[0] if v else None)
        return v

    def _do_printf(self) -> None:
        f = self.f
        fmt, space = f["FMT"], f["SIZV"] - 1
        out: list[str] = []
        used = 0
        linkn = 0
        i = 0
        while used < space and i < len(fmt):
            ch = fmt[i]
            i += 1
            if ch != "%":
                out.append(ch)
                used += 1
                continue
            j = i
            while j < len(fmt) and fmt[j] in "+ #-0123456789.*hl":
                j += 1
            if j >= len(fmt):
                break                       # a directive cut off by the end of FMT
            spec, conv = fmt[i:j], fmt[j]
            i = j + 1
            text, linkn = self._directive(spec, conv, linkn)
            text = text[: space - used]
            out.append(text)
            used += len(text)
        val = "".join(out)
        f["VAL"] = val
        f["LEN"] = len(val.encode("latin-1", "replace")) + 1

    def _directive(self, spec: str, conv: str, linkn: int) -> tuple[str, int]:
        """One %-directive as printed, and the next input link's index."""
        raw = "%" + spec + conv
        if conv not in "diouxXeEfFgGcs%" or not _valid_flags(spec):
            return raw, linkn
        length = "".join(c for c in spec if c in "hl")
        body = "".join(c for c in spec if c not in "hl")
        bad_link = False
        # '*' width/precision: read from the next link as a short.
        while "*" in body:
            v = self._read(linkn)
            linkn += 1
            n = _c_int(as_float(v), 16, True)
            if n is None:
                bad_link = True
                n = 0
            body = body.replace("*", str(n), 1)
        if conv == "%":
            return "%", linkn
        if bad_link:
            return self.f["IVLS"], linkn        # base prints IVLS before taking a value link
        if conv == "s" and length == "l":
            return self._long_string(body, linkn)
        v = self._read(linkn, as_string=conv == "s")
        linkn += 1
        if v is None:
            return self.f["IVLS"], linkn
        try:
            if conv in _INT_CONV or conv in _UINT_CONV:
                bits = 8 if conv == "c" else _INT_BITS.get(length, 32)
                n = _c_int(as_float(v), bits, conv in _INT_CONV)
                if self._const_read and not _const_fits(as_float(v), bits, conv in _INT_CONV):
                    n = None        # dbConstLoadScalar refuses text out of the type's range
                if n is None:
                    return self.f["IVLS"], linkn
                if conv == "c":
                    return ("%" + body + "c") % chr(n & 0xFF), linkn
                return ("%" + body + ("d" if conv in "iu" else conv)) % n, linkn
            if conv in _FLOAT_CONV:
                x = as_float(v)
                if x is None:
                    return self.f["IVLS"], linkn
                return ("%" + body + conv) % x, linkn
            s = v if isinstance(v, str) else format_number(v)
            return ("%" + body + "s") % s[:39], linkn
        except (TypeError, ValueError, OverflowError):
            return raw, linkn

    def _long_string(self, body: str, linkn: int) -> tuple[str, int]:
        """%ls: a long string read as a char array; width pads, precision cuts."""
        v = self._read(linkn, as_string=True)
        link = self.links.get(f"INP{linkn}")
        if isinstance(link, DbLink) and link.target.field_type(link.field) not in (
                "DBF_CHAR", "DBF_UCHAR") and v is not None:
            # A DBR_CHAR read of a scalar: its value as one char; text that is no number
            # fails the conversion (LINK alarm), as dbGet's string-to-char does.
            x = as_float(v)
            if x is None:
                self.set_sevr(Stat.LINK, Sevr.INVALID)
                v = None
            else:
                v = chr(_c_int(x, 8, False)).split("\0", 1)[0]
        if v is None:
            return self.f["IVLS"], linkn + 1
        s = v if isinstance(v, str) else format_number(v)
        left = "-" in body
        nums = body.lstrip("+ #-0")
        width_s, _, prec_s = nums.partition(".")
        if prec_s and int(prec_s):
            s = s[: int(prec_s)]
        width = int(width_s) if width_s else 0
        return (s.ljust(width) if left else s.rjust(width)), linkn + 1


def _const_fits(v: float | None, bits: int, signed: bool) -> bool:
    """Whether a constant is an integer the C type of ``bits`` (signed or not) can hold."""
    if v is None or not math.isfinite(v) or v != int(v):
        return False
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lo <= v <= hi


def _valid_flags(spec: str) -> bool:
    """printfRecord's checks: at most hh/h/l/ll, and no '*' after digits."""
    length = "".join(c for c in spec if c in "hl")
    if length not in _INT_BITS or spec[len(spec) - len(length):] != length:
        return False
    num = ""
    for c in spec:
        if c == "*" and num:
            return False
        if c == ".":
            num = ""
        elif c.isdigit():
            num += c
    return True
