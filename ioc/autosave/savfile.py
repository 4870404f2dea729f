"""Save files (``.sav``) written and read as synApps autosave writes and reads them.

Writing (``save_restore.c`` ``write_it``, ``dbrestore.c`` ``SR_write_array_data``)::

    # autosave R5.3<TAB>Automatically generated - DO NOT MODIFY - 261204-224247
    ! 1 channel(s) not connected - or not all gets were successful
    xxx:ao.VAL 4.1234567890123
    xxx:ao.DESC a \\"quoted\\" text
    #xxx:gone.VAL Search Issued
    xxx:wave @array@ { "1" "2" "3" }
    <END>

* Header: ``# `` + ``SRVERSION`` (``autosave R5.3`` in the current sources; older files
  say ``save/restore V4.9``) + tab + the text + ``fGetDateStr`` (local ``%y%m%d-%H%M%S``).
  The ``!`` line only when channels were not connected.
* ``NAME value``: one space, the value through ``epicsStrPrintEscaped`` (``\\n \\t \\\\ \\"
  \\'`` ..., other non-printables ``\\xHH``); an empty value leaves ``NAME `` (trailing space).
  Doubles are ``%.14g``, floats ``%.7g``, enums and menus their index (the caller formats
  them: :func:`format_double`, :func:`format_float`).  A ``NAME$`` (long string) value is
  cut to 199 characters.  A PV that could not be read is written ``#NAME <its state>``
  (``Search Issued``, ``Not Connected``, ...).
* Arrays of more than one element: ``NAME @array@ { "e1" "e2" }``, each element quoted
  with ``"`` and ``\\`` escaped by ``\\``, newline and CR as ``\\n``/``\\r``, at most 39
  characters counted with the escapes; arrays of 0 or 1 element are written as scalars.
* ``<END>`` and a newline last.

Reading (``dbrestore.c`` ``reboot_restore``, ``SR_array_restore``): lines through
``fgets`` (199 characters a piece), ``%80s%c%[^\\n\\r]`` gives the name, one separator and
the value; ``<END>`` (any word starting with ``<``) ends the data; ``#`` lines are
comments (an ``@array@`` after them is swallowed); ``!`` lines report missing values (and
abort the restore if incomplete sets are not OK); names must start with a letter or digit
and be shorter than 80 characters; a name without a field means ``.VAL``.  Scalars go
through ``epicsStrnRawFromEscaped``; array elements drop the backslash of ``\\"``/``\\\\``,
keep printable characters only, then go through ``epicsStrnRawFromEscaped`` too.

Trust (``dbrestore.c`` ``checkFile``): a file whose first line has no ``R``/``V`` version,
or a version below 1.8, is trusted as it is; others must end in ``<END>`` plus one or two
characters.  ``save_restore.c`` ``check_file`` (before the ``.savB`` is replaced) checks
only the end.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from ioc.access.maclib import MacLib, parse_macro_defns
from ioc.database.parser import raw_from_escaped

__all__ = ["ARRAY_MARKER", "SRVERSION", "SaveEntry", "SaveFileContents",
           "check_restore_file", "check_saved_file", "date_string", "format_double",
           "format_float", "format_save_file", "parse_save_text"]

SRVERSION = "autosave R5.3"        # save_restore.c SRVERSION
ARRAY_MARKER = "@array@"
BUF_SIZE = 200                     # fgets buffer
EBUF_SIZE = 2 * BUF_SIZE           # macro-expanded line
MAX_STRING_SIZE = 40               # one DBF_STRING element, with its NUL
PV_NAME_LEN = 80
_C_SPACE = " \t\n\v\f\r"
_SCALAR_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"'}

Value = Union[str, Sequence[str]]


def format_double(x: float) -> str:
    """``DOUBLE_FMT`` ``%.14g`` (what autosave writes for DBF_DOUBLE)."""
    return "%.14g" % x


def format_float(x: float) -> str:
    """``FLOAT_FMT`` ``%.7g`` (DBF_FLOAT)."""
    return "%.7g" % x


def date_string(when: Optional[float] = None) -> str:
    """``fGetDateStr``: local time as ``%y%m%d-%H%M%S``."""
    return time.strftime("%y%m%d-%H%M%S", time.localtime(time.time() if when is None
                                                         else when))


@dataclass
class SaveEntry:
    """One PV in a save file: ``value`` is the text of a scalar or the list of element
    texts of an array; ``valid`` False writes (or read) a ``#NAME`` line; ``line`` is the
    line number it was read from (0 when made in memory)."""
    pv: str
    value: Value
    valid: bool = True
    line: int = 0

    @property
    def is_array(self) -> bool:
        return not isinstance(self.value, str)

    @property
    def restore_name(self) -> str:
        """The name autosave restores to: ``.VAL`` added when there is no field."""
        return self.pv if "." in self.pv else self.pv + ".VAL"


def _is_print(c: str) -> bool:
    return " " <= c <= "~"


def _escape_scalar(text: str) -> str:
    """``epicsStrPrintEscaped``."""
    out = []
    for c in text:
        if c in _SCALAR_ESC:
            out.append(_SCALAR_ESC[c])
        elif _is_print(c):
            out.append(c)
        else:
            out.append("\\x%02x" % (ord(c) & 0xFF))
    return "".join(out)


def _escape_element(text: str) -> str:
    """One ``@array@`` element as ``SR_write_array_data`` writes a DBF_STRING element."""
    out, j = [], 0
    for c in text:
        if j >= MAX_STRING_SIZE - 1:
            break
        if c in '"\\':
            out.append("\\")
            j += 1
        out.append("\\n" if c == "\n" else "\\r" if c == "\r" else c)
        j += 1
    return '"' + "".join(out) + '"'


def format_save_file(entries: Sequence[SaveEntry], when: Optional[float] = None,
                     not_connected: int = 0, version: str = SRVERSION) -> str:
    """The whole text of a save file, ``<END>`` line included.

    ``when`` (seconds) dates the header (now when None).  Scalar values should be what a
    DBR_STRING holds (up to 39 characters): autosave reads lines in 199-character pieces
    and only a ``NAME$`` value continues into the next piece."""
    lines = [f"# {version}\tAutomatically generated - DO NOT MODIFY - {date_string(when)}\n"]
    if not_connected:
        lines.append(f"! {not_connected} channel(s) not connected - or not all gets were "
                     "successful\n")
    for e in entries:
        head = ("" if e.valid else "#") + e.pv + " "
        value = e.value
        if not isinstance(value, str) and len(value) <= 1:
            value = value[0] if len(value) else ""   # curr_elements <= 1: a scalar
        if isinstance(value, str):
            if e.pv.endswith("$"):
                value = value[:BUF_SIZE - 1]
            lines.append(head + _escape_scalar(value) + "\n")
        else:
            body = "".join(_escape_element(v) + " " for v in value)
            lines.append(f"{head}{ARRAY_MARKER} {{ {body}}}\n")
    lines.append("<END>\n")
    return "".join(lines)


@dataclass
class SaveFileContents:
    """A save file as ``reboot_restore`` reads it.

    ``entries``: the PVs to restore, in order; ``commented``: ``#NAME value`` lines (PVs
    autosave could not read, or lines commented out by hand); ``problems``: ``line N:
    ...`` texts; ``version``/``date``: from the header; ``not_connected``: the count in a
    ``!`` line; ``aborted``: a ``!`` line stopped the restore (incomplete sets not OK);
    ``trusted``/``reason``: the end-marker check (:func:`check_restore_file`) when read
    from a file.
    """
    entries: list[SaveEntry] = field(default_factory=list)
    commented: list[SaveEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    version: str = ""
    date: str = ""
    not_connected: int = 0
    aborted: bool = False
    trusted: bool = True
    reason: str = ""

    def values(self) -> dict[str, Value]:
        """``{pv: value}`` of the entries (a later line wins, as a later put would)."""
        return {e.pv: e.value for e in self.entries}


_VERSION_NUM = re.compile(r"\d+(\.\d*)?")


def check_restore_file(data: bytes) -> tuple[bool, str]:
    """``checkFile``: (trusted, why) for the bytes of a file to restore from."""
    if not data:
        return False, "empty file"
    first = data.split(b"\n", 1)[0][:304]
    i = first.find(b"R")
    if i < 0:
        i = first.find(b"V")
    if i < 0:
        return True, "no version in its first line (trusted, as autosave does)"
    m = _VERSION_NUM.match(first[i + 1:].decode("latin-1"))
    version = float(m.group(0)) if m else 0.0
    if version < 1.8:
        return True, f"version {version:g} < 1.8, before the <END> check (trusted)"
    if data[-6:-1] == b"<END>" or (len(data) >= 7 and data[-7:-2] == b"<END>"):
        return True, "ends with <END>"
    return False, "does not end with <END> (it was not completely written)"


def check_saved_file(data: Optional[bytes]) -> str:
    """``save_restore.c`` ``check_file``: ``"none"`` (cannot be opened: ``data`` None),
    ``"bad"`` or ``"ok"`` (ends with ``<END>`` plus one or two characters)."""
    if data is None:
        return "none"
    if len(data) >= 7 and (data[-7:-2] == b"<END>" or data[-6:-1] == b"<END>"):
        return "ok"
    return "bad"


class _Chunks:
    """The file as successive ``fgets(buf, 200)`` calls return it, with line numbers."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[int, str]] = []
        for number, line in enumerate(text.split("\n"), 1):
            line += "\n"
            while len(line) > BUF_SIZE - 1:
                self.items.append((number, line[:BUF_SIZE - 1]))
                line = line[BUF_SIZE - 1:]
            self.items.append((number, line))
        if text.endswith("\n") or not text:
            self.items.pop()            # no line after the last newline
        else:
            n, last = self.items.pop()
            if last[:-1]:
                self.items.append((n, last[:-1]))
        self.pos = 0

    def next(self) -> Optional[tuple[int, str]]:
        if self.pos >= len(self.items):
            return None
        self.pos += 1
        return self.items[self.pos - 1]


