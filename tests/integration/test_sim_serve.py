"""E3631A simulator served for real: ``sim://`` through pyserial in process, and the
``e3631a-sim`` console script on a pty (pyserial on the slave / the ``--link`` symlink), on TCP,
and its control channel. Timing is checked as lower bounds only; readiness is polled with
deadlines, never slept for.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
import serial

import ioc.psu.sim as sim
from ioc.psu.sim import Simulator, wire_s

from ..conftest import wait_for

IDN = b"HEWLETT-PACKARD,E3631A,0,2.1-5.0-1.0\r\n"


# ---------------------------------------------------------------- helpers

def read_reply(port, timeout_s: float = 2.0) -> bytes:
    """Everything up to and including CR LF, polling until ``timeout_s``; b"" if none."""
    deadline = time.monotonic() + timeout_s
    buf = b""
    port.timeout = 0.005
    while time.monotonic() < deadline:
        buf += port.read(max(1, port.in_waiting))
        if buf.endswith(b"\r\n"):
            return buf
    return buf


def sock_reply(sock: socket.socket, timeout_s: float = 2.0) -> bytes:
    deadline = time.monotonic() + timeout_s
    buf = b""
    while not buf.endswith(b"\r\n") and time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
    return buf


def open_sim(url: str, **kw) -> serial.Serial:
    kw.setdefault("baudrate", 9600)
    kw.setdefault("stopbits", serial.STOPBITS_TWO)
    kw.setdefault("timeout", 1.0)
    return serial.serial_for_url(url, **kw)


def ask(port, line: bytes, timeout_s: float = 2.0) -> bytes:
    port.write(line + b"\n")
    return read_reply(port, timeout_s)


def phase_is(s: Simulator, phase: str):
    return lambda: s.state()["phase"] == phase


@pytest.fixture
def named():
    """A fresh named instance name; closed afterwards."""
    name = f"t{time.monotonic_ns()}"
    yield name
    sim.close_instance(name)


# ---------------------------------------------------------------- sim:// in process

def test_sim_url_named_instance_is_exclusive_and_shared(named):
    p = open_sim(f"sim://{named}?profile=ideal&seed=1")
    try:
        assert sim.instance(named).profile.name == "ideal"
        with pytest.raises(serial.SerialException) as e:
            open_sim(f"sim://{named}")
        assert str(e.value) == f"Could not exclusively lock port sim://{named}: already open"
        assert ask(p, b"*IDN?") == IDN
        assert sim.instance(named).state()["rx_log"] == ["*IDN?"]
    finally:
        p.close()
    p = open_sim(f"sim://{named}")                      # closed: can be opened again
    assert p.dsr and p.cts and p.cd
    p.close()
    with pytest.raises(serial.SerialException):
        open_sim("sim://x?speed=3")


def test_unnamed_sim_url_is_private_and_stops_its_thread():
    def engines():
        return sum(t.name == "e3631a-engine" for t in threading.enumerate())
    before = engines()
    a, b = open_sim("sim://?profile=ideal"), open_sim("sim://?profile=ideal")
    assert engines() == before + 2
    a.write(b"SYST:REM\nAPPL P6V,2\n")
    assert ask(a, b"VOLT?") == b"+2.00000000E+00\r\n"
    assert ask(b, b"VOLT?") == b"+0.00000000E+00\r\n"
    a.close()
    b.close()
    wait_for(lambda: engines() == before, 5, what="engine threads to stop")


def test_read_honours_timeout_and_state_matches_control(named):
    p = open_sim(f"sim://{named}?profile=ideal", timeout=0.1)
    try:
        t0 = time.monotonic()
        assert p.read(1) == b""
        assert time.monotonic() - t0 >= 0.1
        s = sim.instance(named)
        reply = s.control("state")
        assert reply.startswith("OK ")
        assert json.loads(reply[3:]) == s.state()
        for key in ("selected", "rails", "output", "tracking", "remote", "error_queue",
                    "rx_lines", "setting_writes", "device_clears", "power_cycles", "rx_log"):
            assert key in s.state()
        assert s.state()["counters"] == {"rx_lines": 0, "device_clears": 0, "power_cycles": 0,
                                         "setting_writes": {"P6V": 0, "P25V": 0, "N25V": 0}}
        assert s.control("bogus").startswith("ERR ")
        assert s.control("fault garble maybe").startswith("ERR ")
    finally:
        p.close()


def test_meas_round_trip_spec_at_9600_is_at_least_cost_plus_wire(named):
    p = open_sim(f"sim://{named}?profile=spec")
    try:
        prof = sim.instance(named).profile
        t0 = time.monotonic()
        reply = ask(p, b"MEAS?")
        elapsed = time.monotonic() - t0
        assert len(reply) == 17
        assert elapsed >= prof.cost_s("MEAS?") + wire_s(6, 9600) + wire_s(17, 9600)
    finally:
        p.close()


def test_commands_wait_for_busy_time_in_order(named):
    p = open_sim(f"sim://{named}?profile=realistic")
    try:
        assert ask(p, b"SYST:REM;*OPC?") == b"1\r\n"
        t0 = time.monotonic()
        p.write(b"APPL P6V,3.3,0.5\nAPPL?\n")           # two lines written at once
        reply = read_reply(p)
        elapsed = time.monotonic() - t0
        assert reply == b'"3.300000,0.500000"\r\n'
        # APPL? arrives during APPL's busy time and waits; then 60 ms and the reply's wire time
        assert elapsed >= wire_s(17, 9600) + 0.115 + 0.060 + wire_s(21, 9600)
    finally:
        p.close()


def test_ctrl_c_aborts_a_query_in_progress(named):
    p = open_sim(f"sim://{named}?profile=spec")
    s = sim.instance(named)
    try:
        # Written at once: the Ctrl-C arrives 7 characters (8 ms) into MEAS?'s 100 ms, while
        # *IDN? waits in the input buffer. Both are dropped; no reply at all.
        p.write(b"MEAS?\n*IDN?\n\x03")
        assert ask(p, b"SYST:VERS?") == b"1995.0\r\n"
        st = s.state()
        assert st["device_clears"] == 1 and st["rx_log"] == ["MEAS?", "*IDN?", "SYST:VERS?"]
    finally:
        p.close()


def test_ctrl_c_during_a_setting_waits_for_its_busy_time(named):
    p = open_sim(f"sim://{named}?profile=realistic")
    s = sim.instance(named)
    try:
        assert ask(p, b"SYST:REM;*OPC?") == b"1\r\n"
        t0 = time.monotonic()
        p.write(b"APPL P25V,5,0.2\n\x03")           # Ctrl-C 1 ms into APPL's 115 ms busy time
        reply = ask(p, b"*IDN?")
        elapsed = time.monotonic() - t0
        assert reply == IDN
        # the clear waited for the busy time; then *IDN? (50 ms) and its reply
        assert elapsed >= wire_s(17, 9600) + 0.115 + 0.050 + wire_s(len(IDN), 9600)
        st = s.state()
        assert st["rails"]["P25V"]["volt"] == 5.0 and st["device_clears"] == 1   # not undone
    finally:
        p.close()


def test_input_buffer_overflow_while_busy_is_521(named):
    p = open_sim(f"sim://{named}?profile=spec")
    s = sim.instance(named)
    try:
        p.write(b"MEAS?\n" + b"SYST:VERS?;" * 15 + b"\n")   # ~165 chars arrive during MEAS?
        assert len(read_reply(p)) == 17
        wait_for(phase_is(s, "idle"), 5, what="idle")
        assert s.state()["error_queue"][0] == '+521,"Input buffer overflow"'
    finally:
        p.close()


def test_faults_on_replies(named):
    p = open_sim(f"sim://{named}?profile=ideal&seed=2")
    s = sim.instance(named)
    try:
        assert s.control("fault no_reply on") == "OK"
        assert read_reply_after(p, b"*IDN?", 0.2) == b""
        assert s.control("fault no_reply off") == "OK"
        assert s.control("fault garble on") == "OK"
        garbled = ask(p, b"*IDN?")
        assert garbled.endswith(b"\r\n") and len(garbled) == len(IDN) and garbled != IDN
        s.control("fault garble off")
        s.control("fault partial on")
        cut = read_reply_after(p, b"*IDN?", 0.2)
        assert cut and IDN.startswith(cut) and not cut.endswith(b"\r\n")
        s.control("fault partial off")
        s.control("fault delay_ms 150")
        t0 = time.monotonic()
        assert ask(p, b"*IDN?") == IDN
        assert time.monotonic() - t0 >= 0.150
        s.control("fault clear")
        s.control("fault lost_first_query on")
        p.write(b"SYST:REM\nINST P25V\n")
        assert read_reply_after(p, b"INST?", 0.2) == b""        # first query after a setting
        assert ask(p, b"INST?") == b"P25V\r\n"                   # the resend works
        assert s.state()["faults"]["lost_first_query"] is True
    finally:
        p.close()


def read_reply_after(port, line: bytes, window_s: float) -> bytes:
    """Write a line and collect whatever arrives within ``window_s`` (for "no reply" checks)."""
    port.write(line + b"\n")
    deadline = time.monotonic() + window_s
    buf = b""
    port.timeout = 0.01
    while time.monotonic() < deadline:
        buf += port.read(64)
    return buf


def test_error_panel_load_faults(named):
    p = open_sim(f"sim://{named}?profile=ideal")
    s = sim.instance(named)
    try:
        assert s.control("error -222") == "OK"
        assert ask(p, b"SYST:ERR?") == b'-222,"Data out of range"\r\n'
        p.write(b"SYST:REM\nAPPL P6V,5,1\nOUTP ON\n")
        assert ask(p, b"*OPC?") == b"1\r\n"               # everything before has run
        assert s.control("panel P6V VOLT 2.5") == "OK"
        assert ask(p, b"VOLT?") == b"+2.50000000E+00\r\n"
        assert s.state()["remote"] and s.state()["setting_writes"]["P6V"] == 1
        assert s.control("load P6V 2") == "OK"              # 1.25 A wanted, 1 A limit: CC
        assert ask(p, b"STAT:QUES:INST:ISUM1:COND?") == b"1\r\n"
        assert abs(float(ask(p, b"MEAS:CURR?")) - 1.0) <= 0.0005
        assert s.control("panel P6V VOLT 9").startswith("ERR ")
        assert s.control("load X 1").startswith("ERR ")
    finally:
        p.close()


def test_power_cycle_in_process(named):
    p = open_sim(f"sim://{named}?profile=ideal")
    s = sim.instance(named)
    try:
        p.write(b"SYST:REM\nAPPL P6V,1\nOUTP ON\nFOO\n")
        wait_for(lambda: s.state()["error_queue"], 2, what="error queued")
        assert s.control("power_cycle 0.3") == "OK"
        assert read_reply_after(p, b"*IDN?", 0.15) == b""      # booting: input ignored
        wait_for(lambda: not s.state()["booting"], 2, what="boot")
        st = s.state()
        assert st["power_cycles"] == 1 and not st["remote"] and not st["output"]
        assert st["error_queue"] == [] and st["rails"]["P6V"]["volt"] == 0.0
        assert ask(p, b"*IDN?") == IDN
    finally:
        p.close()


def test_vanish_and_return_sim_url(named):
    p = open_sim(f"sim://{named}?profile=ideal")
    s = sim.instance(named)
    try:
        assert s.control("vanish") == "OK"
        with pytest.raises(serial.SerialException):
            p.write(b"*IDN?\n")
        with pytest.raises(serial.SerialException):
            p.read(1)
    finally:
        p.close()
    with pytest.raises(serial.SerialException):
        open_sim(f"sim://{named}")
    assert s.control("return") == "OK"
    p = open_sim(f"sim://{named}")
    assert ask(p, b"*IDN?") == IDN
    p.close()


def test_blocked_read_raises_when_port_vanishes(named):
    p = open_sim(f"sim://{named}?profile=ideal", timeout=None)
    s = sim.instance(named)
    box = {}

    def reader():
        try:
            p.read(1)
        except serial.SerialException as e:
            box["error"] = e
    t = threading.Thread(target=reader)
    t.start()
    s.control("vanish")
    t.join(5)
    assert isinstance(box.get("error"), serial.SerialException)
    s.control("return")
    p.close()


def test_baud_mismatch_sim_url_gives_garbage(named):
    p = open_sim(f"sim://{named}?profile=ideal", stopbits=serial.STOPBITS_ONE)
    try:
        junk = read_reply_after(p, b"*IDN?", 0.2)
        assert junk and b"E3631A" not in junk and any(b >= 0x80 for b in junk)
        p.stopbits = serial.STOPBITS_TWO
        assert ask(p, b"SYST:ERR?") == b'+511,"RS-232 framing error"\r\n'
    finally:
        p.close()


# ---------------------------------------------------------------- e3631a-sim process

class SimProcess:
    """``e3631a-sim`` started as a user would; announcements read with a deadline."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(["e3631a-sim", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self._buf = b""
        self.lines: list[str] = []

    def expect(self, prefix: str, timeout_s: float = 10.0) -> str:
        """The next announcement starting with ``prefix`` (value after the first space)."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                text = line.decode()
                self.lines.append(text)
                if text.startswith(prefix + " "):
                    return text.split(" ", 1)[1]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"no {prefix} line; got {self.lines} "
                                     f"{self.proc.stderr.read1() if self.proc.poll() else ''}")
            if select.select([fd], [], [], remaining)[0]:
                self._buf += os.read(fd, 4096)

    def control(self, line: str) -> str:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as c:
            c.sendall(line.encode() + b"\n")
            return c.makefile().readline().rstrip("\n")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("e3631a-sim did not stop")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One ideal-profile simulator on a pty (with link), TCP and control for this module."""
    link = str(tmp_path_factory.mktemp("sim") / "ttyE3631A")
    sp = SimProcess("--link", link, "--tcp", "0", "--control", "0", "--profile", "ideal")
    try:
        sp.pty = sp.expect("PTY")
        assert sp.expect("LINK") == link
        sp.tcp_port = int(sp.expect("TCP").rsplit(":", 1)[1])
        sp.control_port = int(sp.expect("CONTROL").rsplit(":", 1)[1])
        sp.link = link
        yield sp
    finally:
        assert sp.stop() == 0
        assert not os.path.lexists(link)            # the link is removed at exit


