"""``sync``: pass updates according to a named state, ``{"sync":{"while":"STATE"}}`` or
``{"sync":{m:MODE,s:STATE}}`` (sync.c; states: ``ioc.filters.dbstate``).

Modes, evaluated when a record posts (state changes between posts are not seen):

* ``while`` / ``unless``: pass while the state is true / false;
* ``first`` / ``after``: pass the first update after the state turned true / false;
* ``before`` / ``last``: when the state has turned true / false, pass the update held from
  before (the one posted last before this one); every update is held in turn.

Gets and DBE_PROPERTY updates always pass and do not count as a post. The state must exist
when the channel is created (``dbStateCreate``), else FilterError; a state name is cut to 19
characters as base's 20-byte buffer cuts it. Both ``m`` and ``s`` (or a mode-named option)
are required. The held update and the last state belong to the channel, shared by all its
subscriptions, as in base.
"""
from __future__ import annotations

from . import dbstate
from .fieldlog import FieldLog
from ._base import DBE_PROPERTY, Filter, FilterError, Probe
from ._chf import ENUM, STRING, ArgDef, Plugin

STATE_NAME_LENGTH = 20
MODES = (("before", 0), ("first", 1), ("last", 2), ("after", 3), ("while", 4), ("unless", 5))


class SyncFilter(Filter):
    name = "sync"

    def __init__(self, settings, info, now):
        super().__init__(settings, info, now)
        state = dbstate.find(settings["s"])
        if state is None:
            raise FilterError(f"sync: no state '{settings['s']}' (dbStateCreate it first)")
        self.state = state
        self.mode = settings["m"]
        self.held: FieldLog | None = None
        self.last_state = False

    def register_pre(self, probe: Probe) -> bool:
        return True

    def pre(self, fl: FieldLog, read: bool) -> FieldLog | None:
        if read or fl.mask & DBE_PROPERTY:
            return fl
        now_set = dbstate.get(self.state)
        mode = self.mode
        if mode in ("while", "unless"):
            return fl if now_set == (mode == "while") else None
        rising = now_set and not self.last_state
        falling = self.last_state and not now_set
        self.last_state = now_set
        if mode == "first":
            return fl if rising else None
        if mode == "after":
            return fl if falling else None
        # before / last: hand out the held update on the edge, hold the current one
        passed = None
        if (rising if mode == "before" else falling):
            passed = self.held
        self.held = fl
        return passed

    def report(self) -> str:
        return f"Synchronize (sync): mode={self.mode}, state={self.settings['s']}"


_opts = [ArgDef("m", ENUM, required=True, convert=True, enums=MODES),
         ArgDef("s", STRING, required=True, size=STATE_NAME_LENGTH)]
_opts += [ArgDef(name, STRING, required=True, member="s", tag="m", choice=v,
                 size=STATE_NAME_LENGTH) for name, v in MODES]
PLUGIN = Plugin("sync", tuple(_opts), {"m": 0, "s": ""}, SyncFilter)
