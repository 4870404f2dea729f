"""The generalTime registry against EPICS base 7.0's rules, one by one
(../shared/reference/generaltime.md sections 1.2-1.6; "checked" items were run on libCom 7.0.10).

Also: record time stamps through a real Database (TSE 0 / -1 / -2 / > 0) and the "General Time"
device support, in-process.
"""
from __future__ import annotations

import threading
import time

import pytest

from ioc.devsup import lookup as devsup_lookup     # registers Soft Channel
from timing.devsup import NO_WORKING_PROVIDERS    # registers General Time
from ioc.database.db import Database
from ioc.records.constants import Sevr, Stat
from timing import general_time
from timing.providers import os_clock
from timing.registry import (LAST_RESORT_PRIORITY, NUM_TIME_EVENTS, GeneralTime,
                             format_stamp)


class Clock:
    """A scripted provider: ``stamp`` (None = fail), counts its calls."""

    def __init__(self, stamp=(1000, 0)):
        self.stamp = stamp
        self.calls = 0
        self.events: dict[int, tuple[int, int] | None] = {}

    def current(self):
        self.calls += 1
        return self.stamp

    def event(self, n):
        self.calls += 1
        return self.events.get(n, self.stamp)


def reg_with(*specs) -> tuple[GeneralTime, dict[str, Clock]]:
    """GeneralTime with current providers (name, priority, stamp) registered in this order."""
    gt = GeneralTime()
    clocks = {}
    for name, prio, stamp in specs:
        c = clocks[name] = Clock(stamp)
        gt.register_current_provider(name, prio, c.current)
    return gt, clocks


# ------------------------------------------------------------------ registration
def test_lower_number_first_and_equal_priorities_fifo():
    # Checked on 7.0.10: EventTime@70, Second70@70, Fifty@50 list as Fifty, EventTime, Second70.
    gt, _ = reg_with(("EventTime", 70, (1, 0)), ("Second70", 70, (1, 0)), ("Fifty", 50, (1, 0)),
                     ("OS Clock", 999, (1, 0)))
    assert [p.name for p in gt.current_providers()] == ["Fifty", "EventTime", "Second70",
                                                        "OS Clock"]
    assert gt.highest_current_name() == "Fifty"


def test_registration_needs_name_and_function_and_allows_duplicates():
    gt = GeneralTime()
    with pytest.raises(ValueError):
        gt.register_current_provider("", 10, lambda: (1, 0))
    with pytest.raises(ValueError):
        gt.register_event_provider("X", 10, None)
    gt.register_current_provider("X", 10, lambda: (1, 0))
    gt.register_current_provider("X", 10, lambda: (2, 0))     # no duplicate check in EPICS
    assert len(gt.current_providers()) == 2


def test_empty_registry():
    gt = GeneralTime()
    assert gt.get_current() is None
    assert gt.get_event(-1) is None and gt.get_event(5) is None
    assert gt.highest_current_name() is None
    assert gt.current_provider_name() is None and gt.event_provider_name() is None
    assert gt.get_except_priority(0) is None


# -------------------------------------------------------------------- current time
def test_first_answering_provider_wins_and_failures_fall_through():
    gt, c = reg_with(("Fifty", 50, None), ("Seventy", 70, (2000, 5)), ("OS Clock", 999, (1, 0)))
    assert gt.get_current() == (2000, 5)
    assert gt.current_provider_name() == "Seventy"
    assert c["OS Clock"].calls == 0                    # not asked once a provider answered
    c["Fifty"].stamp = (2001, 0)
    assert gt.get_current() == (2001, 0) and gt.current_provider_name() == "Fifty"
    c["Fifty"].stamp = None
    c["Seventy"].stamp = None
    assert gt.get_current() == (2001, 0)               # OS clock (1, 0) is behind: ratchet
    assert gt.current_provider_name() == "Fifty"       # not updated by a ratcheted answer


def test_total_failure_clears_the_last_provider():
    gt, c = reg_with(("A", 50, (10, 0)))
    assert gt.get_current() == (10, 0) and gt.current_provider_name() == "A"
    c["A"].stamp = None
    assert gt.get_current() is None
    assert gt.current_provider_name() is None
    assert gt.highest_current_name() == "A"            # still registered


