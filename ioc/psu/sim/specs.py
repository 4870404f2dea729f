"""Fixed facts of the E3631A the simulator uses: rails, ranges, resolutions, identity
(UG07 Table 4-1, p.72; reference §3)."""
from __future__ import annotations

from dataclasses import dataclass

RAILS = ("P6V", "P25V", "N25V")
IDN = "HEWLETT-PACKARD,E3631A,0,2.1-5.0-1.0"
VERSION = "1995.0"
ERROR_QUEUE_LEN = 20
PON = 128                       # Standard Event register: power on


@dataclass(frozen=True)
class RailSpec:
    """Ranges (UG07 Table 4-1). ``v_max`` is signed (N25V: -25.75); resolutions are readback's."""
    name: str
    v_max: float
    i_max: float
    i_rst: float
    v_res: float
    i_res: float
    load_ohms: float            # default resistive load of the simulation


SPECS = {
    "P6V": RailSpec("P6V", 6.18, 5.15, 5.0, 0.0005, 0.0005, 10.0),
    "P25V": RailSpec("P25V", 25.75, 1.03, 1.0, 0.0015, 0.0001, 100.0),
    "N25V": RailSpec("N25V", -25.75, 1.03, 1.0, 0.0015, 0.0001, 100.0),
}
RAIL_CHOICE = {r: r for r in RAILS}
MINMAX = {"MIN": "MIN", "MINIMUM": "MIN", "MAX": "MAX", "MAXIMUM": "MAX"}
EPS = 1e-9


@dataclass
class Rail:
    """Programmed levels; a triggered level of None means "not programmed" (query shows IMM)."""
    volt: float
    curr: float
    volt_trig: float | None = None
    curr_trig: float | None = None
