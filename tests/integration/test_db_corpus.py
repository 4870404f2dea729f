"""Corpus test: real EPICS databases written by others (``tests/data/corpus/<source>/``, each
source with its SOURCES.md and licence) load into EPICS base's softIoc and into psu-timing-ioc,
and every record must read the same over Channel Access after iocInit.

How one corpus entry is run (:func:`run_entry`; ``python -m bench.corpus`` runs the whole
corpus with the same code and prints the table of results):

1. **Rewrites**, applied identically for both IOCs to a copy of the entry's directory
   (:func:`rewrite_db`; the stored files stay as published): a DTYP that softIoc.dbd does not
   define for the record type becomes ``"Soft Channel"`` (removed for types without soft
   support) and such a record's ``SCAN "I/O Intr"`` becomes ``Passive`` (no interrupts without
   the device); then, for a record on a CONSTANT-link (soft) device, an ``INP``/``OUT``
   holding a hardware address (``@...``, ``#C0 S0``, ``#L0 A1 @...``) is removed.  Nothing
   else changes.  Undefined macros get the values of the source's ``macros.txt`` (the corpus
   index: one line per entry, ``path  A=1,B=2`` or ``path  -``; files not listed are only
   included or substituted).
2. **Oracle check**: softIoc loads the rewritten entry (``dbLoadRecords``/``dbLoadTemplate``)
   and lists its records with ``dbl "" "RTYP"``; the corpus holds only entries softIoc loads
   without an error (the gathering kept no other).
3. **Both IOCs** start as users start them, ``softIoc -S st.cmd`` and ``psu-timing-ioc -S
   st.cmd`` (st.cmd: the same load lines, then ``iocInit``), on their own ports, each with
   ``EPICS_CA_ADDR_LIST`` set to itself (CA links of a file then reach that IOC only) and
   ``EPICS_CA_MAX_ARRAY_BYTES`` large enough for 64k-element waveforms (as pyepics's test IOC).
   Ready = the first record answers ``caget`` (polled with a deadline; a start that found its
   random port taken meanwhile is run once more).
4. **Compare** with the real ``caget -t`` (many PVs per call): for every record, VAL, STAT,
   SEVR, the common fields (:data:`COMMON_FIELDS`), the per-type fields of :data:`TYPE_FIELDS`
   the type has (units, precision, limits, array sizes, alarm and conversion settings) and
   every link field.  What changes by itself is not compared (counted as *skipped*): the
   :data:`VALUE_FIELDS` of records that process by themselves (periodic SCAN and what those
   process: base scans them first one period after iocRun, so their values depend on when
   they are read), the VAL of a clock device (``Soft Timestamp``, ``General Time``), ACKS of a
   record with CP/CPP/CA links (it latches what the order of CA connections made transient),
   and any field whose two softIoc reads, taken before and after the read of ours, differ.  A
   field that still differs is read again from both until they agree or a short deadline
   passes (CA links connect after iocInit): what then differs is a difference.

The test fails when ours differs.  :data:`EXPECTED_FAILURES` names, per entry, why ours differs
today, from the patterns of :func:`causes_of` / :func:`diff_causes`; the xfail is strict and
exact: an entry that now passes fails (XPASS), and so does one whose causes are no longer the
listed ones (the message gives the new table line; ``python -m bench.corpus --table`` prints
them all).  CI runs :data:`CI_SUBSET`; ``-m corpus`` or ``CORPUS_FULL=1`` runs every entry.
``test_pyepics_test_ioc`` loads pyepics's test IOC (pydebug.db + pyclearcache.db) as pyepics
does.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import pytest

from ..conftest import ROOT, epics_bin

CORPUS = ROOT / "tests" / "data" / "corpus"
MAX_ARRAY_BYTES = "20100300"            # as pyepics's tests/Setup/start_ioc.sh
READY_TIMEOUT_S = 30.0
SETTLE_DEADLINE_S = 1.5
CAGET_WAIT_S = "2"
CHUNK = 1500                            # PV names per caget call

pytestmark = pytest.mark.oracle

# ------------------------------------------------------------------------ fields compared
COMMON_FIELDS = ("NAME", "VAL", "STAT", "SEVR", "NSTA", "NSEV", "DESC", "SCAN", "PINI", "PHAS", "EVNT",
                 "DTYP", "PRIO", "UDF", "UDFS", "DISV", "DISA", "DISS", "DISP", "FLNK", "SDIS",
                 "TSE", "TSEL", "TPRO", "ACKS", "ACKT", "ASG")
# Per-type fields, where the record type has them (checked against softIoc.dbd).
TYPE_FIELDS = (
    "EGU", "PREC", "HOPR", "LOPR", "DRVH", "DRVL", "NELM", "NORD", "FTVL", "MALM", "INDX",
    "HIHI", "HIGH", "LOW", "LOLO", "HHSV", "HSV", "LSV", "LLSV", "HYST", "MDEL", "ADEL",
    "ZNAM", "ONAM", "ZSV", "OSV", "COSV", "OMSL", "OIF", "IVOA", "IVOV", "OOPT", "DOPT",
    "LINR", "ESLO", "EOFF", "ASLO", "AOFF", "ROFF", "SMOO", "NOBT", "MASK", "SHFT", "SIZV",
    "CALC", "OCAL", "OEVT", "ODLY", "SELM", "SELN", "SHFT", "FMT", "LEN",
    "DLY0", "DLY1", "DLY2", "DLY3", "DLY4", "DLY5", "DLY6", "DLY7", "DLY8", "DLY9", "DLYA",
    "DLYB", "DLYC", "DLYD", "DLYE", "DLYF",
    "ZRST", "ONST", "TWST", "THST", "FRST", "FVST", "SXST", "SVST", "EIST", "NIST", "TEST",
    "ELST", "TVST", "TTST", "FTST", "FFST",
    "ZRVL", "ONVL", "TWVL", "THVL", "FRVL", "FVVL", "SXVL", "SVVL", "EIVL", "NIVL", "TEVL",
    "ELVL", "TVVL", "TTVL", "FFVL", "UNSV", "SIMM", "SIMS",
)
CLOCK_DTYPS = {"Soft Timestamp", "General Time"}
RUNTIME_FIELDS = {("calcout", "DLYA")}   # a name of TYPE_FIELDS that is a state flag here
LINK_DBF = {"DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK"}


# ----------------------------------------------------------------------------- the dbd
@dataclasses.dataclass
class BaseDbd:
    fields: dict[str, dict[str, str]]            # rtype -> field -> DBF type (dbd order)
    devices: dict[str, dict[str, str]]           # rtype -> DTYP choice -> link type


def base_dbd_path() -> Path:
    return epics_bin().parent.parent / "dbd" / "softIoc.dbd"


@lru_cache(maxsize=1)
def base_dbd() -> BaseDbd:
    text = base_dbd_path().read_text()
    fields: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"^recordtype\((\w+)\)\s*\{(.*?)^\}", text, re.M | re.S):
        fields[m.group(1)] = dict(re.findall(r"^\s*field\((\w+),\s*(\w+)\)", m.group(2), re.M))
    devices: dict[str, dict[str, str]] = {}
    for rt, link, _dset, choice in re.findall(r'^device\((\w+),\s*(\w+),\s*(\w+),\s*"([^"]*)"\)',
                                              text, re.M):
        devices.setdefault(rt, {})[choice] = link
    return BaseDbd(fields, devices)


def fields_for(rtype: str) -> list[str]:
    """The fields compared for a record of ``rtype``: common, per-type and every link field."""
    have = base_dbd().fields.get(rtype, {})
    out: list[str] = []
    for f in COMMON_FIELDS + TYPE_FIELDS:
        if f in have and f not in out and (rtype, f) not in RUNTIME_FIELDS:
            out.append(f)
    for f, dbf in have.items():
        if dbf in LINK_DBF and f not in out:
            out.append(f)
    return out


# -------------------------------------------------------------------- the db rewriter
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>(?:[a-zA-Z0-9_\-+:.\[\]<>;]|\$\([^)\n]*\)|\$\{[^}\n]*\})+)
  | (?P<punct>[(){},\[\]])
  | (?P<other>.)
""", re.X | re.S)


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of the significant tokens of a db file."""
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        out.append((kind, m.group(), m.start(), m.end()))
    return out


def expand_macros(value: str, macros: dict[str, str]) -> str:
    """$(A), ${A}, $(A=default) as macLib expands them (unknown ones left as written)."""
    def sub(m: re.Match) -> str:
        body = m.group(1) or m.group(2)
        name, _, default = body.partition("=")
        if name in macros:
            return macros[name]
        return default if "=" in body else m.group(0)
    prev = None
    while prev != value:
        prev = value
        value = re.sub(r"\$\(([^()$]*)\)|\$\{([^{}$]*)\}", sub, value)
    return value


def parse_macros(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if text and text != "-":
        for part in re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", text):
            k, _, v = part.partition("=")
            out[k.strip()] = v
    return out


def _unquote(tok: str) -> str:
    return tok[1:-1] if tok[:1] in "\"'" else tok


def _skip_value(toks, i: int) -> int:
    """Index after a field value: a string/word, or a JSON object/array."""
    if toks[i][1] in "{[":
        depth = 0
        while i < len(toks):
            t = toks[i][1]
            if t in "{[":
                depth += 1
            elif t in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return i
    return i + 1


def _hardware_address(value: str) -> bool:
    v = value.strip()
    return v.startswith("@") or v.startswith("#")


def rewrite_db(text: str, macros: dict[str, str]) -> tuple[str, list[str]]:
    """The published db text with device support rewritten to soft support (see the module
    doc); returns the new text and one note per change."""
    dbd = base_dbd()
    toks = _tokens(text)
    edits: list[tuple[int, int, str]] = []
    notes: list[str] = []
    i = 0
    while i < len(toks):
        kind, t, _s, _e = toks[i]
        if not (kind == "word" and t in ("record", "grecord") and i + 1 < len(toks)
                and toks[i + 1][1] == "("):
            i += 1
            continue
        # record ( type , name ) [ { body } ]
        try:
            rtype = expand_macros(_unquote(toks[i + 2][1]), macros)
            rname = _unquote(toks[i + 4][1])
            j = i + 6
        except IndexError:
            break
        if j >= len(toks) or toks[j][1] != "{":
            i = j
            continue
        j += 1
        dtyp_stmt = None                        # (start, end, value token span, value)
        links: list[tuple[int, int, str, str]] = []
        scan_stmts: list[tuple[tuple, str]] = []
        while j < len(toks) and toks[j][1] != "}":
            if toks[j][1] in ("field", "info") and j + 1 < len(toks) and toks[j + 1][1] == "(":
                start = toks[j][2]
                fname = _unquote(toks[j + 2][1])
                k = _skip_value(toks, j + 4)
                value_tok = toks[j + 4]
                end = toks[k][3] if k < len(toks) else len(text)   # the ')'
                if toks[j][1] == "field":
                    value = _unquote(value_tok[1]) if value_tok[1] not in "{[" else ""
                    if fname == "DTYP":
                        dtyp_stmt = (start, end, value_tok, value)
                    elif fname == "SCAN":
                        scan_stmts.append((value_tok, value))
                    elif fname in ("INP", "OUT"):
                        links.append((start, end, fname, value))
                j = k + 1
            else:
                j += 1
        i = j + 1
        if rtype not in dbd.fields:
            continue                             # not a base type: the gathering excluded it
        devs = dbd.devices.get(rtype, {})
        link_type = next(iter(devs.values()), "CONSTANT") if devs else None
        if dtyp_stmt is not None:
            start, end, vtok, value = dtyp_stmt
            dtyp = expand_macros(value, macros)
            if dtyp in devs:
                link_type = devs[dtyp]
            elif "$" in dtyp:
                pass                             # set by a macro we cannot resolve here
            else:
                if "Soft Channel" in devs:
                    edits.append((vtok[2], vtok[3], '"Soft Channel"'))
                    notes.append(f"{rname}: DTYP {dtyp!r} -> 'Soft Channel'")
                    link_type = "CONSTANT"
                else:
                    edits.append((start, end, ""))
                    notes.append(f"{rname}: DTYP {dtyp!r} removed ({rtype} has no soft support)")
                for vtok, value in scan_stmts:  # no interrupts without the device
                    if expand_macros(value, macros) == "I/O Intr":
                        edits.append((vtok[2], vtok[3], '"Passive"'))
                        notes.append(f"{rname}: SCAN 'I/O Intr' -> 'Passive'")
        if link_type in ("CONSTANT", None):
            for start, end, fname, value in links:
                if _hardware_address(expand_macros(value, macros)):
                    edits.append((start, end, ""))
                    notes.append(f"{rname}: {fname} {value!r} removed (hardware address)")
    for start, end, repl in sorted(edits, reverse=True):
        text = text[:start] + repl + text[end:]
    return text, notes


# ------------------------------------------------------------------------- the corpus
@dataclasses.dataclass(frozen=True)
class Entry:
    source: str            # directory under tests/data/corpus
    path: str              # relative to the source directory
    macros: str            # "A=1,B=2" or ""
    also: tuple[tuple[str, str], ...] = ()    # more (path, macros) loads, same directory

    @property
    def id(self) -> str:
        return f"{self.source}/{self.path}" + "".join(f"+{Path(p).name}" for p, _ in self.also)

    def load_lines(self) -> str:
        """The st.cmd lines loading the entry."""
        out = []
        for path, macros in ((self.path, self.macros),) + self.also:
            cmd = "dbLoadTemplate" if path.endswith(".substitutions") else "dbLoadRecords"
            out.append(f'{cmd}("{Path(path).name}", "{macros}")\n')
        return "".join(out)


def corpus_entries() -> list[Entry]:
    out = []
    for index in sorted(CORPUS.glob("*/macros.txt")):
        for line in index.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path, _, macros = line.partition(" ")
            macros = macros.strip()
            out.append(Entry(index.parent.name, path, "" if macros == "-" else macros))
    return out


DB_SUFFIXES = (".db", ".template", ".vdb", ".substitutions", ".dbd")


def prepare(entry: Entry, workdir: Path) -> tuple[Path, list[str]]:
    """Copy the entry's directory (its db files rewritten) into ``workdir``; write st.cmd
    there.  Returns that directory (the IOCs' cwd) and the rewrite notes."""
    src_dir = (CORPUS / entry.source / entry.path).parent
    dst = workdir / "db"
    dst.mkdir(parents=True, exist_ok=True)
    macros = parse_macros(entry.macros)
    notes: list[str] = []
    for f in src_dir.iterdir():
        if f.is_file() and f.suffix in DB_SUFFIXES:
            text = f.read_text(errors="replace")
            if f.suffix not in (".substitutions", ".dbd"):
                text, n = rewrite_db(text, macros)
                if f.name == Path(entry.path).name:
                    notes += n
                else:
                    notes += [f"{f.name}: {x}" for x in n]
            (dst / f.name).write_text(text)
    (dst / "st.cmd").write_text(entry.load_lines() + "iocInit\n")
    return dst, notes


_ERR = re.compile(r"error|illegal|not found|can't|cannot|undefined|failed|bad ", re.I)


def oracle_records(entry: Entry, cwd: Path) -> tuple[list[tuple[str, str]], str]:
    """softIoc loads the entry (no iocInit) and lists its records: ([(name, rtype)], errors)."""
    (cwd / "check.cmd").write_text(entry.load_lines() + 'dbl "" "RTYP"\nexit\n')
    env = dict(os.environ, EPICS_CA_SERVER_PORT="0")
    r = subprocess.run([str(epics_bin() / "softIoc"), "check.cmd"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=env, cwd=str(cwd), timeout=60,
                       errors="replace")
    text = r.stdout + r.stderr
    records = []
    errors = []
    for ln in text.splitlines():
        while ln.startswith("epics> "):
            ln = ln[len("epics> "):]
        m = re.match(r'^(\S+), "(\w+)"$', ln)
        if m:
            records.append((m.group(1), m.group(2)))
        elif _ERR.search(ln) and not ln.startswith(("dbLoad", "dbl ")):
            errors.append(ln)
    return records, "\n".join(errors)


# ----------------------------------------------------------------------------- reading
def _ca_env(port: int) -> dict:
    return dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}", EPICS_CA_AUTO_ADDR_LIST="NO",
                EPICS_CA_MAX_ARRAY_BYTES=MAX_ARRAY_BYTES)


