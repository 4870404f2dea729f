"""int64in/int64out and mbbiDirect/mbboDirect against softIoc: values at the int64 extremes
through CA (DBR_DOUBLE), alarms, deadbands, drive limits, metadata, and the bits B0..B1F kept
in step with VAL (puts to either), NOBT/MASK/SHFT with Soft and Raw Soft Channel."""
from __future__ import annotations

import pytest

from ..differential import run_differential

pytestmark = pytest.mark.oracle

INT64_DB = r'''
record(int64in, "$(P)I64") { field(INP, "$(P)O64") field(HIHI, "1000") field(HHSV, "MAJOR")
    field(LOW, "-5") field(LSV, "MINOR") field(HYST, "2") field(MDEL, "3") field(EGU, "cnt")
    field(HOPR, "5000") field(LOPR, "-5000") }
record(int64out, "$(P)O64") { field(DRVH, "2000") field(DRVL, "-2000") field(FLNK, "$(P)I64")
    field(HIGH, "100") field(HSV, "MINOR") field(EGU, "u") }
record(int64out, "$(P)BIG") { field(OUT, "$(P)BIGIN PP") }
record(int64in, "$(P)BIGIN") { field(MDEL, "-1") }
record(int64in, "$(P)CONST") { field(INP, "123456789012") }
record(int64in, "$(P)NONE") { }
record(int64out, "$(P)DOL") { field(DOL, "$(P)BIGIN") field(OMSL, "closed_loop")
    field(OUT, "$(P)DOLIN PP") }
record(int64in, "$(P)DOLIN") { }
record(int64out, "$(P)CDOL") { field(DOL, "77") }
record(int64in, "$(P)SIM") { field(SIMM, "YES") field(SIOL, "$(P)CDOL") }
'''


def test_int64_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, INT64_DB, [
        ("get", "I64 O64 BIG BIGIN CONST NONE DOL DOLIN CDOL SIM"),
        ("fields", "I64.UDF CONST.UDF CDOL.UDF I64.DTYP O64.DTYP"),
        ("put", "CONST.PROC", "1"),
        ("put", "NONE.PROC", "1"),
        ("put", "SIM.PROC", "1"),
        ("put", "O64", "50"),
        ("put", "O64", "51"),
        ("put", "O64", "200"),
        ("put", "O64", "1500"),
        ("put", "O64", "999"),
        ("put", "O64", "997"),
        ("put", "O64", "-3000"),
        ("put", "O64", "-6"),
        ("put", "O64", "-4"),
        ("put", "O64", "-2"),
        ("get", "I64 O64 CONST NONE SIM"),
        ("put", "BIG", "9007199254740993"),
        ("get", "BIG BIGIN"),
        ("caget", "-f0", "BIG BIGIN"),
        ("put", "BIG", "-9223372036854775808"),
        ("caget", "-f0", "BIG BIGIN"),
        ("put", "BIG", "9223372036854775807"),
        ("caget", "-f0", "BIG BIGIN"),
        ("put", "BIG", "12345678901"),
        ("put", "DOL.PROC", "1"),
        ("caget", "-f0", "DOL DOLIN"),
        ("caget", "-d DBR_CTRL_DOUBLE", "I64 O64 O64.HIHI I64.HYST"),
        ("caget", "-d DBR_GR_LONG", "I64"),
        ("fields", "I64.LALM I64.MLST I64.ALST O64.MLST"),
    ], monitor="I64 O64 BIGIN")


DIRECT_DB = r'''
record(mbbiDirect, "$(P)MI") { field(INP, "$(P)MO") field(FLNK, "$(P)RAWI") }
record(mbboDirect, "$(P)MO") { field(FLNK, "$(P)MI") }
record(mbbiDirect, "$(P)RAWI") { field(DTYP, "Raw Soft Channel") field(NOBT, "4") field(INP, "$(P)MO")
    field(SHFT, "2") }
record(mbboDirect, "$(P)RAWO") { field(DTYP, "Raw Soft Channel") field(NOBT, "3")
    field(SHFT, "1") field(OUT, "$(P)RAWSINK PP") }
record(longin, "$(P)RAWSINK") { }
record(mbbiDirect, "$(P)CONST") { field(INP, "5") }
record(mbbiDirect, "$(P)NONE") { }
record(mbboDirect, "$(P)BITS") { field(B1, "1") field(B3, "1") }
record(mbboDirect, "$(P)CDOL") { field(DOL, "6") }
record(mbboDirect, "$(P)CL") { field(DOL, "$(P)RAWSINK") field(OMSL, "closed_loop") }
record(mbboDirect, "$(P)UNDEF") { }
record(mbbiDirect, "$(P)SIM") { field(SIMM, "RAW") field(SIOL, "12") field(SHFT, "2") }
'''


