"""The put log end to end: ``psu-timing-ioc`` with an st.cmd (caPutLogFile, caPutLogInit to a
log server of the test, db/putlog.template, an ACF with TRAPWRITE), two raw CA clients with
their own user and host names, and the lines in the file, at the log server and in
$(IOC)PUTLOG / $(IOC)PUTLOG_HIST, in order, with old and new values."""
from __future__ import annotations

import socket
import subprocess
import struct
import threading

import pytest

from tests import ca_raw as R
from ..conftest import ROOT, wait_for

ECA_NORMAL, ECA_NOWTACCESS = 1, 376
N = 6

DB = '''
record(ao, "T:A") { field(VAL, "1") }
record(stringout, "T:S") { field(VAL, "old") }
record(ao, "T:QUIET") { field(ASG, "NOTRAP") field(VAL, "0") }
record(ao, "T:RO") { field(ASG, "RO") field(VAL, "0") }
'''
ACF = '''
ASG(DEFAULT) { RULE(1, READ) RULE(1, WRITE, TRAPWRITE) }
ASG(NOTRAP) { RULE(1, READ) RULE(1, WRITE) }
ASG(RO) { RULE(1, READ) }
'''


class LogServer:
    """A TCP log server on a random loopback port collecting lines."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn, buf = None, b""
        while not self._stop:
            try:
                if conn is None:
                    conn, _ = self.sock.accept()
                    conn.settimeout(0.2)
                data = conn.recv(65536)
                if not data:
                    conn.close()
                    conn = None
                    continue
                buf += data
                *done, buf = buf.split(b"\n")
                self.lines.extend(d.decode() for d in done)
            except (socket.timeout, OSError):
                continue
        if conn is not None:
            conn.close()

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()


class Client:
    """One raw CA client (user@host)."""

    def __init__(self, port: int, user: str, host: str):
        self.c = R.RawCircuit("127.0.0.1", port, user=user, host_name=host)
        self.chans: dict[str, R.Created] = {}

    def chan(self, pv: str) -> R.Created:
        if pv not in self.chans:
            ch = self.c.create(pv)
            assert isinstance(ch, R.Created), (pv, ch)
            self.chans[pv] = ch
        return self.chans[pv]

    def put(self, pv: str, value) -> int:
        """Put-callback; the ECA status it completes with."""
        ch = self.chan(pv)
        if isinstance(value, str):
            dtype, payload = 0, R.pad8(value.encode() + b"\0")
        else:
            dtype, payload = 6, struct.pack(">d", value)
        self.c.send(R.write_notify(ch.sid, 7, dtype, 1, payload))
        msgs = self.c.recv_until(lambda ms: any(m.command == R.WRITE_NOTIFY for m in ms), 10.0)
        return [m.p1 for m in msgs if m.command == R.WRITE_NOTIFY][0]

    def strings(self, pv: str, count: int) -> list[str]:
        """DBR_STRING read of ``count`` elements."""
        ch = self.chan(pv)
        msgs, ok = self.c.barrier(prefix=R.read_notify(ch.sid, 8, 0, count))
        (m,) = [m for m in msgs if m.command == R.READ_NOTIFY]
        items = [m.payload[i:i + 40] for i in range(0, 40 * count, 40)]
        return [it.split(b"\0", 1)[0].decode() for it in items]

    def close(self) -> None:
        self.c.close()


@pytest.fixture
def server():
    s = LogServer()
    yield s
    s.close()


def tail(line: str) -> str:
    return line.split(" ", 2)[2]          # without the default two-word time stamp


def test_puts_of_two_clients_are_logged_in_order(start_ioc, tmp_path, server):
    (tmp_path / "t.db").write_text(DB)
    (tmp_path / "t.acf").write_text(ACF)
    log = tmp_path / "put.log"
    st = tmp_path / "st.cmd"
    st.write_text(f'cd "{ROOT}"\n'
                  f'dbLoadRecords("{tmp_path}/t.db")\n'
                  f'dbLoadRecords("db/putlog.template", "IOC=T:,FTVL=STRING,NELM={N}")\n'
                  f'asSetFilename("{tmp_path}/t.acf")\n'
                  f'caPutLogFile("{log}", 2)\n'
                  f'caPutLogInit("127.0.0.1:{server.port}", 2)\n'
                  "iocInit\n")
    ioc = start_ioc(str(st), ready_pv="T:PUTLOG", stdin=subprocess.PIPE)
    alice = Client(ioc.port, "alice", "ws1")
    bob = Client(ioc.port, "bob", "WS2")
    try:
        assert alice.put("T:A", 2.5) == ECA_NORMAL
        assert bob.put("T:A", 3.5) == ECA_NORMAL
        assert alice.put("T:S", "hello") == ECA_NORMAL
        assert bob.put("T:QUIET", 7.0) == ECA_NORMAL        # no TRAPWRITE: not logged
        assert bob.put("T:RO", 1.0) == ECA_NOWTACCESS       # refused: logged
        want = ["ws1 alice T:A new=2.5 old=1",
                "ws2 bob T:A new=3.5 old=2.5",
                'ws1 alice T:S new="hello" old="old"',
                "ws2 bob T:RO refused=\"no write access\""]

        def file_lines():
            return log.read_text().splitlines() if log.exists() else []
        wait_for(lambda: len(file_lines()) >= 4, what="4 lines in the put log file")
        got = file_lines()
        assert [tail(g) for g in got[:3]] == want[:3]
        assert tail(got[3]).startswith("ws2 bob T:RO refused=")
        assert len(got) == 4, got
        wait_for(lambda: len(server.lines) >= 4, what="4 lines at the log server")
        assert server.lines == got
        hist = wait_for(lambda: (h := [x for x in alice.strings("T:PUTLOG_HIST", N) if x])
                        and len(h) == 4 and h, what="4 lines in PUTLOG_HIST")
        assert hist == [g[:39] for g in got]
        assert alice.strings("T:PUTLOG", 1) == [got[-1][:39]]
    finally:
        alice.close()
        bob.close()
    assert ioc.stop() == 0
