"""JSON links (EPICS base 7.0.8 dbJLink + std/link lnkConst, lnkCalc, lnkState, lnkDebug).

Link text starting with ``{`` is read with base's relaxed JSON (yajl in JSON5 mode: unquoted
keys, single quotes, comments; :mod:`ioc.filters._json5`). It must be a map with one key, the
link type; softIoc 7.0.8 registers ``const``, ``calc``, ``state``, ``debug``, ``trace`` (and
``pva``, which this IOC has no support for). Any other type is refused as base refuses it:
``dbJLinkInit: Link type 'x' not found``.

* ``{const:3.14}`` / ``{const:[1,2,3]}`` / ``{const:"str"}``: a constant (is_constant), loaded
  at iocInit like any constant link (dbLoadLink/dbLoadLinkArray); reads give nothing.
* ``{calc:{expr:'A+5', args:[5, {const:2}], major:'A>9', minor:'A>5', out:{...},
  units:'mm', prec:3, time:'A'}}``: args are numbers or child JSON links, at most 12 (A..L);
  a get reads every arg and returns expr's result (a double); ``major``/``minor`` expressions
  that give non-zero raise LINK/MAJOR or LINK/MINOR on the record. A put evaluates expr with
  VAL = the value put and writes the result to ``out``. Units and precision (default 15)
  are the link's metadata.
* ``{state:"name"}`` / ``{state:"!name"}``: a dbState (created if new); a get reads it
  (0/1, inverted by ``!``), a put sets it (non-zero) or clears it.
* ``{debug:{<child>}}`` / ``{trace:{<child>}}``: the child link; ``trace`` also prints every
  get and put on the console.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from ..filters import _json5, dbstate
from .calc_expr import CalcError, compile_calc
from .constants import Sevr, Stat
from .links import ConstantLink, Link, LinkError, as_float

if TYPE_CHECKING:
    from .base import Record

CALC_NARGS = 12                 # CALCPERFORM_NARGS: A..L
CALC_DEFAULT_PREC = 15     # lnkCalc: "standard value for a double"
REGISTERED_TYPES = ("const", "calc", "state", "debug", "trace")


def parse_json_text(text: str) -> Any:
    """The value of relaxed-JSON ``text`` as base's yajl (JSON5 mode) reads it. Raises
    LinkError with yajl's message for text base refuses."""
    try:
        return _json5.parse_value(text)
    except _json5.JsonError as exc:
        raise LinkError(f"dbJLinkInit: {exc}") from None


def _link_type(value: Any) -> tuple[str, Any]:
    """(type name, its argument) of a parsed JSON link: a map with exactly one key."""
    if not isinstance(value, dict) or not value:
        raise LinkError("dbJLinkInit: a JSON link must be a map naming its link type")
    if len(value) > 1:
        raise LinkError(f"dbJLinkInit: Illegal second link key '{list(value)[1]}'")
    return next(iter(value.items()))


def parse_json_link(text: str, lookup: Callable[[str], Any] | None = None,
                    dbf: str = "") -> Link:
    """The link for JSON link ``text`` in a field of type ``dbf`` (DBF_INLINK/OUTLINK/
    FWDLINK). Raises LinkError with base's message for an unknown type or bad arguments."""
    return build_json_link(parse_json_text(text), text.strip(), dbf)


def build_json_link(value: Any, text: str, dbf: str) -> Link:
    """A JSON link from its parsed ``value`` (a one-key map); ``text`` is kept for read-back."""
    ltype, arg = _link_type(value)
    if ltype not in REGISTERED_TYPES:
        raise LinkError(f"dbJLinkInit: Link type '{ltype}' not found")
    if ltype == "const":
        return JConstLink(text, arg)
    if dbf == "DBF_FWDLINK":
        # lnkCalc/lnkState refuse forward links; debug/trace pass the type to the child
        raise LinkError(f"lnk{ltype.capitalize()}: No support for forward links")
    if ltype == "calc":
        return CalcLink(text, arg, dbf)
    if ltype == "state":
        return StateLink(text, arg)
    return DebugLink(text, arg, dbf, trace=(ltype == "trace"))


class JConstLink(ConstantLink):
    """``{const:...}``: a number, string or array constant (lnkConst)."""

    def __init__(self, text: str, value: Any):
        super().__init__(text)
        if isinstance(value, (dict, bool)) or value is None:
            raise LinkError(f"lnkConst: bad constant {value!r}")
        if isinstance(value, list) and any(isinstance(x, (dict, list)) for x in value):
            raise LinkError("lnkConst: nested arrays or maps are not constants")
        self._value = value

    def load_value(self):
        """As ConstantLink.load_value: a number as float, a string, or a list of elements."""
        v = self._value
        if isinstance(v, int):
            return float(v)
        if isinstance(v, list):
            return [float(x) if isinstance(x, int) else x for x in v]
        return v


