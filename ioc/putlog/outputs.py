"""Outputs of the put log: a text file and TCP log servers (caPutLogInit's logClient).

Both are written from the put log's worker thread (never the IOC loop). A log server gets its
own sender thread with a bounded line buffer, so a server that is down or slow only delays
its own lines; reconnection is retried with a growing pause (0.5 s up to 10 s). When the buffer
is full new lines are dropped (as base's logClient drops messages), counted, and as soon as the
server is reachable again it is sent a line saying how many it missed (also logged as a
warning on logger "ioc.putlog").
"""
from __future__ import annotations

import logging
import select
import socket
import threading
from collections import deque
from typing import Optional

__all__ = ["DEFAULT_PORT", "FileOutput", "TcpOutput", "parse_addresses"]

log = logging.getLogger("ioc.putlog")

DEFAULT_PORT = 7011             # caPutLog's default log server port
BUFFER_LINES = 10000


def parse_addresses(text: str) -> list[tuple[str, int]]:
    """``"host[:port] host2[:port]"`` (space separated, port 7011 by default) as
    (host, port) pairs; ValueError names a bad one."""
    out = []
    for item in text.split():
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(DEFAULT_PORT)
        try:
            p = int(port)
        except ValueError:
            raise ValueError(f"bad address or host name {item}") from None
        if not host or not 0 < p < 65536:
            raise ValueError(f"bad address or host name {item}")
        out.append((host, p))
    return out


class FileOutput:
    """Lines appended to a text file, one per put, flushed after each line."""

    def __init__(self, path: str) -> None:
        """Opens ``path`` for appending now (OSError if it cannot be)."""
        self.path = path
        self._f = open(path, "a", encoding="utf-8", errors="replace")
        self.written = 0
        self.errors = 0

    def write(self, line: str) -> None:
        f = self._f
        if f is None:
            return
        try:
            f.write(line + "\n")
            f.flush()
            self.written += 1
        except (OSError, ValueError) as exc:
            self.errors += 1
            if self.errors == 1:
                log.error("caPutLog: cannot write %s: %s (counting further failures)",
                          self.path, exc)

    def show(self, level: int) -> list[str]:
        out = [f"caPutLog file: \"{self.path}\""]
        if level >= 1:
            out.append(f"  lines written: {self.written}, write errors: {self.errors}")
        return out

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"FileOutput({self.path!r})"


class TcpOutput:
    """One log server (caPutLogInit's logClient): a sender thread that connects to
    ``host:port``, sends each line with a newline, and reconnects when the connection is lost.

    Contract: :meth:`write` never blocks; lines are kept (up to ``buffer_lines``) until sent;
    a line being sent when the connection breaks is sent again on the next connection.
    """

    def __init__(self, host: str, port: int, buffer_lines: int = BUFFER_LINES,
                 connect_timeout: float = 2.0, max_retry: float = 10.0) -> None:
        self.host, self.port = host, port
        self.addr = f"{host}:{port}"
        self.buffer_lines = buffer_lines
        self.connect_timeout = connect_timeout
        self.max_retry = max_retry
        self.connected = False
        self.connects = 0
        self.sent = 0
        self.dropped = 0
        self._unreported = 0
        self._lines: deque[str] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._sock: Optional[socket.socket] = None
        self._thread = threading.Thread(target=self._run, name=f"putlog-tcp {self.addr}",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ interface
    def write(self, line: str) -> None:
        with self._cond:
            if len(self._lines) >= self.buffer_lines:
                self.dropped += 1
                self._unreported += 1
                return
            self._lines.append(line)
            self._cond.notify()

    def pending(self) -> int:
        """Lines waiting to be sent."""
        with self._cond:
            return len(self._lines)

    def show(self, level: int) -> list[str]:
        state = "connected to" if self.connected else "disconnected from"
        out = [f"logClient: {state} log server at \"{self.addr}\""]
        if level >= 1:
            out.append(f"  lines sent: {self.sent}, waiting: {self.pending()}, dropped: "
                       f"{self.dropped}, connections made: {self.connects}")
        return out

    def close(self, timeout: float = 3.0) -> None:
        """Stop the sender (lines still buffered are tried once more if connected)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __repr__(self) -> str:
        return f"TcpOutput({self.addr!r})"

    # --------------------------------------------------------------- sender
    def _run(self) -> None:
        backoff = 0.5
        down_logged = False
        try:
            while True:
                with self._cond:
                    if self._stop and (self._sock is None or not self._lines):
                        return
                if self._sock is None:
                    if self._connect():
                        backoff, down_logged = 0.5, False
                        continue
                    if not down_logged:
                        log.warning("caPutLog: log server at %s unreachable; retrying",
                                    self.addr)
                        down_logged = True
                    with self._cond:
                        if not self._stop:
                            self._cond.wait(backoff)
                        if self._stop:
                            return
                    backoff = min(backoff * 2, self.max_retry)
                    continue
                with self._cond:
                    if not self._lines and not self._unreported and not self._stop:
                        self._cond.wait(1.0)
                    batch = [self._lines[i] for i in range(min(len(self._lines), 200))]
                    drops, self._unreported = self._unreported, 0
                if not self._peer_alive():
                    self._restore(drops)
                    self._disconnect("closed by the server")
                    continue
                if drops:
                    note = (f"caPutLog: {drops} line(s) not sent: buffer of "
                            f"{self.buffer_lines} lines was full")
                    log.warning("%s (log server %s)", note, self.addr)
                    batch.insert(0, note)
                if not batch:
                    continue
                data = "".join(line + "\n" for line in batch).encode("utf-8", "replace")
                try:
                    self._sock.sendall(data)
                except OSError as exc:
                    self._restore(drops)
                    self._disconnect(str(exc))
                    continue
                n = len(batch) - (1 if drops else 0)
                with self._cond:
                    for _ in range(n):
                        self._lines.popleft()
                    self.sent += n
        finally:
            self._disconnect(None)

    def _restore(self, drops: int) -> None:
        if drops:
            with self._cond:
                self._unreported += drops

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
        except OSError:
            return False
        sock.settimeout(10.0)
        self._sock = sock
        self.connected = True
        self.connects += 1
        log.info("caPutLog: connected to log server at %s", self.addr)
        return True

    def _peer_alive(self) -> bool:
        """False if the server closed the connection (readable with end of file)."""
        sock = self._sock
        if sock is None:
            return False
        try:
            r, _, _ = select.select([sock], [], [], 0)
            if r:
                return sock.recv(4096) != b""
        except OSError:
            return False
        return True

    def _disconnect(self, why: Optional[str]) -> None:
        sock, self._sock = self._sock, None
        was = self.connected
        self.connected = False
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if was and why:
            log.warning("caPutLog: lost log server at %s (%s); reconnecting", self.addr, why)
