"""JSON links and filtered DB links against EPICS base 7.0.8's softIoc (same db, same puts)."""
from __future__ import annotations

import pytest

from ..conftest import run_ioc_to_exit
from ..differential import run_differential, write_db

pytestmark = pytest.mark.oracle

CALC_DB = '''
record(ai, "$(P)C") { field(INP, "{calc:{expr:'A+B*2',args:[5,{const:1.5}],units:'mm',prec:3}}") }
record(ai, "$(P)M") { field(INP, "{calc:{expr:'A',args:[7],major:'A>5'}}") }
record(ao, "$(P)O") { field(OUT, "{calc:{expr:'VAL*2',out:{state:'jl_out'}}}") }
record(bi, "$(P)S") { field(INP, "{state:'jl_out'}") }
record(bi, "$(P)NS") { field(INP, "{state:'!jl_out'}") }
'''


def test_calc_and_state_links(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, CALC_DB, [
        ("put", "C.PROC", "1"), ("put", "M.PROC", "1"), ("get", "C M"),
        ("put", "S.PROC", "1"), ("put", "NS.PROC", "1"), ("get", "S NS"),
        ("put", "O", "1"), ("put", "S.PROC", "1"), ("put", "NS.PROC", "1"), ("get", "S NS"),
        ("put", "O", "0"), ("put", "S.PROC", "1"), ("get", "S"),
    ])


CONST_DB = '''
record(waveform, "$(P)W") { field(NELM, 10) field(FTVL, DOUBLE) field(INP, "{const:[1,2,3,4,5,6]}") }
record(aai, "$(P)A") { field(NELM, 5) field(FTVL, LONG) field(INP, "{const:[7,8,9]}") }
record(ai, "$(P)K") { field(INP, "{const:3.25}") }
record(stringin, "$(P)STR") { field(INP, "{const:'hello'}") }
record(subArray, "$(P)SA") { field(NELM, 3) field(MALM, 10) field(FTVL, DOUBLE) field(INP, "$(P)W.[2:4] PP") }
record(waveform, "$(P)WF") { field(NELM, 10) field(FTVL, DOUBLE) field(INP, "$(P)W.[2:4] PP") }
record(waveform, "$(P)WS") { field(NELM, 10) field(FTVL, DOUBLE) field(INP, "$(P)W.{arr:{s:1,i:2}}") }
record(ai, "$(P)D") { field(INP, "$(P)K.{dbnd:{d:2}}") }
'''


def test_const_links_and_filtered_db_links(start_ioc, start_softioc, tmp_path):
    got = run_differential(start_ioc, start_softioc, tmp_path, CONST_DB, [
        ("fields", "W A K STR"),
        ("put", "WF.PROC", "1"), ("put", "WS.PROC", "1"), ("put", "D.PROC", "1"),
        ("put", "SA.PROC", "1"),
        ("fields", "WF WF.NORD WS WS.NORD D SA SA.NORD"),
        ("put_array", "W", "10 20 30 40 50"), ("put", "WF.PROC", "1"), ("fields", "WF"),
    ])
    # the filters really cut the array (both IOCs agree, and not on the whole array)
    assert got[-1][2] == ["10 30 40 50 0 0 0 0 0 0 0"], got[-1]


def test_unknown_and_pva_links_refused(tmp_path):
    path = write_db(tmp_path, 'record(ai, "$(P)X") { field(INP, "{pva:\'x\'}") }\n'
                              'record(ai, "$(P)Y") { field(INP, "{zork:1}") }')
    r = run_ioc_to_exit("-S", "-m", "P=OURS:", "-d", str(path), stdin_text="exit\n")
    out = r.stdout + r.stderr
    assert "Link type 'pva' not found" in out, out
    assert "Link type 'zork' not found" in out, out
    assert "OURS:X" in out and "INP" in out, out
