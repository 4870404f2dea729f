"""Autosave's files on disk: atomic saves, the ``.savB`` backup, sequence files, and the
choice of the file to restore from.

The formats are in :mod:`ioc.autosave.reqfile` and :mod:`ioc.autosave.savfile` (their
public names are re-exported here).  What this module adds:

* :func:`atomic_save` writes ``NAME.sav`` as a temporary ``NAME.sav.tmp`` (write, flush,
  ``fsync``, checked for its ``<END>``), then renames it over ``NAME.sav`` and syncs the
  directory, so ``NAME.sav`` is always one complete save.  The previous good ``NAME.sav``
  becomes ``NAME.savB`` (a hard link, or a synced copy, renamed into place).  synApps
  autosave (``write_save_file``) instead rewrites ``NAME.sav`` in place and then copies it
  to ``NAME.savB``, after making sure a good ``.savB`` exists (a bad one is kept as
  ``NAME.savB_SBAD_<date>``); here too a missing or bad ``.savB`` is replaced, by the new
  save, so both files are good after the first save.
* :class:`SequenceFiles` is ``do_seq`` with its schedule (``save_restoreSet_NumSeqFiles``,
  0..10, default 3; ``save_restoreSet_SeqPeriodInSeconds``, at least 10, default 60): the
  task looks every half period; a copy of ``NAME.sav`` goes to ``NAME.sav<i>`` when a
  period has passed since the last one (or since the set was made), and only after a
  successful save; the first ``i`` is the oldest (or a missing) file, then ``i`` cycles.
* :func:`choose_restore_file` is ``fopen_and_check``: ``NAME.sav`` if trusted, else
  ``NAME.savB``, else the sequence file whose time is closest to now (``0`` if none
  exists) and the following ones in cyclic order (e.g. 1, 2, 0).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Optional

from ioc.autosave.reqfile import (RequestFilePath, RequestList, concatenate_paths,
                                  find_request_file, read_request_file, save_file_name)
from ioc.autosave.savfile import (SRVERSION, SaveEntry, SaveFileContents,
                                  check_restore_file, check_saved_file, date_string,
                                  format_double, format_float, format_save_file,
                                  parse_save_text)

__all__ = ["RequestFilePath", "RequestList", "RestoreChoice", "SRVERSION", "SaveEntry",
           "SaveFileContents", "SaveReport", "SequenceFiles", "atomic_save",
           "check_restore_file", "check_saved_file", "choose_restore_file",
           "concatenate_paths", "date_string", "find_request_file", "format_double",
           "format_float", "format_save_file", "parse_save_text", "read_request_file",
           "read_save_file", "save_file_name"]

FILE_MODE = 0o664   # save_restore.c file_permissions: rw-rw-r--


def _read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def read_save_file(path: str, macros: str = "",
                   incomplete_sets_ok: bool = True) -> SaveFileContents:
    """Check (``checkFile``) and read a save file.  An untrusted or unreadable file gives
    no entries, ``trusted`` False and the reason in ``reason`` and ``problems``."""
    data = _read_bytes(path)
    if data is None:
        return SaveFileContents(trusted=False, reason=f"Can't open file '{path}'.",
                                problems=[f"Can't open file '{path}'."])
    ok, why = check_restore_file(data)
    if not ok:
        return SaveFileContents(trusted=False, reason=why,
                                problems=[f"File '{path}' is not trusted: {why}"])
    out = parse_save_text(data.decode("latin-1"), macros, incomplete_sets_ok)
    out.reason = why
    return out


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _install_copy(src: str, dst: str) -> None:
    """Make ``dst`` a complete copy of ``src`` in one rename (a hard link when the file
    system has them, else a synced copy)."""
    tmp = dst + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    try:
        os.link(src, tmp)
    except OSError:
        with open(src, "rb") as f:
            _write_synced(tmp, f.read())
    os.replace(tmp, dst)


@dataclass
class SaveReport:
    """What :func:`atomic_save` did: ``ok`` (``NAME.sav`` holds the new save),
    ``backup`` (what happened to ``NAME.savB``: ``"previous"``, ``"new"`` or ``""``) and
    autosave-like messages."""
    ok: bool
    backup: str = ""
    messages: list[str] = field(default_factory=list)


def atomic_save(path: str, text: str, backups: bool = True, dated_bad_copies: bool = True,
                when: Optional[float] = None) -> SaveReport:
    """Write ``text`` (a whole save file, see :func:`format_save_file`) to ``path``
    atomically.  With ``backups`` (autosave's ``do_backups``), ``path + "B"`` keeps the
    previous good save (or this one, when there was none).  A crash at any point leaves
    ``path`` (and ``path + "B"``) holding complete saves, at worst plus a stale
    ``path + ".tmp"``, which is overwritten next time.  Never raises for I/O errors."""
    report = SaveReport(ok=False)
    data = text.encode("latin-1", "replace")
    tmp = path + ".tmp"
    backup = path + "B"
    try:
        _write_synced(tmp, data)
        if check_saved_file(_read_bytes(tmp)) != "ok":
            report.messages.append(f"save_restore:write_it: file-check failure for '{tmp}'")
            return report
        if backups and check_saved_file(_read_bytes(path)) == "ok":
            _install_copy(path, backup)
            report.backup = "previous"
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
    except OSError as e:
        report.messages.append(f"save_restore:write_save_file: Can't write save file "
                               f"'{path}': {e.strerror or e}")
        return report
    report.ok = True
    if backups and not report.backup:
        state = check_saved_file(_read_bytes(backup))
        if state != "ok":
            report.messages.append(f"save_restore:write_save_file: Backup file ({backup}) "
                                   "bad or not found.  Writing a new one.")
            try:
                if state == "bad":
                    bad = backup + "_SBAD_" + (date_string(when) if dated_bad_copies else "")
                    shutil.copyfile(backup, bad)
                _install_copy(path, backup)
                _fsync_dir(os.path.dirname(path))
                report.backup = "new"
            except OSError as e:
                report.messages.append(f"save_restore:write_save_file: Can't write new "
                                       f"backup file: {e.strerror or e}")
    return report


class SequenceFiles:
    """``NAME.sav0`` .. ``NAME.sav<N-1>`` for one save set, as ``do_seq`` keeps them.

    ``now`` is always passed in (seconds, the clock of the file times), so the schedule
    is testable.  ``created`` is when the set was made (``backup_time`` starts there).
    """

    def __init__(self, sav_path: str, num: int = 3, period: float = 60.0,
                 created: float = 0.0) -> None:
        self.sav_path = sav_path
        self.num = min(10, max(0, int(num)))
        self.period = max(10.0, float(period))
        self.backup_time = created
        self.last_check = created
        self.index = -1

    def path(self, i: int) -> str:
        return f"{self.sav_path}{i}"

    def due(self, now: float, saved_ok: bool = True) -> bool:
        """The save task's test: a check every half period; a copy when more than a
        period has passed since the last and the set has been saved (``saved_ok``)."""
        if not now - self.last_check > self.period / 2:
            return False
        self.last_check = now
        return bool(self.num and saved_ok and now - self.backup_time > self.period)

    def _first_index(self, now: float) -> int:
        oldest, best = 0, -1e9
        for i in range(self.num):
            try:
                age = now - os.stat(self.path(i)).st_mtime
            except OSError:
                return i
            if age > best:
                oldest, best = i, age
        return oldest

    def write(self, now: float, fallback_text: Optional[str] = None) -> tuple[bool, str]:
        """``do_seq``: copy ``NAME.sav`` to the next sequence file (atomically); when it
        cannot be copied, write ``fallback_text`` there instead if given.  Returns
        (written, message) and moves on to the next index either way."""
        if self.num == 0:
            return False, "no sequence files"
        if self.index < 0:
            self.index = self._first_index(now)
        target = self.path(self.index)
        ok, msg = True, f"Wrote '{os.path.basename(target)}'"
        try:
            if check_saved_file(_read_bytes(self.sav_path)) != "ok":
                raise OSError(f"'{self.sav_path}' is not a good save file")
            _install_copy(self.sav_path, target)
            _fsync_dir(os.path.dirname(target))
        except OSError as e:
            if fallback_text is None:
                ok, msg = False, f"Can't copy save file to '{target}': {e}"
            else:
                try:
                    _write_synced(target + ".tmp", fallback_text.encode("latin-1", "replace"))
                    os.replace(target + ".tmp", target)
                    msg = "Wrote seq. file from PV list."
                except OSError as e2:
                    ok, msg = False, f"Can't write seq. file from PV list: {e2}"
        self.backup_time = now
        self.index = (self.index + 1) % self.num
        return ok, msg

    def maybe_write(self, now: float, saved_ok: bool = True,
                    fallback_text: Optional[str] = None) -> Optional[tuple[bool, str]]:
        """:meth:`due` then :meth:`write`; None when no copy was due."""
        return self.write(now, fallback_text) if self.due(now, saved_ok) else None


@dataclass
class RestoreChoice:
    """The file :func:`choose_restore_file` picked (``path`` None: none is usable),
    ``kind`` (``"sav"``, ``"savB"``, ``"seq"`` or ``""``), ``warn`` (a sequence file was
    used: autosave's status "Bad .sav(B) files; used seq. backup"), ``tried``
    ((file, verdict) in order) and the messages autosave would log."""
    path: Optional[str]
    kind: str = ""
    warn: bool = False
    tried: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def choose_restore_file(sav_path: str, num_seq_files: int = 3, now: Optional[float] = None,
                        keep_bad: bool = False, dated_bad_copies: bool = True) -> RestoreChoice:
    """``fopen_and_check`` for ``sav_path``; ``keep_bad`` copies an untrusted file to
    ``<file>_RBAD_<date>`` (``_RBAD_`` alone without ``dated_bad_copies``) as
    ``checkFile`` does."""
    now = time.time() if now is None else now
    choice = RestoreChoice(path=None)

    def trusted(path: str) -> bool:
        data = _read_bytes(path)
        if data is None:
            choice.tried.append((path, "can't open"))
            choice.messages.append(f"Can't open file '{path}'.")
            return False
        ok, why = check_restore_file(data)
        choice.tried.append((path, why))
        if not ok:
            choice.messages.append(f"File '{path}' is not trusted.")
            if keep_bad:
                bad = path + "_RBAD_" + (date_string(now) if dated_bad_copies else "")
                try:
                    shutil.copyfile(path, bad)
                except OSError:
                    choice.messages.append(f"myFileCopy() failed for '{path}' -> '{bad}'")
        return ok

    if trusted(sav_path):
        choice.path, choice.kind = sav_path, "sav"
        return choice
    backup = sav_path + "B"
    choice.messages.append(f"Trying backup file '{backup}'")
    if trusted(backup):
        choice.path, choice.kind = backup, "savB"
        return choice
    num = min(10, max(0, int(num_seq_files)))
    newest, best = -1, 1e9
    for i in range(num):
        try:
            age = abs(now - os.stat(f"{sav_path}{i}").st_mtime)
        except OSError:
            continue
        if age < best:
            newest, best = i, age
    if newest < 0:
        newest = 0
        if num:
            choice.messages.append("Can't figure out which seq file is most recent,")
            choice.messages.append(f"so I'm just going to start with '{sav_path}0'.")
    last = backup
    for k in range(num):
        last = f"{sav_path}{(newest + k) % num}"
        choice.messages.append(f"Trying backup file '{last}'")
        if trusted(last):
            choice.path, choice.kind, choice.warn = last, "seq", True
            return choice
    choice.messages.append("Can't find a file to restore from...")
    choice.messages.append(f"...last tried '{last}'. I give up.")
    return choice
