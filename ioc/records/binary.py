"""bi, bo, mbbi, mbbo, mbbiDirect, mbboDirect record support (biRecord.c, boRecord.c,
mbbiRecord.c, mbboRecord.c, mbbiDirectRecord.c, mbboDirectRecord.c)."""
from __future__ import annotations

from .base import PutError, Record
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .io import InputRecord, OutputRecord
from .links import as_float

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


    def set_ivov(self) -> None:
        """Outputs (bo, mbbo): IVOA "Set output to IVOV" converts IVOV as a new value."""
        self.f["VAL"] = self.f["IVOV"]
        self.convert()

    def init_output(self) -> None:
        """bo/mbbo init_record, after the constant DOL: RVAL from VAL, the last values."""
        f = self.f
        self.convert()
        f["MLST"] = f["LALM"] = f["VAL"]
        f["ORAW"], f["ORBV"] = f["RVAL"], f["RBV"]

    def binary_alarms(self) -> None:
        f = self.f
        if not self.check_udf() and f["VAL"] <= 1:
            self.state_alarm(f["OSV"] if f["VAL"] else f["ZSV"])


class BiRecord(_Discrete, InputRecord):
    rtype = "bi"

    def enum_strings(self) -> list[str]:
        return [self.f["ZNAM"], self.f["ONAM"]]

    def convert(self) -> None:
        f = self.f
        f["VAL"] = 0 if f["RVAL"] == 0 else 1
        f["UDF"] = 0

    def check_alarms(self) -> None:
        self.binary_alarms()


class BoRecord(_Discrete, OutputRecord):
    rtype = "bo"

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.f["VAL"] = int(bool(self.f["VAL"]))
            self.init_output()

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

    def fetch_and_convert(self) -> None:
        f = self.f
        v = as_float(self.fetch_dol())
        if v is not None:
            f["VAL"] = 0 if v == 0 else 1
            f["UDF"] = 0
        self.convert()

    def check_alarms(self) -> None:
        self.binary_alarms()

    def after_write(self) -> None:
        f = self.f
        if f["VAL"] == 1 and f["HIGH"] > 0:
            # Momentary output: return to 0 after HIGH seconds (boRecord's callback).
            self.db.call_later(f["HIGH"], self._high_expired)

    def _high_expired(self) -> None:
        self.f["VAL"] = 0
        self.db_process()


def mask_from_nobt(f: dict) -> None:
    """mbbi/mbbo/mbbi-/mbboDirect init_record: MASK from NOBT when MASK is not given. Runs in
    pass 0, before device support's init_record, which shifts MASK (Raw Soft Channel)."""
    if f["MASK"] == 0 and f["NOBT"] <= 32:
        f["MASK"] = ((1 << f["NOBT"]) - 1) & 0xFFFFFFFF


class _Multibit(_Discrete):
    #: get_enum_str's answer for a DBF_ENUM field other than VAL (mbbi and mbbo differ)
    other_field_text = "Illegal_Value"

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            mask_from_nobt(self.f)
        super().init_record(pass_)

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
            if "AFVL" in f:
                f["AFVL"] = 0.0
            return
        val = f["VAL"]
        sevr = f["UNSV"] if val > 15 else f[STATE_PREFIXES[val] + "SV"]
        if f.get("AFTC", 0) > 0:            # mbbi: the state severity is filtered
            sevr = self.alarm_filter_level(sevr)
        elif "AFVL" in f:
            f["AFVL"] = 0.0
        self.state_alarm(sevr)


class MbbiRecord(_Multibit, InputRecord):
    rtype = "mbbi"

    def convert(self) -> None:
        f = self.f
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

    def check_alarms(self) -> None:
        self.multibit_alarms()


class MbboRecord(_Multibit, OutputRecord):
    other_field_text = "Bad Field"
    rtype = "mbbo"

    def field_type(self, fname: str) -> str:
        """mbboRecord.c cvt_dbaddr: without states (SDEF false) VAL is served as DBF_USHORT,
        so a client reads the number (mbbi has no such rule: its VAL stays an enum)."""
        if fname == "VAL" and not self.states_defined():
            return "DBF_USHORT"
        return super().field_type(fname)

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            self.init_output()

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

    def fetch_and_convert(self) -> None:
        f = self.f
        dol = self.links.get("DOL")
        closed = f["OMSL"] == 1 and dol is not None and not dol.is_constant
        v = as_float(self.fetch_dol())
        if v is not None:
            f["VAL"] = int(v)
            f["UDF"] = 0
        elif not closed and f["UDF"]:
            self.set_sevr(Stat.UDF, f["UDFS"])
            return
        f["UDF"] = 0
        self.convert()

    def check_alarms(self) -> None:
        self.multibit_alarms()


NUM_BITS = 32
BIT_FIELDS = tuple(f"B{i:X}" for i in range(NUM_BITS))
_BIT_INDEX = {name: i for i, name in enumerate(BIT_FIELDS)}


class _Direct(Record):
    """What mbbiDirect and mbboDirect share: VAL's 32 bits mirrored in B0..B1F, MASK from
    NOBT when MASK is not given (before device support's init), RVAL <-> VAL by SHFT.
    Neither rset has units, limits or alarm limits; VAL has no alarms but UDF."""

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            mask_from_nobt(self.f)
        super().init_record(pass_)

    def bits_from_val(self) -> None:
        val = self.f["VAL"] & 0xFFFFFFFF
        for i, name in enumerate(BIT_FIELDS):
            self.f[name] = (val >> i) & 1

    def val_from_rval(self) -> None:
        f = self.f
        rval = f["RVAL"] & 0xFFFFFFFF
        if f["SHFT"] > 0:
            rval >>= f["SHFT"]
        f["VAL"] = self.coerce_field("VAL", rval)
        f["UDF"] = 0


