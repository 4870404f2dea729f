"""``dbnd``: a per-channel monitor deadband, ``{"dbnd":{"abs":D}}``/``{"rel":P}``/``{d:D,m:..}``
(dbnd.c, recGblCheckDeadband).

* Runs in the pre-event-queue chain, on scalar value logs only; arrays (reference logs or
  copies), strings that do not parse as numbers and link fields pass unchanged. Strings are
  converted like dbFastGetConvertRoutine does (``""`` is 0, ``"1.5 V"`` is 1.5).
* A log passes if its mask has any bit besides DBE_VALUE|DBE_LOG (an alarm or property change
  always passes), or if the value moved more than the deadband from the last value passed with
  a VALUE/LOG bit; the log's mask is not changed. NaN/inf: a change between finite, NaN and
  +-inf, or between +inf and -inf, always counts as beyond the deadband.
* ``rel``: the deadband is P percent of the last value that passed (recomputed whenever a log
  passes, even on an alarm-only pass); until the first pass it is P itself. A negative last
  value makes it negative, so everything passes (as base).
* A get through a dbnd channel has mask 0 and so is always dropped (the server then sends the
  plain field value, see FilterChain.read); it still moves the deadband's last value.
"""
from __future__ import annotations

import math
import numbers

from .fieldlog import FieldLog
from ._base import DBE_LOG, DBE_VALUE, Filter, Probe
from ._chf import DOUBLE, ENUM, ArgDef, Plugin, parse_double

_NUMERIC = {"DBF_CHAR", "DBF_UCHAR", "DBF_SHORT", "DBF_USHORT", "DBF_LONG", "DBF_ULONG",
            "DBF_INT64", "DBF_UINT64", "DBF_FLOAT", "DBF_DOUBLE", "DBF_ENUM", "DBF_MENU",
            "DBF_DEVICE"}


def as_double(value: object, dbf: str) -> float | None:
    """A scalar field value as DBR_DOUBLE, or None when base's conversion fails/has none."""
    if isinstance(value, numbers.Real) and dbf in _NUMERIC:
        return float(value)
    if isinstance(value, str) and dbf == "DBF_STRING":
        return 0.0 if value == "" else parse_double(value)
    return None


def check_deadband(last: float, new: float, deadband: float) -> bool:
    """recGblCheckDeadband's test: is ``new`` beyond ``deadband`` from ``last``?"""
    delta = 0.0
    if math.isfinite(new) and math.isfinite(last):
        delta = abs(last - new)
    elif math.isnan(new) != math.isnan(last) or math.isinf(new) != math.isinf(last):
        delta = math.inf
    elif math.isinf(new) and new != last:
        delta = math.inf
    return delta > deadband


class DbndFilter(Filter):
    name = "dbnd"

    def __init__(self, settings, info, now):
        super().__init__(settings, info, now)
        self.rel = settings["m"] == "rel"
        self.hyst = settings["d"]
        self.last = math.nan

    def register_pre(self, probe: Probe) -> bool:
        return True

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        if not isinstance(fl.value, (numbers.Real, str)):    # reference or array copy
            return fl
        val = as_double(fl.value, fl.dbf)
        if val is None:
            return fl
        send = fl.mask & ~(DBE_VALUE | DBE_LOG)
        if check_deadband(self.last, val, self.hyst):
            send |= fl.mask & (DBE_VALUE | DBE_LOG)
            self.last = val
        if send and self.rel:
            self.hyst = val * self.settings["d"] / 100.0
        return fl if send else None

    def report(self) -> str:
        return (f"Deadband (dbnd): mode={self.settings['m']}, delta={self.settings['d']:g}"
                f"{'%' if self.rel else ''}")


_MODES = (("abs", 0), ("rel", 1))
PLUGIN = Plugin("dbnd", (ArgDef("d", DOUBLE, convert=True),
                         ArgDef("m", ENUM, convert=True, enums=_MODES),
                         ArgDef("abs", DOUBLE, convert=True, member="d", tag="m", choice=0),
                         ArgDef("rel", DOUBLE, convert=True, member="d", tag="m", choice=1)),
                {"d": 0.0, "m": 0}, DbndFilter)
