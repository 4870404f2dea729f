"""ai and ao record support (aiRecord.c / aoRecord.c of EPICS base 7.0)."""
from __future__ import annotations

import math

from .base import Record
from .meta import AnalogMeta
from .constants import CONVERT, DBE_LOG, DBE_VALUE, Sevr, Stat
from .links import as_float

# menuConvert: 0 NO CONVERSION, 1 SLOPE, 2 LINEAR, >2 breakpoint tables (not supported).
_LINR_NONE, _LINR_SLOPE, _LINR_LINEAR = 0, 1, 2
# menuIvoa
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2
# menuOmsl
_OMSL_CLOSED_LOOP = 1


class AiRecord(AnalogMeta, Record):
    rtype = "ai"
    io_link = "INP"
    # aiRecord.c rset: EGU on DBF_DOUBLE fields but the conversion factors; HOPR/LOPR as
    # display and control limits of the value-like fields.
    no_egu = frozenset({"ASLO", "AOFF", "SMOO"})
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | {"SVAL"}

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = self.dset.read() if self.dset is not None else 2
        if not pact and f["PACT"]:
            return                       # asynchronous device support started I/O
        f["PACT"] = 1
        self.get_timestamp()
        if status == CONVERT:
            self.convert()
        self.check_analog_alarms(f["VAL"])
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0

    def convert(self) -> None:
        """RVAL -> VAL: ROFF, ASLO/AOFF, LINR (SLOPE/LINEAR: ESLO/EOFF), SMOO smoothing."""
        f = self.f
        val = float(f["RVAL"]) + float(f["ROFF"])
        if f["ASLO"] != 0.0:
            val *= f["ASLO"]
        val += f["AOFF"]
        if f["LINR"] in (_LINR_SLOPE, _LINR_LINEAR):
            val = val * f["ESLO"] + f["EOFF"]
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


class AoRecord(AnalogMeta, Record):
    rtype = "ao"
    io_link = "OUT"
    # aoRecord.c rset: PREC as is for the three values; IVOV displays HOPR/LOPR but has its
    # type's control range; the others' control limits are the drive limits.
    no_egu = frozenset({"ASLO", "AOFF"})
    raw_prec = frozenset({"VAL", "OVAL", "PVAL"})
    ctrl_fields = AnalogMeta.ctrl_fields | {"OVAL", "PVAL"}
    disp_fields = ctrl_fields | {"IVOV"}

    def ctrl_limits(self) -> tuple[float, float]:
        return self.f["DRVH"], self.f["DRVL"]

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            value = f["VAL"]
            ok = True
            dol = self.links.get("DOL")
            if f["OMSL"] == _OMSL_CLOSED_LOOP and dol is not None and not dol.is_constant:
                v = as_float(dol.get_value(self))
                if v is None:
                    self.set_sevr(Stat.LINK, Sevr.INVALID)
                    ok = False
                else:
                    value = v + f["VAL"] if f["OIF"] == 1 else v   # OIF Incremental
            if ok:
                self.convert(value)
            f["UDF"] = int(math.isnan(f["VAL"]))
        self.check_analog_alarms(f["VAL"])
        if f["NSEV"] < Sevr.INVALID or f["IVOA"] == _IVOA_CONTINUE:
            self.write_value()
        elif f["IVOA"] == _IVOA_SET_IVOV:
            if not f["PACT"]:
                f["VAL"] = f["IVOV"]
                self.convert(f["IVOV"])
            self.write_value()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0

    def write_value(self) -> None:
        if self.dset is not None:
            self.dset.write()

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
