"""Soft Channel and Raw Soft Channel device support (devXxSoft.c / devXxSoftRaw.c).

Input records read their INP link into VAL (Raw: into RVAL, then the record converts); a constant
INP sets the value once at iocInit and clears UDF. Output records write VAL (ao/calcout: OVAL;
Raw: RVAL) to their OUT link. With ``TSE = -2`` an input record takes the time stamp of the
record its DB link reads, as EPICS's soft supports do.
"""
from __future__ import annotations

import math

from ..records.constants import CONVERT, NO_CONVERT, TSE_DEVICE_TIME
from ..records.io import READ_FAILED
from ..records.links import ConstantLink, DbLink, LinkError, as_float
from .registry import DeviceSupport, DevSupError, register

_INPUTS = ("ai", "bi", "mbbi", "longin", "stringin", "waveform")
_OUTPUTS = ("ao", "bo", "mbbo", "longout", "stringout", "calcout")
# devBiSoft, devMbbiSoft, devMbbiDirectSoft: reading a constant (or no) INP "succeeds" and
# defines VAL at every processing.
_CONST_DEFINES = frozenset({"bi", "mbbi", "mbbiDirect"})
_VALUE_FIELD_OUT = {"ao": "OVAL", "calcout": "OVAL"}



def take_link_time(rec, link) -> None:
    """dbGetTimeStamp for the soft input supports: with TSE -2 (device time) and a constant (or
    no) TSEL, a record reading through a DB link takes the time stamp of the record it read."""
    tsel = rec.links.get("TSEL")
    if (isinstance(link, DbLink) and rec.f["TSE"] == TSE_DEVICE_TIME
            and (tsel is None or tsel.is_constant)):
        rec.time = link.target.time

class SoftInput(DeviceSupport):
    raw = False

    def _target_field(self) -> str:
        return "RVAL" if self.raw else "VAL"

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        if isinstance(link, ConstantLink):
            try:
                v = link.load_value()
            except LinkError as exc:
                raise DevSupError(str(exc)) from None
            if v is not None:
                self._store(v)

    def _store(self, v) -> None:
        rec = self.record
        f = rec.f
        fld = self._target_field()
        if rec.rtype == "waveform":
            rec.store(rec.coerce_field("VAL", v if isinstance(v, (list, str)) else [v]))
            f["UDF"] = 0
            return
        if isinstance(v, list):
            v = v[0] if v else 0
        if rec.rtype == "ai" and not self.raw:
            x = as_float(v)
            if x is None:
                return
            if f["ASLO"] != 0.0:
                x *= f["ASLO"]
            x += f["AOFF"]
            rec.smooth(x)
            return
        try:
            f[fld] = rec.coerce_field(fld, v)
        except ValueError:
            return
        if fld == "VAL":
            f["UDF"] = 0

    def read(self) -> int:
        rec = self.record
        link = rec.links.get(rec.io_link)
        if (link is None or link.is_constant) and not self.raw and rec.rtype in _CONST_DEFINES:
            rec.f["UDF"] = 0
        if link is not None and not link.is_constant:
            v = link.get_value(rec, as_string=rec.rtype == "stringin")
            if v is None:
                return READ_FAILED
            self._store(v)
            take_link_time(rec, link)
        return CONVERT if self.raw else NO_CONVERT


class RawSoftInput(SoftInput):
    raw = True


_ALL_ONES = 0xFFFFFFFF


def _raw_mask_init(f: dict) -> None:
    """devMbb*SoftRaw init_record: MASK all ones without NOBT, then shifted by SHFT."""
    if f["NOBT"] == 0:
        f["MASK"] = _ALL_ONES
    f["MASK"] = (f["MASK"] << f["SHFT"]) & _ALL_ONES


class RawMaskedInput(RawSoftInput):
    """mbbi/mbbiDirect "Raw Soft Channel": MASK set up at init (:func:`_raw_mask_init`);
    reads store ``INP & MASK`` in RVAL and always ask the record to convert (a failed read
    too, as base does)."""

    def init_record(self) -> None:
        super().init_record()
        _raw_mask_init(self.record.f)

    def read(self) -> int:
        super().read()
        f = self.record.f
        f["RVAL"] &= f["MASK"]
        return CONVERT


class SoftOutput(DeviceSupport):
    raw = False

    def write(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        if link is None or link.is_constant:
            return
        fld = "RVAL" if self.raw else _VALUE_FIELD_OUT.get(rec.rtype, "VAL")
        v = rec.f[fld]
        if isinstance(v, float) and math.isnan(v) and fld == "RVAL":
            return
        link.put_value(rec, v)


class RawSoftOutput(SoftOutput):
    raw = True


class RawMaskedOutput(SoftOutput):
    """mbbo/mbboDirect "Raw Soft Channel": MASK set up at init; writes send ``RVAL & MASK``."""

    def init_record(self) -> None:
        _raw_mask_init(self.record.f)

    def write(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        if link is None or link.is_constant:
            return
        link.put_value(rec, rec.f["RVAL"] & rec.f["MASK"])


register(_INPUTS, "Soft Channel", SoftInput)
register(_OUTPUTS, "Soft Channel", SoftOutput)
register(("ai", "bi"), "Raw Soft Channel", RawSoftInput)
register("mbbi", "Raw Soft Channel", RawMaskedInput)
register(("ao", "bo"), "Raw Soft Channel", RawSoftOutput)
register("mbbo", "Raw Soft Channel", RawMaskedOutput)
