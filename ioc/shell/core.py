"""Core iocsh commands: environment, files, database loading, iocInit, dbgf/dbpf/dbpr/dbtr.

Messages and output follow EPICS base 7.0 (libComRegister.c, dbIocRegister.c, dbTest.c).
Importing this module registers every command of the shell package (see the end of the file).
"""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from ..app import IocStartError
from ..database.db import IocInitError
from ..database.errors import DbLoadError
from ..dbd.reader import read_dbd
from ..records.breaktable import BreaktableError
from ..records.base import PutError
from ..records.fields import ENUM_TYPES, FLOAT_TYPES, LINK_TYPES
from ..timesrc import epics_to_posix
from .interp import FatalShellError, IocshError
from .registry import Arg, ShellError, command

if TYPE_CHECKING:
    from ..records.base import Record
    from .interp import Shell


# ------------------------------------------------------------------ environment
@command("epicsEnvSet", Arg("name"), Arg("value"),
         help="Set environment variable NAME to VALUE; later lines see it as $(NAME).")
def epics_env_set(shell: "Shell", name: str | None, value: str | None) -> None:
    if name is None:
        raise IocshError("Missing environment variable name argument.")
    if value is None:
        raise IocshError("Missing environment variable value argument.")
    os.environ[name] = value
    shell.env_clear(name)       # a macro of the same name no longer hides the new value


@command("epicsEnvUnset", Arg("name"), help="Remove environment variable NAME.")
def epics_env_unset(shell: "Shell", name: str | None) -> None:
    if name is None:
        raise IocshError("Missing environment variable name argument.")
    os.environ.pop(name, None)
    shell.env_clear(name)


@command("epicsEnvShow", Arg("[name]"),
         help="Print the environment (NAME=value lines), or only variable NAME.")
def epics_env_show(shell: "Shell", name: str | None) -> None:
    if name:
        if name in os.environ:
            shell.print(f"{name}={os.environ[name]}")
        return
    for k, v in os.environ.items():
        shell.print(f"{k}={v}")


@command("cd", Arg("directory name"),
         help="Make DIRECTORY the current directory (relative paths in later lines start "
              "there); updates $(PWD).")
def cd(shell: "Shell", directory: str | None) -> None:
    try:
        if directory is None:
            raise OSError
        os.chdir(directory)
    except OSError:
        raise IocshError("Invalid directory path, ignored") from None
    os.environ["PWD"] = os.getcwd()
    shell.env_clear("PWD")


@command("pwd", help="Print the current directory.")
def pwd(shell: "Shell") -> None:
    shell.print(os.getcwd())


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", "'": "'", '"': '"', "?": "?"}


