"""The put log (ioc/putlog): caPutLog's line format, burst merging, selection, refused and
failed puts, the in-memory ring and the PutLog device support, file and TCP outputs, the shell
commands. Puts are made as the CA server makes them: ``before``, the put, ``after``."""
from __future__ import annotations

import asyncio
import io
import re
import socket
import threading
import time
import types
from pathlib import Path

import pytest

import ioc.main  # every command and device support, in ioc.main's import order
from ioc.access.context import Putter
from ioc.database.db import Database
from ioc.putlog import core
from ioc.putlog.core import PutLog
from ioc.putlog.format import Captured, escape, format_time, format_value
from ioc.putlog.outputs import FileOutput, TcpOutput, parse_addresses
from ioc.shell.interp import Shell
from ioc.shell.noop import NOT_HERE
from ioc.shell.registry import COMMANDS

ALICE = Putter("alice", "ws1")
BOB = Putter("bob", "ws2")
STAMP_RE = r"\d\d-[A-Z][a-z]{2}-\d\d \d\d:\d\d:\d\d"

DB = '''
record(ao, "A") { field(VAL, "1") field(PREC, "2") }
record(ao, "B") { field(VAL, "5") }
record(stringout, "S") { field(VAL, "old") }
record(bo, "BO") { field(ZNAM, "Off") field(ONAM, "On") }
record(waveform, "W") { field(FTVL, "DOUBLE") field(NELM, "8") }
record(waveform, "WC") { field(FTVL, "CHAR") field(NELM, "32") }
record(waveform, "WL") { field(FTVL, "LONG") field(NELM, "500") }
'''


def load(tmp_path, text: str = DB) -> Database:
    p = tmp_path / "t.db"
    p.write_text(text)
    db = Database()
    db.load_records(str(p))
    db.ioc_init()
    return db


@pytest.fixture
def logs():
    """PutLogs made by a test, closed at its end; and no putlog thread may outlive it."""
    made: list[PutLog] = []
    outs: list = []
    yield types.SimpleNamespace(made=made, outs=outs)
    for pl in made:
        pl.close()
    for o in outs:
        o.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            t.name.startswith("putlog") for t in threading.enumerate()):
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("putlog")]


def start(db: Database, logs, config: int = core.CONFIG_ALL, timeout: float = 5.0) -> PutLog:
    pl = db.putlog
    logs.made.append(pl)
    pl.config = config
    pl.burst_timeout = timeout
    pl.enable()
    return pl


def put(db: Database, who: Putter, pv: str, value, trapwrite: bool = True) -> None:
    """A CA put as ioc.ca.requests makes it: before, dbPutField, after."""
    name, _, field = pv.partition(".")
    rec = db.lookup(name)
    field = field or "VAL"
    pending = db.putlog.before(who, pv, rec, field, trapwrite)
    try:
        rec.put_and_process(field, value)
    except Exception as exc:        # noqa: BLE001
        db.putlog.after(pending, False, str(exc))
    else:
        db.putlog.after(pending, True)


def lines(pl: PutLog) -> list[str]:
    assert pl.flush()
    return pl.history()


def tail(line: str) -> str:
    """A line without its time stamp (the default format has two words)."""
    return line.split(" ", 2)[2]


