"""Filter options as EPICS base's chfPlugin reads them, and the C conversions it relies on.

A filter plugin declares its options (:class:`ArgDef`, the ``chfInt32``/``chfDouble``/... and
``chfTag...`` tables of chfPlugin.h); the JSON map of a filter then sets fields of the plugin's
settings ("struct") with base's rules, which are looser and odder than JSON's:

* a key selects the *first* option whose name it is a prefix of (C ``strncmp`` over the key's
  length), so ``{"dbnd":{"r":5}}`` is ``rel`` and an empty key is the first option;
* an enum string value selects the first enum name it is a prefix of (``"m":""`` = first);
* with ``convert`` set, values of other JSON types convert (integer <-> double <-> string,
  strings parsed like ``strtol``/``strtod`` with trailing text ignored: ``"123e4"`` is 123 for
  an integer option); without it only the option's own type is taken;
* tagged options (dbnd ``abs``/``rel``, sync ``while``...) also set their tag field;
* a required option counts as given when any option sharing its field (or its tag) was given;
* nested maps inside an option map are walked through, arrays and ``null`` fail.

All of this was checked against softIoc 7.0.8 (tests/unit/test_ca_filters.py lists the cases).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Any, Callable

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1


class ChfError(ValueError):
    """An option the plugin refuses (message says which); the channel is not created."""


# ----------------------------------------------------------------- C library behaviour
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD = re.compile(
    r"[ \t\n\v\f\r]*[+-]?(?:(?P<inf>inf(?:inity)?)|(?P<nan>nan(?:\([0-9A-Za-z_]*\))?)"
    r"|(?P<hex>0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    r"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.IGNORECASE)


def c_strtol(text: str, pos: int = 0) -> tuple[int | None, int, bool]:
    """strtol(text+pos, &end, 0): (value or None when nothing converts, end, overflowed).
    On overflow the value is clamped to the 64-bit long range, as glibc does."""
    m = _STRTOL.match(text, pos)
    if not m:
        return None, pos, False
    digits = m.group(2)
    v = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits[0] == "0" \
        else int(digits)
    if m.group(1) == "-":
        v = -v
    over = not LONG_MIN <= v <= LONG_MAX
    return max(LONG_MIN, min(LONG_MAX, v)), m.end(), over


def wrap_int32(v: int) -> int:
    """C conversion of a long to epicsInt32 (two's complement truncation)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def c_str(s: str) -> str:
    """The C string a buffer holds: up to its first NUL."""
    return s.split("\0", 1)[0]


def parse_int32(s: str) -> int | None:
    """epicsParseInt32(s, &v, 0, &units): leading number, trailing text allowed; None = fails."""
    v, _, over = c_strtol(c_str(s))
    if v is None or over or not INT32_MIN <= v <= INT32_MAX:
        return None
    return v


def parse_double(s: str) -> float | None:
    """epicsParseDouble(s, &v, &units) (glibc strtod): trailing text allowed; overflow and
    underflow (ERANGE) fail; None = fails."""
    m = _STRTOD.match(c_str(s))
    if not m:
        return None
    text = m.group(0).strip(" \t\n\v\f\r")
    neg = text.startswith("-")
    if m.group("inf"):
        return -math.inf if neg else math.inf
    if m.group("nan"):
        return math.nan
    try:
        v = float.fromhex(text) if m.group("hex") else float(text)
    except OverflowError:
        return None
    if math.isinf(v):
        return None                                   # ERANGE overflow
    if v == 0.0:
        hexa = bool(m.group("hex"))
        mant = re.sub(r"[pP].*$" if hexa else r"[eE].*$", "", text).lstrip("+-")
        if re.search(r"[1-9a-fA-F]" if hexa else r"[1-9]", mant[2:] if hexa else mant):
            return None                               # ERANGE underflow
    elif abs(v) < 2.2250738585072014e-308 and _exact(text, bool(m.group("hex"))) != abs(v):
        return None                                   # inexact subnormal: glibc sets ERANGE
    return v


def _exact(text: str, hexa: bool) -> Fraction:
    """The exact magnitude a strtod number text stands for."""
    text = text.lstrip("+-")
    if not hexa:
        return Fraction(text if not text.endswith(".") else text + "0")
    mant, _, exp = text[2:].partition("p") if "p" in text else text[2:].partition("P")
    whole, _, frac = mant.partition(".")
    return Fraction(int(whole + frac or "0", 16), 16 ** len(frac)) * Fraction(2) ** int(exp or 0)


def strncmp_eq(a: str, b: str, n: int) -> bool:
    """C ``strncmp(a, b, n) == 0`` for NUL-terminated a, b (Python strings end in a NUL)."""
    for i in range(n):
        ca = a[i] if i < len(a) else "\0"
        cb = b[i] if i < len(b) else "\0"
        if ca != cb:
            return False
        if ca == "\0":
            return True
    return True


# ------------------------------------------------------------------------- options
INT32, BOOLEAN, DOUBLE, STRING, ENUM = "int32", "boolean", "double", "string", "enum"


@dataclass(frozen=True)
class ArgDef:
    """One option of a plugin (chfPluginArgDef). ``member`` is the settings field it sets
    (defaults to ``name``); a tagged option also sets ``tag`` to ``choice``."""
    name: str
    kind: str
    required: bool = False
    convert: bool = False
    member: str = ""
    tag: str | None = None
    choice: int = 0
    size: int = 0                                    # char[] size for STRING
    enums: tuple[tuple[str, int], ...] = ()

    @property
    def field(self) -> str:
        return self.member or self.name


@dataclass
class Plugin:
    """A registered filter: its name, options, default settings and checks.

    ``parse_ok(settings)`` runs when the filter's map closed (chfPluginIf.parse_ok); it may fix
    up settings and raises ChfError to refuse them. ``factory(settings, info, now)`` builds the
    per-channel filter (``chain.Filter``)."""
    name: str
    opts: tuple[ArgDef, ...]
    defaults: dict[str, Any]
    factory: Callable[..., Any]
    parse_ok: Callable[[dict[str, Any]], None] = lambda s: None
    enum_of: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for o in self.opts:
            if o.kind == ENUM:
                self.enum_of[o.field] = o.enums

    def public(self, struct: dict[str, Any]) -> dict[str, Any]:
        """Settings as build_chain takes them: enum fields by name (None when unset)."""
        out = {}
        for k, v in struct.items():
            if k in self.enum_of:
                v = next((n for n, val in self.enum_of[k] if val == v), None)
            out[k] = v
        return out

    def from_public(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Back from public settings (names to enum values), checked and completed."""
        struct = dict(self.defaults)
        missing = {o.field for o in self.opts if o.required} - set(settings)
        if missing:
            raise ChfError(f"filter '{self.name}': missing setting(s) {', '.join(sorted(missing))}")
        sizes = {o.field: o.size for o in self.opts if o.kind == STRING}
        for k, v in settings.items():
            if k not in struct:
                raise ChfError(f"filter '{self.name}': no setting '{k}'")
            if k in self.enum_of:
                if v is None:
                    v = self.defaults[k]
                else:
                    vals = [val for n, val in self.enum_of[k] if n == v]
                    if not vals:
                        raise ChfError(f"filter '{self.name}': {k}={v!r} is not one of "
                                       f"{[n for n, _ in self.enum_of[k]]}")
                    v = vals[0]
            elif type(self.defaults[k]) is float and isinstance(v, int):
                v = float(v)
            elif type(v) is not type(self.defaults[k]):
                raise ChfError(f"filter '{self.name}': {k}={v!r} is not a "
                               f"{type(self.defaults[k]).__name__}")
            if k in sizes:
                v = c_str(v)[:sizes[k] - 1]             # base's char[] buffer cuts it
            struct[k] = v
        self.parse_ok(struct)
        return struct


def _store(opt: ArgDef, struct: dict[str, Any], kind: str, v: Any) -> bool:
    """store_{integer,boolean,double,string}_value: convert ``v`` (JSON type ``kind``) for
    ``opt``; False = refused."""
    if not opt.convert and opt.kind != kind and not (kind == STRING and opt.kind == ENUM):
        return False
    f = opt.field
    if opt.kind == INT32:
        if kind == INT32 or kind == BOOLEAN:
            struct[f] = int(v)
        elif kind == DOUBLE:
            if v < INT32_MIN or v > INT32_MAX:       # NaN passes this test, as in C ...
                return False
            struct[f] = INT32_MIN if math.isnan(v) else int(v)   # ... and x86 gives INT_MIN
        else:
            p = parse_int32(v)
            if p is None:
                return False
            struct[f] = p
    elif opt.kind == BOOLEAN:
        if kind == STRING:
            s = c_str(v)
            if strncmp_eq(s.lower(), "true", len(v)):
                struct[f] = True
            elif strncmp_eq(s.lower(), "false", len(v)):
                struct[f] = False
            else:
                p, _, over = c_strtol(s)
                if p is None or over or not -128 <= p <= 127:
                    return False
                struct[f] = p != 0
        else:
            struct[f] = bool(v)
    elif opt.kind == DOUBLE:
        if kind == STRING:
            p = parse_double(v)
            if p is None:
                return False
            struct[f] = p
        else:
            struct[f] = float(v)
    elif opt.kind == STRING:
        if kind == STRING:
            struct[f] = c_str(v)[:opt.size - 1]
        elif kind == BOOLEAN:
            text = "true" if v else "false"
            if len(text) > opt.size - 1:
                return False
            struct[f] = text
        elif kind == INT32:
            if len(str(v)) > opt.size - 1:
                return False
            struct[f] = str(v)
        else:
            if opt.size <= 8:
                return False
            text = "%.*g" % (opt.size - 7, v)
            if len(text) >= opt.size:
                return False
            struct[f] = text
    else:  # ENUM
        if kind == INT32:
            if not any(val == v for _, val in opt.enums):
                return False
            struct[f] = v
        elif kind == STRING:
            for name, val in opt.enums:
                if strncmp_eq(name, v, len(v)):
                    struct[f] = val
                    break
            else:
                return False
        else:
            return False
    return True


class ChfInstance:
    """One filter being parsed: the chfPlugin wrapper's parse_* entry points."""

    def __init__(self, plugin: Plugin):
        self.plugin = plugin
        self.struct = dict(plugin.defaults)
        self.found: set[int] = set()
        self.next: int = -1
        self.error = ""

    def _fail(self, msg: str) -> bool:
        self.error = f"filter '{self.plugin.name}': {msg}"
        return False

    def map_key(self, key: str) -> bool:
        opts = self.plugin.opts
        self.next = next((i for i, o in enumerate(opts) if strncmp_eq(key, o.name, len(key))), -1)
        if self.next < 0:
            return self._fail(f"unknown option '{key}' (has {', '.join(o.name for o in opts)})")
        o = opts[self.next]
        if o.tag:
            self.struct[o.tag] = o.choice
        for j, c in enumerate(opts):
            if c.field == o.field or (o.tag and c.field == o.tag):
                self.found.add(j)
        return True

    def value(self, kind: str, v: Any) -> bool:
        if self.next < 0:
            return self._fail(f"a {kind} value needs an option name (a map)")
        o = self.plugin.opts[self.next]
        if not _store(o, self.struct, kind, v):
            return self._fail(f"option '{o.name}' ({o.kind}"
                              f"{', no conversion' if not o.convert else ''}) refuses {v!r}")
        return True

    def end(self) -> bool:
        """parse_end: required options present, then the plugin's parse_ok."""
        missing = [o.name for i, o in enumerate(self.plugin.opts)
                   if o.required and i not in self.found]
        if missing:
            return self._fail(f"missing option(s) {', '.join(missing)}")
        try:
            self.plugin.parse_ok(self.struct)
        except ChfError as exc:
            return self._fail(str(exc))
        return True


class FilterSpecReader:
    """The dbChannel side of the JSON (chf_* callbacks in dbChannel.c): the outer map's keys
    name filters, each value goes to that filter's ChfInstance."""

    def __init__(self, plugins: dict[str, Plugin], out: list[tuple[str, dict[str, Any]]]):
        self.plugins = plugins
        self.out = out
        self.cur: ChfInstance | None = None
        self.depth = 0
        self.error = ""

    def _done(self, ok: bool) -> bool:
        # chf_value: a complete value at depth 0 ends the current filter
        if not ok:
            if self.cur is not None:
                self.error = self.cur.error
            return False
        if self.depth > 0:
            return True
        cur, self.cur = self.cur, None
        if not cur.end():
            self.error = cur.error
            return False
        self.out.append((cur.plugin.name, cur.plugin.public(cur.struct)))
        return True

    def null(self) -> bool:
        self.error = f"filter '{self.cur.plugin.name}': null is not an option value"
        return False

    def boolean(self, v: bool) -> bool:
        return self._done(self.cur.value(BOOLEAN, v))

    def integer(self, v: int) -> bool:
        if not INT32_MIN <= v <= INT32_MAX:
            self.error = f"filter '{self.cur.plugin.name}': integer {v} is not 32-bit"
            return False
        return self._done(self.cur.value(INT32, v))

    def double(self, v: float) -> bool:
        return self._done(self.cur.value(DOUBLE, v))

    def string(self, v: str) -> bool:
        return self._done(self.cur.value(STRING, v))

    def start_map(self) -> bool:
        if self.cur is None:
            return True                               # the opening brace
        self.depth += 1
        return True

    def map_key(self, k: str) -> bool:
        if self.cur is not None:                      # an option name inside a filter's map
            if self.cur.map_key(k):
                return True
            self.error = self.cur.error
            return False
        plugin = self.plugins.get(k)
        if plugin is None:
            self.error = f"Channel filter '{k}' not found"
            return False
        self.cur = ChfInstance(plugin)
        return True

    def end_map(self) -> bool:
        if self.cur is None:
            return True                               # the final closing brace
        self.depth -= 1
        return self._done(True)

    def start_array(self) -> bool:
        self.error = f"filter '{self.cur.plugin.name}': arrays are not option values"
        return False

    def end_array(self) -> bool:                      # never reached: start_array refuses
        return False
