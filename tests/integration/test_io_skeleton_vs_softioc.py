"""The input/output skeletons against softIoc: simulation mode (SIML/SIMM/SIOL/SIMS/SDLY/SSCN),
constant DOL at iocInit, the initial UDF severity, and IVOA, for the I/O record types built."""
from __future__ import annotations

import pytest

from ..differential import run_differential

pytestmark = pytest.mark.oracle

DB = r'''
record(ao, "$(P)SIMSRC") { field(VAL, "3.5") field(PINI, "YES") }
record(bo, "$(P)SIMSW") { field(ZNAM, "off") field(ONAM, "on") }
record(ai, "$(P)AI") {
    field(INP, "$(P)REAL") field(SIML, "$(P)SIMSW") field(SIOL, "$(P)SIMSRC")
    field(SIMS, "MINOR") field(HIHI, "100") field(HHSV, "MAJOR")
}
record(ai, "$(P)REAL") { field(VAL, "1.25") }
record(ai, "$(P)AIRAW") { field(SIMM, "RAW") field(SIOL, "$(P)SIMSRC") field(ASLO, "2") }
record(ai, "$(P)AICONST") { field(INP, "7") }
record(ai, "$(P)AINONE") { }
record(longin, "$(P)LI") { field(SIMM, "YES") field(SIOL, "$(P)SIMSRC") field(SIMS, "MAJOR") }
record(bi, "$(P)BI") { field(SIML, "$(P)SIMSW") field(SIOL, "1") field(ZNAM, "Z") field(ONAM, "O") }
record(mbbi, "$(P)MBBI") { field(SIMM, "YES") field(SIOL, "2") field(ZRST, "a") field(ONST, "b")
    field(TWST, "c") }
record(stringin, "$(P)SI") { field(SIMM, "YES") field(SIOL, "$(P)SO") }
record(stringout, "$(P)SO") { field(DOL, "hello") }
record(ao, "$(P)AO") { field(SIML, "$(P)SIMSW") field(SIOL, "$(P)AOSINK PP") field(OUT, "$(P)AOREAL PP")
    field(DOL, "2.5") }
record(ao, "$(P)AOSINK") { }
record(ao, "$(P)AOREAL") { }
record(longout, "$(P)LO") { field(DOL, "42") field(OOPT, "On Change") field(OUT, "$(P)LOCOUNT.PROC") }
record(calc, "$(P)LOCOUNT") { field(CALC, "VAL+1") }
record(bo, "$(P)BODOL") { field(DOL, "1") field(ZNAM, "zero") field(ONAM, "one") }
record(mbbo, "$(P)MBBODOL") { field(DOL, "1") field(ZRST, "z") field(ONST, "o") }
record(waveform, "$(P)WF") { field(NELM, "4") field(FTVL, "DOUBLE") field(SIMM, "YES")
    field(SIOL, "$(P)SIMSRC") }
record(ai, "$(P)SSCN") { field(SIML, "$(P)SIMSW") field(SSCN, "1 second") field(SIOL, "5") }
record(ao, "$(P)IVOA") { field(IVOA, "Set output to IVOV") field(IVOV, "9") field(OUT, "$(P)IVOASINK PP")
    field(HIHI, "10") field(HHSV, "INVALID") }
record(ao, "$(P)IVOASINK") { }
record(ai, "$(P)DELAY") { field(SIMM, "YES") field(SIOL, "$(P)SIMSRC") field(SDLY, "0.2") }
'''

ALL = ("AI REAL AIRAW AICONST AINONE LI BI MBBI SI SO AO AOSINK AOREAL LO LOCOUNT BODOL MBBODOL "
       "WF SSCN IVOA IVOASINK DELAY")


def test_simulation_and_init_match_softioc(start_ioc, start_softioc, tmp_path):
    steps = [
        ("get", ALL),
        ("fields", "AI.SIMM BI.SIMM SSCN.SCAN SSCN.SSCN AO.OVAL LO.VAL LO.UDF SO.UDF BODOL.RVAL "
                   "LOCOUNT.DTYP AO.DTYP"),
        ("put", "AI.PROC", "1"),
        ("put", "AIRAW.PROC", "1"),
        ("put", "AICONST.PROC", "1"),
        ("put", "AINONE.PROC", "1"),
        ("put", "LI.PROC", "1"),
        ("put", "BI.PROC", "1"),
        ("put", "MBBI.PROC", "1"),
        ("put", "SO.PROC", "1"),
        ("put", "SI.PROC", "1"),
        ("put", "WF.PROC", "1"),
        ("get", ALL),
        ("put", "SIMSW", "1"),           # into simulation: SIML read at the next processing
        ("put", "AI.PROC", "1"),
        ("put", "BI.PROC", "1"),
        ("put", "AO", "4"),
        ("put", "SSCN.PROC", "1"),
        ("get", "AI BI AO AOSINK AOREAL SSCN"),
        ("fields", "AI.SIMM SSCN.SCAN SSCN.SSCN"),
        ("put", "SIMSW", "0"),
        ("put", "AI.PROC", "1"),
        ("put", "AO", "6"),
        ("put", "SSCN.PROC", "1"),
        ("get", "AI AO AOSINK AOREAL SSCN"),
        ("fields", "SSCN.SCAN SSCN.SSCN"),
        ("put", "LO", "42"),
        ("put", "LO", "42"),
        ("put", "LO", "43"),
        ("get", "LO LOCOUNT"),
        ("put", "IVOA", "12"),
        ("get", "IVOA IVOASINK"),
        ("put", "DELAY.PROC", "1"),      # SDLY: the put completes after the delay
        ("get", "DELAY"),
    ]
    run_differential(start_ioc, start_softioc, tmp_path, DB, steps, monitor="AI DELAY")