_LINE = re.compile(r"[ \t\n\v\f\r]*([^ \t\n\v\f\r]{1,80})(?:(.)([^\n\r]*))?", re.S)


def _parse_array(value: str, chunks: _Chunks) -> tuple[list[str], bool]:
    """``SR_array_restore`` from the ``{`` in ``value`` on: (elements, hit end of file)."""
    buf, p = value, value.find("{")

    def at(i: int) -> str:
        return buf[i] if 0 <= i < len(buf) else ""

    def refill() -> bool:
        nonlocal buf, p
        nxt = chunks.next()
        if nxt is None:
            return False
        buf, p = nxt[1], 0
        return True

    elements: list[str] = []
    while True:
        while at(p) != '"':                   # find the start of an element
            if at(p) == "":
                if not refill():
                    return elements, True
            elif at(p) == "}":
                return elements, False
            else:
                p += 1
        p += 1
        chars: list[str] = []
        while len(chars) < MAX_STRING_SIZE - 1 and at(p) != '"':
            c = at(p)
            if c == "":
                if not refill():
                    return elements, True
                if at(p) == '"':
                    break
            elif c == "\\" and at(p + 1) in ('"', "\\"):
                p += 1
            if _is_print(at(p)):
                chars.append(at(p))
            p += 1
        while True:                            # find the element's end
            while at(p) not in ("", '"', "\\"):
                p += 1
            if at(p) == '"':
                p += 1
                break
            if at(p) == "\\":
                p += 1
                if at(p) in ('"', "\\"):
                    p += 1
            elif not refill():
                elements.append(raw_from_escaped("".join(chars)))
                return elements, True
        elements.append(raw_from_escaped("".join(chars)))