def _caget_t(port: int, pvs: list[str]) -> list[str] | None:
    """``caget -t`` of ``pvs`` (one value line each), or None if any did not connect."""
    r = subprocess.run([str(epics_bin() / "caget"), "-w", CAGET_WAIT_S, "-t", *pvs],
                       capture_output=True, text=True, env=_ca_env(port), timeout=120,
                       errors="replace")
    lines = r.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if r.returncode != 0 or len(lines) != len(pvs):
        return None
    return [ln.rstrip() for ln in lines]


MISSING = "<not connected>"


def read_pvs(port: int, pvs: list[str], per_record: dict[str, list[str]] | None = None
             ) -> dict[str, str]:
    """Values of ``pvs`` (many per caget call).  A call that fails is split per record, then
    per PV; a PV that does not connect reads as :data:`MISSING`."""
    out: dict[str, str] = {}

    def one_batch(batch: list[str]) -> None:
        got = _caget_t(port, batch)
        if got is not None:
            out.update(zip(batch, got))
            return
        if len(batch) == 1:
            out[batch[0]] = MISSING
            return
        # Split by record first (a missing record costs one call), then PV by PV.
        by_rec: dict[str, list[str]] = {}
        for pv in batch:
            by_rec.setdefault(pv.split(".")[0], []).append(pv)
        if len(by_rec) > 1:
            for group in by_rec.values():
                one_batch(group)
        else:
            if _caget_t(port, batch[:1]) is None:          # the record itself is missing
                out.update({pv: MISSING for pv in batch})
                return
            for pv in batch:
                one_batch([pv])

    for k in range(0, len(pvs), CHUNK):
        one_batch(pvs[k:k + CHUNK])
    return out