PINI_DB = r'''
# PINI YES runs at iocBuild, RUN at iocRun, RUNNING after it, each pass in PHAS order:
# RUN0 (PHAS 0) reads YES5 (PHAS 5), so it sees 1 only if all YES records ran first.
record(calc, "$(P)YES5") { field(PINI, "YES") field(PHAS, "5") field(CALC, "VAL+1") }
record(calc, "$(P)RUN0") { field(PINI, "RUN") field(INPA, "$(P)YES5") field(CALC, "A+10") }
record(calc, "$(P)RUNNING") { field(PINI, "RUNNING") field(INPA, "$(P)RUN0") field(CALC, "A+100") }
record(calc, "$(P)PAUSE") { field(PINI, "PAUSE") field(CALC, "VAL+1") }
record(calc, "$(P)PAUSED") { field(PINI, "PAUSED") field(CALC, "VAL+1") }
record(calc, "$(P)NO") { field(PINI, "NO") field(CALC, "VAL+1") }
# within a phase, base goes by record type name: the ao (PHAS 1) runs before the calc
record(calc, "$(P)ORDC") { field(PINI, "YES") field(PHAS, "1") field(INPA, "$(P)ORDA")
    field(CALC, "A") }
record(ao, "$(P)ORDA") { field(PINI, "YES") field(PHAS, "1") field(DOL, "7") field(OMSL, "closed_loop") }
'''


def test_pini_phases_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, PINI_DB, [
        ("get", "YES5 RUN0 RUNNING PAUSE PAUSED NO ORDC ORDA"),
        ("fields", "RUN0.UDF RUNNING.UDF PAUSE.UDF NO.UDF"),
    ])


INIT_DB = r'''
# found by the corpus (tests/data/corpus): state after iocInit of processed records
record(stringin, "$(P)SIEMPTY") { field(PINI, "YES") }
record(stringout, "$(P)SOEMPTY") { field(PINI, "YES") }
record(waveform, "$(P)WFCONST") { field(PINI, "YES") field(NELM, "3") field(FTVL, "DOUBLE")
    field(INP, "[1,2]") }
record(waveform, "$(P)WFEMPTY") { field(PINI, "YES") field(NELM, "3") }
record(waveform, "$(P)WFNONE") { field(NELM, "3") }
record(mbbi, "$(P)MBBINOBT") { field(NOBT, "4") field(SHFT, "2") }
record(mbbi, "$(P)MBBIRAW") { field(DTYP, "Raw Soft Channel") field(SHFT, "4") field(INP, "$(P)RAWSRC")
    field(ZRVL, "0") field(ONVL, "1") field(TWVL, "2") field(ZRST, "a") field(ONST, "b") field(TWST, "c") }
record(mbbi, "$(P)MBBIRAWN") { field(DTYP, "Raw Soft Channel") field(NOBT, "2") field(SHFT, "1")
    field(INP, "$(P)RAWSRC") field(ONVL, "1") field(ONST, "one") field(TWVL, "2") field(TWST, "two") }
record(mbbo, "$(P)MBBORAW") { field(DTYP, "Raw Soft Channel") field(NOBT, "3") field(SHFT, "2")
    field(OUT, "$(P)RAWSINK PP") field(ONVL, "7") field(ONST, "one") }
record(longin, "$(P)RAWSRC") { field(VAL, "0x2c") }
record(longout, "$(P)RAWSINK") { }
'''


def test_init_state_and_raw_masks_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, INIT_DB, [
        ("get", "SIEMPTY SOEMPTY WFCONST WFEMPTY WFNONE"),
        ("fields", "SIEMPTY.UDF SOEMPTY.UDF WFCONST.UDF WFCONST.NORD WFEMPTY.UDF WFNONE.UDF"),
        ("fields", "MBBINOBT.MASK MBBIRAW.MASK MBBIRAWN.MASK MBBORAW.MASK"),
        ("put", "MBBIRAW.PROC", "1"),
        ("put", "MBBIRAWN.PROC", "1"),
        ("get", "MBBIRAW MBBIRAWN"),
        ("fields", "MBBIRAW.RVAL MBBIRAWN.RVAL"),
        ("put", "MBBORAW", "1"),
        ("get", "MBBORAW RAWSINK"),
        ("fields", "MBBORAW.RVAL"),
        ("put", "WFNONE.PROC", "1"),
        ("get", "WFNONE"),
    ])


