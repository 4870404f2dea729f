"""Control-flow records against softIoc: fanout, dfanout, seq (with delays and put-callback
completion), sel, permissive, state — values, alarms, fields and monitor streams."""
from __future__ import annotations

import pytest

from ..differential import run_differential

pytestmark = pytest.mark.oracle

FANOUT_DB = r'''
record(calc, "$(P)C0") { field(CALC, "VAL+1") }
record(calc, "$(P)C1") { field(CALC, "VAL+1") }
record(calc, "$(P)C2") { field(CALC, "VAL+1") }
record(calc, "$(P)C3") { field(CALC, "VAL+1") }
record(longout, "$(P)SEL") { field(VAL, "1") field(PINI, "YES") }
record(fanout, "$(P)FALL") { field(LNK0, "$(P)C0") field(LNK1, "$(P)C1") field(LNK3, "$(P)C3") }
record(fanout, "$(P)FSPEC") { field(SELM, "Specified") field(SELL, "$(P)SEL")
    field(LNK0, "$(P)C0") field(LNK1, "$(P)C1") field(LNK2, "$(P)C2") field(LNK3, "$(P)C3") }
record(fanout, "$(P)FMASK") { field(SELM, "Mask") field(SELN, "6") field(SHFT, "0")
    field(LNK0, "$(P)C0") field(LNK1, "$(P)C1") field(LNK2, "$(P)C2") field(LNK3, "$(P)C3") }
record(fanout, "$(P)FOFFS") { field(SELM, "Specified") field(SELN, "2") field(OFFS, "-1")
    field(LNK0, "$(P)C0") field(LNK1, "$(P)C1") }
record(ao, "$(P)DSRC") { field(VAL, "2.5") }
record(ao, "$(P)OA") { }
record(ao, "$(P)OB") { }
record(ao, "$(P)OC") { }
record(dfanout, "$(P)DF") { field(OUTA, "$(P)OA PP") field(OUTB, "$(P)OB PP") field(OUTC, "$(P)OC")
    field(HIGH, "5") field(HSV, "MINOR") field(HIHI, "8") field(HHSV, "MAJOR") field(MDEL, "0.5")
    field(EGU, "mm") field(PREC, "2") field(HOPR, "10") field(LOPR, "-10") }
record(dfanout, "$(P)DFDOL") { field(DOL, "$(P)DSRC") field(OMSL, "closed_loop")
    field(SELM, "Specified") field(SELL, "$(P)SEL") field(OUTA, "$(P)OA PP") field(OUTB, "$(P)OB PP") }
record(dfanout, "$(P)DFCONST") { field(DOL, "3") field(SELM, "Mask") field(SELN, "5")
    field(OUTA, "$(P)OA PP") field(OUTC, "$(P)OC PP") }
record(dfanout, "$(P)DFBAD") { field(SELM, "Specified") field(SELN, "9") }
record(permissive, "$(P)PERM") { field(LABL, "gate") }
record(state, "$(P)STATE") { }
'''


def test_fanout_dfanout_match_softioc(start_ioc, start_softioc, tmp_path):
    calcs = "C0 C1 C2 C3"
    run_differential(start_ioc, start_softioc, tmp_path, FANOUT_DB, [
        ("get", "FALL FSPEC FMASK FOFFS DF DFDOL DFCONST DFBAD PERM STATE"),
        ("fields", "FSPEC.SELN FMASK.SELN DFCONST.UDF DFDOL.SELN"),
        ("put", "FALL.PROC", "1"),
        ("get", calcs),
        ("put", "FSPEC.PROC", "1"),
        ("put", "SEL", "3"),
        ("put", "FSPEC.PROC", "1"),
        ("get", calcs + " FSPEC"),
        ("put", "SEL", "20"),
        ("put", "FSPEC.PROC", "1"),
        ("get", "FSPEC"),
        ("fields", "FSPEC.SELN"),
        ("put", "FMASK.PROC", "1"),
        ("put", "FMASK.SHFT", "-1"),
        ("put", "FMASK.PROC", "1"),
        ("put", "FMASK.SHFT", "16"),
        ("put", "FMASK.PROC", "1"),
        ("put", "FOFFS.PROC", "1"),
        ("get", calcs + " FMASK FOFFS"),
        ("caget", "-d DBR_CTRL_LONG", "FALL FALL.SELN FALL.OFFS"),
        ("caget", "-d DBR_CTRL_DOUBLE", "DFCONST.HIHI DFCONST.HYST"),
        ("put", "DF", "1.5"),
        ("get", "DF OA OB OC"),
        ("put", "DF", "6"),
        ("put", "DF", "6.2"),
        ("put", "DF", "9"),
        ("get", "DF OA OB OC"),
        ("caget", "-d DBR_CTRL_DOUBLE", "DF"),
        ("put", "SEL", "2"),
        ("put", "DFDOL.PROC", "1"),
        ("get", "DFDOL OA OB"),
        ("put", "SEL", "0"),
        ("put", "DSRC", "7"),
        ("put", "DFDOL.PROC", "1"),
        ("get", "DFDOL OA OB"),
        ("put", "DFCONST.PROC", "1"),
        ("put", "DFBAD.PROC", "1"),
        ("get", "DFCONST OA OC DFBAD"),
        ("put", "PERM", "1"),
        ("put", "PERM.WFLG", "1"),
        ("put", "PERM.PROC", "1"),
        ("put", "STATE", "running"),
        ("put", "STATE.PROC", "1"),
        ("get", "PERM STATE"),
        ("fields", "PERM.OVAL PERM.OFLG STATE.OVAL"),
    ], monitor="FSPEC FSPEC.SELN FMASK DF OA PERM PERM.WFLG STATE")