@pytest.fixture
def tty(served):
    """pyserial on the link at 9600 8N2, exclusive, as the IOC opens it."""
    assert served.control("fault clear") == "OK"
    p = serial.Serial(served.link, 9600, stopbits=serial.STOPBITS_TWO, timeout=1.0,
                      exclusive=True)
    p.write(b"SYST:REM\n*RST;*CLS\n")
    assert ask(p, b"*OPC?") == b"1\r\n"
    yield p
    p.close()


def test_pty_exact_bytes_and_one_crlf_per_message(served, tty):
    assert served.pty.startswith("/dev/pts/") and os.path.realpath(served.link) == served.pty
    assert ask(tty, b"*IDN?") == IDN
    tty.write(b"APPL P6V,5,1\r\n")                  # CR LF accepted as terminator
    assert ask(tty, b"APPL?;:SYST:VERS?") == b'"5.000000,1.000000";1995.0\r\n'
    assert re.fullmatch(rb"[+-]\d\.\d{8}E[+-]\d{2}\r\n", ask(tty, b"MEAS:CURR? P6V"))
    with pytest.raises(serial.SerialException):     # the IOC's exclusive open is enforced
        serial.Serial(served.link, 9600, stopbits=2, exclusive=True)


def test_pty_state_counters(served, tty):
    before = json.loads(served.control("state")[3:])
    assert ask(tty, b"APPL P25V,2,0.1;APPL?") == b'"2.000000,0.100000"\r\n'
    after = json.loads(served.control("state")[3:])
    assert after["rx_log"][-1] == "APPL P25V,2,0.1;APPL?"
    assert after["rx_lines"] == before["rx_lines"] + 1
    assert after["setting_writes"]["P25V"] == before["setting_writes"]["P25V"] + 1
    assert after["setting_writes"]["P6V"] == before["setting_writes"]["P6V"]


