"""Database report commands (base's dbTest.c, dbScan.c, dbStaticLib.c): ``dbl``, ``dbla``,
``dbgrep``, ``dbnr``, ``dbli``, ``scanppl``, ``scanpel``, ``scanpiol``, ``dbior``, ``dbhcr``
(``dbReportDeviceConfig``), ``dbstat``, ``dbsr``, ``dbtgf``, ``dbtpf``, ``dbCreateAlias``.

Records are listed as base lists them: record types in name order, the records of a type in
load order, each followed by its aliases.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

from ..records.base import PutError
from ..records.fields import ENUM_TYPES as ENUM_DBF, FLOAT_TYPES, LINK_TYPES
from ..records.links import link_text
from ..records.registry import STD_DBD
from .builtins import glob_match
from .core import _number_text, _record, label, tabbed
from .interp import IocshError
from .registry import Arg, command

if TYPE_CHECKING:
    from ..database.db import Database
    from ..records.base import Record
    from .interp import Shell


def _types(db: "Database") -> list[str]:
    return sorted({r.rtype for r in db.records.values()})


def records_in_order(db: "Database", rtype: str | None = None) -> Iterator[tuple[str, "Record"]]:
    """(name, record) for every record and alias, in base's listing order."""
    for t in ([rtype] if rtype else _types(db)):
        for rec in list(db.records.values()):
            if rec.rtype != t:
                continue
            yield rec.name, rec
            for alias in rec.aliases:
                yield alias, rec


