"""``dec``: pass every n-th update, ``{"dec":{"n":N}}`` (decimate.c).

``n`` is required, an integer (no conversion: ``5.0`` or ``"5"`` fail) and at least 1. The
first update after the channel was created passes, then n-1 are dropped, and so on; the
counter belongs to the channel (shared by its subscriptions). Gets and DBE_PROPERTY updates
pass and are not counted.
"""
from __future__ import annotations

from .fieldlog import FieldLog
from ._base import DBE_PROPERTY, Filter, Probe
from ._chf import INT32, ArgDef, ChfError, Plugin


class DecFilter(Filter):
    name = "dec"

    def __init__(self, settings, info, now):
        super().__init__(settings, info, now)
        self.i = 0

    def register_pre(self, probe: Probe) -> bool:
        return True

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        if read or fl.mask & DBE_PROPERTY:
            return fl
        passed = fl if self.i == 0 else None
        self.i = (self.i + 1) % self.settings["n"]
        return passed

    def report(self) -> str:
        return f"Decimate (dec): n={self.settings['n']}, i={self.i}"


def _parse_ok(s: dict) -> None:
    if s["n"] < 1:
        raise ChfError(f"n={s['n']} must be at least 1")


PLUGIN = Plugin("dec", (ArgDef("n", INT32, required=True),), {"n": 0}, DecFilter, _parse_ok)
