"""The array records (subArray, aai, aao) against softIoc: Soft Channel reads and writes through
DB links and constants, NELM/NORD/INDX/MALM handling, FTVL conversion, MPST/APST monitors,
UDF alarms, simulation through SIOL, and the rset metadata (limits, units, precision)."""
from __future__ import annotations

import pytest

from ..differential import run_differential

pytestmark = pytest.mark.oracle

SUBARRAY_DB = r'''
record(waveform, "$(P)WF") { field(NELM, "10") field(FTVL, "DOUBLE") }
record(waveform, "$(P)WFS") { field(NELM, "4") field(FTVL, "STRING") }
record(subArray, "$(P)SA") { field(INP, "$(P)WF") field(MALM, "10") field(NELM, "3")
    field(INDX, "2") field(FTVL, "DOUBLE") field(EGU, "mm") field(PREC, "2")
    field(HOPR, "50") field(LOPR, "-5") }
record(subArray, "$(P)SAL") { field(INP, "$(P)WF CP") field(MALM, "6") field(NELM, "8")
    field(FTVL, "LONG") }
record(subArray, "$(P)SAC") { field(INP, "[1, 2, 3, 4, 5]") field(MALM, "5") field(NELM, "2")
    field(INDX, "1") field(FTVL, "SHORT") }
record(subArray, "$(P)SAS") { field(INP, "$(P)WFS") field(MALM, "4") field(NELM, "2")
    field(INDX, "1") field(FTVL, "STRING") }
record(subArray, "$(P)SABIG") { field(INP, "$(P)WF") field(MALM, "10") field(NELM, "4")
    field(INDX, "20") field(FTVL, "DOUBLE") }
record(subArray, "$(P)SAE") { field(MALM, "4") field(NELM, "2") }
'''

SA_ALL = "SA SAL SAC SAS SABIG SAE"


def sa_get(names: str) -> list[tuple]:
    """Values (native count: base sizes a subArray's VAL by MALM, and so do we; then two
    elements asked for), STAT and SEVR of subArray records."""
    return [("caget", "-t", names), ("caget", "-t -# 2", names),
            ("fields", " ".join(f"{n}.{x}" for n in names.split() for x in ("STAT", "SEVR")))]


def test_subarray_matches_softioc(start_ioc, start_softioc, tmp_path):
    steps = [
        *sa_get(SA_ALL),
        ("fields", "SA.NORD SA.UDF SAL.NELM SAC.NORD SAC.UDF SABIG.INDX SA.DTYP"),
        ("put_array", "WF", "1 2 3 4 5 6 7"),
        ("put", "SA.PROC", "1"),
        ("put", "SABIG.PROC", "1"),
        ("put", "SAC.PROC", "1"),
        ("put", "SAE.PROC", "1"),
        *sa_get(SA_ALL),
        ("fields", "SA.NORD SAL.NORD SAL.NELM SABIG.INDX SABIG.NORD SABIG.UDF SAC.NORD"),
        ("put", "SA.INDX", "5"),
        ("put", "SA.PROC", "1"),
        *sa_get("SA"),
        ("fields", "SA.NORD"),
        ("put", "SA.NELM", "2"),
        ("put", "SA.PROC", "1"),
        *sa_get("SA"),
        ("put", "SA.INDX", "7"),
        ("put", "SA.NELM", "3"),
        ("put", "SA.PROC", "1"),
        *sa_get("SA"),
        ("fields", "SA.NORD SA.UDF"),
        ("put_array", "WF", "9 8"),
        ("put", "SA.PROC", "1"),
        *sa_get("SA SAL"),
        ("fields", "SA.NORD SA.UDF SAL.NORD"),
        ("put_array", "WFS", "a bb ccc dddd"),
        ("put", "SAS.PROC", "1"),
        *sa_get("SAS"),
        ("caget", "-# 1 -d DBR_CTRL_DOUBLE", "SA"),
        ("caget", "-d DBR_CTRL_LONG", "SA.INDX SA.NELM SA.NORD SA.BUSY"),
        ("caget", "-d DBR_GR_LONG", "SA.NELM SAL.NORD"),
    ]
    run_differential(start_ioc, start_softioc, tmp_path, SUBARRAY_DB, steps,
                     monitor="SA SA.NORD SAL")


