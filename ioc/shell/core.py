"""Core iocsh commands: environment, database loading, iocInit, and dbl/dbpr/dbgf/dbpf/dbtr
(output formatted as EPICS base 7.0 prints it)."""
from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING

from ..database.db import IocInitError
from ..records.base import PutError
from ..records.fields import ENUM_TYPES, FLOAT_TYPES, LINK_TYPES
from ..timesrc import epics_to_posix
from .registry import COMMANDS, Arg, ShellError, command

if TYPE_CHECKING:
    from ..records.base import Record
    from .interp import Shell


# ------------------------------------------------------------------ environment
@command("epicsEnvSet", Arg("name"), Arg("value", default=""),
         help="Set an environment variable (visible to $(NAME) in later lines)")
def epics_env_set(shell: "Shell", name: str | None, value: str) -> None:
    if not name:
        raise ShellError("usage: epicsEnvSet name value")
    os.environ[name] = value or ""


@command("epicsEnvUnset", Arg("name"), help="Remove an environment variable")
def epics_env_unset(shell: "Shell", name: str | None) -> None:
    os.environ.pop(name or "", None)


@command("epicsEnvShow", Arg("name"), help="Show one or all environment variables")
def epics_env_show(shell: "Shell", name: str | None) -> None:
    if name:
        if name in os.environ:
            shell.print(f"{name}={os.environ[name]}")
        return
    for k in sorted(os.environ):
        shell.print(f"{k}={os.environ[k]}")


@command("cd", Arg("directory"), help="Change the current directory")
def cd(shell: "Shell", directory: str | None) -> None:
    try:
        os.chdir(os.path.expanduser(directory or "~"))
    except OSError as exc:
        raise ShellError(f"{directory!r}: {exc.strerror}") from None


@command("pwd", help="Print the current directory")
def pwd(shell: "Shell") -> None:
    shell.print(os.getcwd())


@command("echo", Arg("text", default=""), help="Print text")
def echo(shell: "Shell", text: str) -> None:
    shell.print(text)


@command("help", Arg("command"), help="List commands, or show one command's arguments")
def help_(shell: "Shell", name: str | None) -> None:
    if name:
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise ShellError(f"command {name!r} not found")
        shell.print(cmd.usage())
        if cmd.help:
            shell.print("  " + cmd.help.replace("\n", "\n  "))
        return
    shell.print("Type 'help <command>' to see the arguments of <command>.")
    names = sorted(COMMANDS) + ["exit"]
    for i in range(0, len(names), 4):
        shell.print("".join(f"{n:<24}" for n in names[i:i + 4]).rstrip())


# --------------------------------------------------------------------- database
@command("dbLoadDatabase", Arg("file"), Arg("path"), Arg("substitutions"),
         help="Accepted for st.cmd compatibility: record and device definitions are built in "
              "(db/psuTiming.dbd is for EPICS base's softIoc)")
def db_load_database(shell: "Shell", fname: str | None, path, subs) -> None:
    if fname and not os.path.exists(fname if not path else os.path.join(path, fname)):
        raise ShellError(f"can't open {fname!r}")


@command("dbLoadRecords", Arg("file"), Arg("macros", default=""),
         help="Load a database file with macros \"A=1,B=2\"")
def db_load_records(shell: "Shell", fname: str | None, macros: str) -> None:
    if not fname:
        raise ShellError("usage: dbLoadRecords file [macros]")
    shell.ioc.db.load_records(fname, macros)


@command("dbLoadTemplate", Arg("file"), Arg("macros", default=""),
         help="Load a substitutions file (each set loads its template)")
def db_load_template(shell: "Shell", fname: str | None, macros: str) -> None:
    if not fname:
        raise ShellError("usage: dbLoadTemplate file [macros]")
    shell.ioc.db.load_template(fname, macros)


@command("iocInit", help="Initialise records and start scanning and the CA server")
def ioc_init(shell: "Shell") -> None:
    try:
        shell.ioc.ioc_init()
    except IocInitError as exc:
        raise ShellError("iocInit failed:\n" + str(exc)) from None


def _record(shell: "Shell", name: str | None) -> "tuple[Record, str]":
    if not name:
        raise ShellError("a record or PV name is required")
    recname, _, field = name.partition(".")
    rec = shell.ioc.db.lookup(recname)
    field = field or "VAL"
    if rec is None or not rec.has_field(field):
        raise ShellError(f"PV '{name}' not found")
    return rec, field


