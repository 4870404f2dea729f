"""psu-timing-ioc as a user starts it: default st.cmd, -d/-m, -x, the shell, and bad input."""
from __future__ import annotations

import textwrap

from ..conftest import ROOT, caget, caput, run_ioc_to_exit, wait_for


def test_default_ioc_starts_fast_and_answers_caget(start_ioc):
    ioc = start_ioc("-S", ready_pv="IOCSIM:VERSION", timeout_s=10)
    assert ioc.ready_s < 3.0, f"first caget answered after {ioc.ready_s:.2f} s"
    assert caget("-t", "IOCSIM:VERSION", port=ioc.port).strip().startswith("psu-timing-ioc")
    out = ioc.output()
    assert "IOCSIM:" in out            # the served prefix is printed at start
    assert "iocBoot/iocsim/st.cmd" in out


def test_dash_d_and_m_load_a_db_with_macros(start_ioc, tmp_path):
    db = tmp_path / "x.db"
    db.write_text('record(ao, "$(P)$(R=SP)") { field(EGU, "$(U)") field(DRVH, "5") }\n')
    ioc = start_ioc("-S", "-m", "P=TST:,U=mA", "-d", str(db), ready_pv="TST:SP")
    assert caget("-t", "TST:SP.EGU", port=ioc.port).strip() == "mA"
    caput("TST:SP", "7", port=ioc.port)
    assert caget("-t", "TST:SP", port=ioc.port).strip() == "5"


def test_exit_pv_stops_the_ioc_cleanly(start_ioc, tmp_path):
    db = tmp_path / "x.db"
    db.write_text('record(ai, "EX:A") {}\n')
    ioc = start_ioc("-S", "-x", "EX", "-d", str(db), ready_pv="EX:A")
    caput("EX:exit", "1", port=ioc.port)
    wait_for(lambda: ioc.proc.poll() is not None, 10, what="IOC to exit")
    assert ioc.proc.returncode == 0