AA_DB = r'''
record(waveform, "$(P)WF") { field(NELM, "10") field(FTVL, "DOUBLE") }
record(aai, "$(P)AAI") { field(INP, "$(P)WF") field(NELM, "5") field(FTVL, "LONG")
    field(EGU, "V") field(HOPR, "9") field(LOPR, "1") field(PREC, "3") }
record(aai, "$(P)AAIC") { field(INP, "[1.5, 2.5, 3.5]") field(NELM, "4") field(FTVL, "FLOAT") }
record(aai, "$(P)AAI1") { field(NELM, "1") field(FTVL, "DOUBLE") }
record(aai, "$(P)AAIA") { field(INP, "$(P)WF") field(NELM, "5") field(FTVL, "DOUBLE")
    field(MPST, "Always") }
record(aai, "$(P)AAIOC") { field(INP, "$(P)WF") field(NELM, "5") field(FTVL, "DOUBLE")
    field(MPST, "On Change") field(APST, "On Change") }
record(aai, "$(P)AAISIM") { field(INP, "$(P)WF") field(NELM, "3") field(FTVL, "DOUBLE")
    field(SIMM, "YES") field(SIOL, "$(P)AAIC") field(SIMS, "MINOR") }
record(aai, "$(P)AAIUC") { field(INP, "$(P)WF") field(NELM, "4") field(FTVL, "UCHAR") }
record(aao, "$(P)AAO") { field(OUT, "$(P)AAOSINK PP") field(NELM, "5") field(FTVL, "DOUBLE") }
record(waveform, "$(P)AAOSINK") { field(NELM, "8") field(FTVL, "DOUBLE") }
record(aao, "$(P)AAODOL") { field(DOL, "$(P)WF") field(OMSL, "closed_loop")
    field(OUT, "$(P)AAOSINK2 PP") field(NELM, "3") field(FTVL, "SHORT") }
record(waveform, "$(P)AAOSINK2") { field(NELM, "8") field(FTVL, "LONG") }
record(aao, "$(P)AAOC") { field(DOL, "[7, 8, 9]") field(OMSL, "closed_loop") field(NELM, "4")
    field(FTVL, "LONG") }
record(aao, "$(P)AAOK") { field(DOL, "[7, 8]") field(NELM, "4") field(FTVL, "LONG") }
record(aao, "$(P)AAOSIM") { field(NELM, "3") field(FTVL, "DOUBLE") field(SIMM, "YES")
    field(SIOL, "$(P)AAOSINK PP") field(OUT, "$(P)AAOSINK2 PP") }
'''

AA_ALL = "AAI AAIC AAI1 AAIA AAISIM AAIUC AAO AAOSINK AAODOL AAOSINK2 AAOC AAOK AAOSIM"


