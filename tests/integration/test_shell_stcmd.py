"""st.cmd files written for EPICS base's softIoc run in psu-timing-ioc as they run in softIoc.

The scripts are in tests/data/stcmd/ and run from that directory in both IOCs (EPICS base is
the oracle): the echo (expanded lines), the error messages, the records they load, ``on error``,
``--strict``, and the messages for missing files.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from ..conftest import ROOT, caget, epics_bin, free_port, run_ioc_to_exit, wait_for

DATA = ROOT / "tests" / "data" / "stcmd"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.oracle


def softioc_to_exit(*args: str, stdin_text: str = "exit\n") -> subprocess.CompletedProcess:
    """EPICS base's softIoc run to its end (the script, then the prompt reads ``stdin_text``)."""
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(free_port()))
    return subprocess.run([str(epics_bin() / "softIoc"), *args], cwd=str(DATA), env=env,
                          input=stdin_text, capture_output=True, text=True, timeout=30)


def script_stdout(text: str) -> list[str]:
    """Echo and command output, without what only one of the IOCs prints at iocInit (base's
    banner, the start-up lines) and the prompt."""
    out = []
    for ln in ANSI.sub("", text).splitlines():
        ln = ln.removeprefix("epics> ")
        if ln.startswith("##") or ln.startswith("iocRun:") or ln in ("Starting iocInit", ""):
            continue
        out.append(ln)
    return out


def test_base_idioms_echo_and_errors_match_softioc():
    ours = run_ioc_to_exit("idioms.cmd", cwd=DATA, stdin_text="exit\n")
    base = softioc_to_exit("idioms.cmd")
    assert ours.returncode == 0, ours.stderr
    # the echo: every line with its macros expanded (leading blanks kept), comments but not
    # "#-" lines; iocshLoad/< files echoed as they run
    assert script_stdout(ours.stdout) == script_stdout(base.stdout)
    echo = script_stdout(ours.stdout)
    assert '   dbLoadRecords("rec.db", "P=STC:,R=A,VAL=1.5")' in echo
    assert "in part.cmd: R=B VAL=2.5" in echo and "after iocshLoad: R=unset" in echo
    assert "in part2.cmd: VAL=3.5" in echo and "boHIGHprecision = 3" in echo
    assert not any("#-" in ln for ln in echo) and 'echo "$(STC_UNDEFINED_MACRO)"' not in echo
    # errors: base's text; ours adds the script line where base has none
    b_err = ANSI.sub("", base.stderr).splitlines()
    o_err = ours.stderr.splitlines()
    assert "ERROR idioms.cmd line 20: Command noSuchCommand not found." in b_err
    assert "ERROR idioms.cmd line 20: Command noSuchCommand not found." in o_err
    assert "ERROR failed to load 'nonexist.db'" in b_err
    assert any(ln.startswith("ERROR idioms.cmd line 21: failed to load 'nonexist.db': No such "
                             "file or directory") for ln in o_err), o_err
    for text, line in (("Can't open nonexist.cmd: No such file or directory", 22),
                       ("No var matching noSuchVariable found.", 23),
                       ('macLib: macro STC_UNDEFINED_MACRO is undefined (expanding string echo '
                        '"$(STC_UNDEFINED_MACRO)")', 24)):
        assert text in b_err, (text, b_err)
        assert f"ERROR idioms.cmd line {line}: {text}" in o_err, (text, o_err)
    assert len(o_err) == 5, o_err           # nothing else went wrong


def test_database_reports_print_what_softioc_prints():
    """dbl (with fields, aliases, link text before and after iocInit), dbgrep, dbla, dbnr, dbli,
    dbCreateAlias, scanppl, scanpel, dbhcr (INST_IO links), dbgf and dbpf formats."""
    ours = run_ioc_to_exit("reports.cmd", cwd=DATA, stdin_text="exit\n")
    base = softioc_to_exit("reports.cmd")
    assert ours.returncode == 0 and ours.stderr == "", ours.stderr
    assert script_stdout(ours.stdout) == script_stdout(base.stdout)
    out = script_stdout(ours.stdout)
    assert 'R:O, "R:A1 PP"' in out and 'R:O, "R:A1 PP NMS"' in out       # before, after
    assert "Records with SCAN = '1 second' (0 over-runs):" in out
    assert any(ln.startswith("INST     @TIME") and "cvt(0,10)" in ln for ln in out), out


