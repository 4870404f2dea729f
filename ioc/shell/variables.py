"""iocsh variables (base's ``iocshRegisterVariable``) and the ``var`` command.

Other modules expose a tunable as a variable::

    from ioc.shell.variables import register_variable
    register_variable("boHIGHprecision", int, lambda: binary.HIGH_PRECISION,
                      lambda v: setattr(binary, "HIGH_PRECISION", v))

``var`` prints every variable, ``var NAME`` (wildcards allowed) prints those matching,
``var NAME VALUE`` sets one. Values are read as C reads them: an int with strtol base 0
(``0x10``, ``010`` octal), a double with strtod; a value that is not wholly a number leaves the
variable unchanged. Names and messages are base's. Base variables that have no meaning in this
IOC (``dbRecordsOnceOnly``, ``CASDEBUG``...) are not registered: ``var`` on them answers with a
note, not an error.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

from .builtins import glob_match
from .interp import IocshError, ansi
from .registry import Arg, command

if TYPE_CHECKING:
    from .interp import Shell

__all__ = ["register_variable", "lookup", "variables", "parse_c_int", "parse_c_double",
           "Variable"]

Number = Union[int, float]


@dataclass
class Variable:
    name: str
    type: type          # int or float (iocshArgInt / iocshArgDouble)
    getter: Callable[[], Number]
    setter: Callable[[Number], None]

    def text(self) -> str:
        """``name = value`` as base's var prints it (%d / %g)."""
        v = self.getter()
        return f"{self.name} = {int(v)}" if self.type is int else f"{self.name} = {_g(v)}"


_VARIABLES: dict[str, Variable] = {}


def register_variable(name: str, type: type, getter: Callable[[], Number],
                      setter: Callable[[Number], None]) -> Variable:
    """Make ``name`` a ``var`` variable of ``type`` (int or float); registering a name again
    replaces it (base warns when the type differs)."""
    if type not in (int, float):
        raise TypeError(f"iocsh variable {name}: type must be int or float")
    var = Variable(name, type, getter, setter)
    _VARIABLES[name] = var
    return var


def lookup(name: str) -> Variable | None:
    return _VARIABLES.get(name)


def variables() -> list[Variable]:
    """Every variable, in base's order (by name, as strcmp sorts)."""
    return [_VARIABLES[n] for n in sorted(_VARIABLES)]


def _g(v: float) -> str:
    """C's %g."""
    if math.isnan(v):
        return "nan" if math.copysign(1, v) > 0 else "-nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


_INT_RE = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_c_int(text: str) -> int | None:
    """strtol(text, &end, 0) that must use the whole text, stored in a C int (as base's var
    does); None if it is not wholly a number."""
    m = _INT_RE.fullmatch(text)
    if not m or not text:
        return None
    digits = m.group(2)
    v = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if \
        digits.startswith("0") and len(digits) > 1 else int(digits)
    if m.group(1) == "-":
        v = -v
    v = max(-2 ** 63, min(2 ** 63 - 1, v))      # strtol saturates (long is 64 bits here)
    v &= 0xFFFFFFFF                             # then the int keeps its low 32 bits
    return v - 2 ** 32 if v >= 2 ** 31 else v


_DOUBLE_RE = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                        r"|inf(?:inity)?|nan))", re.I)
_HEX_DOUBLE_RE = re.compile(r"[ \t\n\v\f\r]*([+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                            r"(?:[pP][+-]?[0-9]+)?)")


def parse_c_double(text: str) -> float | None:
    """epicsStrtod(text, &end) that must use the whole text; None if it is not wholly a
    number."""
    m = _DOUBLE_RE.fullmatch(text)
    if m:
        return float(m.group(1))
    m = _HEX_DOUBLE_RE.fullmatch(text)
    if m:
        h = m.group(1)
        return float.fromhex(h if re.search("[pP]", h) else h + "p0")
    return None


# Base variables without a meaning here (nothing reads them): "var" says so instead of
# pretending to set them, and does not call it an error.
_NOT_HERE = {
    "CASDEBUG": "the CA server logs through IOC_LOG_LEVEL",
    "asCaDebug": "access security inputs log through the CA link client",
    "atExitDebug": "", "callbackParallelThreadsDefault": "no callback threads",
    "dbAccessDebugPUTF": "", "dbBptNotMonotonic": "no breakpoint tables",
    "dbConvertStrict": "", "dbJLinkDebug": "no JSON links", "dbQuietMacroWarnings": "",
    "dbRecordsAbcSorted": "", "dbRecordsOnceOnly": "", "dbTemplateMaxVars": "",
    "dbThreadRealtimeLock": "", "freeListBypass": "", "histogramSDELprecision":
    "no histogram records", "lnkDebug_debug": "", "logClientDebug": "no IOC log client",
    "seqDLYlimit": "no seq records", "seqDLYprecision": "no seq records",
}


def _not_here(shell: "Shell", name: str) -> None:
    why = _NOT_HERE[name]
    shell.print(f"var {name}: not available in this IOC{f' ({why})' if why else ''}; ignored")


@command("var", Arg("[variable"), Arg("[value]]"),
         help="Without arguments: every variable and its value. With a NAME (wildcards * "
              "and ? allowed): the matching variables. With NAME VALUE: set NAME.")
def var(shell: "Shell", name: str | None, value: str | None) -> None:
    if value is None:
        found = [v for v in variables() if name is None or glob_match(v.name, name)]
        for v in found:
            shell.print(v.text())
        if not found and name is not None:
            if name in _NOT_HERE:
                _not_here(shell, name)
                return
            raise IocshError(f"{ansi('No var matching', 'red', shell.err)} {name} found.")
        return
    v = lookup(name or "")
    if v is None:
        if name in _NOT_HERE:
            _not_here(shell, name)
            return
        raise IocshError(f"Var {name} {ansi('not found.', 'red', shell.err)}")
    if v.type is int:
        n = parse_c_int(value)
        if n is None:
            raise IocshError(f"Invalid integer value. Var {v.name} not changed.")
        v.setter(n)
    else:
        d = parse_c_double(value)
        if d is None:
            raise IocshError(f"Invalid double value. Var {v.name} not changed.")
        v.setter(d)


# ------------------------------------------------- base's variables that mean something here
def _module_variable(name: str, typ: type, module, attr: str) -> None:
    register_variable(name, typ, lambda: getattr(module, attr),
                      lambda value: setattr(module, attr, typ(value)))


def _register_base_variables() -> None:
    # boRecord.c / calcoutRecord.c: the precision and control limit served with the HIGH
    # (bo) and ODLY (calcout) delay fields; the record modules read the module globals.
    from ..records import binary, calc
    _module_variable("boHIGHprecision", int, binary, "HIGH_PRECISION")
    _module_variable("boHIGHlimit", float, binary, "HIGH_LIMIT")
    _module_variable("calcoutODLYprecision", int, calc, "ODLY_PRECISION")
    _module_variable("calcoutODLYlimit", float, calc, "ODLY_LIMIT")


_register_base_variables()