def wait_ready(handle, pv: str, timeout_s: float = READY_TIMEOUT_S) -> str | None:
    """None once ``pv`` answers; else why not (the IOC exited, or the deadline passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = handle.output()
        if any(c in out for c in PORT_CLASH):
            return "port taken: " + _tail(out) + " | " + " ".join(c for c in PORT_CLASH if c in out)
        if not handle.alive():
            return "exited at start-up: " + _tail(handle.output())
        r = subprocess.run([str(epics_bin() / "caget"), "-w", "0.3", "-t", pv],
                           capture_output=True, text=True, env=_ca_env(handle.port))
        if r.returncode == 0:
            return None
        if INIT_DONE in handle.output():        # iocInit is over: serving is a matter of s
            deadline = min(deadline, time.monotonic() + AFTER_INIT_S)
    return f"{pv} not served: " + _tail(handle.output())


INIT_DONE = "iocRun: All initialization complete"     # both IOCs print it after iocInit
AFTER_INIT_S = 3.0


_WHY = re.compile(r"error|fail|not found|unknown|bad |does not|illegal|invalid|can't|"
                  r"^\S+:\d+: ", re.I)


def _tail(text: str, n: int = 6) -> str:
    """The IOC's error lines (else its last lines), for a report."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    why = [ln for ln in lines if _WHY.search(ln) and not ln.startswith("dbLoad")]
    pick = why[:n] + ([f"(+{len(why) - n} more)"] if len(why) > n else []) if why else lines[-n:]
    return " | ".join(pick) if pick else "(no output)"


