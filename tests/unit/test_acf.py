"""Unit tests of the ACF parser (ioc.access.acf) and the rule engine (ioc.access.engine).

The access facts are those EPICS base 7.0.8 checks in libcom/test/aslibtest.c (an almost
empty file fails; HAG host names matched by name, or by resolved address with
asCheckClientIP; an undefined ASG falls back to DEFAULT) and those of asLibRoutines.c's
asComputePvt/asComputeAsgPvt/asAddClient (user and host matching, ASL levels, CALC rules
with inputs, host names compared lower-cased, TRAPWRITE, no RPC right in 7.0.8).  Text
comparisons with base's own ``ascheck`` are in tests/integration/test_acf_vs_ascheck.py.
"""
from __future__ import annotations

import socket

import pytest

from ioc.access.acf import (DEFAULT, NONE, READ, WRITE, errlog_truncate, load_acf_file,
                            parse_acf, parse_macro_defns)
from ioc.access.engine import (Access, check_get, check_put, compute_access, compute_rights,
                               set_input, set_input_disconnected, start_inputs)

# aslibtest.c's hostname_config
HOSTNAME_CONFIG = (
    "HAG(foo) {localhost}\n"
    "ASG(DEFAULT) {RULE(0, NONE)}\n"
    "ASG(ro) {RULE(0, NONE)RULE(1, READ) {HAG(foo)}}\n"
    "ASG(rw) {RULE(1, WRITE) {HAG(foo)}}\n"
)


def load(text: str, subs: str | None = None, **kw):
    result = parse_acf(text, subs, **kw)
    assert result.ok, result.messages
    return result.config


def mask(config, asg: str, user: str, host: str, asl: int = 0) -> int:
    """aslibtest.c testAccess(): bit 0 = asCheckGet, bit 1 = asCheckPut."""
    access = compute_access(config, asg, asl, user, host)
    return (1 if check_get(access) else 0) | (2 if check_put(access) else 0)


# ----------------------------------------------------------------------------- aslibtest.c
def test_almost_empty_file_fails() -> None:
    result = parse_acf("\n#almost empty file\n\n")
    assert not result.ok
    assert result.config is None
    assert result.messages == ["syntax error at line 4"]


@pytest.mark.parametrize("host, expected", [
    ("localhost", {"invalid": 0, "DEFAULT": 0, "ro": 1, "rw": 3}),
    ("LocalHost", {"invalid": 0, "DEFAULT": 0, "ro": 1, "rw": 3}),   # asAddClient lower-cases
    ("127.0.0.1", {"invalid": 0, "DEFAULT": 0, "ro": 0, "rw": 0}),   # no resolution by default
    ("guaranteed.invalid.", {"invalid": 0, "DEFAULT": 0, "ro": 0, "rw": 0}),
])
def test_host_names(host: str, expected: dict[str, int]) -> None:
    config = load(HOSTNAME_CONFIG)
    assert {asg: mask(config, asg, "testing", host) for asg in expected} == expected


def _localhost_resolves() -> bool:
    try:
        return socket.gethostbyname("localhost") == "127.0.0.1"
    except OSError:
        return False


@pytest.mark.skipif(not _localhost_resolves(), reason="localhost does not resolve to 127.0.0.1")
@pytest.mark.parametrize("host, expected", [
    ("localhost", {"invalid": 0, "DEFAULT": 0, "ro": 0, "rw": 0}),   # not an address
    ("127.0.0.1", {"invalid": 0, "DEFAULT": 0, "ro": 1, "rw": 3}),
    ("guaranteed.invalid.", {"invalid": 0, "DEFAULT": 0, "ro": 0, "rw": 0}),
])
def test_use_ip(host: str, expected: dict[str, int]) -> None:
    config = load(HOSTNAME_CONFIG, check_client_ip=True)
    assert config.find_hag("foo").hosts == ["127.0.0.1"]
    assert {asg: mask(config, asg, "testing", host) for asg in expected} == expected


def test_use_ip_unresolvable_host_is_kept_marked() -> None:
    result = parse_acf("HAG(h) {\"no host\"}\n", check_client_ip=True)
    assert result.ok
    assert result.config.find_hag("h").hosts == ["unresolved:no host"]
    assert result.messages == ["ACF: Unable to resolve host 'no host'"]


