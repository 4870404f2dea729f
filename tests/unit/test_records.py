"""Record semantics exercised in-process on a real Database (no CA): the parts the softIoc
scenario does not reach, each checked against what EPICS base's record support does."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import ioc.devsup  # noqa: F401  (registers Soft Channel)
from ioc.database.db import Database
from ioc.records.base import PutError, PutNotify
from ioc.records.constants import DBE_ALARM, DBE_LOG, DBE_VALUE, Sevr, Stat
from ioc.scan import IoScanList


def load(tmp_path, text: str, macros: str = "") -> Database:
    p = tmp_path / "t.db"
    p.write_text(text)
    db = Database()
    db.load_records(str(p), macros)
    db.ioc_init()
    return db


class Running:
    """Run a Database's loop in a thread, as the IOC does."""

    def __init__(self, db: Database):
        self.db = db
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        db.loop_thread = self.thread
        self.thread.start()
        asyncio.run_coroutine_threadsafe(db.start(), self.loop).result(5)

    def call(self, fn):
        return self.db.run_sync(fn)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.db.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def running():
    items = []

    def make(db):
        r = Running(db)
        items.append(r)
        return r
    yield make
    for r in items:
        r.close()


def test_posts_follow_mdel_adel_and_alarm_masks(tmp_path):
    """recGblCheckDeadband + recGblResetAlarms: exact masks posted on VAL for each put."""
    db = load(tmp_path, 'record(ai, "A") { field(MDEL, "1") field(ADEL, "3") '
                        'field(HIGH, "5") field(HSV, "MINOR") }\n')
    rec = db.lookup("A")
    posts = []
    rec.listeners["VAL"] = [lambda m: posts.append((rec.f["VAL"], m))]
    for v in (0.5, 1.2, 2.4, 3.9, 5.1, 5.3, 4.0):
        rec.put_and_process("VAL", v)
    assert posts == [
        (0.5, DBE_ALARM),                      # UDF alarm cleared; change within MDEL
        (1.2, DBE_VALUE),
        (2.4, DBE_VALUE),
        (3.9, DBE_VALUE | DBE_LOG),            # 3.9 - 0 > ADEL
        (5.1, DBE_VALUE | DBE_ALARM),          # HIGH MINOR
        (4.0, DBE_VALUE | DBE_ALARM),          # 5.3 posted nothing; 4.0 clears the alarm
    ]
    assert rec.f["SEVR"] == Sevr.NO_ALARM


def test_calc_expression_error_at_put_is_refused(tmp_path):
    """As base (calcRecord special): the put fails but the text stays, and processing raises
    CALC/INVALID until a valid expression is put."""
    db = load(tmp_path, 'record(calc, "C") { field(CALC, "A+1") }\n')
    rec = db.lookup("C")
    with pytest.raises(PutError):
        rec.put_field("CALC", "A+*")
    assert rec.f["CALC"] == "A+*"
    rec.put_and_process("A", 4)
    assert (rec.f["STAT"], rec.f["SEVR"]) == (Stat.CALC, Sevr.INVALID)
    rec.put_field("CALC", "A+1")
    rec.put_and_process("A", 4)
    assert rec.f["VAL"] == 5 and rec.f["SEVR"] == Sevr.NO_ALARM


def test_readonly_and_disp_fields(tmp_path):
    db = load(tmp_path, 'record(ao, "O") { field(DISP, "1") }\n')
    rec = db.lookup("O")
    with pytest.raises(PutError, match="read-only"):
        rec.put_field("STAT", 1)
    with pytest.raises(PutError, match="DISP"):
        rec.put_field("VAL", 1)
    rec.put_field("DISP", 0)
    rec.put_and_process("VAL", 2)
    assert rec.f["VAL"] == 2


def test_mbbo_raw_values_and_unknown_state(tmp_path):
    db = load(tmp_path, 'record(mbbo, "M") { field(ZRVL, "10") field(ONVL, "20") '
                        'field(ZRST, "a") field(ONST, "b") field(SHFT, "1") }\n')
    rec = db.lookup("M")
    rec.put_and_process("VAL", 1)
    assert rec.f["RVAL"] == 40
    rec.put_and_process("VAL", 20)
    assert (rec.f["STAT"], rec.f["SEVR"]) == (Stat.SOFT, Sevr.INVALID)


def test_waveform_put_sets_nord_and_char_strings(tmp_path):
    db = load(tmp_path, 'record(waveform, "W") { field(FTVL, "CHAR") field(NELM, "20") }\n')
    rec = db.lookup("W")
    rec.put_and_process("VAL", "hello")
    assert rec.f["NORD"] == 6 and bytes(rec.array()[:5]) == b"hello"


