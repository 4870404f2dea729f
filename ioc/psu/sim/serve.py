"""Serving a ``Simulator`` out of process: a pty (with an optional stable symlink), a TCP port,
and the TCP control channel. One I/O thread (``SelectLoop``) waits on every descriptor.

The pty server checks the client's line settings through the master (``tcgetattr`` on a pty
master shows what the client set on the slave): a baud rate other than the instrument's, or a
format other than 8N2, makes the instrument see noise (garbage replies, error 511). A new pty
starts in raw mode at the kernel default speed (38400), so a client that never configures the
port is also "wrong", as it would be on a real line.
"""
from __future__ import annotations

import os
import selectors
import socket
import termios
import threading
import tty
from collections import deque
from typing import Callable

from .simulator import Simulator

Announce = Callable[[str], None]


class SelectLoop:
    """One thread running callbacks for readable descriptors; ``call()`` runs code in it."""

    def __init__(self):
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        self._calls: deque[Callable[[], None]] = deque()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="e3631a-io", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread or not self._thread.is_alive()

    def call(self, fn: Callable, *args):
        """Run ``fn(*args)`` in the loop thread and return its result (or raise its error)."""
        if self.in_loop():
            return fn(*args)
        done, box = threading.Event(), {}

        def run():
            try:
                box["result"] = fn(*args)
            except BaseException as e:      # handed back to the caller
                box["error"] = e
            finally:
                done.set()
        self._calls.append(run)
        self._wake()
        done.wait()
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def register(self, fileobj, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever ``fileobj`` is readable (call from the loop thread)."""
        self._sel.register(fileobj, selectors.EVENT_READ, callback)

    def unregister(self, fileobj) -> None:
        try:
            self._sel.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    def stop(self) -> None:
        """Stop the thread and close the selector (idempotent)."""
        if self._stop:
            return
        self._stop = True
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5.0)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass                            # already awake

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self._sel.select():
                # A callback may have closed a descriptor that is later in this batch.
                if self._sel.get_map().get(key.fileobj) is key:
                    key.data()
            while self._calls:
                self._calls.popleft()()


class PtyPort:
    """The instrument's RS-232 port as a pty; ``link`` is a symlink kept at the current slave."""

    def __init__(self, sim: Simulator, loop: SelectLoop, link: str | None, announce: Announce):
        self.sim, self.loop, self.link, self.announce = sim, loop, link, announce
        self.path: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()       # fd use (engine thread) vs close (loop thread)
        sim.add_port(self)

    def open(self) -> None:
        self.loop.call(self._open)

    def close(self) -> None:
        self.sim.remove_port(self)
        self.loop.call(self._close)

    def vanish(self) -> None:
        self.loop.call(self._close)

    def restore(self) -> None:
        self.loop.call(self._open)

    def deliver(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            try:
                os.write(self._master, data)
            except OSError:
                pass        # nobody reads and the pty buffer is full: the reply is lost

    def _open(self) -> None:
        master, slave = os.openpty()
        # We keep the slave open ourselves: clients may come and go without EIO on the master.
        # Raw mode so nothing is echoed before a client configures the port.
        tty.setraw(slave)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        with self._lock:
            self._master, self._slave, self.path = master, slave, path
        self.loop.register(master, self._readable)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(path, tmp)
            os.replace(tmp, self.link)      # atomic: the link never points nowhere
        self.announce(f"PTY {path}")
        if self.link:
            self.announce(f"LINK {self.link}")

    def _close(self) -> None:
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
        if master is not None:
            self.loop.unregister(master)
            os.close(master)
            os.close(slave)
        if self.link:
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:             # EAGAIN, or EIO while no slave is open
            return
        if data:
            self.sim.feed(data, self, self._framing_ok())

    def _framing_ok(self) -> bool:
        try:
            iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(self._master)
        except termios.error:
            return True
        speed = getattr(termios, f"B{self.sim.baud}", None)
        return (ispeed == speed and ospeed == speed and cflag & termios.CSIZE == termios.CS8
                and not cflag & termios.PARENB and bool(cflag & termios.CSTOPB))


class _Client:
    """One TCP connection to the instrument port."""

    def __init__(self, server: "TcpPort", sock: socket.socket):
        self.server, self.sock = server, sock
        self._lock = threading.Lock()

    def deliver(self, data: bytes) -> None:
        with self._lock:
            if self.sock is None:
                return
            try:
                self.sock.send(data)
            except OSError:
                pass

    def readable(self) -> None:
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.server.sim.feed(data, self)
        else:
            self.close()

    def close(self) -> None:
        with self._lock:
            sock, self.sock = self.sock, None
        if sock is not None:
            self.server.loop.unregister(sock)
            sock.close()
            self.server.clients.discard(self)


class TcpPort:
    """The instrument port on TCP (raw bytes, as behind a terminal server). ``port`` 0 = free."""

    def __init__(self, sim: Simulator, loop: SelectLoop, port: int, announce: Announce,
                 host: str = "127.0.0.1"):
        self.sim, self.loop, self.port, self.host, self.announce = sim, loop, port, host, announce
        self.clients: set[_Client] = set()
        self._listener: socket.socket | None = None
        sim.add_port(self)

    def open(self) -> None:
        self.loop.call(self._listen)
        self.announce(f"TCP {self.host}:{self.port}")

    def close(self) -> None:
        self.sim.remove_port(self)
        self.loop.call(self._close)

    def vanish(self) -> None:
        self.loop.call(self._close)

    def restore(self) -> None:
        self.loop.call(self._listen)

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(8)
        s.setblocking(False)
        self.port = s.getsockname()[1]      # keep it: "return" listens on the same port
        self._listener = s
        self.loop.register(s, self._accept)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(self, sock)
        self.clients.add(client)
        self.loop.register(sock, client.readable)

    def _close(self) -> None:
        for c in list(self.clients):
            c.close()
        if self._listener is not None:
            self.loop.unregister(self._listener)
            self._listener.close()
            self._listener = None


class ControlServer:
    """The control channel: TCP on loopback, one command per line, one reply line each."""

    def __init__(self, sim: Simulator, loop: SelectLoop, port: int, announce: Announce):
        self.sim, self.loop, self.port, self.announce = sim, loop, port, announce
        self._listener: socket.socket | None = None
        self._conns: dict[socket.socket, bytearray] = {}

    def open(self) -> None:
        self.loop.call(self._listen)
        self.announce(f"CONTROL 127.0.0.1:{self.port}")

    def close(self) -> None:
        self.loop.call(self._close)

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        self.port = s.getsockname()[1]
        self._listener = s
        self.loop.register(s, self._accept)

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        self._conns[sock] = bytearray()
        self.loop.register(sock, lambda: self._readable(sock))

    def _readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        buf = self._conns[sock]
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            reply = self.sim.control(text)
            try:
                sock.sendall(reply.encode("utf-8") + b"\n")
            except OSError:
                self._drop(sock)
                return

    def _drop(self, sock: socket.socket) -> None:
        self.loop.unregister(sock)
        self._conns.pop(sock, None)
        sock.close()

    def _close(self) -> None:
        for sock in list(self._conns):
            self._drop(sock)
        if self._listener is not None:
            self.loop.unregister(self._listener)
            self._listener.close()
            self._listener = None
