"""Record metadata (units, precision, display/control/alarm limits) against EPICS base's softIoc.

Both servers load tests/data/metadata.db (P=MD:); every field listed in FIELDS is read as each
DBR_CTRL_*/DBR_GR_* type of READ_TYPES (one circuit per record and type), and the metadata part
of each reply (status, severity, precision, units and the limits, in db_access.h order) must be
the same on both.
The fields cover, for every record type, VAL and fields of each kind (double, long/short,
menu, string, device) plus those base's rset functions treat specially: ai ASLO/AOFF/SMOO
(no units), ao OVAL/PVAL/IVOV (precision, drive limits), longout DRVH/DRVL with and without
drive limits, bo HIGH, calcout ODLY, waveform NORD/BUSY, PREC out of 0..15, and calc/calcout
inputs A..L/LA..LL, which show the metadata of what their input links read.

Only the metadata is compared here: values and conversions are covered by test_ca_hostile.py.
A read that fails on one server and not on the other fails too.

``MD_ORACLE_OURS=dir`` runs ours as ``python -m ioc`` from that source tree instead of the
installed ``psu-timing-ioc`` (e.g. an exported commit).
"""
from __future__ import annotations

import math
import os
import struct
import sys
from pathlib import Path

import pytest

from .. import ca_raw as ca
from ..conftest import ROOT, IocProcess, epics_bin

pytestmark = pytest.mark.oracle

DB = str(ROOT / "tests" / "data" / "metadata.db")
P = "MD:"
HOST = "127.0.0.1"

_COMMON = ["DESC", "SCAN", "PHAS", "UDF", "SDLY", "DTYP", "TSE", "UTAG"]
FIELDS: dict[str, list[str]] = {
    "AI": ["VAL", "HIHI", "LOLO", "LALM", "SVAL", "HOPR", "HYST", "ADEL", "EGUF", "ESLO", "ASLO",
           "AOFF", "SMOO", "AFTC", "RVAL", "ROFF", "PREC", "HHSV", "LINR", "EGU", "INP"]
          + _COMMON,
    "AIP": ["VAL", "HIGH", "HOPR", "SMOO", "SDLY", "RVAL"],
    "AO": ["VAL", "OVAL", "PVAL", "IVOV", "DRVH", "DRVL", "OROC", "HIHI", "MLST", "HOPR", "ASLO",
           "AOFF", "EOFF", "RVAL", "RBV", "PREC", "OMSL", "IVOA", "EGU"] + _COMMON,
    "BI": ["VAL", "RVAL", "MASK", "ZSV", "COSV", "ZNAM", "MLST", "SVAL"] + _COMMON,
    "BO": ["VAL", "HIGH", "RVAL", "RBV", "MASK", "OMSL", "ZSV", "ONAM", "IVOV"] + _COMMON,
    "MBBI": ["VAL", "RVAL", "ZRVL", "SHFT", "NOBT", "ZRSV", "UNSV", "ZRST", "AFTC", "MLST"]
            + _COMMON,
    "MBBO": ["VAL", "RVAL", "ONVL", "RBV", "SHFT", "ZRSV", "OMSL", "ONST", "IVOV"] + _COMMON,
    "LI": ["VAL", "HIHI", "HIGH", "LOW", "HYST", "ADEL", "MDEL", "LALM", "SVAL", "HOPR",
           "AFTC", "AFVL", "HSV", "EGU"] + _COMMON,
    "LO": ["VAL", "DRVH", "DRVL", "HIHI", "LALM", "PVAL", "IVOV", "HOPR", "MDEL", "HYST", "OMSL",
           "IVOA", "EGU"] + _COMMON,
    "LO0": ["VAL", "HIHI", "DRVH", "LOLO"],
    "SI": ["VAL", "OVAL", "MPST"] + _COMMON,
    "SO": ["VAL", "IVOV", "OMSL"] + _COMMON,
    "WFD": ["VAL", "HOPR", "LOPR", "NORD", "NELM", "BUSY", "PREC", "FTVL", "EGU", "HASH"]
           + _COMMON,
    "WFF": ["VAL", "HOPR", "NORD", "SDLY"],
    "WFL": ["VAL", "HOPR", "NORD", "SDLY"],
    "WFS": ["VAL", "HOPR", "NORD"],
    "CALC": ["VAL", "A", "B", "C", "D", "E", "F", "G", "LA", "LB", "LC", "LD", "LE", "HIHI",
             "HIGH", "LALM", "MLST", "HOPR", "HYST", "ADEL", "AFTC", "PREC", "HSV", "CALC",
             "INPA"] + _COMMON,
    "CO": ["VAL", "A", "B", "C", "LA", "LB", "OVAL", "PVAL", "POVL", "ODLY", "IVOV", "HOPR",
           "LOW", "CLCV", "OCLV", "OOPT", "DOPT", "OCAL", "EGU"] + _COMMON,
}
# (DBR type, struct of its metadata part, names of the struct's members; "pad" is not compared)
_LIMITS = ["upper_disp", "lower_disp", "upper_alarm", "upper_warning", "lower_warning",
           "lower_alarm"]