def test_event_scan_and_phas_order(tmp_path, running):
    db = load(tmp_path, """
        record(calc, "E2") { field(SCAN, "Event") field(EVNT, "7") field(PHAS, "2")
                             field(INPA, "E1") field(CALC, "A*10") }
        record(calc, "E1") { field(SCAN, "Event") field(EVNT, "7") field(PHAS, "1")
                             field(INPA, "E1") field(CALC, "A+1") }
        """)
    r = running(db)
    assert r.call(lambda: db.scanner.post_event("7")) == 2
    assert db.lookup("E1").f["VAL"] == 1 and db.lookup("E2").f["VAL"] == 10


def test_io_intr_from_another_thread(tmp_path, running):
    from ioc.devsup.registry import DeviceSupport, register
    from ioc.records.constants import NO_CONVERT
    ioscan = IoScanList("test")

    class Counter(DeviceSupport):
        n = 0

        def get_ioint_info(self):
            return ioscan

        def read(self):
            Counter.n += 1
            self.record.f["VAL"] = float(Counter.n)
            return NO_CONVERT

    register("ai", "Test Counter", Counter)
    db = load(tmp_path, 'record(ai, "I") { field(DTYP, "Test Counter") field(SCAN, "I/O Intr") }\n')
    r = running(db)
    threads = [threading.Thread(target=ioscan.request) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 5
    while db.lookup("I").f["VAL"] < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.call(lambda: db.lookup("I").f["VAL"]) == 5.0


def test_async_record_with_rpro_and_notify(tmp_path, running):
    db = load(tmp_path, 'record(calcout, "D") { field(ODLY, "0.2") field(INPA, "D") '
                        'field(CALC, "A+1") }\n')
    r = running(db)
    rec = db.lookup("D")

    def start():
        n = PutNotify(db.loop)
        rec.put_and_process("PROC", 1, n)
        n.check()
        return n
    n = r.call(start)
    assert rec.f["PACT"] == 1 and not n.future.done()
    r.call(lambda: rec.put_and_process("PROC", 1))      # while busy: RPRO
    assert rec.f["RPRO"] == 1
    deadline = time.monotonic() + 5
    while rec.f["VAL"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert n.future.done() and rec.f["VAL"] == 2


def test_pini_and_cp_initial_processing(tmp_path, running):
    db = load(tmp_path, """
        record(ao, "S") { field(VAL, "3") field(PINI, "YES") }
        record(calc, "F") { field(INPA, "S CP") field(CALC, "A*2") }
        """)
    running(db)
    deadline = time.monotonic() + 5
    while db.lookup("F").f["VAL"] != 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.lookup("F").f["VAL"] == 6


def test_loading_is_atomic(tmp_path):
    good = tmp_path / "good.db"
    good.write_text('record(ai, "G") {}\n')
    bad = tmp_path / "bad.db"
    bad.write_text('record(ai, "N1") {}\nrecord(ai, "G") { field(PREC, "x") }\n')
    db = Database()
    db.load_records(str(good))
    with pytest.raises(Exception, match="bad.db:2"):
        db.load_records(str(bad))
    assert db.lookup("N1") is None and db.lookup("G").f["PREC"] == 0


def test_timestamp_from_time_source_by_tse(tmp_path):
    class Fixed:
        def get_current(self):
            return (1000, 5)

        def get_event(self, n):
            return {0: (1000, 5), 3: (2000, 7)}.get(n)

    db = load(tmp_path, 'record(ai, "T0") {}\nrecord(ai, "T3") { field(TSE, "3") }\n'
                        'record(ai, "T9") { field(TSE, "9") }\n')
    db.time_source = Fixed()
    for name in ("T0", "T3", "T9"):
        db.lookup(name).db_process()
    assert db.lookup("T0").time == (1000, 5)
    assert db.lookup("T3").time == (2000, 7)
    assert db.lookup("T9").time == (0, 0)         # unknown event: TIME kept


def test_two_put_callbacks_on_a_busy_record_both_complete(tmp_path, running):
    """A second caput -c while the record is active (PACT) must not orphan the first."""
    db = load(tmp_path, 'record(calcout, "D") { field(ODLY, "0.2") field(INPA, "D") '
                        'field(CALC, "A+1") }\n')
    r = running(db)
    rec = db.lookup("D")

    def put():
        n = PutNotify(db.loop)
        rec.put_and_process("PROC", 1, n)
        n.check()
        return n
    first = r.call(put)
    second = r.call(put)
    assert not first.future.done() and not second.future.done()
    deadline = time.monotonic() + 5
    while not (first.future.done() and second.future.done()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.future.done() and second.future.done()
