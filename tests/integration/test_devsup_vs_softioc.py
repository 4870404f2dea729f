"""The soft device supports of devSoft.dbd added last -- stringin "getenv", stringout "stdio",
bi/bo "Db State", ai/stringin "Soft Timestamp", "Async Soft Channel" inputs -- against
softIoc: the same database, the same caputs, identical caget output (times: format and
closeness only), and identical DTYP menus."""
from __future__ import annotations

import re
import time

from ..conftest import caget, caput, wait_for
from ..differential import run_differential

POSIX_AT_EPICS_EPOCH = 631152000

DB = """
record(calc, "$(P)CNT") { field(CALC, "VAL+1") }
record(ao, "$(P)SRC") { field(VAL, "3.5") field(PREC, "2") }
record(mbbo, "$(P)MSRC") { field(VAL, "2") field(ZRST, "a") field(ONST, "b") field(TWST, "c") }
record(ai, "$(P)ADB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)CNT NPP") }
record(ai, "$(P)ACA") { field(DTYP, "Async Soft Channel") field(INP, "$(P)SRC CA") }
record(ai, "$(P)ACONST") { field(DTYP, "Async Soft Channel") field(INP, "7.25") }
record(longin, "$(P)LDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)CNT") }
record(bi, "$(P)BDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)CNT") }
record(mbbi, "$(P)MDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)MSRC") }
record(stringin, "$(P)SDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)MSRC") }
record(int64in, "$(P)IDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)CNT") }
record(mbbiDirect, "$(P)XDB") { field(DTYP, "Async Soft Channel") field(INP, "$(P)CNT") }
record(stringin, "$(P)ENV") { field(DTYP, "getenv") field(INP, "@DEVSUP_TEST_VAR") }
record(stringin, "$(P)NOENV") { field(DTYP, "getenv") field(INP, "@DEVSUP_TEST_UNSET") }
record(stringout, "$(P)SO") { field(DTYP, "stdio") field(OUT, "@stdout") }
record(bo, "$(P)BO") { field(DTYP, "Db State") field(OUT, "@devsup_red") }
record(bi, "$(P)BI") { field(DTYP, "Db State") field(INP, "@devsup_red") }
record(ai, "$(P)TS") { field(DTYP, "Soft Timestamp") field(INP, "@") }
record(stringin, "$(P)STS") { field(DTYP, "Soft Timestamp") field(INP, "@%Y-%m-%d %H:%M:%S.%06f") }
record(stringin, "$(P)LONG") { field(DTYP, "Soft Timestamp")
    field(INP, "@%Y-%m-%d %H:%M:%S %Y-%m-%d %H:%M:%S %Y") }
record(stringin, "$(P)LIT39") { field(DTYP, "Soft Timestamp")
    field(INP, "@abcdefghijklmnopqrstuvwxyz0123456789ABC") }
record(stringin, "$(P)STARS") { field(DTYP, "Soft Timestamp")
    field(INP, "@abcdefghijklmnopqrstuvwxyz0123456.%06f") }
record(stringin, "$(P)FRAC") { field(DTYP, "Soft Timestamp") field(INP, "@%H:%M:%S.%f|%3f|%09f|%0f|%1f") }
"""
_ENV = {"DEVSUP_TEST_VAR": "hello env"}
_PROCS = "ADB ACA ACONST LDB BDB MDB SDB IDB XDB ENV NOENV"


def test_soft_supports_match_softioc(start_ioc, start_softioc, tmp_path, monkeypatch):
    for k, v in _ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DEVSUP_TEST_UNSET", raising=False)
    steps = [("get", _PROCS + " BI"),
             ("fields", " ".join(f"{r}.UDF" for r in _PROCS.split()))]
    for _ in range(2):
        steps += [("put", f"{r}.PROC", "1") for r in _PROCS.split()]
    steps += [("get", _PROCS + " CNT"),
              ("put", "SRC", "4.75"), ("put", "MSRC", "1"),
              ("put", "ACA.PROC", "1"), ("put", "SDB.PROC", "1"), ("put", "MDB.PROC", "1"),
              ("get", "ACA SDB MDB CNT"),
              ("put", "BO", "1"), ("put", "BI.PROC", "1"), ("get", "BI"),
              ("put", "BO", "0"), ("put", "BI.PROC", "1"), ("get", "BI"),
              ("put", "SO", "printed line"), ("get", "SO"),
              ("put", "LONG.PROC", "1"), ("put", "LIT39.PROC", "1"), ("put", "STARS.PROC", "1"),
              ("get", "LONG LIT39 STARS"), ("fields", "LONG.UDF LIT39.UDF"),
              ("fields", "ADB.DTYP BI.DTYP BO.DTYP ENV.DTYP SO.DTYP LDB.DTYP MDB.DTYP "
               "IDB.DTYP XDB.DTYP STS.DTYP TS.DTYP")]
    run_differential(start_ioc, start_softioc, tmp_path, DB, steps, monitor="ADB CNT")