SEQ_DB = r'''
record(ao, "$(P)SRC") { field(VAL, "4") field(EGU, "V") field(PREC, "3") field(HOPR, "9")
    field(HIGH, "8") field(HSV, "MINOR") }
record(ao, "$(P)T0") { }
record(ao, "$(P)T1") { }
record(ao, "$(P)T2") { }
record(calc, "$(P)CNT") { field(CALC, "VAL+1") }
record(longout, "$(P)SEL") { field(VAL, "2") field(PINI, "YES") }
record(seq, "$(P)SEQ") { field(DOL0, "1") field(LNK0, "$(P)T0 PP")
    field(DLY1, "0.3") field(DOL1, "$(P)SRC") field(LNK1, "$(P)T1 PP")
    field(DLY2, "0.2") field(DOL2, "7") field(LNK2, "$(P)T2 PP") field(FLNK, "$(P)CNT") }
record(seq, "$(P)SEQS") { field(SELM, "Specified") field(SELL, "$(P)SEL")
    field(DOL1, "11") field(LNK1, "$(P)T0 PP") field(DOL2, "12") field(LNK2, "$(P)T1 PP") }
record(seq, "$(P)SEQM") { field(SELM, "Mask") field(SELN, "5")
    field(DOL0, "21") field(LNK0, "$(P)T0 PP") field(DOL1, "22") field(LNK1, "$(P)T1 PP")
    field(DOL2, "23") field(LNK2, "$(P)T2 PP") }
record(seq, "$(P)SEQBAD") { field(SELM, "Specified") field(SELN, "17") }
'''


def test_seq_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, SEQ_DB, [
        ("get", "SEQ SEQS SEQM SEQBAD T0 T1 T2"),
        ("fields", "SEQ.DO0 SEQ.DO1 SEQ.DO2 SEQ.PACT"),
        ("put", "SEQ.PROC", "1"),             # caput -c: completes after the last group
        ("get", "T0 T1 T2 CNT SEQ"),
        ("fields", "SEQ.DO1 SEQ.PACT"),
        ("put", "SRC", "5"),
        ("put_nowait", "SEQ.PROC", "1"),
        ("fields", "SEQ.PACT"),
        ("wait", "CNT", "2"),
        ("get", "T1 CNT"),
        ("put_nowait", "SEQ.PROC", "1"),
        ("put_nowait", "SEQ.PROC", "1"),      # while active: RPRO, the sequence runs again
        ("wait", "CNT", "4"),
        ("fields", "SEQ.RPRO SEQ.PACT"),
        ("put", "SEQ.DISA", "1"),
        ("put", "SEQ.PROC", "1"),
        ("get", "SEQ CNT"),
        ("put", "SEQ.DISA", "0"),
        ("put", "SEQS.PROC", "1"),
        ("get", "T0 T1 SEQS"),
        ("put", "SEL", "1"),
        ("put", "SEQS.PROC", "1"),
        ("get", "T0 T1 SEQS"),
        ("put", "SEL", "30"),
        ("put", "SEQS.PROC", "1"),
        ("get", "SEQS"),
        ("fields", "SEQS.SELN SEQS.OLDN"),
        ("put", "SEQM.PROC", "1"),
        ("get", "T0 T1 T2 SEQM"),
        ("put", "SEQBAD.PROC", "1"),
        ("get", "SEQBAD"),
        ("caget", "-d DBR_CTRL_DOUBLE", "SEQ.DLY1 SEQ.DO1 SEQ.DLY0 SEQ.DO0 SEQ.DLYF SEQ.DO2"),
        ("caget", "-d DBR_CTRL_LONG", "SEQ SEQ.SELN"),
    ], monitor="SEQ SEQ.DO1 SEQS.SELN T1 CNT")


