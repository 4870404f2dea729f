"""The E3631A as a state machine: settings of three rails, a resistive load per rail, status
registers, *SAV slots, remote/local, and the executor that runs a program message unit by unit.

Pure: no I/O and no sleeping. Time (for the trigger delay) comes from ``clock``; noise from
``rng``. The timing engine drives ``Instrument.run()`` one unit at a time so that each unit takes
effect at the start of its own processing or busy time.
"""
from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

from . import scpi
from .commands import QUERY, SET
from .scpi import ScpiError, Tok
from .specs import EPS, ERROR_QUEUE_LEN, PON, RAIL_CHOICE, RAILS, SPECS, Rail


@dataclass
class Step:
    """One executed message unit as the timing engine sees it.

    ``key`` is the command key (``"MEAS:VOLT"``, ``"APPL"``, ``"*RST"``; ``""`` if the header did
    not parse); ``reply`` is the query's reply (None for settings and failed queries);
    ``setting`` is True for a setting command that was executed without error.
    """
    text: str
    key: str
    query: bool
    params: str
    reply: str | None = None
    setting: bool = False
    error: int | None = None


# Settings that work in local mode (every other setting is error 550 there).
LOCAL_OK = {"SYST:REM", "SYST:RWL", "SYST:LOC"}


def _esr_bit(code: int) -> int:
    if -199 <= code <= -100:
        return 32               # CME
    if -299 <= code <= -200:
        return 16               # EXE
    if -499 <= code <= -400:
        return 4                # QYE
    return 8                    # DDE: -3xx and device-specific errors



