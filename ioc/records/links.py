"""Database links: constants, DB links between records of this IOC, and INST_IO strings.

Link text follows EPICS: ``""`` or a number is a constant; ``@text`` is an INST_IO address for
device support; ``REC[.FIELD] [NPP|PP|CA|CP|CPP] [NMS|MS|MSS|MSI]`` is a DB link (FIELD defaults
to VAL). A name that is not a record (or field) of this IOC, or a link with the CA, CP or CPP
flag, is a CA link (:mod:`ioc.records.calink`, base's dbCa): it reads what its channel monitors
and stays disconnected, reading as LINK/INVALID, while nobody serves the name.

Semantics (dbGetLink/dbPutLink/dbScanFwdLink):
* PP: a Passive target is processed before it is read / after it is written;
* CP (input links): the record is processed whenever the target posts a value or alarm change;
  CPP: the same, only while the record itself is Passive;
* MS/MSS/MSI: maximize severity from the other record (LINK alarm; MSS also copies its status;
  MSI only when INVALID). Output links pass the source's severity to the target.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..filters import _json5
from .errors import PutError
from .fields import format_double
from .link_filters import FilterError, build_link_chain, filtered_read, split_link_name
from .constants import DBE_ALARM, DBE_VALUE, SCAN_PASSIVE, Sevr, Stat

if TYPE_CHECKING:
    from .base import Record



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
                # base reads constant links with its JSON5 yajl (trailing commas, comments,
                # 64-bit integers kept exact)
                v = _json5.parse_value(t)
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
        self.chain = None          # channel filters of the name (link_filters)
        name = _split_name_opts(text)[0]
        if split_link_name(name)[2]:
            try:
                self.chain = build_link_chain(name, target, field)
            except FilterError as exc:
                raise LinkError(f"dbChannelOpen: {exc}") from None

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
        if as_string and isinstance(v, float):
            # dbGetLink DBR_STRING of a double: cvtDoubleToString at the target's precision
            get_prec = getattr(t, "rset_precision", None)
            return format_double(v, (get_prec(self.field) if get_prec else 0) or 0)
        if self.field == "VAL" and hasattr(t, "array"):
            v = t.array()
        else:
            arr = t.field_array(self.field)     # aSub A..U, VALA..VALU: the used elements
            if arr is not None:
                v = arr.tolist()                # a list: scalar readers take element 0
        if self.chain is not None:
            v = filtered_read(self.chain, t, self.field, v)
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


def _split_name_opts(text: str) -> tuple[str, list[str]]:
    """(PV name, options) of PV link text: the name ends at white space or at a comma that is
    not inside a channel filter's braces/brackets (``REC.{arr:{s:1,i:2}} PP``)."""
    t, depth = text.strip(), 0
    for i, c in enumerate(t):
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif depth <= 0 and (c.isspace() or c == ","):
            return t[:i], t[i:].replace(",", " ").split()
    return t, []


def split_db_link(text: str) -> tuple[str, str, str, str]:
    """``"REC.FLD PP MS"`` -> (record, field, process option, maximize-severity option).

    The options are found as dbParseLink finds them: by substring, longest first, anywhere
    after the name (``"REC CPP,MSI"``, ``"REC NPPMS"``); anything else there is ignored, as
    base ignores it (``OUT "A.DISA B.RVAL"`` is ``A.DISA NPP NMS``).
    """
    name, opts = _split_name_opts(text)
    rest = " ".join(opts)
    proc = next((o for o in ("NPP", "CPP", "PP", "CA", "CP") if o in rest), "NPP")
    ms = next((o for o in ("NMS", "MSI", "MSS", "MS") if o in rest), "NMS")
    rec, field, _ = split_link_name(name)
    return rec, field, proc, ms


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


class CanonicalLinkText(str):
    """Link text that is already what base reads back (device support that rewrote the
    link's options, e.g. the Async Soft Channel's add_record keeping only MS bits)."""


def link_text(text: str, dbf: str) -> str:
    """A link field as EPICS base reads it back (dbGetString): a PV link in canonical form,
    ``NAME PP|NPP|CA|CP|CPP NMS|MS|MSI|MSS`` (a forward link: ``NAME`` or ``NAME CA``); a
    constant, hardware or JSON link as written."""
    if isinstance(text, CanonicalLinkText):
        return str(text)
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


def parse_link(text: str, lookup, dbf: str = "") -> Link:
    """Parse link text; ``lookup(name)`` returns a Record of this IOC or None; ``dbf`` is the
    link field's type (DBF_INLINK/DBF_OUTLINK/DBF_FWDLINK; "" counts as an input link).

    A PV link is a DB link when its record and field are in this IOC and it has none of the
    CA, CP, CPP flags (a forward link keeps only CA, an output link drops CPP: dbParseLink);
    otherwise a CA link (dbInitLink), which a field of this IOC still reaches in-process.
    Raises LinkError for malformed links (unknown options).
    """
    t = text.strip()
    if t.startswith("{"):
        from .jlinks import parse_json_link     # jlinks builds on this module
        return parse_json_link(t, lookup, dbf)
    if is_constant_text(t):
        return ConstantLink(t)
    if t.startswith("@"):
        return InstioLink(t)
    recname, field, proc, ms = split_db_link(t)
    if (dbf == "DBF_FWDLINK" and proc != "CA") or (dbf == "DBF_OUTLINK" and proc == "CPP"):
        proc = "NPP"
    target = lookup(recname)
    if target is not None and field != "TIME" and not target.has_field(field):
        target = None           # dbDbInitLink fails: base makes it a CA link (to nobody)
    if target is None or proc in ("CA", "CP", "CPP"):
        from .calink import CaLink      # calink builds on this module
        return CaLink(t, _split_name_opts(t)[0], field, proc, ms, target)
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
