"""bi, bo, mbbi, mbbo record support (biRecord.c, boRecord.c, mbbiRecord.c, mbboRecord.c)."""
from __future__ import annotations

from .base import Record
from .constants import CONVERT, DBE_LOG, DBE_VALUE, Sevr, Stat
from .links import as_float

_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2

STATE_PREFIXES = ("ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV", "EI", "NI", "TE", "EL", "TV",
                  "TT", "FT", "FF")
UNKNOWN_STATE = 65535
# boHIGHprecision, boHIGHlimit (iocsh variables of boRecord.c, at their defaults)
HIGH_PRECISION, HIGH_LIMIT = 2, 100000.0


class _Discrete(Record):
    """Shared monitor for the discrete records: post VAL when it differs from MLST."""

    def enum_string(self, fname: str, index: int) -> str:
        """bi/bo get_enum_str: ZNAM for 0, ONAM for 1, "Illegal_Value" otherwise (and for a
        DBF_ENUM field other than VAL)."""
        if fname == "VAL":
            if index == 0:
                return self.f["ZNAM"]
            if index == 1:
                return self.f["ONAM"]
            return "Illegal_Value"
        if self.spec.fields[fname].dbf == "DBF_ENUM":
            return "Illegal_Value"
        return super().enum_string(fname, index)

    def monitor(self) -> None:
        f = self.f
        mask = self.reset_alarms()
        if f["MLST"] != f["VAL"]:
            mask |= DBE_VALUE | DBE_LOG
            f["MLST"] = f["VAL"]
        if mask:
            self.post("VAL", mask)
        if f["ORAW"] != f["RVAL"]:
            self.post("RVAL", mask | DBE_VALUE | DBE_LOG)
            f["ORAW"] = f["RVAL"]

    def state_alarm(self, sevr: int) -> None:
        """STATE alarm at ``sevr``, then change-of-state (COSV) as bi/mbbi checkAlarms."""
        f = self.f
        self.set_sevr(Stat.STATE, sevr)
        if f["VAL"] == f["LALM"]:
            return
        self.set_sevr(Stat.COS, f["COSV"])
        f["LALM"] = f["VAL"]

    def write_output(self) -> None:
        """writeValue with the invalid-output action (IVOA) of the output records."""
        f = self.f
        if self.dset is None:
            return
        if f["NSEV"] < Sevr.INVALID or f["IVOA"] == _IVOA_CONTINUE:
            self.dset.write()
        elif f["IVOA"] == _IVOA_SET_IVOV:
            if not f["PACT"]:
                f["VAL"] = f["IVOV"]
                self.convert()
            self.dset.write()


class BiRecord(_Discrete):
    rtype = "bi"
    io_link = "INP"

    def enum_strings(self) -> list[str]:
        return [self.f["ZNAM"], self.f["ONAM"]]

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = self.dset.read() if self.dset is not None else 2
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        if status == CONVERT:
            f["VAL"] = 0 if f["RVAL"] == 0 else 1
            f["UDF"] = 0
        if not self.check_udf() and f["VAL"] <= 1:
            self.state_alarm(f["OSV"] if f["VAL"] else f["ZSV"])
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0


class BoRecord(_Discrete):
    rtype = "bo"
    io_link = "OUT"

    def enum_strings(self) -> list[str]:
        return [self.f["ZNAM"], self.f["ONAM"]]

    # boRecord.c rset (no get_graphic_double, no get_alarm_double): only the momentary
    # time HIGH has units, precision and control limits of its own.
    def rset_units(self, fname: str) -> str | None:
        return "s" if fname == "HIGH" else ""

    def rset_precision(self, fname: str) -> int | None:
        return HIGH_PRECISION if fname == "HIGH" else self.recgbl_prec(fname, 0)

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        return (HIGH_LIMIT, 0.0) if fname == "HIGH" else self.type_range(fname)

    def convert(self) -> None:
        f = self.f
        if f["MASK"]:
            f["RVAL"] = 0 if f["VAL"] == 0 else f["MASK"]
        else:
            f["RVAL"] = f["VAL"]

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
                    f["VAL"] = 0 if v == 0 else 1
                    f["UDF"] = 0
            self.convert()
        if not self.check_udf() and f["VAL"] <= 1:
            self.state_alarm(f["OSV"] if f["VAL"] else f["ZSV"])
        self.write_output()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        if f["VAL"] == 1 and f["HIGH"] > 0:
            # Momentary output: return to 0 after HIGH seconds (boRecord's callback).
            self.db.call_later(f["HIGH"], self._high_expired)
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0

    def _high_expired(self) -> None:
        self.f["VAL"] = 0
        self.db_process()


