"""E3631A simulator: SCPI parser rules and exact reply formats (UG07 p.102-106, reference §2/§5).

Pure model, no timing: ``Instrument.ask(message)`` returns the reply line without CR LF.
"""
from __future__ import annotations

import random
import re

import pytest

from ioc.psu.sim import scpi
from ioc.psu.sim.model import Instrument

NR3 = re.compile(r"[+-]\d\.\d{8}E[+-]\d{2}")


@pytest.fixture
def inst() -> Instrument:
    i = Instrument(rng=random.Random(7))
    assert i.ask("SYST:REM") == ""
    return i


def errors(i: Instrument) -> list[str]:
    """Drain the error queue through SYST:ERR? (the last reply is +0)."""
    out = []
    while True:
        e = i.ask("SYST:ERR?")
        if e.startswith("+0,"):
            return out
        out.append(e)


def first_error(i: Instrument, message: str) -> str:
    i.ask(message)
    errs = errors(i)
    return errs[0] if errs else '+0,"No error"'


# ---------------------------------------------------------------- identity and formats

def test_identity_and_version_golden(inst):
    assert inst.ask("*IDN?") == "HEWLETT-PACKARD,E3631A,0,2.1-5.0-1.0"
    assert inst.ask("SYST:VERS?") == "1995.0"
    assert inst.ask("SYST:ERR?") == '+0,"No error"'


def test_appl_query_golden_format(inst):
    inst.ask("APPL P6V,5,1")
    assert inst.ask("APPL?") == '"5.000000,1.000000"'
    inst.ask("APPL P25V,7.4,0.5")
    assert inst.ask("APPL? P25V") == '"7.400000,0.500000"'
    inst.ask("APPL N25V,-5,0.25")
    assert inst.ask("APPL? N25V") == '"-5.000000,0.250000"'
    inst.ask("APPL N25V,0,0")
    assert inst.ask("APPL? N25V") == '"0.000000,0.000000"'     # never "-0.000000"


def test_nr3_shapes(inst):
    inst.ask("APPL P25V,7.4,0.5")
    assert inst.ask("VOLT?") == "+7.40000000E+00"
    assert inst.ask("CURR?") == "+5.00000000E-01"
    assert inst.ask("VOLT? MAX") == "+2.57500000E+01"
    inst.ask("INST N25V")
    assert inst.ask("VOLT? MAX") == "-2.57500000E+01"       # MAX is the largest magnitude
    assert inst.ask("VOLT?") == "+0.00000000E+00"
    for q in ("MEAS? P6V", "MEAS:CURR? P6V", "MEAS:VOLT:DC? N25V", "TRIG:DEL?"):
        assert NR3.fullmatch(inst.ask(q)), q
    assert scpi.nr3(3.306498) == "+3.30649800E+00"
    assert scpi.nr3(-4.611155e-4) == "-4.61115500E-04"


def test_discrete_and_boolean_replies(inst):
    assert inst.ask("OUTP?") == "0"
    inst.ask("OUTP ON")
    assert inst.ask("OUTP?") == "1"
    inst.ask("OUTPUT:STATE 0")
    assert inst.ask("OUTP:STAT?") == "0"
    assert inst.ask("INST?") == "P6V"
    inst.ask("INST:NSEL 2")
    assert inst.ask("INST?") == "P25V" and inst.ask("INST:NSEL?") == "2"
    assert inst.ask("TRIG:SOUR?") == "BUS"
    inst.ask("TRIG:SOUR IMMEDIATE")
    assert inst.ask("TRIG:SOUR?") == "IMM"
    assert inst.ask("DISP?") == "1"
    assert inst.ask("*OPC?") == "1"
    assert inst.ask("*TST?") == "0"


# ---------------------------------------------------------------- header rules

@pytest.mark.parametrize("message", ["CURR 1", "CURRENT 1", "current 1", "SOUR:CURR 1",
                                     "source:current:level:immediate:amplitude 1",
                                     "CURR:LEV:IMM:AMPL 1", ":SOUR:CURR 1"])
def test_short_and_long_forms_any_case(inst, message):
    inst.ask("CURR 2")
    inst.ask(message)
    assert errors(inst) == []
    assert inst.ask("CURR?") == "+1.00000000E+00"


@pytest.mark.parametrize("message, code", [
    ("CUR 1", -113), ("CURREN 1", -113), ("TRIGG:DEL 3", -113), ("VOLT:STEP?", -113),
    ("FOO?", -113), ("*XYZ", -113), ("MEAS:VOLT P6V", -113), ("SYST:ERR", -113),
    ("VOLTAGEVOLTAGE 1", -112), ("SOURCE:VOLTAGEXXXXXX 1", -112), ("SOURCE:VOLTAGEXXXXX 1", -113),
    ("STAT:QUES:INST:ISUM4:COND?", -114),
])
def test_header_errors(inst, message, code):
    assert first_error(inst, message).startswith(f"{code},")