def test_tcp_port(served, tty):
    with socket.create_connection(("127.0.0.1", served.tcp_port), timeout=5) as s:
        s.sendall(b"SYST:VERS?\n")
        assert sock_reply(s) == b"1995.0\r\n"


def test_control_channel_several_clients(served):
    a = socket.create_connection(("127.0.0.1", served.control_port), timeout=5)
    b = socket.create_connection(("127.0.0.1", served.control_port), timeout=5)
    try:
        fa, fb = a.makefile("rw"), b.makefile("rw")
        fa.write("help\n\nbogus\n")
        fa.flush()
        fb.write("fault delay_ms 0\n")
        fb.flush()
        assert fa.readline().startswith("OK ")
        assert fa.readline().startswith("ERR ")     # blank lines get no reply
        assert fb.readline() == "OK\n"
    finally:
        a.close()
        b.close()


def test_pty_baud_mismatch_answers_garbage(served, tty):
    wrong = serial.Serial(served.link, 19200, stopbits=serial.STOPBITS_TWO, timeout=0.3)
    try:
        junk = read_reply_after(wrong, b"*IDN?", 0.2)
        assert junk and b"E3631A" not in junk
    finally:
        wrong.close()
    tty.baudrate = 9600                             # re-apply our settings to the pty
    assert ask(tty, b"SYST:ERR?") == b'+511,"RS-232 framing error"\r\n'