class MbbiDirectRecord(_Direct, InputRecord):
    rtype = "mbbiDirect"

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ == 1:
            f = self.f
            self.bits_from_val()
            f["MLST"], f["ORAW"] = f["VAL"], f["RVAL"]

    def convert(self) -> None:
        self.val_from_rval()

    def check_alarms(self) -> None:
        if self.f["UDF"]:
            self.set_sevr(Stat.UDF, Sevr.INVALID)     # INVALID, not UDFS, in mbbiDirectRecord.c

    def monitor(self) -> None:
        """B0..B1F from VAL, each posted when it changed (or with the alarm events), then VAL
        (changed, or alarm events) and RVAL (changed)."""
        f = self.f
        events = self.reset_alarms()
        vl_events = events | DBE_VALUE | DBE_LOG
        val = f["VAL"] & 0xFFFFFFFF
        for i, name in enumerate(BIT_FIELDS):
            bit = (val >> i) & 1
            if f[name] != bit:
                f[name] = bit
                self.post(name, vl_events)
            elif events:
                self.post(name, events)
        if f["MLST"] != f["VAL"]:
            events = vl_events
            f["MLST"] = f["VAL"]
        if events:
            self.post("VAL", events)
        if f["ORAW"] != f["RVAL"]:
            self.post("RVAL", vl_events)
            f["ORAW"] = f["RVAL"]


class MbboDirectRecord(_Direct, OutputRecord):
    """mbboDirect: a put to VAL or to a bit B0..B1F changes the other (the bits are refused
    while OMSL is closed_loop); OBIT tracks the bits already posted."""

    rtype = "mbboDirect"
    has_dol = False         # DOL is loaded as DBF_ULONG below, before the bits are looked at

    def init_record(self, pass_: int) -> None:
        super().init_record(pass_)
        if pass_ != 1:
            return
        f = self.f
        self.init_constant_dol()
        if not f["UDF"]:
            self.bits_from_val()
        else:
            val = sum(1 << i for i, name in enumerate(BIT_FIELDS) if f[name])
            if val:             # the db set some bits instead of VAL
                f["VAL"] = self.coerce_field("VAL", val)
                f["UDF"] = 0
        f["MLST"], f["ORAW"], f["ORBV"] = f["VAL"], f["RVAL"], f["RBV"]

    def special(self, fname: str, after: bool) -> None:
        i = _BIT_INDEX.get(fname)
        if i is not None:
            f = self.f
            if not after:
                if f["OMSL"] == 1:
                    raise PutError(f"{self.name}.{fname}: bits are not writable in closed_loop")
            else:
                bit = 1 << i
                if f[fname]:
                    val, obit = (f["VAL"] & 0xFFFFFFFF) | bit, (f["OBIT"] & 0xFFFFFFFF) | bit
                else:
                    val, obit = (f["VAL"] & 0xFFFFFFFF) & ~bit, (f["OBIT"] & 0xFFFFFFFF) & ~bit
                f["VAL"] = self.coerce_field("VAL", val)
                f["OBIT"] = self.coerce_field("OBIT", obit)
                f["UDF"] = 0
                self.convert()
        super().special(fname, after)

    def convert(self) -> None:
        f = self.f
        rval = f["VAL"] & 0xFFFFFFFF
        if f["SHFT"] > 0:
            rval <<= f["SHFT"]
        f["RVAL"] = rval & 0xFFFFFFFF

    def fetch_and_convert(self) -> None:
        f = self.f
        dol = self.links.get("DOL")
        if f["OMSL"] == 1 and dol is not None and not dol.is_constant:
            v = as_float(self.fetch_dol())
            if v is None:
                return          # LINK/INVALID set by fetch_dol; VAL and bits unchanged
            f["VAL"] = self.coerce_field("VAL", int(v))
        elif f["UDF"]:
            self.set_sevr(Stat.UDF, f["UDFS"], "UDFS")
            return
        f["UDF"] = 0
        self.bits_from_val()
        self.convert()

    def check_alarms(self) -> None:
        """No alarms of its own (UDF is checked with DOL above)."""

    def set_ivov(self) -> None:
        self.f["VAL"] = self.f["IVOV"]
        self.convert()

    def after_write(self) -> None:
        self.bits_from_val()        # device support may have changed VAL

    def monitor(self) -> None:
        """VAL (changed or alarm events); each bit that changed since OBIT, or every bit on an
        alarm change; RVAL and RBV when changed."""
        f = self.f
        events = self.reset_alarms()
        if f["MLST"] != f["VAL"]:
            events |= DBE_VALUE | DBE_LOG
            f["MLST"] = f["VAL"]
        if events:
            self.post("VAL", events)
        changed = (f["OBIT"] ^ f["VAL"]) & 0xFFFFFFFF
        alarm_events = events & ~(DBE_VALUE | DBE_LOG)
        for i, name in enumerate(BIT_FIELDS):
            if alarm_events or changed & (1 << i):
                self.post(name, events | DBE_VALUE | DBE_LOG)
        f["OBIT"] = f["VAL"]
        events |= DBE_VALUE | DBE_LOG
        if f["ORAW"] != f["RVAL"]:
            self.post("RVAL", events)
            f["ORAW"] = f["RVAL"]
        if f["ORBV"] != f["RBV"]:
            self.post("RBV", events)
            f["ORBV"] = f["RBV"]