def test_aai_aao_match_softioc(start_ioc, start_softioc, tmp_path):
    steps = [
        ("get", AA_ALL),
        ("fields", "AAI.NORD AAIC.NORD AAIC.UDF AAI1.NORD AAO.NORD AAOC.NORD AAOC.UDF AAOK.NORD "
                   "AAI.DTYP AAO.DTYP"),
        ("put_array", "WF", "1.7 2 3 4 5 6 7"),
        ("put", "AAI.PROC", "1"),
        ("put", "AAIA.PROC", "1"),
        ("put", "AAIA.PROC", "1"),
        ("put", "AAIOC.PROC", "1"),
        ("put", "AAIOC.PROC", "1"),
        ("put", "AAI.PROC", "1"),
        ("put", "AAISIM.PROC", "1"),
        ("put", "AAIUC.PROC", "1"),
        ("put", "AAI1.PROC", "1"),
        ("get", AA_ALL),
        ("fields", "AAI.NORD AAIA.NORD AAISIM.NORD AAI1.UDF"),
        ("put_array", "AAO", "1 2 3"),
        ("get", "AAO AAOSINK"),
        ("fields", "AAO.NORD AAOSINK.NORD"),
        ("put_array", "AAO", "4 5 6 7 8 9"),
        ("get", "AAO AAOSINK"),
        ("put", "AAODOL.PROC", "1"),
        ("get", "AAODOL AAOSINK2"),
        ("fields", "AAODOL.NORD AAOSINK2.NORD"),
        ("put", "AAOC.PROC", "1"),
        ("put", "AAOK.PROC", "1"),
        ("put_array", "AAOSIM", "0.5 1.5"),
        ("get", "AAOC AAOK AAOSIM AAOSINK AAOSINK2"),
        ("put", "AAOSIM.SIMM", "NO"),
        ("put_array", "AAOSIM", "2.5"),
        ("get", "AAOSIM AAOSINK AAOSINK2"),
        ("caget", "-d DBR_CTRL_DOUBLE", "AAI AAI.NORD AAO"),
        ("caget", "-d DBR_GR_DOUBLE", "AAI.HOPR AAI.NELM"),
    ]
    run_differential(start_ioc, start_softioc, tmp_path, AA_DB, steps,
                     monitor="AAI AAIA AAIOC AAI.NORD AAO AAOSINK")


HIST_DB = r'''
record(ai, "$(P)SIG") { }
record(histogram, "$(P)H") { field(SVL, "$(P)SIG") field(NELM, "5") field(ULIM, "10")
    field(LLIM, "0") field(PREC, "3") field(HOPR, "100") }
record(histogram, "$(P)HM") { field(NELM, "4") field(ULIM, "4") field(LLIM, "0") field(MDEL, "2") }
record(histogram, "$(P)HBAD") { field(NELM, "3") field(ULIM, "1") field(LLIM, "1") }
record(histogram, "$(P)HC") { field(SVL, "2.5") field(NELM, "4") field(ULIM, "4") }
record(histogram, "$(P)HSIM") { field(NELM, "4") field(ULIM, "4") field(SIMM, "YES")
    field(SIOL, "$(P)SIG") field(SIMS, "MAJOR") }
'''

H_ALL = "H HM HBAD HC HSIM"


def test_histogram_matches_softioc(start_ioc, start_softioc, tmp_path):
    steps = [
        ("get", H_ALL),
        ("fields", "H.WDTH HM.WDTH HC.SGNL HC.UDF H.CSTA H.MCNT H.DTYP"),
        ("put", "SIG", "3"),
        ("put", "H.PROC", "1"),
        ("put", "SIG", "0"),
        ("put", "H.PROC", "1"),
        ("put", "SIG", "10"),
        ("put", "H.PROC", "1"),
        ("put", "SIG", "9.99"),
        ("put", "H.PROC", "1"),
        ("put", "SIG", "2"),
        ("put", "H.PROC", "1"),
        ("put", "HSIM.PROC", "1"),
        ("put", "HC.PROC", "1"),
        ("put", "HBAD.PROC", "1"),
        ("get", H_ALL),
        ("fields", "H.SGNL H.MCNT HSIM.SVAL HSIM.SGNL"),
        ("put", "HM.SGNL", "1.5"),
        ("put", "HM.SGNL", "3.5"),
        ("get", "HM"),
        ("put", "HM.PROC", "1"),
        ("get", "HM"),
        ("fields", "HM.MCNT"),
        ("put", "H.CMD", "Stop"),
        ("put", "H.PROC", "1"),
        ("get", "H"),
        ("fields", "H.CSTA H.CMD"),
        ("put", "H.CMD", "Start"),
        ("put", "H.PROC", "1"),
        ("get", "H"),
        ("put", "H.CMD", "Clear"),
        ("get", "H"),
        ("put", "H.PROC", "1"),
        ("get", "H"),
        ("put", "H.ULIM", "20"),
        ("fields", "H.WDTH"),
        ("get", "H"),
        ("put", "H.PROC", "1"),
        ("get", "H"),
        ("caget", "-d DBR_CTRL_DOUBLE", "H H.WDTH H.SGNL H.SDEL H.MDEL"),
        ("caget", "-d DBR_GR_LONG", "H.ULIM H.NELM"),
    ]
    run_differential(start_ioc, start_softioc, tmp_path, HIST_DB, steps, monitor="H HM HBAD")