# ----------------------------------------------------------------------------- parser
FULL = """\
UAG(ops) {alice, bob, "carol"}
UAG(eng) {dave}
HAG(ctrl) {IOC1.Example.COM, localhost}
ASG(zz) {RULE(1, READ)}
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) {UAG(ops, eng) HAG(ctrl)}
}
ASG(BEAM) {
    INPA(TEST:BEAM:ON)
    INPL("TEST:MODE.VAL")
    RULE(0, NONE)
    RULE(0, WRITE, NOTRAPWRITE) {UAG(ops) CALC("A=0 && L<3")}
}
"""


def test_parse_structure() -> None:
    config = load(FULL)
    assert [a.name for a in config.asgs] == ["BEAM", "DEFAULT", "zz"]   # strcmp order
    assert [u.name for u in config.uags] == ["eng", "ops"]
    assert config.find_uag("ops").users == ["alice", "bob", "carol"]
    assert config.find_hag("ctrl").hosts == ["ioc1.example.com", "localhost"]  # lower-cased
    beam = config.find_asg("BEAM")
    assert [(i.index, i.pv) for i in beam.inputs] == [(0, "TEST:BEAM:ON"), (11, "TEST:MODE.VAL")]
    none_rule, calc_rule = beam.rules
    assert (none_rule.level, none_rule.access, none_rule.calc) == (0, NONE, None)
    assert (calc_rule.level, calc_rule.access, calc_rule.trapwrite) == (0, WRITE, False)
    assert calc_rule.calc == "A=0 && L<3"
    assert calc_rule.inp_used == (1 << 0) | (1 << 11)
    assert [u.name for u in calc_rule.uags] == ["ops"]
    default = config.find_asg(DEFAULT)
    assert [(r.access, r.trapwrite) for r in default.rules] == [(READ, False), (WRITE, True)]
    assert [h.name for h in default.rules[1].hags] == ["ctrl"]


def test_default_asg_always_exists_and_is_fallback() -> None:
    config = load("UAG(a)\n")
    assert [a.name for a in config.asgs] == [DEFAULT]
    assert config.find_asg("nonexistent") is config.find_asg(DEFAULT)
    assert config.find_asg(DEFAULT).rules == []


def test_default_may_be_declared_once_while_empty() -> None:
    assert parse_acf("ASG(DEFAULT)\nASG(DEFAULT) {RULE(1,READ)}\n").ok
    result = parse_acf("ASG(DEFAULT) {RULE(1,READ)}\nASG(DEFAULT)\n")
    assert result.messages == ["Duplicate Access Security Group named 'DEFAULT'",
                               "ERROR at line 2"]


def test_rpc_is_not_an_access_right_in_708() -> None:
    result = parse_acf("ASG(DEFAULT) {\n  RULE(1,READ)\n  RULE(1,RPC)\n}\n")
    assert not result.ok
    assert result.messages == ["Access rights must be NONE, READ or WRITE at line 3"]


def test_access_rights_are_case_sensitive() -> None:
    assert not parse_acf("ASG(DEFAULT) {RULE(1,write)}\n").ok


def test_semantic_errors_continue_and_lines() -> None:
    text = ("UAG(u) {a}\nASG(x) {\n RULE(1,READ) {CALC(\"A+\")}\n RULE(1,BAD)\n"
            " RULE(1,WRITE,X) {UAG(u,v) HAG(w)}\n}\n")
    assert parse_acf(text).messages == [
        "Incomplete expression, operand missing in CALC expression 'A+'", "ERROR at line 3",
        "Access rights must be NONE, READ or WRITE at line 4",
        "Log options must be TRAPWRITE or NOTRAPWRITE at line 5",
        "No User Access Group named 'v' defined", "ERROR at line 5",
        "No Host Access Group named 'w' defined", "ERROR at line 5",
    ]


def test_syntax_error_stops_parse() -> None:
    result = parse_acf("UAG(a) {x}}\nASG(b) {RULE(1,BAD)}\n")
    assert result.messages == ["syntax error at line 1"]


def test_calc_store_refused() -> None:
    result = parse_acf('ASG(DEFAULT) {RULE(1,WRITE) {CALC("A:=1;A")}}\n')
    assert result.messages == ["Assignment operator used in CALC expression 'A:=1;A'",
                               "ERROR at line 1"]


def test_uag_must_precede_its_use() -> None:
    result = parse_acf("ASG(DEFAULT) {RULE(1,WRITE) {UAG(late)}}\nUAG(late) {x}\n")
    assert result.messages == ["No User Access Group named 'late' defined", "ERROR at line 1"]