# Why ours did not load or start an entry, record-independent (for reports and the table).
LOAD_IOINTR = "SCAN I/O Intr on a soft device is fatal in ours (base logs it and goes on)"
LOAD_SUB = "sub/aSub subroutine not registered is fatal in ours (base logs it and goes on)"
LOAD_JSON = "JSON link / JSON5 constant not parsed ({const:9}, {calc:{...}})"
LOAD_JSON_ARRAY = "JSON5 constant array (trailing comma, big integers) not parsed"
LOAD_FILTER = "field modifier in a DB link (INP \"src.[2:4]\") not supported"
LOAD_LINK_WORD = ("unknown word after a link's PV name (OUT \"A.DISA B.RVAL\"): fatal in ours, "
                  "ignored by base")
LOAD_BRACES = "record names with { } (\"LN:{}Mode\") refused, base accepts them"
LOAD_HEX = ("hex beyond 0x7fffffff into a LONG field (HOPR 0xffffffff) refused, base takes it "
            "as unsigned (-1)")
LOAD_ASUB_FIELDS = "aSub input/output fields (A..U, VALA..) missing: links into them fail"


def not_built(rtype: str) -> str:
    return f"record type {rtype} not built yet"


def missing_dtyp(dtyp: str) -> str:
    return f"base device support DTYP {dtyp!r} missing"


CAUSES = (
    (r"unknown record type '(\w+)'", lambda m: not_built(m.group(1))),
    (r"device support does not provide I/O Intr", LOAD_IOINTR),
    (r"(Init|Proc) subroutine \((\w+)\) '[^']*' not found|SNAM subr '[^']*' not found",
     LOAD_SUB),
    (r"bad choice '([^']*)'", lambda m: missing_dtyp(m.group(1))),
    (r"bad constant link ['\"]\{", LOAD_JSON),
    (r"bad constant link '\[", LOAD_JSON_ARRAY),
    (r"has no field \[", LOAD_FILTER),
    (r"unknown link option", LOAD_LINK_WORD),
    (r"bad record name '[^']*[{}]", LOAD_BRACES),
    (r"'0x[0-9a-fA-F]+': \d+ out of range for LONG", LOAD_HEX),
    (r"record \S+ has no field [A-U]\b", LOAD_ASUB_FIELDS),
)