SEL_DB = r'''
record(ao, "$(P)A") { field(VAL, "3") }
record(ao, "$(P)B") { field(VAL, "-1") }
record(ao, "$(P)C") { field(VAL, "7") }
record(longout, "$(P)N") { field(VAL, "1") }
record(sel, "$(P)HI") { field(SELM, "High Signal") field(INPA, "$(P)A") field(INPB, "$(P)B")
    field(INPC, "$(P)C") field(HIGH, "6") field(HSV, "MINOR") }
record(sel, "$(P)LO") { field(SELM, "Low Signal") field(INPA, "$(P)A") field(INPB, "$(P)B")
    field(INPC, "$(P)C") }
record(sel, "$(P)MED") { field(SELM, "Median Signal") field(INPA, "$(P)A") field(INPB, "$(P)B")
    field(INPC, "$(P)C") field(INPD, "10") }
record(sel, "$(P)SPEC") { field(NVL, "$(P)N") field(INPA, "$(P)A") field(INPB, "$(P)B PP")
    field(INPC, "$(P)C") field(EGU, "V") field(PREC, "3") field(HOPR, "9") }
record(sel, "$(P)NONE") { field(SELM, "High Signal") }
'''


def test_sel_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, SEL_DB, [
        ("get", "HI LO MED SPEC NONE"),
        ("fields", "MED.D SPEC.SELN HI.A"),
        ("put", "HI.PROC", "1"),
        ("put", "LO.PROC", "1"),
        ("put", "MED.PROC", "1"),
        ("put", "SPEC.PROC", "1"),
        ("put", "NONE.PROC", "1"),
        ("get", "HI LO MED SPEC NONE"),
        ("fields", "HI.SELN LO.SELN MED.SELN SPEC.SELN SPEC.A SPEC.B SPEC.C"),
        ("put", "C", "2"),
        ("put", "N", "2"),
        ("put", "HI.PROC", "1"),
        ("put", "MED.PROC", "1"),
        ("put", "SPEC.PROC", "1"),
        ("get", "HI MED SPEC"),
        ("put", "N", "12"),
        ("put", "SPEC.PROC", "1"),
        ("get", "SPEC"),
        ("caget", "-d DBR_CTRL_DOUBLE", "SPEC SPEC.A"),
    ], monitor="HI HI.SELN HI.C MED SPEC SPEC.B")


EVENT_DB = r'''
record(calc, "$(P)ONTICK") { field(SCAN, "Event") field(EVNT, "tick") field(CALC, "VAL+1") }
record(calc, "$(P)ON5") { field(SCAN, "Event") field(EVNT, "5.0") field(CALC, "VAL+1") }
record(calc, "$(P)ONTOCK") { field(SCAN, "Event") field(EVNT, "tock") field(CALC, "VAL+1") }
record(event, "$(P)EV") { field(VAL, "tick") }
record(event, "$(P)EVCONST") { field(INP, "5") }
record(stringout, "$(P)NAME") { field(VAL, "tock") }
record(event, "$(P)EVINP") { field(INP, "$(P)NAME") field(FLNK, "$(P)AFTER") }
record(calc, "$(P)AFTER") { field(CALC, "VAL+1") }
record(event, "$(P)EVSIM") { field(SIMM, "YES") field(SIOL, "$(P)NAME") field(SIMS, "MINOR") }
record(event, "$(P)EVNONE") { }
'''