def parse_save_text(text: str, macros: str = "",
                    incomplete_sets_ok: bool = True) -> SaveFileContents:
    """Read save-file text as ``reboot_restore`` does (no end-marker check here: see
    :func:`read_save_file`).  ``macros`` is the string given to
    ``set_pass<n>_restoreFile``; never raises for bad content."""
    out = SaveFileContents()
    head = text.split("\n", 1)[0]
    m = re.match(r"#\s*(.*?)\tAutomatically generated - DO NOT MODIFY - (\S*)", head)
    if m:
        out.version, out.date = m.group(1), m.group(2)
    maclib = None
    mac_messages: list[str] = []
    if macros:
        maclib = MacLib(parse_macro_defns(macros), mac_messages)

    def expand(number: int, chunk: str) -> str:
        if maclib is None:
            return chunk
        expanded, _ = maclib.expand_string(chunk, EBUF_SIZE)
        out.problems.extend(f"line {number}: {msg.replace(chr(10), '')}" for msg in mac_messages)
        mac_messages.clear()
        return expanded

    chunks = _Chunks(text)
    while (item := chunks.next()) is not None:
        number, bp = item[0], expand(*item)
        lm = _LINE.match(bp)
        if not lm:
            continue
        name, value = lm.group(1), lm.group(3) or ""
        if name.startswith("<"):
            break
        if name.startswith("#"):
            if len(name) == 1:
                continue                    # "# text": a plain comment (the header)
            entry = SaveEntry(name[1:], value, valid=False, line=number)
            if value.startswith(ARRAY_MARKER):
                entry.value, eof = _parse_array(value, chunks)
                if eof:
                    out.problems.append(f"line {number}: end of file in the array of "
                                        f"{name}")
            out.commented.append(entry)
            continue
        if len(name) >= PV_NAME_LEN:
            out.problems.append(f"line {number}: '{name}' is too long to be a PV name")
            continue
        if name[0].isascii() and name[0].isalnum():
            if value.startswith(ARRAY_MARKER):
                elements, eof = _parse_array(value, chunks)
                if eof:
                    out.problems.append(f"line {number}: end of file in the array of "
                                        f"{name}: not restored")
                else:
                    out.entries.append(SaveEntry(name, elements, line=number))
                continue
            if name.endswith("$"):
                if not bp.endswith("\n"):
                    more = chunks.next()
                    if more is not None:
                        bp = expand(*more)
                        value = (value + bp)[:BUF_SIZE - 1]
                        value = value[:-1] if value.endswith("\n") else value
                while not bp.endswith("\n"):
                    more = chunks.next()
                    if more is None:
                        break
                    bp = more[1]
            out.entries.append(SaveEntry(name, raw_from_escaped(value), line=number))
        elif name.startswith("!"):
            nm = re.match(r"[ \t\n\v\f\r]*([+-]?\d+)", bp[1:])     # atol(&bp[1])
            out.not_connected = int(nm.group(1)) if nm else 0
            n = out.not_connected
            out.problems.append(f"line {number}: {n} {'PV' if n == 1 else 'PVs'} had no "
                                "saved value")
            if not incomplete_sets_ok:
                out.problems.append(f"line {number}: aborting restore")
                out.aborted = True
                break
        else:
            out.problems.append(f"line {number}: '{name}' ignored (not a PV name)")
    return out
