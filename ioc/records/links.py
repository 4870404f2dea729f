"""Database links: constants, DB links between records of this IOC, and INST_IO strings.

Link text follows EPICS: ``""`` or a number is a constant; ``@text`` is an INST_IO address for
device support; ``REC[.FIELD] [NPP|PP|CA|CP|CPP] [NMS|MS|MSS|MSI]`` is a DB link (FIELD defaults
to VAL). A name that is not a record of this IOC would be a CA link to another IOC in EPICS; we do
not reach other IOCs yet, so such a link stays disconnected and reading it raises a LINK/INVALID
alarm (EPICS shows the same while a CA link is unconnected).

Semantics (dbGetLink/dbPutLink/dbScanFwdLink):
* PP: a Passive target is processed before it is read / after it is written;
* CP (input links): the record is processed whenever the target posts a value or alarm change;
  CPP: the same, only while the record itself is Passive;
* MS/MSS/MSI: maximize severity from the other record (LINK alarm; MSS also copies its status;
  MSI only when INVALID). Output links pass the source's severity to the target.
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from .errors import PutError
from .constants import DBE_ALARM, DBE_VALUE, SCAN_PASSIVE, Sevr, Stat

if TYPE_CHECKING:
    from .base import Record

_PROCESS_OPTS = {"NPP", "PP", "CA", "CP", "CPP"}
_MS_OPTS = {"NMS", "MS", "MSS", "MSI"}


class LinkError(ValueError):
    pass


class Link:
    """Base link: nothing to read or write."""

    is_constant = False
    text = ""

    def get_value(self, rec: "Record", as_string: bool = False) -> Any:
        """dbGetLink: the value, or None if there is none (constant: use load_value at init).

        ``as_string``: an enumerated source field is returned as its state string (DBR_STRING).
        """
        return None

    def put_value(self, rec: "Record", value) -> bool:
        return True

    def forward(self, rec: "Record") -> None:
        """FLNK: process the target if it is Passive."""

    def time_source_record(self) -> "Record | None":
        return None

    def target_metadata(self) -> dict | None:
        """lset getUnits/getPrecision/getGraphicLimits/getAlarmLimits: the metadata of what the
        link reads (Record.metadata keys), None when the link has none (constants, INST_IO,
        unconnected CA links)."""
        return None

    def install(self, rec: "Record", fname: str) -> None:
        """Called at iocInit (and after a run-time relink) to set up CP monitors."""

    def uninstall(self) -> None:
        pass


class ConstantLink(Link):
    """A constant: a number, a JSON array, or a quoted string (EPICS 7 const links)."""

    is_constant = True

    def __init__(self, text: str):
        self.text = text

    def load_value(self):
        """The constant as a Python value (float, list, or str); None when empty."""
        t = self.text.strip()
        if t == "":
            return None
        if t.startswith("[") or t.startswith("{") or t.startswith('"'):
            try:
                v = json.loads(t)
            except ValueError as exc:
                raise LinkError(f"bad constant link {t!r}: {exc}") from None
            if isinstance(v, dict):
                v = v.get("const")
            return v
        try:
            return float(t)
        except ValueError:
            try:
                return float(int(t, 0))
            except ValueError:
                raise LinkError(f"bad constant link {t!r}") from None


class InstioLink(Link):
    """``@parameters`` for device support (INST_IO)."""

    def __init__(self, text: str):
        self.text = text
        self.parm = text.strip()[1:]


class DbLink(Link):
    """A link to a field of another record in this IOC."""

    def __init__(self, text: str, target: "Record", field: str, proc: str, ms: str):
        self.text = text
        self.target = target
        self.field = field
        self.proc = proc
        self.ms = ms
        self._listener = None

    def _maximize(self, rec: "Record", sevr: int, stat: int) -> None:
        if self.ms == "MS" and sevr:
            rec.set_sevr(Stat.LINK, sevr)
        elif self.ms == "MSS" and sevr:
            rec.set_sevr(stat, sevr)
        elif self.ms == "MSI" and sevr == Sevr.INVALID:
            rec.set_sevr(Stat.LINK, sevr)

    def get_value(self, rec: "Record", as_string: bool = False):
        t = self.target
        if self.proc == "PP" and t is not rec and t.f["SCAN"] == SCAN_PASSIVE:
            t.db_process()
        self._maximize(rec, t.f["SEVR"], t.f["STAT"])
        if self.field == "TIME":
            return None
        v = t.f[self.field]
        if as_string and isinstance(v, int):
            strs = t.choices(self.field)
            if strs is not None:
                return strs[v] if 0 <= v < len(strs) else str(v)
        if self.field == "VAL" and hasattr(t, "array"):
            return t.array()
        return v

    def put_value(self, rec: "Record", value) -> bool:
        t = self.target
        try:
            t.put_field(self.field, value, from_link=True)
        except PutError:
            rec.set_sevr(Stat.LINK, Sevr.INVALID)
            return False
        # Output links pass the source's severity on (MS on an OUT link).
        if self.ms == "MS" and rec.f["NSEV"]:
            t.set_sevr(Stat.LINK, rec.f["NSEV"])
        elif self.ms == "MSS" and rec.f["NSEV"]:
            t.set_sevr(rec.f["NSTA"], rec.f["NSEV"])
        elif self.ms == "MSI" and rec.f["NSEV"] == Sevr.INVALID:
            t.set_sevr(Stat.LINK, Sevr.INVALID)
        if self.field == "PROC" or (self.proc == "PP" and t.f["SCAN"] == SCAN_PASSIVE):
            if t.f["PACT"]:
                t.f["RPRO"] = 1
            else:
                t.db_process()
        return True

    def forward(self, rec: "Record") -> None:
        t = self.target
        if self.field == "PROC" or t.f["SCAN"] == SCAN_PASSIVE:
            t.db_process()

    def time_source_record(self) -> "Record | None":
        return self.target if self.field == "TIME" else None

    _md_depth = 0       # links followed by target_metadata now (a loop of links ends there)

    def target_metadata(self) -> dict | None:
        """dbDbGetUnits & co.: a dbGet of the target field with only the metadata options."""
        if self.field == "TIME" or DbLink._md_depth > 16:
            return None
        DbLink._md_depth += 1
        try:
            return self.target.metadata(self.field)
        finally:
            DbLink._md_depth -= 1

    def install(self, rec: "Record", fname: str) -> None:
        if self.proc not in ("CP", "CPP") or fname == "FLNK":
            return
        db = rec.db

        def on_post(mask: int, rec=rec) -> None:
            if not mask & (DBE_VALUE | DBE_ALARM):
                return
            if self.proc == "CPP" and rec.f["SCAN"] != SCAN_PASSIVE:
                return
            db.scan_once(rec)

        self._listener = on_post
        self.target.listeners.setdefault(self.field, []).append(on_post)
        # EPICS processes a CP record once when its monitor connects.
        db.scan_once_after_init(rec, self.proc == "CPP")

    def uninstall(self) -> None:
        if self._listener is not None:
            ls = self.target.listeners.get(self.field, [])
            if self._listener in ls:
                ls.remove(self._listener)
            self._listener = None


class ExternalLink(Link):
    """A PV name that is not in this IOC: a CA link in EPICS, unconnected here."""

    def __init__(self, text: str, name: str):
        self.text = text
        self.pvname = name

    def get_value(self, rec: "Record", as_string: bool = False):
        rec.set_sevr(Stat.LINK, Sevr.INVALID)
        return None

    def put_value(self, rec: "Record", value) -> bool:
        rec.set_sevr(Stat.LINK, Sevr.INVALID)
        return False


def split_db_link(text: str) -> tuple[str, str, str, str]:
    """``"REC.FLD PP MS"`` -> (record, field, process option, maximize-severity option)."""
    parts = text.replace(",", " ").split()
    name = parts[0]
    proc, ms = "NPP", "NMS"
    for opt in parts[1:]:
        u = opt.upper()
        if u in _PROCESS_OPTS:
            proc = u
        elif u in _MS_OPTS:
            ms = u
        else:
            raise LinkError(f"unknown link option {opt!r} in {text!r}")
    rec, _, field = name.partition(".")
    return rec, field or "VAL", proc, ms


def is_constant_text(text: str) -> bool:
    t = text.strip()
    if t == "" or t[0] in "[{\"":
        return True
    try:
        float(t)
        return True
    except ValueError:
        pass
    try:
        int(t, 0)
        return True
    except ValueError:
        return False


def link_text(text: str, dbf: str) -> str:
    """A link field as EPICS base reads it back (dbGetString): a PV link in canonical form,
    ``NAME PP|NPP|CA|CP|CPP NMS|MS|MSI|MSS`` (a forward link: ``NAME`` or ``NAME CA``); a
    constant, hardware or JSON link as written."""
    t = text.strip()
    if is_constant_text(t) or t.startswith("@") or t.startswith("#"):
        return t
    try:
        rec, field, proc, ms = split_db_link(t)
    except LinkError:
        return t
    name = t.replace(",", " ").split()[0]
    if dbf == "DBF_FWDLINK":
        return name + (" CA" if proc == "CA" else "")
    if dbf == "DBF_OUTLINK" and proc == "CPP":
        proc = "NPP"
    return f"{name} {proc} {ms}"


def parse_link(text: str, lookup) -> Link:
    """Parse link text; ``lookup(name)`` returns a Record of this IOC or None.

    Raises LinkError for malformed links or a DB link to a field the target does not have.
    """
    t = text.strip()
    if is_constant_text(t):
        return ConstantLink(t)
    if t.startswith("@"):
        return InstioLink(t)
    recname, field, proc, ms = split_db_link(t)
    target = lookup(recname)
    if target is None:
        return ExternalLink(t, recname)
    if field != "TIME" and not target.has_field(field):
        raise LinkError(f"record {recname} has no field {field}")
    return DbLink(t, target, field, proc, ms)


def constant_value(link: "Link | None", *, scalar: bool = False) -> Any:
    """What a constant link holds, as recGblInitConstantLink/dbLoadLink load it at iocInit:
    None when ``link`` is not a constant, is empty, or is malformed (the callers that must
    report a malformed constant call ``load_value`` themselves). ``scalar``: an array constant
    gives its first element (an empty array: None)."""
    if not isinstance(link, ConstantLink):
        return None
    try:
        v = link.load_value()
    except LinkError:
        return None
    if scalar and isinstance(v, list):
        v = v[0] if v else None
    return v


def as_float(value) -> float | None:
    """A link value as a double (enum index, number, or numeric string); None if impossible."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    try:
        return float(value[0]) if len(value) else math.nan
    except (TypeError, ValueError, IndexError):
        return None
