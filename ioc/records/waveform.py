"""waveform record support (waveformRecord.c): an array of FTVL elements, NELM long, NORD used.

A CHAR/UCHAR waveform is also how EPICS serves long strings (``caget -S``): writing a str to
VAL stores its bytes followed by a NUL, as dbConvert does for a string put to a char array.
"""
from __future__ import annotations

import numpy as np

from .base import PutError
from .io import InputRecord
from .constants import DBE_LOG, DBE_VALUE
from .fields import FieldValueError, parse_float

# menuFtype index -> (DBF type of VAL, numpy dtype or None for strings)
FTVL_TYPES: list[tuple[str, object]] = [
    ("DBF_STRING", None), ("DBF_CHAR", np.int8), ("DBF_UCHAR", np.uint8),
    ("DBF_SHORT", np.int16), ("DBF_USHORT", np.uint16), ("DBF_LONG", np.int32),
    ("DBF_ULONG", np.uint32), ("DBF_INT64", np.int64), ("DBF_UINT64", np.uint64),
    ("DBF_FLOAT", np.float32), ("DBF_DOUBLE", np.float64), ("DBF_ENUM", np.uint16),
]
_POST_ALWAYS, _POST_ON_CHANGE = 0, 1     # menu waveformPOST


class ArrayUnits:
    """rset get_units/get_precision of the array records (waveform, aai, aao, subArray...):
    EGU on VAL (unless its FTVL is STRING or ENUM) and on HOPR/LOPR; PREC as is on VAL."""

    f: dict

    def rset_units(self, fname: str) -> str | None:
        if fname == "VAL" and self.field_type("VAL") not in ("DBF_STRING", "DBF_ENUM") \
                or fname in ("HOPR", "LOPR"):
            return self.f["EGU"]
        return ""

    def rset_precision(self, fname: str) -> int | None:
        prec = self.f["PREC"]
        return prec if fname == "VAL" else self.recgbl_prec(fname, prec)


class WaveformRecord(ArrayUnits, InputRecord):
    rtype = "waveform"
    sim_value_field = "VAL"         # SIOL reads straight into the array

    def __init__(self, name, db):
        super().__init__(name, db)
        self.f["VAL"] = np.zeros(1)
        self._hash = None

    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        return frozenset({"VAL"})

    def field_type(self, fname: str) -> str:
        if fname == "VAL":
            return FTVL_TYPES[self.f["FTVL"]][0]
        return super().field_type(fname)

    # waveformRecord.c rset (no get_alarm_double): units and precision as ArrayUnits; HOPR/LOPR
    # as VAL's display and control limits, BUSY 0..1, NORD 0..NELM, the type's range for the rest.
    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        f = self.f
        if fname == "VAL":
            return f["HOPR"], f["LOPR"]
        if fname == "BUSY":
            return 1.0, 0.0
        if fname == "NORD":
            return float(f["NELM"]), 0.0
        return self.type_range(fname)

    rset_control = rset_graphic       # the same field lists and limits

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            nelm = max(1, self.f["NELM"])
            self.f["NELM"] = nelm
            dtype = FTVL_TYPES[self.f["FTVL"]][1]
            if dtype is None:
                self.f["VAL"] = [""] * nelm
            else:
                self.f["VAL"] = np.zeros(nelm, dtype=dtype)

    def array(self):
        """The used part of VAL (NORD elements)."""
        return self.f["VAL"][: self.f["NORD"]]

    def coerce_field(self, fname: str, value, strict: bool = False):
        if fname != "VAL":
            return super().coerce_field(fname, value, strict)
        nelm = self.f["NELM"]
        dtype = FTVL_TYPES[self.f["FTVL"]][1]
        if dtype is None:
            items = [value] if isinstance(value, (str, bytes)) else list(value)
            items = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in items]
            return [s[:39] for s in items[:nelm]]
        if isinstance(value, (str, bytes)):
            if dtype in (np.int8, np.uint8):
                raw = value.encode("latin-1") if isinstance(value, str) else value
                raw = raw[: nelm - 1] + b"\0" if len(raw) >= nelm else raw + b"\0"
                return np.frombuffer(raw, dtype=np.uint8).astype(dtype)[:nelm]
            try:
                value = [parse_float(value)]
            except FieldValueError as exc:
                raise PutError(str(exc)) from None
        arr = np.atleast_1d(np.asarray(value))
        if arr.size > nelm:
            arr = arr[:nelm]
        try:
            return arr.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise PutError(f"cannot convert to {FTVL_TYPES[self.f['FTVL']][0]}: {exc}") from None

    def put_field(self, fname: str, value, *, from_link: bool = False) -> None:
        if fname != "VAL":
            return super().put_field(fname, value, from_link=from_link)
        new = self.coerce_field("VAL", value)
        self.store(new)
        self.f["UDF"] = 0

    def after_read(self, status: int) -> None:
        # waveformRecord.c's process clears UDF after any read, even a failed or constant one
        self.f["UDF"] = 0

    def check_alarms(self) -> None:
        """waveformRecord.c has no alarm checks of its own (no UDF alarm)."""

    def store(self, new) -> None:
        """Copy ``new`` into VAL and set NORD (posting NORD when it changes)."""
        f = self.f
        n = len(new)
        if isinstance(f["VAL"], list):
            f["VAL"][:n] = list(new)
        else:
            f["VAL"][:n] = new
        if f["NORD"] != n:
            f["NORD"] = n
            self.post("NORD", DBE_VALUE | DBE_LOG)

    def sim_store(self, value) -> bool:
        try:
            self.store(self.coerce_field("VAL", value if isinstance(value, (list, str))
                                         or hasattr(value, "__len__") else [value]))
        except PutError:
            return False
        return True

    def monitor(self) -> None:
        """waveformRecord monitor(): MPST/APST "Always" (menu index 0, the default) post on
        every processing; "On Change" when the used elements' hash changed."""
        f = self.f
        mask = self.reset_alarms()
        mpst, apst = f["MPST"], f["APST"]
        if mpst == _POST_ALWAYS:
            mask |= DBE_VALUE
        if apst == _POST_ALWAYS:
            mask |= DBE_LOG
        if mpst == _POST_ON_CHANGE or apst == _POST_ON_CHANGE:
            arr = self.array()
            h = hash(tuple(arr)) if isinstance(arr, list) else hash(arr.tobytes())
            if h != self._hash:
                self._hash = h
                if mpst == _POST_ON_CHANGE:
                    mask |= DBE_VALUE
                if apst == _POST_ON_CHANGE:
                    mask |= DBE_LOG
        if mask:
            self.post("VAL", mask)
