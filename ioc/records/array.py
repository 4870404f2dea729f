"""Array record support: aai, aao and subArray (aaiRecord.c, aaoRecord.c, subArrayRecord.c).

Every type here keeps its value in VAL, an array of FTVL elements with NORD of them in use, as
the waveform record does (ioc/records/waveform.py, whose FTVL table is shared). What is common
lives in ``ArrayMixin``:

* VAL's DBF type follows FTVL; an FTVL past ENUM becomes UCHAR at iocInit (as base does);
* the buffer holds ``capacity()`` elements (NELM; subArray: MALM);
* rset metadata: EGU on VAL (not for STRING/ENUM FTVL) and on HOPR/LOPR, PREC as is on VAL,
  HOPR/LOPR as VAL's display and control limits, NORD 0..capacity, the type's range otherwise;
* ``store()`` copies elements into VAL, sets NORD and posts NORD when it changed;
* ``post_array()``: the MPST/APST "Always"/"On Change" monitor of aai/aao (a change is a
  change of the used elements' bytes; HASH is posted with it).

Facts not carried over: HASH holds a hash of our own (not base's epicsMemHash value).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import PutError, Record
from .constants import CONVERT, DBE_LOG, DBE_VALUE, Sevr, Stat
from .fields import FieldValueError, parse_float
from .io import READ_FAILED, SIM_BAD, SIM_WAIT, InputRecord, OutputRecord
from .links import constant_value
from .waveform import FTVL_TYPES, ArrayUnits

_FTVL_UCHAR, _FTVL_ENUM = 2, 11
_POST_ALWAYS, _POST_ON_CHANGE = 0, 1  # menu aaiPOST / aaoPOST order
_STRING_SIZE = 40


def to_ftvl(value: Any, ftvl: int, count: int) -> Any:
    """``value`` (a scalar, a str, a list or numpy array) as at most ``count`` elements of menuFtype
    ``ftvl``: a list of str for STRING, else a numpy array. A str put to a CHAR/UCHAR array is
    its bytes and a NUL (dbConvert's string to char array); a non-numeric str elsewhere raises
    PutError."""
    dtype = FTVL_TYPES[ftvl][1]
    if dtype is None:
        items = [value] if isinstance(value, (str, bytes)) or np.ndim(value) == 0 else list(value)
        out = []
        for v in items[:count]:
            s = v.decode("latin-1") if isinstance(v, bytes) else str(v)
            out.append(s[:_STRING_SIZE - 1])
        return out
    if isinstance(value, (str, bytes)):
        if dtype in (np.int8, np.uint8):
            raw = value.encode("latin-1") if isinstance(value, str) else value
            raw = raw[: max(count - 1, 0)] + b"\0"
            return np.frombuffer(raw, dtype=np.uint8).astype(dtype)[:count]
        try:
            value = [parse_float(value)]
        except FieldValueError as exc:
            raise PutError(str(exc)) from None
    arr = np.atleast_1d(np.asarray(value))[:count]
    try:
        if arr.dtype.kind in "US":
            arr = np.array([parse_float(str(x)) for x in arr])
        return arr.astype(dtype)
    except (TypeError, ValueError, FieldValueError) as exc:
        raise PutError(f"cannot convert to {FTVL_TYPES[ftvl][0]}: {exc}") from None


class ArrayMixin(ArrayUnits, Record):
    """The array value (VAL of FTVL elements, NORD in use) shared by aai, aao and subArray."""

    #: the field holding the buffer's size
    capacity_field = "NELM"

    def __init__(self, name, db):
        super().__init__(name, db)
        self.f["VAL"] = np.zeros(1, dtype=np.uint8)
        self._hash: int | None = None

    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        return frozenset({"VAL"})

    def capacity(self) -> int:
        return self.f[self.capacity_field]

    def ftvl(self) -> int:
        """VAL's menuFtype index."""
        return self.f["FTVL"]

    def field_type(self, fname: str) -> str:
        if fname == "VAL":
            return FTVL_TYPES[self.ftvl()][0]
        return super().field_type(fname)

    def init_buffer(self) -> None:
        """Pass 0: FTVL past ENUM -> UCHAR, and a zeroed buffer of ``capacity()`` elements."""
        f = self.f
        if "FTVL" in f and f["FTVL"] > _FTVL_ENUM:
            f["FTVL"] = _FTVL_UCHAR
        n = self.capacity()
        dtype = FTVL_TYPES[self.ftvl()][1]
        f["VAL"] = [""] * n if dtype is None else np.zeros(n, dtype=dtype)

    def array(self):
        """The used part of VAL (NORD elements): what CA and DB links read."""
        return self.f["VAL"][: self.f["NORD"]]

    def to_val(self, value: Any, count: int | None = None) -> Any:
        """``value`` as FTVL elements, at most ``count`` (default: the capacity)."""
        return to_ftvl(value, self.ftvl(), self.capacity() if count is None else count)

    def coerce_field(self, fname: str, value, strict: bool = False):
        if fname != "VAL":
            return super().coerce_field(fname, value, strict)
        return self.to_val(value)

    def put_field(self, fname: str, value, *, from_link: bool = False) -> None:
        if fname != "VAL":
            return super().put_field(fname, value, from_link=from_link)
        if self.f["DISP"] and not from_link:
            raise PutError(f"{self.name}: puts are disabled (DISP=1)")
        self.store(self.to_val(value))
        self.f["UDF"] = 0
        self.db.put_count += 1

    def store(self, new, *, post_nord: bool = True) -> None:
        """Copy ``new`` to the start of VAL and make NORD its length (posted if it changed
        and ``post_nord``: base's device supports post it, aao's DOL fetch does not)."""
        f = self.f
        n = len(new)
        if isinstance(f["VAL"], list):
            f["VAL"][:n] = list(new)
        else:
            f["VAL"][:n] = new
        if "NORD" in f and f["NORD"] != n:
            f["NORD"] = n
            if post_nord:
                self.post("NORD", DBE_VALUE | DBE_LOG)

    def load_constant(self, link_field: str, count: int | None = None) -> bool:
        """dbLoadLinkArray: a constant link's value into VAL (NORD set, UDF cleared); False if
        the link is not a constant or is empty."""
        v = constant_value(self.links.get(link_field))
        if v is None:
            return False
        try:
            self.store(self.to_val(v, count), post_nord=False)
        except PutError:
            return False
        self.f["UDF"] = 0
        return True

    # rset metadata
    def array_limits(self, fname: str, control: bool) -> tuple[float, float] | None:
        """(upper, lower) display/control limits of the type's own fields; None: the default."""
        f = self.f
        if fname == "VAL":
            return f["HOPR"], f["LOPR"]
        if fname == "NORD":
            return float(self.capacity()), 0.0
        return None

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        lim = self.array_limits(fname, False)
        return lim if lim is not None else self.type_range(fname)

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        lim = self.array_limits(fname, True)
        return lim if lim is not None else self.type_range(fname)

    def post_array(self) -> None:
        """aai/aao monitor(): alarms, then VAL by MPST/APST (HASH posted on a change)."""
        f = self.f
        mask = self.reset_alarms()
        if f["MPST"] == _POST_ALWAYS:
            mask |= DBE_VALUE
        if f["APST"] == _POST_ALWAYS:
            mask |= DBE_LOG
        if _POST_ON_CHANGE in (f["MPST"], f["APST"]):
            arr = self.array()
            h = hash(tuple(arr)) if isinstance(arr, list) else hash(arr.tobytes())
            h &= 0xFFFFFFFF
            if h != self._hash:
                if f["MPST"] == _POST_ON_CHANGE:
                    mask |= DBE_VALUE
                if f["APST"] == _POST_ON_CHANGE:
                    mask |= DBE_LOG
                self._hash = h
                f["HASH"] = h
                self.post("HASH", DBE_VALUE)
        if mask:
            self.post("VAL", mask)


class AaiRecord(ArrayMixin, InputRecord):
    """aai: device support (or SIOL in simulation) reads up to NELM elements into VAL.

    Processing clears UDF whatever the read did, and raises no UDF alarm."""

    rtype = "aai"
    sim_value_field = "VAL"

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            f = self.f
            f["NELM"] = max(1, f["NELM"])
            self.init_buffer()
            f["NORD"] = int(f["NELM"] == 1)
            return
        super().init_record(pass_)

    def sim_store(self, value: Any) -> bool:
        try:
            self.store(self.to_val(value))
        except PutError:
            return False
        return True

    def after_read(self, status: int) -> None:
        self.f["UDF"] = 0

    def check_alarms(self) -> None:
        """aai has no alarm checks of its own."""

    def monitor(self) -> None:
        self.post_array()


class AaoRecord(ArrayMixin, OutputRecord):
    """aao: VAL (from DOL in closed loop) written to OUT (SIOL in simulation), NORD elements.

    No IVOA and no alarm checks; a failed DOL read ends processing before the write."""

    rtype = "aao"
    io_link = "OUT"
    has_dol = True

    def init_record(self, pass_: int) -> None:
        f = self.f
        if pass_ == 0:
            f["NELM"] = max(1, f["NELM"])
            self.init_buffer()
            f["NORD"] = int(f["NELM"] == 1)
            return
        self.init_simulation()
        if f["OMSL"] == 1:
            self.load_constant("DOL")

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            f["UDF"] = 0
            if not self.fetch_value():
                return
            self.get_timestamp_simm(None)
        self.write_value()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        if pact:
            self.get_timestamp_simm(None)
        self.post_array()
        self.fwd_link()
        f["PACT"] = 0

    def fetch_value(self) -> bool:
        """fetchValue: closed-loop DOL (not a constant) into VAL; False if the read failed."""
        v = self.fetch_dol()
        if v is None:
            return not self.dol_failed
        try:
            self.store(self.to_val(v), post_nord=False)
        except PutError:
            self.set_sevr(Stat.LINK, Sevr.INVALID)
            return False
        return True

    def write_value(self) -> None:
        """writeValue: device support writes (it picks SIOL itself in simulation)."""
        step = self.sim_step()
        if step in (SIM_WAIT, SIM_BAD):
            return
        self.write_device()


class SubArrayRecord(ArrayMixin):
    """subArray: reads up to MALM elements through INP and keeps NELM of them from INDX on.

    VAL's buffer is MALM long; NELM is clamped to MALM and INDX to MALM-1 before each read.
    A read that fails or leaves NORD 0 sets UDF and raises a UDF alarm (UDFS); while UDF is
    set, VAL reads as empty. VAL is posted at every processing."""

    rtype = "subArray"
    capacity_field = "MALM"

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            f = self.f
            f["MALM"] = max(1, f["MALM"])
            self.init_buffer()
            f["NORD"] = 0
            f["NELM"] = min(f["NELM"], f["MALM"])

    def array(self):
        return self.f["VAL"][:0] if self.f["UDF"] else super().array()

    def array_limits(self, fname: str, control: bool) -> tuple[float, float] | None:
        malm = float(self.f["MALM"])
        if fname == "INDX":
            return malm - 1, 0.0
        if fname == "NELM":
            return malm, 1.0 if control else 0.0
        if fname == "BUSY":
            return 1.0, 0.0
        return super().array_limits(fname, control)

    def subset(self, got: int) -> None:
        """Keep elements INDX.. of the ``got`` read, at most NELM, at VAL's start (NORD)."""
        f = self.f
        count = got - f["INDX"]
        if count > 0:
            count = min(count, f["NELM"])
            val = f["VAL"]
            val[:count] = val[f["INDX"]: f["INDX"] + count]
        else:
            count = 0
        f["NORD"] = count
        f["UDF"] = 0

    def request_count(self) -> int:
        """How many elements a read asks for: INDX+NELM, at most MALM."""
        return min(self.f["INDX"] + self.f["NELM"], self.f["MALM"])

    def process(self) -> None:
        f = self.f
        if self.dset is None:
            f["PACT"] = 1
            return
        pact = f["PACT"]
        if pact and f["BUSY"]:
            return
        f["NELM"] = min(f["NELM"], f["MALM"])
        f["INDX"] = min(f["INDX"], f["MALM"] - 1)
        ok = self.dset.read() != READ_FAILED
        if f["NORD"] <= 0:
            ok = False
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        self.get_timestamp()
        f["UDF"] = int(not ok)
        if not ok:
            self.set_sevr(Stat.UDF, f["UDFS"])
        self.post("VAL", self.reset_alarms() | DBE_VALUE | DBE_LOG)
        self.fwd_link()
        f["PACT"] = 0


_FTVL_ULONG = 6
_UINT_MAX = 0xFFFFFFFF
_CMD_READ_OR_CLEAR, _CMD_START, _CMD_STOP = 1, 2, 3
_SDEL_PRECISION = 2          # histogramSDELprecision
_HIST_PREC_FIELDS = frozenset({"ULIM", "LLIM", "SGNL", "SVAL", "WDTH"})


class HistogramRecord(ArrayMixin, InputRecord):
    """histogram: NELM ULONG buckets of width WDTH = (ULIM-LLIM)/NELM counting SGNL.

    Each processing reads SGNL (device support; SIOL into SVAL then SGNL in simulation) and,
    when counting (CSTA), adds one to SGNL's bucket; a put to SGNL counts too. LLIM >= ULIM is a
    SOFT/INVALID alarm. VAL is posted when more than MDEL counts were added (MCNT), and every
    SDEL seconds while counts are pending. CMD: Read/Clear clear the buckets, Start/Stop set
    CSTA; a put to ULIM/LLIM recomputes WDTH and clears. VAL is always NELM elements long."""

    rtype = "histogram"
    sim_value_field = "SVAL"

    def __init__(self, name, db):
        super().__init__(name, db)
        self._wdog_gen = 0
        self._wdog_pending = False

    def ftvl(self) -> int:
        return _FTVL_ULONG

    def array(self):
        return self.f["VAL"]

    def init_record(self, pass_: int) -> None:
        f = self.f
        if pass_ == 0:
            f["NELM"] = max(1, f["NELM"])
            self.init_buffer()
            # Not a histogram field: the CA server sizes an array's logs by f["NORD"], and a
            # histogram always serves all NELM buckets (its get_array_info keeps NELM).
            f["NORD"] = f["NELM"]
            f["WDTH"] = (f["ULIM"] - f["LLIM"]) / f["NELM"]
            return
        self.wdog_init()
        super().init_record(pass_)

    # the SDEL watchdog
    def wdog_init(self) -> None:
        """(Re)start the SDEL watchdog; before the IOC's loop runs it starts at the first
        processing instead."""
        self._wdog_gen += 1
        if self.f["SDEL"] <= 0:
            return
        if self.db.loop is None:
            self._wdog_pending = True
            return
        gen = self._wdog_gen
        self.db.call_later(self.f["SDEL"], lambda: self._wdog(gen))

    def _wdog(self, gen: int) -> None:
        if gen != self._wdog_gen:
            return                      # superseded by a later SDEL put
        f = self.f
        if f["MCNT"] > 0:
            self.get_timestamp()
            self.post("VAL", DBE_VALUE | DBE_LOG)
            f["MCNT"] = 0
        if f["SDEL"] > 0:
            self.db.call_later(f["SDEL"], lambda: self._wdog(gen))

    # counting
    def add_count(self) -> None:
        f = self.f
        if not f["CSTA"]:
            return
        if f["LLIM"] >= f["ULIM"] and f["NSEV"] < Sevr.INVALID:
            # base sets STAT/SEVR themselves here, not the pending NSTA/NSEV
            f["STAT"], f["SEVR"] = Stat.SOFT, Sevr.INVALID
            return
        sgnl = f["SGNL"]
        if sgnl < f["LLIM"] or sgnl >= f["ULIM"]:
            return
        temp = sgnl - f["LLIM"]
        nelm = f["NELM"]
        i = 1
        while i <= nelm and not temp <= i * f["WDTH"]:
            i += 1
        val = f["VAL"]
        idx = min(i, nelm) - 1
        val[idx] = 1 if val[idx] == _UINT_MAX else val[idx] + 1     # base wraps to 0, then adds
        f["MCNT"] = min(f["MCNT"] + 1, 32767)

    def clear(self) -> None:
        f = self.f
        f["VAL"][:] = 0
        f["MCNT"] = f["MDEL"] + 1
        f["UDF"] = 0

    def special(self, fname: str, after: bool) -> None:
        if fname == "SIMM" or not after:
            return super().special(fname, after)
        f = self.f
        if fname == "CMD":
            if f["CMD"] <= _CMD_READ_OR_CLEAR:
                self.clear()
            elif f["CMD"] == _CMD_START:
                f["CSTA"] = 1
            elif f["CMD"] == _CMD_STOP:
                f["CSTA"] = 0
            f["CMD"] = 0
        elif fname == "SGNL":
            self.add_count()
        elif fname == "SDEL":
            self.wdog_init()
        elif fname in ("ULIM", "LLIM"):
            f["WDTH"] = (f["ULIM"] - f["LLIM"]) / f["NELM"]
            self.clear()
        else:
            super().special(fname, after)

    # processing hooks (InputRecord): a read status of CONVERT (0) means "count SGNL"
    def process(self) -> None:
        if self._wdog_pending and self.db.loop is not None:
            self._wdog_pending = False
            self.wdog_init()
        super().process()

    def sim_apply(self, simm: int) -> int:
        self.f["SGNL"] = self.f["SVAL"]
        self.f["UDF"] = 0
        return CONVERT

    def after_read(self, status: int) -> None:
        if status == CONVERT:
            self.add_count()

    def check_alarms(self) -> None:
        """histogram has no UDF or limit alarms (add_count raises its own)."""

    def monitor(self) -> None:
        f = self.f
        mask = self.reset_alarms()
        if f["MCNT"] > f["MDEL"]:
            mask |= DBE_VALUE | DBE_LOG
            f["MCNT"] = 0
        if mask:
            self.post("VAL", mask)

    # rset metadata
    def rset_units(self, fname: str) -> str | None:
        return "s" if fname == "SDEL" else ""

    def rset_precision(self, fname: str) -> int | None:
        if fname in _HIST_PREC_FIELDS:
            return self.f["PREC"]
        if fname == "SDEL":
            return _SDEL_PRECISION
        return self.recgbl_prec(fname, self.f["PREC"])

    def array_limits(self, fname: str, control: bool) -> tuple[float, float] | None:
        f = self.f
        if fname == "VAL":
            return float(f["HOPR"]), float(f["LOPR"])
        if fname == "WDTH":
            return f["ULIM"] - f["LLIM"], 0.0
        return None
