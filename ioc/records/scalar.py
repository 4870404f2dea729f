"""longin, longout, int64in, int64out, stringin, stringout record support."""
from __future__ import annotations

from .constants import DBE_LOG, DBE_VALUE
from .io import READ_FAILED, InputRecord, OutputRecord
from .links import as_float
from .meta import AnalogMeta

_POST_ALWAYS = 1            # stringinPOST / stringoutPOST: 0 On Change, 1 Always
# longoutOOPT
_EVERY, _ON_CHANGE, _WHEN_ZERO, _WHEN_NONZERO, _TO_ZERO, _TO_NONZERO = range(6)


class LonginRecord(AnalogMeta, InputRecord):
    rtype = "longin"
    # longinRecord.c rset: EGU on every DBF_LONG field, no get_precision.
    egu_type = "DBF_LONG"
    has_precision = False
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | {"SVAL"}

    def after_read(self, status: int) -> None:
        if status != READ_FAILED:
            self.f["UDF"] = 0           # longinRecord: a successful read defines VAL

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])


class _Int64:
    """What int64in and int64out share (int64inRecord.c / int64outRecord.c).

    Their values stay exact Python ints: alarms compare and the MDEL/ADEL deadbands subtract
    in 64-bit integers (a negative deadband posts every time), not through doubles. The rset
    has EGU on DBF_INT64 fields only, no get_precision, and get_alarm_double gives HIHI..LOLO
    whatever their severities (longin gives NaN for an unused limit).
    """

    egu_type = "DBF_INT64"
    has_precision = False
    f: dict

    def rset_alarm(self, fname: str) -> tuple[float, float, float, float] | None:
        if fname != "VAL":
            return None
        f = self.f
        return float(f["HIHI"]), float(f["HIGH"]), float(f["LOW"]), float(f["LOLO"])

    def init_last_values(self) -> None:
        f = self.f
        f["MLST"] = f["ALST"] = f["LALM"] = f["VAL"]

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])

    def monitor(self) -> None:
        f = self.f
        mask = self.reset_alarms()
        val = f["VAL"]
        # DELTA() of base: the unsigned difference, compared with the deadband as unsigned.
        if f["MDEL"] < 0 or abs(f["MLST"] - val) > f["MDEL"]:
            mask |= DBE_VALUE
            f["MLST"] = val
        if f["ADEL"] < 0 or abs(f["ALST"] - val) > f["ADEL"]:
            mask |= DBE_LOG
            f["ALST"] = val
        if mask:
            self.post("VAL", mask)


class Int64inRecord(_Int64, AnalogMeta, InputRecord):
    rtype = "int64in"
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | {"SVAL"}

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.init_last_values()

    def after_read(self, status: int) -> None:
        if status != READ_FAILED:
            self.f["UDF"] = 0           # int64inRecord: a successful read (status 0) defines VAL


class Int64outRecord(_Int64, AnalogMeta, OutputRecord):
    rtype = "int64out"

    def ctrl_limits(self) -> tuple[float, float]:
        f = self.f
        return (f["DRVH"], f["DRVL"]) if f["DRVH"] > f["DRVL"] else (f["HOPR"], f["LOPR"])

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.init_last_values()

    def fetch_and_convert(self) -> None:
        """Closed-loop DOL (read as an int64), then the drive limits; a failed DOL read
        leaves VAL alone."""
        f = self.f
        v = self.fetch_dol()
        if self.dol_failed:
            return
        if v is not None:
            if isinstance(v, list):
                v = v[0] if v else 0
            try:
                v = self.coerce_field("VAL", v)
            except ValueError:
                return
            f["UDF"] = 0
        else:
            v = f["VAL"]
        if f["DRVH"] > f["DRVL"]:
            v = max(f["DRVL"], min(f["DRVH"], v))
        f["VAL"] = v


class LongoutRecord(AnalogMeta, OutputRecord):
    rtype = "longout"
    # longoutRecord.c rset: EGU on every DBF_LONG field, no get_precision; the control
    # limits are the drive limits once they are set (DRVH > DRVL), else HOPR/LOPR.
    egu_type = "DBF_LONG"
    has_precision = False

    def ctrl_limits(self) -> tuple[float, float]:
        f = self.f
        return (f["DRVH"], f["DRVL"]) if f["DRVH"] > f["DRVL"] else (f["HOPR"], f["LOPR"])

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            f = self.f
            f["MLST"] = f["ALST"] = f["LALM"] = f["PVAL"] = f["VAL"]
            self._first_write = True      # OOPT On Change writes the first time anyway

    def special(self, fname: str, after: bool) -> None:
        # OOCH Yes: a new OUT link is written the next time, whatever OOPT says.
        if fname == "OUT" and after and self.f["OOCH"]:
            self._first_write = True
        super().special(fname, after)

    def fetch_and_convert(self) -> None:
        f = self.f
        v = as_float(self.fetch_dol())
        if v is not None:
            f["VAL"] = int(v)
            f["UDF"] = 0
        if not self.dol_failed and f["DRVH"] > f["DRVL"]:
            f["VAL"] = max(f["DRVL"], min(f["DRVH"], f["VAL"]))

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])

    def write_device(self) -> None:
        """conditional_write: OOPT decides whether device support is called."""
        f = self.f
        oopt, val, pval = f["OOPT"], f["VAL"], f["PVAL"]
        first = getattr(self, "_first_write", True)
        write = (oopt == _EVERY
                 or (oopt == _ON_CHANGE and (first or val != pval))
                 or (oopt == _WHEN_ZERO and val == 0)
                 or (oopt == _WHEN_NONZERO and val != 0)
                 or (oopt == _TO_ZERO and val == 0 and pval != 0)
                 or (oopt == _TO_NONZERO and val != 0 and pval == 0))
        if write:
            super().write_device()
        f["PVAL"] = val
        self._first_write = False


class _StringRecord:
    """Monitors of stringin/stringout: VAL against OVAL, MPST/APST Always."""

    f: dict

    def monitor(self) -> None:
        f = self.f
        mask = self.reset_alarms()
        changed = f["OVAL"] != f["VAL"]
        if changed or f["MPST"] == _POST_ALWAYS:
            mask |= DBE_VALUE
        if changed or f["APST"] == _POST_ALWAYS:
            mask |= DBE_LOG
        f["OVAL"] = f["VAL"]
        if mask:
            self.post("VAL", mask)


class StringinRecord(_StringRecord, InputRecord):
    rtype = "stringin"

    def check_alarms(self) -> None:
        """stringinRecord.c has no alarm checks (no UDF alarm): a processed stringin whose
        INP gave nothing is NO_ALARM with UDF still set."""


class StringoutRecord(_StringRecord, OutputRecord):
    rtype = "stringout"

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.f["OVAL"] = self.f["VAL"]
