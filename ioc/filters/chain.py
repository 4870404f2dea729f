"""A channel's filter chain: built once per client channel, run on every update and get.

The order of the filters is the order in the name; as dbChannelOpen does, each filter is
offered the pre-event-queue chain first (all filters in order), then the post chain, and a
type probe records how the chain changes what the channel serves (``final_dbf``,
``final_count``: dbChannelFinalFieldType/FinalElements).
"""
from __future__ import annotations

from typing import Any

from .fieldlog import FieldLog
from . import arr, dbnd, dec, sync, ts, utag
from ._base import FieldInfo, Filter, FilterError, Now, Probe, export_dbf
from ._chf import ChfError, Plugin

#: The filters a name may use (dbRegisterFilter), by exact name.
PLUGINS: dict[str, Plugin] = {m.PLUGIN.name: m.PLUGIN for m in (arr, dbnd, dec, sync, ts, utag)}


class FilterChain:
    """The filters of one client channel (dbChannel) and their state.

    ``pre(fl)``: run when the record posts the field, once per subscription of this channel
    (dbChannelRunPreChain in db_post_events; also for the initial update of a subscription,
    whose mask is the subscription's whole mask). ``post(fl)``: run when the update is taken
    off the queue to be sent (dbChannelRunPostChain in event_read). ``read(fl)``: a get
    (rsrv read_action): both chains on a read log (mask 0). Each returns the log to use, or
    None for dropped. For ``read``, None means what it means in base: send the *plain field
    value* as if the channel had no filters (rsrv passes a NULL log to dbGet) — with dbnd on a
    scalar this is every get; sync, dec and utag never drop gets.

    State (dbnd's last value, sync's held update and last state, dec's counter, utag's first
    flag) is per chain, i.e. per channel, shared by all its subscriptions as in base. Logs
    passed in are never changed (a filter that changes something returns a copy); a returned
    log may be the caller's own object, or one handed in earlier (sync before/last). Not
    thread-safe: call ``pre`` and ``read`` of one chain from one thread at a time (base runs
    the pre chain under the record lock).
    """

    def __init__(self, filters: list[Filter], pre: list[Filter], post: list[Filter],
                 final_dbf: str, final_count: int):
        self.filters = filters
        self.pre_chain = pre
        self.post_chain = post
        self.final_dbf = final_dbf
        self.final_count = final_count

    def pre(self, fl: FieldLog) -> FieldLog | None:
        for f in self.pre_chain:
            fl = f.pre(fl, False)
            if fl is None:
                return None
        return fl

    def post(self, fl: FieldLog) -> FieldLog | None:
        for f in self.post_chain:
            fl = f.post(fl, False)
            if fl is None:
                return None
        return fl

    def read(self, fl: FieldLog) -> FieldLog | None:
        for f in self.pre_chain:
            fl = f.pre(fl, True)
            if fl is None:
                return None
        for f in self.post_chain:
            fl = f.post(fl, True)
            if fl is None:
                return None
        return fl

    def report(self) -> list[str]:
        """The filters as dbChannelShow prints them (channel_report lines)."""
        return [f.report() for f in self.filters]

    def __repr__(self) -> str:
        return (f"FilterChain({[f.name for f in self.filters]}, final={self.final_dbf}"
                f"[{self.final_count}])")


def build_chain(filters: list[tuple[str, dict[str, Any]]], info: FieldInfo, *,
                now: Now) -> FilterChain | None:
    """The chain for ``filters`` (``ChannelName.filters``) on the field ``info``; None when
    there are no filters. ``now()`` gives the current EPICS-epoch time (sec, nsec) for ``ts``.
    Raises FilterError where dbChannelCreate/Open fail and parse_channel_name could not know:
    a sync state that does not exist, settings that are not a filter's."""
    if not filters:
        return None
    where = f"{info.name}: " if info.name else ""
    built: list[Filter] = []
    for name, settings in filters:
        plugin = PLUGINS.get(name)
        if plugin is None:
            raise FilterError(f"{where}Channel filter '{name}' not found")
        try:
            struct = plugin.from_public(settings)
            built.append(plugin.factory(plugin.public(struct), info, now))
        except (ChfError, FilterError) as exc:
            raise FilterError(f"{where}{exc}") from None
    probe = Probe(export_dbf(info.dbf), info.nelm)
    pre = [f for f in built if f.register_pre(probe)]
    post = [f for f in built if f.register_post(probe)]
    return FilterChain(built, pre, post, probe.dbf, probe.count)