def test_ratchet_backwards_time_gives_the_last_stamp_and_counts():
    # Checked on 7.0.10: a provider 10 s backwards gave the identical previous stamp, errs=1.
    gt, c = reg_with(("P", 70, (5000, 123_456_789)))
    assert gt.get_current() == (5000, 123_456_789)
    c["P"].stamp = (4990, 999_999_999)
    assert gt.get_current() == (5000, 123_456_789)
    assert gt.error_count() == 1
    assert gt.get_current() == (5000, 123_456_789)
    assert gt.error_count() == 2
    c["P"].stamp = (5000, 123_456_790)
    assert gt.get_current() == (5000, 123_456_790)     # nanoseconds survive
    assert gt.error_count() == 2


def test_equal_time_is_not_an_error():
    gt, _ = reg_with(("P", 70, (7, 7)))
    gt.get_current()
    gt.get_current()
    assert gt.error_count() == 0


def test_no_os_clock_short_circuit():
    """7.0's short circuit bypasses the ratchet and leaves the name NULL ("No working
    providers"); here the OS clock alone is a normal provider."""
    gt = GeneralTime()
    gt.register_current_provider("OS Clock", 999, os_clock.get_current)
    assert gt.current_provider_name() is None          # nothing asked yet
    t = gt.get_current()
    assert gt.current_provider_name() == "OS Clock"
    assert abs(t[0] + 631152000 - time.time()) < 5


def test_provider_exception_is_a_failure_logged_once(caplog):
    gt = GeneralTime()

    def broken():
        raise RuntimeError("boom")
    gt.register_current_provider("Broken", 10, broken)
    gt.register_current_provider("OK", 20, lambda: (3, 0))
    with caplog.at_level("ERROR"):
        assert gt.get_current() == (3, 0)
        assert gt.get_current() == (3, 0)
    assert sum("Broken" in r.getMessage() for r in caplog.records) == 1
    assert gt.current_provider_name() == "OK"


# ------------------------------------------------------------------ except priority
def test_get_except_priority_skips_only_that_priority():
    gt, _ = reg_with(("Fifty", 50, (100, 0)), ("Seventy", 70, (90, 0)), ("OS", 999, (80, 0)))
    assert gt.get_except_priority(50) == ((90, 0), 70)
    assert gt.get_except_priority(0) == ((100, 0), 50)
    assert gt.get_except_priority(70) == ((100, 0), 50)
    assert gt.get_except_priority(-999) == ((80, 0), 999)    # negative: only that priority
    assert gt.get_except_priority(-60) is None


def test_get_except_priority_has_no_ratchet_no_count_no_name():
    # Checked on 7.0.10: ignore=50 returned the priority-70 time 10 s behind.
    gt, c = reg_with(("Fifty", 50, (1000, 0)), ("Seventy", 70, (990, 0)))
    assert gt.get_current() == (1000, 0)
    assert gt.get_except_priority(50) == ((990, 0), 70)
    assert gt.error_count() == 0
    assert gt.current_provider_name() == "Fifty"
    c["Seventy"].stamp = None
    assert gt.get_except_priority(50) is None
    assert gt.current_provider_name() == "Fifty"           # untouched by a failure either


# ---------------------------------------------------------------------- event time
def test_event_zero_is_current_time_not_event_providers():
    gt, c = reg_with(("Cur", 50, (10, 0)))
    ev = Clock((99, 0))
    gt.register_event_provider("Evt", 50, ev.event)
    assert gt.get_event(0) == (10, 0)
    assert ev.calls == 0
    assert gt.current_provider_name() == "Cur" and gt.event_provider_name() is None


def test_event_numbers_below_minus_one_are_errors():
    gt = GeneralTime()
    ev = Clock((99, 0))
    gt.register_event_provider("Evt", 50, ev.event)
    assert gt.get_event(-2) is None and gt.get_event(-100) is None
    assert ev.calls == 0 and gt.event_provider_name() is None