def test_base_idioms_load_the_same_records(start_ioc, start_softioc):
    ours = start_ioc("-S", "idioms.cmd", cwd=DATA, ready_pv="STC:LAST")
    base = start_softioc("-S", "idioms.cmd", cwd=DATA, ready_pv="STC:LAST")
    pvs = ["STC:A", "STC:B", "STC:C", "STC:LAST", "STC:A.DESC", "STC:BO:one.HIGH"]
    theirs = caget("-t", *pvs, port=base.port).split()
    assert caget("-t", *pvs, port=ours.port).split() == theirs
    assert theirs[:4] == ["1.5", "2.5", "3.5", "7"]
    # var boHIGHprecision 3 reached the record: the precision served with bo.HIGH

    def precision(port: int) -> list[str]:
        out = caget("-d", "DBR_CTRL_DOUBLE", "STC:BO:one.HIGH", port=port)
        return [" ".join(ln.split()) for ln in out.splitlines() if "Precision" in ln]
    assert precision(ours.port) == precision(base.port) == ["Precision: 3"]


def test_unknown_command_the_script_goes_on(start_ioc, start_softioc):
    for start in (start_ioc, start_softioc):
        ioc = start("-S", "goes_on.cmd", cwd=DATA, ready_pv="GO:AFTER")
        assert caget("-t", "GO:AFTER", port=ioc.port).strip() == "2"
        out = ANSI.sub("", ioc.output())
        assert "ERROR goes_on.cmd line 4: Command noSuchCommand not found." in out
    # a command with no meaning here (softIoc has no asyn either: "not found" there) is a
    # note on stdout, not an error
    ours = run_ioc_to_exit("goes_on.cmd", cwd=DATA, stdin_text="exit\n")
    assert ours.returncode == 0
    assert "asynSetTraceMask: not available in this IOC (no asyn); ignored" in ours.stdout
    assert "asynSetTraceMask" not in ours.stderr


def test_strict_stops_at_the_first_error_with_file_and_line():
    for args, env in ((["--strict"], {}), ([], {"IOC_STRICT": "1"})):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            r = run_ioc_to_exit("-S", *args, "goes_on.cmd", cwd=DATA)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "ERROR goes_on.cmd line 4: Command noSuchCommand not found." in r.stderr
        assert "psu-timing-ioc: goes_on.cmd:4: Command noSuchCommand not found." in r.stderr
        assert 'asynSetTraceMask' not in r.stdout and "iocInit" not in r.stdout


def test_on_error_halt_stops_the_script_and_keeps_serving(start_ioc, start_softioc):
    for start in (start_ioc, start_softioc):
        ioc = start("-S", "halt.cmd", cwd=DATA, ready_pv="HALT:X")
        wait_for(lambda: "iocsh Error: Halt" in ioc.output(), 10, what="the halt")
        assert caget("-t", "HALT:X", port=ioc.port).strip() == "1"    # dbpf never ran
        assert 'dbpf("HALT:X", "5")' not in ioc.output()
        assert ioc.proc.poll() is None                                  # halted, not exited
    assert ioc.stop() == -signal.SIGTERM        # softIoc: suspended until killed


def test_on_error_halt_exit_status_after_sigterm(start_ioc):
    ioc = start_ioc("-S", "halt.cmd", cwd=DATA, ready_pv="HALT:X")
    wait_for(lambda: "halted by 'on error halt'" in ioc.output(), 10, what="the halt")
    assert ioc.stop() == 1                      # a halted start is a failed start


def test_on_error_break_ends_the_script():
    ours = run_ioc_to_exit("-S", "break.cmd", cwd=DATA)
    base = softioc_to_exit("-S", "break.cmd")
    assert "iocsh Error: Break" in ours.stderr and "iocsh Error: Break" in base.stderr
    assert ours.returncode == 1 and base.returncode != 0
    assert 'dbLoadRecords("rec.db", "P=BRK:,R=Y,VAL=2")' not in ours.stdout + base.stdout
    assert script_stdout(ours.stdout) == script_stdout(base.stdout)
    assert "break.cmd: stopped by 'on error break'" in ours.stderr