def test_lexer_facts() -> None:
    # names may hold - + : . [ ] < > ; ; a quoted string keeps its escapes raw
    config = load('UAG(a-b+c:d.e[1]<2>;x) {"x\\"y", "#x"}\n')
    assert config.uags[0].name == "a-b+c:d.e[1]<2>;x"
    assert config.uags[0].users == ['x\\"y', "#x"]
    # digits alone are an INTEGER, not a name; INPA is a keyword
    assert parse_acf("UAG(123)\n").messages == ["syntax error at line 1"]
    assert parse_acf("ASG(INPA)\n").messages == ["syntax error at line 1"]
    assert parse_acf("UAG(1a) {2b}\n").ok
    assert parse_acf("ASG(x) {\n  RULE(1,\x01READ)\n}\n").messages[0] == \
        "Invalid character 0x01 at line 2"
    assert parse_acf("UAG(\xe9a)\n").messages[0] == "Invalid character 0xe9 at line 1"


def test_newline_in_string_is_not_counted() -> None:
    """Base swallows the newline of an unterminated string without counting it."""
    result = parse_acf('ASG(x) {\n  INPA("x\n  RULE(1,READ)\n}\n}\n')
    assert result.messages == ["Newline in quoted string, closing quote missing at line 2",
                               "syntax error at line 2"]


def test_duplicated_members_reported_but_load_succeeds() -> None:
    result = parse_acf("UAG(a) {x,x,y}\nUAG(b) {x}\nHAG(h) {H1,h1}\n")
    assert result.ok
    assert result.messages == ["Duplicated user 'x' in UAG 'a'", "Duplicated host 'h1' in HAG 'h'"]


def test_nul_at_line_start_ends_input() -> None:
    """fgets() then strlen() == 0: asLib's input function reports end of file."""
    result = parse_acf("UAG(a)\n\0junk\nASG(b) @\n")
    assert result.ok and result.messages == []
    result = parse_acf("UAG(a)\0junk\nASG(b) {RULE(1,READ) @}\n")
    assert result.messages == ["Invalid character '@' at line 1"]


def test_errlog_truncation() -> None:
    name = "n" * 300
    result = parse_acf(f"UAG({name})\nUAG({name})\n")
    first = result.messages[0]
    assert first == ("Duplicate User Access Group named '" + name)[:241] + "<<TRUNCATED>>"
    assert len(first) + 1 == 255
    assert errlog_truncate("x" * 254) == "x" * 254
    assert errlog_truncate("x" * 255) == "x" * 241 + "<<TRUNCATED>>"


def test_load_acf_file_missing(tmp_path) -> None:
    result = load_acf_file(str(tmp_path / "nope.acf"))
    assert not result.ok
    assert result.messages == [f"\x1b[31;1mERROR\x1b[0m asInitFile: Can't open file "
                               f"'{tmp_path / 'nope.acf'}'"]


def test_load_acf_file_latin1(tmp_path) -> None:
    path = tmp_path / "x.acf"
    path.write_bytes(b"UAG(a) {x}\nASG(DEFAULT) {RULE(1,READ) {UAG(a)}}\n")
    assert load_acf_file(str(path)).ok


# ----------------------------------------------------------------------------- macros
def test_macros_expanded() -> None:
    config = load("UAG($(U)) {${V=dflt}, $(W,undefined)}\nASG(DEFAULT) {RULE(1,WRITE) {UAG($(U))}}\n",
                  "U=ops,W=w")
    assert config.find_uag("ops").users == ["dflt", "w"]


def test_without_substitutions_dollar_is_invalid() -> None:
    assert parse_acf("UAG($(U))\n").messages == ["Invalid character '$' at line 1",
                                                 "syntax error at line 1"]


@pytest.mark.parametrize("subs", ["", ",", "X=1", "U", "U=a,U"])
def test_undefined_macro_ends_input(subs: str) -> None:
    """Any substitution string (even empty) gives a macro handle; ``U`` alone undefines."""
    result = parse_acf("UAG(a) {$(U)}\n", subs)
    assert result.messages == [
        "macLib: macro U is undefined (expanding string UAG(a) {$(U)}\n)",
        "access security: macExpandString failed",
        "input line: UAG(a) {$(U)}\n",
        "syntax error at line 1",
    ]


def test_undefined_macro_keeps_what_came_before() -> None:
    result = parse_acf("UAG(a) {x}\nUAG($(U)) {y}\nASG(DEFAULT)\n", "X=1")
    assert result.ok
    assert [u.name for u in result.config.uags] == ["a"]
    assert result.messages[1] == "access security: macExpandString failed"