def test_event_providers_in_priority_order_and_total_failure():
    gt = GeneralTime()
    a, b = Clock(None), Clock((50, 0))
    gt.register_event_provider("B", 80, b.event)
    gt.register_event_provider("A", 40, a.event)
    assert gt.get_event(5) == (50, 0) and gt.event_provider_name() == "B"
    a.stamp = (60, 0)
    assert gt.get_event(5) == (60, 0) and gt.event_provider_name() == "A"
    a.stamp = b.stamp = None
    assert gt.get_event(5) is None and gt.event_provider_name() is None


def test_best_time_is_ratcheted_on_its_own():
    gt = GeneralTime()
    ev = Clock((100, 0))
    gt.register_event_provider("Evt", 70, ev.event)
    assert gt.get_event(-1) == (100, 0)
    ev.stamp = (90, 0)
    assert gt.get_event(-1) == (100, 0)
    assert gt.error_count() == 1
    assert gt.event_provider_name() == "Evt"       # set before the ratchet, as in EPICS


def test_events_1_to_255_are_ratcheted_per_event_equal_allowed():
    gt = GeneralTime()
    ev = Clock()
    gt.register_event_provider("Evt", 70, ev.event)
    ev.events = {5: (100, 10), 6: (50, 0)}
    assert gt.get_event(5) == (100, 10)
    assert gt.get_event(5) == (100, 10)            # checked: two reads of event 5, no error
    assert gt.get_event(6) == (50, 0)              # event 6 has its own last time
    assert gt.error_count() == 0
    ev.events[5] = (99, 0)
    assert gt.get_event(5) == (100, 10)
    assert gt.error_count() == 1
    ev.events[255] = (10, 0)
    assert gt.get_event(255) == (10, 0)
    ev.events[255] = (9, 0)
    assert gt.get_event(255) == (10, 0)
    assert gt.error_count() == 2


def test_events_from_256_are_not_checked():
    gt = GeneralTime()
    ev = Clock()
    gt.register_event_provider("Evt", 70, ev.event)
    ev.events = {NUM_TIME_EVENTS: (100, 0), 1000: (100, 0)}
    assert gt.get_event(256) == (100, 0)
    ev.events = {NUM_TIME_EVENTS: (1, 0), 1000: (2, 0)}
    assert gt.get_event(256) == (1, 0)
    assert gt.get_event(1000) == (2, 0)
    assert gt.error_count() == 0


def test_one_error_counter_for_current_best_and_events_and_reset():
    gt, c = reg_with(("P", 70, (100, 0)))
    ev = Clock((100, 0))
    gt.register_event_provider("Evt", 70, ev.event)
    gt.get_current(), gt.get_event(-1), gt.get_event(3)
    c["P"].stamp = ev.stamp = (1, 0)
    gt.get_current(), gt.get_event(-1), gt.get_event(3)
    assert gt.error_count() == 3
    gt.reset_error_count()
    assert gt.error_count() == 0
    assert gt.get_current() == (100, 0)            # the reset does not reset the ratchet
    assert gt.error_count() == 1


def test_last_resort_event_provider():
    gt, c = reg_with(("Cur", 999, (500, 1)))
    assert gt.get_event(7) is None
    gt.install_last_resort_event_provider()
    assert [(p.name, p.priority) for p in gt.event_providers()] == \
        [("Last Resort Event", LAST_RESORT_PRIORITY)]
    assert gt.get_event(7) == (500, 1)
    assert gt.get_event(-1) == (500, 1)
    assert gt.get_event(4000) == (500, 1)
    assert gt.event_provider_name() == "Last Resort Event"