def format_field(rec: "Record", field: str) -> tuple[str, str]:
    """(DBF type name as dbgf shows it, value text)."""
    dbf = rec.field_type(field)
    v = rec.f[field]
    if dbf in ENUM_TYPES:
        strs = rec.choices(field) or []
        return "DBF_STRING", f'"{strs[v]}"' if 0 <= v < len(strs) else f'"{v}"'
    if dbf in FLOAT_TYPES:
        return dbf, f"{v:.17g}" if v != int(v) or abs(v) > 1e15 else f"{v:g}"
    if dbf == "DBF_STRING" or dbf in LINK_TYPES:
        return "DBF_STRING", f'"{v}"'
    if field == "VAL" and hasattr(rec, "array"):
        return dbf, " ".join(str(x) for x in rec.array())
    return dbf, str(v)


@command("dbgf", Arg("pv"), help="Get a field: dbgf \"REC.FIELD\"")
def dbgf(shell: "Shell", name: str | None) -> None:
    rec, field = _record(shell, name)
    dbf, text = shell.ioc.db.run_sync(lambda: format_field(rec, field))
    shell.print(f"{dbf + ':':<20}{text:<10}")


@command("dbpf", Arg("pv"), Arg("value", default=""), help="Put a field (processes as a CA put)")
def dbpf(shell: "Shell", name: str | None, value: str) -> None:
    rec, field = _record(shell, name)

    def put():
        rec.put_and_process(field, value)
        return format_field(rec, field)
    try:
        dbf, text = shell.ioc.db.run_sync(put)
    except PutError as exc:
        raise ShellError(str(exc)) from None
    shell.print(f"{dbf + ':':<20}{text:<10}")


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


@command("dbpr", Arg("record"), Arg("interest level", int, default=0),
         help="Print a record's fields up to an interest level")
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


@command("dbtr", Arg("record"), help="Process a record once and print it")
def dbtr(shell: "Shell", name: str | None) -> None:
    rec, _ = _record(shell, name)
    shell.ioc.db.run_sync(rec.db_process)
    dbpr(shell, rec.name, 0)


@command("dbl", Arg("record type"), Arg("fields"),
         help="List record names, optionally of one type, optionally with field values")
def dbl(shell: "Shell", rtype: str | None, fields: str | None) -> None:
    db = shell.ioc.db
    flds = (fields or "").split()
    if rtype in ("*", ""):
        rtype = None
    for rec in list(db.records.values()):
        if rtype and rec.rtype != rtype:
            continue
        if not flds:
            shell.print(rec.name)
            continue
        vals = []
        for fld in flds:
            if rec.has_field(fld):
                vals.append(f'"{format_field(rec, fld)[1].strip(chr(34))}"')
        shell.print(", ".join([rec.name] + vals))


@command("dbla", Arg("pattern"), help="List record aliases")
def dbla(shell: "Shell", pattern: str | None) -> None:
    for alias, rec in shell.ioc.db.aliases.items():
        shell.print(f"{alias:>20} -> {rec.name}")


@command("postEvent", Arg("event"), help="Process the records with SCAN=Event and EVNT=event")
def post_event(shell: "Shell", event: str | None) -> None:
    if event is None:
        raise ShellError("usage: postEvent name")
    db = shell.ioc.db
    db.run_sync(lambda: db.scanner.post_event(event))


# ------------------------------------------------------- accepted for later issues
def _not_yet(feature: str):
    def handler(shell: "Shell", *args) -> None:
        shell.print(f"warning: {feature} is not implemented yet; '{shell.location[0]}' "
                    "continues without it")
    return handler


for _name, _feature in (("asSetFilename", "access security"),
                        ("asSetSubstitutions", "access security"),
                        ("set_savefile_path", "autosave"), ("set_requestfile_path", "autosave"),
                        ("set_pass0_restoreFile", "autosave"),
                        ("set_pass1_restoreFile", "autosave"),
                        ("create_monitor_set", "autosave")):
    command(_name, Arg("arg1"), Arg("arg2"), Arg("arg3"),
            help=f"{_feature} (accepted; not implemented yet)")(_not_yet(_feature))
