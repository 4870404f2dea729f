"""Record types known to this IOC, described by EPICS's own dbd (``base.dbd``)."""
from __future__ import annotations

import os

from ..dbd import Dbd, read_dbd
from .analog import AiRecord, AoRecord
from .base import Record
from .binary import BiRecord, BoRecord, MbbiRecord, MbboRecord
from .calc import CalcoutRecord, CalcRecord
from .scalar import LonginRecord, LongoutRecord, StringinRecord, StringoutRecord
from .waveform import WaveformRecord

STD_DBD: Dbd = read_dbd(os.path.join(os.path.dirname(__file__), "base.dbd"))
RECORD_TYPES: dict[str, type[Record]] = {}


def register_record_type(cls: type[Record]) -> type[Record]:
    """Attach the dbd definition of ``cls.rtype`` to the class and make the type loadable."""
    cls.spec = STD_DBD.recordtypes[cls.rtype]
    cls.menus = STD_DBD.menus
    RECORD_TYPES[cls.rtype] = cls
    return cls


for _cls in (AiRecord, AoRecord, BiRecord, BoRecord, MbbiRecord, MbboRecord, LonginRecord,
             LongoutRecord, StringinRecord, StringoutRecord, WaveformRecord, CalcRecord,
             CalcoutRecord):
    register_record_type(_cls)