def _bad(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_bad_db_files_name_file_and_line(tmp_path):
    cases = {
        "unknown_field.db": ('record(ai, "A") {\n  field(DESC, "x")\n  field(DESCX, "y")\n}\n', 3,
                             "DESCX"),
        "bad_menu.db": ('record(ai, "A") {\n  field(SCAN, "2 seconds")\n}\n', 2, "SCAN"),
        "bad_number.db": ('record(ai, "A") {\n\n  field(PREC, "abc")\n}\n', 3, "PREC"),
        "unknown_type.db": ('\nrecord(aix, "A") {\n}\n', 2, "aix"),
        "syntax.db": ('record(ai, "A") {\n  field(DESC, "unterminated)\n}\n', 2, ""),
        "dup_type.db": ('record(ai, "A") {}\nrecord(ao, "A") {}\n', 2, "type"),
        "undefined_macro.db": ('record(ai, "$(P)A") {}\n', 1, "macro"),
    }
    for name, (text, line, word) in cases.items():
        path = _bad(tmp_path, name, text)
        r = run_ioc_to_exit("-S", "-d", str(path))
        assert r.returncode != 0, name
        assert f"{path}:{line}:" in r.stderr, f"{name}: {r.stderr}"
        assert word in r.stderr, f"{name}: {r.stderr}"
        assert "iocRun" not in r.stdout      # never half-started


def test_bad_stcmd_names_file_and_line(tmp_path):
    st = _bad(tmp_path, "st.cmd", """\
        epicsEnvSet("P", "Q:")
        # a comment
        noSuchCommand(1, 2)
        iocInit
        """)
    # --strict (CI): the first error stops the start; without it the script goes on as in
    # base (tests/integration/test_shell_stcmd.py)
    r = run_ioc_to_exit("-S", "--strict", str(st), cwd=tmp_path)
    assert r.returncode == 1
    assert "ERROR st.cmd line 3: Command noSuchCommand not found." in r.stderr
    assert f"{st}:3: Command noSuchCommand not found." in r.stderr
    assert "iocInit" not in r.stdout


def test_iocinit_errors_are_all_reported(tmp_path):
    db = _bad(tmp_path, "x.db", """\
        record(calc, "C1") {
            field(CALC, "A+*B")
        }
        record(sub, "A1") {
            field(SNAM, "noSuchSubroutine")
        }
        """)
    # As softIoc: a bad CALC and an unknown SNAM are reported (recGblRecordError) with the
    # record's file:line, and iocInit goes on; the shell runs the rest of st.cmd.
    st = _bad(tmp_path, "st.cmd", f'dbLoadRecords("{db}")\niocInit\n')
    r = run_ioc_to_exit(str(st), cwd=tmp_path, stdin_text="dbgf C1.STAT\nexit\n")
    assert r.returncode == 0, r.stderr
    assert f"{db}:1: record C1" in r.stderr and f"{db}:4: record A1" in r.stderr
    assert "iocRun: All initialization complete" in r.stdout


def test_shell_commands_on_stdin(tmp_path):
    db = _bad(tmp_path, "x.db", """\
        record(ai, "SH:AI") { field(VAL, "1.5") field(EGU, "V") }
        record(bi, "SH:BI") { field(ZNAM, "Off") field(ONAM, "On") }
        """)
    r = run_ioc_to_exit("-d", str(db), stdin_text="dbgf SH:AI\ndbpf SH:BI On\ndbl\n"
                        "dbpr SH:AI\nnoSuchCmd\nexit\n")
    assert r.returncode == 0, r.stderr
    assert "DBF_DOUBLE:         1.5" in r.stdout
    assert 'DBF_STRING:         "On"' in r.stdout
    assert "SH:AI\nSH:BI" in r.stdout
    assert "EGU : V" not in r.stdout and "VAL : 1.5" in r.stdout   # dbpr level 0
    assert "Command noSuchCmd not found." in r.stderr      # base's text, at the prompt


#: What a shipped db needs configured before it loads (its port, its provider...).
DB_SETUP = {"e3631a.db": 'E3631AConfigure("p1", "sim://", "profile=ideal")\n',
            "evtTime.db": 'epicsEnvSet("EVT_MASTER_ADDR", "127.0.0.1")\n'
                          'EvtSoftHwConfigure("239.255.18.1:18334", 0)\n'
                          'EvtTimeConfigure(0, 1, 1000000, 18333, 18332, 50)\n'}


def test_db_files_shipped_in_db_load_in_our_ioc(tmp_path):
    for db in sorted((ROOT / "db").glob("*.db")):
        st = tmp_path / f"{db.stem}.cmd"
        st.write_text(DB_SETUP.get(db.name, "")
                      + f'dbLoadRecords("{db}", "P=T:,IOC=T:,PORT=p1")\niocInit\n')
        r = run_ioc_to_exit(str(st), stdin_text="exit\n")
        assert r.returncode == 0, f"{db}: {r.stderr}"


def test_dbloadtemplate_in_stcmd(start_ioc, tmp_path):
    (tmp_path / "rail.template").write_text(
        'record(ao, "$(P)$(R)VOLT") { field(DRVH, "$(MAX)") field(EGU, "V") }\n')
    (tmp_path / "rails.substitutions").write_text(
        'file "rail.template" {\n  pattern { R, MAX }\n  { "P6V:", 6.18 }\n  { "P25V:", 25.75 }\n}\n')
    (tmp_path / "st.cmd").write_text(
        f'cd "{tmp_path}"\ndbLoadTemplate("rails.substitutions", "P=TPL:")\niocInit\n')
    ioc = start_ioc("-S", str(tmp_path / "st.cmd"), ready_pv="TPL:P6V:VOLT", cwd=tmp_path)
    caput("TPL:P25V:VOLT", "30", port=ioc.port)
    assert caget("-t", "TPL:P25V:VOLT", port=ioc.port).strip() == "25.75"
    assert caget("-t", "TPL:P6V:VOLT.DRVH", port=ioc.port).strip() == "6.18"