class _Multibit(_Discrete):
    #: get_enum_str's answer for a DBF_ENUM field other than VAL (mbbi and mbbo differ)
    other_field_text = "Illegal_Value"

    def enum_string(self, fname: str, index: int) -> str:
        """rset get_enum_str: VAL's state string (ZRST..FFST, empty ones included), or
        "Illegal Value" beyond 15."""
        if fname != "VAL":
            return self.other_field_text if self.spec.fields[fname].dbf == "DBF_ENUM" \
                else super().enum_string(fname, index)
        if index > 15:
            return "Illegal Value"
        return self.f[STATE_PREFIXES[index] + "ST"]

    def enum_strings(self) -> list[str]:
        strs = [self.f[p + "ST"] for p in STATE_PREFIXES]
        n = 0
        for i, s in enumerate(strs):
            if s:
                n = i + 1
        return strs[:n]

    def states_defined(self) -> bool:
        """SDEF: any state value or string set (init_common)."""
        f = self.f
        return any(f[p + "VL"] != 0 or f[p + "ST"] for p in STATE_PREFIXES)

    def multibit_alarms(self) -> None:
        f = self.f
        if self.check_udf():
            return
        val = f["VAL"]
        sevr = f["UNSV"] if val > 15 else f[STATE_PREFIXES[val] + "SV"]
        self.state_alarm(sevr)


class MbbiRecord(_Multibit):
    rtype = "mbbi"
    io_link = "INP"

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = self.dset.read() if self.dset is not None else 2
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        if status == CONVERT:
            rval = f["RVAL"] & 0xFFFFFFFF
            if f["SHFT"] > 0:
                rval >>= f["SHFT"]
            f["UDF"] = 0
            if self.states_defined():
                f["VAL"] = UNKNOWN_STATE
                for i, p in enumerate(STATE_PREFIXES):
                    if f[p + "VL"] == rval:
                        f["VAL"] = i
                        break
            else:
                f["VAL"] = rval & 0xFFFF
        self.multibit_alarms()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0


class MbboRecord(_Multibit):
    other_field_text = "Bad Field"
    rtype = "mbbo"
    io_link = "OUT"

    def convert(self) -> None:
        f = self.f
        val = f["VAL"]
        if self.states_defined():
            if val > 15:
                self.set_sevr(Stat.SOFT, Sevr.INVALID)
                return
            rval = f[STATE_PREFIXES[val] + "VL"]
        else:
            rval = val
        if f["SHFT"] > 0:
            rval <<= f["SHFT"]
        f["RVAL"] = rval & 0xFFFFFFFF

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            dol = self.links.get("DOL")
            skip = False
            if f["OMSL"] == _OMSL_CLOSED_LOOP and dol is not None and not dol.is_constant:
                v = as_float(dol.get_value(self))
                if v is None:
                    self.set_sevr(Stat.LINK, Sevr.INVALID)
                else:
                    f["VAL"] = int(v)
                    f["UDF"] = 0
            elif f["UDF"]:
                self.set_sevr(Stat.UDF, f["UDFS"])
                skip = True
            if not skip:
                f["UDF"] = 0
                self.convert()
        self.multibit_alarms()
        self.write_output()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0
