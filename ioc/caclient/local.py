"""The channel of a CA link to a field of this IOC: base's dbContext, in-process.

Base reaches a name of its own IOC through libca's local service, not the network: the
channel connects at once, its monitor is a database event on the field (value and alarm
posts), and a put is a dbPutField made later by the dbCa task (with dbPutNotify for a
put-callback). Here the monitor is a listener of the field (run inside the post, so it takes
the value, alarm and time stamp of that post), and a put runs on the next loop turn.
"""
from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any, Callable

from ..records.base import PutError, PutNotify
from ..records.constants import DBE_ALARM, DBE_VALUE
from ..records.fields import LINK_TYPES
from ..records.links import link_text
from .types import native_of

if TYPE_CHECKING:
    from ..records.base import Record
    from ..records.calink import CaLink

log = logging.getLogger(__name__)


class LocalChannel:
    """A CA link's channel on ``record.field`` of this IOC (see the module docstring)."""

    def __init__(self, link: "CaLink", record: "Record", field: str):
        self.link = link
        self.record = record
        self.field = field
        self.is_array = field == "VAL" and hasattr(record, "array")
        self.native = "DBF_STRING" if field == "RTYP" else native_of(record.field_type(field))
        self.want_str = False
        self.opened = False
        self._pending: list[Callable[[], None]] = []    # put-callbacks not yet completed

    def _count(self) -> int:
        if not self.is_array:
            return 1
        cap = getattr(self.record, "capacity", None)
        return cap() if cap is not None else self.record.f["NELM"]

    def open(self) -> None:
        """Connect (at once: the record is here), read the attributes, send the first
        monitor value as a new subscription does."""
        rec, link = self.record, self.link
        rec.listeners.setdefault(self.field, []).append(self._on_post)
        self.opened = True
        link.connection(True, self.native, self._count(), True, True)
        if self.native != "DBF_STRING":
            link.attributes(rec.metadata(self.field))
        if link.in_native:
            self._deliver(False)
        if self.want_str:
            self._deliver(True)

    def _value(self) -> Any:
        rec, fld = self.record, self.field
        if fld == "RTYP":
            return rec.rtype
        if self.is_array:
            return list(rec.array())
        v = rec.f[fld]
        if rec.spec.fields[fld].dbf in LINK_TYPES:
            return link_text(v, rec.spec.fields[fld].dbf)
        return v

    def _deliver(self, as_string: bool) -> None:
        rec = self.record
        v = self._value()
        if as_string:
            v = rec.enum_string(self.field, v) if isinstance(v, int) else str(v)
        self.link.update(v, rec.f["STAT"], rec.f["SEVR"], rec.time, as_string)

    def _on_post(self, mask: int) -> None:
        if not mask & (DBE_VALUE | DBE_ALARM):
            return
        if self.link.in_native:
            self._deliver(False)
        if self.want_str:
            self._deliver(True)

    def want_string(self) -> None:
        if not self.want_str:
            self.want_str = True
            if self.opened:
                self._deliver(True)

    def put(self, value: Any, done: Callable[[], None] | None) -> bool:
        # later, as the dbCa task would: the writer's processing finishes first
        if isinstance(value, list) and not self.is_array:
            value = value[0] if value else 0
        if done is not None:
            self._pending.append(done)
        self.record.db.call_soon_threadsafe(lambda: self._do_put(value, done))
        return True

    def _do_put(self, value: Any, done: Callable[[], None] | None) -> None:
        if not self.opened:
            return                     # closed meanwhile: close() ran ``done``
        rec = self.record
        notify = PutNotify(rec.db.loop) if done is not None else None
        try:
            rec.put_and_process(self.field, value, notify)
        except PutError as exc:
            log.warning("DB CA Link Exception: put to %s.%s failed: %s", rec.name, self.field,
                        exc)
        if notify is None:
            return
        notify.check()
        notify.future.add_done_callback(lambda _f: self._complete(done))

    def _complete(self, done: Callable[[], None]) -> None:
        if done in self._pending:
            self._pending.remove(done)
            done()

    def host(self) -> str:
        return socket.gethostname()

    def close(self) -> None:
        if self.opened:
            ls = self.record.listeners.get(self.field, [])
            if self._on_post in ls:
                ls.remove(self._on_post)
        self.opened = False
        waiting, self._pending = self._pending, []
        for done in waiting:           # dbCa calls a pending put-callback exactly once
            done()

