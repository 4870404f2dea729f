"""ai and ao record support (aiRecord.c / aoRecord.c of EPICS base 7.0)."""
from __future__ import annotations

import math

from . import breaktable as bpt
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .io import READ_FAILED, InputRecord, OutputRecord
from .links import as_float
from .meta import AnalogMeta

# menuConvert: 0 NO CONVERSION, 1 SLOPE, 2 LINEAR, >2 name breakpoint tables.
_LINR_NONE, _LINR_SLOPE, _LINR_LINEAR = 0, 1, 2
_OIF_INCREMENTAL = 1


def _bpt_convert(rec, value: float, to_eng: bool) -> float | None:
    """Convert through the table LINR names; None (SOFT/MAJOR set) when no such table.

    Out-of-range values are extrapolated and also raise SOFT/MAJOR, as cvtBpt.c + ai/ao do.
    The table comes from the Database's ``find_breaktable`` (records never import it).
    """
    f = rec.f
    name = rec.menus["menuConvert"][f["LINR"]][1]
    find = getattr(rec.db, "find_breaktable", None)
    table = find(name) if find else None
    if table is None:
        rec.set_sevr(Stat.SOFT, Sevr.MAJOR)
        return None
    cvt = bpt.raw_to_eng if to_eng else bpt.eng_to_raw
    out, f["LBRK"], status = cvt(table, value, f["LBRK"])
    if status != bpt.BPT_OK:
        rec.set_sevr(Stat.SOFT, Sevr.MAJOR)
        if not to_eng:
            return None
    return out


class _EgulOffset:
    """ai/ao init_record (aiRecord.c, aoRecord.c): for "old device support that does not know
    EOFF", ESLO 1 with EOFF 0 makes EOFF = EGUL before device support's init_record; with
    LINR SLOPE the ESLO/EOFF of the database are put back after it."""

    def before_dset_init(self) -> None:
        f = self.f
        self._db_eslo_eoff = (f["ESLO"], f["EOFF"])
        if f["ESLO"] == 1.0 and f["EOFF"] == 0.0:
            f["EOFF"] = f["EGUL"]

    #: base device supports of this record type without a dset init_record (the restore
    #: happens only after one ran): devAoSoftRaw, devAoSoftCallback
    no_dset_init: frozenset = frozenset()

    def restore_slope(self) -> None:
        saved = getattr(self, "_db_eslo_eoff", None)
        if self.dtyp_name() in self.no_dset_init:
            return
        if saved is not None and self.f["LINR"] == _LINR_SLOPE:
            self.f["ESLO"], self.f["EOFF"] = saved


class AiRecord(_EgulOffset, AnalogMeta, InputRecord):
    rtype = "ai"
    # aiRecord.c rset: EGU on DBF_DOUBLE fields but the conversion factors; HOPR/LOPR as
    # display and control limits of the value-like fields.
    no_egu = frozenset({"ASLO", "AOFF", "SMOO"})
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | {"SVAL"}

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.restore_slope()

    def after_read(self, status: int) -> None:
        # aiRecord: any read that did not fail defines VAL unless it is NaN.
        if status != READ_FAILED:
            self.f["UDF"] = int(math.isnan(self.f["VAL"]))

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])

    def convert(self) -> None:
        """RVAL -> VAL: ROFF, ASLO/AOFF, LINR (SLOPE/LINEAR: ESLO/EOFF), SMOO smoothing."""
        f = self.f
        val = float(f["RVAL"]) + float(f["ROFF"])
        if f["ASLO"] != 0.0:
            val *= f["ASLO"]
        val += f["AOFF"]
        if f["LINR"] in (_LINR_SLOPE, _LINR_LINEAR):
            val = val * f["ESLO"] + f["EOFF"]
        elif f["LINR"] > _LINR_LINEAR:
            # aiRecord: a missing table keeps the value before the table
            eng = _bpt_convert(self, val, to_eng=True)
            val = val if eng is None else eng
        self.smooth(val)

    def smooth(self, val: float) -> None:
        f = self.f
        if f["SMOO"] == 0.0 or f["UDF"] or not math.isfinite(f["VAL"]):
            f["VAL"] = val
        else:
            f["VAL"] = val * (1.0 - f["SMOO"]) + f["VAL"] * f["SMOO"]
        f["UDF"] = int(math.isnan(f["VAL"]))

    def monitor(self) -> None:
        f = self.f
        self.monitor_value()
        if f["ORAW"] != f["RVAL"]:
            f["ORAW"] = f["RVAL"]
            self.post("RVAL", DBE_VALUE | DBE_LOG)


