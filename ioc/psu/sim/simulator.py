"""``Simulator``: one simulated E3631A (model + timing engine), its fault controls and the
control-command interpreter shared by the in-process API and the TCP control channel."""
from __future__ import annotations

import json
import math
import random
import threading
from typing import Protocol

from .engine import BOOT, Engine
from .model import RAILS, Instrument
from .timing import Profile, get_profile

HELP = ("state | fault no_reply|garble|partial|lost_first_query on|off | fault delay_ms N | "
        "fault clear | error CODE | panel RAIL VOLT|CURR VALUE | load RAIL OHMS | "
        "power_cycle [BOOT_S] | vanish | return | profile ideal|spec|realistic | help")

_BOOL_FAULTS = ("no_reply", "garble", "partial", "lost_first_query")


class Port(Protocol):
    """A way in (pty, TCP server, sim:// port) that can disappear and come back."""

    def vanish(self) -> None: ...

    def restore(self) -> None: ...


def _on_off(word: str) -> bool:
    w = word.lower()
    if w in ("on", "1", "true"):
        return True
    if w in ("off", "0", "false"):
        return False
    raise ValueError(f"expected on|off, got {word!r}")


class Simulator:
    """A simulated E3631A with its own engine thread.

    ``profile``: ``ideal``, ``spec`` or ``realistic`` (see ``timing``); ``baud``: the
    instrument's configured rate (8N2 fixed); ``seed``: makes readback noise and timing jitter
    repeatable; ``boot_s``: how long a power cycle keeps the unit silent (2 s, as psu.md says).
    Call ``close()`` to stop the thread.
    """

    def __init__(self, profile: str | Profile = "realistic", baud: int = 9600,
                 seed: int | None = None, boot_s: float = 2.0):
        root = random.Random(seed)
        self.model = Instrument(rng=random.Random(root.getrandbits(64)))
        self.engine = Engine(self.model, get_profile(profile), baud,
                             random.Random(root.getrandbits(64)), boot_s)
        self.vanished = False
        self.closed = False
        self._ports: list[Port] = []
        self._owner: object | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ properties

    @property
    def profile(self) -> Profile:
        """The timing profile in use (``profile.cost_s(unit)`` gives nominal costs)."""
        return self.engine.profile

    @property
    def baud(self) -> int:
        return self.engine.baud

    def set_profile(self, name: str | Profile) -> None:
        with self.engine.cv:
            self.engine.profile = get_profile(name)

    def set_baud(self, baud: int) -> None:
        if baud <= 0:
            raise ValueError(f"invalid baud rate {baud}")
        with self.engine.cv:
            self.engine.baud = baud

    # ------------------------------------------------------------ ports

    def feed(self, data: bytes, sink, framing_ok: bool = True) -> None:
        """Bytes from the host (see ``Engine.feed``); replies go to ``sink.deliver``."""
        self.engine.feed(data, sink, framing_ok)

    def add_port(self, port: Port) -> None:
        with self._lock:
            self._ports.append(port)

    def remove_port(self, port: Port) -> None:
        with self._lock:
            if port in self._ports:
                self._ports.remove(port)

    def try_claim(self, owner: object) -> bool:
        """Take the single open-port slot (sim:// exclusivity); False if someone holds it."""
        with self._lock:
            if self._owner is not None and self._owner is not owner:
                return False
            self._owner = owner
            return True

    def release(self, owner: object) -> None:
        with self._lock:
            if self._owner is owner:
                self._owner = None

    # ------------------------------------------------------------ API

    def state(self) -> dict:
        """The state the control command ``state`` prints (JSON-serialisable).

        Keys: ``selected``, ``rails`` (per rail: ``volt``, ``curr``, ``volt_trig``,
        ``curr_trig``, ``meas_volt``, ``meas_curr`` - noiseless terminal values -, ``mode``
        CV/CC/OFF, ``load_ohms``), ``output``, ``tracking``, ``remote``, ``rwlock``, ``coupled``,
        ``trigger``, ``display``, ``error_queue`` (as SYST:ERR? prints them, oldest first),
        ``setting_writes`` (per rail), ``power_cycles``, ``rx_lines``, ``rx_log`` (last 50
        received lines), ``device_clears``, ``profile``, ``baud``, ``faults``, ``vanished``,
        ``booting``, ``phase``; ``counters`` repeats ``rx_lines``, ``setting_writes``,
        ``device_clears`` and ``power_cycles`` in one place.

        ``setting_writes[rail]`` counts executed setting commands (from the port, never the
        front panel) that set that rail's VOLT/CURR or triggered levels: APPL, VOLT, CURR, their
        :TRIG forms, a tracking copy, *RST, *RCL, and a trigger that moves programmed levels.
        """
        eng = self.engine
        with eng.cv:
            d = self.model.snapshot()
            d.update(rx_lines=eng.rx_lines, rx_log=list(eng.rx_log),
                     device_clears=eng.device_clears, profile=eng.profile.name, baud=eng.baud,
                     faults=eng.faults_dict(), vanished=self.vanished,
                     booting=eng.phase == BOOT, phase=eng.phase)
        d["counters"] = {k: d[k] for k in ("rx_lines", "setting_writes", "device_clears",
                                           "power_cycles")}
        return d

    def control(self, line: str) -> str:
        """Run one control command; the reply line ``OK [data]`` or ``ERR <reason>``."""
        words = line.split()
        if not words:
            return "ERR empty command"
        try:
            data = self._control(words[0].lower(), words[1:])
        except IndexError:
            return "ERR missing argument (try help)"
        except ValueError as e:
            return f"ERR {e}"
        return "OK" if data is None else f"OK {data}"

    def vanish(self) -> None:
        """The port disappears (pty closed, TCP closed, sim:// raises) until ``restore()``."""
        with self._lock:
            if self.vanished:
                return
            self.vanished = True
            ports = list(self._ports)
        for p in ports:
            p.vanish()

    def restore(self) -> None:
        """The port comes back (a new pty behind the link; sim:// opens again)."""
        with self._lock:
            if not self.vanished:
                return
            self.vanished = False
            ports = list(self._ports)
        for p in ports:
            p.restore()

    def close(self) -> None:
        """Stop the engine thread (idempotent)."""
        self.closed = True
        self.engine.close()

    # ------------------------------------------------------------ control commands

    def _control(self, cmd: str, args: list[str]) -> str | None:
        eng = self.engine
        if cmd == "state":
            return json.dumps(self.state())
        if cmd == "help":
            return HELP
        if cmd == "fault":
            name, value = args[0].lower(), (args[1] if len(args) > 1 else "")
            if name == "clear":
                for f in _BOOL_FAULTS:
                    eng.set_fault(f, False)
                eng.set_fault("delay_ms", 0.0)
            elif name in _BOOL_FAULTS:
                eng.set_fault(name, _on_off(value))
            elif name == "delay_ms":
                ms = float(value)
                if not 0 <= ms < math.inf:
                    raise ValueError("delay_ms must be >= 0")
                eng.set_fault(name, ms)
            else:
                raise ValueError(f"unknown fault {name!r}")
            return None
        if cmd == "error":
            code = int(args[0])
            with eng.cv:
                self.model.push_error(code)
            return None
        if cmd == "panel":
            with eng.cv:
                self.model.panel(args[0], args[1], float(args[2]))
            return None
        if cmd == "load":
            word = args[0].upper()
            if word not in RAILS:
                raise ValueError(f"unknown rail {args[0]!r}")
            ohms = math.inf if args[1].lower() in ("inf", "open") else float(args[1])
            with eng.cv:
                self.model.set_load(word, ohms)
            return None
        if cmd == "power_cycle":
            boot_s = float(args[0]) if args else None
            if boot_s is not None and not 0 <= boot_s < 3600:
                raise ValueError("boot time must be 0..3600 s")
            eng.power_cycle(boot_s)
            return None
        if cmd == "vanish":
            self.vanish()
            return None
        if cmd == "return":
            self.restore()
            return None
        if cmd == "profile":
            self.set_profile(args[0])
            return None
        raise ValueError(f"unknown command {cmd!r} (try help)")
