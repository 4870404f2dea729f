"""The E3631A simulator as a user runs it: the ``e3631a-sim`` console script on a pty, with its
TCP control channel (the contract of ../shared/spec/psu.md)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class SimProcess:
    """``e3631a-sim --pty --link LINK --control 0 [args]``; stopped by ``stop()``."""

    def __init__(self, link: Path, *args: str, timeout_s: float = 10.0):
        self.link = link
        self.proc = subprocess.Popen(["e3631a-sim", "--pty", "--link", str(link), "--control",
                                      "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.info: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while not {"PTY", "LINK", "CONTROL"} <= set(self.info):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"e3631a-sim did not start: {self.info} "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            line = self.proc.stdout.readline()
            if line:
                key, _, value = line.strip().partition(" ")
                self.info[key] = value
        host, port = self.info["CONTROL"].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.rfile = self.sock.makefile("r")

    def control(self, cmd: str) -> str:
        self.sock.sendall(cmd.encode() + b"\n")
        reply = self.rfile.readline().strip()
        if not reply.startswith("OK"):
            raise AssertionError(f"sim control {cmd!r}: {reply}")
        return reply[2:].strip()

    def state(self) -> dict:
        return json.loads(self.control("state"))

    def stop(self) -> None:
        try:
            self.sock.close()
        except Exception:  # noqa: BLE001
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
