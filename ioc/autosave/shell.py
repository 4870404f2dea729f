"""Autosave's iocsh commands, on ``db.autosave`` (:mod:`ioc.autosave.runtime`).

Arguments as autosave registers them (``save_restore.c``, ``dbrestore.c``):
``set_savefile_path path [subpath]``, ``set_requestfile_path path [subpath]`` (appends a
directory to the search path), ``set_pass0_restoreFile file [macros]``,
``set_pass1_restoreFile file [macros]``, ``create_monitor_set file period [macros]``,
``create_periodic_set file period [macros]``, ``create_manual_set file [macros]``,
``manual_save "request file"``, ``save_restoreShow [verbose]``.

Imported after :mod:`ioc.shell.core` (ioc.main), so these registrations replace the notes
in :mod:`ioc.shell.noop`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..shell.registry import Arg, ShellError, command
from .runtime import MANUAL, MONITOR, PERIODIC, Autosave, autosave_of

if TYPE_CHECKING:
    from ..shell.interp import Shell


def _as(shell: "Shell") -> Autosave:
    return autosave_of(shell.ioc.db)


@command("set_savefile_path", Arg("path"), Arg("subpath"),
         help="The directory of the save files (and of relative restore files): "
              "path/subpath.")
def set_savefile_path(shell: "Shell", path: Optional[str], sub: Optional[str]) -> None:
    if not _as(shell).set_savefile_path(path or "", sub or ""):
        raise ShellError("set_savefile_path: an empty path")


@command("set_requestfile_path", Arg("path"), Arg("subpath"),
         help="Append path/subpath to the directories searched for request files.")
def set_requestfile_path(shell: "Shell", path: Optional[str], sub: Optional[str]) -> None:
    if not _as(shell).req_path.add(path or "", sub or ""):
        raise ShellError("set_requestfile_path: an empty or too long path")


def _restore_file(shell: "Shell", pass_: int, name: Optional[str],
                  macros: Optional[str]) -> None:
    if not name:
        raise ShellError(f"set_pass{pass_}_restoreFile: a file name is needed")
    if shell.ioc.db.initialized:
        shell.print(f"set_pass{pass_}_restoreFile: iocInit has run; '{name}' will not be "
                    "restored")
    _as(shell).add_restore_file(pass_, name, macros or "")


@command("set_pass0_restoreFile", Arg("file"), Arg("macrostring"),
         help="Restore this save file at iocInit before the records' init_record.")
def set_pass0_restore_file(shell: "Shell", name: Optional[str], macros: Optional[str]) -> None:
    _restore_file(shell, 0, name, macros)


@command("set_pass1_restoreFile", Arg("file"), Arg("macrostring"),
         help="Restore this save file at iocInit after the records' init_record.")
def set_pass1_restore_file(shell: "Shell", name: Optional[str], macros: Optional[str]) -> None:
    _restore_file(shell, 1, name, macros)


def _create(shell: "Shell", method: str, name: Optional[str], period: float,
            macros: Optional[str]) -> None:
    ok, msgs = _as(shell).create_set(method, name or "", period, macros or "")
    for m in msgs:
        shell.print(m)
    if not ok:
        raise ShellError(f"create_{method}_set: no save set made for '{name}'")


@command("create_monitor_set", Arg("filename"), Arg("period", int, 0),
         Arg("macro string"),
         help="Save the request file's PVs when one changed, at most every period s.")
def create_monitor_set(shell: "Shell", name: Optional[str], period: int,
                       macros: Optional[str]) -> None:
    _create(shell, MONITOR, name, period, macros)


@command("create_periodic_set", Arg("filename"), Arg("period", int, 0),
         Arg("macro string"), help="Save the request file's PVs every period s.")
def create_periodic_set(shell: "Shell", name: Optional[str], period: int,
                        macros: Optional[str]) -> None:
    _create(shell, PERIODIC, name, period, macros)


@command("create_manual_set", Arg("filename"), Arg("macrostring"),
         help="A save set saved only by manual_save.")
def create_manual_set(shell: "Shell", name: Optional[str], macros: Optional[str]) -> None:
    _create(shell, MANUAL, name, 0, macros)


@command("manual_save", Arg("request file"), help="Save a save set now.")
def manual_save(shell: "Shell", name: Optional[str]) -> None:
    ok, msg = _as(shell).manual_save(name or "")
    shell.print(msg)
    if not ok:
        raise ShellError(msg)


@command("save_restoreShow", Arg("verbose", int, 0),
         help="Report the save sets and restore files (verbose: their PVs).")
def save_restore_show(shell: "Shell", verbose: int) -> None:
    a = _as(shell)
    for line in shell.ioc.db.run_sync(lambda: a.show(verbose)):
        shell.print(line)
