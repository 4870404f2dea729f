"""The remaining soft device supports of base's devSoft.dbd, and the DTYP menu order.

* stringin "getenv" (devEnviron.c devSiEnviron): VAL is the environment variable ``@NAME``
  names, read at each processing (39 characters at most); an unset variable empties VAL and
  raises UDF with severity UDFS ("No such ENV").
* stringout "stdio" (devStdio.c devSoStdio): VAL and a newline on ``@stdout``, ``@stderr`` or
  ``@errlog`` (the printf record's :class:`~ioc.devsup.soft_control.PrintfStdio`).
* bi/bo "Db State" (devBiDbState.c, devBoDbState.c): the INST_IO parameter names a dbState
  (:mod:`ioc.filters.dbstate`), created at init if it does not exist yet. bi reads the state
  into VAL (defining it); bo sets the state when VAL is non-zero, else clears it. An empty
  name links to no state: bi then leaves VAL alone, bo does nothing.
* "Async Soft Channel" for the input records (devXxSoftCallback.c): through a link to a
  record of this IOC (a DB link, or a CA-flagged link whose PV is local: base opens a
  dbChannel on the name) each read processes the target whatever its SCAN and the link's
  PP/NPP (dbProcessNotify, processGetRequest), then reads the value, takes the link's MS
  severity and, with TSE -2, the target's time stamp. A constant INP loads VAL once at init.
  A name no record of this IOC has is reported at init ("link target not found", as base's
  add_record does -- base has no CA get for these supports); the IOC still starts and the
  record's reads then do nothing (VAL stays, no alarm), as base's do without a dpvt.

:func:`order_like_base` puts every record type's DTYP menu in devSoft.dbd's order (base's
choice indexes); the modules registering base DTYPs call it after their registrations.
"""
from __future__ import annotations

import logging
import os

from ..records.constants import NO_CONVERT, Sevr, Stat
from ..records.io import READ_FAILED
from ..records.links import CanonicalLinkText, ConstantLink, DbLink, InstioLink, as_float
from . import registry
from .registry import DeviceSupport, DevSupError, register
from .soft import SoftInput, SoftOutput, take_link_time
from .soft_control import PrintfStdio

log = logging.getLogger(__name__)
_STRING_LEN = 39                 # stringin VAL is char[40]
_ASYNC = "Async Soft Channel"
_ASYNC_INPUTS = ("ai", "bi", "longin", "mbbi", "stringin", "int64in", "mbbiDirect")
_DSET_NAME = {"ai": "Ai", "bi": "Bi", "longin": "Li", "mbbi": "Mbbi", "stringin": "Si",
              "int64in": "I64in", "mbbiDirect": "MbbiDirect"}

#: devSoft.dbd's device() order, by DTYP; a record type's menu lists its DTYPs in this order.
BASE_ORDER = ("Soft Channel", "Raw Soft Channel", "Async Soft Channel", "Soft Timestamp",
              "General Time", "stdio", "getenv", "Db State")


def order_like_base() -> None:
    """Reorder each record type's registered DTYPs: base's (BASE_ORDER) first, in base's
    order, then the others in their registration order."""
    for rt, devs in registry._DEVICES.items():
        base = [d for d in BASE_ORDER if d in devs]
        rest = [d for d in devs if d not in BASE_ORDER]
        items = {d: devs[d] for d in base + rest}
        devs.clear()
        devs.update(items)


def _instio_parm(rec, fname: str, who: str) -> str:
    link = rec.links.get(fname)
    if not isinstance(link, InstioLink):
        raise DevSupError(f"{who}: Illegal {fname} field (INST_IO @... expected)")
    return link.parm


class SiEnviron(DeviceSupport):
    """stringin "getenv" (see the module docstring)."""

    link_type = "INST_IO"

    def init_record(self) -> None:
        self._name = _instio_parm(self.record, "INP", "devSiEnviron")

    def read(self) -> int:
        rec = self.record
        f = rec.f
        val = os.environ.get(self._name)
        if val is None:
            f["VAL"], f["UDF"] = "", 1
            rec.set_sevr(Stat.UDF, f["UDFS"], "No such ENV")
        else:
            f["VAL"] = val[:_STRING_LEN]
            f["UDF"] = 0
        return NO_CONVERT