def _child(value: Any, dbf: str) -> Link:
    """A calc argument or child link: a number is a constant, a map a JSON link."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return JConstLink(repr(value), value)
    if isinstance(value, dict):
        return build_json_link(value, "", dbf)
    raise LinkError(f"lnkCalc: Unexpected {type(value).__name__} {value!r}")


def _compile(key: str, expr: Any):
    if not isinstance(expr, str):
        raise LinkError(f"lnkCalc: Unexpected value for '{key}': {expr!r}")
    try:
        return compile_calc(expr)
    except CalcError as exc:
        raise LinkError(f"lnkCalc: Error in calc expression, {exc}") from None


class CalcLink(Link):
    """``{calc:{...}}`` (lnkCalc): an expression of child links, read or written."""

    _KEYS = ("expr", "major", "minor", "args", "out", "units", "prec", "time")

    def __init__(self, text: str, spec: Any, dbf: str):
        self.text = text
        if not isinstance(spec, dict):
            raise LinkError("lnkCalc: Unexpected value, a map is needed")
        for k in spec:
            if k not in self._KEYS:
                raise LinkError(f'lnkCalc: Unknown key "{k}"')
        if "expr" not in spec:
            raise LinkError("lnkCalc: No expression ('expr' key)")
        if dbf == "DBF_OUTLINK" and "out" not in spec:
            raise LinkError("lnkCalc: No output link ('out' key)")
        self.expr = _compile("expr", spec["expr"])
        self.major = _compile("major", spec["major"]) if "major" in spec else None
        self.minor = _compile("minor", spec["minor"]) if "minor" in spec else None
        args = spec.get("args", [])
        if not isinstance(args, list):
            args = [args]
        if len(args) > CALC_NARGS:
            raise LinkError(f"lnkCalc: Too many input args, limit is {CALC_NARGS}")
        self.inputs = [_child(a, "DBF_INLINK") for a in args]
        self.out = _child(spec["out"], "DBF_OUTLINK") if "out" in spec else None
        self.units = str(spec.get("units", ""))
        prec = spec.get("prec", CALC_DEFAULT_PREC)
        if not isinstance(prec, int) or isinstance(prec, bool):
            raise LinkError(f"lnkCalc: Unexpected value for 'prec': {prec!r}")
        self.prec = prec
        t = spec.get("time")
        if t is not None and (not isinstance(t, str) or len(t) != 1
                              or not "A" <= t.upper() <= "L"):
            raise LinkError(f'lnkCalc: Bad \'time\' parameter "{t}"')
        self.time_arg = None if t is None else ord(t.upper()) - ord("A")
        # lnkCalc_open: each argument starts as what its link loads (constants), else 0
        self.args = [0.0] * CALC_NARGS
        for i, link in enumerate(self.inputs):
            if link.is_constant:
                v = as_float(_scalar(link.load_value()))
                self.args[i] = 0.0 if v is None else v

    def _read_args(self, rec: "Record") -> None:
        for i, link in enumerate(self.inputs):
            if link.is_constant:
                continue
            v = as_float(link.get_value(rec))
            if v is not None:
                self.args[i] = v

    def _alarms(self, rec: "Record", val: float) -> None:
        if self.major is not None and self.major.evaluate(self.args, val):
            rec.set_sevr(Stat.LINK, Sevr.MAJOR, "post_major error")
        elif self.minor is not None and self.minor.evaluate(self.args, val):
            rec.set_sevr(Stat.LINK, Sevr.MINOR, "post_minor error")

    def get_value(self, rec: "Record", as_string: bool = False) -> float:
        self._read_args(rec)
        val = float(self.expr.evaluate(self.args, 0.0))
        self._alarms(rec, val)
        return val

    def put_value(self, rec: "Record", value) -> bool:
        self._read_args(rec)
        v = as_float(value)
        val = float(self.expr.evaluate(self.args, math.nan if v is None else v))
        self._alarms(rec, val)
        return True if self.out is None else self.out.put_value(rec, val)

    def target_metadata(self) -> dict | None:
        return {"units": self.units, "precision": self.prec}

    def install(self, rec: "Record", fname: str) -> None:
        for link in self._children():
            link.install(rec, fname)

    def uninstall(self) -> None:
        for link in self._children():
            link.uninstall()

    def _children(self) -> list[Link]:
        return self.inputs + ([self.out] if self.out is not None else [])


def _scalar(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


class StateLink(Link):
    """``{state:"name"}`` / ``{state:"!name"}`` (lnkState): a dbState read as 0/1 or set."""

    def __init__(self, text: str, name: Any):
        self.text = text
        if not isinstance(name, str):
            raise LinkError(f"lnkState: Unexpected value {name!r}, a state name is needed")
        self.invert = name.startswith("!")
        self.state = dbstate.create(name[1:] if self.invert else name)

    def get_value(self, rec: "Record", as_string: bool = False) -> float:
        return float(self.invert ^ bool(dbstate.get(self.state)))

    def put_value(self, rec: "Record", value) -> bool:
        v = as_float(value)
        on = bool(v) if v is not None else bool(value)
        (dbstate.set if on ^ self.invert else dbstate.clear)(self.state)
        return True


class DebugLink(Link):
    """``{debug:{child}}`` / ``{trace:{child}}`` (lnkDebug): the child link; trace prints each
    get and put (loosely like base's lnkTrace: record, field type, value)."""

    def __init__(self, text: str, child: Any, dbf: str, *, trace: bool):
        self.text = text
        self.child = build_json_link(child, "", dbf)
        self.trace = trace
        self.is_constant = self.child.is_constant

    def load_value(self):
        return self.child.load_value()     # only asked when the child is a constant

    def get_value(self, rec: "Record", as_string: bool = False):
        v = self.child.get_value(rec, as_string)
        if self.trace:
            print(f"{rec.name}: trace getValue(): {v!r}", flush=True)
        return v

    def put_value(self, rec: "Record", value) -> bool:
        if self.trace:
            print(f"{rec.name}: trace putValue({value!r})", flush=True)
        return self.child.put_value(rec, value)

    def target_metadata(self) -> dict | None:
        return self.child.target_metadata()

    def install(self, rec: "Record", fname: str) -> None:
        self.child.install(rec, fname)

    def uninstall(self) -> None:
        self.child.uninstall()
