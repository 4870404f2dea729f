"""Shell commands: var and its registry, the no-op table, help, database reports, echo, date.
Expected texts are EPICS base 7.0.8 softIoc's unless said otherwise."""
from __future__ import annotations

import io
import types

import pytest

import ioc.main  # noqa: F401  (registers every command)
from ioc.database.db import Database
from ioc.records import binary
from ioc.shell import variables
from ioc.shell.builtins import glob_match
from ioc.shell.core import format_epics_time, translate_escapes
from ioc.shell.dbreport import real_to_string
from ioc.shell.interp import Shell
from ioc.shell.noop import NOT_HERE
from ioc.shell.registry import COMMANDS


def run(lines: str, db: Database | None = None, initialized: bool = False):
    out, err = io.StringIO(), io.StringIO()
    fake_ioc = types.SimpleNamespace(db=db or Database(), initialized=initialized, server=None)
    sh = Shell(fake_ioc, out=out, err=err)
    sh.interact(io.StringIO(lines))
    return out.getvalue(), err.getvalue()


@pytest.fixture
def restore_bo_precision():
    saved = binary.HIGH_PRECISION
    yield
    binary.HIGH_PRECISION = saved


def test_var_lists_sets_and_refuses_like_base(restore_bo_precision):
    out, err = run("var\nvar boHIGHprecision 0x10\nvar bo*\nvar boHIGHprecision 1.5\n"
                   "var calcoutODLYlimit 1e3\nvar calcoutODLYlimit\nvar noSuch\n"
                   "var noSuch 3\nvar calcoutODLYlimit abc\n")
    lines = out.splitlines()
    assert lines[:5] == ["asCheckClientIP = 0", "boHIGHlimit = 100000", "boHIGHprecision = 2",
                         "calcoutODLYlimit = 100000", "calcoutODLYprecision = 2"]
    assert lines[5:] == ["boHIGHlimit = 100000", "boHIGHprecision = 16",
                         "calcoutODLYlimit = 1000"]
    assert binary.HIGH_PRECISION == 16          # the record module reads this value
    assert err.splitlines() == [
        "Invalid integer value. Var boHIGHprecision not changed.", "No var matching noSuch "
        "found.", "Var noSuch not found.", "Invalid double value. Var calcoutODLYlimit not "
        "changed."]
    from ioc.records import calc
    calc.ODLY_LIMIT = 100000.0


def test_register_variable_api_and_base_variables_without_meaning():
    box = {"v": 7}
    variables.register_variable("testVarX", int, lambda: box["v"],
                                lambda v: box.__setitem__("v", v))
    try:
        out, err = run("var testVarX 010\nvar testVarX\nvar dbRecordsOnceOnly 1\n")
        assert box["v"] == 8 and "testVarX = 8" in out.splitlines()
        assert "var dbRecordsOnceOnly: not available in this IOC; ignored" in out
        assert err == ""
    finally:
        variables._VARIABLES.pop("testVarX")
    with pytest.raises(TypeError):
        variables.register_variable("bad", str, lambda: 0, lambda v: None)
    assert variables.parse_c_int("08") is None and variables.parse_c_int("4294967297") == 1
    assert variables.parse_c_double("2 ") is None and variables.parse_c_double(" .5") == 0.5


def test_noop_table_notes_and_is_never_an_error():
    assert "dbcar" not in NOT_HERE          # registered by the CA links' own module
    out, err = run("asynSetTraceMask L0 -1 0x9\nsoftIoc_registerRecordDeviceDriver pdbbase\n"
                   "dbb REC\n")
    assert out.splitlines() == [
        "asynSetTraceMask: not available in this IOC (no asyn); ignored",
        "dbb: not available in this IOC (no breakpoints: records run on one event loop); "
        "ignored"]
    assert err == ""
    for name in NOT_HERE:
        assert name in COMMANDS


def test_help_layout_and_usage():
    out, _ = run("help\n")
    lines = out.splitlines()
    assert lines[0].startswith("#               ")
    assert all(len(ln) < 80 for ln in lines)
    assert lines[-1] == "Type 'help <command>' to see the arguments of <command>.  eg. 'help db*'"
    out, _ = run("help dbpr on\n")
    assert "dbpr 'record name' 'interest level'" in out.splitlines()
    assert "on 'error' 'continue' | 'break' | 'wait' [value] | 'halt'" in out.splitlines()
    assert " " * 60 in out.splitlines()          # the separator between two commands


def test_database_reports_in_base_order(tmp_path):
    (tmp_path / "x.db").write_text(
        'record(bi, "R:B") {}\nrecord(ai, "R:A2") { field(VAL, "0.1") alias("R:A2:al") '
        'info(autosaveFields, "VAL") }\nrecord(ai, "R:A1") { field(SCAN, "1 second") }\n'
        'record(longin, "R:L") { field(SCAN, "Event") field(EVNT, "7") field(PRIO, "HIGH") }\n'
        'record(ao, "R:O") { field(DTYP, "Soft Channel") field(OUT, "R:A1 PP") }\n')
    db = Database()
    db.load_records(str(tmp_path / "x.db"))
    out, err = run('dbl\ndbl ai "VAL SCAN NOPE recordType"\ndbl nosuch\ndbgrep "R:A*"\n'
                   'dbgrep\ndbla\ndbnr\ndbli auto*\ndbl ao OUT\nscanppl\n'
                   'dbCreateAlias pdbbase R:B R:B:al\ndbla "*B*"\n', db)
    assert err == ""
    assert out.splitlines() == [
        "R:A2", "R:A2:al", "R:A1", "R:O", "R:B", "R:L",
        'R:A2, "0.1", "Passive", , "ai"', 'R:A2:al, "0.1", "Passive", , "ai"',
        'R:A1, "0", "1 second", , "ai"',
        "No record type",
        "R:A2", "R:A2:al", "R:A1", 'Usage: dbgrep "pattern"',
        "R:A2:al -> R:A2",
        "Records  Aliases  Record Type", "     2        1    ai", "     1        0    ao",
        "     1        0    bi", "     1        0    longin", "Total 5 records, 1 aliases",
        'R:A2 info(autosaveFields, "VAL")',
        'R:O, "R:A1 PP"',                  # as written until iocInit
        "scanppl: dbScan subsystem not initialized",
        "R:B:al -> R:B"]


def test_real_to_string_matches_dbgetstring():
    # values as softIoc's dbl prints them
    assert [real_to_string(v) for v in (0.0, 0.1, 1e20, 3.14159265358979, 123456789.123, 5.0,
                                        -2.5)] == \
        ["0", "0.1", "1.0e+20", "3.14159265358979", "1.23456789123e+08", "5", "-2.5"]


def test_echo_escapes_date_and_glob():
    assert translate_escapes(r"a\tb\x41\101\\\"q") == 'a\tbAA\\"q'
    assert format_epics_time("%Y/%m/%d %H:%M:%S.%06f", 0.25).endswith(".250000")
    assert format_epics_time("%03f|%%", 1.5).endswith("500|%")
    assert glob_match("R:AI", "R:?I") and not glob_match("R:AI:x", "R:?I")
    assert glob_match("a[b]", "a[b]") and glob_match("abc", "*") and not glob_match("ab", "a")
    out, err = run('echo "a\\tb"\ncd /no/such/dir\nepicsEnvSet X\n')
    assert out == "a\tb\n"
    assert err.splitlines() == ["Invalid directory path, ignored",
                                "Missing environment variable value argument."]
