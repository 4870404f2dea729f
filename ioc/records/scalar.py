"""longin, longout, stringin, stringout record support."""
from __future__ import annotations

from .base import Record
from .meta import AnalogMeta
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .links import as_float

_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2
_POST_ALWAYS = 1            # stringinPOST / stringoutPOST: 0 On Change, 1 Always


def _write_with_ivoa(rec: Record) -> None:
    f = rec.f
    if rec.dset is None:
        return
    if f["NSEV"] < Sevr.INVALID or f["IVOA"] == _IVOA_CONTINUE:
        rec.dset.write()
    elif f["IVOA"] == _IVOA_SET_IVOV:
        if not f["PACT"]:
            f["VAL"] = f["IVOV"]
        rec.dset.write()


class LonginRecord(AnalogMeta, Record):
    rtype = "longin"
    io_link = "INP"
    # longinRecord.c rset: EGU on every DBF_LONG field, no get_precision.
    egu_type = "DBF_LONG"
    has_precision = False
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | {"SVAL"}

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if self.dset is not None:
            self.dset.read()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.check_analog_alarms(f["VAL"])
        self.monitor_value()
        self.fwd_link()
        f["PACT"] = 0


class LongoutRecord(AnalogMeta, Record):
    rtype = "longout"
    io_link = "OUT"
    # longoutRecord.c rset: EGU on every DBF_LONG field, no get_precision; the control
    # limits are the drive limits once they are set (DRVH > DRVL), else HOPR/LOPR.
    egu_type = "DBF_LONG"
    has_precision = False

    def ctrl_limits(self) -> tuple[float, float]:
        f = self.f
        return (f["DRVH"], f["DRVL"]) if f["DRVH"] > f["DRVL"] else (f["HOPR"], f["LOPR"])

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            dol = self.links.get("DOL")
            if f["OMSL"] == _OMSL_CLOSED_LOOP and dol is not None and not dol.is_constant:
                v = as_float(dol.get_value(self))
                if v is None:
                    self.set_sevr(Stat.LINK, Sevr.INVALID)
                else:
                    f["VAL"] = int(v)
                    f["UDF"] = 0
            if f["DRVH"] > f["DRVL"]:
                f["VAL"] = max(f["DRVL"], min(f["DRVH"], f["VAL"]))
        self.check_analog_alarms(f["VAL"])
        _write_with_ivoa(self)
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.monitor_value()
        self.fwd_link()
        f["PACT"] = 0


class _StringRecord(Record):
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


class StringinRecord(_StringRecord):
    rtype = "stringin"
    io_link = "INP"

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if self.dset is not None:
            self.dset.read()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.check_udf()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0


class StringoutRecord(_StringRecord):
    rtype = "stringout"
    io_link = "OUT"

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            dol = self.links.get("DOL")
            if f["OMSL"] == _OMSL_CLOSED_LOOP and dol is not None and not dol.is_constant:
                v = dol.get_value(self)
                if v is None:
                    self.set_sevr(Stat.LINK, Sevr.INVALID)
                else:
                    f["VAL"] = self.coerce_field("VAL", v)
                    f["UDF"] = 0
        self.check_udf()
        _write_with_ivoa(self)
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0
