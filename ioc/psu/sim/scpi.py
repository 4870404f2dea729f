"""SCPI syntax of the E3631A as the simulator parses it: errors, message units, the header tree,
parameter tokens. Pure functions, no instrument state.

The rules are those of the User's Guide (UG07 p.102-106; reference §5):

* short form = the upper-case letters of a mnemonic, long form = the whole word; either is
  accepted in any case, nothing in between (``CURR``/``CURRENT`` yes, ``CUR``/``CURREN`` -113);
  a mnemonic longer than 12 characters is -112;
* ``;`` separates message units and keeps the current path, ``;:`` returns to the root, common
  commands (``*RST``) may sit anywhere and leave the path alone;
* the path after a unit is the node above its last written mnemonic (``SOUR:VOLT MIN;CURR MAX``
  is ``SOUR:CURR``). One E3631A-specific rule makes the manual's own example work: a header made
  of ONE root mnemonic that has subnodes (``INST``, ``OUTP``, ``MEAS``, ``DISP``) leaves the path
  at that node, so ``INST P6V;SOUR:CURR MIN`` is -113 and needs ``;:``, while ``APPL`` (no
  subnodes) leaves it at the root, so ``APPL P25V,1,0.1;APPL N25V,0,0`` is valid;
* a space separates header and parameters, commas separate parameters; a space before or after
  a colon or before a comma is -102, a wrong separator -103.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ERRORS: dict[int, str] = {
    0: "No error",
    -101: "Invalid character", -102: "Syntax error", -103: "Invalid separator",
    -104: "Data type error", -105: "GET not allowed", -108: "Parameter not allowed",
    -109: "Missing parameter", -112: "Program mnemonic too long", -113: "Undefined header",
    -114: "Header suffix out of range", -120: "Numeric data error",
    -121: "Invalid character in number", -123: "Numeric overflow", -124: "Too many digits",
    -128: "Numeric data not allowed", -131: "Invalid suffix", -134: "Suffix too long",
    -138: "Suffix not allowed", -141: "Invalid character data", -144: "Character data too long",
    -148: "Character data not allowed", -151: "Invalid string data",
    -158: "String data not allowed", -161: "Invalid block data", -168: "Block data not allowed",
    -170: "Expression error", -178: "Expression data not allowed",
    -211: "Trigger ignored", -221: "Settings conflict", -222: "Data out of range",
    -223: "Too much data", -224: "Illegal parameter value", -330: "Self-test failed",
    -350: "Too many errors", -410: "Query INTERRUPTED", -420: "Query UNTERMINATED",
    -430: "Query DEADLOCKED", -440: "Query UNTERMINATED after indefinite response",
    501: "Isolator UART framing error", 502: "Isolator UART overrun error",
    511: "RS-232 framing error", 512: "RS-232 overrun error", 513: "RS-232 parity error",
    514: "Command allowed only with RS-232", 521: "Input buffer overflow",
    522: "Output buffer overflow", 550: "Command not allowed in local",
    800: "P25V and N25V coupled by track system",
    801: "P25V and N25V coupled by trigger subsystem",
}

MAX_MNEMONIC = 12      # longer program mnemonics are -112
MAX_STRING = 40        # DISP:TEXT accepts up to 40 characters, more is -223


class ScpiError(Exception):
    """A parse or execution error; ``code`` is the SCPI/E3631A error number."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def error_text(code: int) -> str:
    """The error as ``SYST:ERR?`` prints it: ``-113,"Undefined header"``, ``+0,"No error"``."""
    return f'{code:+d},"{ERRORS.get(code, "Device-specific error")}"'


def nr3(x: float) -> str:
    """SCPI NR3 as the E3631A prints it: ``+3.30649800E+00`` (never ``-0``)."""
    if x == 0:
        x = 0.0
    return f"{x:+.8E}"


def fixed6(x: float) -> str:
    """``APPL?`` number format: ``5.000000`` / ``-5.000000`` (no sign on positive values)."""
    return f"{x + 0.0:.6f}" if round(x, 6) != 0 else "0.000000"


# ---------------------------------------------------------------- message units

def split_units(message: str) -> list[str]:
    """Split a program message at ``;`` outside quoted strings (a doubled quote escapes itself)."""
    units, cur, quote = [], [], ""
    for ch in message:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""          # a doubled quote re-opens at once on the next character
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            units.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    units.append("".join(cur))
    return units


_COMMON_RE = re.compile(r"\*[A-Za-z]+\??")
_HEADER_RE = re.compile(r":?[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*)*\??")