def test_direct_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, DIRECT_DB, [
        ("get", "MI MO RAWI RAWO RAWSINK CONST NONE BITS CDOL CL UNDEF SIM"),
        ("fields", "MI.MASK RAWI.MASK RAWO.MASK MO.MASK CONST.B0 CONST.B1 CONST.B2 BITS.B1 "
                   "BITS.B3 CDOL.B1 CDOL.B2 CDOL.RVAL RAWO.RVAL MI.DTYP RAWI.DTYP"),
        ("put", "CONST.PROC", "1"),
        ("put", "NONE.PROC", "1"),
        ("put", "UNDEF.PROC", "1"),
        ("put", "SIM.PROC", "1"),
        ("put", "MO", "5"),
        ("fields", "MO.B0 MO.B1 MO.B2 MO.RVAL MI.B0 MI.B2 MI.RVAL RAWI.RVAL RAWI.VAL"),
        ("put", "MO.B1", "1"),
        ("fields", "MO.VAL MO.B1 MI.VAL MI.B1 RAWI.RVAL RAWI.VAL"),
        ("put", "MO.B0", "0"),
        ("put", "MO.B1F", "1"),
        ("fields", "MO.VAL MO.RVAL MI.VAL MI.B1F RAWI.VAL"),
        ("put", "MO", "255"),
        ("fields", "MO.B7 RAWI.RVAL RAWI.VAL RAWI.B0 RAWI.B3 RAWI.B4"),
        ("put", "RAWO", "15"),
        ("fields", "RAWO.RVAL RAWSINK RAWO.B3"),
        ("put", "CL.PROC", "1"),
        ("put", "CL.B2", "1"),
        ("fields", "CL.VAL CL.B2 CL.B1"),
        ("put", "MO.SHFT", "3"),
        ("put", "MO", "2"),
        ("fields", "MO.RVAL RAWI.VAL"),
        ("get", "MI MO RAWI RAWO RAWSINK CONST NONE BITS CDOL CL UNDEF SIM"),
        ("caget", "-d DBR_CTRL_LONG", "MI MO"),
    ], monitor="MI MO MO.B0 MO.B1 MI.B1 MO.RVAL RAWI")


LS_DB = r'''
record(lso, "$(P)LSO") { field(SIZV, "100") field(OUT, "$(P)LSI.VAL PP") field(FLNK, "$(P)RD") }
record(lsi, "$(P)LSI") { field(SIZV, "60") }
record(lsi, "$(P)RD") { field(INP, "$(P)LSO") field(SIZV, "20") field(MPST, "Always") }
record(lsi, "$(P)CONST") { field(INP, {"const":"constant_text_of_more_than_forty_characters_x"}) }
record(lso, "$(P)CDOL") { field(DOL, {"const":"from_dol"}) }
record(lso, "$(P)SMALL") { field(SIZV, "4") }
record(stringout, "$(P)SRC") { field(VAL, "short") }
record(lso, "$(P)CL") { field(DOL, "$(P)SRC") field(OMSL, "closed_loop") }
record(lsi, "$(P)ENV") { field(DTYP, "getenv") field(INP, "@HOME") }
record(lsi, "$(P)NOENV") { field(DTYP, "getenv") field(INP, "@NO_SUCH_VARIABLE_XYZ") }
record(lso, "$(P)PRINT") { field(DTYP, "stdio") field(OUT, "@stdout") }
record(lso, "$(P)ASYNC") { field(DTYP, "Async Soft Channel") field(OUT, "$(P)LSI.VAL PP") }
record(int64in, "$(P)AI64") { field(DTYP, "Async Soft Channel") field(INP, "$(P)SMALL.LEN") }
record(mbboDirect, "$(P)AMBBO") { field(DTYP, "Async Soft Channel") field(OUT, "$(P)AI64.VAL") }
'''


def test_long_strings_match_softioc(start_ioc, start_softioc, tmp_path):
    long = "a long string that is longer than forty characters, for sure"
    run_differential(start_ioc, start_softioc, tmp_path, LS_DB, [
        ("get", "LSO LSI RD CONST CDOL SMALL CL"),
        ("fields", "LSO.SIZV LSI.SIZV SMALL.SIZV LSO.LEN CONST.LEN CONST.OLEN CDOL.LEN "
                   "CDOL.UDF LSO.DTYP"),
        ("caget", "-S", "CONST.VAL$ CDOL.VAL$ LSO.VAL$"),
        ("put_string", "LSO.VAL$", long),
        ("caget", "-S", "LSO.VAL$ LSI.VAL$ RD.VAL$ LSO.OVAL$"),
        ("fields", "LSO.LEN LSO.OLEN LSI.LEN RD.LEN"),
        ("put", "LSO", "plain"),
        ("put", "LSO", "plain"),
        ("put", "SMALL", "abcdefgh"),
        ("put", "CL.PROC", "1"),
        ("put", "CONST.PROC", "1"),
        ("get", "LSO LSI RD CONST CDOL SMALL CL"),
        ("fields", "SMALL.LEN CL.LEN CL.OLEN"),
        ("caget", "-S", "SMALL.VAL$ CL.VAL$"),
        ("put", "ENV.PROC", "1"),
        ("put", "NOENV.PROC", "1"),
        ("put", "PRINT", "printed"),
        ("put", "ASYNC", "via async"),
        ("put", "AI64.PROC", "1"),
        ("get", "ENV NOENV PRINT ASYNC LSI AI64"),
        ("fields", "ENV.LEN NOENV.LEN ENV.UDF NOENV.UDF NOENV.AMSG PRINT.DTYP ENV.DTYP"),
        ("put", "AMBBO", "3"),
        ("get", "AI64 AMBBO"),
    ], monitor="LSO LSI RD LSO.LEN")
