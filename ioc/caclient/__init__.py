"""The CA link client of a database (base's dbCa task): the channels of its CA links.

Layering: the link's semantics live in the record layer (:class:`ioc.records.calink.CaLink`,
no network); this package gives each CA link its channel. The Database owns one
:class:`CaLinkClient` (``db.ca_links``) and starts and stops it with itself, as iocRun's
dbCaRun and iocShutdown's dbCaShutdown do: links installed at iocInit get their channels when
the database starts on its loop (after PINI and the scan start, so a PINI record reading a CA
link sees it disconnected, as in base), links installed later (a relink) at once.

A name of this IOC gets an in-process channel (:mod:`.local`, base's dbContext); any other a
network channel (:mod:`.remote`, caproto's asyncio client on the same loop). Threads: none; the
client's tasks run on the IOC loop and :meth:`CaLinkClient.stop` ends all of them.

Importing the package also registers the "Async Soft Channel" output device supports
(:mod:`.devsup`), which write through dbCaPutLinkCallback.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..records.calink import CaLink
from .local import LocalChannel
from .remote import RemoteChannel, RemoteContext
from . import devsup as _devsup  # noqa: F401  (registers "Async Soft Channel")

if TYPE_CHECKING:
    from ..database.db import Database

__all__ = ["CaLinkClient"]


class CaLinkClient:
    """The channels of one database's CA links (see the module docstring)."""

    def __init__(self, db: "Database"):
        self.db = db
        self.running = False
        self._remote = RemoteContext()
        self._channels: dict[CaLink, LocalChannel | RemoteChannel] = {}
        self._waiting: list[LocalChannel | RemoteChannel] = []

    def add(self, link: CaLink, name: str) -> LocalChannel | RemoteChannel:
        """dbCaAddLink: the channel of ``link`` to PV ``name`` (opened now if running)."""
        rec = link.local
        if rec is not None:
            fld = name.partition(".")[2] or "VAL"
            ch: LocalChannel | RemoteChannel = LocalChannel(link, rec, fld)
        else:
            ch = RemoteChannel(link, name, self._remote)
        self._channels[link] = ch
        if self.running:
            ch.open()
        else:
            self._waiting.append(ch)
        return ch

    def remove(self, link: CaLink, ch) -> None:
        """dbCaRemoveLink: close the channel of ``link``."""
        self._channels.pop(link, None)
        if ch in self._waiting:
            self._waiting.remove(ch)
        ch.close()

    def links(self) -> list[CaLink]:
        return list(self._channels)

    async def start(self) -> None:
        """dbCaRun (on the IOC loop): open the channels of the links installed so far."""
        self.running = True
        waiting, self._waiting = self._waiting, []
        for ch in waiting:
            ch.open()

    async def stop(self) -> None:
        """dbCaShutdown (on the IOC loop): close every channel, end every task of the client."""
        self.running = False
        for link in list(self._channels):
            link.uninstall()
        self._channels.clear()
        self._waiting.clear()
        await self._remote.close()
