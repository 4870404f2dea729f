"""pyserial URL handler ``sim://[NAME][?profile=realistic&baud=9600&seed=N]``.

Found by ``serial.serial_for_url`` once ``ioc.psu.sim`` is imported (it appends itself to
``serial.protocol_handler_packages``). The port behaves like a serial port wired to the simulated
instrument: writes are received at the baud rate, replies appear in the read buffer when their
last character would have arrived, ``timeout`` is honoured, and the port's own settings are
checked against the instrument's (``baud`` from the URL, 8N2): a mismatch gets garbage replies and
a queued error 511, as a real line would.

A named instance may be open through one port at a time; a second open raises
``SerialException("Could not exclusively lock port sim://NAME: already open")``. After the
control command ``vanish``, read/write raise ``SerialException`` and opening fails until
``return``. Modem lines: ``cts``, ``dsr``, ``cd`` read True, ``ri`` False; setting DTR/RTS/break
does nothing.
"""
from __future__ import annotations

import numbers
import threading
import time
import urllib.parse

from serial.serialutil import (PARITY_NONE, STOPBITS_TWO, EIGHTBITS, PortNotOpenError,
                               SerialBase, SerialException, to_bytes)

from .simulator import Simulator
from .timing import get_profile

_FORM = '"sim://[NAME][?profile=ideal|spec|realistic&baud=9600&seed=N]"'


class Serial(SerialBase):
    """A pyserial port on a simulated E3631A (see the module docstring)."""

    BAUDRATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)

    def __init__(self, *args, **kwargs):
        self._sim: Simulator | None = None
        self._owned = False
        self._sim_name = ""
        self._rx = bytearray()
        self._rx_cv = threading.Condition()
        self._cancel = False
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ open / close

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        name, opts = self.from_url(self.port)
        if name:
            from . import instance
            sim, owned = instance(name, **opts), False
        else:
            sim, owned = Simulator(opts.get("profile", "realistic"), opts.get("baud", 9600),
                                   opts.get("seed")), True
        if sim.vanished:
            raise SerialException(2, f"could not open port {self.port}: port has vanished")
        if not sim.try_claim(self):
            raise SerialException(f"Could not exclusively lock port sim://{name}: already open")
        self._sim, self._owned, self._sim_name = sim, owned, name
        with self._rx_cv:
            self._rx.clear()
            self._cancel = False
        sim.add_port(self)
        self._reconfigure_port()
        self.is_open = True

    def close(self) -> None:
        if not self.is_open:
            return
        self.is_open = False
        sim = self._sim
        sim.remove_port(self)
        sim.release(self)
        if self._owned:
            sim.close()
        with self._rx_cv:
            self._rx_cv.notify_all()

    def from_url(self, url: str) -> tuple[str, dict]:
        """(instance name, options) of a ``sim://`` URL; SerialException if malformed."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim":
            raise SerialException(f"expected a string in the form {_FORM}: not starting with "
                                  f"sim:// ({parts.scheme!r})")
        opts: dict = {}
        try:
            for key, values in urllib.parse.parse_qs(parts.query, True).items():
                if key == "profile":
                    opts["profile"] = get_profile(values[0]).name
                elif key in ("baud", "seed"):
                    opts[key] = int(values[0])
                else:
                    raise ValueError(f"unknown option: {key!r}")
        except ValueError as e:
            raise SerialException(f"expected a string in the form {_FORM}: {e}") from None
        return (parts.netloc + parts.path).strip("/"), opts

    def _reconfigure_port(self) -> None:
        # Nothing to configure: the settings are compared with the instrument's on each write.
        if not isinstance(self._baudrate, numbers.Integral) or not 0 < self._baudrate < 2 ** 32:
            raise ValueError(f"invalid baudrate: {self._baudrate!r}")

    def _framing_ok(self) -> bool:
        return (self._baudrate == self._sim.baud and self._bytesize == EIGHTBITS
                and self._parity == PARITY_NONE and self._stopbits == STOPBITS_TWO)

    def _check(self) -> Simulator:
        if not self.is_open:
            raise PortNotOpenError()
        if self._sim.vanished:
            raise SerialException("device disconnected: sim port vanished")
        return self._sim

    # ------------------------------------------------------------ data

    def write(self, data) -> int:
        """Queue bytes for the instrument; they arrive at the baud rate (returns at once)."""
        sim = self._check()
        data = bytes(to_bytes(data))
        sim.feed(data, self, self._framing_ok())
        return len(data)

    def deliver(self, data: bytes) -> None:
        """Called by the engine when a reply has arrived."""
        with self._rx_cv:
            if self.is_open:
                self._rx += data
                self._rx_cv.notify_all()

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes: blocks until that many, ``timeout`` or ``cancel_read()``."""
        self._check()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._rx_cv:
            while len(self._rx) < size and not self._cancel:
                self._check()
                if deadline is None:
                    self._rx_cv.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._rx_cv.wait(remaining)
            self._cancel = False
            data = bytes(self._rx[:size])
            del self._rx[:size]
        return data

    @property
    def in_waiting(self) -> int:
        self._check()
        with self._rx_cv:
            return len(self._rx)

    @property
    def out_waiting(self) -> int:
        self._check()
        return 0

    def reset_input_buffer(self) -> None:
        self._check()
        with self._rx_cv:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        # Written bytes are already on the (simulated) wire.
        self._check()

    def flush(self) -> None:
        """Wait until everything written has been received by the instrument (like tcdrain)."""
        if not self.is_open or self._sim is None:
            return
        delay_s = self._sim.engine.rx_done_at() - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)

    def cancel_read(self) -> None:
        with self._rx_cv:
            self._cancel = True
            self._rx_cv.notify_all()

    def cancel_write(self) -> None:
        pass

    # ------------------------------------------------------------ Port hooks (vanish/return)

    def vanish(self) -> None:
        with self._rx_cv:
            self._rx_cv.notify_all()    # blocked readers raise

    def restore(self) -> None:
        pass

    # ------------------------------------------------------------ modem lines

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        self._check()
        return True

    @property
    def dsr(self) -> bool:
        self._check()
        return True

    @property
    def ri(self) -> bool:
        self._check()
        return False

    @property
    def cd(self) -> bool:
        self._check()
        return True
