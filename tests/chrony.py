"""A real NTP server for tests: chronyd on 127.0.0.1 at a high port, with a throw-away config.

* ``synced=True``: ``local stratum 10`` -- chrony serves its (free-running) local clock as a
  synchronised stratum-10 server;
* ``synced=False``: no ``local`` -- it answers leap 3 / stratum 0 ("NTP lock lost").

``-x`` keeps chronyd's hands off the system clock (works without CAP_SYS_TIME, in containers);
``-d`` keeps it in the foreground; ``-u <us>`` stops it dropping to the _chrony user (which could
not write our temp dir); ``-U`` lets it run as an unprivileged user. No command port and no Unix
command socket. chrony is a test requirement (``.ci/run`` installs it): missing, the tests fail
rather than skip.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import ntplib


def chronyd_path() -> str:
    path = shutil.which("chronyd") or next(
        (p for p in ("/usr/sbin/chronyd", "/sbin/chronyd") if os.access(p, os.X_OK)), None)
    if path is None:
        raise AssertionError("chronyd not found: install chrony (apt-get install chrony; "
                             ".ci/run does this)")
    return path


class Chrony:
    """One chronyd process serving NTP on ``127.0.0.1:port``. ``start()``/``stop()`` may be
    called repeatedly (same port), and ``synced`` changed in between."""

    def __init__(self, workdir: Path, port: int, synced: bool = True):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.synced = synced
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "chronyd.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_conf(self) -> Path:
        conf = self.dir / "chrony.conf"
        lines = [f"port {self.port}", "bindaddress 127.0.0.1", "allow 127.0.0.1",
                 "cmdport 0", "bindcmdaddress /",
                 f"pidfile {self.dir / 'chronyd.pid'}", f"driftfile {self.dir / 'drift'}"]
        if self.synced:
            lines.append("local stratum 10")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout_s: float = 10.0) -> "Chrony":
        assert self.proc is None, "already running"
        argv = [chronyd_path(), "-x", "-d", "-u", getpass.getuser(), "-f", str(self._write_conf())]
        if os.geteuid() != 0:
            argv.insert(1, "-U")
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.wait_answering(timeout_s)
        return self

    def wait_answering(self, timeout_s: float) -> ntplib.NTPStats:
        """Poll with NTP requests until the server answers as configured."""
        client = ntplib.NTPClient()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"chronyd exited ({self.proc.returncode}):\n{self.log()}")
            try:
                r = client.request("127.0.0.1", version=3, port=self.port, timeout=0.2)
            except (ntplib.NTPException, OSError):
                continue
            if (r.stratum == 10) == self.synced:
                return r
        raise AssertionError(f"chronyd not answering on {self.address}:\n{self.log()}")

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def __enter__(self) -> "Chrony":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