_CTRL = _LIMITS + ["upper_ctrl", "lower_ctrl"]
READ_TYPES = {
    34: (">hhhh8s8d", ["status", "severity", "precision", "pad", "units"] + _CTRL),  # CTRL_DOUBLE
    33: (">hh8s8i", ["status", "severity", "units"] + _CTRL),                        # CTRL_LONG
    30: (">hhhh8s8f", ["status", "severity", "precision", "pad", "units"] + _CTRL),  # CTRL_FLOAT
    29: (">hh8s8h", ["status", "severity", "units"] + _CTRL),                        # CTRL_SHORT
    32: (">hh8s8Bx", ["status", "severity", "units"] + _CTRL + ["pad"]),             # CTRL_CHAR
    23: (">hhhh8s6f", ["status", "severity", "precision", "pad", "units"] + _LIMITS),  # GR_FLOAT
}
# Waveform contents written on both servers before reading (pp: each is processed once).
SETUP = [("WFD", 6, [1.5, -2.0, 3.25]), ("WFF", 6, [0.5, 2.0]), ("WFL", 5, [7, -7]),
         ("WFS", 0, ["15", "2"])]


def _decode(dtype: int, payload: bytes) -> dict:
    fmt, names = READ_TYPES[dtype]
    values = struct.unpack_from(fmt, payload.ljust(struct.calcsize(fmt), b"\0"))
    out = {}
    for name, v in zip(names, values):
        if name == "pad":
            continue
        if isinstance(v, bytes):
            v = v.split(b"\0", 1)[0].decode("latin-1")
        elif isinstance(v, float):
            v = "nan" if math.isnan(v) else v       # NaN == NaN for the comparison
        out[name] = v
    return out


def _read(port: int, names: list[str], dtype: int) -> tuple[dict, bool]:
    """Read each of ``names`` as ``dtype`` on a fresh circuit: ({name: decoded metadata, or
    ("fail", ECA code) / ("nochannel",) / ("noreply",)}, whether the circuit answered all)."""
    out: dict = {}
    with ca.RawCircuit(HOST, port) as c:
        chans = {}
        for name in names:
            ch = c.create(P + name)
            if isinstance(ch, ca.Created):
                chans[name] = ch
            else:
                out[name] = ("nochannel",)
        # (create() reads what arrives meanwhile: the reads go out after the last create)
        reqs: dict[int, str] = {}
        for name, ch in chans.items():
            ioid = c.new_ioid()
            reqs[ioid] = name
            c.send(ca.read_notify(ch.sid, ioid, dtype, 1))
        msgs, ok = c.barrier(timeout_s=5.0)
        for m in msgs:
            if m.command == ca.READ_NOTIFY and m.p2 in reqs:
                name = reqs.pop(m.p2)
                out[name] = _decode(dtype, m.payload) if m.p1 == 1 else \
                    ("fail", ca.ECA.get(m.p1, m.p1))
            elif m.command == ca.ERROR:
                hdr = ca.HDR.unpack_from(m.payload.ljust(ca.HDR.size, b"\0"))
                if hdr[5] in reqs:
                    out[reqs.pop(hdr[5])] = ("fail", ca.ECA.get(m.p2, m.p2))
        for name in reqs.values():
            out[name] = ("noreply",)
    return out, ok


def _read_all(port: int) -> dict:
    """{(field, dbr type): what _read got}, one circuit per record and type; where a circuit
    failed (the server closed it), each of its fields again on a circuit of its own."""
    with ca.RawCircuit(HOST, port) as c:
        for pv, dtype, values in SETUP:
            ch = c.create(P + pv)
            assert isinstance(ch, ca.Created), (pv, ch)
            payload = ca.encode_values(dtype, values)
            c.send(ca.write_notify(ch.sid, c.new_ioid(), dtype, len(values), payload))
        assert c.barrier()[1], "no ECHO reply after the waveform writes"
    out: dict = {}
    for rec, fields in FIELDS.items():
        names = [f"{rec}.{fld}" for fld in fields]
        for dtype in READ_TYPES:
            got, ok = _read(port, names, dtype)
            if not ok:
                got = {}
                for name in names:
                    one, ok = _read(port, [name], dtype)
                    got[name] = one[name] if ok else ("circuit closed",)
            out.update({(name, dtype): v for name, v in got.items()})
    return out


def _start(pool, softioc: bool) -> IocProcess:
    env, cwd, ours = {}, ROOT, os.environ.get("MD_ORACLE_OURS", "")
    if softioc:
        exe = [str(epics_bin() / "softIoc")]
    elif ours:
        exe, cwd, env["PYTHONPATH"] = [sys.executable, "-m", "ioc"], Path(ours), ours
    else:
        exe = ["psu-timing-ioc"]
    return IocProcess(exe + ["-S", "-m", "P=" + P, "-d", DB], pool, cwd, P + "AI",
                      extra_env=env)


@pytest.fixture(scope="module")
def readings(ca_ports):
    got = {}
    for name, softioc in (("softIoc", True), ("ours", False)):
        p = _start(ca_ports, softioc)
        try:
            got[name] = _read_all(p.port)
        finally:
            p.stop()
    return got


@pytest.mark.parametrize("rec", list(FIELDS))
def test_metadata_like_softioc(readings, rec):
    base, ours = readings["softIoc"], readings["ours"]
    diffs = []
    for fld in FIELDS[rec]:
        for dtype in READ_TYPES:
            key = (f"{rec}.{fld}", dtype)
            a, b = base[key], ours[key]
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                detail = ", ".join(f"{k}: softIoc {a[k]!r} ours {b[k]!r}"
                                   for k in a if a[k] != b[k])
            else:
                detail = f"softIoc {a!r} ours {b!r}"
            diffs.append(f"{rec}.{fld} as {ca.DBR_NAMES[dtype]}: {detail}")
    assert not diffs, f"{len(diffs)} differences:\n" + "\n".join(diffs)
