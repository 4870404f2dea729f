"""``arr``: sub-arrays and strides, ``{"arr":{s:START,i:INCR,e:END}}`` and ``.[s:i:e]`` (arr.c).

* Defaults s=0, i=1, e=-1; negative s/e count from the end (-1 = last); an increment <= 0
  becomes 1 (parse_ok); start after end gives no elements.
* It runs in the post-event-queue chain, and only on channels of more than one element (a
  scalar channel, NELM 1 included, is untouched: ``ai.[1]`` serves the value).
* The channel's element count becomes what the indices select from the *capacity* (NELM, or
  the long string's size); each update selects from the elements the log holds at delivery:
  a reference log reads the field then (NORD elements of a waveform), a copy made by an earlier
  filter uses its own count (``ts`` copies NELM elements, zero-padded: so ``{"ts":{},"arr":
  {"s":-1}}`` on a half-filled waveform gives 0, checked with softIoc).
* A scalar (value) log passes unchanged, e.g. after ``ts`` turned the value into a time.
"""
from __future__ import annotations

import numpy as np

from .fieldlog import FieldLog
from ._base import Filter, Probe, source_array
from ._chf import INT32, ArgDef, Plugin


def wrap_indices(start: int, incr: int, end: int, n: int) -> tuple[int, int]:
    """wrapArrayIndices: (number of elements selected, first index) for ``n`` elements."""
    if start < 0:
        start += n
    if start < 0:
        start = 0
    if start > n:
        start = n
    if end < 0:
        end += n
    if end < 0:
        end = 0
    if end >= n:
        end = n - 1
    return (1 + (end - start) // incr if end - start >= 0 else 0), start


class ArrFilter(Filter):
    name = "arr"

    def register_post(self, probe: Probe) -> bool:
        if probe.count <= 1:                          # array data only
            return False
        s = self.settings
        probe.count, _ = wrap_indices(s["s"], s["i"], s["e"], probe.count)
        return True

    def post(self, fl: FieldLog, read: bool) -> FieldLog | None:
        src = source_array(fl, self.info)
        if src is None:                               # a scalar log, or nothing to read
            return fl
        s = self.settings
        n, start = wrap_indices(s["s"], s["i"], s["e"], len(src))
        out = fl.copy()
        out.value = np.array(src[start:start + n * s["i"]:s["i"]][:n])
        out.count = n
        return out

    def report(self) -> str:
        s = self.settings
        return f"Array (arr): start={s['s']}, incr={s['i']}, end={s['e']}"


def _parse_ok(s: dict) -> None:
    if s["i"] <= 0:
        s["i"] = 1


PLUGIN = Plugin("arr", (ArgDef("s", INT32, convert=True), ArgDef("i", INT32, convert=True),
                        ArgDef("e", INT32, convert=True)),
                {"s": 0, "i": 1, "e": -1}, ArrFilter, _parse_ok)
