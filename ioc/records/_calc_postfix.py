"""Infix -> postfix translation of EPICS CALC expressions (private helper).

This is a faithful port of EPICS base 7.0 ``modules/libcom/src/calc/postfix.c``
(``postfix()``, ``get_element()``, ``calcErrorStr()``) and the opcode list of
``postfixPvt.h``.  It is kept separate from :mod:`ioc.records.calc_expr`, which
turns the postfix program produced here into fast Python code.

Deliberately the *algorithm* is ported, not a grammar: EPICS accepts a few
surprising inputs (``SINA`` == ``SIN(A)``, ``AANDB`` == ``A AND B``,
``MAX A`` == ``A``, ``A?B:=1:2;B``) and rejects some obvious ones (``+A``),
and only reproducing the shunting-yard tables keeps all of those identical.

Output: a tuple of :data:`Instr` ``(opcode, arg)`` pairs where ``arg`` is the
literal value for ``LITERAL``, the argument index 0..11 for ``FETCH``/``STORE``,
the argument count for the variadic ``MAX``/``MIN``/``FINITE``/``ISNAN``,
and ``None`` otherwise.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from typing import Optional

__all__ = ["CalcError", "Op", "Instr", "ErrCode", "postfix", "MAX_EXPR_LEN", "CALCPERFORM_STACK"]

#: The calc/calcout CALC field is ``DBF_STRING size(80)``, which includes the
#: terminating NUL: softIoc 7.0.8.1 accepts 79 characters and rejects 80.
MAX_EXPR_LEN = 79
#: postfix.h: depth of calcPerform()'s value stack.
CALCPERFORM_STACK = 80


class ErrCode(enum.IntEnum):
    """postfix.h ``CALC_ERR_*`` codes, in EPICS order (index into calcErrorStr)."""

    NONE = 0
    TOOMANY = 1
    BAD_LITERAL = 2
    BAD_ASSIGNMENT = 3
    BAD_SEPERATOR = 4  # sic, EPICS spelling
    PAREN_NOT_OPEN = 5
    PAREN_OPEN = 6
    CONDITIONAL = 7
    INCOMPLETE = 8
    UNDERFLOW = 9
    OVERFLOW = 10
    SYNTAX = 11
    NULL_ARG = 12
    INTERNAL = 13
    # Not a postfix() code: our own limit check, worded like dbStaticLib.
    TOO_LONG = 100


# calcErrorStr() texts, verbatim.
_ERR_TEXT = {
    ErrCode.NONE: "No error",
    ErrCode.TOOMANY: "Too many results returned",
    ErrCode.BAD_LITERAL: "Badly formed numeric literal",
    ErrCode.BAD_ASSIGNMENT: "Bad assignment target",
    ErrCode.BAD_SEPERATOR: "Comma without enclosing parentheses",
    ErrCode.PAREN_NOT_OPEN: "Close parenthesis found without open",
    ErrCode.PAREN_OPEN: "Parenthesis still open at end of expression",
    ErrCode.CONDITIONAL: "Unbalanced conditional ?: operators",
    ErrCode.INCOMPLETE: "Incomplete expression, operand missing",
    ErrCode.UNDERFLOW: "Not enough operands provided",
    ErrCode.OVERFLOW: "Runtime stack overflow",
    ErrCode.SYNTAX: "Syntax error, unknown operator/operand",
    ErrCode.NULL_ARG: "NULL or empty input argument to postfix()",
    ErrCode.INTERNAL: "Internal error, unknown element type",
    ErrCode.TOO_LONG: f"Expression longer than {MAX_EXPR_LEN} characters",
}


class CalcError(ValueError):
    """An invalid CALC expression, or a calcPerform() runtime failure.

    ``str()`` is a human message built from EPICS's calcErrorStr() text, e.g.
    ``Syntax error, unknown operator/operand at character 3 in CALC expression 'A+*B'``.

    Attributes:
        code: the :class:`ErrCode` (``None`` for runtime errors).
        offset: 0-based index into ``expr`` where the problem was detected
            (``None`` for runtime errors); the message shows it 1-based.
        expr: the offending expression text.
    """

    def __init__(self, message: str, *, code: Optional[ErrCode] = None,
                 offset: Optional[int] = None, expr: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.offset = offset
        self.expr = expr

    @classmethod
    def from_code(cls, code: ErrCode, offset: int, expr: str) -> "CalcError":
        """Build the message EPICS would log, plus where the parser stopped."""
        return cls(f"{_ERR_TEXT[code]} at character {offset + 1} in CALC expression '{expr}'",
                   code=code, offset=offset, expr=expr)


class Op(enum.IntEnum):
    """postfixPvt.h ``rpn_opcode`` (same names; LITERAL_DOUBLE/INT merged)."""

    LITERAL = 1
    FETCH_VAL = 3
    FETCH = 4  # arg: index 0..11 (FETCH_A..FETCH_L)
    STORE = 16  # arg: index 0..11 (STORE_A..STORE_L)
    CONST_PI = 28
    CONST_D2R = 29
    CONST_R2D = 30
    UNARY_NEG = 31
    ADD = 32
    SUB = 33
    MULT = 34
    DIV = 35
    MODULO = 36
    POWER = 37
    ABS_VAL = 38
    EXP = 39
    LOG_10 = 40
    LOG_E = 41
    MAX = 42
    MIN = 43
    SQU_RT = 44
    ACOS = 45
    ASIN = 46
    ATAN = 47
    ATAN2 = 48
    COS = 49
    COSH = 50
    SIN = 51
    SINH = 52
    TAN = 53
    TANH = 54
    CEIL = 55
    FLOOR = 56
    FMOD = 57
    FINITE = 58
    ISINF = 59
    ISNAN = 60
    NINT = 61
    RANDOM = 62
    REL_OR = 63
    REL_AND = 64
    REL_NOT = 65
    BIT_OR = 66
    BIT_AND = 67
    BIT_EXCL_OR = 68
    BIT_NOT = 69
    RIGHT_SHIFT_ARITH = 70
    LEFT_SHIFT_ARITH = 71
    RIGHT_SHIFT_LOGIC = 72
    NOT_EQ = 73
    LESS_THAN = 74
    LESS_OR_EQ = 75
    EQUAL = 76
    GR_OR_EQ = 77
    GR_THAN = 78
    COND_IF = 79
    COND_ELSE = 80
    COND_END = 81
    NOT_GENERATED = 82


#: One postfix instruction: (opcode, literal value / arg index / nargs / None).
Instr = tuple[Op, Optional[float]]

#: Opcodes followed by an argument count in the EPICS byte code.
VARARG_OPS = frozenset({Op.MAX, Op.MIN, Op.FINITE, Op.ISNAN})


class _T(enum.Enum):
    """postfix.c ``element_type``."""

    OPERAND = 0
    LITERAL_DOUBLE = 1  # LITERAL_OPERAND with code LITERAL_DOUBLE
    LITERAL_HEX = 2  # LITERAL_OPERAND with code LITERAL_INT ("0X")
    STORE_OPERATOR = 3
    UNARY_OPERATOR = 4
    VARARG_OPERATOR = 5
    BINARY_OPERATOR = 6
    SEPERATOR = 7
    CLOSE_PAREN = 8
    CONDITIONAL = 9
    EXPR_TERMINATOR = 10


@dataclass
class _El:
    """postfix.c ``ELEMENT``; mutable because stacked copies get edited."""

    name: str
    in_stack_pri: int
    in_coming_pri: int
    runtime_effect: int
    type: _T
    code: Op
    arg: Optional[int] = None  # FETCH/STORE index


def _e(name: str, isp: int, icp: int, eff: int, typ: _T, code: Op,
       arg: Optional[int] = None) -> _El:
    return _El(name, isp, icp, eff, typ, code, arg)


_U, _V, _B = _T.UNARY_OPERATOR, _T.VARARG_OPERATOR, _T.BINARY_OPERATOR


def _fetch(letter: str) -> _El:
    return _e(letter, 0, 0, 1, _T.OPERAND, Op.FETCH, ord(letter) - ord("A"))


# The two tables of postfix.c, same order (searched in reverse so that the
# longest of several names sharing a prefix wins), same priorities.
_OPERANDS: tuple[_El, ...] = (
    _e("!", 7, 8, 0, _U, Op.REL_NOT),
    _e("(", 0, 8, 0, _U, Op.NOT_GENERATED),
    _e("-", 7, 8, 0, _U, Op.UNARY_NEG),
    _e(".", 0, 0, 1, _T.LITERAL_DOUBLE, Op.LITERAL),
    _e("0", 0, 0, 1, _T.LITERAL_DOUBLE, Op.LITERAL),
    _e("0X", 0, 0, 1, _T.LITERAL_HEX, Op.LITERAL),
    *(_e(d, 0, 0, 1, _T.LITERAL_DOUBLE, Op.LITERAL) for d in "123456789"),
    _fetch("A"),
    _e("ABS", 7, 8, 0, _U, Op.ABS_VAL),
    _e("ACOS", 7, 8, 0, _U, Op.ACOS),
    _e("ASIN", 7, 8, 0, _U, Op.ASIN),
    _e("ATAN", 7, 8, 0, _U, Op.ATAN),
    _e("ATAN2", 7, 8, -1, _U, Op.ATAN2),
    _fetch("B"),
    _fetch("C"),
    _e("CEIL", 7, 8, 0, _U, Op.CEIL),
    _e("COS", 7, 8, 0, _U, Op.COS),
    _e("COSH", 7, 8, 0, _U, Op.COSH),
    _fetch("D"),
    _e("D2R", 0, 0, 1, _T.OPERAND, Op.CONST_D2R),
    _fetch("E"),
    _e("EXP", 7, 8, 0, _U, Op.EXP),
    _fetch("F"),
    _e("FINITE", 7, 8, 0, _V, Op.FINITE),
    _e("FLOOR", 7, 8, 0, _U, Op.FLOOR),
    _e("FMOD", 7, 8, -1, _U, Op.FMOD),
    _fetch("G"),
    _fetch("H"),
    _fetch("I"),
    _e("INF", 0, 0, 1, _T.LITERAL_DOUBLE, Op.LITERAL),
    _e("ISINF", 7, 8, 0, _U, Op.ISINF),
    _e("ISNAN", 7, 8, 0, _V, Op.ISNAN),
    _fetch("J"),
    _fetch("K"),
    _fetch("L"),
    _e("LN", 7, 8, 0, _U, Op.LOG_E),
    _e("LOG", 7, 8, 0, _U, Op.LOG_10),
    _e("LOGE", 7, 8, 0, _U, Op.LOG_E),
    _e("MAX", 7, 8, 0, _V, Op.MAX),
    _e("MIN", 7, 8, 0, _V, Op.MIN),
    _e("NINT", 7, 8, 0, _U, Op.NINT),
    _e("NAN", 0, 0, 1, _T.LITERAL_DOUBLE, Op.LITERAL),
    _e("NOT", 7, 8, 0, _U, Op.BIT_NOT),
    _e("PI", 0, 0, 1, _T.OPERAND, Op.CONST_PI),
    _e("R2D", 0, 0, 1, _T.OPERAND, Op.CONST_R2D),
    _e("RNDM", 0, 0, 1, _T.OPERAND, Op.RANDOM),
    _e("SIN", 7, 8, 0, _U, Op.SIN),
    _e("SINH", 7, 8, 0, _U, Op.SINH),
    _e("SQR", 7, 8, 0, _U, Op.SQU_RT),
    _e("SQRT", 7, 8, 0, _U, Op.SQU_RT),
    _e("TAN", 7, 8, 0, _U, Op.TAN),
    _e("TANH", 7, 8, 0, _U, Op.TANH),
    _e("VAL", 0, 0, 1, _T.OPERAND, Op.FETCH_VAL),
    _e("~", 7, 8, 0, _U, Op.BIT_NOT),
)

_OPERATORS: tuple[_El, ...] = (
    _e("!=", 3, 3, -1, _B, Op.NOT_EQ),
    _e("#", 3, 3, -1, _B, Op.NOT_EQ),
    _e("%", 5, 5, -1, _B, Op.MODULO),
    _e("&", 2, 2, -1, _B, Op.BIT_AND),
    _e("&&", 2, 2, -1, _B, Op.REL_AND),
    _e(")", 0, 0, 0, _T.CLOSE_PAREN, Op.NOT_GENERATED),
    _e("*", 5, 5, -1, _B, Op.MULT),
    _e("**", 6, 6, -1, _B, Op.POWER),
    _e("+", 4, 4, -1, _B, Op.ADD),
    _e(",", 0, 0, 0, _T.SEPERATOR, Op.NOT_GENERATED),
    _e("-", 4, 4, -1, _B, Op.SUB),
    _e("/", 5, 5, -1, _B, Op.DIV),
    _e(":", 0, 0, -1, _T.CONDITIONAL, Op.COND_ELSE),
    _e(":=", 0, 0, -1, _T.STORE_OPERATOR, Op.STORE),
    _e(";", 0, 0, 0, _T.EXPR_TERMINATOR, Op.NOT_GENERATED),
    _e("<", 3, 3, -1, _B, Op.LESS_THAN),
    _e("<<", 2, 2, -1, _B, Op.LEFT_SHIFT_ARITH),
    _e("<=", 3, 3, -1, _B, Op.LESS_OR_EQ),
    _e("=", 3, 3, -1, _B, Op.EQUAL),
    _e("==", 3, 3, -1, _B, Op.EQUAL),
    _e(">", 3, 3, -1, _B, Op.GR_THAN),
    _e(">=", 3, 3, -1, _B, Op.GR_OR_EQ),
    _e(">>", 2, 2, -1, _B, Op.RIGHT_SHIFT_ARITH),
    _e(">>>", 2, 2, -1, _B, Op.RIGHT_SHIFT_LOGIC),
    _e("?", 0, 0, -1, _T.CONDITIONAL, Op.COND_IF),
    _e("AND", 2, 2, -1, _B, Op.BIT_AND),
    _e("OR", 1, 1, -1, _B, Op.BIT_OR),
    _e("XOR", 1, 1, -1, _B, Op.BIT_EXCL_OR),
    _e("^", 6, 6, -1, _B, Op.POWER),
    _e("|", 1, 1, -1, _B, Op.BIT_OR),
    _e("||", 1, 1, -1, _B, Op.REL_OR),
)

# C isspace() in the "C" locale.
_SPACE = " \t\n\v\f\r"

# What glibc strtod() consumes from a string starting with a digit or '.'
# (hex floats cannot occur: "0X" is matched first and takes the hex path).
_DECIMAL_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# ... or starting with INF/NAN (the only alphabetic literal table entries).
_INFNAN_RE = re.compile(r"(inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?", re.IGNORECASE)
# strtoul(base 0) after "0x": hex digits, else it stops after the "0".
_HEX_RE = re.compile(r"0[xX]([0-9a-fA-F]+)")
_DBL_MIN = 2.2250738585072014e-308


def _get_element(operand: bool, src: str, pos: int) -> tuple[Optional[_El], int]:
    """postfix.c get_element(): skip spaces, then longest table match.

    Returns ``(element, position)``: the element found (``None`` if nothing
    matches) and the position of its first character.
    """
    while pos < len(src) and src[pos] in _SPACE:
        pos += 1
    if pos >= len(src):
        return None, pos
    table = _OPERANDS if operand else _OPERATORS
    for el in reversed(table):
        chunk = src[pos:pos + len(el.name)]
        # epicsStrnCaseCmp: ASCII case folding only.
        if chunk.isascii() and chunk.upper() == el.name:
            return el, pos
    return None, pos


def _parse_literal(el: _El, src: str, pos: int) -> tuple[float, int]:
    """epicsParseDouble()/epicsParseUInt32() on ``src[pos:]``.

    Returns ``(value, end)``; raises ``ValueError`` where EPICS reports
    CALC_ERR_BAD_LITERAL.
    """
    if el.type is _T.LITERAL_HEX:
        m = _HEX_RE.match(src, pos)
        if m is None:  # "0x" without digits: strtoul() converts just the "0"
            return 0.0, pos + 1
        value = int(m.group(1), 16)
        if value > 0xFFFFFFFF:
            raise ValueError("hex literal overflow")
        # Stored as an epicsUInt32 but executed as LITERAL_INT (epicsInt32).
        if value & 0x80000000:
            value -= 0x100000000
        return float(value), m.end()
    m = _DECIMAL_RE.match(src, pos)
    if m is not None:
        text = m.group(0)
        value = float(text)
        mantissa = re.split("[eE]", text)[0]
        # glibc strtod() sets ERANGE on overflow, on underflow to zero and on
        # subnormal results; epicsParseDouble() turns any ERANGE into an error
        # (softIoc 7.0.8.1 rejects "1e999", "1e-400" and "1e-310").
        if (value == float("inf") or 0.0 < value < _DBL_MIN
                or (value == 0.0 and any(c in "123456789" for c in mantissa))):
            raise ValueError("literal out of range")
        return value, m.end()
    m = _INFNAN_RE.match(src, pos)
    if m is not None:
        return (float("inf") if m.group(1) else float("nan")), m.end()
    raise ValueError("no conversion")  # e.g. a lone "."


def postfix(expr: str) -> tuple[Instr, ...]:
    """Translate an infix CALC expression into a postfix program.

    Mirrors postfix.c's postfix() step by step, including its error checks.
    Raises :class:`CalcError` with the matching :class:`ErrCode`.
    """
    if not expr:
        raise CalcError.from_code(ErrCode.NULL_ARG, 0, expr)
    if len(expr) > MAX_EXPR_LEN:
        raise CalcError.from_code(ErrCode.TOO_LONG, MAX_EXPR_LEN, expr)

    out: list[Instr] = []
    stack: list[_El] = []  # operator stack (postfix.c uses stack[1..])
    operand_needed = True
    runtime_depth = 0
    cond_count = 0
    pos = 0

    def fail(code: ErrCode, at: int) -> CalcError:
        return CalcError.from_code(code, at, expr)

    def emit(el: _El) -> None:
        """Move one stacked operator to the output (the repeated C idiom)."""
        nonlocal runtime_depth
        if el.type is _T.VARARG_OPERATOR:
            out.append((el.code, 1 - el.runtime_effect))
        else:
            out.append((el.code, el.arg))
        runtime_depth += el.runtime_effect

    while True:
        el, pos = _get_element(operand_needed, expr, pos)
        if el is None:
            break
        start = pos
        pos += len(el.name)
        t = el.type

        if t is _T.OPERAND:
            out.append((el.code, el.arg))
            runtime_depth += el.runtime_effect
            operand_needed = False

        elif t is _T.LITERAL_DOUBLE or t is _T.LITERAL_HEX:
            runtime_depth += el.runtime_effect
            try:
                value, pos = _parse_literal(el, expr, start)
            except ValueError:
                raise fail(ErrCode.BAD_LITERAL, start) from None
            out.append((Op.LITERAL, value))
            operand_needed = False

        elif t is _T.STORE_OPERATOR:
            # Only "X:=" at statement level: the operator stack must be empty
            # and the last output must be a fetch of A..L, which becomes the
            # store (pushed so it executes after the statement's value).
            if not out or stack or out[-1][0] is not Op.FETCH:
                raise fail(ErrCode.BAD_ASSIGNMENT, start)
            _, index = out.pop()
            stack.append(replace(el, arg=index))
            runtime_depth -= 1
            operand_needed = True

        elif t is _T.UNARY_OPERATOR or t is _T.VARARG_OPERATOR or t is _T.BINARY_OPERATOR:
            while stack and stack[-1].in_stack_pri >= el.in_coming_pri:
                emit(stack.pop())
            stack.append(replace(el))  # a copy: "," and ")" edit it
            if t is _T.BINARY_OPERATOR:
                operand_needed = True

        elif t is _T.SEPERATOR:
            while not (stack and stack[-1].name == "("):
                # C: error once only stack[1] is left and it is not '('.
                if len(stack) <= 1:
                    raise fail(ErrCode.BAD_SEPERATOR, start)
                emit(stack.pop())
            operand_needed = True
            stack[-1].runtime_effect -= 1  # one more argument inside (...)

        elif t is _T.CLOSE_PAREN:
            while not (stack and stack[-1].name == "("):
                if len(stack) <= 1:
                    raise fail(ErrCode.PAREN_NOT_OPEN, start)
                emit(stack.pop())
            paren = stack.pop()
            # A vararg operator before '(' inherits the argument count.
            if stack and stack[-1].type is _T.VARARG_OPERATOR:
                stack[-1].runtime_effect = paren.runtime_effect
                if stack[-1].runtime_effect > 0:
                    raise fail(ErrCode.INCOMPLETE, start)

        elif t is _T.CONDITIONAL:
            while stack and stack[-1].in_stack_pri > el.in_coming_pri:
                emit(stack.pop())
            out.append((el.code, None))
            runtime_depth += el.runtime_effect
            if el.name == ":":
                cond_count -= 1
                if cond_count < 0:
                    raise fail(ErrCode.CONDITIONAL, start)
                # COND_END is emitted when this ':' entry leaves the stack.
                stack.append(_El(":", 0, 0, 0, _T.CONDITIONAL, Op.COND_END))
            else:
                cond_count += 1
            operand_needed = True

        elif t is _T.EXPR_TERMINATOR:
            while stack:
                if stack[-1].name == "(":
                    raise fail(ErrCode.PAREN_OPEN, start)
                emit(stack.pop())
            if cond_count != 0:
                raise fail(ErrCode.CONDITIONAL, start)
            if runtime_depth > 1:
                raise fail(ErrCode.TOOMANY, start)
            operand_needed = True

        else:  # pragma: no cover - every table entry has a handled type
            raise fail(ErrCode.INTERNAL, start)

        if runtime_depth < 0:
            raise fail(ErrCode.UNDERFLOW, start)
        if runtime_depth >= CALCPERFORM_STACK:
            raise fail(ErrCode.OVERFLOW, start)

    if pos < len(expr):
        raise fail(ErrCode.SYNTAX, pos)

    while stack:
        if stack[-1].name == "(":
            raise fail(ErrCode.PAREN_OPEN, len(expr))
        emit(stack.pop())
    if cond_count != 0:
        raise fail(ErrCode.CONDITIONAL, len(expr))
    if operand_needed or runtime_depth != 1:
        raise fail(ErrCode.INCOMPLETE, len(expr))
    return tuple(out)
