"""The port's outage policy without I/O (issue 13, point 5): PsuPort's queue and link state
driven directly; end to end on a pty: tests/integration/test_psu_outage.py."""
from __future__ import annotations

import pytest

from ioc.psu.port import LinkDownError, LinkState, PortOptions, PsuPort


def port(outage: str) -> PsuPort:
    p = PsuPort("t", "sim://unused", options=PortOptions(outage=outage))
    p._set_state(LinkState.OK, "", "connected")
    return p


def test_fail_refuses_while_down_and_fails_what_was_queued():
    p = port("fail")
    results = []
    p.submit("P25V:VOLT", 4.25, lambda ok, msg, _: results.append((ok, msg)))
    assert p.pending_count == 1
    p._set_state(LinkState.STALE, "TIMEOUT", "no reply")
    assert p.pending_count == 0                       # nothing left to send after recovery
    assert results == [(False, "link STALE: not sent (outage=fail)")]
    with pytest.raises(LinkDownError):
        p.submit("P25V:VOLT", 1.0, lambda *a: results.append(a))
    assert p.pending_count == 0 and len(results) == 1
    assert p.values["PENDING"][0] == 0
    p._set_state(LinkState.OK, "", "back")
    p.submit("P25V:VOLT", 1.0)
    assert p.pending_count == 1


def test_fail_before_the_first_connection():
    p = PsuPort("t", "sim://unused")                  # default: outage=fail
    with pytest.raises(LinkDownError):
        p.submit("OUT", 1)


def test_hold_keeps_settings_and_counts_them():
    p = port("hold")
    seen = []
    p.listeners.append(lambda values, stamp, settings: seen.append(values.get("PENDING")))
    p._set_state(LinkState.STALE, "TIMEOUT", "no reply")
    p.submit("P25V:VOLT", 4.25)
    p.submit("P25V:VOLT", 4.5)                        # coalesced: still one held setting
    p.submit("OUT", 1)
    assert p.pending_count == 2
    assert p.values["PENDING"][0] == 2
    p._set_state(LinkState.OK, "", "back")            # sent by the port thread after this
    assert p.pending_count == 2
    with p._cv:
        p._pending.clear()
    p._update_pending()
    assert p.values["PENDING"][0] == 0
    assert [v for v in seen if v is not None] == [1, 2, 0]


def test_state_stamps():
    p = port("fail")
    assert p.down_stamp is None
    p._set_state(LinkState.STALE, "TIMEOUT", "no reply")
    down = p.down_stamp
    assert down is not None and p.state_stamp == down
    p._set_state(LinkState.NO_DEVICE, "COMM", "no answer")
    assert p.down_stamp == down and p.state_stamp >= down
    p._set_state(LinkState.OK, "", "back")
    assert p.down_stamp == down and p.state_stamp >= down
