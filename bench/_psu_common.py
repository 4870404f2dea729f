"""Process and Channel Access plumbing shared by bench/psu.py and bench/scale.py.

The generic helpers (free ports, ``Proc``, percentiles, number formatting, the EPICS base
binaries) are bench/ca.py's; this adds the loopback CA environment for N IOCs with a caRepeater,
st.cmd-driven ``psu-timing-ioc`` processes, and /proc readings (CPU time, resident memory).
"""
from __future__ import annotations

import os
import shutil
import sys
import time

if __package__ in (None, ""):            # imported from python bench/psu.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import Proc, free_port, start_repeater  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
NAN = float("nan")


class CaSetup:
    """Loopback-only CA for ``n_servers`` IOCs: one free port each, a repeater port, and the
    environments of the client (this process) and of each server. ``start_repeater`` starts EPICS
    base's caRepeater on that port (else libca spawns one that holds our stdout)."""

    def __init__(self, n_servers: int, logdir: str):
        taken: set[int] = set()
        self.logdir = logdir
        self.rep_port = free_port(taken)
        self.ports = [free_port(taken) for _ in range(n_servers)]
        common = {
            "EPICS_CA_REPEATER_PORT": str(self.rep_port),
            "EPICS_CAS_BEACON_PORT": str(self.rep_port),
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{p}" for p in self.ports),
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        }
        self.client_env = dict(os.environ)
        self.client_env.pop("EPICS_CA_SERVER_PORT", None)
        self.client_env.update(common)
        self.repeater: Proc | None = None
        self.notes: list[str] = []

    def server_env(self, k: int) -> dict:
        env = dict(self.client_env)
        env["EPICS_CA_SERVER_PORT"] = str(self.ports[k])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def apply_client_env(self) -> None:
        """libca reads its environment once, when pyepics creates the context: call first."""
        for k, v in self.client_env.items():
            if k.startswith("EPICS_"):
                os.environ[k] = v
        os.environ.pop("EPICS_CA_SERVER_PORT", None)

    def start_repeater(self) -> None:
        self.repeater = start_repeater(self.client_env, self.logdir, self.rep_port, self.notes)

    def stop(self) -> None:
        if self.repeater is not None:
            self.repeater.stop()
            self.repeater = None


def ioc_command() -> list[str]:
    exe = shutil.which("psu-timing-ioc")
    return [exe] if exe else [sys.executable, "-m", "ioc"]


def start_ioc(name: str, stcmd_text: str, env: dict, logdir: str) -> Proc:
    """``psu-timing-ioc -S <logdir>/<name>.cmd`` (the st.cmd ``cd``s to the source tree)."""
    path = os.path.join(logdir, f"{name}.cmd")
    with open(path, "w") as f:
        f.write(f'cd "{ROOT}"\n' + stcmd_text)
    return Proc(name, ioc_command() + ["-S", path], env, logdir)


def proc_cpu_s(pid: int, tid: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return NAN, NAN
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_rss_kb(pid: int) -> float:
    """VmRSS of a process in kB (NaN if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return NAN


def median(values) -> float:
    v = sorted(values)
    if not v:
        return NAN
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def mean(values) -> float:
    v = list(values)
    return sum(v) / len(v) if v else NAN


class SimProc:
    """``e3631a-sim --pty --link LINK --control 0 --profile PROFILE``: the simulator as users run
    it, with its control channel (``state`` gives the instrument's settings for the bound)."""

    def __init__(self, name: str, link: str, profile: str, logdir: str, seed: int = 1,
                 timeout_s: float = 10.0):
        import json
        import select
        import socket
        import subprocess
        self._json = json
        self.name = name
        self.link = link
        self.log_path = os.path.join(logdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        exe = shutil.which("e3631a-sim")
        cmd = ([exe] if exe else [sys.executable, "-m", "ioc.psu.sim.cli"]) + [
            "--pty", "--link", link, "--control", "0", "--profile", profile, "--seed", str(seed)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self._log, cwd=logdir)
        self.info: dict[str, str] = {}
        buf = b""
        deadline = time.monotonic() + timeout_s
        while not {"PTY", "LINK", "CONTROL"} <= set(self.info):
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                self.stop()
                raise RuntimeError(f"e3631a-sim did not start ({self.info}); see {self.log_path}")
            ready, _, _ = select.select([self.p.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(self.p.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    key, _, value = line.decode().strip().partition(" ")
                    self.info[key] = value
        host, port = self.info["CONTROL"].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.rfile = self.sock.makefile("r")

    @property
    def pid(self) -> int:
        return self.p.pid

    def control(self, cmd: str) -> str:
        self.sock.sendall(cmd.encode() + b"\n")
        reply = self.rfile.readline().strip()
        if not reply.startswith("OK"):
            raise RuntimeError(f"{self.name} control {cmd!r}: {reply}")
        return reply[2:].strip()

    def state(self) -> dict:
        return self._json.loads(self.control("state"))

    def stop(self) -> None:
        import signal
        import subprocess
        try:
            self.sock.close()
        except Exception:  # noqa: BLE001 - not connected yet
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.p.poll() is not None:
                break
            try:
                os.kill(self.p.pid, sig)
                self.p.wait(5.0)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.p.stdout:
            self.p.stdout.close()
        self._log.close()


def log_warnings(path: str) -> list[str]:
    """Warning/error lines of a process log (first 160 characters each)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln.strip()[:160] for ln in text.splitlines()
            if any(w in ln for w in ("Traceback", "ERROR", "WARNING", "rror:"))]
