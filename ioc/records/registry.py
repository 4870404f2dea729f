"""Record types known to this IOC, described by EPICS's own dbd (``base.dbd``).

Every Record subclass with an ``rtype`` in the record-support modules below is registered;
a record type's family module is all it takes to add one.
"""
from __future__ import annotations

import os

from ..dbd import Dbd, read_dbd
from . import (analog, array, binary, calc, compress, control, control_io, scalar, strings,
               sub, waveform)
from .base import Record

STD_DBD: Dbd = read_dbd(os.path.join(os.path.dirname(__file__), "base.dbd"))
RECORD_TYPES: dict[str, type[Record]] = {}


def register_record_type(cls: type[Record]) -> type[Record]:
    """Attach the dbd definition of ``cls.rtype`` to the class and make the type loadable."""
    cls.spec = STD_DBD.recordtypes[cls.rtype]
    cls.menus = STD_DBD.menus
    RECORD_TYPES[cls.rtype] = cls
    return cls


for _mod in (analog, binary, scalar, strings, waveform, calc, array, compress, control,
             control_io, sub):
    for _obj in vars(_mod).values():
        if (isinstance(_obj, type) and issubclass(_obj, Record) and _obj.__module__ == _mod.__name__
                and _obj.rtype):
            register_record_type(_obj)