AFTC_DB = r'''
# AFTC: a long time constant (1000 s) holds the alarm range of the first processing over the
# few ms between our puts; a tiny one (1 ns) follows the new range at once.
record(ao, "$(P)SRC") { }
record(ai, "$(P)SLOW") { field(INP, "$(P)SRC") field(AFTC, "1000") field(HIGH, "5") field(HSV, "MINOR")
    field(HIHI, "8") field(HHSV, "MAJOR") }
record(ai, "$(P)FAST") { field(INP, "$(P)SRC") field(AFTC, "1e-9") field(HIGH, "5") field(HSV, "MINOR")
    field(HIHI, "8") field(HHSV, "MAJOR") }
record(longin, "$(P)LSLOW") { field(INP, "$(P)SRC") field(AFTC, "1000") field(HIGH, "5") field(HSV, "MINOR") }
record(calc, "$(P)CSLOW") { field(INPA, "$(P)SRC") field(CALC, "A") field(AFTC, "1000") field(HIGH, "5")
    field(HSV, "MINOR") }
record(mbbi, "$(P)MSLOW") { field(INP, "$(P)SRC") field(AFTC, "1000") field(ZRSV, "NO_ALARM")
    field(ONSV, "MAJOR") field(TWSV, "MAJOR") field(ZRST, "z") field(ONST, "o") field(TWST, "t") }
record(mbbi, "$(P)MFAST") { field(INP, "$(P)SRC") field(AFTC, "1e-9") field(ZRSV, "NO_ALARM")
    field(ONSV, "MAJOR") field(ZRST, "z") field(ONST, "o") }
'''


def test_alarm_filter_aftc_matches_softioc(start_ioc, start_softioc, tmp_path):
    procs = [("put", f"{r}.PROC", "1") for r in ("SLOW", "FAST", "LSLOW", "CSLOW", "MSLOW", "MFAST")]
    run_differential(start_ioc, start_softioc, tmp_path, AFTC_DB, [
        ("put", "SRC", "0"), *procs,
        ("get", "SLOW FAST LSLOW CSLOW MSLOW MFAST"),
        ("put", "SRC", "1"), *procs,            # mbbi state 1: MAJOR (filtered in MSLOW)
        ("get", "SLOW FAST LSLOW CSLOW MSLOW MFAST"),
        ("put", "SRC", "9"), *procs,
        ("get", "SLOW FAST LSLOW CSLOW"),
        ("fields", "SLOW.AFTC MSLOW.AFTC"),
    ])


WRAP_DB = r'''
# integer text in a db file is parsed as 64 bits and cast to the field (dbPutStringNum)
record(longout, "$(P)LO") { field(HOPR, "0xffffffff") field(LOPR, "4294967294") field(VAL, "0x80000000") }
record(mbbo, "$(P)MB") { field(ZRVL, "0xffffffff") field(ONVL, "-1") }
record(longin, "$(P)LI") { field(HIHI, "-2147483649") }
'''


def test_integer_text_wraps_as_dbputstringnum(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, WRAP_DB, [
        ("fields", "LO.HOPR LO.LOPR LO MB.ZRVL MB.ONVL LI.HIHI"),
    ])


STRLINK_DB = r'''
# a double read as a string through a DB link is formatted at the source's PREC (dbConvert)
record(ai, "$(P)SRC") { field(VAL, "3.14159265") field(PREC, "3") }
record(calc, "$(P)CSRC") { field(CALC, "2/3") field(PREC, "5") }
record(ao, "$(P)NOPREC") { field(VAL, "2.5") }
record(stringin, "$(P)SI") { field(INP, "$(P)SRC") }
record(stringin, "$(P)SIC") { field(INP, "$(P)CSRC PP") }
record(stringin, "$(P)SIN") { field(INP, "$(P)NOPREC") }
record(printf, "$(P)PF") { field(FMT, "[%s] [%.2f]") field(INP0, "$(P)SRC") field(INP1, "$(P)SRC") }
record(lsi, "$(P)LSI") { field(SIZV, "40") field(INP, "$(P)SRC") }
'''


def test_double_read_as_string_uses_the_source_precision(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, STRLINK_DB, [
        ("put", "SI.PROC", "1"), ("put", "SIC.PROC", "1"), ("put", "SIN.PROC", "1"),
        ("put", "PF.PROC", "1"), ("put", "LSI.PROC", "1"),
        ("get", "SI SIC SIN PF LSI"),
        ("put", "SRC.PREC", "1"), ("put", "SI.PROC", "1"), ("get", "SI"),
    ])


EMPTY_VAL_DB = r'''
# dbPutString: field(VAL, ...) in a db file clears UDF, even an empty one
record(stringout, "$(P)SO") { field(VAL, "") }
record(stringin, "$(P)SI") { field(VAL, "") }
record(ai, "$(P)AI") { field(VAL, "") }
record(stringin, "$(P)SINONE") { }
'''


def test_empty_val_in_db_defines_the_record(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, EMPTY_VAL_DB, [
        ("get", "SO SI AI SINONE"),
        ("fields", "SO.UDF SI.UDF AI.UDF SINONE.UDF"),
    ])
