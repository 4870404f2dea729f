"""The "OS Clock" current-time provider (osiClockTime.c / posix osdTime.cpp), priority 999.

It reads ``CLOCK_REALTIME``. A clock set before the EPICS epoch (a board without an RTC) gives
1990-01-02 00:00:00 and a warning, as EPICS does -- but the warning is logged once, not on every
call (EPICS issue #455: clients flooded with ``OS Clock pre-dates the EPICS epoch!``).
"""
from __future__ import annotations

import logging
import time

from ..registry import LAST_RESORT_PRIORITY, POSIX_TIME_AT_EPICS_EPOCH, Stamp

log = logging.getLogger(__name__)

NAME = "OS Clock"
PRIORITY = LAST_RESORT_PRIORITY
_EPOCH_NS = POSIX_TIME_AT_EPICS_EPOCH * 1_000_000_000
_PRE_EPOCH_SUBSTITUTE: Stamp = (86400, 0)      # 1990-01-02 00:00:00

#: When the provider module was loaded (ClockTime_Report's "Program started at").
STARTED: Stamp = divmod(max(time.time_ns() - _EPOCH_NS, 0), 1_000_000_000)  # type: ignore[assignment]
_warned = False


def get_current() -> Stamp:
    """The OS clock now, as an EPICS time stamp. Always answers."""
    ns = time.time_ns() - _EPOCH_NS
    if ns < 0:
        return _pre_epoch()
    return divmod(ns, 1_000_000_000)  # type: ignore[return-value]


def _pre_epoch() -> Stamp:
    global _warned
    if not _warned:
        _warned = True
        log.warning("WARNING: OS Clock pre-dates the EPICS epoch! Using 1990-01-02 until it is set")
    return _PRE_EPOCH_SUBSTITUTE