# ---------------------------------------------------------------- format
def test_line_format_scalars_strings_menus_arrays(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    put(db, ALICE, "A", 2.5)
    put(db, BOB, "S", 'say "hi"\n')
    put(db, ALICE, "BO", 1)
    put(db, ALICE, "A.SCAN", "1 second")
    put(db, ALICE, "W", [1.5, 2, 3])
    put(db, ALICE, "WC", "hello")
    got = lines(pl)
    assert all(re.match(STAMP_RE + " ", g) for g in got)
    assert [tail(g) for g in got] == [
        "ws1 alice A new=2.5 old=1",
        'ws2 bob S new="say \\"hi\\"\\n" old="old"',
        "ws1 alice BO new=1 old=0",
        'ws1 alice A.SCAN new="1 second" old="Passive"',
        "ws1 alice W new=[1.5,2,3] new-size=3 old=[] old-size=0",
        'ws1 alice WC new="hello" new-size=6 old="" old-size=0',
    ]


def test_value_and_time_formatting_details():
    assert format_value(Captured("DBF_DOUBLE", 1e-7)) == "1e-07"
    assert format_value(Captured("DBF_DOUBLE", float("nan"))) == "nan"
    assert format_value(Captured("DBF_FLOAT", float("-inf"))) == "-inf"
    assert format_value(Captured("DBF_LONG", -3)) == "-3"
    assert escape("a\tb\x01\\") == "a\\tb\\x01\\\\"
    many = Captured("DBF_DOUBLE", tuple(range(60)), True, 60)
    text = format_value(many)               # 400 bytes of doubles: 50 shown, then "..."
    assert text.startswith("[0,1,") and text.endswith(",49,...]")
    stamp = (1_000_000_000, 123_456_789)    # EPICS epoch seconds
    assert format_time("%S.%03f", stamp) == time.strftime(
        "%S", time.localtime(1_000_000_000 + 631152000)) + ".123"
    assert format_time("%%f %f", stamp).endswith("%f 123456789")


def test_large_array_keeps_caputlogs_400_bytes(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    put(db, ALICE, "WL", list(range(300)))
    (line,) = lines(pl)
    new = tail(line).split(" new=")[1].split(" ")[0]
    assert new == "[" + ",".join(str(i) for i in range(100)) + ",...]"     # 100 LONGs
    assert line.endswith(" new-size=300 old=[] old-size=0")


def test_time_format_is_settable(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    pl.time_fmt = "%Y-%m-%dT%H:%M:%S.%06f"
    put(db, ALICE, "A", 3)
    (line,) = lines(pl)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} ws1 alice A new=3 old=1$", line)


# ------------------------------------------------------------- bursts
def test_burst_of_one_client_is_one_line_with_min_max(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    for v in (7, -2, 4):
        put(db, ALICE, "A", v)
    assert [tail(g) for g in lines(pl)] == [
        "ws1 alice A new=4 old=1 min=-2 max=7 burst=2"]
    assert pl.total == 3


def test_other_client_or_pv_ends_the_burst_and_order_is_kept(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    put(db, ALICE, "A", 2)
    put(db, ALICE, "A", 3)
    put(db, BOB, "A", 4)            # same PV, other client: its own line
    put(db, BOB, "B", 6)
    put(db, ALICE, "A", 9)
    assert [tail(g) for g in lines(pl)] == [
        "ws1 alice A new=3 old=1 min=2 max=3 burst=1",
        "ws2 bob A new=4 old=3",
        "ws2 bob B new=6 old=5",
        "ws1 alice A new=9 old=4",
    ]


def test_burst_window_ends_after_the_timeout(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs, timeout=0.2)
    put(db, ALICE, "A", 2)
    put(db, ALICE, "A", 3)
    deadline = time.monotonic() + 3
    while not pl.history() and time.monotonic() < deadline:
        time.sleep(0.02)            # written by the worker when the window ends, no flush
    assert [tail(g) for g in pl.history()] == ["ws1 alice A new=3 old=1 min=2 max=3 burst=1"]
    put(db, ALICE, "A", 4)
    assert [tail(g) for g in lines(pl)][-1] == "ws1 alice A new=4 old=3"


def test_string_bursts_are_counted_not_hidden(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    for v in ("x", "y", "z"):
        put(db, ALICE, "S", v)
    assert [tail(g) for g in lines(pl)] == ['ws1 alice S new="z" old="old" burst=2']


def test_config_0_skips_unchanged_and_2_logs_every_put(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs, config=core.CONFIG_ON_CHANGE)
    put(db, ALICE, "A", 1)          # same value: not logged under config 0
    put(db, BOB, "B", 6)
    assert [tail(g) for g in lines(pl)] == ["ws2 bob B new=6 old=5"]
    assert pl.unchanged == 1
    pl.reconf(core.CONFIG_ALL_NO_FILTER)
    put(db, ALICE, "A", 1)
    put(db, ALICE, "A", 2)
    assert [tail(g) for g in lines(pl)][1:] == ["ws1 alice A new=1 old=1",
                                                "ws1 alice A new=2 old=1"]
    pl.reconf(core.CONFIG_NONE)
    assert not pl.enabled
    put(db, ALICE, "A", 3)
    assert len(lines(pl)) == 3


# ----------------------------------------------- selection, refused, failed
def test_access_security_in_force_logs_only_trapwrite(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    put(db, ALICE, "A", 2, trapwrite=False)     # no ACF in force: every put
    db.access.config = object()                 # an ACF in force (asActive)
    assert db.access.active
    put(db, ALICE, "B", 7, trapwrite=False)
    put(db, BOB, "B", 8, trapwrite=True)
    db.putlog.refused(ALICE, "B", db.lookup("B"), "VAL", "no write access")
    db.access.config = None
    assert [tail(g) for g in lines(pl)] == [
        "ws1 alice A new=2 old=1",
        "ws2 bob B new=8 old=7",
        'ws1 alice B refused="no write access"',
    ]


def test_failed_put_is_its_own_line(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    put(db, ALICE, "A", 2)
    put(db, ALICE, "A", "not a number")
    assert [tail(g) for g in lines(pl)][0] == "ws1 alice A new=2 old=1"
    assert re.match(r'ws1 alice A new=2 old=2 failed=".+"$', tail(lines(pl)[1]))


def test_off_until_enabled_and_none_putter(tmp_path, logs):
    db = load(tmp_path)
    pl = db.putlog
    logs.made.append(pl)
    assert pl.before(ALICE, "A", db.lookup("A"), "VAL", True) is None
    assert not [t for t in threading.enumerate() if t.name == "putlog"]
    pl.enable()
    put(db, None, "A", 4)
    assert [tail(g) for g in lines(pl)] == ["? ? A new=4 old=1"]


def test_queue_overflow_is_counted_and_reported(tmp_path, logs, monkeypatch):
    monkeypatch.setattr(core, "QUEUE_SIZE", 5)
    db = load(tmp_path)
    gate = threading.Event()

    class Slow:
        def write(self, line):
            gate.wait(5)

        def show(self, level):
            return []

        def close(self):
            gate.set()
    pl = start(db, logs, config=core.CONFIG_ALL_NO_FILTER)
    pl.add_output(Slow())
    put(db, ALICE, "A", 2)          # the worker blocks writing this one
    time.sleep(0.2)
    for v in range(3, 13):
        put(db, ALICE, "A", v)
    assert pl.dropped == 5
    gate.set()
    got = lines(pl)
    assert any("caPutLog: 5 put(s) not logged" in g for g in got)
    assert len([g for g in got if " alice A " in g]) == 6


# ------------------------------------------------ ring and device support
class Running:
    """The database's loop on a thread, as the IOC runs it."""

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


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_putlog_template_records_show_latest_and_history(tmp_path, logs):
    text = (Path(__file__).resolve().parents[2] / "db" / "putlog.template").read_text()
    text = text.replace("$(IOC)", "T:").replace("$(N=20)", "2").replace(
        "$(FTVL=CHAR)", "CHAR").replace("$(SIZV=512)", "512").replace(
        "$(NELM=4096)", "4096").replace("$(RO_ASG=READONLY)", "READONLY")
    # one line per element, cut to 39 characters; and a CHAR history too short for 2 lines
    extra = 'record(waveform, "T:HISTS") { field(DTYP, "PutLog") field(FTVL, "STRING") ' \
            'field(NELM, "3") field(SCAN, "I/O Intr") }\n' \
            'record(waveform, "T:HISTC") { field(DTYP, "PutLog") field(FTVL, "CHAR") ' \
            'field(NELM, "60") field(SCAN, "I/O Intr") }\n'
    db = load(tmp_path, DB + text + extra)
    pl = db.putlog
    logs.made.append(pl)
    assert pl.enabled                       # the PutLog records turned it on
    pl.config = core.CONFIG_ALL_NO_FILTER
    run = Running(db)
    try:
        for v in (2, 3, 4, 5):
            run.call(lambda v=v: put(db, ALICE, "A", v))
        assert pl.flush()
        want = [g for g in pl.history()][-3:]
        latest, hist, hists, histc = db.lookup("T:PUTLOG"), db.lookup("T:PUTLOG_HIST"), \
            db.lookup("T:HISTS"), db.lookup("T:HISTC")
        assert wait_for(lambda: run.call(lambda: latest.f["VAL"]) == want[-1])
        assert wait_for(lambda: run.call(lambda: list(hists.array())) == [w[:39] for w in want])
        assert tail(want[-1]) == "ws1 alice A new=5 old=4"

        def char_text(rec):
            return bytes(rec.array().astype("uint8")).split(b"\0")[0].decode()
        # the template's history: the last N=2 lines, whole
        assert wait_for(lambda: run.call(lambda: char_text(hist)).split("\n") == want[-2:])
        # 59 bytes hold one line only: the newest
        assert wait_for(lambda: run.call(lambda: char_text(histc)).split("\n") == want[-1:])
    finally:
        run.close()


# ------------------------------------------------------------- outputs
def test_file_output_one_line_per_put(tmp_path, logs):
    db = load(tmp_path)
    pl = start(db, logs)
    path = tmp_path / "put.log"
    pl.add_output(FileOutput(str(path)))
    put(db, ALICE, "A", 2)
    put(db, BOB, "B", 3)
    pl.close()
    text = path.read_text().splitlines()
    assert [tail(t) for t in text] == ["ws1 alice A new=2 old=1", "ws2 bob B new=3 old=5"]


class LineServer:
    """A log server on a random loopback port: collects lines; ``drop()`` closes the client."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self.conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="test-logserver", daemon=True)
        self.thread.start()

    def _run(self):
        import select
        buf = {}
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
                buf[c] = b""
            except (socket.timeout, OSError):
                pass
            live = [c for c in self.conns if c.fileno() >= 0]
            if not live:
                continue
            r, _, _ = select.select(live, [], [], 0.05)
            for c in r:
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    c.close()
                    continue
                buf[c] += data
                *done, buf[c] = buf[c].split(b"\n")
                self.lines.extend(d.decode() for d in done)

    def drop(self):
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.drop()
        self.sock.close()


def test_tcp_output_sends_and_reconnects(tmp_path, logs):
    srv = LineServer()
    try:
        db = load(tmp_path)
        pl = start(db, logs, config=core.CONFIG_ALL_NO_FILTER)
        out = TcpOutput("127.0.0.1", srv.port, max_retry=0.2)
        pl.add_output(out)
        put(db, ALICE, "A", 2)
        assert pl.flush()
        assert wait_for(lambda: len(srv.lines) == 1)
        assert tail(srv.lines[0]) == "ws1 alice A new=2 old=1"
        assert out.show(0) == [f'logClient: connected to log server at "127.0.0.1:{srv.port}"']
        srv.drop()                          # the server goes away...
        time.sleep(0.2)
        put(db, BOB, "B", 3)                # ...this line waits for the next connection
        assert pl.flush()
        assert wait_for(lambda: len(srv.lines) == 2)
        assert tail(srv.lines[1]) == "ws2 bob B new=3 old=5"
        assert out.connects == 2
    finally:
        pl.close()
        srv.close()


def test_tcp_output_unreachable_buffers_counts_drops_and_never_blocks(tmp_path, logs):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                           # nobody listens there now
    out = TcpOutput("127.0.0.1", port, buffer_lines=3, max_retry=0.1)
    logs.outs.append(out)
    t0 = time.monotonic()
    for i in range(5):
        out.write(f"line {i}")
    assert time.monotonic() - t0 < 0.5
    assert out.dropped == 2 and out.pending() == 3
    assert "disconnected" in out.show(0)[0]
    srv = LineServer(port)                  # the server comes up: buffered lines, then the count
    try:
        assert wait_for(lambda: len(srv.lines) == 4)
        assert srv.lines[0] == "caPutLog: 2 line(s) not sent: buffer of 3 lines was full"
        assert srv.lines[1:] == ["line 0", "line 1", "line 2"]
    finally:
        out.close()
        srv.close()


def test_parse_addresses():
    assert parse_addresses("h1 h2:7012  10.0.0.1:1") == [("h1", 7011), ("h2", 7012),
                                                        ("10.0.0.1", 1)]
    with pytest.raises(ValueError):
        parse_addresses("h:notaport")


# -------------------------------------------------------------- shell
def shell_run(db: Database, text: str):
    out, err = io.StringIO(), io.StringIO()
    exits: list = []
    fake_ioc = types.SimpleNamespace(db=db, initialized=True, server=None,
                                     at_exit=exits.append)
    sh = Shell(fake_ioc, out=out, err=err)
    sh.interact(io.StringIO(text))
    return out.getvalue(), err.getvalue(), exits


def test_shell_commands(tmp_path, logs):
    db = load(tmp_path)
    pl = db.putlog
    logs.made.append(pl)
    out, err, _ = shell_run(db, "caPutLogShow 0\ncaPutLogReconf 1\n")
    assert out.splitlines() == ["caPutLog not initialized", "caPutLog not initialized"]
    srv = LineServer()
    try:
        path = tmp_path / "p.log"
        out, err, exits = shell_run(db, f"caPutLogInit 127.0.0.1:{srv.port} 1 0.5\n"
                                        f"caPutLogFile {path}\ncaPutLogReconf 2\n"
                                        "caPutLogSetTimeFmt '%H:%M:%S'\n"
                                        "caPutLogSetBurstTimeout -1\ncaPutLogShow 1\n")
        o = out.splitlines()
        assert o[:4] == ["caPutLogInit config: All", "caPutLog: successfully initialized",
                         "caPutLogFile config: OnChange",
                         "caPutLog: invalid timeout value = -1.000000. Setting default value "
                         "= 5.000000"]
        assert o[4:6] == ["caPutLog mode: 2 = no filter (every single put)",
                          "caPutLog Total Count: 0"]
        assert f'logClient: connected to log server at "127.0.0.1:{srv.port}"' in o or \
            f'logClient: disconnected from log server at "127.0.0.1:{srv.port}"' in o
        assert f'caPutLog file: "{path}"' in o
        assert len(exits) == 1 and err == ""
        put(db, ALICE, "A", 2)
        put(db, ALICE, "A", 3)
        exits[0]()                          # the IOC stops: lines written, threads stopped
        assert [t.split(" ", 1)[1] for t in path.read_text().splitlines()] == [
            "ws1 alice A new=2 old=1", "ws1 alice A new=3 old=2"]
        assert re.match(r"\d\d:\d\d:\d\d ws1", path.read_text())
        assert wait_for(lambda: len(srv.lines) == 2)
        out, err, _ = shell_run(db, "caPutLogInit bad:port:x 1\n")
        assert "caPutLog: bad address or host name bad:port:x" in out
    finally:
        srv.close()


def test_commands_are_registered_and_no_longer_noops():
    assert callable(ioc.main.main)
    for name in ("caPutLogInit", "caPutLogFile", "caPutLogReconf", "caPutLogShow",
                 "caPutLogSetTimeFmt", "caPutLogSetBurstTimeout"):
        assert name in COMMANDS and name not in NOT_HERE