@dataclass
class Unit:
    """One parsed program message unit (header checked, parameters still text)."""
    text: str
    header: str
    params: str
    query: bool
    common: bool
    absolute: bool
    mnemonics: list[str] = field(default_factory=list)


def parse_unit(text: str) -> Unit:
    """Split ``text`` (stripped) into header and parameters; ScpiError for a bad header."""
    m = re.match(r"(\S*)(\s*)(.*)$", text, re.S)
    header, params = m.group(1), m.group(3).rstrip()
    if not header:
        raise ScpiError(-102)
    if "," in header or '"' in header or "'" in header:
        raise ScpiError(-103)          # e.g. "VOLT,1": comma where a space belongs
    if header.startswith("*"):
        if not _COMMON_RE.fullmatch(header):
            raise ScpiError(-102 if re.fullmatch(r"[*A-Za-z0-9?:]+", header) else -101)
        query = header.endswith("?")
        name = header[1:].rstrip("?").upper()
        return Unit(text, header, params, query, True, True, [name])
    if not _HEADER_RE.fullmatch(header):
        if re.search(r"[^A-Za-z0-9_:?]", header):
            raise ScpiError(-101)
        raise ScpiError(-102)          # "SOUR:" / "::" / "VOLT?X"
    if params.startswith(":"):
        raise ScpiError(-102)          # "SOUR :VOLT" - a space before a colon
    query = header.endswith("?")
    body = header.rstrip("?")
    absolute = body.startswith(":")
    mnems = body.lstrip(":").split(":")
    if any(len(mn) > MAX_MNEMONIC for mn in mnems):
        raise ScpiError(-112)
    return Unit(text, header, params, query, False, absolute, mnems)


# ---------------------------------------------------------------- the header tree

class Node:
    """A header node: ``spec`` like ``VOLTage`` or ``[LEVel]`` (optional = default node).

    ``key`` names the command a leaf runs (the model maps keys to handlers). ``suffix`` is an
    allowed numeric-suffix range, e.g. ``ISUMmary<n>`` with (1, 3).
    """

    def __init__(self, spec: str, children: tuple["Node", ...] = (), key: str | None = None,
                 suffix: tuple[int, int] | None = None):
        self.optional = spec.startswith("[")
        name = spec.strip("[]")
        self.long = name.upper()
        self.short = "".join(c for c in name if c.isupper() or c.isdigit())
        self.children = children
        self.key = key
        self.suffix = suffix
        self.parent: Node | None = None
        for c in children:
            c.parent = self

    def match(self, mnemonic: str) -> int | None:
        """The numeric suffix (1 when absent) if ``mnemonic`` names this node, else None."""
        up = mnemonic.upper()
        num = None
        if self.suffix:
            m = re.fullmatch(r"([A-Z]+)(\d*)", up)
            if not m:
                return None
            up, digits = m.group(1), m.group(2)
            num = int(digits) if digits else 1
        if up not in (self.short, self.long):
            return None
        if num is not None and not self.suffix[0] <= num <= self.suffix[1]:
            raise ScpiError(-114)
        return num if num is not None else 1

    def __repr__(self) -> str:
        return f"Node({self.short})"


def N(spec: str, *children: Node, key: str | None = None,
      suffix: tuple[int, int] | None = None) -> Node:
    return Node(spec, tuple(children), key, suffix)


def _level(prefix: str) -> Node:
    """``VOLTage`` / ``CURRent`` subtree: [:LEVel][:IMMediate][:AMPLitude] and :TRIGgered."""
    return N("[LEVel]", N("[IMMediate]", N("[AMPLitude]", key=prefix)),
             N("TRIGgered", N("[AMPLitude]", key=prefix + ":TRIG")))


def _status_block(prefix: str, *extra: Node) -> tuple[Node, ...]:
    return (N("[EVENt]", key=prefix + ":EVEN"), N("CONDition", key=prefix + ":COND"),
            N("ENABle", key=prefix + ":ENAB"), *extra)


