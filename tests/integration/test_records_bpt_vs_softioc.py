"""Breakpoint-table conversions (ai/ao LINR naming a ``breaktable``) against softIoc.

The table comes from a .dbd loaded by ``dbLoadDatabase`` in the st.cmd, as a user adds one
to softIoc; it must be named after a menuConvert choice. EPICS 7.0.8's softIoc.dbd has no
tables of its own, so a LINR naming a table nobody loaded (typeKdegC here) is the "bad
breakpoint table" case in both IOCs.
"""
from __future__ import annotations

import pytest

from ..differential import SENTINEL, run_steps

pytestmark = pytest.mark.oracle

# raw 0..40 with three slopes; ends extrapolated (and SOFT/MAJOR) outside
BPT_DBD = """breaktable(typeJdegC) {
    0 0   10 100   20 150
    40, 250
}
"""

DB = r'''
record(ao, "$(P)SRC") { }
record(ai, "$(P)AI") { field(DTYP, "Raw Soft Channel") field(INP, "$(P)SRC") field(LINR, "typeJdegC") }
record(ai, "$(P)AIMISS") { field(DTYP, "Raw Soft Channel") field(INP, "$(P)SRC") field(LINR, "typeKdegC") }
record(ao, "$(P)AO") { field(DTYP, "Raw Soft Channel") field(OUT, "$(P)SINK PP") field(LINR, "typeJdegC") }
record(ao, "$(P)AOMISS") { field(DTYP, "Raw Soft Channel") field(OUT, "$(P)SINK PP") field(LINR, "typeKdegC") }
record(longout, "$(P)SINK") { }
record(ao, "$(P)''' + SENTINEL + '''") { }
'''


def _steps() -> list[tuple]:
    steps: list[tuple] = []
    for raw in ("5", "15", "10", "40", "50", "-5", "25"):
        steps += [("put", "SRC", raw), ("put", "AI.PROC", "1"), ("put", "AIMISS.PROC", "1"),
                  ("get", "AI AIMISS"), ("fields", "AI.LBRK")]
    for eng in ("50", "125", "250", "300", "-20"):
        steps += [("put", "AO", eng), ("get", "AO SINK"), ("fields", "AO.RVAL AO.LBRK")]
    steps += [("put", "AOMISS", "7"), ("get", "AOMISS SINK"), ("fields", "AOMISS.RVAL")]
    steps += [("put", "AI.LINR", "LINEAR"), ("put", "AI.ESLO", "2"), ("put", "AI.PROC", "1"),
              ("get", "AI"), ("put", "AI.LINR", "typeJdegC"), ("put", "AI.PROC", "1"), ("get", "AI")]
    return steps


def test_breakpoint_tables_match_softioc(start_ioc, start_softioc, tmp_path):
    (tmp_path / "bpt.dbd").write_text(BPT_DBD)
    (tmp_path / "bpt.db").write_text(DB)
    got = {}
    for prefix, start in (("BASE:", start_softioc), ("OURS:", start_ioc)):
        st = tmp_path / f"st_{prefix[:-1]}.cmd"
        st.write_text(f'dbLoadDatabase("{tmp_path}/bpt.dbd")\n'
                      f'dbLoadRecords("{tmp_path}/bpt.db", "P={prefix}")\niocInit\n')
        ioc = start("-S", str(st), ready_pv=prefix + SENTINEL)
        got[prefix] = run_steps(prefix, ioc.port, _steps())
    for b, o in zip(got["BASE:"], got["OURS:"]):
        assert o == b, f"step {b[0]} {b[1]}:\n softIoc: {b[2:]}\n ours:    {o[2:]}"
    assert len(got["BASE:"]) == len(got["OURS:"])
