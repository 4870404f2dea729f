"""EPICS constants shared by record support, device support and the CA layer."""
from __future__ import annotations

from enum import IntEnum

# Monitor event masks (dbEvent.h / caeventmask.h).
DBE_VALUE = 1
DBE_LOG = 2          # a.k.a. DBE_ARCHIVE
DBE_ALARM = 4
DBE_PROPERTY = 8

# Device support return codes (EPICS convention for read_xx).
CONVERT = 0          # record support converts RVAL -> VAL
NO_CONVERT = 2       # device support wrote VAL itself

MAX_LOCK = 10        # dbProcess: times a busy (PACT) record may be asked before SCAN alarm


class Sevr(IntEnum):
    """menuAlarmSevr."""
    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3


class Stat(IntEnum):
    """menuAlarmStat, in EPICS base 7.0 order (the CA wire values)."""
    NO_ALARM = 0
    READ = 1
    WRITE = 2
    HIHI = 3
    HIGH = 4
    LOLO = 5
    LOW = 6
    STATE = 7
    COS = 8
    COMM = 9
    TIMEOUT = 10
    HWLIMIT = 11
    CALC = 12
    SCAN = 13
    LINK = 14
    SOFT = 15
    BAD_SUB = 16
    UDF = 17
    DISABLE = 18
    SIMM = 19
    READ_ACCESS = 20
    WRITE_ACCESS = 21


# menuScan choice index -> period in seconds (None: not periodic).
SCAN_PASSIVE, SCAN_EVENT, SCAN_IO_INTR = 0, 1, 2
SCAN_PERIODS_S: dict[int, float] = {3: 10.0, 4: 5.0, 5: 2.0, 6: 1.0, 7: 0.5, 8: 0.2, 9: 0.1}

# TSE special values (epicsTime.h / generalTime).
TSE_BEST_EVENT = -1
TSE_DEVICE_TIME = -2