@pytest.mark.parametrize("message, code", [
    ("APPL P6V 1.0 1.0", -103),     # spaces where commas belong (UG07 p.115)
    ("VOLT,1", -103),               # comma where the space belongs
    ("SOUR :VOLT 1", -102),         # space before a colon
    ("SOUR: VOLT 1", -102),         # space after a colon
    ("APPL P6V ,1", -102),          # space before a comma
    ("APPL P6V,,1", -102),
    ("VOLT #1", -161),
    ("VOLT (1+2)", -170),
    ("VOLT 1.2.3", -121),
    ("VOLT 1E99999", -123),
    ("VOLT " + "1" * 300, -124),
    ("VOLT $", -101),
])
def test_separator_and_syntax_errors(inst, message, code):
    assert first_error(inst, message).startswith(f"{code},")


@pytest.mark.parametrize("message, code", [
    ("APPL", -109), ("VOLT", -109), ("INST", -109), ("*SAV", -109),
    ("APPL P6V,1,1,1", -108), ("APPL? 10", -108), ("OUTP? 1", -108), ("*RST 1", -108),
    ("SYST:REM 1", -108), ("MEAS? P6V,P25V", -108),
])
def test_missing_and_extra_parameters(inst, message, code):
    assert first_error(inst, message).startswith(f"{code},")


def test_whitespace_after_comma_is_fine(inst):
    inst.ask("APPL P6V, 3.0, 3.0")           # the manual's QuickBASIC example
    assert errors(inst) == []
    assert inst.ask("APPL?") == '"3.000000,3.000000"'


# ---------------------------------------------------------------- paths

def test_semicolon_keeps_path(inst):
    inst.ask("SOUR:VOLT MIN;CURR MAX")
    assert errors(inst) == []
    assert inst.ask("VOLT?;CURR?") == "+0.00000000E+00;+5.15000000E+00"


def test_semicolon_colon_returns_to_root(inst):
    inst.ask("INST P25V")
    assert first_error(inst, "INST P6V;SOUR:CURR MIN").startswith("-113,")
    assert inst.ask("INST?") == "P6V"          # the first unit ran
    inst.ask("INST P6V;:SOUR:CURR MIN")
    assert errors(inst) == []
    assert inst.ask("CURR?") == "+0.00000000E+00"


def test_header_without_subnodes_stays_at_root(inst):
    inst.ask("APPL P25V,1,0.1;APPL N25V,0,0")
    assert errors(inst) == []
    assert inst.ask("APPL? P25V") == '"1.000000,0.100000"'
    assert inst.ask("INST?") == "N25V"


def test_common_commands_anywhere(inst):
    assert inst.ask("*RST; *CLS; *ESE 32; *OPC?") == "1"
    assert inst.ask("*ESE?") == "32"
    assert inst.ask("SOUR:VOLT 1;*OPC;CURR 2;*ESR?") == "1"
    assert inst.ask("CURR?") == "+2.00000000E+00"


def test_several_queries_joined_with_semicolons(inst):
    inst.ask("APPL P6V,2,0.5")
    assert inst.ask("VOLT?;CURR?;:OUTP?;:SYST:VERS?") == \
        "+2.00000000E+00;+5.00000000E-01;0;1995.0"


def test_idn_must_be_last_query(inst):
    assert inst.ask("*IDN?;:SYST:VERS?") == "HEWLETT-PACKARD,E3631A,0,2.1-5.0-1.0"
    assert errors(inst) == ['-440,"Query UNTERMINATED after indefinite response"']
    assert inst.ask("SYST:VERS?;*IDN?") == "1995.0;HEWLETT-PACKARD,E3631A,0,2.1-5.0-1.0"
    assert errors(inst) == []


def test_a_failing_unit_does_not_stop_the_rest(inst):
    assert inst.ask("FOO;VOLT 2;VOLT?") == "+2.00000000E+00"
    assert errors(inst) == ['-113,"Undefined header"']


# ---------------------------------------------------------------- parameters

def test_numeric_suffixes_and_specials(inst):
    inst.ask("VOLT 1.5V")
    assert inst.ask("VOLT?") == "+1.50000000E+00"
    inst.ask("VOLT 500MV")
    assert inst.ask("VOLT?") == "+5.00000000E-01"
    inst.ask("CURR 250mA")
    assert inst.ask("CURR?") == "+2.50000000E-01"
    inst.ask("TRIG:DEL 2SEC")
    assert inst.ask("TRIG:DEL?") == "+2.00000000E+00"
    inst.ask("VOLT 1.0E+00")
    assert inst.ask("VOLT?") == "+1.00000000E+00"
    inst.ask("VOLT MAX;CURR MIN")
    assert inst.ask("VOLT?;CURR?") == "+6.18000000E+00;+0.00000000E+00"
    inst.ask("APPL P25V,DEF,DEF")
    assert inst.ask("APPL?") == '"0.000000,1.000000"'
    assert errors(inst) == []
    assert first_error(inst, "VOLT 1A").startswith("-131,")
    assert first_error(inst, "*SAV 1V").startswith("-138,")
    assert first_error(inst, "VOLT 'x'").startswith("-158,")
    assert first_error(inst, "VOLT DEF").startswith("-224,")


