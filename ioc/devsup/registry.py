"""DTYP -> device support registry (EPICS ``device(rtype, linktype, dset, "choice")``).

Packages register their device support at import time::

    register(("ai", "ao"), "E3631A", E3631ADevSup, link_type="INST_IO")

The order of registration is the order of the DTYP menu; "Soft Channel" is registered first for
every record type, so it is the default (DTYP index 0) exactly as in EPICS.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..records.constants import NO_CONVERT

if TYPE_CHECKING:
    from ..records.base import Record
    from ..scan import IoScanList

_DEVICES: dict[str, dict[str, tuple[type["DeviceSupport"], str]]] = {}


class DevSupError(Exception):
    """A record whose device support cannot be initialised (reported with the record's file:line)."""


class DeviceSupport:
    """Device support for one record: an EPICS dset, one instance per record.

    Contract (all methods run on the IOC's event-loop thread and must not block):

    * ``init_record()`` -- check the link (``self.record.links[self.record.io_link]``) and set up;
      raise DevSupError to refuse the record.
    * ``get_ioint_info()`` -- the IoScanList for ``SCAN = I/O Intr``, or None if unsupported.
    * ``read()`` (input records) -- fill VAL (return NO_CONVERT) or RVAL (return CONVERT). To go
      asynchronous set ``record.f["PACT"] = 1`` and return; when the I/O is done, call
      ``record.complete_async()`` from any thread: ``read()`` is then called again with PACT set.
    * ``write()`` (output records) -- send VAL/OVAL/RVAL; asynchronous the same way.
    """

    link_type = "CONSTANT"

    def __init__(self, record: "Record"):
        self.record = record

    def init_record(self) -> None:
        pass

    def get_ioint_info(self) -> "IoScanList | None":
        return None

    def read(self) -> int:
        return NO_CONVERT

    def write(self) -> None:
        pass

    def check_put(self, fname: str, value) -> None:
        """Called by dbPut before ``value`` is stored in field ``fname``; raise
        ``ioc.records.base.PutError`` to refuse the put (the client gets a CA error)."""

    def report(self) -> str:
        return ""


def register(rtypes, dtyp: str, cls: type[DeviceSupport], link_type: str = "CONSTANT") -> None:
    """Make ``DTYP = dtyp`` available for the record types ``rtypes``."""
    if isinstance(rtypes, str):
        rtypes = (rtypes,)
    for rt in rtypes:
        _DEVICES.setdefault(rt, {})[dtyp] = (cls, link_type)


def choices(rtype: str) -> list[str]:
    return list(_DEVICES.get(rtype, {}))


def lookup(rtype: str, dtyp: str) -> tuple[type[DeviceSupport], str] | None:
    return _DEVICES.get(rtype, {}).get(dtyp)


def all_devices() -> dict[str, dict[str, str]]:
    """rtype -> {DTYP: link type}, for writing a dbd."""
    return {rt: {d: lt for d, (_, lt) in devs.items()} for rt, devs in _DEVICES.items()}