def test_macro_not_read_after_syntax_error() -> None:
    """Input is read lazily, as flex does: nothing after the syntax error is expanded."""
    assert parse_acf("UAG(a) {x}}\n$(NOPE)\n", "X=1").messages == ["syntax error at line 1"]
    # an invalid character is not a syntax error: the next line is read (and fails)
    messages = parse_acf("UAG(a) {x} @\n$(NOPE)\n", "X=1").messages
    assert messages[0] == "Invalid character '@' at line 1"
    assert messages[1].startswith("macLib: macro NOPE is undefined")


def test_macro_warnings_from_definitions() -> None:
    assert parse_acf("UAG(a) {$(X)}\n", "X=$(Y)").messages[0] == \
        "macLib: macro Y is undefined (expanding macro X)"
    assert parse_acf("UAG(a) {$(U)}\n", "U=$(V),V=$(U)").messages[:2] == [
        "macLib: macro U is recursive (expanding macro V)",
        "macLib: macro V is recursive (expanding macro U)"]


def test_macro_line_chunks_of_199() -> None:
    """fgets(buf, 200): a long line is expanded in 199-character pieces."""
    text = "UAG(a) {" + "z" * 195 + ", $(NOPE)}\nASG(b)\n"
    messages = parse_acf(text, "U=1").messages
    assert messages[0] == "macLib: macro NOPE is undefined (expanding string zzzz, $(NOPE)}\n)"


@pytest.mark.parametrize("defns, macros", [
    ("a=1,b=2", {"a": "1", "b": "2"}),
    (" a = 1 , b = 2 ", {"a": "1", "b": "2"}),
    ("", {}),
    ("a", {}),
    ("a=1,a", {}),
    ("a=1,,b=", {"a": "1", "b": ""}),
    ('"a b"=x,c="q,r",d=e\\,f', {"a b": "x", "c": '"q,r"', "d": "e\\,f"}),
])
def test_parse_macro_defns(defns: str, macros: dict[str, str]) -> None:
    assert parse_macro_defns(defns) == macros


# ----------------------------------------------------------------------------- engine
RULES = """\
UAG(ops) {alice, Bob}
UAG(eng) {dave}
HAG(ctrl) {Ctrl-PC, ws1}
ASG(DEFAULT) {RULE(1, READ)}
ASG(users) {
    RULE(1, READ)
    RULE(1, WRITE) {UAG(ops, eng)}
}
ASG(hosts) {RULE(1, WRITE) {HAG(ctrl)}}
ASG(both) {RULE(1, WRITE) {UAG(ops) HAG(ctrl)}}
ASG(levels) {
    RULE(0, WRITE) {UAG(ops)}
    RULE(1, READ)
}
ASG(trap) {
    RULE(1, READ, TRAPWRITE)
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) {UAG(ops)}
    RULE(1, WRITE) {UAG(eng)}
}
ASG(empty)
"""


@pytest.fixture
def rules():
    return load(RULES)


@pytest.mark.parametrize("asg, user, host, asl, level", [
    ("users", "alice", "x", 1, WRITE),
    ("users", "dave", "x", 1, WRITE),
    ("users", "bob", "x", 1, READ),          # users match case-sensitively
    ("users", "Bob", "x", 1, WRITE),
    ("users", "mallory", "x", 1, READ),
    ("hosts", "anyone", "ctrl-pc", 1, WRITE),
    ("hosts", "anyone", "CTRL-PC", 1, WRITE),  # hosts match case-insensitively
    ("hosts", "anyone", "ws2", 1, NONE),
    ("both", "alice", "ws1", 1, WRITE),
    ("both", "alice", "ws2", 1, NONE),       # UAG and HAG must both match
    ("both", "dave", "ws1", 1, NONE),
    ("levels", "alice", "x", 0, WRITE),      # a level-0 rule applies to ASL0 only
    ("levels", "alice", "x", 1, READ),
    ("levels", "dave", "x", 0, READ),
    ("nosuch", "alice", "x", 1, READ),       # undefined ASG -> DEFAULT
    ("empty", "alice", "x", 0, NONE),        # no rules, no access
])
def test_compute_access(rules, asg, user, host, asl, level) -> None:
    assert compute_access(rules, asg, asl, user, host).level == level