class SoStdio(PrintfStdio):
    """stringout "stdio": VAL and a newline on the stream OUT names."""


class BiDbState(DeviceSupport):
    """bi "Db State" (see the module docstring)."""

    link_type = "INST_IO"
    FIELD = "INP"

    def init_record(self) -> None:
        from ..filters import dbstate   # the filters import the shell: load them late
        self._dbstate = dbstate
        name = _instio_parm(self.record, self.FIELD, type(self).__name__)
        self.state = dbstate.find(name)
        if self.state is None and name:
            self.state = dbstate.create(name)

    def read(self) -> int:
        if self.state is not None:
            self.record.f["VAL"] = int(self._dbstate.get(self.state))
            self.record.f["UDF"] = 0
        return NO_CONVERT


class BoDbState(BiDbState):
    """bo "Db State" (see the module docstring)."""

    FIELD = "OUT"

    def read(self) -> int:      # pragma: no cover - bo has no read
        return NO_CONVERT

    def write(self) -> None:
        if self.record.f["VAL"]:
            self._dbstate.set(self.state)
        else:
            self._dbstate.clear(self.state)


class AsyncSoftInput(SoftInput):
    """devXxSoftCallback for the input records (see the module docstring)."""

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        self._chan: DbLink | None = None
        self._dead = False
        if link is None or isinstance(link, ConstantLink) or link.is_constant:
            super().init_record()
            return
        if isinstance(link, DbLink):
            target, field = link.target, link.field
        else:
            name = getattr(link, "chname", None) or getattr(link, "pvname", "")
            rname, _, field = name.partition(".")
            target = rec.db.lookup(rname)
            if target is None:
                # recGblRecordError: the record stays, reads do nothing; the IOC runs on.
                fname, line = rec.origin
                log.error("%s:%s: record %s: dev%sSoftCallback (add_record) link target not "
                          "found: %s", fname, line, rec.name, _DSET_NAME.get(rec.rtype, ""),
                          name)
                self._dead = True
                return
            field = field or "VAL"
        ms = getattr(link, "ms", "NMS")
        self._chan = DbLink(getattr(link, "text", ""), target, field, "NPP", ms)
        # add_record keeps only the link's MS bits (pvlMask &= pvlOptMsMode): INP reads
        # back as "NAME MS" with no process option.
        text = str(rec.f.get(rec.io_link, "")).strip()
        if text and not text.startswith("{"):
            rec.f[rec.io_link] = CanonicalLinkText(f"{text.replace(',', ' ').split()[0]} {ms}")

    def read(self) -> int:
        rec = self.record
        chan = self._chan
        if self._dead:
            return NO_CONVERT           # no dpvt: read_xx returns at once
        if chan is None:
            return super().read()
        target = chan.target
        if target is not rec and not target.f["PACT"]:
            target.db_process()
        v = chan.get_value(rec, as_string=rec.rtype == "stringin")
        if v is None:
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return READ_FAILED
        if rec.rtype == "ai":
            x = as_float(v[0] if isinstance(v, list) and v else v)
            if x is not None:           # no ASLO/AOFF here, only SMOO (devAiSoftCallback)
                rec.smooth(x)
        else:
            self._store(v)
        take_link_time(rec, chan)
        return NO_CONVERT


register("stringin", "getenv", SiEnviron, link_type="INST_IO")
register("stringout", "stdio", SoStdio, link_type="INST_IO")
register("bi", "Db State", BiDbState, link_type="INST_IO")
register("bo", "Db State", BoDbState, link_type="INST_IO")
register(_ASYNC_INPUTS, _ASYNC, AsyncSoftInput)
# Output slots: ioc.caclient.devsup replaces these stand-ins by the put-with-completion support.
for _rt in ("ao", "bo", "mbbo", "longout", "stringout", "calcout"):
    if registry.lookup(_rt, _ASYNC) is None:
        register(_rt, _ASYNC, SoftOutput)
order_like_base()
