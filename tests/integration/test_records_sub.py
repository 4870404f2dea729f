"""sub and aSub records: what softIoc can show (no SNAM, its own asSubInit/asSubProcess
routines, alarms, metadata, aSub arrays from constant links, the iocInit error for an unknown
SNAM), then Python subroutines in our IOC alone (softIoc has none)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from ..conftest import caget, caput, wait_for
from ..differential import run_differential

pytestmark = pytest.mark.oracle

DATA = Path(__file__).resolve().parent.parent / "data" / "subroutines"

DIFF_DB = r'''
record(ao, "$(P)SRC") { field(VAL, "2") field(PREC, "2") field(EGU, "mA") field(HOPR, "9") }
record(sub, "$(P)AS") {
    field(INAM, "asSubInit") field(SNAM, "asSubProcess")
    field(INPA, "$(P)SRC") field(INPB, "5")
    field(HIHI, "50") field(HIGH, "10") field(LOW, "-5") field(LOLO, "-50")
    field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
    field(HYST, "1") field(MDEL, "2") field(EGU, "V") field(PREC, "3")
    field(HOPR, "100") field(LOPR, "-100")
}
record(sub, "$(P)NOSNAM") { field(INPA, "3") }
record(ao, "$(P)KICK") { field(FLNK, "$(P)NOSNAM") }
record(sub, "$(P)STUCK") { field(SNAM, "asSubProcess") field(INAM, "asSubInit") }
record(aSub, "$(P)ASUB") {
    field(INPA, "[1,2,3]") field(NOA, "3") field(FTA, "LONG")
    field(OUTA, "$(P)WF PP") field(NOVA, "2") field(FTVA, "SHORT") field(EFLG, "ALWAYS")
}
record(waveform, "$(P)WF") { field(NELM, "4") field(FTVL, "SHORT") }
'''


def test_sub_asub_vs_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, DIFF_DB, [
        ("get", "AS NOSNAM ASUB STUCK"),
        ("fields", "AS.A AS.B AS.PACT NOSNAM.PACT NOSNAM.A ASUB.NEA ASUB.NOA ASUB.FTA "
                   "ASUB.NEVA ASUB.NOVA ASUB.FTVA ASUB.EFLG ASUB.LFLG ASUB.ONAM"),
        ("put", "AS", "5"), ("get", "AS"),
        ("put", "AS", "12"), ("get", "AS"),
        ("put", "AS", "9.5"), ("get", "AS"),          # HYST keeps HIGH
        ("put", "AS", "8"), ("get", "AS"),
        ("put", "AS", "60"), ("get", "AS"),
        ("put", "AS", "-7"), ("get", "AS"),
        ("put", "AS", "-70"), ("get", "AS"),
        ("put", "SRC", "4"), ("put", "AS.PROC", "1"), ("fields", "AS.A AS.LA"),
        ("caget", "-d DBR_CTRL_DOUBLE", "AS AS.A AS.B AS.HIHI"),
        ("caget", "-d DBR_CTRL_DOUBLE", "ASUB.VAL ASUB.NEA"),
        ("put", "KICK", "1"), ("put", "KICK", "2"), ("fields", "NOSNAM.LCNT NOSNAM.PACT"),
        ("put", "ASUB.PROC", "1"), ("get", "ASUB WF"), ("fields", "WF.NORD ASUB.NEVA"),
        # A routine name that is not registered: the put fails, processing raises BAD_SUB.
        ("put", "AS.SNAM", "nosuch"), ("put", "AS", "3"), ("get", "AS"),
        ("put", "AS.SNAM", "asSubProcess"), ("put", "AS", "3"), ("get", "AS"),
        ("put", "ASUB.SNAM", "nosuch"), ("put", "ASUB.PROC", "1"), ("get", "ASUB"),
        ("put", "ASUB.SNAM", ""), ("put", "ASUB.PROC", "1"), ("get", "ASUB"),
        ("put_nowait", "STUCK", "1"), ("wait", "STUCK.PACT", "1"), ("get", "STUCK"),
    ], monitor="AS AS.A ASUB")      # not WF: waveform MPST is another type's business


def test_unknown_subroutine_is_reported_and_the_ioc_starts_as_base(start_ioc, start_softioc,
                                                                      tmp_path):
    """base reports the record ("Proc subroutine (SNAM)", recGblRecordError) and goes on; ours
    names the record with its file:line and goes on too; processing such a record raises
    BAD_SUB/INVALID in both."""
    db = tmp_path / "bad.db"
    db.write_text('record(sub, "S1") { field(SNAM, "nosuch") }\n'
                  'record(aSub, "A1") {\n field(SNAM, "nosuch2") }\n'
                  'record(sub, "S3") { field(INAM, "nosuch3") field(SNAM, "asSubProcess") }\n'
                  'record(ai, "OK") { field(VAL, "1") }\n')
    base = start_softioc("-S", "-d", str(db), ready_pv="S1")
    wait_for(lambda: "Proc subroutine (SNAM)" in base.output(), 5, what="softIoc message")
    assert "PV: S1" in base.output() and "PV: A1" in base.output()
    assert "Init subroutine (INAM)" in base.output() and "PV: S3" in base.output()
    ours = start_ioc("-S", "-d", str(db), ready_pv="S1")
    out = ours.output()
    assert "bad.db:1: record S1: Proc subroutine (SNAM) 'nosuch' not found" in out, out
    assert "bad.db:2: record A1:" in out and "nosuch2" in out, out
    assert "bad.db:4: record S3: Init subroutine (INAM) 'nosuch3' not found" in out, out
    got = {}
    for name, ioc in (("base", base), ("ours", ours)):
        for rec in ("S1", "A1", "S3"):
            caput(rec + ".PROC", "1", port=ioc.port)
        got[name] = caget("-t", "S1", "S1.STAT", "S1.SEVR", "A1.STAT", "A1.SEVR", "S3.STAT",
                          "S3.SEVR", "OK", port=ioc.port).split()
    assert got["ours"] == got["base"], got
    assert got["ours"][1:3] == ["BAD_SUB", "INVALID"]


@pytest.fixture
def demo_ioc(start_ioc):
    # The st.cmd takes DB and P from the environment, as iocsh expands $(NAME) from it.
    env = {"PYTHONPATH": str(DATA), "DB": str(DATA / "sub_demo.db"), "P": "T:"}
    return start_ioc("-S", str(DATA / "sub_demo.cmd"), ready_pv="T:S", extra_env=env)


def _get(ioc, *pvs: str) -> list[str]:
    return caget("-t", *pvs, port=ioc.port).split()


def test_python_sub_computes(demo_ioc):
    ioc = demo_ioc
    assert _get(ioc, "T:S.D") == ["7"]          # INAM ran at iocInit
    assert caput("-c", "T:S.PROC", "1", port=ioc.port).returncode == 0
    assert _get(ioc, "T:S", "T:S.STAT", "T:S.SEVR") == ["14", "NO_ALARM", "NO_ALARM"]
    caput("-c", "T:X", "30", port=ioc.port)
    caput("-c", "T:S.PROC", "1", port=ioc.port)
    assert _get(ioc, "T:S", "T:S.STAT", "T:S.SEVR") == ["42", "NO_ALARM", "NO_ALARM"]
    caput("-c", "T:X", "90", port=ioc.port)
    caput("-c", "T:S.PROC", "1", port=ioc.port)
    assert _get(ioc, "T:S", "T:S.STAT", "T:S.SEVR") == ["102", "HIGH", "MINOR"]
    # A negative status: SOFT alarm of severity BRSV, outranked by UDF (VAL never defined).
    caput("-c", "T:F.PROC", "1", port=ioc.port)
    assert _get(ioc, "T:F", "T:F.STAT", "T:F.SEVR") == ["99", "UDF", "INVALID"]


def test_python_asub_arrays(demo_ioc):
    ioc = demo_ioc
    caput("-c", "-a", "T:W", "3", "1", "2", "3.5", port=ioc.port)
    caput("-c", "T:X", "2", port=ioc.port)
    assert caput("-c", "T:AS.PROC", "1", port=ioc.port).returncode == 0
    assert _get(ioc, "T:AS", "T:AS.STAT", "T:AS.NEVA", "T:AS.NEA") == ["0", "NO_ALARM", "3", "3"]
    assert _get(ioc, "T:WO.NORD") == ["3"]
    assert _get(ioc, "T:WO")[1:4] == ["2", "4", "7"]            # LONG: 3.5 * 2 -> 7
    assert _get(ioc, "T:SUM") == ["6.5"]
    # LFLG READ: the routine's name comes through SUBL.
    caput("-c", "T:LF.PROC", "1", port=ioc.port)
    assert _get(ioc, "T:LF.SNAM", "T:LF.ONAM") == ["add", "add"]


def test_python_exception_soft_invalid_logged_once(demo_ioc):
    ioc = demo_ioc
    for _ in range(3):
        assert caput("-c", "T:B.PROC", "1", port=ioc.port).returncode == 0
        assert caput("-c", "T:AB.PROC", "1", port=ioc.port).returncode == 0
    assert _get(ioc, "T:B.STAT", "T:B.SEVR", "T:AB.STAT", "T:AB.SEVR", "T:AB") == \
        ["SOFT", "INVALID", "SOFT", "INVALID", "-1"]
    out = ioc.output()
    assert out.count("T:B: subroutine boom raised") == 1, out
    assert out.count("T:AB: subroutine boom raised") == 1, out
    assert "RuntimeError: boom from a Python subroutine" in out
    assert ioc.proc.poll() is None                     # still serving
    caput("-c", "T:S.PROC", "1", port=ioc.port)
    assert _get(ioc, "T:S") == ["14"]


def test_python_sub_asynchronous(demo_ioc):
    """A routine that sets PACT and returns 1 completes later; a put-callback waits for it."""
    ioc = demo_ioc
    caput("-c", "T:X", "41", port=ioc.port)
    t0 = time.monotonic()
    assert caput("-c", "T:SLOW.PROC", "1", port=ioc.port).returncode == 0
    assert time.monotonic() - t0 >= 0.25
    assert _get(ioc, "T:SLOW", "T:SLOW.PACT", "T:SLOW.SEVR") == ["42", "0", "NO_ALARM"]