def test_asl_above_every_rule_gets_nothing() -> None:
    config = load("ASG(DEFAULT) {RULE(1, WRITE)}\nASG(two) {RULE(2, WRITE)}\n")
    assert compute_access(config, DEFAULT, 2, "u", "h").level == NONE
    assert compute_access(config, "two", 2, "u", "h").level == WRITE


def test_trapwrite_is_that_of_the_granting_rule(rules) -> None:
    assert compute_access(rules, "trap", 1, "alice", "h") == Access(WRITE, True)
    assert compute_access(rules, "trap", 1, "dave", "h") == Access(WRITE, False)
    # a later READ rule does not replace the first READ rule (not higher): its trap stays
    assert compute_access(rules, "trap", 1, "mallory", "h") == Access(READ, True)


def test_compute_rights_expects_lower_case_host(rules) -> None:
    asg = rules.find_asg("hosts")
    assert compute_rights(asg, 1, "u", "ctrl-pc").level == WRITE
    assert compute_rights(asg, 1, "u", "Ctrl-PC").level == NONE


def test_inactive_access_security_grants_write() -> None:
    access = compute_access(None, "anything", 1, "u", "h")
    assert access == Access(WRITE, False)
    assert check_get(access) and check_put(access)


def test_access_properties() -> None:
    assert (Access(NONE).can_read, Access(NONE).can_write) == (False, False)
    assert (Access(READ).can_read, Access(READ).can_write) == (True, False)
    assert (Access(WRITE).can_read, Access(WRITE).can_write) == (True, True)


CALC_ACF = """\
ASG(DEFAULT) {
    INPA(beam)
    INPB(mode)
    RULE(1, READ)
    RULE(1, WRITE) {CALC("A=0 && B>1")}
}
ASG(const) {RULE(1, WRITE) {CALC("1")}}
ASG(undeclared) {
    INPA(x)
    RULE(1, WRITE) {CALC("A+C=1")}
}
"""


def test_calc_rule_follows_inputs() -> None:
    config = load(CALC_ACF)
    start_inputs(config)
    asg = config.find_asg(DEFAULT)
    assert asg.inp_bad == 0b11
    # declared inputs start bad: the CALC rule cannot grant yet
    assert compute_access(config, DEFAULT, 1, "u", "h").level == READ
    assert compute_access(config, DEFAULT, 1, "u", "h", {"A": 0}).level == READ  # B still bad
    assert compute_access(config, DEFAULT, 1, "u", "h", {"B": 2}).level == WRITE
    assert compute_access(config, DEFAULT, 1, "u", "h", {"A": 1}).level == READ
    assert compute_access(config, DEFAULT, 1, "u", "h", {0: 0.0}).level == WRITE
    # an INVALID value marks the input bad and is not stored
    assert compute_access(config, DEFAULT, 1, "u", "h", {"b": None}).level == READ
    assert asg.values[1] == 2.0
    set_input(asg, 1, 5.0)
    assert compute_access(config, DEFAULT, 1, "u", "h").level == WRITE
    set_input_disconnected(asg, 1)
    assert compute_access(config, DEFAULT, 1, "u", "h").level == READ


def test_calc_result_must_be_near_one() -> None:
    config = load('ASG(DEFAULT) {INPA(x) RULE(1, WRITE) {CALC("A")}}\n')
    start_inputs(config)
    for value, level in ((1.0, WRITE), (1.005, WRITE), (0.99, NONE), (1.01, NONE), (2, NONE),
                         (0.995, WRITE)):
        assert compute_access(config, DEFAULT, 1, "u", "h", {"A": value}).level == level, value


def test_calc_without_inputs_never_grants() -> None:
    """asComputeAsgPvt evaluates a CALC only when an input it reads changes."""
    config = load(CALC_ACF)
    start_inputs(config)
    assert config.find_asg("const").rules[0].inp_used == 0
    assert compute_access(config, "const", 1, "u", "h").level == NONE


def test_calc_undeclared_input_reads_zero() -> None:
    config = load(CALC_ACF)
    start_inputs(config)
    asg = config.find_asg("undeclared")
    assert asg.inp_bad == 0b1                  # only INPA was declared
    assert compute_access(config, "undeclared", 1, "u", "h", {"A": 1}).level == WRITE
    assert compute_access(config, "undeclared", 1, "u", "h", {"C": 1}).level == NONE  # 1+1


def test_bad_input_key() -> None:
    config = load(CALC_ACF)
    with pytest.raises(ValueError):
        compute_access(config, DEFAULT, 1, "u", "h", {"M": 1})
