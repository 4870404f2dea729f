"""CA links (base's dbCa) between our IOCs and softIoc, with softIoc as the oracle.

IOC A (tests/data/calinks/ioca.db) is the link target; IOC B (iocb.db) holds the CA links.
Each B's EPICS_CA_ADDR_LIST names A's port; A is stopped and restarted on the same port to
check the disconnected alarm (LINK/INVALID with MS) and the reconnection.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import caget, caget_value, caput, epics_bin, wait_for, _client_env

pytestmark = pytest.mark.oracle

DATA = Path(__file__).resolve().parents[1] / "data" / "calinks"


def _ca_env(*ports: int) -> dict[str, str]:
    """Client-side env of an IOC whose CA links reach the IOCs on ``ports``."""
    return {"EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{p}" for p in ports)}


def _start_a(start, prefix: str, port: int | None = None):
    """Start target IOC A (``start`` is start_ioc or start_softioc); ``port``: reuse one."""
    extra = {"EPICS_CA_SERVER_PORT": str(port)} if port else None
    args = ["-S", "-m", f"P={prefix}", "-d", str(DATA / "ioca.db")]
    ioc = start(*args, extra_env=extra)
    if port:  # the fixture took a fresh pool port: hand it back, serve on the old one
        ioc.pool.give(ioc.port)
        ioc.port = port
    ioc.wait_ready(f"{prefix}SP", 15.0)
    return ioc


def _stat_sevr(pv: str, port: int) -> tuple[str, str]:
    """(STAT, SEVR) of ``pv`` as caget prints them."""
    return caget_value(pv + ".STAT", port=port), caget_value(pv + ".SEVR", port=port)


def _start_b(start, prefix: str, a_prefix: str, *a_ports: int):
    """Start linking IOC B whose CA links name A's records (prefix ``a_prefix``)."""
    return start("-S", "-m", f"P={prefix},A={a_prefix}", "-d", str(DATA / "iocb.db"),
                 ready_pv=f"{prefix}C", extra_env=_ca_env(*a_ports))


@pytest.mark.parametrize("a_kind,b_kind", [("soft", "ours"), ("ours", "soft"), ("ours", "ours")])
def test_cp_input_and_output_put(start_ioc, start_softioc, a_kind, b_kind):
    """A CP input link follows A's value; an output link's put reaches A."""
    starts = {"soft": start_softioc, "ours": start_ioc}
    a = _start_a(starts[a_kind], "A:")
    b = _start_b(starts[b_kind], "B:", "A:", a.port)
    wait_for(lambda: caget_value("B:C", port=b.port) == "6", what="CP initial update")
    assert caput("A:SP", "4.5", port=a.port).returncode == 0
    wait_for(lambda: caget_value("B:C", port=b.port) == "9", what="CP update after put")
    assert caput("B:AO", "7.25", port=b.port).returncode == 0
    wait_for(lambda: caget_value("A:OUT", port=a.port) == "7.25", what="output link put")


def test_disconnect_alarm_and_reconnect_vs_softioc(start_ioc, start_softioc):
    """A stops: our B and softIoc B give the same STAT/SEVR; A restarts: both recover."""
    a = _start_a(start_ioc, "A:")
    ours = _start_b(start_ioc, "B:", "A:", a.port)
    soft = _start_b(start_softioc, "S:", "A:", a.port)
    for pre, ioc in (("B:", ours), ("S:", soft)):
        wait_for(lambda: caget_value(pre + "C", port=ioc.port) == "6", what=pre + "C connected")
    port = a.port
    a.stop()
    for pv in ("C", "AI"):
        caput(f"S:{pv}.PROC", "1", port=soft.port)
        caput(f"B:{pv}.PROC", "1", port=ours.port)
        want = _stat_sevr("S:" + pv, soft.port)
        assert want == ("LINK", "INVALID")
        wait_for(lambda: _stat_sevr("B:" + pv, ours.port) == want, what=f"B:{pv} alarm")
    a2 = _start_a(start_ioc, "A:", port=port)
    assert caput("A:SP", "2", port=a2.port).returncode == 0
    for pre, ioc in (("B:", ours), ("S:", soft)):
        wait_for(lambda: caget_value(pre + "C", port=ioc.port) == "4", what=pre + "C reconnected")
        wait_for(lambda: _stat_sevr(pre + "C", ioc.port) == ("NO_ALARM", "NO_ALARM"),
                 what=pre + "C alarm cleared")


