"""The access-security iocsh commands against EPICS base's softIoc: the same st.cmd (ACF,
substitutions, db, iocInit, then the reports, astac, asInit with a bad and a good file) run in
both, standard output compared line for line; and a bad ACF at start stops our IOC with the
file and line, as it stops base's iocInit."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from ..conftest import epics_bin, free_port, run_ioc_to_exit
from .test_shell_stcmd import script_stdout

pytestmark = pytest.mark.oracle

ACF = textwrap.dedent("""\
    UAG(ops) {alice, bob}
    UAG(mgr) {carol}
    UAG(empty)
    HAG(ctl) {ctl1, Ctl2}
    ASG(DEFAULT) {
        RULE(1, READ)
        RULE(1, WRITE) { UAG(ops) }
    }
    ASG(MGR) {
        RULE(0, WRITE, TRAPWRITE) { UAG(mgr) HAG(ctl) }
        RULE(1, READ) { UAG(ops, mgr) }
    }
    ASG(NOREAD) {
        RULE(1, NONE)
    }
    ASG(GATED) {
        INPA("$(P)NOT_HERE")
        RULE(1, READ)
        RULE(1, WRITE) { UAG(ops) CALC("A=1") }
    }
    ASG(BARE)
    """)

ACF2 = textwrap.dedent("""\
    UAG(ops) {zed}
    ASG(DEFAULT) {
        RULE(1, WRITE) { UAG(ops) }
    }
    """)

BAD = "UAG(ops) {alice}\nASG(DEFAULT) {\n    RULE(1, WRITE) { UAG(nobody) }\n}\n"

DB = textwrap.dedent("""\
    record(ao, "$(P)DEF") {}
    record(ao, "$(P)MGR") { field(ASG, "MGR") }
    record(ao, "$(P)NR") { field(ASG, "NOREAD") }
    record(ao, "$(P)UNK") { field(ASG, "NOSUCH") }
    record(ao, "$(P)GATED") { field(ASG, "GATED") }
    """)

SCRIPT = textwrap.dedent("""\
    asSetFilename("access.acf")
    asSetSubstitutions("P=AS:")
    dbLoadRecords("as.db", "P=AS:")
    iocInit()
    aspuag
    aspuag("ops")
    asphag
    asprules
    asprules("GATED")
    aspmem("MGR", 0)
    aspmem("DEFAULT", 1)
    aspmem
    asdbdump
    astac("AS:MGR", "carol", "ctl1")
    astac("AS:MGR.DESC", "carol", "CTL2")
    astac("AS:MGR", "carol", "elsewhere")
    astac("AS:NR", "alice", "ctl1")
    astac("AS:UNK", "bob", "x")
    astac("AS:DEF.DESC", "dave", "x")
    asSetFilename("bad.acf")
    asInit
    asprules("DEFAULT")
    astac("AS:DEF", "alice", "x")
    asSetFilename("access2.acf")
    asInit
    asprules
    astac("AS:DEF", "alice", "x")
    astac("AS:DEF", "zed", "x")
    """)


def _setup(d: Path) -> None:
    d.mkdir(exist_ok=True)
    (d / "access.acf").write_text(ACF)
    (d / "access2.acf").write_text(ACF2)
    (d / "bad.acf").write_text(BAD)
    (d / "as.db").write_text(DB)
    (d / "st.cmd").write_text(SCRIPT)


def _softioc(d: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(free_port()),
               EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="127.0.0.1:1")
    return subprocess.run([str(epics_bin() / "softIoc"), *args], cwd=str(d), env=env,
                          input="exit\n", capture_output=True, text=True, timeout=60)


def test_access_reports_and_asinit_print_what_softioc_prints(tmp_path):
    if not (epics_bin() / "softIoc").exists():
        pytest.skip("EPICS base softIoc not available")
    _setup(tmp_path)
    base = _softioc(tmp_path, "st.cmd")
    ours = run_ioc_to_exit("st.cmd", cwd=tmp_path, stdin_text="exit\n", timeout_s=60)
    assert ours.returncode == 0, ours.stderr
    want = script_stdout(base.stdout)
    got = script_stdout(ours.stdout)
    assert got == want
    # not vacuous: rules, members, the astac answers and the kept rules are there
    assert "\t\t<null> Record:AS:DEF" in got and "\t\tNOSUCH Record:AS:UNK" in got
    assert "astac callback AS:MGR: status=0 get Yes put Yes" in got
    assert "astac callback AS:NR: status=0 get No put No" in got
    # the bad file was refused, naming itself; the rules in force were kept
    assert "bad.acf" in ours.stderr and "nobody" in ours.stderr, ours.stderr
    kept = got.index('asSetFilename("access2.acf")')
    assert "astac callback AS:DEF: status=0 get Yes put Yes" in got[:kept][-3:]


def test_bad_acf_at_start_names_the_file_and_line_and_the_ioc_does_not_start(tmp_path):
    _setup(tmp_path)
    (tmp_path / "st.cmd").write_text('asSetFilename("bad.acf")\ndbLoadRecords("as.db", '
                                     '"P=AS:")\niocInit()\n')
    ours = run_ioc_to_exit("st.cmd", cwd=tmp_path, stdin_text="exit\n")
    assert ours.returncode != 0
    assert "bad.acf" in ours.stderr and "line 3" in ours.stderr, ours.stderr
    assert "No User Access Group named 'nobody' defined" in ours.stderr
    if (epics_bin() / "softIoc").exists():
        base = _softioc(tmp_path, "st.cmd")
        # base says the same about the file, and its iocInit fails
        assert "No User Access Group named 'nobody' defined" in base.stdout + base.stderr
        assert "iocRun: All initialization complete" not in base.stdout


def test_dash_a_loads_the_acf_as_softioc_does(tmp_path):
    _setup(tmp_path)
    (tmp_path / "st.cmd").write_text('dbLoadRecords("as.db", "P=AS:")\niocInit()\n'
                                     'astac("AS:DEF", "dave", "x")\n'
                                     'astac("AS:DEF", "alice", "x")\n')
    ours = run_ioc_to_exit("-a", "access.acf", "-m", "P=AS:", "st.cmd", cwd=tmp_path,
                           stdin_text="exit\n")
    assert ours.returncode == 0, ours.stderr
    out = script_stdout(ours.stdout)
    assert "astac callback AS:DEF: status=0 get Yes put No" in out
    assert "astac callback AS:DEF: status=0 get Yes put Yes" in out
