"""The field log: one value of one field as a subscription or a get sees it (db_field_log).

A :class:`FieldLog` is taken when a record posts a field (``db_post_events``) or when a client
reads it, and is what the channel filters (``ioc.filters``) pass along, change or drop
before the value is encoded for the client (``ioc.ca.dbr``).

As in EPICS base (dbEvent.c, ``db_create_event_log``):

* a scalar field is copied into the log at post time (``value`` holds it), so every queued
  update keeps the value it had when it was posted;
* an array field is *referenced*: ``value`` is None and the encoder reads the record's array
  when the update is sent, unless a filter (``arr``) made a copy, in which case ``value`` holds
  a 1-D numpy array.

``dbf`` is the DBF type of ``value`` (a filter such as ``ts`` with an output option changes it);
``count`` is the number of elements the log holds (1 for a scalar). ``mask`` is the DBE_* set of
the post (0 for a read).
"""
from __future__ import annotations

from typing import Any


class FieldLog:
    """One sample of a field: value (or None = read the record's array), alarm, time, mask."""

    __slots__ = ("value", "dbf", "count", "stat", "sevr", "time", "mask", "amsg", "utag", "enc")

    def __init__(self, value: Any, dbf: str, count: int, stat: int, sevr: int,
                 time: tuple[int, int], mask: int = 0, amsg: str = "", utag: int = 0):
        self.value = value
        self.dbf = dbf
        self.count = count
        self.stat = stat
        self.sevr = sevr
        self.time = time
        self.mask = mask
        self.amsg = amsg
        self.utag = utag
        self.enc = None     # the CA layer's cache of this log's last encoding
    def copy(self) -> "FieldLog":
        return FieldLog(self.value, self.dbf, self.count, self.stat, self.sevr, self.time,
                        self.mask, self.amsg, self.utag)

    def __repr__(self) -> str:
        v = "<ref>" if self.value is None else repr(self.value)
        return (f"FieldLog({v}, {self.dbf}, n={self.count}, stat={self.stat}, "
                f"sevr={self.sevr}, time={self.time}, mask={self.mask})")
