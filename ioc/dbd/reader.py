"""Reader for EPICS database definition (``.dbd``) files.

We describe record types with EPICS's own definitions rather than hand-written tables: the
``recordtype``/``menu`` blocks in ``ioc/records/base.dbd`` were extracted from EPICS base 7.0.8's
``softIoc.dbd`` (``tools/extract_dbd.py``), so field names, types, sizes, menus, initial values,
``special()`` and ``pp()`` flags are exactly EPICS's. Our own ``device(...)`` entries live in
``db/psuTiming.dbd`` so the same file also loads into EPICS base's ``softIoc``.

Only the statements this IOC needs are interpreted: ``menu``, ``recordtype`` (``field`` blocks
with ``size``, ``menu``, ``initial``, ``special``, ``pp``, ``interest``, ``prompt``), ``device``
and ``include``. Everything else (``driver``, ``registrar``, ``variable``, ``link``, ``function``,
``breaktable``, ``%`` C lines) is skipped. Errors raise :class:`DbLoadError` with ``file:line``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .errors import DbLoadError

__all__ = ["FieldSpec", "RecordTypeSpec", "Dbd", "read_dbd"]

# Tokens: quoted strings (with escapes), words (EPICS "bare" characters), punctuation.
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<word>[A-Za-z0-9_\-+:.\[\]<>;$]+)|(?P<punct>[(){},]))'
)


@dataclass
class FieldSpec:
    """One ``field(NAME, DBF_xxx)`` of a record type."""

    name: str
    dbf: str                      # e.g. "DBF_DOUBLE", without further interpretation
    size: int = 0                 # DBF_STRING buffer size (incl. NUL)
    menu: str = ""                # DBF_MENU: the menu's name
    initial: str | None = None
    special: str = ""             # e.g. "SPC_NOMOD", "SPC_SCAN", "SPC_CALC", "102"
    pp: bool = False              # pp(TRUE): a put processes a Passive record
    interest: int = 0
    prompt: str = ""
    prop: bool = False            # prop(YES): a change posts DBE_PROPERTY on the record's VAL
    asl: int = 1                  # asl(ASL0|ASL1): the access security level (default ASL1)


@dataclass
class RecordTypeSpec:
    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)   # in dbd order


@dataclass
class Dbd:
    """Everything read from one or more dbd files."""

    menus: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # name -> [(C name, string)]
    recordtypes: dict[str, RecordTypeSpec] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)        # rtype -> {choice: link type}
    breaktables: dict[str, list[float]] = field(default_factory=dict)       # name -> [raw, eng, ...]

    def device_choices(self, rtype: str) -> list[str]:
        return list(self.devices.get(rtype, {}))


class _Lexer:
    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.toks: list[tuple[str, str, int]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.lstrip()
            if stripped.startswith("%") or stripped.startswith("#"):
                continue
            pos = 0
            while pos < len(line):
                if line[pos:].strip() == "" or line[pos:].lstrip().startswith("#"):
                    break
                m = _TOKEN.match(line, pos)
                if not m or m.end() == pos:
                    raise DbLoadError(filename, lineno, f"unexpected character {line[pos:].strip()[:1]!r}")
                pos = m.end()
                if m.group("str") is not None:
                    self.toks.append(("str", _unquote(m.group("str")), lineno))
                elif m.group("word") is not None:
                    self.toks.append(("word", m.group("word"), lineno))
                else:
                    self.toks.append(("punct", m.group("punct"), lineno))
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            last = self.toks[-1][2] if self.toks else 1
            raise DbLoadError(self.filename, last, "unexpected end of file")
        self.i += 1
        return tok

    def expect(self, punct: str) -> int:
        kind, val, line = self.next()
        if kind != "punct" or val != punct:
            raise DbLoadError(self.filename, line, f"expected {punct!r}, got {val!r}")
        return line

    def value(self) -> tuple[str, int]:
        kind, val, line = self.next()
        if kind == "punct":
            raise DbLoadError(self.filename, line, f"expected a name or string, got {val!r}")
        return val, line

    def args(self) -> list[str]:
        """``( a, b, ... )`` -> ["a", "b", ...]"""
        self.expect("(")
        out: list[str] = []
        while True:
            tok = self.peek()
            if tok and tok[0] == "punct" and tok[1] == ")":
                self.next()
                return out
            out.append(self.value()[0])
            tok = self.peek()
            if tok and tok[0] == "punct" and tok[1] == ",":
                self.next()

    def at(self, punct: str) -> bool:
        tok = self.peek()
        return bool(tok and tok[0] == "punct" and tok[1] == punct)

    def skip_block(self) -> None:
        depth = 0
        self.expect("{")
        depth = 1
        while depth:
            kind, val, _ = self.next()
            if kind == "punct" and val == "{":
                depth += 1
            elif kind == "punct" and val == "}":
                depth -= 1


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def read_dbd(path: str, dbd: Dbd | None = None, search_path: list[str] | None = None) -> Dbd:
    """Read ``path`` (and its ``include``s) into ``dbd`` (a new one if None) and return it."""
    dbd = dbd or Dbd()
    if not os.path.exists(path):
        for d in search_path or []:
            if os.path.exists(os.path.join(d, path)):
                path = os.path.join(d, path)
                break
        else:
            raise DbLoadError(path, 0, "file not found")
    with open(path, encoding="latin-1") as f:
        text = f.read()
    lex = _Lexer(text, path)
    here = [os.path.dirname(path) or "."] + list(search_path or [])
    while lex.peek() is not None:
        kind, word, line = lex.next()
        if kind != "word":
            raise DbLoadError(path, line, f"unexpected {word!r}")
        if word == "menu":
            (name,) = lex.args()
            choices: list[tuple[str, str]] = []
            lex.expect("{")
            while not lex.at("}"):
                k, w, ln = lex.next()
                if w == "choice":
                    cname, cstr = lex.args()
                    choices.append((cname, cstr))
                elif w == "include":
                    lex.value()
                else:
                    raise DbLoadError(path, ln, f"unexpected {w!r} in menu {name}")
            lex.expect("}")
            dbd.menus[name] = choices
        elif word == "recordtype":
            (name,) = lex.args()
            spec = dbd.recordtypes.setdefault(name, RecordTypeSpec(name))
            lex.expect("{")
            while not lex.at("}"):
                k, w, ln = lex.next()
                if w == "field":
                    fname, dbf = lex.args()
                    fs = FieldSpec(fname, dbf)
                    lex.expect("{")
                    while not lex.at("}"):
                        _, attr, aln = lex.next()
                        a = lex.args()
                        val = a[0] if a else ""
                        if attr == "size":
                            fs.size = int(val)
                        elif attr == "menu":
                            fs.menu = val
                        elif attr == "initial":
                            fs.initial = val
                        elif attr == "special":
                            fs.special = val
                        elif attr == "pp":
                            fs.pp = val.upper() == "TRUE"
                        elif attr == "interest":
                            fs.interest = int(val)
                        elif attr == "prompt":
                            fs.prompt = val
                        elif attr == "prop":
                            fs.prop = val.upper() == "YES"
                        elif attr == "asl":
                            fs.asl = 0 if val.upper() == "ASL0" else 1
                    lex.expect("}")
                    spec.fields[fname] = fs
                elif w == "include":
                    lex.value()
                else:
                    raise DbLoadError(path, ln, f"unexpected {w!r} in recordtype {name}")
            lex.expect("}")
        elif word == "device":
            rtype, linktype, _dset, choice = lex.args()
            dbd.devices.setdefault(rtype, {})[choice] = linktype
        elif word == "include":
            inc, _ = lex.value()
            for d in here:
                cand = os.path.join(d, inc)
                if os.path.exists(cand):
                    read_dbd(cand, dbd, search_path)
                    break
            else:
                raise DbLoadError(path, line, f"include file {inc!r} not found")
        elif word in ("driver", "registrar", "function", "variable", "link"):
            lex.args()
        elif word == "breaktable":
            (bname,) = lex.args()
            lex.expect("{")
            points: list[float] = []
            while not lex.at("}"):
                k, w, ln = lex.next()
                if k == "punct" and w == ",":
                    continue
                try:
                    points.append(float(_unquote(w) if w.startswith('"') else w))
                except ValueError:
                    raise DbLoadError(path, ln, f"bad breaktable value {w!r}") from None
            lex.expect("}")
            # first definition wins, as dbStatic ignores a duplicate breaktable
            dbd.breaktables.setdefault(bname, points)
        else:
            raise DbLoadError(path, line, f"unknown dbd statement {word!r}")
    return dbd
