"""Physical lower bounds of the E3631A's refresh and of one setpoint (shared by bench/psu.py and
bench/scale.py).

A full refresh fetches 6 measured values, 3 programmed settings, the output state and the error
queue. The fewest and shortest queries for that data are::

    MEAS? ch, MEAS:CURR? ch, APPL? ch      for ch in P6V, P25V, N25V
    OUTP?, SYST:ERR?

(``MEAS?`` is the short form of ``MEAS:VOLT:DC?``; ``APPL? ch`` names its channel and returns both
programmed values, where ``VOLT?``/``CURR?`` would need an ``INST`` first; reference e3631a.md
§5.) Each query costs, on the instrument's own time line: the wire time of the query line (text +
LF) + the profile's nominal processing time (``Profile.cost_s``) + the wire time of the reply
(text + CR LF), at 11 bits per character (8N2). The bound is the sum; the simulator never goes
below it (its jitter only adds). Reply lengths are the exact ones: the replies come from an
in-process ``sim://`` instance at profile ``ideal`` holding the same settings as the instrument
under test (``APPL?`` grows with the digits of its settings; the others have a fixed length).

A setpoint's bound is the wire time of the command the IOC sends (``APPL P6V,3.3`` + LF) plus the
instrument's busy time for it.

The slow group (regulation mode of each rail and tracking, every ``slow_every`` cycles in the IOC)
is not part of the refresh the spec defines; ``slow_group_bound_s`` gives its cost for the mean.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

RAILS = ("P6V", "P25V", "N25V")
REFRESH_QUERIES = tuple(q for ch in RAILS for q in (f"MEAS? {ch}", f"MEAS:CURR? {ch}",
                                                     f"APPL? {ch}")) + ("OUTP?", "SYST:ERR?")
SLOW_QUERIES = tuple(f"STAT:QUES:INST:ISUM{n}:COND?" for n in (1, 2, 3)) + ("OUTP:TRAC?",)
BAUD = 9600

_names = itertools.count()


@dataclass
class QueryCost:
    query: str
    reply: str
    wire_s: float
    cost_s: float

    @property
    def total_s(self) -> float:
        return self.wire_s + self.cost_s


def ideal_replies(queries, settings: dict | None = None) -> dict[str, str]:
    """The exact reply line (with CR LF) of each query, from an in-process ``sim://`` instance
    at profile ``ideal`` (no wire or processing time). ``settings``: ``{rail: (volt, curr)}``
    and ``"output": bool`` to program first, so ``APPL?`` and ``OUTP?`` answer with the same
    number of characters as the instrument under test."""
    import serial

    import ioc.psu.sim
    name = f"bench-bound-{next(_names)}"
    port = serial.serial_for_url(f"sim://{name}?profile=ideal&baud={BAUD}", baudrate=BAUD,
                                 stopbits=2, timeout=2.0)
    try:
        setup = ["SYST:REM"]
        for rail, vi in (settings or {}).items():
            if rail in RAILS:
                setup.append(f"APPL {rail},{vi[0]},{vi[1]}")
        if settings and "output" in settings:
            setup.append(f"OUTP {'ON' if settings['output'] else 'OFF'}")
        for cmd in setup:
            port.write(cmd.encode() + b"\n")
        out = {}
        for q in queries:
            port.write(q.encode() + b"\n")
            line = port.readline()
            if not line.endswith(b"\r\n"):
                raise RuntimeError(f"no reply to {q!r} from the ideal simulator ({line!r})")
            out[q] = line.decode("ascii")
        return out
    finally:
        port.close()
        ioc.psu.sim.close_instance(name)


def settings_from_state(state: dict) -> dict:
    """``{rail: (volt, curr)}, output`` from the simulator's control-channel ``state``."""
    out: dict = {r: (v["volt"], v["curr"]) for r, v in state.get("rails", {}).items()}
    if "output" in state:
        out["output"] = bool(state["output"])
    return out


def query_costs(profile: str, queries=REFRESH_QUERIES, settings: dict | None = None,
                baud: int = BAUD) -> list[QueryCost]:
    from ioc.psu.sim import get_profile, wire_s
    prof = get_profile(profile)
    replies = ideal_replies(queries, settings)
    return [QueryCost(q, replies[q], wire_s(len(q) + 1, baud) + wire_s(len(replies[q]), baud),
                      prof.cost_s(q)) for q in queries]


def refresh_bound_s(profile: str, settings: dict | None = None, baud: int = BAUD) -> float:
    """The lower bound of one full refresh (see the module docstring)."""
    return sum(c.total_s for c in query_costs(profile, REFRESH_QUERIES, settings, baud))


def slow_group_bound_s(profile: str, baud: int = BAUD) -> float:
    """The lower bound of the slow group (MODE x 3, TRACK) the IOC adds every Nth cycle."""
    return sum(c.total_s for c in query_costs(profile, SLOW_QUERIES, None, baud))


def cmd_bound_s(profile: str, command: str, baud: int = BAUD) -> float:
    """Wire time of ``command`` + LF and the instrument's busy time for it."""
    from ioc.psu.sim import get_profile, wire_s
    return wire_s(len(command) + 1, baud) + get_profile(profile).cost_s(command)


if __name__ == "__main__":
    for prof in ("spec", "realistic"):
        costs = query_costs(prof)
        for c in costs:
            print(f"{prof:9} {c.query:16} reply {c.reply.strip():22} {len(c.reply):2} chars "
                  f"wire {c.wire_s * 1e3:6.1f} ms + cost {c.cost_s * 1e3:5.1f} ms")
        print(f"{prof:9} refresh bound {sum(c.total_s for c in costs):.4f} s, slow group "
              f"{slow_group_bound_s(prof):.4f} s, APPL P6V,3.3 "
              f"{cmd_bound_s(prof, 'APPL P6V,3.3') * 1e3:.1f} ms")