def causes_of(text: str) -> list[str]:
    out = []
    for pat, cause in CAUSES:
        for m in re.finditer(pat, text):
            c = cause(m) if callable(cause) else cause
            if c not in out:
                out.append(c)
    return out or [text.split(" | ")[0][:120]]


# --------------------------------------------------------------------------- compare
@dataclasses.dataclass
class FileResult:
    entry: Entry
    records: int = 0
    compared: int = 0
    skipped: int = 0           # fields that change by themselves (not compared)
    base_error: str = ""                  # softIoc refused it / did not start
    ours_error: str = ""                  # ours did not load it / start
    missing: list[str] = dataclasses.field(default_factory=list)     # records ours lacks
    diffs: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # pv, base, ours
    notes: list[str] = dataclasses.field(default_factory=list)
    self_processing: list[str] = dataclasses.field(default_factory=list)
    record_info: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    pini_running: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def loaded_both(self) -> bool:
        return not self.base_error and not self.ours_error

    @property
    def identical(self) -> bool:
        return self.loaded_both and not self.missing and not self.diffs

    def summary(self, limit: int = 40) -> str:
        if self.base_error:
            return f"softIoc: {self.base_error}"
        if self.ours_error:
            return f"ours: {self.ours_error}"
        lines = []
        if self.missing:
            lines.append(f"records missing in ours: {' '.join(self.missing[:limit])}")
        for pv, b, o in self.diffs[:limit]:
            lines.append(f"{pv}: softIoc {_short(b)!r} vs ours {_short(o)!r}")
        if len(self.diffs) > limit:
            lines.append(f"... {len(self.diffs) - limit} more")
        return "\n".join(lines) or "identical"


def _short(v: str, n: int = 60) -> str:
    return v if len(v) <= n else v[:n] + "..."


# What processing changes: not compared for records that process by themselves (below).
VALUE_FIELDS = ("VAL", "STAT", "SEVR", "NSTA", "NSEV", "UDF", "ACKS", "NORD", "DISA")


def self_processing(records: list[tuple[str, str]], base: dict[str, str]) -> set[str]:
    """Records that process by themselves after iocInit, as softIoc's fields say: periodic
    SCAN, the targets of delayed outputs (calcout ODLY, seq links after a DLYn), and what
    those process in turn (:func:`processed_from`).  Base scans a periodic record first one
    period after iocRun, and delayed outputs race each other, so their values depend on when
    they are read."""
    names = {n for n, _ in records}
    roots = {n for n in names if base.get(f"{n}.SCAN", "").endswith("second")}

    def target(link: str) -> str:
        words = base.get(link, "").split()
        return words[0].split(".")[0] if words else ""

    def positive(pv: str) -> bool:
        try:
            return float(base.get(pv, "0")) > 0
        except ValueError:
            return False
    for name, rtype in records:
        if rtype == "calcout" and positive(f"{name}.ODLY"):
            roots.add(target(f"{name}.OUT"))
        elif rtype == "seq":
            delayed = False
            for i in "0123456789ABCDEF":
                delayed = delayed or positive(f"{name}.DLY{i}")
                if delayed:
                    roots.add(target(f"{name}.LNK{i}"))
    return processed_from(records, base, roots & names)


def processed_from(records: list[tuple[str, str]], base: dict[str, str],
                   roots: set[str]) -> set[str]:
    """``roots`` and what their processing processes in turn: FLNK; output links with PP or
    CA, or to .PROC; records whose CP/CPP input links read them."""
    dbd = base_dbd().fields
    canon = {n: base.get(f"{n}.NAME") or n for n, _ in records}   # aliases: their record
    names = set(canon)
    edges: dict[str, set[str]] = {}
    for name, rtype in records:
        name = canon[name]
        for f, dbf in dbd.get(rtype, {}).items():
            if dbf not in LINK_DBF:
                continue
            words = base.get(f"{name}.{f}", "").split()
            if not words:
                continue
            target = words[0].split(".")[0]
            if target not in names:
                continue
            target = canon[target]
            flags = set(words[1:])
            if dbf == "DBF_FWDLINK" or (dbf == "DBF_OUTLINK" and (
                    flags & {"PP", "CA"} or words[0].endswith(".PROC"))):
                edges.setdefault(name, set()).add(target)
            elif dbf == "DBF_INLINK" and flags & {"CP", "CPP"}:
                edges.setdefault(target, set()).add(name)
    seen, todo = set(), [canon.get(r, r) for r in roots]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += edges.get(n, ())
    return {n for n in names if canon[n] in seen}