def translate_escapes(text: str) -> str:
    """C escapes (``\\t``, ``\\n``, ``\\x41``, ``\\101``...) as base's dbTranslateEscape reads
    them; an unknown escape keeps the character after the backslash."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        c = text[i + 1]
        i += 2
        if c in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[c])
        elif c in "01234567":
            j = i
            while j < n and j < i + 2 and text[j] in "01234567":
                j += 1
            out.append(chr(int(c + text[i:j], 8) & 0xFF))
            i = j
        elif c == "x":
            j = i
            while j < n and j < i + 2 and text[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(text[i:j], 16)) if j > i else "x")
            i = j
        else:
            out.append(c)
    return "".join(out)


@command("echo", Arg("string"),
         help="Print STRING (its macros are expanded with the line; C escapes such as \\t "
              "are translated).")
def echo(shell: "Shell", text: str | None) -> None:
    shell.print(translate_escapes(text or ""))


def format_epics_time(fmt: str, t: float) -> str:
    """epicsTimeToStrftime: strftime with ``%0<n>f`` (n digits of the fraction of a second,
    ``%f``: 9)."""
    import re
    frac = t - int(t)

    def digits(m: "re.Match[str]") -> str:
        n = int(m.group(1) or 9)
        return f"{frac:.{n}f}"[2:2 + n] if n > 0 else ""
    fmt = re.sub(r"%0?(\d)?f", lambda m: digits(m).replace("%", "%%"), fmt)
    return datetime.datetime.fromtimestamp(t).strftime(fmt)


@command("date", Arg("format"),
         help="Print the current date and time; FORMAT is strftime's, with %0<n>f for n "
              "digits of the second's fraction (default '%Y/%m/%d %H:%M:%S.%06f').")
def date(shell: "Shell", fmt: str | None) -> None:
    shell.print(format_epics_time(fmt or "%Y/%m/%d %H:%M:%S.%06f", time.time()))


@command("epicsThreadSleep", Arg("seconds", float),
         help="Pause the shell (the script) for SECONDS; the IOC keeps running.")
def epics_thread_sleep(shell: "Shell", seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


@command("system", Arg("command string"),
         help="Run COMMAND with /bin/sh; a non-zero exit status is an error.")
def system(shell: "Shell", cmd: str | None) -> None:
    if not cmd:
        return
    shell.out.flush()
    if shell.out is sys.stdout:
        rc = subprocess.run(cmd, shell=True).returncode
    else:   # redirected (">" or a test's buffer): hand the output on
        r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        shell.print(r.stdout, end="")
        rc = r.returncode
    if rc != 0:
        raise IocshError(f"system: '{cmd}' exited with status {rc}")


# --------------------------------------------------------------------- database
def _missing(path: str) -> str | None:
    """Why ``path`` cannot be read (None if it can), naming the directory a relative path
    was looked for in."""
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        where = "" if os.path.isabs(path) else f" (in {os.getcwd()})"
        return f"{exc.strerror}{where}"


def _load_failed(fname: str, exc: DbLoadError) -> IocshError:
    """base's "failed to load 'x.db'", with what failed and where."""
    if exc.lineno == 0 and exc.filename == fname:
        detail = _missing(fname) or exc.message
    else:
        detail = str(exc)
    return IocshError(f"failed to load '{fname}': {detail}")


@command("dbLoadDatabase", Arg("file name"), Arg("path"), Arg("substitutions"),
         help="Load the breakpoint tables (breaktable) of a .dbd; its record, menu and device "
              "definitions are built in (db/psuTiming.dbd is for EPICS base's softIoc).")
def db_load_database(shell: "Shell", fname: str | None, path, subs) -> None:
    if not fname:
        raise IocshError("dbLoadDatabase: no file name given")
    # PATH is a search path (":"-separated, as dbPath); without one, the current directory
    dirs = [d for d in (path or "").split(os.pathsep) if d] if not os.path.isabs(fname) else []
    candidates = [os.path.join(d, fname) for d in dirs] or [fname]
    found = [c for c in candidates if not _missing(c)]
    if not found:
        raise IocshError(f"failed to load '{fname}': {_missing(candidates[0])}")
    try:
        dbd = read_dbd(found[0], search_path=dirs)
        shell.ioc.db.add_breaktables(dbd.breaktables)
    except (DbLoadError, BreaktableError) as exc:
        raise IocshError(f"dbLoadDatabase {fname}: {exc}") from None


@command("dbLoadRecords", Arg("file name"), Arg("substitutions", default=""),
         help="Load database FILE with macros \"A=1,B=2\" (before iocInit).")
def db_load_records(shell: "Shell", fname: str | None, macros: str) -> None:
    if not fname:
        raise IocshError("Usage: dbLoadRecords \"file name\" \"macros\"")
    try:
        shell.ioc.db.load_records(fname, macros)
    except DbLoadError as exc:
        raise _load_failed(fname, exc) from None


@command("dbLoadTemplate", Arg("filename"), Arg("var1=value1,var2=value2", default=""),
         help="Load substitutions FILE: each set of values loads its template; the macros "
              "are added to every set.")
def db_load_template(shell: "Shell", fname: str | None, macros: str) -> None:
    if not fname:
        raise IocshError("Usage: dbLoadTemplate \"file name\" \"macros\"")
    try:
        shell.ioc.db.load_template(fname, macros)
    except DbLoadError as exc:
        raise _load_failed(fname, exc) from None