ROOT = N(
    "ROOT",
    N("APPLy", key="APPL"),
    N("INSTrument", N("[SELect]", key="INST:SEL"), N("NSELect", key="INST:NSEL"),
      N("COUPle", N("[TRIGger]", key="INST:COUP"))),
    N("MEASure", N("[VOLTage]", N("[DC]", key="MEAS:VOLT")),
      N("CURRent", N("[DC]", key="MEAS:CURR"))),
    N("OUTPut", N("[STATe]", key="OUTP:STAT"), N("TRACk", N("[STATe]", key="OUTP:TRAC"))),
    N("[SOURce]", N("VOLTage", _level("SOUR:VOLT")), N("CURRent", _level("SOUR:CURR"))),
    N("INITiate", N("[IMMediate]", key="INIT")),
    N("TRIGger", N("[SEQuence]", N("SOURce", key="TRIG:SOUR"), N("DELay", key="TRIG:DEL"))),
    N("DISPlay", N("[WINDow]", N("[STATe]", key="DISP"),
                   N("TEXT", N("[DATA]", key="DISP:TEXT"), N("CLEar", key="DISP:TEXT:CLE")))),
    N("SYSTem", N("BEEPer", N("[IMMediate]", key="SYST:BEEP")),
      N("ERRor", N("[NEXT]", key="SYST:ERR")), N("VERSion", key="SYST:VERS"),
      N("REMote", key="SYST:REM"), N("LOCal", key="SYST:LOC"), N("RWLock", key="SYST:RWL")),
    N("STATus", N("QUEStionable", *_status_block(
        "STAT:QUES", N("INSTrument", *_status_block(
            "STAT:QUES:INST", N("ISUMmary", *_status_block("STAT:QUES:INST:ISUM"),
                                suffix=(1, 3))))))),
)


@dataclass
class Resolved:
    leaf: Node
    path: Node      # the current path after this unit
    suffix: int     # numeric header suffix (ISUM<n>), 1 when none


def _descend_defaults(node: Node) -> Node | None:
    while node.key is None:
        node = next((c for c in node.children if c.optional), None)
        if node is None:
            return None
    return node


def resolve(start: Node, mnemonics: list[str]) -> Resolved:
    """Resolve header mnemonics from the current path ``start``; -113 if there is no such header."""
    suffix = 1

    def walk(node: Node, i: int) -> tuple[Node, Node, Node] | None:
        # returns (leaf, parent of the last written mnemonic, node of the last written mnemonic)
        nonlocal suffix
        if i == len(mnemonics):
            leaf = _descend_defaults(node)
            return (leaf, None, None) if leaf else None
        for c in node.children:
            num = c.match(mnemonics[i])
            if num is not None:
                r = walk(c, i + 1)
                if r:
                    if c.suffix:
                        suffix = num
                    return r if r[1] is not None else (r[0], node, c)
        for c in node.children:
            if c.optional:
                r = walk(c, i)
                if r:
                    return r
        return None

    r = walk(start, 0)
    if r is None:
        raise ScpiError(-113)
    leaf, parent, written = r
    path = parent
    if len(mnemonics) == 1 and parent is ROOT and written.children:
        path = written      # "INST P6V;..." stays in INST (see module docstring)
    return Resolved(leaf, path, suffix)


def classify(unit: str) -> tuple[str, bool, str]:
    """(command key, is_query, parameter text) of one message unit resolved from the root.

    The key is ``""`` for a unit that does not parse; is_query then follows the ``?``.
    """
    text = unit.strip()
    try:
        u = parse_unit(text)
        if u.common:
            return "*" + u.mnemonics[0], u.query, u.params
        return resolve(ROOT, u.mnemonics).leaf.key, u.query, u.params
    except ScpiError:
        head = text.split(None, 1)[0] if text else ""
        return "", head.endswith("?"), ""


# ---------------------------------------------------------------- parameters

@dataclass
class Tok:
    """A parameter: kind ``num`` (value, suffix), ``char`` (upper-case text) or ``str`` (value)."""
    kind: str
    text: str
    value: float | str | None = None
    suffix: str = ""


_NUM_RE = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?([A-Za-z]*)")


def _number(text: str) -> Tok:
    m = _NUM_RE.fullmatch(text)
    if not m or not (m.group(2) or m.group(3)):
        raise ScpiError(-121)
    digits = len(m.group(2)) + len(m.group(3) or "")
    if digits > 255:
        raise ScpiError(-124)
    if m.group(4) and abs(int(m.group(4))) > 32000:
        raise ScpiError(-123)
    suffix = m.group(5).upper()
    if len(suffix) > MAX_MNEMONIC:
        raise ScpiError(-134)
    try:
        value = float(text[:len(text) - len(m.group(5))])
    except (ValueError, OverflowError):
        raise ScpiError(-120)
    if value in (float("inf"), float("-inf")):
        raise ScpiError(-123)
    return Tok("num", text, value, suffix)


