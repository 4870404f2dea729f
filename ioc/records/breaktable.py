"""Breakpoint-table conversions (EPICS base cvtBpt.c semantics, ``breaktable`` dbd statement).

A table is a list of (raw, eng) points; each interval carries the slope to the next point and
the last point repeats the final slope, so values beyond either end are extrapolated along
the end interval (and the conversion reports it). ai/ao keep the interval last used (LBRK)
and start the next search there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

#: Conversion status: value inside the table / extrapolated beyond an end / no such table.
BPT_OK, BPT_OUT_OF_RANGE, BPT_NO_TABLE = 0, 1, 2


class BreaktableError(ValueError):
    """A breaktable definition base's dbStatic would reject (message as its error)."""


@dataclass(frozen=True)
class BrkTable:
    """One loaded table: points sorted as given; ``slopes[i]`` is d eng / d raw after point i."""
    name: str
    raw: tuple[float, ...]
    eng: tuple[float, ...]
    slopes: tuple[float, ...]


def make_table(name: str, values: Sequence[float]) -> BrkTable:
    """Build a table from the flat ``raw eng raw eng ...`` list of a breaktable body.

    Raises BreaktableError for an odd count, fewer than two points, a zero slope or a slope
    that changes sign (base's default dbBptNotMonotonic=0 checks).
    """
    if len(values) % 2:
        raise BreaktableError("breaktable: Raw value missing")
    raw, eng = tuple(map(float, values[0::2])), tuple(map(float, values[1::2]))
    if len(raw) < 2:
        raise BreaktableError("breaktable: Must have at least two points!")
    slopes: list[float] = []
    for i in range(len(raw) - 1):
        slope = (eng[i + 1] - eng[i]) / (raw[i + 1] - raw[i])
        if slope == 0:
            raise BreaktableError("breaktable slope is zero")
        if slopes and (slopes[0] < 0) != (slope < 0):
            raise BreaktableError("breaktable slope changes sign")
        slopes.append(slope)
    slopes.append(slopes[-1])  # the final slope continues beyond the last point
    return BrkTable(name, raw, eng, tuple(slopes))


def _search(xs: Sequence[float], val: float, lbrk: int) -> tuple[int, int, int]:
    """Find the interval of ``val`` on axis ``xs`` from ``lbrk``: (point index, LBRK, status).

    Follows cvtBpt.c exactly, including its asymmetric comparisons for decreasing axes.
    """
    n = len(xs)
    lbrk = max(0, min(lbrk, n - 2))
    status = BPT_OK
    p = lbrk
    if xs[p + 1] > xs[p]:
        while val > xs[p + 1] if p + 1 < n else False:
            lbrk += 1
            p += 1
            if lbrk > n - 2:
                status = BPT_OUT_OF_RANGE
                break
        while val < xs[p]:
            if lbrk <= 0:
                status = BPT_OUT_OF_RANGE
                break
            lbrk -= 1
            p -= 1
    else:
        while val <= xs[p + 1] if p + 1 < n else False:
            lbrk += 1
            p += 1
            if lbrk > n - 2:
                status = BPT_OUT_OF_RANGE
                break
        while val > xs[p]:
            if lbrk <= 0:
                status = BPT_OUT_OF_RANGE
                break
            lbrk -= 1
            p -= 1
    return p, lbrk, status


def raw_to_eng(table: BrkTable, val: float, lbrk: int) -> tuple[float, int, int]:
    """cvtRawToEngBpt: (eng value, new LBRK, status) for raw ``val`` searched from ``lbrk``."""
    p, lbrk, status = _search(table.raw, val, lbrk)
    return table.eng[p] + (val - table.raw[p]) * table.slopes[p], lbrk, status


def eng_to_raw(table: BrkTable, val: float, lbrk: int) -> tuple[float, int, int]:
    """cvtEngToRawBpt: (raw value, new LBRK, status) for engineering ``val`` from ``lbrk``."""
    p, lbrk, status = _search(table.eng, val, lbrk)
    return table.raw[p] + (val - table.eng[p]) / table.slopes[p], lbrk, status


TableLookup = Callable[[str], "BrkTable | None"]