def real_to_string(v: float, is_double: bool = True) -> str:
    """A float field as the static database prints it (dbGetString): an integral value as an
    integer, otherwise 14 (double) or 6 (float) significant-ish digits, trailing zeros cut,
    exponent form below 1e-2 or above 1e7."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0.0:
        return "0"
    delta, prec = (1e-15, 14) if is_double else (1e-6, 6)
    a = abs(v)
    if a < 2147483647.0:
        i = int(v)
        if abs(v - i) < a * delta:
            return str(i)
    sign = "-" if v < 0 else ""
    logval = int(math.log10(a))
    if logval > 6 or logval < -2:
        mant, _, exp = f"{a:.{prec}e}".partition("e")
        mant = mant.rstrip("0")
        if mant.endswith("."):
            mant += "0"
        return f"{sign}{mant}e{exp}"
    text = f"{a:.{max(prec - logval, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def static_text(rec: "Record", fname: str) -> str | None:
    """A field as dbl shows it (dbGetString); None if the record type has no such field."""
    fs = rec.spec.fields.get(fname)
    if fs is None:
        return rec.rtype if fname == "recordType" else None
    if fs.dbf == "DBF_NOACCESS":
        return ""
    v = rec.f[fname]
    if fs.dbf in ("DBF_MENU", "DBF_DEVICE"):
        strs = rec.choices(fname) or []
        return strs[v] if 0 <= v < len(strs) else str(v)
    if fs.dbf in LINK_TYPES:
        # as written until iocInit has parsed the links, canonical after (as base)
        return link_text(str(v), fs.dbf) if rec.db.initialized else str(v).strip()
    if fs.dbf in FLOAT_TYPES:
        return real_to_string(float(v), fs.dbf == "DBF_DOUBLE")
    return str(v)


@command("dbl", Arg("record type"), Arg("fields"),
         help="List record names (of one record type, \"\" or * for all), with the values "
              "of the blank-separated FIELDS: dbl(\"ai\", \"VAL EGU\").")
def dbl(shell: "Shell", rtype: str | None, fields: str | None) -> None:
    db = shell.ioc.db
    if rtype in ("*", ""):
        rtype = None
    if rtype and rtype not in STD_DBD.recordtypes:
        shell.print("No record type")
        return
    flds = (fields or "").split()

    def build() -> list[str]:
        out = []
        for name, rec in records_in_order(db, rtype):
            parts = [name]
            for fld in flds:
                text = static_text(rec, fld)
                parts.append("" if text is None else f'"{text}"')
            out.append(", ".join(parts))
        return out
    for line in db.run_sync(build):
        shell.print(line)


@command("dbla", Arg("pattern"),
         help="List aliases (matching PATTERN, wildcards * and ?) as \"alias -> record\".")
def dbla(shell: "Shell", pattern: str | None) -> None:
    for name, rec in records_in_order(shell.ioc.db):
        if name != rec.name and (not pattern or glob_match(name, pattern)):
            shell.print(f"{name} -> {rec.name}")


@command("dbgrep", Arg("pattern"),
         help="List the record names and aliases matching PATTERN (* any characters, ? one "
              "character): dbgrep(\"*:VOLT*\").")
def dbgrep(shell: "Shell", pattern: str | None) -> None:
    if not pattern:
        shell.print('Usage: dbgrep "pattern"')
        return
    for name, _ in records_in_order(shell.ioc.db):
        if glob_match(name, pattern):
            shell.print(name)


@command("dbnr", Arg("verbose", int),
         help="Count records and aliases of each record type (verbose: list the types "
              "without records too).")
def dbnr(shell: "Shell", verbose: int) -> None:
    db = shell.ioc.db
    counts: dict[str, list[int]] = {}
    for rec in db.records.values():
        c = counts.setdefault(rec.rtype, [0, 0])
        c[0] += 1
        c[1] += len(rec.aliases)
    shell.print("Records  Aliases  Record Type")
    for t in sorted(set(STD_DBD.recordtypes) | set(counts)):
        n, a = counts.get(t, (0, 0))
        if verbose or n:
            shell.print(f" {n:5d}    {a:5d}    {t}")
    shell.print(f"Total {sum(c[0] for c in counts.values())} records, "
                f"{sum(c[1] for c in counts.values())} aliases")


@command("dbli", Arg("pattern"),
         help="List info() items whose name matches PATTERN: REC info(NAME, \"value\").")
def dbli(shell: "Shell", pattern: str | None) -> None:
    for name, rec in records_in_order(shell.ioc.db):
        if name != rec.name:
            continue
        for key, value in rec.infos.items():
            if not pattern or glob_match(key, pattern):
                shell.print(f'{rec.name} info({key}, "{value}")')


@command("dbCreateAlias", Arg("pdbbase"), Arg("record"), Arg("alias"),
         help="Give RECORD another name: dbCreateAlias pdbbase REC NEW:NAME.")
def db_create_alias(shell: "Shell", pdbbase: str | None, recname: str | None,
                    alias: str | None) -> None:
    if pdbbase not in (None, "", "0", "pdbbase"):
        raise IocshError(f"Expecting 'pdbbase' got '{pdbbase}'")
    db = shell.ioc.db
    rec = db.lookup(recname or "")
    if rec is None:
        raise IocshError(f"dbCreateAlias: record '{recname}' not found")
    if not alias or db.lookup(alias) is not None:
        raise IocshError(f"dbCreateAlias: alias name '{alias}' is empty or already in use")
    db.aliases[alias] = rec
    rec.aliases.append(alias)


# ------------------------------------------------------------------------- scan lists
_PRIORITY = ("Low", "Medium", "High")


def _print_list(shell: "Shell", header: str, recs: list["Record"]) -> None:
    if not recs:
        return
    shell.print(header)
    for rec in recs:
        shell.print(f"    {rec.name:<28}")


@command("scanppl", Arg("rate", float),
         help="List the records of each periodic scan (only the one of RATE seconds if RATE "
              "is not 0), with its over-run count.")
def scanppl(shell: "Shell", rate: float) -> None:
    db = shell.ioc.db
    if not db.initialized:
        shell.print("scanppl: dbScan subsystem not initialized")
        return
    from ..records.constants import SCAN_PERIODS_S
    choices = [s for _, s in STD_DBD.menus["menuScan"]]
    scanner = db.scanner
    for index, period in SCAN_PERIODS_S.items():
        if rate > 0.0 and abs(rate - period) > 0.05:
            continue
        recs = db.run_sync(lambda p=period: list(scanner.periodic.get(p, ())))
        _print_list(shell, f"Records with SCAN = '{choices[index]}' "
                           f"({scanner.overruns.get(period, 0)} over-runs):", recs)


def _by_priority(recs: list["Record"]) -> list[list["Record"]]:
    out: list[list["Record"]] = [[], [], []]
    for rec in recs:
        out[min(max(int(rec.f.get("PRIO", 0)), 0), 2)].append(rec)
    return out


@command("scanpel", Arg("event name"),
         help="List the records of each event scan (the events matching NAME), by priority.")
def scanpel(shell: "Shell", event: str | None) -> None:
    db = shell.ioc.db
    events = db.run_sync(lambda: {k: list(v) for k, v in db.scanner.events.items()})
    for name, recs in events.items():
        if event and not glob_match(name, event):
            continue
        shell.print(f'Event "{name}"')
        for prio, lst in enumerate(_by_priority(recs)):
            _print_list(shell, f" Priority {_PRIORITY[prio]}", lst)


@command("scanpiol", help="List the records of each I/O Intr scan list, by priority.")
def scanpiol(shell: "Shell") -> None:
    db = shell.ioc.db
    lists: dict[int, tuple[object, list["Record"]]] = {}
    for rec in db.records.values():
        key = getattr(rec, "scan_key", None)
        if key and key[0] == "ioint":
            lists.setdefault(id(key[1]), (key[1], []))[1].append(rec)
    for ident, (ioscan, recs) in lists.items():
        for prio, lst in enumerate(_by_priority(recs)):
            _print_list(shell, f"IO Event {ident:#x}: Priority {_PRIORITY[prio]}", lst)


# ------------------------------------------------------------------- device reports
@command("dbior", Arg("driver name"), Arg("interest level", int),
         help="Report the device supports in use (only DTYP NAME if given; \"\" or * for "
              "all); interest level 1 adds each record's line.")
def dbior(shell: "Shell", name: str | None, level: int) -> None:
    from ..devsup.registry import DeviceSupport
    if name in ("", "*"):
        name = None
    groups: dict[tuple[str, str], list["Record"]] = {}
    for t in _types(shell.ioc.db):
        for rec in shell.ioc.db.records.values():
            dset = rec.dset
            if rec.rtype != t or dset is None or type(dset).report is DeviceSupport.report:
                continue
            dtyp = static_text(rec, "DTYP") or ""
            if name is None or dtyp == name:
                groups.setdefault((dtyp, t), []).append(rec)
    seen: set[str] = set()
    for (dtyp, _t), recs in groups.items():
        if dtyp not in seen:
            shell.print(f"Device Support: {dtyp}")
            seen.add(dtyp)
        if level > 0:
            for rec in recs:
                shell.print(f"    {rec.name}: {shell.ioc.db.run_sync(rec.dset.report)}")


@command("dbhcr", help="Hardware configuration report: one line per record with a hardware "
                       "(INST_IO) link: bus, link, DTYP, record, conversion.")
def dbhcr(shell: "Shell") -> None:
    db = shell.ioc.db
    for t in _types(db):
        for rec in list(db.records.values()):
            if rec.rtype != t:
                continue
            for fname, fs in rec.spec.fields.items():
                if fs.dbf not in LINK_TYPES:
                    continue
                text = str(rec.f.get(fname, "")).strip()
                if not text.startswith("@"):
                    continue
                cvt = ""
                if "LINR" in rec.spec.fields and static_text(rec, "LINR") == "LINEAR":
                    cvt = f"cvt({static_text(rec, 'EGUL')},{static_text(rec, 'EGUF')})"
                shell.print(f"{'INST':<8} {text:<20} {static_text(rec, 'DTYP') or '':<20} "
                            f"{rec.name:<20} {cvt}")
                break


@command("dbReportDeviceConfig", Arg("pdbbase"), help="The same report as dbhcr.")
def db_report_device_config(shell: "Shell", pdbbase: str | None) -> None:
    dbhcr(shell)


@command("dbstat", help="List records suspended at a breakpoint (there are no breakpoints in "
                        "this IOC, so nothing is listed).")
def dbstat(shell: "Shell") -> None:
    pass


@command("dbsr", Arg("interest level", int),
         help="Report the database servers: the CA server's state, its clients (level 1: "
              "their channels).")
def dbsr(shell: "Shell", level: int) -> None:
    server = shell.ioc.server
    running = shell.ioc.initialized and server is not None and server.port is not None
    shell.print(f"Server state: {'running' if running else 'init'}")
    if running:
        shell.print("Server 'CA'")
        shell.print(shell.ioc.db.run_sync(lambda: server.report(level)))


# ------------------------------------------------------------------ dbtgf / dbtpf
_INT_TYPES = (("DBF_CHAR", 8, True), ("DBF_UCHAR", 8, False), ("DBF_SHORT", 16, True),
              ("DBF_USHORT", 16, False), ("DBF_LONG", 32, True), ("DBF_ULONG", 32, False),
              ("DBF_INT64", 64, True), ("DBF_UINT64", 64, False))


def _c_cast(v: float, bits: int, signed: bool) -> int:
    n = int(v) & ((1 << bits) - 1)
    return n - (1 << bits) if signed and n >= 1 << (bits - 1) else n


def _as_number(rec: "Record", field: str) -> float | None:
    v = rec.f[field] if field in rec.f else None
    if field == "VAL" and hasattr(rec, "array"):
        arr = rec.array()
        v = arr[0] if len(arr) else None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None if v is None else float(v)


def _string_text(rec: "Record", field: str) -> str:
    """The field read as DBR_STRING: floats with the record's precision, enums as strings."""
    from ..ca.dbr import format_double
    dbf = rec.field_type(field)
    v = rec.f.get(field)
    if field == "VAL" and hasattr(rec, "array"):
        arr = rec.array()
        v = arr[0] if len(arr) else ""
    if dbf in ENUM_DBF:
        return rec.enum_string(field, int(v))
    if dbf in FLOAT_TYPES and not isinstance(v, str):
        return format_double(float(v), rec.rset_precision(field) or 0)
    if dbf in LINK_TYPES:
        return link_text(str(v), dbf)
    return str(v)


