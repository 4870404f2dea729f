"""``utag``: pass updates whose record UTAG matches, ``{"utag":{"M":MASK,"V":VALUE}}`` (utag.c).

An update passes when ``(UTAG & M) == V`` at post time (M and V are 32-bit signed integers,
widened with their sign to UTAG's 64 bits as C does; defaults M = 0xffffffff, i.e. -1, V = 0).
The option names are upper case: ``{utag:{m:1,v:0}}`` as in the EPICS documentation is
refused (checked with softIoc 7.0.8). The first update of the channel, gets and DBE_PROPERTY
updates always pass.
"""
from __future__ import annotations

from .fieldlog import FieldLog
from ._base import DBE_PROPERTY, Filter, Probe
from ._chf import INT32, ArgDef, Plugin

_U64 = (1 << 64) - 1


class UtagFilter(Filter):
    name = "utag"

    def __init__(self, settings, info, now):
        super().__init__(settings, info, now)
        self.first = True

    def register_pre(self, probe: Probe) -> bool:
        return True

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        if read or fl.mask & DBE_PROPERTY:
            return fl
        if self.first:
            self.first = False
            return fl
        mask, value = self.settings["M"] & _U64, self.settings["V"] & _U64
        return fl if (fl.utag & _U64 & mask) == value else None

    def report(self) -> str:
        return (f"utag : mask=0x{self.settings['M'] & 0xFFFFFFFF:08x} "
                f"value=0x{self.settings['V'] & 0xFFFFFFFF:08x}")


PLUGIN = Plugin("utag", (ArgDef("M", INT32, convert=True), ArgDef("V", INT32, convert=True)),
                {"M": -1, "V": 0}, UtagFilter)
