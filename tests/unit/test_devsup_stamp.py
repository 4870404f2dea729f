"""epicsTimeToStrftime as base 7.0.8's stringin "Soft Timestamp" shows it (outputs observed
with softIoc), and the DTYP menus in devSoft.dbd's order."""
from __future__ import annotations

import time

import ioc.main  # noqa: F401  (every device support registered, as the IOC has them)
from ioc.devsup.registry import choices
from ioc.timesrc import POSIX_TIME_AT_EPICS_EPOCH
from timing.devsup_stamp import epics_strftime

_SEC = int(time.mktime((2026, 12, 4, 6, 14, 52, 0, 0, -1))) - POSIX_TIME_AT_EPICS_EPOCH


def test_fraction_codes_round_and_keep_unknown_ones():
    got = epics_strftime("%H:%M:%S.%f|%3f|%09f|%0f|%1f", (_SEC, 369760683))
    assert got == "06:14:52.369760683|370|369760683|%0f|4"


def test_fraction_never_carries():
    assert epics_strftime("%S.%3f", (_SEC, 999999999)) == "52.999"


def test_what_does_not_fit():
    assert epics_strftime("%Y-%m-%d %H:%M:%S %Y-%m-%d %H:%M:%S %Y", (_SEC, 0)) == ""
    lit = "abcdefghijklmnopqrstuvwxyz0123456789ABC"
    assert epics_strftime(lit, (_SEC, 0)) == lit
    assert (epics_strftime("abcdefghijklmnopqrstuvwxyz0123456.%06f", (_SEC, 0))
            == "abcdefghijklmnopqrstuvwxyz0123456.*****")


def test_dtyp_menus_in_base_order():
    # softIoc 7.0.8 (caget -d DBR_CTRL_ENUM REC.DTYP); ours may add its own DTYPs after these.
    base = {
        "ai": ["Soft Channel", "Raw Soft Channel", "Async Soft Channel", "Soft Timestamp",
               "General Time"],
        "bi": ["Soft Channel", "Raw Soft Channel", "Async Soft Channel", "Db State"],
        "bo": ["Soft Channel", "Raw Soft Channel", "Async Soft Channel", "General Time",
               "Db State"],
        "stringin": ["Soft Channel", "Async Soft Channel", "Soft Timestamp", "General Time",
                     "getenv"],
        "stringout": ["Soft Channel", "Async Soft Channel", "stdio"],
        "longin": ["Soft Channel", "Async Soft Channel", "General Time"],
        "mbbiDirect": ["Soft Channel", "Raw Soft Channel", "Async Soft Channel"],
        "int64in": ["Soft Channel", "Async Soft Channel"],
        "lsi": ["Soft Channel", "getenv"],
        "lso": ["Soft Channel", "Async Soft Channel", "stdio"],
    }
    for rt, menu in base.items():
        assert choices(rt)[:len(menu)] == menu, rt
