"""Autosave at run time, per database (``db.autosave``, made by :func:`autosave_of`).

What synApps autosave's ``save_restore.c``/``dbrestore.c`` do, on this IOC's database:

* Restore (``reboot_restore``): the files of ``set_pass0_restoreFile`` are restored by
  ``Database.ioc_init`` before any ``init_record`` (autosave's initHookAfterInitDevSup),
  those of ``set_pass1_restoreFile`` after every ``init_record`` (initHookAfterInitDatabase).
  A relative file name is looked up in the ``set_savefile_path`` directory.  The file is
  chosen as ``fopen_and_check`` does (:func:`ioc.autosave.files.choose_restore_file`:
  ``.sav``, else ``.savB``, else a sequence file) and a line says which one and why.
  Scalars are written as text into the field with the database's load-time conversion
  (``dbPutString``: no processing, no posts; a ``VAL`` clears ``UDF``); menus and enums
  are their index; link fields only in pass 0; arrays (``@array@``) only in pass 1, as
  ``SR_put_array_values``.  A PV that is not in the database, or a value the field
  refuses, is reported and skipped; a restore is never fatal.
* Save sets (``create_monitor_set``, ``create_periodic_set``, ``create_manual_set``): the
  request file is read with :func:`ioc.autosave.files.read_request_file` on the
  ``set_requestfile_path`` directories; the save file is the request file's name with
  ``.sav`` in the save-file directory.  One save thread per database ("autosave") looks
  every second (autosave's ``MIN_DELAY``): a monitor set is saved when one of its fields
  was posted (a value change, as a CA monitor of autosave sees it) and ``period`` seconds
  have passed since its last save; a periodic set every ``period`` seconds; periods below
  autosave's ``MIN_PERIOD`` (4 s) are raised to it.  ``manual_save`` saves a set at once.
  Values are read on the IOC loop (``Database.run_sync``); files are written by the save
  thread (or the shell's, for ``manual_save``) with :func:`ioc.autosave.files.atomic_save`,
  plus the sequence files (``NAME.sav0..2``, every 60 s).
* At the IOC's stop (``Database.stop``): the thread is stopped and joined, then every
  monitor set with unsaved changes is saved once more.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from ..records.fields import ENUM_TYPES, LINK_TYPES
from .files import (RequestFilePath, SaveEntry, SequenceFiles, atomic_save,
                    choose_restore_file, concatenate_paths, format_double, format_float,
                    format_save_file, read_request_file, read_save_file, save_file_name)

if TYPE_CHECKING:
    from ..database.db import Database
    from ..records.base import Record

MIN_PERIOD = 4      # save_restore.c: no set is saved more often than every 4 seconds
MIN_DELAY = 1.0     # save_restore.c: the save task looks every second
_DBE_VALUE, _DBE_LOG = 1, 2

MONITOR, PERIODIC, MANUAL = "monitor", "periodic", "manual"


def autosave_of(db: "Database") -> "Autosave":
    """The database's autosave state, made on first use."""
    a = getattr(db, "autosave", None)
    if a is None:
        a = Autosave(db)
        db.autosave = a
    return a


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _array_field(rec: "Record", fname: str) -> bool:
    return fname == "VAL" and hasattr(rec, "array")


def field_text(rec: "Record", fname: str):
    """A field's value as autosave writes it: ``%.14g`` doubles, ``%.7g`` floats, menu and
    enum indices, strings as they are; a list of element texts for an array (on the loop)."""
    dbf = rec.field_type(fname)
    if _array_field(rec, fname):
        values = list(rec.array())
    else:
        values = None
        v = rec.f.get(fname)

    def one(x) -> str:
        if dbf == "DBF_DOUBLE":
            return format_double(float(x))
        if dbf == "DBF_FLOAT":
            return format_float(float(x))
        if dbf in ENUM_TYPES:
            return str(int(x))
        if isinstance(x, bytes):
            return x.decode("latin-1")
        if isinstance(x, str):
            return x
        try:
            return str(int(x))
        except (TypeError, ValueError):
            return str(x)
    if values is not None:
        return [one(x) for x in values]
    return one(v)


