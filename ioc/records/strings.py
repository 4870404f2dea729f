"""lsi and lso record support (lsiRecord.c, lsoRecord.c): long strings.

VAL and OVAL are strings of up to SIZV - 1 characters (SIZV from the db, 16..32767, default
41), served as DBF_STRING (``VAL$`` gives the whole SIZV-byte buffer as chars). LEN and OLEN
are the lengths plus the terminating NUL (0 while nothing was ever written). A put of VAL sets
and posts LEN; OVAL is read-only. Monitors post VAL when LEN or the text changed, or always
with MPST/APST "Always" (and LEN when it changed). Neither type has alarms of its own but
lso's UDF (INVALID); lso reads a closed-loop DOL as a long string.
"""
from __future__ import annotations

import dataclasses

from ..dbd import FieldSpec
from .base import Record
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .io import InputRecord, OutputRecord
from .links import constant_value

_POST_ALWAYS = 1
_MIN_SIZV, _MAX_SIZV = 16, 0x7FFF
_BUFFERS = frozenset({"VAL", "OVAL"})


class _LongString(Record):
    """The long-string buffers VAL/OVAL, LEN/OLEN and the monitor lsi and lso share."""

    def __init__(self, name: str, db) -> None:
        super().__init__(name, db)
        self.f["VAL"] = self.f["OVAL"] = ""

    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        return _BUFFERS

    def field_type(self, fname: str) -> str:
        return "DBF_STRING" if fname in _BUFFERS else super().field_type(fname)

    def field_spec(self, fname: str) -> FieldSpec:  # type: ignore[override]
        """VAL/OVAL as cvt_dbaddr makes them: DBF_STRING of SIZV bytes (per record)."""
        fs = type(self).spec.fields.get(fname) if fname in _BUFFERS else None
        if fs is None:
            return super().field_spec(fname)
        return dataclasses.replace(fs, dbf="DBF_STRING", size=self.f["SIZV"], special="SPC_MOD"
                                   if fname == "VAL" else "SPC_NOMOD")

    def is_writable(self, fname: str) -> bool:
        return fname == "VAL" or (fname != "OVAL" and super().is_writable(fname))

    def coerce_field(self, fname: str, value, strict: bool = False):
        if fname not in _BUFFERS:
            return super().coerce_field(fname, value, strict)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, list):
            value = value[0] if value else ""
        text = value if isinstance(value, str) else str(value)
        return text.split("\0", 1)[0][: self.f["SIZV"] - 1]

    def set_value(self, text) -> None:
        """Store a new VAL (truncated to SIZV - 1) and its LEN, as dbGetLinkLS does."""
        self.f["VAL"] = self.coerce_field("VAL", text)
        self.f["LEN"] = len(self.f["VAL"]) + 1

    def init_record(self, pass_: int) -> None:
        f = self.f
        if pass_ == 0:
            f["SIZV"] = max(_MIN_SIZV, min(_MAX_SIZV, f["SIZV"]))
        super().init_record(pass_)

    def init_last(self) -> None:
        """After device support's init (pass 1): a value loaded at init is defined."""
        f = self.f
        if f["LEN"]:
            f["OVAL"], f["OLEN"] = f["VAL"], f["LEN"]
            f["UDF"] = 0

    def special(self, fname: str, after: bool) -> None:
        if fname == "VAL" and after:
            self.f["LEN"] = len(self.f["VAL"]) + 1
            self.post("LEN", DBE_VALUE | DBE_LOG)
        super().special(fname, after)

    def monitor(self) -> None:
        f = self.f
        events = self.reset_alarms()
        if f["LEN"] != f["OLEN"] or f["OVAL"] != f["VAL"]:
            events |= DBE_VALUE | DBE_LOG
            f["OVAL"] = f["VAL"]
        if f["LEN"] != f["OLEN"]:
            f["OLEN"] = f["LEN"]
            self.post("LEN", DBE_VALUE | DBE_LOG)
        if f["MPST"] == _POST_ALWAYS:
            events |= DBE_VALUE
        if f["APST"] == _POST_ALWAYS:
            events |= DBE_LOG
        if events:
            self.post("VAL", events)


class LsiRecord(_LongString, InputRecord):
    rtype = "lsi"
    sim_value_field = "VAL"

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.init_last()

    def sim_store(self, value) -> bool:
        self.set_value(value)
        return True

    def sim_apply(self, simm: int) -> int:
        return 0

    def check_alarms(self) -> None:
        """lsiRecord.c has no alarm checks (not even UDF) when processing."""


class LsoRecord(_LongString, OutputRecord):
    rtype = "lso"
    has_dol = False         # DOL is read as a long string (dbLoadLinkLS / dbGetLinkLS)

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            v = constant_value(self.links.get("DOL"))
            if v is not None and v != []:
                self.set_value(v)
            self.init_last()

    def fetch_and_convert(self) -> None:
        v = self.fetch_dol()
        if v is not None:
            self.set_value(v)
            self.f["UDF"] = 0

    def check_alarms(self) -> None:
        if self.f["UDF"]:
            self.set_sevr(Stat.UDF, Sevr.INVALID)

    def set_ivov(self) -> None:
        self.set_value(self.f["IVOV"])
