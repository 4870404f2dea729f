"""The "Async Soft Channel" output device supports (devAoSoftCallback.c and its siblings).

Through a CA link the write is a put with completion (dbPutLinkAsync -> dbCaPutLinkCallback):
the record stays active (PACT) until the server reports the put done, then completes (monitors,
FLNK, and a ``caput -c`` waiting on it). A put that cannot be queued (link disconnected, no write
access) raises LINK/INVALID and the record completes at once. Through a DB or constant link
(no lset putAsync) it is the plain "Soft Channel" write. "Soft Channel" itself never waits: its
CA puts are fire-and-forget (dbCaPutLink), whoever processed the record.

Registered for ao, bo, mbbo, longout, stringout, calcout, int64out and mbboDirect, after every
support of :mod:`ioc.devsup` (so "Soft Channel" stays DTYP 0); a registration that another
module made with the synchronous stand-in (``SoftOutput``) is replaced, keeping its place.
"""
from __future__ import annotations

from .. import devsup as _devsup  # noqa: F401  (Soft Channel registered first)
from ..devsup.registry import choices, lookup, register
from ..devsup.soft import SoftOutput

_ASYNC = "Async Soft Channel"
_TYPES = ("ao", "bo", "mbbo", "longout", "stringout", "calcout", "int64out", "mbboDirect")
_VALUE_FIELD = {"ao": "OVAL", "calcout": "OVAL"}


class AsyncSoftOutput(SoftOutput):
    """devXxSoftCallback's write_xx (see the module docstring)."""

    def write(self) -> None:
        rec = self.record
        if rec.f["PACT"]:
            return                      # the completion's second pass: nothing more to send
        link = rec.links.get(rec.io_link)
        put_async = getattr(link, "put_value_async", None)
        if put_async is None:
            super().write()             # S_db_noLSET: dbPutLink
            return
        if put_async(rec, rec.f[_VALUE_FIELD.get(rec.rtype, "VAL")], rec.complete_async):
            rec.f["PACT"] = 1


for _rt in _TYPES:
    _found = lookup(_rt, _ASYNC)
    if "Soft Channel" in choices(_rt) and (_found is None or _found[0] is SoftOutput):
        register(_rt, _ASYNC, AsyncSoftOutput)