# -------------------------------------------------------------------------- report
def test_report_format_as_epics(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        gt, c = reg_with(("EventTime", 70, (1_163_073_883, 363_054_999)),
                         ("Fifty", 50, (1_163_073_883, 363_040_000)),
                         ("OS Clock", 999, None))
        gt.register_event_provider("EventTime", 70, lambda n: None)
        assert gt.report(0) == (
            "Backwards time errors prevented 0 times.\n\n"
            "Current Time Providers:\n"
            '    "Fifty", priority = 50\n'
            '    "EventTime", priority = 70\n'
            '    "OS Clock", priority = 999\n'
            "\n"
            "Event Time Providers:\n"
            '    "EventTime", priority = 70\n'
            "\n")
        gt.get_current()
        c["Fifty"].stamp = (1, 0)
        gt.get_current()                               # one backwards error
        c["Fifty"].stamp = (1_163_073_883, 363_040_000)
        assert gt.report(1) == (
            "Backwards time errors prevented 1 times.\n\n"
            "Current Time Providers:\n"
            '    "Fifty", priority = 50\n'
            "\tCurrent Time is 2026-11-09 12:04:43.363040.\n"
            '    "EventTime", priority = 70\n'
            "\tCurrent Time is 2026-11-09 12:04:43.363054.\n"  # truncated, not rounded
            '    "OS Clock", priority = 999\n'
            "\tCurrent Time not available\n"
            "\n"
            "Event Time Providers:\n"
            '    "EventTime", priority = 70\n'
            "\n")
        assert GeneralTime().report(1) == (
            "Backwards time errors prevented 0 times.\n\n"
            "Current Time Providers:\n"
            "\tNo Providers registered.\n"
            "Event Time Providers:\n"
            "\tNo Providers registered.\n")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_format_stamp_truncates():
    assert format_stamp((0, 999_999_999)).endswith(".999999")
    assert format_stamp((0, 1_000)).endswith(".000001")


# ----------------------------------------------------------------------- threading
def test_many_threads_never_see_time_go_backwards():
    """Providers jitter back and forth while 4 threads read and two register: each
    thread's sequence never decreases and every substitution is counted."""
    gt = GeneralTime()
    state = {"n": 0}
    lock = threading.Lock()

    def jittery():
        with lock:
            state["n"] += 1
            n = state["n"]
        # every third answer is 5 s behind
        return (1000 + n - (5 if n % 3 == 0 else 0), n % 1_000_000_000)
    gt.register_current_provider("J", 50, jittery)
    seqs: list[list] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(out):
        while not stop.is_set() and len(out) < 5000:
            out.append(gt.get_current())

    def registrar(prefix):
        for i in range(50):
            gt.register_current_provider(f"{prefix}{i}", 900 + i, lambda: None)
    threads = [threading.Thread(target=reader, args=(s,)) for s in seqs]
    threads += [threading.Thread(target=registrar, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stop.set()
    for s in seqs:
        assert s and all(a <= b for a, b in zip(s, s[1:]))
    assert gt.error_count() > 0
    # no registration lost, order kept
    plist = gt.current_providers()
    assert len(plist) == 101 and gt.highest_current_name() == "J"
    assert [p.priority for p in plist] == sorted(p.priority for p in plist)


# ------------------------------------------------------------ the IOC's registry
def test_process_registry_has_the_os_clock_and_is_the_database_time_source():
    gt = general_time()
    assert [(p.name, p.priority) for p in gt.current_providers()][-1] == ("OS Clock", 999)
    from ioc.app import Ioc
    assert Ioc().db.time_source is gt


def _db(tmp_path, text: str, gt: GeneralTime) -> Database:
    p = tmp_path / "t.db"
    p.write_text(text)
    db = Database(time_source=gt)
    db.load_records(str(p))
    db.ioc_init()
    return db


def test_record_time_stamps_by_tse(tmp_path, caplog):
    gt, c = reg_with(("Cur", 50, (1000, 111)))
    ev = Clock()
    ev.events = {-1: (900, 1), 5: (800, 2)}
    db = _db(tmp_path, 'record(ai, "T0") {}\n'
                       'record(ai, "TB") { field(TSE, "-1") }\n'
                       'record(ai, "T5") { field(TSE, "5") }\n'
                       'record(ai, "T7") { field(TSE, "7") }\n'
                       'record(ai, "TD") { field(TSE, "-2") field(DTYP, "General Time") '
                       'field(INP, "@TIME") }\n', gt)
    with caplog.at_level("WARNING"):
        for name in ("T5", "T7", "T7"):
            db.lookup(name).db_process()
    assert db.lookup("T5").time == (0, 0)             # no event provider: TIME kept
    assert sum("T7" in r.getMessage() for r in caplog.records) == 1    # logged once
    gt.register_event_provider("Evt", 70, ev.event)
    ev.events[7] = None
    for name in ("T0", "TB", "T5", "T7", "TD"):
        db.lookup(name).db_process()
    assert db.lookup("T0").time == (1000, 111)        # current time, from the registry
    assert db.lookup("TB").time == (900, 1)           # best event time
    assert db.lookup("T5").time == (800, 2)           # event 5
    assert db.lookup("T7").time == (0, 0)             # event 7 failed: TIME kept
    c["Cur"].stamp = (1234, 567_000_001)
    td = db.lookup("TD")
    td.db_process()
    assert td.time == (1234, 567_000_001)             # TSE -2: device support's own stamp
    assert td.f["VAL"] == pytest.approx(1234.567000001)


def test_general_time_device_support(tmp_path, caplog):
    for rtype in ("ai", "bo", "longin", "stringin"):
        assert devsup_lookup(rtype, "General Time") is not None
    gt, c = reg_with(("Top", 50, None), ("OS Clock", 999, (2000, 0)))
    with caplog.at_level("ERROR"):
        db = _db(tmp_path, """
record(ai, "TIME") { field(DTYP, "General Time") field(INP, "@time") }
record(bo, "RST") { field(DTYP, "General Time") field(OUT, "@RstErrCnt") }
record(longin, "CNT") { field(DTYP, "General Time") field(INP, "@GETERRCNT") }
record(stringin, "CUR") { field(DTYP, "General Time") field(INP, "@BESTTCP") }
record(stringin, "TOP") { field(DTYP, "General Time") field(INP, "@TOPTCP") }
record(stringin, "EVT") { field(DTYP, "General Time") field(INP, "@BESTTEP") }
record(stringin, "BAD") { field(DTYP, "General Time") field(INP, "@NOPE") }
""", gt)
    assert any("BAD" in r.getMessage() and "Bad parm" in r.getMessage() for r in caplog.records)
    rec = {n: db.lookup(n) for n in ("TIME", "RST", "CNT", "CUR", "TOP", "EVT", "BAD")}
    assert rec["BAD"].f["PACT"] == 1                  # dead record, as EPICS leaves it
    for n in ("TIME", "CNT", "CUR", "TOP", "EVT"):
        rec[n].db_process()
    assert rec["TIME"].f["VAL"] == 2000.0 and rec["TIME"].f["UDF"] == 0
    assert rec["CUR"].f["VAL"] == "OS Clock" and rec["CUR"].f["SEVR"] == Sevr.NO_ALARM
    assert rec["TOP"].f["VAL"] == "Top"
    assert rec["EVT"].f["VAL"] == NO_WORKING_PROVIDERS == "No working providers"
    assert (rec["EVT"].f["STAT"], rec["EVT"].f["SEVR"]) == (Stat.READ, Sevr.MAJOR)
    c["OS Clock"].stamp = (1000, 0)                   # backwards
    rec["TIME"].db_process()
    rec["CNT"].db_process()
    assert rec["TIME"].f["VAL"] == 2000.0
    # two backwards answers: the VAL read and the record's own TSE 0 time stamp
    assert rec["CNT"].f["VAL"] == 2 and rec["CNT"].f["SEVR"] == Sevr.NO_ALARM  # no HIHI here
    c["OS Clock"].stamp = (3000, 0)                   # forward again, then reset
    rec["RST"].put_and_process("VAL", 1)
    rec["CNT"].db_process()
    assert rec["CNT"].f["VAL"] == 0
    c["OS Clock"].stamp = None                        # nothing answers
    for n in ("TIME", "CUR"):
        rec[n].db_process()
    assert rec["TIME"].f["UDF"] == 1
    assert (rec["TIME"].f["STAT"], rec["TIME"].f["SEVR"]) == (Stat.READ, Sevr.INVALID)
    assert rec["CUR"].f["VAL"] == "No working providers"
    assert rec["CUR"].f["SEVR"] == Sevr.MAJOR
