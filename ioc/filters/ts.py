"""``ts``: time stamps, ``{"ts":{}}`` and (EPICS 7.0.7+, present in 7.0.8) the value options
``num``/``str``/``epoch`` (ts.c).

* ``{"ts":{}}`` (pre chain): the log's time becomes ``now()``, taken when the record posts (or
  the get is made). A reference log is copied first, so value and time stay together; the copy
  has the field's *capacity* (NELM) elements, the ones past NORD zero (base callocs
  ``no_elements`` and copies NORD): camonitor then shows all NELM elements (checked).
* ``num``: the value becomes the log's time: ``dbl`` (seconds as a double), ``sec``/``nsec``
  (DBF_ULONG), ``ts`` (two DBF_ULONG: seconds, nanoseconds); ``epoch:"unix"`` adds
  631152000 s to the seconds (mod 2**32). ``str``: a DBF_STRING, ``epics``
  (``%Y-%m-%d %H:%M:%S.%06f``) or ``iso`` (``%Y-%m-%dT%H:%M:%S.%06f%z``), local time,
  microseconds rounded, ``<undefined>`` for the EPICS epoch itself, ``epoch`` ignored;
  ``str`` wins over ``num``. These run in the post chain and change the channel's type
  (DBF_ULONG goes over CA as DBR_DOUBLE, as base does).
* Option values are enum names (no conversion): prefixes select (``"s"`` = sec, ``""`` = dbl),
  anything else fails, as does an integer.
"""
from __future__ import annotations

import time

import numpy as np

from .fieldlog import FieldLog
from ._base import Filter, Probe
from ._chf import ENUM, ArgDef, Plugin

POSIX_TIME_AT_EPICS_EPOCH = 631152000
MAX_STRING_SIZE = 40


def epics_strftime(stamp: tuple[int, int], iso: bool) -> str:
    """epicsTimeToStrftime with ts.c's two formats (into a MAX_STRING_SIZE buffer)."""
    sec, nsec = stamp
    if sec == 0 and nsec == 0:
        return "<undefined>"            # base presumes the epoch is an unset time stamp
    tm = time.localtime(sec + POSIX_TIME_AT_EPICS_EPOCH)
    text = time.strftime("%Y-%m-%dT%H:%M:%S." if iso else "%Y-%m-%d %H:%M:%S.", tm)
    if nsec < 1_000_000_000:
        text += "%06d" % (min(nsec + 500, 999_999_999) // 1000)   # round, never into seconds
    else:
        text += "OVF"
    if iso:
        text += time.strftime("%z", tm)
    return text[:MAX_STRING_SIZE - 1]


class TsFilter(Filter):
    name = "ts"

    def __init__(self, settings, info, now):
        super().__init__(settings, info, now)
        self.mode = "str" if settings["str"] else settings["num"] or "generate"

    def register_pre(self, probe: Probe) -> bool:
        # only the plain mode: its time must be taken as close to the post as possible
        return self.mode == "generate"

    def register_post(self, probe: Probe) -> bool:
        if self.mode == "generate":
            return False
        probe.dbf = {"dbl": "DBF_DOUBLE", "str": "DBF_STRING"}.get(self.mode, "DBF_ULONG")
        probe.count = 2 if self.mode == "ts" else 1
        return True

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        out = fl.copy()
        if fl.value is None and self.info.read_array is not None:
            src = np.asarray(self.info.read_array())
            n = self.info.nelm
            if src.dtype == object:
                copy = np.empty(n, dtype=object)
                copy[:] = ""
            else:
                copy = np.zeros(n, dtype=src.dtype)
            m = min(n, len(src))
            copy[:m] = src[:m]
            out.value, out.count = copy, n
        out.time = self.now()
        return out

    def post(self, fl: FieldLog, read: bool) -> FieldLog | None:
        sec, nsec = fl.time
        if self.settings["epoch"] == "unix":
            sec = (sec + POSIX_TIME_AT_EPICS_EPOCH) & 0xFFFFFFFF
        out = fl.copy()
        out.count = 1
        if self.mode == "dbl":
            out.value, out.dbf = sec + nsec * 1e-9, "DBF_DOUBLE"
        elif self.mode == "sec":
            out.value, out.dbf = sec, "DBF_ULONG"
        elif self.mode == "nsec":
            out.value, out.dbf = nsec, "DBF_ULONG"
        elif self.mode == "ts":
            out.value, out.dbf, out.count = np.array([sec, nsec], dtype=np.uint32), "DBF_ULONG", 2
        else:
            out.value = epics_strftime(fl.time, self.settings["str"] == "iso")
            out.dbf = "DBF_STRING"
        return out

    def report(self) -> str:
        s = self.settings
        return f"Timestamp (ts): num={s['num']}, epoch={s['epoch']}, str={s['str']}"


PLUGIN = Plugin("ts", (ArgDef("num", ENUM, enums=(("dbl", 2), ("sec", 3), ("nsec", 4), ("ts", 5))),
                       ArgDef("epoch", ENUM, enums=(("epics", 0), ("unix", 1))),
                       ArgDef("str", ENUM, enums=(("epics", 1), ("iso", 2)))),
                {"num": 0, "epoch": 0, "str": 0}, TsFilter)