@dataclass
class SaveSet:
    """One request file and how it is saved."""
    reqfile: str
    method: str
    period: float
    macros: str
    sav_path: str
    pvs: list[str]
    do_backups: bool = True
    dirty: bool = True              # autosave's monitors all fire once when they connect
    last_save: float = 0.0          # time.monotonic() of the last save (or of the start)
    last_save_wall: float = 0.0
    saves: int = 0
    status: str = "No status"
    not_found: list[str] = field(default_factory=list)
    seq: Optional[SequenceFiles] = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _hooks: list[tuple["Record", str, Callable[[int], None]]] = field(default_factory=list)


@dataclass
class RestoreFile:
    name: str
    macros: str
    status: str = "No status"
    path: str = ""


class Autosave:
    """set_savefile_path/..., the restore passes and the save thread of one database."""

    def __init__(self, db: "Database") -> None:
        self.db = db
        self.savefile_path = ""
        self.req_path = RequestFilePath()
        self.restore_files: dict[int, list[RestoreFile]] = {0: [], 1: []}
        self.sets: list[SaveSet] = []
        self.num_seq_files = 3
        self.seq_period = 60.0
        self.incomplete_sets_ok = True
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ settings
    def set_savefile_path(self, path: str, sub: str = "") -> bool:
        full = concatenate_paths(path or "", sub or "")
        if not full:
            return False
        self.savefile_path = full
        return True

    def save_path_of(self, name: str) -> str:
        """The file ``name`` in the save-file directory (an absolute name is kept)."""
        if os.path.isabs(name) or not self.savefile_path:
            return name
        return concatenate_paths(self.savefile_path, name)

    def add_restore_file(self, pass_: int, name: str, macros: str = "") -> None:
        self.restore_files[pass_].append(RestoreFile(name, macros or ""))

    # ------------------------------------------------------------- restore
    def restore(self, pass_: int) -> None:
        """Restore every file of ``pass_`` (0: before init_record, 1: after); never raises."""
        for rf in self.restore_files.get(pass_, []):
            try:
                self._restore_file(pass_, rf)
            except Exception as exc:    # noqa: BLE001 - a restore is never fatal
                rf.status = f"Failed: {exc}"
                _err(f"autosave: pass {pass_} restore of '{rf.name}' failed: {exc}")

    def _restore_file(self, pass_: int, rf: RestoreFile) -> None:
        path = self.save_path_of(rf.name)
        rf.path = path
        choice = choose_restore_file(path, self.num_seq_files)
        if choice.path is None:
            why = "; ".join(f"{os.path.basename(p)}: {v}" for p, v in choice.tried)
            rf.status = "Can't open save file."
            _err(f"autosave: pass {pass_}: no file to restore '{path}' from ({why}); "
                 "nothing restored")
            return
        why = dict(choice.tried)[choice.path]
        if choice.kind == "sav":
            _out(f"autosave: pass {pass_}: restoring from '{choice.path}' ({why})")
        else:
            rejected = "; ".join(f"'{os.path.basename(p)}' {v}" for p, v in choice.tried
                                 if p != choice.path)
            what = "backup" if choice.kind == "savB" else "sequence file"
            _out(f"autosave: pass {pass_}: restoring from {what} '{choice.path}' ({why}), "
                 f"because {rejected}")
        contents = read_save_file(choice.path, rf.macros, self.incomplete_sets_ok)
        for p in contents.problems:
            _err(f"autosave: {choice.path}: {p}")
        done = failed = 0
        for entry in contents.entries:
            msg = self._restore_entry(pass_, entry)
            if msg is None:
                done += 1
            elif msg:
                failed += 1
                _err(f"autosave: {choice.path}:{entry.line}: {entry.pv}: {msg}; skipped")
        rf.status = "Ok" if not failed and choice.kind == "sav" else \
            ("Bad .sav(B) files; used seq. backup" if choice.warn else
             f"{failed} PV(s) not restored" if failed else "Used .savB")
        _out(f"autosave: pass {pass_}: {done} value(s) restored from '{choice.path}'"
             + (f", {failed} skipped" if failed else ""))

    def _restore_entry(self, pass_: int, entry: SaveEntry) -> Optional[str]:
        """Write one saved value; None when written, "" when not for this pass, else why."""
        name = entry.restore_name
        recname, _, fname = name.partition(".")
        if fname.endswith("$"):
            fname = fname[:-1]
        rec = self.db.lookup(recname)
        if rec is None:
            return "no such record"
        if not rec.has_field(fname):
            return f"record type {rec.rtype} has no field {fname}"
        dbf = rec.spec.fields[fname].dbf
        try:
            if entry.is_array or _array_field(rec, fname):
                if pass_ == 0:
                    return ""               # dbrestore.c: "No array write in pass 0"
                values = list(entry.value) if entry.is_array else [entry.value]
                new = rec.coerce_field(fname, values)
                store = getattr(rec, "store", None)
                if fname == "VAL" and store is not None:
                    store(new)
                else:
                    rec.f[fname] = new
            else:
                if dbf in LINK_TYPES and pass_ == 1:
                    return "a link field can't be restored in pass 1"
                if dbf == "DBF_NOACCESS" and fname not in rec.extra_fields():
                    return "field is not accessible"
                text = entry.value
                if dbf in ENUM_TYPES and dbf != "DBF_ENUM":
                    text = text.strip()       # dbPutMenuIndex(atol(value))
                rec.set_from_text(fname, text)
            if fname == "VAL":
                rec.f["UDF"] = 0          # dbPutString of VAL defines the record
        except Exception as exc:  # noqa: BLE001 - FieldValueError, PutError...: skip this one
            return f"can't restore {entry.value!r}: {exc}"
        return None

    # ------------------------------------------------------------ save sets
    def find_set(self, reqfile: str) -> Optional[SaveSet]:
        for s in self.sets:
            if s.reqfile == reqfile:
                return s
        return None

    def create_set(self, method: str, reqfile: str, period: float = 0.0,
                   macros: str = "") -> tuple[bool, list[str]]:
        """create_<method>_set: (made, messages)."""
        if not reqfile:
            return False, [f"create_{method}_set: a request file name is needed"]
        if self.find_set(reqfile) is not None:
            return False, [f"create_{method}_set: '{reqfile}' is already a save set"]
        req = read_request_file(reqfile, macros or "", self.req_path)
        msgs = list(req.messages)
        if not req.ok:
            return False, msgs + [f"create_{method}_set: no save set for '{reqfile}'"]
        period = max(float(period), MIN_PERIOD) if method != MANUAL else 0.0
        sav = self.save_path_of(save_file_name(os.path.basename(reqfile)))
        s = SaveSet(reqfile, method, period, macros or "", sav, list(req.pvs),
                    do_backups=req.do_backups)
        if req.status_fail:
            s.status = "Can't open .req file"
        if s.do_backups and self.num_seq_files:
            s.seq = SequenceFiles(sav, self.num_seq_files, self.seq_period, time.time())
        self.sets.append(s)
        if self.db.running:
            self.db.run_sync(lambda: self._hook_set(s))
            self._start_thread()
        return True, msgs

    def _resolve(self, pv: str) -> Optional[tuple["Record", str]]:
        recname, _, fname = pv.partition(".")
        fname = (fname or "VAL").rstrip("$")
        rec = self.db.lookup(recname)
        if rec is None or not rec.has_field(fname):
            return None
        return rec, fname

    def _hook_set(self, s: SaveSet) -> None:
        """On the loop: a listener per monitored field marks the set dirty."""
        if s.method != MONITOR:
            return
        s.not_found = []
        for pv in s.pvs:
            found = self._resolve(pv)
            if found is None:
                s.not_found.append(pv)
                continue
            rec, fname = found

            def on_post(mask: int, s=s) -> None:
                if mask & (_DBE_VALUE | _DBE_LOG):
                    s.dirty = True
            rec.listeners.setdefault(fname, []).append(on_post)
            s._hooks.append((rec, fname, on_post))

    def _unhook_all(self) -> None:
        for s in self.sets:
            for rec, fname, fn in s._hooks:
                ls = rec.listeners.get(fname, [])
                if fn in ls:
                    ls.remove(fn)
            s._hooks.clear()

    def snapshot(self, s: SaveSet) -> str:
        """On the loop: the set's save-file text (unknown PVs as ``#NAME Not Connected``)."""
        entries, missing = [], 0
        for pv in s.pvs:
            found = self._resolve(pv)
            if found is None:
                entries.append(SaveEntry(pv, "Not Connected", valid=False))
                missing += 1
                continue
            rec, fname = found
            try:
                entries.append(SaveEntry(pv, field_text(rec, fname)))
            except Exception:             # noqa: BLE001 - one bad field, not the set
                entries.append(SaveEntry(pv, "Get failed", valid=False))
                missing += 1
        return format_save_file(entries, not_connected=missing)

    def save(self, s: SaveSet, text: Optional[str] = None) -> bool:
        """Read the set (on the loop, unless ``text`` is given) and write its file."""
        with s.lock:
            if text is None:
                s.dirty = False
                text = self.db.run_sync(lambda: self.snapshot(s))
            report = atomic_save(s.sav_path, text, backups=s.do_backups)
            for m in report.messages:
                _err(f"autosave: {m}")
            now = time.monotonic()
            s.last_save = now
            if report.ok:
                s.saves += 1
                s.last_save_wall = time.time()
                s.status = "Ok"
            else:
                s.status = "Write failed"
                s.dirty = True
            return report.ok

    def manual_save(self, reqfile: str) -> tuple[bool, str]:
        s = self.find_set(reqfile)
        if s is None:
            return False, f"manual_save: '{reqfile}' is not a save set"
        if not self.db.running:
            return False, "manual_save: the IOC is not running (iocInit first)"
        ok = self.save(s)
        return ok, f"manual_save: '{s.sav_path}' {'written' if ok else 'NOT written'}"

    # --------------------------------------------------------- save thread
    def start(self) -> None:
        """On the loop (Database.start): monitor listeners, then the save thread."""
        now = time.monotonic()
        for s in self.sets:
            s.last_save = now
            self._hook_set(s)
        if self.sets:
            self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="autosave", daemon=True)
        self._thread.start()

    def _due(self, s: SaveSet, now: float) -> bool:
        if s.method == PERIODIC:
            return now - s.last_save >= s.period
        if s.method == MONITOR:
            return s.dirty and now - s.last_save >= s.period
        return False

    def _run(self) -> None:
        while not self._stop.wait(MIN_DELAY):
            for s in list(self.sets):
                if self._stop.is_set():
                    break
                try:
                    if self._due(s, time.monotonic()):
                        self.save(s)
                    if s.seq is not None:
                        r = s.seq.maybe_write(time.time(), s.saves > 0)
                        if r is not None and not r[0]:
                            _err(f"autosave: {s.sav_path}: {r[1]}")
                except Exception as exc:      # noqa: BLE001 - the IOC stopping, a bad set
                    if self._stop.is_set() or not self.db.running:
                        break
                    _err(f"autosave: save of '{s.sav_path}' failed: {exc}")

    async def stop(self) -> None:
        """On the loop (Database.stop): stop and join the thread (the loop keeps running
        while it finishes a read), then save the monitor sets with unsaved changes."""
        self._stop.set()
        t = self._thread
        if t is not None:
            await asyncio.to_thread(t.join, 10.0)
            self._thread = None
        self._unhook_all()
        for s in self.sets:
            if s.method == MONITOR and s.dirty:
                s.dirty = False
                text = self.snapshot(s)
                await asyncio.to_thread(self.save, s, text)

    # ---------------------------------------------------------------- show
    def show(self, verbose: int = 0) -> list[str]:
        running = self._thread is not None and self._thread.is_alive()
        out = [f"save_restoreShow: save thread {'running' if running else 'not running'}",
               f"  save-file path: '{self.savefile_path}'",
               f"  request-file path: {' '.join(repr(d) for d in self.req_path.dirs) or '(none)'}"]
        for p in (0, 1):
            for rf in self.restore_files[p]:
                out.append(f"  pass {p} restore file '{rf.name}' "
                           f"(macros '{rf.macros}'): {rf.status}")
        for s in self.sets:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_save_wall)) \
                if s.saves else "never"
            per = f", period {s.period:g} s" if s.method != MANUAL else ""
            out.append(f"  {s.reqfile}: {s.method}{per}, {len(s.pvs)} PV(s) -> '{s.sav_path}'"
                       f", status '{s.status}', saved {s.saves} time(s), last {when}"
                       + (", changed since" if s.method == MONITOR and s.dirty else ""))
            if verbose:
                for pv in s.pvs:
                    out.append(f"    {pv}" + (" (not found)" if self._resolve(pv) is None
                                               else ""))
        return out
