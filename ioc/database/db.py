"""The IOC's record database: loading .db/.substitutions files, iocInit, and the loop bridge.

Loading is atomic per file: every record and field of a file is checked (record type, field
name, field value for its type or menu, duplicate record of another type) before anything is
applied, so a bad file changes nothing and the error names ``file:line``.

``ioc_init()`` resolves links, attaches device support and runs ``init_record``; every problem
is collected and reported at once (``file:line: record NAME: ...``) and the IOC does not start.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import logging
import os
import sys
import threading
from typing import Any, Callable

from ..access.runtime import AccessSecurity, AcfLoadError
from ..caclient import CaLinkClient
from ..putlog.core import PutLog
from ..records.base import Record
from ..records.breaktable import BrkTable, make_table
from ..records.errors import RecordInitError, RecordInitReport
from ..records.constants import Stat
from ..records.fields import LINK_TYPES, FieldValueError
from ..records.links import InstioLink, LinkError, parse_link
from ..records.registry import RECORD_TYPES
from ..scan import Scanner
from ..timesrc import OsClock, TimeSource
from .errors import DbLoadError
from .parser import AliasDef, RecordDef, parse_db_file

log = logging.getLogger(__name__)

# dbLexRoutines.c dbRecordNameValidate: these characters refuse a record/alias name; a
# name beginning with one of _NAME_WARN_FIRST or holding a control character only warns.
_NAME_BAD = frozenset(" \t\"'.$")
_NAME_WARN_FIRST = frozenset("-+[{")


def _validate_name(name: str, filename: str, lineno: int) -> None:
    """Refuse (DbLoadError) or warn about (stderr) a record or alias name as base does."""
    if not name:
        raise DbLoadError(filename, lineno, "record/alias name can't be empty")
    if name[0] in _NAME_WARN_FIRST:
        print(f"Warning: Record/Alias name {name!r} should not begin with {name[0]!r}",
              file=sys.stderr)
    for c in name:
        if c in _NAME_BAD:
            raise DbLoadError(filename, lineno, f"bad record name {name!r} (character {c!r})")
        if c < " ":
            print(f"Warning: Record/Alias name {name!r} should not contain non-printable "
                  f"0x{ord(c):02x}", file=sys.stderr)


class IocInitError(Exception):
    """iocInit found problems; ``str()`` lists them, one ``file:line: ...`` per line."""


def parse_macros(macros: str | dict[str, str] | None) -> dict[str, str]:
    """``"A=1,B=2"`` -> {"A": "1", "B": "2"} (epicsmacrolib's macParseDefns)."""
    if not macros:
        return {}
    if isinstance(macros, dict):
        return dict(macros)
    from epicsmacrolib import macros_from_string
    out = {}
    for k, v in macros_from_string(macros).items():
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        out[k] = v
    return out


#: menuPini indices (base.dbd): when a record is processed at start-up
_PINI_YES, _PINI_RUN, _PINI_RUNNING = 1, 2, 3


class Database:
    """All records of one IOC plus the machinery that runs them."""

    def __init__(self, time_source: TimeSource | None = None):
        self.records: dict[str, Record] = {}
        self.aliases: dict[str, Record] = {}
        # The IOC (ioc.app) gives generalTime's registry; alone, a database uses the OS clock.
        self.time_source: TimeSource = time_source or OsClock()
        self.scanner = Scanner(self)
        self.initialized = False
        self.running = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: threading.Thread | None = None
        self._after_init: list[tuple[Record, bool]] = []
        self.loaded_files: list[str] = []
        # Counts field puts (dbPut) of every record: what a put may change (units, limits,
        # state strings...) is unchanged while this is, so readers may cache it.
        self.put_count = 0
        # dbCa: the channels of the CA links, started and stopped with the database.
        self.ca_links = CaLinkClient(self)
        # asLib/asDbLib: the access security file, its rules and clients (off without one)
        self.access = AccessSecurity(self)
        # caPutLog: a line per client put (off until caPutLogInit/caPutLogFile or a PutLog record)
        self.putlog = PutLog(self)
        self.breaktables: dict[str, BrkTable] = {}   # dbd breaktable()s by name

    # --------------------------------------------------------------- lookup
    def add_breaktables(self, tables: dict[str, list[float]]) -> None:
        """Register ``breaktable`` definitions (a Dbd's ``breaktables``); first one wins."""
        for name, points in tables.items():
            self.breaktables.setdefault(name, make_table(name, points))

    def find_breaktable(self, name: str):
        """The breakpoint table called ``name`` (a menuConvert choice), or None."""
        return self.breaktables.get(name)

    @staticmethod
    def device_choices(rtype: str) -> list[str]:
        """The DTYP menu of a record type: the device supports registered for it."""
        from ..devsup import registry
        return registry.choices(rtype)

    def lookup(self, name: str) -> Record | None:
        rec = self.records.get(name)
        return rec if rec is not None else self.aliases.get(name)

    def __len__(self) -> int:
        return len(self.records)

    # -------------------------------------------------------------- loading
    def load_records(self, path: str, macros: str | dict[str, str] | None = None,
                     search_path: list[str] | None = None) -> int:
        """dbLoadRecords: load one database file; returns the number of new records."""
        if self.initialized:
            raise DbLoadError(path, 0, "dbLoadRecords after iocInit is not supported")
        defs = parse_db_file(path, parse_macros(macros), search_path)
        n = self._apply(defs)
        self.loaded_files.append(path)
        return n

    def load_template(self, path: str, macros: str | dict[str, str] | None = None,
                      search_path: list[str] | None = None) -> int:
        """dbLoadTemplate: expand a substitutions file; each set loads its template."""
        if self.initialized:
            raise DbLoadError(path, 0, "dbLoadTemplate after iocInit is not supported")
        from .substitutions import parse_substitutions_file
        instances = parse_substitutions_file(path, parse_macros(macros))
        base = os.path.dirname(path)
        all_defs: list[RecordDef | AliasDef] = []
        for inst in instances:
            tpath = inst.template
            if not os.path.isabs(tpath) and not os.path.exists(tpath):
                cand = os.path.join(base, tpath)
                if os.path.exists(cand):
                    tpath = cand
            try:
                all_defs.extend(parse_db_file(tpath, inst.macros, search_path))
            except DbLoadError as exc:
                if exc.lineno == 0 and exc.filename == tpath:
                    raise DbLoadError(inst.filename, inst.lineno, f"template {inst.template!r}: "
                                      f"{exc.message}") from None
                raise
        n = self._apply(all_defs)
        self.loaded_files.append(path)
        return n

    def _apply(self, defs: list[RecordDef | AliasDef]) -> int:
        """Check every definition, then apply them all (or nothing)."""
        new: dict[str, Record] = {}
        new_aliases: dict[str, Record] = {}
        edits: list[tuple[Record, str, Any]] = []
        extra: list[tuple[Record, RecordDef]] = []

        def find(name: str) -> Record | None:
            return new.get(name) or new_aliases.get(name) or self.lookup(name)

        for d in defs:
            if isinstance(d, AliasDef):
                rec = find(d.record)
                if rec is None:
                    raise DbLoadError(d.filename, d.lineno, f"alias: record {d.record!r} not found")
                self._check_new_name(d.alias, d.filename, d.lineno, find)
                new_aliases[d.alias] = rec
                continue
            rec = find(d.name)
            if d.rtype == "*":
                if rec is None:
                    raise DbLoadError(d.filename, d.lineno,
                                      f"record(\"*\", \"{d.name}\"): no such record to modify")
            elif rec is not None:
                if rec.rtype != d.rtype:
                    raise DbLoadError(d.filename, d.lineno,
                                      f"record {d.name!r} already defined with type "
                                      f"{rec.rtype!r}, not {d.rtype!r}")
            else:
                cls = RECORD_TYPES.get(d.rtype)
                if cls is None:
                    hint = difflib.get_close_matches(d.rtype, RECORD_TYPES, 1)
                    raise DbLoadError(d.filename, d.lineno, f"unknown record type {d.rtype!r}"
                                      + (f"; did you mean {hint[0]!r}?" if hint else ""))
                self._check_record_name(d)
                rec = cls(d.name, self)
                rec.origin = (d.filename, d.lineno)
                new[d.name] = rec
            for fd in d.fields:
                if not rec.has_field(fd.name):
                    hint = difflib.get_close_matches(fd.name, list(rec.spec.fields), 1)
                    raise DbLoadError(fd.filename, fd.lineno,
                                      f"record type {rec.rtype} has no field {fd.name!r}"
                                      + (f"; did you mean {hint[0]!r}?" if hint else ""))
                if fd.name == "NAME":
                    raise DbLoadError(fd.filename, fd.lineno, "field NAME cannot be set")
                try:
                    if rec.name in new:
                        rec.set_from_text(fd.name, fd.value)   # builds up the new record
                    else:
                        edits.append((rec, fd.name, rec.coerce_field(fd.name, fd.value, True)))
                    if fd.name == "VAL":
                        # dbPutString: a VAL given in the database, even "", defines the
                        # record (UDF 0)
                        if rec.name in new:
                            rec.f["UDF"] = 0
                        else:
                            edits.append((rec, "UDF", 0))
                except FieldValueError as exc:
                    raise DbLoadError(fd.filename, fd.lineno,
                                      f"can't set \"{d.name}.{fd.name}\" to {fd.value!r}: {exc}")
            extra.append((rec, d))
            for alias, lineno in d.aliases:
                self._check_new_name(alias, d.filename, lineno, find)
                new_aliases[alias] = rec
        # Everything checked: apply.
        self.records.update(new)
        self.aliases.update(new_aliases)
        for rec, fname, value in edits:
            rec.f[fname] = value
        for rec, d in extra:
            for info in d.infos:
                rec.infos[info.name] = info.value
        for alias, rec in new_aliases.items():
            rec.aliases.append(alias)
        return len(new)

    @staticmethod
    def _check_record_name(d: RecordDef) -> None:
        if "$(" in d.name or "${" in d.name:
            raise DbLoadError(d.filename, d.lineno, f"undefined macro in record name {d.name!r}")
        _validate_name(d.name, d.filename, d.lineno)

    @staticmethod
    def _check_new_name(name: str, filename: str, lineno: int, find) -> None:
        _validate_name(name, filename, lineno)
        if find(name) is not None:
            raise DbLoadError(filename, lineno, f"alias {name!r}: name already in use")

    # -------------------------------------------------------------- iocInit
    def ioc_init(self) -> None:
        """Resolve links, attach device support, init_record (pass 0, dset, pass 1), build scan
        lists. Raises IocInitError listing every problem; the database is then unusable."""
        from ..devsup import DevSupError, lookup
        errors: list[str] = []

        def err(rec: Record, msg: str) -> None:
            fname, line = rec.origin
            errors.append(f"{fname}:{line}: record {rec.name}: {msg}")

        def report(rec: Record, exc: RecordInitReport) -> None:
            fname, line = rec.origin
            print(f"ERROR {fname}:{line}: record {rec.name}: {exc}", file=sys.stderr, flush=True)

        # As iocInit: the initial UDF severity of every record (before any init_record can
        # define its value), init_record pass 0 of all records, links and device support
        # of all, then pass 1 of all (device support's init_record runs before it here).
        autosave = getattr(self, "autosave", None)     # ioc.autosave.runtime, if used
        if autosave is not None:
            autosave.restore(0)     # autosave's initHookAfterInitDevSup: before init_record
        for rec in self.records.values():
            rec.f["PACT"] = 0
            if rec.f["UDF"] and rec.f["STAT"] == Stat.UDF:
                rec.f["SEVR"] = rec.f["UDFS"]
        stage: list[Record] = []
        for rec in self.records.values():
            try:
                rec.init_record(0)
                stage.append(rec)
            except RecordInitReport as exc:
                report(rec, exc)
                stage.append(rec)
            except (LinkError, DevSupError, RecordInitError, FieldValueError) as exc:
                err(rec, str(exc))
        linked: list[Record] = []
        for rec in stage:
            try:
                self._make_links(rec)
                if rec.io_link:
                    name = rec.dtyp_name()
                    found = lookup(rec.rtype, name)
                    if found is None:
                        raise DevSupError(f"no device support for DTYP {name!r}")
                    cls, link_type = found
                    link = rec.links.get(rec.io_link) if rec.io_link else None
                    if link_type == "INST_IO" and not str(rec.f[rec.io_link]).strip():
                        # dbInitRecordLinks: a link never set takes the device's link type,
                        # an INST_IO one with an empty string
                        link = rec.links[rec.io_link] = InstioLink("@")
                        rec.f[rec.io_link] = "@"        # dbGetString of it reads "@"
                    if link_type == "INST_IO" and not isinstance(link, InstioLink):
                        raise DevSupError(f"DTYP {name!r} needs an INST_IO link "
                                          f"({rec.io_link} \"@...\"), got {rec.f[rec.io_link]!r}")
                    if rec.io_link:
                        rec.dset = cls(rec)
                linked.append(rec)
            except (LinkError, DevSupError, RecordInitError, FieldValueError) as exc:
                err(rec, str(exc))
        ok: list[Record] = []
        for rec in linked:
            try:
                if rec.dset is not None:
                    rec.before_dset_init()
                    rec.dset.init_record()
                rec.init_record(1)
                ok.append(rec)
            except RecordInitReport as exc:
                report(rec, exc)
                ok.append(rec)
            except (LinkError, DevSupError, RecordInitError, FieldValueError) as exc:
                err(rec, str(exc))
        if autosave is not None and not errors:
            autosave.restore(1)     # initHookAfterInitDatabase: after init_record
        for rec in ok:
            try:
                self.scanner.add(rec)
            except ValueError as exc:
                err(rec, str(exc))
        if errors:
            raise IocInitError("\n".join(errors))
        try:
            # iocBuild's asInit: a bad access security file stops the start
            self.access.start()
        except AcfLoadError as exc:
            raise IocInitError(str(exc)) from None
        self.initialized = True
        for rec in ok:
            for fname, link in rec.links.items():
                link.install(rec, fname)

    def _make_links(self, rec: Record) -> None:
        for fname, fs in rec.spec.fields.items():
            if fs.dbf in LINK_TYPES and rec.f.get(fname, "").strip():
                try:
                    rec.links[fname] = parse_link(rec.f[fname], self.lookup, fs.dbf)
                except LinkError as exc:
                    raise LinkError(f"{fname} {rec.f[fname]!r}: {exc}") from None

    def check_link_put(self, rec: Record, fname: str, text: str) -> None:
        """dbPutFieldLink's dbCanSetLink, before anything changes: an INST_IO address
        ("@...") only where the device support (of the INP/OUT field) takes INST_IO, and
        no other link type there; a link field without device support takes no INST_IO.
        Raises PutError."""
        from ..devsup import lookup
        from ..records.base import PutError
        expected = "CONSTANT"
        if fname == rec.io_link:
            found = lookup(rec.rtype, rec.dtyp_name())
            if found is not None:
                expected = found[1]
        ltype = "INST_IO" if str(text).lstrip().startswith("@") else "CONSTANT"
        if expected not in ("CONSTANT", "PV_LINK", "JSON_LINK"):
            ok = ltype == expected
        else:
            ok = ltype == "CONSTANT"
        if not ok:
            raise PutError(f"{rec.name}.{fname}: link type mismatch ({ltype} for a "
                           f"{expected} link): {text!r}")

    def relink(self, rec: Record, fname: str) -> None:
        """A link field was written at run time: re-parse it (Soft Channel links only)."""
        from ..records.base import PutError
        old = rec.links.pop(fname, None)
        if old is not None:
            old.uninstall()
        text = rec.f[fname].strip()
        if not text:
            return
        try:
            link = parse_link(text, self.lookup, rec.spec.fields[fname].dbf)
        except LinkError as exc:
            raise PutError(f"{rec.name}.{fname}: {exc}") from None
        rec.links[fname] = link
        link.install(rec, fname)

    def scan_once_after_init(self, rec: Record, cpp: bool) -> None:
        self._after_init.append((rec, cpp))

    async def start(self) -> None:
        """On the loop: process PINI records (PHAS order), CP initial scans, then start scans."""
        self.loop = asyncio.get_running_loop()
        self.running = True
        self._pini(_PINI_YES)           # iocBuild's initialProcess
        self._pini(_PINI_RUN)           # iocRun: initHookAtIocRun
        for rec, _cpp in self._after_init:
            self.scan_once(rec)
        self._after_init.clear()
        self.scanner.start()
        if getattr(self, "autosave", None) is not None:
            self.autosave.start()       # the save thread
        await self.ca_links.start()     # iocRun: dbCaRun after scanRun
        self._pini(_PINI_RUNNING)       # iocRun's last hook: initHookAfterIocRunning

    def _pini(self, pini: int) -> None:
        """piniProcess: process the records whose PINI is ``pini``, in PHAS order (records of
        one phase as base's iterateRecords: by record type name, then in load order).
        PAUSE/PAUSED would run at iocPause, which this IOC has not."""
        recs = [r for r in self.records.values() if r.f["PINI"] == pini]
        recs.sort(key=lambda r: (r.f["PHAS"], r.rtype))
        for rec in recs:
            rec.db_process()

    async def stop(self) -> None:
        if getattr(self, "autosave", None) is not None:
            await self.autosave.stop()  # save thread joined, a last save of changed sets
        self.running = False
        await self.scanner.stop()
        await self.ca_links.stop()      # iocShutdown: dbCaShutdown

    async def close(self) -> None:
        """After the CA server has stopped (no put can arrive): the control tokens' timers
        stop and the put log writes what it holds and closes its outputs."""
        self.access.stop()
        await asyncio.to_thread(self.putlog.close)

    # ------------------------------------------------------------ loop bridge
    def call_soon_threadsafe(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the IOC loop (from any thread). Dropped silently once stopped."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:       # loop closed between the check and the call (shutdown)
            pass

    def call_later(self, delay_s: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop after ``delay_s`` seconds (call from the loop thread)."""
        assert self.loop is not None
        self.loop.call_later(delay_s, fn)

    def scan_once(self, rec: Record) -> None:
        """scanOnce: process ``rec`` soon on the loop, after the current processing."""
        self.call_soon_threadsafe(rec.db_process)

    def run_sync(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run ``fn`` on the loop thread and return its result (for the shell thread).

        Before iocInit (or on the loop thread itself) ``fn`` runs directly.
        """
        loop = self.loop
        if loop is None or not self.running or threading.current_thread() is self.loop_thread:
            return fn()
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def wrapper() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                fut.set_exception(exc)
        loop.call_soon_threadsafe(wrapper)
        return fut.result(timeout_s)

    @staticmethod
    def thread_name() -> str:
        return threading.current_thread().name