class AoRecord(_EgulOffset, AnalogMeta, OutputRecord):
    rtype = "ao"
    no_dset_init = frozenset({"Raw Soft Channel", "Async Soft Channel"})
    sim_out_field = "OVAL"
    # aoRecord.c rset: PREC as is for the three values; IVOV displays HOPR/LOPR but has its
    # type's control range; the others' control limits are the drive limits.
    no_egu = frozenset({"ASLO", "AOFF"})
    raw_prec = frozenset({"VAL", "OVAL", "PVAL"})
    ctrl_fields = AnalogMeta.ctrl_fields | {"OVAL", "PVAL"}
    disp_fields = ctrl_fields | {"IVOV"}

    def ctrl_limits(self) -> tuple[float, float]:
        return self.f["DRVH"], self.f["DRVL"]

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.restore_slope()
            f = self.f
            f["OVAL"] = f["PVAL"] = f["MLST"] = f["ALST"] = f["LALM"] = f["VAL"]
            f["ORAW"], f["ORBV"] = f["RVAL"], f["RBV"]

    def fetch_and_convert(self) -> None:
        f = self.f
        value = f["VAL"]
        raw = self.fetch_dol()
        if raw is not None:
            v = as_float(raw)
            if v is None:
                self.dol_failed = True
            else:
                value = v + f["VAL"] if f["OIF"] == _OIF_INCREMENTAL else v
        if not self.dol_failed:
            self.convert(value)
        f["UDF"] = int(math.isnan(f["VAL"]))

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])

    def set_ivov(self) -> None:
        self.f["VAL"] = self.f["IVOV"]
        self.convert(self.f["IVOV"])

    def convert(self, value: float) -> None:
        """Clamp to DRVL..DRVH (when DRVH > DRVL), apply OROC, compute OVAL and RVAL."""
        f = self.f
        if f["DRVH"] > f["DRVL"]:
            if value > f["DRVH"]:
                value = f["DRVH"]
            elif value < f["DRVL"]:
                value = f["DRVL"]
        f["VAL"] = value
        f["PVAL"] = value
        if f["OROC"] != 0:
            diff = value - f["OVAL"]
            if diff < 0:
                if f["OROC"] < -diff:
                    value = f["OVAL"] - f["OROC"]
            elif f["OROC"] < diff:
                value = f["OVAL"] + f["OROC"]
        f["OMOD"] = int(f["OVAL"] != value)
        f["OVAL"] = value
        if f["LINR"] in (_LINR_SLOPE, _LINR_LINEAR):
            value = 0.0 if f["ESLO"] == 0.0 else (value - f["EOFF"]) / f["ESLO"]
        elif f["LINR"] > _LINR_LINEAR:
            # aoRecord: any table error leaves RVAL as it was
            raw = _bpt_convert(self, value, to_eng=False)
            if raw is None:
                return
            value = raw
        value -= f["AOFF"]
        if f["ASLO"] != 0.0:
            value /= f["ASLO"]
        if math.isfinite(value):
            raw = int(value + 0.5) if value >= 0 else int(value - 0.5)
            f["RVAL"] = max(-2 ** 31, min(2 ** 31 - 1, raw - f["ROFF"]))

    def monitor(self) -> None:
        f = self.f
        self.monitor_value()
        if f["OMOD"]:
            self.post("OVAL", DBE_VALUE | DBE_LOG)
        if f["ORAW"] != f["RVAL"]:
            f["ORAW"] = f["RVAL"]
            self.post("RVAL", DBE_VALUE | DBE_LOG)
        if f["ORBV"] != f["RBV"]:
            f["ORBV"] = f["RBV"]
            self.post("RBV", DBE_VALUE | DBE_LOG)
