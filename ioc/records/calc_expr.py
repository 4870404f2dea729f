"""EPICS CALC expression engine (calc / calcout records).

Behaves like EPICS base 7.0 libCom ``modules/libcom/src/calc/postfix.c``
(infix -> postfix, ported in :mod:`ioc.records._calc_postfix`) and
``calcPerform.c`` (evaluation, reproduced here), checked against
softIoc/caget 7.0.8.1 on Linux x86-64 (see tests/unit/test_calc_expr.py).
Sources followed: github.com/epics-base/epics-base, files postfix.c (commit
006ee530), calcPerform.c and postfixPvt.h (1da26911), and
misc/epicsStdlib.c (epicsParseDouble/epicsParseUInt32) for literals.

Usage::

    expr = compile_calc("A:=A+1;B*A")   # parse once; CalcError if invalid
    expr.evaluate(args, val)            # args: 12 floats A..L, mutated by :=

Elements (case-insensitive, whitespace allowed between elements only).
"pri" is postfix.c's in-stack/in-coming priority; higher binds tighter and
equal priorities associate left (a binary operator pops stacked ones with
in-stack >= its in-coming)::

  element                pri  result (x = left/first, y = right/second)
  ---------------------  ---  ----------------------------------------------
  literal 1 1.5 .5 1e3    -   strtod(); out of range / subnormal -> error
  0x1F (hex)              -   uint32, executed as int32: 0xFFFFFFFF is -1
  INF NAN INFINITY        -   literals (strtod)
  A..L VAL                -   argument / record's current VAL
  PI D2R R2D RNDM         -   pi, pi/180, 180/pi, 16-bit LCG in [0,1] whose
                              seed is shared process-wide (like the C static)
  -x !x ~x NOT x         7/8  -x; !x is (x == 0) so !NAN = 0; ~x and NOT x
                              are both ~d2i(x) (no unary +: "+A" is an error)
  f(x) functions         7/8  ABS ACOS ASIN ATAN CEIL COS COSH EXP FLOOR ISINF
                              LN LOGE LOG(=log10) NINT SIN SINH SQR SQRT TAN
                              TANH; ATAN2(x,y)=atan2(y,x)!; FMOD(x,y)=fmod;
                              MAX MIN FINITE ISNAN take 1+ args; parens are
                              optional: "SIN A+1" is sin(A)+1, "MAX A" is A
  x ^ y, x ** y          6/6  pow(x,y); left assoc: 2^3^2 = 64; -2^2 = 4
  * / %                  5/5  C double ops (1/0=inf, 0/0=nan); x%y is
                              (int32)x % (int32)y, truncating, nan if
                              (int32)y == 0
  + -                    4/4
  < <= > >= = == != #    3/3  1.0 / 0.0 (IEEE: NaN compares unequal)
  & AND && << >> >>>     2/2  bitwise on d2i(); && is logical (both sides
                              always evaluated); shifts use (d2i(y) & 31);
                              >> arithmetic on int32, >>> logical on uint32
  | OR XOR ||            1/1  bitwise on d2i(); || logical
  c ? x : y              0/0  lowest, right-nested; c==0.0 selects y (NaN
                              selects x); only the taken branch is evaluated
  X := expr              0/0  only at the start of a statement; the whole
                              statement's value is stored into X (A..L)
  s1 ; s2                 -   statements; exactly one value must remain on
                              the stack at the end ("A;B:=2" returns A)

Integer conversions (calcPerform.c's macros, as gcc compiles them for x86-64,
i.e. ``cvttsd2si``; confirmed with softIoc):
  (epicsInt32)x   truncate toward zero; NaN or out of range -> -2147483648
  d2i(x)          x<0: (epicsInt32)x; else (epicsUInt32)x = low 32 bits of
                  the truncated value (0 for NaN, +inf, >= 2**63), as int32
  d2ui(x)         x<0: (epicsUInt32)(epicsInt32)x; else as d2i but unsigned
  NINT(x)         (epicsInt32)(x >= 0 ? x+0.5 : x-0.5)
  ISINF(x)        glibc isinf(): +1 for +inf, -1 for -inf, else 0
  MAX/MIN         folded from the last argument down; any NaN -> NaN

Compile-time errors are CalcError with postfix.c's calcErrorStr() text
(an empty expression is an error, as postfix() reports it; EPICS records
tolerate some empty expressions, e.g. calcout OCAL when DOPT uses CALC).
Run-time errors (calcPerform() returning -1) can only come from the few
nonsense programs postfix() accepts, e.g. "A?(B,C):ATAN2(D)"; they raise
CalcError too (the record then raises CALC_ALARM and keeps VAL).

Implementation: the postfix program is symbolically executed into one Python
expression per statement and compiled into a function once.  Two variants are
compiled: a fast one using plain Python float operators and ``math``
functions, and a C-semantics one whose helpers return inf/nan where Python
raises (1/0, sqrt(-1), exp(1000), ...).  evaluate() runs the fast one and, on
ArithmeticError/ValueError, re-runs the C-semantics one; the fast variant
writes the := stores back only at its end, so a failed attempt has no side
effects.  Expressions using RNDM get only the C-semantics variant (a retry
would advance the generator twice).  Programs whose conditionals do not nest
(possible in theory) fall back to a direct port of calcPerform()'s loop.

Deliberate differences from EPICS: "-2147483648 % -1" returns 0 (C traps with
SIGFPE and kills the IOC); ":=" after a numeric literal is always "Bad
assignment target" (postfix.c inspects the literal's last byte and may
accept it); the sign of NaN results is only best effort.
"""

