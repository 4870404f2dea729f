"""Driver contract (NUT's driver model, SICS's "driver vs logical object") and the E3631A driver.

A driver knows one instrument family: how to recognise it, which queries fetch its readbacks and
how to parse each reply, and which SCPI carries each setting, with the instrument's time budget
for each. It holds no I/O policy: retries, scheduling, link state and timeouts belong to the port
thread (``ioc.psu.port``). Transactions go through :class:`~ioc.psu.transport.SerialTransport`.

Contract (all calls on the port thread; budgets are the instrument's own times, excluding wire):

* ``open()``       -- open the port, no detection (NUT ``upsdrv_initups``).
* ``identify()``   -- ``SYST:VERS?``, ``*IDN?``: returns :class:`Identity` or raises
                      :class:`NoDeviceError` (nothing answered, or another instrument did). It
                      only asks: auto-detect relies on it never writing a setting.
* ``take_control()`` -- ``SYST:REM`` (settings over RS-232 need remote, UG07 p.87).
* ``queries()``    -- the readback :class:`Query` list for round-robin polling, and
  ``setting_queries()`` -- the queries that read every setting back (startup, re-init).
* ``write(setting, value)`` -- the :class:`Command` (SCPI text, busy budget, readbacks) for
                      one setting; ``build(settings)`` -- the messages for a batch of coalesced
                      settings (one ``APPL`` for a rail's voltage and current).
* ``close()``
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .transport import ReplyTimeout, SerialTransport

RAILS = ("P6V", "P25V", "N25V")
RAIL_NUMBER = {"P6V": 1, "P25V": 2, "N25V": 3}

#: Programming ranges (UG07 Table 4-1): (volt_min, volt_max, curr_max).
RANGES = {"P6V": (0.0, 6.18, 5.15), "P25V": (0.0, 25.75, 1.03), "N25V": (-25.75, 0.0, 1.03)}

#: MODE from STAT:QUES:INST:ISUM<n>:COND? (UG07 p.92): 0 off, 1 CC, 2 CV, 3 neither regulated.
MODE_OFF, MODE_CC, MODE_CV, MODE_UNREG = 0, 1, 2, 3

# Instrument time budgets, seconds, as observed on real units (reference e3631a.md §8; the
# manual's figures are lower, real units are slower). These are what the port waits after a
# setting before it talks to the instrument again when no DSR line tells it the instrument is
# ready (ptys and most USB adapters have none): sending sooner loses the next reply (§8 "lost
# first query"). ``busy=spec`` in E3631AConfigure's options selects the manual's figures.
BUSY_OBSERVED_S = {"APPL": 0.115, "VOLT": 0.060, "CURR": 0.060, "INST": 0.047, "OUTP ON": 0.130,
                   "OUTP OFF": 0.052, "*RST": 0.300, "*RCL": 0.300, "other": 0.050}
BUSY_SPEC_S = {"APPL": 0.050, "VOLT": 0.050, "CURR": 0.050, "INST": 0.050, "OUTP ON": 0.050,
               "OUTP OFF": 0.050, "*RST": 0.050, "*RCL": 0.050, "other": 0.050}
BUSY_NONE_S = {k: 0.0 for k in BUSY_SPEC_S}
BUSY_TABLES = {"observed": BUSY_OBSERVED_S, "spec": BUSY_SPEC_S, "none": BUSY_NONE_S}
#: What each simulator profile behaves like.
BUSY_FOR_SIM_PROFILE = {"realistic": "observed", "spec": "spec", "ideal": "none"}


class NoDeviceError(Exception):
    """The port is open but no E3631A answered (or another instrument did). ``stat``: the
    alarm status it deserves (TIMEOUT: silence; READ: an unreadable reply; COMM: wrong device)."""

    def __init__(self, msg: str, stat: str = "COMM"):
        super().__init__(msg)
        self.stat = stat


class ReplyError(Exception):
    """A reply arrived but cannot be parsed (garbled line): READ alarm."""


@dataclass
class Identity:
    idn: str
    version: str

    @property
    def model(self) -> str:
        parts = self.idn.split(",")
        return parts[1].strip() if len(parts) > 1 else ""


@dataclass
class Query:
    """One readback query: ``text`` is sent, ``parse(reply) -> {key: value}``."""
    text: str
    keys: tuple[str, ...]
    parse: Callable[[str], dict[str, Any]]
    slow: bool = False           # polled every Nth refresh cycle only (MODE, TRACK)


@dataclass
class Command:
    """A program message carrying settings; ``budget_s`` is the instrument's busy time."""
    text: str
    budget_s: float
    keys: tuple[str, ...]
    readbacks: list[Query] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- parsing
