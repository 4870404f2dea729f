"""Transport: bytes in and out of one serial port (pyserial), with deadlines.

Any pyserial URL works (``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://...``, and our
in-process simulator ``sim://NAME?profile=...``). The port is opened with ``exclusive=True`` (a
second IOC on the same device is refused by the kernel's advisory lock), 9600 8N2 by default as the
E3631A's factory setting. Replies are lines ending CR LF; a transaction writes one program message
(terminated LF, which resets the instrument's SCPI path) and reads one reply line with a deadline.

Modem lines: a pty or a USB adapter without DTR/DSR raises ``OSError(ENOTTY)`` on the ioctl; that
is reported as "not available" (None), never as a failure (``../shared/reference/e3631a.md`` §13).
"""
from __future__ import annotations

import errno
import math
import time
from dataclasses import dataclass

import serial

#: RS-232 device clear (UG07 p.87): aborts the operation in progress, drops pending output.
DEVICE_CLEAR = b"\x03"
BITS_PER_CHAR_8N2 = 11


def wire_time_s(nchars: int, baud: int, bits_per_char: int = BITS_PER_CHAR_8N2) -> float:
    """Time ``nchars`` characters take on the wire (start + data + stop bits each)."""
    return nchars * bits_per_char / baud


class TransportError(Exception):
    """The port failed (vanished, I/O error): the link is DISCONNECTED."""


class PortBusyError(TransportError):
    """Another process holds the port's exclusive lock."""


class ReplyTimeout(Exception):
    """No complete reply line before the deadline (``partial`` holds what did arrive)."""

    def __init__(self, msg: str, partial: bytes = b""):
        super().__init__(msg)
        self.partial = partial


@dataclass
class SerialSettings:
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 2

    @property
    def bits_per_char(self) -> int:
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits


class SerialTransport:
    """One open serial port. Not thread-safe: owned by one port thread."""

    def __init__(self, url: str, settings: SerialSettings | None = None):
        self.url = url
        self.settings = settings or SerialSettings()
        self.port: serial.SerialBase | None = None
        self.bytes_out = 0
        self.bytes_in = 0
        self._rx = bytearray()
        self._timeout_s = -1.0
        self._tx_done_at = 0.0

    # ------------------------------------------------------------------ open/close
    def open(self) -> None:
        """Open the port exclusively. Raises PortBusyError or TransportError."""
        if self.url.startswith("sim://"):
            import ioc.psu.sim  # noqa: F401  (registers the sim:// URL scheme)
        s = self.settings
        try:
            self.port = serial.serial_for_url(
                self.url, baudrate=s.baud, bytesize=s.bytesize, parity=s.parity,
                stopbits=s.stopbits, timeout=0.1, write_timeout=2.0, exclusive=True)
            self._timeout_s = 0.1
            self._rx.clear()
        except serial.SerialException as exc:
            text = str(exc)
            if "exclusively lock" in text or getattr(exc, "errno", None) in (errno.EAGAIN,):
                raise PortBusyError(f"{self.url} is in use by another process "
                                    f"(exclusive lock held): {text}") from None
            raise TransportError(f"cannot open {self.url}: {text}") from None
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot open {self.url}: {exc}") from None

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a dead port must not raise
                pass

    @property
    def is_open(self) -> bool:
        return self.port is not None

    def wire_s(self, nchars: int) -> float:
        return wire_time_s(nchars, self.settings.baud, self.settings.bits_per_char)

    # ------------------------------------------------------------------ I/O
    def _port(self) -> serial.SerialBase:
        if self.port is None:
            raise TransportError(f"{self.url} is not open")
        return self.port

    def flush_input(self) -> int:
        """Drop stale input (a late reply to an abandoned query). Returns bytes dropped."""
        port = self._port()
        try:
            n = port.in_waiting + len(self._rx)
            self._rx.clear()
            if n:
                port.reset_input_buffer()
            return n
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"{self.url}: {exc}") from None

    def write(self, data: bytes) -> float:
        """Write ``data``; returns the monotonic time when its last character has reached the
        instrument. ``flush()`` is tcdrain on a UART (it returns when the bytes are out) but
        returns at once on a pty; the wire time is counted once either way, after whatever
        was still on the wire."""
        port = self._port()
        t0 = time.monotonic()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"{self.url}: write failed: {exc}") from None
        t1 = time.monotonic()
        self.bytes_out += len(data)
        self._tx_done_at = max(t1, max(t0, self._tx_done_at) + self.wire_s(len(data)))
        return self._tx_done_at

    def _set_timeout(self, timeout_s: float) -> None:
        # Setting pyserial's timeout re-reads termios; only do it when it matters.
        if abs(timeout_s - self._timeout_s) > 0.001:
            self._port().timeout = timeout_s
            self._timeout_s = timeout_s

    @property
    def can_cancel(self) -> bool:
        """True if ``cancel_read()`` can wake a blocked read (posix ports, sim://)."""
        return self.port is not None and hasattr(self.port, "cancel_read")

    def cancel_read(self) -> None:
        """Wake a read blocked in another thread (thread-safe)."""
        port = self.port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()
            except Exception:  # noqa: BLE001 - best effort
                pass

    def read_line(self, deadline: float, cancelled=None) -> tuple[bytes, float]:
        """Read one line ending CR LF (LF alone accepted) before monotonic ``deadline``.

        Returns (line without terminator, monotonic time it completed). Raises ReplyTimeout
        (with what arrived) or TransportError. ``cancelled`` (a callable) is checked whenever
        the read wakes up; ``cancel_read()`` from another thread wakes it at once.
        """
        port = self._port()
        buf = self._rx
        poll_s = None if self.can_cancel else 0.02
        while True:
            nl = buf.find(b"\n")
            if nl >= 0:
                line = bytes(buf[:nl])
                del buf[:nl + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line, time.monotonic()
            if cancelled is not None and cancelled():
                raise ReplyTimeout("cancelled", bytes(buf))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                partial = bytes(buf)
                buf.clear()
                raise ReplyTimeout("no reply", partial)
            # Timeouts in 50 ms steps (rounded up): pyserial re-applies termios whenever the
            # timeout changes, and a read returns as soon as data arrives anyway.
            step = math.ceil(remaining / 0.05) * 0.05
            self._set_timeout(step if poll_s is None else min(step, poll_s))
            try:
                chunk = port.read(1)
                if chunk:
                    n = port.in_waiting
                    if n:
                        chunk += port.read(n)
            except (serial.SerialException, OSError) as exc:
                raise TransportError(f"{self.url}: read failed: {exc}") from None
            self.bytes_in += len(chunk)
            buf += chunk

    def device_clear(self) -> None:
        """Send the RS-232 device clear (Ctrl-C) and drop whatever input is pending."""
        self.write(DEVICE_CLEAR)
        self.flush_input()

    # ------------------------------------------------------------------ modem lines
    def modem_lines(self) -> dict[str, bool | None]:
        """DSR/CTS/CD/RI, each None when the port cannot report it (pty, adapter, socket)."""
        port = self._port()
        out: dict[str, bool | None] = {}
        for name in ("dsr", "cts", "cd", "ri"):
            try:
                out[name] = bool(getattr(port, name))
            except (OSError, serial.SerialException, NotImplementedError, AttributeError):
                out[name] = None
        return out
