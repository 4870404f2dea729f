"""Record initialisation and link-field puts against softIoc: the ai/ao EOFF = EGUL rule,
record names with braces, JSON5 constant arrays, mbbo VAL without states, link-type checks of
puts to INP/OUT, an aSub whose SNAM is not registered (found by the db corpus, issue 11)."""
from __future__ import annotations

import pytest

from ..conftest import caget, caput
from ..differential import SENTINEL, run_differential, write_db

pytestmark = pytest.mark.oracle

EOFF_DB = r'''
record(ai, "$(P)AIL") { field(LINR, "LINEAR") field(EGUL, "-10") field(EGUF, "10")
    field(DTYP, "Raw Soft Channel") field(INP, "100") }
record(ai, "$(P)AIS") { field(LINR, "SLOPE") field(EGUL, "-10") field(EGUF, "10")
    field(DTYP, "Raw Soft Channel") field(INP, "100") }
record(ai, "$(P)AIN") { field(EGUL, "5") field(INP, "3") }
record(ai, "$(P)AIE") { field(LINR, "LINEAR") field(EGUL, "-10") field(ESLO, "2")
    field(DTYP, "Raw Soft Channel") field(INP, "100") }
record(ao, "$(P)AOL") { field(LINR, "LINEAR") field(EGUL, "-7") field(EGUF, "7")
    field(DTYP, "Raw Soft Channel") field(OUT, "$(P)SINK PP") }
record(ao, "$(P)AOS") { field(LINR, "SLOPE") field(EGUL, "-7") field(DTYP, "Raw Soft Channel")
    field(OUT, "$(P)SINK PP") }
record(ao, "$(P)AON") { field(EGUL, "4") }
record(longin, "$(P)SINK") { }
'''


def test_eoff_from_egul_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, EOFF_DB, [
        ("fields", "AIL.EOFF AIL.ESLO AIS.EOFF AIS.ESLO AIN.EOFF AIE.EOFF AIE.ESLO"),
        ("fields", "AOL.EOFF AOL.ESLO AOS.EOFF AON.EOFF"),
        ("put", "AIL.PROC", "1"),
        ("put", "AIS.PROC", "1"),
        ("put", "AIE.PROC", "1"),
        ("get", "AIL AIS AIE"),
        ("put", "AOL", "3"),
        ("fields", "AOL.RVAL SINK"),
        ("put", "AOS", "3"),
        ("fields", "AOS.RVAL SINK"),
    ])


NAMES_DB = r'''
record(longout, "$(P)LN:{}Mode") { field(VAL, "3") }
record(longin, "$(P)LN:{}Mode-RB") { field(INP, "$(P)LN:{}Mode CP") }
'''


def test_brace_names_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, NAMES_DB, [
        ("get", "LN:{}Mode"),
        ("put", "LN:{}Mode", "8"),
        ("get", "LN:{}Mode LN:{}Mode-RB"),
    ])


JSON_DB = r'''
record(int64in, "$(P)I1") { field(INP, [1234567890123456789,]) }
record(int64in, "$(P)I2") { field(INP, {const:1234567890123456789,}) }
record(waveform, "$(P)W") { field(NELM, 3) field(FTVL, "INT64")
    field(INP, [1234567890123456789, 2, 3,]) }
'''


def test_json5_constant_arrays_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, JSON_DB, [
        ("caget", "-f0", "I1 I2"),
        ("fields", "W.NORD"),
        ("caget", "-f0", "W"),
    ])


MBB_DB = r'''
record(mbbo, "$(P)NOSTR") { field(VAL, "3") }
record(mbbo, "$(P)STR") { field(ZRST, "zero") field(ONST, "one") field(VAL, "1") }
record(mbbi, "$(P)INOSTR") { field(INP, "2") }
'''


def test_mbb_without_states_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, MBB_DB, [
        ("put", "INOSTR.PROC", "1"),
        ("fields", "NOSTR STR INOSTR"),
        ("caget", "-d DBR_STRING", "NOSTR STR INOSTR"),
        ("caget", "-d DBR_CTRL_ENUM", "STR"),
        ("put", "NOSTR", "5"),
        ("fields", "NOSTR NOSTR.RVAL"),
    ])


LINKPUT_DB = r'''
record(longout, "$(P)OUTREC") { field(OUT, "$(P)SINK") }
record(longin, "$(P)SINK") { }
record(longout, "$(P)CODE") { field(VAL, "255") }
record(printf, "$(P)FMT") { field(FMT, "@OBJ=x,Code=%d") field(INP0, "$(P)CODE")
    field(OUT, "$(P)OUTREC.OUT") }
record(stringout, "$(P)SO") { field(VAL, "$(P)SINK") field(OUT, "$(P)OUTREC.OUT") }
'''


def test_link_field_puts_match_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, LINKPUT_DB, [
        ("put", "FMT.PROC", "1"),
        ("fields", "OUTREC.OUT FMT.STAT"),
        ("put", "SO.PROC", "1"),
        ("fields", "OUTREC.OUT SO.STAT"),
    ])