from __future__ import annotations

from typing import Callable, Optional

from ._calc_postfix import MAX_EXPR_LEN, CalcError, ErrCode, Instr, Op, postfix
from ._calc_runtime import (
    CONSTANTS, NAMESPACE, TEMPLATES, VARARG_FUNCS, interpret, literal_source, op_source, reset_random_seed,
)

__all__ = ["CalcError", "CalcExpr", "ErrCode", "MAX_EXPR_LEN", "compile_calc", "reset_random_seed"]

_LETTERS = "ABCDEFGHIJKL"
#: What the fast variant may raise where C would return inf/NaN instead.
_MATH_ERRORS = (ArithmeticError, ValueError)
#: Globals shared by all generated functions (each exec gets its own locals).
_GLOBALS = dict(NAMESPACE, _MATH_ERRORS=_MATH_ERRORS)


class _Unstructured(Exception):
    """The program cannot be turned into nested expressions: interpret it."""


def _jump_target(program: tuple[Instr, ...], i: int, match: Op) -> int:
    """calcPerform.c cond_search() at compile time: index after the match."""
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
    raise _Unstructured


def _is_constant(source: str) -> bool:
    try:
        float(source)
    except ValueError:
        return source in ("_NAN", "_INF", "(-_INF)")
    return True


class _CodeGen:
    """Symbolic execution of a postfix program into Python statements.

    The value stack holds Python source strings instead of numbers.  Each
    conditional is executed twice (then/else path), both paths must meet at
    the instruction after the ``:``'s matching COND_END with the same stack
    below one new value, which becomes ``(then if cond else else)``.
    Stores become assignments to local variables named after the letter.
    """

    def __init__(self, program: tuple[Instr, ...], safe: bool) -> None:
        self.program = program
        self.safe = safe
        self.lines: list[str] = []
        self.in_branch = 0
        self.temps = 0

    def result(self) -> str:
        """Run the whole program; returns the source of the final value."""
        stack: list[str] = []
        if self._run(0, len(self.program), stack) != len(self.program) or len(stack) != 1:
            raise _Unstructured  # calcPerform() would fail: let interpret() say so
        return stack[0]

    def _run(self, i: int, stop: int, stack: list[str]) -> int:
        """Execute from ``i`` until reaching (or jumping past) ``stop``."""
        program = self.program
        try:
            while i < stop:
                op, arg = program[i]
                i += 1
                if op is Op.LITERAL:
                    stack.append(literal_source(arg))  # type: ignore[arg-type]
                elif op is Op.FETCH:
                    stack.append(_LETTERS[arg])  # type: ignore[index]
                elif op is Op.FETCH_VAL:
                    stack.append("_v")
                elif op in CONSTANTS:
                    stack.append(literal_source(CONSTANTS[op]))
                elif op is Op.RANDOM:
                    stack.append("_rndm()")
                elif op is Op.STORE:
                    self._store(_LETTERS[arg], stack)  # type: ignore[index]
                elif op is Op.COND_IF:
                    i = self._conditional(i, stop, stack)
                elif op is Op.COND_ELSE:  # end of a then-path: skip the else
                    i = _jump_target(program, i, Op.COND_END)
                elif op is Op.COND_END:
                    pass
                else:
                    n = int(arg) if op in VARARG_FUNCS else TEMPLATES[op][0]  # type: ignore[arg-type]
                    if n > len(stack):
                        raise _Unstructured
                    operands = stack[len(stack) - n:]
                    del stack[len(stack) - n:]
                    stack.append(op_source(op, operands, self.safe))
        except IndexError:
            raise _Unstructured from None
        return i

    def _conditional(self, i: int, stop: int, stack: list[str]) -> int:
        cond = stack.pop()
        else_at = _jump_target(self.program, i, Op.COND_ELSE)
        join = _jump_target(self.program, else_at, Op.COND_END)
        if join > stop:
            raise _Unstructured
        self.in_branch += 1
        then_stack, else_stack = list(stack), list(stack)
        if self._run(i, join, then_stack) != join or self._run(else_at, join, else_stack) != join:
            raise _Unstructured
        self.in_branch -= 1
        if not (len(then_stack) == len(else_stack) == len(stack) + 1
                and then_stack[:-1] == stack and else_stack[:-1] == stack):
            raise _Unstructured
        # Python evaluates cond first and then only the chosen branch, as C.
        stack.append(f"({then_stack[-1]} if {cond} else {else_stack[-1]})")
        return join

    def _store(self, letter: str, stack: list[str]) -> None:
        if self.in_branch:  # postfix() cannot produce this; be safe anyway
            raise _Unstructured
        value = stack.pop()
        # Values still on the stack were computed before this store in C; pin
        # them now so that neither the assignment nor evaluation order
        # (RNDM) changes what they are.
        for k, item in enumerate(stack):
            if not _is_constant(item):
                temp = f"_t{self.temps}"
                self.temps += 1
                self.lines.append(f"{temp} = {item}")
                stack[k] = temp
        self.lines.append(f"{letter} = {value}")