def compare(base_port: int, ours_port: int, records: list[tuple[str, str]],
            res: FileResult) -> None:
    """Read every compared field of ``records`` from both IOCs into ``res`` (see the module
    doc, step 4)."""
    pvs: list[str] = []
    skip: set[str] = set()
    for name, rtype in records:
        for f in fields_for(rtype):
            pvs.append(f"{name}.{f}")
    base1 = read_pvs(base_port, pvs)
    for name, rtype in records:
        if base1.get(f"{name}.DTYP") in CLOCK_DTYPS:
            skip.add(f"{name}.VAL")
    res.self_processing = sorted(self_processing(records, base1))
    for name in res.self_processing:
        skip.update(f"{name}.{f}" for f in VALUE_FIELDS)
    for name, rtype in records:     # ACKS latches what CA link connection order made transient
        if any(set(base1.get(f"{name}.{f}", "").split()[1:]) & {"CP", "CPP", "CA"}
               for f, dbf in base_dbd().fields.get(rtype, {}).items() if dbf in LINK_DBF):
            skip.add(f"{name}.ACKS")
    ours = read_pvs(ours_port, pvs)
    base2 = read_pvs(base_port, pvs)
    missing_recs = {pv.rsplit(".", 1)[0] for pv, v in ours.items() if v == MISSING}
    res.missing = [name for name, _ in records if name in missing_recs]
    candidates = []
    for pv in pvs:
        if pv.rsplit(".", 1)[0] in missing_recs:
            continue
        if base1[pv] != base2[pv] or pv in skip or base1[pv] == MISSING:
            res.skipped += 1
            continue
        res.compared += 1
        if ours[pv] != base2[pv]:
            candidates.append(pv)
    # Still different: read both again until they agree or the deadline passes.
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    last_base = {pv: base2[pv] for pv in candidates}
    last_ours = {pv: ours[pv] for pv in candidates}
    while candidates and time.monotonic() < deadline:
        b = read_pvs(base_port, candidates)
        o = read_pvs(ours_port, candidates)
        last_base.update(b)
        last_ours.update(o)
        candidates = [pv for pv in candidates if b[pv] != o[pv]]
        if candidates:
            time.sleep(0.1)
    res.diffs = [(pv, last_base[pv], last_ours[pv]) for pv in candidates]
    rtypes = dict(records)
    for pv in candidates:
        rec = pv.rsplit(".", 1)[0]
        res.record_info[rec] = {"RTYP": rtypes[rec], "PINI": base1.get(f"{rec}.PINI", ""),
                                "VAL": base1.get(f"{rec}.VAL", "")}
    res.pini_running = sorted(processed_from(records, base1, {
        n for n, _ in records if base1.get(f"{n}.PINI") == "RUNNING"}))


# What a difference of a file loaded in both comes from, as far as the patterns tell
# (softIoc's value, ours, the record): for reports and the expected-failure table.
def diff_causes(res: "FileResult") -> list[str]:
    out: list[str] = []

    def add(c: str) -> None:
        if c not in out:
            out.append(c)
    if res.missing:
        add("records missing in ours")
    per_rec: dict[str, dict[str, tuple[str, str]]] = {}
    for pv, b, o in res.diffs:
        rec, f = pv.rsplit(".", 1)
        per_rec.setdefault(rec, {})[f] = (b, o)
    for rec, d in per_rec.items():
        rt = res.record_info.get(rec, {}).get("RTYP", "?")
        for f, (b, o) in d.items():
            if rec in res.pini_running and f in VALUE_FIELDS:
                add(CAUSE_PINI_RUNNING)
            elif f == "MASK":
                add(CAUSE_MASK)
            elif f == "EOFF":
                add(CAUSE_EOFF)
            elif rt == "aai" and f in ("NORD", "VAL", "UDF"):
                add(CAUSE_AAI_CONST)
            elif rt in ("stringin", "stringout") and d.get("UDF") == ("0", "1") and f in (
                    "UDF", "SEVR", "STAT"):
                add(CAUSE_EMPTY_VAL)
            elif rt == "stringin" and d.get("STAT") == ("NO_ALARM", "UDF") and f in (
                    "STAT", "SEVR"):
                add(CAUSE_SI_UDF)
            elif rt == "waveform" and f in ("UDF", "STAT", "SEVR") and o in ("1", "UDF",
                                                                              "INVALID"):
                add(CAUSE_WF_UDF)
            elif rt == "mbbo" and f == "VAL" and o == "":
                add(CAUSE_MBBO_NOSTR)
            elif f in ("OUT", "INP") and o.startswith("@") and not b:
                add(CAUSE_INST_PUT)
            elif f == "VAL" and re.search(r"\d\.0\b", o) and not re.search(r"\d\.0\b", b):
                add(CAUSE_DBL_STR)
            else:
                add(f"{rt}.{f}: softIoc {_short(b, 30)!r} vs ours {_short(o, 30)!r}")
    return out


CAUSE_PINI_RUNNING = "PINI=RUNNING records not processed at iocRun (nor what they process)"
CAUSE_MASK = ("mbbi/mbbo MASK not set at init (from NOBT and SHFT, Raw Soft Channel: "
              "0xFFFFFFFF)")
CAUSE_EOFF = "ai/ao init: base sets EOFF = EGUL when ESLO=1 and EOFF=0, ours leaves 0"
CAUSE_AAI_CONST = "aai: constant array INP ({const:[...]}) not loaded at init (NORD 0, UDF)"
CAUSE_EMPTY_VAL = ('stringin/stringout with field(VAL, "") in the db: base clears UDF (SEVR '
                   "NO_ALARM), ours keeps UDF=1, SEVR INVALID")
CAUSE_SI_UDF = ("stringin processed with UDF set (PINI, empty INP): base raises no UDF alarm, "
                "ours UDF/INVALID")
CAUSE_WF_UDF = ("waveform processed with a constant/empty INP: base clears UDF (NO_ALARM), "
                "ours keeps UDF=1, UDF/INVALID")