def tokenize(params: str) -> list[Tok]:
    """Parameters of one unit. Whitespace may follow a comma, but not precede it (-102)."""
    toks: list[Tok] = []
    i, n = 0, len(params)
    if n == 0:
        return toks
    while True:
        while i < n and params[i].isspace():
            i += 1
        if i >= n or params[i] == ",":
            raise ScpiError(-102)                   # empty parameter: "APPL P6V,,1" / "P6V,"
        ch = params[i]
        if ch in "'\"":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ScpiError(-151)
                if params[j] == ch:
                    if j + 1 < n and params[j + 1] == ch:
                        buf.append(ch)
                        j += 2
                        continue
                    break
                buf.append(params[j])
                j += 1
            toks.append(Tok("str", params[i:j + 1], "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not params[j].isspace() and params[j] != ",":
                j += 1
            word = params[i:j]
            i = j
            if word[0] == "#":
                raise ScpiError(-161)
            if word[0] == "(":
                raise ScpiError(-170)
            if word[0].isdigit() or word[0] in "+-.":
                toks.append(_number(word))
            elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", word):
                if len(word) > MAX_MNEMONIC:
                    raise ScpiError(-144)
                toks.append(Tok("char", word.upper()))
            else:
                raise ScpiError(-101)
        gap = i
        while i < n and params[i].isspace():
            i += 1
        if i >= n:
            return toks
        if params[i] != ",":
            raise ScpiError(-103)                   # "APPL P6V 1.0 1.0"
        if i != gap:
            raise ScpiError(-102)                   # "APPL P6V ,1": space before a comma
        i += 1


def count(toks: list[Tok], lo: int, hi: int) -> None:
    """-109 for fewer than ``lo`` parameters, -108 for more than ``hi``."""
    if len(toks) < lo:
        raise ScpiError(-109)
    if len(toks) > hi:
        raise ScpiError(-108)


# Unit suffixes accepted per quantity (UG07 p.106: V, A, SEC; SCPI multipliers M and U).
_UNITS = {"V": {"V": 1.0, "MV": 1e-3, "UV": 1e-6}, "A": {"A": 1.0, "MA": 1e-3, "UA": 1e-6},
          "S": {"S": 1.0, "SEC": 1.0, "MS": 1e-3, "MSEC": 1e-3}}


def number(tok: Tok, unit: str | None, specials: dict[str, float] | None = None) -> float:
    """A numeric parameter in base units; ``specials`` maps MIN/MAX/DEF to values."""
    if tok.kind == "char":
        if specials and tok.text in specials:
            return specials[tok.text]
        specials = specials or {}
        long = {"MINIMUM": "MIN", "MAXIMUM": "MAX", "DEFAULT": "DEF"}.get(tok.text)
        if long in specials:
            return specials[long]
        raise ScpiError(-224)
    if tok.kind == "str":
        raise ScpiError(-158)
    if tok.suffix:
        if unit is None:
            raise ScpiError(-138)
        scale = _UNITS[unit].get(tok.suffix)
        if scale is None:
            raise ScpiError(-131)
        return tok.value * scale
    return tok.value


def boolean(tok: Tok) -> bool:
    """``ON|OFF|1|0``; anything else is -224."""
    if tok.kind == "char" and tok.text in ("ON", "OFF"):
        return tok.text == "ON"
    if tok.kind == "num":
        if tok.suffix:
            raise ScpiError(-138)
        if tok.value in (0.0, 1.0):
            return tok.value == 1.0
        raise ScpiError(-224)
    if tok.kind == "str":
        raise ScpiError(-158)
    raise ScpiError(-224)


def choice(tok: Tok, options: dict[str, str], numeric_error: int = -128) -> str:
    """Character data from ``options`` (accepted spelling -> canonical reply form)."""
    if tok.kind == "num":
        raise ScpiError(numeric_error)
    if tok.kind == "str":
        raise ScpiError(-158)
    if tok.text not in options:
        raise ScpiError(-224)
    return options[tok.text]


def integer(tok: Tok, lo: int, hi: int) -> int:
    """A decimal integer parameter (rounded) in ``lo..hi``, else -222."""
    if tok.kind != "num":
        raise ScpiError(-158 if tok.kind == "str" else -224)
    if tok.suffix:
        raise ScpiError(-138)
    v = int(round(tok.value))
    if not lo <= v <= hi:
        raise ScpiError(-222)
    return v


def string(tok: Tok) -> str:
    """A quoted string parameter; character/numeric data is -104."""
    if tok.kind != "str":
        raise ScpiError(-104)
    return tok.value