def _caput_callback_s(pv: str, value: str, port: int) -> float:
    """Seconds a ``caput -c -w 5`` takes to complete."""
    t0 = time.monotonic()
    r = subprocess.run([str(epics_bin() / "caput"), "-c", "-w", "5", pv, value],
                       capture_output=True, text=True, env=_client_env(port), timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return time.monotonic() - t0


@pytest.mark.parametrize("b_kind", ["soft", "ours"])
def test_async_soft_channel_completion(start_ioc, start_softioc, b_kind):
    """caput -c to an "Async Soft Channel" ao completes after the target's put-callback."""
    a = _start_a(start_ioc, "A:")
    b = _start_b({"soft": start_softioc, "ours": start_ioc}[b_kind], "B:", "A:", a.port)
    wait_for(lambda: caget_value("B:C", port=b.port) == "6", what="connected")
    caput("B:AOCB", "1", port=b.port)  # first put: connect the link
    assert _caput_callback_s("B:AOCB", "2", b.port) >= 0.45
    assert _caput_callback_s("B:AOPLAIN", "3", b.port) < 0.4


def _dbcar_report(text: str) -> list[str]:
    """The lines of the first ``dbcar`` report in an IOC's output, shell prompts removed."""
    lines = [l.replace("epics> ", "").rstrip() for l in text.splitlines()]
    if "CA links in all records" not in lines:
        return []
    first = lines.index("CA links in all records")
    end = next((i for i in range(first, len(lines)) if "writes prohibited" in lines[i]), None)
    return lines[first:end + 1] if end is not None else []


def test_dbcar_level1_report_matches_softioc(start_ioc, start_softioc):
    """``dbcar "", 1`` prints the same report as softIoc for the same links (one unresolved)."""
    a = _start_a(start_ioc, "A:")
    reports = []
    for start in (start_softioc, start_ioc):
        b = start("-m", "P=B:,A=A:", "-d", str(DATA / "iocb.db"), ready_pv="B:C",
                  extra_env=_ca_env(a.port), stdin=subprocess.PIPE)
        wait_for(lambda: caget_value("B:C", port=b.port) == "6", what="connected")
        b.proc.stdin.write('dbcar "", 1\n')
        b.proc.stdin.flush()
        reports.append(wait_for(lambda: _dbcar_report(b.output()), what="dbcar report"))
        b.stop()
    assert any("NOSUCH:PV" in l for l in reports[0])
    assert reports[1] == reports[0]


_MS_RECORDS = ("MS", "NMS", "MSS", "MSI", "AIMS", "SIE", "LIE", "MBE", "SID")


def _snapshot(prefix: str, port: int, names=_MS_RECORDS) -> list[str]:
    """VAL, STAT and SEVR of B's records as caget -t prints them, in one call."""
    pvs = [f"{prefix}{n}{f}" for n in names for f in ("", ".STAT", ".SEVR")]
    return caget("-t", *pvs, port=port).split("\n")


def _same_as_softioc(ours, soft, what: str, names=_MS_RECORDS) -> list[str]:
    """Poll until our B's snapshot equals softIoc's B's (both settle on CP updates)."""
    def same():
        want = _snapshot("S:", soft.port, names)
        got = _snapshot("B:", ours.port, names)
        return want if got == want else None
    try:
        return wait_for(same, timeout_s=5.0, what=what)
    except AssertionError:
        assert _snapshot("B:", ours.port, names) == _snapshot("S:", soft.port, names), what
        raise


def test_severity_modes_and_value_kinds_vs_softioc(start_ioc, start_softioc):
    """MS/NMS/MSS/MSI through CP links, enum and double sources read as strings, numbers and
    an mbbi, A's alarm raised and cleared, then A gone: our B equals softIoc's B throughout."""
    a = _start_a(start_ioc, "A:")
    args = ("-d", str(DATA / "iocb_ms.db"))
    ours = start_ioc("-S", "-m", "P=B:,A=A:", *args, ready_pv="B:MS", extra_env=_ca_env(a.port))
    soft = start_softioc("-S", "-m", "P=S:,A=A:", *args, ready_pv="S:MS",
                         extra_env=_ca_env(a.port))
    first = _same_as_softioc(ours, soft, "initial CP updates")
    assert first[0] == "3"
    assert caput("A:SP", "8.5", port=a.port).returncode == 0        # HIHI 8: MAJOR
    alarmed = _same_as_softioc(ours, soft, "A's HIHI alarm through the links")
    assert "HIHI" in alarmed and "MAJOR" in alarmed
    assert caput("A:BO", "1", port=a.port).returncode == 0
    assert caput("A:SP", "1.25", port=a.port).returncode == 0
    cleared = _same_as_softioc(ours, soft, "alarm cleared, enum changed")
    assert "On" in cleared and "one" in cleared
    port = a.port
    a.stop()
    for pre, ioc in (("B:", ours), ("S:", soft)):
        for n in ("MS", "NMS", "AIMS", "SIE", "OUT", "LOUT"):
            caput(f"{pre}{n}.PROC", "1", port=ioc.port)
    _same_as_softioc(ours, soft, "A gone", names=_MS_RECORDS + ("OUT", "LOUT"))