CAUSE_MBBO_NOSTR = "mbbo without state strings: VAL reads '' in ours, the number in base"
CAUSE_INST_PUT = ("an INST_IO address (@...) put into a soft record's OUT/INP (printf OUT CP): "
                  "base refuses it, ours takes it")
CAUSE_DBL_STR = "double to string in a DB link ('0.0' in ours, base '0')"


def run_entry(entry: Entry, launch, workdir: Path | None = None) -> FileResult:
    """:func:`run_entry_once`, again if a server found its random port taken meanwhile (a CA
    client's ephemeral port can land on it between choosing and binding)."""
    res = run_entry_once(entry, launch, workdir)
    if any(c in res.base_error + res.ours_error for c in PORT_CLASH):
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        res = run_entry_once(entry, launch, workdir)
    return res


# ours says the first; softIoc's rsrv stops with the second (its UDP bind found the port taken)
PORT_CLASH = ("Address already in use", "can't proceed, suspending")


def run_entry_once(entry: Entry, launch, workdir: Path | None = None) -> FileResult:
    """Run one corpus entry in both IOCs.  ``launch(kind, argv, cwd)`` starts ``softIoc`` (kind
    "base") or ``psu-timing-ioc`` (kind "ours") with ``argv`` in ``cwd`` on a port of its own,
    with ``EPICS_CA_ADDR_LIST`` = that port and ``EPICS_CA_MAX_ARRAY_BYTES`` =
    :data:`MAX_ARRAY_BYTES`, and returns a handle with ``port``, ``alive()``, ``output()`` and
    ``stop()``; run_entry stops both."""
    t0 = time.monotonic()
    res = FileResult(entry)
    own_tmp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="corpus-")) if own_tmp else workdir
    handles = []
    try:
        cwd, res.notes = prepare(entry, workdir)
        records, errors = oracle_records(entry, cwd)
        res.records = len(records)
        if errors or not records:
            res.base_error = "refused: " + (errors or "no records")
            return res
        base = launch("base", ["-S", "st.cmd"], cwd)
        handles.append(base)
        ours = launch("ours", ["-S", "st.cmd"], cwd)
        handles.append(ours)
        first = records[0][0]
        why = wait_ready(base, first)
        if why:
            res.base_error = why
            return res
        why = wait_ready(ours, first)
        if why:
            res.ours_error = why
            return res
        compare(base.port, ours.port, records, res)
        return res
    finally:
        for h in handles:
            h.stop()
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
        res.seconds = time.monotonic() - t0


def ioc_env(port: int) -> dict:
    """Environment additions for an IOC on ``port`` (see :func:`run_entry`)."""
    return {"EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_MAX_ARRAY_BYTES": MAX_ARRAY_BYTES}


# ------------------------------------------------------------------ expected failures
# Entry id -> why ours differs from softIoc today.  Remove a line when its cause is fixed:
# a listed entry that passes fails the run (strict xfail).
# ``python -m bench.corpus --table`` prints the lines for what a run finds.
def because(*causes: str) -> str:
    return "; ".join(causes)


EXPECTED_FAILURES: dict[str, str] = {}

# The bounded CI form: a fixed subset across the sources and causes (under ~60 s).
CI_SUBSET: tuple[str, ...] = (
    "epics-base/modules/database/test/std/rec/aiTest.db",
    "epics-base/modules/database/test/std/rec/softTest.db",
    "epics-base/modules/database/src/template/top/exampleApp/Db/circle.db",
    "autosave/asApp/Db/save_restoreStatus.db",
    "iocStats/iocAdmin/Db/iocGeneralTime.template",
    "asyn/testAsynPortDriverApp/Db/testAsynPortDriver.db",
    "calc/calcApp/Db/userCalcOuts10.db",
    "calc/calcApp/Db/arrayTest.db",
    "std/stdApp/Db/genTweak.db",
    "optics/opticsApp/Db/qxbpm.db",
    "ip/ipApp/Db/ADAM_4015.db",
    "modbus/modbusApp/Db/ai.template",
    "mrfioc2/evrApp/Db/evrin.db",
    "ADCore/ADApp/Db/NDAttrPlotData.template",
    "pva2pva/iocBoot/iocimagedemo/table.db",
    "sscan/sscanApp/Db/scanProgress.db",
)


def file_causes(res: FileResult) -> list[str]:
    """Why an entry is not identical, as the patterns above tell."""
    if res.base_error:
        return [f"softIoc: {res.base_error[:150]}"]
    if res.ours_error:
        return causes_of(res.ours_error)
    return diff_causes(res)


def reason_expr(causes: list[str]) -> str:
    """The causes as :data:`EXPECTED_FAILURES` writes them: its constants where one matches."""
    names = {v: k for k, v in globals().items()
             if k.startswith(("CAUSE_", "LOAD_")) and isinstance(v, str)}
    parts = []
    for c in causes:
        m = re.fullmatch(r"base device support DTYP '(.*)' missing", c)
        n = re.fullmatch(r"record type (\w+) not built yet", c)
        parts.append(names.get(c) or (f"missing_dtyp({m.group(1)!r})" if m else
                                      f"not_built({n.group(1)!r})" if n else repr(c)))
    return parts[0] if len(parts) == 1 else f"because({', '.join(parts)})"


class KnownDifference(AssertionError):
    """Ours differs from softIoc for exactly the reasons EXPECTED_FAILURES lists."""