_MASKS = frozenset(name for name, _, _ in _INT_TYPES)


def _int_text(n: int, bits: int) -> str:
    # printf("%d = 0x%x") of the C type: the hex has that type's width
    return f"{n} = {n & ((1 << bits) - 1):#x}"


def dbf_text(rec: "Record", field: str) -> tuple[str, str]:
    """(DBF type, value) as dbtpf shows a field in its own type."""
    dbf = rec.field_type(field)
    v = rec.f.get(field)
    if field == "VAL" and hasattr(rec, "array"):
        arr = rec.array()
        v = arr[0] if len(arr) else 0
    if dbf in ENUM_DBF:
        return "DBF_ENUM", str(int(v))
    if dbf in _MASKS or dbf in FLOAT_TYPES:
        return dbf, _number_text(dbf, v)
    return "DBF_STRING", f'"{_string_text(rec, field)}"'


def _typed_lines(rec: "Record", field: str) -> list[str]:
    """The field read as each DBF type, as dbtgf lists them ("failed." where it cannot)."""
    lines = [label("DBF_STRING:") + tabbed(f'"{_string_text(rec, field)}"')]
    num = _as_number(rec, field)
    for name, bits, signed in _INT_TYPES:
        if num is None or not math.isfinite(num):
            lines.append(label(name + ":") + tabbed("failed."))
            continue
        lines.append(label(name + ":") + tabbed(_int_text(_c_cast(num, bits, signed), bits)))
    for name in ("DBF_FLOAT", "DBF_DOUBLE", "DBF_ENUM"):
        if num is None:
            lines.append(label(name + ":") + tabbed("failed."))
        elif name == "DBF_ENUM":
            n = _c_cast(num, 16, False) if math.isfinite(num) else 0
            lines.append(label(name + ":") + tabbed(str(n)))
        else:
            lines.append(label(name + ":") + tabbed(_number_text(name, num)))
    return lines