def test_event_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, EVENT_DB, [
        ("get", "EV EVCONST EVINP EVSIM EVNONE"),
        ("fields", "EV.UDF EVCONST.UDF EVCONST.DTYP"),
        ("put", "EV.PROC", "1"),
        ("wait", "ONTICK", "1"),
        ("put", "EVCONST.PROC", "1"),
        ("wait", "ON5", "1"),
        ("put", "EVINP.PROC", "1"),
        ("wait", "ONTOCK", "1"),
        ("get", "ONTICK ON5 ONTOCK AFTER EVINP"),
        ("put", "NAME", "tick"),
        ("put", "EVINP.PROC", "1"),
        ("wait", "ONTICK", "2"),
        ("put", "EV", "tock"),              # VAL is not pp: only names the next event
        ("get", "ONTOCK"),
        ("put", "EV.PROC", "1"),
        ("wait", "ONTOCK", "2"),
        ("put", "EVSIM.PROC", "1"),
        ("wait", "ONTICK", "3"),
        ("put", "EVNONE.PROC", "1"),
        ("get", "ONTICK ON5 ONTOCK EV EVINP EVSIM EVNONE"),
    ], monitor="EV EVINP EVNONE ONTICK")


PRINTF_DB = r'''
record(ao, "$(P)X") { field(VAL, "3.14159") }
record(longout, "$(P)N") { field(VAL, "-42") }
record(longout, "$(P)W") { field(VAL, "8") }
record(stringout, "$(P)S") { field(VAL, "abc") }
record(stringout, "$(P)SINK") { }
record(waveform, "$(P)WSINK") { field(FTVL, "CHAR") field(NELM, "100") }
record(printf, "$(P)PF") { field(FMT, "x=%.3f n=%d hex=%x s=%s %%") field(INP0, "$(P)X")
    field(INP1, "$(P)N") field(INP2, "$(P)W") field(INP3, "$(P)S") field(OUT, "$(P)SINK PP") }
record(printf, "$(P)PFW") { field(FMT, "[%*d] [%-6s] [%e] [%g] [%c]") field(INP0, "$(P)W")
    field(INP1, "$(P)N") field(INP2, "$(P)S") field(INP3, "$(P)X") field(INP4, "0.5")
    field(INP5, "65") field(OUT, "$(P)WSINK PP") field(SIZV, "60") }
record(printf, "$(P)PFBAD") { field(FMT, "a%db%dc%q") field(INP0, "$(P)N") field(IVLS, "?!") }
record(printf, "$(P)PFLS") { field(FMT, "<%10ls|%-5ls|%.2ls>") field(INP0, "$(P)WSINK")
    field(INP1, "$(P)S") field(INP2, "$(P)S") field(DTYP, "Async Soft Channel") }
record(longout, "$(P)NEGW") { field(VAL, "-7") }
record(printf, "$(P)PFMORE") { field(FMT, "%hhd|%lld|%+5.1f|%#x|%o|%E|%G|%*d|%-4u|%hu|%s")
    field(INP0, "300") field(INP1, "$(P)N") field(INP2, "$(P)X") field(INP3, "255")
    field(INP4, "8") field(INP5, "$(P)X") field(INP6, "1e-7") field(INP7, "$(P)NEGW")
    field(INP8, "$(P)N") field(INP9, "$(P)N") field(SIZV, "200") }
record(printf, "$(P)PFMISS") { field(FMT, "%d,%*d,%s,%5%,%") field(INP0, "1") field(INP1, "")
    field(INP2, "x") }
record(printf, "$(P)PFSHORT") { field(FMT, "0123456789abcdefghijklmnop") field(SIZV, "10") }
'''


def test_printf_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, PRINTF_DB, [
        ("get", "PF PFW PFBAD PFLS PFSHORT"),
        ("fields", "PF.SIZV PF.LEN PFSHORT.SIZV PFLS.DTYP"),
        ("put", "PF.PROC", "1"),
        ("put", "PFW.PROC", "1"),
        ("put", "PFBAD.PROC", "1"),
        ("put", "PFLS.PROC", "1"),
        ("put", "PFSHORT.PROC", "1"),
        ("put", "PFMORE.PROC", "1"),
        ("put", "PFMISS.PROC", "1"),
        ("caget", "-S", "PFMORE.VAL$ PFMISS.VAL$"),
        ("get", "PFMORE PFMISS"),
        ("get", "PF PFW PFBAD PFLS PFSHORT SINK"),
        ("caget", "-S", "PF.VAL$ PFW.VAL$ WSINK"),
        ("fields", "PF.LEN PFW.LEN PFBAD.LEN PFLS.LEN PFSHORT.LEN"),
        ("put", "N", "255"),
        ("put", "S", "a much longer text"),
        ("put", "PF.PROC", "1"),
        ("put", "PFLS.PROC", "1"),
        ("caget", "-S", "PF.VAL$ PFLS.VAL$ SINK"),
    ], monitor="PF PF.LEN PFLS")
