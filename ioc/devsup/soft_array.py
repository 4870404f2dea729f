"""Soft Channel device support of the array records (devAaiSoft.c, devAaoSoft.c, devSASoft.c).

* aai: a constant INP loads VAL once at iocInit (NORD, UDF cleared); a DB or CA INP (SIOL in
  simulation) is read, up to NELM elements, at each processing; TSE -2 takes its time stamp.
* aao: NORD elements of VAL are written to OUT (SIOL in simulation); a constant OUT makes NORD
  0 at iocInit.
* subArray: INDX+NELM elements (at most MALM) are read through INP (a constant INP at iocInit and
  at each processing) and the record keeps NELM of them from INDX; an empty INP keeps NORD.
"""
from __future__ import annotations

from ..records.constants import CONVERT, DBE_LOG, DBE_VALUE, NO_CONVERT
from ..records.io import READ_FAILED, SIMM_YES
from ..records.links import ConstantLink, LinkError, constant_value
from ..records.base import PutError
from .registry import DeviceSupport, register
from .soft import take_link_time


def _read_link(rec, fname: str, count: int):
    """dbGetLink of up to ``count`` FTVL elements (as the record converts them); None if the
    link cannot be read. A DB link gives its time stamp with TSE -2 (no TSEL)."""
    link = rec.links.get(fname)
    v = link.get_value(rec, as_string=rec.field_type("VAL") == "DBF_STRING")
    if v is None:
        return None
    try:
        new = rec.to_val(v, count)
    except PutError:
        return None
    take_link_time(rec, link)
    return new


class SoftAai(DeviceSupport):
    def init_record(self) -> None:
        self.record.load_constant("INP")

    def read(self) -> int:
        rec = self.record
        fname = "SIOL" if rec.f["SIMM"] == SIMM_YES else "INP"
        link = rec.links.get(fname)
        if link is None or link.is_constant:
            return NO_CONVERT
        new = _read_link(rec, fname, rec.f["NELM"])
        if new is None:
            return READ_FAILED
        rec.store(new)
        rec.f["UDF"] = 0
        return NO_CONVERT


class SoftAao(DeviceSupport):
    link_type = "CONSTANT"

    def init_record(self) -> None:
        link = self.record.links.get("OUT")
        if link is None or link.is_constant:
            self.record.f["NORD"] = 0

    def write(self) -> None:
        rec = self.record
        link = rec.links.get("SIOL" if rec.f["SIMM"] == SIMM_YES else "OUT")
        if link is not None and not link.is_constant:
            link.put_value(rec, rec.array())


class SoftSubArray(DeviceSupport):
    def init_record(self) -> None:
        rec = self.record
        if rec.load_constant("INP", rec.request_count()):
            rec.subset(rec.f["NORD"])

    def read(self) -> int:
        rec = self.record
        f = rec.f
        nord = f["NORD"]
        link = rec.links.get("INP")
        count = rec.request_count()
        if link is None or isinstance(link, ConstantLink):
            try:
                v = link.load_value() if link is not None else None
            except LinkError:
                return READ_FAILED
            if v is None:
                got = nord          # INP empty: the last read is kept
            else:
                new = rec.to_val(v, count)
                rec.store(new, post_nord=False)
                got = len(new)
        else:
            new = _read_link(rec, "INP", count)
            if new is None:
                return READ_FAILED
            rec.store(new, post_nord=False)
            got = len(new)
        rec.subset(got)
        if f["NORD"] != nord:
            rec.post("NORD", DBE_VALUE | DBE_LOG)
        return NO_CONVERT


register("aai", "Soft Channel", SoftAai)
register("aao", "Soft Channel", SoftAao)
register("subArray", "Soft Channel", SoftSubArray)


class SoftHistogram(DeviceSupport):
    """devHistogramSoft: a constant SVL sets SGNL at iocInit (UDF cleared); SVL is read into
    SGNL at each processing (a failed read keeps SGNL), and the record counts SGNL."""

    def init_record(self) -> None:
        rec = self.record
        v = constant_value(rec.links.get("SVL"), scalar=True)
        if v is not None:
            try:
                rec.f["SGNL"] = rec.coerce_field("SGNL", v)
                rec.f["UDF"] = 0
            except ValueError:
                pass

    def read(self) -> int:
        rec = self.record
        link = rec.links.get("SVL")
        if link is not None and not link.is_constant:
            v = link.get_value(rec)
            if isinstance(v, (list, tuple)) or getattr(v, "ndim", 0):
                v = v[0] if len(v) else None
            if v is not None:
                try:
                    rec.f["SGNL"] = rec.coerce_field("SGNL", v)
                except ValueError:
                    pass
        return CONVERT


register("histogram", "Soft Channel", SoftHistogram)
