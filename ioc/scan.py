"""Scanning: periodic scan lists, event scans, I/O Intr lists, PINI, scanOnce.

EPICS runs one thread per periodic rate; here each rate is an asyncio task on the IOC loop
(record processing never blocks, so a task per rate keeps the same ordering guarantees: records
of one rate are processed in PHAS order, one rate never delays its own next period beyond the
processing time, and periods are kept on an absolute schedule so they do not drift).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from .records.constants import SCAN_EVENT, SCAN_IO_INTR, SCAN_PERIODS_S

if TYPE_CHECKING:
    from .database.db import Database
    from .records.base import Record

log = logging.getLogger(__name__)


def event_name(text: str) -> str:
    """eventNameToHandle's key: blanks stripped; a number 0..255 (``"5"``, ``"5.0"``) names
    the numeric event ``"5"`` (0: none, ""), as base keeps numeric events compatible."""
    name = text.strip()
    try:
        num = float(name)
    except ValueError:
        return name
    return (str(int(num)) if num >= 1 else "") if 0 <= num < 256 else name


class IoScanList:
    """An I/O Intr scan list (scanIoInit/scanIoRequest).

    Device support creates one per source of interrupts and returns it from
    ``get_ioint_info()``; ``request()`` may be called from any thread and processes every record
    on the list, in PHAS order, on the IOC loop.
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.records: list["Record"] = []
        self._db: "Database | None" = None
        self._lock = threading.Lock()
        self.requests = 0

    def add(self, rec: "Record") -> None:
        with self._lock:
            self.records.append(rec)
            self.records.sort(key=lambda r: r.f["PHAS"])
            self._db = rec.db

    def remove(self, rec: "Record") -> None:
        with self._lock:
            if rec in self.records:
                self.records.remove(rec)

    def request(self) -> bool:
        """Process the list soon; thread-safe. False if nothing is listening yet."""
        db = self._db
        if db is None or not self.records or not db.running:
            return False
        self.requests += 1
        db.call_soon_threadsafe(self._scan)
        return True

    def scan_now(self) -> None:
        """Process the list now (on the loop thread; for device support that batches its
        hand-over to the loop itself)."""
        self.requests += 1
        self._scan()

    def _scan(self) -> None:
        with self._lock:
            recs = list(self.records)
        for rec in recs:
            rec.db_process()


class Scanner:
    """Owns the scan lists of one Database and their tasks."""

    def __init__(self, db: "Database"):
        self.db = db
        self.periodic: dict[float, list["Record"]] = {p: [] for p in SCAN_PERIODS_S.values()}
        self.events: dict[str, list["Record"]] = {}
        self._tasks: list[asyncio.Task] = []
        self.overruns: dict[float, int] = {p: 0 for p in SCAN_PERIODS_S.values()}

    # -- membership (called on the loop thread, or before the loop runs)
    def add(self, rec: "Record") -> None:
        scan = rec.f["SCAN"]
        if scan in SCAN_PERIODS_S:
            lst = self.periodic[SCAN_PERIODS_S[scan]]
            lst.append(rec)
            lst.sort(key=lambda r: r.f["PHAS"])
            rec.scan_key = ("periodic", SCAN_PERIODS_S[scan])
        elif scan == SCAN_EVENT:
            name = event_name(str(rec.f["EVNT"]))
            lst = self.events.setdefault(name, [])
            lst.append(rec)
            lst.sort(key=lambda r: r.f["PHAS"])
            rec.scan_key = ("event", name)
        elif scan == SCAN_IO_INTR:
            ioscan = rec.dset.get_ioint_info() if rec.dset is not None else None
            if ioscan is None:
                raise ValueError(f"{rec.name}: device support does not provide I/O Intr")
            ioscan.add(rec)
            rec.scan_key = ("ioint", ioscan)
        else:
            rec.scan_key = None

    def remove(self, rec: "Record") -> None:
        key = rec.scan_key
        if key is None:
            return
        kind, which = key
        if kind == "periodic":
            self.periodic[which].remove(rec)
        elif kind == "event":
            self.events[which].remove(rec)
        else:
            which.remove(rec)
        rec.scan_key = None

    def check_scan_change(self, rec: "Record", new_scan: int) -> None:
        """Refuse SCAN = I/O Intr for a record whose device support has no interrupt list."""
        if new_scan == SCAN_IO_INTR:
            if rec.dset is None or rec.dset.get_ioint_info() is None:
                raise ValueError("I/O Intr not supported by this record's device support")

    # -- events
    def post_event(self, name: str) -> int:
        """post_event / postEvent: process the records with SCAN=Event and EVNT=name.

        Call on the loop thread (use Database.call_soon_threadsafe from others). Returns the
        number of records processed.
        """
        recs = list(self.events.get(event_name(str(name)), ()))
        for rec in recs:
            rec.db_process()
        return len(recs)

    # -- periodic tasks
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for period in self.periodic:
            self._tasks.append(loop.create_task(self._run(period), name=f"scan{period}"))

    async def _run(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        recs = self.periodic[period]
        while True:
            next_t += period
            for rec in list(recs):
                try:
                    rec.db_process()
                except Exception:  # a record bug must not stop the scan thread
                    log.exception("%s: processing failed", rec.name)
            delay = next_t - loop.time()
            if delay < 0:
                # Overrun: skip the missed periods rather than bursting to catch up.
                self.overruns[period] += 1
                next_t = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