def test_missing_files_name_the_file_and_the_line():
    r = run_ioc_to_exit("missing.cmd", cwd=DATA, stdin_text="dbl\nexit\n")
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    nofile = "No such file or directory"
    expected = [
        f"ERROR missing.cmd line 2: failed to load 'nonexist.db': {nofile} (in {DATA})",
        f"ERROR missing.cmd line 3: failed to load 'nonexist.substitutions': {nofile} (in {DATA})",
        f"ERROR missing.cmd line 4: Can't open nonexist_include.cmd: {nofile}",
        f"ERROR missing.cmd line 5: Can't open nonexist_load.cmd: {nofile}",
    ]
    assert err[:4] == expected, err
    assert err[4].startswith("ERROR missing.cmd line 6: failed to load 'has_missing_include.db': "
                             "has_missing_include.db:2: ") and "nonexist_included.db" in err[4]
    assert err[5].startswith("ERROR missing.cmd line 7: failed to load "
                             "'has_missing_template.substitutions': "
                             "has_missing_template.substitutions:2: ")
    assert "nonexist.template" in err[5] and len(err) == 6, err
    assert "MISS:X" in r.stdout            # the script went on and iocInit ran


def test_bad_calc_at_iocinit_is_reported_and_the_record_alarms_as_in_softioc(start_ioc,
                                                                             start_softioc):
    """calcRecord.c/calcoutRecord.c init_record: a bad CALC is reported (recGblRecordError)
    and the record initialises on; processing it raises CALC/INVALID; the rest is served."""
    seen = {}
    for name, start in (("base", start_softioc), ("ours", start_ioc)):
        ioc = start("-S", "badcalc.cmd", cwd=DATA, ready_pv="BAD:OK")
        rows = [caget("-t", "BAD:OK", "BAD:CALC.SEVR", "BAD:CALC.STAT", "BAD:CO.SEVR",
                      "BAD:CALC.A", port=ioc.port).split()]
        for rec in ("BAD:CALC", "BAD:CO"):
            subprocess.run([str(epics_bin() / "caput"), "-w", "5", rec + ".PROC", "1"],
                           capture_output=True, env={**os.environ,
                           "EPICS_CA_ADDR_LIST": f"127.0.0.1:{ioc.port}",
                           "EPICS_CA_AUTO_ADDR_LIST": "NO"}, timeout=20)
        rows.append(caget("-t", "BAD:CALC.SEVR", "BAD:CALC.STAT", "BAD:CALC.PACT",
                          "BAD:CO.SEVR", "BAD:CO.STAT", "BAD:SINK", port=ioc.port).split())
        seen[name] = rows
        out = ioc.output()
        assert "BAD:CALC" in out and "Illegal CALC field" in out, out
        assert "BAD:CO" in out, out
    assert seen["ours"] == seen["base"], seen
    assert seen["ours"][0][:1] == ["5"] and seen["ours"][1][:2] == ["INVALID", "CALC"]


def test_every_softioc_command_is_accepted():
    def names(help_text: str) -> set[str]:
        body = ANSI.sub("", help_text).split("Type 'help <command>'")[0]
        return {w for w in body.replace("epics>", " ").split() if w}
    base = names(softioc_to_exit(stdin_text="help\nexit\n").stdout)
    ours = names(run_ioc_to_exit("-m", "P=H:,NAME=x", "-d", str(DATA / "bo.db"),
                                 stdin_text="help\nexit\n").stdout)
    assert len(base) > 100
    # dbcar (CA links) is registered by the module of the CA links, not by the shell
    assert base - ours <= {"dbcar"}, base - ours


def test_base_version_variables_are_set_as_in_softioc():
    """iocshRegisterCommon's EPICS_VERSION_* and ARCH: databases read them (softIocExit.db's
    ``@EPICS_VERSION_FULL``), so ours gives the values of the base it is compared with."""
    names = ("MAJOR", "MIDDLE", "MINOR", "PATCH", "SNAPSHOT", "SITE", "SHORT", "FULL")
    stdin = "".join(f"epicsEnvShow EPICS_VERSION_{n}\n" for n in names)
    stdin += "epicsEnvShow ARCH\nexit\n"
    env_lines = re.compile(r"^(?:epics> )?((?:EPICS_VERSION_\w+|ARCH)=.*)$", re.M)
    ours = env_lines.findall(ANSI.sub("", run_ioc_to_exit(cwd=DATA, stdin_text=stdin).stdout))
    base = env_lines.findall(ANSI.sub("", softioc_to_exit(stdin_text=stdin).stdout))
    assert len(base) == len(names) + 1
    assert ours == base