def check_result(res: FileResult) -> None:
    """Pass when ours matches softIoc; raise :class:`KnownDifference` when it differs for
    exactly the listed reasons; fail otherwise (a new difference, or a listed one gone: the
    table's line is then out of date and the message gives the new one)."""
    assert not res.base_error, f"softIoc: {res.base_error}"
    listed = EXPECTED_FAILURES.get(res.entry.id)
    if res.identical:
        return                                  # strict xfail turns a listed one into XPASS
    causes = file_causes(res)
    line = f"    {res.entry.id!r}:\n        {reason_expr(causes)},"
    if listed is not None and sorted(causes) == sorted(listed.split("; ")):
        raise KnownDifference(f"{res.entry.id}: {listed}\n{res.summary()}")
    raise AssertionError(
        f"{res.entry.id}: ours differs from softIoc "
        + ("for other reasons than EXPECTED_FAILURES lists" if listed else "")
        + f":\n{res.summary()}\nEXPECTED_FAILURES line for what it is now:\n{line}")


def _full_run(config) -> bool:
    return os.environ.get("CORPUS_FULL") == "1" or "corpus" in (config.getoption("markexpr")
                                                                or "")


def _params():
    out = []
    for e in corpus_entries():
        marks = [pytest.mark.corpus]
        if e.id in EXPECTED_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, raises=KnownDifference,
                                           reason=EXPECTED_FAILURES[e.id]))
        out.append(pytest.param(e, id=e.id, marks=marks))
    return out


class _Handle:
    """An IocProcess of the conftest fixtures as run_entry sees it."""

    def __init__(self, proc):
        self.p = proc
        self.port = proc.port

    def alive(self) -> bool:
        return self.p.proc.poll() is None

    def output(self) -> str:
        return self.p.output()

    def stop(self) -> None:
        self.p.stop()


@pytest.fixture
def launch(start_ioc, start_softioc, ca_ports):
    def start(kind: str, argv: list[str], cwd: Path):
        port = ca_ports.free[0]                 # the port the fixture takes next
        starter = start_softioc if kind == "base" else start_ioc
        p = starter(*argv, cwd=cwd, extra_env=ioc_env(port))
        assert p.port == port
        return _Handle(p)
    return start


@pytest.mark.parametrize("entry", _params())
def test_corpus_entry(entry, launch, tmp_path, request):
    if entry.id not in CI_SUBSET and not _full_run(request.config):
        pytest.skip("full corpus only (-m corpus or CORPUS_FULL=1)")
    check_result(run_entry(entry, launch, tmp_path))


# pyepics's own test IOC (tests/Setup/st.cmd there): both its databases in one IOC, with
# pyepics's EPICS_CA_MAX_ARRAY_BYTES (every IOC of this module has it).
PYEPICS_ENTRY = Entry("pyepics", "tests/Setup/pydebug.db", "P=PyTest:",
                      also=(("tests/Setup/pyclearcache.db", "P=PyTestClearCache:"),))


@pytest.mark.parametrize("entry", [pytest.param(PYEPICS_ENTRY, id=PYEPICS_ENTRY.id, marks=(
    [pytest.mark.xfail(strict=True, raises=KnownDifference,
                       reason=EXPECTED_FAILURES[PYEPICS_ENTRY.id])]
    if PYEPICS_ENTRY.id in EXPECTED_FAILURES else []))])
def test_pyepics_test_ioc(entry, launch, tmp_path):
    """pydebug.db and pyclearcache.db load as pyepics's test IOC loads them, and every record
    answers, with the same fields, as in softIoc."""
    res = run_entry(entry, launch, tmp_path)
    assert res.records == 38 + 11 and not res.base_error, res.base_error   # pydebug + pyclearcache
    assert not res.ours_error, res.ours_error
    assert not res.missing, f"records ours does not serve: {res.missing}"
    check_result(res)


def test_expected_failures_name_corpus_entries():
    ids = {e.id for e in corpus_entries()} | {PYEPICS_ENTRY.id}
    assert set(EXPECTED_FAILURES) <= ids, set(EXPECTED_FAILURES) - ids
    assert set(CI_SUBSET) <= ids, set(CI_SUBSET) - ids
    assert all(reason.strip() for reason in EXPECTED_FAILURES.values())
    causes = [v for k, v in globals().items() if k.startswith(("CAUSE_", "LOAD_"))]
    assert not [c for c in causes if "; " in c], "'; ' separates the causes of an entry"


def test_rewrite_soft_channel():
    text = ('record(ai, "$(P)x") {\n  field(DTYP, "asynFloat64")\n'
            '  field(INP, "@asyn($(PORT),0)")\n  field(SCAN, "I/O Intr")\n}\n'
            'record(bo, "y") { field(DTYP, "Soft Channel") field(OUT, "#C0 S1") }\n'
            'record(calc, "z") { field(DTYP, "$(D)") field(INPA, "@x") }\n'
            'record(stringin, "t") { field(DTYP, "Soft Timestamp") field(INP, "@%H") }\n')
    new, notes = rewrite_db(text, {"D": "devX", "P": "p:"})
    assert 'field(DTYP, "Soft Channel")' in new and "asyn(" not in new
    assert "#C0" not in new and 'field(INPA, "@x")' in new and 'DTYP, "$(D)"' not in new
    assert 'field(INP, "@%H")' in new and 'field(SCAN, "Passive")' in new
    assert len(notes) == 5, notes