@command("dbtgf", Arg("record name"),
         help="Print a field's alarm state and its value read as every DBF type.")
def dbtgf(shell: "Shell", name: str | None) -> None:
    rec, field = _record(shell, name)

    def build() -> list[str]:
        return [f"status = {rec.f['STAT']}, severity = {rec.f['SEVR']}"] + \
            _typed_lines(rec, field)
    for line in shell.ioc.db.run_sync(build):
        shell.print(line)


_PUT_AS = ("STRING", "CHAR", "UCHAR", "SHORT", "USHORT", "LONG", "ULONG", "INT64", "UINT64",
           "FLOAT", "DOUBLE", "ENUM")


@command("dbtpf", Arg("record name"), Arg("value"),
         help="Put VALUE to a field converted to each DBR type in turn, printing the field "
              "after each put.")
def dbtpf(shell: "Shell", name: str | None, value: str | None) -> None:
    rec, field = _record(shell, name)
    if value is None:
        raise IocshError('Usage: dbtpf "pv name", "value"')
    try:
        num = float(value)
    except ValueError:
        num = None
    bits = {"CHAR": (8, True), "UCHAR": (8, False), "SHORT": (16, True), "USHORT": (16, False),
            "LONG": (32, True), "ULONG": (32, False), "INT64": (64, True), "UINT64": (64, False),
            "ENUM": (16, False)}

    def run() -> list[str]:
        out = []
        for kind in _PUT_AS:
            head = f"Put as DBR_{kind:<6}"
            if kind == "STRING":
                v: object = value
            elif num is None or not math.isfinite(num) and kind not in ("FLOAT", "DOUBLE"):
                out.append(f"Cvt to DBR_{kind} failed.")
                continue
            elif kind in ("FLOAT", "DOUBLE"):
                v = num
            else:
                v = _c_cast(num, *bits[kind])
            try:
                rec.put_and_process(field, v)
            except PutError as exc:
                out.append(f"{head} Error: {exc}")
                continue
            dbf, text = dbf_text(rec, field)
            out.append(f"{head} Ok, result as {label(dbf + ':')}{tabbed(text)}")
        return out
    for line in shell.ioc.db.run_sync(run):
        shell.print(line)