def test_inst_io_put_to_soft_link_refused_like_softioc(start_ioc, start_softioc, tmp_path):
    """dbPutFieldLink/dbCanSetLink: "@..." into a Soft Channel OUT fails, a PV name is taken
    (the client's error text differs in its context string, so only the fields compare)."""
    path = write_db(tmp_path, LINKPUT_DB)
    iocs = {"BASE:": start_softioc("-S", "-m", "P=BASE:", "-d", str(path),
                                   ready_pv="BASE:" + SENTINEL),
            "OURS:": start_ioc("-S", "-m", "P=OURS:", "-d", str(path),
                               ready_pv="OURS:" + SENTINEL)}
    seen = {}
    for prefix, ioc in iocs.items():
        rows = []
        for value in ("@OBJ=x", prefix + "SINK2", "@OBJ=y"):
            caput(prefix + "OUTREC.OUT", value, port=ioc.port)
            rows.append(caget("-t", prefix + "OUTREC.OUT", port=ioc.port).replace(prefix, ""))
        seen[prefix] = rows
    assert seen["OURS:"] == seen["BASE:"]
    assert seen["OURS:"][0].startswith("SINK")


ASUB_DB = r'''
record(aSub, "$(P)SUB") { field(SNAM, "NoSuchRoutine") field(FTA, "LONG") field(EFLG, "ON CHANGE")
    field(FTVA, "LONG") field(NOVA, "3") }
'''


def test_asub_unknown_snam_matches_softioc(start_ioc, start_softioc, tmp_path):
    run_differential(start_ioc, start_softioc, tmp_path, ASUB_DB, [
        ("get", "SUB"),
        ("put", "SUB.PROC", "1"),
        ("get", "SUB"),
    ])


ASUB_FIELDS_DB = r'''
record(aSub, "$(P)AS") { field(FTA, "USHORT") field(FTB, "DOUBLE") field(FTVA, "LONG")
    field(INPC, "7") field(FTC, "LONG") }
record(longout, "$(P)W1") { field(OUT, "$(P)AS.A PP") }
record(ao, "$(P)W2") { field(OUT, "$(P)AS.B") }
record(ai, "$(P)RB") { field(INP, "$(P)AS.B") }
record(longin, "$(P)RVA") { field(INP, "$(P)AS.VALA") }
record(aSub, "$(P)BAD") { field(SNAM, "Bit Array Gen") field(FTA, "USHORT") }
record(mbboDirect, "$(P)MB") { field(NOBT, "16") field(OUT, "$(P)BAD.A PP") field(PINI, "YES")
    field(VAL, "3") }
'''


def test_asub_input_fields_written_by_links_and_ca_match_softioc(start_ioc, start_softioc,
                                                                  tmp_path):
    """aSubRecord.c cvt_dbaddr: A..U / VALA..VALU are the arrays (typed FTx/FTVx), written by
    DB links (``.A PP`` processes the aSub) and by CA, read by CA and by DB links. (Our CA
    serves them as scalars, the first element: arrays of NOx > 1 need the CA channel layer.)"""
    run_differential(start_ioc, start_softioc, tmp_path, ASUB_FIELDS_DB, [
        ("fields", "AS.A AS.B AS.C AS.VALA AS.NEA AS.NEVA"),
        ("put", "W1", "5"),
        ("fields", "W1.SEVR W1.STAT AS.A AS.NEA AS.SEVR AS.UDF"),
        ("put", "W2", "2.5"),
        ("put", "RB.PROC", "1"),
        ("fields", "W2.SEVR AS.B RB"),
        ("put", "AS.A", "9"),
        ("put", "AS.VALA", "12"),
        ("put", "RVA.PROC", "1"),
        ("fields", "AS.A AS.VALA RVA RVA.SEVR"),
        ("fields", "MB.SEVR BAD.A BAD.VAL BAD.STAT BAD.SEVR"),
    ])


INSTIO_EMPTY_DB = r'''
record(stringin, "$(P)TS") { field(DTYP, "Soft Timestamp") }
record(stringin, "$(P)TS2") { field(DTYP, "Soft Timestamp") field(INP, "") }
'''


def test_inst_io_device_with_empty_link_matches_softioc(start_ioc, start_softioc, tmp_path):
    """dbInitRecordLinks: an INP never set takes the device's INST_IO type, empty string."""
    run_differential(start_ioc, start_softioc, tmp_path, INSTIO_EMPTY_DB, [
        ("fields", "TS TS.INP TS.SEVR TS2.INP"),
        ("put", "TS.PROC", "1"),
        ("fields", "TS.SEVR TS.STAT TS2.SEVR"),
    ])


ASYNC_INP_DB = r'''
record(ao, "$(P)SRC") { field(VAL, "4") }
record(ai, "$(P)A1") { field(DTYP, "Async Soft Channel") field(INP, "$(P)SRC PP MS") }
record(longin, "$(P)A2") { field(DTYP, "Async Soft Channel") field(INP, "$(P)SRC.VAL CP") }
record(bi, "$(P)A3") { field(DTYP, "Async Soft Channel") field(INP, "$(P)SRC") }
'''


def test_async_soft_input_link_readback_matches_softioc(start_ioc, start_softioc, tmp_path):
    """devXxSoftCallback add_record keeps only the MS bits of INP (pvlOptMsMode)."""
    run_differential(start_ioc, start_softioc, tmp_path, ASYNC_INP_DB, [
        ("fields", "A1.INP A2.INP A3.INP"),
        ("put", "A1.PROC", "1"),
        ("fields", "A1 A1.SEVR"),
    ])