def _ioc_init(shell: "Shell") -> None:
    if shell.ioc.initialized:
        raise IocshError("iocBuild: IOC can only be initialized from uninitialized or "
                         "stopped state")
    shell.print("Starting iocInit")
    try:
        shell.ioc.ioc_init()
    except IocInitError as exc:
        # Fatal (unlike base, which serves what did initialise): this database does not
        # serve a partly initialised set of records, so nothing after this may run.
        raise FatalShellError("iocInit failed; nothing is served:\n" + str(exc)) from None
    except IocStartError as exc:
        raise FatalShellError(str(exc)) from None


@command("iocInit", help="Initialise the records and start scanning and the CA server.\n"
                         "A record that fails to initialise stops the IOC (exit status 1).")
def ioc_init(shell: "Shell") -> None:
    _ioc_init(shell)


@command("iocRun", help="Same as iocInit here (there is no paused state).")
def ioc_run(shell: "Shell") -> None:
    if not shell.ioc.initialized:
        _ioc_init(shell)


@command("iocBuild", help="Accepted: iocRun (or iocInit) builds and starts the IOC in one step.")
def ioc_build(shell: "Shell") -> None:
    shell.print("iocBuild: not a separate step in this IOC; iocRun or iocInit initialises "
                "and starts it")


# -------------------------------------------------------------- field access
def _record(shell: "Shell", name: str | None) -> "tuple[Record, str]":
    if not name:
        raise IocshError("Usage: a record or PV name is required")
    recname, _, field = name.partition(".")
    rec = shell.ioc.db.lookup(recname)
    field = field or "VAL"
    if rec is None or not rec.has_field(field):
        raise IocshError(f"PV '{name}' not found")
    return rec, field


_INT_BITS = {"DBF_CHAR": 8, "DBF_UCHAR": 8, "DBF_SHORT": 16, "DBF_USHORT": 16, "DBF_LONG": 32,
             "DBF_ULONG": 32, "DBF_INT64": 64, "DBF_UINT64": 64}


def _number_text(dbf: str, v) -> str:
    """One value as dbgf prints it: ``%.12g`` (double), ``%.6g`` (float), ``N = 0xHEX``."""
    if dbf == "DBF_DOUBLE":
        return f"{float(v):.12g}"
    if dbf == "DBF_FLOAT":
        return f"{float(v):.6g}"
    bits = _INT_BITS.get(dbf)
    if bits is None:
        return str(v)
    n = int(v)
    return f"{n} = {n & ((1 << bits) - 1):#x}"       # %x of the C type's own width


def format_field(rec: "Record", field: str) -> tuple[str, str]:
    """(DBF type name as dbgf shows it, value text): enums, menus and links read as strings,
    numbers as base's printBuffer writes them, arrays element by element."""
    dbf = rec.field_type(field)
    v = rec.f.get(field)
    if dbf in ENUM_TYPES:
        strs = rec.choices(field) or []
        return "DBF_STRING", f'"{strs[v]}"' if 0 <= v < len(strs) else f'"{v}"'
    if dbf == "DBF_STRING" or dbf in LINK_TYPES:
        return "DBF_STRING", f'"{v}"'
    if field == "VAL" and hasattr(rec, "array"):
        return dbf, " ".join(_number_text(dbf, x) for x in rec.array())
    return dbf, _number_text(dbf, v)


def label(text: str) -> str:
    """The type label in front of a dbgf/dbtgf value: two tab stops wide."""
    return f"{text:<19}".ljust(20)