def _arg_usage(program: tuple[Instr, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """calcPerform.c calcArgUsage(): (inputs, stores).

    A letter fetched only after it was stored to is not an input.
    """
    inputs: set[str] = set()
    stores: set[str] = set()
    for op, arg in program:
        if op is Op.FETCH and _LETTERS[arg] not in stores:  # type: ignore[index]
            inputs.add(_LETTERS[arg])  # type: ignore[index]
        elif op is Op.STORE:
            stores.add(_LETTERS[arg])  # type: ignore[index]
    return frozenset(inputs), frozenset(stores)


def _function_source(program: tuple[Instr, ...], safe: bool) -> str:
    """Body of ``def _calc(_a, _v)`` for one variant (raises _Unstructured)."""
    gen = _CodeGen(program, safe)
    result = gen.result()
    fetched = sorted({arg for op, arg in program if op is Op.FETCH})
    stored = sorted({arg for op, arg in program if op is Op.STORE})
    body = [f"{_LETTERS[k]} = _a[{k}]" for k in fetched]  # type: ignore[index]
    body += gen.lines
    if stored:
        # Write back only at the end: a fast attempt that raises must leave
        # args untouched so the C-semantics retry starts from the same state.
        body.append(f"_r = {result}")
        body += [f"_a[{k}] = {_LETTERS[k]}" for k in stored]  # type: ignore[index]
        body.append("return _r")
    else:
        body.append(f"return {result}")
    return "\n".join(body)


def _indent(text: str, level: int) -> str:
    return "\n".join(" " * (4 * level) + line for line in text.splitlines())


class CalcExpr:
    """A compiled CALC expression; create with :func:`compile_calc`.

    Attributes:
        expr: the expression text as given.
        uses: letters A..L read before being assigned (calcArgUsage inputs).
        stores: letters assigned with ``:=``.
        uses_val: True if the expression reads VAL.
        program: the postfix program (tuple of ``(Op, arg)``), as postfix.c.
        python_source: the generated Python source, or None if the program
            is executed by the calcPerform() interpreter.
    """

    def __init__(self, expr: str, program: tuple[Instr, ...]) -> None:
        self.expr = expr
        self.program = program
        self.uses, self.stores = _arg_usage(program)
        self.uses_val = any(op is Op.FETCH_VAL for op, _ in program)
        self.python_source: Optional[str] = None
        # The instance attribute shadows the method below: callers go
        # straight into the generated function, one Python frame per call.
        self.evaluate: Callable[..., float] = self._build()  # type: ignore[method-assign]

    def _interpreter(self) -> Callable[..., float]:
        program, expr = self.program, self.expr

        def run_interpreter(args: list[float], val: float = 0.0) -> float:
            return interpret(program, args, val, expr)
        return run_interpreter

    def _build(self) -> Callable[..., float]:
        try:
            safe = _function_source(self.program, safe=True)
            fast = None if any(op is Op.RANDOM for op, _ in self.program) else \
                _function_source(self.program, safe=False)
        except _Unstructured:
            return self._interpreter()

        if fast is None or fast == safe:  # nothing in it can raise
            source = f"def _calc(_a, _v=0.0):\n{_indent(safe, 1)}\n"
        else:
            source = (f"def _make():\n"
                      f"    def _safe(_a, _v):\n{_indent(safe, 2)}\n"
                      f"    def _calc(_a, _v=0.0):\n"
                      f"        try:\n{_indent(fast, 3)}\n"
                      f"        except _MATH_ERRORS:\n"
                      f"            return _safe(_a, _v)\n"
                      f"    return _calc\n"
                      f"_calc = _make()\n")
        try:
            code = compile(source, f"<CALC {self.expr!r}>", "exec")
        except (SyntaxError, RecursionError, MemoryError):  # pragma: no cover - parser nesting limits
            return self._interpreter()  # 79 characters should never get here
        self.python_source = source
        scope: dict[str, object] = {}
        exec(code, _GLOBALS, scope)  # noqa: S102 - source built from fixed templates
        return scope["_calc"]  # type: ignore[return-value]

    def evaluate(self, args: list[float], val: float = 0.0) -> float:  # noqa: F811 - shadowed
        """Evaluate like calcPerform(&A, &VAL, rpcl).

        Args:
            args: 12 floats for A..L; ``:=`` assignments are written into it
                (the list is mutated in place).  Must be floats (ints give
                Python int arithmetic).
            val: the record's current VAL, read by the ``VAL`` operand.
        Returns:
            The expression's value as a float; C IEEE semantics, so 1/0 is
            inf and 0/0, SQRT(-1) are NaN rather than exceptions.
        Raises:
            CalcError: only where calcPerform() returns -1, which needs a
                program postfix() should not have accepted.
        """
        return self.evaluate(args, val)  # the per-instance compiled function

    def __repr__(self) -> str:
        return f"CalcExpr({self.expr!r})"


def compile_calc(expr: str) -> CalcExpr:
    """Parse an infix CALC expression once and compile it.

    Accepts what EPICS 7.0 postfix() accepts for a CALC field: at most
    MAX_EXPR_LEN (79) characters, since the field is a 80-byte C string.
    Raises CalcError (with ``code``/``offset``) otherwise, e.g. for "A+",
    "(A", "FOO", "" or an over-long string.
    """
    if not isinstance(expr, str):
        raise CalcError(f"CALC expression must be a str, not {type(expr).__name__}",
                        code=ErrCode.NULL_ARG, offset=0, expr=str(expr))
    return CalcExpr(expr, postfix(expr))
