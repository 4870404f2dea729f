"""Timing: the generalTime registry of time providers and its providers.

* :mod:`timing.registry` -- :class:`~timing.registry.GeneralTime`, EPICS generalTime in Python
  (provider API and consumer API; the module docstring states the rules).
* :mod:`timing.providers` -- the OS clock (999), NTP (``NTPTime_Init``), a test-only clock.
* :mod:`timing.devsup` -- DTYP "General Time" (the iocStats ``GTIM_*`` records) and "NTP Time".
* :mod:`timing.shell` -- ``generalTimeReport``, ``installLastResortEventProvider``,
  ``NTPTime_Init``, ``NTPTime_Report`` (and the test clock's commands).

This package sits below the IOC: ``timing``, ``timing.registry`` and ``timing.providers`` import
nothing from ``ioc`` and nothing from caproto; only ``devsup`` and ``shell`` bridge to the IOC.

The IOC has one registry per process, :func:`general_time`, with the OS clock registered (as
EPICS registers it at start-up). ``ioc.database.db.Database`` uses it as its time source, so every
record time stamp comes from it.
"""
from __future__ import annotations

from .providers import os_clock
from .registry import LAST_RESORT_PRIORITY, GeneralTime, Stamp

__all__ = ["GeneralTime", "LAST_RESORT_PRIORITY", "Stamp", "general_time"]

_GENERAL_TIME = GeneralTime()
_GENERAL_TIME.register_current_provider(os_clock.NAME, os_clock.PRIORITY, os_clock.get_current)


def general_time() -> GeneralTime:
    """The process-wide generalTime registry (created, with the OS clock, at import)."""
    return _GENERAL_TIME
