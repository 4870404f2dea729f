"""Beacons go where EPICS base's rsrv sends them: EPICS_CAS_BEACON_PORT, else
EPICS_CA_REPEATER_PORT (a repeater on a non-default port hears the IOC), with the server's port
in the message and a counter that goes up, starting fast (20 ms, doubling)."""
from __future__ import annotations

import socket
import struct
import time

from ..conftest import free_port

DB = 'record(ao, "$(P)X") {}\n'


def _beacons(sock: socket.socket, n: int, timeout_s: float) -> list[tuple]:
    """The first ``n`` CA messages received on ``sock`` (command, ..., p1, p2)."""
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(1024)
        except socket.timeout:
            break
        out.append(struct.unpack(">HHHHII", data[:16]))
    return out


def _listener(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def test_beacons_follow_the_repeater_port(start_ioc, tmp_path):
    db = tmp_path / "b.db"
    db.write_text(DB)
    rep_port = free_port()
    with _listener(rep_port) as rep:
        ioc = start_ioc("-S", "-m", "P=BC:", "-d", str(db), ready_pv="BC:X",
                        extra_env={"EPICS_CA_REPEATER_PORT": str(rep_port),
                                   "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1"})
        got = _beacons(rep, 4, 5.0)
    assert len(got) == 4, f"only {len(got)} beacons reached the repeater port"
    for cmd, size, minor, port, counter, addr in got:
        assert cmd == 13 and size == 0          # CA_PROTO_RSRV_IS_UP
        assert minor == 13 and port == ioc.port
    counters = [g[4] for g in got]
    assert counters == sorted(counters) and len(set(counters)) == 4
    assert "beacon" not in ioc.output().lower()


def test_beacon_port_overrides_the_repeater_port(start_ioc, tmp_path):
    db = tmp_path / "b.db"
    db.write_text(DB)
    rep_port, beacon_port = free_port(), free_port()
    with _listener(rep_port) as rep, _listener(beacon_port) as bcn:
        start_ioc("-S", "-m", "P=BD:", "-d", str(db), ready_pv="BD:X",
                  extra_env={"EPICS_CA_REPEATER_PORT": str(rep_port),
                             "EPICS_CAS_BEACON_PORT": str(beacon_port),
                             "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1"})
        assert len(_beacons(bcn, 2, 5.0)) == 2
        assert _beacons(rep, 1, 0.5) == []