COMPRESS_DB = r'''
record(ai, "$(P)X") { }
record(waveform, "$(P)W") { field(NELM, "6") field(FTVL, "DOUBLE") }
record(compress, "$(P)CIRC") { field(INP, "$(P)X") field(ALG, "Circular Buffer") field(NSAM, "3") }
record(compress, "$(P)LIFO") { field(INP, "$(P)X") field(ALG, "Circular Buffer") field(NSAM, "3")
    field(BALG, "LIFO Buffer") }
record(compress, "$(P)HIGH") { field(INP, "$(P)X") field(ALG, "N to 1 High Value") field(N, "2")
    field(NSAM, "4") }
record(compress, "$(P)AVGW") { field(INP, "$(P)W") field(ALG, "N to 1 Average") field(N, "2")
    field(NSAM, "4") field(EGU, "V") field(PREC, "2") field(HOPR, "8") }
record(compress, "$(P)MEDW") { field(INP, "$(P)W") field(ALG, "N to 1 Median") field(N, "3")
    field(NSAM, "4") field(PBUF, "YES") }
record(compress, "$(P)ARR") { field(INP, "$(P)W") field(ALG, "Average") field(N, "2") field(NSAM, "6") }
record(compress, "$(P)NOINP") { field(NSAM, "2") }
'''

C_ALL = "CIRC LIFO HIGH AVGW MEDW ARR NOINP"
# Without completion: a compress processing that only accumulates never calls recGblFwdLink,
# so base never completes a put-callback on it ("Write callback operation timed out").
C_PROC = [("put_nowait", f"{r}.PROC", "1") for r in ("CIRC", "LIFO", "HIGH")]
W_PROC = [("put_nowait", f"{r}.PROC", "1") for r in ("AVGW", "MEDW", "ARR")]


def test_compress_matches_softioc(start_ioc, start_softioc, tmp_path):
    steps = [
        ("get", C_ALL),
        ("put", "X", "1"), *C_PROC,
        ("put", "X", "5"), *C_PROC,
        ("get", "CIRC LIFO HIGH"),
        ("put", "X", "3"), *C_PROC,
        ("put", "X", "2"), *C_PROC,
        ("get", "CIRC LIFO HIGH"),
        ("fields", "CIRC.NUSE CIRC.OFF LIFO.OFF HIGH.INX HIGH.CVB"),
        ("put_array", "W", "1 2 3 4 5"), *W_PROC,
        ("get", "AVGW MEDW ARR"),
        ("put_array", "W", "3 0 9 4 5"), *W_PROC,
        ("get", "AVGW MEDW ARR"),
        ("fields", "AVGW.NUSE ARR.INX ARR.NUSE MEDW.NUSE"),
        ("put", "NOINP.PROC", "1"),
        ("get", "NOINP"),
        ("put", "HIGH.RES", "1"),
        ("get", "HIGH"),
        ("fields", "HIGH.NUSE"),
        ("caget", "-d DBR_CTRL_DOUBLE", "AVGW AVGW.IHIL AVGW.NUSE AVGW.CVB"),
    ]
    run_differential(start_ioc, start_softioc, tmp_path, COMPRESS_DB, steps,
                     monitor="CIRC HIGH HIGH.NUSE AVGW")
