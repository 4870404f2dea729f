"""E3631A driver: reply parsing on the instrument's exact formats (reference e3631a.md §2),
setting messages, and the refusals that keep bad values off the wire."""
from __future__ import annotations

import math

import pytest

from ioc.psu.driver import (BUSY_OBSERVED_S, E3631ADriver, ReplyError, format_number, parse_appl,
                            parse_error, parse_nr3)
from ioc.psu.port import CommLog


def test_reply_formats_from_the_manual_and_real_units():
    assert parse_nr3("+3.30649800E+00") == pytest.approx(3.306498)
    assert parse_nr3("-4.61115500E-04") == pytest.approx(-4.611155e-4)
    assert parse_appl('"5.000000,1.000000"') == (5.0, 1.0)
    assert parse_appl('"-7.400000,0.500000"') == (-7.4, 0.5)
    assert parse_error('-113,"Undefined header"') == (-113, "Undefined header")
    assert parse_error('+0,"No error"') == (0, "No error")


@pytest.mark.parametrize("bad", ["", "3.3", "+3.3E+00;", "garbage", "+3.30649800E+0O"])
def test_garbled_numbers_are_read_errors(bad):
    with pytest.raises(ReplyError):
        parse_nr3(bad)


@pytest.mark.parametrize("bad", ['5.000000,1.000000', '"5.000000"', '"5.0,1.0', "1995.0"])
def test_garbled_appl_replies_are_read_errors(bad):
    with pytest.raises(ReplyError):
        parse_appl(bad)


def test_numbers_go_out_short():
    assert format_number(3.3) == "3.3"
    assert format_number(25.75) == "25.75"
    assert format_number(0.0) == "0"
    assert format_number(-0.0) == "0"
    assert format_number(-25.75) == "-25.75"
    assert format_number(0.00049) == "0.0005"


def _drv():
    return E3631ADriver.__new__(E3631ADriver)


def test_voltage_and_current_of_one_rail_coalesce_into_one_appl():
    d = _drv()
    d.busy = BUSY_OBSERVED_S
    cmds = d.build({"P6V:VOLT": 3.3, "P6V:CURR": 0.5})
    assert [c.text for c in cmds] == ["APPL P6V,3.3,0.5"]
    assert set(cmds[0].keys) == {"P6V:VOLT", "P6V:CURR"}
    assert cmds[0].budget_s == BUSY_OBSERVED_S["APPL"]
    assert "APPL? P6V" in [q.text for q in cmds[0].readbacks]


def test_current_alone_never_resends_a_voltage():
    d = _drv()
    d.busy = BUSY_OBSERVED_S
    cmds = d.build({"N25V:CURR": 0.2})
    assert [c.text for c in cmds] == ["INST N25V;:CURR 0.2"]


def test_arrival_order_is_kept():
    d = _drv()
    d.busy = BUSY_OBSERVED_S
    cmds = d.build({"RESET": 1, "P25V:VOLT": 5.0, "OUT": 1})
    assert [c.text for c in cmds] == ["*RST", "APPL P25V,5", "OUTP ON"]


@pytest.mark.parametrize("key,value", [("P6V:VOLT", math.nan), ("P6V:VOLT", math.inf),
                                       ("P6V:CURR", -math.inf), ("P6V:VOLT", 6.2),
                                       ("N25V:VOLT", 1.0), ("P25V:CURR", 1.1), ("SAVE", 4),
                                       ("RECALL", 0)])
def test_values_the_instrument_would_refuse_are_refused(key, value):
    with pytest.raises(ValueError):
        E3631ADriver.check(key, value)


@pytest.mark.parametrize("key,value", [("P6V:VOLT", 6.18), ("N25V:VOLT", -25.75),
                                       ("P6V:CURR", 5.15), ("SAVE", 3)])
def test_limits_themselves_are_accepted(key, value):
    E3631ADriver.check(key, value)


def test_comm_failure_logging_follows_nut(caplog):
    """ser_comm_fail: messages for failures 1..10, then every 10th; the warning at 10 and 100."""
    log = CommLog("p")
    with caplog.at_level("WARNING", logger="ioc.psu"):
        for _ in range(120):
            log.fail("x")
        log.good()
        log.good()
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    limiting = [r for r in caplog.records if "limiting" in r.getMessage()]
    back = [r for r in caplog.records if "re-established" in r.getMessage()]
    assert len(lost) == 10 + 11            # 1..10, then 20, 30, ... 120
    assert len(limiting) == 2              # at 10 and at 100
    assert len(back) == 1


def test_several_queries_in_one_message_split_their_replies():
    from ioc.psu.driver import RAILS, combine
    d = _drv()
    q = combine([d.appl_query(r) for r in RAILS] + [d.outp_query()])
    assert q.text == "APPL? P6V;:APPL? P25V;:APPL? N25V;:OUTP?"
    got = q.parse('"5.000000,1.000000";"0.000000,1.000000";"-2.500000,0.500000";1')
    assert got["N25V:VOLT_RBV"] == -2.5 and got["P6V:CURR_RBV"] == 1.0 and got["OUT_RBV"] == 1
    with pytest.raises(ReplyError):
        q.parse('"5.000000,1.000000";1')