def test_pty_vanish_and_return_behind_link(served, tty):
    assert served.control("vanish") == "OK"
    assert not os.path.lexists(served.link)
    with pytest.raises(OSError):                    # the TCP port is gone as well
        socket.create_connection(("127.0.0.1", served.tcp_port), timeout=2).close()
    with pytest.raises(serial.SerialException):
        tty.write(b"*IDN?\n")
        tty.read(1)
    assert served.control("return") == "OK"
    new_pty = served.expect("PTY")
    assert os.path.realpath(served.link) == new_pty
    p = serial.Serial(served.link, 9600, stopbits=serial.STOPBITS_TWO, timeout=1.0)
    try:
        assert ask(p, b"*IDN?") == IDN
    finally:
        p.close()
    served.pty = new_pty
    with socket.create_connection(("127.0.0.1", served.tcp_port), timeout=5) as s:
        s.sendall(b"SYST:VERS?\n")
        assert sock_reply(s) == b"1995.0\r\n"


def test_pty_power_cycle_silent_for_two_seconds(served):
    p = serial.Serial(served.link, 9600, stopbits=serial.STOPBITS_TWO, timeout=1.0)
    try:
        t0 = time.monotonic()
        assert served.control("power_cycle") == "OK"
        assert read_reply_after(p, b"*IDN?", 0.5) == b""
        wait_for(lambda: not json.loads(served.control("state")[3:])["booting"], 5,
                 what="boot to finish")
        assert time.monotonic() - t0 >= 2.0
        st = json.loads(served.control("state")[3:])
        assert st["power_cycles"] >= 1 and st["remote"] is False
        assert ask(p, b"*IDN?") == IDN
        assert ask(p, b"VOLT 1;:SYST:ERR?") == b'+550,"Command not allowed in local"\r\n'
    finally:
        p.close()


def test_pty_wire_time_spec_profile_and_sigint():
    sp = SimProcess("--pty", "--profile", "spec", "--baud", "9600")
    try:
        path = sp.expect("PTY")
        p = serial.Serial(path, 9600, stopbits=serial.STOPBITS_TWO, timeout=1.0)
        try:
            t0 = time.monotonic()
            reply = ask(p, b"MEAS?")
            elapsed = time.monotonic() - t0
            assert len(reply) == 17
            assert elapsed >= 0.100 + wire_s(6, 9600) + wire_s(17, 9600)
            # a slow write of a long line: the reply cannot come before its last character
            t0 = time.monotonic()
            reply = ask(p, b"SYST:VERS?" + b" " * 40)
            assert reply == b"1995.0\r\n"
            assert time.monotonic() - t0 >= 0.050 + wire_s(51, 9600) + wire_s(8, 9600)
        finally:
            p.close()
    finally:
        assert sp.stop(signal.SIGINT) == 0
