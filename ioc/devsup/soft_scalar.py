"""Soft device support of int64in/int64out, mbbiDirect/mbboDirect and lsi/lso (devI64inSoft.c,
devI64outSoft.c, devLsiSoft.c, devLsoSoft.c, devMbbiDirectSoft.c, devMbbiDirectSoftRaw.c, devMbboDirectSoft.c,
devMbboDirectSoftRaw.c).

* Soft Channel: the generic soft supports of ``ioc.devsup.soft`` (INP -> VAL, VAL -> OUT; a
  constant INP loads VAL once at iocInit; mbbiDirect's reads of a constant INP define VAL).
* Raw Soft Channel (mbbiDirect/mbboDirect): at init, MASK becomes all ones when NOBT is 0 and
  is shifted left by SHFT; reads store ``INP & MASK`` in RVAL and always ask the record to
  convert (a failed read too, as base does); writes send ``RVAL & MASK``.
* lsi "getenv" reads an environment variable; lso "stdio" prints VAL on @stdout/@stderr/@errlog
  (the printf record's stdio support). Async Soft Channel: see the registrations below.
"""
from __future__ import annotations

import os

from ..records.constants import NO_CONVERT
from ..records.io import READ_FAILED
from ..records.links import ConstantLink, LinkError
from ..records.constants import Stat
from ..records.links import InstioLink
from .registry import DeviceSupport, DevSupError, register
from .soft_control import PrintfStdio
from .soft import RawMaskedInput, RawMaskedOutput, SoftInput, SoftOutput, take_link_time

class LsiSoft(DeviceSupport):
    """lsi "Soft Channel" (devLsiSoft.c): INP read as a long string into VAL and LEN; a
    constant INP loads VAL once at init."""

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get("INP")
        if isinstance(link, ConstantLink):
            try:
                v = link.load_value()
            except LinkError as exc:
                raise DevSupError(str(exc)) from None
            if v is not None and v != []:
                rec.set_value(v)

    def read(self) -> int:
        rec = self.record
        link = rec.links.get("INP")
        if link is None or link.is_constant:
            return NO_CONVERT
        v = link.get_value(rec, as_string=True)
        if v is None:
            return READ_FAILED
        rec.set_value(v)
        take_link_time(rec, link)
        return NO_CONVERT


class LsoSoft(DeviceSupport):
    """lso "Soft Channel" (devLsoSoft.c): VAL written to OUT as a string."""

    def write(self) -> None:
        rec = self.record
        link = rec.links.get("OUT")
        if link is not None and not link.is_constant:
            link.put_value(rec, rec.f["VAL"])


class LsiEnviron(DeviceSupport):
    """lsi "getenv" (devEnviron.c): VAL is the environment variable ``@NAME`` names, read at
    each processing. LEN is set to the string's length without the NUL, as base does; an
    unset variable empties VAL and raises UDF with severity UDFS ("No such ENV")."""

    link_type = "INST_IO"

    def init_record(self) -> None:
        link = self.record.links.get("INP")
        if not isinstance(link, InstioLink):
            raise DevSupError("lsi getenv: INP must be an INST_IO link (@NAME)")
        self._name = link.parm

    def read(self) -> int:
        rec = self.record
        f = rec.f
        val = os.environ.get(self._name)
        if val is None:
            f["VAL"], f["LEN"], f["UDF"] = "", 1, 1
            rec.set_sevr(Stat.UDF, f["UDFS"], "No such ENV")
        else:
            f["VAL"] = rec.coerce_field("VAL", val)
            f["LEN"] = len(f["VAL"])
            f["UDF"] = 0
        return NO_CONVERT


register(("int64in", "mbbiDirect"), "Soft Channel", SoftInput)
register(("int64out", "mbboDirect"), "Soft Channel", SoftOutput)
register("mbbiDirect", "Raw Soft Channel", RawMaskedInput)
register("mbboDirect", "Raw Soft Channel", RawMaskedOutput)
register("lsi", "Soft Channel", LsiSoft)
register("lso", "Soft Channel", LsoSoft)
# "Async Soft Channel" (devXxSoftCallback.c) is asynchronous only through CA links; with the
# constant and DB links we link to, base reads/writes synchronously, as these do.
register("int64in", "Async Soft Channel", SoftInput)
register("int64out", "Async Soft Channel", SoftOutput)
register("mbbiDirect", "Async Soft Channel", SoftInput)
register("mbboDirect", "Async Soft Channel", SoftOutput)
register("lsi", "getenv", LsiEnviron, link_type="INST_IO")
register("lso", "Async Soft Channel", LsoSoft)
register("lso", "stdio", PrintfStdio, link_type="INST_IO")