_MENU_PVS = "ADB BI BO ENV SO LDB MDB IDB XDB"


def _menus(port: int, prefix: str) -> dict[str, list[str]]:
    """REC -> its DTYP menu (caget -d DBR_CTRL_ENUM REC.DTYP)."""
    out = caget("-d", "DBR_CTRL_ENUM", *(prefix + r + ".DTYP" for r in _MENU_PVS.split()),
                port=port)
    menus: dict[str, list[str]] = {}
    cur: list[str] = []
    for line in out.splitlines():
        line = line.strip()
        if line.endswith(".DTYP"):
            cur = menus.setdefault(line[len(prefix):-5], [])
        m = re.match(r"\[\s*\d+\] (.*)", line)
        if m:
            cur.append(m.group(1))
    return menus


def test_dtyp_menus_start_as_softiocs(start_ioc, start_softioc, tmp_path, monkeypatch):
    """Every base DTYP has base's choice index; ours adds its own DTYPs after base's."""
    db = tmp_path / "menus.db"
    db.write_text(DB)
    got = {}
    for start, prefix in ((start_ioc, "OURS:"), (start_softioc, "BASE:")):
        p = start("-S", "-m", f"P={prefix}", "-d", str(db), ready_pv=prefix + "ADB")
        got[prefix] = _menus(p.port, prefix)
    assert len(got["BASE:"]) == len(_MENU_PVS.split())
    for rec, menu in got["BASE:"].items():
        assert got["OURS:"][rec][:len(menu)] == menu, rec


def _check_stamps(port: int, prefix: str) -> None:
    caput(prefix + "TS.PROC", "1", port=port)
    caput(prefix + "STS.PROC", "1", port=port)
    ts = float(caget("-t", "-f6", prefix + "TS", port=port).strip())
    assert abs(ts + POSIX_AT_EPICS_EPOCH - time.time()) < 5
    text = caget("-t", prefix + "STS", port=port).strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", text), text
    stamp = time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S"))
    assert abs(stamp - time.time()) < 5
    caput(prefix + "FRAC.PROC", "1", port=port)
    frac = caget("-t", prefix + "FRAC", port=port).strip()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{9}\|\d{3}\|\d{9}\|%0f\|\d", frac), frac


def test_soft_timestamp_formats(start_ioc, start_softioc, tmp_path):
    db = tmp_path / "ts.db"
    db.write_text(DB)
    for start, prefix in ((start_ioc, "OURS:"), (start_softioc, "BASE:")):
        p = start("-S", "-m", f"P={prefix}", "-d", str(db), ready_pv=prefix + "TS",
                  extra_env=_ENV)
        _check_stamps(p.port, prefix)


def test_async_input_to_another_ioc_is_refused(start_ioc, start_softioc, tmp_path):
    """Base's devXxSoftCallback opens a dbChannel on the INP name: a PV of another IOC is
    "link target not found" at init, the IOC starts, and processing the record reads nothing
    (softIoc 7.0.8: VAL 0, no alarm; it then asserts and hangs at exit, so only ours is run
    here, against a softIoc serving the PV)."""
    other = tmp_path / "other.db"
    other.write_text('record(ao, "OTHER:X") { field(VAL, "9") }\n')
    start_softioc("-S", "-d", str(other), ready_pv="OTHER:X")
    db = tmp_path / "a.db"
    db.write_text('record(ai, "A:REM") { field(DTYP, "Async Soft Channel") '
                  'field(INP, "OTHER:X CA") }\nrecord(ai, "A:OK") {}\n')
    p = start_ioc("-S", "-d", str(db), ready_pv="A:OK")
    wait_for(lambda: "link target not found" in p.output(), 10, what="the refusal")
    assert "A:REM" in p.output()
    caput("A:REM.PROC", "1", port=p.port)
    assert caget("-t", "A:REM", "A:REM.STAT", "A:REM.SEVR", port=p.port).split() == [
        "0", "NO_ALARM", "NO_ALARM"]
