"""C-semantics runtime for the CALC engine (private helper).

Reproduces the arithmetic of EPICS base 7.0 ``modules/libcom/src/calc/calcPerform.c``
on Linux x86-64: the integer conversions as gcc compiles them, glibc's
inf/NaN results where Python's ``math`` raises, the RNDM generator, and the
opcode -> Python source templates used by :mod:`ioc.records.calc_expr`.
Also a direct port of calcPerform()'s evaluation loop (:func:`interpret`),
used for programs the code generator does not handle.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from ._calc_postfix import CalcError, Instr, Op, VARARG_OPS

_INF = math.inf
_NAN = math.nan  # epicsNAN and strtod("NAN"): a positive quiet NaN
# What the FPU returns for an invalid operation (negative on x86-64), i.e.
# what C's 0/0, inf-inf, sqrt(-1) give.  Computed, not assumed.
_HW_NAN = _INF - _INF
_INT_MIN = -0x80000000
_TWO63 = 9.223372036854775808e18

# --------------------------------------------------------------------------
# C conversions and operators with calcPerform() semantics.


def _i32(x: float) -> int:
    """``(epicsInt32)x``: truncation; NaN/out of range give INT_MIN (x86)."""
    if -2147483649.0 < x < 2147483648.0:
        return int(x)
    return _INT_MIN


def _u32(x: float) -> int:
    """``(epicsUInt32)x`` for x >= 0 or NaN (64-bit convert, low 32 bits)."""
    if x < _TWO63:  # False for NaN and +inf, which convert to 2**63 -> 0
        return int(x) & 0xFFFFFFFF
    return 0


def _d2i(x: float) -> int:
    """calcPerform.c ``d2i()``: signed 32-bit view of a double."""
    if -2147483649.0 < x < 2147483648.0:  # common case: plain truncation
        return int(x)
    if x < 0:
        return _INT_MIN
    u = _u32(x)
    return u - 0x100000000 if u & 0x80000000 else u


def _d2ui(x: float) -> int:
    """calcPerform.c ``d2ui()``: unsigned 32-bit view of a double."""
    if x < 0:
        return _i32(x) & 0xFFFFFFFF
    return _u32(x)


def _shl(x: float, y: float) -> float:
    r = (_d2i(x) << (_d2i(y) & 31)) & 0xFFFFFFFF  # int32 wraps in C
    return float(r - 0x100000000 if r & 0x80000000 else r)


def _shrl(x: float, y: float) -> float:
    return float(_d2ui(x) >> (_d2ui(y) & 31))


def _mod(x: float, y: float) -> float:
    """MODULO: ``(epicsInt32)x % (epicsInt32)y``, NaN for a zero divisor."""
    d = _i32(y)
    if d == 0:
        return _NAN  # calcPerform stores epicsNAN
    n = _i32(x)
    r = abs(n) % abs(d)  # C remainder truncates: sign follows the dividend
    return float(-r if n < 0 else r)  # INT_MIN % -1 (SIGFPE in C) -> 0


def _nint(x: float) -> float:
    return float(_i32(x + 0.5 if x >= 0 else x - 0.5))


def _isinf(x: float) -> float:
    return 1.0 if x == _INF else (-1.0 if x == -_INF else 0.0)


def _finite(*xs: float) -> float:
    return 1.0 if all(map(math.isfinite, xs)) else 0.0


def _isnan(*xs: float) -> float:
    return 1.0 if any(map(math.isnan, xs)) else 0.0


def _max(*xs: float) -> float:
    """MAX: calcPerform folds from the stack top (last argument) down."""
    acc = xs[-1]
    for x in xs[-2::-1]:
        if not (x < acc or acc != acc):
            acc = x
    return acc


def _min(*xs: float) -> float:
    acc = xs[-1]
    for x in xs[-2::-1]:
        if not (x > acc or acc != acc):
            acc = x
    return acc


def _max2(x: float, y: float) -> float:
    return y if (x < y or y != y) else x


def _min2(x: float, y: float) -> float:
    return y if (x > y or y != y) else x


def _atan2r(x: float, y: float) -> float:
    return math.atan2(y, x)  # EPICS passes its arguments reversed


def _floor(x: float) -> float:
    if x - x != 0.0:  # inf or NaN pass through, as C floor()
        return x
    return float(math.floor(x)) or math.copysign(0.0, x)  # keep -0.0


def _ceil(x: float) -> float:
    if x - x != 0.0:
        return x
    return float(math.ceil(x)) or math.copysign(0.0, x)  # ceil(-0.5) = -0.0


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and abs(math.fmod(y, 2.0)) == 1.0


# C-semantics versions of what Python's math module refuses to compute.
# NaN signs follow glibc on x86-64 as observed with softIoc.

def _c_div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        if x != x:
            return x
        if x == 0.0:
            return _HW_NAN
        return math.copysign(_INF, x) * math.copysign(1.0, y)


def _c_pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return -_INF if x < 0 and _is_odd_int(y) else _INF
    except ValueError:
        if x == 0.0:  # pole: zero to a negative power
            return math.copysign(_INF, x) if _is_odd_int(y) else _INF
        return _HW_NAN  # negative base, non-integer exponent


def _c_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def _c_log(x: float) -> float:
    try:
        return math.log(x)
    except ValueError:
        return -_INF if x == 0.0 else _NAN


def _c_log10(x: float) -> float:
    try:
        return math.log10(x)
    except ValueError:
        return -_INF if x == 0.0 else _NAN


def _c_sqrt(x: float) -> float:
    try:
        return math.sqrt(x)
    except ValueError:
        return _HW_NAN


def _c_acos(x: float) -> float:
    try:
        return math.acos(x)
    except ValueError:
        return _NAN


def _c_asin(x: float) -> float:
    try:
        return math.asin(x)
    except ValueError:
        return _NAN


def _c_trig(f: Callable[[float], float]) -> Callable[[float], float]:
    def c_f(x: float) -> float:
        try:
            return f(x)
        except ValueError:  # sin/cos/tan of +-inf
            return _HW_NAN
    return c_f


_c_sin, _c_cos, _c_tan = _c_trig(math.sin), _c_trig(math.cos), _c_trig(math.tan)


def _c_cosh(x: float) -> float:
    try:
        return math.cosh(x)
    except OverflowError:
        return _INF


def _c_sinh(x: float) -> float:
    try:
        return math.sinh(x)
    except OverflowError:
        return math.copysign(_INF, x)


def _c_fmod(x: float, y: float) -> float:
    try:
        return math.fmod(x, y)
    except ValueError:  # y == 0 or x infinite
        return _HW_NAN


# calcPerform.c calcRandom(): seed = seed*multy + addy in unsigned short.
_seed = 0xA3BF


def _rndm() -> float:
    global _seed
    _seed = (_seed * 1533 + 0x3141) & 0xFFFF
    return _seed / 65535.0


def reset_random_seed(seed: int = 0xA3BF) -> None:
    """Reset RNDM's process-wide generator (default: EPICS's initial seed)."""
    global _seed
    _seed = seed & 0xFFFF


# --------------------------------------------------------------------------
# Opcode -> Python code.  Each entry: (operand count, fast template, C-safe
# template); templates take the operands in push order as {0}, {1}.
# Every template is fully parenthesised so they nest without precedence care.



def _same_src(n: int, template: str) -> tuple[int, str, str]:
    """Template of an operator that never raises, so fast == safe."""
    return (n, template, template)


def _same(n: int, condition: str) -> tuple[int, str, str]:
    """Template of an operator yielding 1.0/0.0 (C's int results of ! < == ...)."""
    return _same_src(n, f"(1.0 if {condition} else 0.0)")


TEMPLATES: dict[Op, tuple[int, str, str]] = {
    Op.UNARY_NEG: (1, "(-{0})", "(-{0})"),
    Op.ADD: (2, "({0} + {1})", "({0} + {1})"),
    Op.SUB: (2, "({0} - {1})", "({0} - {1})"),
    Op.MULT: (2, "({0} * {1})", "({0} * {1})"),
    Op.DIV: (2, "({0} / {1})", "_c_div({0}, {1})"),
    Op.MODULO: (2, "_mod({0}, {1})", "_mod({0}, {1})"),
    Op.POWER: (2, "_pow({0}, {1})", "_c_pow({0}, {1})"),
    Op.ABS_VAL: (1, "abs({0})", "abs({0})"),
    Op.EXP: (1, "_exp({0})", "_c_exp({0})"),
    Op.LOG_10: (1, "_log10({0})", "_c_log10({0})"),
    Op.LOG_E: (1, "_log({0})", "_c_log({0})"),
    Op.SQU_RT: (1, "_sqrt({0})", "_c_sqrt({0})"),
    Op.ACOS: (1, "_acos({0})", "_c_acos({0})"),
    Op.ASIN: (1, "_asin({0})", "_c_asin({0})"),
    Op.ATAN: (1, "_atan({0})", "_atan({0})"),
    Op.ATAN2: (2, "_atan2r({0}, {1})", "_atan2r({0}, {1})"),
    Op.COS: (1, "_cos({0})", "_c_cos({0})"),
    Op.COSH: (1, "_cosh({0})", "_c_cosh({0})"),
    Op.SIN: (1, "_sin({0})", "_c_sin({0})"),
    Op.SINH: (1, "_sinh({0})", "_c_sinh({0})"),
    Op.TAN: (1, "_tan({0})", "_c_tan({0})"),
    Op.TANH: (1, "_tanh({0})", "_tanh({0})"),
    Op.CEIL: (1, "_ceil({0})", "_ceil({0})"),
    Op.FLOOR: (1, "_floor({0})", "_floor({0})"),
    Op.FMOD: (2, "_fmod({0}, {1})", "_c_fmod({0}, {1})"),
    Op.ISINF: (1, "_isinf({0})", "_isinf({0})"),
    Op.NINT: (1, "_nint({0})", "_nint({0})"),
    # || and && evaluate both sides (no short circuit in RPN): use | and &.
    Op.REL_OR: _same(2, "(({0} != 0.0) | ({1} != 0.0))"),
    Op.REL_AND: _same(2, "(({0} != 0.0) & ({1} != 0.0))"),
    Op.REL_NOT: _same(1, "({0} == 0.0)"),
    # int32 | & ^ ~ >> of int32 operands cannot leave the int32 range.
    Op.BIT_OR: _same_src(2, "float(_d2i({0}) | _d2i({1}))"),
    Op.BIT_AND: _same_src(2, "float(_d2i({0}) & _d2i({1}))"),
    Op.BIT_EXCL_OR: _same_src(2, "float(_d2i({0}) ^ _d2i({1}))"),
    Op.BIT_NOT: _same_src(1, "float(~_d2i({0}))"),
    Op.RIGHT_SHIFT_ARITH: _same_src(2, "float(_d2i({0}) >> (_d2i({1}) & 31))"),
    Op.LEFT_SHIFT_ARITH: (2, "_shl({0}, {1})", "_shl({0}, {1})"),
    Op.RIGHT_SHIFT_LOGIC: (2, "_shrl({0}, {1})", "_shrl({0}, {1})"),
    Op.NOT_EQ: _same(2, "({0} != {1})"),
    Op.LESS_THAN: _same(2, "({0} < {1})"),
    Op.LESS_OR_EQ: _same(2, "({0} <= {1})"),
    Op.EQUAL: _same(2, "({0} == {1})"),
    Op.GR_OR_EQ: _same(2, "({0} >= {1})"),
    Op.GR_THAN: _same(2, "({0} > {1})"),
}

VARARG_FUNCS = {Op.MAX: "_max", Op.MIN: "_min", Op.FINITE: "_finite", Op.ISNAN: "_isnan"}

CONSTANTS = {Op.CONST_PI: math.pi, Op.CONST_D2R: math.pi / 180.0, Op.CONST_R2D: 180.0 / math.pi}

#: Globals of the generated code: the helpers named in TEMPLATES, nothing else.
NAMESPACE: dict[str, object] = {
    "__builtins__": {"abs": abs, "float": float},
    "_INF": _INF, "_NAN": _NAN, "_rndm": _rndm,
    "_mod": _mod, "_nint": _nint, "_isinf": _isinf, "_finite": _finite, "_isnan": _isnan,
    "_max": _max, "_min": _min, "_max2": _max2, "_min2": _min2, "_atan2r": _atan2r, "_floor": _floor, "_ceil": _ceil,
    "_d2i": _d2i, "_shl": _shl, "_shrl": _shrl,
    # fast variant: Python's math (raises where C returns inf/NaN)
    "_pow": math.pow, "_exp": math.exp, "_log10": math.log10, "_log": math.log,
    "_sqrt": math.sqrt, "_acos": math.acos, "_asin": math.asin, "_atan": math.atan,
    "_cos": math.cos, "_cosh": math.cosh, "_sin": math.sin, "_sinh": math.sinh,
    "_tan": math.tan, "_tanh": math.tanh, "_fmod": math.fmod,
    # C-semantics variant
    "_c_div": _c_div, "_c_pow": _c_pow, "_c_exp": _c_exp, "_c_log10": _c_log10,
    "_c_log": _c_log, "_c_sqrt": _c_sqrt, "_c_acos": _c_acos, "_c_asin": _c_asin,
    "_c_cos": _c_cos, "_c_cosh": _c_cosh, "_c_sin": _c_sin, "_c_sinh": _c_sinh,
    "_c_tan": _c_tan, "_c_fmod": _c_fmod,
}


def literal_source(value: float) -> str:
    """Python source for a constant double."""
    if value != value:
        return "_NAN"
    if value in (_INF, -_INF):
        return "_INF" if value > 0 else "(-_INF)"
    return repr(value)


def op_source(op: Op, operands: Sequence[str], safe: bool) -> str:
    """Python source applying ``op`` to operand sources given in push order."""
    if op in VARARG_OPS:
        if op is Op.MAX or op is Op.MIN:
            if len(operands) == 1:
                return operands[0]  # C's fold loop runs nargs-1 times
            if len(operands) == 2:
                return f"{VARARG_FUNCS[op]}2({operands[0]}, {operands[1]})"
        return f"{VARARG_FUNCS[op]}({', '.join(operands)})"
    return TEMPLATES[op][2 if safe else 1].format(*operands)


# The C-semantics templates as callables, for interpret().
_SAFE_FUNCS: dict[Op, Callable[..., float]] = {
    op: eval(f"lambda x, y=0.0: {t[2].format('x', 'y')}", NAMESPACE)  # noqa: S307 - our text
    for op, t in TEMPLATES.items()
}
_SAFE_FUNCS.update({op: NAMESPACE[name] for op, name in VARARG_FUNCS.items()})  # type: ignore[misc]


def _cond_search(program: Sequence[Instr], i: int, match: Op, expr: str) -> int:
    """calcPerform.c cond_search(): index after the matching ELSE/END.

    Nested COND_IFs found on the way each need one more ``match``.
    """
    count = 1
    while i < len(program):
        op = program[i][0]
        i += 1
        if op is match:
            count -= 1
            if count == 0:
                return i
        if op is Op.COND_IF:
            count += 1
    raise CalcError(f"calcPerform: unmatched conditional in CALC expression '{expr}'", expr=expr)


def interpret(program: Sequence[Instr], args: list[float], val: float, expr: str = "") -> float:
    """calcPerform(): execute a postfix program instruction by instruction.

    Slow but general: used for programs the code generator rejects.  ``:=``
    stores into ``args`` immediately, as in C.  Raises :class:`CalcError`
    where calcPerform() returns -1 (stack not left with exactly one value,
    unmatched conditional) and on stack underflow (undefined behaviour in C).
    """
    stack: list[float] = []
    push, pop = stack.append, stack.pop
    i, n = 0, len(program)
    try:
        while i < n:
            op, arg = program[i]
            i += 1
            if op is Op.LITERAL:
                push(arg)  # type: ignore[arg-type]
            elif op is Op.FETCH:
                push(args[arg])  # type: ignore[index]
            elif op is Op.FETCH_VAL:
                push(val)
            elif op is Op.STORE:
                args[arg] = pop()  # type: ignore[index]
            elif op in CONSTANTS:
                push(CONSTANTS[op])
            elif op is Op.RANDOM:
                push(_rndm())
            elif op is Op.COND_IF:
                if pop() == 0.0:
                    i = _cond_search(program, i, Op.COND_ELSE, expr)
            elif op is Op.COND_ELSE:
                i = _cond_search(program, i, Op.COND_END, expr)
            elif op is Op.COND_END:
                pass
            elif op in VARARG_OPS:
                nargs = int(arg)  # type: ignore[arg-type]
                if nargs > len(stack):
                    raise IndexError
                operands = stack[-nargs:]
                del stack[-nargs:]
                push(_SAFE_FUNCS[op](*operands))
            elif TEMPLATES[op][0] == 1:
                push(_SAFE_FUNCS[op](pop()))
            else:
                y = pop()
                push(_SAFE_FUNCS[op](pop(), y))
    except IndexError:
        raise CalcError(f"calcPerform: stack underflow in CALC expression '{expr}'", expr=expr) from None
    if len(stack) != 1:
        raise CalcError(f"calcPerform: {len(stack)} values left on the stack "
                        f"in CALC expression '{expr}'", expr=expr)
    return stack[0]
