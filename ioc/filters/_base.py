"""What every filter shares: the error, the field description, the type probe, the base class."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .fieldlog import FieldLog

# caeventmask.h
DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY = 1, 2, 4, 8

Now = Callable[[], "tuple[int, int]"]


class FilterError(ValueError):
    """The channel name or its filters are refused, as dbChannelCreate/Open refuse them; the
    message says what is wrong. The server logs it and answers CREATE_CH_FAIL."""


@dataclass
class FieldInfo:
    """The field a channel reads, after the ``$`` modifier (see ``long_string_field``).

    ``dbf``: its DBF type (``"DBF_CHAR"`` for a long string). ``nelm``: element count (1 for a
    scalar, the field size for a long string, NELM for an array). ``is_array``: the channel's
    logs are references (``FieldLog.value`` None). ``read_array()``: the field's current
    elements in logical order, as base's ``dbChannelGetArrayInfo`` gives them (NORD elements of
    a waveform, the whole NUL-padded buffer of a long string); the ``arr`` and ``ts`` filters
    call it (under whatever lock the caller holds) when they meet a reference log.
    ``name``: the channel name, for messages."""
    dbf: str
    nelm: int
    is_array: bool
    read_array: Callable[[], np.ndarray] | None = None
    name: str = ""


def export_dbf(dbf: str) -> str:
    """The DBR type base serves for a field type (dbChannelExportType): menus and device
    fields are enums, link fields are strings (unless ``$`` made them DBF_CHAR already)."""
    if dbf in ("DBF_MENU", "DBF_DEVICE"):
        return "DBF_ENUM"
    if dbf in ("DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK"):
        return "DBF_STRING"
    return dbf


@dataclass
class Probe:
    """The type probe dbChannelOpen passes along the filters: what a log will look like."""
    dbf: str
    count: int


class Filter:
    """One filter of one channel (a chFilter with its plugin's private data).

    ``register_pre``/``register_post`` are asked once when the chain is built, in filter order
    (all pre first, then all post, as dbChannelOpen does); they may change the probe and say
    whether the filter runs in that chain. ``pre``/``post`` get a log and return it, another
    log, or None (dropped). ``read`` is True for a get (dbfl_context_read), False for an event.
    A filter never changes a log it did not create: it copies first."""
    name = ""

    def __init__(self, settings: dict[str, Any], info: FieldInfo, now: Now):
        self.settings = settings
        self.info = info
        self.now = now

    def register_pre(self, probe: Probe) -> bool:
        return False

    def register_post(self, probe: Probe) -> bool:
        return False

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        return fl

    def post(self, fl: FieldLog, read: bool) -> FieldLog | None:
        return fl

    def report(self) -> str:
        """One line as the filter's channel_report prints it (dbChannelShow level 2)."""
        return f"{self.name}: {self.settings}"


def source_array(fl: FieldLog, info: FieldInfo) -> np.ndarray | None:
    """The elements a log stands for: its own copy, or the field read now for a reference."""
    if fl.value is None:
        return None if info.read_array is None else np.asarray(info.read_array())
    if isinstance(fl.value, np.ndarray):
        return fl.value[:fl.count]
    return None