def tabbed(text: str, tab: int = 10) -> str:
    """dbpr_msgOut's layout: ``text`` padded to the next tab stop past its end."""
    return text.ljust((len(text) // tab + 1) * tab)


@command("dbgf", Arg("record name"), help="Print a field's value: dbgf \"REC.FIELD\" (VAL if "
                                          "no field is given).")
def dbgf(shell: "Shell", name: str | None) -> None:
    rec, field = _record(shell, name)
    dbf, text = shell.ioc.db.run_sync(lambda: format_field(rec, field))
    shell.print(label(dbf + ":") + tabbed(text))


@command("dbpf", Arg("record name"), Arg("value", default=""),
         help="Put VALUE to a field (processing as a CA put would), then print it as dbgf.")
def dbpf(shell: "Shell", name: str | None, value: str) -> None:
    rec, field = _record(shell, name)

    def put():
        rec.put_and_process(field, value)
        return format_field(rec, field)
    try:
        dbf, text = shell.ioc.db.run_sync(put)
    except PutError as exc:
        raise IocshError(f"dbpf: {exc}") from None
    shell.print(label(dbf + ":") + tabbed(text))


def _dbpr_value(rec: "Record", field: str) -> str:
    dbf = rec.field_type(field)
    v = rec.f[field]
    if dbf in ENUM_TYPES:
        strs = rec.choices(field) or []
        return strs[v] if 0 <= v < len(strs) else str(v)
    if dbf in LINK_TYPES:
        link = rec.links.get(field)
        return "CONSTANT" if link is None or link.is_constant else v
    if dbf in FLOAT_TYPES:
        return f"{v:.15g}"
    if field == "VAL" and hasattr(rec, "array"):
        return " ".join(str(x) for x in rec.array()[:10])
    return str(v)


@command("dbpr", Arg("record name"), Arg("interest level", int, default=0),
         help="Print a record's fields up to an interest level (0: those processing "
              "changes ... 4: internal).")
def dbpr(shell: "Shell", name: str | None, level: int) -> None:
    rec, _ = _record(shell, name)

    def build() -> list[str]:
        entries = []
        for fname, fs in sorted(rec.spec.fields.items()):
            if fs.interest > level:
                continue
            if fs.dbf == "DBF_NOACCESS":
                if fname == "TIME":
                    t = datetime.datetime.fromtimestamp(epics_to_posix(rec.time))
                    entries.append((fname, t.strftime("%Y-%m-%d %H:%M:%S.%f")))
                elif fname == "VAL" and hasattr(rec, "array"):
                    entries.append((fname, _dbpr_value(rec, fname)))
                continue
            entries.append((fname, _dbpr_value(rec, fname)))
        lines, cur = [], ""
        for i, (fname, text) in enumerate(entries):
            cur += f"{fname:<4}: {text:<14}"
            if i % 4 == 3:
                lines.append(cur)
                cur = ""
        if cur:
            lines.append(cur)
        return lines
    for line in shell.ioc.db.run_sync(build):
        shell.print(line)


@command("dbtr", Arg("record name"), help="Process a record once, then print it as dbpr.")
def dbtr(shell: "Shell", name: str | None) -> None:
    rec, _ = _record(shell, name)
    shell.ioc.db.run_sync(rec.db_process)
    dbpr(shell, rec.name, 0)


@command("postEvent", Arg("event name"),
         help="Process the records with SCAN=Event and EVNT=NAME.")
def post_event(shell: "Shell", event: str | None) -> None:
    if event is None:
        raise IocshError("Usage: postEvent \"event name\"")
    db = shell.ioc.db
    db.run_sync(lambda: db.scanner.post_event(event))


# The rest of the shell's commands: importing core registers them all (ioc.main imports it).
from . import builtins as _builtins  # noqa: E402,F401  (help, on, iocshLoad, exit, #, ...)
from . import dbreport as _dbreport  # noqa: E402,F401  (dbl, dbgrep, scanppl, dbior, ...)
from . import misc as _misc  # noqa: E402,F401  (epicsParamShow, errlogInit, iocLogInit, ...)
from . import noop as _noop  # noqa: E402,F401  (commands with no meaning here: one note)
from . import variables as _variables  # noqa: E402,F401  (var and its variables)

__all__ = ["format_field", "translate_escapes", "format_epics_time", "ShellError"]