@pytest.mark.parametrize("message", ["VOLT 6.2", "VOLT -0.1", "CURR 5.2", "APPL P25V,26",
                                     "APPL N25V,5", "APPL P25V,1,1.1", "TRIG:DEL -3",
                                     "TRIG:DEL 3601", "*SAV 4", "*RCL 0", "INST:NSEL 4",
                                     "*ESE 256"])
def test_out_of_range_is_222_and_changes_nothing(inst, message):
    before = inst.snapshot()
    assert first_error(inst, message).startswith("-222,")
    after = inst.snapshot()
    assert before["rails"] == after["rails"] and before["trigger"] == after["trigger"]


def test_booleans(inst):
    for word, reply in (("ON", "1"), ("OFF", "0"), ("1", "1"), ("0", "0"), ("on", "1")):
        inst.ask(f"OUTP {word}")
        assert inst.ask("OUTP?") == reply
    assert first_error(inst, "DISP:STAT XYZ").startswith("-224,")
    assert first_error(inst, "OUTP 2").startswith("-224,")


def test_strings_and_display_text(inst):
    inst.ask("DISP:TEXT 'HELLO'")
    assert inst.ask("DISP:TEXT?") == '"HELLO"'
    inst.ask('DISP:TEXT "a;b"')                  # ; inside a string does not split the message
    assert inst.ask("DISP:TEXT?") == '"a;b"'
    inst.ask("DISP:TEXT 'it''s'")                # a doubled quote escapes itself
    assert inst.ask("DISP:TEXT?") == '"it\'s"'
    inst.ask("DISP:TEXT '" + "x" * 40 + "'")     # 13..40 characters: accepted silently
    assert errors(inst) == []
    assert first_error(inst, "DISP:TEXT '" + "x" * 41 + "'").startswith("-223,")
    assert first_error(inst, "DISP:TEXT 'a\"b'").startswith("-103,")
    assert first_error(inst, "DISP:TEXT 'abc").startswith("-151,")
    assert first_error(inst, "DISP:TEXT abc").startswith("-104,")
    inst.ask("DISP:TEXT 'KEEP';:DISP:TEXT:CLE")
    assert inst.ask("DISP:TEXT?") == '"KEEP"'     # CLEar blanks the display, not the string


# ---------------------------------------------------------------- error queue

def test_error_queue_fifo_and_overflow(inst):
    for k in range(25):
        inst.ask("VOLT 99" if k == 0 else "FOO")
    errs = errors(inst)
    assert len(errs) == 20
    assert errs[0] == '-222,"Data out of range"'
    assert errs[1:19] == ['-113,"Undefined header"'] * 18
    assert errs[19] == '-350,"Too many errors"'
    assert inst.ask("SYST:ERR?") == '+0,"No error"'


def test_rst_keeps_errors_cls_clears_them(inst):
    inst.ask("FOO")
    inst.ask("*RST")
    assert errors(inst) == ['-113,"Undefined header"']
    inst.ask("FOO;BAR")
    inst.ask("*CLS")
    assert errors(inst) == []


def test_error_text_format():
    assert scpi.error_text(0) == '+0,"No error"'
    assert scpi.error_text(-113) == '-113,"Undefined header"'
    assert scpi.error_text(550) == '+550,"Command not allowed in local"'


# ---------------------------------------------------------------- local mode

def test_local_mode_refuses_settings_answers_queries():
    i = Instrument(rng=random.Random(1))
    assert i.ask("SYST:VERS?") == "1995.0"          # answered before SYST:REM
    i.ask("APPL P6V,1,1;OUTP ON;*RST")
    assert i.snapshot()["rails"]["P6V"]["volt"] == 0.0 and not i.output
    assert errors(i) == ['+550,"Command not allowed in local"'] * 3
    i.ask("SYST:REM")
    i.ask("APPL P6V,1,1")
    assert errors(i) == [] and i.ask("APPL?") == '"1.000000,1.000000"'
    i.ask("SYST:LOC;:VOLT 2")
    assert errors(i) == ['+550,"Command not allowed in local"']
    i.ask("SYST:RWL")
    assert i.snapshot()["remote"] and i.snapshot()["rwlock"]


def test_classify_for_costs():
    assert scpi.classify("MEAS? P6V") == ("MEAS:VOLT", True, "P6V")
    assert scpi.classify("meas:curr:dc?")[0] == "MEAS:CURR"
    assert scpi.classify("APPL P6V,3.3")[:2] == ("APPL", False)
    assert scpi.classify("VOLT:TRIG 1")[0] == "SOUR:VOLT:TRIG"
    assert scpi.classify("*IDN?") == ("*IDN", True, "")
    assert scpi.classify("BOGUS?") == ("", True, "")