class Instrument:
    """State and SCPI executor of one E3631A (power-on state: LOCAL, *RST levels, PON set)."""

    def __init__(self, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rng = rng or random.Random()
        self.clock = clock
        self.loads = {r: SPECS[r].load_ohms for r in RAILS}
        self.slots: dict[int, dict | None] = {1: None, 2: None, 3: None}
        self.setting_writes = {r: 0 for r in RAILS}
        self.power_cycles = 0
        self.errors: deque[int] = deque()
        self._touched: set[str] = set()
        self._power_on()

    # ------------------------------------------------------------ state changes

    def _power_on(self) -> None:
        self.remote = False
        self.rwlock = False
        self.errors.clear()
        self.esr, self.ese, self.sre, self.psc = PON, 0, 0, True
        self.ques_event = self.ques_enab = self.inst_event = self.inst_enab = 0
        self.isum_event, self.isum_enab = [0, 0, 0], [0, 0, 0]
        self._isum_prev, self._inst_prev, self._ques_prev = [0, 0, 0], 0, 0
        self.display_text = ""
        self._reset()

    def _reset(self) -> None:
        """*RST (UG07 p.84): not the error queue, not the event registers, not remote/local."""
        self.rails = {r: Rail(0.0, SPECS[r].i_rst) for r in RAILS}
        self.selected = "P6V"
        self.couple: list[str] = []
        self.output = False
        self.tracking = False
        self.trig_source = "BUS"
        self.trig_delay = 0.0
        self.armed = False
        self._pending: tuple[float, list[str]] | None = None
        self.display_on = True
        self.text_shown = False
        self._touched.update(RAILS)

    def power_cycle(self) -> None:
        """Power off and on: *RST state, outputs off, LOCAL, error queue and registers cleared."""
        self._power_on()
        self.power_cycles += 1

    def push_error(self, code: int) -> None:
        """Queue an error; when full, the newest entry becomes -350 and nothing more is kept."""
        if len(self.errors) < ERROR_QUEUE_LEN:
            self.errors.append(code)
        elif self.errors[-1] != -350:
            self.errors[-1] = -350
        self.esr |= _esr_bit(code)

    def panel(self, rail: str, what: str, value: float) -> None:
        """A front-panel change of VOLT or CURR (no error queue entry, remote/local unchanged).

        Raises ValueError for an unknown rail/quantity or a value out of range.
        """
        rail, what = rail.upper(), what.upper()
        if rail not in SPECS or what not in ("VOLT", "CURR"):
            raise ValueError("usage: panel P6V|P25V|N25V VOLT|CURR VALUE")
        if not self._in_range(rail, what, value):
            raise ValueError(f"{what} {value} out of range for {rail}")
        self._settle()
        if what == "VOLT":
            self._set_volt(rail, value)
        else:
            self.rails[rail].curr = value
        self._update_status()

    def set_load(self, rail: str, ohms: float) -> None:
        """Resistive load of a rail in ohms (> 0; ``math.inf`` = open circuit)."""
        rail = rail.upper()
        if rail not in SPECS or not ohms > 0:
            raise ValueError("usage: load P6V|P25V|N25V OHMS (OHMS > 0)")
        self.loads[rail] = ohms
        self._update_status()

    # ------------------------------------------------------------ load model

    def terminal(self, rail: str) -> tuple[float, float, str]:
        """Noiseless (volts, amps, mode) at the terminals; mode ``CV``, ``CC`` or ``OFF``.

        A resistive load R on a supply set to V, I: CV while V/R <= I, else CC at I*R. N25V
        reports negative volts and positive amps, as the real unit does.
        """
        if not self.output:
            return 0.0, 0.0, "OFF"
        r = self.rails[rail]
        v_set, i_set, ohms = abs(r.volt), r.curr, self.loads[rail]
        i_cv = v_set / ohms if ohms > 0 else math.inf
        if i_cv <= i_set + EPS:
            v, i, mode = v_set, i_cv, "CV"
        else:
            v, i, mode = i_set * ohms, i_set, "CC"
        return (-v if rail == "N25V" else v), i, mode

    def measure(self, rail: str, what: str) -> float:
        """``MEAS`` reading: terminal value plus noise within the readback resolution.

        With the output off the readings are tiny offsets (mV / sub-mA, either sign), as seen on
        a real unit (``+5.89410700E-03`` V, ``-4.61115500E-04`` A).
        """
        v, i, mode = self.terminal(rail)
        spec = SPECS[rail]
        if mode == "OFF":
            return self.rng.uniform(-0.002, 0.008) if what == "V" else \
                self.rng.uniform(-0.0006, 0.0002)
        if what == "V":
            return v + self.rng.uniform(-spec.v_res / 2, spec.v_res / 2)
        return i + self.rng.uniform(-spec.i_res / 2, spec.i_res / 2)

    def isum_cond(self, rail: str) -> int:
        """STAT:QUES:INST:ISUM<n>:COND: 0 output off, 1 CC, 2 CV."""
        return {"OFF": 0, "CC": 1, "CV": 2}[self.terminal(rail)[2]]

    # ------------------------------------------------------------ executor

    def run(self, message: str) -> Iterator[Step]:
        """Execute one program message (no terminator), yielding each unit after it ran.

        Errors go to the error queue; a failing unit does not stop the units after it.
        """
        path = scpi.ROOT
        indefinite = False
        units = scpi.split_units(message)
        for i, raw in enumerate(units):
            text = raw.strip()
            if not text:
                if i == len(units) - 1:
                    continue            # empty message or a trailing ";"
                self.push_error(-102)
                yield Step(text, "", False, "", error=-102)
                continue
            step, path = self._unit(text, path, indefinite)
            indefinite = indefinite or (step.key == "*IDN" and step.reply is not None)
            yield step

    def execute(self, message: str) -> list[str]:
        """Run a whole message at once (no timing); the replies of its queries."""
        return [s.reply for s in self.run(message) if s.reply is not None]

    def ask(self, message: str) -> str:
        """The reply line a message would produce (replies joined with ``;``, no CR LF)."""
        return ";".join(self.execute(message))

    def _unit(self, text: str, path: scpi.Node, indefinite: bool) -> tuple[Step, scpi.Node]:
        key, is_query, params = "", text.split(None, 1)[0].endswith("?"), ""
        try:
            u = scpi.parse_unit(text)
            is_query, params = u.query, u.params
            if u.common:
                key, suffix = "*" + u.mnemonics[0], 1
            else:
                r = scpi.resolve(scpi.ROOT if u.absolute else path, u.mnemonics)
                key, suffix, path = r.leaf.key, r.suffix, r.path
            handler = (QUERY if is_query else SET).get(key)
            if handler is None:
                raise ScpiError(-113)
            toks = scpi.tokenize(params)
            if is_query and indefinite:
                raise ScpiError(-440)       # *IDN? must be the last query of a message
            if not is_query and not self.remote and key not in LOCAL_OK:
                raise ScpiError(550)
            self._settle()
            self._touched = set()
            reply = handler(self, toks, suffix)
            for rail in self._touched:
                self.setting_writes[rail] += 1
            self._touched = set()
            self._update_status()
            return Step(text, key, is_query, params, reply, setting=not is_query), path
        except ScpiError as e:
            self.push_error(e.code)
            return Step(text, key, is_query, params, error=e.code), path

    # ------------------------------------------------------------ helpers

    def _in_range(self, rail: str, what: str, value: float) -> bool:
        spec = SPECS[rail]
        lo, hi = sorted((0.0, spec.v_max if what == "VOLT" else spec.i_max))
        return lo - EPS <= value <= hi + EPS

    def _level(self, rail: str, what: str, tok: Tok, allow_def: bool = False) -> float:
        spec = SPECS[rail]
        specials = {"MIN": 0.0, "MAX": spec.v_max if what == "VOLT" else spec.i_max}
        if allow_def:
            specials["DEF"] = 0.0 if what == "VOLT" else spec.i_rst
        value = scpi.number(tok, "V" if what == "VOLT" else "A", specials)
        if not self._in_range(rail, what, value):
            raise ScpiError(-222)
        return value

    def _rail(self, tok: Tok) -> str:
        return scpi.choice(tok, RAIL_CHOICE, numeric_error=-108)

    def _set_volt(self, rail: str, v: float) -> None:
        self.rails[rail].volt = v
        self._touched.add(rail)
        if self.tracking and rail in ("P25V", "N25V"):
            other = "N25V" if rail == "P25V" else "P25V"
            self.rails[other].volt = -v         # tracking copies the level to the other rail
            self._touched.add(other)

    def _set_curr(self, rail: str, i: float) -> None:
        self.rails[rail].curr = i
        self._touched.add(rail)

    def _select(self, rail: str) -> None:
        self.selected = rail
        self.armed = False      # an INST write between INIT and *TRG disarms silently (TCN)

    def _settle(self) -> None:
        """Apply a delayed trigger whose time has come, then refresh the status registers."""
        if self._pending and self.clock() >= self._pending[0]:
            self._apply_trigger(self._pending[1])
            self._pending = None
        self._update_status()

    def _trigger(self, delay_s: float) -> None:
        targets = list(self.couple) or [self.selected]
        # Counted as a write now (the command that fires it), for rails with a triggered level.
        self._touched.update(r for r in targets if self.rails[r].volt_trig is not None
                             or self.rails[r].curr_trig is not None)
        if delay_s <= 0:
            self._apply_trigger(targets)
        else:
            self._pending = (self.clock() + delay_s, targets)

    def _apply_trigger(self, targets: list[str]) -> None:
        for name in targets:
            r = self.rails[name]
            if r.volt_trig is not None:
                self._set_volt(name, r.volt_trig)
            if r.curr_trig is not None:
                self._set_curr(name, r.curr_trig)

    def _update_status(self) -> None:
        # Event registers latch rising condition bits; a summary bit is (event & enable) below.
        inst_cond = 0
        for k, rail in enumerate(RAILS):
            c = self.isum_cond(rail)
            self.isum_event[k] |= c & ~self._isum_prev[k]
            self._isum_prev[k] = c
            if self.isum_event[k] & self.isum_enab[k]:
                inst_cond |= 1 << (k + 1)
        self.inst_event |= inst_cond & ~self._inst_prev
        self._inst_prev = inst_cond
        ques_cond = 8192 if self.inst_event & self.inst_enab else 0
        self.ques_event |= ques_cond & ~self._ques_prev
        self._ques_prev = ques_cond

    def _stb(self) -> int:
        stb = 0
        if self.ques_event & self.ques_enab:
            stb |= 8
        if self.esr & self.ese:
            stb |= 32
        if stb & self.sre:
            stb |= 64
        return stb

    def snapshot(self) -> dict:
        """Settings, noiseless terminal values and counters (the model part of ``state``)."""
        self._settle()
        rails = {}
        for name in RAILS:
            r = self.rails[name]
            v, i, mode = self.terminal(name)
            ohms = self.loads[name]
            rails[name] = {"volt": r.volt, "curr": r.curr, "volt_trig": r.volt_trig,
                           "curr_trig": r.curr_trig, "meas_volt": v, "meas_curr": i,
                           "mode": mode, "load_ohms": None if math.isinf(ohms) else ohms}
        return {
            "selected": self.selected, "rails": rails, "output": self.output,
            "tracking": self.tracking, "remote": self.remote, "rwlock": self.rwlock,
            "coupled": list(self.couple),
            "trigger": {"source": self.trig_source, "delay": self.trig_delay,
                        "armed": self.armed},
            "display": {"on": self.display_on, "text": self.display_text,
                        "text_shown": self.text_shown},
            "error_queue": [scpi.error_text(c) for c in self.errors],
            "setting_writes": dict(self.setting_writes),
            "power_cycles": self.power_cycles,
        }