_NR3 = re.compile(r"^[+-]\d\.\d+E[+-]\d+$")
_APPL = re.compile(r'^"(-?\d+\.\d+),(-?\d+\.\d+)"$')
_ERR = re.compile(r'^([+-]\d+),"(.*)"$')


def parse_nr3(text: str) -> float:
    if not _NR3.match(text):
        raise ReplyError(f"not an NR3 number: {text!r}")
    return float(text)


def parse_bool(text: str) -> int:
    if text not in ("0", "1"):
        raise ReplyError(f"not a boolean: {text!r}")
    return int(text)


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ReplyError(f"not an integer: {text!r}") from None


def parse_appl(text: str) -> tuple[float, float]:
    m = _APPL.match(text)
    if not m:
        raise ReplyError(f"not an APPL? reply: {text!r}")
    return float(m.group(1)), float(m.group(2))


def parse_error(text: str) -> tuple[int, str]:
    m = _ERR.match(text)
    if not m:
        raise ReplyError(f"not a SYST:ERR? reply: {text!r}")
    return int(m.group(1)), m.group(2)


def format_number(value: float) -> str:
    """Shortest text for a setpoint at the instrument's resolution (0.1 mV steps are finer than
    any rail accepts; the instrument rounds the rest)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def combine(queries: list[Query]) -> Query:
    """Several queries in one program message (``;:`` returns each to the root); the replies
    come back joined by ``;`` before one CR LF (IEEE 488.2). ``*IDN?`` must stay alone (-440)."""
    def parse(text: str) -> dict[str, Any]:
        parts = text.split(";")
        if len(parts) != len(queries):
            raise ReplyError(f"{len(parts)} replies to {len(queries)} queries: {text!r}")
        out: dict[str, Any] = {}
        for q, part in zip(queries, parts):
            out.update(q.parse(part))
        return out
    return Query(";:".join(q.text for q in queries), tuple(k for q in queries for k in q.keys),
                 parse, slow=all(q.slow for q in queries))


# ---------------------------------------------------------------------------------- driver
class PsuDriver:
    """Base of instrument drivers (see the module docstring for the contract)."""

    def __init__(self, transport: SerialTransport, *, busy: str = "observed"):
        self.transport = transport
        self.busy = BUSY_TABLES[busy]

    @classmethod
    def check(cls, key: str, value: Any) -> None:
        """Raise ValueError if the instrument would refuse ``value`` for setting ``key``."""

    def open(self) -> None:
        self.transport.open()

    def close(self) -> None:
        self.transport.close()

    def transact(self, text: str, timeout_s: float, cancelled=None) -> tuple[str, float]:
        """One query transaction: flush stale input, write, read one line before the deadline
        (``timeout_s`` counts from the moment the message is on the wire)."""
        t = self.transport
        t.flush_input()
        data = text.encode("ascii") + b"\n"
        deadline = t.write(data) + timeout_s
        line, t_done = t.read_line(deadline, cancelled)
        try:
            return line.decode("ascii"), t_done
        except UnicodeDecodeError:
            raise ReplyError(f"non-ASCII reply {line!r}") from None

    def send(self, text: str) -> float:
        """Write a program message without a reply; returns when it left (monotonic)."""
        return self.transport.write(text.encode("ascii") + b"\n")


class E3631ADriver(PsuDriver):
    """Agilent/Keysight E3631A over RS-232 (short SCPI forms; reference e3631a.md)."""

    family = "E3631A"

    def identify(self, timeout_s: float = 0.5) -> Identity:
        """``SYST:VERS?`` (answered even in local), then ``*IDN?`` (alone: it must be the last
        query of a message, -440). Accepts only an E3631A. Writes no setting."""
        try:
            version, _ = self.transact("SYST:VERS?", timeout_s)
        except ReplyTimeout:
            raise NoDeviceError("no reply to SYST:VERS?", "TIMEOUT") from None
        except ReplyError as exc:
            raise NoDeviceError(f"SYST:VERS?: {exc}", "READ") from None
        if not re.fullmatch(r"\d{4}\.\d+", version):
            raise NoDeviceError(f"SYST:VERS? answered {version!r}, not YYYY.V", "READ")
        try:
            idn, _ = self.transact("*IDN?", timeout_s)
        except ReplyTimeout:
            raise NoDeviceError("no reply to *IDN?", "TIMEOUT") from None
        except ReplyError as exc:
            raise NoDeviceError(f"*IDN?: {exc}", "READ") from None
        ident = Identity(idn, version)
        if ident.model.upper() != "E3631A":
            raise NoDeviceError(f"not an E3631A: *IDN? answered {idn!r}")
        return ident

    def take_control(self) -> float:
        """Remote mode: required before settings over RS-232. Returns when it is on the wire."""
        return self.send("SYST:REM")

    # --------------------------------------------------------------- readbacks
    @staticmethod
    def appl_query(rail: str) -> Query:
        def parse(text: str, rail=rail) -> dict[str, Any]:
            v, i = parse_appl(text)
            return {f"{rail}:VOLT_RBV": v, f"{rail}:CURR_RBV": i}
        return Query(f"APPL? {rail}", (f"{rail}:VOLT_RBV", f"{rail}:CURR_RBV"), parse)

    @staticmethod
    def mode_query(rail: str) -> Query:
        def parse(text: str, rail=rail) -> dict[str, Any]:
            v = parse_int(text)
            if not 0 <= v <= 3:
                raise ReplyError(f"ISUM condition out of range: {text!r}")
            return {f"{rail}:MODE": v}
        n = RAIL_NUMBER[rail]
        return Query(f"STAT:QUES:INST:ISUM{n}:COND?", (f"{rail}:MODE",), parse, slow=True)

    @staticmethod
    def outp_query() -> Query:
        return Query("OUTP?", ("OUT_RBV",), lambda t: {"OUT_RBV": parse_bool(t)})

    @staticmethod
    def track_query() -> Query:
        return Query("OUTP:TRAC?", ("TRACK_RBV",), lambda t: {"TRACK_RBV": parse_bool(t)},
                     slow=True)

    @staticmethod
    def error_query() -> Query:
        return Query("SYST:ERR?", ("ERR",), lambda t: {"ERR": parse_error(t)})

    def queries(self) -> list[Query]:
        """One refresh cycle: 6 measurements, 3 programmed settings, output state, error queue
        (the fewest and shortest queries for that data), then the slow group (MODE, TRACK)."""
        out: list[Query] = []
        for rail in RAILS:
            out.append(Query(f"MEAS? {rail}", (f"{rail}:VOLT_MEAS",),
                             lambda t, r=rail: {f"{r}:VOLT_MEAS": parse_nr3(t)}))
            out.append(Query(f"MEAS:CURR? {rail}", (f"{rail}:CURR_MEAS",),
                             lambda t, r=rail: {f"{r}:CURR_MEAS": parse_nr3(t)}))
            out.append(self.appl_query(rail))
        out.append(self.outp_query())
        out.append(self.error_query())
        # The slow group in one message: fewer transactions, same instrument time.
        out.append(combine([self.mode_query(r) for r in RAILS] + [self.track_query()]))
        return out

    def setting_queries(self) -> list[Query]:
        """Every setting the IOC has a setpoint for, in one message (startup and re-init,
        bumpless)."""
        return [combine([self.appl_query(r) for r in RAILS]
                        + [self.outp_query(), self.track_query()])]

    def write(self, setting: str, value: Any) -> Command:
        """The program message for one setting (``build`` coalesces several)."""
        return self.build({setting: value})[0]

    # --------------------------------------------------------------- settings
    @classmethod
    def check(cls, key: str, value: Any) -> None:
        """Raise ValueError if the instrument would refuse ``value`` for ``key`` (nothing is
        sent then). Range clamping is the record's job (DRVL/DRVH), as in any EPICS ao."""
        if key.endswith(":VOLT") or key.endswith(":CURR"):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key}: {value!r} is not a finite number")
            rail, what = key.split(":")
            vmin, vmax, imax = RANGES[rail]
            lo, hi = (vmin, vmax) if what == "VOLT" else (0.0, imax)
            if not lo <= value <= hi:
                raise ValueError(f"{key}: {value} outside {lo}..{hi} (error -222)")
        elif key in ("SAVE", "RECALL"):
            if int(value) not in (1, 2, 3):
                raise ValueError(f"{key}: location {value} is not 1, 2 or 3 (error -222)")

    def build(self, settings: dict[str, Any]) -> list[Command]:
        """Program messages for coalesced settings, in order (a dict keeps arrival order).

        Voltage and current of one rail go out as one ``APPL`` (voltage alone: ``APPL ch,v``;
        current alone: ``INST ch;:CURR i``, so a stale voltage is never re-sent)."""
        cmds: list[Command] = []
        items = list(settings.items())
        done: set[str] = set()
        for key, value in items:
            if key in done:
                continue
            done.add(key)
            if ":" in key:
                rail, what = key.split(":")
                other = f"{rail}:{'CURR' if what == 'VOLT' else 'VOLT'}"
                rb = [self.appl_query(rail), self.mode_query(rail)]
                if other in settings and other not in done:
                    done.add(other)
                    v, i = ((value, settings[other]) if what == "VOLT"
                            else (settings[other], value))
                    cmds.append(Command(f"APPL {rail},{format_number(v)},{format_number(i)}",
                                        self.busy["APPL"], (key, other), rb))
                elif what == "VOLT":
                    cmds.append(Command(f"APPL {rail},{format_number(value)}",
                                        self.busy["APPL"], (key,), rb))
                else:
                    cmds.append(Command(f"INST {rail};:CURR {format_number(value)}",
                                        self.busy["INST"] + self.busy["CURR"], (key,), rb))
                if self._tracking_hint and rail in ("P25V", "N25V"):
                    twin = "N25V" if rail == "P25V" else "P25V"
                    cmds[-1].readbacks.append(self.appl_query(twin))
            elif key == "OUT":
                on = bool(value)
                cmds.append(Command(f"OUTP {'ON' if on else 'OFF'}",
                                    self.busy["OUTP ON" if on else "OUTP OFF"], (key,),
                                    [self.outp_query()] + [self.mode_query(r) for r in RAILS]))
            elif key == "TRACK":
                cmds.append(Command(f"OUTP:TRAC {'ON' if value else 'OFF'}", self.busy["other"],
                                    (key,), [self.track_query(), self.appl_query("N25V")]))
            elif key == "REMOTE":
                cmds.append(Command("SYST:REM" if value else "SYST:LOC", self.busy["other"],
                                    (key,), values={key: value}))
            elif key == "CLEAR":
                cmds.append(Command("*CLS", self.busy["other"], (key,)))
            elif key == "RESET":
                cmds.append(Command("*RST", self.busy["*RST"], (key,), self.setting_queries()))
            elif key == "SAVE":
                cmds.append(Command(f"*SAV {int(value)}", self.busy["other"], (key,)))
            elif key == "RECALL":
                cmds.append(Command(f"*RCL {int(value)}", self.busy["*RCL"], (key,),
                                    self.setting_queries()))
            else:
                raise KeyError(f"unknown setting {key!r}")
        return cmds

    #: Set by the port from TRACK_RBV: with tracking on, a ±25 V change moves its twin too.
    _tracking_hint = False


DRIVERS: dict[str, type[PsuDriver]] = {"E3631A": E3631ADriver}
